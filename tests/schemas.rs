//! The JSON Schemas in `schemas/` describe what the decoder accepts: every generated and
//! conformance document of our own kinds validates, and a document the schema rejects for
//! a missing required field is one the decoder dead-letters as `missing_field`. The
//! ClickHouse DDL in `schemas/clickhouse/` matches the rows: every kind of row the pipeline
//! writes has its table's columns, in order.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure is reported by panicking"
)]

mod common;

use serde_json::{json, Value};
use std::collections::BTreeMap;

const KINDS: [&str; 6] = [
    "partner_api_request",
    "dashboard_request",
    "partner_role_assignment",
    "mfa_registration",
    "technical_exception",
    "policy_override",
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
    for path in common::conformance_cases() {
        if path.file_name().is_some_and(|n| n == "bad_input.json") {
            continue;
        }
        let case = common::case(&path);
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
        (
            "policy_override",
            json!({"type": "policy_override", "time": "2025-09-01T00:00:00Z", "tenantId": "t", "policy": "azure-mandatory-mfa", "surface": "azure_management", "enforcedFrom": "2026-07-01"}),
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

/// The columns of every table `schemas/clickhouse/` creates, in order, from all migrations.
fn clickhouse_tables() -> BTreeMap<String, Vec<String>> {
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, name, sql) in mfa_audit::sink::clickhouse::MIGRATIONS {
        for statement in mfa_audit::sink::clickhouse::statements(sql) {
            if let Some(rest) = statement.trim().strip_prefix("ALTER TABLE ") {
                // `ALTER TABLE t ADD COLUMN c TYPE ... [AFTER other]`
                let words: Vec<&str> = rest.split_whitespace().collect();
                assert_eq!(&words[1..3], ["ADD", "COLUMN"], "{name}: {statement}");
                let columns: &mut Vec<String> = tables
                    .get_mut(words[0])
                    .unwrap_or_else(|| panic!("{name}: alters unknown table {}", words[0]));
                let at = match words.iter().position(|w| *w == "AFTER") {
                    Some(i) => columns.iter().position(|c| c == words[i + 1]).unwrap() + 1,
                    None => columns.len(),
                };
                columns.insert(at, words[3].to_owned());
                continue;
            }
            let Some(rest) = statement.trim().strip_prefix("CREATE TABLE IF NOT EXISTS ") else {
                continue;
            };
            let (table, rest) = rest.split_once('\n').unwrap();
            let body = &rest[rest.find('(').unwrap() + 1..rest.find("\n)").unwrap()];
            let columns = body
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .map(str::to_owned)
                .collect();
            assert!(
                tables.insert(table.trim().to_owned(), columns).is_none(),
                "{name}: `{table}` created twice"
            );
        }
    }
    tables
}

/// The top-level keys of a JSON object, in the order they are written.
fn keys_in_order(json: &str) -> Vec<String> {
    struct Keys;
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut m: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(k) = m.next_key::<String>()? {
                m.next_value::<serde::de::IgnoredAny>()?;
                out.push(k);
            }
            Ok(out)
        }
    }
    use serde::Deserializer as _;
    serde_json::Deserializer::from_str(json)
        .deserialize_map(Keys)
        .unwrap()
}

/// Every row the pipeline writes is a `JSONEachRow` row of its table: its fields are the
/// table's columns, in order (`dead_letters`' `received_at` is the server's default).
#[test]
fn every_row_kind_has_its_tables_columns_in_order() {
    let tables = clickhouse_tables();
    let p = common::processor("partner-mfa-2020-05");
    let mut docs: Vec<String> = String::from_utf8(mfa_audit::generate::to_vec(
        &mfa_audit::generate::Options::new(4, 2000, 9),
    ))
    .unwrap()
    .lines()
    .map(str::to_owned)
    .collect();
    docs.push("not json".into());
    let sink = common::run_docs(&p, &docs);
    let written: [(&str, String); 5] = [
        ("findings", first_row(&sink.findings, "findings")),
        ("rollout_daily", first_row(&sink.rollout, "rollout_daily")),
        (
            "rollout_surfaces",
            first_row(&sink.surfaces, "rollout_surfaces"),
        ),
        ("agents", first_row(&sink.agents, "agents")),
        (
            "dead_letters",
            first_row(&sink.dead_letters, "dead_letters"),
        ),
    ];
    for (table, row) in &written {
        let mut want = tables
            .get(*table)
            .unwrap_or_else(|| panic!("no table `{table}` in schemas/clickhouse"))
            .clone();
        if *table == "dead_letters" {
            assert_eq!(want.pop().as_deref(), Some("received_at"));
        }
        // `context` is written only by a rule that carries some (none in this policy):
        // the column's default reads ''.
        if *table == "findings" {
            assert_eq!(want.pop().as_deref(), Some("context"));
        }
        assert_eq!(keys_in_order(row), want, "`{table}` row: {row}");
    }
    // `enforced` is written as JSON true/false, which the UInt8 column reads as 1/0.
    let surface: Value = serde_json::from_str(&written[2].1).unwrap();
    assert!(surface["enforced"].is_boolean(), "{surface}");
}

/// The first of `rows`, as the file sink writes it.
fn first_row<T: serde::Serialize>(rows: &[T], table: &str) -> String {
    let row = rows
        .first()
        .unwrap_or_else(|| panic!("the sample wrote no `{table}` row"));
    serde_json::to_string(row).unwrap()
}
