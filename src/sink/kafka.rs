//! Findings to a Kafka topic (Azure Event Hubs' Kafka endpoint, and from there Microsoft
//! Sentinel): every finding as the line `findings.ndjson` holds, the same serializer and
//! the same scrubbing, keyed by its tenant id, through an idempotent producer
//! (`enable.idempotence`, `acks=all`).
//!
//! Lines are queued with [`FindingsTopic::send_lines`] and acknowledged by
//! [`FindingsTopic::flush`], which awaits the delivery of every line queued since the last
//! flush: the stream mode flushes before it commits an offset, so a finding is never lost
//! (after a crash it may be published again: `event_id`, `rule_id` and `policy_version`
//! are the key to remove repeats by); the file mode flushes at the end, and fails when a
//! delivery failed.

use crate::source::kafka::{client_config, shown_error, KafkaOpError};
use crate::telemetry::Metrics;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Producer settings mfa-audit sets unless the configuration overrides them: a message
/// not acknowledged within a minute is a delivery failure (librdkafka's default is five),
/// and lines wait up to 20 ms to fill a batch.
pub const PRODUCER_DEFAULTS: [(&str, &str); 2] =
    [("message.timeout.ms", "60000"), ("linger.ms", "20")];

/// Settings no configuration overrides: every message written once per send, and
/// acknowledged by every in-sync replica.
pub const PRODUCER_FORCED: [(&str, &str); 2] = [("enable.idempotence", "true"), ("acks", "all")];

/// Deliveries awaited at most at once while lines are queued: past this many, the oldest
/// is awaited first (bounded memory on a long file run).
const MAX_PENDING: usize = 16_384;

/// How long the start-up check waits for the topic's metadata.
const METADATA_TIMEOUT: Duration = Duration::from_secs(15);

/// Where findings are published: resolved from `[sinks.kafka]` over `[kafka]`.
#[derive(Clone)]
pub struct TopicSettings {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// librdkafka properties, secrets from the environment filled in.
    pub properties: BTreeMap<String, String>,
    /// The topic.
    pub topic: String,
}

impl std::fmt::Debug for TopicSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicSettings")
            .field("brokers", &self.brokers)
            .field("properties", &self.properties.keys().collect::<Vec<_>>())
            .field("topic", &self.topic)
            .finish()
    }
}

/// The producer of the findings topic and the deliveries it waits for.
pub struct FindingsTopic {
    producer: FutureProducer,
    topic: String,
    /// Deliveries not awaited yet, oldest first.
    pending: VecDeque<DeliveryFuture>,
    /// Awaits delivery futures (they complete on librdkafka's thread; nothing here does
    /// I/O).
    rt: tokio::runtime::Runtime,
    /// Acknowledged by the broker, in all.
    published: u64,
    /// The first delivery that failed since the last flush.
    failed: Option<KafkaError>,
    metrics: Arc<Metrics>,
}

/// The partner tenant of a finding's line (its `tenant_id`, as written).
#[derive(serde::Deserialize)]
struct Key<'a> {
    #[serde(borrow)]
    tenant_id: std::borrow::Cow<'a, str>,
}

impl FindingsTopic {
    /// A producer for `settings.topic`, which must exist on the brokers (checked here, so
    /// a missing topic is an error at start-up rather than a minute of timeouts).
    pub fn new(settings: &TopicSettings, metrics: Arc<Metrics>) -> Result<Self, KafkaOpError> {
        let props = &settings.properties;
        let producer: FutureProducer = producer_config(&settings.brokers, props)
            .create()
            .map_err(|e| KafkaOpError::Client(shown_error(&e, props)))?;
        let topic = settings.topic.clone();
        check_topic(&producer, &topic, props)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| KafkaOpError::Client(format!("cannot start a runtime: {e}")))?;
        Ok(Self {
            producer,
            topic,
            pending: VecDeque::new(),
            rt,
            published: 0,
            failed: None,
            metrics,
        })
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Findings acknowledged by the broker since the start.
    pub fn published(&self) -> u64 {
        self.published
    }

    /// Queues every line of `ndjson` (lines of `findings.ndjson`), each keyed by its
    /// `tenant_id`. Waits for room when librdkafka's queue is full. An error here is a
    /// message librdkafka refused outright (too large, unknown topic).
    pub fn send_lines(&mut self, ndjson: &[u8]) -> Result<(), KafkaOpError> {
        for line in ndjson.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            self.send(line)?;
        }
        Ok(())
    }

    fn send(&mut self, line: &[u8]) -> Result<(), KafkaOpError> {
        let key = serde_json::from_slice::<Key<'_>>(line).ok();
        let key = key.as_ref().map(|k| k.tenant_id.as_bytes());
        loop {
            let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic).payload(line);
            if let Some(k) = key {
                record = record.key(k);
            }
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    self.pending.push_back(delivery);
                    if self.pending.len() > MAX_PENDING {
                        self.await_oldest();
                    }
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if self.pending.is_empty() {
                        std::thread::sleep(Duration::from_millis(10));
                    } else {
                        self.await_oldest();
                    }
                }
                Err((source, _)) => {
                    self.metrics.findings_publish_errors.inc();
                    return Err(KafkaOpError::Deliver {
                        topic: self.topic.clone(),
                        source,
                    });
                }
            }
        }
    }

    /// Awaits the oldest delivery and counts it.
    fn await_oldest(&mut self) {
        if let Some(delivery) = self.pending.pop_front() {
            let outcome = self.rt.block_on(delivery);
            self.count(outcome);
        }
    }

    fn count(
        &mut self,
        outcome: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, impl Sized>,
    ) {
        match outcome {
            Ok(Ok(_)) => {
                self.published += 1;
                self.metrics.findings_published.inc();
            }
            Ok(Err((e, _))) => {
                self.metrics.findings_publish_errors.inc();
                self.failed.get_or_insert(e);
            }
            // The producer went away with the message (it is not dropped while we hold
            // it): a failure all the same.
            Err(_) => {
                self.metrics.findings_publish_errors.inc();
                self.failed.get_or_insert(KafkaError::Canceled);
            }
        }
    }

    /// Awaits the delivery of every line queued since the last flush. `Err` when any of
    /// them failed (after librdkafka's own retries, within `message.timeout.ms`): the
    /// caller publishes them again (the stream retries its flush; the file mode fails).
    pub fn flush(&mut self) -> Result<(), KafkaOpError> {
        while !self.pending.is_empty() {
            self.await_oldest();
        }
        match self.failed.take() {
            None => Ok(()),
            Some(source) => Err(KafkaOpError::Deliver {
                topic: self.topic.clone(),
                source,
            }),
        }
    }
}

