//! Findings to a Kafka topic (`[sinks.kafka]`, `run --findings-topic`) against the real
//! broker (tansu) and ClickHouse that `scripts/services start kafka clickhouse` runs: the
//! topic read back holds the lines of `findings.ndjson`, keyed by tenant id, from a file
//! run and from a stream run; through repeated kill -9 of the stream, no finding is lost
//! (repeats allowed); a delivery that fails fails the file run. Nothing is skipped when a
//! server is missing: the tests fail and say how to start it.
//!
//! The servers' ports are `scripts/services`' own overrides (`MFA_SERVICES_KAFKA_PORT`,
//! `MFA_SERVICES_CLICKHOUSE_HTTP_PORT`; default 9092, 8123).
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
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The stream tests share one broker and two cores: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Fresh topics, a consumer group and a database for one test.
struct World {
    name: String,
    dir: tempfile::TempDir,
}

impl World {
    fn new(test: &str) -> World {
        require_services();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        World {
            name: format!("f_{test}_{}_{stamp}", std::process::id()),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    /// The findings topic's name.
    fn findings(&self) -> String {
        format!("{}_findings", self.name)
    }

    /// A generated stream (12 tenants), with every conformance document before it when
    /// `conformance` (tokens, secrets in URLs: the lines are scrubbed alike).
    fn input(&self, events: u64, seed: u64, conformance: bool) -> PathBuf {
        let generated = self.path("generated.ndjson");
        ok(
            bin()
                .args(["generate", "--tenants", "12", "--events"])
                .arg(events.to_string())
                .args(["--seed", &seed.to_string(), "--out"])
                .arg(&generated)
                .output()
                .unwrap(),
            "generate",
        );
        if !conformance {
            return generated;
        }
        let p = self.path("input.ndjson");
        let mut f = std::fs::File::create(&p).unwrap();
        for d in common::conformance_documents() {
            writeln!(f, "{d}").unwrap();
        }
        f.write_all(&std::fs::read(&generated).unwrap()).unwrap();
        p
    }

    /// The file mode's `findings.ndjson` for `input`, without a findings topic.
    fn reference(&self, input: &Path) -> Vec<String> {
        let out = self.path("reference");
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
        lines(&out.join("findings.ndjson"))
    }

    /// A stream configuration with the findings topic, its tables applied; `kafka` adds
    /// lines to `[kafka]`.
    fn stream_config(&self, kafka: &str) -> PathBuf {
        let p = self.path("stream.toml");
        std::fs::write(
            &p,
            format!(
                "[kafka]\nbrokers = \"{brokers}\"\ntopics = [\"{n}\"]\ngroup_id = \"{n}\"\n{kafka}\
                 [sinks.kafka]\ntopic = \"{findings}\"\n\
                 [clickhouse]\nurl = \"{url}\"\ndatabase = \"{n}\"\nflush_interval_ms = 200\n\
                 [metrics]\nlisten = \"\"\n\
                 [pipeline]\ncheckpoint_interval_ms = 400\nretry_initial_ms = 100\nretry_max_ms = 1000\n",
                n = self.name,
                findings = self.findings(),
                brokers = brokers(),
                url = clickhouse_url(),
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

    /// `mfa-audit produce` of `input` to the input topic.
    fn produce(&self, input: &Path, partitions: i32) {
        ok(
            bin()
                .args(["produce", "--brokers", &brokers(), "--topic", &self.name])
                .args(["--partitions", &partitions.to_string()])
                .arg(input)
                .output()
                .unwrap(),
            "produce",
        );
    }

    /// `mfa-audit run --config` (with `--until-end` when asked), output piped.
    fn spawn(&self, config: &Path, until_end: bool, log: &str) -> Child {
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

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A finding's line as a message: (key, payload), the key its `tenant_id`.
fn keyed(line: &str) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    (v["tenant_id"].as_str().unwrap().to_owned(), line.to_owned())
}

/// Every message of `topic`, (key, payload), sorted: read from the start of every
/// partition to its end.
fn read_topic(topic: &str) -> Vec<(String, String)> {
    let mut c = mfa_audit::source::kafka::client_config(&brokers(), true, &BTreeMap::new());
    c.set("group.id", format!("{topic}-reader"));
    let consumer: BaseConsumer = c.create().unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .unwrap();
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    assert!(!partitions.is_empty(), "topic {topic} has no partitions");
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut at_end = HashSet::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while at_end.len() < partitions.len() {
        assert!(Instant::now() < deadline, "reading {topic} took over 120 s");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push((
                String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap(),
                String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap(),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    out.sort();
    out
}

/// The messages `lines` should become, sorted.
fn expected(lines: &[String]) -> Vec<(String, String)> {
    let mut want: Vec<_> = lines.iter().map(|l| keyed(l)).collect();
    want.sort();
    want
}

/// The first few differences of two sorted multisets, for a failure message.
fn difference(want: &[(String, String)], got: &[(String, String)]) -> String {
    let missing: Vec<_> = want.iter().filter(|m| !got.contains(m)).take(2).collect();
    let extra: Vec<_> = got.iter().filter(|m| !want.contains(m)).take(2).collect();
    format!(
        "{} messages, {} findings\nmissing: {missing:#?}\nextra: {extra:#?}",
        got.len(),
        want.len()
    )
}

#[test]
fn a_file_run_publishes_every_finding_line_keyed_by_tenant() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let w = World::new("file");
    let input = w.input(3000, 31, true);
    let want = expected(&w.reference(&input));
    assert!(want.len() > 100, "the input has findings");
    create_topic(&w.findings(), 3);
    let out = w.path("out");
    let run = ok(
        bin()
            .args(["run", "-q", "--input"])
            .arg(&input)
            .arg("--out")
            .arg(&out)
            .args(["--findings-topic", &w.findings()])
            .args(["--kafka-brokers", &brokers()])
            .output()
            .unwrap(),
        "file mode with a findings topic",
    );
    assert!(
        run.contains(&format!(
            "{} findings published to `{}`",
            want.len(),
            w.findings()
        )),
        "{run}"
    );
    // The files are what they are without the topic, and the topic holds them.
    assert_eq!(expected(&lines(&out.join("findings.ndjson"))), want);
    let got = read_topic(&w.findings());
    assert!(got == want, "{}", difference(&want, &got));
}

#[test]
fn a_file_run_whose_findings_are_not_delivered_fails() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let w = World::new("undelivered");
    let input = w.input(2000, 32, false);
    // librdkafka's mock broker, in this process on 127.0.0.1, refuses every produce.
    let mock = rdkafka::mocking::MockCluster::new(1).unwrap();
    mock.create_topic(&w.findings(), 1, 1).unwrap();
    mock.request_errors(
        rdkafka::types::RDKafkaApiKey::Produce,
        &[rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 10_000],
    );
    let o = bin()
        .args(["run", "-q", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(w.path("out"))
        .args(["--findings-topic", &w.findings()])
        .args(["--kafka-brokers", &mock.bootstrap_servers()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot deliver to `{}`", w.findings()))
            && !err.contains("findings published"),
        "{err}"
    );
    // A topic the brokers do not know is refused at start, before any work.
    let o = bin()
        .args(["run", "-q", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(w.path("out2"))
        .args(["--findings-topic", &format!("{}_none", w.name)])
        .args(["--kafka-brokers", &brokers()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn a_stream_run_stopped_by_sigterm_publishes_the_file_modes_findings() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let w = World::new("stream");
    let input = w.input(3000, 33, true);
    let want = expected(&w.reference(&input));
    create_topic(&w.findings(), 3);
    let config = w.stream_config("");
    w.produce(&input, 3);
    let child = w.spawn(&config, false, "warn");
    // Wait until every finding is out, then stop it as an operator would.
    let deadline = Instant::now() + Duration::from_secs(180);
    while read_topic(&w.findings()).len() < want.len() {
        assert!(
            Instant::now() < deadline,
            "the stream published too little in 180 s"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let out = ok(child.wait_with_output().unwrap(), "run stopped by SIGTERM");
    assert!(
        out.contains(&format!(
            "{} findings published to `{}`",
            want.len(),
            w.findings()
        )),
        "{out}"
    );
    let got = read_topic(&w.findings());
    assert!(got == want, "{}", difference(&want, &got));
}

/// kill -9 at random points of the stream with the findings topic on: at least this
/// many before the stream is done.
const KILLS: u32 = 5;
/// Events in the stream: long enough that [`KILLS`] kills come before its end (each
/// restart waits 6 to 12 s for tansu to give a static member its partitions back).
const KILL_TEST_EVENTS: u64 = 60_000;
/// A kill comes this long after the run was (last) assigned its partitions, uniformly in
/// [from, to) ms, as in tests/stream.rs.
const KILL_AFTER_ASSIGNMENT_MS: (u64, u64) = (200, 3_000);

#[test]
fn kill_9_at_random_points_loses_no_finding_of_the_topic() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let w = World::new("crash");
    let input = w.input(KILL_TEST_EVENTS, 34, false);
    let want = expected(&w.reference(&input));
    create_topic(&w.findings(), 3);
    // With a stable instance id a restarted run takes the killed one's place at once.
    let config = w.stream_config("instance_id = \"findings-crash\"\n");
    w.produce(&input, 3);
    let (from, to) = KILL_AFTER_ASSIGNMENT_MS;
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut kills = 0;
    let mut finished = false;
    let started = Instant::now();
    while kills < KILLS {
        let mut child = w.spawn(&config, true, "warn,mfa_audit::stream=info");
        let lines = stderr_lines(&mut child);
        let mut kill_at: Option<Instant> = None;
        let exited = loop {
            let left = kill_at.map_or(Duration::from_secs(60), |at| {
                at.saturating_duration_since(Instant::now())
            });
            match lines.recv_timeout(left) {
                Ok(line) if line.contains("partitions assigned") => {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    kill_at =
                        Some(Instant::now() + Duration::from_millis(from + rng % (to - from)));
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
            assert!(child.wait().unwrap().success(), "a run failed");
            finished = true;
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    let killing = started.elapsed();
    if !finished {
        ok(
            w.spawn(&config, true, "warn").wait_with_output().unwrap(),
            "the run to the end",
        );
    }
    assert!(
        kills >= KILLS,
        "only {kills} kills happened before the run finished: make the stream longer"
    );
    let got = read_topic(&w.findings());
    // Every finding of the uninterrupted run is there; what is more is repeats of them
    // (at-least-once: `event_id`, `rule_id` and `policy_version` are the key to remove
    // them by), never another message.
    let distinct: Vec<_> = {
        let mut d = got.clone();
        d.dedup();
        d
    };
    let mut want_distinct = want.clone();
    want_distinct.dedup();
    assert!(
        distinct == want_distinct,
        "{}",
        difference(&want_distinct, &distinct)
    );
    eprintln!(
        "findings topic through {kills} kill -9 over {KILL_TEST_EVENTS} events ({:.1}s killing, {:.1}s in all): {} messages for {} findings ({} repeats)",
        killing.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        got.len(),
        want.len(),
        got.len() - want.len()
    );
}
