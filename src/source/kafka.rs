//! Kafka: client settings, the keyed producer (`mfa-audit produce`) and topic creation.
//! The consumer itself lives in [`crate::stream`], which owns its checkpoints.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::collections::BTreeMap;
use std::time::Duration;
use thiserror::Error;

/// Consumer settings mfa-audit sets unless the configuration overrides them: fetch sizes
/// measured against tansu (13.6k msg/s with librdkafka's defaults, 35.6k msg/s with
/// these), no auto-commit (offsets are committed at checkpoints), partition EOF events
/// (for `--until-end`), statistics every 5 s (consumer lag per partition).
pub const CONSUMER_DEFAULTS: [(&str, &str); 9] = [
    ("statistics.interval.ms", "5000"),
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("auto.offset.reset", "earliest"),
    ("enable.partition.eof", "true"),
    ("fetch.min.bytes", "1000000"),
    ("max.partition.fetch.bytes", "10485760"),
    ("fetch.wait.max.ms", "100"),
    ("session.timeout.ms", "10000"),
];

/// Whether a librdkafka property holds a secret, so its value must come from the
/// environment (`kafka.properties_env`) and is never printed: passwords, passphrases,
/// private keys and their PEM text, OAUTHBEARER and JAAS configurations.
pub fn is_secret_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "passphrase", "private", "key.pem"]
        .iter()
        .any(|word| key.contains(word))
        || key.starts_with("sasl.oauthbearer.config")
        || key == "sasl.jaas.config"
}

/// A librdkafka error as it may be printed: a refused property shows its key and
/// librdkafka's reason, never its value (it may be a secret from `properties_env`), and
/// no message shows the value of a secret property.
pub fn shown_error(e: &KafkaError, properties: &BTreeMap<String, String>) -> String {
    let text = match e {
        KafkaError::ClientConfig(_, desc, key, value) => {
            let desc = scrub(desc, value);
            format!("librdkafka refused property `{key}` (value not shown): {desc}")
        }
        other => other.to_string(),
    };
    scrub_secrets(text, properties)
}

/// `text` with every occurrence of `secret` replaced.
fn scrub(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "[not shown]")
    }
}

/// A client context that logs librdkafka's errors and keeps the last one, so a failed
/// operation can say why (a TLS handshake refused, a connection refused) instead of only
/// that it timed out.
#[derive(Debug, Default)]
pub struct Witness {
    last: std::sync::Mutex<Option<String>>,
}

impl Witness {
    /// librdkafka's last error reason, if any.
    pub fn last(&self) -> Option<String> {
        self.last.lock().ok().and_then(|l| l.clone())
    }
}

impl Witness {
    fn keep(&self, reason: &str) {
        if let Ok(mut last) = self.last.lock() {
            *last = Some(reason.to_owned());
        }
    }
}

impl rdkafka::ClientContext for Witness {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                tracing::error!("librdkafka: {fac} {message}");
                self.keep(message);
            }
            L::Warning => tracing::warn!("librdkafka: {fac} {message}"),
            L::Notice | L::Info => tracing::info!("librdkafka: {fac} {message}"),
            L::Debug => tracing::debug!("librdkafka: {fac} {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "kafka");
        self.keep(reason);
    }
}

impl rdkafka::producer::ProducerContext for Witness {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// Why the brokers cannot be reached with these settings, if they cannot: a metadata
/// request (waiting up to `timeout`) and librdkafka's last error. `None`: they answer.
pub fn diagnose(
    brokers: &str,
    properties: &BTreeMap<String, String>,
    timeout: Duration,
) -> Option<String> {
    let producer: BaseProducer<Witness> =
        match client_config(brokers, false, properties).create_with_context(Witness::default()) {
            Ok(p) => p,
            Err(e) => return Some(shown_error(&e, properties)),
        };
    let answer = producer.client().fetch_metadata(None, timeout);
    producer.poll(Duration::ZERO);
    let why = producer.context().last();
    match (answer, why) {
        (Ok(_), _) => None,
        (Err(_), Some(reason)) => Some(scrub_secrets(reason, properties)),
        (Err(e), None) => Some(shown_error(&e, properties)),
    }
}

/// `text` without the value of any secret property.
fn scrub_secrets(text: String, properties: &BTreeMap<String, String>) -> String {
    properties
        .iter()
        .filter(|(k, v)| is_secret_property(k) && !v.is_empty())
        .fold(text, |t, (_, v)| scrub(&t, v))
}

/// A Kafka operation failed.
#[derive(Debug, Error)]
pub enum KafkaOpError {
    /// Creating a client failed (a bad property, usually); the message is
    /// [`shown_error`]'s, without any property's value.
    #[error("cannot create a Kafka client: {0}")]
    Client(String),
    /// A topic cannot be used as configured (it does not exist, the brokers do not
    /// answer about it).
    #[error("{0}")]
    Topic(String),
    /// Creating a topic failed.
    #[error("cannot create topic `{topic}`: {source}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The cause.
        source: KafkaError,
    },
    /// A message could not be delivered.
    #[error("cannot deliver to `{topic}`: {source}")]
    Deliver {
        /// The topic.
        topic: String,
        /// The cause.
        source: KafkaError,
    },
}

/// A client configuration: the brokers, then our defaults (when `consumer`), then the
/// user's properties (which win).
pub fn client_config(
    brokers: &str,
    consumer: bool,
    properties: &BTreeMap<String, String>,
) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    if consumer {
        for (k, v) in CONSUMER_DEFAULTS {
            c.set(k, v);
        }
    }
    for (k, v) in properties {
        c.set(k, v);
    }
    // OpenSSL is built in (`ssl-vendored`), so its compiled-in CA folder is not the
    // system's: without a CA of the user's, librdkafka probes the usual locations of the
    // system bundle (Debian's `ca-certificates`), which public brokers (Event Hubs) need.
    let tls = properties
        .get("security.protocol")
        .is_some_and(|p| p.to_ascii_uppercase().contains("SSL"));
    if tls && !properties.contains_key("ssl.ca.location") && !properties.contains_key("ssl.ca.pem")
    {
        c.set("ssl.ca.location", "probe");
    }
    c
}

