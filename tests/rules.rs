//! Rules as data, end to end through the command line: a user's own policy file (check,
//! run, explain, diff), several policies in one pass, `explain` against `run`, and
//! `diff` against two separate runs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure is reported by panicking"
)]

mod common;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const USER_POLICY: &str = "examples/policies/contoso-partner-mfa.toml";
const FILES: [&str; 5] = [
    "findings.ndjson",
    "rollout_daily.ndjson",
    "rollout_surfaces.ndjson",
    "agents.ndjson",
    "dead_letters.ndjson",
];

fn policy_path(p: &str) -> String {
    if p.ends_with(".toml") {
        common::root().join(p).display().to_string()
    } else {
        p.to_owned()
    }
}

/// A generated sample in `dir` (`s.ndjson`).
fn sample(dir: &Path, tenants: u32, events: u32, seed: u64) {
    let o = common::bin()
        .current_dir(dir)
        .args(["generate", "--tenants", &tenants.to_string()])
        .args(["--events", &events.to_string(), "--seed", &seed.to_string()])
        .args(["--out", "s.ndjson"])
        .output()
        .unwrap();
    common::ok(o, "generate");
}

fn run(dir: &Path, policies: &[&str], out: &str) {
    let mut c = common::bin();
    c.current_dir(dir)
        .args(["run", "-q", "--input", "s.ndjson", "--out", out]);
    for p in policies {
        c.args(["--policy", &policy_path(p)]);
    }
    common::ok(c.output().unwrap(), &format!("run {policies:?}"));
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

fn rows(path: &Path) -> Vec<Value> {
    lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Runs `policies` together and each alone over `dir/s.ndjson`; every file's rows of the
/// joint run are the union of the separate runs' (a dead letter is written once).
fn assert_union_of_separate_runs(dir: &Path, policies: &[&str]) {
    run(dir, policies, "all");
    for (i, p) in policies.iter().enumerate() {
        run(dir, &[p], &format!("one-{i}"));
    }
    for f in FILES {
        let mut together = lines(&dir.join("all").join(f));
        let mut apart: Vec<String> = (0..policies.len())
            .flat_map(|i| {
                let mut l = lines(&dir.join(format!("one-{i}")).join(f));
                if f == "dead_letters.ndjson" && i > 0 {
                    l.clear(); // a bad document is one dead letter, whatever the policies
                }
                l
            })
            .collect();
        together.sort();
        apart.sort();
        assert!(
            !together.is_empty() || f == "dead_letters.ndjson",
            "{f} is empty"
        );
        assert_eq!(together.len(), apart.len(), "{f}: row counts differ");
        assert!(together == apart, "{f}: rows differ from the separate runs");
    }
    // Every policy wrote findings, and every row says which policy it is of.
    let versions: std::collections::BTreeSet<String> = rows(&dir.join("all/findings.ndjson"))
        .iter()
        .map(|r| r["policy_version"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(versions.len(), policies.len(), "{versions:?}");
}

#[test]
fn several_policies_in_one_pass_write_the_union_of_separate_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sample(dir, 6, 6000, 11);
    assert_union_of_separate_runs(
        dir,
        &["partner-mfa-2019-09", "partner-mfa-2020-05", USER_POLICY],
    );
}

/// The shipped policies in one pass (the four versions and the detection pack), over a
/// generated sample and every conformance event (2026 API and dashboard events, Azure
/// sign-ins, overrides valid and not, the pack's detections).
#[test]
fn the_shipped_policies_in_one_pass_write_the_union_of_separate_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sample(dir, 4, 3000, 5);
    let mut text = std::fs::read_to_string(dir.join("s.ndjson")).unwrap();
    for doc in common::conformance_documents() {
        // A raw bad document may hold a newline: it stays one line of NDJSON.
        text.push_str(&doc.replace('\n', " "));
        text.push('\n');
    }
    std::fs::write(dir.join("s.ndjson"), text).unwrap();
    let shipped: Vec<&str> = mfa_audit::policy::SHIPPED.iter().map(|(n, _)| *n).collect();
    assert_eq!(shipped.len(), 5, "{shipped:?}");
    assert_union_of_separate_runs(dir, &shipped);
    // The new versions' surfaces reach rollout_surfaces, "MFA demanded" included.
    let surfaces = rows(&dir.join("all/rollout_surfaces.ndjson"));
    for (policy, surface) in [
        ("partner-mfa-2026", "dashboard_all_pages"),
        ("azure-mandatory-mfa", "azure_admin_portals"),
        ("azure-mandatory-mfa", "azure_management"),
    ] {
        assert!(
            surfaces.iter().any(|r| r["policy_version"] == policy
                && r["surface"] == surface
                && r["total"].as_u64() > Some(0)),
            "{policy} {surface}: no share rows"
        );
    }
    let demanded = |policy: &str, surface: &str| -> u64 {
        surfaces
            .iter()
            .filter(|r| r["policy_version"] == policy && r["surface"] == surface)
            .map(|r| r["demanded"].as_u64().unwrap())
            .sum()
    };
    // azure_mandatory_mfa.json: two portal sign-ins failed with 50074/50076.
    assert!(demanded("azure-mandatory-mfa", "azure_admin_portals") >= 2);
    // Every call API_MFA_REJECTED names is counted as MFA demanded, and no other.
    let rejected = rows(&dir.join("all/findings.ndjson"))
        .iter()
        .filter(|r| r["policy_version"] == "partner-mfa-2026" && r["rule_id"] == "API_MFA_REJECTED")
        .count() as u64;
    assert!(rejected >= 2, "{rejected}");
    assert_eq!(demanded("partner-mfa-2026", "api"), rejected);
    assert_eq!(
        demanded("partner-mfa-2020-05", "api"),
        0,
        "2020 names no demand"
    );
}

#[test]
fn a_users_own_policy_checks_runs_and_reaches_the_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = common::bin()
        .args(["policy", "check", &policy_path(USER_POLICY)])
        .output()
        .unwrap();
    let said = common::ok(o, "policy check");
    assert!(
        said.contains("valid policy `contoso-partner-mfa`"),
        "{said}"
    );
    sample(dir, 4, 4000, 5);
    run(dir, &[USER_POLICY], "out");
    let findings = rows(&dir.join("out/findings.ndjson"));
    for rule in [
        "AZURE_PORTAL_NO_MFA",
        "DELEGATED_ADMIN_UNMANAGED_DEVICE",
        "LEGACY_PROTOCOL",
    ] {
        assert!(
            findings.iter().any(|f| f["rule_id"] == rule),
            "no {rule} finding"
        );
    }
    let portal: Vec<&Value> = findings
        .iter()
        .filter(|f| f["rule_id"] == "AZURE_PORTAL_NO_MFA")
        .collect();
    assert!(portal.iter().all(|f| f["surface"] == "azure_portal"
        && f["severity"] == "high"
        && f["detail"].as_str().unwrap().ends_with(")")));
    // The new surface's share reaches rollout_surfaces, with no code.
    let surfaces = rows(&dir.join("out/rollout_surfaces.ndjson"));
    let azure: Vec<&Value> = surfaces
        .iter()
        .filter(|r| r["surface"] == "azure_portal")
        .collect();
    assert!(!azure.is_empty(), "no azure_portal rows");
    let total: u64 = azure.iter().map(|r| r["total"].as_u64().unwrap()).sum();
    let mfa: u64 = azure.iter().map(|r| r["mfa"].as_u64().unwrap()).sum();
    assert_eq!(
        total - mfa,
        portal.len() as u64,
        "each Azure portal sign-in without MFA is one finding"
    );
    // A bad copy is refused with every problem and its place.
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(common::root().join(USER_POLICY))
            .unwrap()
            .replace("\"sign_in.device_managed\"", "\"sign_in.device_manged\"")
            .replace("severity = \"high\"", "severity = \"severe\""),
    )
    .unwrap();
    let o = common::bin()
        .args(["policy", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("2 problem(s)"), "{err}");
    // Places count the base's rules first: the file's own rules follow them.
    let base = mfa_audit::policy::load("partner-mfa-2020-05")
        .unwrap()
        .rules
        .len();
    assert!(
        err.contains(&format!(
            "`rules[{}].when.all[1].attr`: `sign_in.device_manged` is not an attribute",
            base + 1
        )) && err.contains("did you mean sign_in.device_managed"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "`rules[{base}].severity`: `severe` is not a severity"
        )),
        "{err}"
    );
}

