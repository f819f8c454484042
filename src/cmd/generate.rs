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
    .and_then(|o| o.with_directory(args.directory_share, args.tenant.as_deref()))
    .and_then(|o| o.with_detections(args.detection_share))
    .map(|o| o.with_world_seed(args.world_seed))
    .map_err(AppError::Usage)?;
    // Which tenant the Graph exports belong to, and what the run needs to place them.
    if let Some(id) = options
        .tenant
        .as_deref()
        .filter(|_| options.graph_exports())
    {
        eprintln!(
            "mfa-audit generate: the Microsoft Graph exports (userRegistrationDetails, \
             delegatedAdminRelationships, accessAssignments) are tenant {id}'s and name no \
             tenant: run the stream with `--tenant {id}`"
        );
    } else if options.directory_share > 0.0 {
        eprintln!(
            "mfa-audit generate: Entra audit records only; `--tenant ID` also writes the first \
             tenant's Graph exports (registration report, GDAP), which name no tenant"
        );
    }
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
