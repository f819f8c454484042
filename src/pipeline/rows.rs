//! What the processor writes besides findings: the rollout, surface and agents rows of
//! every tenant and day, readiness per tenant, and the gauges derived from state.

use super::{Engine, Processor};
use crate::event::time::{Day, EventTime};
use crate::policy::{self, Policy};
use crate::sink::rows::{DayStats, SurfaceRow};
use crate::sink::{AgentRow, RolloutRow, RowSink};
use crate::state::{DayCounters, Readiness, TenantState};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

impl Processor {
    /// The rollout rows of every tenant and day, policy by policy, each sorted by (tenant,
    /// day).
    pub fn rollout_rows(&self) -> Vec<RolloutRow> {
        self.rollout_rows_for(&self.tenant_ids())
    }

    fn tenant_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .engines
            .iter()
            .flat_map(|e| e.state.tenant_ids())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The rollout rows of some tenants, every day, policy by policy, in the order given.
    pub fn rollout_rows_for(&self, tenants: &[String]) -> Vec<RolloutRow> {
        let mut rows = Vec::new();
        for e in self.engines.iter().filter(|e| e.policy.readiness.is_some()) {
            for id in tenants {
                e.state.with_tenant(id, |t| {
                    for (day, counters) in &t.days {
                        rows.push(rollout_row(e, id, t, *day, counters));
                    }
                });
            }
        }
        rows
    }

    /// The rollout rows of the days that changed, policy by policy, tenant by tenant: a
    /// day an event was counted into and the six after it (their 7-day status reads it),
    /// and every day from a `policy_override` on. Rows of other days are as written
    /// before, but for their `version`.
    pub fn rollout_rows_changed(&self, changed: &BTreeMap<String, ChangedDays>) -> Vec<RolloutRow> {
        let mut rows = Vec::new();
        for e in self.engines.iter().filter(|e| e.policy.readiness.is_some()) {
            for (id, c) in changed {
                e.state.with_tenant(id, |t| {
                    for day in c.rollout_days(t) {
                        if let Some(counters) = t.days.get(&day) {
                            rows.push(rollout_row(e, id, t, day, counters));
                        }
                    }
                });
            }
        }
        rows
    }

    /// The `rollout_surfaces` rows of some tenants: every day, every surface with a
    /// share, policy by policy.
    pub fn surface_rows_for(&self, tenants: &[String]) -> Vec<SurfaceRow> {
        let mut rows = Vec::new();
        for e in self.engines.iter().filter(|e| e.policy.readiness.is_some()) {
            for id in tenants {
                e.state.with_tenant(id, |t| {
                    for (day, counters) in &t.days {
                        surface_rows(e, id, t, *day, counters, &mut rows);
                    }
                });
            }
        }
        rows
    }

    /// The `rollout_surfaces` rows of the days that changed: a day an event was counted
    /// into, and every day from a `policy_override` on.
    pub fn surface_rows_changed(&self, changed: &BTreeMap<String, ChangedDays>) -> Vec<SurfaceRow> {
        let mut rows = Vec::new();
        for e in self.engines.iter().filter(|e| e.policy.readiness.is_some()) {
            for (id, c) in changed {
                e.state.with_tenant(id, |t| {
                    for day in c.surface_days(t) {
                        if let Some(counters) = t.days.get(&day) {
                            surface_rows(e, id, t, day, counters, &mut rows);
                        }
                    }
                });
            }
        }
        rows
    }

    /// The agents rows: every user who holds or held a partner role, sorted.
    pub fn agent_rows(&self) -> Vec<AgentRow> {
        self.agent_rows_for(&self.tenant_ids())
    }

    /// The agents rows of some tenants, policy by policy.
    pub fn agent_rows_for(&self, tenants: &[String]) -> Vec<AgentRow> {
        let mut rows = Vec::new();
        for e in self.engines.iter().filter(|e| e.policy.readiness.is_some()) {
            for id in tenants {
                e.state.with_tenant(id, |t| {
                    let mut users: Vec<_> = t.users.iter().filter(|(_, u)| u.ever_role).collect();
                    users.sort_by(|a, b| a.0.cmp(b.0));
                    for (user_id, u) in users {
                        rows.push(AgentRow {
                            tenant_id: id.clone(),
                            user_id: user_id.clone(),
                            upn: u.upn.clone().unwrap_or_default(),
                            user_type: u.user_type.clone().unwrap_or_default(),
                            roles: u.roles.iter().map(|r| r.name()).collect(),
                            mfa_registration: match u.registered {
                                Some(true) => "registered",
                                Some(false) => "unregistered",
                                None => "unknown",
                            },
                            methods_registered: u.methods.clone(),
                            last_sign_in: u.last_sign_in.unwrap_or_default(),
                            last_sign_in_mfa: match u.last_sign_in_mfa {
                                Some(true) => "yes",
                                Some(false) => "no",
                                None => "unknown",
                            },
                            policy_version: e.policy.version.clone(),
                            version: t.applied,
                        });
                    }
                });
            }
        }
        rows
    }

