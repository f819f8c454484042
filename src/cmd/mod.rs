//! The commands, one file each, and what they share: the error type and its exit
//! status, loading policies, replaying inputs. `run` on files and on Kafka, `explain`
//! and `diff` all drive the library's `Processor`.

pub mod diff;
pub mod explain;
pub mod generate;
pub mod help;
pub mod policy;
pub mod produce;
pub mod report;
pub mod run;
pub mod schema;

use crate::cli::{Command, ReplayArgs, SchemaCommand};
use mfa_audit::event::token::JwksError;
use mfa_audit::event::token::TokenReader;
use mfa_audit::pipeline::Processor;
use mfa_audit::policy::PolicyError;
use mfa_audit::sink::file::FileSinkError;
use mfa_audit::source::file as input;
use mfa_audit::source::file::SourceError;
use mfa_audit::telemetry::Metrics;
use std::process::ExitCode;
use std::sync::Arc;
use thiserror::Error;

/// Runs a parsed command line.
pub fn run(cli: crate::cli::Cli) -> ExitCode {
    let result = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Produce(args) => produce::run(&args),
        Command::Schema(SchemaCommand::Apply(args)) => schema::apply(&args),
        Command::Generate(args) => generate::run(&args),
        Command::Policy(cmd) => policy::run(&cmd),
        Command::Report(args) => report::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Diff(args) => diff::run(&args),
        Command::Completions(args) => help::completions(&args),
        Command::Man(args) => help::man(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mfa-audit: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// A command's failure, and its exit status.
#[derive(Debug, Error)]
pub enum AppError {
    /// A policy could not be loaded or is invalid (exit 2).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The key set could not be loaded (exit 2).
    #[error(transparent)]
    Jwks(#[from] JwksError),
    /// A usage error (exit 2).
    #[error("{0}")]
    Usage(String),
    /// An input could not be read (exit 1).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An output could not be written (exit 1).
    #[error(transparent)]
    Sink(#[from] FileSinkError),
    /// Another I/O failure (exit 1).
    #[error("{0}")]
    Io(String),
    /// The configuration is unusable (exit 2).
    #[error(transparent)]
    Config(#[from] mfa_audit::config::ConfigError),
    /// The stream mode stopped (exit per its cause).
    #[error(transparent)]
    Stream(#[from] mfa_audit::stream::StreamError),
}

impl AppError {
    /// 2 for what the user can fix in the command, 1 for I/O.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Policy(_) | AppError::Jwks(_) | AppError::Usage(_) | AppError::Config(_) => 2,
            AppError::Source(_) | AppError::Sink(_) | AppError::Io(_) => 1,
            AppError::Stream(e) => e.exit_code(),
        }
    }
}

/// Loads the chosen policies; the same version twice is a usage error.
pub fn load_policies(names: &[String]) -> Result<Vec<Arc<mfa_audit::policy::Policy>>, AppError> {
    let mut out: Vec<Arc<mfa_audit::policy::Policy>> = Vec::with_capacity(names.len());
    for name in names {
        let p = mfa_audit::policy::load(name)?;
        if let Some(prev) = out.iter().find(|q| q.version == p.version) {
            return Err(AppError::Usage(format!(
                "policy version `{}` is chosen twice (`{name}`): each policy must have its own `version`",
                prev.version
            )));
        }
        out.push(Arc::new(p));
    }
    if out.is_empty() {
        return Err(AppError::Usage("choose at least one `--policy`".into()));
    }
    Ok(out)
}

/// A processor under `policies`, as `run` would build it from `replay`.
pub fn processor(policies: &[String], replay: &ReplayArgs) -> Result<Processor, AppError> {
    let policies = load_policies(policies)?;
    let tokens = match &replay.jwks {
        Some(path) => {
            TokenReader::with_jwks(mfa_audit::event::token::DEFAULT_TOKEN_CACHE_ENTRIES, path)?
        }
        None => TokenReader::new(mfa_audit::event::token::DEFAULT_TOKEN_CACHE_ENTRIES),
    };
    Ok(
        Processor::with_policies(policies, tokens, Arc::new(Metrics::new()))
            .with_replay_window_days(replay.replay_window_days)
            .with_future_skew_hours(replay.future_skew_hours)
            .with_default_tenant(replay.tenant.clone()),
    )
}

/// Reads every input in order and hands each document to `on_doc(source, document)`.
pub fn each_document(
    replay: &ReplayArgs,
    on_doc: &mut dyn FnMut(&str, mfa_audit::source::Doc<'_>),
) -> Result<(), AppError> {
    if replay.inputs.iter().filter(|i| *i == "-").count() > 1 {
        return Err(AppError::Usage(
            "`--input -` (stdin) can be given only once".into(),
        ));
    }
    for path in input::expand(&replay.inputs)? {
        let source = input::source_name(&path).to_owned();
        let mut docs = |d: mfa_audit::source::Doc<'_>| on_doc(&source, d);
        input::read(
            &path,
            replay.framing.into(),
            replay.max_document_bytes,
            &mut docs,
            &mut |_| {},
        )?;
    }
    Ok(())
}

pub fn env_vars() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("MFA_AUDIT_"))
        .collect()
}

pub fn runtime() -> Result<tokio::runtime::Runtime, AppError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AppError::Io(format!("cannot start the async runtime: {e}")))
}
