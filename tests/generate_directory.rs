//! `mfa-audit generate` writes Microsoft's directory records beside the project's own kinds:
//! Entra audit records (Azure Monitor `AuditLogs`) of every tenant, and, with `--tenant`,
//! the first tenant's Graph exports (registration report, GDAP relationships and access
//! assignments). Run under partner-mfa-2026 with the same `--tenant`, they are decoded
//! with no dead letter and the directory rules fire on them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure is reported by panicking"
)]

mod common;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const TENANT: &str = "3f1c2a7e-5b8d-4e6f-9a10-2c4d6e8f0a1b";

/// `generate` into `dir/s.ndjson` with `args` after the common ones; its stderr.
fn generate(dir: &Path, args: &[&str]) -> String {
    let o = common::bin()
        .current_dir(dir)
        .args(["generate", "--tenants", "20", "--seed", "1"])
        .args(["--start", "2026-03-27", "--out", "s.ndjson"])
        .args(args)
        .output()
        .unwrap();
    common::ok(o, "generate")
}

/// `run` of `dir/s.ndjson` under partner-mfa-2026 into `dir/out`; its stdout and stderr.
fn run(dir: &Path, tenant: Option<&str>) -> String {
    let mut c = common::bin();
    c.current_dir(dir)
        .args(["run", "--policy", "partner-mfa-2026", "--input", "s.ndjson"])
        .args(["--out", "out"]);
    if let Some(t) = tenant {
        c.args(["--tenant", t]);
    }
    common::ok(c.output().unwrap(), "run")
}

fn rows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The counter lines the run prints, by name with labels.
fn counters(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("mfa_audit_"))
        .filter_map(|l| {
            let (name, n) = l.rsplit_once(' ')?;
            Some((name.to_owned(), n.parse().ok()?))
        })
        .collect()
}

/// The generated documents, parsed.
fn documents(dir: &Path) -> Vec<Value> {
    rows(&dir.join("s.ndjson"))
}

fn is_audit(d: &Value) -> bool {
    d["category"] == "AuditLogs"
}

fn graph_page<'d>(d: &'d Value, what: &str) -> Option<&'d Vec<Value>> {
    d["@odata.context"]
        .as_str()
        .filter(|c| c.ends_with(what))
        .and(d["value"].as_array())
}

#[test]
fn the_default_stream_with_its_tenant_gives_directory_events_and_findings_and_no_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let said = generate(d, &["--events", "12000", "--tenant", TENANT]);
    assert!(
        said.contains(&format!("run the stream with `--tenant {TENANT}`")),
        "{said}"
    );
    let docs = documents(d);
    let report_rows: usize = docs
        .iter()
        .filter_map(|d| graph_page(d, "#reports/authenticationMethods/userRegistrationDetails"))
        .map(Vec::len)
        .sum();
    let own_registrations = docs
        .iter()
        .filter(|d| d["type"] == "mfa_registration")
        .count();
    // The report stands for the first tenant's registration facts: its rows are that
    // tenant's users (those its role assignments name), and it has no row of its own kind.
    let report_users: BTreeSet<&str> = docs
        .iter()
        .filter_map(|d| graph_page(d, "#reports/authenticationMethods/userRegistrationDetails"))
        .flatten()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let role_users: BTreeSet<&str> = docs
        .iter()
        .filter(|d| d["type"] == "partner_role_assignment" && d["tenantId"] == TENANT)
        .map(|d| d["userId"].as_str().unwrap())
        .collect();
    assert!(report_rows > 0);
    assert_eq!(report_users, role_users);
    assert!(!docs
        .iter()
        .any(|d| d["type"] == "mfa_registration" && d["tenantId"] == TENANT));

    let text = run(d, Some(TENANT));
    assert!(text.contains(" 0 dead letters,"), "{text}");
    assert!(rows(&d.join("out/dead_letters.ndjson")).is_empty());
    let c = counters(&text);
    let audits = docs.iter().filter(|d| is_audit(d)).count() as u64;
    assert!(audits > 0);
    assert_eq!(c["events_total{kind=\"directory_audit\"}"], audits);
    assert!(c["events_total{kind=\"gdap_relationship\"}"] > 0, "{text}");
    assert!(
        c["events_total{kind=\"gdap_access_assignment\"}"] > 0,
        "{text}"
    );
    assert_eq!(
        c["events_total{kind=\"mfa_registration\"}"],
        (own_registrations + report_rows) as u64,
        "every row of the registration report is a registration event"
    );

    let findings = rows(&d.join("out/findings.ndjson"));
    let fired: BTreeMap<&str, usize> = findings.iter().fold(BTreeMap::new(), |mut m, f| {
        *m.entry(f["rule_id"].as_str().unwrap()).or_default() += 1;
        m
    });
    for rule in [
        "GLOBAL_ADMIN_ADDED",
        "PRIVILEGED_ROLE_ADDED",
        "CA_MFA_WEAKENED",
        "SECURITY_INFO_DELETED",
        "MFA_REQUIREMENT_REMOVED",
        "GDAP_GLOBAL_ADMIN",
    ] {
        assert!(fired.contains_key(rule), "{rule} never fired: {fired:?}");
    }
    // The relationship and the access assignment that grant Global Administrator, both the
    // first tenant's.
    let gdap: Vec<&Value> = findings
        .iter()
        .filter(|f| f["rule_id"] == "GDAP_GLOBAL_ADMIN")
        .collect();
    assert_eq!(gdap.len(), 2, "{gdap:?}");
    assert!(gdap.iter().all(|f| f["tenant_id"] == TENANT));
    // The rules that judge only partner-role users fired on users the state holds such a
    // role for (from the stream's own role assignments or its audit records).
    let agents: BTreeMap<(String, String), Value> = rows(&d.join("out/agents.ndjson"))
        .into_iter()
        .map(|a| {
            let key = (
                a["tenant_id"].as_str().unwrap().to_owned(),
                a["user_id"].as_str().unwrap().to_owned(),
            );
            (key, a)
        })
        .collect();
    for f in findings.iter().filter(|f| {
        f["rule_id"] == "SECURITY_INFO_DELETED" || f["rule_id"] == "MFA_REQUIREMENT_REMOVED"
    }) {
        let key = (
            f["tenant_id"].as_str().unwrap().to_owned(),
            f["user_id"].as_str().unwrap().to_owned(),
        );
        let agent = agents
            .get(&key)
            .unwrap_or_else(|| panic!("no agent row for {f}"));
        assert!(
            agent["roles"].as_array().is_some_and(|r| !r.is_empty()),
            "{f} {agent}"
        );
    }
}