    /// Writes the current rollout, surface and agents rows, and refreshes the state
    /// gauges.
    pub fn snapshot<S: RowSink>(&self, sink: &mut S) -> Result<(), S::Error> {
        self.refresh_size_gauges();
        let tenants = self.tenant_ids();
        sink.snapshot(
            &self.rollout_rows_for(&tenants),
            &self.surface_rows_for(&tenants),
            &self.agent_rows_for(&tenants),
        )
    }

    /// The token cache counters and the state size gauges (of the first policy's state:
    /// every policy keeps the same tenants and users).
    fn refresh_size_gauges(&self) {
        let (hits, misses) = self.tokens.stats();
        self.metrics.observe_token_cache(hits, misses);
        if let Some(e) = self.engines.first() {
            let s = e.state.size();
            let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
            self.metrics.state_tenants.set(n(s.tenants));
            self.metrics.state_users.set(n(s.users));
            self.metrics.state_sessions.set(n(s.sessions));
            self.metrics.replay_ids.set(n(s.replay_ids));
            self.metrics.state_days.set(n(s.days));
        }
    }

    /// Sets the gauges derived from state: sizes, token cache, event-time lag, tenants by
    /// readiness, the lowest enforced MFA share per surface, overdue exceptions.
    pub fn refresh_gauges(&self, now: EventTime) {
        self.refresh_size_gauges();
        let newest = self.newest_event.load(std::sync::atomic::Ordering::Relaxed);
        if newest != i64::MIN {
            self.metrics
                .event_time_lag_seconds
                .set((now.0 - newest) as f64 / 1e6);
        }
        let mut by_status = [0i64; 3];
        let mut min_share: std::collections::BTreeMap<Arc<str>, f64> =
            std::collections::BTreeMap::new();
        let mut overdue = 0i64;
        let first = self.engines.first().map(|e| e.version.clone());
        for r in self.readiness() {
            let Some(e) = self.engines.iter().find(|e| e.version == r.policy_version) else {
                continue;
            };
            if Some(&r.policy_version) == first.as_ref() {
                if let Some(n) = by_status.get_mut(r.status_7d as usize) {
                    *n += 1;
                }
                overdue += i64::from(r.window.exceptions_overdue);
            }
            for (i, s) in e.policy.surfaces.iter().enumerate() {
                if s.share.is_none() || r.enforced & (1 << i) == 0 {
                    continue;
                }
                if let Some(v) = r.window.share(i).share() {
                    let m = min_share.entry(Arc::clone(&s.name)).or_insert(v);
                    *m = m.min(v);
                }
            }
        }
        for (status, n) in ["ready", "at_risk", "blocked"].iter().zip(by_status) {
            self.metrics.tenants.with_label_values(&[status]).set(n);
        }
        for (surface, v) in min_share {
            self.metrics
                .tenant_mfa_share_min
                .with_label_values(&[&surface])
                .set(v);
        }
        self.metrics.exceptions_overdue.set(overdue);
    }

    /// One line per policy and tenant: readiness as of the tenant's newest event.
    pub fn readiness(&self) -> Vec<TenantReadiness> {
        let mut out = Vec::new();
        for e in self.engines.iter().filter(|e| e.policy.readiness.is_some()) {
            for id in e.state.tenant_ids() {
                e.state.with_tenant(&id, |t| {
                    let Some((&day, counters)) = t.days.iter().next_back() else {
                        return;
                    };
                    let window = window_counters(t, day);
                    let enforced = (0..e.policy.surfaces.len().min(64))
                        .filter(|&i| e.policy.is_enforced_for(i, t, day.start()))
                        .fold(0u64, |m, i| m | 1 << i);
                    out.push(TenantReadiness {
                        policy_version: Arc::clone(&e.version),
                        tenant_id: id.clone(),
                        day,
                        status: policy::readiness::status(&e.policy, t, counters, day),
                        status_7d: policy::readiness::status(&e.policy, t, &window, day),
                        window,
                        enforced,
                        next_enforcement: next_enforcement(&e.policy, t),
                    });
                });
            }
        }
        out
    }
}

