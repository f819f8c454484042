//! The stream mode against the real broker (tansu) and ClickHouse that
//! `scripts/services start` runs: the rows equal the file mode's, and stay equal through
//! kill -9, a ClickHouse outage, a broker restart, two instances and poison messages.
//! Nothing is skipped when a server is missing: the tests fail and say how to start it.
//!
//! The servers' ports are `scripts/services`' own overrides (`MFA_SERVICES_KAFKA_PORT`,
//! `MFA_SERVICES_CLICKHOUSE_HTTP_PORT`, `MFA_SERVICES_CLICKHOUSE_TCP_PORT`; default 9092, 8123,
//! 9000), so a second checkout can run its own servers beside the first one's, and the
//! tests kill and restart the servers that checkout started.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure is reported by panicking"
)]

mod common;

use common::services::{brokers, create_topic, require_services, stderr_lines};
use common::{bin, clickhouse_url, ok};

use mfa_audit::sink::clickhouse::{ClickHouse, Connection};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The tests stop and start shared servers: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn services(args: &[&str]) {
    let o = Command::new(common::root().join("scripts/services"))
        .args(args)
        .output()
        .unwrap();
    ok(o, &format!("scripts/services {}", args.join(" ")));
}

/// Starts a stopped service again when dropped, so a failing test leaves the servers up.
struct Restart(&'static str);

impl Drop for Restart {
    fn drop(&mut self) {
        let _ = Command::new(common::root().join("scripts/services"))
            .args(["start", self.0])
            .output();
    }
}

/// A fresh topic, consumer group and database for one test.
struct World {
    name: String,
    dir: tempfile::TempDir,
    /// Where the processors' metrics listen (`:0`: any free port).
    metrics_listen: String,
}

impl World {
    fn new(test: &str) -> World {
        require_services();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        World {
            name: format!("t_{test}_{}_{stamp}", std::process::id()),
            dir: tempfile::tempdir().unwrap(),
            metrics_listen: "127.0.0.1:0".into(),
        }
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    fn config(&self, extra: &str) -> PathBuf {
        self.config_with_kafka("", extra)
    }

    fn config_with_kafka(&self, kafka: &str, extra: &str) -> PathBuf {
        let p = self.path("stream.toml");
        std::fs::write(
            &p,
            format!(
                "[kafka]\nbrokers = \"{brokers}\"\ntopics = [\"{n}\"]\ngroup_id = \"{n}\"\n{kafka}\
                 [clickhouse]\nurl = \"{url}\"\ndatabase = \"{n}\"\nflush_interval_ms = 200\n\
                 [metrics]\nlisten = \"{listen}\"\n\
                 [pipeline]\ncheckpoint_interval_ms = 400\nretry_initial_ms = 100\nretry_max_ms = 1000\n{extra}",
                n = self.name,
                brokers = brokers(),
                url = clickhouse_url(),
                listen = self.metrics_listen
            ),
        )
        .unwrap();
        ok(
            bin()
                .args(["schema", "apply", "--url", &clickhouse_url()])
                .args(["--database", &self.name])
                .output()
                .unwrap(),
            "schema apply",
        );
        p
    }

    fn produce(&self, file: &Path, partitions: i32) {
        ok(
            bin()
                .args([
                    "produce",
                    "--brokers",
                    &brokers(),
                    "--topic",
                    &self.name,
                    "--partitions",
                    &partitions.to_string(),
                ])
                .arg(file)
                .output()
                .unwrap(),
            "produce",
        );
    }

    fn spawn(&self, config: &Path) -> Child {
        self.spawn_with(config, true, "warn")
    }

    /// `mfa-audit run --config` (with `--until-end` when asked), output piped.
    fn spawn_with(&self, config: &Path, until_end: bool, log: &str) -> Child {
        let mut cmd = bin();
        cmd.arg("run");
        if until_end {
            cmd.arg("--until-end");
        }
        cmd.arg("--config")
            .arg(config)
            .env("RUST_LOG", log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn run_to_end(&self, config: &Path) -> String {
        ok(
            self.spawn(config).wait_with_output().unwrap(),
            "run --until-end",
        )
    }

    fn query(&self, sql: &str) -> Vec<Value> {
        let ch = ClickHouse::new(&Connection {
            url: clickhouse_url(),
            database: self.name.clone(),
            user: "default".into(),
            password: String::new(),
            validation: false,
            timeout: Duration::from_secs(30),
            ca_file: None,
            allow_plaintext: false,
        })
        .unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(ch.rows(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// count() minus distinct keys: rows written more than once, not yet merged away.
    fn duplicates(&self, table: &str, key: &str) -> u64 {
        let r = self.query(&format!(
            "SELECT toUInt64(count() - uniqExact({key})) AS d FROM {table}"
        ));
        as_u64(&r[0]["d"])
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return; // keep the database to look at
        }
        let _ = Command::new("clickhouse-client")
            .args([
                "--port",
                &common::service_port("CLICKHOUSE_TCP", 9000).to_string(),
                "--query",
                &format!("DROP DATABASE IF EXISTS {}", self.name),
            ])
            .output();
    }
}

fn as_u64(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(u64::MAX)
}

/// A row in a form both the files and ClickHouse give alike: keys sorted, booleans as
/// 0/1, numbers as text.
fn canonical(v: &Value, drop: &[&str]) -> String {
    let mut m = BTreeMap::new();
    for (k, x) in v.as_object().unwrap() {
        if drop.contains(&k.as_str()) {
            continue;
        }
        // A finding of a rule without `context`: the file row has no such field, the
        // ClickHouse row the column's default, ''.
        if k == "context" && x.as_str() == Some("") {
            continue;
        }
        let s = match x {
            Value::Bool(b) => u8::from(*b).to_string(),
            Value::Number(n) => n.to_string(),
            // ClickHouse 18.16 prints DateTime 0 ("never") as zeros; it is the epoch.
            Value::String(s) if s == "0000-00-00 00:00:00" => "1970-01-01 00:00:00".to_owned(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        m.insert(k.clone(), s);
    }
    serde_json::to_string(&m).unwrap()
}

fn file_rows(dir: &Path, file: &str, drop: &[&str]) -> Vec<String> {
    let mut rows: Vec<String> = std::fs::read_to_string(dir.join(file))
        .unwrap()
        .lines()
        .map(|l| canonical(&serde_json::from_str(l).unwrap(), drop))
        .collect();
    rows.sort();
    rows
}

fn table_rows(w: &World, table: &str, drop: &[&str]) -> Vec<String> {
    let mut rows: Vec<String> = w
        .query(&format!("SELECT * FROM {table} FINAL"))
        .iter()
        .map(|r| canonical(r, drop))
        .collect();
    rows.sort();
    rows
}

/// The file mode's rows for the same input (the reference).
fn reference(w: &World, input: &Path) -> PathBuf {
    let out = w.path("reference");
    ok(
        bin()
            .args(["run", "-q", "--input"])
            .arg(input)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap(),
        "file mode",
    );
    out
}

/// Findings, rollout (daily and per surface) and agents FINAL equal the file mode's, row
/// for row; dead letters
/// have the same reasons (their positions differ: lines vs offsets). A rollout row's
/// `version` only orders its rewrites: the stream rewrites the days that changed, so a
/// day left alone keeps the version it was written with (the file mode writes every row
/// once, at the end, with the tenant's last).
fn assert_same_rows(w: &World, reference: &Path) {
    for (table, file, drop) in [
        ("findings", "findings.ndjson", &[][..]),
        ("rollout_daily", "rollout_daily.ndjson", &["version"][..]),
        (
            "rollout_surfaces",
            "rollout_surfaces.ndjson",
            &["version"][..],
        ),
        ("agents", "agents.ndjson", &[][..]),
    ] {
        let want = file_rows(reference, file, drop);
        let got = table_rows(w, table, drop);
        assert!(
            !want.is_empty() || table != "findings",
            "the reference has findings"
        );
        if want != got {
            let missing: Vec<_> = want.iter().filter(|r| !got.contains(r)).take(3).collect();
            let extra: Vec<_> = got.iter().filter(|r| !want.contains(r)).take(3).collect();
            panic!(
                "{table}: {} rows in ClickHouse FINAL, {} in the file mode\nmissing: {missing:#?}\nextra: {extra:#?}",
                got.len(),
                want.len()
            );
        }
    }
    let mut want: Vec<String> =
        file_rows(reference, "dead_letters.ndjson", &["source", "position"]);
    let mut got: Vec<String> =
        table_rows(w, "dead_letters", &["source", "position", "received_at"]);
    want.sort();
    got.sort();
    assert_eq!(got, want, "dead letters");
}

fn sample(w: &World, events: u64, seed: u64) -> PathBuf {
    let p = w.path("sample.ndjson");
    ok(
        bin()
            .args([
                "generate",
                "--tenants",
                "12",
                "--events",
                &events.to_string(),
                "--seed",
                &seed.to_string(),
                "--out",
            ])
            .arg(&p)
            .output()
            .unwrap(),
        "generate",
    );
    p
}

/// A world with a generated stream produced to its topic, the file mode's rows for the
/// same input, and a configuration (`kafka` adds lines to `[kafka]`).
fn prepared(
    test: &str,
    events: u64,
    seed: u64,
    partitions: i32,
    kafka: &str,
) -> (World, PathBuf, PathBuf) {
    let w = World::new(test);
    let input = sample(&w, events, seed);
    let reference = reference(&w, &input);
    let config = w.config_with_kafka(kafka, "");
    w.produce(&input, partitions);
    (w, reference, config)
}

/// Starts a run, then SIGKILLs `service` under it (brought back when the guard drops).
fn spawn_then_kill(w: &World, config: &Path, service: &'static str) -> (Child, Restart) {
    let mut child = w.spawn(config);
    std::thread::sleep(Duration::from_millis(500));
    let restart = Restart(service);
    services(&["kill", service]);
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run finished before {service} was down: make the stream longer"
    );
    (child, restart)
}

/// Every document of the conformance cases, then a generated stream.
fn conformance_and_sample(w: &World) -> PathBuf {
    let docs = common::conformance_documents();
    let generated = std::fs::read_to_string(sample(w, 3000, 21)).unwrap();
    let p = w.path("input.ndjson");
    let mut f = std::fs::File::create(&p).unwrap();
    for d in docs {
        writeln!(f, "{d}").unwrap();
    }
    f.write_all(generated.as_bytes()).unwrap();
    p
}

#[test]
fn stream_rows_equal_the_file_mode_row_for_row() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let w = World::new("e2e");
    let input = conformance_and_sample(&w);
    let reference = reference(&w, &input);
    let config = w.config("");
    w.produce(&input, 3);
    let out = w.run_to_end(&config);
    assert!(out.contains("checkpoints"), "{out}");
    assert_same_rows(&w, &reference);
    // Running again changes nothing: the group's offsets are at the end.
    w.run_to_end(&config);
    assert_same_rows(&w, &reference);
}

/// One message for a tenant with a long history writes the rows of the day it changed
/// and stores that tenant's state alone (the security review of 2026-12: 1 message for a
/// tenant with 20,000 days wrote 100,005 rows and an 11.3 MB snapshot of the partition).
#[test]
fn one_message_writes_the_rows_and_state_it_changed_not_the_history() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let w = World::new("amplification");
    let day = |n: i64, tenant: &str, session: &str| {
        let d = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Days::new(n as u64);
        format!(
            r#"{{"type":"dashboard_request","time":"{d}T10:00:00Z","tenantId":"{tenant}","userId":"u1","url":"https://partner.microsoft.com/dashboard/commerce/orders","statusCode":200,"sessionId":"{session}"}}"#
        )
    };
    // One tenant with 1,000 days, and 20 other tenants, on one partition.
    let history = w.path("history.ndjson");
    let mut f = std::fs::File::create(&history).unwrap();
    for n in 0..1_000 {
        writeln!(f, "{}", day(n, "long", &format!("s{n}"))).unwrap();
    }
    for t in 0..20 {
        writeln!(f, "{}", day(999, &format!("other{t}"), "o")).unwrap();
    }
    drop(f);
    let config = w.config("");
    w.produce(&history, 1);
    w.run_to_end(&config);
    let count =
        |table: &str| as_u64(&w.query(&format!("SELECT count() AS n FROM {table}"))[0]["n"]);
    let before = (
        count("rollout_daily"),
        count("rollout_surfaces"),
        count("tenant_snapshots"),
    );
    assert!(before.0 >= 1_020, "{before:?}");
    // One more message, on the long tenant's newest day.
    let one = w.path("one.ndjson");
    std::fs::write(&one, day(999, "long", "again") + "\n").unwrap();
    w.produce(&one, 1);
    w.run_to_end(&config);
    let after = (
        count("rollout_daily"),
        count("rollout_surfaces"),
        count("tenant_snapshots"),
    );
    assert_eq!(
        after.0 - before.0,
        1,
        "rollout_daily rows written: {before:?} -> {after:?}"
    );
    let shares = mfa_audit::policy::load(mfa_audit::policy::DEFAULT_POLICY)
        .unwrap()
        .surfaces
        .iter()
        .filter(|s| s.share.is_some())
        .count() as u64;
    assert_eq!(
        after.1 - before.1,
        shares,
        "rollout_surfaces rows written (one per share surface): {before:?} -> {after:?}"
    );
    assert_eq!(
        after.2 - before.2,
        1,
        "tenant states stored: {before:?} -> {after:?}"
    );
    // And the rows are still the file mode's.
    let all = w.path("all.ndjson");
    let text = std::fs::read_to_string(&history).unwrap() + &std::fs::read_to_string(&one).unwrap();
    std::fs::write(&all, text).unwrap();
    let reference = reference(&w, &all);
    for (table, file) in [
        ("rollout_daily", "rollout_daily.ndjson"),
        ("rollout_surfaces", "rollout_surfaces.ndjson"),
    ] {
        let want = file_rows(&reference, file, &["version"]);
        assert_eq!(table_rows(&w, table, &["version"]), want, "{table}");
    }
}

/// kill -9 at random points: at least this many before the stream is done.
const KILLS: u32 = 20;
/// Events in the kill -9 test's stream: long enough that [`KILLS`] kills come first (90,000
/// gave only 18 on the 2 shared cores, the stream being faster since the flush writes only
/// the days that changed).
const KILL_TEST_EVENTS: u64 = 150_000;
/// A kill comes this long after the run was (last) assigned its partitions, uniformly
/// in [from, to) ms. tansu takes 6 to 12 s to give a restarted static member its
/// partitions back (a join, often a rebalance and a second join); a kill timed from the
/// start instead would mostly land before any work.
const KILL_AFTER_ASSIGNMENT_MS: (u64, u64) = (200, 3_000);

#[test]
fn kill_9_at_random_points_then_restart_gives_the_uninterrupted_rows() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // A killed consumer never leaves the group; with a stable instance id its successor
    // takes its place at once instead of waiting for the coordinator to expire it.
    let (w, reference, config) = prepared(
        "crash",
        KILL_TEST_EVENTS,
        5,
        3,
        "instance_id = \"crash-instance\"\n",
    );
    let (from, to) = KILL_AFTER_ASSIGNMENT_MS;
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut kills = 0;
    let mut finished = false;
    let mut after_ms = Vec::new();
    let started = Instant::now();
    while kills < KILLS {
        let mut child = w.spawn_with(&config, true, "warn,mfa_audit::stream=info");
        let lines = stderr_lines(&mut child);
        let mut kill_at: Option<(Instant, u64)> = None;
        let exited = loop {
            let left = kill_at.map_or(Duration::from_secs(60), |(at, _)| {
                at.saturating_duration_since(Instant::now())
            });
            match lines.recv_timeout(left) {
                Ok(line) if line.contains("partitions assigned") => {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let ms = from + rng % (to - from);
                    kill_at = Some((Instant::now() + Duration::from_millis(ms), ms));
                }
                Ok(line) if line.contains("partitions revoked") => kill_at = None,
                Ok(_) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    assert!(kill_at.is_some(), "a run got no partitions within 60 s");
                    break false;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break true,
            }
        };
        if exited {
            let status = child.wait().unwrap();
            assert!(status.success(), "a run failed: {status}");
            finished = true;
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        after_ms.extend(kill_at.map(|(_, ms)| ms));
    }
    let killing = started.elapsed();
    let last = if finished {
        String::new()
    } else {
        w.run_to_end(&config)
    };
    eprintln!(
        "crash test: {kills} kill -9 over {KILL_TEST_EVENTS} events in {:.1}s, each {from}..{to} ms after an assignment ({after_ms:?}); then a run to the end ({:.1}s in all: {}); rows written more than once before merging: findings {}, rollout_daily {}, agents {}",
        killing.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        last.lines().last().unwrap_or_default(),
        w.duplicates("findings", "event_id, rule_id"),
        w.duplicates("rollout_daily", "tenant_id, day"),
        w.duplicates("agents", "tenant_id, user_id"),
    );
    assert!(
        kills >= KILLS,
        "only {kills} kills happened before the run finished: make the stream longer"
    );
    let rest = messages_in(&last).unwrap_or(u64::MAX);
    assert!(
        rest < KILL_TEST_EVENTS,
        "the killed runs committed progress (the last run had {rest} of {KILL_TEST_EVENTS} messages left)"
    );
    assert_same_rows(&w, &reference);
}

/// How long ClickHouse stays down in the outage test.
const OUTAGE: Duration = Duration::from_secs(60);

/// The processor's resident memory may not pass this during the outage. Measured (the
/// debug binary these tests run, 60,000 events on 3 partitions, 12 tenants; two runs):
/// 24.3 MiB when ClickHouse went down, a peak of 24.6 and 29.6 MiB reached in the first
/// half of the outage and never passed in the second (the partitions are paused: nothing
/// more is fetched or gathered). The bound is a little over twice the higher peak: room
/// for allocator and librdkafka noise, far below what an outage that kept buffering 60 s
/// of input would reach.
const OUTAGE_RSS_BOUND_KIB: u64 = 64 * 1024;
/// How much the second half of the outage may add to the first half's peak RSS: memory
/// plateaus while paused (measured: nothing).
const OUTAGE_RSS_GROWTH_KIB: u64 = 8 * 1024;

/// A process's resident set (VmRSS in /proc/PID/status), in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn clickhouse_down_for_60_seconds_loses_nothing_and_memory_stays_bounded() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (w, reference, config) = prepared("chdown", 60_000, 6, 3, "");
    let started = Instant::now();
    let (mut child, restart) = spawn_then_kill(&w, &config, "clickhouse");
    let pid = child.id();
    let before = rss_kib(pid).unwrap_or(0);
    let down = Instant::now();
    let mut samples = Vec::new();
    while down.elapsed() < OUTAGE {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the process exited ({status}) while ClickHouse was down: {:?}",
                child.wait_with_output()
            );
        }
        samples.push(rss_kib(pid).expect("the process's /proc/PID/status is readable"));
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(restart);
    let back = Instant::now();
    let out = ok(child.wait_with_output().unwrap(), "run through the outage");
    let peak = samples.iter().copied().max().unwrap_or(0);
    let half = samples.len() / 2;
    let first_half = samples[..half].iter().copied().max().unwrap_or(0);
    let second_half = samples[half..].iter().copied().max().unwrap_or(0);
    eprintln!(
        "clickhouse outage: {:.0} s down, {} RSS samples every 500 ms: {before} KiB when it went down, peak {peak} KiB ({:.1} MiB; first half {first_half} KiB, second half {second_half} KiB), bound {OUTAGE_RSS_BOUND_KIB} KiB; finished {:.1} s after ClickHouse came back, {:.1} s in all; {}",
        OUTAGE.as_secs_f64(),
        samples.len(),
        peak as f64 / 1024.0,
        back.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64(),
        out.lines().last().unwrap_or_default(),
    );
    assert!(samples.len() >= 100, "RSS was sampled through the outage");
    assert!(
        second_half <= first_half + OUTAGE_RSS_GROWTH_KIB,
        "RSS kept growing while paused: {first_half} KiB in the first half of the outage, {second_half} KiB in the second"
    );
    assert!(
        peak <= OUTAGE_RSS_BOUND_KIB,
        "RSS peaked at {peak} KiB during the outage, over the bound of {OUTAGE_RSS_BOUND_KIB} KiB"
    );
    assert!(
        !out.contains(" 0 retries"),
        "the outage was noticed and retried: {out}"
    );
    assert_same_rows(&w, &reference);
}

/// The test below runs itself again as the processor, with this variable naming the
/// configuration: that child consumes through [`FlakyStore`].
const FLAKY_CHILD: &str = "MFA_TEST_FLAKY_STORE_CONFIG";
/// How many snapshots the child's store takes before it refuses every one.
const FLAKY_STORED: u32 = 3;

/// The ClickHouse snapshot store that takes [`FLAKY_STORED`] snapshots, then refuses.
/// Each attempt is a line on stderr: `flaky-store stored|refused PARTITION NEXT_OFFSET`.
struct FlakyStore {
    inner: mfa_audit::stream::ClickHouseStore,
    left: std::sync::atomic::AtomicU32,
}

impl mfa_audit::stream::SnapshotStore for FlakyStore {
    fn load<'a>(
        &'a self,
        topic: &'a str,
        partition: i32,
    ) -> mfa_audit::stream::StoreFuture<'a, Vec<mfa_audit::sink::clickhouse::StoredSnapshot>> {
        self.inner.load(topic, partition)
    }

    fn store<'a>(
        &'a self,
        topic: &'a str,
        partition: i32,
        next_offset: u64,
        tenants: &'a [(String, String)],
    ) -> mfa_audit::stream::StoreFuture<'a, ()> {
        use std::sync::atomic::Ordering::SeqCst;
        let take = self
            .left
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok();
        Box::pin(async move {
            if !take {
                eprintln!("flaky-store refused {partition} {next_offset}");
                return Err(mfa_audit::stream::StoreError::new("the test store refuses"));
            }
            let r = self
                .inner
                .store(topic, partition, next_offset, tenants)
                .await;
            eprintln!(
                "flaky-store {} {partition} {next_offset}",
                if r.is_ok() { "stored" } else { "failed" }
            );
            r
        })
    }
}

