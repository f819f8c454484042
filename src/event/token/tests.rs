//! Unit tests of `event::token`.

use super::*;
use jsonwebtoken::{encode, EncodingKey, Header};

/// F14 of the security review of 2026-12: `--jwks /dev/zero` read until memory ran out.
#[test]
fn a_key_set_must_be_a_small_regular_file() {
    for path in ["/dev/zero", "/"] {
        let e = TokenReader::with_jwks(10, Path::new(path))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("not a regular file"), "{path}: {e}");
    }
}

/// A signed HS256 token over `claims` (tests only).
pub(crate) fn hs256(claims: &serde_json::Value, secret: &[u8]) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// The security review of 2026-12, F8: a token of thousands of empty `amr` values
/// cost ~128 KB in the cache; the list is bounded, `mfa` and `pwd` kept wherever they
/// stand, and the cache is bounded in bytes.
#[test]
fn list_claims_and_the_cache_are_bounded() {
    let mut amr = vec!["pwd".to_owned()];
    amr.extend(std::iter::repeat_n(String::new(), 3950));
    amr.extend((0..40).map(|i| format!("m{i}")));
    amr.push("mfa".into());
    let t = hs256(&serde_json::json!({"tid": "t", "amr": amr}), b"k");
    let r = TokenReader::new(DEFAULT_TOKEN_CACHE_ENTRIES);
    let info = r.read(&t).unwrap();
    let got = info.claims.amr.clone().unwrap();
    assert_eq!(got.len(), MAX_CLAIM_LIST + 1, "{got:?}");
    assert!(info.claims.has_mfa());
    assert_eq!(got.first().map(String::as_str), Some("pwd"));
    assert!(info.weight() < 4096, "{}", info.weight());
    // ["pwd", "", "pwd"] is only pwd.
    let t = hs256(
        &serde_json::json!({"amr": ["pwd", "", "pwd"], "appidacr": "0"}),
        b"k",
    );
    assert!(r.read(&t).unwrap().claims.is_password_flow());
    // 12 KB of claims each: the cache stays under its byte bound.
    let pad = "x".repeat(12_000);
    for i in 0..8_000 {
        let t = hs256(
            &serde_json::json!({"tid": i.to_string(), "upn": pad, "exp": 1}),
            b"k",
        );
        r.read(&t).unwrap();
        assert!(r.bytes() <= TOKEN_CACHE_MAX_BYTES, "{}", r.bytes());
    }
    assert!(r.len() < 8_000 && r.bytes() > 0);
}

#[test]
fn claims_are_read_exactly_as_jsonwebtoken_reads_them() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let good = b64(r#"{"tid":"t","amr":["mfa"],"appidacr":0}"#);
    let cases = [
        format!("h.{good}.s"),
        format!("a.h.{good}.s"), // four parts: the payload is the one before the last
        format!("{good}.s"),     // two parts
        format!(".{good}."),     // empty header and signature
        good.clone(),            // no dot
        format!("h.{good}=.s"),  // padding: not base64url without padding
        format!("h.{}.s", b64("[1]")),
        format!("h.{}.s", b64(r#"{"tid":1}"#)),
        format!("h.{}.s", b64(r#"{"tid":"t"} x"#)),
        "h.%%%.s".to_owned(),
        "h.\u{e9}.s".to_owned(),
        String::new(),
    ];
    for token in &cases {
        let crate_reads = jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(token)
            .map_err(|e| TokenError::Malformed(short_reason(&e)));
        assert_eq!(read_claims(token), crate_reads, "{token}");
    }
    assert!(read_claims(cases.first().unwrap()).is_ok());
}

#[test]
fn reads_claims_and_hashes_without_keeping_the_token() {
    let claims = serde_json::json!({"tid": "t1", "oid": "u1", "amr": ["pwd", "mfa"],
        "scp": "user_impersonation", "appid": "a1", "appidacr": "0", "upn": "x@y"});
    let token = hs256(&claims, b"k");
    let r = TokenReader::new(10);
    let info = r.read(&format!("Bearer {token}")).unwrap();
    assert!(info.claims.is_app_user());
    assert!(info.claims.has_mfa());
    assert!(!info.claims.is_password_flow());
    assert_eq!(info.sha256, hex::encode(Sha256::digest(token.as_bytes())));
    assert_eq!(info.signature, Signature::NotChecked);
    let again = r.read(&token).unwrap();
    assert!(Arc::ptr_eq(&info, &again));
    assert_eq!(r.stats(), (1, 1));
}

#[test]
fn mfa_is_an_exact_match_and_password_flow_needs_a_public_client() {
    let mut c = Claims {
        amr: Some(vec!["ngcmfa".into()]),
        ..Claims::default()
    };
    assert!(!c.has_mfa());
    c.amr = Some(vec!["pwd".into()]);
    c.appidacr = Some("1".into());
    assert!(!c.is_password_flow());
    c.appidacr = None;
    c.azpacr = Some("0".into());
    assert!(c.is_password_flow());
}

#[test]
fn app_only_is_told_from_app_user() {
    let app = Claims {
        roles: Some(vec!["x".into()]),
        ..Claims::default()
    };
    assert!(!app.is_app_user());
    let typed = Claims {
        idtyp: Some("app".into()),
        scp: Some("x".into()),
        ..Claims::default()
    };
    assert!(!typed.is_app_user());
}

#[test]
fn broken_and_oversized_tokens_are_errors_that_do_not_echo_them() {
    let r = TokenReader::new(10);
    let e = r.read("Bearer eyJhbGciOi.SECRETPART").unwrap_err();
    assert!(!e.to_string().contains("SECRETPART"), "{e}");
    let big = "a".repeat(MAX_TOKEN_BYTES + 1);
    assert!(matches!(r.read(&big), Err(TokenError::Oversized(_))));
    assert!(r.read("Bearer a.!!!.c").is_err());
}

#[test]
fn jwks_verification_flags_a_forged_signature() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    // base64url("k1-secret")
    std::fs::write(
        &jwks,
        r#"{"keys":[{"kty":"oct","kid":"k1","alg":"HS256","k":"azEtc2VjcmV0"}]}"#,
    )
    .unwrap();
    let r = TokenReader::with_jwks(10, &jwks).unwrap();
    let claims = serde_json::json!({"tid": "t", "scp": "s"});
    let header = Header {
        kid: Some("k1".into()),
        ..Header::default()
    };
    let good = encode(&header, &claims, &EncodingKey::from_secret(b"k1-secret")).unwrap();
    let bad = encode(&header, &claims, &EncodingKey::from_secret(b"other")).unwrap();
    assert_eq!(r.read(&good).unwrap().signature, Signature::Valid);
    assert!(matches!(
        r.read(&bad).unwrap().signature,
        Signature::Invalid(_)
    ));
    // The security review of 2026-12, F16: the key declares HS256, so an HS512 token
    // signed with the same secret does not verify.
    let hs512 = Header {
        alg: jsonwebtoken::Algorithm::HS512,
        ..header
    };
    let other_alg = encode(&hs512, &claims, &EncodingKey::from_secret(b"k1-secret")).unwrap();
    assert_eq!(
        r.read(&other_alg).unwrap().signature,
        Signature::Invalid("algorithm not allowed".into())
    );
}

#[test]
fn eviction_keeps_the_cache_bounded() {
    let r = TokenReader::new(3);
    for i in 0..10 {
        let t = hs256(&serde_json::json!({"exp": 1000 + i * 10_000, "n": i}), b"k");
        r.read(&t).unwrap();
    }
    assert!(r.len() <= 3, "{}", r.len());
}
