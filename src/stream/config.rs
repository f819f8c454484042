//! The stream mode's configuration: a TOML file, every key overridable by an
//! `MFA_AUDIT_<SECTION>_<KEY>` environment variable (`MFA_AUDIT_KAFKA_GROUP_ID`), secrets
//! only from the environment or a file path, never printed.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why the configuration could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config `{path}`: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
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

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where events come from.
    pub kafka: KafkaConfig,
    /// Where rows go.
    pub clickhouse: ClickHouseConfig,
    /// The engine.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// The metrics listener.
    #[serde(default)]
    pub metrics: MetricsConfig,
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where `/metrics`, `/healthz` and `/readyz` listen (empty: no listener).
    #[serde(default = "default_metrics_listen")]
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: default_metrics_listen(),
        }
    }
}

fn default_metrics_listen() -> String {
    "127.0.0.1:9464".into()
}

/// `[kafka]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `host:port[,host:port]` of the bootstrap brokers.
    pub brokers: String,
    /// Topics to consume.
    pub topics: Vec<String>,
    /// Consumer group: instances with the same group split the partitions.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// A stable id for this instance, unique in the group (static membership,
    /// `group.instance.id`): after a crash, the restarted instance takes its partitions
    /// back at once instead of waiting for the coordinator to expire the dead member.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// Where bad documents are also sent (raw), besides the `dead_letters` table.
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// Passed to librdkafka as they are (SASL, TLS, Azure Event Hubs' Kafka endpoint,
    /// fetch sizes). Secrets do not belong here: use `properties_env`.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// librdkafka properties whose values come from environment variables
    /// (`"sasl.password" = "EVENTHUBS_CONNECTION_STRING"`).
    #[serde(default)]
    pub properties_env: BTreeMap<String, String>,
}

/// `[clickhouse]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// HTTP endpoint.
    #[serde(default = "default_clickhouse_url")]
    pub url: String,
    /// Database holding the tables (`mfa-audit schema apply` creates it).
    #[serde(default = "default_database")]
    pub database: String,
    /// User.
    #[serde(default = "default_user")]
    pub user: String,
    /// Environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the password (first line).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Rows buffered before a flush.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// Bytes buffered before a flush.
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: usize,
    /// Longest time rows wait before a flush.
    #[serde(default = "default_flush_interval_ms")]
    pub flush_interval_ms: u64,
    /// Longest wait for one ClickHouse request.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Check row types against the server's (needs ClickHouse 23.x or later; 18.16 lacks
    /// what the check uses).
    #[serde(default)]
    pub validation: bool,
}

/// `[pipeline]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Shipped policy name or policy file (one policy; `policies` for several).
    #[serde(default = "default_policy")]
    pub policy: String,
    /// Several policies evaluated in one pass (each event decoded once); when set, it
    /// replaces `policy`.
    #[serde(default)]
    pub policies: Vec<String>,
    /// JSON Web Key Set to verify token signatures with.
    #[serde(default)]
    pub jwks: Option<PathBuf>,
    /// Time between checkpoints (flush, state snapshot, offset commit).
    #[serde(default = "default_checkpoint_interval_ms")]
    pub checkpoint_interval_ms: u64,
    /// Days back a repeated event id is recognised as a replay (memory: ~16 bytes per
    /// event inside the window, and the same in every snapshot).
    #[serde(default = "default_stream_replay_window_days")]
    pub replay_window_days: i64,
    /// The tenant of sign-in records that carry no tenant id (a Microsoft Graph `signIn`
    /// export of one tenant), as `run --tenant`.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Largest document accepted.
    #[serde(default = "default_max_document_bytes")]
    pub max_document_bytes: usize,
    /// First wait after a failed ClickHouse write; doubles up to `retry_max_ms`.
    #[serde(default = "default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    /// Longest wait between retries.
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
}

impl PipelineConfig {
    /// The policies chosen: `policies` when given, else `policy`.
    pub fn chosen_policies(&self) -> Vec<String> {
        if self.policies.is_empty() {
            vec![self.policy.clone()]
        } else {
            self.policies.clone()
        }
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            policy: default_policy(),
            policies: Vec::new(),
            jwks: None,
            checkpoint_interval_ms: default_checkpoint_interval_ms(),
            replay_window_days: default_stream_replay_window_days(),
            tenant: None,
            max_document_bytes: default_max_document_bytes(),
            retry_initial_ms: default_retry_initial_ms(),
            retry_max_ms: default_retry_max_ms(),
        }
    }
}

