//! Conditions as data: the tree a policy file's conditions compile to (`all`, `any`,
//! `not`, tests on attributes; see [`super::compile`]), evaluated without allocating.
//!
//! Evaluation is three-valued: a test on an attribute the event does not carry is
//! *unknown*; `all` is false if any part is false, else unknown if any is; `any` is true
//! if any part is true, else unknown if any is; `not` keeps unknown. A rule fires when its
//! condition is true, is quiet when false, and is *not applicable* when unknown.

use super::attr::{Attr, Val};
use globset::GlobMatcher;
use std::sync::Arc;

/// A set of event kinds: bit `i` is `event::KINDS[i]`.
pub type KindMask = u16;

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
    pub(crate) fn from_bool(b: bool) -> Tri {
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
    Globs(Arc<[GlobMatcher]>),
    Prefixes(Arc<[String]>),
    /// Substrings, lower case (ASCII).
    Substr(Arc<[String]>),
    Regex(Box<regex::Regex>),
    /// The test's value when the attribute is absent (else *unknown*).
    IfAbsent(bool),
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
    Kind(KindMask, Vec<Op>),
    /// A named condition of `[conditions]`, compiled once and shared by every place that
    /// names it (a reference, not a copy: reuse costs one node, never a copy of the body).
    Named(Arc<Named>),
    /// A test on a window's count or a history (`{ window = "NAME", ge = 7 }`), read from
    /// what the event reads of them ([`super::windows::Probes`]).
    Probe(super::windows::Probe, Vec<Op>),
}

/// A named condition of `[conditions]`, compiled once.
#[derive(Debug)]
pub struct Named {
    /// Its slot in the per-event memo (when it reads no `rule.*` attribute, its value is
    /// the same for every rule of one event); `None`: evaluated where it is used.
    pub slot: Option<usize>,
    /// The compiled body.
    pub body: Cond,
    /// [`Cond::kinds`] of the body, computed once.
    kinds: KindMask,
    /// [`Cond::attrs`] of the body, computed once.
    attrs: Vec<Attr>,
    /// Nodes one evaluation of the body may visit, counting a remembered named condition
    /// it refers to as one node (saturating).
    cost: u64,
}

impl Named {
    /// A named condition of `body`, remembered in `slot` unless it reads `rule.*`.
    pub fn new(slot: Option<usize>, body: Cond) -> Self {
        let mut attrs = Vec::new();
        body.attrs(&mut attrs);
        let reads_rule = attrs
            .iter()
            .any(|a| matches!(a, Attr::RuleEnforced | Attr::RuleExcepted));
        Named {
            slot: slot.filter(|_| !reads_rule),
            kinds: body.kinds(),
            cost: body.cost(),
            attrs,
            body,
        }
    }

    /// Nodes one evaluation of the body may visit (see [`Cond::cost`]).
    pub fn cost(&self) -> u64 {
        self.cost
    }
}