/// `explain --json` over a whole input agrees with `run`: the rules it says fired are
/// exactly the findings, with the same enforced and excepted flags.
#[test]
fn explain_uses_the_evaluator_of_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sample(dir, 3, 1500, 3);
    let policies = ["partner-mfa-2020-05", USER_POLICY];
    run(dir, &policies, "out");
    let mut want: BTreeMap<(String, String, String), Vec<(bool, bool)>> = BTreeMap::new();
    for f in rows(&dir.join("out/findings.ndjson")) {
        want.entry((
            f["event_id"].as_str().unwrap().into(),
            f["policy_version"].as_str().unwrap().into(),
            f["rule_id"].as_str().unwrap().into(),
        ))
        .or_default()
        .push((
            f["enforced"].as_bool().unwrap(),
            f["excepted"].as_bool().unwrap(),
        ));
    }
    let mut c = common::bin();
    c.current_dir(dir)
        .args(["explain", "--json", "--input", "s.ndjson"]);
    for p in policies {
        c.args(["--policy", &policy_path(p)]);
    }
    let o = c.output().unwrap();
    let text = common::ok(o, "explain");
    let mut got: BTreeMap<(String, String, String), Vec<(bool, bool)>> = BTreeMap::new();
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    for l in text.lines().filter(|l| l.starts_with('{')) {
        let r: Value = serde_json::from_str(l).unwrap();
        if r.get("replay").is_some() {
            continue;
        }
        let outcome = r["outcome"].as_str().unwrap().to_owned();
        *outcomes.entry(outcome.clone()).or_default() += 1;
        assert!(r["attributes"].is_object() && r["when"].is_string(), "{l}");
        if outcome == "fired" {
            got.entry((
                r["event_id"].as_str().unwrap().into(),
                r["policy_version"].as_str().unwrap().into(),
                r["rule_id"].as_str().unwrap().into(),
            ))
            .or_default()
            .push((
                r["enforced"].as_bool().unwrap(),
                r["excepted"].as_bool().unwrap(),
            ));
        }
    }
    assert!(!want.is_empty());
    assert_eq!(got, want, "explain's fired rules are not run's findings");
    for o in ["fired", "quiet", "not_applicable"] {
        assert!(
            outcomes.get(o).is_some_and(|n| *n > 0),
            "no {o} outcome: {outcomes:?}"
        );
    }
}

