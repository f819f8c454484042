-- Migration 5: the stream mode's checkpoints, one row per tenant. A checkpoint stores the
-- tenants that changed since the one before (not the whole partition), each with
-- `next_offset`, the first offset its state does not reflect: a restore skips a tenant's
-- events below it. A partition's state is its tenants' newest rows (FINAL), so what a
-- checkpoint writes grows with the tenants that changed, not with the partition's state.
-- `state_snapshots` (migration 2) is still read once, for partitions checkpointed before.
CREATE TABLE IF NOT EXISTS tenant_snapshots
(
    group_id String,
    topic String,
    partition UInt32,
    tenant_id String,
    next_offset UInt64,
    taken_at DateTime('UTC') DEFAULT now(),
    state String
)
ENGINE = ReplacingMergeTree(next_offset)
ORDER BY (group_id, topic, partition, tenant_id)
;
