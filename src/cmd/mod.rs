//! Commands that replay an input under one or more policies and tell what the rules
//! did: `explain` (why each rule fired or not, event by event) and `diff` (two policies
//! over the same events). Both drive the same [`Processor`] as `run`.

pub mod diff;
pub mod explain;

use crate::app::{load_policies, AppError};
use crate::cli::ReplayArgs;
use crate::event::token::TokenReader;
use crate::pipeline::Processor;
use crate::source::file as input;
use crate::telemetry::Metrics;
use std::sync::Arc;

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
            .with_replay_window_days(replay.replay_window_days),
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
