//! What the processor writes besides findings: the rollout, surface and agents rows of
//! every tenant and day, readiness per tenant, and the gauges derived from state.

use super::Processor;
use crate::event::time::{Day, EventTime};
use crate::policy::{self, Policy};
use crate::sink::rows::{DayStats, SurfaceRow};
use crate::sink::{AgentRow, RolloutRow, RowSink};
use crate::state::{DayCounters, Readiness, TenantState};
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
        for e in &self.engines {
            for id in tenants {
                e.state.with_tenant(id, |t| {
                    for (day, counters) in &t.days {
                        let window = window_counters(t, *day);
                        rows.push(RolloutRow::new(
                            id,
                            *day,
                            &e.policy.version,
                            &DayStats::from_counters(&e.policy, counters),
                            policy::readiness::status(&e.policy, t, counters, *day),
                            policy::readiness::status(&e.policy, t, &window, *day),
                            t.applied,
                        ));
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
        for e in &self.engines {
            for id in tenants {
                e.state.with_tenant(id, |t| {
                    for (day, counters) in &t.days {
                        for (i, s) in e.policy.surfaces.iter().enumerate() {
                            if s.share.is_none() {
                                continue;
                            }
                            let c = counters.share(i);
                            rows.push(SurfaceRow {
                                tenant_id: id.clone(),
                                day: *day,
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
        for e in &self.engines {
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
            let (tenants, users, sessions) = e.state.size();
            self.metrics.state_tenants.set(tenants as i64);
            self.metrics.state_users.set(users as i64);
            self.metrics.state_sessions.set(sessions as i64);
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
        for e in &self.engines {
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

fn window_counters(t: &TenantState, day: Day) -> DayCounters {
    let mut w = DayCounters::default();
    for (_, s) in t.days.range(day.plus(-6)..=day) {
        w.merge(s);
    }
    w
}
