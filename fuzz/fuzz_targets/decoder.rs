//! Arbitrary bytes through the input path exactly as `mfa-audit` runs it, under the
//! shipped policy `partner-mfa-2020-05` (first, so `Processor::policy` is it) and every
//! other shipped policy beside it (`--policy A --policy B`), so that every rule of every
//! version runs on every input.
//!
//! 1. the whole input as ONE document (a Kafka message: `Processor::process` directly);
//! 2. the input as a file: cut by the `Framer` (auto framing, a small size limit so that
//!    oversized documents happen), every document through `Processor::process`, then the
//!    rollout/agent snapshot.
//!
//! UTF-8 handling, shape recognition, decoding, token reading, rule evaluation and the
//! per-tenant state are all exercised. Beyond "no panic", it checks:
//! - every document becomes events, replays or dead letters (one per decoded item), and
//!   a document that yields nothing is an empty batch;
//! - the counts `process` returns match the rows the sink received;
//! - the framer's documents do not depend on how the input was chunked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_audit::event::{self, token::TokenReader};
use mfa_audit::pipeline::{Origin, Processor};
use mfa_audit::policy::{self, Policy};
use mfa_audit::sink::MemorySink;
use mfa_audit::source::{Framer, Framing};
use mfa_audit::telemetry::Metrics;
use std::sync::{Arc, OnceLock};

/// The size limit of one framed document (the tool's default is 1 MiB; inputs here are
/// a few KiB, so a small limit makes `oversized` reachable).
const MAX_DOC: usize = 1024;

const FIRST: &str = "partner-mfa-2020-05";

fn shared() -> &'static (Vec<Arc<Policy>>, Arc<Metrics>) {
    static S: OnceLock<(Vec<Arc<Policy>>, Arc<Metrics>)> = OnceLock::new();
    S.get_or_init(|| {
        let mut names = vec![FIRST];
        names.extend(
            policy::SHIPPED
                .iter()
                .map(|(n, _)| *n)
                .filter(|n| *n != FIRST),
        );
        let policies = names
            .into_iter()
            .map(|n| Arc::new(policy::load(n).expect("shipped policy loads")))
            .collect();
        (policies, Arc::new(Metrics::new()))
    })
}

/// A processor with empty state (fresh per input, so that runs are deterministic).
fn processor() -> Processor {
    let (p, m) = shared();
    Processor::with_policies(p.clone(), TokenReader::new(64), Arc::clone(m))
}

/// A document that decodes to no item at all: only an empty batch may.
fn is_empty_batch(bytes: &[u8]) -> bool {
    let Ok(serde_json::Value::Object(o)) = serde_json::from_slice::<serde_json::Value>(bytes)
    else {
        return false;
    };
    let batch = o.get("records").or_else(|| o.get("value"));
    matches!(batch, Some(serde_json::Value::Array(a)) if a.is_empty())
}

fn one_document(
    p: &Processor,
    sink: &mut MemorySink,
    n: usize,
    bytes: &[u8],
    oversized: Option<usize>,
) {
    let (findings0, dead0) = (sink.findings.len(), sink.dead_letters.len());
    let pos = format!("line {n}");
    let origin = Origin {
        source: "fuzz",
        position: &pos,
    };
    let Ok(out) = p.process(origin, bytes, oversized, sink);
    assert_eq!(
        out.findings as usize,
        sink.findings.len() - findings0,
        "findings count"
    );
    assert_eq!(
        out.dead_letters as usize,
        sink.dead_letters.len() - dead0,
        "dead letter count"
    );
    let handled = out.events + out.dead_letters + out.duplicates + out.skipped;
    // The items the decoder makes of this document, counted with a reader of its own.
    let expected = match (oversized, std::str::from_utf8(bytes)) {
        (Some(_), _) | (None, Err(_)) => 1,
        (None, Ok(text)) => event::decode(text, &TokenReader::new(4)).len() as u32,
    };
    assert_eq!(
        handled, expected,
        "every item is an event, a replay, a skipped record or a dead letter"
    );
    if handled == 0 {
        assert!(
            is_empty_batch(bytes),
            "a document vanished without a dead letter"
        );
    }
}

fn frame(data: &[u8], cuts: &[usize]) -> Vec<(u64, Vec<u8>, usize, bool)> {
    let mut docs = Vec::new();
    let mut f = Framer::new(Framing::Auto, MAX_DOC);
    let mut emit = |d: mfa_audit::source::Doc<'_>| {
        docs.push((d.line, d.bytes.to_vec(), d.len, d.oversized));
    };
    let mut start = 0;
    for &c in cuts.iter().chain(std::iter::once(&data.len())) {
        let c = c.clamp(start, data.len());
        f.push(&data[start..c], &mut emit);
        start = c;
    }
    f.finish(&mut emit);
    docs
}

fuzz_target!(|data: &[u8]| {
    // 1. One message, one document (the stream mode).
    let p = processor();
    let mut sink = MemorySink::default();
    one_document(&p, &mut sink, 1, data, None);
    let Ok(()) = p.snapshot(&mut sink);

    // 2. A file: framed, every document processed under one state.
    let docs = frame(data, &[]);
    if data.len() > 1 {
        // Chunking must not change the documents (the framer's promise).
        let a = data.len() / 3;
        let b = (data.len() * 2 / 3).max(a + 1);
        assert_eq!(docs, frame(data, &[a, b]), "framing depends on chunking");
    }
    let p = processor();
    let mut sink = MemorySink::default();
    for (line, bytes, len, oversized) in &docs {
        one_document(
            &p,
            &mut sink,
            *line as usize,
            bytes,
            oversized.then_some(*len),
        );
    }
    let Ok(()) = p.snapshot(&mut sink);
});
