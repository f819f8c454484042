//! The process's own metrics, declared in one place (`mfa_audit_<thing>_<unit>`, counters
//! end in `_total`), with bounded labels only: never a tenant or user id. And logging.

pub mod http;

use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry,
};
use std::sync::atomic::{AtomicU64, Ordering};

/// Every metric of the process.
pub struct Metrics {
    /// The registry `/metrics` serves.
    pub registry: Registry,
    /// Every metric's descriptor (name, help, label names), as declared: unlike
    /// `registry.gather()`, it includes labelled metrics that have no series yet.
    pub declared: Vec<prometheus::core::Desc>,
    /// Documents read (before decoding).
    pub documents: IntCounter,
    /// Input bytes read.
    pub input_bytes: IntCounter,
    /// Events decoded, by `kind`.
    pub events: IntCounterVec,
    /// Events skipped as replays of an id already applied.
    pub duplicates: IntCounter,
    /// Events whose kind and id were already applied with other content (applied: an id
    /// is chosen by the sender, so reusing one must not hide an event).
    pub ids_reused: IntCounter,
    /// Findings, by `rule_id`, `surface`, `enforced`, `excepted`.
    pub findings: IntCounterVec,
    /// Dead letters, by `reason`.
    pub dead_letters: IntCounterVec,
    /// Findings acknowledged by the findings topic's brokers (`[sinks.kafka]`).
    pub findings_published: IntCounter,
    /// Findings the findings topic did not take (refused, or not acknowledged in time):
    /// published again by the retried flush (stream) or a failed run (files).
    pub findings_publish_errors: IntCounter,
    /// Rules not applicable to an event (an attribute absent), by `rule_id`.
    pub not_applicable: IntCounterVec,
    /// Findings a rule's `suppress` held back, by `rule_id`.
    pub findings_suppressed: IntCounterVec,
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
    /// Events remembered for replay detection, all tenants.
    pub replay_ids: IntGauge,
    /// Days of rollout counters held in state, all tenants.
    pub state_days: IntGauge,
    /// Seconds per ClickHouse insert (stream mode).
    pub insert_seconds: Histogram,
    /// Rows per flush (stream mode).
    pub batch_rows: Histogram,
    /// Sink writes (inserts, snapshots, commits) that failed.
    pub sink_failures: IntCounter,
    /// Waits before retrying a failed write.
    pub sink_retries: IntCounter,
    /// 1 while the partitions are paused for backpressure.
    pub paused: IntGauge,
    /// Wall clock minus the newest event time processed.
    pub event_time_lag_seconds: Gauge,
    /// Seconds since the last checkpoint (state snapshot and offset commit).
    pub snapshot_age_seconds: Gauge,
    /// Partitions assigned to this instance.
    pub partitions_assigned: IntGauge,
    /// Messages behind the partition's end, by topic and partition (librdkafka statistics).
    pub consumer_lag: IntGaugeVec,
    /// Tenants by readiness status (`ready`, `at_risk`, `blocked`) over their last 7 days.
    pub tenants: IntGaugeVec,
    /// The lowest 7-day MFA share among tenants where the surface is enforced, by surface
    /// (a tenant id is never a label: the dashboards name the tenant).
    pub tenant_mfa_share_min: GaugeVec,
    /// Technical exception requests open past the response time, all tenants.
    pub exceptions_overdue: IntGauge,
    /// `policy_override` events accepted, by policy and outcome (`applied`, or
    /// `not_chosen`: valid, for a policy this run does not judge by).
    pub overrides: IntCounterVec,
    /// Azure Monitor records of a category no rule judges (`RiskyUsers`,
    /// `ProvisioningLogs`, ...; unknown ones are `other`): counted, never judged.
    pub records_skipped: IntCounterVec,
    /// Sign-in records by identity (`user`, `workload`, `adfs`) and log category
    /// ([`SIGN_IN_CATEGORIES`], `other`, or `none` for a Graph `signIn`): workload
    /// identities and AD FS records are counted here, never judged by user rules.
    pub sign_ins: IntCounterVec,
    sign_ins_resolved: Vec<IntCounter>,
    /// `events` by kind, resolved once (a label lookup per event costs more than the
    /// rule evaluation).
    events_by_kind: Vec<IntCounter>,
    seen_hits: AtomicU64,
    seen_misses: AtomicU64,
}

