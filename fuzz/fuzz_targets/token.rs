//! Arbitrary text as bearer tokens through `TokenReader::read`, without a key set (claims
//! only) and with one (the signature check: `--jwks`).
//!
//! Input: the first byte chooses the reader (even: no key set, odd: with the key set);
//! the rest, as UTF-8 (lossy), is split on `\n` into up to 8 `Authorization` values, each
//! read twice by a reader that holds only 2 tokens, so the cache hit and eviction paths
//! run too. Beyond "no panic", it checks that a repeated read is a cache hit, that the
//! hash is 64 hex digits, that no error or signature reason echoes the token, and that
//! without a key set the claims read (or the refusal) are exactly those of jsonwebtoken's
//! own `insecure_decode_claims` (the reader finds the parts itself).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_audit::event::token::{strip_bearer, Claims, Signature, TokenReader, MAX_TOKEN_BYTES};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// A key set with an HMAC key (`kid` k1, the secret `k1-secret`), an RSA key and an EC
/// key (both public halves of throwaway test keys), written once to a temporary file:
/// `TokenReader::with_jwks` takes a path.
const JWKS: &str = r#"{"keys":[
 {"kty":"oct","kid":"k1","alg":"HS256","k":"azEtc2VjcmV0"},
 {"kty":"RSA","kid":"r1","alg":"RS256","use":"sig","e":"AQAB",
  "n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"},
 {"kty":"EC","kid":"e1","alg":"ES256","crv":"P-256",
  "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
]}"#;

fn jwks_path() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let p =
            std::env::temp_dir().join(format!("mfa-audit-fuzz-jwks-{}.json", std::process::id()));
        std::fs::write(&p, JWKS).expect("write the JWKS file");
        p
    })
}

/// An error or reason must not hold the token (only fixed texts and numbers do); the
/// fixed texts hold no `.`, so a token with one that is not tiny cannot match them by
/// chance.
fn assert_no_echo(what: &str, token: &str) {
    if token.len() >= 8 && token.contains('.') {
        assert!(!what.contains(token), "message echoes the token: {what}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let reader = if mode & 1 == 0 {
        TokenReader::new(2)
    } else {
        TokenReader::with_jwks(2, jwks_path()).expect("the key set loads")
    };
    let text = String::from_utf8_lossy(rest);
    for header in text.split('\n').take(8) {
        let raw = strip_bearer(header);
        let crate_reads = (mode & 1 == 0 && raw.len() <= MAX_TOKEN_BYTES)
            .then(|| jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(raw).ok());
        match reader.read(header) {
            Ok(info) => {
                assert_eq!(info.sha256.len(), 64);
                assert!(info.sha256.bytes().all(|b| b.is_ascii_hexdigit()));
                if let Signature::Invalid(reason) = &info.signature {
                    assert_no_echo(reason, raw);
                }
                if mode & 1 == 0 {
                    assert_eq!(info.signature, Signature::NotChecked);
                }
                if let Some(theirs) = &crate_reads {
                    assert_eq!(Some(&info.claims), theirs.as_ref(), "claims as jsonwebtoken reads them");
                }
                let c = &info.claims;
                let _ = (c.is_app_user(), c.has_mfa(), c.is_password_flow());
                let _ = (c.user_name(), c.client_id());
                let again = reader.read(header).expect("a token read once reads again");
                assert!(Arc::ptr_eq(&info, &again), "a repeated read is a cache hit");
            }
            Err(e) => {
                if let Some(theirs) = &crate_reads {
                    assert!(theirs.is_none(), "refused, as jsonwebtoken refuses it");
                }
                assert_no_echo(&e.to_string(), raw);
                assert_no_echo(&format!("{e:?}"), raw);
                assert!(
                    reader.read(header).is_err(),
                    "the same token reads the same way"
                );
            }
        }
        assert!(
            reader.len() <= 2,
            "the cache stays bounded: {}",
            reader.len()
        );
    }
});
