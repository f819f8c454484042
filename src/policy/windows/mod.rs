//! Counts over a window (`[windows.NAME]`, read by `{ window = "NAME", ge = 7 }`) and
//! first-seen histories (`[histories.NAME]`, read by `{ seen = "NAME", eq = false }` and
//! `{ history_age = "NAME", ge = "1d" }`): their definitions, the tests that read them,
//! and what one event reads of them and leaves in state ([`Probes`]).
//!
//! Every event of the tenant whose `when` holds is recorded (beside the rules, whatever
//! they read), after the rules read the state as it stood before the event. A window's
//! count includes the event itself when its `when` holds; a history's `seen` does not.
//! The state and its bounds: [`crate::state::WindowState`], [`crate::state::HistoryState`].

mod load;

pub(super) use load::{compile_probe, histories, is_probe, windows};

use super::attr::{Attr, Val};
use super::cond::{Cond, Eval, KindMask, Memo, Tri};
use super::model::Policy;
use crate::event::time::EventTime;
use crate::state::{Sight, TenantState, This};
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
