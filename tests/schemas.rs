//! The JSON Schemas in `schemas/` describe what the decoder accepts: every generated and
//! conformance document of our own kinds validates, and a document the schema rejects for
//! a missing required field is one the decoder dead-letters as `missing_field`.

mod common;

use serde_json::{json, Value};
use std::collections::BTreeMap;

const KINDS: [&str; 5] = [
    "partner_api_request",
    "dashboard_request",
    "partner_role_assignment",
    "mfa_registration",
    "technical_exception",
];

fn validators() -> BTreeMap<&'static str, jsonschema::Validator> {
    KINDS
        .iter()
        .map(|k| {
            let path = common::root().join(format!("schemas/{k}.schema.json"));
            let schema: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            (
                *k,
                jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{k}: {e}")),
            )
        })
        .collect()
}

fn documents() -> Vec<Value> {
    let mut docs: Vec<Value> = String::from_utf8(mfa_audit::generate::to_vec(
        &mfa_audit::generate::Options::new(4, 2000, 9),
    ))
    .unwrap()
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    for entry in std::fs::read_dir(common::root().join("tests/conformance")).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "bad_input.json") {
            continue;
        }
        let case: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for e in case["events"].as_array().unwrap() {
            docs.push(serde_json::from_str(&common::document(e)).unwrap());
        }
    }
    docs
}

#[test]
fn every_document_of_our_kinds_validates_against_its_schema() {
    let v = validators();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for doc in documents() {
        let Some(kind) = doc.get("type").and_then(Value::as_str) else {
            continue;
        };
        let validator = v
            .get(kind)
            .unwrap_or_else(|| panic!("no schema for {kind}"));
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{kind} failed its schema: {errors:?}\n{doc}"
        );
        *seen
            .entry(KINDS.iter().find(|k| **k == kind).unwrap())
            .or_default() += 1;
    }
    assert_eq!(seen.len(), KINDS.len(), "every kind was checked: {seen:?}");
}

#[test]
fn what_a_schema_requires_the_decoder_requires() {
    let v = validators();
    let full: BTreeMap<&str, Value> = BTreeMap::from([
        (
            "partner_api_request",
            json!({"type": "partner_api_request", "requestDateTime": "2020-05-02T00:00:00Z", "tenantId": "t"}),
        ),
        (
            "dashboard_request",
            json!({"type": "dashboard_request", "time": "2020-05-02T00:00:00Z", "tenantId": "t", "url": "https://partner.microsoft.com/x"}),
        ),
        (
            "partner_role_assignment",
            json!({"type": "partner_role_assignment", "time": "2020-05-02T00:00:00Z", "tenantId": "t", "userId": "u", "role": "AdminAgent"}),
        ),
        (
            "mfa_registration",
            json!({"type": "mfa_registration", "time": "2020-05-02T00:00:00Z", "tenantId": "t", "userId": "u", "isMfaRegistered": true}),
        ),
        (
            "technical_exception",
            json!({"type": "technical_exception", "time": "2020-05-02T00:00:00Z", "tenantId": "t", "exceptionId": "e", "status": "approved", "reason": "r"}),
        ),
    ]);
    for (kind, doc) in &full {
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(common::root().join(format!("schemas/{kind}.schema.json")))
                .unwrap(),
        )
        .unwrap();
        assert!(v[kind].is_valid(doc), "{kind} minimal document is valid");
        let p = common::processor("partner-mfa-2020-05");
        assert!(
            common::run_docs(&p, &[doc.to_string()])
                .dead_letters
                .is_empty(),
            "{kind} minimal document decodes"
        );
        for field in schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
        {
            if field == "type" {
                continue;
            }
            let mut d = doc.clone();
            d.as_object_mut().unwrap().remove(field);
            assert!(
                !v[kind].is_valid(&d),
                "{kind} without {field} is invalid by schema"
            );
            let p = common::processor("partner-mfa-2020-05");
            let sink = common::run_docs(&p, &[d.to_string()]);
            assert_eq!(
                sink.dead_letters.len(),
                1,
                "{kind} without {field} is dead-lettered"
            );
            assert!(
                sink.dead_letters[0].reason.starts_with("missing_field"),
                "{:?}",
                sink.dead_letters[0]
            );
        }
    }
}
