//! `mfa-audit report`: the rows read back into one HTML page.

use super::{
    runtime,
    schema::{client, connection},
    AppError,
};
use crate::cli::ReportArgs;

/// `mfa-audit report`: the rows read back into one HTML page.
pub fn run(args: &ReportArgs) -> Result<(), AppError> {
    let report = match &args.from {
        Some(dir) => mfa_audit::report::from_folder(dir, args.policy.as_deref())
            .map_err(|e| AppError::Io(e.to_string()))?,
        None => {
            let conn = connection(&args.clickhouse)?;
            let ch = client(&conn)?;
            runtime()?
                .block_on(mfa_audit::report::from_clickhouse(&ch, args.policy.as_deref()))
                .map_err(|e| {
                    AppError::Io(format!(
                        "{e}\n(reading ClickHouse at {}; for a file-mode output folder use --from DIR)",
                        ch.shown_url()
                    ))
                })?
        }
    };
    let generated = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let page = mfa_audit::report::html::render(&report, &generated);
    mfa_audit::sink::file::write_new(&args.out, |w| std::io::Write::write_all(w, page.as_bytes()))
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
