//! The Grafana dashboards of `dashboards/grafana/`: every ClickHouse query of every panel and
//! template variable runs on rows the processor itself made (generated stream, file mode,
//! loaded into a fresh database) under each policy version in the data, for the busiest
//! agent's tenant and for All, and returns rows; the enforcement-date panel says what the
//! policy files say; every PromQL expression parses with promtool and names only metrics
//! and labels the process registers; the JSON agrees with the provisioning.
//!
//! The same queries, and every migration of `schemas/clickhouse/`, also run on current
//! ClickHouse: chDB (ClickHouse as a Python module) embeds one, driven through
//! `scripts/chdb-session.py`.
//!
//! ClickHouse 18.16 must answer on 127.0.0.1:8123 (`MFA_SERVICES_CLICKHOUSE_HTTP_PORT`), and chDB must be installed in
//! `.services/chdb-venv`: the tests that need them fail, saying how to get them, when they
//! are not. Run with `--nocapture` to see how many queries ran, and on which version.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure is reported by panicking"
)]

mod common;

use common::{bin, ok};

use common::grafana::{self, Language, PromRange, Query, SqlContext, TimeRange};
use mfa_audit::sink::clickhouse::{ClickHouse, Connection};
use mfa_audit::telemetry::Metrics;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// Events to generate: enough for every rule, a few legacy-protocol sign-ins per tenant.
const EVENTS: &str = "6000";
/// A seed whose stream holds an open technical exception request.
const SEED: &str = "6";
/// Appended to the stream so `dead_letters` has rows too.
const BAD_LINES: &str = "not json at all\n{\"type\":\"no_such_kind\"}\n";

fn require_clickhouse() {
    let addr = common::service_addr("CLICKHOUSE_HTTP", 8123);
    assert!(
        TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)).is_ok(),
        "clickhouse is not answering on {addr}: start it with \
         `scripts/services start clickhouse` (scripts/test does it)"
    );
}

/// A query's result: column names and rows, in the server's order (`JSONCompact`, which
/// ClickHouse 18.16 has).
struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

