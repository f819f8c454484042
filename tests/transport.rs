//! Real transports (F2 of the security review of 2026-12) against the servers
//! `scripts/services start clickhouse kafka-tls` runs on 127.0.0.1: Kafka through
//! stunnel's TLS listener (with the test CA; with a CA that signed nothing; with and
//! without a client certificate), ClickHouse over HTTPS (`schema apply`, a stream run
//! writing rows), and the refusals that must not echo a secret. Every command's output is
//! kept and searched for every secret value the tests used: none may appear.
//!
//! Ports are `scripts/services`' overrides (`MFA_SERVICES_KAFKA_TLS_PORT`,
//! `MFA_SERVICES_KAFKA_MTLS_PORT`, `MFA_SERVICES_CLICKHOUSE_HTTPS_PORT`, ...), the test CA
//! is `<state dir>/tls/` (`MFA_SERVICES_DIR`, default `.services`). A server that does not
//! answer fails the test with the command that starts it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure is reported by panicking"
)]

mod common;

use common::{bin, ok};
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The secrets the tests hand over (through the environment or a refused URL).
const CH_URL_PASSWORD: &str = "S3cretCHpass";
const REFUSED_SECRET: &str = "RefusedSecretValue42";
const PROTOCOL_SECRET: &str = "ProtocolSecretValue43";

/// Every command's output, for the final search for secrets.
static OUTPUTS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn port(var: &str, default: u16) -> u16 {
    std::env::var(var)
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(default)
}

fn tls_port() -> u16 {
    port("MFA_SERVICES_KAFKA_TLS_PORT", 9094)
}
fn mtls_port() -> u16 {
    port("MFA_SERVICES_KAFKA_MTLS_PORT", 9096)
}
fn https_port() -> u16 {
    port("MFA_SERVICES_CLICKHOUSE_HTTPS_PORT", 8443)
}

/// `<state dir>/tls`, where `scripts/services` keeps the test CA and certificates.
fn tls_dir() -> PathBuf {
    let dir = std::env::var("MFA_SERVICES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| common::root().join(".services"));
    dir.join("tls")
}

fn require(name: &str, port: u16, start: &str) {
    let addr = format!("127.0.0.1:{port}");
    assert!(
        TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)).is_ok(),
        "{name} is not answering on {addr}: start it with `scripts/services start {start}`"
    );
    assert!(
        tls_dir().join("ca.pem").is_file(),
        "no test CA in {}: `scripts/services start {start}` makes it",
        tls_dir().display()
    );
}

fn require_kafka_tls() {
    require("Kafka over TLS (stunnel)", tls_port(), "kafka-tls");
    require("Kafka over mutual TLS (stunnel)", mtls_port(), "kafka-tls");
}

fn require_https_clickhouse() {
    require("ClickHouse over HTTPS", https_port(), "clickhouse");
}

/// A name no other run uses.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// Runs `cmd` for at most `secs`, then kills it; returns (success, stdout + stderr) and
/// keeps the output for [`no_secret_anywhere`].
fn run_bounded(what: &str, cmd: &mut Command, secs: u64) -> (bool, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = format!("{}{}", out.join().unwrap(), err.join().unwrap());
    OUTPUTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((what.to_owned(), text.clone()));
    let text = match status {
        Some(_) => text,
        None => format!("{text}\n(killed after {secs} s)"),
    };
    (status.is_some_and(|s| s.success()), text)
}
/// `mfa-audit produce --partitions N --topic T --config CFG INPUT`.
fn produce(partitions: &str, topic: &str, cfg: &Path, input: &Path) -> Command {
    let mut c = bin();
    c.args([
        "produce",
        "--partitions",
        partitions,
        "--topic",
        topic,
        "--config",
    ])
    .arg(cfg)
    .arg(input);
    c
}

/// A small generated input (a few hundred documents of two tenants).
fn sample(dir: &Path) -> PathBuf {
    let path = dir.join("sample.ndjson");
    let o = bin()
        .args([
            "generate",
            "--tenants",
            "2",
            "--events",
            "300",
            "--seed",
            "3",
        ])
        .arg("--out")
        .arg(&path)
        .output()
        .unwrap();
    ok(o, "generate");
    path
}

