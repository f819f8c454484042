//! One configuration for both modes of `run`: a TOML file (optional), every key
//! overridable by an `MFA_AUDIT_<SECTION>_<KEY>` environment variable
//! (`MFA_AUDIT_KAFKA_GROUP_ID`), then by the command line's flags. Secrets come only from
//! the environment or a file path and are never printed.
//!
//! The mode follows from the configuration: `kafka.brokers` (or `kafka.topics`) set means
//! the stream mode (Kafka in, ClickHouse out); otherwise the file mode (`files.inputs` in,
//! NDJSON files in `files.out`). Every default is the same in both modes but one,
//! `pipeline.replay_window_days`, whose comment says why.
//!
//! Only known keys are taken from the environment: an `MFA_AUDIT_*` variable that names
//! no key is an error that names it (the scripts' own variables use `MFA_SERVICES_*`).

mod env;
mod sections;

pub use sections::{
    default_replay_window_days, ClickHouseConfig, FilesConfig, KafkaConfig, KafkaSinkConfig,
    MetricsConfig, PipelineConfig, SinksConfig,
};

use env::{env_key, env_value, NOT_CONFIG};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use thiserror::Error;

/// Why the configuration could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read (or is no regular file, or is over
    /// [`MAX_CONFIG_BYTES`]).
    #[error("cannot read config `{path}`: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: crate::bounded::BoundedReadError,
    },
    /// The file (with the environment applied) is not a valid configuration.
    #[error("config `{path}`: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A secret named by `*_env` or `*_file` is not there.
    #[error("config `{path}`: {message}")]
    Secret {
        /// The file.
        path: String,
        /// What is missing (never the secret).
        message: String,
    },
}

/// The largest configuration file read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The largest `clickhouse.password_file` read.
pub const MAX_PASSWORD_FILE_BYTES: u64 = 64 << 10;

/// Which way `run` reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Files or stdin in, NDJSON files out (the embedded default).
    Files,
    /// A Kafka consumer group in, ClickHouse out.
    Stream,
}

impl Mode {
    /// The mode's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Files => "the file mode",
            Mode::Stream => "the stream mode",
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file mode's inputs and output folder.
    #[serde(default)]
    pub files: FilesConfig,
    /// Where events come from in the stream mode.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Where rows go in the stream mode (and what `report` and `schema apply` read).
    #[serde(default)]
    pub clickhouse: ClickHouseConfig,
    /// The engine.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// The metrics listener.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Where findings also go, in either mode (`[sinks.kafka]`: a Kafka topic).
    #[serde(default)]
    pub sinks: SinksConfig,
}

impl Config {
    /// Reads the file and applies `MFA_AUDIT_*` variables from `env`.
    pub fn load(path: &Path, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = crate::bounded::read_to_string(path, MAX_CONFIG_BYTES).map_err(|source| {
            ConfigError::Io {
                path: shown.clone(),
                source,
            }
        })?;
        Self::parse(&text, &shown, env)
    }

    /// No file: the defaults with `MFA_AUDIT_*` variables from `env` applied.
    pub fn from_env(env: &[(String, String)]) -> Result<Config, ConfigError> {
        Self::parse("", "(no file: defaults and MFA_AUDIT_* variables)", env)
    }

