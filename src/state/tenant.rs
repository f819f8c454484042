//! One tenant's state and how each fact changes it.

use super::exceptions::{ExceptionIndex, ExceptionState};
use super::replay::{Replays, Sighting};
use super::rollout::{DayCounters, Tally};
use crate::event::time::{Day, EventTime};
use crate::event::{ExceptionStatus, RoleAction, RoleSet};
use foldhash::HashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A user of the partner tenant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    /// Latest UPN seen.
    pub upn: Option<String>,
    /// `Member` / `Guest`, as last seen.
    pub user_type: Option<String>,
    /// Partner roles held now.
    pub roles: RoleSet,
    /// MFA registered: `None` until a registration row says.
    pub registered: Option<bool>,
    /// Registered methods.
    pub methods: Vec<String>,
    /// Latest sign-in time.
    pub last_sign_in: Option<EventTime>,
    /// Whether that sign-in satisfied MFA.
    pub last_sign_in_mfa: Option<bool>,
    /// Whether the latest successful sign-in satisfied MFA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_mfa: Option<bool>,
    /// Time of that successful sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<EventTime>,
    /// Latest interactive Partner Center sign-in.
    pub pc_session: Option<PcSession>,
    /// Has held a partner role of the policy version (an `agents` row).
    pub ever_role: bool,
    /// Directory roles held (Entra's, from audit records): each as `audit.role_granted`
    /// names it (the template id, else the well-known name, else the display name), in
    /// the order granted; at most [`super::MAX_DIRECTORY_ROLES_PER_USER`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directory_roles: Vec<String>,
    /// Directory roles the user is eligible for (PIM), likewise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eligible_roles: Vec<String>,
    /// The per-user MFA requirement, as the latest audit record that changed it left it;
    /// `None` until one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_user_mfa: Option<bool>,
}

/// What state needs to know of the policy version it is kept for: which roles are
/// partner roles, and how long an exception request may stay open.
#[derive(Debug, Clone, Copy)]
pub struct Directory {
    /// The partner roles.
    pub partner_roles: RoleSet,
    /// Business days an exception request may stay unanswered.
    pub exception_response_business_days: i64,
}

/// An interactive Partner Center sign-in, standing for a dashboard session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PcSession {
    /// When.
    pub time: EventTime,
    /// Its session id, when the export carries one.
    pub session_id: Option<String>,
    /// Whether it completed MFA.
    pub mfa: bool,
}

/// One partner tenant: all of it is in its snapshot.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TenantState {
    /// Users by id (lower-cased).
    pub users: HashMap<String, UserState>,
    /// Exceptions by id.
    pub exceptions: BTreeMap<String, ExceptionState>,
    /// Rollout counters by day.
    pub days: BTreeMap<Day, DayCounters>,
    /// Days before this one were dropped from state once their rows were written (the
    /// stream mode's `pipeline.keep_days`); `None`: every day is held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_from: Option<Day>,
    /// Events applied so far: the version of every row this tenant writes.
    pub applied: u64,
    /// Users holding a partner role of the policy version.
    pub role_users: u32,
    /// Of those, the ones registered for MFA.
    pub role_users_registered: u32,
    /// Newest event time seen.
    pub watermark: EventTime,
    /// Events already applied, by day (days older than the replay window behind the
    /// newest event are dropped). Named apart from format 2's `seen` (unkeyed ids), which
    /// a restore leaves out.
    #[serde(default)]
    replay: Replays,
    /// Enforcement dates this tenant moved (`policy_override` events), in arrival order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<SurfaceOverride>,
    /// The GDAP relationships the partner exported, as last seen.
    #[serde(default, skip_serializing_if = "super::Gdap::is_empty")]
    pub gdap: super::Gdap,
    /// Rules quiet after a finding (`suppress`), by rule and key.
    #[serde(default, skip_serializing_if = "super::Suppressions::is_empty")]
    pub suppressions: super::Suppressions,
    /// Counts over a window (`[windows.NAME]`), by window name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub windows: BTreeMap<String, super::WindowState>,
    /// First-seen histories (`[histories.NAME]`), by history name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub histories: BTreeMap<String, super::HistoryState>,
    /// The exception counts kept up to date (derived from `exceptions`; rebuilt after a
    /// restore).
    #[serde(skip)]
    exception_index: ExceptionIndex,
}