/// The child's side: consume through a [`FlakyStore`] until killed.
fn flaky_child(config: &str) {
    let path = Path::new(config);
    let config = mfa_audit::stream::config::Config::load(path, &[]).unwrap();
    let group = config.kafka.group_id.clone();
    let r = mfa_audit::stream::run_with_store(
        &config,
        "flaky",
        false,
        std::future::pending(),
        move |ch| {
            Box::new(FlakyStore {
                inner: mfa_audit::stream::ClickHouseStore::new(ch.clone(), group),
                left: std::sync::atomic::AtomicU32::new(FLAKY_STORED),
            })
        },
    );
    panic!("the stream returned before it was killed: {r:?}");
}

/// The group's committed offset of each partition (absent: none committed).
fn committed_offsets(group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let mut c = mfa_audit::source::kafka::client_config(&brokers(), true, &BTreeMap::new());
    c.set("group.id", group);
    let consumer: BaseConsumer = c.create().unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(30))
        .unwrap();
    got.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            rdkafka::Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_snapshot_store_that_fails_stops_the_commit_and_the_replay_gives_the_same_rows() {
    if let Ok(config) = std::env::var(FLAKY_CHILD) {
        return flaky_child(&config);
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let started = Instant::now();
    let (w, reference, config) = prepared(
        "storefail",
        30_000,
        12,
        3,
        "instance_id = \"storefail-instance\"\n",
    );
    // This test binary again, running only this test, as the processor.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_snapshot_store_that_fails_stops_the_commit_and_the_replay_gives_the_same_rows",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FLAKY_CHILD, &config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stderr_lines(&mut child);
    // Until the store refused a few checkpoints (the engine retries them, paused).
    let mut stored: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let mut refused: Vec<(i32, i64)> = Vec::new();
    let mut log = Vec::new();
    while refused.len() < 5 {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("the child made no progress:\n{}", log.join("\n")));
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["flaky-store", "stored", p, n] => {
                stored
                    .entry(p.parse().unwrap())
                    .or_default()
                    .push(n.parse().unwrap());
            }
            ["flaky-store", "refused", p, n] => {
                refused.push((p.parse().unwrap(), n.parse().unwrap()))
            }
            ["flaky-store", "failed", ..] => panic!("ClickHouse refused a snapshot: {line}"),
            _ => {}
        }
        log.push(line);
    }
    let committed = committed_offsets(&w.name, &w.name, 3);
    child.kill().unwrap(); // SIGKILL: the refused state is never stored
    child.wait().unwrap();
    eprintln!(
        "failing store: stored {stored:?}, then refused {} checkpoints of {:?}; committed offsets {committed:?}",
        refused.len(),
        refused.iter().collect::<std::collections::BTreeSet<_>>()
    );
    // Every committed offset is one whose state was stored, and none passes the newest
    // stored state of its partition.
    for (p, off) in &committed {
        let s = stored.get(p).cloned().unwrap_or_default();
        assert!(
            s.contains(off),
            "partition {p}: offset {off} committed, but the stored states are at {s:?}"
        );
    }
    // What the refused checkpoints would have committed was not committed.
    for (p, next) in &refused {
        let c = committed.get(p).copied().unwrap_or(-1);
        assert!(
            c < *next,
            "partition {p}: offset {c} committed although the state at {next} was refused"
        );
    }
    // A restart with a working store replays from the last commit.
    let out = w.run_to_end(&config);
    eprintln!(
        "failing store: restart with the ClickHouse store: {}; {:.1} s in all",
        out.trim(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        messages_in(&out).is_some_and(|n| n > 0),
        "the restart had work left: {out}"
    );
    assert_same_rows(&w, &reference);
}

