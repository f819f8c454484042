-- Migration 4: "MFA demanded" per surface. A share may name events counted apart from
-- its total: MFA demanded and not performed, which is enforcement seen working (a sign-in
-- that failed with 50074 or 50076, a Partner Center API call answered 401 with error code
-- 900421). `rollout_surfaces.ndjson` carries the field from this release on; rows
-- written before it read 0.
-- Runs on ClickHouse 18.16 and on current releases (plain ADD COLUMN with a default).
-- Statements are separated by a line holding only `;`.
ALTER TABLE rollout_surfaces ADD COLUMN demanded UInt64 DEFAULT 0 AFTER mfa_unknown
;
