//! The stream mode: a Kafka consumer group in, ClickHouse out, with the same
//! [`Processor`] as the file mode.
//!
//! Delivery: rows are flushed to ClickHouse in batches; at each checkpoint (every
//! `checkpoint_interval_ms`, on partition revoke, on shutdown and at `--until-end`) the
//! batch is flushed, the state of each partition's tenants is stored with the offset it
//! reflects, and only then is that offset committed. The committed offset therefore never
//! passes the stored state: a restart restores the snapshot and consumes from the commit,
//! and everything rewritten since is keyed (findings by event and rule, rollout and agents
//! by key with a version, dead letters by position), so nothing is lost and nothing is
//! doubled. ClickHouse unreachable: the partitions are paused (the consumer keeps polling,
//! so the group keeps it), the write retried with backoff, and consumption resumes.

// The configuration is one for both modes (`crate::config`); kept reachable here.
pub use crate::config;

use crate::event::token::TokenReader;
use crate::pipeline::{Origin, Processor};
use crate::policy;
use crate::sink::clickhouse::{ClickHouse, ClickHouseError, Connection};
use crate::sink::{AgentRow, DeadLetter, RolloutRow, RowSink};
use crate::source::kafka::{client_config, KafkaOpError, KeyedProducer};
use crate::telemetry::Metrics;
use bytes::Bytes;
use config::{Config, ConfigError};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why the stream stopped with an error.
#[derive(Debug, Error)]
pub enum StreamError {
    /// The configuration is unusable (exit 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The policy is unusable (exit 2).
    #[error(transparent)]
    Policy(#[from] policy::PolicyError),
    /// The key set is unusable (exit 2).
    #[error(transparent)]
    Jwks(#[from] crate::event::token::JwksError),
    /// Kafka refused (exit 1).
    #[error(transparent)]
    Kafka(#[from] KafkaOpError),
    /// The consumer failed (exit 1).
    #[error("kafka consumer: {0}")]
    Consumer(KafkaError),
    /// ClickHouse failed where no retry helps (exit 1).
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    /// A stored snapshot could not be read back (exit 1).
    #[error("snapshot of `{topic}` partition {partition} is unreadable: {source}")]
    Snapshot {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Cause.
        source: crate::pipeline::SnapshotError,
    },
    /// `--until-end` waited too long for a partition assignment (exit 1).
    #[error("no partition of {topics:?} was assigned for {secs} s: do the topics exist (tansu does not create them)? Or the group still counts a dead member as owner: set `kafka.instance_id` so a restarted instance takes its place")]
    NoAssignment {
        /// Topics.
        topics: Vec<String>,
        /// Seconds waited.
        secs: u64,
    },
    /// The metrics listener could not bind (exit 1).
    #[error("cannot listen on `{addr}` for metrics: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A runtime could not be started (exit 1).
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl StreamError {
    /// 2 for configuration, 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            StreamError::Config(_) | StreamError::Policy(_) | StreamError::Jwks(_) => 2,
            _ => 1,
        }
    }
}

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
}

/// Rows waiting for the next flush, as NDJSON.
#[derive(Default)]
struct Batch {
    findings: Vec<u8>,
    dead_letters: Vec<u8>,
    rows: usize,
    line: Vec<u8>,
}

impl Batch {
    fn push<T: serde::Serialize>(buf: &mut Vec<u8>, line: &mut Vec<u8>, row: &T) {
        line.clear();
        if serde_json::to_writer(&mut *line, row).is_ok() {
            buf.extend_from_slice(line);
            buf.push(b'\n');
        }
    }

    fn bytes(&self) -> usize {
        self.findings.len() + self.dead_letters.len()
    }

