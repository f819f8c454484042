//! The public real sign-in records in `tests/realdata/` decode with zero dead letters.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure is reported by panicking"
)]

mod common;

use mfa_audit::pipeline::Origin;
use mfa_audit::sink::MemorySink;
use mfa_audit::source::{file, Framing};

#[test]
fn public_real_records_decode_without_dead_letters() {
    let dir = common::root().join("tests/realdata");
    let inputs = file::expand(&[dir.display().to_string()]).unwrap();
    assert!(
        inputs.len() >= 7,
        "expected the 7 data files, found {inputs:?}"
    );
    let p = common::processor("partner-mfa-2020-05");
    let mut sink = MemorySink::default();
    for input in &inputs {
        let mut on_doc = |d: mfa_audit::source::Doc<'_>| {
            let pos = format!("line {}", d.line);
            p.process(
                Origin {
                    source: input,
                    position: &pos,
                },
                d.bytes,
                None,
                &mut sink,
            )
            .unwrap();
        };
        file::read(input, Framing::Auto, 1 << 20, &mut on_doc, &mut |_| {}).unwrap();
    }
    assert!(
        sink.dead_letters.is_empty(),
        "dead letters: {:#?}",
        sink.dead_letters
    );
    let events = p.metrics().events.with_label_values(&["sign_in"]).get();
    assert_eq!(events, 9, "one event per record");
    // What the records say: the hand-written ROPC success is a password-flow legacy
    // sign-in; the SMTP record is legacy; the failed ROPC attempt and the MFA member
    // records are clean; b2bCollaboration visits are not delegated admin.
    let mut got: Vec<(String, String)> = sink
        .findings
        .iter()
        .map(|f| (f.rule_id.to_string(), f.client_app.clone()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("LEGACY_PROTOCOL".into(), "Authenticated SMTP".into()),
            ("LEGACY_PROTOCOL".into(), "Other clients".into()),
            ("PASSWORD_FLOW_TOKEN".into(), "Other clients".into()),
        ]
    );
}
