//! `mfa-audit run`: on files (the embedded mode) or, with `--config`, on Kafka.

use super::{env_vars, load_policies, AppError, LinePosition};
use crate::cli::RunArgs;
use mfa_audit::event::token::TokenReader;
use mfa_audit::pipeline::{Origin, Processor, TenantReadiness};
use mfa_audit::policy;
use mfa_audit::sink::file::{FileSink, FileSinkError};
use mfa_audit::source::file as input;
use mfa_audit::telemetry::Metrics;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a file run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunSummary {
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
    /// Input bytes.
    pub bytes: u64,
}

/// `mfa-audit run` on files: the embedded mode.
pub fn files(args: &RunArgs) -> Result<RunSummary, AppError> {
    let policies = load_policies(&args.policies)?;
    let tokens = match &args.jwks {
        Some(path) => TokenReader::with_jwks(args.token_cache_entries, path)?,
        None => TokenReader::new(args.token_cache_entries),
    };
    let stdin_count = args.inputs.iter().filter(|i| *i == "-").count();
    if stdin_count > 1 {
        return Err(AppError::Usage(
            "`--input -` (stdin) can be given only once".into(),
        ));
    }
    let inputs = input::expand(&args.inputs)?;
    let out = args
        .out
        .as_deref()
        .ok_or_else(|| AppError::Usage("`--out DIR` is needed with `--input`".into()))?;
    let metrics = Arc::new(Metrics::new());
    let processor = Processor::with_policies(policies, tokens, Arc::clone(&metrics))
        .with_replay_window_days(args.replay_window_days)
        .with_default_tenant(args.tenant.clone());
    let mut sink = FileSink::create(out)?;
    let mut summary = RunSummary::default();
    let mut progress = Progress::new();
    let started = Instant::now();
    tracing::info!(policies = ?args.policies, inputs = inputs.len(), "run started");

    for path in &inputs {
        let source = input::source_name(path);
        let mut failure: Option<FileSinkError> = None;
        let mut on_doc = |doc: mfa_audit::source::Doc<'_>| {
            if failure.is_some() {
                return;
            }
            let position = LinePosition(doc.line);
            let origin = Origin {
                source,
                position: &position,
            };
            summary.documents += 1;
            match processor.process(
                origin,
                doc.bytes,
                doc.oversized.then_some(doc.len),
                &mut sink,
            ) {
                Ok(o) => {
                    summary.events += u64::from(o.events);
                    summary.findings += u64::from(o.findings);
                    summary.dead_letters += u64::from(o.dead_letters);
                    summary.duplicates += u64::from(o.duplicates);
                }
                Err(e) => failure = Some(e),
            }
        };
        let mut on_bytes = |n: usize| {
            metrics.input_bytes.inc_by(n as u64);
            progress.tick(&metrics);
        };
        input::read(
            path,
            args.framing.into(),
            args.max_document_bytes,
            &mut on_doc,
            &mut on_bytes,
        )?;
        if let Some(e) = failure {
            return Err(e.into());
        }
    }
    summary.bytes = metrics.input_bytes.get();
    processor.snapshot(&mut sink)?;
    progress.clear();
    let elapsed = started.elapsed();
    tracing::info!(?elapsed, events = summary.events, "run finished");

    if !args.quiet {
        let policies: Vec<&policy::Policy> =
            processor.engines().iter().map(|e| e.policy()).collect();
        let table = readiness_table(&processor.readiness(), &policies);
        let mut out = std::io::stdout().lock();
        out.write_all(table.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| AppError::Io(format!("cannot write to stdout: {e}")))?;
    }
    eprintln!(
        "mfa-audit: {} documents, {} events, {} findings, {} dead letters, {} replays skipped in {:.2}s; rows in `{}`",
        summary.documents,
        summary.events,
        summary.findings,
        summary.dead_letters,
        summary.duplicates,
        elapsed.as_secs_f64(),
        out.display()
    );
    if !args.quiet {
        // The counters the stream mode serves on /metrics, non-zero ones only.
        let mut text = String::from("counters (as /metrics names them):\n");
        for line in metrics.summary() {
            let _ = writeln!(text, "  {line}");
        }
        eprint!("{text}");
    }
    Ok(summary)
}

