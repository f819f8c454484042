//! What each command does.

use crate::cli::{
    Cli, Command, GenerateArgs, PolicyCommand, ProduceArgs, ReportArgs, RunArgs, SchemaArgs,
    SchemaCommand,
};
use crate::event::token::TokenReader;
use crate::pipeline::{Origin, Processor, TenantReadiness};
use crate::policy;
use crate::sink::file::{FileSink, FileSinkError};
use crate::source::file as input;
use crate::telemetry::Metrics;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::cmd::{load_policies, AppError, LinePosition};

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Run(args) => match &args.config {
            Some(path) => run_stream(path, args.until_end),
            None => run_files(&args).map(|_| ()),
        },
        Command::Produce(args) => produce(&args),
        Command::Schema(SchemaCommand::Apply(args)) => schema_apply(&args),
        Command::Generate(args) => generate(&args),
        Command::Policy(cmd) => policy_command(&cmd),
        Command::Report(args) => report(&args),
        Command::Explain(args) => crate::cmd::explain::run(&args),
        Command::Diff(args) => crate::cmd::diff::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mfa-audit: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

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
pub fn run_files(args: &RunArgs) -> Result<RunSummary, AppError> {
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
        let mut on_doc = |doc: crate::source::Doc<'_>| {
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
            args.framing,
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

fn env_vars() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("MFA_AUDIT_"))
        .collect()
}

fn runtime() -> Result<tokio::runtime::Runtime, AppError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AppError::Io(format!("cannot start the async runtime: {e}")))
}

/// `mfa-audit run --config FILE`: the stream mode.
fn run_stream(path: &std::path::Path, until_end: bool) -> Result<(), AppError> {
    let shown = path.display().to_string();
    let config = crate::stream::config::Config::load(path, &env_vars())
        .map_err(crate::stream::StreamError::from)?;
    let started = Instant::now();
    let s = crate::stream::run(&config, &shown, until_end, shutdown_signal())?;
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

/// Where `args` says ClickHouse is.
fn connection(args: &SchemaArgs) -> Result<crate::sink::clickhouse::Connection, AppError> {
    use crate::sink::clickhouse::Connection;
    Ok(match &args.config {
        Some(path) => {
            let shown = path.display().to_string();
            let c = crate::stream::config::Config::load(path, &env_vars())
                .map_err(crate::stream::StreamError::from)?;
            Connection {
                url: c.clickhouse.url.clone(),
                database: c.clickhouse.database.clone(),
                user: c.clickhouse.user.clone(),
                password: c
                    .clickhouse_password(&shown)
                    .map_err(crate::stream::StreamError::from)?,
                validation: c.clickhouse.validation,
                timeout: Duration::from_millis(c.clickhouse.request_timeout_ms),
            }
        }
        None => Connection {
            url: args.url.clone(),
            database: args.database.clone(),
            user: args.user.clone(),
            password: std::env::var("MFA_AUDIT_CLICKHOUSE_PASSWORD").unwrap_or_default(),
            validation: false,
            timeout: Duration::from_secs(30),
        },
    })
}

/// `mfa-audit schema apply`.
fn schema_apply(args: &SchemaArgs) -> Result<(), AppError> {
    use crate::sink::clickhouse::ClickHouse;
    let conn = connection(args)?;
    let ch = ClickHouse::new(&conn);
    let applied = runtime()?
        .block_on(ch.apply_schema())
        .map_err(|e| AppError::Io(e.to_string()))?;
    if applied.is_empty() {
        println!("database `{}` at {}: up to date", conn.database, conn.url);
    } else {
        println!(
            "database `{}` at {}: applied {}",
            conn.database,
            conn.url,
            applied.join(", ")
        );
    }
    Ok(())
}

/// `mfa-audit report`: the rows read back into one HTML page.
fn report(args: &ReportArgs) -> Result<(), AppError> {
    let report = match &args.from {
        Some(dir) => crate::report::from_folder(dir, args.policy.as_deref())
            .map_err(|e| AppError::Io(e.to_string()))?,
        None => {
            let conn = connection(&args.clickhouse)?;
            let ch = crate::sink::clickhouse::ClickHouse::new(&conn);
            runtime()?
                .block_on(crate::report::from_clickhouse(&ch, args.policy.as_deref()))
                .map_err(|e| {
                    AppError::Io(format!(
                        "{e}\n(reading ClickHouse at {}; for a file-mode output folder use --from DIR)",
                        conn.url
                    ))
                })?
        }
    };
    let generated = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let page = crate::report::html::render(&report, &generated);
    std::fs::write(&args.out, page)
        .map_err(|e| AppError::Io(format!("cannot write {}: {e}", args.out.display())))?;
    eprintln!(
        "mfa-audit: report of {} tenants under {} ({}) in {}",
        report.tenants.len(),
        report.policy_version,
        report.source,
        args.out.display()
    );
    Ok(())
}

/// `mfa-audit produce`: NDJSON documents to a topic, keyed by tenant.
fn produce(args: &ProduceArgs) -> Result<(), AppError> {
    use crate::source::kafka::{ensure_topic, KeyedProducer};
    let props = std::collections::BTreeMap::new();
    let kafka = |e: crate::source::kafka::KafkaOpError| AppError::Io(e.to_string());
    if args.partitions > 0 {
        let created = runtime()?
            .block_on(ensure_topic(
                &args.brokers,
                &props,
                &args.topic,
                args.partitions,
            ))
            .map_err(kafka)?;
        if created {
            eprintln!(
                "mfa-audit: created topic `{}` with {} partitions",
                args.topic, args.partitions
            );
        }
    }
    let producer = KeyedProducer::new(&args.brokers, &props, &args.topic).map_err(kafka)?;
    let tokens = TokenReader::new(crate::event::token::DEFAULT_TOKEN_CACHE_ENTRIES);
    let started = Instant::now();
    let mut sent = 0u64;
    let mut failure = None;
    for path in input::expand(&args.files)? {
        let mut on_doc = |doc: crate::source::Doc<'_>| {
            if failure.is_some() {
                return;
            }
            let key = std::str::from_utf8(doc.bytes).ok().and_then(|text| {
                crate::event::decode(text, &tokens)
                    .into_iter()
                    .find_map(|i| i.event.ok().map(|e| e.tenant_id().to_owned()))
            });
            match producer.send(key.as_deref().map(str::as_bytes), doc.bytes) {
                Ok(()) => sent += 1,
                Err(e) => failure = Some(e),
            }
            if sent.is_multiple_of(1000) {
                producer.poll();
            }
        };
        input::read(
            &path,
            crate::source::Framing::Auto,
            usize::MAX / 2,
            &mut on_doc,
            &mut |_| {},
        )?;
        if let Some(e) = failure.take() {
            return Err(kafka(e));
        }
    }
    producer.flush(Duration::from_secs(120)).map_err(kafka)?;
    eprintln!(
        "mfa-audit: produced {sent} messages to `{}` in {:.2}s",
        args.topic,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn generate(args: &GenerateArgs) -> Result<(), AppError> {
    let options = crate::generate::Options::from_args(args).map_err(AppError::Usage)?;
    let result = match &args.out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|e| AppError::Io(format!("cannot create `{}`: {e}", path.display())))?;
            let mut w = std::io::BufWriter::new(file);
            crate::generate::write(&options, &mut w).and_then(|_| w.flush())
        }
        None => {
            let mut w = std::io::BufWriter::new(std::io::stdout().lock());
            crate::generate::write(&options, &mut w).and_then(|_| w.flush())
        }
    };
    result.map_err(|e| AppError::Io(format!("cannot write the generated stream: {e}")))
}

