-- Migration 3: every declared surface's MFA share. A policy names its surfaces
-- (`[[surfaces]]`); each one with a `share` gets one row per (tenant, day, policy version,
-- surface), whatever its name, so a new policy's surfaces reach the report and the
-- dashboards without a new column. `rollout_daily` keeps its fixed columns for the shipped
-- surfaces. Absolute values; a higher `version` replaces a lower (as in `rollout_daily`).
-- The columns are the fields of `rollout_surfaces.ndjson` (ClickHouse JSONEachRow):
--   clickhouse-client --database mfa_audit --query "INSERT INTO rollout_surfaces FORMAT JSONEachRow" < out/rollout_surfaces.ndjson
-- Runs on ClickHouse 18.16 (no DateTime64, no LowCardinality, no TTL) and on current
-- releases. `enforced` is UInt8 (JSON true/false are read as 1/0).
-- Statements are separated by a line holding only `;`.
CREATE TABLE IF NOT EXISTS rollout_surfaces
(
    tenant_id String,
    day Date,
    policy_version String,
    surface String,
    enforced UInt8,
    total UInt64,
    mfa UInt64,
    excepted UInt64,
    mfa_unknown UInt64,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(day)
ORDER BY (tenant_id, day, policy_version, surface)
;
