//! Inputs the fuzz targets (fuzz/README.md) found to crash or hang, kept as they were
//! found in `tests/fuzz_regressions/<target>/`, fed through the same public API as the
//! target: each must run without a panic, and for the decoder every document must become
//! events (or replays) or a dead letter.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure is reported by panicking"
)]

use mfa_audit::event::token::TokenReader;
use mfa_audit::event::{self};
use mfa_audit::pipeline::{Origin, Processor};
use mfa_audit::policy::load::{parse, Format};
use mfa_audit::policy::{self};
use mfa_audit::sink::MemorySink;
use mfa_audit::source::{Framer, Framing};
use mfa_audit::telemetry::Metrics;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The saved inputs of one target.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

/// Runs `f` on every saved input of `target`; fails naming every input that panicked.
/// Returns how many inputs ran.
fn each(target: &str, f: impl Fn(&[u8])) -> usize {
    let saved = inputs(target);
    let n = saved.len();
    let mut failed = Vec::new();
    for (path, bytes) in saved {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&bytes)));
        if r.is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "panicked on: {failed:#?}");
    n
}

fn processor(p: &Arc<policy::Policy>) -> Processor {
    Processor::new(
        Arc::clone(p),
        TokenReader::new(64),
        Arc::new(Metrics::new()),
    )
}

/// One document through `process`: it must become events, replays or dead letters (one
/// per decoded item); only an empty batch may yield nothing.
fn one_document(p: &Processor, bytes: &[u8], oversized: Option<usize>) {
    let mut sink = MemorySink::default();
    let origin = Origin {
        source: "fuzz",
        position: &"line 1",
    };
    let Ok(out) = p.process(origin, bytes, oversized, &mut sink);
    assert_eq!(out.dead_letters as usize, sink.dead_letters.len());
    assert_eq!(out.findings as usize, sink.findings.len());
    let handled = out.events + out.dead_letters + out.duplicates + out.skipped;
    let expected = match (oversized, std::str::from_utf8(bytes)) {
        (Some(_), _) | (None, Err(_)) => 1,
        (None, Ok(text)) => event::decode(text, &TokenReader::new(4)).len() as u32,
    };
    assert_eq!(handled, expected);
    if handled == 0 {
        let v: serde_json::Value = serde_json::from_slice(bytes).expect("an empty batch");
        let batch = v.get("records").or_else(|| v.get("value"));
        assert!(
            matches!(batch, Some(serde_json::Value::Array(a)) if a.is_empty()),
            "a document vanished without a dead letter"
        );
    }
}

/// Every saved input of every target runs clean. The folder is not empty: the policy
/// loader's `extends = "/dev/zero"` (read for ever before the loader refused anything but
/// a regular file) is the first regression kept.
#[test]
fn every_saved_input_runs_clean() {
    let ran = decoder_inputs() + token_inputs() + policy_loader_inputs();
    assert!(
        ran >= 1,
        "no saved input ran: tests/fuzz_regressions/ lost its files"
    );
}

fn decoder_inputs() -> usize {
    let policy = Arc::new(policy::load("partner-mfa-2020-05").unwrap());
    each("decoder", |data| {
        // As one message (stream mode).
        let p = processor(&policy);
        one_document(&p, data, None);
        p.snapshot(&mut MemorySink::default()).unwrap();
        // As a file (the fuzz target's 1 KiB document limit).
        let p = processor(&policy);
        let mut f = Framer::new(Framing::Auto, 1024);
        let mut docs = Vec::new();
        let mut emit = |d: mfa_audit::source::Doc<'_>| {
            docs.push((d.bytes.to_vec(), d.oversized.then_some(d.len)));
        };
        f.push(data, &mut emit);
        f.finish(&mut emit);
        for (bytes, oversized) in &docs {
            one_document(&p, bytes, *oversized);
        }
        p.snapshot(&mut MemorySink::default()).unwrap();
    })
}

fn token_inputs() -> usize {
    each("token", |data| {
        let Some((&mode, rest)) = data.split_first() else {
            return;
        };
        assert_eq!(mode & 1, 0, "inputs with a key set are not kept here");
        let reader = TokenReader::new(2);
        for header in String::from_utf8_lossy(rest).split('\n').take(8) {
            if let Ok(info) = reader.read(header) {
                let _ = (info.claims.is_app_user(), info.claims.is_password_flow());
            }
        }
    })
}

fn policy_loader_inputs() -> usize {
    let events = include_str!("../fuzz/fuzz_targets/policy_loader_events.ndjson");
    each("policy_loader", |data| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let format = if text.trim_start().starts_with('{') {
            Format::Json
        } else {
            Format::Toml
        };
        let Ok(p) = parse(text, "/nonexistent-fuzz-dir/fuzz-policy.toml", format) else {
            return;
        };
        let p = processor(&Arc::new(p));
        let mut sink = MemorySink::default();
        for line in events.lines() {
            let origin = Origin {
                source: "fuzz",
                position: &"line 1",
            };
            let Ok(_) = p.process(origin, line.as_bytes(), None, &mut sink);
        }
        p.snapshot(&mut sink).unwrap();
    })
}
