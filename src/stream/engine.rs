//! The engine: messages in, rows to the batch; the partitions this instance owns, their
//! progress and their tenants; flushes and checkpoints.
//!
//! A checkpoint flushes, stores each partition's state with the offset it reflects, and
//! only then commits the offsets. A state that cannot be serialised or stored stops the
//! checkpoint before the commit, so the committed offset never passes the stored state.
//! With a findings topic (`[sinks.kafka]`), a flush also publishes the batch's findings
//! and awaits every delivery: a failed one fails the flush as a refused insert does, so
//! no offset is committed before the findings of the events below it were acknowledged.

use super::backpressure::Retry;
use super::error::StreamError;
use super::store::SnapshotStore;
use crate::pipeline::{ChangedDays, Origin, Processor};
use crate::sink::clickhouse::{Batch, ClickHouse};
use crate::sink::kafka::FindingsTopic;
use crate::source::kafka::KeyedProducer;
use crate::telemetry::http::Health;
use crate::telemetry::Metrics;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a stream run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct StreamSummary {
    /// Messages consumed.
    pub messages: u64,
    /// Events applied.
    pub events: u64,
    /// Findings written.
    pub findings: u64,
    /// Dead letters written.
    pub dead_letters: u64,
    /// Messages skipped because a restored snapshot already reflected them.
    pub skipped: u64,
    /// Checkpoints taken.
    pub checkpoints: u64,
    /// Failed ClickHouse or commit attempts that were retried.
    pub retries: u64,
    /// Findings acknowledged by the findings topic (`[sinks.kafka]`), repeats included.
    pub published: u64,
}

/// A topic and a partition.
pub(super) type PartKey = (String, i32);

/// A partition this instance consumes.
#[derive(Default)]
struct Part {
    /// Its snapshot was looked up and restored.
    loaded: bool,
    /// Offsets below this are already in the restored state (and its rows).
    skip_below: i64,
    /// The next offset to process.
    next_offset: i64,
    /// The offset last committed by this instance (-1: none yet).
    committed: i64,
    /// The tenants whose events come through it.
    tenants: BTreeSet<String>,
    /// Tenants whose state changed since it was last stored.
    unsaved: BTreeSet<String>,
    /// Restored tenants, with the first offset their state does not reflect: their events
    /// below it are skipped (a checkpoint may have stored a tenant, then failed before the
    /// commit).
    tenant_skip: HashMap<String, i64>,
}

/// The tunables of the loop.
pub(super) struct Knobs {
    pub(super) batch_rows: usize,
    pub(super) batch_bytes: usize,
    pub(super) flush_interval: Duration,
    pub(super) checkpoint_interval: Duration,
    pub(super) max_document_bytes: usize,
    pub(super) keep_days: i64,
}

/// What the engine is given to work with.
pub(super) struct Setup {
    pub(super) processor: Processor,
    pub(super) ch: ClickHouse,
    pub(super) store: Box<dyn SnapshotStore>,
    pub(super) rt: Arc<tokio::runtime::Runtime>,
    pub(super) dlq: Option<KeyedProducer>,
    pub(super) findings_topic: Option<FindingsTopic>,
    pub(super) knobs: Knobs,
    pub(super) metrics: Arc<Metrics>,
    pub(super) health: Arc<Health>,
}

pub(super) struct Engine {
    processor: Processor,
    ch: ClickHouse,
    store: Box<dyn SnapshotStore>,
    rt: Arc<tokio::runtime::Runtime>,
    dlq: Option<KeyedProducer>,
    findings_topic: Option<FindingsTopic>,
    /// The bytes of the batch's findings already acknowledged by the findings topic: a
    /// retried flush publishes only the rest.
    published_upto: usize,
    batch: Batch,
    /// The days whose rows changed since the last flush, by tenant.
    dirty: BTreeMap<String, ChangedDays>,
    parts: HashMap<PartKey, Part>,
    tenant_part: HashMap<String, PartKey>,
    /// Messages polled but not handled yet (held back while the sink refuses).
    pub(super) pending: VecDeque<OwnedMessage>,
    /// Partitions at their end (for `--until-end`).
    pub(super) eof: HashSet<PartKey>,
    last_flush: Instant,
    last_checkpoint: Instant,
    knobs: Knobs,
    pub(super) summary: StreamSummary,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    last_refresh: Instant,
}