#[test]
fn graph_exports_are_dead_letters_that_say_so_without_the_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, &["--events", "3000", "--tenant", TENANT]);
    let items: usize = documents(d)
        .iter()
        .filter(|d| d["@odata.context"].is_string())
        .map(|d| d["value"].as_array().unwrap().len())
        .sum();
    assert!(items > 0);
    run(d, None);
    let dead = rows(&d.join("out/dead_letters.ndjson"));
    assert_eq!(dead.len(), items, "one dead letter per exported object");
    for l in &dead {
        let reason = l["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("missing_field") && reason.contains("--tenant ID"),
            "{reason}"
        );
    }
}

#[test]
fn without_a_tenant_only_audit_records_are_written_and_all_are_placed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let said = generate(d, &["--events", "3000"]);
    assert!(said.contains("`--tenant ID` also writes"), "{said}");
    let docs = documents(d);
    assert!(docs.iter().any(is_audit));
    assert!(!docs.iter().any(|d| d["@odata.context"].is_string()));
    let text = run(d, None);
    assert!(text.contains(" 0 dead letters,"), "{text}");
}

#[test]
fn share_zero_writes_no_directory_record_and_a_share_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(
        d,
        &[
            "--events",
            "3000",
            "--directory-share",
            "0",
            "--tenant",
            TENANT,
        ],
    );
    let docs = documents(d);
    assert_eq!(docs.len(), 3000);
    assert!(!docs
        .iter()
        .any(|d| is_audit(d) || d["@odata.context"].is_string()));
    // The first tenant keeps its registration rows of the project's own kind.
    assert!(docs
        .iter()
        .any(|d| d["type"] == "mfa_registration" && d["tenantId"] == TENANT));

    generate(d, &["--events", "6000", "--directory-share", "0.2"]);
    let docs = documents(d);
    // The facts at the start (roles, registrations, exceptions) are not drawn.
    let facts = docs
        .iter()
        .take_while(|d| {
            matches!(
                d["type"].as_str(),
                Some("partner_role_assignment" | "mfa_registration" | "technical_exception")
            )
        })
        .count();
    let audits = docs.iter().filter(|d| is_audit(d)).count();
    let share = audits as f64 / (docs.len() - facts) as f64;
    assert!((0.17..0.23).contains(&share), "{audits} of {}", docs.len());
}

#[test]
fn a_share_outside_0_to_1_or_a_blank_tenant_is_a_usage_error() {
    for (arg, flag) in [
        ("--directory-share=1.5", "`--directory-share`"),
        ("--directory-share=-0.1", "`--directory-share`"),
        ("--tenant= ", "`--tenant`"),
    ] {
        let o = common::bin()
            .args(["generate", "--events", "10", arg])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{arg}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(flag), "{err}");
    }
}
