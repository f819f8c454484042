//! Counts over a window (`[windows.NAME]`, read by `{ window = "NAME", ge = 7 }`) and
//! first-seen histories (`[histories.NAME]`, read by `{ seen = "NAME", eq = false }` and
//! `{ history_age = "NAME", ge = "1d" }`): their definitions, the tests that read them,
//! and what one event reads of them and leaves in state ([`Probes`]).
//!
//! Every event of the tenant whose `when` holds is recorded (beside the rules, whatever
//! they read), after the rules read the state as it stood before the event. A window's
//! count includes the event itself when its `when` holds; a history's `seen` does not.
//! The state and its bounds: [`crate::state::WindowState`], [`crate::state::HistoryState`].

use super::attr::{Attr, Scope, Val};
use super::compile::{problem, Env};
use super::cond::{Cond, Eval, KindMask, Memo, Op, Tri};
use super::load::parse_span;
use super::model::Policy;
use crate::event::time::EventTime;
use crate::state::{Sight, TenantState, This, COUNT_CAP};
use std::cell::Cell;
use std::fmt::Write;
use std::sync::Arc;
use toml::{Table, Value};

/// Most windows, and most histories, one policy declares.
pub const MAX_WINDOWS: usize = 32;

/// The longest window: state holds each counted event that long.
pub const MAX_WINDOW_MICROS: i64 = 7 * 86_400_000_000;

/// The longest history.
pub const MAX_HISTORY_MICROS: i64 = 90 * 86_400_000_000;

/// A `[windows.NAME]` section.
#[derive(Debug, Clone)]
pub struct WindowDef {
    /// Its name.
    pub name: Arc<str>,
    /// The events counted.
    pub when: Cond,
    /// `when` as written.
    pub when_source: String,
    /// The event kinds `when` can hold on.
    pub kinds: KindMask,
    /// The attributes whose values make the group.
    pub by: Vec<Attr>,
    /// The span, in µs of event time.
    pub micros: i64,
    /// The span as written (`10m`).
    pub within: String,
    /// Count distinct values of this attribute instead of events.
    pub distinct: Option<Attr>,
}

/// A `[histories.NAME]` section.
#[derive(Debug, Clone)]
pub struct HistoryDef {
    /// Its name.
    pub name: Arc<str>,
    /// The events recorded.
    pub when: Cond,
    /// `when` as written.
    pub when_source: String,
    /// The event kinds `when` can hold on.
    pub kinds: KindMask,
    /// The attributes whose values make the group.
    pub by: Vec<Attr>,
    /// The attributes whose values make the tuple seen.
    pub values: Vec<Attr>,
    /// The span, in µs of event time.
    pub micros: i64,
    /// The span as written (`14d`).
    pub within: String,
}

/// What a window or history test reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// The count of window `i`.
    Count(usize),
    /// Whether history `i` saw the tuple.
    Seen(usize),
    /// How far back history `i` goes, in seconds.
    Age(usize),
}

/// The window and history names a condition may read (known before any is compiled).
#[derive(Debug, Default)]
pub struct ProbeNames {
    /// `[windows]` names, in order.
    pub windows: Vec<String>,
    /// `[histories]` names, in order.
    pub histories: Vec<String>,
}

impl ProbeNames {
    /// The names a policy file declares.
    pub fn of(t: &Table) -> Self {
        let names = |k: &str| match t.get(k) {
            Some(Value::Table(x)) => x.keys().take(MAX_WINDOWS).cloned().collect(),
            _ => Vec::new(),
        };
        ProbeNames {
            windows: names("windows"),
            histories: names("histories"),
        }
    }
}

const PROBE_KEYS: [&str; 3] = ["window", "seen", "history_age"];

/// Whether a condition's table is a window or history test.
pub(super) fn is_probe(t: &Table) -> bool {
    PROBE_KEYS.iter().any(|k| t.contains_key(*k))
}

/// Compiles `{ window = "NAME", ge = 7 }`, `{ seen = "NAME", eq = false }` or
/// `{ history_age = "NAME", ge = "1d" }`.
pub(super) fn compile_probe(
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
                    super::compile::suggestion(name)
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
            let c = super::compile::compile(w, &format!("{at}.when"), env, problems);
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

/// What one event reads of one window.
#[derive(Debug, Clone)]
pub struct WindowProbe {
    /// The group (`by` values, lower case, joined by U+001F); `None`: one is absent.
    pub key: Option<String>,
    /// The count (`None`: unknown).
    pub count: Option<i64>,
    /// The event is recorded (its `when` holds, its group and value are known).
    pub counted: bool,
    /// Its `distinct` value.
    pub value: Option<String>,
}

/// What one event reads of one history.
#[derive(Debug, Clone)]
pub struct HistoryProbe {
    /// The group; `None`: a `by` attribute is absent.
    pub key: Option<String>,
    /// The tuple of `values`; `None`: one is absent.
    pub tuple: Option<String>,
    /// What the history says.
    pub sight: Sight,
    /// The event is recorded.
    pub recorded: bool,
}

/// What one event reads of every window and history of a policy, and leaves in state.
#[derive(Debug)]
pub struct Probes {
    /// One per window, in order.
    pub windows: Vec<WindowProbe>,
    /// One per history, in order.
    pub histories: Vec<HistoryProbe>,
    /// Which were read since [`Probes::take_reads`] (bit `i`: window `i`; bit `32 + i`:
    /// history `i`), for `explain`.
    read: Cell<u64>,
}

impl Probes {
    /// The value a test reads.
    pub fn value(&self, p: Probe) -> Option<Val<'static>> {
        let bit = match p {
            Probe::Count(i) => i,
            Probe::Seen(i) | Probe::Age(i) => 32 + i,
        };
        self.read
            .set(self.read.get() | 1u64.checked_shl(bit as u32).unwrap_or(0));
        match p {
            Probe::Count(i) => self.windows.get(i)?.count.map(Val::Int),
            Probe::Seen(i) => self.histories.get(i)?.sight.seen.map(Val::Bool),
            Probe::Age(i) => self.histories.get(i)?.sight.age.map(Val::Int),
        }
    }

    /// What was read since the last call, as `explain` shows it: a name
    /// (`window.NAME`, `history.NAME`) and what the test read.
    pub fn take_reads(&self, policy: &Policy) -> Vec<(String, serde_json::Value)> {
        use serde_json::json;
        let bits = self.read.replace(0);
        let mut out = Vec::new();
        for (i, (w, def)) in self.windows.iter().zip(&policy.windows).enumerate() {
            if bits & (1 << i) != 0 {
                out.push((
                    format!("window.{}", def.name),
                    json!({"key": w.key.as_deref().map(shown_key), "count": w.count, "counted": w.counted}),
                ));
            }
        }
        for (i, (h, def)) in self.histories.iter().zip(&policy.histories).enumerate() {
            if bits & (1 << (32 + i)) != 0 {
                out.push((
                    format!("history.{}", def.name),
                    json!({"key": h.key.as_deref().map(shown_key), "values": h.tuple.as_deref().map(shown_key),
                           "seen": h.sight.seen, "age_seconds": h.sight.age}),
                ));
            }
        }
        out
    }
}

