//! Conditions as data: the declarative form a policy file writes (`all`, `any`, `not`,
//! tests on attributes, named lists and named conditions), checked and compiled once at
//! load into a tree that evaluates without allocating.
//!
//! Evaluation is three-valued: a test on an attribute the event does not carry is
//! *unknown*; `all` is false if any part is false, else unknown if any is; `any` is true
//! if any part is true, else unknown if any is; `not` keeps unknown. A rule fires when its
//! condition is true, is quiet when false, and is *not applicable* when unknown.

use super::attr::{Attr, Scope, Type, Val};
use globset::{GlobBuilder, GlobMatcher};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use toml::Value;

/// Three-valued truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    /// Holds.
    True,
    /// Does not hold.
    False,
    /// An attribute it needs is absent.
    Unknown,
}

impl Tri {
    fn from_bool(b: bool) -> Tri {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }

    fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::False, _) | (_, Tri::False) => Tri::False,
            (Tri::Unknown, _) | (_, Tri::Unknown) => Tri::Unknown,
            _ => Tri::True,
        }
    }
}

/// A named list of the policy file (`[lists]`).
#[derive(Debug, Clone)]
pub enum List {
    /// Texts (compared ignoring case and blanks).
    Texts(Arc<[String]>),
    /// Whole numbers.
    Ints(Arc<[i64]>),
}

/// One comparison of a test (compiled: texts trimmed, lists shared, patterns built).
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub enum Op {
    EqText(String),
    NeText(String),
    InText(Arc<[String]>, bool),
    Glob(Box<GlobMatcher>),
    Prefix(String),
    EqInt(i64),
    NeInt(i64),
    InInt(Arc<[i64]>, bool),
    Lt(i64),
    Le(i64),
    Gt(i64),
    Ge(i64),
    EqBool(bool),
    NeBool(bool),
    Present(bool),
    Contains(Arc<[String]>),
}

/// A compiled condition.
#[derive(Debug, Clone)]
pub enum Cond {
    /// Every part holds.
    All(Vec<Cond>),
    /// Some part holds.
    Any(Vec<Cond>),
    /// The part does not hold.
    Not(Box<Cond>),
    /// Comparisons on one attribute, all of which must hold.
    Test(Attr, Vec<Op>),
    /// The most common test, `{ attr = "<bool>", eq = true|false }`, compared directly.
    Bool(Attr, bool),
    /// A test on `event.kind`, compiled to the kinds (bit `i`: `event::KINDS[i]`) it
    /// accepts: a bit test instead of text comparisons.
    Kind(u8, Vec<Op>),
    /// A named condition of `[conditions]`: its slot in the per-event memo (when it reads
    /// no `rule.*` attribute, its value is the same for every rule of one event) and its
    /// compiled body.
    Named(Option<usize>, Box<Cond>),
}

/// What one evaluation reads through: the attribute reader, the event's kind bit, and
/// the memo of named conditions (one per event and policy; `None` in `explain`, so that
/// every rule shows all it reads).
pub struct Eval<'m, F> {
    /// Reads an attribute.
    pub get: F,
    /// `1 << kind_index` of the event (all bits for a day).
    pub kind: u8,
    /// Named conditions already decided for this event.
    pub memo: Option<&'m mut Memo>,
    /// Whether `get` records what it reads (`explain`): then every test reads its
    /// attribute, even one decided without it.
    pub tracing: bool,
}

/// Named conditions decided for one event (at most [`MEMO_SLOTS`] are remembered).
#[derive(Debug)]
pub struct Memo([Option<Tri>; MEMO_SLOTS]);

impl Default for Memo {
    fn default() -> Self {
        Memo([None; MEMO_SLOTS])
    }
}

/// How many named conditions a policy's memo holds.
pub const MEMO_SLOTS: usize = 64;

