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