/// What one evaluation reads through: the attribute reader, the event's kind bit, and
/// the memo of named conditions (one per event and policy; `None` in `explain`, so that
/// every rule shows all it reads).
pub struct Eval<'m, F> {
    /// Reads an attribute.
    pub get: F,
    /// `1 << kind_index` of the event (all bits for a day).
    pub kind: KindMask,
    /// Named conditions already decided for this event.
    pub memo: Option<&'m mut Memo>,
    /// Whether `get` records what it reads (`explain`): then every test reads its
    /// attribute, even one decided without it.
    pub tracing: bool,
    /// What the event reads of the policy's windows and histories (`None`: it has none,
    /// or this is a window's own `when`).
    pub probes: Option<&'m super::windows::Probes>,
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
            Cond::Named(n) => {
                let (slot, body) = (&n.slot, &n.body);
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
            Cond::Probe(p, ops) => {
                let v = e.probes.and_then(|pr| pr.value(*p));
                let mut out = Tri::True;
                for op in ops {
                    out = out.and(test(op, v.as_ref()));
                }
                out
            }
            Cond::Test(attr, ops) => {
                let v = (e.get)(*attr);
                if v.is_none() {
                    if let Some(b) = ops.iter().find_map(|o| match o {
                        Op::IfAbsent(b) => Some(*b),
                        _ => None,
                    }) {
                        return Tri::from_bool(b);
                    }
                }
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
    pub fn kinds(&self) -> KindMask {
        const ALL: KindMask = (1 << crate::event::KINDS.len()) - 1;
        match self {
            Cond::All(parts) => parts.iter().fold(ALL, |m, p| m & p.kinds()),
            Cond::Any(parts) => parts.iter().fold(0, |m, p| m | p.kinds()),
            Cond::Not(_) => ALL,
            Cond::Kind(mask, _) => *mask,
            Cond::Named(n) => n.kinds,
            Cond::Test(..) | Cond::Bool(..) | Cond::Probe(..) => ALL,
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

    /// Nodes one evaluation may visit: a named condition that is remembered per event
    /// counts one (its body is decided once per event), one that is not counts its body
    /// (saturating). Linear in the policy file's size only when named conditions that are
    /// not remembered are not nested in doubling chains: the loader bounds it.
    pub fn cost(&self) -> u64 {
        match self {
            Cond::All(p) | Cond::Any(p) => p.iter().fold(1u64, |n, c| n.saturating_add(c.cost())),
            Cond::Not(c) => c.cost().saturating_add(1),
            Cond::Named(n) if n.slot.is_some() => 1,
            Cond::Named(n) => n.cost.saturating_add(1),
            Cond::Kind(..) | Cond::Test(..) | Cond::Bool(..) | Cond::Probe(..) => 1,
        }
    }

    /// Whether it reads a window or a history (directly or through a named condition).
    pub fn has_probe(&self) -> bool {
        match self {
            Cond::All(p) | Cond::Any(p) => p.iter().any(Cond::has_probe),
            Cond::Not(c) => c.has_probe(),
            Cond::Named(n) => n.body.has_probe(),
            Cond::Probe(..) => true,
            Cond::Kind(..) | Cond::Test(..) | Cond::Bool(..) => false,
        }
    }

    /// Nodes of the compiled tree, each named condition's body counted once however often
    /// it is referred to (what the tree holds in memory).
    pub fn nodes(&self) -> usize {
        let mut seen = Vec::new();
        self.nodes_in(&mut seen)
    }

    fn nodes_in(&self, seen: &mut Vec<*const Named>) -> usize {
        match self {
            Cond::All(p) | Cond::Any(p) => 1 + p.iter().map(|c| c.nodes_in(seen)).sum::<usize>(),
            Cond::Not(c) => 1 + c.nodes_in(seen),
            Cond::Named(n) => {
                let ptr = Arc::as_ptr(n);
                if seen.contains(&ptr) {
                    1
                } else {
                    seen.push(ptr);
                    1 + n.body.nodes_in(seen)
                }
            }
            Cond::Kind(..) | Cond::Test(..) | Cond::Bool(..) | Cond::Probe(..) => 1,
        }
    }

    /// Every attribute the condition reads, in order, once each.
    pub fn attrs(&self, out: &mut Vec<Attr>) {
        match self {
            Cond::All(p) | Cond::Any(p) => p.iter().for_each(|c| c.attrs(out)),
            Cond::Not(c) => c.attrs(out),
            Cond::Named(n) => {
                for a in &n.attrs {
                    if !out.contains(a) {
                        out.push(*a)
                    }
                }
            }
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
            Cond::Probe(..) => {}
        }
    }
}

/// Attribute texts are trimmed when read, constants when compiled.
fn text_eq(v: &str, c: &str) -> bool {
    v.eq_ignore_ascii_case(c)
}

pub(crate) fn test(op: &Op, v: Option<&Val<'_>>) -> Tri {
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
        // An empty list (a pack's list shipped for a team to fill, such as
        // `allowed_countries`) decides nothing: `in` and `not_in` on it are unknown.
        Op::InText(list, _) if list.is_empty() => Tri::Unknown,
        Op::InInt(list, _) if list.is_empty() => Tri::Unknown,
        Op::Contains(list) | Op::Prefixes(list) | Op::Substr(list) if list.is_empty() => {
            Tri::Unknown
        }
        Op::Globs(list) if list.is_empty() => Tri::Unknown,
        Op::EqText(c) => Tri::from_bool(text_eq(&v.as_text(), c)),
        Op::NeText(c) => Tri::from_bool(!text_eq(&v.as_text(), c)),
        Op::InText(list, negated) => {
            let t = v.as_text();
            Tri::from_bool(list.iter().any(|c| text_eq(&t, c)) != *negated)
        }
        Op::Glob(g) => Tri::from_bool(g.is_match(&*v.as_text())),
        Op::Prefix(p) => Tri::from_bool(has_prefix(&v.as_text(), p)),
        Op::Prefixes(ps) => {
            let t = v.as_text();
            Tri::from_bool(ps.iter().any(|p| has_prefix(&t, p)))
        }
        Op::Globs(gs) => {
            let t = v.as_text();
            Tri::from_bool(gs.iter().any(|g| g.is_match(&*t)))
        }
        Op::Substr(subs) => {
            let t = v.as_text();
            Tri::from_bool(subs.iter().any(|s| has_substr(&t, s)))
        }
        Op::Regex(r) => Tri::from_bool(r.is_match(&v.as_text())),
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
        Op::Present(_) | Op::IfAbsent(_) => Tri::True,
    }
}

fn has_prefix(t: &str, p: &str) -> bool {
    t.len() >= p.len() && t.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p))
}

/// Whether `t` holds `lower` (lower case), ignoring ASCII case, without allocating.
fn has_substr(t: &str, lower: &str) -> bool {
    let (t, n) = (t.as_bytes(), lower.as_bytes());
    n.is_empty()
        || t.windows(n.len())
            .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
}
