//! The conformance folder: each case in `tests/conformance/*.json` is a list of input
//! events and, per policy version (a shipped name, or a policy file such as
//! `tests/conformance/policies/user-rules.toml`), the exact findings expected (event
//! index, rule, enforced, excepted). A finding not listed fails the case as surely as a missing one,
//! so every case checks both that rules fire and that they stay quiet.
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
use std::collections::BTreeMap;

/// Event index, rule, enforced, excepted, and the finding's `context` as normalised JSON
/// text (empty when the finding carries none; a case's `context` says what it must be).
type Key = (usize, String, bool, bool, String);

fn run_case(path: &std::path::Path) -> Vec<String> {
    let case = common::case(path);
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let events = case["events"].as_array().expect("events");
    let docs: Vec<String> = events.iter().map(common::document).collect();
    let mut failures = Vec::new();
    let runs = case["runs"].as_array().expect("runs");
    assert!(!runs.is_empty(), "{name}: no runs");
    for run in runs {
        let policy = run["policy"].as_str().expect("policy");
        let p = common::processor(policy);
        let mut got: BTreeMap<Key, usize> = BTreeMap::new();
        let mut dead = Vec::new();
        for (i, d) in docs.iter().enumerate() {
            let mut sink = MemorySink::default();
            let pos = format!("line {}", i + 1);
            p.process(
                Origin {
                    source: &name,
                    position: &pos,
                },
                d.as_bytes(),
                None,
                &mut sink,
            )
            .unwrap();
            for f in sink.findings {
                let context = if f.context.is_empty() {
                    String::new()
                } else {
                    serde_json::from_str::<serde_json::Value>(&f.context.to_json_text())
                        .unwrap()
                        .to_string()
                };
                *got.entry((i, f.rule_id.to_string(), f.enforced, f.excepted, context))
                    .or_default() += 1;
                assert_eq!(*f.policy_version, p.policy().version);
            }
            dead.extend(
                sink.dead_letters
                    .into_iter()
                    .map(|d| d.reason.split(':').next().unwrap_or_default().to_owned()),
            );
        }
        let mut want: BTreeMap<Key, usize> = BTreeMap::new();
        for e in run["expect"].as_array().expect("expect") {
            let key = (
                e["event"].as_u64().expect("event") as usize,
                e["rule"].as_str().expect("rule").to_owned(),
                e["enforced"].as_bool().expect("enforced"),
                e["excepted"].as_bool().expect("excepted"),
                e.get("context").map(|c| c.to_string()).unwrap_or_default(),
            );
            *want.entry(key).or_default() += 1;
        }
        for (k, n) in &want {
            if got.get(k) != Some(n) {
                failures.push(format!(
                    "{name} [{policy}]: expected {k:?} x{n}, got x{}",
                    got.get(k).unwrap_or(&0)
                ));
            }
        }
        for (k, n) in &got {
            if !want.contains_key(k) {
                failures.push(format!("{name} [{policy}]: unexpected finding {k:?} x{n}"));
            }
        }
        let want_dead: Vec<String> = case["dead_letters"]
            .as_array()
            .map(|a| a.iter().map(|r| r.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        if dead != want_dead {
            failures.push(format!(
                "{name} [{policy}]: dead letters {dead:?}, expected {want_dead:?}"
            ));
        }
    }
    failures
}

#[test]
fn every_conformance_case_passes_under_every_policy_it_names() {
    let cases = common::conformance_cases();
    assert!(
        cases.len() >= 9,
        "the conformance folder lost cases: {cases:?}"
    );
    let failures: Vec<String> = cases.iter().flat_map(|c| run_case(c)).collect();
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_rule_of_both_policies_fires_somewhere_in_the_cases() {
    let mut fired: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for path in common::conformance_cases() {
        let case = common::case(&path);
        for run in case["runs"].as_array().unwrap() {
            let policy = run["policy"].as_str().unwrap().to_owned();
            // A file that extends a shipped policy and writes none of its own rules runs
            // the base's rules: a firing there is the base's (UNEXPECTED_COUNTRY_NO_MFA
            // fires only once a team fills its list, as tests/conformance/policies/
            // detections-us.toml does).
            let base = std::fs::read_to_string(common::root().join(&policy))
                .ok()
                .and_then(|text| text.parse::<toml::Table>().ok())
                .filter(|t| !t.contains_key("rules"))
                .and_then(|t| t.get("extends").and_then(|b| b.as_str()).map(str::to_owned));
            for e in run["expect"].as_array().unwrap() {
                let rule = e["rule"].as_str().unwrap().to_owned();
                for name in std::iter::once(&policy).chain(base.as_ref()) {
                    fired.entry(name.clone()).or_default().insert(rule.clone());
                }
            }
        }
    }
    for (name, _) in mfa_audit::policy::SHIPPED {
        let p = mfa_audit::policy::load(name).unwrap();
        for rule in &p.rules {
            if &*rule.id == "TOKEN_SIGNATURE_INVALID" {
                continue; // needs --jwks: covered by tests/cli.rs
            }
            assert!(
                fired.get(name).is_some_and(|s| s.contains(&*rule.id)),
                "rule {} of {name} fires in no conformance case",
                rule.id
            );
        }
    }
}

/// A finding's context as the rows carry it: the JSON text of an object, alike in NDJSON
/// (the file sink), the ClickHouse batch (the `findings.context` String column) and the
/// findings topic's lines, so a findings file loads into ClickHouse 18.16 as it is; a
/// finding without context writes no such field in either.
#[test]
fn context_is_json_text_in_files_and_for_clickhouse_alike() {
    use mfa_audit::sink::RowSink;
    let path = common::root().join("tests/conformance/sign_in_context.json");
    let case = common::case(&path);
    let doc = common::document(&case["events"][0]);
    let p = common::processor("tests/conformance/policies/context-rules.toml");
    let mut sink = MemorySink::default();
    p.process(
        Origin {
            source: "t",
            position: &"line 1",
        },
        doc.as_bytes(),
        None,
        &mut sink,
    )
    .unwrap();
    assert_eq!(sink.findings.len(), 1);
    let f = &sink.findings[0];
    let file_row: serde_json::Value = serde_json::to_value(f).unwrap();
    let text = file_row["context"]
        .as_str()
        .expect("JSON text in the file row");
    let context: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(context["sign_in.country"], "NG");
    let mut batch = mfa_audit::sink::clickhouse::Batch::default();
    batch.finding(f).unwrap();
    let mut plain = f.clone();
    plain.context = Default::default();
    batch.finding(&plain).unwrap();
    let lines: Vec<serde_json::Value> = std::str::from_utf8(batch.findings_ndjson())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0], file_row, "the ClickHouse line is the file row");
    assert!(lines[1].get("context").is_none(), "{}", lines[1]);
    assert!(serde_json::to_value(&plain)
        .unwrap()
        .get("context")
        .is_none());
}