impl Cond {
    /// Evaluates, reading attributes through `e.get` (which may record what it read).
    pub fn eval<'v, F: FnMut(Attr) -> Option<Val<'v>>>(&self, e: &mut Eval<'_, F>) -> Tri {
        match self {
            Cond::All(parts) => {
                let mut out = Tri::True;
                for p in parts {
                    out = out.and(p.eval(e));
                    if out == Tri::False {
                        return Tri::False;
                    }
                }
                out
            }
            Cond::Any(parts) => {
                let mut unknown = false;
                for p in parts {
                    match p.eval(e) {
                        Tri::True => return Tri::True,
                        Tri::Unknown => unknown = true,
                        Tri::False => {}
                    }
                }
                if unknown {
                    Tri::Unknown
                } else {
                    Tri::False
                }
            }
            Cond::Not(inner) => match inner.eval(e) {
                Tri::True => Tri::False,
                Tri::False => Tri::True,
                Tri::Unknown => Tri::Unknown,
            },
            Cond::Kind(mask, _) => {
                if e.tracing {
                    // Read only so that the trace shows it; the bit decides.
                    let _ = (e.get)(Attr::EventKind);
                }
                Tri::from_bool(mask & e.kind != 0)
            }
            Cond::Named(slot, body) => {
                let cached = match (slot, e.memo.as_deref()) {
                    (Some(i), Some(m)) => m.0.get(*i).copied().flatten(),
                    _ => None,
                };
                if let Some(t) = cached {
                    return t;
                }
                let t = body.eval(e);
                if let (Some(i), Some(m)) = (slot, e.memo.as_deref_mut()) {
                    if let Some(c) = m.0.get_mut(*i) {
                        *c = Some(t);
                    }
                }
                t
            }
            Cond::Bool(attr, want) => match (e.get)(*attr) {
                Some(Val::Bool(b)) => Tri::from_bool(b == *want),
                _ => Tri::Unknown,
            },
            Cond::Test(attr, ops) => {
                let v = (e.get)(*attr);
                let mut out = Tri::True;
                for op in ops {
                    out = out.and(test(op, v.as_ref()));
                }
                out
            }
        }
    }

    /// The event kinds (bit `i`: `event::KINDS[i]`) on which the condition can hold: a
    /// sound over-approximation from its tests on `event.kind`, so that a rule is skipped
    /// (quiet) on other kinds without being evaluated.
    pub fn kinds(&self) -> u8 {
        const ALL: u8 = (1 << crate::event::KINDS.len()) - 1;
        match self {
            Cond::All(parts) => parts.iter().fold(ALL, |m, p| m & p.kinds()),
            Cond::Any(parts) => parts.iter().fold(0, |m, p| m | p.kinds()),
            Cond::Not(_) => ALL,
            Cond::Kind(mask, _) => *mask,
            Cond::Named(_, body) => body.kinds(),
            Cond::Test(..) | Cond::Bool(..) => ALL,
        }
    }

    /// Whether it reads `rule.*` (then its value depends on the rule, not only the event).
    pub fn reads_rule(&self) -> bool {
        let mut reads = Vec::new();
        self.attrs(&mut reads);
        reads
            .iter()
            .any(|a| matches!(a, Attr::RuleEnforced | Attr::RuleExcepted))
    }

    /// Every attribute the condition reads, in order, once each.
    pub fn attrs(&self, out: &mut Vec<Attr>) {
        match self {
            Cond::All(p) | Cond::Any(p) => p.iter().for_each(|c| c.attrs(out)),
            Cond::Not(c) | Cond::Named(_, c) => c.attrs(out),
            Cond::Kind(..) => {
                if !out.contains(&Attr::EventKind) {
                    out.push(Attr::EventKind)
                }
            }
            Cond::Test(a, _) | Cond::Bool(a, _) => {
                if !out.contains(a) {
                    out.push(*a)
                }
            }
        }
    }
}

/// Attribute texts are trimmed when read, constants when compiled.
fn text_eq(v: &str, c: &str) -> bool {
    v.eq_ignore_ascii_case(c)
}

fn test(op: &Op, v: Option<&Val<'_>>) -> Tri {
    if let Op::Present(want) = op {
        return Tri::from_bool(v.is_some() == *want);
    }
    let Some(v) = v else {
        return Tri::Unknown;
    };
    let int = |f: &dyn Fn(i64) -> bool| match v {
        Val::Int(i) => Tri::from_bool(f(*i)),
        _ => Tri::Unknown,
    };
    match op {
        Op::EqText(c) => Tri::from_bool(text_eq(&v.as_text(), c)),
        Op::NeText(c) => Tri::from_bool(!text_eq(&v.as_text(), c)),
        Op::InText(list, negated) => {
            let t = v.as_text();
            Tri::from_bool(list.iter().any(|c| text_eq(&t, c)) != *negated)
        }
        Op::Glob(g) => Tri::from_bool(g.is_match(&*v.as_text())),
        Op::Prefix(p) => {
            let t = v.as_text();
            Tri::from_bool(
                t.len() >= p.len() && t.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p)),
            )
        }
        Op::EqInt(c) => int(&|i| i == *c),
        Op::NeInt(c) => int(&|i| i != *c),
        Op::InInt(list, negated) => int(&|i| list.contains(&i) != *negated),
        Op::Lt(c) => int(&|i| i < *c),
        Op::Le(c) => int(&|i| i <= *c),
        Op::Gt(c) => int(&|i| i > *c),
        Op::Ge(c) => int(&|i| i >= *c),
        Op::EqBool(c) | Op::NeBool(c) => match v {
            Val::Bool(b) => Tri::from_bool((b == c) == matches!(op, Op::EqBool(_))),
            _ => Tri::Unknown,
        },
        Op::Contains(items) => Tri::from_bool(items.iter().any(|i| v.list_contains(i))),
        Op::Present(_) => Tri::True,
    }
}

