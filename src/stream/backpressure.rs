//! When the sink (or Kafka) refuses for now: what failed ([`Retry`]), how long to wait
//! before trying again ([`Backoff`]), and pausing the partitions meanwhile
//! ([`Backpressure`]) so memory stays bounded while the consumer keeps polling (and the
//! group keeps it).

use super::store::StoreError;
use crate::sink::clickhouse::ClickHouseError;
use crate::source::kafka::KafkaOpError;
use crate::telemetry::http::Health;
use crate::telemetry::Metrics;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Something ClickHouse or Kafka refused for now: retried after a pause.
#[derive(Debug)]
pub(super) enum Retry {
    /// A flush's insert.
    ClickHouse(ClickHouseError),
    /// The snapshot store (load or store): nothing is committed past it.
    Store(StoreError),
    Commit(KafkaError),
    Deliver(KafkaOpError),
    /// The findings topic did not acknowledge every finding of a flush.
    Publish(KafkaOpError),
    /// The state could not be serialised: nothing is stored, no offset is committed.
    Snapshot(serde_json::Error),
}

impl std::fmt::Display for Retry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Retry::ClickHouse(e) => write!(f, "{e}"),
            Retry::Store(e) => write!(f, "{e}"),
            Retry::Commit(e) => write!(f, "offset commit: {e}"),
            Retry::Deliver(e) => write!(f, "{e}"),
            Retry::Publish(e) => write!(f, "findings topic: {e}"),
            Retry::Snapshot(e) => write!(f, "state snapshot: {e}"),
        }
    }
}

/// The wait before the next attempt: `start`, doubled on each failure up to `max`.
pub(super) struct Backoff {
    start: Duration,
    max: Duration,
    current: Option<Duration>,
}

impl Backoff {
    /// From `retry_initial_ms` and `retry_max_ms` (each at least 1 ms).
    pub(super) fn new(initial_ms: u64, max_ms: u64) -> Self {
        Self {
            start: Duration::from_millis(initial_ms.max(1)),
            max: Duration::from_millis(max_ms.max(1)),
            current: None,
        }
    }

    /// The wait owed before the next attempt (`None`: nothing failed).
    pub(super) fn pending(&self) -> Option<Duration> {
        self.current
    }

    /// An attempt failed: the next wait, doubled from the last.
    pub(super) fn failed(&mut self) -> Duration {
        let wait = self.current.map_or(self.start, |b| (b * 2).min(self.max));
        self.current = Some(wait);
        wait
    }

    /// Something is not ready yet: wait at least the first step.
    pub(super) fn hold(&mut self) {
        self.current = Some(self.current.unwrap_or(self.start));
    }

    /// An attempt succeeded.
    pub(super) fn reset(&mut self) {
        self.current = None;
    }

    /// The first wait.
    pub(super) fn start(&self) -> Duration {
        self.start
    }

    /// The longest wait.
    pub(super) fn max(&self) -> Duration {
        self.max
    }
}

/// Pausing the assigned partitions while the sink refuses writes, and saying so in the
/// `paused` gauge and `/readyz`.
pub(super) struct Backpressure {
    on: bool,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

impl Backpressure {
    pub(super) fn new(metrics: Arc<Metrics>, health: Arc<Health>) -> Self {
        Self {
            on: false,
            metrics,
            health,
        }
    }

    /// Paused now.
    pub(super) fn is_on(&self) -> bool {
        self.on
    }

    pub(super) fn set<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, on: bool) {
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