#[test]
fn a_broker_restart_loses_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // tansu does not expire the member the restart cut off; the stable instance id lets
    // the consumer take its own place back (as a deployment should set it).
    let (w, reference, config) = prepared(
        "brokerdown",
        60_000,
        7,
        3,
        "instance_id = \"broker-test\"\n",
    );
    let (child, restart) = spawn_then_kill(&w, &config, "kafka");
    std::thread::sleep(Duration::from_secs(5));
    drop(restart);
    ok(
        child.wait_with_output().unwrap(),
        "run through the broker restart",
    );
    assert_same_rows(&w, &reference);
}

#[test]
fn two_instances_in_one_group_write_exactly_the_expected_rows() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (w, reference, config) = prepared("twogroup", 20_000, 8, 4, "");
    let a = w.spawn(&config);
    let b = w.spawn(&config);
    let a = ok(a.wait_with_output().unwrap(), "instance a");
    let b = ok(b.wait_with_output().unwrap(), "instance b");
    eprintln!("two instances:\n{}\n{}", a.trim(), b.trim());
    assert_same_rows(&w, &reference);
}

#[test]
fn sigterm_drains_and_commits_and_a_restart_finishes_the_work() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut w = World::new("sigterm");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    w.metrics_listen = format!("127.0.0.1:{port}");
    let input = sample(&w, 60_000, 10);
    let reference = reference(&w, &input);
    let config = w.config("");
    w.produce(&input, 3);
    let child = w.spawn_with(&config, false, "info");
    std::thread::sleep(Duration::from_secs(3));
    // The running processor serves its metrics and says it is ready.
    let metrics = http_get(port, "/metrics");
    for name in [
        "mfa_audit_events_total{kind=\"sign_in\"}",
        "mfa_audit_clickhouse_insert_seconds_bucket",
        "mfa_audit_partitions_assigned 3",
        "mfa_audit_event_time_lag_seconds",
        "mfa_audit_tenants{status=",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
    assert!(
        !metrics.contains("tenant_id"),
        "a tenant id is never a label"
    );
    let ready = http_get(port, "/readyz");
    assert!(
        ready.starts_with("HTTP/1.1 200"),
        "ready while consuming: {ready}"
    );
    assert!(http_get(port, "/healthz").starts_with("HTTP/1.1 200"));
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let first = ok(child.wait_with_output().unwrap(), "run stopped by SIGTERM");
    assert!(first.contains("shutting down: draining"), "{first}");
    let done = messages_in(&first).unwrap_or(0);
    assert!(
        done > 0 && done < 60_000,
        "SIGTERM came mid-run ({done} messages)"
    );
    let second = w.run_to_end(&config);
    let rest = messages_in(&second).unwrap_or(u64::MAX);
    assert_eq!(
        done + rest,
        60_000,
        "the restart began where the drain committed:\n{first}\n{second}"
    );
    assert_same_rows(&w, &reference);
}

