//! A JSON document read once into a borrowed tree: member names and strings borrowed
//! from the input unless escaped, no map per object (members in document order). The
//! directory records are read through it: a `serde_json::Value` tree allocated every
//! name and string (the audit records' decoding cost three times a sign-in's per byte),
//! and reading each object from its raw text scanned deep strings once per level.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};
use std::borrow::Cow;
use std::fmt;

/// A JSON value, borrowed where it can be.
#[derive(Debug)]
pub(super) enum Json<'a> {
    Null,
    Bool(bool),
    Num(Number),
    Str(Cow<'a, str>),
    Arr(Vec<Json<'a>>),
    Obj(Obj<'a>),
}

/// An object's members in document order.
#[derive(Debug, Default)]
pub(super) struct Obj<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

struct V;

impl<'de> Visitor<'de> for V {
    type Value = Json<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Json<'de>, E> {
        Ok(Json::Num(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Json<'de>, E> {
        Ok(Json::Num(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Json<'de>, E> {
        Ok(Number::from_f64(n).map_or(Json::Null, Json::Num))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(s.size_hint().unwrap_or(4));
        while let Some(v) = s.next_element::<Json<'de>>()? {
            items.push(v);
        }
        Ok(Json::Arr(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Json<'de>, A::Error> {
        let mut members = Vec::with_capacity(m.size_hint().unwrap_or(8));
        while let Some((k, v)) = m.next_entry::<Key<'de>, Json<'de>>()? {
            members.push((k.0, v));
        }
        Ok(Json::Obj(Obj(members)))
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(V)
    }
}

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_str(V)? {
            Json::Str(s) => Ok(Key(s)),
            _ => Ok(Key(Cow::Borrowed(""))),
        }
    }
}

impl<'a> Obj<'a> {
    /// Reads an object from JSON text (`Ok(None)`: valid JSON, not an object).
    pub(super) fn parse(text: &'a str) -> serde_json::Result<Option<Obj<'a>>> {
        Ok(match serde_json::from_str::<Json<'a>>(text)? {
            Json::Obj(o) => Some(o),
            _ => None,
        })
    }

    /// Every member, in document order.
    pub(super) fn members(&self) -> impl Iterator<Item = (&Cow<'a, str>, &Json<'a>)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// A member by any of `names` (the first present and not `null`), compared as
    /// written, then without case (`Type` for `type`); of a name written twice, the last
    /// (as a `serde_json::Value` would keep it).
    pub(super) fn get(&self, names: &[&str]) -> Option<&Json<'a>> {
        let present = |v: &Json<'_>| !matches!(v, Json::Null);
        for n in names {
            if let Some((_, v)) = self.0.iter().rev().find(|(k, v)| k == n && present(v)) {
                return Some(v);
            }
        }
        self.0
            .iter()
            .rev()
            .find(|(k, v)| present(v) && names.iter().any(|n| k.eq_ignore_ascii_case(n)))
            .map(|(_, v)| v)
    }
}

impl Json<'_> {
    /// As a `serde_json::Value` (for the rare value written out whole).
    fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Num(n) => Value::Number(n.clone()),
            Json::Str(s) => Value::String(s.to_string()),
            Json::Arr(a) => Value::Array(a.iter().map(Json::to_value).collect()),
            Json::Obj(o) => Value::Object(
                o.0.iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect(),
            ),
        }
    }

    /// A number, boolean, object or array as `serde_json::Value` writes it (compact).
    pub(super) fn compact(&self) -> String {
        match self {
            Json::Num(n) => n.to_string(),
            other => other.to_value().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_found_as_a_value_would_find_them() {
        let text = r#"{"Type":"User","type":null,"a\u0062":"x\"y","n":1.50,"id":"1","id":"2","o":{"k":[1,{"x":2}]}}"#;
        let o = Obj::parse(text).unwrap().unwrap();
        let s = |names: &[&str]| match o.get(names) {
            Some(Json::Str(s)) => s.to_string(),
            Some(other) => format!("other {}", other.compact()),
            None => "none".into(),
        };
        assert_eq!(s(&["type"]), "User", "null skipped, then any case");
        assert_eq!(s(&["ab"]), "x\"y", "escaped name and content");
        assert_eq!(s(&["id"]), "2", "the last of a name written twice");
        assert_eq!(s(&["n"]), "other 1.5", "a number as Value writes it");
        assert_eq!(s(&["o"]), r#"other {"k":[1,{"x":2}]}"#);
        assert_eq!(s(&["missing"]), "none");
        assert!(Obj::parse("[1]").unwrap().is_none());
        assert!(Obj::parse("{").is_err());
        assert!(matches!(
            o.get(&["Type"]),
            Some(Json::Str(Cow::Borrowed(_)))
        ));
    }
}
