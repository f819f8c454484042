//! The core every source shares: one document in, findings and dead letters out, state
//! and rollout counters updated. The file mode and the Kafka mode both drive this.

use crate::event::time::{Day, EventTime};
use crate::event::token::TokenReader;
use crate::event::{self, Event, Reason};
use crate::policy::{self, Evaluation, Finding, Policy};
use crate::sink::rows::{DayStats, SurfaceRow};
use crate::sink::{redact, AgentRow, DeadLetter, RolloutRow, RowSink};
use crate::state::{DayCounters, Readiness, State, TenantState};
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

/// One policy version with the state kept for it. Each policy keeps its own state, so
/// that several policies in one pass write exactly the rows of separate runs.
pub struct Engine {
    policy: Arc<Policy>,
    version: Arc<str>,
    state: State,
}

impl Engine {
    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The state kept for it.
    pub fn state(&self) -> &State {
        &self.state
    }
}

/// The rule engine with its state: one [`Engine`] per policy chosen; each event is
/// decoded once and evaluated under every one.
pub struct Processor {
    engines: Vec<Engine>,
    /// The shipped policies not chosen (parsed once per process, at the first
    /// `policy_override`): one naming them is checked against its policy, counted, and
    /// has no effect.
    others: std::sync::OnceLock<Vec<&'static Policy>>,
    /// The tenant of records that carry none (a Graph `signIn` export of one tenant).
    default_tenant: Option<String>,
    tokens: TokenReader,
    metrics: Arc<Metrics>,
    replay_window_days: i64,
    newest_event: std::sync::atomic::AtomicI64,
}

impl Processor {
    /// A processor with empty state, under one policy.
    pub fn new(policy: Arc<Policy>, tokens: TokenReader, metrics: Arc<Metrics>) -> Self {
        Self::with_policies(vec![policy], tokens, metrics)
    }

    /// A processor with empty state, under every policy given (in that order; rows of
    /// one event are written policy by policy).
    pub fn with_policies(
        policies: Vec<Arc<Policy>>,
        tokens: TokenReader,
        metrics: Arc<Metrics>,
    ) -> Self {
        // Every rule's findings series exists from the start at 0: Prometheus' increase()
        // sees nothing in a counter whose first sample is already 1.
        for policy in &policies {
            for rule in &policy.rules {
                for enforced in ["true", "false"] {
                    for excepted in ["true", "false"] {
                        let _ = metrics.findings.get_metric_with_label_values(&[
                            &rule.id,
                            rule.severity.name(),
                            &rule.surface_name,
                            enforced,
                            excepted,
                            &policy.version,
                        ]);
                    }
                }
            }
        }
        let engines: Vec<Engine> = policies
            .into_iter()
            .map(|policy| Engine {
                version: Arc::from(policy.version.as_str()),
                policy,
                state: State::new(),
            })
            .collect();
        Self {
            engines,
            others: std::sync::OnceLock::new(),
            default_tenant: None,
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

    /// Sets the tenant of records that carry none (`--tenant`): a Microsoft Graph `signIn`
    /// export from one tenant's API has no tenant id.
    pub fn with_default_tenant(mut self, tenant: Option<String>) -> Self {
        self.default_tenant = tenant.filter(|t| !t.trim().is_empty());
        self
    }

    /// The first policy chosen.
    pub fn policy(&self) -> &Policy {
        // INVARIANT: `with_policies` is never given an empty list (the CLI and the
        // configuration default to one policy).
        #[allow(clippy::indexing_slicing)]
        &self.engines[0].policy
    }

    /// The engines, one per policy, in the order chosen.
    pub fn engines(&self) -> &[Engine] {
        &self.engines
    }

    /// Serialises some tenants' state under every policy (a snapshot).
    pub fn snapshot_json(&self, tenant_ids: &[String]) -> Result<String, serde_json::Error> {
        let mut parts = Vec::with_capacity(self.engines.len());
        for e in &self.engines {
            // Each engine's state is embedded as it was written, not parsed again.
            let state =
                serde_json::value::RawValue::from_string(e.state.snapshot_json(tenant_ids)?)?;
            parts.push((e.version.to_string(), state));
        }
        serde_json::to_string(&Snapshot {
            format: SNAPSHOT_FORMAT,
            policies: parts,
        })
    }

    /// Restores tenants from a snapshot; returns their ids. A snapshot without the state
    /// of one of the chosen policies fails: its rows would restart from nothing.
    pub fn restore_json(&self, json: &str) -> Result<Vec<String>, SnapshotError> {
        let snap: Snapshot<&serde_json::value::RawValue> =
            serde_json::from_str(json).map_err(SnapshotError::Json)?;
        if snap.format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Format(snap.format));
        }
        let mut ids = std::collections::BTreeSet::new();
        for e in &self.engines {
            let Some((_, state)) = snap.policies.iter().find(|(v, _)| **v == *e.version) else {
                return Err(SnapshotError::MissingPolicy(e.version.to_string()));
            };
            ids.extend(
                e.state
                    .restore_json(state.get())
                    .map_err(SnapshotError::Json)?,
            );
        }
        Ok(ids.into_iter().collect())
    }

