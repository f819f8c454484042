//! The core every source shares: one document in, findings and dead letters out, state
//! and rollout counters updated. The file mode and the Kafka mode both drive this.
//!
//! - this file: the [`Processor`]: decoding, checking and applying events under every
//!   policy chosen;
//! - [`apply`]: what an event changes in its tenant's state;
//! - [`rows`]: the rollout, surface and agents rows, readiness, and the state gauges;
//! - [`snapshot`]: a stream-mode snapshot of every policy's state;
//! - [`parallel`]: the file mode on every core, sharded by tenant.

mod apply;
mod explain;
mod limits;
pub mod parallel;
mod rows;
mod snapshot;
#[cfg(test)]
mod tests;

pub use rows::{ChangedDays, TenantReadiness, Touch};
pub use snapshot::SnapshotError;

use crate::event::scrub as redact;
use crate::event::time::EventTime;
use crate::event::token::TokenReader;
use crate::event::{self, Event, Reason};
use crate::policy::{self, Finding, Policy};
use crate::sink::{DeadLetter, RowSink};
use crate::state::{Sighting, State};
use crate::telemetry::Metrics;
use apply::apply_to_state;
pub use explain::Explained;
pub use limits::Limits;
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
    /// Records of a category no rule judges (counted by category, never judged).
    pub skipped: u32,
}

/// What a run read and did: documents, and their outcomes summed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Documents read.
    pub documents: u64,
    /// Events applied.
    pub events: u64,
    /// Findings written.
    pub findings: u64,
    /// Dead letters written.
    pub dead_letters: u64,
    /// Replays skipped.
    pub duplicates: u64,
    /// Records of a category no rule judges.
    pub skipped: u64,
}

impl Totals {
    /// Adds what one document (or one of its steps) produced.
    pub fn add(&mut self, o: DocOutcome) {
        self.events += u64::from(o.events);
        self.findings += u64::from(o.findings);
        self.dead_letters += u64::from(o.dead_letters);
        self.duplicates += u64::from(o.duplicates);
        self.skipped += u64::from(o.skipped);
    }

    /// Adds another run's (or chunk's) totals.
    pub fn add_all(&mut self, t: &Totals) {
        self.documents += t.documents;
        self.events += t.events;
        self.findings += t.findings;
        self.dead_letters += t.dead_letters;
        self.duplicates += t.duplicates;
        self.skipped += t.skipped;
    }
}

/// One item of a document, decoded and checked ([`Processor::decode_steps`]). Not boxed,
/// as [`Event`] is not: a box would cost an allocation per sign-in.
#[allow(clippy::large_enum_variant)]
pub enum Step<'a> {
    /// An event to apply, with its record's bytes (its content, for replay detection) and
    /// its index in a batch (`None` for a lone document).
    Event(Event<'a>, &'a str, Option<usize>),
    /// A dead letter to write.
    Bad(BadStep),
}

/// A dead letter waiting to be written.
pub struct BadStep {
    /// Index of the record in a batch (`None` for a lone document).
    pub record: Option<usize>,
    /// Why.
    pub bad: event::BadDocument,
    /// The document's redacted excerpt.
    pub excerpt: String,
}

impl Step<'_> {
    fn bad(record: Option<usize>, bad: event::BadDocument, excerpt: String) -> Self {
        Step::Bad(BadStep {
            record,
            bad,
            excerpt,
        })
    }

    /// The tenant whose state the step changes (none for a dead letter).
    pub fn tenant_id(&self) -> Option<&str> {
        match self {
            Step::Event(ev, ..) => Some(ev.tenant_id()),
            Step::Bad(_) => None,
        }
    }
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
    /// The tenant of records that carry none (a Graph `signIn` export of one tenant).
    default_tenant: Option<String>,
    tokens: TokenReader,
    metrics: Arc<Metrics>,
    replay_window_days: i64,
    limits: Limits,
    newest_event: std::sync::atomic::AtomicI64,
    /// The time an event is processed at (the wall clock; tests pass their own).
    clock: Clock,
    /// How far past [`Processor::clock`] an event may be dated, in microseconds.
    future_skew_micros: i64,
}

