//! Counts over a window (`[windows.NAME]`) and first-seen histories (`[histories.NAME]`):
//! per tenant, per window or history and per group (the values of its `by`), what
//! earlier events left, in event time. Both live in the tenant's state and snapshots, so
//! the stream and file modes agree.
//!
//! **Windows.** A group holds its events' times (and, for `distinct`, the value), sorted.
//! The count at `t` is the events in `(t - span, t]`: an event exactly one span before is
//! outside. Expired entries leave the front when the group is next touched (O(1)
//! amortised per event; a count is two binary searches). Bounds, per window and tenant:
//! [`MAX_GROUPS`] groups, [`MAX_ENTRIES`] entries, and per group [`COUNT_CAP`] entries.
//! A count reads at most [`COUNT_CAP`] ("that many or more"). An entry the state could
//! not hold (a bound, or expired before a late event reached back to it) is remembered by
//! its time: a count that may miss it reads *unknown* unless what is held already reaches
//! the cap. So a bound never lowers a count silently: a finding the full count would give
//! is either given or shown as not applicable.
//!
//! **Histories.** A group holds each tuple of `values` it saw with the time last seen,
//! and the start of its history (`since`: the first event of an unbroken run, one whose
//! events are less than a span apart). Bounds, per history and tenant: [`MAX_GROUPS`]
//! groups and [`MAX_VALUES`] tuples, and per group [`MAX_VALUES_PER_GROUP`] tuples (past
//! it, the tuple seen least recently is forgotten: a later sighting of it reads as new, a
//! finding more, never one less).

use crate::event::time::EventTime;
use foldhash::HashMap;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Most groups one window or history holds per tenant. Past it (after dropping the
/// groups whose entries all expired), a new group is not recorded, and for one span every
/// group not held reads *unknown*.
pub const MAX_GROUPS: usize = 100_000;

/// Most entries one window holds per tenant (all groups). Past it (after dropping expired
/// ones), an event is not recorded, and its group's counts that could include it read
/// *unknown* (unless what is held reaches [`COUNT_CAP`]).
pub const MAX_ENTRIES: usize = 1_000_000;

/// Most entries one group of a window holds, and the most a count reads: past it the
/// oldest entry is dropped and the count reads `COUNT_CAP` ("1000 or more"). A window test
/// compares with whole numbers below it.
pub const COUNT_CAP: usize = 1_000;

/// Most tuples one history holds per tenant (all groups). Past it (after dropping expired
/// ones), a new tuple is not recorded: a later sighting of it reads as new.
pub const MAX_VALUES: usize = 1_000_000;

/// Most tuples one group of a history holds; past it the one seen least recently goes.
pub const MAX_VALUES_PER_GROUP: usize = 256;

/// Sweeps of a window or history at its bound (dropping expired entries of every group)
/// happen at most this often per span of event time: a full state costs O(groups) at most
/// eight times a span, never per event.
const SWEEPS_PER_SPAN: i64 = 8;

/// Whether a sweep is due at `now` (none done in the last `span / SWEEPS_PER_SPAN`): then
/// it is recorded in `swept`, and the edge before which entries are spent is returned.
fn sweep_due(swept: &mut Option<EventTime>, now: EventTime, span: i64) -> Option<EventTime> {
    if swept.is_some_and(|s| now.0.saturating_sub(s.0) < span / SWEEPS_PER_SPAN) {
        return None;
    }
    *swept = Some(now);
    Some(EventTime(now.0.saturating_sub(span)))
}

/// One window of one tenant.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowState {
    groups: HashMap<String, Group>,
    /// Entries held, all groups.
    entries: usize,
    /// The latest time an event of a group not held could not be recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refused: Option<EventTime>,
    /// The newest event time recorded.
    newest: EventTime,
    /// The last sweep at the bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    swept: Option<EventTime>,
}

/// One group of a window: its entries sorted by time, and (for `distinct`) how many
/// entries hold each value.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "GroupRepr", into = "GroupRepr")]
struct Group {
    entries: VecDeque<(EventTime, Option<Box<str>>)>,
    /// The newest time of an entry dropped (expired, over a bound, or refused).
    dropped: Option<EventTime>,
    counts: HashMap<Box<str>, u32>,
}