#[test]
fn a_shutdown_future_stops_an_in_process_run_which_drains_and_commits() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (w, reference, config) = prepared("shutdown", 30_000, 13, 3, "");
    let loaded = mfa_audit::stream::config::Config::load(&config, &[]).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = std::thread::spawn(move || {
        mfa_audit::stream::run(&loaded, "in-process", false, async move {
            let _ = stopped.await;
        })
    });
    // Stop once rows arrive: no signal, just the future completing.
    let waiting = Instant::now();
    while as_u64(&w.query("SELECT count() AS n FROM findings")[0]["n"]) == 0 {
        assert!(
            waiting.elapsed() < Duration::from_secs(120),
            "no rows within 120 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.send(()).unwrap();
    let first = run.join().unwrap().unwrap();
    let rest = messages_in(&w.run_to_end(&config)).unwrap_or(u64::MAX);
    eprintln!(
        "shutdown future: the in-process run stopped after {} messages ({} checkpoints); the restart did the other {rest}",
        first.messages, first.checkpoints
    );
    assert!(
        first.messages > 0 && first.messages < 30_000,
        "the shutdown came mid-run: {first:?}"
    );
    assert_eq!(
        first.messages + rest,
        30_000,
        "the restart began where the drain committed"
    );
    assert_same_rows(&w, &reference);
}

#[test]
fn poison_messages_are_dead_lettered_and_the_rest_processed() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let w = World::new("poison");
    let dlq = format!("{}-dlq", w.name);
    let config = w.config_with_kafka(
        &format!("dead_letter_topic = \"{dlq}\"\n"),
        "max_document_bytes = 4096\n",
    );
    let good = std::fs::read_to_string(sample(&w, 300, 9)).unwrap();
    let producer =
        mfa_audit::source::kafka::KeyedProducer::new(&brokers(), &BTreeMap::new(), &w.name)
            .unwrap();
    create_topic(&w.name, 2);
    create_topic(&dlq, 1);
    let poison: Vec<Vec<u8>> = vec![
        b"not json".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x01],
        Vec::new(),
        br#"{"type":"partner_role_assignment","time":"2020-05-02","tenantId":"t","userId":"u","role":"Wizard"}"#.to_vec(),
        format!("{{\"type\":\"dashboard_request\",\"pad\":\"{}\"}}", "x".repeat(10_000)).into_bytes(),
    ];
    for (i, line) in good.lines().enumerate() {
        producer.send(Some(b"k"), line.as_bytes()).unwrap();
        if i % 60 == 0 {
            producer
                .send(None, &poison[(i / 60) % poison.len()])
                .unwrap();
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    w.run_to_end(&config);
    let dead = w.query("SELECT reason, position FROM dead_letters FINAL ORDER BY position");
    let reasons: Vec<String> = dead
        .iter()
        .map(|r| {
            r["reason"]
                .as_str()
                .unwrap()
                .split(':')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(reasons.len(), 5, "{dead:?}");
    for want in ["not_json", "bad_value", "oversized"] {
        assert!(
            reasons.iter().any(|r| r == want),
            "{want} missing in {reasons:?}"
        );
    }
    assert!(dead
        .iter()
        .all(|r| r["position"].as_str().unwrap().starts_with("partition ")));
    let findings = w.query("SELECT count() AS n FROM findings FINAL");
    assert!(
        as_u64(&findings[0]["n"]) > 0,
        "the good messages were processed"
    );
    assert_eq!(
        dead_letter_topic_messages(&dlq),
        5,
        "the raw poison went to the dead-letter topic"
    );
}

/// Messages on a topic, read from the start.
fn dead_letter_topic_messages(topic: &str) -> usize {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let mut c = mfa_audit::source::kafka::client_config(&brokers(), true, &BTreeMap::new());
    c.set("group.id", format!("{topic}-reader"));
    let consumer: BaseConsumer = c.create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(_)) => n += 1,
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return n,
            _ => {}
        }
    }
    n
}

