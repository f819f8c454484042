//! `mfa-audit run`: one configuration (defaults, `--config FILE`, `MFA_AUDIT_*`
//! variables, then flags) chooses the mode: files in and out, or Kafka in and ClickHouse
//! out. A flag that does not apply to that mode is refused with its reason.

use super::{env_vars, load_policies, AppError};
use crate::cli::RunArgs;
use comfy_table::{
    CellAlignment, ColumnConstraint, ContentArrangement, LineStyle, Table, TableStyle, Width,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use mfa_audit::config::{Config, ConfigError, Mode};
use mfa_audit::event::token::TokenReader;
use mfa_audit::pipeline::{parallel, Origin, Processor, TenantReadiness, Totals};
use mfa_audit::policy;
use mfa_audit::sink::file::{FileSink, FileSinkError};
use mfa_audit::source::file as input;
use mfa_audit::source::LinePosition;
use mfa_audit::telemetry::Metrics;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

/// Runs `mfa-audit run`: builds the configuration, then runs its mode.
pub fn run(args: &RunArgs) -> Result<(), AppError> {
    let env = env_vars();
    let (mut config, shown) = match &args.config {
        Some(path) => (Config::load(path, &env)?, path.display().to_string()),
        None => (Config::from_env(&env)?, "(no file)".to_owned()),
    };
    apply_flags(&mut config, args)?;
    config.check().map_err(|message| {
        AppError::Config(ConfigError::Invalid {
            path: shown.clone(),
            message,
        })
    })?;
    match config.mode() {
        Mode::Files => files(&config, &shown, args.quiet).map(|_| ()),
        Mode::Stream => stream(&config, &shown, args.until_end),
    }
}

/// Lays the flags over the configuration; refuses one that does not apply to its mode.
fn apply_flags(c: &mut Config, a: &RunArgs) -> Result<(), AppError> {
    let mode = c.mode();
    let refuse = |flag: &str, why: &str| {
        Err(AppError::Usage(format!(
            "`{flag}` does not apply to {}: {why}",
            mode.name()
        )))
    };
    match mode {
        Mode::Stream => {
            if !a.inputs.is_empty() {
                return refuse(
                    "--input",
                    "the configuration names Kafka (`kafka.brokers`, `kafka.topics`), which is the input",
                );
            }
            if a.out.is_some() {
                return refuse("--out", "rows go to ClickHouse (`[clickhouse]`)");
            }
            if a.framing.is_some() {
                return refuse("--framing", "a Kafka message is one document");
            }
            if a.quiet {
                return refuse("--quiet", "it prints no readiness table");
            }
            if a.threads.is_some() {
                return refuse(
                    "--threads",
                    "Kafka partitions spread the work: run more instances in the consumer group",
                );
            }
        }
        Mode::Files => {
            if a.until_end {
                return refuse(
                    "--until-end",
                    "it stops a Kafka consumer; the file mode ends with its inputs",
                );
            }
        }
    }
    if !a.inputs.is_empty() {
        c.files.inputs = a.inputs.clone();
    }
    if let Some(out) = &a.out {
        c.files.out = Some(out.clone());
    }
    if let Some(f) = a.framing {
        c.files.framing = f.into();
    }
    if let Some(n) = a.threads {
        c.files.threads = n;
    }
    if !a.policies.is_empty() {
        c.pipeline.policies = a.policies.clone();
    }
    if let Some(jwks) = &a.jwks {
        c.pipeline.jwks = Some(jwks.clone());
    }
    if let Some(n) = a.max_document_bytes {
        c.pipeline.max_document_bytes = n;
    }
    if let Some(n) = a.token_cache_entries {
        c.pipeline.token_cache_entries = n;
    }
    if let Some(days) = a.replay_window_days {
        if days < 0 {
            return Err(AppError::Usage(
                "`--replay-window-days` must not be negative".into(),
            ));
        }
        c.pipeline.replay_window_days = days;
    }
    if let Some(hours) = a.future_skew_hours {
        if hours < 0 {
            return Err(AppError::Usage(
                "`--future-skew-hours` must not be negative".into(),
            ));
        }
        c.pipeline.future_skew_hours = hours;
    }
    if let Some(t) = &a.tenant {
        c.pipeline.tenant = Some(t.clone());
    }
    if let Some(t) = &a.findings_topic {
        c.sinks.kafka.topic = Some(t.clone());
    }
    if let Some(b) = &a.kafka_brokers {
        c.sinks.kafka.brokers = Some(b.clone());
    }
    Ok(())
}

/// `mfa-audit run` on files: the embedded mode (a configuration `check`ed for it;
/// `shown` names it in messages).
pub fn files(config: &Config, shown: &str, quiet: bool) -> Result<Totals, AppError> {
    let p = &config.pipeline;
    let chosen = p.chosen_policies();
    let policies = load_policies(&chosen)?;
    let tokens = match &p.jwks {
        Some(path) => TokenReader::with_jwks(p.token_cache_entries, path)?,
        None => TokenReader::new(p.token_cache_entries),
    };
    let inputs = input::expand(&config.files.inputs)?;
    let out = config
        .files
        .out
        .as_deref()
        .ok_or_else(|| AppError::Usage("`--out DIR` is needed with `--input`".into()))?;
    let metrics = Arc::new(Metrics::new());
    let processor = Processor::with_policies(policies, tokens, Arc::clone(&metrics))
        .with_replay_window_days(p.replay_window_days)
        .with_future_skew_hours(p.future_skew_hours)
        .with_default_tenant(p.tenant.clone())
        .with_limits(mfa_audit::pipeline::Limits {
            max_tenants: p.max_tenants,
            max_users_per_tenant: p.max_users_per_tenant,
        });
    let topic = match config.findings_topic(shown)? {
        Some(settings) => Some(
            mfa_audit::sink::kafka::FindingsTopic::new(&settings, Arc::clone(&metrics))
                .map_err(|e| AppError::Io(e.to_string()))?,
        ),
        None => None,
    };
    let mut sink = FileSink::create(out)?;
    if let Some(topic) = topic {
        sink = sink.with_findings_topic(topic);
    }
    let mut summary = Totals::default();
    let progress = Progress::new(&metrics, input_size(&inputs), quiet);
    let started = Instant::now();
    tracing::info!(policies = ?chosen, inputs = inputs.len(), "run started");

    let threads = match config.files.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    if threads > 1 {
        let mut on_bytes = |n: usize| {
            metrics.input_bytes.inc_by(n as u64);
            progress.tick(n);
        };
        summary = parallel::run(
            &processor,
            &parallel::Inputs {
                paths: &inputs,
                framing: config.files.framing,
                max_document_bytes: p.max_document_bytes,
                chunk_bytes: 0,
            },
            threads,
            &mut sink,
            &mut on_bytes,
        )
        .map_err(|e| match e {
            parallel::ParallelError::Source(e) => AppError::from(e),
            parallel::ParallelError::Sink(e) => AppError::from(e),
            e @ parallel::ParallelError::Threads(_) => AppError::Io(e.to_string()),
        })?;
    } else {
        one_thread(
            &processor,
            config,
            &inputs,
            &mut sink,
            &mut summary,
            &progress,
        )?;
    }
    processor.snapshot(&mut sink)?;
    progress.clear();
    let elapsed = started.elapsed();
    tracing::info!(?elapsed, events = summary.events, "run finished");

    if !quiet {
        let policies: Vec<&policy::Policy> =
            processor.engines().iter().map(|e| e.policy()).collect();
        let width = console::Term::stdout().size_checked().map(|(_, cols)| cols);
        let table = readiness_table(&processor.readiness(), &policies, width);
        let mut out = std::io::stdout().lock();
        out.write_all(table.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| AppError::Io(format!("cannot write to stdout: {e}")))?;
    }
    let published = match (sink.published(), config.sinks.kafka.topic()) {
        (Some(n), Some(topic)) => format!("; {n} findings published to `{topic}`"),
        _ => String::new(),
    };
    eprintln!(
        "mfa-audit: {} documents, {} events, {} findings, {} dead letters, {} replays skipped, {} records of other categories counted in {:.2}s; rows in `{}`{published}",
        summary.documents,
        summary.events,
        summary.findings,
        summary.dead_letters,
        summary.duplicates,
        summary.skipped,
        elapsed.as_secs_f64(),
        out.display()
    );
    if !quiet {
        // The counters the stream mode serves on /metrics, non-zero ones only.
        let mut text = String::from("counters (as /metrics names them):\n");
        for line in metrics.summary() {
            let _ = writeln!(text, "  {line}");
        }
        eprint!("{text}");
    }
    Ok(summary)
}

/// The file mode on one thread: each document processed as it is read.
fn one_thread(
    processor: &Processor,
    config: &Config,
    inputs: &[String],
    sink: &mut FileSink,
    summary: &mut Totals,
    progress: &Progress,
) -> Result<(), AppError> {
    let metrics = processor.metrics();
    let p = &config.pipeline;
    for path in inputs {
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
            match processor.process(origin, doc.bytes, doc.oversized.then_some(doc.len), sink) {
                Ok(o) => summary.add(o),
                Err(e) => failure = Some(e),
            }
        };
        let mut on_bytes = |n: usize| {
            metrics.input_bytes.inc_by(n as u64);
            progress.tick(n);
        };
        input::read(
            path,
            config.files.framing,
            p.max_document_bytes,
            &mut on_doc,
            &mut on_bytes,
        )?;
        if let Some(e) = failure {
            return Err(e.into());
        }
    }
    Ok(())
}

