-- Migration 6: a finding's context. A rule may list attributes its findings carry
-- (`context = ["sign_in.ip", "sign_in.country"]`); the finding's `context` is those
-- attributes' values as a JSON object, written here as JSON text (read it with
-- `visitParamExtractString(context, 'sign_in.ip')` on any version,
-- `JSONExtractString` from 19.x). Rules without context, and rows written
-- before this release, read ''.
-- Runs on ClickHouse 18.16 and on current releases (plain ADD COLUMN with a default).
-- Statements are separated by a line holding only `;`.
ALTER TABLE findings ADD COLUMN context String DEFAULT '' AFTER detail
;