/// A stream configuration: Kafka through `kafka_port` with `kafka_props`, ClickHouse over
/// HTTPS with the test CA.
fn config(dir: &Path, kafka_port: u16, topic: &str, database: &str, kafka_props: &str) -> PathBuf {
    let ca = tls_dir().join("ca.pem");
    let text = format!(
        r#"
[kafka]
brokers = "127.0.0.1:{kafka_port}"
topics = ["{topic}"]
group_id = "{topic}-g"
{kafka_props}

[clickhouse]
url = "https://127.0.0.1:{https}"
ca_file = "{ca}"
database = "{database}"
flush_interval_ms = 200

[pipeline]
checkpoint_interval_ms = 1000

[metrics]
listen = ""
"#,
        https = https_port(),
        ca = ca.display(),
    );
    let path = dir.join(format!("{topic}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The number of rows of `table` in `database`, read over HTTPS with the test CA.
fn count(database: &str, table: &str) -> u64 {
    let ch =
        mfa_audit::sink::clickhouse::ClickHouse::new(&mfa_audit::sink::clickhouse::Connection {
            ca_file: Some(tls_dir().join("ca.pem")),
            ..mfa_audit::sink::clickhouse::Connection::new(
                &format!("https://127.0.0.1:{}", https_port()),
                database,
                "default",
            )
        })
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows = rt
        .block_on(ch.rows(&format!("SELECT count() AS n FROM {table} FINAL")))
        .unwrap();
    rows[0]["n"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .or_else(|| rows[0]["n"].as_u64())
        .unwrap()
}

/// schema apply, produce and `run --until-end` through `kafka_port`; returns the
/// findings written.
fn through(kafka_port: u16, kafka_props: &str, env: &[(&str, String)]) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("tls");
    let database = unique("tls_db");
    let cfg = config(dir.path(), kafka_port, &topic, &database, kafka_props);
    let input = sample(dir.path());
    let with_env = |c: &mut Command| {
        for (k, v) in env {
            c.env(k, v);
        }
    };
    let mut c = bin();
    c.args(["schema", "apply", "--config"]).arg(&cfg);
    let (done, text) = run_bounded("schema apply over https", &mut c, 60);
    assert!(done, "schema apply over https failed:\n{text}");
    assert!(
        text.contains(&format!("https://127.0.0.1:{}/", https_port())),
        "{text}"
    );
    let mut c = produce("2", &topic, &cfg, &input);
    with_env(&mut c);
    let (done, text) = run_bounded("produce over tls", &mut c, 120);
    assert!(done, "produce over TLS failed:\n{text}");
    let mut c = bin();
    c.args(["run", "--until-end", "--config"]).arg(&cfg);
    with_env(&mut c);
    let (done, text) = run_bounded("run over tls", &mut c, 180);
    assert!(done, "run --until-end over TLS failed:\n{text}");
    let findings = count(&database, "findings");
    let rollout = count(&database, "rollout_daily");
    assert!(
        findings > 0 && rollout > 0,
        "findings {findings}, rollout {rollout}"
    );
    findings
}

/// Kafka over TLS with the test CA in, ClickHouse over HTTPS out: the same findings as
/// the file mode.
#[test]
fn kafka_over_tls_and_clickhouse_over_https_carry_the_rows() {
    require_kafka_tls();
    require_https_clickhouse();
    let ca = tls_dir().join("ca.pem");
    let started = Instant::now();
    let findings = through(
        tls_port(),
        &format!(
            "[kafka.properties]\n\"security.protocol\" = \"SSL\"\n\"ssl.ca.location\" = \"{}\"\n",
            ca.display()
        ),
        &[],
    );
    // The file mode over the same input writes as many findings.
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path());
    let out = dir.path().join("out");
    let o = bin()
        .args(["run", "-q", "--replay-window-days", "1", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    ok(o, "run (files)");
    let lines = std::fs::read_to_string(out.join("findings.ndjson"))
        .unwrap()
        .lines()
        .count() as u64;
    assert_eq!(findings, lines);
    eprintln!("tls round trip: {:.1} s", started.elapsed().as_secs_f64());
    no_secret_anywhere(&[]);
}

/// A client certificate whose key is encrypted, its passphrase from the environment:
/// the listener that requires one lets the stream through, and refuses a client
/// without one.
#[test]
fn a_client_certificate_opens_the_mutual_tls_listener() {
    require_kafka_tls();
    require_https_clickhouse();
    let t = tls_dir();
    let pass = std::fs::read_to_string(t.join("client.pass"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(pass.len() >= 8);
    let props = format!(
        "[kafka.properties]\n\"security.protocol\" = \"SSL\"\n\"ssl.ca.location\" = \"{}\"\n\
         \"ssl.certificate.location\" = \"{}\"\n\"ssl.key.location\" = \"{}\"\n\
         [kafka.properties_env]\n\"ssl.key.password\" = \"MFA_TEST_CLIENT_KEY_PASS\"\n",
        t.join("ca.pem").display(),
        t.join("client.pem").display(),
        t.join("client.key").display(),
    );
    through(
        mtls_port(),
        &props,
        &[("MFA_TEST_CLIENT_KEY_PASS", pass.clone())],
    );
    // Without the certificate: refused.
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("mtls_none");
    let cfg = config(
        dir.path(),
        mtls_port(),
        &topic,
        "unused",
        &format!(
            "[kafka.properties]\n\"security.protocol\" = \"SSL\"\n\"ssl.ca.location\" = \"{}\"\n\"socket.timeout.ms\" = \"5000\"\n",
            t.join("ca.pem").display()
        ),
    );
    let mut c = produce("1", &topic, &cfg, &sample(dir.path()));
    c.env("RUST_LOG", "warn");
    let (done, text) = run_bounded("produce without a client certificate", &mut c, 25);
    assert!(!done, "a client without a certificate got through:\n{text}");
    assert!(
        text.contains("certificate required"),
        "not said why:\n{text}"
    );
    // A wrong passphrase is named as such, without the passphrase.
    let cfg = config(
        dir.path(),
        mtls_port(),
        &unique("mtls_badpass"),
        "unused",
        &props,
    );
    let mut c = produce("1", "x", &cfg, &sample(dir.path()));
    c.env("MFA_TEST_CLIENT_KEY_PASS", REFUSED_SECRET);
    let (done, text) = run_bounded("produce with a wrong key passphrase", &mut c, 25);
    assert!(!done, "{text}");
    assert!(text.contains("ssl.key"), "{text}");
    no_secret(&text, &[REFUSED_SECRET, &pass]);
    no_secret_anywhere(&[&pass]);
}

/// A CA that did not sign the broker's certificate: the connection fails, and says why.
#[test]
fn a_wrong_ca_fails_with_a_certificate_error() {
    require_kafka_tls();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("tls_wrong_ca");
    let cfg = config(
        dir.path(),
        tls_port(),
        &topic,
        "unused",
        &format!(
            "[kafka.properties]\n\"security.protocol\" = \"SSL\"\n\"ssl.ca.location\" = \"{}\"\n\"socket.timeout.ms\" = \"5000\"\n",
            tls_dir().join("other-ca.pem").display()
        ),
    );
    let mut c = produce("1", &topic, &cfg, &sample(dir.path()));
    c.env("RUST_LOG", "warn");
    let (done, text) = run_bounded("produce with a wrong CA", &mut c, 25);
    assert!(
        !done,
        "a broker with an unknown issuer was accepted:\n{text}"
    );
    assert!(
        text.contains("certificate verify failed"),
        "no certificate error in:\n{text}"
    );
    // ClickHouse over HTTPS with the wrong CA: refused, named.
    require_https_clickhouse();
    let mut c = bin();
    c.args(["schema", "apply", "--database", "unused", "--url"])
        .arg(format!("https://127.0.0.1:{}", https_port()))
        .arg("--ca-file")
        .arg(tls_dir().join("other-ca.pem"));
    let (done, text) = run_bounded("schema apply with a wrong CA", &mut c, 30);
    assert!(!done && text.contains("invalid peer certificate"), "{text}");
    no_secret_anywhere(&[]);
}

/// F14: a URL with a password is refused, and the password is not printed.
#[test]
fn a_url_with_a_password_is_refused_without_echoing_it() {
    let url = format!("http://audit:{CH_URL_PASSWORD}@127.0.0.1:8123");
    let mut c = bin();
    c.args(["schema", "apply", "--url", &url]);
    let (done, text) = run_bounded("schema apply with userinfo", &mut c, 30);
    assert!(!done && text.contains("password_env"), "{text}");
    no_secret(&text, &[CH_URL_PASSWORD]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!("[clickhouse]\nurl = \"{url}\"\n[files]\ninputs = [\"x\"]\nout = \"o\"\n"),
    )
    .unwrap();
    for args in [
        vec!["schema", "apply", "--config"],
        vec!["report", "--out", "r.html", "--config"],
        vec!["run", "--config"],
    ] {
        let mut c = bin();
        c.args(&args).arg(&cfg).current_dir(dir.path());
        let (done, text) = run_bounded(&args.join(" "), &mut c, 30);
        assert!(!done, "{args:?}: {text}");
        no_secret(&text, &[CH_URL_PASSWORD]);
    }
    no_secret_anywhere(&[]);
}

/// F2: a secret given the documented way (`properties_env`) that librdkafka refuses is
/// not printed, whether the refusal quotes it (an invalid enum value) or rust-rdkafka
/// appends it (an unknown property).
#[test]
fn a_refused_secret_property_is_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    for (key, var, value) in [
        ("sasl.passwordx", "MFA_TEST_REFUSED", REFUSED_SECRET),
        ("security.protocol", "MFA_TEST_PROTOCOL", PROTOCOL_SECRET),
    ] {
        std::fs::write(
            &cfg,
            format!(
                "[kafka]\nbrokers = \"127.0.0.1:1\"\ntopics = [\"t\"]\n[kafka.properties_env]\n\"{key}\" = \"{var}\"\n[metrics]\nlisten = \"\"\n"
            ),
        )
        .unwrap();
        for args in [
            vec!["produce", "--partitions", "0", "--topic", "t", "--config"],
            vec!["run", "--config"],
        ] {
            let mut c = bin();
            c.args(&args).arg(&cfg);
            if args[0] == "produce" {
                c.arg(dir.path().join("none.ndjson"));
                std::fs::write(dir.path().join("none.ndjson"), "").unwrap();
            }
            c.env(var, value).env("RUST_LOG", "trace");
            let (done, text) = run_bounded(&format!("{} with {key}", args[0]), &mut c, 30);
            assert!(!done, "{args:?}: {text}");
            assert!(text.contains(key), "{args:?}: the key is named: {text}");
            no_secret(&text, &[value]);
        }
    }
    no_secret_anywhere(&[]);
}

fn no_secret(text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "secret `{s}` printed in:\n{text}");
    }
}

/// Every output kept so far, searched for every secret value: none may appear.
fn no_secret_anywhere(more: &[&str]) {
    let outputs = OUTPUTS.lock().unwrap_or_else(|e| e.into_inner());
    let mut secrets = vec![CH_URL_PASSWORD, REFUSED_SECRET, PROTOCOL_SECRET];
    secrets.extend_from_slice(more);
    let hits: Vec<_> = outputs
        .iter()
        .flat_map(|(what, text)| {
            secrets
                .iter()
                .filter(|s| text.contains(**s))
                .map(move |s| format!("{what}: {s}"))
        })
        .collect();
    assert!(hits.is_empty(), "secrets printed: {hits:?}");
    eprintln!("{} outputs searched: 0 secrets", outputs.len());
}

/// F16 of the security review of 2026-12: an insert ClickHouse cannot parse was logged
/// with ClickHouse's answer, which quotes the row (a token's text included).
#[test]
fn an_insert_error_does_not_echo_the_row() {
    require_https_clickhouse();
    let database = unique("tls_insert");
    let ch =
        mfa_audit::sink::clickhouse::ClickHouse::new(&mfa_audit::sink::clickhouse::Connection {
            ca_file: Some(tls_dir().join("ca.pem")),
            ..mfa_audit::sink::clickhouse::Connection::new(
                &format!("https://127.0.0.1:{}", https_port()),
                &database,
                "default",
            )
        })
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(ch.apply_schema()).unwrap();
    let canary = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJjYW5hcnkiOiJJTlNFUlRDQU5BUlkifQ.INSERTCANARYSIG";
    // `dead_letters` without its column list: ClickHouse 18.16 cannot parse it.
    let row = serde_json::json!({"source": canary, "position": canary, "reason": canary, "excerpt": canary, "received_at": canary});
    let e = rt
        .block_on(ch.insert("dead_letters", None, bytes::Bytes::from(row.to_string())))
        .unwrap_err();
    let shown = e.to_string();
    // The premise: the server's own answer quotes the row.
    let raw = e.cause().to_string();
    assert!(
        raw.contains("eyJ"),
        "ClickHouse did not quote the row: {raw}"
    );
    assert!(
        !shown.contains("eyJ") && !shown.contains("CANARY"),
        "{shown}"
    );
    assert!(shown.contains("code "), "{shown}");
    eprintln!("shown: {shown}");
    let _ = rt.block_on(ch.execute(&format!("DROP DATABASE IF EXISTS {database}")));
    no_secret_anywhere(&[]);
}