/// The progress line on stderr (indicatif): bytes read, documents and documents per
/// second, and with a known input size a bar and an ETA. indicatif draws it at most 20
/// times a second and not at all when stderr is not a terminal; `-q` hides it too.
struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// `total`: the inputs' size in bytes when every one is a regular file.
    fn new(metrics: &Arc<Metrics>, total: Option<u64>, quiet: bool) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let template = match total {
            Some(_) => "mfa-audit: {bytes}/{total_bytes} [{bar:24}] {docs} documents ({docs_per_sec}/s), ETA {eta}",
            None => "mfa-audit: {bytes} read, {docs} documents ({docs_per_sec}/s)",
        };
        let documents = Arc::clone(metrics);
        let rate = Arc::clone(metrics);
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
            .with_key(
                "docs",
                move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{}", documents.documents.get());
                },
            )
            .with_key(
                "docs_per_sec",
                move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let secs = s.elapsed().as_secs_f64();
                    let n = rate.documents.get() as f64;
                    let _ = write!(w, "{:.0}", if secs > 0.0 { n / secs } else { 0.0 });
                },
            );
        let bar = ProgressBar::with_draw_target(total, target).with_style(style);
        Self { bar }
    }

    /// `n` more bytes read.
    fn tick(&self, n: usize) {
        self.bar.inc(n as u64);
    }

    fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