/// A tenant's own enforcement date for one surface of the policy the state is kept for
/// (Microsoft lets a tenant postpone a phase of Azure's mandatory MFA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurfaceOverride {
    /// The surface.
    pub surface: String,
    /// From when the override holds (the event's `time`).
    pub since: EventTime,
    /// The surface's enforcement date for this tenant from then on.
    pub enforced_from: EventTime,
}

/// How many days back a repeated event is recognised as a replay, by default: a month
/// covers overlapping daily or monthly exports. Memory: about 40 bytes per event inside it
/// (its hash, and its id's hash with a day).
pub const DEFAULT_REPLAY_WINDOW_DAYS: i64 = 31;

/// Case-folds an id for use as a key.
pub fn fold(id: &str) -> String {
    id.trim().to_ascii_lowercase()
}

/// Already in folded form (Entra object ids are lower-case GUIDs, so this is the rule).
fn is_folded(id: &str) -> bool {
    !id.bytes().any(|b| b.is_ascii_uppercase())
        && !id.starts_with(char::is_whitespace)
        && !id.ends_with(char::is_whitespace)
}

pub(super) fn set_text(slot: &mut Option<String>, v: Option<&str>) {
    if let Some(v) = v {
        if slot.as_deref() != Some(v) {
            *slot = Some(v.to_owned());
        }
    }
}

impl TenantState {
    /// Records an event (its kind, id and record bytes); whether it was already applied
    /// (a replay) within `window_days` of the newest event, or its id was, with other
    /// content.
    pub fn first_sighting(
        &mut self,
        event: (&str, &str, &[u8]),
        t: EventTime,
        window_days: i64,
    ) -> Sighting {
        let s = self.replay.sighting(event, t, self.watermark, window_days);
        if t > self.watermark {
            self.watermark = t;
        }
        s
    }

    /// Events remembered for replay detection.
    pub fn replay_ids(&self) -> usize {
        self.replay.remembered()
    }

    /// Drops the days more than `keep` days before the newest one (their rows must have
    /// been written); how many were dropped.
    pub fn drop_days(&mut self, keep: i64) -> usize {
        let Some((&newest, _)) = self.days.iter().next_back() else {
            return 0;
        };
        let cut = newest.plus(-keep);
        if self.days.keys().next().is_none_or(|first| *first >= cut) {
            return 0;
        }
        let kept = self.days.split_off(&cut);
        let dropped = std::mem::replace(&mut self.days, kept).len();
        self.days_from = Some(self.days_from.map_or(cut, |f| f.max(cut)));
        dropped
    }

    /// Whether an event of `day` can be applied: its day, and the six after it whose
    /// 7-day window reads it, have every day of their window in state.
    pub fn holds_window_of(&self, day: Day) -> bool {
        self.days_from.is_none_or(|f| day >= f.plus(6))
    }

    /// A user, if known.
    pub fn user(&self, user_id: &str) -> Option<&UserState> {
        if user_id.is_empty() {
            return None;
        }
        self.users
            .get(user_id)
            .or_else(|| self.users.get(&fold(user_id)))
    }

    pub(super) fn user_mut(&mut self, user_id: &str) -> &mut UserState {
        let folded = is_folded(user_id);
        if folded && self.users.contains_key(user_id) {
            // INVARIANT: just checked that the key is present.
            #[allow(clippy::unwrap_used)]
            return self.users.get_mut(user_id).unwrap();
        }
        let key = if folded {
            user_id.to_owned()
        } else {
            fold(user_id)
        };
        self.users.entry(key).or_default()
    }

