//! Credentials out of every text that leaves the process. A bearer token is read in
//! memory ([`super::token`]) and only its SHA-256 goes further; but attacker-influenced
//! records carry credentials in other places too (a token pasted in a URL, a user agent,
//! an operation name, a field of the wrong type that a parser error would quote). Every
//! text written to a row, a dead letter, `explain`, a log line, the report or the
//! dead-letter topic passes through here first.
//!
//! What is removed, by shape, wherever it sits:
//! - `Bearer <credential>` and `Basic <base64>`;
//! - JWT-shaped values (`eyJ` is base64url of `{"`), whole or cut;
//! - the values of secret query parameters (`access_token=`, `code=`, `sig=`, ...);
//! - in JSON text (excerpts, the dead-letter topic), the values under secret-looking
//!   keys ([`is_secret_key`]: `accessToken`, `clientSecret`, `Cookie`, `apiKey`, ...).
//!
//! Free text that holds none of `eyJ`, `bearer`, `basic` or `=` is returned as it is
//! without running a pattern, so a row pays a few byte scans per text column.

use memchr::{memchr, memmem};
use regex::{Captures, Regex};
use std::borrow::Cow;
use std::sync::LazyLock;

/// What replaces a credential.
pub const REDACTED: &str = "[REDACTED]";
/// The longest dead-letter excerpt, in bytes.
pub const MAX_EXCERPT_BYTES: usize = 512;
/// The longest dead-letter reason, in bytes.
pub const MAX_REASON_BYTES: usize = 256;

/// A constant pattern, compiled once.
fn pattern(p: &str) -> Regex {
    // INVARIANT: every pattern of this file is a constant, covered by the tests below.
    #[allow(clippy::expect_used)]
    Regex::new(p).expect("valid pattern")
}

static AUTH_SCHEME: LazyLock<Regex> = LazyLock::new(|| {
    pattern(r#"(?i)\b(bearer)(\s+|%20|\+)[^\s"'\\,;}&]+|\b(basic)(\s+|%20|\+)[A-Za-z0-9+/=]{8,}"#)
});
static JWT_LIKE: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"eyJ[A-Za-z0-9_\-]{6,}(?:\.[A-Za-z0-9_\-]*)*"));
static QUERY_SECRET: LazyLock<Regex> = LazyLock::new(|| {
    pattern(
        r#"(?i)([?&;#]|\\u0026)((?:access|id|refresh|session)_?token|token|code|sig|signature|client_?secret|client_?assertion|assertion|password|passwd|pwd|secret|api_?key|key|subscription-key|sas|sv_sig|x-ms-token-[a-z-]+)=([^&\s"'#\\]*)"#,
    )
});
static JSON_PAIR: LazyLock<Regex> = LazyLock::new(|| {
    pattern(r#""((?:[^"\\]|\\.){1,128})"(\s*:\s*)("(?:[^"\\]|\\.)*"?|[^\s,}\]"][^\s,}\]]*)"#)
});

/// Whether a JSON key or header name names a secret: compared without case, `-`, `_`,
/// `.` and blanks, so `x-ms-token-aad-refresh-token`, `Client_Secret` and
/// `"Authorization "` all count.
pub fn is_secret_key(key: &str) -> bool {
    let k: String = key
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | ' ' | '\t'))
        .flat_map(char::to_lowercase)
        .collect();
    matches!(
        k.as_str(),
        "authorization" | "proxyauthorization" | "pwd" | "pass" | "sig" | "signature" | "sas"
    ) || k.ends_with("token")
        || k.ends_with("tokens")
        || k.ends_with("key")
        || [
            "secret",
            "password",
            "passwd",
            "passphrase",
            "assertion",
            "cookie",
            "connectionstring",
        ]
        .iter()
        .any(|w| k.contains(w))
}

/// Whether `hay` holds `needle` (lowercase ASCII) in any case.
fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let mut at = 0;
    while let Some(i) = hay
        .get(at..)
        .and_then(|h| memchr::memchr2(first, first.to_ascii_uppercase(), h))
    {
        let start = at + i + 1;
        if hay
            .get(start..start + rest.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(rest))
        {
            return true;
        }
        at = start;
    }
    false
}

/// `text` with `re`'s matches replaced, kept borrowed when nothing matched.
fn replace<'a>(text: Cow<'a, str>, re: &Regex, with: impl regex::Replacer) -> Cow<'a, str> {
    match re.replace_all(&text, with) {
        Cow::Borrowed(_) => text,
        Cow::Owned(s) => Cow::Owned(s),
    }
}

/// Free text with every credential removed by its shape (see the module's list).
pub fn text(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    let jwt = memmem::find(b, b"eyJ").is_some();
    let auth = contains_ignore_case(b, b"bearer") || contains_ignore_case(b, b"basic");
    let query = memchr(b'=', b).is_some();
    if !(jwt || auth || query) {
        return Cow::Borrowed(s);
    }
    let mut out = Cow::Borrowed(s);
    if auth {
        out = replace(out, &AUTH_SCHEME, |c: &Captures| {
            let scheme = c.get(1).or_else(|| c.get(3)).map_or("", |m| m.as_str());
            let gap = c.get(2).or_else(|| c.get(4)).map_or(" ", |m| m.as_str());
            format!("{scheme}{gap}{REDACTED}")
        });
    }
    if jwt {
        out = replace(out, &JWT_LIKE, REDACTED);
    }
    if query {
        out = replace(out, &QUERY_SECRET, format!("$1$2={REDACTED}").as_str());
    }
    out
}