fn policy_command(cmd: &PolicyCommand) -> Result<(), AppError> {
    match cmd {
        PolicyCommand::List => {
            for (name, _) in policy::SHIPPED {
                let p = policy::load(name)?;
                let default = if name == policy::DEFAULT_POLICY {
                    " (default)"
                } else {
                    ""
                };
                println!("{name}{default}: {}, {} rules", p.title, p.rules.len());
                for s in &p.surfaces {
                    let from = s.enforced_from.map_or_else(
                        || "never enforced (readiness only)".into(),
                        |d| format!("enforced from {}", d.day()),
                    );
                    let postpone = s
                        .postpone_until
                        .map(|d| format!("; a tenant may postpone it to {}", d.day()))
                        .unwrap_or_default();
                    println!("    {:<20} {from}{postpone}", s.name);
                }
            }
            Ok(())
        }
        PolicyCommand::Check { file } => {
            let p = policy::load(file)?;
            println!(
                "{file}: valid policy `{}`: {} rules, {} protected pages, {} exception reasons",
                p.version,
                p.rules.len(),
                p.pages.len(),
                p.exception_reasons.len()
            );
            Ok(())
        }
        PolicyCommand::Attributes => {
            print!("{}", policy::attr::table());
            Ok(())
        }
        PolicyCommand::Show { name } => match policy::SHIPPED.iter().find(|(n, _)| n == name) {
            Some((_, text)) => {
                print!("{text}");
                Ok(())
            }
            None => Err(AppError::Usage(format!(
                "no shipped policy `{name}` (shipped: {})",
                policy::SHIPPED.map(|(n, _)| n).join(", ")
            ))),
        },
    }
}
