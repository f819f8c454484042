//! Reading `[windows.NAME]` and `[histories.NAME]` from a policy file, and the tests that
//! read them (`{ window = ... }`, `{ seen = ... }`, `{ history_age = ... }`): every
//! mistake a problem with its place.

use super::super::attr::{Attr, Scope};
use super::super::compile::{problem, Env};
use super::super::cond::{Cond, Op};
use super::super::load::parse_span;
use super::{HistoryDef, Probe, WindowDef, MAX_HISTORY_MICROS, MAX_WINDOWS, MAX_WINDOW_MICROS};
use crate::state::COUNT_CAP;
use std::sync::Arc;
use toml::{Table, Value};

const PROBE_KEYS: [&str; 3] = ["window", "seen", "history_age"];

/// Whether a condition's table is a window or history test.
pub(crate) fn is_probe(t: &Table) -> bool {
    PROBE_KEYS.iter().any(|k| t.contains_key(*k))
}

/// Compiles `{ window = "NAME", ge = 7 }`, `{ seen = "NAME", eq = false }` or
/// `{ history_age = "NAME", ge = "1d" }`.
pub(crate) fn compile_probe(
    t: &Table,
    at: &str,
    env: &Env<'_>,
    problems: &mut Vec<String>,
) -> Option<Cond> {
    let keys: Vec<&str> = PROBE_KEYS
        .iter()
        .copied()
        .filter(|k| t.contains_key(*k))
        .collect();
    let [key] = keys.as_slice() else {
        problem(
            problems,
            at,
            format!("one test reads one of {}, not several", keys.join(", ")),
        );
        return None;
    };
    let here = format!("{at}.{key}");
    if env.scope == Some(Scope::Day) {
        problem(
            problems,
            &here,
            "reads an event's group: `[readiness]` reads `day.*` attributes only",
        );
        return None;
    }
    let names = if *key == "window" {
        &env.probes.windows
    } else {
        &env.probes.histories
    };
    let section = if *key == "window" {
        "windows"
    } else {
        "histories"
    };
    let Some(Value::String(name)) = t.get(*key) else {
        problem(
            problems,
            &here,
            format!("must name a section of `[{section}]`"),
        );
        return None;
    };
    let Some(i) = names.iter().position(|n| n == name) else {
        problem(
            problems,
            &here,
            format!(
                "`{name}` is not in `[{section}]` (there: {})",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ),
        );
        return None;
    };
    let probe = match *key {
        "window" => Probe::Count(i),
        "seen" => Probe::Seen(i),
        _ => Probe::Age(i),
    };
    let mut ops = Vec::new();
    let mut ok = true;
    for (k, v) in t {
        if k == key {
            continue;
        }
        let place = format!("{at}.{k}");
        match compile_op(probe, k, v, &place, problems) {
            Some(o) => ops.push(o),
            None => ok = false,
        }
    }
    if ops.is_empty() && ok {
        problem(
            problems,
            at,
            format!("`{key} = \"{name}\"` is read but compared with nothing"),
        );
        return None;
    }
    ok.then_some(Cond::Probe(probe, ops))
}

fn compile_op(
    probe: Probe,
    k: &str,
    v: &Value,
    at: &str,
    problems: &mut Vec<String>,
) -> Option<Op> {
    let int_op = |n: i64| match k {
        "eq" => Some(Op::EqInt(n)),
        "ne" => Some(Op::NeInt(n)),
        "lt" => Some(Op::Lt(n)),
        "le" => Some(Op::Le(n)),
        "gt" => Some(Op::Gt(n)),
        "ge" => Some(Op::Ge(n)),
        _ => None,
    };
    match probe {
        Probe::Seen(_) => match (k, v) {
            ("eq", Value::Boolean(b)) => Some(Op::EqBool(*b)),
            ("ne", Value::Boolean(b)) => Some(Op::NeBool(*b)),
            ("eq" | "ne", other) => {
                problem(
                    problems,
                    at,
                    format!(
                        "`seen` is a bool: compare it with `true` or `false`, not {}",
                        other.type_str()
                    ),
                );
                None
            }
            _ => {
                problem(problems, at, "`seen` takes `eq` or `ne`");
                None
            }
        },
        Probe::Count(_) => {
            let cap = COUNT_CAP as i64;
            match (int_op(0), v) {
                (None, _) => {
                    problem(
                        problems,
                        at,
                        "a window count takes eq, ne, lt, le, gt or ge",
                    );
                    None
                }
                (Some(_), Value::Integer(n)) if (0..cap).contains(n) => int_op(*n),
                (Some(_), Value::Integer(n)) => {
                    problem(
                        problems,
                        at,
                        format!(
                            "{n}: a window counts from 0 to {cap} (compare with 0 to {})",
                            cap - 1
                        ),
                    );
                    None
                }
                (Some(_), other) => {
                    problem(
                        problems,
                        at,
                        format!(
                            "a window count is a whole number: compare it with one, not {}",
                            other.type_str()
                        ),
                    );
                    None
                }
            }
        }
        Probe::Age(_) => {
            let secs = match v {
                Value::Integer(n) if *n >= 0 => Some(*n),
                Value::String(s) => parse_span(s).filter(|m| *m >= 0).map(|m| m / 1_000_000),
                _ => None,
            };
            match (int_op(0), secs) {
                (None, _) => {
                    problem(problems, at, "`history_age` takes eq, ne, lt, le, gt or ge");
                    None
                }
                (Some(_), Some(n)) => int_op(n),
                (Some(_), None) => {
                    problem(
                        problems,
                        at,
                        format!(
                            "`history_age` is in seconds: compare it with a whole number or a duration (\"1d\"), not {v}"
                        ),
                    );
                    None
                }
            }
        }
    }
}