/// A progress line on stderr, only when stderr is a terminal.
struct Progress {
    on: bool,
    last: Instant,
    shown: bool,
}

impl Progress {
    fn new() -> Self {
        Self {
            on: std::io::stderr().is_terminal(),
            last: Instant::now(),
            shown: false,
        }
    }

    fn tick(&mut self, m: &Metrics) {
        if !self.on || self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last = Instant::now();
        self.shown = true;
        let mb = m.input_bytes.get() as f64 / 1e6;
        eprint!(
            "\rmfa-audit: {mb:.1} MB, {} documents read",
            m.documents.get()
        );
    }

    fn clear(&mut self) {
        if self.shown {
            eprint!("\r\x1b[2K");
        }
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |s| format!("{:.1}%", s * 100.0))
}

/// The per-tenant readiness table printed after a run: one block per policy, a column
/// per surface that has an MFA share.
pub fn readiness_table(rows: &[TenantReadiness], policies: &[&policy::Policy]) -> String {
    let mut s = String::new();
    for (n, policy) in policies.iter().enumerate() {
        if n > 0 {
            s.push('\n');
        }
        let _ = writeln!(
            s,
            "readiness under {} (7 days ending on each tenant's newest day):",
            policy.version
        );
        let shares: Vec<(usize, &str)> = policy
            .surfaces
            .iter()
            .enumerate()
            .filter(|(_, x)| x.share.is_some())
            .map(|(i, x)| (i, short_surface(&x.name)))
            .collect();
        let _ = write!(
            s,
            "{:<38} {:<10} {:<8} {:<8}",
            "tenant", "day", "status", "7d"
        );
        for (_, name) in &shares {
            let _ = write!(s, " {name:>7}");
        }
        let _ = writeln!(
            s,
            " {:>9} {:>6} {:>6}  next enforcement",
            "agents", "crit", "high"
        );
        let mut any = false;
        for r in rows.iter().filter(|r| *r.policy_version == *policy.version) {
            any = true;
            let w = &r.window;
            let next = match &r.next_enforcement {
                Some((surface, days)) => format!("{surface} in {days} d"),
                None => "none ahead".into(),
            };
            let _ = write!(
                s,
                "{:<38} {:<10} {:<8} {:<8}",
                r.tenant_id,
                r.day.to_string(),
                r.status.name(),
                r.status_7d.name(),
            );
            for (i, _) in &shares {
                let _ = write!(s, " {:>7}", pct(w.share(*i).share()));
            }
            let _ = writeln!(
                s,
                " {:>9} {:>6} {:>6}  {}",
                format!(
                    "{}/{}",
                    w.partner_role_users_registered, w.partner_role_users
                ),
                w.uncovered[3],
                w.uncovered[2],
                next
            );
        }
        if !any {
            let _ = writeln!(s, "(no events)");
        }
    }
    s
}

/// A surface's column heading: the shipped ones as before, others cut to 7 characters.
fn short_surface(name: &str) -> &str {
    match name {
        "api" => "api",
        "dashboard" => "dash",
        "delegated_admin" => "deleg",
        other => other.get(..7).unwrap_or(other),
    }
}

/// `mfa-audit run --config FILE`: the stream mode.
pub fn stream(path: &std::path::Path, until_end: bool) -> Result<(), AppError> {
    let shown = path.display().to_string();
    let config = mfa_audit::stream::config::Config::load(path, &env_vars())
        .map_err(mfa_audit::stream::StreamError::from)?;
    let started = Instant::now();
    let shutdown = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = mfa_audit::stream::run(&config, &shown, until_end, shutdown)?;
    eprintln!(
        "mfa-audit: {} messages, {} events, {} findings, {} dead letters, {} skipped (already in a restored snapshot), {} checkpoints, {} retries in {:.2}s",
        s.messages,
        s.events,
        s.findings,
        s.dead_letters,
        s.skipped,
        s.checkpoints,
        s.retries,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