    fn clear(&mut self) {
        self.findings.clear();
        self.dead_letters.clear();
        self.rows = 0;
    }
}

impl RowSink for Batch {
    type Error = std::convert::Infallible;
    fn finding(&mut self, f: &policy::Finding) -> Result<(), Self::Error> {
        Self::push(&mut self.findings, &mut self.line, f);
        self.rows += 1;
        Ok(())
    }
    fn dead_letter(&mut self, d: &DeadLetter) -> Result<(), Self::Error> {
        Self::push(&mut self.dead_letters, &mut self.line, d);
        self.rows += 1;
        Ok(())
    }
    fn snapshot(
        &mut self,
        _: &[RolloutRow],
        _: &[crate::sink::SurfaceRow],
        _: &[AgentRow],
    ) -> Result<(), Self::Error> {
        Ok(())
    }
}

type PartKey = (String, i32);

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
}

/// The tunables of the loop.
struct Knobs {
    batch_rows: usize,
    batch_bytes: usize,
    flush_interval: Duration,
    checkpoint_interval: Duration,
    max_document_bytes: usize,
}

struct Engine {
    processor: Processor,
    ch: ClickHouse,
    rt: Arc<tokio::runtime::Runtime>,
    group_id: String,
    dlq: Option<KeyedProducer>,
    batch: Batch,
    dirty: BTreeSet<String>,
    parts: HashMap<PartKey, Part>,
    tenant_part: HashMap<String, PartKey>,
    pending: VecDeque<OwnedMessage>,
    eof: HashSet<PartKey>,
    last_flush: Instant,
    last_checkpoint: Instant,
    knobs: Knobs,
    summary: StreamSummary,
    metrics: Arc<Metrics>,
    health: Arc<crate::telemetry::http::Health>,
    last_refresh: Instant,
}

/// Something ClickHouse or Kafka refused for now: retried after a pause.
#[derive(Debug)]
enum Retry {
    ClickHouse(ClickHouseError),
    Commit(KafkaError),
    Deliver(KafkaOpError),
    /// The state could not be serialised: nothing is stored, no offset is committed.
    Snapshot(serde_json::Error),
}

impl std::fmt::Display for Retry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Retry::ClickHouse(e) => write!(f, "{e}"),
            Retry::Commit(e) => write!(f, "offset commit: {e}"),
            Retry::Deliver(e) => write!(f, "{e}"),
            Retry::Snapshot(e) => write!(f, "state snapshot: {e}"),
        }
    }
}

/// What handling one message needs next.
enum Step {
    Done,
    /// The partition's snapshot could not be loaded: keep the message and retry.
    Wait(Retry),
}

