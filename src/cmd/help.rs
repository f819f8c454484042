//! `mfa-audit completions SHELL` and `mfa-audit man --out DIR`: the shell completions
//! (clap_complete) and the man pages (clap_mangen), both made from the clap definition in
//! `cli.rs`, so they list what the command line accepts.

use super::AppError;
use crate::cli::{Cli, CompletionsArgs, ManArgs};
use clap::CommandFactory;
use std::io::Write;

/// Prints the completion script for the shell to stdout.
pub fn completions(args: &CompletionsArgs) -> Result<(), AppError> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "mfa-audit", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .map_err(|e| AppError::Io(format!("cannot write to stdout: {e}")))
}

/// Writes mfa-audit.1 and one page per command (mfa-audit-run.1, mfa-audit-schema-apply.1,
/// ...) into the folder.
pub fn man(args: &ManArgs) -> Result<(), AppError> {
    let failed = |e: std::io::Error| {
        AppError::Io(format!(
            "cannot write the man pages into {}: {e}",
            args.out.display()
        ))
    };
    std::fs::create_dir_all(&args.out).map_err(failed)?;
    clap_mangen::generate_to(Cli::command(), &args.out).map_err(failed)?;
    eprintln!("mfa-audit: man pages in {}", args.out.display());
    Ok(())
}
