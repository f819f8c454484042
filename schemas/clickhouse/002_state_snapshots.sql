-- Migration 2: the stream mode's checkpoints. One row per (consumer group, topic,
-- partition): the event-sourced state of the tenants that partition carries, as of
-- `next_offset` (the first offset not reflected). A restart restores it and consumes from
-- the committed offset, which never passes it, so restart time does not grow with history.
CREATE TABLE IF NOT EXISTS state_snapshots
(
    group_id String,
    topic String,
    partition UInt32,
    next_offset UInt64,
    taken_at DateTime('UTC') DEFAULT now(),
    state String
)
ENGINE = ReplacingMergeTree(next_offset)
ORDER BY (group_id, topic, partition)
;