/// Reads the `by`, `values` or `distinct` attributes of a section: event attributes that
/// do not depend on the rule.
fn attrs(names: &[String], at: &str, problems: &mut Vec<String>) -> Option<Vec<Attr>> {
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let place = format!("{at}[{i}]");
        match Attr::parse(name.trim()) {
            Some(a) if a.def().scope == Scope::Day => problem(
                problems,
                &place,
                format!("`{name}` describes a day: a group is made of event attributes"),
            ),
            Some(a @ (Attr::RuleEnforced | Attr::RuleExcepted)) => problem(
                problems,
                &place,
                format!(
                    "`{}` belongs to a rule: a window or history belongs to none",
                    a.name()
                ),
            ),
            Some(a) => out.push(a),
            None => problem(
                problems,
                &place,
                format!(
                    "`{name}` is not an attribute (`mfa-audit policy attributes` lists them){}",
                    super::super::compile::suggestion(name)
                ),
            ),
        }
    }
    (out.len() == names.len()).then_some(out)
}

fn strings(t: &Table, key: &str, at: &str, problems: &mut Vec<String>) -> Option<Vec<String>> {
    match t.get(key) {
        None => Some(Vec::new()),
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(Value::Array(a)) => {
            let mut out = Vec::new();
            for (i, v) in a.iter().enumerate() {
                match v {
                    Value::String(s) => out.push(s.clone()),
                    other => problem(
                        problems,
                        &format!("{at}.{key}[{i}]"),
                        format!("must be an attribute name, not {}", other.type_str()),
                    ),
                }
            }
            (out.len() == a.len()).then_some(out)
        }
        Some(other) => {
            problem(
                problems,
                &format!("{at}.{key}"),
                format!(
                    "must be a list of attribute names, not {}",
                    other.type_str()
                ),
            );
            None
        }
    }
}

/// What every section has: its checked name, `when` and `within`.
struct Common {
    name: Arc<str>,
    when: Cond,
    when_source: String,
    micros: i64,
    within: String,
    by: Vec<Attr>,
}