    /// Parses configuration text and applies the environment overrides.
    pub fn parse(text: &str, shown: &str, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: shown.to_owned(),
            message,
        };
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| invalid(e.message().to_owned()))?;
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("MFA_AUDIT_") else {
                continue;
            };
            if NOT_CONFIG.contains(&name.as_str()) {
                continue;
            }
            let (section, key) = env_key(rest)
                .map_err(|e| invalid(format!("environment variable `{name}`: {e}")))?;
            let mut t = &mut table;
            for part in section.split('.') {
                let entry = t
                    .entry(part.to_owned())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let Some(inner) = entry.as_table_mut() else {
                    return Err(invalid(format!("`{section}` must be a table")));
                };
                t = inner;
            }
            t.insert(key.to_owned(), env_value(key, value));
        }
        let window_set = table
            .get("pipeline")
            .and_then(|p| p.get("replay_window_days"))
            .is_some();
        let mut config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| invalid(e.message().to_owned()))?;
        // The replay window's default is the mode's, when nothing set it.
        if !window_set {
            config.pipeline.replay_window_days = default_replay_window_days(config.mode());
        }
        config.check_values().map_err(invalid)?;
        Ok(config)
    }

    /// The mode the configuration chooses: the stream mode when it names Kafka.
    pub fn mode(&self) -> Mode {
        if !self.kafka.brokers.trim().is_empty() || !self.kafka.topics.is_empty() {
            Mode::Stream
        } else {
            Mode::Files
        }
    }

    /// Whether the configuration is complete for its mode (after the command line's
    /// flags were applied): every problem, in one message.
    pub fn check(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        match self.mode() {
            Mode::Stream => {
                if self.kafka.topics.is_empty() {
                    problems.push("`kafka.topics` must name at least one topic".to_owned());
                }
                if self.kafka.brokers.trim().is_empty() {
                    problems.push("`kafka.brokers` must not be empty".to_owned());
                }
            }
            Mode::Files => {
                if self.files.inputs.is_empty() {
                    problems.push(
                        "no input: give `--input PATH` (or `files.inputs`), or name Kafka (`kafka.brokers`, `kafka.topics`) for the stream mode"
                            .to_owned(),
                    );
                }
                if self.files.out.is_none() {
                    problems.push("no output folder: give `--out DIR` (or `files.out`)".to_owned());
                }
                if self.files.inputs.iter().filter(|i| *i == "-").count() > 1 {
                    problems.push("`--input -` (stdin) can be given only once".to_owned());
                }
            }
        }
        problems.extend(self.sink_problems());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Values wrong in any mode.
    fn check_values(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        for (section, properties) in [
            ("kafka", &self.kafka.properties),
            ("sinks.kafka", &self.sinks.kafka.properties),
        ] {
            for k in properties.keys() {
                if crate::source::kafka::is_secret_property(k) {
                    problems.push(format!(
                        "`{section}.properties.{k}` holds a secret: name an environment variable in `{section}.properties_env` instead"
                    ));
                }
            }
        }
        if let Some(p) = plaintext_problem(&self.kafka_transport(), "kafka") {
            problems.push(p);
        }
        if let Err(e) = crate::sink::clickhouse::transport::check_url(
            &self.clickhouse.url,
            self.clickhouse.allow_plaintext,
        ) {
            problems.push(format!("`clickhouse.url` {e}"));
        }
        if let Err(e) = crate::sink::clickhouse::check_database(&self.clickhouse.database) {
            problems.push(format!("`clickhouse.database`: {e}"));
        }
        if self.metrics.max_connections == 0 {
            problems.push("`metrics.max_connections` must be above 0".to_owned());
        }
        if self.clickhouse.batch_rows == 0 || self.clickhouse.batch_rows >= 1_048_576 {
            problems.push("`clickhouse.batch_rows` must be between 1 and 1048575 (bigger inserts can half-commit on 18.16)".to_owned());
        }
        if self.pipeline.checkpoint_interval_ms == 0 {
            problems.push("`pipeline.checkpoint_interval_ms` must be above 0".to_owned());
        }
        if self.pipeline.future_skew_hours < 0 {
            problems.push("`pipeline.future_skew_hours` must not be negative".to_owned());
        }
        if self.pipeline.replay_window_days < 0 {
            problems.push("`pipeline.replay_window_days` must not be negative".to_owned());
        }
        if self.pipeline.keep_days < 7 {
            problems
                .push("`pipeline.keep_days` must be at least 7 (the readiness window)".to_owned());
        }
        if self.pipeline.max_tenants == 0 || self.pipeline.max_users_per_tenant == 0 {
            problems.push(
                "`pipeline.max_tenants` and `pipeline.max_users_per_tenant` must be above 0"
                    .to_owned(),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// The input's Kafka transport: `[kafka]`'s brokers and properties.
    fn kafka_transport(&self) -> Transport<'_> {
        Transport {
            brokers: self.kafka.brokers.clone(),
            properties: self.kafka.properties.iter().collect(),
            properties_env: self
                .kafka
                .properties_env
                .iter()
                .map(|(k, v)| (k, ("kafka", v)))
                .collect(),
            allow_plaintext: self.kafka.allow_plaintext,
        }
    }

    /// The findings topic's transport: `[sinks.kafka]`'s keys laid over `[kafka]`'s.
    fn sink_transport(&self) -> Transport<'_> {
        let s = &self.sinks.kafka;
        let mut t = self.kafka_transport();
        if let Some(b) = s.brokers.as_deref().filter(|b| !b.trim().is_empty()) {
            b.clone_into(&mut t.brokers);
        }
        t.properties.extend(&s.properties);
        t.properties_env.extend(
            s.properties_env
                .iter()
                .map(|(k, v)| (k, ("sinks.kafka", v))),
        );
        t.allow_plaintext = s.allow_plaintext.unwrap_or(t.allow_plaintext);
        t
    }

    /// What is wrong with `[sinks.kafka]` (after the flags were applied): a topic
    /// without brokers or with a name Kafka refuses, the input's own topics, SASL in
    /// clear text, settings without a topic.
    fn sink_problems(&self) -> Vec<String> {
        let s = &self.sinks.kafka;
        let mut problems = Vec::new();
        let Some(topic) = s.topic() else {
            let set = s.brokers.as_deref().is_some_and(|b| !b.trim().is_empty())
                || !s.properties.is_empty()
                || !s.properties_env.is_empty();
            if set {
                problems.push(
                    "`sinks.kafka` names no `topic` (`--findings-topic`): give one, or leave the section out"
                        .to_owned(),
                );
            }
            return problems;
        };
        if let Err(e) = check_topic_name(topic) {
            problems.push(format!("`sinks.kafka.topic` `{topic}`: {e}"));
        }
        if self.kafka.topics.iter().any(|t| t == topic) {
            problems.push(format!(
                "`sinks.kafka.topic` `{topic}` is also an input topic (`kafka.topics`): the findings would be read back as events"
            ));
        }
        if self.kafka.dead_letter_topic.as_deref() == Some(topic) {
            problems.push(format!(
                "`sinks.kafka.topic` `{topic}` is also `kafka.dead_letter_topic`"
            ));
        }
        let transport = self.sink_transport();
        if transport.brokers.trim().is_empty() {
            problems.push(format!(
                "the findings topic `{topic}` needs brokers: `sinks.kafka.brokers` (`--kafka-brokers`), or `kafka.brokers` in the stream mode"
            ));
        }
        problems.extend(plaintext_problem(&transport, "sinks.kafka"));
        problems
    }

    /// Where findings are published, when `[sinks.kafka]` names a topic: its brokers and
    /// properties (`[kafka]`'s with `[sinks.kafka]`'s laid over them), the secrets read
    /// from the environment. A configuration the checks refuse is refused here too.
    pub fn findings_topic(
        &self,
        shown: &str,
    ) -> Result<Option<crate::sink::kafka::TopicSettings>, ConfigError> {
        let Some(topic) = self.sinks.kafka.topic() else {
            return Ok(None);
        };
        let problems = self.sink_problems();
        if !problems.is_empty() {
            return Err(ConfigError::Invalid {
                path: shown.to_owned(),
                message: problems.join("; "),
            });
        }
        let t = self.sink_transport();
        Ok(Some(crate::sink::kafka::TopicSettings {
            brokers: t.brokers.clone(),
            properties: t.properties(shown)?,
            topic: topic.to_owned(),
        }))
    }

    /// The ClickHouse password, from `password_env` or `password_file` (none: empty).
    pub fn clickhouse_password(&self, shown: &str) -> Result<String, ConfigError> {
        let secret = |message: String| ConfigError::Secret {
            path: shown.to_owned(),
            message,
        };
        if let Some(var) = &self.clickhouse.password_env {
            return std::env::var(var).map_err(|_| {
                secret(format!(
                    "`clickhouse.password_env` names `{var}`, which is not set"
                ))
            });
        }
        if let Some(file) = &self.clickhouse.password_file {
            let text =
                crate::bounded::read_to_string(file, MAX_PASSWORD_FILE_BYTES).map_err(|e| {
                    secret(format!(
                        "cannot read `clickhouse.password_file` `{}`: {e}",
                        file.display()
                    ))
                })?;
            return Ok(text.lines().next().unwrap_or_default().to_owned());
        }
        Ok(String::new())
    }

    /// The librdkafka properties with the `properties_env` secrets filled in.
    pub fn kafka_properties(&self, shown: &str) -> Result<BTreeMap<String, String>, ConfigError> {
        self.kafka_transport().properties(shown)
    }
}

/// A Kafka client's brokers and properties: the input's, or the findings topic's (the
/// input's with `[sinks.kafka]` laid over them).
struct Transport<'a> {
    brokers: String,
    properties: BTreeMap<&'a String, &'a String>,
    /// Key, and the section and variable its value comes from.
    properties_env: BTreeMap<&'a String, (&'static str, &'a String)>,
    allow_plaintext: bool,
}

