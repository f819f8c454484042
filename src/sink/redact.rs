//! Dead-letter excerpts: bounded, and with anything that looks like a credential removed
//! before they are cut to size (so no half token survives at the edge).

use regex::Regex;
use std::sync::LazyLock;

/// The longest excerpt, in bytes.
pub const MAX_EXCERPT_BYTES: usize = 512;

static SECRET_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    // INVARIANT: a constant pattern, covered by the tests below.
    #[allow(clippy::expect_used)]
    Regex::new(r#"(?i)"(authorization|access_token|id_token|refresh_token|token|client_secret|password|assertion)"\s*:\s*"(?:[^"\\]|\\.)*"?"#)
        .expect("valid pattern")
});
static BEARER: LazyLock<Regex> = LazyLock::new(|| {
    // INVARIANT: a constant pattern, covered by the tests below.
    #[allow(clippy::expect_used)]
    Regex::new(r#"(?i)bearer\s+[^\s"\\,}]+"#).expect("valid pattern")
});
static JWT_LIKE: LazyLock<Regex> = LazyLock::new(|| {
    // `eyJ` is base64url of `{"`: a JWT part, whole or cut.
    // INVARIANT: a constant pattern, covered by the tests below.
    #[allow(clippy::expect_used)]
    Regex::new(r"eyJ[A-Za-z0-9_\-]{6,}(?:\.[A-Za-z0-9_\-]*)*").expect("valid pattern")
});

/// Redacts credentials, then cuts to [`MAX_EXCERPT_BYTES`] on a character boundary.
pub fn excerpt(raw: &str) -> String {
    let a = SECRET_VALUE.replace_all(raw, "\"$1\":\"[REDACTED]\"");
    let b = BEARER.replace_all(&a, "Bearer [REDACTED]");
    let c = JWT_LIKE.replace_all(&b, "[REDACTED]");
    cut(&c, MAX_EXCERPT_BYTES).to_owned()
}

/// Bytes that are not UTF-8: shown lossily, then redacted.
pub fn excerpt_bytes(raw: &[u8]) -> String {
    excerpt(&String::from_utf8_lossy(raw))
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_never_survive() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJDQU5BUlkifQ.c2lnbmF0dXJlLWNhbmFyeQ";
        for doc in [
            format!(r#"{{"authorization":"Bearer {jwt}","x":1}}"#),
            format!(r#"{{"authorization": "{jwt}"}}"#),
            format!(r#"{{"other":"{jwt}"}}"#),
            r#"{"authorization":"Bearer not-a-jwt-SECRET"#.to_owned(),
            r#"{"note":"Bearer SECRET123"}"#.to_owned(),
            format!(r#"{{"authorization":"Bearer {}"#, &jwt[..30]),
        ] {
            let e = excerpt(&doc);
            assert!(!e.contains("eyJzdWIi"), "{e}");
            assert!(!e.contains("c2lnbmF0dXJl"), "{e}");
            assert!(!e.contains("SECRET"), "{e}");
        }
    }

    #[test]
    fn excerpts_are_bounded_on_char_boundaries() {
        let e = excerpt(&"é".repeat(600));
        assert!(e.len() <= MAX_EXCERPT_BYTES);
        assert!(e.chars().all(|c| c == 'é'));
    }
}