/// What a condition may refer to while it is compiled.
pub struct Env<'a> {
    /// Named lists.
    pub lists: &'a BTreeMap<String, List>,
    /// Named conditions (their source; compiled where used).
    pub conditions: &'a BTreeMap<String, Value>,
    /// The attributes' scope here (`None`: either; a named condition is checked for its
    /// scope where it is used).
    pub scope: Option<Scope>,
}

const COMPOSITE: [&str; 4] = ["all", "any", "not", "condition"];
const OPS: [&str; 12] = [
    "eq", "ne", "in", "not_in", "glob", "prefix", "lt", "le", "gt", "ge", "present", "contains",
];

/// Compiles a condition written at `at`, adding every problem to `problems`.
pub fn compile(v: &Value, at: &str, env: &Env<'_>, problems: &mut Vec<String>) -> Option<Cond> {
    compile_in(v, at, env, problems, &mut Vec::new())
}

fn problem(problems: &mut Vec<String>, at: &str, what: impl fmt::Display) {
    problems.push(format!("`{at}`: {what}"));
}

fn compile_in(
    v: &Value,
    at: &str,
    env: &Env<'_>,
    problems: &mut Vec<String>,
    stack: &mut Vec<String>,
) -> Option<Cond> {
    let Value::Table(t) = v else {
        problem(
            problems,
            at,
            format!(
                "a condition must be a table (`{{ attr = ..., eq = ... }}`, `{{ all = [...] }}`), not {}",
                v.type_str()
            ),
        );
        return None;
    };
    let composite: Vec<&str> = COMPOSITE
        .iter()
        .copied()
        .filter(|k| t.contains_key(*k))
        .collect();
    if !composite.is_empty() {
        if composite.len() > 1 || t.len() > 1 {
            problem(
                problems,
                at,
                format!(
                    "`{}` stands alone in its table (found keys: {})",
                    composite.first().copied().unwrap_or_default(),
                    t.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
            return None;
        }
        let key = composite.first().copied().unwrap_or_default();
        let inner = t.get(key)?;
        let here = format!("{at}.{key}");
        return match key {
            "all" | "any" => {
                let Value::Array(items) = inner else {
                    problem(
                        problems,
                        &here,
                        format!("must be a list of conditions, not {}", inner.type_str()),
                    );
                    return None;
                };
                if items.is_empty() {
                    problem(problems, &here, "must hold at least one condition");
                    return None;
                }
                let mut parts = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    match compile_in(item, &format!("{here}[{i}]"), env, problems, stack) {
                        Some(c) => parts.push(c),
                        None => ok = false,
                    }
                }
                ok.then(|| match (parts.len(), key) {
                    // One part is that part.
                    (1, _) => parts.pop().unwrap_or(Cond::All(Vec::new())),
                    (_, "all") => Cond::All(parts),
                    _ => Cond::Any(parts),
                })
            }
            "not" => compile_in(inner, &here, env, problems, stack).map(|c| Cond::Not(Box::new(c))),
            _ => {
                let Value::String(name) = inner else {
                    problem(problems, &here, "must name a condition of `[conditions]`");
                    return None;
                };
                let Some(src) = env.conditions.get(name) else {
                    problem(
                        problems,
                        &here,
                        format!(
                            "`{name}` is not in `[conditions]` (there: {})",
                            names(env.conditions.keys())
                        ),
                    );
                    return None;
                };
                if stack.contains(name) {
                    problem(
                        problems,
                        &here,
                        format!(
                            "`{name}` refers to itself ({} -> {name})",
                            stack.join(" -> ")
                        ),
                    );
                    return None;
                }
                stack.push(name.clone());
                let c = compile_in(src, &format!("conditions.{name}"), env, problems, stack);
                stack.pop();
                let slot = env
                    .conditions
                    .keys()
                    .position(|k| k == name)
                    .filter(|i| *i < MEMO_SLOTS);
                c.map(|c| match slot.filter(|_| !c.reads_rule()) {
                    Some(slot) => Cond::Named(Some(slot), Box::new(c)),
                    // Not remembered: as if written in place.
                    None => c,
                })
            }
        };
    }
    let Some(attr_v) = t.get("attr") else {
        problem(
            problems,
            at,
            format!(
                "a condition needs `attr` and a comparison ({}), or one of {}",
                OPS.join(", "),
                COMPOSITE.join(", ")
            ),
        );
        return None;
    };
    let Value::String(name) = attr_v else {
        problem(problems, &format!("{at}.attr"), "must be an attribute name");
        return None;
    };
    let Some(attr) = Attr::parse(name) else {
        problem(
            problems,
            &format!("{at}.attr"),
            format!(
                "`{name}` is not an attribute (`mfa-audit policy attributes` lists them){}",
                suggestion(name)
            ),
        );
        return None;
    };
    let def = attr.def();
    if let Some(scope) = env.scope.filter(|s| *s != def.scope) {
        problem(
            problems,
            &format!("{at}.attr"),
            match scope {
                Scope::Event => format!("`{name}` describes a day: use it in `[readiness]`"),
                Scope::Day => {
                    format!("`{name}` describes an event: `[readiness]` reads `day.*` attributes")
                }
            },
        );
        return None;
    }
    let mut ops = Vec::new();
    let mut ok = true;
    for (key, val) in t {
        if key == "attr" {
            continue;
        }
        let here = format!("{at}.{key}");
        if !OPS.contains(&key.as_str()) {
            problem(
                problems,
                &here,
                format!("unknown comparison (comparisons: {})", OPS.join(", ")),
            );
            ok = false;
            continue;
        }
        match op(key, val, def.ty, name, &here, env, problems) {
            Some(o) => ops.push(o),
            None => ok = false,
        }
    }
    if ops.is_empty() && ok {
        problem(
            problems,
            at,
            format!(
                "`{name}` is read but compared with nothing (comparisons: {})",
                OPS.join(", ")
            ),
        );
        return None;
    }
    if !ok {
        return None;
    }
    if attr == Attr::EventKind {
        let mut mask = 0u8;
        for (i, kind) in crate::event::KINDS.iter().enumerate() {
            let v = Val::Text(kind);
            if ops.iter().all(|op| test(op, Some(&v)) == Tri::True) {
                mask |= 1 << i;
            }
        }
        return Some(Cond::Kind(mask, ops));
    }
    if let [Op::EqBool(b)] = ops.as_slice() {
        return Some(Cond::Bool(attr, *b));
    }
    Some(Cond::Test(attr, ops))
}

fn names<'x>(keys: impl Iterator<Item = &'x String>) -> String {
    let v: Vec<&str> = keys.map(|k| k.as_str()).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn suggestion(name: &str) -> String {
    let mut close: Vec<(f64, &str)> = super::attr::ATTRS
        .iter()
        .map(|d| (strsim::jaro_winkler(name, d.name), d.name))
        .filter(|(score, _)| *score > 0.85)
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0));
    let names: Vec<&str> = close.into_iter().take(3).map(|(_, n)| n).collect();
    if names.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", names.join(" or "))
    }
}