/// The sign-in log categories counted by name (Microsoft's diagnostic-settings
/// categories); none (a Graph `signIn`) is `none`.
pub use crate::event::directory::SIGN_IN_CATEGORIES;

const SIGN_IN_IDENTITIES: [&str; 3] = ["user", "workload", "adfs"];

/// The registry being filled, and every metric's descriptor as declared.
struct Declaring {
    registry: Registry,
    descs: std::cell::RefCell<Vec<prometheus::core::Desc>>,
}

impl Declaring {
    fn add<M: prometheus::core::Collector + Clone + 'static>(&self, m: M) -> M {
        self.descs
            .borrow_mut()
            .extend(m.desc().into_iter().cloned());
        // INVARIANT: names are constants, unique in this file.
        #[allow(clippy::expect_used)]
        self.registry
            .register(Box::new(m.clone()))
            .expect("unique metric");
        m
    }
}

fn counter(r: &Declaring, name: &str, help: &str) -> IntCounter {
    // INVARIANT: names are constants, unique within this function's callers.
    #[allow(clippy::expect_used)]
    let c = IntCounter::new(name, help).expect("valid metric");
    r.add(c)
}

fn counter_vec(r: &Declaring, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    // INVARIANT: names and labels are constants, unique within this function's callers.
    #[allow(clippy::expect_used)]
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.add(c)
}

fn register<M: prometheus::core::Collector + Clone + 'static>(
    r: &Declaring,
    m: prometheus::Result<M>,
) -> M {
    // INVARIANT: names, help and buckets are constants, unique in this file.
    #[allow(clippy::expect_used)]
    let m = m.expect("valid metric");
    r.add(m)
}