impl Drop for FindingsTopic {
    fn drop(&mut self) {
        // Whatever is still queued (a run that failed) gets a short chance to leave.
        let _ = self.producer.flush(Duration::from_secs(5));
    }
}

/// The producer's settings: the brokers and the user's properties (as the input's
/// consumer gets them), over [`PRODUCER_DEFAULTS`], under [`PRODUCER_FORCED`].
pub fn producer_config(brokers: &str, properties: &BTreeMap<String, String>) -> ClientConfig {
    let mut c = client_config(brokers, false, properties);
    for (k, v) in PRODUCER_DEFAULTS {
        if !properties.contains_key(k) {
            c.set(k, v);
        }
    }
    for (k, v) in PRODUCER_FORCED {
        c.set(k, v);
    }
    c
}

/// Fails unless the brokers know `topic` (tansu and Event Hubs do not create topics on
/// first use); says why when the brokers cannot be reached.
fn check_topic(
    producer: &FutureProducer,
    topic: &str,
    props: &BTreeMap<String, String>,
) -> Result<(), KafkaOpError> {
    let metadata = producer
        .client()
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .map_err(|e| {
            KafkaOpError::Topic(format!(
                "the findings topic `{topic}`: no answer from the brokers: {}",
                shown_error(&e, props)
            ))
        })?;
    let known = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .is_some_and(|t| t.error().is_none() && !t.partitions().is_empty());
    if known {
        Ok(())
    } else {
        Err(KafkaOpError::Topic(format!(
            "the findings topic `{topic}` does not exist on the brokers: create it first (an event hub of that name on Azure Event Hubs; `kafka-topics --create`, or on tansu `tansu topic create`)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotence_and_acks_cannot_be_turned_off() {
        let props = BTreeMap::from([
            ("enable.idempotence".to_owned(), "false".to_owned()),
            ("acks".to_owned(), "1".to_owned()),
            ("linger.ms".to_owned(), "5".to_owned()),
            ("security.protocol".to_owned(), "SASL_SSL".to_owned()),
        ]);
        let c = producer_config("ns.servicebus.windows.net:9093", &props);
        assert_eq!(c.get("enable.idempotence"), Some("true"));
        assert_eq!(c.get("acks"), Some("all"));
        // The user's other settings stay, and the transport is the input's.
        assert_eq!(c.get("linger.ms"), Some("5"));
        assert_eq!(c.get("message.timeout.ms"), Some("60000"));
        assert_eq!(c.get("ssl.ca.location"), Some("probe"));
        assert_eq!(
            c.get("bootstrap.servers"),
            Some("ns.servicebus.windows.net:9093")
        );
    }

    fn line(tenant: &str, n: u32) -> String {
        format!("{{\"event_id\":\"e{n}\",\"tenant_id\":\"{tenant}\",\"rule_id\":\"R\"}}\n")
    }

    /// librdkafka's in-process mock broker (on 127.0.0.1): deliveries acknowledged, then
    /// refused on demand.
    #[test]
    fn a_flush_awaits_every_delivery_and_fails_when_one_failed() {
        use rdkafka::mocking::MockCluster;
        use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("findings", 3, 1).unwrap();
        let metrics = Arc::new(Metrics::new());
        let settings = TopicSettings {
            brokers: mock.bootstrap_servers(),
            properties: BTreeMap::from([("message.timeout.ms".to_owned(), "5000".to_owned())]),
            topic: "findings".to_owned(),
        };
        let mut topic = FindingsTopic::new(&settings, Arc::clone(&metrics)).unwrap();
        let batch: String = (0..50).map(|n| line(&format!("t{}", n % 4), n)).collect();
        topic.send_lines(batch.as_bytes()).unwrap();
        topic.flush().unwrap();
        assert_eq!(topic.published(), 50);
        assert_eq!(metrics.findings_published.get(), 50);
        // The broker refuses the next produce requests: the flush says so, and counts.
        mock.request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 16],
        );
        topic.send_lines(line("t1", 99).as_bytes()).unwrap();
        let e = topic.flush().unwrap_err().to_string();
        assert!(e.contains("findings"), "{e}");
        assert_eq!(topic.published(), 50);
        assert!(metrics.findings_publish_errors.get() >= 1);
        // A topic the brokers do not know is refused at start.
        let mut missing = settings.clone();
        missing.topic = "no-such-topic".to_owned();
        mock.topic_error(
            "no-such-topic",
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
        )
        .unwrap();
        let e = FindingsTopic::new(&missing, metrics)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn the_key_is_the_tenant_id_as_written() {
        let line = br#"{"event_id":"e","tenant_id":"t-\"1","rule_id":"R"}"#;
        let k: Key<'_> = serde_json::from_slice(line).unwrap();
        assert_eq!(k.tenant_id, "t-\"1");
    }
}
