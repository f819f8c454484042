//! The scrubber (`event::scrub`) on any text: it never panics; a JWT planted anywhere in
//! the text (free text or JSON) never survives, whatever surrounds it; an excerpt stays
//! within its bound; terminal text holds no control character.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_audit::event::scrub;

/// A JWT's payload and signature parts (the header `eyJhbGciOi...` is not secret).
const PAYLOAD: &str = "eyJ0aWQiOiJjYW5hcnkiLCJhbXIiOlsicHdkIl19";
const SIGNATURE: &str = "Q0FOQVJZU0lHLWRvLW5vdC1sZWFr";

fuzz_target!(|data: &[u8]| {
    let Some((&at, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let _ = scrub::text(&text);
    let _ = scrub::json(&text);
    assert!(scrub::excerpt(&text).len() <= scrub::MAX_EXCERPT_BYTES);
    assert!(!scrub::terminal(&text).chars().any(char::is_control));

    // The token, planted at a character boundary chosen by the first byte (unless the
    // text already holds its parts as plain text: then they are not a credential's shape
    // there, and may stay).
    if text.contains(SIGNATURE) || text.contains(PAYLOAD) {
        return;
    }
    // The token, planted at a character boundary chosen by the first byte.
    let mut cut = usize::from(at) * text.len() / 256;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let token = format!("eyJhbGciOiJIUzI1NiJ9.{PAYLOAD}.{SIGNATURE}");
    let (head, tail) = text.split_at(cut);
    for form in [token.clone(), format!("Bearer {token}")] {
        let planted = format!("{head}{form}{tail}");
        for out in [scrub::text(&planted).into_owned(), scrub::json(&planted).into_owned()] {
            assert!(!out.contains(SIGNATURE), "signature survived: {out:?}");
            assert!(!out.contains(PAYLOAD), "payload survived: {out:?}");
        }
    }
});