impl Engine {
    fn handle(&mut self, msg: OwnedMessage) -> Result<Step, StreamError> {
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
        let (bytes, oversized) = if payload.len() > self.knobs.max_document_bytes {
            (
                &payload[..self.knobs.max_document_bytes],
                Some(payload.len()),
            )
        } else {
            (payload, None)
        };
        let dirty = &mut self.dirty;
        let tenant_part = &mut self.tenant_part;
        let part_tenants = &mut part.tenants;
        let mut on_tenant = |t: &str| {
            if !dirty.contains(t) {
                dirty.insert(t.to_owned());
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
        let Ok(outcome) = self.processor.process_observed(
            origin,
            bytes,
            oversized,
            &mut self.batch,
            &mut on_tenant,
        );
        self.summary.events += u64::from(outcome.events);
        self.summary.findings += u64::from(outcome.findings);
        self.summary.dead_letters += u64::from(outcome.dead_letters);
        if outcome.dead_letters > 0 {
            if let Some(dlq) = &self.dlq {
                dlq.send(Some(position.as_bytes()), payload)?;
            }
        }
        Ok(Step::Done)
    }

    fn load_partition(&mut self, key: &PartKey) -> Result<(), LoadError> {
        let stored = self
            .rt
            .block_on(self.ch.load_snapshot(&self.group_id, &key.0, key.1))
            .map_err(|e| LoadError::Retry(Retry::ClickHouse(e)))?;
        let mut part = Part {
            loaded: true,
            committed: -1,
            ..Part::default()
        };
        if let Some(s) = stored {
            let tenants = self.processor.restore_json(&s.state).map_err(|source| {
                LoadError::Fatal(StreamError::Snapshot {
                    topic: key.0.clone(),
                    partition: key.1,
                    source,
                })
            })?;
            let next = i64::try_from(s.next_offset).unwrap_or(i64::MAX);
            part.skip_below = next;
            part.next_offset = next;
            for t in tenants {
                self.tenant_part.insert(t.clone(), key.clone());
                part.tenants.insert(t);
            }
            tracing::info!(topic = %key.0, partition = key.1, next_offset = next, tenants = part.tenants.len(), "state restored from snapshot");
        }
        self.parts.insert(key.clone(), part);
        Ok(())
    }

    fn flush_due(&self) -> bool {
        self.batch.rows >= self.knobs.batch_rows
            || self.batch.bytes() >= self.knobs.batch_bytes
            || ((self.batch.rows > 0 || !self.dirty.is_empty())
                && self.last_flush.elapsed() >= self.knobs.flush_interval)
    }

    fn checkpoint_due(&self) -> bool {
        self.last_checkpoint.elapsed() >= self.knobs.checkpoint_interval
            && self
                .parts
                .values()
                .any(|p| p.loaded && p.next_offset > p.committed)
    }

    /// Writes the batch and the changed tenants' rollout and agents rows.
    fn flush(&mut self) -> Result<(), Retry> {
        if self.batch.rows == 0 && self.dirty.is_empty() {
            self.last_flush = Instant::now();
            return Ok(());
        }
        let tenants: Vec<String> = self.dirty.iter().cloned().collect();
        let mut rollout = Vec::new();
        let mut agents = Vec::new();
        let mut surfaces = Vec::new();
        let mut line = Vec::new();
        for r in self.processor.rollout_rows_for(&tenants) {
            Batch::push(&mut rollout, &mut line, &r);
        }
        for r in self.processor.surface_rows_for(&tenants) {
            Batch::push(&mut surfaces, &mut line, &r);
        }
        for a in self.processor.agent_rows_for(&tenants) {
            Batch::push(&mut agents, &mut line, &a);
        }
        let findings = Bytes::copy_from_slice(&self.batch.findings);
        let dead = Bytes::copy_from_slice(&self.batch.dead_letters);
        let ch = &self.ch;
        let m = &self.metrics;
        let timed = |table: &'static str, cols: Option<&'static str>, body: Bytes| async move {
            let t = Instant::now();
            let r = ch.insert(table, cols, body).await;
            m.insert_seconds.observe(t.elapsed().as_secs_f64());
            r
        };
        let result = self.rt.block_on(async {
            timed("findings", None, findings).await?;
            timed(
                "dead_letters",
                Some(crate::sink::clickhouse::DEAD_LETTER_COLUMNS),
                dead,
            )
            .await?;
            timed("rollout_daily", None, Bytes::from(rollout)).await?;
            timed("rollout_surfaces", None, Bytes::from(surfaces)).await?;
            timed("agents", None, Bytes::from(agents)).await
        });
        if let Err(e) = result {
            self.metrics.sink_failures.inc();
            self.health.sink_ok.store(false, Ordering::Relaxed);
            return Err(Retry::ClickHouse(e));
        }
        self.health.sink_ok.store(true, Ordering::Relaxed);
        self.metrics.batch_rows.observe(self.batch.rows as f64);
        self.batch.clear();
        self.dirty.clear();
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Flush, store the state of `only` (or every) partition with progress, commit their
    /// offsets.
    fn checkpoint(
        &mut self,
        consumer: &BaseConsumer<Ctx>,
        only: Option<&HashSet<PartKey>>,
    ) -> Result<(), Retry> {
        self.flush()?;
        if let Some(dlq) = &self.dlq {
            dlq.flush(Duration::from_secs(30)).map_err(Retry::Deliver)?;
        }
        let mut tpl = TopicPartitionList::new();
        let mut done = Vec::new();
        for (key, part) in &self.parts {
            if !part.loaded
                || part.next_offset <= part.committed
                || only.is_some_and(|o| !o.contains(key))
            {
                continue;
            }
            let tenants: Vec<String> = part.tenants.iter().cloned().collect();
            // A checkpoint that cannot store its state must not commit its offset.
            let json = self.processor.snapshot_json(&tenants).map_err(|e| {
                self.metrics.sink_failures.inc();
                Retry::Snapshot(e)
            })?;
            let next = u64::try_from(part.next_offset).unwrap_or(0);
            self.rt
                .block_on(
                    self.ch
                        .save_snapshot(&self.group_id, &key.0, key.1, next, &json),
                )
                .map_err(Retry::ClickHouse)?;
            if tpl
                .add_partition_offset(&key.0, key.1, Offset::Offset(part.next_offset))
                .is_ok()
            {
                done.push((key.clone(), part.next_offset));
            }
        }
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

    /// Gauges that follow time and state, about once a second.
    fn refresh(&mut self, consumer: &BaseConsumer<Ctx>, force: bool) {
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
    fn forget(&mut self, keys: &HashSet<PartKey>) {
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

/// Pausing the assigned partitions while the sink refuses writes, and saying so in the
/// `paused` gauge and `/readyz`.
struct Backpressure {
    on: bool,
    metrics: Arc<Metrics>,
    health: Arc<crate::telemetry::http::Health>,
}

impl Backpressure {
    fn set(&mut self, consumer: &BaseConsumer<Ctx>, on: bool) {
        if self.on == on {
            return;
        }
        if let Ok(a) = consumer.assignment() {
            let _ = if on {
                consumer.pause(&a)
            } else {
                consumer.resume(&a)
            };
        }
        self.on = on;
        self.metrics.paused.set(i64::from(on));
        self.health.paused.store(on, Ordering::Relaxed);
    }
}

enum LoadError {
    Retry(Retry),
    Fatal(StreamError),
}

/// The consumer's context: checkpoints revoked partitions before they move.
struct Ctx {
    engine: Arc<Mutex<Engine>>,
    metrics: Arc<Metrics>,
}

fn lock(m: &Mutex<Engine>) -> MutexGuard<'_, Engine> {
    // A panic while the engine was held leaves it usable: its state is only ever
    // changed through complete steps.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ClientContext for Ctx {
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                // librdkafka lists an internal partition -1; lag -1 means unknown.
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[topic, &partition.to_string()])
                        .set(p.consumer_lag);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Reaching a partition's end is news, not an error; a broker that went away is
        // retried by librdkafka and is a warning until it costs data.
        match error {
            KafkaError::PartitionEOF(_)
            | KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF) => {
                tracing::debug!(reason, "partition end")
            }
            other => tracing::warn!(error = %other, reason, "kafka"),
        }
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let keys: HashSet<PartKey> = tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_owned(), e.partition()))
                .collect();
            let mut engine = lock(&self.engine);
            if let Err(e) = engine.checkpoint(consumer, Some(&keys)) {
                tracing::warn!(error = %e, "cannot checkpoint revoked partitions; their next owner redoes the work since the last checkpoint");
            }
            engine.forget(&keys);
            tracing::info!(partitions = keys.len(), "partitions revoked");
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            tracing::info!(partitions = tpl.count(), "partitions assigned");
        }
    }
}

