//! The stream mode against the real broker (tansu) and ClickHouse that
//! `scripts/services start` runs: the rows equal the file mode's, and stay equal through
//! kill -9, a ClickHouse outage, a broker restart, two instances and poison messages.
//! Nothing is skipped when a server is missing: the tests fail and say how to start it.

mod common;

use common::{bin, ok};

use mfa_audit::sink::clickhouse::{ClickHouse, Connection};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BROKERS: &str = "127.0.0.1:9092";
const CLICKHOUSE: &str = "http://127.0.0.1:8123";

/// The tests stop and start shared servers: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn require_services() {
    for (name, addr) in [
        ("kafka (tansu)", "127.0.0.1:9092"),
        ("clickhouse", "127.0.0.1:8123"),
    ] {
        assert!(
            TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)).is_ok(),
            "{name} is not answering on {addr}: start the test services with \
             `scripts/services start kafka clickhouse` (scripts/test does it)"
        );
    }
}

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
                "[kafka]\nbrokers = \"{BROKERS}\"\ntopics = [\"{n}\"]\ngroup_id = \"{n}\"\n{kafka}\
                 [clickhouse]\nurl = \"{CLICKHOUSE}\"\ndatabase = \"{n}\"\nflush_interval_ms = 200\n\
                 [metrics]\nlisten = \"{listen}\"\n\
                 [pipeline]\ncheckpoint_interval_ms = 400\nretry_initial_ms = 100\nretry_max_ms = 1000\n{extra}",
                n = self.name,
                listen = self.metrics_listen
            ),
        )
        .unwrap();
        ok(
            bin()
                .args(["schema", "apply", "--database", &self.name])
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
            url: CLICKHOUSE.into(),
            database: self.name.clone(),
            user: "default".into(),
            password: String::new(),
            validation: false,
            timeout: Duration::from_secs(30),
        });
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(ch.rows(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Creates a topic (tansu does not create them on first use).
    fn create_topic(&self, topic: &str, partitions: i32) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(mfa_audit::source::kafka::ensure_topic(
                BROKERS,
                &BTreeMap::new(),
                topic,
                partitions,
            ))
            .unwrap();
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
            .args(["--query", &format!("DROP DATABASE IF EXISTS {}", self.name)])
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
/// have the same reasons (their positions differ: lines vs offsets).
fn assert_same_rows(w: &World, reference: &Path) {
    for (table, file) in [
        ("findings", "findings.ndjson"),
        ("rollout_daily", "rollout_daily.ndjson"),
        ("rollout_surfaces", "rollout_surfaces.ndjson"),
        ("agents", "agents.ndjson"),
    ] {
        let want = file_rows(reference, file, &[]);
        let got = table_rows(w, table, &[]);
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
    let mut docs = Vec::new();
    let mut cases: Vec<_> = std::fs::read_dir(common::root().join("tests/conformance"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    cases.sort();
    for c in cases {
        let case: Value = serde_json::from_str(&std::fs::read_to_string(c).unwrap()).unwrap();
        for e in case["events"].as_array().unwrap() {
            docs.push(common::document(e));
        }
    }
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

#[test]
fn kill_9_at_random_points_then_restart_gives_the_uninterrupted_rows() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // A killed consumer never leaves the group; with a stable instance id its successor
    // takes its place at once instead of waiting for the coordinator to expire it.
    let (w, reference, config) =
        prepared("crash", 60_000, 5, 3, "instance_id = \"crash-instance\"\n");
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut kills = 0;
    let mut finished = false;
    let started = Instant::now();
    while kills < 12 {
        let mut child = w.spawn(&config);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let wait = Duration::from_millis(1_000 + rng % 6_000);
        std::thread::sleep(wait);
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(
                    status.success(),
                    "a run failed: {:?}",
                    child.wait_with_output()
                );
                finished = true;
                break;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
            }
        }
    }
    if !finished {
        w.run_to_end(&config);
    }
    eprintln!(
        "crash test: {kills} kill -9, {:.1}s; rows written more than once before merging: findings {}, rollout_daily {}, agents {}",
        started.elapsed().as_secs_f64(),
        w.duplicates("findings", "event_id, rule_id"),
        w.duplicates("rollout_daily", "tenant_id, day"),
        w.duplicates("agents", "tenant_id, user_id"),
    );
    assert!(
        kills >= 10,
        "only {kills} kills happened before the run finished: make the stream longer"
    );
    assert_same_rows(&w, &reference);
}

#[test]
fn clickhouse_down_for_20_seconds_loses_nothing_and_the_process_lives() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (w, reference, config) = prepared("chdown", 60_000, 6, 3, "");
    let (mut child, restart) = spawn_then_kill(&w, &config, "clickhouse");
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(20) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the process exited ({status}) while ClickHouse was down: {:?}",
                child.wait_with_output()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(restart);
    let out = ok(child.wait_with_output().unwrap(), "run through the outage");
    assert!(
        !out.contains(" 0 retries"),
        "the outage was noticed and retried: {out}"
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
        mfa_audit::source::kafka::KeyedProducer::new(BROKERS, &BTreeMap::new(), &w.name).unwrap();
    w.create_topic(&w.name, 2);
    w.create_topic(&dlq, 1);
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
    let mut c = mfa_audit::source::kafka::client_config(BROKERS, true, &BTreeMap::new());
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
/// 127.0.0.1:9095 (as scripts/services configures them).
#[test]
fn a_delegated_admin_sign_in_without_mfa_pages_on_call() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    for (name, addr) in [
        ("prometheus", "127.0.0.1:9090"),
        ("alertmanager", "127.0.0.1:9093"),
    ] {
        assert!(
            TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)).is_ok(),
            "{name} is not answering on {addr}: run `scripts/services start` (scripts/test does)"
        );
    }
    // The webhook receiver.
    let listener = std::net::TcpListener::bind("127.0.0.1:9095")
        .expect("port 9095 (the webhook Alertmanager posts to) is taken");
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
    w.metrics_listen = "127.0.0.1:9464".into(); // where scripts/services' Prometheus scrapes
    let config = w.config("");
    w.create_topic(&w.name, 1);
    // A run just before this one may have left the same alert firing (its 5-minute
    // window), and Alertmanager does not repeat a firing alert within the hour: wait for it
    // to clear so this run's finding is a new alert.
    let clear = Instant::now();
    while http_get(9090, "/api/v1/alerts").contains("MfaAuditUncoveredCriticalFinding") {
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
        let r = http_get(9090, &url);
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
        mfa_audit::source::kafka::KeyedProducer::new(BROKERS, &BTreeMap::new(), &w.name).unwrap();
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
            http_get(9090, "/api/v1/alerts")
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
        .arg("http://127.0.0.1:9090/api/v1/query")
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