/// The time now, as the processor reads it: the wall clock unless a test passes its own.
pub type Clock = Arc<dyn Fn() -> EventTime + Send + Sync>;

/// The wall clock.
pub fn wall_clock() -> Clock {
    Arc::new(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        EventTime(now)
    })
}

/// How far past the time it is processed an event may be dated, by default: a day
/// covers any clock skew between a log's writer and this process.
pub const DEFAULT_FUTURE_SKEW_HOURS: i64 = 24;

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
            default_tenant: None,
            tokens,
            metrics,
            replay_window_days: crate::state::DEFAULT_REPLAY_WINDOW_DAYS,
            limits: Limits::default(),
            newest_event: std::sync::atomic::AtomicI64::new(i64::MIN),
            clock: wall_clock(),
            future_skew_micros: DEFAULT_FUTURE_SKEW_HOURS * 3_600_000_000,
        }
    }

    /// Sets the clock events are checked against (tests fake it).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Sets how many hours past the clock an event may be dated before it is a
    /// `future_time` dead letter.
    pub fn with_future_skew_hours(mut self, hours: i64) -> Self {
        self.future_skew_micros = hours.max(0).saturating_mul(3_600_000_000);
        self
    }

    /// Sets how many days back a repeated event id is recognised as a replay.
    pub fn with_replay_window_days(mut self, days: i64) -> Self {
        self.replay_window_days = days.max(0);
        self
    }

    /// Sets the bounds of state.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
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
        self.process_observed(origin, bytes, oversized, sink, &mut |_, _| {})
    }

    /// [`Processor::process`], telling `on_tenant` the tenant of every event applied and
    /// the days whose rows it changed.
    pub fn process_observed<S: RowSink>(
        &self,
        origin: Origin<'_>,
        bytes: &[u8],
        oversized: Option<usize>,
        sink: &mut S,
        on_tenant: &mut dyn FnMut(&str, Touch),
    ) -> Result<DocOutcome, S::Error> {
        self.process_filtered(origin, bytes, oversized, sink, &|_| true, on_tenant)
    }

    /// [`Processor::process_observed`], applying only the events whose tenant `keep`
    /// accepts (a restored tenant skips the events its snapshot already reflects).
    pub fn process_filtered<S: RowSink>(
        &self,
        origin: Origin<'_>,
        bytes: &[u8],
        oversized: Option<usize>,
        sink: &mut S,
        keep: &dyn Fn(&str) -> bool,
        on_tenant: &mut dyn FnMut(&str, Touch),
    ) -> Result<DocOutcome, S::Error> {
        let mut out = DocOutcome::default();
        let mut failed = None;
        self.decode_steps(bytes, oversized, &mut |step| {
            if step.tenant_id().is_some_and(|t| !keep(t)) {
                return;
            }
            if failed.is_none() {
                if let Err(e) = self.apply_step(origin, &step, sink, &mut out, on_tenant) {
                    failed = Some(e);
                }
            }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// The first half of [`Processor::process`]: one document's items, decoded and
    /// checked, each an event to apply or a dead letter to write, given to `each` in
    /// order. It reads no state, so documents may be decoded on any thread, in any
    /// order; [`Processor::apply_step`] then takes each tenant's steps in their order.
    pub fn decode_steps<'a>(
        &self,
        bytes: &'a [u8],
        oversized: Option<usize>,
        each: &mut dyn FnMut(Step<'a>),
    ) {
        self.metrics.documents.inc();
        if let Some(len) = oversized {
            let bad = event::BadDocument {
                reason: Reason::Oversized,
                detail: format!("{len} bytes"),
            };
            return each(Step::bad(None, bad, redact::excerpt_bytes(bytes)));
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let bad = event::BadDocument {
                    reason: Reason::NotJson,
                    detail: format!("not UTF-8 at byte {}", e.valid_up_to()),
                };
                return each(Step::bad(None, bad, redact::excerpt_bytes(bytes)));
            }
        };
        let now = (self.clock)();
        event::decode_each(
            text,
            &self.tokens,
            self.default_tenant.as_deref(),
            &mut |item| {
                each(
                    match item.event.and_then(|ev| {
                        self.check_time(&ev, now)?;
                        self.check_override(&ev).map(|()| ev)
                    }) {
                        Ok(ev) => Step::Event(ev, item.raw, item.record),
                        Err(bad) => Step::bad(item.record, bad, redact::excerpt(item.raw)),
                    },
                )
            },
        );
    }

    /// The second half of [`Processor::process`]: applies one step (or writes its dead
    /// letter), adding to `out`. A tenant's steps must come in their document order.
    pub fn apply_step<S: RowSink>(
        &self,
        origin: Origin<'_>,
        step: &Step<'_>,
        sink: &mut S,
        out: &mut DocOutcome,
        on_tenant: &mut dyn FnMut(&str, Touch),
    ) -> Result<(), S::Error> {
        match step {
            Step::Bad(bad) => {
                self.dead_letter(origin, bad.record, &bad.bad, &bad.excerpt, sink)?;
                out.dead_letters += 1;
            }
            Step::Event(Event::Skipped(s), _, _) => {
                crate::telemetry::inc(&self.metrics.records_skipped, &[s.category]);
                out.skipped += 1;
            }
            Step::Event(ev, raw, record) => {
                if let Some(bad) = self.over_limit(ev) {
                    let excerpt = redact::excerpt(raw);
                    self.dead_letter(origin, *record, &bad, &excerpt, sink)?;
                    out.dead_letters += 1;
                    return Ok(());
                }
                let Some(findings) = self.apply(ev, raw) else {
                    out.duplicates += 1;
                    return Ok(());
                };
                out.events += 1;
                on_tenant(ev.tenant_id(), Touch::of(ev));
                for f in &findings {
                    sink.finding(f)?;
                }
                out.findings += findings.len() as u32;
            }
        }
        Ok(())
    }

    /// Drops from some tenants' state, under every policy, the days more than
    /// `keep_days` before their newest (the stream mode, once those days' rows are
    /// written); how many days were dropped.
    pub fn drop_days(&self, tenants: &[String], keep_days: i64) -> usize {
        let mut n = 0;
        for e in &self.engines {
            for id in tenants {
                if e.state.contains(id) {
                    n += e.state.tenant_mut(id).drop_days(keep_days);
                }
            }
        }
        n
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

    /// Evaluates and applies one event (decoded from the record `raw`) under every policy;
    /// `None` when it is a replay of one already applied.
    pub fn apply(&self, ev: &Event<'_>, raw: &str) -> Option<Vec<Finding>> {
        self.apply_traced(ev, raw, None)
    }

    /// [`Processor::apply`], recording under each policy what every rule read (the
    /// evaluator `run` uses, with a trace: `explain`).
    pub fn apply_traced(
        &self,
        ev: &Event<'_>,
        raw: &str,
        mut traces: Option<&mut Vec<policy::Trace>>,
    ) -> Option<Vec<Finding>> {
        let mut all: Vec<Finding> = Vec::new();
        let mut replay = false;
        for (n, engine) in self.engines.iter().enumerate() {
            let mut tenant = engine.state.tenant_mut(ev.tenant_id());
            let sighting = tenant.first_sighting(
                (ev.kind(), ev.event_id(), raw.as_bytes()),
                ev.time(),
                self.replay_window_days,
            );
            if sighting == Sighting::Replay {
                // Every policy saw the same history: a replay is one under all of them.
                if n == 0 {
                    self.metrics.duplicates.inc();
                }
                replay = true;
                continue;
            }
            if n == 0 {
                if sighting == Sighting::IdReused {
                    self.metrics.ids_reused.inc();
                }
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
            for id in &eval.suppressed {
                crate::telemetry::inc(&self.metrics.findings_suppressed, &[id]);
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
