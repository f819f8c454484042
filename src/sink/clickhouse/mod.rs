//! ClickHouse: the production sink. Rows go as `JSONEachRow`, the same bytes the file
//! mode writes, which ClickHouse 18.16 and current releases both read. Migrations come
//! from `schemas/clickhouse/` (built into the binary) and are recorded as applied.
//!
//! - this file: the client ([`ClickHouse`], [`Connection`]) and the migrations;
//! - [`batch`]: the rows of one stream flush, written table by table;
//! - [`snapshots`]: the `tenant_snapshots` table, each tenant's checkpointed state (and
//!   `state_snapshots`, each partition's, as checkpoints were before);
//! - [`transport`]: the URL rules and the HTTPS client.

pub mod batch;
pub mod snapshots;
pub mod transport;

pub use batch::Batch;
pub use snapshots::StoredSnapshot;

use bytes::Bytes;
use clickhouse::Client;
use std::time::Duration;
use thiserror::Error;

/// The columns a `dead_letters` insert names, so `received_at` takes the server's time.
pub const DEAD_LETTER_COLUMNS: &str = "source, position, reason, excerpt";

/// The table that records which migrations were applied (created before any of them).
pub const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations \
     (version UInt32, name String, applied_at DateTime('UTC') DEFAULT now()) \
     ENGINE = MergeTree ORDER BY version";

/// The migrations, in order: (version, name, SQL). Every file of `schemas/clickhouse/`
/// is one (`tests/dashboards.rs` checks it).
pub const MIGRATIONS: [(u32, &str, &str); 6] = [
    (
        1,
        "001_tables",
        include_str!("../../../schemas/clickhouse/001_tables.sql"),
    ),
    (
        2,
        "002_state_snapshots",
        include_str!("../../../schemas/clickhouse/002_state_snapshots.sql"),
    ),
    (
        3,
        "003_rollout_surfaces",
        include_str!("../../../schemas/clickhouse/003_rollout_surfaces.sql"),
    ),
    (
        4,
        "004_demanded",
        include_str!("../../../schemas/clickhouse/004_demanded.sql"),
    ),
    (
        5,
        "005_tenant_snapshots",
        include_str!("../../../schemas/clickhouse/005_tenant_snapshots.sql"),
    ),
    (
        6,
        "006_findings_context",
        include_str!("../../../schemas/clickhouse/006_findings_context.sql"),
    ),
];

/// A ClickHouse request failed. Its message shows the URL without credentials and, for
/// an exception ClickHouse answered, only its code and the start of its text (see
/// [`summary`]).
#[derive(Debug, Error)]
#[error("clickhouse at `{url}`: {what}: {}", summary(cause))]
pub struct ClickHouseError {
    url: String,
    what: String,
    cause: clickhouse::error::Error,
}

impl ClickHouseError {
    /// The crate's error (its text may quote rows: print [`summary`] of it).
    pub fn cause(&self) -> &clickhouse::error::Error {
        &self.cause
    }
}

/// The longest exception text shown from a ClickHouse answer.
pub const MAX_EXCEPTION_CHARS: usize = 200;

/// A ClickHouse error as it may be logged. An exception ClickHouse answered (`Code: 27
/// ... Cannot parse input: expected " before: <the row>`) quotes the input it could not
/// parse, which may be a row's text and so a secret: only its code and its text up to the
/// first quote, `before:` or line end are shown, at most [`MAX_EXCEPTION_CHARS`]. A
/// network error shows its causes (a certificate problem is named there).
pub fn summary(e: &clickhouse::error::Error) -> String {
    match e {
        clickhouse::error::Error::BadResponse(text) => exception_summary(text),
        clickhouse::error::Error::Network(_) => {
            let mut out = e.to_string();
            let mut next = std::error::Error::source(e);
            while let Some(cause) = next {
                let t = cause.to_string();
                if !out.contains(&t) {
                    out.push_str(": ");
                    out.push_str(&t);
                }
                next = cause.source();
            }
            out
        }
        // mfa-audit's own refusals (URL, database name, CA file) say it all.
        clickhouse::error::Error::Unsupported(message) => message.clone(),
        other => other.to_string(),
    }
}

