//! The core every source shares: one document in, findings and dead letters out, state
//! and rollout counters updated. The file mode and the Kafka mode both drive this.

use crate::event::time::{Day, EventTime};
use crate::event::token::TokenReader;
use crate::event::{self, Event, Reason};
use crate::policy::{self, Evaluation, Finding, Policy};
use crate::sink::{redact, AgentRow, DeadLetter, RolloutRow, RowSink};
use crate::state::{DayStats, Readiness, State, TenantState};
use crate::telemetry::Metrics;
use std::sync::Arc;

/// Where a document came from.
#[derive(Clone, Copy)]
pub struct Origin<'a> {
    /// The input (`stdin`, a path, a topic).
    pub source: &'a str,
    /// Where in it (`line 12`, `partition 2 offset 991`).
    pub position: &'a dyn std::fmt::Display,
}

/// What one document produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DocOutcome {
    /// Events applied.
    pub events: u32,
    /// Findings written.
    pub findings: u32,
    /// Dead letters written.
    pub dead_letters: u32,
    /// Events skipped as replays.
    pub duplicates: u32,
}

/// The rule engine with its state.
pub struct Processor {
    policy: Arc<Policy>,
    version: Arc<str>,
    state: State,
    tokens: TokenReader,
    metrics: Arc<Metrics>,
    replay_window_days: i64,
    newest_event: std::sync::atomic::AtomicI64,
}

impl Processor {
    /// A processor with empty state.
    pub fn new(policy: Arc<Policy>, tokens: TokenReader, metrics: Arc<Metrics>) -> Self {
        let version = Arc::from(policy.version.as_str());
        // Every rule's findings series exists from the start at 0: Prometheus' increase()
        // sees nothing in a counter whose first sample is already 1.
        for rule in &policy.rules {
            for enforced in ["true", "false"] {
                for excepted in ["true", "false"] {
                    let _ = metrics.findings.get_metric_with_label_values(&[
                        &rule.id,
                        rule.severity.name(),
                        rule.surface.name(),
                        enforced,
                        excepted,
                    ]);
                }
            }
        }
        Self {
            policy,
            version,
            state: State::new(),
            tokens,
            metrics,
            replay_window_days: crate::state::DEFAULT_REPLAY_WINDOW_DAYS,
            newest_event: std::sync::atomic::AtomicI64::new(i64::MIN),
        }
    }

    /// Sets how many days back a repeated event id is recognised as a replay.
    pub fn with_replay_window_days(mut self, days: i64) -> Self {
        self.replay_window_days = days.max(0);
        self
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Processes one document (bytes as framed; `oversized` when cut at the size limit).
    pub fn process<S: RowSink>(
        &self,
        origin: Origin<'_>,
        bytes: &[u8],
        oversized: Option<usize>,
        sink: &mut S,
    ) -> Result<DocOutcome, S::Error> {
        self.process_observed(origin, bytes, oversized, sink, &mut |_| {})
    }

    /// [`Processor::process`], telling `on_tenant` the tenant of every event applied.
    pub fn process_observed<S: RowSink>(
        &self,
        origin: Origin<'_>,
        bytes: &[u8],
        oversized: Option<usize>,
        sink: &mut S,
        on_tenant: &mut dyn FnMut(&str),
    ) -> Result<DocOutcome, S::Error> {
        self.metrics.documents.inc();
        let mut out = DocOutcome::default();
        if let Some(len) = oversized {
            let bad = event::BadDocument {
                reason: Reason::Oversized,
                detail: format!("{len} bytes"),
            };
            self.dead_letter(origin, None, &bad, &redact::excerpt_bytes(bytes), sink)?;
            out.dead_letters += 1;
            return Ok(out);
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let bad = event::BadDocument {
                    reason: Reason::NotJson,
                    detail: format!("not UTF-8 at byte {}", e.valid_up_to()),
                };
                self.dead_letter(origin, None, &bad, &redact::excerpt_bytes(bytes), sink)?;
                out.dead_letters += 1;
                return Ok(out);
            }
        };
        for item in event::decode(text, &self.tokens) {
            match item.event {
                Err(bad) => {
                    self.dead_letter(origin, item.record, &bad, &redact::excerpt(item.raw), sink)?;
                    out.dead_letters += 1;
                }
                Ok(ev) => {
                    let Some(findings) = self.apply(&ev) else {
                        out.duplicates += 1;
                        continue;
                    };
                    out.events += 1;
                    on_tenant(ev.tenant_id());
                    for f in &findings {
                        sink.finding(f)?;
                    }
                    out.findings += findings.len() as u32;
                }
            }
        }
        Ok(out)
    }