    /// Whether an approved exception whose reason `reason_covers` accepts covers this
    /// user at `t`.
    pub fn exception_covers(
        &self,
        reason_covers: &dyn Fn(&str) -> bool,
        user_id: &str,
        upn: &str,
        t: EventTime,
    ) -> bool {
        self.exceptions.values().any(|e| {
            e.status == ExceptionStatus::Approved
                && e.in_window(t)
                && reason_covers(&e.reason)
                && e.covers_user(user_id, upn)
        })
    }

    /// Applies a role change.
    pub fn apply_role(
        &mut self,
        dir: &Directory,
        user_id: &str,
        upn: Option<&str>,
        user_type: Option<&str>,
        role: crate::event::Role,
        action: RoleAction,
    ) {
        let before = self.counted(dir, user_id);
        let u = self.user_mut(user_id);
        set_text(&mut u.upn, upn);
        set_text(&mut u.user_type, user_type);
        match action {
            RoleAction::Add => u.roles.insert(role),
            RoleAction::Remove => u.roles.remove(role),
        }
        u.ever_role |= u.roles.intersects(dir.partner_roles);
        self.recount(dir, user_id, before);
    }

    /// Applies a registration snapshot row.
    pub fn apply_registration(
        &mut self,
        dir: &Directory,
        user_id: &str,
        registered: bool,
        methods: &[&str],
    ) {
        let before = self.counted(dir, user_id);
        let u = self.user_mut(user_id);
        u.registered = Some(registered);
        u.methods = methods.iter().map(|m| (*m).to_owned()).collect();
        self.recount(dir, user_id, before);
    }

    /// Records a sign-in; an interactive Partner Center one becomes the user's session.
    pub fn apply_sign_in(
        &mut self,
        user_id: &str,
        upn: Option<&str>,
        user_type: Option<&str>,
        t: EventTime,
        (success, mfa): (bool, bool),
        pc_session: Option<Option<&str>>,
    ) {
        let u = self.user_mut(user_id);
        set_text(&mut u.upn, upn);
        set_text(&mut u.user_type, user_type);
        if u.last_sign_in.is_none_or(|prev| t >= prev) {
            u.last_sign_in = Some(t);
            u.last_sign_in_mfa = Some(mfa);
        }
        if success && u.last_success.is_none_or(|prev| t >= prev) {
            u.last_success = Some(t);
            u.last_success_mfa = Some(mfa);
        }
        if let Some(session_id) = pc_session {
            match &mut u.pc_session {
                Some(s) if t < s.time => {}
                Some(s) => {
                    s.time = t;
                    s.mfa = mfa;
                    if s.session_id.as_deref() != session_id {
                        s.session_id = session_id.map(str::to_owned);
                    }
                }
                None => {
                    u.pc_session = Some(PcSession {
                        time: t,
                        session_id: session_id.map(str::to_owned),
                        mfa,
                    })
                }
            }
        }
    }

    /// Moves a surface's enforcement date for this tenant, for events from `since` on.
    pub fn apply_override(&mut self, surface: &str, since: EventTime, enforced_from: EventTime) {
        self.overrides.push(SurfaceOverride {
            surface: surface.to_owned(),
            since,
            enforced_from,
        });
    }

    /// The tenant's own enforcement date for `surface` at `t`: of the overrides in force
    /// by then, the latest (by `time`, then by arrival). `None`: the policy's date holds.
    pub fn enforced_from_override(&self, surface: &str, t: EventTime) -> Option<EventTime> {
        let mut best: Option<&SurfaceOverride> = None;
        for o in &self.overrides {
            if o.surface == surface && o.since <= t && best.is_none_or(|b| o.since >= b.since) {
                best = Some(o);
            }
        }
        best.map(|o| o.enforced_from)
    }