/// The explanation of chosen conformance events, as the golden file has it.
#[test]
fn explain_of_conformance_events_matches_its_golden_file() {
    let tmp = tempfile::tempdir().unwrap();
    let case: Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("tests/conformance/delegated_admin.json"))
            .unwrap(),
    )
    .unwrap();
    let docs: Vec<String> = case["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(common::document)
        .collect();
    std::fs::write(tmp.path().join("case.ndjson"), docs.join("\n") + "\n").unwrap();
    let mut c = common::bin();
    c.current_dir(tmp.path()).args([
        "explain",
        "--json",
        "--input",
        "case.ndjson",
        "--policy",
        "partner-mfa-2020-05",
        "--policy",
        "partner-mfa-2019-09",
        "--rule",
        "DELEGATED_ADMIN_NO_MFA",
        "--rule",
        "LEGACY_PROTOCOL",
    ]);
    for id in ["da-00", "da-05", "da-08", "da-09"] {
        c.args(["--event-id", id]);
    }
    let got = common::ok(c.output().unwrap(), "explain");
    let golden = common::root().join("tests/golden/explain_delegated_admin.ndjson");
    if std::env::var_os("MFA_TEST_UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap();
    assert!(
        got == want,
        "explain output changed; if that is meant, run with MFA_TEST_UPDATE_GOLDEN=1 and review the diff of {}\n--- got ---\n{got}",
        golden.display()
    );
    // And in words: the four chosen events' verdicts.
    let by: BTreeMap<(String, String), String> = got
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| {
            r["rule_id"] == "DELEGATED_ADMIN_NO_MFA" && r["policy_version"] == "partner-mfa-2020-05"
        })
        .map(|r| {
            (
                (r["event_id"].as_str().unwrap().to_owned(), String::new()),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let outcome = |id: &str| by.get(&(id.to_owned(), String::new())).map(String::as_str);
    assert_eq!(
        outcome("da-00"),
        Some("fired"),
        "serviceProvider without MFA"
    );
    assert_eq!(
        outcome("da-05"),
        Some("quiet"),
        "home tenant = resource tenant"
    );
    assert_eq!(
        outcome("da-08"),
        Some("not_applicable"),
        "no resource tenant"
    );
    assert_eq!(outcome("da-09"), Some("quiet"), "MFA by claim in the token");
}

#[test]
fn explain_names_an_unknown_event_id() {
    let tmp = tempfile::tempdir().unwrap();
    sample(tmp.path(), 1, 50, 1);
    let o = common::bin()
        .current_dir(tmp.path())
        .args([
            "explain",
            "--input",
            "s.ndjson",
            "--event-id",
            "no-such-event",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no event with id no-such-event"));
}

#[test]
fn explain_names_an_unknown_rule() {
    let tmp = tempfile::tempdir().unwrap();
    sample(tmp.path(), 1, 50, 1);
    let o = common::bin()
        .current_dir(tmp.path())
        .args(["explain", "--input", "s.ndjson", "--rule", "LEGACY_PROTOCL"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no rule LEGACY_PROTOCL"), "{err}");
    assert!(err.contains("did you mean LEGACY_PROTOCOL?"), "{err}");
}

/// What `policy show FILE` prints for a policy file of the repository.
fn policy_show(file: &str) -> String {
    let o = common::bin()
        .args(["policy", "show"])
        .arg(policy_path(file))
        .output()
        .unwrap();
    common::ok(o, "policy show FILE")
}

/// `policy show FILE` prints the effective policy (its `extends` resolved): it loads on
/// its own and gives the rows of the file it came from.
#[test]
fn policy_show_of_a_file_prints_the_effective_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let text = policy_show(USER_POLICY);
    assert!(!text.lines().any(|l| l.starts_with("extends")), "{text}");
    std::fs::write(tmp.path().join("effective.toml"), &text).unwrap();
    sample(tmp.path(), 3, 3000, 5);
    run(tmp.path(), &[USER_POLICY], "a");
    let mut c = common::bin();
    c.current_dir(tmp.path())
        .args(["run", "-q", "--input", "s.ndjson", "--out", "b"])
        .args(["--policy", "effective.toml"]);
    common::ok(c.output().unwrap(), "run the effective policy");
    for f in FILES {
        assert_eq!(
            lines(&tmp.path().join("a").join(f)),
            lines(&tmp.path().join("b").join(f)),
            "{f}"
        );
    }
    let findings = lines(&tmp.path().join("a/findings.ndjson"));
    assert!(!findings.is_empty(), "the sample gives findings to compare");
}

/// A minimal Azure Monitor sign-in record: `user` failing (500121) at 10:MM.
fn failed_sign_in(id: &str, user: &str, minute: u32) -> String {
    format!(
        r#"{{"time":"2026-05-04T10:{minute:02}:00Z","category":"SignInLogs","tenantId":"t1","operationName":"Sign-in activity","properties":{{"id":"{id}","createdDateTime":"2026-05-04T10:{minute:02}:00Z","userId":"{user}","userPrincipalName":"{user}@partner.example","appDisplayName":"Azure Portal","isInteractive":true,"status":{{"errorCode":500121}}}}}}"#
    )
}

/// `suppress`: after a finding, the rule stays quiet for the same key for the span
/// given, in event time; another key, or the end of the span, gives a finding again;
/// `explain` says `suppressed`.
#[test]
fn a_rule_with_suppress_is_quiet_for_its_key_after_a_finding() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = r#"extends = "partner-mfa-2026"
version = "ours-suppress"

[[rules]]
id = "SIGN_IN_FAILED"
surface = "sign_in"
severity = "low"
summary = "A failed sign-in"
when = { all = [
  { attr = "event.kind", eq = "sign_in" },
  { attr = "sign_in.error_code", eq = 500121 },
] }
suppress = { for = "10m", by = ["sign_in.user_id"] }
"#;
    std::fs::write(tmp.path().join("p.toml"), policy).unwrap();
    let mut docs: Vec<String> = (0..8)
        .map(|m| failed_sign_in(&format!("a{m}"), "u1", m))
        .collect();
    docs.push(failed_sign_in("b3", "u2", 3));
    docs.push(failed_sign_in("a12", "u1", 12));
    std::fs::write(tmp.path().join("s.ndjson"), docs.join("\n") + "\n").unwrap();
    let mut c = common::bin();
    c.current_dir(tmp.path())
        .args(["run", "-q", "--input", "s.ndjson", "--out", "o"])
        .args(["--policy", "p.toml"]);
    common::ok(c.output().unwrap(), "run");
    let fired: Vec<String> = rows(&tmp.path().join("o/findings.ndjson"))
        .iter()
        .filter(|r| r["rule_id"] == "SIGN_IN_FAILED")
        .map(|r| r["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fired, ["a0", "b3", "a12"]);
    let o = common::bin()
        .current_dir(tmp.path())
        .args([
            "explain", "--input", "s.ndjson", "--policy", "p.toml", "--json",
        ])
        .args(["--event-id", "a5", "--rule", "SIGN_IN_FAILED"])
        .output()
        .unwrap();
    let out = common::ok(o, "explain");
    assert!(out.contains(r#""outcome":"suppressed""#), "{out}");
    // A span that is not one is refused at load, with its place.
    std::fs::write(
        tmp.path().join("bad.toml"),
        policy.replace("\"10m\"", "\"10 minutes\""),
    )
    .unwrap();
    let o = common::bin()
        .args(["policy", "check"])
        .arg(tmp.path().join("bad.toml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(".suppress`: `10 minutes` is not a duration"),
        "{err}"
    );
}

/// A policy of detections: `base_rules = false` takes a compliance version's sections
/// and none of its rules, and a surface with `readiness = false` keeps its findings out of
/// the day's counts, so readiness is that of a run in which the rule never fires.
#[test]
fn detections_apart_from_readiness() {
    let tmp = tempfile::tempdir().unwrap();
    let det = r#"extends = "partner-mfa-2026"
base_rules = false
version = "det"

[[surfaces]]
name = "detections"
readiness = false

[[rules]]
id = "INTERACTIVE_SIGN_IN"
surface = "detections"
severity = "critical"
summary = "Any interactive sign-in"
when = { all = [{ attr = "event.kind", eq = "sign_in" }, { attr = "sign_in.interactive", eq = true }] }
"#;
    let never = det.replace(
        "{ attr = \"sign_in.interactive\", eq = true }]",
        "{ attr = \"sign_in.interactive\", eq = true }, { attr = \"sign_in.interactive\", eq = false }]",
    );
    std::fs::write(tmp.path().join("det.toml"), det).unwrap();
    std::fs::write(tmp.path().join("never.toml"), never).unwrap();
    sample(tmp.path(), 3, 3000, 9);
    for (p, out) in [("det.toml", "a"), ("never.toml", "b")] {
        let mut c = common::bin();
        c.current_dir(tmp.path()).args([
            "run", "-q", "--input", "s.ndjson", "--out", out, "--policy", p,
        ]);
        common::ok(c.output().unwrap(), p);
    }
    let findings = rows(&tmp.path().join("a/findings.ndjson"));
    assert!(!findings.is_empty());
    assert!(findings
        .iter()
        .all(|r| r["rule_id"] == "INTERACTIVE_SIGN_IN"));
    assert!(lines(&tmp.path().join("b/findings.ndjson")).is_empty());
    for f in [
        "rollout_daily.ndjson",
        "rollout_surfaces.ndjson",
        "agents.ndjson",
    ] {
        assert_eq!(
            lines(&tmp.path().join("a").join(f)),
            lines(&tmp.path().join("b").join(f)),
            "{f}: critical findings on a detections surface moved readiness"
        );
    }
}

/// `diff` counts what two separate runs count: findings and enforced findings per
/// (tenant, rule), and each tenant's 7-day readiness on its newest day.
#[test]
fn diff_counts_equal_two_separate_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sample(dir, 8, 8000, 21);
    let (a, b) = ("partner-mfa-2019-09", "partner-mfa-2020-05");
    run(dir, &[a], "a");
    run(dir, &[b], "b");
    let o = common::bin()
        .current_dir(dir)
        .args([
            "diff", "--policy", a, "--policy", b, "--input", "s.ndjson", "--out", "d",
        ])
        .output()
        .unwrap();
    let table = common::ok(o, "diff");
    assert!(table.contains("readiness (7 days) changes for"), "{table}");
    let count = |out: &str| {
        let mut m: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
        for f in rows(&dir.join(out).join("findings.ndjson")) {
            let e = m
                .entry((
                    f["tenant_id"].as_str().unwrap().into(),
                    f["rule_id"].as_str().unwrap().into(),
                ))
                .or_default();
            e.0 += 1;
            e.1 += u64::from(f["enforced"].as_bool().unwrap());
        }
        m
    };
    let newest_status = |out: &str| {
        let mut m: BTreeMap<String, (String, String)> = BTreeMap::new();
        for r in rows(&dir.join(out).join("rollout_daily.ndjson")) {
            let day = r["day"].as_str().unwrap().to_owned();
            let e = m
                .entry(r["tenant_id"].as_str().unwrap().into())
                .or_default();
            if day >= e.0 {
                *e = (day, r["status_7d"].as_str().unwrap().into());
            }
        }
        m
    };
    let (ca, cb) = (count("a"), count("b"));
    let (sa, sb) = (newest_status("a"), newest_status("b"));
    let diff = rows(&dir.join("d/diff.ndjson"));
    let mut rule_rows = 0;
    let mut changed = 0;
    for r in &diff {
        let tenant = r["tenant_id"].as_str().unwrap().to_owned();
        match r["kind"].as_str().unwrap() {
            "rule" => {
                rule_rows += 1;
                let key = (tenant, r["rule_id"].as_str().unwrap().to_owned());
                let (fa, ea) = ca.get(&key).copied().unwrap_or_default();
                let (fb, eb) = cb.get(&key).copied().unwrap_or_default();
                assert_eq!(
                    (r["findings_a"].as_u64(), r["enforced_a"].as_u64()),
                    (Some(fa), Some(ea)),
                    "{key:?} under A"
                );
                assert_eq!(
                    (r["findings_b"].as_u64(), r["enforced_b"].as_u64()),
                    (Some(fb), Some(eb)),
                    "{key:?} under B"
                );
            }
            "tenant" => {
                assert_eq!(
                    r["status_7d_a"].as_str(),
                    sa.get(&tenant).map(|s| s.1.as_str())
                );
                assert_eq!(
                    r["status_7d_b"].as_str(),
                    sb.get(&tenant).map(|s| s.1.as_str())
                );
                if r["status_7d_a"] != r["status_7d_b"] {
                    changed += 1;
                    assert!(
                        table.contains(&tenant),
                        "{tenant} changes but is not in the table"
                    );
                }
            }
            k => panic!("unknown kind {k}"),
        }
    }
    let keys: std::collections::BTreeSet<_> = ca.keys().chain(cb.keys()).collect();
    assert_eq!(
        rule_rows,
        keys.len(),
        "one rule row per (tenant, rule) found under A or B"
    );
    assert_eq!(sa.len(), 8);
    assert!(
        table.contains(&format!("changes for {changed} of 8 tenants")),
        "{table}"
    );
    // 2019-09 enforces nothing, 2020-05 does: the enforced counts must differ somewhere.
    assert!(diff
        .iter()
        .any(|r| r["kind"] == "rule" && r["enforced_a"] != r["enforced_b"]));
}

#[test]
fn diff_wants_exactly_two_policies() {
    let o = common::bin()
        .args([
            "diff",
            "--policy",
            "partner-mfa-2020-05",
            "--input",
            "-",
            "--out",
            "/tmp/x",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("compares two policies"));
}

#[test]
fn policy_attributes_lists_every_attribute_and_the_guide_explains_each() {
    let o = common::bin()
        .args(["policy", "attributes"])
        .output()
        .unwrap();
    let table = common::ok(o, "policy attributes");
    let guide = std::fs::read_to_string(common::root().join("docs/rules.md")).unwrap();
    for d in mfa_audit::policy::attr::ATTRS {
        assert!(table.contains(d.name), "{} not listed", d.name);
        assert!(
            guide.contains(&format!("`{}`", d.name)),
            "docs/rules.md does not explain `{}`",
            d.name
        );
    }
}

fn case_events(name: &str) -> Vec<Value> {
    let case = common::case(&common::root().join("tests/conformance").join(name));
    case["events"].as_array().unwrap().clone()
}

/// A postponement is state: a snapshot taken after it and restored elsewhere keeps the
/// tenant's own date, and readiness follows that date (an enforced surface without MFA
/// blocks; a postponed one does not).
#[test]
fn a_postponement_survives_a_snapshot_and_moves_readiness() {
    let events = case_events("azure_mandatory_mfa.json");
    let override_doc = common::document(&events[18]); // T2: azure_management to 2026-07-01
    assert!(override_doc.contains("policy_override"), "{override_doc}");
    let cli_sign_in = |id: &str, time: &str| {
        let mut e = events[19].clone();
        e["time"] = time.into();
        e["properties"]["createdDateTime"] = time.into();
        e["properties"]["id"] = id.into();
        common::document(&e)
    };
    let tenant = events[19]["tenantId"].as_str().unwrap().to_owned();
    let first = common::processor("azure-mandatory-mfa");
    let sink = common::run_docs(&first, &[override_doc]);
    assert!(sink.dead_letters.is_empty(), "{:?}", sink.dead_letters);
    let snapshot = first.snapshot_json(std::slice::from_ref(&tenant)).unwrap();
    assert!(snapshot.contains("overrides"), "the snapshot carries it");

    let restored = common::processor("azure-mandatory-mfa");
    restored.restore_json(&snapshot).unwrap();
    let fresh = common::processor("azure-mandatory-mfa");
    let doc = cli_sign_in("pp-1", "2025-11-03T10:00:00Z");
    let after = common::run_docs(&restored, std::slice::from_ref(&doc));
    let without = common::run_docs(&fresh, &[doc]);
    let enforced = |s: &mfa_audit::sink::MemorySink| {
        s.findings
            .iter()
            .map(|f| (f.rule_id.to_string(), f.enforced))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        enforced(&after),
        [("AZURE_MANAGEMENT_NO_MFA".to_owned(), false)],
        "postponed: readiness only"
    );
    assert_eq!(
        enforced(&without),
        [("AZURE_MANAGEMENT_NO_MFA".to_owned(), true)],
        "without the postponement: enforced"
    );
    let status = |s: &mfa_audit::sink::MemorySink| {
        // Rows are sorted by (tenant, day): the sign-in's day is the tenant's last.
        s.rollout
            .iter()
            .rev()
            .find(|r| r.tenant_id == tenant)
            .unwrap()
            .status
    };
    assert_eq!(status(&after), "at_risk", "a high finding, not enforced");
    assert_eq!(
        status(&without),
        "blocked",
        "an enforced surface under 100 %"
    );
    let surface = |s: &mfa_audit::sink::MemorySink| {
        s.surfaces
            .iter()
            .find(|r| r.tenant_id == tenant && r.surface == "azure_management")
            .map(|r| r.enforced)
    };
    assert_eq!(surface(&after), Some(false));
    assert_eq!(surface(&without), Some(true));
}

/// The delegated-admin detail names where the MFA requirement came from; sign-ins are
/// counted by identity and category, workload identities included, and an override for
/// a policy not chosen is counted as such.
#[test]
fn details_and_counters_of_the_2026_versions() {
    let p = common::processor("partner-mfa-2026");
    let docs: Vec<String> = case_events("partner_2026.json")
        .iter()
        .chain(case_events("azure_mandatory_mfa.json").iter())
        .map(common::document)
        .collect();
    let sink = common::run_docs(&p, &docs);
    let delegated = sink
        .findings
        .iter()
        .find(|f| &*f.rule_id == "DELEGATED_ADMIN_NO_MFA")
        .unwrap();
    assert!(
        delegated
            .detail
            .ends_with("MFA required by: enforcedForCspAdmins"),
        "{}",
        delegated.detail
    );
    let summary = p.metrics().summary().join("\n");
    for line in [
        r#"mfa_audit_sign_ins_total{category="ServicePrincipalSignInLogs",identity="workload"} 1"#,
        r#"mfa_audit_sign_ins_total{category="ManagedIdentitySignInLogs",identity="workload"} 1"#,
        r#"mfa_audit_policy_overrides_total{outcome="not_chosen",policy="azure-mandatory-mfa"} 2"#,
        r#"mfa_audit_dead_letters_total{reason="override_rejected"} 4"#,
        r#"mfa_audit_events_total{kind="policy_override"} 2"#,
    ] {
        assert!(summary.contains(line), "{line} not in:\n{summary}");
    }
}

/// `context`: each name must be an event attribute; an unknown one is a load error at its
/// place with a did-you-mean, a `day.*` one says it describes a day.
#[test]
fn a_rules_context_names_event_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("context.toml");
    let policy = |context: &str| {
        format!(
            r#"version = "ours-context"
title = "context"
partner_roles = ["AdminAgent"]
[[surfaces]]
name = "detections"
readiness = false
[[rules]]
id = "ANY_SIGN_IN"
surface = "detections"
severity = "low"
summary = "a sign-in"
when = {{ attr = "event.kind", eq = "sign_in" }}
context = {context}

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
        )
    };
    std::fs::write(
        &path,
        policy(r#"["sign_in.ip", "sign_in.contry", "day.findings"]"#),
    )
    .unwrap();
    let err = mfa_audit::policy::load(&path.display().to_string())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`rules[0].context[1]`: `sign_in.contry` is not an attribute")
            && err.contains("did you mean sign_in.country"),
        "{err}"
    );
    assert!(
        err.contains("`rules[0].context[2]`: `day.findings` describes a day"),
        "{err}"
    );
    std::fs::write(&path, policy(r#""sign_in.ip""#)).unwrap();
    let err = mfa_audit::policy::load(&path.display().to_string())
        .unwrap_err()
        .to_string();
    assert!(err.contains("`rules[0].context`: must be a list"), "{err}");
    std::fs::write(&path, policy(r#"["sign_in.ip", "sign_in.country"]"#)).unwrap();
    let p = mfa_audit::policy::load(&path.display().to_string()).unwrap();
    assert_eq!(
        p.rules[0]
            .context
            .iter()
            .map(|a| a.name())
            .collect::<Vec<_>>(),
        ["sign_in.ip", "sign_in.country"]
    );
}

const WINDOWS_POLICY: &str = "tests/conformance/policies/windows.toml";

/// The findings (event index, rule) of `docs` under `p`, from document `from` on.
fn findings_of(
    p: &mfa_audit::pipeline::Processor,
    docs: &[String],
    from: usize,
) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, d) in docs.iter().enumerate().skip(from) {
        let mut sink = mfa_audit::sink::MemorySink::default();
        let origin = mfa_audit::pipeline::Origin {
            source: "t",
            position: &"1",
        };
        p.process(origin, d.as_bytes(), None, &mut sink).unwrap();
        out.extend(sink.findings.iter().map(|f| (i, f.rule_id.to_string())));
    }
    out
}

/// Windows and histories live in the tenant's snapshot: a run cut after any event,
/// snapshotted and restored into a new processor, gives the findings of a run without
/// the cut (as the stream mode restores after a restart).
#[test]
fn windows_and_histories_survive_a_snapshot_at_every_event() {
    let case = common::case(Path::new(&policy_path("tests/conformance/windows.json")));
    let docs: Vec<String> = case["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(common::document)
        .collect();
    let whole = findings_of(&common::processor(WINDOWS_POLICY), &docs, 0);
    assert_eq!(whole.len(), 5, "{whole:?}");
    for cut in 1..docs.len() {
        let a = common::processor(WINDOWS_POLICY);
        let mut got = findings_of(&a, &docs[..cut], 0);
        let tenants = vec!["11111111-1111-4111-8111-111111111111".to_owned()];
        let snap = a.snapshot_json(&tenants).unwrap();
        let b = common::processor(WINDOWS_POLICY);
        b.restore_json(&snap).unwrap();
        got.extend(findings_of(&b, &docs, cut));
        assert_eq!(got, whole, "cut after event {}", cut - 1);
    }
}

/// `policy show FILE` prints the windows and histories; the text loads on its own and
/// gives the same findings.
#[test]
fn policy_show_prints_windows_and_histories_that_load_again() {
    let tmp = tempfile::tempdir().unwrap();
    let text = policy_show(WINDOWS_POLICY);
    assert!(text.contains("[windows.mfa_denials]"), "{text}");
    assert!(text.contains("[histories.user_apps]"), "{text}");
    let path = tmp.path().join("effective.toml");
    std::fs::write(&path, &text).unwrap();
    let case = common::case(Path::new(&policy_path("tests/conformance/windows.json")));
    let docs: Vec<String> = case["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(common::document)
        .collect();
    assert_eq!(
        findings_of(&common::processor(path.to_str().unwrap()), &docs, 0),
        findings_of(&common::processor(WINDOWS_POLICY), &docs, 0)
    );
}

/// `policy check` names every mistake in a window, a history or a test on them, with its
/// place.
#[test]
fn policy_check_names_the_place_of_each_window_mistake() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = r#"extends = "partner-mfa-2026"
base_rules = false
version = "bad-windows"

[windows.denials]
when = { all = [{ attr = "event.kind", eq = "sign_in" }, { window = "denials", ge = 1 }] }
by = ["day.findings"]
within = "10 minutes"

[windows.spray]
when = { attr = "event.kind", eq = "sign_in" }
by = ["sign_in.user_idd"]
within = "8d"
distinct = "sign_in.user_id"

[histories.apps]
when = { attr = "event.kind", eq = "sign_in" }
by = ["sign_in.user_id"]
within = "14d"

[[surfaces]]
name = "detections"
readiness = false

[[rules]]
id = "R"
surface = "detections"
severity = "low"
summary = "r"
when = { all = [
  { window = "denial", ge = 3 },
  { window = "spray", ge = 5000 },
  { seen = "apps", eq = "no" },
  { history_age = "apps", ge = "a day" },
] }
"#;
    std::fs::write(tmp.path().join("bad.toml"), bad).unwrap();
    let o = common::bin()
        .args(["policy", "check"])
        .arg(tmp.path().join("bad.toml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    for want in [
        "`windows.denials.when`: reads a window or history",
        "`windows.denials.by[0]`: `day.findings` describes a day",
        "`windows.denials.within`: `10 minutes` is not a duration from 1s to 7d",
        "`windows.spray.by[0]`: `sign_in.user_idd` is not an attribute",
        "`windows.spray.within`: `8d` is not a duration from 1s to 7d",
        "`histories.apps.values`: is missing",
        "`rules[0].when.all[0].window`: `denial` is not in `[windows]` (there: denials, spray)",
        "`rules[0].when.all[1].ge`: 5000: a window counts from 0 to 1000",
        "`rules[0].when.all[2].eq`: `seen` is a bool",
        "`rules[0].when.all[3].ge`: `history_age` is in seconds",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
}

/// `explain` says which item of a list or which pattern a test matched, lists a value
/// read by several tests once, and calls a detection's finding a detection.
#[test]
fn explain_names_what_matched_and_reads_each_value_once() {
    let case = common::case(&common::root().join("tests/conformance/entra_signin_detections.json"));
    let tmp = tempfile::tempdir().unwrap();
    let mut lines: Vec<String> = case["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(common::document)
        .collect();
    // A legacy-protocol sign-in: LEGACY_PROTOCOL tests `clientAppUsed` against two lists.
    lines.push(
        serde_json::json!({"id": "legacy-1", "createdDateTime": "2026-11-03T10:00:00Z",
            "userId": "00000000-0000-4000-8000-000000000099", "appId": "00000002-0000-0ff1-ce00-000000000000",
            "clientAppUsed": "IMAP4", "isInteractive": false, "status": {"errorCode": 0},
            "authenticationRequirement": "singleFactorAuthentication", "tokenIssuerType": "AzureAD",
            "homeTenantId": "11111111-1111-4111-8111-111111111111",
            "resourceTenantId": "11111111-1111-4111-8111-111111111111", "userType": "Member"})
        .to_string(),
    );
    std::fs::write(tmp.path().join("s.ndjson"), lines.join("\n") + "\n").unwrap();
    let explain = |policy: &str, event: &str, rule: &str| {
        let o = common::bin()
            .current_dir(tmp.path())
            .args(["explain", "--input", "s.ndjson", "--policy", policy])
            .args(["--event-id", event, "--rule", rule])
            .output()
            .unwrap();
        common::ok(o, "explain")
    };
    let tool = explain(
        "entra-signin-detections",
        "det-46",
        "ATTACK_TOOL_USER_AGENT",
    );
    assert!(tool.contains("ATTACK_TOOL_USER_AGENT FIRED"), "{tool}");
    assert!(
        tool.contains("      matched: sign_in.user_agent contains \"python-requests\"\n"),
        "{tool}"
    );
    assert!(tool.contains("medium; a detection, no exception"), "{tool}");
    let legacy = explain("partner-mfa-2020-05", "legacy-1", "LEGACY_PROTOCOL");
    assert!(legacy.contains("LEGACY_PROTOCOL FIRED"), "{legacy}");
    let read = legacy
        .lines()
        .find(|l| l.trim_start().starts_with("read:"))
        .unwrap();
    assert_eq!(read.matches("sign_in.client_app = ").count(), 1, "{read}");
}