/// The message count of a stream run's closing line (`mfa-audit: N messages, ...`).
fn messages_in(out: &str) -> Option<u64> {
    out.lines()
        .last()
        .and_then(|l| l.split(" messages").next())
        .and_then(|n| n.trim_start_matches("mfa-audit: ").parse().ok())
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::Read;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The end-to-end page: Prometheus scrapes the running processor, evaluates the rules in
/// dashboards/alerts/, and Alertmanager delivers to a webhook this test runs on
/// 127.0.0.1:9095 (as scripts/services configures them; their `MFA_SERVICES_*` overrides too).
#[test]
fn a_delegated_admin_sign_in_without_mfa_pages_on_call() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let prometheus = common::service_port("PROMETHEUS", 9090);
    for (name, addr) in [
        ("prometheus", common::service_addr("PROMETHEUS", 9090)),
        ("alertmanager", common::service_addr("ALERTMANAGER", 9093)),
    ] {
        assert!(
            TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)).is_ok(),
            "{name} is not answering on {addr}: run `scripts/services start` (scripts/test does)"
        );
    }
    // The webhook receiver.
    let webhook = common::service_addr("WEBHOOK", 9095);
    let listener = std::net::TcpListener::bind(&webhook)
        .unwrap_or_else(|e| panic!("{webhook} (the webhook Alertmanager posts to): {e}"));
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, String)>();
    std::thread::spawn(move || {
        use std::io::Read;
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            // Read the headers, then the body by its length.
            loop {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some(h) = text.find("\r\n\r\n") {
                    let len = text[..h]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= h + 4 + len {
                        break;
                    }
                }
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = tx.send((Instant::now(), String::from_utf8_lossy(&buf).into_owned()));
        }
    });

    let mut w = World::new("page");
    w.metrics_listen = common::metrics_target(); // where scripts/services' Prometheus scrapes
    let config = w.config("");
    create_topic(&w.name, 1);
    // A run just before this one may have left the same alert firing (its 5-minute
    // window), and Alertmanager does not repeat a firing alert within the hour: wait for it
    // to clear so this run's finding is a new alert.
    let clear = Instant::now();
    while http_get(prometheus, "/api/v1/alerts").contains("MfaAuditUncoveredCriticalFinding") {
        assert!(
            clear.elapsed() < Duration::from_secs(420),
            "an earlier critical alert never cleared"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    // Alertmanager sends a group again only after `repeat_interval` when its firing alerts
    // are the ones it last sent; a page of an earlier run whose "resolved" message found
    // no webhook would hold this one back. A fresh notification log rules that out.
    services(&["reset", "alertmanager"]);
    let child = KillOnDrop(w.spawn_with(&config, false, "warn"));
    // Prometheus must have scraped the series at 0 before the finding.
    let query = "mfa_audit_findings_total{rule_id=\"DELEGATED_ADMIN_NO_MFA\",excepted=\"false\",enforced=\"true\"}";
    let url = format!(
        "/api/v1/query?query={}",
        query
            .replace('{', "%7B")
            .replace('}', "%7D")
            .replace('"', "%22")
            .replace(',', "%2C")
            .replace('=', "%3D")
    );
    let scraped = Instant::now();
    loop {
        let r = http_get(prometheus, &url);
        if r.contains("\"value\"") {
            break;
        }
        assert!(
            scraped.elapsed() < Duration::from_secs(60),
            "Prometheus never scraped the processor: {r}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(3));

    let sign_in = serde_json::json!({
        "time": "2020-05-04T09:00:00Z", "tenantId": "7a9e0000-0000-4000-8000-000000000001",
        "category": "SignInLogs", "resultType": "0",
        "properties": {
            "id": format!("page-{}", w.name), "createdDateTime": "2020-05-04T09:00:00Z",
            "userId": "u-page", "userPrincipalName": "agent@partner.example", "clientAppUsed": "Browser",
            "authenticationRequirement": "singleFactorAuthentication", "status": {"errorCode": 0},
            "tokenIssuerType": "AzureAD", "homeTenantId": "7a9e0000-0000-4000-8000-000000000001",
            "resourceTenantId": "c0570000-0000-4000-8000-000000000002", "crossTenantAccessType": "serviceProvider"
        }
    });
    let producer =
        mfa_audit::source::kafka::KeyedProducer::new(&brokers(), &BTreeMap::new(), &w.name)
            .unwrap();
    let sent = Instant::now();
    producer
        .send(
            Some(b"7a9e0000-0000-4000-8000-000000000001"),
            sign_in.to_string().as_bytes(),
        )
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();

    let delivered = loop {
        let left = Duration::from_secs(120).saturating_sub(sent.elapsed());
        assert!(
            !left.is_zero(),
            "no page reached the webhook within 120 s; Prometheus alerts: {}",
            http_get(prometheus, "/api/v1/alerts")
        );
        if let Ok((at, body)) = rx.recv_timeout(left) {
            if body.contains("MfaAuditUncoveredCriticalFinding")
                && body.contains("\"status\":\"firing\"")
            {
                assert!(
                    body.contains("DELEGATED_ADMIN_NO_MFA")
                        && body.contains("RUNBOOK.md#uncovered-critical-finding"),
                    "{body}"
                );
                break at.duration_since(sent);
            }
        }
    };
    eprintln!(
        "alert delivery: produce -> webhook in {:.1} s",
        delivered.as_secs_f64()
    );
    assert!(delivered < Duration::from_secs(120));

    // Every PromQL expression of the Grafana dashboards against this live Prometheus,
    // scraping this processor: each must be accepted and return series. A bad document
    // first, so the dead-letter series exists too.
    producer
        .send(Some(b"7a9e0000-0000-4000-8000-000000000001"), b"{not json")
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();
    let dead_letter = "mfa_audit_dead_letters_total";
    let seen = Instant::now();
    while !prometheus_query(dead_letter).1.contains("\"value\"") {
        assert!(
            seen.elapsed() < Duration::from_secs(60),
            "the dead letter never reached Prometheus"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Two more scrapes, so every rate has two samples of every series in its window.
    std::thread::sleep(Duration::from_secs(5));
    let range = common::grafana::PromRange {
        range_s: 600,
        interval_s: 2,
        scrape_interval_s: 2,
    };
    let exprs = common::grafana::promql_expressions_for(&range);
    // A rejected expression fails at once; one without series yet (a gauge set by the
    // next statistics callback, a rate short of two samples) is asked again for 30 s.
    let mut waiting: Vec<&common::grafana::Query> = exprs.iter().collect();
    let mut problems = Vec::new();
    let asked = Instant::now();
    while !waiting.is_empty() {
        let mut empty = Vec::new();
        for q in waiting {
            let (ok, body) = prometheus_query(&q.text);
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            if !ok || v["status"] != "success" {
                problems.push(format!("{}: {} -> {body}", q.label(), q.text));
            } else if v["data"]["result"].as_array().is_none_or(Vec::is_empty) {
                empty.push(q);
            }
        }
        if asked.elapsed() > Duration::from_secs(30) {
            problems.extend(
                empty
                    .iter()
                    .map(|q| format!("{}: no series after 30 s: {}", q.label(), q.text)),
            );
            break;
        }
        if !empty.is_empty() {
            std::thread::sleep(Duration::from_secs(2));
        }
        waiting = empty;
    }
    drop(child);
    eprintln!(
        "dashboards: {} PromQL expressions ran against the live Prometheus",
        exprs.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// An instant query to the local Prometheus: (HTTP success, body).
fn prometheus_query(expr: &str) -> (bool, String) {
    let o = Command::new("curl")
        .args(["-sS", "--fail-with-body", "--get", "--data-urlencode"])
        .arg(format!("query={expr}"))
        .arg(format!(
            "http://{}/api/v1/query",
            common::service_addr("PROMETHEUS", 9090)
        ))
        .output()
        .expect("curl runs");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// Stops a child process however the test ends (SIGTERM, then waits).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}
