//! A raw token is a credential: a token planted in the input appears in no output file
//! and no log line, even at trace level, whether it is valid, broken, oversized or in a
//! field nobody reads.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure is reported by panicking"
)]

mod common;

use std::process::Command;

#[test]
fn a_planted_token_appears_in_no_output_and_no_log() {
    let claims = serde_json::json!({
        "tid": "t-canary", "oid": "u-canary", "upn": "canary@example.com",
        "amr": ["pwd"], "scp": "user_impersonation", "appid": "a", "appidacr": "0",
        "canary": "CANARYCLAIMVALUE0123456789"
    });
    let token = common::jwt(&claims);
    let parts: Vec<&str> = token.split('.').collect();
    let broken = format!("{}.{}", parts[0], parts[1]); // no signature part: unreadable JWT
    let oversized = format!("{}{}", token, "A".repeat(20_000));
    let docs = [
        format!(
            r#"{{"type":"partner_api_request","requestId":"r1","requestDateTime":"2020-05-02T00:00:00Z","tenantId":"t-canary","statusCode":200,"authorization":"Bearer {token}"}}"#
        ),
        format!(
            r#"{{"type":"partner_api_request","requestId":"r2","requestDateTime":"2020-05-02T00:00:00Z","tenantId":"t-canary","statusCode":200,"authorization":"Bearer {broken}"}}"#
        ),
        format!(
            r#"{{"type":"partner_api_request","requestId":"r3","requestDateTime":"2020-05-02T00:00:00Z","tenantId":"t-canary","statusCode":200,"authorization":"Bearer {oversized}"}}"#
        ),
        format!(
            r#"{{"type":"partner_api_request","requestId":"r4","requestDateTime":"never","tenantId":"t-canary","authorization":"Bearer {token}"}}"#
        ),
        format!(r#"{{"type":"what_is_this","note":"{token}"}}"#),
        format!(
            r#"{{"type":"partner_api_request","requestId":"r5", "authorization":"Bearer {token}"#
        ),
        format!(
            r#"{{"records":[{{"time":"2020-05-02","tenantId":"t","properties":{{"id":9,"userAgent":"{token}"}}}}]}}"#
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, docs.join("\n") + "\n").unwrap();
    let out = dir.path().join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_mfa-audit"))
        .args(["run", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let mut everything = String::from_utf8_lossy(&run.stdout).into_owned();
    everything.push_str(&String::from_utf8_lossy(&run.stderr));
    for f in std::fs::read_dir(&out).unwrap() {
        everything.push_str(&std::fs::read_to_string(f.unwrap().path()).unwrap());
    }
    // Something was written: a finding for the valid token, dead letters for the rest.
    assert!(everything.contains("API_APP_USER_NO_MFA"), "{everything}");
    assert!(everything.contains("bad_token"), "{everything}");
    assert!(everything.contains("token_oversized"), "{everything}");
    assert!(
        everything.contains("TRACE") || everything.contains("DEBUG"),
        "logging was on"
    );
    for needle in [
        token.as_str(),
        parts[0],
        parts[1],
        parts[2],
        broken.as_str(),
    ] {
        assert!(
            !everything.contains(needle),
            "token material `{needle}` leaked"
        );
    }
    // The claims' payload in base64url, in any 24-character window, never appears.
    for w in parts[1].as_bytes().windows(24).step_by(12) {
        let w = std::str::from_utf8(w).unwrap();
        assert!(
            !everything.contains(w),
            "a piece of the token payload leaked: {w}"
        );
    }
    assert!(
        !everything.contains("CANARYCLAIMVALUE"),
        "a claim value nobody reads leaked"
    );
}

/// Every leaf of `v` (strings, numbers, booleans, nulls), as JSON-pointer-like paths.
fn leaves(v: &serde_json::Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                path.push(k.clone());
                leaves(x, path, out);
                path.pop();
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                path.push(i.to_string());
                leaves(x, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

fn set(v: &mut serde_json::Value, path: &[String], to: serde_json::Value) {
    let mut at = v;
    for p in path {
        at = match at {
            serde_json::Value::Object(m) => m.get_mut(p).unwrap(),
            serde_json::Value::Array(a) => &mut a[p.parse::<usize>().unwrap()],
            _ => unreachable!(),
        };
    }
    *at = to;
}

/// The review's canary, planted in every field of every input kind: each conformance
/// event and each public real record is copied once per field, with that field (string,
/// number, boolean or null alike) replaced by the token bare, behind `Bearer `, and in a
/// URL's query; and once with opaque secrets under secret-looking keys. Under all four
/// shipped policies, no row file, dead letter, log line at trace level, `explain` output
/// (text and JSON) or report holds any piece of the token or of the secrets.
#[test]
fn a_token_in_any_field_of_any_kind_leaks_nowhere() {
    let claims = serde_json::json!({
        "tid": "36070665-1494-46d8-ac0e-8e6b67094cea", "oid": "u1", "upn": "a@b",
        "amr": ["pwd"], "scp": "user_impersonation", "appid": "app1", "appidacr": "0",
        "canary": "PAYLOADCANARY"
    });
    let token = common::jwt(&claims);
    let parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let forms = [
        token.clone(),
        format!("Bearer {token}"),
        format!("GET /v1/customers?access_token={token}&x=1"),
    ];
    let mut originals: Vec<serde_json::Value> = common::conformance_documents()
        .iter()
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect();
    for text in common::realdata_texts() {
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => originals.push(v),
            Err(_) => originals.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok())),
        }
    }
    let kinds: std::collections::BTreeSet<String> = originals
        .iter()
        .filter_map(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .collect();
    for k in [
        "partner_api_request",
        "dashboard_request",
        "partner_role_assignment",
        "mfa_registration",
        "technical_exception",
        "policy_override",
    ] {
        assert!(kinds.contains(k), "no {k} among the originals: {kinds:?}");
    }
    let mut docs = Vec::new();
    for (n, v) in originals.iter().enumerate() {
        let mut paths = Vec::new();
        leaves(v, &mut Vec::new(), &mut paths);
        for (i, p) in paths.iter().enumerate() {
            let mut w = v.clone();
            set(
                &mut w,
                p,
                serde_json::Value::String(forms[(n + i) % 3].clone()),
            );
            docs.push(serde_json::to_string(&w).unwrap());
        }
        if let serde_json::Value::Object(m) = v {
            let mut w = m.clone();
            for key in [
                "accessToken",
                "clientSecret",
                "Cookie",
                "x-ms-token-aad-refresh-token",
            ] {
                w.insert(key.into(), "OPAQUESECRETCANARY".into());
            }
            // A dead letter, so that its excerpt is written.
            w.insert("time".into(), "not a time".into());
            w.insert("requestDateTime".into(), "not a time".into());
            docs.push(serde_json::to_string(&w).unwrap());
        }
    }
    assert!(docs.len() > 3000, "{} documents", docs.len());

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, docs.join("\n") + "\n").unwrap();
    let mut everything = String::new();
    let mut keep = |o: std::process::Output| {
        everything.push_str(&String::from_utf8_lossy(&o.stdout));
        everything.push_str(&String::from_utf8_lossy(&o.stderr));
    };
    let out = dir.path().join("out");
    let policies = [
        "partner-mfa-2019-09",
        "partner-mfa-2020-05",
        "partner-mfa-2026",
        "azure-mandatory-mfa",
    ];
    let mut run = common::bin();
    run.arg("run")
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(&out);
    run.args(["--tenant", "36070665-1494-46d8-ac0e-8e6b67094cea"]);
    for p in policies {
        run.args(["--policy", p]);
    }
    let o = run.env("RUST_LOG", "trace").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    keep(o);
    for json in [false, true] {
        let mut explain = common::bin();
        explain.arg("explain").arg("--input").arg(&input);
        for p in policies {
            explain.args(["--policy", p]);
        }
        if json {
            explain.arg("--json");
        }
        let o = explain.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(o.stdout.len() > 100_000, "explain printed little");
        keep(o);
    }
    let report = dir.path().join("report.html");
    let o = common::bin()
        .args(["report", "--from"])
        .arg(&out)
        .arg("--out")
        .arg(&report)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    keep(o);
    everything.push_str(&std::fs::read_to_string(&report).unwrap());
    for f in std::fs::read_dir(&out).unwrap() {
        everything.push_str(&std::fs::read_to_string(f.unwrap().path()).unwrap());
    }
    assert!(everything.contains("[REDACTED]"), "nothing was redacted");
    assert!(
        everything.contains("TRACE") || everything.contains("DEBUG"),
        "logging was on"
    );
    for needle in [
        parts[1].as_str(),
        parts[2].as_str(),
        "OPAQUESECRETCANARY",
        "PAYLOADCANARY",
    ] {
        let hits = everything.matches(needle).count();
        assert_eq!(hits, 0, "`{needle}` leaked {hits} times");
    }
    // Any 16-character window of the payload or signature.
    for part in [&parts[1], &parts[2]] {
        for w in part.as_bytes().windows(16).step_by(8) {
            let w = std::str::from_utf8(w).unwrap();
            assert!(!everything.contains(w), "a piece of the token leaked: {w}");
        }
    }
}
