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

/// Every document of `inputs`, in order, through `p`.
fn run(p: &mfa_audit::pipeline::Processor, inputs: &[String]) -> MemorySink {
    let mut sink = MemorySink::default();
    for input in inputs {
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
    sink
}

#[test]
fn public_real_records_decode_without_dead_letters() {
    let dir = common::root().join("tests/realdata");
    let inputs = file::expand(&[dir.display().to_string()]).unwrap();
    assert!(
        inputs.len() >= 7,
        "expected the 7 data files, found {inputs:?}"
    );
    let p = common::processor("partner-mfa-2020-05");
    let sink = run(&p, &inputs);
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

/// The public directory records (tests/realdata/directory/): every audit record, GDAP
/// object and registration report is recognised as what it is, other categories are
/// counted and left alone, and none is judged as a sign-in. The only dead letters are the
/// records that are no Entra export at all: Elastic's time-format stubs (a `category` and
/// a `time`, no `properties`) and Office 365 Management Activity records.
#[test]
fn public_directory_records_are_recognised_as_what_they_are() {
    let dir = common::root().join("tests/realdata/directory");
    let inputs = file::expand(&[dir.display().to_string()]).unwrap();
    let p = common::processor("partner-mfa-2026")
        .with_default_tenant(Some("11111111-2222-4333-8444-555555555555".into()));
    let sink = run(&p, &inputs);
    let m = p.metrics();
    let events = |k: &str| m.events.with_label_values(&[k]).get();
    assert_eq!(
        events("sign_in"),
        0,
        "an audit record was judged as a sign-in"
    );
    // 30: several files repeat a record with other formatting (Microsoft's list and get
    // examples, Elastic's variants of one record), which is not a replay: the same id
    // with other bytes is applied and counted as a reused id.
    assert_eq!(events("directory_audit"), 30);
    assert_eq!(events("gdap_relationship"), 4);
    assert_eq!(events("gdap_access_assignment"), 3);
    assert_eq!(events("mfa_registration"), 4);
    for c in ["RiskyUsers", "MicrosoftGraphActivityLogs"] {
        assert_eq!(m.records_skipped.with_label_values(&[c]).get(), 2, "{c}");
    }
    let mut sources: Vec<&str> = sink
        .dead_letters
        .iter()
        .map(|d| d.source.rsplit('/').next().unwrap())
        .collect();
    sources.dedup();
    assert_eq!(
        sources,
        [
            "elastic_auditlogs_time_formats.log",
            "panther_o365_management_activity_strongauthenticationmethod.ndjson"
        ],
        "{:#?}",
        sink.dead_letters
    );
    // What the public records say under partner-mfa-2026: Panther's two Conditional
    // Access records (MFA removed from "MFA"; "Outside MFA" deleted) and Microsoft's
    // access-assignment example that grants Global Administrator (in its list and get
    // examples). Their Core Directory "Update policy" twins are not second findings.
    let mut got: Vec<&str> = sink.findings.iter().map(|f| &*f.rule_id).collect();
    got.sort();
    assert_eq!(
        got,
        [
            "CA_MFA_WEAKENED",
            "CA_MFA_WEAKENED",
            "GDAP_GLOBAL_ADMIN",
            "GDAP_GLOBAL_ADMIN"
        ],
        "{:#?}",
        sink.findings
    );
}
