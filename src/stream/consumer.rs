//! The Kafka consumer: its context [`Ctx`] (statistics, errors, and the checkpoint of
//! revoked partitions before they move), and the loop that polls it into the engine
//! until shutdown or, with `--until-end`, until every assigned partition reached its end.

use super::backpressure::{Backoff, Backpressure};
use super::engine::{Engine, PartKey, Step, StreamSummary};
use super::error::StreamError;
use crate::source::kafka::{client_config, shown_error, KafkaOpError};
use crate::telemetry::http::Health;
use crate::telemetry::Metrics;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::ClientContext;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long `--until-end` waits for a first partition assignment.
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);

/// The consumer's context: checkpoints revoked partitions before they move.
pub(super) struct Ctx {
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

/// Who the consumer is in its group.
pub(super) struct Member<'a> {
    pub(super) brokers: &'a str,
    pub(super) properties: &'a BTreeMap<String, String>,
    pub(super) group_id: &'a str,
    /// `group.instance.id` (static membership), when set and not empty.
    pub(super) instance_id: Option<&'a str>,
    pub(super) topics: &'a [String],
}

/// A consumer subscribed to `member.topics`, feeding `engine`.
pub(super) fn subscribe(
    member: &Member<'_>,
    engine: Arc<Mutex<Engine>>,
    metrics: Arc<Metrics>,
) -> Result<BaseConsumer<Ctx>, StreamError> {
    let mut cc = client_config(member.brokers, true, member.properties);
    cc.set("group.id", member.group_id);
    if let Some(id) = member.instance_id.filter(|i| !i.is_empty()) {
        cc.set("group.instance.id", id);
    }
    let consumer: BaseConsumer<Ctx> =
        cc.create_with_context(Ctx { engine, metrics })
            .map_err(|e| {
                StreamError::Kafka(KafkaOpError::Client(shown_error(&e, member.properties)))
            })?;
    let topics: Vec<&str> = member.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(StreamError::Consumer)?;
    Ok(consumer)
}

/// Polls `consumer` into its engine until `stop` is set (or, with `until_end`, every
/// assigned partition of `topics` reached its end), then takes the final checkpoint and leaves the
/// group. Writes the sink refuses are retried with `backoff`, the partitions paused.
pub(super) fn consume(
    consumer: &BaseConsumer<Ctx>,
    stop: &AtomicBool,
    until_end: bool,
    topics: &[String],
    mut backoff: Backoff,
    health: Arc<Health>,
) -> Result<StreamSummary, StreamError> {
    let engine = &consumer.context().engine;
    let metrics = &consumer.context().metrics;
    let mut pause = Backpressure::new(Arc::clone(metrics), health);
    let mut unassigned_since = Some(Instant::now());
    loop {
        if stop.load(Ordering::SeqCst) {
            tracing::info!("shutting down: draining");
            break;
        }
        // Retry what failed, after a pause spent polling (so the group keeps us).
        if let Some(wait) = backoff.pending() {
            let until = Instant::now() + wait;
            while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                    lock(engine).pending.push_back(m.detach());
                }
            }
        }
        // Messages held back, then flush and checkpoint when due.
        let step = {
            let mut e = lock(engine);
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
            if result.is_ok() && (backoff.pending().is_some() || e.flush_due()) {
                result = e.flush();
            }
            if result.is_ok() && e.checkpoint_due() {
                result = e.checkpoint(consumer, None);
            }
            result
        };
        match step {
            Ok(()) => {
                if pause.is_on() {
                    tracing::info!("sink answers again: resuming");
                    pause.set(consumer, false);
                }
                backoff.reset();
                lock(engine).refresh(consumer, false);
            }
            Err(e) => {
                lock(engine).summary.retries += 1;
                metrics.sink_retries.inc();
                let wait = backoff.failed();
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "write failed: partitions paused, retrying");
                pause.set(consumer, true);
                continue;
            }
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let m = m.detach();
                let mut e = lock(engine);
                if let Step::Wait(r) = e.handle(m)? {
                    drop(e);
                    tracing::warn!(error = %r, "cannot load a partition's snapshot yet");
                    backoff.hold();
                    pause.set(consumer, true);
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                if let Ok(a) = consumer.assignment() {
                    let mut e = lock(engine);
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
        if until_end && at_end(consumer, topics, &mut unassigned_since)? {
            break;
        }
    }
    drain(consumer, &backoff);
    consumer.unsubscribe();
    let summary = lock(engine).summary;
    Ok(summary)
}

/// `--until-end`: every assigned partition reached its end and nothing is held back.
/// Fails when no partition was assigned for [`JOIN_TIMEOUT`] (after a checkpoint of
/// what was processed).
fn at_end(
    consumer: &BaseConsumer<Ctx>,
    topics: &[String],
    unassigned_since: &mut Option<Instant>,
) -> Result<bool, StreamError> {
    let engine = &consumer.context().engine;
    let assignment = consumer.assignment().map_err(StreamError::Consumer)?;
    let all: Vec<PartKey> = assignment
        .elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect();
    let e = lock(engine);
    if !all.is_empty() && e.pending.is_empty() && all.iter().all(|k| e.eof.contains(k)) {
        tracing::info!(
            partitions = all.len(),
            "every assigned partition reached its end"
        );
        return Ok(true);
    }
    if !all.is_empty() {
        *unassigned_since = None;
    } else if unassigned_since.get_or_insert_with(Instant::now).elapsed() > JOIN_TIMEOUT {
        drop(e);
        // What was processed is kept: checkpoint before giving up.
        let _ = lock(engine).checkpoint(consumer, None);
        return Err(StreamError::NoAssignment {
            topics: topics.to_vec(),
            secs: JOIN_TIMEOUT.as_secs(),
        });
    }
    Ok(false)
}

/// The final checkpoint, retried until it succeeds (SIGKILL gives up: the next run redoes
/// the work since the last checkpoint).
fn drain(consumer: &BaseConsumer<Ctx>, backoff: &Backoff) {
    let engine = &consumer.context().engine;
    let mut wait = backoff.start();
    loop {
        let result = lock(engine).checkpoint(consumer, None);
        match result {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, "final checkpoint failed; retrying (send SIGKILL to give up: the next run redoes the work since the last checkpoint)");
                let until = Instant::now() + wait;
                while Instant::now() < until {
                    let _ = consumer.poll(Duration::from_millis(50));
                }
                wait = (wait * 2).min(backoff.max());
                lock(engine).summary.retries += 1;
            }
        }
    }
}
