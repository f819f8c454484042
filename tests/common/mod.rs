//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod grafana;
pub mod services;

use jsonwebtoken::{encode, EncodingKey, Header};
use mfa_audit::event::token::TokenReader;
use mfa_audit::pipeline::{Origin, Processor};
use mfa_audit::policy;
use mfa_audit::sink::MemorySink;
use mfa_audit::telemetry::Metrics;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The HS256 key test tokens are signed with.
pub const TEST_KEY: &[u8] = b"conformance-test-key";

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A processor with empty state under a shipped policy.
pub fn processor(policy_name: &str) -> Processor {
    let p = policy::load(policy_name).unwrap_or_else(|e| panic!("{e}"));
    Processor::new(
        Arc::new(p),
        TokenReader::new(1000),
        Arc::new(Metrics::new()),
    )
}

/// A processor with empty state under every shipped policy at once.
pub fn processor_all_shipped() -> Processor {
    processor_of(&policy::SHIPPED.map(|(name, _)| name))
}

/// A processor with empty state under these shipped policies (by name) at once.
pub fn processor_of(names: &[&str]) -> Processor {
    let policies = names
        .iter()
        .map(|name| Arc::new(policy::load(name).unwrap()))
        .collect();
    Processor::with_policies(policies, TokenReader::new(1000), Arc::new(Metrics::new()))
}

/// A signed JWT over `claims`.
pub fn jwt(claims: &Value) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(TEST_KEY),
    )
    .unwrap()
}

/// A case event as the bytes of one document: a JSON string is taken raw; in an object,
/// `"authorization": {"claims": {...}}` becomes `"Bearer <JWT over the claims>"`.
pub fn document(event: &Value) -> String {
    match event {
        Value::String(raw) => raw.clone(),
        other => {
            let mut v = other.clone();
            if let Some(obj) = v.as_object_mut() {
                if let Some(claims) = obj
                    .get("authorization")
                    .and_then(|a| a.get("claims"))
                    .cloned()
                {
                    obj.insert(
                        "authorization".into(),
                        Value::String(format!("Bearer {}", jwt(&claims))),
                    );
                }
            }
            serde_json::to_string(&v).unwrap()
        }
    }
}

/// Processes documents one by one; returns the sink and, per document, its findings.
pub fn run_docs(p: &Processor, docs: &[String]) -> MemorySink {
    let mut sink = MemorySink::default();
    for (i, d) in docs.iter().enumerate() {
        let pos = format!("line {}", i + 1);
        let origin = Origin {
            source: "test",
            position: &pos,
        };
        p.process(origin, d.as_bytes(), None, &mut sink).unwrap();
    }
    p.snapshot(&mut sink).unwrap();
    sink
}

/// The `mfa-audit` binary cargo built for these tests.
pub fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_mfa-audit"))
}

/// A finished command's stdout and stderr; fails the test, showing them, unless it
/// succeeded.
pub fn ok(o: std::process::Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success(),
        "{what} failed ({:?}):\n{text}",
        o.status
    );
    text
}

/// The conformance cases (`tests/conformance/*.json`), sorted by name.
pub fn conformance_cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root().join("tests/conformance"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    cases.sort();
    cases
}

/// One conformance case, parsed.
pub fn case(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every conformance event as a document, case by case in name order.
pub fn conformance_documents() -> Vec<String> {
    conformance_cases()
        .iter()
        .flat_map(|p| {
            case(p)["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(document)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The public real records of `tests/realdata/` (its own files, not its subfolders), each
/// file's text, in name order.
pub fn realdata_texts() -> Vec<String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join("tests/realdata"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "md"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// A port of the services `scripts/services` runs: its override `MFA_SERVICES_<NAME>_PORT`
/// (e.g. `KAFKA`, `CLICKHOUSE_HTTP`, `PROMETHEUS`), or its default, so that a second checkout
/// runs its tests against services of its own on other ports.
pub fn service_port(name: &str, default: u16) -> u16 {
    std::env::var(format!("MFA_SERVICES_{name}_PORT"))
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(default)
}

/// `127.0.0.1:<service_port(name, default)>`.
pub fn service_addr(name: &str, default: u16) -> String {
    format!("127.0.0.1:{}", service_port(name, default))
}

/// ClickHouse's HTTP endpoint as `scripts/services start clickhouse` runs it.
pub fn clickhouse_url() -> String {
    format!("http://{}", service_addr("CLICKHOUSE_HTTP", 8123))
}

/// Where Prometheus (`scripts/services start prometheus`) scrapes the processor:
/// `MFA_SERVICES_METRICS_TARGET`, default 127.0.0.1:9464.
pub fn metrics_target() -> String {
    std::env::var("MFA_SERVICES_METRICS_TARGET").unwrap_or_else(|_| "127.0.0.1:9464".into())
}

/// The state dir of `scripts/services` (`MFA_SERVICES_DIR`, default `<repo>/.services`).
pub fn services_dir() -> PathBuf {
    std::env::var_os("MFA_SERVICES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".services"))
}