/// JSON text (whole or cut): the values under secret-looking keys, then everything
/// [`text`] removes.
pub fn json(s: &str) -> Cow<'_, str> {
    let keyed = if memchr(b':', s.as_bytes()).is_some() {
        replace(Cow::Borrowed(s), &JSON_PAIR, |c: &Captures| {
            let all = c.get(0).map_or("", |m| m.as_str());
            match (c.get(1), c.get(2)) {
                (Some(key), Some(colon)) if is_secret_key(key.as_str()) => {
                    format!("\"{}\"{}\"{REDACTED}\"", key.as_str(), colon.as_str())
                }
                _ => all.to_owned(),
            }
        })
    } else {
        Cow::Borrowed(s)
    };
    match keyed {
        Cow::Borrowed(b) => text(b),
        Cow::Owned(o) => Cow::Owned(text(&o).into_owned()),
    }
}

/// A dead letter's excerpt: credentials removed, then cut to [`MAX_EXCERPT_BYTES`] on a
/// character boundary (after the redaction, so no half token survives at the edge).
pub fn excerpt(raw: &str) -> String {
    cut(&json(raw), MAX_EXCERPT_BYTES).to_owned()
}

/// Bytes that are not UTF-8: shown lossily, then as [`excerpt`].
pub fn excerpt_bytes(raw: &[u8]) -> String {
    excerpt(&String::from_utf8_lossy(raw))
}

/// `s` cut to at most `max` bytes on a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// Text for a terminal: [`text`], with control characters (ESC, CR, BEL, ...) shown
/// escaped, so a tenant id cannot move the cursor, hide a status or write to the
/// clipboard.
pub fn terminal(s: &str) -> Cow<'_, str> {
    let clean = text(s);
    if !clean.chars().any(char::is_control) {
        return clean;
    }
    Cow::Owned(clean.chars().flat_map(char::escape_debug).collect())
}

/// `serialize_with` for a row's text column: the text, scrubbed.
pub fn ser<S: serde::Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&text(v))
}

/// `serialize_with` for a row's list of texts, each scrubbed.
pub fn ser_all<S: serde::Serializer, T: AsRef<str>>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|t| text(t.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJDQU5BUlkifQ.c2lnbmF0dXJlLWNhbmFyeQ";

    fn clean(s: &str) -> bool {
        !s.contains("eyJzdWIi") && !s.contains("c2lnbmF0dXJl") && !s.contains("SECRET")
    }

    #[test]
    fn tokens_never_survive_an_excerpt() {
        for doc in [
            format!(r#"{{"authorization":"Bearer {JWT}","x":1}}"#),
            format!(r#"{{"authorization": "{JWT}"}}"#),
            format!(r#"{{"other":"{JWT}"}}"#),
            r#"{"authorization":"Bearer not-a-jwt-SECRET"#.to_owned(),
            r#"{"note":"Bearer SECRET123"}"#.to_owned(),
            format!(r#"{{"authorization":"Bearer {}"#, &JWT[..30]),
        ] {
            let e = excerpt(&doc);
            assert!(clean(&e), "{e}");
        }
    }

    #[test]
    fn secret_keys_by_any_spelling() {
        for key in [
            "accessToken",
            "refreshToken",
            "idToken",
            "clientSecret",
            "access-token",
            "x-ms-token-aad-refresh-token",
            "client_assertion",
            "apiKey",
            "Ocp-Apim-Subscription-Key",
            "Cookie",
            "sharedAccessKey",
            "secret",
            "pwd",
            "passwd",
            "Authorization ",
            "AUTHORIZATION",
            "refresh_token",
            "EventHubConnectionString",
        ] {
            assert!(is_secret_key(key), "{key}");
            for value in ["\"opaqueSECRETvalue\"", "12345SECRET", "\"SECRET\""] {
                let doc = format!(r#"{{"a":1,"{key}" : {value},"b":"keep"}}"#);
                let e = excerpt(&doc);
                assert!(clean(&e) && e.contains("\"b\":\"keep\""), "{key}: {e}");
            }
        }
        for key in [
            "tokenIssuerType",
            "incomingTokenType",
            "errorCode",
            "userAgent",
            "keyId",
            "authenticationMethod",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn free_text_by_shape() {
        for s in [
            format!("GET /v1/customers?access_token={JWT}"),
            "GET /v1/customers?code=0.AXoASECRET&sig=SECRETsig&x=1".to_owned(),
            format!("IMAP {JWT}"),
            "curl -H 'Authorization: bearer SECRETopaque'".to_owned(),
            "Basic dXNlcjpTRUNSRVQ=SECRET".to_owned(),
            format!("https://x/#access_token={JWT}&state=1"),
            "Bearer%20SECRET".to_owned(),
        ] {
            let t = text(&s);
            assert!(clean(&t), "{s} -> {t}");
            assert!(t.contains(REDACTED), "{t}");
        }
        let keep =
            "Mozilla/5.0 (Windows NT 10.0) https://partner.microsoft.com/commerce/customers?x=1";
        assert!(matches!(text(keep), Cow::Borrowed(_)) || text(keep) == keep);
        assert!(matches!(text("Exchange ActiveSync"), Cow::Borrowed(_)));
    }

    #[test]
    fn terminal_text_escapes_control_characters() {
        let t = terminal("evil\x1b]0;PWNED\x07\x1b[2J\rX");
        assert!(!t.chars().any(char::is_control), "{t:?}");
        assert!(t.contains("\\u{1b}"), "{t}");
    }

    #[test]
    fn excerpts_are_bounded_on_char_boundaries() {
        let e = excerpt(&"é".repeat(600));
        assert!(e.len() <= MAX_EXCERPT_BYTES);
        assert!(e.chars().all(|c| c == 'é'));
    }
}
