//! The command line: exit statuses, messages, the four output files and their columns.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure is reported by panicking"
)]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn mfa_audit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mfa-audit"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn lines(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn generate_then_run_writes_the_four_tables_and_a_readiness_table() {
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("sample.ndjson");
    let out = dir.path().join("out");
    let g = mfa_audit(&[
        "generate",
        "--tenants",
        "3",
        "--events",
        "3000",
        "--seed",
        "5",
        "--out",
        sample.to_str().unwrap(),
    ]);
    assert!(g.status.success(), "{}", text(&g));
    let r = mfa_audit(&[
        "run",
        "--input",
        sample.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", text(&r));
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(
        stdout.contains(&format!(
            "readiness under {}",
            mfa_audit::policy::DEFAULT_POLICY
        )),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().count(),
        3 + 3,
        "a title, a header and its rule, and one line per tenant:\n{stdout}"
    );

    let findings = lines(&out.join("findings.ndjson"));
    assert!(!findings.is_empty());
    let columns: Vec<&str> = findings[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = vec![
        "event_id",
        "event_time",
        "tenant_id",
        "customer_tenant_id",
        "user_id",
        "upn",
        "rule_id",
        "severity",
        "surface",
        "policy_version",
        "enforced",
        "excepted",
        "app_id",
        "client_app",
        "token_sha256",
        "detail",
    ];
    let mut got = columns.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert!(findings
        .iter()
        .all(|f| f["enforced"].is_boolean() && f["excepted"].is_boolean()));
    let with_token = findings
        .iter()
        .find(|f| f["token_sha256"].as_str().is_some_and(|s| !s.is_empty()))
        .unwrap();
    assert_eq!(with_token["token_sha256"].as_str().unwrap().len(), 64);
    assert!(!lines(&out.join("rollout_daily.ndjson")).is_empty());
    assert!(!lines(&out.join("agents.ndjson")).is_empty());
    assert!(lines(&out.join("dead_letters.ndjson")).is_empty());

    // The counters /metrics would serve, printed at the end: they agree with the rows.
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains("counters (as /metrics names them):"),
        "{stderr}"
    );
    let counter = |prefix: &str| -> u64 {
        stderr
            .lines()
            .filter(|l| l.trim_start().starts_with(prefix))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(counter("mfa_audit_documents_total "), 3000);
    assert_eq!(counter("mfa_audit_findings_total{"), findings.len() as u64);
    let q = mfa_audit(&[
        "run",
        "-q",
        "--input",
        sample.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(q.status.success() && q.stdout.is_empty());
    assert!(!String::from_utf8_lossy(&q.stderr).contains("counters"));
}

#[test]
fn stdin_is_an_input_and_bad_documents_do_not_change_the_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mfa-audit"))
        .args(["run", "-q", "--input", "-", "--out", out.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"garbage\n{\"type\":\"mfa_registration\",\"time\":\"2020-05-01\",\"tenantId\":\"t\",\"userId\":\"u\",\"isMfaRegistered\":true}\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let dead = lines(&out.join("dead_letters.ndjson"));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["source"], "stdin");
    assert_eq!(dead[0]["position"], "line 1");
    assert!(dead[0]["reason"].as_str().unwrap().starts_with("not_json"));
}

#[test]
fn usage_and_policy_errors_exit_2_and_io_errors_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = mfa_audit(&[
        "run",
        "--input",
        "/nonexistent/input.ndjson",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("cannot open input `/nonexistent/input.ndjson`"),
        "{}",
        text(&o)
    );

    let o = mfa_audit(&[
        "run",
        "--input",
        "-",
        "--policy",
        "partner-mfa-1999",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("partner-mfa-2020-05"),
        "names the shipped policies: {}",
        text(&o)
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "version = 3\ntitle = \"t\"\npartner_roles = [\"Boss\"]\n",
    )
    .unwrap();
    let o = mfa_audit(&["policy", "check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let t = text(&o);
    for want in [
        "`version`: must be text",
        "`partner_roles[0]`: `Boss` is not a role",
        "`rules`: is missing",
        "`surfaces`: is missing",
    ] {
        assert!(t.contains(want), "missing {want:?} in {t}");
    }
    let o = mfa_audit(&["run", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "clap usage errors exit 2");
}

#[test]
fn policy_list_show_and_check_describe_the_shipped_versions() {
    let o = mfa_audit(&["policy", "list"]);
    assert!(o.status.success());
    let t = text(&o);
    assert!(t.contains("partner-mfa-2026 (default)"), "{t}");
    for name in [
        "partner-mfa-2019-09",
        "partner-mfa-2020-05",
        "azure-mandatory-mfa",
        "entra-signin-detections",
    ] {
        assert!(t.lines().any(|l| l.starts_with(&format!("{name}:"))), "{t}");
    }
    assert_eq!(
        t.lines().filter(|l| !l.starts_with(' ')).count(),
        5,
        "four versions and the detection pack: {t}"
    );
    assert!(
        t.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == [
                "entra_sign_ins",
                "detections",
                "(counts",
                "toward",
                "no",
                "readiness)"
            ]),
        "{t}"
    );
    assert!(
        t.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["delegated_admin", "enforced", "from", "2019-11-18"]),
        "{t}"
    );
    assert!(
        t.contains(
            "azure_management     enforced from 2025-10-01; a tenant may postpone it to 2026-07-01"
        ),
        "{t}"
    );
    let shipped = common::root().join("policies/partner-mfa-2019-09.toml");
    let o = mfa_audit(&["policy", "check", shipped.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = mfa_audit(&["policy", "show", "partner-mfa-2019-09"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        std::fs::read_to_string(&shipped).unwrap()
    );
}

#[test]
fn jwks_verification_flags_tokens_that_fail_and_passes_those_that_verify() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("sample.ndjson");
    let g = mfa_audit(&[
        "generate",
        "--tenants",
        "2",
        "--events",
        "800",
        "--out",
        sample.to_str().unwrap(),
    ]);
    assert!(g.status.success());
    let k =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mfa_audit::generate::DEMO_SECRET);
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        format!(r#"{{"keys":[{{"kty":"oct","kid":"mfa-audit-demo","alg":"HS256","k":"{k}"}}]}}"#),
    )
    .unwrap();
    let wrong = dir.path().join("wrong.json");
    std::fs::write(
        &wrong,
        r#"{"keys":[{"kty":"oct","kid":"mfa-audit-demo","alg":"HS256","k":"d3Jvbmc"}]}"#,
    )
    .unwrap();

    let count = |jwks: &Path| {
        let out = dir.path().join("out");
        let o = mfa_audit(&[
            "run",
            "-q",
            "--input",
            sample.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--jwks",
            jwks.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        lines(&out.join("findings.ndjson"))
            .iter()
            .filter(|f| f["rule_id"] == "TOKEN_SIGNATURE_INVALID")
            .count()
    };
    assert_eq!(count(&good), 0);
    assert!(count(&wrong) > 10);

    let o = mfa_audit(&[
        "run",
        "--input",
        sample.to_str().unwrap(),
        "--out",
        "/tmp/x",
        "--jwks",
        "/nonexistent.json",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn help_teaches_the_commands() {
    let t = text(&mfa_audit(&["run", "--help"]));
    for want in [
        "--input",
        "--policy",
        "--out",
        "--jwks",
        "Exit status",
        "dead letter",
    ] {
        assert!(t.contains(want), "run --help lacks {want}:\n{t}");
    }
    let t = text(&mfa_audit(&["report", "--help"]));
    for want in [
        "--from",
        "--out",
        "--database",
        "--policy",
        "self-contained",
    ] {
        assert!(t.contains(want), "report --help lacks {want}:\n{t}");
    }
}

/// A Microsoft Graph `signIn` export from one tenant's API carries no tenant id: without
/// `--tenant` it is a dead letter that says to use it; with it, the tenant is named.
#[test]
fn tenant_names_the_tenant_of_a_graph_export() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("graph.json");
    let sign_in = r#"{"id":"g-1","createdDateTime":"2026-05-02T10:00:00Z","userId":"00000000-0000-4000-8000-000000000001","userPrincipalName":"a@p.example","userType":"Member","appId":"c44b4083-3bb0-49c1-b47d-974e53cbdf3c","appDisplayName":"Azure Portal","clientAppUsed":"Browser","isInteractive":true,"authenticationRequirement":"singleFactorAuthentication","status":{"errorCode":0}}"#;
    std::fs::write(&input, format!("{{\"value\":[{sign_in}]}}\n")).unwrap();
    let input = input.to_str().unwrap();
    let out = dir.path().join("without");
    let o = mfa_audit(&[
        "run",
        "-q",
        "--policy",
        "azure-mandatory-mfa",
        "--input",
        input,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let dead = lines(&out.join("dead_letters.ndjson"));
    assert_eq!(dead.len(), 1, "{dead:?}");
    let reason = dead[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("missing_field") && reason.contains("--tenant ID"),
        "{reason}"
    );
    let out = dir.path().join("with");
    let o = mfa_audit(&[
        "run",
        "-q",
        "--policy",
        "azure-mandatory-mfa",
        "--tenant",
        "99999999-9999-4999-8999-999999999999",
        "--input",
        input,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(lines(&out.join("dead_letters.ndjson")).is_empty());
    let findings = lines(&out.join("findings.ndjson"));
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(
        findings[0]["tenant_id"],
        "99999999-9999-4999-8999-999999999999"
    );
    assert_eq!(findings[0]["rule_id"], "AZURE_ADMIN_PORTAL_NO_MFA");
}

/// One configuration for both modes: the same file and `MFA_AUDIT_*` variables serve the
/// file mode and the stream mode, flags override them, and a flag that does not apply to
/// the chosen mode, or a variable that names no key, is refused with its reason.
#[test]
fn one_configuration_serves_both_modes_and_refuses_what_does_not_apply() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sample = d.join("s.ndjson");
    let o = mfa_audit(&[
        "generate",
        "--tenants",
        "2",
        "--events",
        "300",
        "--seed",
        "3",
        "--out",
        sample.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // The file mode from a configuration file, as the stream mode reads its own.
    let config = d.join("files.toml");
    std::fs::write(
        &config,
        format!(
            "[files]\ninputs = [{:?}]\nout = {:?}\n[pipeline]\npolicies = [\"partner-mfa-2019-09\"]\n",
            sample.to_str().unwrap(),
            d.join("out-a").to_str().unwrap()
        ),
    )
    .unwrap();
    let o = mfa_audit(&["run", "-q", "--config", config.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let versions = |dir: &str| -> std::collections::BTreeSet<String> {
        lines(&d.join(dir).join("rollout_daily.ndjson"))
            .iter()
            .map(|r| r["policy_version"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(versions("out-a"), ["partner-mfa-2019-09".to_owned()].into());
    // A flag overrides the file; an MFA_AUDIT_* variable overrides the file too.
    let o = mfa_audit(&[
        "run",
        "-q",
        "--config",
        config.to_str().unwrap(),
        "--policy",
        "partner-mfa-2026",
        "--out",
        d.join("out-b").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(versions("out-b"), ["partner-mfa-2026".to_owned()].into());
    let o = Command::new(env!("CARGO_BIN_EXE_mfa-audit"))
        .env("MFA_AUDIT_PIPELINE_POLICIES", "azure-mandatory-mfa")
        .env("MFA_AUDIT_FILES_OUT", d.join("out-c"))
        .args(["run", "-q", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(versions("out-c"), ["azure-mandatory-mfa".to_owned()].into());

    // Refused, each with a one-line reason, exit 2.
    let stream = common::root().join("examples/stream.toml");
    let stream = stream.to_str().unwrap();
    for (args, env, want) in [
        (
            vec!["run", "--config", stream, "--input", "x.ndjson"],
            None,
            "`--input` does not apply to the stream mode",
        ),
        (
            vec!["run", "--config", stream, "--quiet"],
            None,
            "`--quiet` does not apply to the stream mode",
        ),
        (
            vec!["run", "--input", "x.ndjson", "--out", "o", "--until-end"],
            None,
            "`--until-end` does not apply to the file mode",
        ),
        (
            vec!["run", "--config", stream],
            Some(("MFA_AUDIT_KAFKA_PORT", "9092")),
            "MFA_AUDIT_KAFKA_PORT",
        ),
        (
            vec!["run", "--out", "o"],
            None,
            "no input: give `--input PATH`",
        ),
    ] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mfa-audit"));
        c.args(&args);
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains(want), "{args:?}: want {want:?} in {t}");
        assert_eq!(t.trim().lines().count(), 1, "one line: {t}");
    }
}

/// The commands `--help` lists (`man` is hidden: scripts/man runs it).
const COMMANDS: [&str; 9] = [
    "run",
    "produce",
    "schema",
    "generate",
    "policy",
    "explain",
    "diff",
    "report",
    "completions",
];

#[test]
fn completions_for_each_shell_name_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let o = mfa_audit(&["completions", shell]);
        assert!(o.status.success(), "{shell}: {}", text(&o));
        let script = String::from_utf8(o.stdout).unwrap();
        assert!(script.len() > 1000, "{shell}: {script}");
        for command in COMMANDS {
            assert!(
                script.contains(command),
                "{shell} completions lack `{command}`"
            );
        }
        // Flags of a command, and the values of an enumerated one.
        assert!(
            script.contains("until-end") && script.contains("ndjson"),
            "{shell}"
        );
    }
    let o = mfa_audit(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let help = mfa_audit(&["completions", "--help"]);
    assert!(text(&help).contains("~/.config/fish/completions/mfa-audit.fish"));
}

#[test]
fn the_man_pages_name_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man");
    let o = mfa_audit(&["man", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let page = std::fs::read_to_string(out.join("mfa-audit.1")).unwrap();
    assert!(page.contains(".TH mfa-audit 1"), "{page}");
    for command in COMMANDS {
        assert!(
            page.contains(&format!("mfa\\-audit\\-{command}(1)")),
            "mfa-audit.1 does not name `{command}`:\n{page}"
        );
        assert!(
            out.join(format!("mfa-audit-{command}.1")).is_file(),
            "{command}"
        );
    }
    let run = std::fs::read_to_string(out.join("mfa-audit-run.1")).unwrap();
    assert!(run.contains("\\-\\-until\\-end"), "{run}");
    assert!(
        !out.join("mfa-audit-man.1").exists(),
        "the hidden command has no page"
    );
}
