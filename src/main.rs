//! The `mfa-audit` binary: parse the command line, set up logging, call the library.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = mfa_audit::cli::Cli::parse();
    mfa_audit::telemetry::init_logging(cli.verbose);
    mfa_audit::app::run(cli)
}