/// Creates `topic` with `partitions` partitions and the topic settings `settings` (such
/// as `retention.ms`) unless it exists (tansu does not create topics on first use).
pub async fn ensure_topic(
    brokers: &str,
    properties: &BTreeMap<String, String>,
    topic: &str,
    partitions: i32,
    settings: &[(String, String)],
) -> Result<bool, KafkaOpError> {
    let admin: AdminClient<DefaultClientContext> = client_config(brokers, false, properties)
        .create()
        .map_err(|e| KafkaOpError::Client(shown_error(&e, properties)))?;
    let new = settings.iter().fold(
        NewTopic::new(topic, partitions, TopicReplication::Fixed(1)),
        |t, (k, v)| t.set(k, v),
    );
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results =
        admin
            .create_topics([&new], &opts)
            .await
            .map_err(|source| KafkaOpError::CreateTopic {
                topic: topic.to_owned(),
                source,
            })?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(true),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) | None => Ok(false),
        Some(Err((_, code))) => Err(KafkaOpError::CreateTopic {
            topic: topic.to_owned(),
            source: KafkaError::AdminOp(code),
        }),
    }
}

/// Sends messages to one topic, keyed, and waits for every delivery at the end.
pub struct KeyedProducer {
    producer: BaseProducer,
    topic: String,
}

impl KeyedProducer {
    /// A producer for `topic` (idempotent, so a retry does not write a message twice).
    pub fn new(
        brokers: &str,
        properties: &BTreeMap<String, String>,
        topic: &str,
    ) -> Result<Self, KafkaOpError> {
        let mut config = client_config(brokers, false, properties);
        config
            .set("enable.idempotence", "true")
            .set("linger.ms", "20")
            .set("message.timeout.ms", "60000");
        let producer = config
            .create()
            .map_err(|e| KafkaOpError::Client(shown_error(&e, properties)))?;
        Ok(Self {
            producer,
            topic: topic.to_owned(),
        })
    }

    /// Queues one message; waits for room when the local queue is full.
    pub fn send(&self, key: Option<&[u8]>, payload: &[u8]) -> Result<(), KafkaOpError> {
        loop {
            let mut record = BaseRecord::<[u8], [u8]>::to(&self.topic).payload(payload);
            if let Some(k) = key {
                record = record.key(k);
            }
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((source, _)) => {
                    return Err(KafkaOpError::Deliver {
                        topic: self.topic.clone(),
                        source,
                    })
                }
            }
        }
    }

    /// Serves delivery reports.
    pub fn poll(&self) {
        self.producer.poll(Duration::ZERO);
    }

    /// Waits until every queued message was delivered (or `timeout` passed).
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaOpError> {
        self.producer
            .flush(timeout)
            .map_err(|source| KafkaOpError::Deliver {
                topic: self.topic.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaConfRes;

    #[test]
    fn secret_properties_are_recognised() {
        for k in [
            "sasl.password",
            "ssl.key.password",
            "ssl.key.pem",
            "sasl.oauthbearer.assertion.private.key.pem",
            "sasl.oauthbearer.assertion.private.key.passphrase",
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.config",
            "sasl.jaas.config",
            "SSL.Keystore.Password",
        ] {
            assert!(is_secret_property(k), "{k}");
        }
        for k in [
            "security.protocol",
            "sasl.mechanisms",
            "sasl.username",
            "ssl.ca.location",
            "ssl.key.location",
            "ssl.certificate.location",
        ] {
            assert!(!is_secret_property(k), "{k}");
        }
    }

    #[test]
    fn tls_without_a_ca_of_its_own_probes_the_system_bundle() {
        let tls = BTreeMap::from([("security.protocol".to_owned(), "SASL_SSL".to_owned())]);
        let c = client_config("b:9093", false, &tls);
        assert_eq!(c.get("ssl.ca.location"), Some("probe"));
        let mut own = tls.clone();
        own.insert("ssl.ca.location".into(), "/etc/ca.pem".into());
        let c = client_config("b:9093", false, &own);
        assert_eq!(c.get("ssl.ca.location"), Some("/etc/ca.pem"));
        assert_eq!(
            client_config("b:9092", true, &BTreeMap::new()).get("ssl.ca.location"),
            None
        );
    }

    #[test]
    fn a_refused_property_is_named_without_its_value() {
        // rust-rdkafka prints `{desc} {key} {value}`; librdkafka's desc may quote the
        // value too.
        let secret = "TopSecretKeyPassphrase";
        let e = KafkaError::ClientConfig(
            RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            format!("Invalid value \"{secret}\" for configuration property \"ssl.key.password\""),
            "ssl.key.password".to_owned(),
            secret.to_owned(),
        );
        assert!(e.to_string().contains(secret), "the premise: {e}");
        let props = BTreeMap::from([("ssl.key.password".to_owned(), secret.to_owned())]);
        let shown = shown_error(&e, &props);
        assert!(!shown.contains(secret), "{shown}");
        assert!(shown.contains("`ssl.key.password`"), "{shown}");
        // Another error naming a secret's value: scrubbed as well.
        let e = KafkaError::ClientCreation(format!("sasl.password {secret} rejected"));
        let props = BTreeMap::from([("sasl.password".to_owned(), secret.to_owned())]);
        assert!(!shown_error(&e, &props).contains(secret));
    }
}
