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
        inputs.len() >= 8,
        "expected the 8 data files, found {inputs:?}"
    );
    let p = common::processor("partner-mfa-2020-05");
    let sink = run(&p, &inputs);
    assert!(
        sink.dead_letters.is_empty(),
        "dead letters: {:#?}",
        sink.dead_letters
    );
    let events = p.metrics().events.with_label_values(&["sign_in"]).get();
    assert_eq!(events, 13, "one event per record");
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

/// The whole sign-in record, read from the public records: a rule that fires on every
/// sign-in and carries every whole-record attribute in its context shows what each record
/// gives (absent fields left out, never guessed).
#[test]
fn whole_record_attributes_read_from_public_records() {
    const ATTRS: [&str; 20] = [
        "sign_in.ip",
        "sign_in.upn",
        "sign_in.country",
        "sign_in.city",
        "sign_in.state",
        "sign_in.risk_level_during",
        "sign_in.risk_level_aggregated",
        "sign_in.risk_state",
        "sign_in.risk_detail",
        "sign_in.risk_event_types",
        "sign_in.device_trust_type",
        "sign_in.device_id",
        "sign_in.device_os",
        "sign_in.device_browser",
        "sign_in.original_transfer_method",
        "sign_in.session_id",
        "sign_in.step_result_details",
        "sign_in.ca_policies_applied",
        "sign_in.ca_policies_not_applied",
        "sign_in.ca_mfa_not_applied",
    ];
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("whole-record.toml");
    let context = ATTRS.map(|a| format!("\"{a}\"")).join(", ");
    std::fs::write(
        &policy,
        format!(
            r#"version = "test-whole-record"
title = "Every sign-in, with the whole record as context"
partner_roles = ["AdminAgent"]
[[surfaces]]
name = "detections"
readiness = false
[[rules]]
id = "SIGN_IN"
surface = "detections"
severity = "low"
summary = "a sign-in"
when = {{ attr = "event.kind", eq = "sign_in" }}
context = [{context}]

[readiness]
blocked = {{ attr = "day.enforced_gap", eq = true }}
ready = {{ attr = "day.uncovered_high", eq = 0 }}

[session]
max_age_hours = 24
partner_center_apps = ["Partner Center"]

[mfa]
satisfied_details = ["MFA requirement satisfied by claim in the token"]
second_factor_methods = ["Mobile app notification"]
demanded_error_codes = [50074, 50076]

[exceptions]
response_business_days = 3
"#
        ),
    )
    .unwrap();
    let p = common::processor(&policy.display().to_string());
    let root = common::root().join("tests/realdata");
    let ctx = |file: &str| -> Vec<serde_json::Value> {
        let sink = run(&p, &[root.join(file).display().to_string()]);
        assert!(sink.dead_letters.is_empty(), "{:#?}", sink.dead_letters);
        sink.findings
            .iter()
            .map(|f| serde_json::from_str(&f.context.to_json_text()).unwrap())
            .collect()
    };

    // Elastic's real member record: location, device texts, 12 CA policies of which
    // "Require MFA for everyone" succeeded; the MFA ones not applied are report-only, so
    // no policy requiring MFA was `notApplied`.
    let c = &ctx("elastic_noninteractive_mfa_member.log")[0];
    assert_eq!(c["sign_in.ip"], "81.2.69.143");
    assert_eq!(c["sign_in.country"], "GB");
    assert_eq!(c["sign_in.city"], "Strood");
    assert_eq!(c["sign_in.state"], "Medway");
    assert_eq!(c["sign_in.risk_level_during"], "none");
    assert_eq!(c["sign_in.risk_state"], "none");
    assert_eq!(c["sign_in.risk_event_types"], serde_json::json!([]));
    assert_eq!(c["sign_in.device_trust_type"], "Azure AD joined");
    assert_eq!(c["sign_in.device_os"], "Windows 10");
    assert_eq!(c["sign_in.device_browser"], "Edge 18.19042");
    assert_eq!(
        c["sign_in.step_result_details"],
        serde_json::json!(["MFA requirement satisfied by claim in the token"])
    );
    assert_eq!(
        c["sign_in.ca_policies_applied"],
        serde_json::json!(["Require MFA for everyone"])
    );
    assert_eq!(
        c["sign_in.ca_policies_not_applied"]
            .as_array()
            .unwrap()
            .len(),
        6,
        "{c}"
    );
    assert_eq!(c["sign_in.ca_mfa_not_applied"], false);
    assert!(
        c.get("sign_in.original_transfer_method").is_none(),
        "null is absent"
    );

    // Elastic's sanitized Exchange record: "03 - Require MFA for Admins" (grant `Mfa`)
    // was not applied.
    let c = &ctx("elastic_noninteractive_singlefactor_exo_sanitized.log")[0];
    assert_eq!(c["sign_in.country"], "DE");
    assert_eq!(c["sign_in.device_trust_type"], "Hybrid Azure AD joined");
    assert_eq!(c["sign_in.ca_mfa_not_applied"], true);
    assert!(c["sign_in.ca_policies_not_applied"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("03 - Require MFA for Admins")));
    assert_eq!(
        c["sign_in.ca_policies_applied"],
        serde_json::json!(["01 - Require Windows Hybrid AD Joined Device"])
    );

    // Elastic's interactive records carry an empty `appliedConditionalAccessPolicies`:
    // nothing applied, nothing not applied.
    let c = &ctx("elastic_signinlogs_interactive_singlefactor.log")[0];
    assert_eq!(c["sign_in.country"], "IN");
    assert_eq!(c["sign_in.ca_mfa_not_applied"], false);
    assert_eq!(c["sign_in.ca_policies_applied"], serde_json::json!([]));

    // Panther's risk fixtures: the risk levels and state as written, location from the
    // record's `properties` (not the envelope's `location`).
    let risk = ctx("panther_risklevel_passthrough_fixtures.ndjson");
    let levels: Vec<(&str, &str, &str)> = risk
        .iter()
        .map(|c| {
            assert_eq!(c["sign_in.ip"], "12.12.12.12");
            assert_eq!(c["sign_in.country"], "IE");
            assert_eq!(c["sign_in.city"], "Dublin");
            assert!(c.get("sign_in.ca_mfa_not_applied").is_none(), "no CA list");
            assert!(c.get("sign_in.upn").is_none(), "a service principal");
            (
                c["sign_in.risk_level_during"].as_str().unwrap(),
                c["sign_in.risk_level_aggregated"].as_str().unwrap(),
                c["sign_in.risk_state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        levels,
        [
            ("none", "none", "none"),
            ("none", "low", "none"),
            ("high", "none", "none"),
            ("high", "none", "dismissed"),
        ]
    );
}
