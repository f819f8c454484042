-- Migration 1: the four tables. Apply with `mfa-audit schema apply`, which creates the
-- database, runs each migration not yet recorded in `schema_migrations`, and records it.
-- Table names are unqualified: they are created in the configured database.
-- The columns are exactly the fields of the NDJSON rows the file mode writes (ClickHouse
-- JSONEachRow), so `findings.ndjson` etc. load unchanged:
--   clickhouse-client --database mfa_audit --query "INSERT INTO findings FORMAT JSONEachRow" < out/findings.ndjson
-- Runs on ClickHouse 18.16 (no DateTime64, no LowCardinality, no TTL) and on current
-- releases. Booleans are UInt8 (JSON true/false are read as 1/0).
-- Statements are separated by a line holding only `;`.
-- One row per (event, rule). Replays rewrite the same key: ReplacingMergeTree keeps one,
-- and `SELECT ... FINAL` reads one.
CREATE TABLE IF NOT EXISTS findings
(
    event_id String,
    event_time DateTime('UTC'),
    tenant_id String,
    customer_tenant_id String,
    user_id String,
    upn String,
    rule_id String,
    severity String,
    surface String,
    policy_version String,
    enforced UInt8,
    excepted UInt8,
    app_id String,
    client_app String,
    token_sha256 String,
    detail String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant_id, event_id, rule_id, policy_version)
;
-- Absolute values per (tenant, day, policy version); a higher `version` replaces a lower.
CREATE TABLE IF NOT EXISTS rollout_daily
(
    tenant_id String,
    day Date,
    policy_version String,
    api_app_user_calls UInt64,
    api_app_user_calls_mfa UInt64,
    api_app_user_calls_excepted UInt64,
    api_app_user_calls_mfa_unknown UInt64,
    api_app_only_calls UInt64,
    dashboard_protected_requests UInt64,
    dashboard_protected_requests_mfa UInt64,
    dashboard_protected_requests_excepted UInt64,
    dashboard_protected_requests_mfa_unknown UInt64,
    delegated_admin_signins UInt64,
    delegated_admin_signins_mfa UInt64,
    delegated_admin_signins_excepted UInt64,
    legacy_protocol_signins UInt64,
    password_flow_tokens UInt64,
    partner_role_users UInt32,
    partner_role_users_registered UInt32,
    exceptions_open UInt32,
    exceptions_overdue UInt32,
    exceptions_approved UInt32,
    findings UInt64,
    findings_uncovered_critical UInt64,
    findings_uncovered_high UInt64,
    status String,
    status_7d String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(day)
ORDER BY (tenant_id, day, policy_version)
;
-- Partner-role users; a higher `version` replaces a lower.
CREATE TABLE IF NOT EXISTS agents
(
    tenant_id String,
    user_id String,
    upn String,
    user_type String,
    roles Array(String),
    mfa_registration String,
    methods_registered Array(String),
    last_sign_in DateTime('UTC'),
    last_sign_in_mfa String,
    policy_version String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant_id, user_id, policy_version)
;
-- Bad input, with the reason and where it came from (a topic and `partition P offset O`,
-- or a file and `line N`): one row per position, so a replay rewrites rather than adds.
-- `received_at` is filled by the server when the insert names the other four columns.
CREATE TABLE IF NOT EXISTS dead_letters
(
    source String,
    position String,
    reason String,
    excerpt String,
    received_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree
ORDER BY (source, position)
;