/// What handling one message needs next.
pub(super) enum Step {
    Done,
    /// The partition's snapshot could not be loaded: keep the message and retry.
    Wait(Retry),
}

enum LoadError {
    Retry(Retry),
    Fatal(StreamError),
}

impl Engine {
    pub(super) fn new(p: Setup) -> Self {
        Self {
            processor: p.processor,
            ch: p.ch,
            store: p.store,
            rt: p.rt,
            dlq: p.dlq,
            findings_topic: p.findings_topic,
            published_upto: 0,
            batch: Batch::default(),
            dirty: BTreeMap::new(),
            parts: HashMap::new(),
            tenant_part: HashMap::new(),
            pending: VecDeque::new(),
            eof: HashSet::new(),
            last_flush: Instant::now(),
            last_checkpoint: Instant::now(),
            knobs: p.knobs,
            summary: StreamSummary::default(),
            metrics: p.metrics,
            health: p.health,
            last_refresh: Instant::now(),
        }
    }

    pub(super) fn handle(&mut self, msg: OwnedMessage) -> Result<Step, StreamError> {
        let key = (msg.topic().to_owned(), msg.partition());
        if !self.parts.get(&key).is_some_and(|p| p.loaded) {
            match self.load_partition(&key) {
                Ok(()) => {}
                Err(LoadError::Retry(e)) => {
                    self.pending.push_front(msg);
                    return Ok(Step::Wait(e));
                }
                Err(LoadError::Fatal(e)) => return Err(e),
            }
        }
        self.eof.remove(&key);
        let offset = msg.offset();
        let Some(part) = self.parts.get_mut(&key) else {
            return Ok(Step::Done);
        };
        if offset < part.skip_below {
            self.summary.skipped += 1;
            return Ok(Step::Done);
        }
        part.next_offset = part.next_offset.max(offset + 1);
        self.summary.messages += 1;
        let payload = msg.payload().unwrap_or_default();
        let position = format!("partition {} offset {offset}", key.1);
        let origin = Origin {
            source: &key.0,
            position: &position,
        };
        let (bytes, oversized) = match payload.get(..self.knobs.max_document_bytes) {
            Some(head) if payload.len() > self.knobs.max_document_bytes => {
                (head, Some(payload.len()))
            }
            _ => (payload, None),
        };
        let dirty = &mut self.dirty;
        let tenant_part = &mut self.tenant_part;
        let part_tenants = &mut part.tenants;
        let unsaved = &mut part.unsaved;
        let tenant_skip = &part.tenant_skip;
        let keep = |t: &str| tenant_skip.get(t).is_none_or(|below| offset >= *below);
        let mut on_tenant = |t: &str, touch| {
            if !unsaved.contains(t) {
                unsaved.insert(t.to_owned());
            }
            match dirty.get_mut(t) {
                Some(c) => c.mark(touch),
                None => {
                    let mut c = ChangedDays::default();
                    c.mark(touch);
                    dirty.insert(t.to_owned(), c);
                }
            }
            match tenant_part.get(t) {
                Some(k) if *k == key => {}
                Some(other) => {
                    tracing::warn!(
                        topic = %key.0, partition = key.1, other_partition = other.1,
                        "a tenant arrives on two partitions: producers must key messages by tenant"
                    );
                }
                None => {
                    tenant_part.insert(t.to_owned(), key.clone());
                    part_tenants.insert(t.to_owned());
                }
            }
        };
        let Ok(outcome) = self.processor.process_filtered(
            origin,
            bytes,
            oversized,
            &mut self.batch,
            &keep,
            &mut on_tenant,
        );
        self.summary.events += u64::from(outcome.events);
        self.summary.findings += u64::from(outcome.findings);
        self.summary.dead_letters += u64::from(outcome.dead_letters);
        if outcome.dead_letters > 0 {
            if let Some(dlq) = &self.dlq {
                // The message as it came, but with its credentials removed (by key and by
                // shape): the topic is read by people and tools that must not get tokens.
                let clean =
                    crate::event::scrub::json(&String::from_utf8_lossy(payload)).into_owned();
                dlq.send(Some(position.as_bytes()), clean.as_bytes())?;
            }
        }
        Ok(Step::Done)
    }