fn wrong_type(problems: &mut Vec<String>, at: &str, attr: &str, ty: Type, want: &str, got: &Value) {
    problem(
        problems,
        at,
        format!(
            "`{attr}` is {} {}: compare it with {want}, not {}",
            if ty == Type::Int { "an" } else { "a" },
            ty.name(),
            got.type_str()
        ),
    );
}

fn op(
    key: &str,
    v: &Value,
    ty: Type,
    attr: &str,
    at: &str,
    env: &Env<'_>,
    problems: &mut Vec<String>,
) -> Option<Op> {
    let bad = |problems: &mut Vec<String>, want: &str| {
        wrong_type(problems, at, attr, ty, want, v);
        None
    };
    match (key, ty) {
        ("present", _) => match v {
            Value::Boolean(b) => Some(Op::Present(*b)),
            _ => bad(problems, "`true` or `false`"),
        },
        ("eq" | "ne", Type::Text) => match v {
            Value::String(s) => Some(if key == "eq" {
                Op::EqText(s.trim().to_owned())
            } else {
                Op::NeText(s.trim().to_owned())
            }),
            _ => bad(problems, "text"),
        },
        ("eq" | "ne", Type::Int) => match v {
            Value::Integer(i) => Some(if key == "eq" {
                Op::EqInt(*i)
            } else {
                Op::NeInt(*i)
            }),
            _ => bad(problems, "a whole number"),
        },
        ("eq" | "ne", Type::Bool) => match v {
            Value::Boolean(b) => Some(if key == "eq" {
                Op::EqBool(*b)
            } else {
                Op::NeBool(*b)
            }),
            _ => bad(problems, "`true` or `false`"),
        },
        ("in" | "not_in", Type::Text) => {
            texts(v, at, env, problems).map(|l| Op::InText(l, key == "not_in"))
        }
        ("in" | "not_in", Type::Int) => {
            ints(v, at, env, problems).map(|l| Op::InInt(l, key == "not_in"))
        }
        ("glob", Type::Text) => match v {
            Value::String(s) => match GlobBuilder::new(s.trim())
                .case_insensitive(true)
                .literal_separator(false)
                .build()
            {
                Ok(g) => Some(Op::Glob(Box::new(g.compile_matcher()))),
                Err(e) => {
                    problem(problems, at, format!("bad pattern: {e}"));
                    None
                }
            },
            _ => bad(problems, "a pattern (text)"),
        },
        ("prefix", Type::Text) => match v {
            Value::String(s) => Some(Op::Prefix(s.trim().to_owned())),
            _ => bad(problems, "text"),
        },
        ("lt" | "le" | "gt" | "ge", Type::Int) => match v {
            Value::Integer(i) => Some(match key {
                "lt" => Op::Lt(*i),
                "le" => Op::Le(*i),
                "gt" => Op::Gt(*i),
                _ => Op::Ge(*i),
            }),
            _ => bad(problems, "a whole number"),
        },
        // A `[lists]` name or a list: any of its values; another text: that one value.
        ("contains", Type::List) => match v {
            Value::String(one) if !env.lists.contains_key(one) => {
                Some(Op::Contains(Arc::from(vec![one.trim().to_owned()])))
            }
            _ => texts(v, at, env, problems).map(Op::Contains),
        },
        _ => {
            problem(
                problems,
                at,
                format!(
                    "`{key}` does not apply to `{attr}`, {} {} (it takes: {})",
                    if ty == Type::Int { "an" } else { "a" },
                    ty.name(),
                    match ty {
                        Type::Text => "eq, ne, in, not_in, glob, prefix, present",
                        Type::Int => "eq, ne, in, not_in, lt, le, gt, ge, present",
                        Type::Bool => "eq, ne, present",
                        Type::List => "contains, present",
                    }
                ),
            );
            None
        }
    }
}

