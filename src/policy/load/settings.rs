//! The sections that say how findings are judged beside the rules: `[readiness]`, the
//! `[mfa]` error codes and `[exceptions]` with its reasons.

use super::Cx;
use crate::policy::compile::{self, Env};
use crate::policy::model::{ExceptionReason, ReadinessDef};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use toml::{Table, Value};

pub(super) fn readiness(t: &Table, cx: &mut Cx, env: &Env<'_>) -> Option<ReadinessDef> {
    let r = cx.table(t, "readiness", "")?;
    cx.unknown_keys(r, &["blocked", "ready", "note"], "readiness");
    let mut one = |key: &str| match r.get(key) {
        Some(v) => compile::compile(v, &format!("readiness.{key}"), env, &mut cx.problems)
            .map(|c| (c, v.to_string())),
        None => {
            cx.problem(&format!("readiness.{key}"), "is missing");
            None
        }
    };
    let blocked = one("blocked");
    let ready = one("ready");
    let ((blocked, b), (ready, r)) = (blocked?, ready?);
    Some(ReadinessDef {
        blocked,
        ready,
        sources: [b, r],
    })
}

pub(super) fn error_codes(mfa: &Table, cx: &mut Cx) -> Vec<i64> {
    match mfa.get("demanded_error_codes") {
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .filter_map(|(i, v)| match v {
                Value::Integer(n) => Some(*n),
                other => {
                    cx.problem(
                        &format!("mfa.demanded_error_codes[{i}]"),
                        format!("must be a whole number, not {}", other.type_str()),
                    );
                    None
                }
            })
            .collect(),
        Some(other) => {
            cx.problem(
                "mfa.demanded_error_codes",
                format!("must be a list, not {}", other.type_str()),
            );
            Vec::new()
        }
        None => {
            cx.problem("mfa.demanded_error_codes", "is missing");
            Vec::new()
        }
    }
}

/// The rule ids written in the file, valid or not (a rule with a problem of its own is
/// reported there, not again where it is named).
pub(super) fn written_rule_ids(t: &Table) -> BTreeSet<&str> {
    match t.get("rules") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|r| r.get("id").and_then(Value::as_str))
            .collect(),
        _ => BTreeSet::new(),
    }
}

pub(super) fn exceptions(
    t: &Table,
    cx: &mut Cx,
) -> (Option<i64>, BTreeMap<String, ExceptionReason>) {
    let mut reasons = BTreeMap::new();
    let Some(e) = cx.table(t, "exceptions", "") else {
        return (None, reasons);
    };
    cx.unknown_keys(e, &["response_business_days", "reasons"], "exceptions");
    let days = cx.integer(e, "response_business_days", "exceptions", 1);
    let rule_ids = written_rule_ids(t);
    let listed = match e.get("reasons") {
        None => Vec::new(),
        Some(_) => cx.tables(e, "reasons", "exceptions"),
    };
    for (at, r) in listed {
        cx.unknown_keys(r, &["id", "name", "valid", "covers"], &at);
        let id = cx.string(r, "id", &at).map(|s| s.to_ascii_lowercase());
        let name = cx.string(r, "name", &at);
        let valid = match r.get("valid") {
            Some(Value::Boolean(b)) => Some(*b),
            Some(other) => {
                cx.problem(
                    &format!("{at}.valid"),
                    format!("must be true or false, not {}", other.type_str()),
                );
                None
            }
            None => {
                cx.problem(&format!("{at}.valid"), "is missing");
                None
            }
        };
        let covers = match r.get("covers") {
            None => Vec::new(),
            Some(_) => cx.strings(r, "covers", &at).unwrap_or_default(),
        };
        for (i, c) in covers.iter().enumerate() {
            if !rule_ids.contains(c.as_str()) {
                cx.problem(
                    &format!("{at}.covers[{i}]"),
                    format!("`{c}` is not a rule id of this policy"),
                );
            }
        }
        if valid == Some(false) && !covers.is_empty() {
            cx.problem(
                &format!("{at}.covers"),
                "an invalid reason covers nothing: remove `covers`",
            );
        }
        if valid == Some(true) && covers.is_empty() {
            cx.problem(
                &format!("{at}.covers"),
                "a valid reason must cover at least one rule",
            );
        }
        if let (Some(id), Some(name), Some(valid)) = (id, name, valid) {
            let reason = ExceptionReason {
                valid,
                covers: covers.iter().map(|c| Arc::from(c.as_str())).collect(),
                name,
            };
            if reasons.insert(id.clone(), reason).is_some() {
                cx.problem(
                    &format!("{at}.id"),
                    format!("reason `{id}` is listed twice"),
                );
            }
        }
    }
    (days, reasons)
}