/// [`summary`] of an exception's text.
fn exception_summary(text: &str) -> String {
    let code = text
        .split_once("Code: ")
        .map(|(_, rest)| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .filter(|c| !c.is_empty());
    let message = text
        .split_once("DB::Exception: ")
        .map_or(text, |(_, rest)| rest);
    let cut = ['"', '\'', '`', '\n', '\r']
        .iter()
        .filter_map(|c| message.find(*c))
        .chain(message.find("before:"))
        .chain(message.find(", e.what()"))
        .min()
        .unwrap_or(message.len());
    let kept = message.get(..cut).unwrap_or_default().trim_end();
    let mut shown: String = kept.chars().take(MAX_EXCEPTION_CHARS).collect();
    if cut < message.len() || shown.len() < kept.len() {
        shown.push_str(" [rest not shown]");
    }
    match code {
        Some(c) => format!("server exception, code {c}: {shown}"),
        None => format!("server answered: {shown}"),
    }
}

/// Where to find ClickHouse.
#[derive(Clone)]
pub struct Connection {
    /// HTTP(S) endpoint, without credentials.
    pub url: String,
    /// Database.
    pub database: String,
    /// User.
    pub user: String,
    /// Password (never shown).
    pub password: String,
    /// Check row types against the server's (ClickHouse 23.x or later).
    pub validation: bool,
    /// Longest wait for one request.
    pub timeout: Duration,
    /// PEM certificates trusted for `https://` besides the Mozilla roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Plain `http://` to another host is accepted (else refused).
    pub allow_plaintext: bool,
}

impl Connection {
    /// A connection to `url` with no password, no CA file, no validation, 30 s requests.
    pub fn new(url: &str, database: &str, user: &str) -> Self {
        Self {
            url: url.to_owned(),
            database: database.to_owned(),
            user: user.to_owned(),
            password: String::new(),
            validation: false,
            timeout: Duration::from_secs(30),
            ca_file: None,
            allow_plaintext: false,
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &transport::shown_url(&self.url))
            .field("database", &self.database)
            .field("user", &self.user)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

/// A client bound to the configured database.
#[derive(Clone)]
pub struct ClickHouse {
    client: Client,
    server: Client,
    url: String,
    database: String,
    timeout: Duration,
}

impl ClickHouse {
    /// A client for `conn` (nothing is sent until the first request). Refused: a URL
    /// with credentials, plain HTTP to another host without `allow_plaintext`, a CA file
    /// that is unreadable or holds no certificate.
    pub fn new(conn: &Connection) -> Result<Self, ClickHouseError> {
        let url = transport::shown_url(&conn.url);
        let refused = |what: &str, message: String| ClickHouseError {
            url: url.clone(),
            what: what.to_owned(),
            cause: clickhouse::error::Error::Unsupported(message),
        };
        transport::check_url(&conn.url, conn.allow_plaintext).map_err(|m| refused("url", m))?;
        check_database(&conn.database).map_err(|m| refused("database", m))?;
        let server = transport::http_client(conn.ca_file.as_deref())
            .map_err(|e| refused("tls setup", e.to_string()))?
            .with_url(&conn.url)
            .with_user(&conn.user)
            .with_password(&conn.password)
            .with_validation(conn.validation);
        let client = server.clone().with_database(&conn.database);
        Ok(Self {
            client,
            server,
            url,
            database: conn.database.clone(),
            timeout: conn.timeout,
        })
    }

    /// The URL as it may be printed (no credentials).
    pub fn shown_url(&self) -> &str {
        &self.url
    }

    /// The database.
    pub fn database(&self) -> &str {
        &self.database
    }

    fn err(
        &self,
        what: impl Into<String>,
    ) -> impl FnOnce(clickhouse::error::Error) -> ClickHouseError + '_ {
        let what = what.into();
        move |cause| ClickHouseError {
            url: self.url.clone(),
            what,
            cause,
        }
    }

    async fn bounded<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = clickhouse::error::Result<T>>,
    ) -> Result<T, ClickHouseError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r.map_err(self.err(what)),
            Err(_) => Err(ClickHouseError {
                url: self.url.clone(),
                what: what.to_owned(),
                cause: clickhouse::error::Error::TimedOut,
            }),
        }
    }

    /// `SELECT 1`.
    pub async fn ping(&self) -> Result<(), ClickHouseError> {
        self.bounded("ping", self.server.query("SELECT 1").execute())
            .await
    }

    /// Inserts NDJSON rows (`JSONEachRow`) into `table`; `columns` names the columns the
    /// rows carry when the table has more (defaults fill the rest).
    pub async fn insert(
        &self,
        table: &str,
        columns: Option<&str>,
        rows: Bytes,
    ) -> Result<(), ClickHouseError> {
        if rows.is_empty() {
            return Ok(());
        }
        let cols = columns.map(|c| format!(" ({c})")).unwrap_or_default();
        let sql = format!("INSERT INTO {table}{cols} FORMAT JSONEachRow");
        let what = format!("insert into `{table}`");
        self.bounded(&what, async {
            let mut insert = self.client.insert_formatted_with(sql);
            insert.send(rows).await?;
            insert.end().await
        })
        .await
    }

    /// A query's answer as `JSONEachRow` text.
    async fn each_row(&self, client: &Client, sql: &str) -> Result<String, ClickHouseError> {
        let bytes = self
            .bounded("query", async {
                client
                    .query(sql)
                    .fetch_bytes("JSONEachRow")?
                    .collect()
                    .await
            })
            .await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Runs a query and returns its rows as JSON objects.
    pub async fn rows(&self, sql: &str) -> Result<Vec<serde_json::Value>, ClickHouseError> {
        let text = self.each_row(&self.client, sql).await?;
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    /// Runs a query and decodes each row as `T`, with 64-bit integers as JSON numbers
    /// (ClickHouse quotes them by default). A row that does not decode is an error.
    pub async fn records<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
    ) -> Result<Vec<T>, ClickHouseError> {
        let client = self
            .client
            .clone()
            .with_setting("output_format_json_quote_64bit_integers", "0");
        let text = self.each_row(&client, sql).await?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).map_err(|e| ClickHouseError {
                    url: self.url.clone(),
                    what: format!("decoding a row of `{sql}`"),
                    cause: clickhouse::error::Error::Custom(e.to_string()),
                })
            })
            .collect()
    }

    /// Runs a statement.
    pub async fn execute(&self, sql: &str) -> Result<(), ClickHouseError> {
        self.bounded("statement", self.client.query(sql).execute())
            .await
    }

    /// Creates the database and applies every migration not yet recorded; returns the
    /// names applied now.
    pub async fn apply_schema(&self) -> Result<Vec<&'static str>, ClickHouseError> {
        let db = &self.database;
        self.bounded(
            "create database",
            self.server
                .query(&format!("CREATE DATABASE IF NOT EXISTS {db}"))
                .execute(),
        )
        .await?;
        self.execute(MIGRATIONS_TABLE).await?;
        let applied: Vec<u64> = self
            .rows("SELECT version FROM schema_migrations")
            .await?
            .iter()
            .filter_map(|r| r["version"].as_u64())
            .collect();
        let mut now = Vec::new();
        for (version, name, sql) in MIGRATIONS {
            if applied.contains(&u64::from(version)) {
                continue;
            }
            for statement in statements(sql) {
                self.execute(&statement).await?;
            }
            let row = serde_json::json!({"version": version, "name": name}).to_string();
            self.insert("schema_migrations", Some("version, name"), Bytes::from(row))
                .await?;
            now.push(name);
        }
        Ok(now)
    }
}