fn next_enforcement(policy: &Policy, t: &TenantState) -> Option<(Arc<str>, i64)> {
    let now = t.watermark;
    policy
        .surfaces
        .iter()
        .enumerate()
        .filter_map(|(i, s)| policy.enforced_from_for(i, t, now).map(|d| (s, d)))
        .filter(|(_, d)| *d > now)
        .min_by_key(|(_, d)| *d)
        .map(|(s, d)| (Arc::clone(&s.name), d.day().0 - now.day().0))
}

/// A tenant's readiness line.
#[derive(Debug, Clone)]
pub struct TenantReadiness {
    /// The policy version.
    pub policy_version: Arc<str>,
    /// Tenant.
    pub tenant_id: String,
    /// The newest day with events.
    pub day: Day,
    /// Readiness that day.
    pub status: Readiness,
    /// Readiness over the 7 days ending that day.
    pub status_7d: Readiness,
    /// The 7 days' counters.
    pub window: DayCounters,
    /// The surfaces enforced for the tenant that day (bit `i`: surface `i`).
    pub enforced: u64,
    /// The next surface to be enforced after the newest event, and in how many days.
    pub next_enforcement: Option<(Arc<str>, i64)>,
}

fn rollout_row(e: &Engine, id: &str, t: &TenantState, day: Day, c: &DayCounters) -> RolloutRow {
    let window = window_counters(t, day);
    RolloutRow::new(
        id,
        day,
        &e.policy.version,
        &DayStats::from_counters(&e.policy, c),
        policy::readiness::status(&e.policy, t, c, day),
        policy::readiness::status(&e.policy, t, &window, day),
        t.applied,
    )
}

fn surface_rows(
    e: &Engine,
    id: &str,
    t: &TenantState,
    day: Day,
    counters: &DayCounters,
    rows: &mut Vec<SurfaceRow>,
) {
    for (i, s) in e.policy.surfaces.iter().enumerate() {
        if s.share.is_none() {
            continue;
        }
        let c = counters.share(i);
        rows.push(SurfaceRow {
            tenant_id: id.to_owned(),
            day,
            policy_version: e.policy.version.clone(),
            surface: s.name.to_string(),
            enforced: e.policy.is_enforced_for(i, t, day.start()),
            total: c.total,
            mfa: c.mfa,
            excepted: c.excepted,
            mfa_unknown: c.mfa_unknown,
            demanded: c.demanded,
            version: t.applied,
        });
    }
}

/// What an applied event changed in its tenant's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    /// It was counted into this day.
    Day(Day),
    /// A `policy_override`: enforcement may change on every day from this one on.
    From(Day),
}

impl Touch {
    /// What `ev` changes once applied.
    pub fn of(ev: &crate::event::Event<'_>) -> Touch {
        match ev {
            crate::event::Event::Override(o) => Touch::From(o.time.day()),
            _ => Touch::Day(ev.time().day()),
        }
    }
}

/// The days of one tenant whose rows changed since they were last written.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChangedDays {
    days: BTreeSet<Day>,
    from: Option<Day>,
}

/// The days after a changed day whose 7-day window holds it.
const WINDOW_AFTER: i64 = 6;

impl ChangedDays {
    /// Adds what an event changed.
    pub fn mark(&mut self, t: Touch) {
        match t {
            Touch::Day(d) => {
                if self.from.is_none_or(|f| d < f) {
                    self.days.insert(d);
                }
            }
            Touch::From(d) => {
                if self.from.is_none_or(|f| d < f) {
                    self.from = Some(d);
                    self.days.retain(|x| *x < d);
                }
            }
        }
    }

    /// The days of `t` from the override's day on, if one was marked.
    fn overridden(&self, t: &TenantState) -> BTreeSet<Day> {
        match self.from {
            Some(f) => t.days.range(f..).map(|(d, _)| *d).collect(),
            None => BTreeSet::new(),
        }
    }

    /// The days whose rollout rows changed (that `t` has), in order.
    fn rollout_days(&self, t: &TenantState) -> BTreeSet<Day> {
        let mut out = self.overridden(t);
        for d in &self.days {
            out.extend(t.days.range(*d..=d.plus(WINDOW_AFTER)).map(|(d, _)| *d));
        }
        out
    }

    /// The days whose surface rows changed (that `t` has), in order.
    fn surface_days(&self, t: &TenantState) -> BTreeSet<Day> {
        let mut out = self.overridden(t);
        out.extend(self.days.iter().copied());
        out
    }
}

