//! `mfa-audit produce`: documents to a Kafka topic, keyed by tenant.

use super::{env_vars, runtime, AppError};
use crate::cli::ProduceArgs;
use mfa_audit::event::token::TokenReader;
use mfa_audit::source::file as input;
use std::time::{Duration, Instant};

/// `mfa-audit produce`: NDJSON documents to a topic, keyed by tenant.
pub fn run(args: &ProduceArgs) -> Result<(), AppError> {
    use mfa_audit::source::kafka::{ensure_topic, KeyedProducer};
    let (brokers, props) = match &args.config {
        Some(path) => {
            let c = mfa_audit::config::Config::load(path, &env_vars())?;
            let props = c.kafka_properties(&path.display().to_string())?;
            (c.kafka.brokers, props)
        }
        None => (args.brokers.clone(), std::collections::BTreeMap::new()),
    };
    let kafka = |e: mfa_audit::source::kafka::KafkaOpError| AppError::Io(e.to_string());
    // A failure says why the brokers did not answer (a certificate refused, say), when
    // librdkafka knows, rather than only that the request timed out.
    let explained =
        |e: mfa_audit::source::kafka::KafkaOpError| match mfa_audit::source::kafka::diagnose(
            &brokers,
            &props,
            Duration::from_secs(5),
        ) {
            Some(why) => AppError::Io(format!("{e} (brokers: {why})")),
            None => AppError::Io(e.to_string()),
        };
    if args.partitions > 0 {
        let created = runtime()?
            .block_on(ensure_topic(&brokers, &props, &args.topic, args.partitions))
            .map_err(explained)?;
        if created {
            eprintln!(
                "mfa-audit: created topic `{}` with {} partitions",
                args.topic, args.partitions
            );
        }
    }
    let producer = KeyedProducer::new(&brokers, &props, &args.topic).map_err(kafka)?;
    let tokens = TokenReader::new(mfa_audit::event::token::DEFAULT_TOKEN_CACHE_ENTRIES);
    let started = Instant::now();
    let mut sent = 0u64;
    let mut failure = None;
    for path in input::expand(&args.files)? {
        let mut on_doc = |doc: mfa_audit::source::Doc<'_>| {
            if failure.is_some() {
                return;
            }
            let key = std::str::from_utf8(doc.bytes).ok().and_then(|text| {
                mfa_audit::event::decode(text, &tokens)
                    .into_iter()
                    .find_map(|i| i.event.ok().map(|e| e.tenant_id().to_owned()))
            });
            match producer.send(key.as_deref().map(str::as_bytes), doc.bytes) {
                Ok(()) => sent += 1,
                Err(e) => failure = Some(e),
            }
            if sent.is_multiple_of(1000) {
                producer.poll();
            }
        };
        input::read(
            &path,
            mfa_audit::source::Framing::Auto,
            usize::MAX / 2,
            &mut on_doc,
            &mut |_| {},
        )?;
        if let Some(e) = failure.take() {
            return Err(kafka(e));
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(explained)?;
    eprintln!(
        "mfa-audit: produced {sent} messages to `{}` in {:.2}s",
        args.topic,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