    fn dead_letter<S: RowSink>(
        &self,
        origin: Origin<'_>,
        record: Option<usize>,
        bad: &event::BadDocument,
        excerpt: &str,
        sink: &mut S,
    ) -> Result<(), S::Error> {
        crate::telemetry::inc(&self.metrics.dead_letters, &[bad.reason.code()]);
        let position = match record {
            Some(i) => format!("{} record {i}", origin.position),
            None => origin.position.to_string(),
        };
        tracing::debug!(source = origin.source, %position, reason = bad.reason.code(), "dead letter");
        sink.dead_letter(&DeadLetter {
            source: origin.source.to_owned(),
            position,
            reason: bad.reason_text(),
            excerpt: excerpt.to_owned(),
        })
    }

    /// Evaluates and applies one event; `None` when it is a replay of one already applied.
    pub fn apply(&self, ev: &Event<'_>) -> Option<Vec<Finding>> {
        let mut tenant = self.state.tenant_mut(ev.tenant_id());
        if !tenant.first_sighting(ev.kind(), ev.event_id(), ev.time(), self.replay_window_days) {
            self.metrics.duplicates.inc();
            return None;
        }
        if let Some(c) = self.metrics.event_counter(ev.kind_index()) {
            c.inc();
        }
        self.newest_event
            .fetch_max(ev.time().0, std::sync::atomic::Ordering::Relaxed);
        let eval = policy::evaluate(&self.policy, &self.version, ev, &tenant);
        apply_to_state(&self.policy, ev, &eval, &mut tenant);
        drop(tenant);
        for s in &eval.skipped {
            crate::telemetry::inc(&self.metrics.not_applicable, &[s.condition.name()]);
        }
        for f in &eval.findings {
            crate::telemetry::inc(
                &self.metrics.findings,
                &[
                    &f.rule_id,
                    f.severity.name(),
                    f.surface.name(),
                    bool_label(f.enforced),
                    bool_label(f.excepted),
                ],
            );
        }
        Some(eval.findings)
    }

    /// The rollout rows of every tenant and day, sorted by (tenant, day).
    pub fn rollout_rows(&self) -> Vec<RolloutRow> {
        self.rollout_rows_for(&self.state.tenant_ids())
    }

    /// The rollout rows of some tenants, every day, in the order given.
    pub fn rollout_rows_for(&self, tenants: &[String]) -> Vec<RolloutRow> {
        let mut rows = Vec::new();
        for id in tenants {
            self.state.with_tenant(id, |t| {
                for (day, stats) in &t.days {
                    let window = window_stats(t, *day);
                    rows.push(RolloutRow::new(
                        id,
                        *day,
                        &self.policy.version,
                        stats,
                        stats.readiness(&self.policy, *day),
                        window.readiness(&self.policy, *day),
                        t.applied,
                    ));
                }
            });
        }
        rows
    }

    /// The agents rows: every user who holds or held a partner role, sorted.
    pub fn agent_rows(&self) -> Vec<AgentRow> {
        self.agent_rows_for(&self.state.tenant_ids())
    }