impl Transport<'_> {
    /// The librdkafka properties with the `properties_env` secrets filled in.
    fn properties(&self, shown: &str) -> Result<BTreeMap<String, String>, ConfigError> {
        let mut props: BTreeMap<String, String> = self
            .properties
            .iter()
            .map(|(k, v)| ((*k).clone(), (*v).clone()))
            .collect();
        for (key, (section, var)) in &self.properties_env {
            let value = std::env::var(var).map_err(|_| ConfigError::Secret {
                path: shown.to_owned(),
                message: format!(
                    "`{section}.properties_env.{key}` names `{var}`, which is not set"
                ),
            })?;
            props.insert((*key).clone(), value);
        }
        Ok(props)
    }
}

/// Why `t` would send SASL credentials in clear text to a broker that is not this
/// machine, unless its `allow_plaintext` (`{section}.allow_plaintext`) says the network is
/// trusted.
fn plaintext_problem(t: &Transport<'_>, section: &str) -> Option<String> {
    if t.allow_plaintext {
        return None;
    }
    let protocol = t
        .properties
        .iter()
        .find(|(k, _)| k.as_str() == "security.protocol")
        .map_or_else(
            || "PLAINTEXT".to_owned(),
            |(_, p)| p.trim().to_ascii_uppercase(),
        );
    let sasl_set = [
        "sasl.mechanism",
        "sasl.mechanisms",
        "sasl.username",
        "sasl.password",
    ]
    .iter()
    .any(|k| {
        t.properties.keys().any(|p| p.as_str() == *k)
            || t.properties_env.keys().any(|p| p.as_str() == *k)
    });
    let clear = protocol == "SASL_PLAINTEXT" || (protocol == "PLAINTEXT" && sasl_set);
    if !clear {
        return None;
    }
    let remote: Vec<&str> = t
        .brokers
        .split(',')
        .map(broker_host)
        .filter(|h| !h.is_empty() && !crate::sink::clickhouse::transport::is_loopback(h))
        .collect();
    if remote.is_empty() {
        return None;
    }
    Some(format!(
        "SASL over `{protocol}` to `{}`: the credentials (an Event Hubs connection string, a password) would cross the network in clear text; set `security.protocol = \"SASL_SSL\"` in `{section}.properties`, or `{section}.allow_plaintext = true` where the network itself is trusted",
        remote.join(", ")
    ))
}