/// Splits a migration into statements (separated by a line holding only `;`), without
/// its comment lines.
pub fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let t = line.trim();
        if t == ";" {
            if !current.trim().is_empty() {
                out.push(std::mem::take(&mut current));
            }
            current.clear();
        } else if !t.starts_with("--") {
            current.push_str(line);
            current.push('\n');
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

/// Checks a database name: an identifier (`^[A-Za-z_][A-Za-z0-9_]*$`), since it is
/// written unquoted into `CREATE DATABASE` and every query.
pub fn check_database(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!(
            "database name `{}` is not an identifier (letters, digits and `_`, not starting with a digit)",
            name.escape_debug()
        ))
    }
}

/// Escapes a value for a single-quoted ClickHouse string literal.
pub fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_split_into_statements() {
        let s = statements(MIGRATIONS[0].2);
        assert_eq!(s.len(), 4, "{s:#?}");
        assert!(s
            .iter()
            .all(|x| x.trim_start().starts_with("CREATE TABLE IF NOT EXISTS")));
        assert_eq!(statements(MIGRATIONS[1].2).len(), 1);
        assert_eq!(statements(MIGRATIONS[2].2).len(), 1);
        assert_eq!(statements(MIGRATIONS[4].2).len(), 1);
    }

    #[test]
    fn database_names_are_identifiers() {
        for ok in ["mfa_audit", "_x", "A1"] {
            assert!(check_database(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1db",
            "sec_inj ENGINE = Ordinary",
            "a-b",
            "db;DROP",
            "é",
        ] {
            assert!(check_database(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_insert_error_shows_its_code_not_the_row() {
        // ClickHouse 18.16's answer to a row it cannot parse (F16 of the security review
        // of 2026-12): the input follows `before:`.
        let old = "Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected \" before: wrong_type: invalid value: string \\\"Bearer eyJhbGciOiJIUzI1NiJ9.eyJ0aWQiOiIzNiJ9\\\"\n\nRow 1:\nColumn 0, name: source, type: String, parsed text: \"<EMPTY>\"ERROR\n, e.what() = DB::Exception\n";
        let shown = summary(&clickhouse::error::Error::BadResponse(old.to_owned()));
        assert!(
            !shown.contains("eyJ") && !shown.contains("Bearer"),
            "{shown}"
        );
        assert!(
            shown.contains("code 27") && shown.contains("Cannot parse input"),
            "{shown}"
        );
        // Current ClickHouse quotes with single quotes.
        let new = "Code: 27. DB::Exception: Cannot parse input: expected '\"' before: 'Bearer eyJhbGciOi': (at row 1)\n: While executing ParallelParsingBlockInputFormat. (CANNOT_PARSE_INPUT_ASSERTION_FAILED) (version 26.9.1.1)";
        let shown = summary(&clickhouse::error::Error::BadResponse(new.to_owned()));
        assert!(!shown.contains("eyJ"), "{shown}");
        assert!(shown.contains("code 27"), "{shown}");
        // A long message without quotes is cut at MAX_EXCEPTION_CHARS.
        let long = format!("Code: 1. DB::Exception: {}", "x".repeat(5000));
        let shown = summary(&clickhouse::error::Error::BadResponse(long));
        assert!(shown.len() < MAX_EXCEPTION_CHARS + 60, "{}", shown.len());
    }

    #[test]
    fn literals_are_escaped() {
        assert_eq!(escape("a'b\\c"), "a\\'b\\\\c");
    }
}