/// A key as people read it: its parts joined by `|`.
fn shown_key(k: &str) -> String {
    k.replace('\u{1f}', "|")
}

/// The values of `attrs` (text lower case, joined by U+001F); `None` when one is absent
/// or empty.
fn key<'v>(attrs: &[Attr], get: &mut impl FnMut(Attr) -> Option<Val<'v>>) -> Option<String> {
    let mut k = String::new();
    for (i, a) in attrs.iter().enumerate() {
        if i > 0 {
            k.push('\u{1f}');
        }
        let v = get(*a)?;
        let start = k.len();
        let _ = write!(k, "{v}");
        if k.len() == start {
            return None;
        }
    }
    k.make_ascii_lowercase();
    Some(k)
}

/// What `event` at `t` reads of every window and history of `policy` in `state`
/// (before the event), deciding each section's `when` through `memo`.
pub fn probe<'v>(
    policy: &Policy,
    state: &TenantState,
    t: EventTime,
    kind: KindMask,
    get: &mut impl FnMut(Attr) -> Option<Val<'v>>,
    memo: &mut Memo,
) -> Probes {
    let mut holds = |when: &Cond, kinds: KindMask, get: &mut dyn FnMut(Attr) -> Option<Val<'v>>| {
        kinds & kind != 0 && {
            let mut e = Eval {
                get,
                kind,
                memo: Some(&mut *memo),
                tracing: false,
                probes: None,
            };
            when.eval(&mut e) == Tri::True
        }
    };
    let mut windows = Vec::with_capacity(policy.windows.len());
    for w in &policy.windows {
        let k = key(&w.by, get);
        let counts = holds(&w.when, w.kinds, get);
        let value = match w.distinct {
            Some(d) if counts => key(&[d], get),
            _ => None,
        };
        let missing_value = counts && w.distinct.is_some() && value.is_none();
        let count = match (&k, missing_value) {
            (Some(k), false) => {
                let this = match (&value, counts) {
                    (_, false) => This::Not,
                    (Some(v), true) => This::Value(v),
                    (None, true) => This::Counted,
                };
                match state.windows.get(&*w.name) {
                    Some(s) => s.count(k, t, w.micros, w.distinct.is_some(), this),
                    None => Some(i64::from(this != This::Not)),
                }
            }
            _ => None,
        };
        windows.push(WindowProbe {
            counted: counts && k.is_some() && !missing_value,
            key: k,
            count,
            value,
        });
    }
    let mut histories = Vec::with_capacity(policy.histories.len());
    for h in &policy.histories {
        let k = key(&h.by, get);
        let tuple = key(&h.values, get);
        let records = holds(&h.when, h.kinds, get);
        let sight = match &k {
            Some(k) => match state.histories.get(&*h.name) {
                Some(s) => s.read(k, tuple.as_deref(), t, h.micros),
                None => Sight {
                    seen: tuple.as_ref().map(|_| false),
                    age: Some(0),
                },
            },
            None => Sight {
                seen: None,
                age: None,
            },
        };
        histories.push(HistoryProbe {
            recorded: records && k.is_some() && tuple.is_some(),
            key: k,
            tuple,
            sight,
        });
    }
    Probes {
        windows,
        histories,
        read: Cell::new(0),
    }
}

/// Records what an event left in its tenant's windows and histories.
pub fn apply(policy: &Policy, probes: &Probes, t: EventTime, state: &mut TenantState) {
    for (w, p) in policy.windows.iter().zip(&probes.windows) {
        let Some(k) = &p.key else {
            continue;
        };
        if !p.counted && !state.windows.contains_key(&*w.name) {
            continue;
        }
        state.windows.entry(w.name.to_string()).or_default().record(
            k,
            t,
            w.micros,
            p.value.as_deref(),
            p.counted,
        );
    }
    for (h, p) in policy.histories.iter().zip(&probes.histories) {
        if let (true, Some(k), Some(v)) = (p.recorded, &p.key, &p.tuple) {
            state
                .histories
                .entry(h.name.to_string())
                .or_default()
                .record(k, v, t, h.micros);
        }
    }
}
