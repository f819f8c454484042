//! A JSON object read lazily: its members' names (borrowed unless escaped) and their
//! values as raw JSON text, each read only when asked for. Microsoft's directory records
//! are read through it: one pass checks the document and finds every member, and nothing
//! is allocated for the many members no fact reads (a `serde_json::Value` tree allocated
//! every one: the audit records' decoding cost three times a sign-in's per byte).

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// An object's members in document order.
pub(super) struct Obj<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Obj<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Obj<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Obj<'de>, A::Error> {
                let mut members = Vec::with_capacity(m.size_hint().unwrap_or(16));
                while let Some((k, v)) = m.next_entry::<Key<'de>, &'de RawValue>()? {
                    members.push((k.0, v));
                }
                Ok(Obj(members))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> Obj<'a> {
    /// Reads an object from JSON text.
    pub(super) fn parse(text: &'a str) -> serde_json::Result<Obj<'a>> {
        serde_json::from_str(text)
    }

    /// A member by any of `names` (the first present and not `null`), compared as
    /// written, then without case (`Type` for `type`); of a name written twice, the last
    /// (as a `serde_json::Value` would keep it).
    pub(super) fn get(&self, names: &[&str]) -> Option<&'a RawValue> {
        let present = |v: &&RawValue| v.get() != "null";
        for n in names {
            if let Some((_, v)) = self.0.iter().rev().find(|(k, v)| k == n && present(v)) {
                return Some(v);
            }
        }
        self.0
            .iter()
            .rev()
            .find(|(k, v)| present(v) && names.iter().any(|n| k.eq_ignore_ascii_case(n)))
            .map(|(_, v)| *v)
    }
}

/// What a raw value is, read as far as needed.
pub(super) enum Json<'a> {
    /// A string's content.
    Str(Cow<'a, str>),
    /// A number, a boolean, an object or an array: its JSON.
    Other(&'a str),
    /// `null`.
    Null,
}

/// Reads a raw value's kind, and a string's content (borrowed when it has no escape).
pub(super) fn json(v: &RawValue) -> Json<'_> {
    let t = v.get();
    match t.as_bytes().first() {
        Some(b'"') => {
            let inner = t.get(1..t.len().saturating_sub(1)).unwrap_or_default();
            if inner.contains('\\') {
                match serde_json::from_str::<String>(t) {
                    Ok(s) => Json::Str(Cow::Owned(s)),
                    Err(_) => Json::Null,
                }
            } else {
                Json::Str(Cow::Borrowed(inner))
            }
        }
        Some(b'n') => Json::Null,
        _ => Json::Other(t),
    }
}

/// A non-string value as `serde_json::Value` writes it (a number as it reads it back,
/// compact containers): what the decoder gave before it read lazily.
pub(super) fn compact(raw: &str) -> Option<String> {
    serde_json::from_str::<Value>(raw)
        .ok()
        .map(|v| v.to_string())
}

/// A raw value as an object, if it is one.
pub(super) fn object(v: &RawValue) -> Option<Obj<'_>> {
    v.get()
        .starts_with('{')
        .then(|| Obj::parse(v.get()).ok())
        .flatten()
}

/// A raw value as an array's items, if it is one.
pub(super) fn items(v: &RawValue) -> Vec<&RawValue> {
    if v.get().starts_with('[') {
        serde_json::from_str(v.get()).unwrap_or_default()
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_found_as_a_value_would_find_them() {
        let o = Obj::parse(
            r#"{"Type":"User","type":null,"a\u0062":"x\"y","n":1.50,"id":"1","id":"2"}"#,
        )
        .unwrap();
        let s = |names: &[&str]| match o.get(names).map(json) {
            Some(Json::Str(s)) => s.into_owned(),
            Some(Json::Other(t)) => format!("other {t}"),
            _ => "none".into(),
        };
        assert_eq!(s(&["type"]), "User", "null skipped, then any case");
        assert_eq!(s(&["ab"]), "x\"y", "escaped name and content");
        assert_eq!(s(&["id"]), "2", "the last of a name written twice");
        assert_eq!(s(&["n"]), "other 1.50");
        assert_eq!(compact("1.50").as_deref(), Some("1.5"));
        assert_eq!(s(&["missing"]), "none");
        assert!(Obj::parse("[1]").is_err() && Obj::parse("{").is_err());
        let nested = Obj::parse(r#"{"o":{"k":[1, {"x":2}]}}"#).unwrap();
        let inner = object(nested.get(&["o"]).unwrap()).unwrap();
        assert_eq!(items(inner.get(&["k"]).unwrap()).len(), 2);
    }
}