fn default_group_id() -> String {
    "mfa-audit".into()
}
fn default_clickhouse_url() -> String {
    "http://127.0.0.1:8123".into()
}
fn default_database() -> String {
    "mfa_audit".into()
}
fn default_user() -> String {
    "default".into()
}
fn default_batch_rows() -> usize {
    100_000
}
fn default_batch_bytes() -> usize {
    32 * 1024 * 1024
}
fn default_flush_interval_ms() -> u64 {
    1_000
}
fn default_request_timeout_ms() -> u64 {
    30_000
}
fn default_policy() -> String {
    crate::policy::DEFAULT_POLICY.into()
}
fn default_checkpoint_interval_ms() -> u64 {
    10_000
}
fn default_stream_replay_window_days() -> i64 {
    1
}
fn default_max_document_bytes() -> usize {
    crate::source::DEFAULT_MAX_DOCUMENT_BYTES
}
fn default_retry_initial_ms() -> u64 {
    200
}
fn default_retry_max_ms() -> u64 {
    10_000
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("topics", &self.topics)
            .field("group_id", &self.group_id)
            .field("instance_id", &self.instance_id)
            .field("dead_letter_topic", &self.dead_letter_topic)
            .field("properties", &self.properties.keys().collect::<Vec<_>>())
            .field("properties_env", &self.properties_env)
            .finish()
    }
}

impl fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &"[not shown]")
            .field("batch_rows", &self.batch_rows)
            .field("batch_bytes", &self.batch_bytes)
            .field("flush_interval_ms", &self.flush_interval_ms)
            .finish()
    }
}

/// The sections and keys an `MFA_AUDIT_*` variable may set, to split `KAFKA_GROUP_ID` into
/// `kafka.group_id` without guessing.
const SECTIONS: [&str; 4] = ["kafka", "clickhouse", "pipeline", "metrics"];

/// Environment variables that are not configuration keys.
const NOT_CONFIG: [&str; 2] = ["MFA_AUDIT_NO_SHARED", "MFA_AUDIT_CONFIG"];

impl Config {
    /// Reads the file and applies `MFA_AUDIT_*` variables from `env`.
    pub fn load(path: &Path, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown, env)
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
            if NOT_CONFIG.contains(&name.as_str()) || rest.starts_with("SERVICES") {
                continue;
            }
            let lower = rest.to_ascii_lowercase();
            let Some(section) = SECTIONS
                .iter()
                .find(|s| lower.starts_with(&format!("{s}_")))
            else {
                continue;
            };
            let key = &lower[section.len() + 1..];
            let entry = table
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(t) = entry.as_table_mut() else {
                return Err(invalid(format!("`{section}` must be a table")));
            };
            t.insert(key.to_owned(), env_value(key, value));
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| invalid(e.message().to_owned()))?;
        config.check().map_err(invalid)?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.kafka.topics.is_empty() {
            problems.push("`kafka.topics` must name at least one topic".to_owned());
        }
        if self.kafka.brokers.trim().is_empty() {
            problems.push("`kafka.brokers` must not be empty".to_owned());
        }
        for k in self.kafka.properties.keys() {
            if k.contains("password") || k.contains("secret") || k == "sasl.oauthbearer.config" {
                problems.push(format!(
                    "`kafka.properties.{k}` holds a secret: name an environment variable in `kafka.properties_env` instead"
                ));
            }
        }
        if self.clickhouse.batch_rows == 0 || self.clickhouse.batch_rows >= 1_048_576 {
            problems.push("`clickhouse.batch_rows` must be between 1 and 1048575 (bigger inserts can half-commit on 18.16)".to_owned());
        }
        if self.pipeline.checkpoint_interval_ms == 0 {
            problems.push("`pipeline.checkpoint_interval_ms` must be above 0".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
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
            let text = std::fs::read_to_string(file).map_err(|e| {
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
        let mut props = self.kafka.properties.clone();
        for (key, var) in &self.kafka.properties_env {
            let value = std::env::var(var).map_err(|_| ConfigError::Secret {
                path: shown.to_owned(),
                message: format!("`kafka.properties_env.{key}` names `{var}`, which is not set"),
            })?;
            props.insert(key.clone(), value);
        }
        Ok(props)
    }
}

/// An environment value as the key's TOML type: lists split on commas, numbers and
/// booleans parsed, the rest text.
fn env_value(key: &str, value: &str) -> toml::Value {
    if key == "topics" || key == "policies" {
        return toml::Value::Array(
            value
                .split(',')
                .map(|s| toml::Value::String(s.trim().to_owned()))
                .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
                .collect(),
        );
    }
    if let Ok(i) = value.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match value {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(value.to_owned()),
    }
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
            ("MFA_AUDIT_NO_SHARED".to_owned(), "1".to_owned()),
            ("MFA_AUDIT_SERVICES_DIR".to_owned(), "/x".to_owned()),
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

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(Config::parse(&format!("{BASE}\n[pipeline]\ncolour = 1\n"), "t", &[]).is_err());
        let e = Config::parse(
            &BASE.replace("topics = [\"events\"]", "topics = []"),
            "t",
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("kafka.topics"), "{e}");
        let env = vec![(
            "MFA_AUDIT_CLICKHOUSE_BATCH_ROWS".to_owned(),
            "2000000".to_owned(),
        )];
        assert!(Config::parse(BASE, "t", &env).is_err());
    }
}