/// A group as snapshots hold it (the value counts are rebuilt on restore).
#[derive(Serialize, Deserialize)]
struct GroupRepr {
    entries: VecDeque<(EventTime, Option<Box<str>>)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dropped: Option<EventTime>,
}

impl From<GroupRepr> for Group {
    fn from(r: GroupRepr) -> Self {
        let mut counts: HashMap<Box<str>, u32> = HashMap::default();
        for v in r.entries.iter().filter_map(|(_, v)| v.as_ref()) {
            *counts.entry(v.clone()).or_default() += 1;
        }
        Group {
            entries: r.entries,
            dropped: r.dropped,
            counts,
        }
    }
}

impl From<Group> for GroupRepr {
    fn from(g: Group) -> Self {
        GroupRepr {
            entries: g.entries,
            dropped: g.dropped,
        }
    }
}

fn later(a: Option<EventTime>, b: EventTime) -> Option<EventTime> {
    Some(a.map_or(b, |a| a.max(b)))
}

impl Group {
    /// Drops the entries at or before `edge`.
    fn expire(&mut self, edge: EventTime, total: &mut usize) {
        while let Some((t, _)) = self.entries.front() {
            if *t > edge {
                break;
            }
            if let Some((t, v)) = self.entries.pop_front() {
                self.forget(v);
                self.dropped = later(self.dropped, t);
                *total = total.saturating_sub(1);
            }
        }
    }

    fn forget(&mut self, v: Option<Box<str>>) {
        if let Some(v) = v {
            if let Some(c) = self.counts.get_mut(&v) {
                *c -= 1;
                if *c == 0 {
                    self.counts.remove(&v);
                }
            }
        }
    }
}

/// What a window test reads of this event's group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum This<'a> {
    /// The event is not counted (its `when` does not hold).
    Not,
    /// The event is counted (a plain count).
    Counted,
    /// The event is counted, with this value (`distinct`).
    Value(&'a str),
}

impl WindowState {
    /// Groups held.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// Entries held, all groups.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// The count of `key` at `t` over `span` µs: the entries in `(t - span, t]` (distinct
    /// values when `distinct`), this event included as `this` says; at most
    /// [`COUNT_CAP`]; `None` (unknown) when an entry the count may need was not held.
    pub fn count(
        &self,
        key: &str,
        t: EventTime,
        span: i64,
        distinct: bool,
        this: This<'_>,
    ) -> Option<i64> {
        let lo = EventTime(t.0.saturating_sub(span));
        let own = i64::from(this != This::Not);
        let (n, dropped) = match self.groups.get(key) {
            None => (own, self.refused),
            Some(g) => {
                let from = g.entries.partition_point(|(x, _)| *x <= lo);
                let to = g.entries.partition_point(|(x, _)| *x <= t);
                let n = if distinct {
                    distinct_in(g, from, to, this)
                } else {
                    (to - from) as i64 + own
                };
                (n, g.dropped)
            }
        };
        let cap = COUNT_CAP as i64;
        if dropped.is_some_and(|d| d > lo) && n < cap {
            return None;
        }
        Some(n.min(cap))
    }

