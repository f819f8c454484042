//! `mfa-audit schema apply`, and where a command finds ClickHouse.

use super::{env_vars, runtime, AppError};
use crate::cli::SchemaArgs;
use std::time::Duration;

/// Where `args` says ClickHouse is.
pub fn connection(args: &SchemaArgs) -> Result<mfa_audit::sink::clickhouse::Connection, AppError> {
    use mfa_audit::sink::clickhouse::Connection;
    Ok(match &args.config {
        Some(path) => {
            let shown = path.display().to_string();
            let c = mfa_audit::config::Config::load(path, &env_vars())?;
            Connection {
                url: c.clickhouse.url.clone(),
                database: c.clickhouse.database.clone(),
                user: c.clickhouse.user.clone(),
                password: c.clickhouse_password(&shown)?,
                validation: c.clickhouse.validation,
                timeout: Duration::from_millis(c.clickhouse.request_timeout_ms),
                ca_file: c.clickhouse.ca_file.clone(),
                allow_plaintext: c.clickhouse.allow_plaintext,
            }
        }
        None => Connection {
            password: std::env::var("MFA_AUDIT_CLICKHOUSE_PASSWORD").unwrap_or_default(),
            ca_file: args.ca_file.clone(),
            allow_plaintext: args.allow_plaintext,
            ..Connection::new(&args.url, &args.database, &args.user)
        },
    })
}

/// A client for `conn`; a refused URL, database name or CA file is a usage error.
pub fn client(
    conn: &mfa_audit::sink::clickhouse::Connection,
) -> Result<mfa_audit::sink::clickhouse::ClickHouse, AppError> {
    mfa_audit::sink::clickhouse::ClickHouse::new(conn).map_err(|e| AppError::Usage(e.to_string()))
}

/// `mfa-audit schema apply`.
pub fn apply(args: &SchemaArgs) -> Result<(), AppError> {
    let conn = connection(args)?;
    let ch = client(&conn)?;
    let applied = runtime()?
        .block_on(ch.apply_schema())
        .map_err(|e| AppError::Io(e.to_string()))?;
    if applied.is_empty() {
        println!(
            "database `{}` at {}: up to date",
            conn.database,
            ch.shown_url()
        );
    } else {
        println!(
            "database `{}` at {}: applied {}",
            conn.database,
            ch.shown_url(),
            applied.join(", ")
        );
    }
    Ok(())
}
