//! The `mfa-audit` binary: the command line ([`cli`], clap) and one file per command
//! ([`cmd`]); everything they do is the library's (`mfa_audit`), which has no clap.

mod cli;
mod cmd;

use clap::Parser;
use std::process::ExitCode;

/// Per-thread heaps: the file mode allocates on one worker and frees on another.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    mfa_audit::telemetry::init_logging(cli.verbose);
    cmd::run(cli)
}
