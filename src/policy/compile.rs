//! Compiling conditions: the declarative form a policy file writes (`all`, `any`, `not`,
//! tests on attributes, named lists and named conditions) checked, every problem with its
//! place, and turned once at load into a [`Cond`] tree.

use super::attr::{Attr, Scope, Val};
use super::cond::{test, Cond, KindMask, Named, Op, Tri, MEMO_SLOTS};
use super::ops::{op, OPS};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use toml::Value;

/// A named list of the policy file (`[lists]`).
#[derive(Debug, Clone)]
pub enum List {
    /// Texts (compared ignoring case and blanks).
    Texts(Arc<[String]>),
    /// Whole numbers.
    Ints(Arc<[i64]>),
}

/// What a condition may refer to while it is compiled.
pub struct Env<'a> {
    /// Named lists.
    pub lists: &'a BTreeMap<String, List>,
    /// Named conditions (their source; compiled once per scope, where first used).
    pub conditions: &'a BTreeMap<String, Value>,
    /// The attributes' scope here (`None`: either; a named condition is checked for its
    /// scope where it is used).
    pub scope: Option<Scope>,
    /// Named conditions compiled so far, shared by every place that names them.
    pub compiled: &'a Compiled,
    /// The `[windows]` and `[histories]` names a test may read.
    pub probes: &'a super::windows::ProbeNames,
}

/// Named conditions compiled so far, by name and scope (`None`: it had problems, already
/// reported). One per policy load: a condition named a thousand times is compiled once.
#[derive(Default)]
pub struct Compiled(RefCell<BTreeMap<NamedKey, Option<Arc<Named>>>>);

/// A named condition's name and the scope it was compiled for.
type NamedKey = (String, u8);

fn scope_key(s: Option<Scope>) -> u8 {
    match s {
        None => 0,
        Some(Scope::Event) => 1,
        Some(Scope::Day) => 2,
    }
}

/// The most nodes one evaluation of a named condition may visit. Remembered named
/// conditions count once per event; those that read `rule.*` (or past the 64th) are
/// evaluated where they are used, so a chain of them that doubles at each step would cost
/// 2^depth per event: such a file is refused at load.
pub const MAX_CONDITION_COST: u64 = 100_000;

/// The deepest nesting of `{...}` alternatives a glob may have (globset's regex parser
/// stops at 250 levels; no real pattern nests more than a few).
pub const MAX_GLOB_NESTING: usize = 32;

const COMPOSITE: [&str; 4] = ["all", "any", "not", "condition"];

/// Compiles a condition written at `at`, adding every problem to `problems`.
pub fn compile(v: &Value, at: &str, env: &Env<'_>, problems: &mut Vec<String>) -> Option<Cond> {
    compile_in(v, at, env, problems, &mut Vec::new())
}

pub(crate) fn problem(problems: &mut Vec<String>, at: &str, what: impl fmt::Display) {
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
                let key = (name.clone(), scope_key(env.scope));
                if let Some(done) = env.compiled.0.borrow().get(&key) {
                    return done.as_ref().map(|n| Cond::Named(Arc::clone(n)));
                }
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
                let there = format!("conditions.{name}");
                let c = compile_in(src, &there, env, problems, stack);
                stack.pop();
                let slot = env
                    .conditions
                    .keys()
                    .position(|k| k == name)
                    .filter(|i| *i < MEMO_SLOTS);
                let named = c.map(|c| Arc::new(Named::new(slot, c))).filter(|n| {
                    let cost = n.cost();
                    if cost > MAX_CONDITION_COST {
                        problem(
                            problems,
                            &there,
                            format!(
                                "one evaluation would visit {cost} tests (at most {MAX_CONDITION_COST}): the named conditions it uses are evaluated where used (they read `rule.*`, or come after the first {MEMO_SLOTS}), and each copy counts"
                            ),
                        );
                    }
                    cost <= MAX_CONDITION_COST
                });
                env.compiled.0.borrow_mut().insert(key, named.clone());
                named.map(Cond::Named)
            }
        };
    }
    if super::windows::is_probe(t) && !t.contains_key("attr") {
        return super::windows::compile_probe(t, at, env, problems);
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
        let mut mask: KindMask = 0;
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

pub(super) fn names<'x>(keys: impl Iterator<Item = &'x String>) -> String {
    let v: Vec<&str> = keys.map(|k| k.as_str()).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

pub(crate) fn suggestion(name: &str) -> String {
    let names = super::near::nearest(name, super::attr::ATTRS.iter().map(|d| d.name));
    if names.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", names.join(" or "))
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
