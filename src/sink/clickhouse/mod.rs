//! ClickHouse: the production sink. Rows go as `JSONEachRow`, the same bytes the file
//! mode writes, which ClickHouse 18.16 and current releases both read. Migrations come
//! from `schemas/clickhouse/` (built into the binary) and are recorded as applied.
//!
//! - this file: the client ([`ClickHouse`], [`Connection`]) and the migrations;
//! - [`batch`]: the rows of one stream flush, written table by table;
//! - [`snapshots`]: the `tenant_snapshots` table, each tenant's checkpointed state (and
//!   `state_snapshots`, each partition's, as checkpoints were before).

pub mod batch;
pub mod snapshots;

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
pub const MIGRATIONS: [(u32, &str, &str); 5] = [
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
];

/// A ClickHouse request failed.
#[derive(Debug, Error)]
#[error("clickhouse at `{url}`: {what}: {source}")]
pub struct ClickHouseError {
    url: String,
    what: String,
    source: clickhouse::error::Error,
}

/// Where to find ClickHouse.
#[derive(Clone)]
pub struct Connection {
    /// HTTP endpoint.
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
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
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
    /// A client for `conn` (nothing is sent until the first request).
    pub fn new(conn: &Connection) -> Self {
        let server = Client::default()
            .with_url(&conn.url)
            .with_user(&conn.user)
            .with_password(&conn.password)
            .with_validation(conn.validation);
        let client = server.clone().with_database(&conn.database);
        Self {
            client,
            server,
            url: conn.url.clone(),
            database: conn.database.clone(),
            timeout: conn.timeout,
        }
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
        move |source| ClickHouseError {
            url: self.url.clone(),
            what,
            source,
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
                source: clickhouse::error::Error::TimedOut,
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
                    source: clickhouse::error::Error::Custom(e.to_string()),
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
    fn literals_are_escaped() {
        assert_eq!(escape("a'b\\c"), "a\\'b\\\\c");
    }
}
