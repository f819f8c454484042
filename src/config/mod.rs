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
mod tests;
