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
            .block_on(ensure_topic(
                &brokers,
                &props,
                &args.topic,
                args.partitions,
                &args.topic_config,
            ))
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
            if let Some(wait) = pace(sent, args.rate, started.elapsed()) {
                producer.poll();
                std::thread::sleep(wait);
            }
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

/// How long to wait before sending message number `sent` (from 0) so that `rate`
/// messages a second are sent evenly from the start: message n is due at n / rate
/// seconds. `None` when it is due (or `rate` is 0: no limit). A producer that fell
/// behind (a slow broker) sends at once until it is back on time: the average holds.
fn pace(sent: u64, rate: u64, elapsed: Duration) -> Option<Duration> {
    if rate == 0 {
        return None;
    }
    let due = Duration::from_secs_f64(sent as f64 / rate as f64);
    due.checked_sub(elapsed).filter(|w| !w.is_zero())
}

#[cfg(test)]
mod tests {
    use super::pace;
    use std::time::Duration;

    #[test]
    fn no_rate_never_waits() {
        assert_eq!(pace(1_000_000, 0, Duration::ZERO), None);
    }

    #[test]
    fn message_n_is_due_at_n_over_rate_seconds() {
        // 100 a second: message 50 is due at 0.5 s.
        assert_eq!(pace(0, 100, Duration::ZERO), None);
        assert_eq!(
            pace(50, 100, Duration::from_millis(200)),
            Some(Duration::from_millis(300))
        );
        assert_eq!(pace(50, 100, Duration::from_millis(500)), None);
        // Behind time: no wait until it catches up.
        assert_eq!(pace(50, 100, Duration::from_secs(3)), None);
    }

    #[test]
    fn a_paced_loop_sends_rate_messages_a_second() {
        // Simulated clock: 1,000 messages at 400 a second take 2.5 s (the last is due at
        // 999/400 s).
        let mut clock = Duration::ZERO;
        for n in 0..1000 {
            if let Some(w) = pace(n, 400, clock) {
                clock += w;
            }
        }
        assert!(
            (clock.as_secs_f64() - 999.0 / 400.0).abs() < 1e-6,
            "{clock:?}"
        );
    }
}