    fn load_partition(&mut self, key: &PartKey) -> Result<(), LoadError> {
        let stored = self
            .rt
            .block_on(self.store.load(&key.0, key.1))
            .map_err(|e| LoadError::Retry(Retry::Store(e)))?;
        let mut part = Part {
            loaded: true,
            committed: -1,
            ..Part::default()
        };
        for s in stored {
            let tenants = self.processor.restore_json(&s.state).map_err(|source| {
                LoadError::Fatal(StreamError::Snapshot {
                    topic: key.0.clone(),
                    partition: key.1,
                    source,
                })
            })?;
            let next = i64::try_from(s.next_offset).unwrap_or(i64::MAX);
            if s.tenant_id.is_empty() {
                // A whole partition's state, stored before per-tenant checkpoints: every
                // offset below `next` is in it, and its tenants are stored again, one by
                // one, at the next checkpoint.
                part.skip_below = next;
                part.next_offset = next;
                part.unsaved.extend(tenants.iter().cloned());
            } else {
                for t in &tenants {
                    part.unsaved.remove(t);
                    part.tenant_skip.insert(t.clone(), next);
                }
            }
            for t in tenants {
                self.tenant_part.insert(t.clone(), key.clone());
                part.tenants.insert(t);
            }
        }
        if !part.tenants.is_empty() {
            tracing::info!(topic = %key.0, partition = key.1, next_offset = part.next_offset, tenants = part.tenants.len(), "state restored from snapshot");
        }
        self.parts.insert(key.clone(), part);
        Ok(())
    }

    pub(super) fn flush_due(&self) -> bool {
        self.batch.rows() >= self.knobs.batch_rows
            || self.batch.bytes() >= self.knobs.batch_bytes
            || ((self.batch.rows() > 0 || !self.dirty.is_empty())
                && self.last_flush.elapsed() >= self.knobs.flush_interval)
    }

    pub(super) fn checkpoint_due(&self) -> bool {
        self.last_checkpoint.elapsed() >= self.knobs.checkpoint_interval
            && self
                .parts
                .values()
                .any(|p| p.loaded && p.next_offset > p.committed)
    }

