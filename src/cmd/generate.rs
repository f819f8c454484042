//! `mfa-audit generate`: a realistic, deterministic sample stream.

use super::AppError;
use crate::cli::GenerateArgs;
use std::io::Write;

pub fn run(args: &GenerateArgs) -> Result<(), AppError> {
    let options = mfa_audit::generate::Options::checked(
        args.tenants,
        args.events,
        args.seed,
        args.violations,
        &args.start,
        args.days,
    )
    .map(|o| o.with_world_seed(args.world_seed))
    .map_err(AppError::Usage)?;
    let result = match &args.out {
        Some(path) => mfa_audit::sink::file::write_new(path, |w| {
            mfa_audit::generate::write(&options, w).map(|_| ())
        }),
        None => {
            let mut w = std::io::BufWriter::new(std::io::stdout().lock());
            mfa_audit::generate::write(&options, &mut w).and_then(|_| w.flush())
        }
    };
    result.map_err(|e| AppError::Io(format!("cannot write the generated stream: {e}")))
}