fn common(
    name: &str,
    v: &Value,
    at: &str,
    env: &Env<'_>,
    known: &[&str],
    max: (i64, &str),
    problems: &mut Vec<String>,
) -> Option<(Common, Table)> {
    let Value::Table(t) = v else {
        problem(
            problems,
            at,
            format!("must be a table, not {}", v.type_str()),
        );
        return None;
    };
    let mut ok = true;
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        || name.is_empty()
    {
        problem(problems, at, format!("`{name}` must be lower_snake_case"));
        ok = false;
    }
    for k in t.keys() {
        if !known.contains(&k.as_str()) {
            problem(
                problems,
                &format!("{at}.{k}"),
                format!("unknown key (known here: {})", known.join(", ")),
            );
            ok = false;
        }
    }
    let when = match t.get("when") {
        None => {
            problem(problems, &format!("{at}.when"), "is missing");
            None
        }
        Some(w) => {
            let c = super::super::compile::compile(w, &format!("{at}.when"), env, problems);
            if let Some(c) = &c {
                if c.has_probe() {
                    problem(
                        problems,
                        &format!("{at}.when"),
                        "reads a window or history: what is recorded cannot depend on what was",
                    );
                    ok = false;
                }
                if c.reads_rule() {
                    problem(
                        problems,
                        &format!("{at}.when"),
                        "reads `rule.*`: a window or history belongs to no rule",
                    );
                    ok = false;
                }
            }
            c.map(|c| (c, w.to_string()))
        }
    };
    let micros = match t.get("within") {
        Some(Value::String(s)) => match parse_span(s) {
            Some(m) if m > 0 && m <= max.0 => Some((m, s.clone())),
            _ => {
                problem(
                    problems,
                    &format!("{at}.within"),
                    format!(
                        "`{s}` is not a duration from 1s to {} (a number and s, m, h or d: `10m`)",
                        max.1
                    ),
                );
                None
            }
        },
        Some(other) => {
            problem(
                problems,
                &format!("{at}.within"),
                format!("must be a duration (\"10m\"), not {}", other.type_str()),
            );
            None
        }
        None => {
            problem(problems, &format!("{at}.within"), "is missing");
            None
        }
    };
    let by = strings(t, "by", at, problems)
        .and_then(|names| attrs(&names, &format!("{at}.by"), problems));
    let (Some((when, when_source)), Some((micros, within)), Some(by), true) =
        (when, micros, by, ok)
    else {
        return None;
    };
    Some((
        Common {
            name: Arc::from(name),
            when,
            when_source,
            micros,
            within,
            by,
        },
        t.clone(),
    ))
}

fn sections<'t>(
    t: &'t Table,
    key: &str,
    problems: &mut Vec<String>,
) -> Vec<(&'t String, &'t Value)> {
    match t.get(key) {
        None => Vec::new(),
        Some(Value::Table(x)) => {
            if x.len() > MAX_WINDOWS {
                problem(
                    problems,
                    key,
                    format!(
                        "{} sections: a policy declares at most {MAX_WINDOWS}",
                        x.len()
                    ),
                );
            }
            x.iter().take(MAX_WINDOWS).collect()
        }
        Some(other) => {
            problem(
                problems,
                key,
                format!(
                    "must be a table of named sections (`[{key}.NAME]`), not {}",
                    other.type_str()
                ),
            );
            Vec::new()
        }
    }
}

/// The `[windows]` sections, checked.
pub(crate) fn windows(t: &Table, env: &Env<'_>, problems: &mut Vec<String>) -> Vec<WindowDef> {
    let mut out = Vec::new();
    for (name, v) in sections(t, "windows", problems) {
        let at = format!("windows.{name}");
        let Some((c, t)) = common(
            name,
            v,
            &at,
            env,
            &["when", "by", "within", "distinct"],
            (MAX_WINDOW_MICROS, "7d"),
            problems,
        ) else {
            continue;
        };
        let distinct = match t.get("distinct") {
            None => None,
            Some(Value::String(s)) => {
                match attrs(std::slice::from_ref(s), &format!("{at}.distinct"), problems) {
                    Some(a) => a.first().copied(),
                    None => continue,
                }
            }
            Some(other) => {
                problem(
                    problems,
                    &format!("{at}.distinct"),
                    format!("must be an attribute name, not {}", other.type_str()),
                );
                continue;
            }
        };
        out.push(WindowDef {
            kinds: c.when.kinds(),
            name: c.name,
            when: c.when,
            when_source: c.when_source,
            by: c.by,
            micros: c.micros,
            within: c.within,
            distinct,
        });
    }
    out
}

/// The `[histories]` sections, checked.
pub(crate) fn histories(t: &Table, env: &Env<'_>, problems: &mut Vec<String>) -> Vec<HistoryDef> {
    let mut out = Vec::new();
    for (name, v) in sections(t, "histories", problems) {
        let at = format!("histories.{name}");
        let Some((c, t)) = common(
            name,
            v,
            &at,
            env,
            &["when", "by", "values", "within"],
            (MAX_HISTORY_MICROS, "90d"),
            problems,
        ) else {
            continue;
        };
        let Some(values) = (match t.get("values") {
            None => {
                problem(problems, &format!("{at}.values"), "is missing");
                None
            }
            Some(_) => strings(&t, "values", &at, problems)
                .and_then(|n| attrs(&n, &format!("{at}.values"), problems)),
        }) else {
            continue;
        };
        if values.is_empty() {
            problem(
                problems,
                &format!("{at}.values"),
                "must name at least one attribute",
            );
            continue;
        }
        out.push(HistoryDef {
            kinds: c.when.kinds(),
            name: c.name,
            when: c.when,
            when_source: c.when_source,
            by: c.by,
            values,
            micros: c.micros,
            within: c.within,
        });
    }
    out
}
