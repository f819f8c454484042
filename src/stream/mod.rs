//! The stream mode: a Kafka consumer group in, ClickHouse out, with the same
//! [`Processor`] as the file mode.
//!
//! Delivery: rows are flushed to ClickHouse in batches; at each checkpoint (every
//! `checkpoint_interval_ms`, on partition revoke, on shutdown and at `--until-end`) the
//! batch is flushed, the state of each partition's tenants is stored with the offset it
//! reflects, and only then is that offset committed. The committed offset therefore never
//! passes the stored state: a restart restores the snapshot and consumes from the commit,
//! and everything rewritten since is keyed (findings by event and rule, rollout and agents
//! by key with a version, dead letters by position), so nothing is lost and nothing is
//! doubled. ClickHouse unreachable: the partitions are paused (the consumer keeps polling,
//! so the group keeps it), the write retried with backoff, and consumption resumes. A
//! findings topic (`[sinks.kafka]`) is part of the flush: its deliveries are awaited
//! before any commit, and a failed one is retried as a refused insert is (so a finding
//! may be published twice after a crash or a retry, never lost).
//!
//! By role: [`config`] (TOML and environment), `error` ([`StreamError`]), `consumer` (the
//! Kafka consumer, its rebalance context and the poll loop), `engine` (partitions,
//! flushes, checkpoints), `backpressure` (retry, backoff, pausing), [`store`] (where
//! checkpoints keep their state); [`run`] wires them together.

// The configuration is one for both modes (`crate::config`); kept reachable here.
pub use crate::config;

mod backpressure;
mod consumer;
mod engine;
mod error;
pub mod store;

pub use engine::StreamSummary;
pub use error::StreamError;
pub use store::{ClickHouseStore, SnapshotStore, StoreError, StoreFuture};

use crate::event::token::TokenReader;
use crate::pipeline::Processor;
use crate::policy;
use crate::sink::clickhouse::{ClickHouse, Connection};
use crate::sink::kafka::FindingsTopic;
use crate::source::kafka::KeyedProducer;
use crate::telemetry::http::Health;
use crate::telemetry::Metrics;
use config::{Config, ConfigError};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs the stream until `shutdown` completes (or, with `until_end`, until every assigned
/// partition reached its end), then checkpoints and leaves the group. The caller decides
/// what shutdown is (`mfa-audit run`: SIGINT or SIGTERM; a test: a channel).
pub fn run(
    config: &Config,
    config_name: &str,
    until_end: bool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<StreamSummary, StreamError> {
    let group_id = config.kafka.group_id.clone();
    run_with_store(config, config_name, until_end, shutdown, move |ch| {
        Box::new(ClickHouseStore::new(ch.clone(), group_id))
    })
}

/// [`run`] with the checkpoints' state kept by the store `store` makes from the
/// configured ClickHouse client (production: [`ClickHouseStore`]). Public so a test can
/// put a store in front that fails on demand, and show that no offset is committed past
/// a state that was not stored.
pub fn run_with_store(
    config: &Config,
    config_name: &str,
    until_end: bool,
    shutdown: impl Future<Output = ()> + Send + 'static,
    store: impl FnOnce(&ClickHouse) -> Box<dyn SnapshotStore>,
) -> Result<StreamSummary, StreamError> {
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let processor = processor(config, &metrics)?;
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(StreamError::Runtime)?,
    );
    // Shutdown fans out as a flag the loop reads between steps.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        rt.spawn(async move {
            shutdown.await;
            stop.store(true, Ordering::SeqCst);
        });
    }
    serve_metrics(config, config_name, &rt, &metrics, &health)?;
    let ch = ClickHouse::new(&Connection {
        url: config.clickhouse.url.clone(),
        database: config.clickhouse.database.clone(),
        user: config.clickhouse.user.clone(),
        password: config.clickhouse_password(config_name)?,
        validation: config.clickhouse.validation,
        timeout: Duration::from_millis(config.clickhouse.request_timeout_ms),
        ca_file: config.clickhouse.ca_file.clone(),
        allow_plaintext: config.clickhouse.allow_plaintext,
    })?;
    let props = config.kafka_properties(config_name)?;
    let dlq = match &config.kafka.dead_letter_topic {
        Some(t) if !t.is_empty() => Some(KeyedProducer::new(&config.kafka.brokers, &props, t)?),
        _ => None,
    };
    let findings_topic = match config.findings_topic(config_name)? {
        Some(settings) => {
            tracing::info!(topic = %settings.topic, "findings published to a Kafka topic");
            Some(FindingsTopic::new(&settings, Arc::clone(&metrics))?)
        }
        None => None,
    };
    let engine = Arc::new(Mutex::new(engine::Engine::new(engine::Setup {
        processor,
        store: store(&ch),
        ch,
        rt: Arc::clone(&rt),
        dlq,
        findings_topic,
        knobs: engine::Knobs {
            batch_rows: config.clickhouse.batch_rows,
            batch_bytes: config.clickhouse.batch_bytes,
            flush_interval: Duration::from_millis(config.clickhouse.flush_interval_ms),
            checkpoint_interval: Duration::from_millis(config.pipeline.checkpoint_interval_ms),
            max_document_bytes: config.pipeline.max_document_bytes,
            keep_days: config.pipeline.keep_days,
        },
        metrics: Arc::clone(&metrics),
        health: Arc::clone(&health),
    })));
    let member = consumer::Member {
        brokers: &config.kafka.brokers,
        properties: &props,
        group_id: &config.kafka.group_id,
        instance_id: config.kafka.instance_id.as_deref(),
        topics: &config.kafka.topics,
    };
    let consumer = consumer::subscribe(&member, engine, metrics)?;
    tracing::info!(topics = ?config.kafka.topics, group = %config.kafka.group_id, until_end, "consuming");
    let backoff = backpressure::Backoff::new(
        config.pipeline.retry_initial_ms,
        config.pipeline.retry_max_ms,
    );
    consumer::consume(
        &consumer,
        &stop,
        until_end,
        &config.kafka.topics,
        backoff,
        health,
    )
}

