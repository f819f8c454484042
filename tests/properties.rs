//! Invariants, with proptest: no input panics; every bad document is exactly one dead
//! letter; chunking does not change the rows; replaying the same log writes the same rows.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure is reported by panicking"
)]

mod common;

use mfa_audit::generate::{self, Options};
use mfa_audit::pipeline::{Origin, Processor};
use mfa_audit::sink::MemorySink;
use mfa_audit::source::{Framer, Framing};
use proptest::prelude::*;

/// Runs bytes through the framer, in the given chunk sizes (cycled), and the processor.
fn run_bytes(p: &Processor, input: &[u8], chunks: &[usize], sink: &mut MemorySink) -> usize {
    let mut framer = Framer::new(Framing::Auto, 64 * 1024);
    let mut docs = 0usize;
    let mut emit = |d: mfa_audit::source::Doc<'_>| {
        docs += 1;
        let pos = format!("line {}", d.line);
        let origin = Origin {
            source: "prop",
            position: &pos,
        };
        p.process(origin, d.bytes, d.oversized.then_some(d.len), sink)
            .unwrap();
    };
    let mut rest = input;
    let mut i = 0;
    while !rest.is_empty() {
        let n = chunks
            .get(i % chunks.len().max(1))
            .copied()
            .unwrap_or(rest.len())
            .clamp(1, rest.len());
        framer.push(&rest[..n], &mut emit);
        rest = &rest[n..];
        i += 1;
    }
    framer.finish(&mut emit);
    docs
}

fn rows(p: &Processor, input: &[u8], chunks: &[usize]) -> MemorySink {
    let mut sink = MemorySink::default();
    run_bytes(p, input, chunks, &mut sink);
    p.snapshot(&mut sink).unwrap();
    sink
}

fn sample() -> Vec<u8> {
    let mut v = generate::to_vec(&Options::new(3, 400, 11));
    // A few bad documents among the good ones.
    v.extend_from_slice(
        b"not json\n{\"type\":\"nope\"}\n[1]\n{\"records\":[{\"properties\":{\"id\":5}}]}\n",
    );
    v.extend_from_slice(&generate::to_vec(&Options::new(2, 100, 12)));
    v
}

/// Good single-event documents.
fn good_docs() -> Vec<String> {
    let text = String::from_utf8(generate::to_vec(&Options::new(2, 60, 3))).unwrap();
    text.lines()
        .filter(|l| !l.starts_with("{\"records\""))
        .map(str::to_owned)
        .collect()
}

