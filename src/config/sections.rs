//! The sections of the configuration, their keys and defaults.

use super::Mode;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

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
    pub framing: crate::source::Framing,
    /// Worker threads: documents are decoded on all of them and each tenant's events are
    /// applied on one, in order, so the rows are those of one thread. 0 (the default):
    /// one per core.
    #[serde(default)]
    pub threads: usize,
}

/// `[sinks]`: where findings go besides the rows, in either mode.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinksConfig {
    /// `[sinks.kafka]`: every finding, as its `findings.ndjson` line, to a Kafka topic.
    #[serde(default)]
    pub kafka: KafkaSinkConfig,
}

/// `[sinks.kafka]`: the findings topic. Its transport is `[kafka]`'s (brokers,
/// properties, secrets from the environment, `allow_plaintext`), with each key here laid
/// over it: in the stream mode it needs nothing but `topic`; in the file mode, where
/// `[kafka]` names no brokers, `brokers` too.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// The topic findings are published to (absent or empty: none is).
    #[serde(default)]
    pub topic: Option<String>,
    /// `host:port[,host:port]`; default: `kafka.brokers`.
    #[serde(default)]
    pub brokers: Option<String>,
    /// librdkafka properties laid over `kafka.properties` (no secrets: `properties_env`).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// librdkafka properties from environment variables, laid over
    /// `kafka.properties_env`.
    #[serde(default)]
    pub properties_env: BTreeMap<String, String>,
    /// As `kafka.allow_plaintext`, for the findings topic; default: `kafka.allow_plaintext`.
    #[serde(default)]
    pub allow_plaintext: Option<bool>,
}

impl KafkaSinkConfig {
    /// The topic, when one is named.
    pub fn topic(&self) -> Option<&str> {
        self.topic
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }
}

impl fmt::Debug for KafkaSinkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSinkConfig")
            .field("topic", &self.topic)
            .field("brokers", &self.brokers)
            .field("properties", &self.properties.keys().collect::<Vec<_>>())
            .field("properties_env", &self.properties_env)
            .field("allow_plaintext", &self.allow_plaintext)
            .finish()
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where `/metrics`, `/healthz` and `/readyz` listen (empty: no listener). Beyond
    /// loopback, put a network policy in front: the listener has no authentication.
    #[serde(default = "default_metrics_listen")]
    pub listen: String,
    /// Connections served at once; more are closed as they arrive, so scrapers cannot
    /// take the file descriptors the Kafka and ClickHouse sockets need.
    #[serde(default = "default_metrics_max_connections")]
    pub max_connections: usize,
    /// Longest wait for a request's headers (also for an idle connection's next
    /// request); then the connection is closed.
    #[serde(default = "default_metrics_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: default_metrics_listen(),
            max_connections: default_metrics_max_connections(),
            header_read_timeout_ms: default_metrics_header_read_timeout_ms(),
        }
    }
}

fn default_metrics_listen() -> String {
    "127.0.0.1:9464".into()
}
fn default_metrics_max_connections() -> usize {
    crate::telemetry::http::DEFAULT_MAX_CONNECTIONS
}
fn default_metrics_header_read_timeout_ms() -> u64 {
    crate::telemetry::http::DEFAULT_HEADER_READ_TIMEOUT_MS
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
    /// SASL over a plain connection (`SASL_PLAINTEXT`, or SASL settings without
    /// `security.protocol`) to a broker that is not this machine is accepted; by default it
    /// is refused, since the credentials would cross the network in clear text.
    #[serde(default = "default_allow_plaintext")]
    pub allow_plaintext: bool,
}

/// `[clickhouse]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// HTTP(S) endpoint, without credentials (`https://host:8443`). Plain `http://` is
    /// accepted only to this machine unless `allow_plaintext`.
    #[serde(default = "default_clickhouse_url")]
    pub url: String,
    /// PEM file of the CA certificates trusted for `https://`, besides the Mozilla roots
    /// (a private CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Plain `http://` to another host is accepted; by default it is refused, since the
    /// password and the rows would cross the network in clear text.
    #[serde(default = "default_allow_plaintext")]
    pub allow_plaintext: bool,
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
    /// Days back a repeated event is recognised as a replay (memory: ~40 bytes per event
    /// inside the window). The one default that differs by mode (see
    /// [`default_replay_window_days`]); when the file and the environment leave it out,
    /// the loader fills in the mode's.
    #[serde(default = "default_stream_replay_window_days")]
    pub replay_window_days: i64,
    /// How many hours past the time it is processed an event may be dated; a later one
    /// is a `future_time` dead letter (so no single event moves a tenant's readiness day
    /// ahead).
    #[serde(default = "default_future_skew_hours")]
    pub future_skew_hours: i64,
    /// Decoded bearer tokens kept in the cache.
    #[serde(default = "default_token_cache_entries")]
    pub token_cache_entries: usize,
    /// The stream mode: days of rollout counters kept behind each tenant's newest day. At
    /// a checkpoint, older days (their rows written) leave state and its snapshot, so a
    /// snapshot grows with the tenants and users, not with the length of history; an event
    /// of a day whose 7-day window reaches a dropped day is a `state_limit` dead letter.
    /// At least 7. The file mode holds every day (it writes the rows at the end).
    #[serde(default = "default_keep_days")]
    pub keep_days: i64,
    /// Most tenants held in state (about 5.5 KB each with a user and a day; more with more). An
    /// event of a tenant past it is a `state_limit` dead letter.
    #[serde(default = "default_max_tenants")]
    pub max_tenants: usize,
    /// Most users held in one tenant's state (about 1 KB each). An event that would add a
    /// user past it is a `state_limit` dead letter.
    #[serde(default = "default_max_users_per_tenant")]
    pub max_users_per_tenant: usize,
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
            future_skew_hours: default_future_skew_hours(),
            token_cache_entries: default_token_cache_entries(),
            keep_days: default_keep_days(),
            max_tenants: default_max_tenants(),
            max_users_per_tenant: default_max_users_per_tenant(),
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
            allow_plaintext: default_allow_plaintext(),
        }
    }
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: default_clickhouse_url(),
            ca_file: None,
            allow_plaintext: default_allow_plaintext(),
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

fn default_allow_plaintext() -> bool {
    false
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
fn default_future_skew_hours() -> i64 {
    crate::pipeline::DEFAULT_FUTURE_SKEW_HOURS
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
fn default_keep_days() -> i64 {
    crate::state::DEFAULT_KEEP_DAYS
}
fn default_max_tenants() -> usize {
    crate::state::DEFAULT_MAX_TENANTS
}
fn default_max_users_per_tenant() -> usize {
    crate::state::DEFAULT_MAX_USERS_PER_TENANT
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
            .field("allow_plaintext", &self.allow_plaintext)
            .finish()
    }
}

impl fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field(
                "url",
                &crate::sink::clickhouse::transport::shown_url(&self.url),
            )
            .field("ca_file", &self.ca_file)
            .field("allow_plaintext", &self.allow_plaintext)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &"[not shown]")
            .field("batch_rows", &self.batch_rows)
            .field("batch_bytes", &self.batch_bytes)
            .field("flush_interval_ms", &self.flush_interval_ms)
            .finish()
    }
}