/// Whether Kafka takes `name` as a topic: 1 to 249 of `[A-Za-z0-9._-]`, not `.` or `..`.
fn check_topic_name(name: &str) -> Result<(), String> {
    if name == "." || name == ".." {
        return Err("`.` and `..` are not topic names".to_owned());
    }
    if name.len() > 249 {
        return Err("longer than 249 characters".to_owned());
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(format!(
            "{c:?} is not allowed in a topic name (letters, digits, `.`, `_`, `-`)"
        )),
        None => Ok(()),
    }
}

/// The host of one `kafka.brokers` entry (`host:port`, `[::1]:port`, `SASL_SSL://host:port`).
fn broker_host(entry: &str) -> &str {
    let entry = entry.trim();
    let entry = entry.split_once("://").map_or(entry, |(_, rest)| rest);
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(host, _)| host);
    }
    entry.rsplit_once(':').map_or(entry, |(host, _)| host)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
        [kafka]
        brokers = "127.0.0.1:9092"
        topics = ["events"]
        [clickhouse]
        url = "http://127.0.0.1:8123"
    "#;

    #[test]
    fn defaults_fill_what_the_file_leaves_out() {
        let c = Config::parse(BASE, "t", &[]).unwrap();
        assert_eq!(c.kafka.group_id, "mfa-audit");
        assert_eq!(c.clickhouse.database, "mfa_audit");
        assert_eq!(c.pipeline.policy, crate::policy::DEFAULT_POLICY);
        assert!(c.clickhouse.batch_rows < 1_048_576);
    }

    #[test]
    fn environment_overrides_every_key() {
        let env = vec![
            ("MFA_AUDIT_KAFKA_GROUP_ID".to_owned(), "g2".to_owned()),
            ("MFA_AUDIT_KAFKA_TOPICS".to_owned(), "a, b".to_owned()),
            (
                "MFA_AUDIT_CLICKHOUSE_BATCH_ROWS".to_owned(),
                "500".to_owned(),
            ),
            (
                "MFA_AUDIT_PIPELINE_POLICY".to_owned(),
                "partner-mfa-2019-09".to_owned(),
            ),
            ("MFA_AUDIT_CONFIG".to_owned(), "/x.toml".to_owned()),
            ("MFA_SERVICES_KAFKA_PORT".to_owned(), "9092".to_owned()),
        ];
        let c = Config::parse(BASE, "t", &env).unwrap();
        assert_eq!(c.kafka.group_id, "g2");
        assert_eq!(c.kafka.topics, vec!["a", "b"]);
        assert_eq!(c.clickhouse.batch_rows, 500);
        assert_eq!(c.pipeline.policy, "partner-mfa-2019-09");
    }

    #[test]
    fn secrets_stay_out_of_the_file_and_out_of_debug_output() {
        let text = format!("{BASE}\n[kafka.properties]\n\"sasl.password\" = \"hunter2\"\n");
        let err = Config::parse(
            &text.replace("[clickhouse]", "[clickhouse]\npassword_env = \"CH_PW\""),
            "t",
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("properties_env"), "{err}");
        let c = Config::parse(
            &BASE.replace(
                "[clickhouse]",
                "[clickhouse]\npassword_env = \"MFA_AUDIT_TEST_NO_SUCH_VAR\"",
            ),
            "t",
            &[],
        )
        .unwrap();
        let e = c.clickhouse_password("t").unwrap_err().to_string();
        assert!(e.contains("MFA_AUDIT_TEST_NO_SUCH_VAR"), "{e}");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    /// F14 of the security review of 2026-12: private keys and passphrases in
    /// `[kafka.properties]` were accepted, then printed when librdkafka refused them.
    #[test]
    fn private_keys_and_passphrases_stay_out_of_the_file() {
        for key in [
            "ssl.key.pem",
            "sasl.oauthbearer.assertion.private.key.pem",
            "sasl.oauthbearer.assertion.private.key.passphrase",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.config",
            "sasl.jaas.config",
        ] {
            let text = format!(
                "{BASE}\n[kafka.properties]\n\"{key}\" = \"-----BEGIN PRIVATE KEY-----MIIEvQ\"\n"
            );
            let e = Config::parse(&text, "t", &[]).unwrap_err().to_string();
            assert!(
                e.contains(key) && e.contains("properties_env"),
                "{key}: {e}"
            );
            assert!(!e.contains("MIIEvQ"), "{key}: {e}");
        }
        // Through `properties_env` they are fine, and Debug shows the variable's name only.
        let text = format!("{BASE}\n[kafka.properties_env]\n\"ssl.key.pem\" = \"KEY_PEM\"\n");
        let c = Config::parse(&text, "t", &[]).unwrap();
        assert!(format!("{c:?}").contains("KEY_PEM"));
    }

    /// F14: the database name went unquoted into `CREATE DATABASE`.
    #[test]
    fn the_database_name_is_an_identifier() {
        let text = BASE.replace(
            "[clickhouse]",
            "[clickhouse]\ndatabase = \"sec_inj ENGINE = Ordinary\"",
        );
        let e = Config::parse(&text, "t", &[]).unwrap_err().to_string();
        assert!(
            e.contains("clickhouse.database") && e.contains("identifier"),
            "{e}"
        );
        let env = vec![("MFA_AUDIT_CLICKHOUSE_DATABASE".to_owned(), "a;b".to_owned())];
        assert!(Config::parse(BASE, "t", &env).is_err());
    }

    /// F14: a URL with a password was accepted and printed in every message.
    #[test]
    fn a_url_with_credentials_is_refused_without_its_password() {
        let text = BASE.replace(
            "url = \"http://127.0.0.1:8123\"",
            "url = \"http://audit:S3cretCHpass@127.0.0.1:18124\"",
        );
        let e = Config::parse(&text, "t", &[]).unwrap_err().to_string();
        assert!(!e.contains("S3cretCHpass"), "{e}");
        assert!(
            e.contains("clickhouse.url") && e.contains("password_env"),
            "{e}"
        );
        // Debug never shows a URL's credentials either (a config built in code).
        let mut c = Config::parse(BASE, "t", &[]).unwrap();
        c.clickhouse.url = "https://audit:S3cretCHpass@ch.example".into();
        assert!(!format!("{c:?}").contains("S3cretCHpass"));
    }

    /// F2: plain transports to another host are refused unless the operator says so.
    #[test]
    fn plaintext_to_another_host_needs_the_override() {
        let remote_ch = BASE.replace("http://127.0.0.1:8123", "http://ch.example:8123");
        let e = Config::parse(&remote_ch, "t", &[]).unwrap_err().to_string();
        assert!(
            e.contains("allow_plaintext") && e.contains("https://"),
            "{e}"
        );
        let allowed = remote_ch.replace("[clickhouse]", "[clickhouse]\nallow_plaintext = true");
        assert!(Config::parse(&allowed, "t", &[]).is_ok());
        let https = BASE.replace("http://127.0.0.1:8123", "https://ch.example:8443");
        let https = https.replace("[clickhouse]", "[clickhouse]\nca_file = \"ca.pem\"");
        assert!(Config::parse(&https, "t", &[]).is_ok());

        let sasl = |brokers: &str, protocol: Option<&str>| {
            let mut t = BASE.replace("127.0.0.1:9092", brokers);
            t.push_str("\n[kafka.properties]\n\"sasl.mechanisms\" = \"PLAIN\"\n");
            if let Some(p) = protocol {
                t.push_str(&format!("\"security.protocol\" = \"{p}\"\n"));
            }
            t.push_str("[kafka.properties_env]\n\"sasl.password\" = \"EH_CONN\"\n");
            Config::parse(&t, "t", &[])
        };
        for (brokers, protocol) in [
            ("ns.servicebus.windows.net:9093", Some("SASL_PLAINTEXT")),
            ("ns.servicebus.windows.net:9093", None),
            ("127.0.0.1:9092,10.0.0.5:9092", Some("sasl_plaintext")),
        ] {
            let e = sasl(brokers, protocol).unwrap_err().to_string();
            assert!(
                e.contains("SASL_SSL") && e.contains("kafka.allow_plaintext"),
                "{e}"
            );
        }
        assert!(sasl("ns.servicebus.windows.net:9093", Some("SASL_SSL")).is_ok());
        assert!(sasl("127.0.0.1:9092", Some("SASL_PLAINTEXT")).is_ok());
        assert!(sasl("localhost:9092,[::1]:9092", None).is_ok());
        let mut t = BASE.replace("127.0.0.1:9092", "kafka.internal:9092");
        t = t.replace("[kafka]", "[kafka]\nallow_plaintext = true");
        t.push_str("\n[kafka.properties]\n\"security.protocol\" = \"SASL_PLAINTEXT\"\n");
        assert!(Config::parse(&t, "t", &[]).is_ok());
    }

    /// F14: `--config` and `clickhouse.password_file` read devices and FIFOs unbounded.
    #[test]
    fn config_and_password_files_must_be_small_regular_files() {
        let e = Config::load(Path::new("/dev/zero"), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let c = Config::parse(
            &BASE.replace(
                "[clickhouse]",
                "[clickhouse]\npassword_file = \"/dev/zero\"",
            ),
            "t",
            &[],
        )
        .unwrap();
        let e = c.clickhouse_password("t").unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; (MAX_CONFIG_BYTES + 1) as usize]).unwrap();
        let e = Config::load(&big, &[]).unwrap_err().to_string();
        assert!(e.contains("limit"), "{e}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(Config::parse(&format!("{BASE}\n[pipeline]\ncolour = 1\n"), "t", &[]).is_err());
        // Brokers without topics: the stream mode, incomplete.
        let e = Config::parse(
            &BASE.replace("topics = [\"events\"]", "topics = []"),
            "t",
            &[],
        )
        .unwrap()
        .check()
        .unwrap_err();
        assert!(e.contains("kafka.topics"), "{e}");
        let env = vec![(
            "MFA_AUDIT_CLICKHOUSE_BATCH_ROWS".to_owned(),
            "2000000".to_owned(),
        )];
        assert!(Config::parse(BASE, "t", &env).is_err());
    }

    #[test]
    fn the_findings_topic_takes_the_inputs_transport_and_its_own_keys() {
        let text = format!(
            "{BASE}\n[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanism\" = \"PLAIN\"\n[sinks.kafka]\ntopic = \"findings\"\n[sinks.kafka.properties]\n\"linger.ms\" = \"50\"\n"
        );
        let c = Config::parse(&text, "t", &[]).unwrap();
        assert!(c.check().is_ok());
        let s = c.findings_topic("t").unwrap().unwrap();
        assert_eq!(s.topic, "findings");
        assert_eq!(s.brokers, "127.0.0.1:9092");
        assert_eq!(s.properties["security.protocol"], "SASL_SSL");
        assert_eq!(s.properties["linger.ms"], "50");
        // The environment sets its keys; a file-mode sink names its own brokers.
        let env = vec![
            (
                "MFA_AUDIT_SINKS_KAFKA_TOPIC".to_owned(),
                "from-env".to_owned(),
            ),
            (
                "MFA_AUDIT_SINKS_KAFKA_BROKERS".to_owned(),
                "10.0.0.7:9093".to_owned(),
            ),
            ("MFA_AUDIT_FILES_INPUTS".to_owned(), "a.ndjson".to_owned()),
            ("MFA_AUDIT_FILES_OUT".to_owned(), "out".to_owned()),
        ];
        let c = Config::from_env(&env).unwrap();
        assert_eq!(c.mode(), Mode::Files);
        let s = c.findings_topic("t").unwrap().unwrap();
        assert_eq!(
            (s.topic.as_str(), s.brokers.as_str()),
            ("from-env", "10.0.0.7:9093")
        );
        // No topic: no sink.
        assert!(Config::parse(BASE, "t", &[])
            .unwrap()
            .findings_topic("t")
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_findings_topic_that_cannot_work_is_refused_with_its_reason() {
        let files = |sink: &str| {
            let env = vec![
                ("MFA_AUDIT_FILES_INPUTS".to_owned(), "a.ndjson".to_owned()),
                ("MFA_AUDIT_FILES_OUT".to_owned(), "out".to_owned()),
            ];
            Config::parse(&format!("[sinks.kafka]\n{sink}"), "t", &env)
        };
        for (sink, want) in [
            ("topic = \"f\"\n", "needs brokers"),
            ("topic = \"a b\"\nbrokers = \"127.0.0.1:9092\"\n", "not allowed in a topic name"),
            ("brokers = \"127.0.0.1:9092\"\n", "names no `topic`"),
            (
                "topic = \"f\"\nbrokers = \"eh.servicebus.windows.net:9093\"\n[sinks.kafka.properties]\n\"sasl.mechanism\" = \"PLAIN\"\n",
                "sinks.kafka.allow_plaintext",
            ),
        ] {
            let e = files(sink).unwrap().check().unwrap_err();
            assert!(e.contains(want), "{sink}: {e}");
        }
        let e = files("topic = \"f\"\n[sinks.kafka.properties]\n\"sasl.password\" = \"hunter2\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sinks.kafka.properties_env") && !e.contains("hunter2"),
            "{e}"
        );
        // The input's own topic would be read back.
        let c = Config::parse(
            &format!("{BASE}\n[sinks.kafka]\ntopic = \"events\"\n"),
            "t",
            &[],
        )
        .unwrap();
        assert!(c.check().unwrap_err().contains("input topic"));
        assert!(c.findings_topic("t").is_err());
        // Unknown keys are refused as everywhere.
        assert!(files("topic = \"f\"\npartitions = 3\n").is_err());
    }

    #[test]
    fn an_unknown_environment_key_is_named_not_taken() {
        for (name, want) in [
            (
                "MFA_AUDIT_KAFKA_PORT",
                "`kafka.port` is not a key (kafka keys: brokers",
            ),
            ("MFA_AUDIT_SERVICES_DIR", "names no configuration section"),
            ("MFA_AUDIT_NO_SHARED", "MFA_SERVICES_*"),
        ] {
            let env = vec![(name.to_owned(), "1".to_owned())];
            let e = Config::parse(BASE, "t", &env).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains(want), "{name}: {e}");
        }
    }

    #[test]
    fn one_configuration_for_both_modes_with_the_same_defaults() {
        let files = Config::from_env(&[
            (
                "MFA_AUDIT_FILES_INPUTS".to_owned(),
                "a.ndjson, b.ndjson".to_owned(),
            ),
            ("MFA_AUDIT_FILES_OUT".to_owned(), "out".to_owned()),
        ])
        .unwrap();
        assert_eq!(files.mode(), Mode::Files);
        assert_eq!(files.files.inputs, ["a.ndjson", "b.ndjson"]);
        assert!(files.check().is_ok());
        let stream = Config::parse(BASE, "t", &[]).unwrap();
        assert_eq!(stream.mode(), Mode::Stream);
        // Every default is the same in both modes but the replay window (see
        // `default_replay_window_days`).
        assert_eq!(files.pipeline.replay_window_days, 31);
        assert_eq!(stream.pipeline.replay_window_days, 1);
        assert_eq!(files.pipeline.policy, stream.pipeline.policy);
        assert_eq!(
            files.pipeline.max_document_bytes,
            stream.pipeline.max_document_bytes
        );
        assert_eq!(
            files.pipeline.token_cache_entries,
            stream.pipeline.token_cache_entries
        );
        // A window set anywhere is kept whatever the mode.
        let set = Config::parse(
            &format!("{BASE}\n[pipeline]\nreplay_window_days = 7\n"),
            "t",
            &[],
        )
        .unwrap();
        assert_eq!(set.pipeline.replay_window_days, 7);
        // A file-mode configuration without inputs says what to give.
        let e = Config::from_env(&[]).unwrap().check().unwrap_err();
        assert!(e.contains("--input PATH") && e.contains("--out DIR"), "{e}");
    }
}