fn window_counters(t: &TenantState, day: Day) -> DayCounters {
    let mut w = DayCounters::default();
    for (_, s) in t.days.range(day.plus(-6)..=day) {
        w.merge(s);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::token::TokenReader;
    use crate::pipeline::Origin;
    use crate::sink::MemorySink;
    use crate::telemetry::Metrics;

    fn processor() -> Processor {
        let p = crate::policy::load("partner-mfa-2020-05").unwrap();
        Processor::new(Arc::new(p), TokenReader::new(100), Arc::new(Metrics::new()))
    }

    /// Feeds documents as the stream does, collecting what changed.
    fn feed(p: &Processor, docs: &[&[u8]], changed: &mut BTreeMap<String, ChangedDays>) {
        for (i, d) in docs.iter().enumerate() {
            let pos = format!("offset {i}");
            let origin = Origin {
                source: "t",
                position: &pos,
            };
            let _ = p.process_observed(
                origin,
                d,
                None,
                &mut MemorySink::default(),
                &mut |t, touch| changed.entry(t.to_owned()).or_default().mark(touch),
            );
        }
    }

    fn dashboard(day: i64) -> String {
        let d = Day(18_383 + day).start().day();
        format!(
            r#"{{"type":"dashboard_request","time":"{}T10:00:00Z","tenantId":"t1","userId":"u1","url":"https://partner.microsoft.com/dashboard/commerce/orders","statusCode":200,"sessionId":"s{day}"}}"#,
            d
        )
    }

    #[test]
    fn one_message_rewrites_the_days_it_changed_not_the_history() {
        // The security review of 2026-12: one message for a tenant with 20,000 days wrote
        // 100,005 rows. Here 2,000 days, then one more message on the newest day.
        let p = processor();
        let history: Vec<String> = (0..2_000).map(dashboard).collect();
        let docs: Vec<&[u8]> = history.iter().map(|s| s.as_bytes()).collect();
        let mut changed = BTreeMap::new();
        feed(&p, &docs, &mut changed);
        assert_eq!(p.rollout_rows_for(&["t1".to_owned()]).len(), 2_000);
        let mut changed = BTreeMap::new();
        let one = dashboard(1_999).replace("s1999", "again");
        feed(&p, &[one.as_bytes()], &mut changed);
        let shares = p
            .policy()
            .surfaces
            .iter()
            .filter(|s| s.share.is_some())
            .count();
        assert_eq!(p.rollout_rows_changed(&changed).len(), 1);
        assert_eq!(p.surface_rows_changed(&changed).len(), shares);
        // An event on an older day rewrites that day and the six whose 7-day window holds it.
        let mut changed = BTreeMap::new();
        let old = dashboard(1_000).replace("s1000", "late");
        feed(&p, &[old.as_bytes()], &mut changed);
        assert_eq!(p.rollout_rows_changed(&changed).len(), 7);
        assert_eq!(p.surface_rows_changed(&changed).len(), shares);
    }

    #[test]
    fn the_rows_of_changed_days_add_up_to_every_row() {
        // Written flush by flush, newest version of each key winning (ClickHouse FINAL),
        // the changed days' rows are every row of the file mode, but for `version`.
        let p = processor();
        let sample = crate::generate::to_vec(&crate::generate::Options::new(5, 3_000, 3));
        let docs: Vec<&[u8]> = sample
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let mut rollout: BTreeMap<(String, Day), RolloutRow> = BTreeMap::new();
        let mut surfaces: BTreeMap<(String, Day, String), SurfaceRow> = BTreeMap::new();
        for chunk in docs.chunks(97) {
            let mut changed = BTreeMap::new();
            feed(&p, chunk, &mut changed);
            for r in p.rollout_rows_changed(&changed) {
                rollout.insert((r.tenant_id.clone(), r.day), r);
            }
            for r in p.surface_rows_changed(&changed) {
                surfaces.insert((r.tenant_id.clone(), r.day, r.surface.clone()), r);
            }
        }
        let strip = |mut r: RolloutRow| {
            r.version = 0;
            r
        };
        let all = p.rollout_rows();
        assert!(all.len() > 10);
        let want: Vec<RolloutRow> = all.into_iter().map(strip).collect();
        let got: Vec<RolloutRow> = rollout.into_values().map(strip).collect();
        assert_eq!(got, want);
        let tenants = p.tenant_ids();
        let want: Vec<SurfaceRow> = p
            .surface_rows_for(&tenants)
            .into_iter()
            .map(|mut r| {
                r.version = 0;
                r
            })
            .collect();
        let mut got: Vec<SurfaceRow> = surfaces
            .into_values()
            .map(|mut r| {
                r.version = 0;
                r
            })
            .collect();
        let order = |r: &SurfaceRow| (r.tenant_id.clone(), r.day, p.policy().surface(&r.surface));
        got.sort_by_key(order);
        let mut want = want;
        want.sort_by_key(order);
        assert_eq!(got, want);
    }
}