    /// Applies an exception's status change.
    #[allow(clippy::too_many_arguments)]
    pub fn apply_exception(
        &mut self,
        dir: &Directory,
        exception_id: &str,
        status: ExceptionStatus,
        reason: &str,
        users: Option<Vec<String>>,
        expires_at: Option<EventTime>,
        t: EventTime,
    ) {
        self.exception_index
            .before_change(&self.exceptions, dir, exception_id);
        let e = self
            .exceptions
            .entry(exception_id.to_owned())
            .or_insert_with(|| ExceptionState {
                status,
                reason: fold(reason),
                users: None,
                requested_at: None,
                approved_at: None,
                ends_at: None,
            });
        e.status = status;
        e.reason = fold(reason);
        if users.is_some() {
            e.users = users.map(|v| v.iter().map(|u| fold(u)).collect());
        }
        match status {
            ExceptionStatus::Requested => {
                e.requested_at.get_or_insert(t);
            }
            ExceptionStatus::Approved => {
                e.approved_at = Some(t);
                e.ends_at = expires_at;
            }
            ExceptionStatus::Rejected | ExceptionStatus::Expired => {
                e.ends_at = Some(expires_at.map_or(t, |x| x.min(t)));
            }
        }
        self.exception_index.after_change(e, dir);
    }

    /// Counts the event into its day, with the tenant-wide snapshot as of now.
    pub fn tally(&mut self, dir: &Directory, t: EventTime, tally: &Tally) {
        self.applied += 1;
        let (open, approved, overdue) = self.exception_counts(dir, t.day());
        let d = self.days.entry(t.day()).or_default();
        d.add(tally);
        d.partner_role_users = self.role_users;
        d.partner_role_users_registered = self.role_users_registered;
        d.exceptions_open = open;
        d.exceptions_approved = approved;
        d.exceptions_overdue = overdue;
    }

    fn exception_counts(&mut self, dir: &Directory, day: Day) -> (u32, u32, u32) {
        self.exception_index.counts(&self.exceptions, dir, day)
    }

    /// Exceptions visited and index steps taken to count them so far (tests count work
    /// with it: it grows with exception changes and days, not with events).
    pub fn exception_work(&self) -> u64 {
        self.exception_index.work()
    }

    fn counted(&self, dir: &Directory, user_id: &str) -> (bool, bool) {
        self.user(user_id).map_or((false, false), |u| {
            let role = u.roles.intersects(dir.partner_roles);
            (role, role && u.registered == Some(true))
        })
    }

    fn recount(&mut self, dir: &Directory, user_id: &str, before: (bool, bool)) {
        let after = self.counted(dir, user_id);
        adjust(&mut self.role_users, before.0, after.0);
        adjust(&mut self.role_users_registered, before.1, after.1);
    }
}

fn adjust(n: &mut u32, before: bool, after: bool) {
    match (before, after) {
        (false, true) => *n += 1,
        (true, false) => *n = n.saturating_sub(1),
        _ => {}
    }
}

