//! The two ceilings of the stream benchmark (`scripts/bench-stream`), measured on the
//! same data as the end-to-end run:
//!   ceilings consume BROKERS TOPIC          a bare rdkafka consume of the whole topic
//!   ceilings insert URL DATABASE DIR        a bare insert of DIR's four NDJSON files
//! Each prints one line: what, count, seconds, per second.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a measuring tool run by hand: it stops with the reason when a step fails"
)]

use bytes::Bytes;
use mfa_audit::sink::clickhouse::{ClickHouse, Connection};
use mfa_audit::source::kafka::client_config;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::Message;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("consume") if args.len() == 4 => consume(&args[2], &args[3]),
        Some("insert") if args.len() == 5 => insert(&args[2], &args[3], &args[4]),
        _ => {
            eprintln!("usage: ceilings consume BROKERS TOPIC | ceilings insert URL DATABASE DIR");
            std::process::exit(2);
        }
    }
}

fn consume(brokers: &str, topic: &str) {
    let mut c = client_config(brokers, true, &BTreeMap::new());
    c.set("group.id", format!("ceiling-{}", std::process::id()));
    let consumer: BaseConsumer = c.create().expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut count = 0u64;
    let mut bytes = 0u64;
    let mut eof = HashSet::new();
    let mut started = None;
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                started.get_or_insert_with(Instant::now);
                count += 1;
                bytes += m.payload().map_or(0, |p| p.len() as u64);
                eof.remove(&m.partition());
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
                let assigned = consumer.assignment().map(|a| a.count()).unwrap_or(0);
                if assigned > 0 && eof.len() == assigned && count > 0 {
                    break;
                }
            }
            _ => {}
        }
    }
    let secs = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    println!(
        "consume ceiling: {count} messages, {:.1} MB in {secs:.2} s: {:.0} msg/s",
        bytes as f64 / 1e6,
        count as f64 / secs
    );
}

fn insert(url: &str, database: &str, dir: &str) {
    let ch = ClickHouse::new(&Connection {
        url: url.into(),
        database: database.into(),
        user: "default".into(),
        password: String::new(),
        validation: false,
        timeout: Duration::from_secs(300),
        ca_file: None,
        allow_plaintext: false,
    })
    .expect("clickhouse client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(ch.apply_schema()).expect("schema");
    let mut rows = 0u64;
    let started = Instant::now();
    for (table, file, cols) in [
        ("findings", "findings.ndjson", None),
        (
            "dead_letters",
            "dead_letters.ndjson",
            Some("source, position, reason, excerpt"),
        ),
        ("rollout_daily", "rollout_daily.ndjson", None),
        ("agents", "agents.ndjson", None),
    ] {
        let text = std::fs::read_to_string(format!("{dir}/{file}")).expect("rows");
        let lines: Vec<&str> = text.lines().collect();
        for chunk in lines.chunks(100_000) {
            let body = chunk.join("\n");
            rt.block_on(ch.insert(table, cols, Bytes::from(body)))
                .expect("insert");
            rows += chunk.len() as u64;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "insert ceiling: {rows} rows in {secs:.2} s: {:.0} rows/s",
        rows as f64 / secs
    );
}