fn texts(v: &Value, at: &str, env: &Env<'_>, problems: &mut Vec<String>) -> Option<Arc<[String]>> {
    let named = |l: &List| match l {
        List::Texts(t) => Some(Arc::clone(t)),
        List::Ints(_) => None,
    };
    let item = |x: &Value| x.as_str().map(|s| s.trim().to_owned());
    list_value(v, at, env, problems, ("texts", "text"), named, item)
}

fn ints(v: &Value, at: &str, env: &Env<'_>, problems: &mut Vec<String>) -> Option<Arc<[i64]>> {
    let named = |l: &List| match l {
        List::Ints(i) => Some(Arc::clone(i)),
        List::Texts(_) => None,
    };
    list_value(
        v,
        at,
        env,
        problems,
        ("numbers", "a whole number"),
        named,
        Value::as_integer,
    )
}

/// A list operand: a `[lists]` name, or the values inline; `what` names its items (plural,
/// and one).
fn list_value<T>(
    v: &Value,
    at: &str,
    env: &Env<'_>,
    problems: &mut Vec<String>,
    what: (&str, &str),
    named: impl Fn(&List) -> Option<Arc<[T]>>,
    item: impl Fn(&Value) -> Option<T>,
) -> Option<Arc<[T]>> {
    match v {
        Value::String(name) => match env.lists.get(name) {
            Some(l) => {
                let got = named(l);
                if got.is_none() {
                    let other = if what.0 == "texts" {
                        "numbers"
                    } else {
                        "texts"
                    };
                    problem(
                        problems,
                        at,
                        format!("list `{name}` holds {other}, not {}", what.0),
                    );
                }
                got
            }
            None => {
                problem(
                    problems,
                    at,
                    format!(
                        "`{name}` is not a list of `[lists]` (there: {}); or write the values inline, as [...]",
                        names(env.lists.keys())
                    ),
                );
                None
            }
        },
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, x) in items.iter().enumerate() {
                match item(x) {
                    Some(t) => out.push(t),
                    None => problem(
                        problems,
                        &format!("{at}[{i}]"),
                        format!("must be {}, not {}", what.1, x.type_str()),
                    ),
                }
            }
            (out.len() == items.len()).then(|| Arc::from(out))
        }
        other => {
            problem(
                problems,
                at,
                format!(
                    "must be a list name or a list of {}, not {}",
                    what.0,
                    other.type_str()
                ),
            );
            None
        }
    }
}

