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
            }
        }
        None => Connection {
            url: args.url.clone(),
            database: args.database.clone(),
            user: args.user.clone(),
            password: std::env::var("MFA_AUDIT_CLICKHOUSE_PASSWORD").unwrap_or_default(),
            validation: false,
            timeout: Duration::from_secs(30),
        },
    })
}

/// `mfa-audit schema apply`.
pub fn apply(args: &SchemaArgs) -> Result<(), AppError> {
    use mfa_audit::sink::clickhouse::ClickHouse;
    let conn = connection(args)?;
    let ch = ClickHouse::new(&conn);
    let applied = runtime()?
        .block_on(ch.apply_schema())
        .map_err(|e| AppError::Io(e.to_string()))?;
    if applied.is_empty() {
        println!("database `{}` at {}: up to date", conn.database, conn.url);
    } else {
        println!(
            "database `{}` at {}: applied {}",
            conn.database,
            conn.url,
            applied.join(", ")
        );
    }
    Ok(())
}