    /// Records an event of `key` at `t` (with its `distinct` value), after dropping the
    /// group's entries that are a span older than its newest. With `record` false, only
    /// drops (a group read by an event that is not counted).
    pub fn record(
        &mut self,
        key: &str,
        t: EventTime,
        span: i64,
        value: Option<&str>,
        record: bool,
    ) {
        self.newest = self.newest.max(t);
        if let Some(g) = self.groups.get_mut(key) {
            let newest = g.entries.back().map_or(t, |(x, _)| (*x).max(t));
            g.expire(EventTime(newest.0.saturating_sub(span)), &mut self.entries);
        }
        if !record {
            return;
        }
        if !self.groups.contains_key(key) && self.groups.len() >= MAX_GROUPS {
            self.sweep(span);
            if self.groups.len() >= MAX_GROUPS {
                self.refused = later(self.refused, t);
                return;
            }
        }
        if self.entries >= MAX_ENTRIES {
            self.sweep(span);
            if self.entries >= MAX_ENTRIES {
                match self.groups.get_mut(key) {
                    Some(g) => g.dropped = later(g.dropped, t),
                    None => self.refused = later(self.refused, t),
                }
                return;
            }
        }
        let refused = self.refused;
        let g = self.groups.entry(key.to_owned()).or_insert_with(|| Group {
            // Events of this group may have been refused before it was held.
            dropped: refused,
            ..Group::default()
        });
        if g.entries.len() >= COUNT_CAP {
            if let Some((old, v)) = g.entries.pop_front() {
                g.forget(v);
                g.dropped = later(g.dropped, old);
                self.entries -= 1;
            }
        }
        let v: Option<Box<str>> = value.map(Box::from);
        if let Some(v) = &v {
            *g.counts.entry(v.clone()).or_default() += 1;
        }
        if g.entries.back().is_none_or(|(x, _)| *x <= t) {
            g.entries.push_back((t, v));
        } else {
            // A late event: in its time's place.
            let at = g.entries.partition_point(|(x, _)| *x <= t);
            g.entries.insert(at, (t, v));
        }
        self.entries += 1;
    }

    /// Drops every group's expired entries (relative to the newest event recorded), and
    /// the groups left empty; at most [`SWEEPS_PER_SPAN`] times a span.
    fn sweep(&mut self, span: i64) {
        let Some(edge) = sweep_due(&mut self.swept, self.newest, span) else {
            return;
        };
        let total = &mut self.entries;
        self.groups.retain(|_, g| {
            g.expire(edge, total);
            !g.entries.is_empty() || g.dropped.is_some_and(|d| d > edge)
        });
    }
}

/// Distinct values of `g.entries[from..to]`, with this event's value: the values held
/// less those whose every entry lies outside the range (a scan of the entries outside,
/// which the next record of the group drops).
fn distinct_in(g: &Group, from: usize, to: usize, this: This<'_>) -> i64 {
    let mut outside: HashMap<&str, u32> = HashMap::default();
    for (_, v) in g.entries.range(..from).chain(g.entries.range(to..)) {
        if let Some(v) = v {
            *outside.entry(&**v).or_default() += 1;
        }
    }
    let gone = outside
        .iter()
        .filter(|(v, n)| g.counts.get(**v) == Some(*n))
        .count();
    let mut n = (g.counts.len() - gone) as i64;
    if let This::Value(v) = this {
        let inside = g.counts.get(v).copied().unwrap_or(0) > outside.get(v).copied().unwrap_or(0);
        if !inside {
            n += 1;
        }
    }
    n
}

/// One history of one tenant.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryState {
    groups: HashMap<String, History>,
    /// Tuples held, all groups.
    values: usize,
    /// The latest time an event of a group not held could not be recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refused: Option<EventTime>,
    /// The newest event time recorded.
    newest: EventTime,
    /// The last sweep at the bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    swept: Option<EventTime>,
}

/// One group's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct History {
    /// The start of its unbroken run of events.
    since: EventTime,
    /// Its newest event.
    last: EventTime,
    /// Each tuple seen, with the time last seen.
    seen: HashMap<String, EventTime>,
    /// The oldest of those times (when it is a span old, the group is swept).
    oldest: EventTime,
    /// Before this time its history may lack events refused at the bound: its age reads
    /// unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unsure_until: Option<EventTime>,
}

/// What a history test reads of this event's group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sight {
    /// The tuple was seen in `(t - span, t]` (`None`: unknown).
    pub seen: Option<bool>,
    /// How far back the group's history goes, in seconds (`None`: unknown).
    pub age: Option<i64>,
}

impl HistoryState {
    /// Groups held.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// Tuples held, all groups.
    pub fn values(&self) -> usize {
        self.values
    }

