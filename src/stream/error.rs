//! Why the stream stopped: what the caller acts on (the exit status).

use super::config::ConfigError;
use crate::policy;
use crate::sink::clickhouse::ClickHouseError;
use crate::source::kafka::KafkaOpError;
use rdkafka::error::KafkaError;
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
