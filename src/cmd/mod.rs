//! Commands that replay an input under one or more policies and tell what the rules
//! did: `explain` (why each rule fired or not, event by event) and `diff` (two policies
//! over the same events). Both drive the same [`Processor`] as `run`.

pub mod diff;
pub mod explain;

use crate::cli::ReplayArgs;
use crate::event::token::JwksError;
use crate::event::token::TokenReader;
use crate::pipeline::Processor;
use crate::policy::{self, PolicyError};
use crate::sink::file::FileSinkError;
use crate::source::file as input;
use crate::source::file::SourceError;
use crate::telemetry::Metrics;
use std::sync::Arc;
use thiserror::Error;

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
    /// The stream mode stopped (exit per its cause).
    #[error(transparent)]
    Stream(#[from] crate::stream::StreamError),
}

impl AppError {
    /// 2 for what the user can fix in the command, 1 for I/O.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Policy(_) | AppError::Jwks(_) | AppError::Usage(_) => 2,
            AppError::Source(_) | AppError::Sink(_) | AppError::Io(_) => 1,
            AppError::Stream(e) => e.exit_code(),
        }
    }
}

/// Loads the chosen policies; the same version twice is a usage error.
pub fn load_policies(names: &[String]) -> Result<Vec<Arc<policy::Policy>>, AppError> {
    let mut out: Vec<Arc<policy::Policy>> = Vec::with_capacity(names.len());
    for name in names {
        let p = policy::load(name)?;
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

/// `line N` of an input.
pub struct LinePosition(pub u64);

impl std::fmt::Display for LinePosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}", self.0)
    }
}

/// A processor under `policies`, as `run` would build it from `replay`.
pub fn processor(policies: &[String], replay: &ReplayArgs) -> Result<Processor, AppError> {
    let policies = load_policies(policies)?;
    let tokens = match &replay.jwks {
        Some(path) => {
            TokenReader::with_jwks(crate::event::token::DEFAULT_TOKEN_CACHE_ENTRIES, path)?
        }
        None => TokenReader::new(crate::event::token::DEFAULT_TOKEN_CACHE_ENTRIES),
    };
    Ok(
        Processor::with_policies(policies, tokens, Arc::new(Metrics::new()))
            .with_replay_window_days(replay.replay_window_days)
            .with_default_tenant(replay.tenant.clone()),
    )
}

/// Reads every input in order and hands each document to `on_doc(source, document)`.
pub fn each_document(
    replay: &ReplayArgs,
    on_doc: &mut dyn FnMut(&str, crate::source::Doc<'_>),
) -> Result<(), AppError> {
    if replay.inputs.iter().filter(|i| *i == "-").count() > 1 {
        return Err(AppError::Usage(
            "`--input -` (stdin) can be given only once".into(),
        ));
    }
    for path in input::expand(&replay.inputs)? {
        let source = input::source_name(&path).to_owned();
        let mut docs = |d: crate::source::Doc<'_>| on_doc(&source, d);
        input::read(
            &path,
            replay.framing,
            replay.max_document_bytes,
            &mut docs,
            &mut |_| {},
        )?;
    }
    Ok(())
}