    /// Whether `tuple` was seen in `key`'s history within `span` before `t`, and the age
    /// of that history. A group with no history (never seen, or no event for a span) has
    /// seen nothing and is 0 s old.
    pub fn read(&self, key: &str, tuple: Option<&str>, t: EventTime, span: i64) -> Sight {
        let lo = EventTime(t.0.saturating_sub(span));
        let Some(g) = self.groups.get(key).filter(|g| g.last > lo) else {
            if self.refused.is_some_and(|r| r > lo) {
                return Sight {
                    seen: None,
                    age: None,
                };
            }
            return Sight {
                seen: tuple.map(|_| false),
                age: Some(0),
            };
        };
        let seen = tuple.and_then(|v| match g.seen.get(v) {
            None => Some(false),
            // A late event: seen after it, maybe not before.
            Some(s) if *s > t => None,
            Some(s) => Some(*s > lo),
        });
        let age = if g.unsure_until.is_some_and(|u| t < u) {
            None
        } else {
            Some(t.0.saturating_sub(g.since.0).max(0) / 1_000_000)
        };
        Sight { seen, age }
    }

    /// Records `tuple` for `key` at `t`.
    pub fn record(&mut self, key: &str, tuple: &str, t: EventTime, span: i64) {
        self.newest = self.newest.max(t);
        let lo = EventTime(t.0.saturating_sub(span));
        if !self.groups.contains_key(key) && self.groups.len() >= MAX_GROUPS {
            self.sweep(span);
            if self.groups.len() >= MAX_GROUPS {
                self.refused = later(self.refused, t);
                return;
            }
        }
        let refused = self.refused.filter(|r| *r > lo);
        let g = self
            .groups
            .entry(key.to_owned())
            .or_insert_with(|| History {
                since: t,
                last: t,
                seen: HashMap::default(),
                oldest: t,
                unsure_until: refused.map(|r| EventTime(r.0.saturating_add(span))),
            });
        if g.last <= lo {
            // No event for a span: the history starts again.
            self.values -= g.seen.len();
            g.seen.clear();
            g.since = t;
            g.oldest = t;
        } else if g.oldest <= lo {
            let before = g.seen.len();
            g.seen.retain(|_, s| *s > lo);
            self.values -= before - g.seen.len();
            g.oldest = g.seen.values().copied().min().unwrap_or(t);
        }
        g.since = g.since.min(t);
        g.last = g.last.max(t);
        if let Some(s) = g.seen.get_mut(tuple) {
            *s = (*s).max(t);
            return;
        }
        if g.seen.len() >= MAX_VALUES_PER_GROUP {
            let least = g
                .seen
                .iter()
                .min_by_key(|(_, s)| **s)
                .map(|(k, _)| k.clone());
            if let Some(k) = least {
                g.seen.remove(&k);
                self.values -= 1;
            }
        }
        if self.values >= MAX_VALUES {
            self.sweep(span);
            if self.values >= MAX_VALUES {
                return;
            }
        }
        let Some(g) = self.groups.get_mut(key) else {
            return;
        };
        g.seen.insert(tuple.to_owned(), t);
        g.oldest = g.oldest.min(t);
        self.values += 1;
    }

