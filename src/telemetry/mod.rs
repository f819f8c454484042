//! The process's own metrics, declared in one place (`mfa_audit_<thing>_<unit>`, counters
//! end in `_total`), with bounded labels only: never a tenant or user id. And logging.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use std::sync::atomic::{AtomicU64, Ordering};

/// Every metric of the process.
pub struct Metrics {
    /// The registry `/metrics` serves.
    pub registry: Registry,
    /// Documents read (before decoding).
    pub documents: IntCounter,
    /// Input bytes read.
    pub input_bytes: IntCounter,
    /// Events decoded, by `kind`.
    pub events: IntCounterVec,
    /// Events skipped as replays of an id already applied.
    pub duplicates: IntCounter,
    /// Findings, by `rule_id`, `surface`, `enforced`, `excepted`.
    pub findings: IntCounterVec,
    /// Dead letters, by `reason`.
    pub dead_letters: IntCounterVec,
    /// Rules not applicable to an event (a field missing), by `condition`.
    pub not_applicable: IntCounterVec,
    /// Token cache hits.
    pub token_cache_hits: IntCounter,
    /// Token cache misses (tokens decoded).
    pub token_cache_misses: IntCounter,
    /// Tenants in state.
    pub state_tenants: IntGauge,
    /// Users in state.
    pub state_users: IntGauge,
    /// Partner Center sessions in state.
    pub state_sessions: IntGauge,
    /// `events` by kind, resolved once (a label lookup per event costs more than the
    /// rule evaluation).
    events_by_kind: Vec<IntCounter>,
    seen_hits: AtomicU64,
    seen_misses: AtomicU64,
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    // INVARIANT: names are constants, unique within this function's callers.
    #[allow(clippy::expect_used)]
    let c = IntCounter::new(name, help).expect("valid metric");
    #[allow(clippy::expect_used)]
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    #[allow(clippy::expect_used)]
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    #[allow(clippy::expect_used)]
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    #[allow(clippy::expect_used)]
    let g = IntGauge::new(name, help).expect("valid metric");
    #[allow(clippy::expect_used)]
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Self {
        let r = Registry::new();
        let events = counter_vec(
            &r,
            "mfa_audit_events_total",
            "Events decoded, by kind.",
            &["kind"],
        );
        let events_by_kind = crate::event::KINDS
            .iter()
            .map(|k| events.with_label_values(&[k]))
            .collect();
        let m = Self {
            events_by_kind,
            documents: counter(
                &r,
                "mfa_audit_documents_total",
                "Documents read, before decoding.",
            ),
            input_bytes: counter(&r, "mfa_audit_input_bytes_total", "Input bytes read."),
            events,
            duplicates: counter(
                &r,
                "mfa_audit_duplicate_events_total",
                "Events skipped as replays of an event id already applied.",
            ),
            findings: counter_vec(
                &r,
                "mfa_audit_findings_total",
                "Findings written, by rule, surface, enforced and excepted.",
                &["rule_id", "surface", "enforced", "excepted"],
            ),
            dead_letters: counter_vec(
                &r,
                "mfa_audit_dead_letters_total",
                "Documents or records dead-lettered, by reason.",
                &["reason"],
            ),
            not_applicable: counter_vec(
                &r,
                "mfa_audit_rules_not_applicable_total",
                "Rule evaluations skipped because the event lacked a field they need.",
                &["condition"],
            ),
            token_cache_hits: counter(
                &r,
                "mfa_audit_token_cache_hits_total",
                "Bearer tokens found decoded in the cache.",
            ),
            token_cache_misses: counter(
                &r,
                "mfa_audit_token_cache_misses_total",
                "Bearer tokens decoded.",
            ),
            state_tenants: gauge(&r, "mfa_audit_state_tenants", "Tenants held in state."),
            state_users: gauge(&r, "mfa_audit_state_users", "Users held in state."),
            state_sessions: gauge(
                &r,
                "mfa_audit_state_sessions",
                "Partner Center sessions held in state.",
            ),
            registry: r,
            seen_hits: AtomicU64::new(0),
            seen_misses: AtomicU64::new(0),
        };
        for reason in crate::event::Reason::ALL {
            m.dead_letters.with_label_values(&[reason.code()]);
        }
        m
    }

    /// The `events` counter of a kind (by [`crate::event::Event::kind_index`]).
    pub fn event_counter(&self, kind_index: usize) -> Option<&IntCounter> {
        self.events_by_kind.get(kind_index)
    }

    /// Brings the token-cache counters up to the reader's totals.
    pub fn observe_token_cache(&self, hits: u64, misses: u64) {
        let prev_h = self.seen_hits.swap(hits, Ordering::Relaxed);
        let prev_m = self.seen_misses.swap(misses, Ordering::Relaxed);
        self.token_cache_hits.inc_by(hits.saturating_sub(prev_h));
        self.token_cache_misses
            .inc_by(misses.saturating_sub(prev_m));
    }

    /// The non-zero samples, one `name{labels} value` line each (the file mode's summary).
    pub fn summary(&self) -> Vec<String> {
        let mut out = Vec::new();
        for family in self.registry.gather() {
            for m in family.get_metric() {
                let value = match family.get_field_type() {
                    prometheus::proto::MetricType::COUNTER => m.get_counter().get_value(),
                    _ => m.get_gauge().get_value(),
                };
                if value == 0.0 {
                    continue;
                }
                let labels: Vec<String> = m
                    .get_label()
                    .iter()
                    .map(|l| format!("{}=\"{}\"", l.name(), l.value()))
                    .collect();
                let labels = if labels.is_empty() {
                    String::new()
                } else {
                    format!("{{{}}}", labels.join(","))
                };
                out.push(format!("{}{} {}", family.name(), labels, value));
            }
        }
        out
    }
}

/// Sets up `tracing` to stderr: `RUST_LOG` if set, else `warn` (or `info` with `verbose`).
pub fn init_logging(verbose: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if verbose { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