/// The inputs' size in bytes, when every one is a regular file (not stdin or a pipe).
fn input_size(inputs: &[String]) -> Option<u64> {
    inputs.iter().try_fold(0u64, |sum, path| {
        if path == "-" {
            return None;
        }
        let m = std::fs::metadata(path).ok()?;
        m.is_file().then(|| sum.saturating_add(m.len()))
    })
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |s| format!("{:.1}%", s * 100.0))
}

/// The per-tenant readiness table printed after a run: one block per policy, a column
/// per surface that has an MFA share. `width`: the terminal's, to wrap cells to (the
/// tenant column never wraps); `None` lays every row on one line.
pub fn readiness_table(
    rows: &[TenantReadiness],
    policies: &[&policy::Policy],
    width: Option<u16>,
) -> String {
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
        let mut header = vec!["tenant", "day", "status", "7d"];
        header.extend(shares.iter().map(|(_, name)| *name));
        header.extend(["agents", "crit", "high", "next enforcement"]);
        let mut table = Table::new();
        table
            .load_style(
                TableStyle::new().header_separator(LineStyle::none().fill('─').junction(' ')),
            )
            .set_header(header);
        if let Some(w) = width {
            table
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_width(w);
        }
        let mut any = false;
        for r in rows.iter().filter(|r| *r.policy_version == *policy.version) {
            any = true;
            let w = &r.window;
            let next = match &r.next_enforcement {
                Some((surface, days)) => format!("{surface} in {days} d"),
                None => "none ahead".into(),
            };
            let mut cells = vec![
                mfa_audit::event::scrub::terminal(&r.tenant_id).into_owned(),
                r.day.to_string(),
                r.status.name().to_owned(),
                r.status_7d.name().to_owned(),
            ];
            cells.extend(shares.iter().map(|(i, _)| pct(w.share(*i).share())));
            cells.extend([
                format!(
                    "{}/{}",
                    w.partner_role_users_registered, w.partner_role_users
                ),
                w.uncovered[3].to_string(),
                w.uncovered[2].to_string(),
                next,
            ]);
            table.add_row(cells);
        }
        if !any {
            let _ = writeln!(s, "(no events)");
            continue;
        }
        // Numbers to the right; only the tenant and the next date may wrap, never a number.
        let last = 4 + shares.len() + 3;
        for (i, c) in table.column_iter_mut().enumerate() {
            c.set_padding((0, 0));
            if (4..last).contains(&i) {
                c.set_cell_alignment(CellAlignment::Right);
            }
            c.set_constraint(match i {
                0 => ColumnConstraint::LowerBoundary(Width::Fixed(18)),
                i if i == last => ColumnConstraint::LowerBoundary(Width::Fixed(10)),
                _ => ColumnConstraint::ContentWidth,
            });
        }
        let _ = writeln!(s, "{}", table.trim_fmt());
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

/// `mfa-audit run` on Kafka: the stream mode (a configuration `check`ed for it).
pub fn stream(config: &Config, shown: &str, until_end: bool) -> Result<(), AppError> {
    let started = Instant::now();
    let s = mfa_audit::stream::run(config, shown, until_end, shutdown_signal())?;
    let published = match config.sinks.kafka.topic() {
        Some(topic) => format!(", {} findings published to `{topic}`", s.published),
        None => String::new(),
    };
    eprintln!(
        "mfa-audit: {} messages, {} events, {} findings, {} dead letters, {} skipped (already in a restored snapshot), {} checkpoints, {} retries in {:.2}s{published}",
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

/// Completes at SIGINT or SIGTERM: the stream's shutdown.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfa_audit::event::time::Day;
    use mfa_audit::state::Readiness;

    fn row(policy: &str, tenant: &str) -> TenantReadiness {
        TenantReadiness {
            policy_version: policy.into(),
            tenant_id: tenant.into(),
            day: Day(20_000),
            status: Readiness::AtRisk,
            status_7d: Readiness::Blocked,
            window: Default::default(),
            enforced: 0,
            next_enforcement: Some(("dashboard_all_pages".into(), 12)),
        }
    }

    #[test]
    fn the_readiness_table_fits_the_width_given_and_escapes_the_tenant() {
        let policy = policy::load(policy::DEFAULT_POLICY).unwrap();
        let v = policy.version.to_string();
        let rows = [
            row(&v, "4415a7ec-6938-4c10-a2b1-c297efd19061"),
            row(&v, "evil\u{1b}[2Jtenant"),
        ];
        // No width (not a terminal): a title, the header, its rule, a line per tenant.
        let wide = readiness_table(&rows, &[&policy], None);
        let lines: Vec<&str> = wide.lines().collect();
        assert_eq!(lines.len(), 3 + 2, "{wide}");
        let header: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(header[..4], ["tenant", "day", "status", "7d"]);
        assert_eq!(
            header[header.len() - 5..],
            ["agents", "crit", "high", "next", "enforcement"]
        );
        let cells: Vec<&str> = lines[3].split_whitespace().collect();
        assert_eq!(
            cells[..4],
            [
                "4415a7ec-6938-4c10-a2b1-c297efd19061",
                "2024-10-04",
                "at_risk",
                "blocked"
            ]
        );
        assert!(
            lines[3].ends_with("0/0    0    0 dashboard_all_pages in 12 d"),
            "{}",
            lines[3]
        );
        assert!(!wide.contains('\u{1b}'), "{wide}");
        // A terminal of 110 columns: every line fits, the numbers stay whole, the tenant
        // wraps.
        let narrow = readiness_table(&rows, &[&policy], Some(110));
        for l in narrow.lines().skip(1) {
            assert!(
                l.chars().count() <= 110,
                "{} columns: {l}",
                l.chars().count()
            );
        }
        assert!(narrow.lines().count() > wide.lines().count(), "{narrow}");
        assert!(
            narrow.contains("at_risk blocked") && narrow.contains("0/0"),
            "{narrow}"
        );
        // A policy without rows says so.
        assert!(readiness_table(&[], &[&policy], None).ends_with("(no events)\n"));
    }
}