    /// Drops the tuples a span older than the newest event, and the groups left with no
    /// event for a span; at most [`SWEEPS_PER_SPAN`] times a span.
    fn sweep(&mut self, span: i64) {
        let Some(edge) = sweep_due(&mut self.swept, self.newest, span) else {
            return;
        };
        let mut values = 0;
        self.groups.retain(|_, g| {
            if g.last <= edge {
                return false;
            }
            g.seen.retain(|_, s| *s > edge);
            values += g.seen.len();
            true
        });
        self.values = values;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;
    const MIN: i64 = 60 * S;

    fn at(s: i64) -> EventTime {
        EventTime(s * S)
    }

    #[test]
    fn a_count_holds_the_span_up_to_this_event_and_an_entry_exactly_a_span_old_is_out() {
        let mut w = WindowState::default();
        for s in [0, 10, 20] {
            w.record("u", at(s), 10 * MIN, None, true);
        }
        // At 600 s: the entry at 0 is exactly 10 min old (out), 10 and 20 are in.
        assert_eq!(
            w.count("u", at(600), 10 * MIN, false, This::Counted),
            Some(3)
        );
        assert_eq!(w.count("u", at(599), 10 * MIN, false, This::Not), Some(3));
        assert_eq!(w.count("u", at(600), 10 * MIN, false, This::Not), Some(2));
        assert_eq!(
            w.count("v", at(600), 10 * MIN, false, This::Counted),
            Some(1)
        );
    }

    #[test]
    fn distinct_counts_values_in_the_span_with_this_event() {
        let mut w = WindowState::default();
        w.record("ip", at(0), MIN, Some("a"), true);
        w.record("ip", at(1), MIN, Some("b"), true);
        w.record("ip", at(2), MIN, Some("a"), true);
        assert_eq!(w.count("ip", at(3), MIN, true, This::Value("a")), Some(2));
        assert_eq!(w.count("ip", at(3), MIN, true, This::Value("c")), Some(3));
        // At 61 s: `a` at 0 and `b` at 1 are out, `a` at 2 is in.
        assert_eq!(w.count("ip", at(61), MIN, true, This::Not), Some(1));
        assert_eq!(w.count("ip", at(61), MIN, true, This::Value("b")), Some(2));
    }

    #[test]
    fn a_late_event_counts_in_its_time_and_unknown_where_entries_expired() {
        let mut w = WindowState::default();
        w.record("u", at(100), MIN, None, true);
        w.record("u", at(50), MIN, None, true);
        assert_eq!(w.count("u", at(100), MIN, false, This::Not), Some(2));
        assert_eq!(w.count("u", at(60), MIN, false, This::Not), Some(1));
        w.record("u", at(200), MIN, None, true);
        // 50 and 100 expired against 200: a late event at 150 reaches back to 90.
        assert_eq!(w.count("u", at(150), MIN, false, This::Counted), None);
        assert_eq!(w.count("u", at(200), MIN, false, This::Not), Some(1));
    }

    #[test]
    fn the_group_bound_keeps_the_newest_and_reads_the_cap() {
        let mut w = WindowState::default();
        for i in 0..(COUNT_CAP as i64 + 5) {
            w.record("u", EventTime(i), MIN, None, true);
        }
        assert_eq!(w.entries(), COUNT_CAP);
        let cap = COUNT_CAP as i64;
        assert_eq!(
            w.count("u", EventTime(2000), MIN, false, This::Not),
            Some(cap)
        );
    }

    #[test]
    fn a_snapshot_restores_the_value_counts() {
        let mut w = WindowState::default();
        w.record("ip", at(0), MIN, Some("a"), true);
        w.record("ip", at(1), MIN, Some("b"), true);
        let back: WindowState = serde_json::from_str(&serde_json::to_string(&w).unwrap()).unwrap();
        assert_eq!(back, w);
    }

    #[test]
    fn a_history_sees_tuples_within_its_span_and_knows_its_age() {
        let day = 86_400;
        let mut h = HistoryState::default();
        let span = 14 * day * S;
        assert_eq!(
            h.read("u", Some("app"), at(0), span),
            Sight {
                seen: Some(false),
                age: Some(0)
            }
        );
        h.record("u", "app", at(0), span);
        let r = h.read("u", Some("app"), at(day), span);
        assert_eq!((r.seen, r.age), (Some(true), Some(day)));
        assert_eq!(h.read("u", Some("other"), at(day), span).seen, Some(false));
        h.record("u", "x", at(13 * day), span);
        // 14 days after: `app` is exactly a span old (out); the history goes on.
        let r = h.read("u", Some("app"), at(14 * day), span);
        assert_eq!((r.seen, r.age), (Some(false), Some(14 * day)));
        // Nothing for 14 days after the last event: the history starts again.
        let r = h.read("u", Some("x"), at(27 * day), span);
        assert_eq!((r.seen, r.age), (Some(false), Some(0)));
        // A late event before the tuple's newest sighting: unknown.
        h.record("u", "y", at(10 * day), span);
        assert_eq!(h.read("u", Some("x"), at(12 * day), span).seen, None);
    }

    #[test]
    fn a_full_group_forgets_the_tuple_seen_least_recently() {
        let mut h = HistoryState::default();
        for i in 0..(MAX_VALUES_PER_GROUP as i64 + 1) {
            h.record("u", &i.to_string(), EventTime(i), MIN);
        }
        assert_eq!(h.values(), MAX_VALUES_PER_GROUP);
        let t = EventTime(1000);
        assert_eq!(h.read("u", Some("0"), t, MIN).seen, Some(false));
        assert_eq!(h.read("u", Some("1"), t, MIN).seen, Some(true));
    }
}
