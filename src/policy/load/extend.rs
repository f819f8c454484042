//! `extends = "NAME|FILE"`: a policy laid over its base.

use super::{Format, SHIPPED};
use std::collections::BTreeSet;
use std::path::Path;
use toml::{Table, Value};

/// Resolves `extends = "NAME|FILE"`: the base policy's table with this one laid over it
/// (tables merged key by key, lists of tables appended, anything else replaced). A
/// relative file is found beside the extending one.
pub(super) fn extend(mut table: Table, source_name: &str, depth: usize) -> Result<Table, String> {
    let Some(base) = table.remove("extends") else {
        return Ok(table);
    };
    let Value::String(base) = base else {
        return Err("`extends`: must name a shipped policy or a policy file".into());
    };
    if depth >= 8 {
        return Err(format!(
            "`extends`: `{base}` is more than 8 levels deep (a loop?)"
        ));
    }
    if !table.contains_key("version") {
        return Err(format!(
            "`version`: is missing: a policy that extends `{base}` needs a version of its own"
        ));
    }
    let (text, name, format) = match SHIPPED.iter().find(|(n, _)| *n == base) {
        Some((n, text)) => ((*text).to_owned(), (*n).to_owned(), Format::Toml),
        None => {
            let dir = Path::new(source_name).parent().unwrap_or(Path::new(""));
            let path = dir.join(&base);
            let text = super::read_policy_file(&path).map_err(|e| {
                format!(
                    "`extends`: `{base}` is neither a shipped policy ({}) nor a readable file ({e})",
                    SHIPPED.map(|(n, _)| n).join(", ")
                )
            })?;
            (text, path.display().to_string(), Format::from_path(&path))
        }
    };
    let parsed: Table = match format {
        Format::Toml => {
            toml::from_str(&text).map_err(|e| format!("`extends` `{base}`: {}", e.message()))?
        }
        Format::Json => {
            serde_json::from_str(&text).map_err(|e| format!("`extends` `{base}`: {e}"))?
        }
    };
    // `base_rules = false`: the base's lists, conditions, surfaces and sections, none of
    // its rules (a policy of detections beside a compliance version).
    let base_rules = match table.remove("base_rules") {
        None => true,
        Some(Value::Boolean(b)) => b,
        Some(_) => return Err("`base_rules`: must be `true` or `false`".into()),
    };
    let mut merged = extend(parsed, &name, depth + 1)?;
    let dropped = if base_rules {
        BTreeSet::new()
    } else {
        rule_ids(merged.remove("rules").as_ref())
    };
    overlay(&mut merged, table);
    if !dropped.is_empty() {
        // The base's references to its own rules left out go with them (what excepts a
        // surface's share, what an exception reason covers).
        let kept = rule_ids(merged.get("rules"));
        let gone = |v: &Value| {
            v.as_str()
                .is_some_and(|id| dropped.contains(id) && !kept.contains(id))
        };
        if let Some(Value::Array(surfaces)) = merged.get_mut("surfaces") {
            for s in surfaces {
                if let Some(Value::Array(ids)) =
                    s.get_mut("share").and_then(|sh| sh.get_mut("excepted_by"))
                {
                    ids.retain(|v| !gone(v));
                }
            }
        }
        if let Some(Value::Array(reasons)) = merged
            .get_mut("exceptions")
            .and_then(|e| e.get_mut("reasons"))
        {
            // A reason left covering nothing goes too.
            reasons.retain_mut(|r| match r.get_mut("covers") {
                Some(Value::Array(ids)) if !ids.is_empty() => {
                    ids.retain(|v| !gone(v));
                    !ids.is_empty()
                }
                _ => true,
            });
        }
    }
    Ok(merged)
}

/// Lays an extending policy over its base. Top-level tables (`[lists]`, `[conditions]`,
/// `[readiness]`, `[session]`, `[mfa]`, `[exceptions]`) are merged key by key, each key's
/// value replaced whole; lists of tables are merged by their key (`name` of surfaces and
/// counters, `id` of pages, rules and exception reasons): an entry whose key the base
/// has replaces the base's entries of that key, in place; others are appended. Anything
/// else is replaced.
fn overlay(base: &mut Table, top: Table) {
    for (k, v) in top {
        match (base.get_mut(&k), v) {
            (Some(Value::Table(b)), Value::Table(t)) => {
                for (kk, vv) in t {
                    match (b.get_mut(&kk), vv) {
                        (Some(Value::Array(ba)), Value::Array(ta)) if kk == "reasons" => {
                            merge_keyed(ba, ta, "id")
                        }
                        (_, vv) => {
                            b.insert(kk, vv);
                        }
                    }
                }
            }
            (Some(Value::Array(b)), Value::Array(t)) if is_tables(b) && is_tables(&t) => {
                merge_keyed(
                    b,
                    t,
                    if k == "surfaces" || k == "counters" {
                        "name"
                    } else {
                        "id"
                    },
                )
            }
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn is_tables(a: &[Value]) -> bool {
    a.iter().all(|x| matches!(x, Value::Table(_)))
}

fn merge_keyed(base: &mut Vec<Value>, top: Vec<Value>, key: &str) {
    let key_of = |v: &Value| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let top_keys: BTreeSet<String> = top.iter().filter_map(key_of).collect();
    let mut pending: Vec<Option<Value>> = top.into_iter().map(Some).collect();
    let mut placed = BTreeSet::new();
    let mut out = Vec::with_capacity(base.len() + pending.len());
    for b in base.drain(..) {
        match key_of(&b) {
            // The base's entries of a key the extending policy writes are dropped; the new
            // ones take the place of the first.
            Some(k) if top_keys.contains(&k) => {
                if placed.insert(k.clone()) {
                    for slot in pending.iter_mut() {
                        if slot.as_ref().and_then(key_of).as_deref() == Some(k.as_str()) {
                            out.extend(slot.take());
                        }
                    }
                }
            }
            _ => out.push(b),
        }
    }
    out.extend(pending.into_iter().flatten());
    *base = out;
}

/// The ids of a `rules` list.
fn rule_ids(rules: Option<&Value>) -> BTreeSet<String> {
    match rules {
        Some(Value::Array(rules)) => rules
            .iter()
            .filter_map(|r| r.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect(),
        _ => BTreeSet::new(),
    }
}