    /// The agents rows of some tenants.
    pub fn agent_rows_for(&self, tenants: &[String]) -> Vec<AgentRow> {
        let mut rows = Vec::new();
        for id in tenants {
            self.state.with_tenant(id, |t| {
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
                        policy_version: self.policy.version.clone(),
                        version: t.applied,
                    });
                }
            });
        }
        rows
    }

    /// Writes the current rollout and agents rows, and refreshes the state gauges.
    pub fn snapshot<S: RowSink>(&self, sink: &mut S) -> Result<(), S::Error> {
        self.refresh_size_gauges();
        sink.snapshot(&self.rollout_rows(), &self.agent_rows())
    }

    /// The token cache counters and the state size gauges.
    fn refresh_size_gauges(&self) {
        let (hits, misses) = self.tokens.stats();
        self.metrics.observe_token_cache(hits, misses);
        let (tenants, users, sessions) = self.state.size();
        self.metrics.state_tenants.set(tenants as i64);
        self.metrics.state_users.set(users as i64);
        self.metrics.state_sessions.set(sessions as i64);
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
        let mut min_share: [Option<f64>; 3] = [None; 3];
        let mut overdue = 0i64;
        for r in self.readiness() {
            by_status[r.status_7d as usize] += 1;
            overdue += i64::from(r.window.exceptions_overdue);
            let at = r.day.start();
            let shares = [
                (policy::Surface::Api, r.window.api_mfa_share()),
                (policy::Surface::Dashboard, r.window.dashboard_mfa_share()),
                (
                    policy::Surface::DelegatedAdmin,
                    r.window.delegated_admin_mfa_share(),
                ),
            ];
            for (i, (surface, share)) in shares.into_iter().enumerate() {
                if let (true, Some(v)) = (self.policy.is_enforced(surface, at), share) {
                    min_share[i] = Some(min_share[i].map_or(v, |m: f64| m.min(v)));
                }
            }
        }
        for (i, status) in ["ready", "at_risk", "blocked"].iter().enumerate() {
            self.metrics
                .tenants
                .with_label_values(&[status])
                .set(by_status[i]);
        }
        for (i, surface) in ["api", "dashboard", "delegated_admin"].iter().enumerate() {
            if let Some(v) = min_share[i] {
                self.metrics
                    .tenant_mfa_share_min
                    .with_label_values(&[surface])
                    .set(v);
            }
        }
        self.metrics.exceptions_overdue.set(overdue);
    }

    /// One line per tenant: readiness as of its newest event.
    pub fn readiness(&self) -> Vec<TenantReadiness> {
        let mut out = Vec::new();
        for id in self.state.tenant_ids() {
            self.state.with_tenant(&id, |t| {
                let Some((&day, stats)) = t.days.iter().next_back() else {
                    return;
                };
                let window = window_stats(t, day);
                out.push(TenantReadiness {
                    tenant_id: id.clone(),
                    day,
                    status: stats.readiness(&self.policy, day),
                    status_7d: window.readiness(&self.policy, day),
                    window,
                    next_enforcement: self.next_enforcement(t.watermark),
                });
            });
        }
        out
    }

    fn next_enforcement(&self, now: EventTime) -> Option<(policy::Surface, i64)> {
        policy::Surface::ALL
            .into_iter()
            .filter_map(|s| self.policy.enforced_from(s).map(|d| (s, d)))
            .filter(|(_, d)| *d > now)
            .min_by_key(|(_, d)| *d)
            .map(|(s, d)| (s, d.day().0 - now.day().0))
    }
}

/// A tenant's readiness line.
#[derive(Debug, Clone)]
pub struct TenantReadiness {
    /// Tenant.
    pub tenant_id: String,
    /// The newest day with events.
    pub day: Day,
    /// Readiness that day.
    pub status: Readiness,
    /// Readiness over the 7 days ending that day.
    pub status_7d: Readiness,
    /// The 7 days' counters.
    pub window: DayStats,
    /// The next surface to be enforced after the newest event, and in how many days.
    pub next_enforcement: Option<(policy::Surface, i64)>,
}

fn window_stats(t: &TenantState, day: Day) -> DayStats {
    let mut w = DayStats::default();
    for (_, s) in t.days.range(day.plus(-6)..=day) {
        w.merge(s);
    }
    w
}

fn bool_label(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// Applies an event's facts to its tenant's state, then counts it into its day.
fn apply_to_state(policy: &Policy, ev: &Event<'_>, eval: &Evaluation, t: &mut TenantState) {
    match ev {
        Event::SignIn(s) => {
            if let Some(user) = s.props.user_id.as_deref().filter(|u| !u.trim().is_empty()) {
                let mfa = match eval.tally {
                    crate::state::Tally::SignIn { mfa, .. } => mfa,
                    _ => policy::eval_sign_in_mfa(policy, s),
                };
                let session = policy::eval_starts_pc_session(policy, s)
                    .then_some(s.props.session_id.as_deref());
                t.apply_sign_in(
                    user,
                    s.props.user_principal_name.as_deref(),
                    s.props.user_type.as_deref(),
                    s.time,
                    mfa,
                    session,
                );
            }
        }
        Event::Role(r) => t.apply_role(
            policy,
            &r.user_id,
            r.upn.as_deref(),
            r.user_type.as_deref(),
            r.role,
            r.action,
        ),
        Event::Registration(r) => {
            let methods: Vec<&str> = r.methods.iter().map(|m| &**m).collect();
            t.apply_registration(policy, &r.user_id, r.registered, &methods);
        }
        Event::Exception(e) => t.apply_exception(
            &e.exception_id,
            e.status,
            &e.reason,
            e.users
                .as_ref()
                .map(|v| v.iter().map(|u| u.to_string()).collect()),
            e.expires_at,
            e.time,
        ),
        Event::Api(_) | Event::Dashboard(_) => {}
    }
    t.tally(policy, ev.time(), &eval.tally, &eval.findings);
}