fn gauge(r: &Declaring, name: &str, help: &str) -> IntGauge {
    // INVARIANT: names are constants, unique within this function's callers.
    #[allow(clippy::expect_used)]
    let g = IntGauge::new(name, help).expect("valid metric");
    r.add(g)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Self {
        let r = Declaring {
            registry: Registry::new(),
            descs: std::cell::RefCell::new(Vec::new()),
        };
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
        let sign_ins = counter_vec(
            &r,
            "mfa_audit_sign_ins_total",
            "Sign-in records decoded, by identity (user, workload, adfs) and log category.",
            &["identity", "category"],
        );
        let mut sign_ins_resolved = Vec::new();
        for identity in SIGN_IN_IDENTITIES {
            for category in SIGN_IN_CATEGORIES.iter().chain(&["other", "none"]) {
                sign_ins_resolved.push(sign_ins.with_label_values(&[identity, category]));
            }
        }
        let m = Self {
            events_by_kind,
            sign_ins,
            sign_ins_resolved,
            records_skipped: counter_vec(
                &r,
                "mfa_audit_records_skipped_total",
                "Azure Monitor records of a category no rule judges, by category (unknown ones: other); never judged as sign-ins, never dead letters.",
                &["category"],
            ),
            overrides: counter_vec(
                &r,
                "mfa_audit_policy_overrides_total",
                "policy_override events accepted, by policy and outcome (applied, or not_chosen: valid for a policy this run does not use).",
                &["policy", "outcome"],
            ),
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
                "Events skipped as replays: the same kind, id and content already applied.",
            ),
            ids_reused: counter(
                &r,
                "mfa_audit_ids_reused_total",
                "Events applied whose kind and id were already applied with other content.",
            ),
            findings: counter_vec(
                &r,
                "mfa_audit_findings_total",
                "Findings written, by rule, severity, surface, enforced, excepted and policy version.",
                &["rule_id", "severity", "surface", "enforced", "excepted", "policy_version"],
            ),
            findings_published: counter(
                &r,
                "mfa_audit_findings_published_total",
                "Findings acknowledged by the brokers of the findings topic ([sinks.kafka]).",
            ),
            findings_publish_errors: counter(
                &r,
                "mfa_audit_findings_publish_errors_total",
                "Findings the findings topic refused or did not acknowledge in time (published again).",
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
                "Rule evaluations not applicable because the event lacked an attribute they read, by rule.",
                &["rule_id"],
            ),
            findings_suppressed: counter_vec(
                &r,
                "mfa_audit_findings_suppressed_total",
                "Findings held back by their rule's suppress (a quiet spell after an earlier finding with the same key), by rule.",
                &["rule_id"],
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
            replay_ids: gauge(
                &r,
                "mfa_audit_replay_ids",
                "Events remembered for replay detection (kind, id and content), all tenants.",
            ),
            state_days: gauge(
                &r,
                "mfa_audit_state_days",
                "Days of rollout counters held in state, all tenants.",
            ),
            insert_seconds: register(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "mfa_audit_clickhouse_insert_seconds",
                        "Seconds per ClickHouse insert.",
                    )
                    .buckets(vec![
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    ]),
                ),
            ),
            batch_rows: register(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new("mfa_audit_batch_rows", "Rows per flush to ClickHouse.")
                        .buckets(vec![1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6]),
                ),
            ),
            sink_failures: counter(
                &r,
                "mfa_audit_sink_failures_total",
                "Sink writes (inserts, snapshots, commits) that failed.",
            ),
            sink_retries: counter(
                &r,
                "mfa_audit_sink_retries_total",
                "Waits before retrying a failed sink write.",
            ),
            paused: gauge(
                &r,
                "mfa_audit_paused",
                "1 while the partitions are paused for backpressure.",
            ),
            event_time_lag_seconds: register(
                &r,
                Gauge::new(
                    "mfa_audit_event_time_lag_seconds",
                    "Wall clock minus the newest event time processed.",
                ),
            ),
            snapshot_age_seconds: register(
                &r,
                Gauge::new(
                    "mfa_audit_snapshot_age_seconds",
                    "Seconds since the last checkpoint.",
                ),
            ),
            partitions_assigned: gauge(
                &r,
                "mfa_audit_partitions_assigned",
                "Partitions assigned to this instance.",
            ),
            consumer_lag: register(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "mfa_audit_consumer_lag_messages",
                        "Messages behind the partition's end.",
                    ),
                    &["topic", "partition"],
                ),
            ),
            tenants: register(
                &r,
                IntGaugeVec::new(
                    Opts::new("mfa_audit_tenants", "Tenants by 7-day readiness status."),
                    &["status"],
                ),
            ),
            tenant_mfa_share_min: register(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "mfa_audit_tenant_mfa_share_min",
                        "Lowest 7-day MFA share among tenants where the surface is enforced.",
                    ),
                    &["surface"],
                ),
            ),
            exceptions_overdue: gauge(
                &r,
                "mfa_audit_exceptions_overdue",
                "Technical exception requests open past the response time.",
            ),
            declared: r.descs.into_inner(),
            registry: r.registry,
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

    /// Counts one sign-in record by its identity and category (both as decoded).
    pub fn count_sign_in(&self, identity: &str, category: Option<&str>) {
        let i = SIGN_IN_IDENTITIES
            .iter()
            .position(|x| *x == identity)
            .unwrap_or(0);
        let width = SIGN_IN_CATEGORIES.len() + 2;
        let c = match category.map(str::trim) {
            None | Some("") => width - 1,
            Some(c) => SIGN_IN_CATEGORIES
                .iter()
                .position(|x| x.eq_ignore_ascii_case(c))
                .unwrap_or(width - 2),
        };
        if let Some(counter) = self.sign_ins_resolved.get(i * width + c) {
            counter.inc();
        }
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

/// Increments one labelled counter. Never panics on the data path: a label set of the
/// wrong size (a bug) is logged, not fatal.
pub fn inc(vec: &IntCounterVec, labels: &[&str]) {
    match vec.get_metric_with_label_values(labels) {
        Ok(c) => c.inc(),
        Err(e) => tracing::warn!(error = %e, "metric labels"),
    }
}

/// Sets up `tracing` to stderr: `RUST_LOG` if set, else `warn` (or `info` with `verbose`).
pub fn init_logging(verbose: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if verbose { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| ScrubbedLine(Vec::new()))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// One log line on its way to stderr: gathered whole, then written with every credential
/// removed ([`crate::event::scrub::text`]), whatever the line quotes (a server's echo of
/// a row, a library's message about a property, a field of a record).
struct ScrubbedLine(Vec<u8>);

impl std::io::Write for ScrubbedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ScrubbedLine {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let line = String::from_utf8_lossy(&self.0);
        let clean = crate::event::scrub::text(&line);
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), clean.as_bytes());
    }
}