fn bad_line() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..120).prop_filter(
        "one non-blank line, not a lone `{`/`[`",
        |v| {
            !v.contains(&b'\n')
                && v.iter().any(|b| !b.is_ascii_whitespace())
                && !matches!(v.trim_ascii(), b"{" | b"[")
                && !v.ends_with(b"\r")
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn any_bytes_never_panic_and_every_document_has_an_outcome(input in prop::collection::vec(any::<u8>(), 0..4096)) {
        let p = common::processor("partner-mfa-2020-05");
        let mut sink = MemorySink::default();
        let docs = run_bytes(&p, &input, &[97], &mut sink);
        let m = p.metrics();
        let events: u64 = ["sign_in", "partner_api_request", "dashboard_request", "partner_role_assignment", "mfa_registration", "technical_exception"]
            .iter().map(|k| m.events.with_label_values(&[k]).get()).sum();
        prop_assert!(sink.dead_letters.len() as u64 + events + m.duplicates.get() >= docs as u64);
        for d in &sink.dead_letters {
            prop_assert!(d.excerpt.len() <= 512);
        }
    }

    #[test]
    fn every_bad_document_is_exactly_one_dead_letter(
        picks in prop::collection::vec((any::<bool>(), 0usize..1000, bad_line()), 1..40)
    ) {
        let good = good_docs();
        let mut input = Vec::new();
        let mut bad = 0;
        let mut bad_lines = Vec::new();
        for (is_good, k, line) in &picks {
            if *is_good {
                input.extend_from_slice(good[k % good.len()].as_bytes());
            } else {
                input.extend_from_slice(line);
                bad += 1;
                bad_lines.push(input.iter().filter(|b| **b == b'\n').count() + 1);
            }
            input.push(b'\n');
        }
        let p = common::processor("partner-mfa-2020-05");
        let sink = rows(&p, &input, &[4096]);
        prop_assert_eq!(sink.dead_letters.len(), bad, "dead letters: {:?}", sink.dead_letters);
        let positions: Vec<String> = bad_lines.iter().map(|l| format!("line {l}")).collect();
        let got: Vec<String> = sink.dead_letters.iter().map(|d| d.position.clone()).collect();
        prop_assert_eq!(got, positions);
    }

    #[test]
    fn chunking_does_not_change_the_rows(chunks in prop::collection::vec(1usize..5000, 1..8)) {
        let input = sample();
        let whole = rows(&common::processor("partner-mfa-2020-05"), &input, &[input.len()]);
        let chunked = rows(&common::processor("partner-mfa-2020-05"), &input, &chunks);
        prop_assert_eq!(&whole.findings, &chunked.findings);
        prop_assert_eq!(&whole.dead_letters, &chunked.dead_letters);
        prop_assert_eq!(&whole.rollout, &chunked.rollout);
        prop_assert_eq!(&whole.agents, &chunked.agents);
    }
}

#[test]
fn replaying_the_log_writes_nothing_new_and_runs_are_deterministic() {
    let input = sample();
    let once = rows(&common::processor("partner-mfa-2020-05"), &input, &[8192]);
    let again = rows(&common::processor("partner-mfa-2020-05"), &input, &[8192]);
    assert_eq!(once.findings, again.findings);
    assert_eq!(once.rollout, again.rollout);
    assert_eq!(once.agents, again.agents);
    assert_eq!(once.dead_letters, again.dead_letters);
    assert!(!once.findings.is_empty() && !once.rollout.is_empty() && !once.agents.is_empty());

    // The same log twice into one processor: the replay adds no finding and changes no
    // rollout or agent row (only the bad documents are dead-lettered again).
    let mut twice_input = input.clone();
    twice_input.extend_from_slice(&input);
    let twice = rows(
        &common::processor("partner-mfa-2020-05"),
        &twice_input,
        &[8192],
    );
    assert_eq!(once.findings, twice.findings);
    assert_eq!(once.rollout, twice.rollout);
    assert_eq!(once.agents, twice.agents);
    assert_eq!(twice.dead_letters.len(), 2 * once.dead_letters.len());
}

#[test]
fn a_snapshot_restores_the_state_exactly_and_processing_continues_identically() {
    let text = String::from_utf8(generate::to_vec(&Options::new(4, 3000, 17))).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let feed = |p: &Processor, docs: &[&str], sink: &mut MemorySink| {
        for (i, d) in docs.iter().enumerate() {
            let pos = format!("line {i}");
            p.process(
                Origin {
                    source: "snap",
                    position: &pos,
                },
                d.as_bytes(),
                None,
                sink,
            )
            .unwrap();
        }
    };
    // Uninterrupted.
    let whole = common::processor("partner-mfa-2020-05");
    let mut a = MemorySink::default();
    feed(&whole, first, &mut a);
    let tenants = whole.engines()[0].state().tenant_ids();
    let snapshot = whole.snapshot_json(&tenants).unwrap();
    feed(&whole, second, &mut a);
    whole.snapshot(&mut a).unwrap();
    // Restored from the snapshot taken half way, then the rest.
    let restored = common::processor("partner-mfa-2020-05");
    let ids = restored.restore_json(&snapshot).unwrap();
    assert_eq!(ids.len(), tenants.len());
    let mut b = MemorySink::default();
    feed(&restored, second, &mut b);
    restored.snapshot(&mut b).unwrap();
    let tail = a.findings.len() - b.findings.len();
    assert_eq!(
        &a.findings[tail..],
        &b.findings[..],
        "findings after the snapshot"
    );
    assert_eq!(a.rollout, b.rollout);
    assert_eq!(a.surfaces, b.surfaces);
    assert_eq!(a.agents, b.agents);
    // And the state after both is the same, tenant by tenant.
    type Tenants = Vec<(String, mfa_audit::state::TenantState)>;
    let read = |p: &Processor| -> Tenants {
        let mut v: Tenants =
            serde_json::from_str(&p.engines()[0].state().snapshot_json(&tenants).unwrap()).unwrap();
        v.sort_by(|x, y| x.0.cmp(&y.0));
        v
    };
    assert!(read(&restored) == read(&whole), "restored state diverged");
}