    /// Drops a tenant's state under every policy (its partition moved elsewhere).
    pub fn take_tenant(&self, tenant_id: &str) {
        for e in &self.engines {
            e.state.take_tenant(tenant_id);
        }
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
        for item in event::decode_with(text, &self.tokens, self.default_tenant.as_deref()) {
            let checked = item
                .event
                .and_then(|ev| self.check_override(&ev).map(|()| ev));
            match checked {
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

    /// Decodes and applies one document as [`Processor::process`] does (state included),
    /// and returns, for each event whose id `wanted` accepts, what every rule of every
    /// policy read and decided (`explain`). Bad documents are only counted.
    pub fn explain_document(&self, bytes: &[u8], wanted: &dyn Fn(&str) -> bool) -> Vec<Explained> {
        self.metrics.documents.inc();
        let mut out = Vec::new();
        let Ok(text) = std::str::from_utf8(bytes) else {
            return out;
        };
        for item in event::decode_with(text, &self.tokens, self.default_tenant.as_deref()) {
            let Ok(ev) = item.event else {
                continue;
            };
            if self.check_override(&ev).is_err() {
                continue;
            }
            let want = wanted(ev.event_id());
            let mut traces = Vec::new();
            let applied = self.apply_traced(&ev, want.then_some(&mut traces));
            if want {
                out.push(Explained {
                    event_id: ev.event_id().to_owned(),
                    kind: ev.kind(),
                    tenant_id: ev.tenant_id().to_owned(),
                    time: ev.time(),
                    replay: applied.is_none(),
                    traces,
                });
            }
        }
        out
    }

    /// A `policy_override` is checked against its policy, chosen or shipped: the policy
    /// and surface must exist, the surface must allow postponing, and the date must not
    /// pass its `postpone_until`. Other events pass.
    fn check_override(&self, ev: &Event<'_>) -> Result<(), event::BadDocument> {
        let Event::Override(o) = ev else {
            return Ok(());
        };
        let reject =
            |detail: String| Err(event::BadDocument::new(Reason::OverrideRejected, detail));
        let name = o.policy.trim();
        let chosen = self.engines.iter().find(|e| &*e.version == name);
        let others = self.others.get_or_init(|| {
            policy::shipped()
                .iter()
                .filter(|p| !self.engines.iter().any(|e| *e.version == *p.version))
                .collect()
        });
        let Some(policy) = chosen
            .map(|e| &*e.policy)
            .or_else(|| others.iter().copied().find(|p| p.version == name))
        else {
            let mut known: Vec<&str> = self.engines.iter().map(|e| &*e.version).collect();
            known.extend(others.iter().map(|p| p.version.as_str()));
            return reject(format!(
                "unknown policy `{}` (known: {})",
                shown(name),
                known.join(", ")
            ));
        };
        let Some(i) = policy.surface(o.surface.trim()) else {
            let names: Vec<&str> = policy.surfaces.iter().map(|s| &*s.name).collect();
            return reject(format!(
                "policy `{name}` has no surface `{}` (surfaces: {})",
                shown(&o.surface),
                names.join(", ")
            ));
        };
        let Some(surface) = policy.surfaces.get(i) else {
            return reject(String::new());
        };
        let Some(limit) = surface.postpone_until else {
            return reject(format!(
                "surface `{}` of policy `{name}` cannot be postponed (no `postpone_until`)",
                surface.name
            ));
        };
        if o.enforced_from > limit {
            return reject(format!(
                "`enforcedFrom` {} is past the latest date policy `{name}` allows for surface `{}` ({})",
                o.enforced_from.day(),
                surface.name,
                limit.day()
            ));
        }
        let outcome = if chosen.is_some() {
            "applied"
        } else {
            "not_chosen"
        };
        crate::telemetry::inc(&self.metrics.overrides, &[name, outcome]);
        Ok(())
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

    /// Evaluates and applies one event under every policy; `None` when it is a replay of
    /// one already applied.
    pub fn apply(&self, ev: &Event<'_>) -> Option<Vec<Finding>> {
        self.apply_traced(ev, None)
    }

    /// [`Processor::apply`], recording under each policy what every rule read (the
    /// evaluator `run` uses, with a trace: `explain`).
    pub fn apply_traced(
        &self,
        ev: &Event<'_>,
        mut traces: Option<&mut Vec<policy::Trace>>,
    ) -> Option<Vec<Finding>> {
        let mut all: Vec<Finding> = Vec::new();
        let mut replay = false;
        for (n, engine) in self.engines.iter().enumerate() {
            let mut tenant = engine.state.tenant_mut(ev.tenant_id());
            if !tenant.first_sighting(ev.kind(), ev.event_id(), ev.time(), self.replay_window_days)
            {
                // Every policy saw the same history: a replay is one under all of them.
                if n == 0 {
                    self.metrics.duplicates.inc();
                }
                replay = true;
                continue;
            }
            if n == 0 {
                if let Some(c) = self.metrics.event_counter(ev.kind_index()) {
                    c.inc();
                }
                if let Event::SignIn(s) = ev {
                    self.metrics
                        .count_sign_in(s.identity(), s.category.as_deref());
                }
                self.newest_event
                    .fetch_max(ev.time().0, std::sync::atomic::Ordering::Relaxed);
            }
            let mut trace = traces.as_ref().map(|_| policy::Trace::default());
            let eval =
                policy::evaluate(&engine.policy, &engine.version, ev, &tenant, trace.as_mut());
            apply_to_state(&engine.policy, ev, &eval, &mut tenant);
            drop(tenant);
            if let (Some(t), Some(out)) = (trace, traces.as_deref_mut()) {
                out.push(t);
            }
            for id in &eval.skipped {
                crate::telemetry::inc(&self.metrics.not_applicable, &[id]);
            }
            for f in &eval.findings {
                crate::telemetry::inc(
                    &self.metrics.findings,
                    &[
                        &f.rule_id,
                        f.severity.name(),
                        &f.surface,
                        bool_label(f.enforced),
                        bool_label(f.excepted),
                        &f.policy_version,
                    ],
                );
            }
            if all.is_empty() {
                all = eval.findings;
            } else {
                all.extend(eval.findings);
            }
        }
        (!replay).then_some(all)
    }

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
                by_status[r.status_7d as usize] += 1;
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
        for (i, status) in ["ready", "at_risk", "blocked"].iter().enumerate() {
            self.metrics
                .tenants
                .with_label_values(&[status])
                .set(by_status[i]);
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

/// The format of a stream-mode state snapshot (`state_snapshots.state`).
const SNAPSHOT_FORMAT: u32 = 2;

/// A stream-mode snapshot: every policy's state, each as its own JSON text.
#[derive(serde::Serialize, serde::Deserialize)]
struct Snapshot<S> {
    format: u32,
    policies: Vec<(String, S)>,
}

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Not a snapshot this release reads.
    #[error("not a state snapshot of this release: {0}")]
    Json(serde_json::Error),
    /// Written by another release.
    #[error("snapshot format {0}, this release reads format {SNAPSHOT_FORMAT}: clear `state_snapshots` and replay the topic from the start")]
    Format(u32),
    /// A chosen policy's state is missing.
    #[error("the snapshot holds no state for policy `{0}`: it was taken with other policies; clear `state_snapshots` and replay, or run with the policies it was taken with")]
    MissingPolicy(String),
}

/// One event as `explain` shows it.
#[derive(Debug)]
pub struct Explained {
    /// The event id.
    pub event_id: String,
    /// Its kind.
    pub kind: &'static str,
    /// Its tenant.
    pub tenant_id: String,
    /// Its time.
    pub time: EventTime,
    /// A replay of an event already applied (no rule ran).
    pub replay: bool,
    /// Per policy, in the order chosen: every rule's trace.
    pub traces: Vec<policy::Trace>,
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

/// A value from the input, cut short for a dead letter's reason.
fn shown(s: &str) -> String {
    s.trim().chars().take(60).collect()
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
    let dir = policy.directory();
    match ev {
        Event::SignIn(s) => {
            if let Some(user) = s.props.user_id.as_deref().filter(|u| !u.trim().is_empty()) {
                let session = eval
                    .starts_pc_session
                    .then_some(s.props.session_id.as_deref());
                let success = s.succeeded() == Some(true) && s.identity() == "user";
                t.apply_sign_in(
                    user,
                    s.props.user_principal_name.as_deref(),
                    s.props.user_type.as_deref(),
                    s.time,
                    (success, eval.sign_in_mfa),
                    session,
                );
            }
        }
        Event::Role(r) => t.apply_role(
            &dir,
            &r.user_id,
            r.upn.as_deref(),
            r.user_type.as_deref(),
            r.role,
            r.action,
        ),
        Event::Registration(r) => {
            let methods: Vec<&str> = r.methods.iter().map(|m| &**m).collect();
            t.apply_registration(&dir, &r.user_id, r.registered, &methods);
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
        // Checked before (`check_override`); it moves a date of its own policy only.
        Event::Override(o) if o.policy.trim() == policy.version => {
            t.apply_override(o.surface.trim(), o.time, o.enforced_from)
        }
        Event::Api(_) | Event::Dashboard(_) | Event::Override(_) => {}
    }
    t.tally(&dir, ev.time(), &eval.tally);
}
