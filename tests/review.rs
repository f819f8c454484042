//! The security review of 2026-12 (release e7e5271), finding by finding: each test here
//! reproduces a finding's input and fails on that release. Findings covered elsewhere:
//! F1 and F9 in tests/canary.rs (a token in every field of every kind), F8 and the JWK
//! `alg` in `event::token`'s unit tests, F13 in `event::scrub`'s, the top-level array of
//! F16 in `event::decode`'s.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure is reported by panicking"
)]

mod common;

use mfa_audit::event::time::EventTime;
use mfa_audit::pipeline::Origin;
use mfa_audit::sink::MemorySink;
use mfa_audit::source::{file, Framing};
use std::sync::Arc;

/// F1: a token in an int- or bool-typed field came back whole in the dead letter's
/// `reason`, and a 900 KB string gave a 900 KB reason.
#[test]
fn f1_a_reason_quotes_no_value_and_is_bounded() {
    let token = common::jwt(&serde_json::json!({"tid": "t", "canary": "PAYLOADCANARY"}));
    let long = "x".repeat(900_000);
    let docs: Vec<String> = [
        format!(r#""statusCode":"Bearer {token}""#),
        format!(r#""statusCode":200,"isMfaCompliant":"Bearer {token}""#),
        format!(r#""statusCode":"{long}""#),
    ]
    .iter()
    .map(|f| {
        format!(
            r#"{{"type":"partner_api_request","requestId":"r","requestDateTime":"2020-06-01T10:00:00Z","tenantId":"t",{f}}}"#
        )
    })
    .collect();
    let p = common::processor("partner-mfa-2026");
    let sink = common::run_docs(&p, &docs);
    assert_eq!(sink.dead_letters.len(), 3, "{:#?}", sink.dead_letters);
    let sig = token.rsplit('.').next().unwrap();
    for d in &sink.dead_letters {
        assert!(d.reason.starts_with("wrong_type"), "{}", d.reason);
        assert!(
            !d.reason.contains(sig) && !d.reason.contains("eyJ"),
            "{}",
            d.reason
        );
        assert!(d.reason.len() <= 256, "{} bytes", d.reason.len());
        assert!(!d.excerpt.contains(sig), "{}", d.excerpt);
    }
}

/// F3: a batch of the multi-threaded file mode was bounded in bytes only, and each
/// decoded document costs ~1.1 KB whatever its size: 8 MB of `1` lines took 5.5 GB.
#[test]
fn f3_a_batch_is_bounded_in_documents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ones.ndjson");
    std::fs::write(&path, "1\n".repeat(200_000)).unwrap();
    let inputs = vec![path.display().to_string()];
    let mut reader = file::Reader::new(&inputs, Framing::Auto, 1 << 20);
    let mut batches = Vec::new();
    loop {
        let mut n = 0usize;
        let got = reader
            .fill(usize::MAX, &mut |_| n += 1, &mut |_| {})
            .unwrap();
        if got.is_none() {
            break;
        }
        batches.push(n);
    }
    assert_eq!(batches.iter().sum::<usize>(), 200_000);
    let most = batches.iter().max().copied().unwrap_or(0);
    assert!(
        most <= file::BATCH_MAX_DOCS + 1,
        "a batch of {most} documents (bound {})",
        file::BATCH_MAX_DOCS
    );
}

/// F5: one event dated in the future made a blocked tenant ready (readiness reads the
/// tenant's newest day) and ended its replay window. Such an event is now a
/// `future_time` dead letter, checked against a clock the test sets.
#[test]
fn f5_a_future_event_is_a_dead_letter_and_moves_nothing() {
    let case = common::case(&common::root().join("tests/conformance/delegated_admin.json"));
    let crit = common::document(&case["events"][2]); // a delegated-admin sign-in without MFA, 2020-05-02
    let future = r#"{"type":"dashboard_request","requestId":"f1","time":"2099-01-01T00:00:00Z","tenantId":"11111111-1111-4111-8111-111111111111","url":"https://partner.microsoft.com/dashboard/home","statusCode":404}"#;
    let soon = r#"{"type":"dashboard_request","requestId":"f2","time":"2020-06-01T20:00:00Z","tenantId":"11111111-1111-4111-8111-111111111111","url":"https://partner.microsoft.com/dashboard/home","statusCode":404}"#;
    let now = EventTime::parse("2020-06-01T00:00:00Z").unwrap();
    let p = common::processor("partner-mfa-2020-05").with_clock(Arc::new(move || now));
    let mut sink = MemorySink::default();
    for (i, d) in [crit.as_str(), future, soon].iter().enumerate() {
        let pos = format!("line {}", i + 1);
        let origin = Origin {
            source: "t",
            position: &pos,
        };
        p.process(origin, d.as_bytes(), None, &mut sink).unwrap();
    }
    assert_eq!(sink.dead_letters.len(), 1, "{:#?}", sink.dead_letters);
    let d = &sink.dead_letters[0];
    assert_eq!(d.position, "line 2");
    assert!(
        d.reason.starts_with("future_time: event time 2099-01-01"),
        "{}",
        d.reason
    );
    // 20 hours ahead is within the default day of skew.
    let r = p.readiness();
    let t = r
        .iter()
        .find(|r| r.tenant_id == "11111111-1111-4111-8111-111111111111")
        .unwrap();
    assert_eq!(t.day.to_string(), "2020-06-01");
    assert_eq!(
        t.status_7d.name(),
        "ready",
        "the 2020-05-02 sign-in is out of the 7 days"
    );

    // F16: a day before 1970 would be 0000-00-00 in ClickHouse 18.16.
    let old = soon.replace("2020-06-01T20:00:00Z", "1969-12-31T00:00:00Z");
    let sink = common::run_docs(&p, &[old]);
    assert!(
        sink.dead_letters[0]
            .reason
            .starts_with("bad_time: event time 1969-12-31"),
        "{:?}",
        sink.dead_letters
    );

    // With a skew of 0 hours, the request 20 hours ahead is refused too.
    let p = common::processor("partner-mfa-2020-05")
        .with_clock(Arc::new(move || now))
        .with_future_skew_hours(0);
    let sink = common::run_docs(&p, &[soon.to_owned()]);
    assert_eq!(sink.dead_letters.len(), 1);
}

/// F11: a tenant id with terminal escapes was printed raw to the readiness table.
#[test]
fn f11_terminal_output_escapes_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("inj.ndjson");
    let evil = "evil\u{1b}]0;PWNED\u{7}\u{1b}[2J\u{1b}[31mRED\rX";
    let doc = serde_json::json!({
        "type": "dashboard_request", "requestId": "i1", "time": "2020-05-02T10:00:00Z",
        "tenantId": evil, "url": "https://partner.microsoft.com/commerce/customers/list",
        "statusCode": 200, "userId": "u1", "sessionAmr": ["pwd"]
    });
    std::fs::write(&input, format!("{doc}\n")).unwrap();
    let o = common::bin()
        .args(["run", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let shown = common::ok(o, "run");
    assert!(shown.contains("evil"), "{shown}");
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\r') && !shown.contains('\u{7}'),
        "{shown:?}"
    );
    let o = common::bin()
        .args(["explain", "--input"])
        .arg(&input)
        .args(["--event-id", "i1"])
        .output()
        .unwrap();
    let shown = common::ok(o, "explain");
    assert!(shown.contains("tenant evil"), "{shown}");
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\r'),
        "{shown:?}"
    );
}

/// F12: output files followed links planted in the folder, were overwritten through a
/// fixed temporary name, and were created 0644.
#[test]
fn f12_output_files_follow_no_link_and_are_not_world_readable() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shared");
    std::fs::create_dir(&out).unwrap();
    let victim = dir.path().join("victim.txt");
    let victim2 = dir.path().join("victim2.txt");
    std::fs::write(&victim, "victim").unwrap();
    std::fs::write(&victim2, "victim2").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::{symlink, PermissionsExt};
        symlink(&victim, out.join("findings.ndjson")).unwrap();
        symlink(&victim2, out.join(".agents.ndjson.tmp")).unwrap();
        symlink(&victim2, out.join("agents.ndjson")).unwrap();
        symlink(&victim2, dir.path().join("page.html")).unwrap();
        let input = common::root()
            .join("tests/realdata/panther_legacyauth_authenticated_smtp_bav2ropc.json");
        let o = common::bin()
            .args(["run", "-q", "--input"])
            .arg(&input)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        common::ok(o, "run");
        let o = common::bin()
            .args(["report", "--from"])
            .arg(&out)
            .arg("--out")
            .arg(dir.path().join("page.html"))
            .output()
            .unwrap();
        common::ok(o, "report");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "victim");
        assert_eq!(std::fs::read_to_string(&victim2).unwrap(), "victim2");
        for f in [
            out.join("findings.ndjson"),
            out.join("agents.ndjson"),
            out.join("dead_letters.ndjson"),
            out.join("rollout_daily.ndjson"),
            dir.path().join("page.html"),
        ] {
            let m = std::fs::symlink_metadata(&f).unwrap();
            assert!(
                m.file_type().is_file(),
                "{} is not a plain file",
                f.display()
            );
            assert_eq!(m.permissions().mode() & 0o777, 0o640, "{}", f.display());
        }
        assert!(std::fs::read_to_string(out.join("findings.ndjson"))
            .unwrap()
            .contains("LEGACY_PROTOCOL"));
    }
}