impl Table {
    /// A `JSONCompact` document's columns and rows.
    fn from_json_compact(doc: &Value) -> Table {
        let columns = doc["meta"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| text(&c["name"]))
            .collect();
        let rows = doc["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r.as_array().cloned().unwrap_or_default())
            .collect();
        Table { columns, rows }
    }

    /// The first column as text (a variable query's values).
    fn first_column(&self) -> Vec<String> {
        self.rows.iter().map(|r| text(&r[0])).collect()
    }

    fn column(&self, name: &str) -> Vec<String> {
        let i = self
            .columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no column `{name}` in {:?}", self.columns));
        self.rows.iter().map(|r| text(&r[i])).collect()
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A client for one database, with a runtime to drive it.
struct Client {
    client: clickhouse::Client,
    rt: tokio::runtime::Runtime,
}

impl Client {
    fn new(database: &str) -> Client {
        Client {
            client: clickhouse::Client::default()
                .with_url(common::clickhouse_url())
                .with_database(database),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    /// Runs a query as Grafana would send it (the client's `?` binding escaped).
    fn query(&self, sql: &str) -> Result<Table, String> {
        let escaped = sql.replace('?', "??");
        let bytes = self
            .rt
            .block_on(async {
                self.client
                    .query(&escaped)
                    .fetch_bytes("JSONCompact")?
                    .collect()
                    .await
            })
            .map_err(|e| e.to_string())?;
        let doc: Value = serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "the answer is not JSONCompact ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })?;
        Ok(Table::from_json_compact(&doc))
    }
}

/// A ClickHouse holding the project's schema in its current database, whichever version.
trait Backend {
    /// Runs a query as Grafana would send it; the server's error when it fails.
    fn query(&self, sql: &str) -> Result<Table, String>;

    /// Loads an NDJSON file of the file mode into `table` as the sink inserts it
    /// (`INSERT INTO table (columns) FORMAT JSONEachRow`, defaults for the columns left out).
    fn load(&self, table: &str, columns: Option<&str>, file: &Path) -> Result<(), String>;

    /// A query that must succeed.
    fn must(&self, sql: &str) -> Table {
        self.query(sql).unwrap_or_else(|e| panic!("{sql}\n{e}"))
    }
}

/// A fresh database with the project's schema, dropped at the end.
struct Db {
    name: String,
    client: Client,
}

impl Db {
    fn create(test: &str) -> Db {
        require_clickhouse();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let name = format!("t_{test}_{}_{stamp}", std::process::id());
        ok(
            bin()
                .args([
                    "schema",
                    "apply",
                    "--url",
                    &common::clickhouse_url(),
                    "--database",
                    &name,
                ])
                .output()
                .unwrap(),
            "schema apply",
        );
        Db {
            client: Client::new(&name),
            name,
        }
    }
}

/// ClickHouse 18.16 over HTTP; rows go in with the sink's own insert.
impl Backend for Db {
    fn query(&self, sql: &str) -> Result<Table, String> {
        self.client.query(sql)
    }

    fn load(&self, table: &str, columns: Option<&str>, file: &Path) -> Result<(), String> {
        let body = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let ch = ClickHouse::new(&Connection {
            url: common::clickhouse_url(),
            database: self.name.clone(),
            user: "default".into(),
            password: String::new(),
            validation: false,
            timeout: Duration::from_secs(60),
            ca_file: None,
            allow_plaintext: false,
        })
        .unwrap();
        self.client
            .rt
            .block_on(ch.insert(table, columns, bytes::Bytes::from(body)))
            .map_err(|e| e.to_string())
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let server = Client::new("default");
        let _ = server.rt.block_on(
            server
                .client
                .query(&format!("DROP DATABASE IF EXISTS {}", self.name))
                .execute(),
        );
    }
}

/// The venv `scripts/services tools` installs chDB into.
fn chdb_python() -> PathBuf {
    common::services_dir().join("chdb-venv/bin/python")
}

const CHDB_INSTALL: &str = "install it with `scripts/services tools` (scripts/test does it)";

/// Current ClickHouse, embedded: one `scripts/chdb-session.py` process (one chDB session,
/// its data in a temporary directory), one JSON request and answer per line.
struct Chdb {
    child: Child,
    io: RefCell<Option<(ChildStdin, BufReader<ChildStdout>)>>,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Chdb {
    /// Starts a session; fails, saying how to install it, when chDB is not installed.
    fn start() -> Chdb {
        let python = chdb_python();
        assert!(
            python.is_file(),
            "chDB (current ClickHouse, embedded) is not installed: no {}; {CHDB_INSTALL}",
            python.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let stderr = dir.path().join("chdb-session.stderr");
        let mut child = Command::new(&python)
            .arg(common::root().join("scripts/chdb-session.py"))
            .arg(dir.path().join("data"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{} cannot run ({e}); {CHDB_INSTALL}", python.display()));
        let io = (
            child.stdin.take().unwrap(),
            BufReader::new(child.stdout.take().unwrap()),
        );
        Chdb {
            child,
            io: RefCell::new(Some(io)),
            stderr,
            _dir: dir,
        }
    }

    /// Sends one request, returns its answer's `data`, or its error.
    fn request(&self, request: Value) -> Result<Value, String> {
        let mut io = self.io.borrow_mut();
        let (stdin, stdout) = io.as_mut().expect("the session is open");
        let mut answer = String::new();
        let exchanged = writeln!(stdin, "{request}")
            .and_then(|()| stdin.flush())
            .and_then(|()| stdout.read_line(&mut answer));
        if !matches!(exchanged, Ok(n) if n > 0) {
            let said = std::fs::read_to_string(&self.stderr).unwrap_or_default();
            panic!(
                "scripts/chdb-session.py stopped answering ({exchanged:?}); if chDB is \
                 missing or broken, {CHDB_INSTALL}. Its stderr:\n{said}"
            );
        }
        let answer: Value = serde_json::from_str(&answer).unwrap_or_else(|e| {
            panic!("scripts/chdb-session.py answered non-JSON ({e}): {answer}")
        });
        if answer["ok"] == true {
            Ok(answer["data"].clone())
        } else {
            Err(text(&answer["error"]))
        }
    }
}

/// ClickHouse 26.9 (chDB 4.4.0) in the helper process; rows go in with the statement the
/// sink sends, the file as its body.
impl Backend for Chdb {
    fn query(&self, sql: &str) -> Result<Table, String> {
        let data = self.request(serde_json::json!({ "sql": sql }))?;
        Ok(Table::from_json_compact(&data))
    }

    fn load(&self, table: &str, columns: Option<&str>, file: &Path) -> Result<(), String> {
        let cols = columns.map(|c| format!(" ({c})")).unwrap_or_default();
        let sql = format!("INSERT INTO {table}{cols} FORMAT JSONEachRow");
        self.request(serde_json::json!({ "sql": sql, "file": file }))
            .map(drop)
    }
}

impl Drop for Chdb {
    /// Closes the session's stdin and waits for it to end (killed after 30 s).
    fn drop(&mut self) {
        drop(self.io.borrow_mut().take());
        let deadline = Instant::now() + Duration::from_secs(30);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Generates a stream, runs the file mode under every shipped policy and loads the five
/// files of each into `db`.
fn load_generated_rows(db: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("stream.ndjson");
    ok(
        bin()
            .args(["generate", "--events", EVENTS, "--seed", SEED, "--out"])
            .arg(&input)
            .output()
            .unwrap(),
        "generate",
    );
    let mut stream = std::fs::read_to_string(&input).unwrap();
    stream.push_str(BAD_LINES);
    std::fs::write(&input, stream).unwrap();
    let mut loaded: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, (policy, _)) in mfa_audit::policy::SHIPPED.iter().enumerate() {
        let out = dir.path().join(policy);
        ok(
            bin()
                .args(["run", "-q", "--policy", policy, "--input"])
                .arg(&input)
                .arg("--out")
                .arg(&out)
                .output()
                .unwrap(),
            "run (file mode)",
        );
        for (table, columns) in [
            ("findings", None),
            ("rollout_daily", None),
            ("rollout_surfaces", None),
            ("agents", None),
            (
                "dead_letters",
                Some(mfa_audit::sink::clickhouse::DEAD_LETTER_COLUMNS),
            ),
        ] {
            if table == "dead_letters" && i > 0 {
                continue; // the same input lines: one row per position whatever the policy
            }
            let file = out.join(format!("{table}.ndjson"));
            db.load(table, columns, &file)
                .unwrap_or_else(|e| panic!("loading {}: {e}", file.display()));
            let lines = std::fs::read_to_string(&file)
                .unwrap()
                .lines()
                .filter(|l| !l.is_empty())
                .count();
            *loaded.entry(table).or_default() += lines;
        }
    }
    for (table, n) in loaded {
        let stored = db.must(&format!("SELECT count() AS n FROM {table} FINAL"));
        assert!(n > 0, "the file mode wrote no `{table}` rows");
        assert_eq!(
            stored.column("n"),
            vec![n.to_string()],
            "`{table}` holds the rows loaded"
        );
    }
}

/// The ClickHouse query filling template variable `name` in `dashboard`.
fn variable_query<'a>(queries: &'a [Query], dashboard: &str, name: &str) -> &'a Query {
    queries
        .iter()
        .find(|q| q.dashboard == dashboard && q.variable.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("{dashboard} has no ClickHouse variable `{name}`"))
}

/// Runs every dashboard query on `db`, which holds the generated rows: under each policy
/// version in the data, for the busiest agent's tenant and for All, each must return rows.
/// Returns how many ran, and how many the dashboards hold.
fn run_every_dashboard_query(db: &dyn Backend) -> (usize, usize) {
    let queries = grafana::sql_queries();
    let dashboards: BTreeSet<&str> = queries.iter().map(|q| q.dashboard.as_str()).collect();
    assert!(
        dashboards.len() >= 3 && queries.len() >= 20,
        "expected the three ClickHouse dashboards' queries, found {} in {dashboards:?}",
        queries.len()
    );

    // The dashboard range covers the data, a day either side; ~200 points per series.
    let span = db.must(
        "SELECT toUInt32(min(event_time)) AS lo, toUInt32(max(event_time)) AS hi FROM findings",
    );
    let lo: i64 = span.column("lo")[0].parse().unwrap();
    let hi: i64 = span.column("hi")[0].parse().unwrap();
    let range = TimeRange {
        from: lo - lo.rem_euclid(86_400) - 86_400,
        to: hi + 86_400,
    };
    let interval_s = ((range.to - range.from) / 200).max(1);
    let run = |sql: &str, variables: &BTreeMap<String, Vec<String>>| -> Result<Table, String> {
        let cx = SqlContext {
            range,
            interval_s,
            variables,
        };
        let expanded = grafana::expand_sql(sql, &cx)?;
        db.query(&expanded)
            .map_err(|e| format!("{e}\n--- as sent:\n{expanded}"))
    };

    // Every dashboard's `policy` variable lists every version in the data: a readiness
    // dashboard (its variable reads `rollout_daily`) every version with a readiness, one
    // that shows findings every version (the detection pack included).
    let mut policies: Option<Vec<String>> = None;
    for d in &dashboards {
        let q = variable_query(&queries, d, "policy");
        let got = run(&q.text, &BTreeMap::new())
            .unwrap_or_else(|e| panic!("{}: {e}", q.label()))
            .first_column();
        let mut sorted = got.clone();
        sorted.sort();
        let of_findings = q.text.contains("FROM findings");
        let mut shipped: Vec<String> = mfa_audit::policy::SHIPPED
            .iter()
            .filter(|(n, _)| of_findings || mfa_audit::policy::load(n).unwrap().readiness.is_some())
            .map(|(n, _)| n.to_string())
            .collect();
        shipped.sort();
        assert_eq!(sorted, shipped, "{}", q.label());
        policies = Some(got);
    }

    let mut ran = 0;
    let mut failures = Vec::new();
    for policy in policies.unwrap_or_default() {
        // A version with partner roles has agents: the agent with the most findings among
        // those the drill-down can show whole (in the directory, with a legacy-protocol
        // sign-in). One without (Azure's mandatory MFA counts every user alike) has no
        // agents rows: the user with the most findings, and the panels that read the
        // agents table may be empty.
        let has_agents = policy_has_agents(&policy);
        let pick = if has_agents {
            db.must(&format!(
                "SELECT tenant_id, user_id, count() AS n FROM findings FINAL \
                 WHERE policy_version = '{policy}' AND user_id IN \
                   (SELECT user_id FROM agents FINAL WHERE policy_version = '{policy}') \
                 GROUP BY tenant_id, user_id \
                 HAVING countIf(rule_id = 'LEGACY_PROTOCOL') > 0 \
                 ORDER BY n DESC, user_id LIMIT 1"
            ))
        } else {
            db.must(&format!(
                "SELECT tenant_id, user_id, count() AS n FROM findings FINAL \
                 WHERE policy_version = '{policy}' AND user_id != '' \
                 GROUP BY tenant_id, user_id ORDER BY n DESC, user_id LIMIT 1"
            ))
        };
        assert_eq!(
            pick.rows.len(),
            1,
            "under {policy} no user (agent with a legacy-protocol finding) to drill into: generate more events"
        );
        let tenant = pick.column("tenant_id")[0].clone();
        let user = pick.column("user_id")[0].clone();

        let mut variables = BTreeMap::from([
            ("policy".to_owned(), vec![policy.clone()]),
            ("tenant".to_owned(), vec![tenant.clone()]),
            ("user".to_owned(), vec![user.clone()]),
        ]);
        // All: every value of the tenant variable's query (no custom all value).
        let tenant_q = variable_query(&queries, dashboards.first().unwrap(), "tenant");
        let all_tenants = run(&tenant_q.text, &variables)
            .unwrap_or_else(|e| panic!("{}: {e}", tenant_q.label()))
            .first_column();
        assert!(
            all_tenants.contains(&tenant),
            "{}: `{tenant}` is not among its values",
            tenant_q.label()
        );

        for (scenario, tenants) in [("one tenant", vec![tenant.clone()]), ("All", all_tenants)] {
            variables.insert("tenant".to_owned(), tenants);
            for q in &queries {
                ran += 1;
                let what = format!("{} [{policy}, {scenario}]", q.label());
                match run(&q.text, &variables) {
                    Err(e) => failures.push(format!("{what}: error: {e}")),
                    Ok(t)
                        if t.rows.is_empty()
                            && (has_agents || !reads_agents(&q.text))
                            && !names_a_rule_not_in(&q.text, &policy) =>
                    {
                        failures.push(format!("{what}: no rows"))
                    }
                    Ok(t) if t.rows.is_empty() => {}
                    Ok(t) => {
                        if q.variable.as_deref() == Some("user")
                            && !t.first_column().contains(&user)
                        {
                            failures.push(format!("{what}: the chosen user `{user}` is missing"));
                        }
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} dashboard queries failed or returned no rows:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    (ran, queries.len())
}

/// Whether a shipped version names partner roles (and so writes `agents` rows).
fn policy_has_agents(policy: &str) -> bool {
    !mfa_audit::policy::load(policy)
        .unwrap()
        .partner_roles
        .is_empty()
}

/// Whether a panel's query names a rule id (`'LEGACY_PROTOCOL'`) of some shipped version
/// that `policy` does not have: its panel is empty under that version by design.
fn names_a_rule_not_in(sql: &str, policy: &str) -> bool {
    let own = mfa_audit::policy::load(policy).unwrap();
    mfa_audit::policy::SHIPPED.iter().any(|(name, _)| {
        mfa_audit::policy::load(name)
            .unwrap()
            .rules
            .iter()
            .any(|r| {
                sql.contains(&format!("'{}'", r.id)) && !own.rules.iter().any(|o| o.id == r.id)
            })
    })
}

/// Whether a panel's query reads the `agents` table (or the users it lists).
fn reads_agents(sql: &str) -> bool {
    sql.contains("FROM agents") || sql.contains("FROM mfa_audit.agents")
}

/// The server's version.
fn version(db: &dyn Backend) -> String {
    db.must("SELECT version() AS v").column("v")[0].clone()
}

#[test]
fn every_clickhouse_query_returns_rows_on_generated_data() {
    let started = Instant::now();
    let db = Db::create("dashboards");
    load_generated_rows(&db);
    let (ran, in_dashboards) = run_every_dashboard_query(&db);
    println!(
        "dashboards: ran {ran} ClickHouse queries ({in_dashboards} in the dashboards) on \
         ClickHouse {} in {:.1?}",
        version(&db),
        started.elapsed()
    );
}

/// The schema and every dashboard query on current ClickHouse too: every migration of
/// `schemas/clickhouse/`, in file order, split as `schema apply` splits it, in a fresh
/// database; then the same rows and the same queries as on 18.16.
#[test]
fn every_query_and_the_ddl_run_on_current_clickhouse() {
    let started = Instant::now();
    let db = Chdb::start();
    let database = "mfa_audit";
    db.must(&format!("CREATE DATABASE {database}"));
    db.must(&format!("USE {database}"));

    // What `schema apply` runs: the migrations table, then every migration the binary
    // embeds (which must be every file of schemas/clickhouse/), each recorded.
    use mfa_audit::sink::clickhouse::{statements as split, MIGRATIONS, MIGRATIONS_TABLE};
    let dir = common::root().join("schemas/clickhouse");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    files.sort();
    let embedded: Vec<String> = MIGRATIONS
        .iter()
        .map(|(_, name, _)| format!("{name}.sql"))
        .collect();
    assert_eq!(
        files,
        embedded,
        "every file of {} is a migration",
        dir.display()
    );
    let migrations = &MIGRATIONS;
    let mut statements = 1;
    let mut failures = Vec::new();
    if let Err(e) = db.query(MIGRATIONS_TABLE) {
        failures.push(format!("the migrations table: {e}"));
    }
    for (version, name, sql) in migrations {
        for statement in split(sql) {
            statements += 1;
            if let Err(e) = db.query(&statement) {
                failures.push(format!("{name}.sql: {e}\n--- statement:\n{statement}"));
            }
        }
        statements += 1;
        if let Err(e) = db.query(&format!(
            "INSERT INTO schema_migrations (version, name) VALUES ({version}, '{name}')"
        )) {
            failures.push(format!("recording {name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {statements} DDL statements fail on ClickHouse {}:\n{}",
        failures.len(),
        version(&db),
        failures.join("\n\n")
    );

    load_generated_rows(&db);
    let (ran, in_dashboards) = run_every_dashboard_query(&db);
    println!(
        "dashboards: applied {statements} DDL statements of {} migrations and ran {ran} \
         ClickHouse queries ({in_dashboards} in the dashboards) on ClickHouse {} (chDB) in {:.1?}",
        migrations.len(),
        version(&db),
        started.elapsed()
    );
}

/// The per-surface share panel draws whatever surfaces `rollout_surfaces` holds for the
/// chosen policy version, a policy's own (here `azure_admin_portals`) as well as the shipped
/// ones, with the share of known MFA, for the chosen tenants and days only.
#[test]
fn surface_share_panel_shows_every_surface_in_the_rows() {
    let panels: Vec<Query> = grafana::sql_queries()
        .into_iter()
        .filter(|q| q.variable.is_none() && q.text.contains("FROM rollout_surfaces"))
        .collect();
    assert_eq!(panels.len(), 1, "one panel reads rollout_surfaces");
    let q = &panels[0];
    let db = Db::create("surfaces");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rollout_surfaces.ndjson");
    let row = |tenant: &str, day: &str, policy: &str, surface: &str, n: [u64; 3], version: u64| {
        serde_json::json!({
            "tenant_id": tenant, "day": day, "policy_version": policy, "surface": surface,
            "enforced": surface == "api", "total": n[0], "mfa": n[1], "excepted": 0,
            "mfa_unknown": n[2], "version": version,
        })
        .to_string()
    };
    let rows = [
        row(
            "t1",
            "2026-03-02",
            "contoso-2026",
            "azure_admin_portals",
            [10, 3, 4],
            1,
        ),
        row(
            "t1",
            "2026-03-02",
            "contoso-2026",
            "azure_admin_portals",
            [99, 0, 0],
            0,
        ), // replaced
        row(
            "t2",
            "2026-03-02",
            "contoso-2026",
            "azure_admin_portals",
            [2, 2, 0],
            1,
        ),
        row("t1", "2026-03-02", "contoso-2026", "api", [4, 1, 0], 1),
        row("t1", "2026-03-03", "contoso-2026", "api", [5, 0, 5], 1), // MFA all unknown
        row("t3", "2026-03-02", "contoso-2026", "portal_x", [1, 1, 0], 1), // tenant not chosen
        row("t1", "2026-03-02", "other-policy", "portal_y", [1, 1, 0], 1), // another version
        row("t1", "2026-04-20", "contoso-2026", "portal_z", [1, 1, 0], 1), // out of range
    ];
    std::fs::write(&file, rows.join("\n") + "\n").unwrap();
    db.load("rollout_surfaces", None, &file)
        .unwrap_or_else(|e| panic!("loading {}: {e}", file.display()));
    // `true`/`false` went into the UInt8 column as 1/0.
    assert_eq!(
        db.must("SELECT sum(enforced) AS n FROM rollout_surfaces FINAL")
            .column("n"),
        ["2"]
    );

    let variables = BTreeMap::from([
        ("policy".to_owned(), vec!["contoso-2026".to_owned()]),
        ("tenant".to_owned(), vec!["t1".to_owned(), "t2".to_owned()]),
    ]);
    let from = 1_772_323_200; // 2026-03-01
    let cx = SqlContext {
        range: TimeRange {
            from,
            to: from + 7 * 86_400,
        },
        interval_s: 3600,
        variables: &variables,
    };
    let sql = grafana::expand_sql(&q.text, &cx).unwrap_or_else(|e| panic!("{e}"));
    let t = db.must(&sql);
    let got: Vec<(String, String, String)> = t
        .column("time")
        .into_iter()
        .zip(t.column("surface"))
        .zip(t.column("share"))
        .map(|((a, b), c)| (a, b, c))
        .collect();
    let want = [
        ("2026-03-02", "api", "0.25"),
        ("2026-03-02", "azure_admin_portals", "0.625"), // (3 + 2) / (10 - 4 + 2)
        ("2026-03-03", "api", ""),                      // no known MFA: a gap, not 0
    ]
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
    assert_eq!(got, want, "{}", q.label());
}

#[test]
fn enforcement_dates_panel_matches_the_policy_files() {
    require_clickhouse();
    let client = Client::new("default");
    let panels: Vec<Query> = grafana::sql_queries()
        .into_iter()
        .filter(|q| q.variable.is_none() && q.text.contains("enforced_from"))
        .collect();
    assert_eq!(panels.len(), 1, "one panel lists the enforcement dates");
    let q = &panels[0];
    for (name, _) in mfa_audit::policy::SHIPPED {
        let policy = mfa_audit::policy::load(name).unwrap();
        // A policy of detections has no readiness, so no readiness dashboard lists it.
        if policy.readiness.is_none() {
            continue;
        }
        let variables = BTreeMap::from([
            ("policy".to_owned(), vec![name.to_owned()]),
            ("tenant".to_owned(), vec!["none".to_owned()]),
        ]);
        let cx = SqlContext {
            range: TimeRange { from: 0, to: 0 },
            interval_s: 1,
            variables: &variables,
        };
        let sql = grafana::expand_sql(&q.text, &cx).unwrap_or_else(|e| panic!("{e}"));
        let t = client
            .query(&sql)
            .unwrap_or_else(|e| panic!("{}: {e}", q.label()));
        let got: BTreeMap<String, String> = t
            .column("surface")
            .into_iter()
            .zip(t.column("enforced_from"))
            .collect();
        let want: BTreeMap<String, String> = policy
            .surfaces
            .iter()
            .map(|s| {
                let date = s
                    .enforced_from
                    .map(|at| at.day().to_string())
                    .unwrap_or_default();
                (s.name.to_string(), date)
            })
            .collect();
        assert_eq!(got, want, "{}: surfaces and dates of {name}", q.label());
        for (state, days) in t
            .column("state")
            .iter()
            .zip(t.column("days_to_enforcement"))
        {
            assert_eq!(
                state == "readiness only",
                days.is_empty(),
                "{}: a date and its day count go together",
                q.label()
            );
        }
    }
}

/// Every metric name the process registers, with its labels; a histogram `h` as
/// `h_bucket` (with `le`), `h_sum` and `h_count`. From the descriptors `Metrics` declares.
fn process_metrics() -> BTreeMap<String, BTreeSet<String>> {
    use prometheus::proto::MetricType;
    let m = Metrics::new();
    let gathered = m.registry.gather();
    let histograms: BTreeSet<&str> = gathered
        .iter()
        .filter(|f| f.get_field_type() == MetricType::HISTOGRAM)
        .map(|f| f.name())
        .collect();
    let mut out = BTreeMap::new();
    for d in &m.declared {
        let labels: BTreeSet<String> = d.variable_labels.iter().cloned().collect();
        if histograms.contains(d.fq_name.as_str()) {
            let mut with_le = labels.clone();
            with_le.insert("le".to_owned());
            out.insert(format!("{}_bucket", d.fq_name), with_le);
            out.insert(format!("{}_sum", d.fq_name), labels.clone());
            out.insert(format!("{}_count", d.fq_name), labels);
        } else {
            out.insert(d.fq_name.clone(), labels);
        }
    }
    for f in &gathered {
        assert!(
            out.contains_key(f.name()) || out.contains_key(&format!("{}_count", f.name())),
            "the registry has `{}` but `Metrics::declared` does not",
            f.name()
        );
    }
    out
}

#[test]
fn every_promql_expression_parses_and_names_real_metrics() {
    let exprs = grafana::promql_expressions();
    assert!(
        exprs.len() >= 10,
        "expected the pipeline dashboard's expressions, found {}",
        exprs.len()
    );

    // Prometheus' own parser: each expression as a recording rule.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("dashboards.rules.yml");
    let mut yaml = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for (i, q) in exprs.iter().enumerate() {
        yaml.push_str(&format!(
            "      # {}\n      - record: dashboard_expression_{i}\n        expr: {}\n",
            q.label().replace('\n', " "),
            serde_json::to_string(&q.text).unwrap()
        ));
    }
    std::fs::write(&rules, &yaml).unwrap();
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "`promtool` cannot run ({e}): install it with \
                 `scripts/services start prometheus` (scripts/test does)"
            )
        });
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool rejects a dashboard expression:\n{said}\n--- rules file:\n{yaml}"
    );
    assert!(
        said.contains(&format!("SUCCESS: {} rules found", exprs.len())),
        "promtool checked every expression:\n{said}"
    );

    // Only metrics and labels the process registers (plus the scrape's job and instance).
    let known = process_metrics();
    let mut problems = Vec::new();
    for q in &exprs {
        let names = grafana::promql_names(&q.text);
        if names.metrics.is_empty() {
            problems.push(format!("{}: names no metric: {}", q.label(), q.text));
        }
        let mut labels: BTreeSet<String> = ["job", "instance"].map(String::from).into();
        for m in &names.metrics {
            match known.get(m) {
                Some(l) => labels.extend(l.iter().cloned()),
                None => problems.push(format!("{}: no metric `{m}`", q.label())),
            }
        }
        for l in &names.labels {
            if !labels.contains(l) {
                problems.push(format!(
                    "{}: label `{l}` is on none of {:?}",
                    q.label(),
                    names.metrics
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn grid(p: &Value) -> Option<(i64, i64, i64, i64)> {
    let g = &p["gridPos"];
    Some((
        g["x"].as_i64()?,
        g["y"].as_i64()?,
        g["w"].as_i64()?,
        g["h"].as_i64()?,
    ))
}

/// Panels of one layer (the top level, or one collapsed row's) must not overlap.
fn overlaps(layer: &[&Value]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, a) in layer.iter().enumerate() {
        for b in &layer[i + 1..] {
            if let (Some((ax, ay, aw, ah)), Some((bx, by, bw, bh))) = (grid(a), grid(b)) {
                if ax < bx + bw && bx < ax + aw && ay < by + bh && by < ay + ah {
                    out.push(format!("`{}` overlaps `{}`", a["title"], b["title"]));
                }
            }
        }
    }
    out
}

#[test]
fn dashboards_agree_with_the_provisioning() {
    let provisioned = grafana::provisioned_datasources();
    let kinds: BTreeSet<&str> = provisioned.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([grafana::CLICKHOUSE_TYPE, grafana::PROMETHEUS_TYPE]),
        "{provisioned:?}"
    );
    let uids: BTreeMap<&str, &str> = provisioned
        .iter()
        .map(|p| (p.uid.as_str(), p.kind.as_str()))
        .collect();
    assert_eq!(
        uids.len(),
        provisioned.len(),
        "distinct uids: {provisioned:?}"
    );
    assert!(!uids.contains_key(""), "every data source has a uid");
    let provider = std::fs::read_to_string(common::root().join(grafana::PROVIDER_FILE)).unwrap();
    assert!(
        provider.contains("type: file") && provider.contains("path: /"),
        "the dashboard provider reads files from an absolute path"
    );

    let dashboards = grafana::dashboards();
    assert!(!dashboards.is_empty(), "no dashboards");
    let mut problems = Vec::new();
    let mut dashboard_uids = BTreeSet::new();
    let mut used = BTreeSet::new();
    for d in &dashboards {
        let f = &d.file;
        if d.uid().is_empty() || !dashboard_uids.insert(d.uid().to_owned()) {
            problems.push(format!("{f}: uid `{}` missing or not unique", d.uid()));
        }
        if d.json["schemaVersion"].as_i64().unwrap_or(0) < 36 {
            problems.push(format!(
                "{f}: schemaVersion under 36 (datasource refs by uid)"
            ));
        }
        let mut ids = BTreeSet::new();
        let mut top: Vec<&Value> = Vec::new();
        for p in d.json["panels"].as_array().into_iter().flatten() {
            top.push(p);
            let nested: Vec<&Value> = p["panels"].as_array().into_iter().flatten().collect();
            problems.extend(overlaps(&nested).into_iter().map(|o| format!("{f}: {o}")));
        }
        problems.extend(overlaps(&top).into_iter().map(|o| format!("{f}: {o}")));
        for p in d.panels() {
            let title = p["title"].as_str().unwrap_or_default();
            match p["id"].as_i64() {
                Some(id) if ids.insert(id) => {}
                _ => problems.push(format!("{f}: panel `{title}` id missing or repeated")),
            }
            match grid(p) {
                Some((x, y, w, h)) if x >= 0 && y >= 0 && w >= 1 && h >= 1 && x + w <= 24 => {}
                _ => problems.push(format!("{f}: panel `{title}` gridPos outside 24 columns")),
            }
            if p["type"] == "row" {
                continue;
            }
            let ds_uid = p["datasource"]["uid"].as_str().unwrap_or_default();
            let ds_type = p["datasource"]["type"].as_str().unwrap_or_default();
            if uids.get(ds_uid) != Some(&ds_type) {
                problems.push(format!(
                    "{f}: panel `{title}` uses data source {ds_uid:?} ({ds_type:?}), not a provisioned one"
                ));
            }
            used.insert(ds_uid.to_owned());
            let targets: Vec<&Value> = p["targets"].as_array().into_iter().flatten().collect();
            if targets.is_empty() {
                problems.push(format!("{f}: panel `{title}` has no query"));
            }
            let mut refs = BTreeSet::new();
            for t in targets {
                let r = t["refId"].as_str().unwrap_or_default();
                if r.is_empty() || !refs.insert(r) {
                    problems.push(format!(
                        "{f}: panel `{title}` refId {r:?} missing or repeated"
                    ));
                }
                if !t["datasource"].is_null() && t["datasource"] != p["datasource"] {
                    problems.push(format!(
                        "{f}: panel `{title}` target {r} names another data source"
                    ));
                }
                if ds_type == grafana::CLICKHOUSE_TYPE {
                    let series = t["format"] == 0 && t["queryType"] == "timeseries";
                    let table = t["format"] == 1 && t["queryType"] == "table";
                    if t["editorType"] != "sql" || !(series || table) {
                        problems.push(format!(
                            "{f}: panel `{title}` target {r}: want editorType sql with format 0 + \
                             queryType timeseries or format 1 + queryType table"
                        ));
                    }
                    if (p["type"] == "timeseries") != series {
                        problems.push(format!(
                            "{f}: panel `{title}`: a time series panel has time series queries"
                        ));
                    }
                }
            }
        }
        let names: Vec<&str> = d
            .variables()
            .iter()
            .filter_map(|v| v["name"].as_str())
            .collect();
        for v in d.variables() {
            let name = v["name"].as_str().unwrap_or_default();
            let (uid, ty) = (&v["datasource"]["uid"], &v["datasource"]["type"]);
            if v["type"] == "query"
                && uids.get(uid.as_str().unwrap_or_default()) != ty.as_str().as_ref()
            {
                problems.push(format!(
                    "{f}: variable `{name}` uses no provisioned data source"
                ));
            }
            if ty == grafana::CLICKHOUSE_TYPE && v["query"]["editorType"] != "sql" {
                problems.push(format!("{f}: variable `{name}` is not an SQL editor query"));
            }
        }
        // Every query expands offline: its variables are defined, its macros known.
        let variables: BTreeMap<String, Vec<String>> = names
            .iter()
            .map(|n| (n.to_string(), vec!["x".to_owned()]))
            .collect();
        let cx = SqlContext {
            range: TimeRange {
                from: 0,
                to: 86_400,
            },
            interval_s: 60,
            variables: &variables,
        };
        for q in grafana::dashboard_queries(d) {
            let expanded = match q.language {
                Language::Sql => grafana::expand_sql(&q.text, &cx),
                Language::PromQl => grafana::expand_promql(&q.text, &PromRange::default()),
            };
            if q.text.trim().is_empty() {
                problems.push(format!("{}: empty query", q.label()));
            } else if let Err(e) = expanded {
                problems.push(format!("{}: {e}", q.label()));
            }
        }
    }
    for p in &provisioned {
        if !used.contains(&p.uid) {
            problems.push(format!("no panel uses data source `{}`", p.uid));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn expansions_follow_grafana_and_the_clickhouse_plugin() {
    let variables = BTreeMap::from([
        (
            "servers".to_owned(),
            vec!["test1".to_owned(), "test2".to_owned()],
        ),
        ("quoted".to_owned(), vec!["it's".to_owned()]),
    ]);
    let (from, to) = (1_588_291_200, 1_588_377_600);
    let cx = SqlContext {
        range: TimeRange { from, to },
        interval_s: 0,
        variables: &variables,
    };
    // Grafana's documented singlequote example, and its escaping.
    assert_eq!(
        grafana::expand_sql("IN (${servers:singlequote})", &cx).unwrap(),
        "IN ('test1','test2')"
    );
    assert_eq!(
        grafana::expand_sql("= ${quoted:singlequote}", &cx).unwrap(),
        "= 'it\\'s'"
    );
    // The plugin's forms: seconds as toDateTime, days as toDate, the interval at least 1.
    assert_eq!(
        grafana::expand_sql(
            "$__timeFilter(t) AND $__dateFilter(d) AND $__interval_s",
            &cx
        )
        .unwrap(),
        format!(
            "t >= toDateTime({from}) AND t <= toDateTime({to}) AND \
             d >= toDate('2020-05-01') AND d <= toDate('2020-05-02') AND 1"
        )
    );
    for refused in [
        "$servers",
        "${servers}",
        "${servers:csv}",
        "${nobody:singlequote}",
        "$__timeInterval(t)",
        "$__timeFilter(a, b)",
        "cost $",
    ] {
        assert!(
            grafana::expand_sql(refused, &cx).is_err(),
            "`{refused}` is refused"
        );
    }
    let r = PromRange {
        range_s: 3600,
        interval_s: 30,
        scrape_interval_s: 15,
    };
    assert_eq!(
        grafana::expand_promql("rate(x[$__rate_interval]) + increase(x[${__range}])", &r).unwrap(),
        "rate(x[60s]) + increase(x[3600s])"
    );
    assert!(grafana::expand_promql("x{job=\"$job\"}", &r).is_err());
    let names = grafana::promql_names(
        "histogram_quantile(0.9, sum by (le) (rate(a_bucket{x=\"b c\"}[60s]))) / on(y) group_left(z) b_total",
    );
    assert_eq!(names.metrics, ["a_bucket", "b_total"]);
    assert_eq!(names.labels, ["le", "x", "y", "z"]);
}
