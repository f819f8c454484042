//! Decode + evaluate throughput per event kind and for the generated mix, beside the
//! naive baseline (parse the same bytes into `serde_json::Value`), beside serde_json
//! validating them (`IgnoredAny`) and reading them into a borrowed struct, in one run.
//!
//! `cargo bench --bench engine`; criterion prints MiB/s (bytes) per group. Single-threaded:
//! the figures are per core. Each iteration starts from an empty state (built outside the
//! timing), so every event is evaluated, none skipped as a replay.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure is reported by panicking"
)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mfa_audit::event::token::TokenReader;
use mfa_audit::generate::{self, Options};
use mfa_audit::pipeline::{Origin, Processor};
use mfa_audit::policy;
use mfa_audit::telemetry::Metrics;
use std::hint::black_box;
use std::sync::Arc;

fn processor() -> Processor {
    // INVARIANT: the shipped default policy loads (tested in policy::load).
    let p = policy::load(policy::DEFAULT_POLICY).expect("shipped policy");
    Processor::new(
        Arc::new(p),
        TokenReader::new(100_000),
        Arc::new(Metrics::new()),
    )
}

/// A sink that only counts, so the bench measures the engine, not allocation of copies.
#[derive(Default)]
struct Counting(u64);

impl mfa_audit::sink::RowSink for Counting {
    type Error = std::convert::Infallible;
    fn finding(&mut self, f: &policy::Finding) -> Result<(), Self::Error> {
        self.0 += f.detail.len() as u64;
        Ok(())
    }
    fn dead_letter(&mut self, _: &mfa_audit::sink::DeadLetter) -> Result<(), Self::Error> {
        self.0 += 1;
        Ok(())
    }
}

fn lines_of(kind: &str, all: &[String], facts: &[String]) -> Vec<String> {
    // Each kind's group starts with the directory facts, so rules see the state they
    // would in a real stream; the mix has them already.
    let mut v: Vec<String> = if kind == "mix" {
        Vec::new()
    } else {
        facts.to_vec()
    };
    v.extend(
        all.iter()
            .filter(|l| match kind {
                "mix" => true,
                "sign_in" => l.contains("\"category\":") && !l.starts_with("{\"records\""),
                "sign_in_batch" => l.starts_with("{\"records\""),
                "partner_api_request" => l.contains("\"type\":\"partner_api_request\""),
                "dashboard_request" => l.contains("\"type\":\"dashboard_request\""),
                _ => false,
            })
            .cloned(),
    );
    v
}

fn bench(c: &mut Criterion) {
    let text =
        String::from_utf8(generate::to_vec(&Options::new(20, 12_000, 1))).unwrap_or_default();
    let all: Vec<String> = text.lines().map(str::to_owned).collect();
    let facts: Vec<String> = all
        .iter()
        .filter(|l| {
            l.contains("\"type\":\"partner_role_assignment\"")
                || l.contains("\"type\":\"mfa_registration\"")
                || l.contains("\"type\":\"technical_exception\"")
        })
        .cloned()
        .collect();
    for kind in [
        "mix",
        "sign_in",
        "sign_in_batch",
        "partner_api_request",
        "dashboard_request",
    ] {
        let lines = lines_of(kind, &all, &facts);
        let bytes: u64 = lines.iter().map(|l| l.len() as u64 + 1).sum();
        let mut g = c.benchmark_group(kind);
        g.throughput(Throughput::Bytes(bytes));
        g.sample_size(20);
        g.bench_function("engine", |b| {
            b.iter_batched(
                processor,
                |p| {
                    let mut sink = Counting::default();
                    for (i, l) in lines.iter().enumerate() {
                        let origin = Origin {
                            source: "bench",
                            position: &i,
                        };
                        let _ = p.process(origin, l.as_bytes(), None, &mut sink);
                    }
                    black_box(sink.0)
                },
                BatchSize::LargeInput,
            )
        });
        g.bench_function("serde_json_value_baseline", |b| {
            b.iter(|| {
                let mut n = 0usize;
                for l in &lines {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(l) {
                        n += v.as_object().map_or(0, |o| o.len());
                    }
                }
                black_box(n)
            })
        });
        // What validating the same bytes costs without building anything.
        g.bench_function("serde_json_ignored_any_baseline", |b| {
            b.iter(|| {
                let mut n = 0usize;
                for l in &lines {
                    if serde_json::from_str::<serde::de::IgnoredAny>(l).is_ok() {
                        n += 1;
                    }
                }
                black_box(n)
            })
        });
        // Into a borrowed struct: the decoder's own first step (`event::wire::Wire`, every
        // field it reads, text borrowed from the line).
        g.bench_function("serde_json_borrowed_struct_baseline", |b| {
            b.iter(|| {
                let mut n = 0usize;
                for l in &lines {
                    if let Ok(w) = serde_json::from_str::<mfa_audit::event::wire::Wire<'_>>(l) {
                        n += usize::from(w.kind.is_some());
                    }
                }
                black_box(n)
            })
        });
        g.finish();
        let p = processor();
        let mut sink = Counting::default();
        let mut events = 0u64;
        for (i, l) in lines.iter().enumerate() {
            let origin = Origin {
                source: "bench",
                position: &i,
            };
            let Ok(o) = p.process(origin, l.as_bytes(), None, &mut sink);
            events += u64::from(o.events);
        }
        eprintln!(
            "{kind}: {} documents, {events} events, {:.1} MB ({:.0} B per event)",
            lines.len(),
            bytes as f64 / 1e6,
            bytes as f64 / events.max(1) as f64
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