/// The processor of the configured policies and key set.
fn processor(config: &Config, metrics: &Arc<Metrics>) -> Result<Processor, StreamError> {
    let policies = config
        .pipeline
        .chosen_policies()
        .iter()
        .map(|p| policy::load(p).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let tokens = match &config.pipeline.jwks {
        Some(path) => {
            TokenReader::with_jwks(crate::event::token::DEFAULT_TOKEN_CACHE_ENTRIES, path)?
        }
        None => TokenReader::new(crate::event::token::DEFAULT_TOKEN_CACHE_ENTRIES),
    };
    Ok(
        Processor::with_policies(policies, tokens, Arc::clone(metrics))
            .with_replay_window_days(config.pipeline.replay_window_days)
            .with_future_skew_hours(config.pipeline.future_skew_hours)
            .with_default_tenant(config.pipeline.tenant.clone())
            .with_limits(crate::pipeline::Limits {
                max_tenants: config.pipeline.max_tenants,
                max_users_per_tenant: config.pipeline.max_users_per_tenant,
            }),
    )
}

/// `/metrics`, `/healthz` and `/readyz` on `metrics.listen` (unless it is empty).
fn serve_metrics(
    config: &Config,
    config_name: &str,
    rt: &tokio::runtime::Runtime,
    metrics: &Arc<Metrics>,
    health: &Arc<Health>,
) -> Result<(), StreamError> {
    let listen = config.metrics.listen.trim();
    if listen.is_empty() {
        return Ok(());
    }
    let addr: std::net::SocketAddr = listen.parse().map_err(|e| {
        StreamError::Config(ConfigError::Invalid {
            path: config_name.to_owned(),
            message: format!("`metrics.listen` `{}`: {e}", config.metrics.listen),
        })
    })?;
    let bound = rt
        .block_on(crate::telemetry::http::serve(
            addr,
            Arc::clone(metrics),
            Arc::clone(health),
            crate::telemetry::http::Limits {
                max_connections: config.metrics.max_connections,
                header_read_timeout: Duration::from_millis(config.metrics.header_read_timeout_ms),
            },
        ))
        .map_err(|e| StreamError::Listen {
            addr: config.metrics.listen.clone(),
            source: e,
        })?;
    tracing::info!(%bound, "metrics on /metrics, /healthz, /readyz");
    Ok(())
}