/// The day `n` business days (Monday to Friday) after `d`.
pub fn add_business_days(d: Day, n: i64) -> Day {
    let mut day = d;
    let mut left = n;
    while left > 0 {
        day = day.plus(1);
        if day.weekday() < 5 {
            left -= 1;
        }
    }
    day
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_days_skip_weekends() {
        // 2020-05-01 was a Friday: three business days later is Wednesday 2020-05-06.
        let fri = EventTime::parse("2020-05-01").unwrap().day();
        assert_eq!(add_business_days(fri, 3).to_string(), "2020-05-06");
        let mon = EventTime::parse("2020-05-04").unwrap().day();
        assert_eq!(add_business_days(mon, 3).to_string(), "2020-05-07");
    }

    #[test]
    fn replays_are_recognised_within_the_window() {
        let mut t = TenantState::default();
        let at = EventTime::parse("2020-05-10").unwrap();
        let raw = &b"{}"[..];
        assert_eq!(t.first_sighting(("k", "a", raw), at, 2), Sighting::New);
        assert_eq!(t.first_sighting(("k", "a", raw), at, 2), Sighting::Replay);
        assert_eq!(
            t.first_sighting(("other", "a", raw), at, 2),
            Sighting::New,
            "ids are per kind"
        );
        let later = EventTime::parse("2020-05-13").unwrap();
        assert_eq!(t.first_sighting(("k", "b", raw), later, 2), Sighting::New);
        assert_eq!(
            t.first_sighting(("k", "a", raw), at, 2),
            Sighting::New,
            "outside the window: applied as new"
        );
    }

    fn dir() -> Directory {
        Directory {
            partner_roles: RoleSet::default(),
            exception_response_business_days: 3,
        }
    }

    /// The counts as the walk over every exception gave them before they were kept up to
    /// date.
    fn walked(t: &TenantState, day: Day) -> (u32, u32, u32) {
        let (mut open, mut approved, mut overdue) = (0, 0, 0);
        for e in t.exceptions.values() {
            match e.status {
                ExceptionStatus::Requested => {
                    open += 1;
                    if let Some(r) = e.requested_at {
                        let due =
                            add_business_days(r.day(), dir().exception_response_business_days);
                        if due < day {
                            overdue += 1;
                        }
                    }
                }
                ExceptionStatus::Approved if e.ends_at.is_none_or(|x| x > day.start()) => {
                    approved += 1
                }
                _ => {}
            }
        }
        (open, approved, overdue)
    }

    #[test]
    fn exception_counts_are_those_of_the_walk_whatever_the_order() {
        let base = EventTime::parse("2020-05-01").unwrap();
        let mut t = TenantState::default();
        let mut x: u64 = 7;
        let mut next = |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        let statuses = [
            ExceptionStatus::Requested,
            ExceptionStatus::Approved,
            ExceptionStatus::Rejected,
            ExceptionStatus::Expired,
        ];
        for step in 0..3000 {
            // Times out of order, some at midnight, over 60 days.
            let at = EventTime(base.0 + (next(60 * 24) as i64 - 10 * 24) * 3_600_000_000);
            let expires = match next(3) {
                0 => None,
                1 => Some(at.day().plus(next(20) as i64).start()),
                _ => Some(EventTime(at.0 + next(400) as i64 * 3_600_000_000)),
            };
            let status = statuses[next(4) as usize];
            let id = format!("e{}", next(200));
            t.apply_exception(&dir(), &id, status, "r", None, expires, at);
            let day = EventTime(base.0 + (next(80) as i64 - 15) * 86_400_000_000).day();
            assert_eq!(
                t.exception_counts(&dir(), day),
                walked(&t, day),
                "step {step}"
            );
            // A restored state rebuilds its index.
            if step % 500 == 0 {
                let json = serde_json::to_string(&t).unwrap();
                t = serde_json::from_str(&json).unwrap();
            }
        }
    }

    #[test]
    fn an_event_does_not_walk_the_open_exception_requests() {
        // The security review of 2026-12: 20k open requests, then 100k events, took 41 s
        // (each event walked every request and counted business days for each).
        let mut t = TenantState::default();
        let start = EventTime::parse("2020-05-01").unwrap();
        for i in 0..20_000 {
            let at = EventTime(start.0 + i * 1_000_000);
            t.apply_exception(
                &dir(),
                &format!("x{i}"),
                ExceptionStatus::Requested,
                "r",
                None,
                None,
                at,
            );
        }
        let changes = t.exception_work();
        for i in 0..100_000i64 {
            // Ten days, events in order within a day, the days interleaved.
            let at = EventTime(start.0 + (i % 10) * 86_400_000_000 + i);
            t.tally(&dir(), at, &Tally::default());
        }
        let per_event = (t.exception_work() - changes) as f64 / 100_000.0;
        // Before: 20,000 exceptions visited per event (2 * 10^9 in all).
        assert!(per_event < 64.0, "{per_event} steps per event");
        let last = t.days.values().next_back().unwrap();
        assert_eq!(last.exceptions_open, 20_000);
        assert_eq!(last.exceptions_overdue, 20_000);
    }
}
