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
}

/// `[files]`: the file mode's inputs and output.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// Inputs, read in order: NDJSON files, files of JSON documents, folders, `-` (stdin).
    #[serde(default)]
    pub inputs: Vec<String>,
    /// The output folder (its five files are replaced).
    #[serde(default)]
    pub out: Option<PathBuf>,
    /// How inputs are cut into documents: `auto`, `ndjson` or `json`.
    #[serde(default)]
    pub framing: FramingName,
}

/// `files.framing` as written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FramingName {
    /// NDJSON, unless the first line holds only `{` or `[`.
    #[default]
    Auto,
    /// One document per line.
    Ndjson,
    /// JSON texts one after another.
    Json,
}

impl From<FramingName> for crate::source::Framing {
    fn from(f: FramingName) -> Self {
        match f {
            FramingName::Auto => crate::source::Framing::Auto,
            FramingName::Ndjson => crate::source::Framing::Ndjson,
            FramingName::Json => crate::source::Framing::Json,
        }
    }
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
    /// `host:port[,host:port]` of the bootstrap brokers (set: the stream mode).
    #[serde(default)]
    pub brokers: String,
    /// Topics to consume.
    #[serde(default)]
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
    /// event inside the window). The one default that differs by mode (see
    /// [`default_replay_window_days`]); when the file and the environment leave it out,
    /// the loader fills in the mode's.
    #[serde(default = "default_stream_replay_window_days")]
    pub replay_window_days: i64,
    /// Decoded bearer tokens kept in the cache.
    #[serde(default = "default_token_cache_entries")]
    pub token_cache_entries: usize,
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
            token_cache_entries: default_token_cache_entries(),
            tenant: None,
            max_document_bytes: default_max_document_bytes(),
            retry_initial_ms: default_retry_initial_ms(),
            retry_max_ms: default_retry_max_ms(),
        }
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: String::new(),
            topics: Vec::new(),
            group_id: default_group_id(),
            instance_id: None,
            dead_letter_topic: None,
            properties: BTreeMap::new(),
            properties_env: BTreeMap::new(),
        }
    }
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: default_clickhouse_url(),
            database: default_database(),
            user: default_user(),
            password_env: None,
            password_file: None,
            batch_rows: default_batch_rows(),
            batch_bytes: default_batch_bytes(),
            flush_interval_ms: default_flush_interval_ms(),
            request_timeout_ms: default_request_timeout_ms(),
            validation: false,
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
    default_replay_window_days(Mode::Stream)
}

/// The replay window's default, the one default that differs by mode. Files: a month
/// covers overlapping daily or monthly exports read again. Stream: Kafka redelivers only
/// what followed the last committed checkpoint (seconds to minutes), and the window's ids
/// are in every state snapshot, so a day keeps snapshots small (a month would hold ~16
/// bytes per event of the month in each).
pub fn default_replay_window_days(mode: Mode) -> i64 {
    match mode {
        Mode::Files => crate::state::DEFAULT_REPLAY_WINDOW_DAYS,
        Mode::Stream => 1,
    }
}

fn default_token_cache_entries() -> usize {
    crate::event::token::DEFAULT_TOKEN_CACHE_ENTRIES
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

/// The sections an `MFA_AUDIT_*` variable may set, to split `KAFKA_GROUP_ID` into
/// `kafka.group_id` without guessing.
const SECTIONS: [&str; 5] = ["files", "kafka", "clickhouse", "pipeline", "metrics"];

/// Every key of every section, as the environment may set it (tables such as
/// `kafka.properties` only from the file).
const KEYS: [(&str, &[&str]); 5] = [
    ("files", &["inputs", "out", "framing"]),
    (
        "kafka",
        &[
            "brokers",
            "topics",
            "group_id",
            "instance_id",
            "dead_letter_topic",
        ],
    ),
    (
        "clickhouse",
        &[
            "url",
            "database",
            "user",
            "password_env",
            "password_file",
            "batch_rows",
            "batch_bytes",
            "flush_interval_ms",
            "request_timeout_ms",
            "validation",
        ],
    ),
    (
        "pipeline",
        &[
            "policy",
            "policies",
            "jwks",
            "checkpoint_interval_ms",
            "replay_window_days",
            "token_cache_entries",
            "tenant",
            "max_document_bytes",
            "retry_initial_ms",
            "retry_max_ms",
        ],
    ),
    ("metrics", &["listen"]),
];

/// `MFA_AUDIT_*` variables that are not configuration keys: the configuration file's
/// path, and the password `schema apply` and `report` use without a file.
const NOT_CONFIG: [&str; 2] = ["MFA_AUDIT_CONFIG", "MFA_AUDIT_CLICKHOUSE_PASSWORD"];

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
            let entry = table
                .entry(section.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(t) = entry.as_table_mut() else {
                return Err(invalid(format!("`{section}` must be a table")));
            };
            t.insert(key.to_owned(), env_value(key, value));
        }
        // The replay window's default is the mode's, when nothing set it.
        let stream = ["brokers", "topics"].iter().any(|k| {
            table
                .get("kafka")
                .and_then(|k2| k2.get(k))
                .is_some_and(|v| v.as_str().is_none_or(|s| !s.trim().is_empty()))
        });
        let mode = if stream { Mode::Stream } else { Mode::Files };
        if let Some(p) = table
            .entry("pipeline")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
        {
            p.entry("replay_window_days")
                .or_insert(toml::Value::Integer(default_replay_window_days(mode)));
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| invalid(e.message().to_owned()))?;
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
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Values wrong in any mode.
    fn check_values(&self) -> Result<(), String> {
        let mut problems = Vec::new();
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
        if self.pipeline.replay_window_days < 0 {
            problems.push("`pipeline.replay_window_days` must not be negative".to_owned());
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

/// Splits `KAFKA_GROUP_ID` into (`kafka`, `group_id`), or says what the known keys are.
fn env_key(rest: &str) -> Result<(&'static str, &'static str), String> {
    let lower = rest.to_ascii_lowercase();
    let Some(section) = SECTIONS
        .iter()
        .find(|s| lower.starts_with(&format!("{s}_")))
    else {
        return Err(format!(
            "names no configuration section ({}); MFA_AUDIT_<SECTION>_<KEY> sets a key, and the services scripts' own variables are MFA_SERVICES_*",
            SECTIONS.join(", ")
        ));
    };
    let key = lower.get(section.len() + 1..).unwrap_or_default();
    let known = KEYS
        .iter()
        .find(|(s, _)| s == section)
        .map(|(_, k)| *k)
        .unwrap_or_default();
    match known.iter().find(|k| **k == key) {
        Some(k) => Ok((section, k)),
        None => Err(format!(
            "`{section}.{key}` is not a key ({section} keys: {})",
            known.join(", ")
        )),
    }
}

/// An environment value as the key's TOML type: lists split on commas, numbers and
/// booleans parsed, the rest text.
fn env_value(key: &str, value: &str) -> toml::Value {
    if key == "topics" || key == "policies" || key == "inputs" {
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