/// Reads the `[lists]` table: each entry a list of texts or of whole numbers.
pub fn lists(t: Option<&Value>, problems: &mut Vec<String>) -> BTreeMap<String, List> {
    let mut out = BTreeMap::new();
    let Some(v) = t else {
        return out;
    };
    let Value::Table(t) = v else {
        problem(
            problems,
            "lists",
            format!("must be a table, not {}", v.type_str()),
        );
        return out;
    };
    for (name, v) in t {
        let at = format!("lists.{name}");
        let Value::Array(items) = v else {
            problem(
                problems,
                &at,
                format!("must be a list, not {}", v.type_str()),
            );
            continue;
        };
        if items.iter().all(|x| matches!(x, Value::Integer(_))) && !items.is_empty() {
            let ints: Vec<i64> = items.iter().filter_map(Value::as_integer).collect();
            out.insert(name.clone(), List::Ints(Arc::from(ints)));
        } else if items.iter().all(|x| matches!(x, Value::String(_))) {
            let texts: Vec<String> = items
                .iter()
                .filter_map(Value::as_str)
                .map(|s| s.trim().to_owned())
                .collect();
            out.insert(name.clone(), List::Texts(Arc::from(texts)));
        } else {
            problem(problems, &at, "must hold only texts or only whole numbers");
        }
    }
    out
}

/// A finding's `detail`, with `{attribute}` or `{attribute|text if absent}` filled in
/// (`{{` and `}}` for braces).
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
    source: String,
}

#[derive(Debug, Clone)]
enum Part {
    Lit(String),
    Attr(Attr, String),
}

impl Template {
    /// Parses a template written at `at`.
    pub fn parse(text: &str, at: &str, problems: &mut Vec<String>) -> Option<Template> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        let mut ok = true;
        while let Some(i) = rest.find(['{', '}']) {
            let (head, tail) = rest.split_at(i);
            lit.push_str(head);
            if let Some(t) = tail.strip_prefix("{{") {
                lit.push('{');
                rest = t;
            } else if let Some(t) = tail.strip_prefix("}}") {
                lit.push('}');
                rest = t;
            } else if let Some(t) = tail.strip_prefix('{') {
                let Some(end) = t.find('}') else {
                    problem(problems, at, "a `{` is not closed (write `{{` for a brace)");
                    return None;
                };
                let (inside, after) = t.split_at(end);
                let (name, fallback) = inside.split_once('|').unwrap_or((inside, ""));
                match Attr::parse(name.trim()) {
                    Some(a) if a.def().scope == Scope::Event => {
                        if !lit.is_empty() {
                            parts.push(Part::Lit(std::mem::take(&mut lit)));
                        }
                        parts.push(Part::Attr(a, fallback.to_owned()));
                    }
                    _ => {
                        problem(
                            problems,
                            at,
                            format!("`{{{name}}}` is not an event attribute{}", suggestion(name)),
                        );
                        ok = false;
                    }
                }
                rest = after.get(1..).unwrap_or_default();
            } else {
                problem(problems, at, "a lone `}` (write `}}` for a brace)");
                return None;
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        ok.then(|| Template {
            parts,
            source: text.to_owned(),
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The attributes it reads.
    pub fn attrs(&self, out: &mut Vec<Attr>) {
        for p in &self.parts {
            if let Part::Attr(a, _) = p {
                if !out.contains(a) {
                    out.push(*a);
                }
            }
        }
    }

    /// Fills it in.
    pub fn render<'v>(&self, get: &mut impl FnMut(Attr) -> Option<Val<'v>>) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Attr(a, fallback) => match get(*a) {
                    Some(v) => {
                        let _ = write!(out, "{v}");
                    }
                    None => out.push_str(fallback),
                },
            }
        }
        out
    }
}