    /// Writes the batch, and the rollout rows of the days that changed and the agents
    /// rows of the tenants that changed; publishes the batch's findings not yet
    /// acknowledged to the findings topic (while ClickHouse writes) and awaits them.
    pub(super) fn flush(&mut self) -> Result<(), Retry> {
        if self.batch.rows() == 0 && self.dirty.is_empty() {
            self.last_flush = Instant::now();
            return Ok(());
        }
        let tenants: Vec<String> = self.dirty.keys().cloned().collect();
        let flush = self.batch.to_flush(
            &self.processor.rollout_rows_changed(&self.dirty),
            &self.processor.surface_rows_changed(&self.dirty),
            &self.processor.agent_rows_for(&tenants),
        );
        let published = self.publish_queue();
        let m = &self.metrics;
        let result = self.rt.block_on(
            self.ch
                .write_flush(flush, |t| m.insert_seconds.observe(t.as_secs_f64())),
        );
        let published = published.and_then(|()| self.publish_await());
        if let Err(e) = published {
            self.metrics.sink_failures.inc();
            return Err(Retry::Publish(e));
        }
        if let Err(e) = result {
            self.metrics.sink_failures.inc();
            self.health.sink_ok.store(false, Ordering::Relaxed);
            return Err(Retry::ClickHouse(e));
        }
        self.health.sink_ok.store(true, Ordering::Relaxed);
        self.metrics.batch_rows.observe(self.batch.rows() as f64);
        self.batch.clear();
        self.published_upto = 0;
        self.dirty.clear();
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Queues the batch's findings the findings topic has not acknowledged yet.
    fn publish_queue(&mut self) -> Result<(), crate::source::kafka::KafkaOpError> {
        let Some(topic) = &mut self.findings_topic else {
            return Ok(());
        };
        let lines = self.batch.findings_ndjson();
        topic.send_lines(lines.get(self.published_upto..).unwrap_or_default())
    }

    /// Awaits every finding queued; when all were acknowledged, the batch's findings
    /// count as published (a retried flush does not publish them again).
    fn publish_await(&mut self) -> Result<(), crate::source::kafka::KafkaOpError> {
        let Some(topic) = &mut self.findings_topic else {
            return Ok(());
        };
        topic.flush()?;
        self.published_upto = self.batch.findings_ndjson().len();
        self.summary.published = topic.published();
        Ok(())
    }

    /// Flush, store the state of `only` (or every) partition with progress, commit their
    /// offsets. Any failure returns before the commit: an offset is committed only when
    /// the state reflecting it was stored.
    pub(super) fn checkpoint<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        only: Option<&HashSet<PartKey>>,
    ) -> Result<(), Retry> {
        self.flush()?;
        if let Some(dlq) = &self.dlq {
            dlq.flush(Duration::from_secs(30)).map_err(Retry::Deliver)?;
        }
        let mut tpl = TopicPartitionList::new();
        let mut done = Vec::new();
        let mut saved: Vec<PartKey> = Vec::new();
        let result = self.store_changed(only, &mut tpl, &mut done, &mut saved);
        // What was stored stays stored, whether or not the rest went through.
        for key in &saved {
            if let Some(p) = self.parts.get_mut(key) {
                p.unsaved.clear();
            }
        }
        result?;
        if tpl.count() > 0 {
            if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
                self.metrics.sink_failures.inc();
                return Err(Retry::Commit(e));
            }
        }
        for (key, off) in done {
            if let Some(p) = self.parts.get_mut(&key) {
                p.committed = off;
            }
        }
        self.last_checkpoint = Instant::now();
        self.summary.checkpoints += 1;
        Ok(())
    }

    /// Stores the state of the tenants that changed in each partition to checkpoint
    /// (`only`, or every one with progress), adding its offset to `tpl` and `done`, and
    /// the partitions stored to `saved`. A state that cannot be serialised or stored
    /// returns before the commit: an offset is committed only when the state of every
    /// tenant that changed before it was stored.
    fn store_changed(
        &self,
        only: Option<&HashSet<PartKey>>,
        tpl: &mut TopicPartitionList,
        done: &mut Vec<(PartKey, i64)>,
        saved: &mut Vec<PartKey>,
    ) -> Result<(), Retry> {
        for (key, part) in &self.parts {
            if !part.loaded
                || part.next_offset <= part.committed
                || only.is_some_and(|o| !o.contains(key))
            {
                continue;
            }
            // Only the tenants that changed since their state was last stored: a
            // checkpoint writes what changed, not the partition's whole state.
            let tenants: Vec<String> = part.unsaved.iter().cloned().collect();
            // The flush before wrote every changed day's rows: days past `keep_days` can
            // leave state before it is stored.
            let dropped = self.processor.drop_days(&tenants, self.knobs.keep_days);
            if dropped > 0 {
                tracing::debug!(topic = %key.0, partition = key.1, dropped, "days dropped from state");
            }
            let mut states = Vec::with_capacity(tenants.len());
            for t in tenants {
                let json = self
                    .processor
                    .snapshot_json(std::slice::from_ref(&t))
                    .map_err(|e| {
                        self.metrics.sink_failures.inc();
                        Retry::Snapshot(e)
                    })?;
                states.push((t, json));
            }
            let next = u64::try_from(part.next_offset).unwrap_or(0);
            if !states.is_empty() {
                self.rt
                    .block_on(self.store.store(&key.0, key.1, next, &states))
                    .map_err(Retry::Store)?;
            }
            saved.push(key.clone());
            if tpl
                .add_partition_offset(&key.0, key.1, Offset::Offset(part.next_offset))
                .is_ok()
            {
                done.push((key.clone(), part.next_offset));
            }
        }
        Ok(())
    }

    /// Gauges that follow time and state, about once a second.
    pub(super) fn refresh<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, force: bool) {
        if !force && self.last_refresh.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last_refresh = Instant::now();
        let assigned = consumer.assignment().map(|a| a.count()).unwrap_or(0);
        self.health.assigned.store(assigned, Ordering::Relaxed);
        self.metrics.partitions_assigned.set(assigned as i64);
        self.metrics
            .snapshot_age_seconds
            .set(self.last_checkpoint.elapsed().as_secs_f64());
        let now = crate::event::time::EventTime(chrono::Utc::now().timestamp_micros());
        self.processor.refresh_gauges(now);
    }

    /// Drops what belongs to partitions this instance no longer owns.
    pub(super) fn forget(&mut self, keys: &HashSet<PartKey>) {
        for key in keys {
            if let Some(part) = self.parts.remove(key) {
                for t in part.tenants {
                    self.processor.take_tenant(&t);
                    self.tenant_part.remove(&t);
                    self.dirty.remove(&t);
                }
            }
            self.eof.remove(key);
        }
        self.pending
            .retain(|m| !keys.contains(&(m.topic().to_owned(), m.partition())));
    }
}
