//! The exception counts a day's rollout row carries (open, overdue, approved in force),
//! kept up to date as exceptions change instead of walking every exception per event.
//!
//! - open: a running count of exceptions whose status is `requested`;
//! - overdue on day `d`: requested ones whose response is due before `d`, a prefix sum
//!   over their due days;
//! - approved on day `d`: approved ones, less those whose window ended by `d`'s start, a
//!   prefix sum over the first day each no longer counts.
//!
//! The prefix sums are Fenwick trees over the day numbers (sparse: only the nodes on the
//! paths of days in use exist), so an exception change or a day's counts cost
//! O(log days), about 28 steps; the counts of the last day asked are kept until an
//! exception changes, so the events of one day cost O(1). It is derived from the
//! exceptions, never stored in a snapshot: it is rebuilt on first use after a restore.

use super::tenant::{add_business_days, Directory};
use crate::event::time::Day;
use crate::event::time::EventTime;
use crate::event::ExceptionStatus;
use foldhash::HashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A technical exception as its events left it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExceptionState {
    /// Current status.
    pub status: ExceptionStatus,
    /// Reason id, lower-cased.
    pub reason: String,
    /// Users it is limited to (ids or UPNs, lower-cased); `None`: the whole tenant.
    pub users: Option<Vec<String>>,
    /// When it was requested.
    pub requested_at: Option<EventTime>,
    /// When it was approved (the start of its window).
    pub approved_at: Option<EventTime>,
    /// When it ends (`expiresAt`, or the time of an `expired`/`rejected` event).
    pub ends_at: Option<EventTime>,
}

impl ExceptionState {
    pub(super) fn covers_user(&self, user_id: &str, upn: &str) -> bool {
        match &self.users {
            None => true,
            Some(list) => list.iter().any(|u| {
                (!user_id.is_empty() && u.eq_ignore_ascii_case(user_id))
                    || (!upn.is_empty() && u.eq_ignore_ascii_case(upn))
            }),
        }
    }

    pub(super) fn in_window(&self, t: EventTime) -> bool {
        self.approved_at.is_some_and(|a| a <= t) && self.ends_at.is_none_or(|e| t < e)
    }
}

/// Day numbers are shifted by this much into the tree's domain `1..=DOMAIN` (event times
/// are i64 microseconds: about ±106.8 million days).
const OFFSET: i64 = 1 << 27;
const DOMAIN: u32 = 1 << 28;

/// A multiset of days answering "how many are at or before `d`", in O(log days).
#[derive(Debug, Default, Clone)]
struct DayCounts {
    tree: HashMap<u32, i64>,
}

fn index(d: Day) -> u32 {
    // INVARIANT: clamped into 1..=DOMAIN, so the cast is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = d.0.saturating_add(OFFSET).clamp(1, i64::from(DOMAIN)) as u32;
    i
}

impl DayCounts {
    fn add(&mut self, d: Day, n: i64, work: &mut u64) {
        let mut i = index(d);
        while i <= DOMAIN {
            *work += 1;
            let slot = self.tree.entry(i).or_insert(0);
            *slot += n;
            if *slot == 0 {
                self.tree.remove(&i);
            }
            i += i & i.wrapping_neg();
        }
    }

    /// How many days at or before `d`.
    fn up_to(&self, d: Day, work: &mut u64) -> i64 {
        if self.tree.is_empty() {
            return 0;
        }
        let mut i = index(d);
        let mut sum = 0;
        while i > 0 {
            *work += 1;
            sum += self.tree.get(&i).copied().unwrap_or(0);
            i &= i - 1;
        }
        sum
    }
}

/// What one exception adds to the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Requested; due on that day when it has a request time.
    Open(Option<Day>),
    /// Approved; no longer counted from that day on when it has an end.
    Approved(Option<Day>),
    /// Rejected or expired: counted nowhere.
    None,
}

fn part(e: &ExceptionState, dir: &Directory) -> Part {
    match e.status {
        ExceptionStatus::Requested => Part::Open(
            e.requested_at
                .map(|r| add_business_days(r.day(), dir.exception_response_business_days)),
        ),
        ExceptionStatus::Approved => Part::Approved(e.ends_at.map(|x| {
            // Counted on day `d` while `x > d.start()`: up to `x`'s day, or the day
            // before when `x` is that day's midnight.
            if x == x.day().start() {
                x.day()
            } else {
                x.day().plus(1)
            }
        })),
        ExceptionStatus::Rejected | ExceptionStatus::Expired => Part::None,
    }
}

/// The running exception counts of one tenant (under one policy's directory).
#[derive(Debug, Default, Clone)]
pub(super) struct ExceptionIndex {
    /// Built from the exceptions (false after a restore until first used).
    ready: bool,
    open: i64,
    approved: i64,
    due: DayCounts,
    ends: DayCounts,
    /// The last day asked and its counts (cleared when an exception changes).
    last: Option<(Day, (u32, u32, u32))>,
    /// Exceptions visited and tree steps taken, for tests that count work.
    work: u64,
}

impl PartialEq for ExceptionIndex {
    /// Derived from the exceptions: two states are equal whatever their index holds.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl ExceptionIndex {
    fn apply(&mut self, p: Part, sign: i64) {
        match p {
            Part::Open(due) => {
                self.open += sign;
                if let Some(d) = due {
                    self.due.add(d, sign, &mut self.work);
                }
            }
            Part::Approved(end) => {
                self.approved += sign;
                if let Some(d) = end {
                    self.ends.add(d, sign, &mut self.work);
                }
            }
            Part::None => {}
        }
    }

    fn ensure(&mut self, exceptions: &BTreeMap<String, ExceptionState>, dir: &Directory) {
        if self.ready {
            return;
        }
        let work = self.work;
        *self = ExceptionIndex {
            ready: true,
            work,
            ..ExceptionIndex::default()
        };
        for e in exceptions.values() {
            self.work += 1;
            self.apply(part(e, dir), 1);
        }
    }

    /// Takes out an exception's part before it changes (`None`: a new one).
    pub(super) fn before_change(
        &mut self,
        exceptions: &BTreeMap<String, ExceptionState>,
        dir: &Directory,
        id: &str,
    ) {
        self.ensure(exceptions, dir);
        self.last = None;
        if let Some(e) = exceptions.get(id) {
            self.apply(part(e, dir), -1);
        }
    }

    /// Puts its part back after the change.
    pub(super) fn after_change(&mut self, e: &ExceptionState, dir: &Directory) {
        self.apply(part(e, dir), 1);
    }

    /// Open, approved (in force) and overdue exceptions as counted on `day`.
    pub(super) fn counts(
        &mut self,
        exceptions: &BTreeMap<String, ExceptionState>,
        dir: &Directory,
        day: Day,
    ) -> (u32, u32, u32) {
        if exceptions.is_empty() {
            return (0, 0, 0);
        }
        self.ensure(exceptions, dir);
        if let Some((d, c)) = self.last {
            if d == day {
                return c;
            }
        }
        let clamp = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        let open = clamp(self.open);
        let overdue = clamp(self.due.up_to(day.plus(-1), &mut self.work));
        let approved = clamp(self.approved - self.ends.up_to(day, &mut self.work));
        let c = (open, approved, overdue);
        self.last = Some((day, c));
        c
    }

    /// Exceptions visited and tree steps taken so far.
    pub(super) fn work(&self) -> u64 {
        self.work
    }
}