/// Runs the stream until SIGINT/SIGTERM (or, with `until_end`, until every assigned
/// partition reached its end), then checkpoints and leaves the group.
pub fn run(
    config: &Config,
    config_name: &str,
    until_end: bool,
    shutdown: Arc<AtomicBool>,
) -> Result<StreamSummary, StreamError> {
    let policies = config
        .pipeline
        .chosen_policies()
        .iter()
        .map(|p| policy::load(p).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let tokens = match &config.pipeline.jwks {
        Some(path) => {
            TokenReader::with_jwks(crate::event::token::DEFAULT_TOKEN_CACHE_ENTRIES, path)?
        }
        None => TokenReader::new(crate::event::token::DEFAULT_TOKEN_CACHE_ENTRIES),
    };
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(crate::telemetry::http::Health::default());
    let processor = Processor::with_policies(policies, tokens, Arc::clone(&metrics))
        .with_replay_window_days(config.pipeline.replay_window_days)
        .with_default_tenant(config.pipeline.tenant.clone());
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(StreamError::Runtime)?,
    );
    {
        let flag = Arc::clone(&shutdown);
        rt.spawn(async move {
            wait_for_signal().await;
            flag.store(true, Ordering::SeqCst);
        });
    }
    if !config.metrics.listen.trim().is_empty() {
        let addr: std::net::SocketAddr = config.metrics.listen.trim().parse().map_err(|e| {
            StreamError::Config(ConfigError::Invalid {
                path: config_name.to_owned(),
                message: format!("`metrics.listen` `{}`: {e}", config.metrics.listen),
            })
        })?;
        let bound = rt
            .block_on(crate::telemetry::http::serve(
                addr,
                Arc::clone(&metrics),
                Arc::clone(&health),
            ))
            .map_err(|e| StreamError::Listen {
                addr: config.metrics.listen.clone(),
                source: e,
            })?;
        tracing::info!(%bound, "metrics on /metrics, /healthz, /readyz");
    }
    let conn = Connection {
        url: config.clickhouse.url.clone(),
        database: config.clickhouse.database.clone(),
        user: config.clickhouse.user.clone(),
        password: config.clickhouse_password(config_name)?,
        validation: config.clickhouse.validation,
        timeout: Duration::from_millis(config.clickhouse.request_timeout_ms),
    };
    let ch = ClickHouse::new(&conn);
    let props = config.kafka_properties(config_name)?;
    let dlq = match &config.kafka.dead_letter_topic {
        Some(t) if !t.is_empty() => Some(KeyedProducer::new(&config.kafka.brokers, &props, t)?),
        _ => None,
    };
    let engine = Arc::new(Mutex::new(Engine {
        processor,
        ch,
        rt: Arc::clone(&rt),
        group_id: config.kafka.group_id.clone(),
        dlq,
        batch: Batch::default(),
        dirty: BTreeSet::new(),
        parts: HashMap::new(),
        tenant_part: HashMap::new(),
        pending: VecDeque::new(),
        eof: HashSet::new(),
        last_flush: Instant::now(),
        last_checkpoint: Instant::now(),
        metrics: Arc::clone(&metrics),
        health: Arc::clone(&health),
        last_refresh: Instant::now(),
        knobs: Knobs {
            batch_rows: config.clickhouse.batch_rows,
            batch_bytes: config.clickhouse.batch_bytes,
            flush_interval: Duration::from_millis(config.clickhouse.flush_interval_ms),
            checkpoint_interval: Duration::from_millis(config.pipeline.checkpoint_interval_ms),
            max_document_bytes: config.pipeline.max_document_bytes,
        },
        summary: StreamSummary::default(),
    }));
    let mut cc = client_config(&config.kafka.brokers, true, &props);
    cc.set("group.id", &config.kafka.group_id);
    if let Some(id) = config
        .kafka
        .instance_id
        .as_deref()
        .filter(|i| !i.is_empty())
    {
        cc.set("group.instance.id", id);
    }
    let consumer: BaseConsumer<Ctx> = cc
        .create_with_context(Ctx {
            engine: Arc::clone(&engine),
            metrics: Arc::clone(&metrics),
        })
        .map_err(|e| StreamError::Kafka(KafkaOpError::Client(e)))?;
    let topics: Vec<&str> = config.kafka.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(StreamError::Consumer)?;
    tracing::info!(topics = ?topics, group = %config.kafka.group_id, until_end, "consuming");

    let backoff_start = Duration::from_millis(config.pipeline.retry_initial_ms.max(1));
    let backoff_max = Duration::from_millis(config.pipeline.retry_max_ms.max(1));
    let mut backoff: Option<Duration> = None;
    let mut pause = Backpressure {
        on: false,
        metrics: Arc::clone(&metrics),
        health: Arc::clone(&health),
    };
    let join_timeout = Duration::from_secs(120);
    let mut unassigned_since = Some(Instant::now());
    loop {
        if shutdown.load(Ordering::SeqCst) {
            tracing::info!("shutting down: draining");
            break;
        }
        // Retry what failed, after a pause spent polling (so the group keeps us).
        if let Some(wait) = backoff {
            let until = Instant::now() + wait;
            while Instant::now() < until && !shutdown.load(Ordering::SeqCst) {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                    lock(&engine).pending.push_back(m.detach());
                }
            }
        }
        // Messages held back, then flush and checkpoint when due.
        let step = {
            let mut e = lock(&engine);
            let mut result = Ok(());
            while let Some(m) = e.pending.pop_front() {
                match e.handle(m)? {
                    Step::Done => {}
                    Step::Wait(r) => {
                        result = Err(r);
                        break;
                    }
                }
            }
            if result.is_ok() && (backoff.is_some() || e.flush_due()) {
                result = e.flush();
            }
            if result.is_ok() && e.checkpoint_due() {
                result = e.checkpoint(&consumer, None);
            }
            result
        };
        match step {
            Ok(()) => {
                if pause.on {
                    tracing::info!("sink answers again: resuming");
                    pause.set(&consumer, false);
                }
                backoff = None;
                lock(&engine).refresh(&consumer, false);
            }
            Err(e) => {
                lock(&engine).summary.retries += 1;
                metrics.sink_retries.inc();
                let wait = backoff.map_or(backoff_start, |b| (b * 2).min(backoff_max));
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "write failed: partitions paused, retrying");
                pause.set(&consumer, true);
                backoff = Some(wait);
                continue;
            }
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let m = m.detach();
                let mut e = lock(&engine);
                if let Step::Wait(r) = e.handle(m)? {
                    drop(e);
                    tracing::warn!(error = %r, "cannot load a partition's snapshot yet");
                    backoff = Some(backoff.unwrap_or(backoff_start));
                    pause.set(&consumer, true);
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                if let Ok(a) = consumer.assignment() {
                    let mut e = lock(&engine);
                    for el in a.elements() {
                        if el.partition() == p {
                            e.eof.insert((el.topic().to_owned(), p));
                        }
                    }
                }
            }
            Some(Err(err)) => tracing::warn!(error = %err, "kafka"),
            None => {}
        }
        if until_end {
            let assignment = consumer.assignment().map_err(StreamError::Consumer)?;
            let all: Vec<PartKey> = assignment
                .elements()
                .iter()
                .map(|e| (e.topic().to_owned(), e.partition()))
                .collect();
            let e = lock(&engine);
            if !all.is_empty() && e.pending.is_empty() && all.iter().all(|k| e.eof.contains(k)) {
                tracing::info!(
                    partitions = all.len(),
                    "every assigned partition reached its end"
                );
                break;
            }
            if !all.is_empty() {
                unassigned_since = None;
            } else if unassigned_since.get_or_insert_with(Instant::now).elapsed() > join_timeout {
                drop(e);
                // What was processed is kept: checkpoint before giving up.
                let _ = lock(&engine).checkpoint(&consumer, None);
                return Err(StreamError::NoAssignment {
                    topics: config.kafka.topics.clone(),
                    secs: join_timeout.as_secs(),
                });
            }
        }
    }
    // Drain: the final checkpoint, retried until it succeeds or a second signal.
    let mut wait = backoff_start;
    loop {
        let result = lock(&engine).checkpoint(&consumer, None);
        match result {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, "final checkpoint failed; retrying (send SIGKILL to give up: the next run redoes the work since the last checkpoint)");
                let until = Instant::now() + wait;
                while Instant::now() < until {
                    let _ = consumer.poll(Duration::from_millis(50));
                }
                wait = (wait * 2).min(backoff_max);
                lock(&engine).summary.retries += 1;
            }
        }
    }
    consumer.unsubscribe();
    let summary = lock(&engine).summary;
    Ok(summary)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
