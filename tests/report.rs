//! `mfa-audit report`: the page agrees with the rows it was made from, is the same whether
//! the rows come from a file-mode folder or from ClickHouse, and loads in a real headless
//! Chromium (Debian's, installed by `scripts/services tools`) with no console message and
//! no fetch; a screenshot is left in `target/test-artifacts/report.png`.

mod common;

use common::{bin, ok};

use bytes::Bytes;
use mfa_audit::sink::clickhouse::{ClickHouse, Connection};
use regex::Regex;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

/// A generated stream run through the file mode once for every test here: its folder.
fn sample() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Under cargo's scratch folder for integration tests, replaced on every run.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-sample");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("stream.ndjson");
        ok(
            bin()
                .args([
                    "generate",
                    "--events",
                    "15000",
                    "--seed",
                    "11",
                    "--tenants",
                    "12",
                ])
                .arg("--out")
                .arg(&input)
                .output()
                .unwrap(),
            "generate",
        );
        // Two bad documents, so the dead-letter part has something to show.
        let mut text = std::fs::read_to_string(&input).unwrap();
        text.push_str("{not json\n{\"kind\":\"mystery\"}\n");
        std::fs::write(&input, text).unwrap();
        let out = dir.join("out");
        ok(
            bin()
                .args(["run", "-q", "-i"])
                .arg(&input)
                .arg("-o")
                .arg(&out)
                .output()
                .unwrap(),
            "run",
        );
        out
    })
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn report(args: &[&str], out: &Path) -> String {
    ok(
        bin()
            .arg("report")
            .args(args)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap(),
        "report",
    );
    std::fs::read_to_string(out).unwrap()
}

/// The part of the page between `start` and the next `end`.
fn part<'a>(page: &'a str, start: &str, end: &str) -> &'a str {
    let from = page
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in the page"));
    let rest = &page[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// A bar chart's bars: each bar's hover title (rule id, tenant id) and the count at its end.
fn bar_counts(page: &str, svg_id: &str) -> BTreeMap<String, u64> {
    let chart = part(page, &format!("<svg id=\"{svg_id}\""), "</svg>");
    Regex::new(r#"<title>([^<]+)</title></text>.*?<text x="[0-9.]+" y="[0-9.]+">(\d+)</text>"#)
        .unwrap()
        .captures_iter(chart)
        .map(|c| (c[1].to_owned(), c[2].parse().unwrap()))
        .collect()
}

#[test]
fn the_page_agrees_with_the_rows() {
    let dir = sample();
    let tmp = tempfile::tempdir().unwrap();
    let page = report(
        &["--from", dir.to_str().unwrap()],
        &tmp.path().join("r.html"),
    );

    // Readiness: one line per tenant, with the statuses of its newest day's row.
    let mut newest: HashMap<String, (String, u64, String, String)> = HashMap::new();
    for r in lines(&dir.join("rollout_daily.ndjson")) {
        let key = r["tenant_id"].as_str().unwrap().to_owned();
        let row = (
            r["day"].as_str().unwrap().to_owned(),
            r["version"].as_u64().unwrap(),
            r["status"].as_str().unwrap().to_owned(),
            r["status_7d"].as_str().unwrap().to_owned(),
        );
        let e = newest.entry(key).or_insert_with(|| row.clone());
        if (&row.0, row.1) > (&e.0, e.1) {
            *e = row;
        }
    }
    assert!(newest.len() >= 10, "the sample has tenants");
    let table = part(&page, "<table id=\"readiness\">", "</table>");
    let row_re = Regex::new(
        r#"<tr><td class="l id">([^<]+)</td><td class="l">([0-9-]+)</td><td class="l"><span class="badge"[^>]*>([^<]+)</span></td><td class="l"><span class="badge"[^>]*>([^<]+)</span>"#,
    )
    .unwrap();
    let shown: Vec<_> = row_re.captures_iter(table).collect();
    assert_eq!(shown.len(), newest.len(), "one readiness line per tenant");
    for c in &shown {
        let (day, _, status, status_7d) = &newest[&c[1]];
        assert_eq!(&c[2], day, "{}", &c[1]);
        assert_eq!(c[3].replace(' ', "_"), *status, "{}", &c[1]);
        assert_eq!(c[4].replace(' ', "_"), *status_7d, "{}", &c[1]);
    }
    // Blocked tenants come first.
    let order: Vec<String> = shown.iter().map(|c| c[4].to_owned()).collect();
    let first_not_blocked = order
        .iter()
        .position(|s| s != "blocked")
        .unwrap_or(order.len());
    assert!(order[first_not_blocked..].iter().all(|s| s != "blocked"));

    // Findings by rule: each bar's count is the rule's lines in findings.ndjson.
    let findings = lines(&dir.join("findings.ndjson"));
    let mut per_rule: BTreeMap<String, u64> = BTreeMap::new();
    for f in &findings {
        *per_rule
            .entry(f["rule_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert!(per_rule.len() >= 5, "the sample breaks several rules");
    assert_eq!(bar_counts(&page, "rules-chart"), per_rule);
    assert!(page.contains(&format!(
        "<b style=\"color:#1d2329\">{}</b><span>findings",
        findings.len()
    )));

    // Agents: each tenant's bar totals its partner-role users.
    let mut agents: BTreeMap<String, u64> = BTreeMap::new();
    for a in lines(&dir.join("agents.ndjson")) {
        if !a["roles"].as_array().unwrap().is_empty() {
            *agents
                .entry(a["tenant_id"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    assert_eq!(bar_counts(&page, "agents-chart"), agents);

    // Dead letters: the two planted documents, by reason code.
    let dead = part(&page, "<table id=\"dead-letters\">", "</table>");
    let total: u64 = Regex::new(r"<td>(\d+)</td>")
        .unwrap()
        .captures_iter(dead)
        .map(|c| c[1].parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, lines(&dir.join("dead_letters.ndjson")).len() as u64);
    assert_eq!(total, 2);

    // The MFA share chart has one point per surface and day with known MFA.
    let days: std::collections::BTreeSet<String> = newest.values().map(|v| v.0.clone()).collect();
    assert!(!days.is_empty());
    let chart = part(&page, "<svg id=\"share-chart\"", "</svg>");
    assert!(
        chart.matches("<circle").count() >= 3 * 5,
        "points for every surface"
    );
    assert!(
        chart.contains("enforced</text>"),
        "the 2020-05-01 enforcement date is marked"
    );
}

/// The rows of the sample folder loaded into a fresh ClickHouse database, dropped after.
struct Database {
    name: String,
    ch: ClickHouse,
}

impl Database {
    fn load(dir: &Path) -> Database {
        assert!(
            TcpStream::connect_timeout(&"127.0.0.1:8123".parse().unwrap(), Duration::from_secs(2))
                .is_ok(),
            "ClickHouse is not answering on 127.0.0.1:8123: start it with \
             `scripts/services start clickhouse` (scripts/test does it)"
        );
        let name = format!("mfa_audit_report_{}", std::process::id());
        ok(
            bin()
                .args(["schema", "apply", "--database", &name])
                .output()
                .unwrap(),
            "schema apply",
        );
        let ch = ClickHouse::new(&Connection {
            url: "http://127.0.0.1:8123".into(),
            database: name.clone(),
            user: "default".into(),
            password: String::new(),
            validation: false,
            timeout: Duration::from_secs(60),
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for (table, columns) in [
            ("findings", None),
            ("rollout_daily", None),
            ("agents", None),
            (
                "dead_letters",
                Some(mfa_audit::sink::clickhouse::DEAD_LETTER_COLUMNS),
            ),
        ] {
            let rows = std::fs::read(dir.join(format!("{table}.ndjson"))).unwrap();
            rt.block_on(ch.insert(table, columns, Bytes::from(rows)))
                .unwrap_or_else(|e| panic!("loading {table}: {e}"));
        }
        Database { name, ch }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = rt.block_on(
            self.ch
                .execute(&format!("DROP DATABASE IF EXISTS {}", self.name)),
        );
    }
}

/// The page without its header (which names the source and the time it was made).
fn body(page: &str) -> &str {
    &page[page.find("</header>").expect("a header")..]
}

#[test]
fn the_page_from_clickhouse_is_the_page_from_the_files() {
    let dir = sample();
    let db = Database::load(dir);
    let tmp = tempfile::tempdir().unwrap();
    let from_files = report(
        &["--from", dir.to_str().unwrap()],
        &tmp.path().join("files.html"),
    );
    let from_clickhouse = report(
        &["--url", "http://127.0.0.1:8123", "--database", &db.name],
        &tmp.path().join("clickhouse.html"),
    );
    assert!(from_clickhouse.contains(&format!("ClickHouse database `{}`", db.name)));
    assert!(
        body(&from_files) == body(&from_clickhouse),
        "the two pages differ; see {} and {}",
        tmp.keep().display(),
        "clickhouse.html"
    );
}

#[test]
fn bad_sources_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r.html");
    // `report [extra] --from FROM --out r.html` must fail with status 1: its stderr.
    let failing = |from: &Path, extra: &[&str]| -> String {
        let o = bin()
            .arg("report")
            .args(extra)
            .arg("--from")
            .arg(from)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{err}");
        err
    };
    // Not an output folder.
    let err = failing(tmp.path(), &[]);
    assert!(
        err.contains("rollout_daily.ndjson") && err.contains("run --out"),
        "{err}"
    );
    // A damaged row names its file and line.
    for f in ["agents", "findings", "dead_letters"] {
        std::fs::write(tmp.path().join(format!("{f}.ndjson")), "").unwrap();
    }
    let good = std::fs::read_to_string(sample().join("rollout_daily.ndjson")).unwrap();
    let first = good.lines().next().unwrap();
    std::fs::write(
        tmp.path().join("rollout_daily.ndjson"),
        format!("{first}\n{{\"tenant_id\":1}}\n"),
    )
    .unwrap();
    let err = failing(tmp.path(), &[]);
    assert!(err.contains("rollout_daily.ndjson line 2"), "{err}");
    // A policy version the rows do not hold.
    let err = failing(sample(), &["--policy", "partner-mfa-2019-09"]);
    assert!(err.contains("it holds partner-mfa-2020-05"), "{err}");
    assert!(!out.exists(), "no page is written on an error");
}

/// Runs Debian's Chromium headless on `page` (as the machine's probe does, with the
/// background networking that this closed network refuses turned off).
fn chromium(page: &Path, extra: &[&str]) -> Output {
    let which = Command::new("sh")
        .args(["-c", "command -v chromium"])
        .output()
        .unwrap();
    assert!(
        which.status.success(),
        "chromium is not installed: install it with `scripts/services tools` (scripts/test does it)"
    );
    let profile = tempfile::tempdir().unwrap();
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap()
}

/// The page's console messages, as Chromium logs them (`INFO:CONSOLE...] "text"`).
fn console_messages(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_page_loads_in_chromium_without_console_messages_and_is_captured() {
    let tmp = tempfile::tempdir().unwrap();
    let page = tmp.path().join("report.html");
    report(&["--from", sample().to_str().unwrap()], &page);

    let artefacts = common::root().join("target/test-artifacts");
    std::fs::create_dir_all(&artefacts).unwrap();
    let shot = artefacts.join("report.png");
    let _ = std::fs::remove_file(&shot);
    let o = chromium(
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2400",
        ],
    );
    assert!(
        o.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(console_messages(&o), Vec::<String>::new());
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 50_000,
        "{} bytes",
        png.len()
    );

    // The DOM Chromium built holds the table and the three charts.
    let o = chromium(&page, &["--dump-dom"]);
    assert_eq!(console_messages(&o), Vec::<String>::new());
    let dom = String::from_utf8_lossy(&o.stdout);
    for id in [
        "readiness",
        "share-chart",
        "rules-chart",
        "agents-chart",
        "dead-letters",
    ] {
        assert!(
            dom.contains(&format!("id=\"{id}\"")),
            "{id} missing from the DOM"
        );
    }

    // The check can fail: the same page with one remote image logs the blocked fetch.
    let html = std::fs::read_to_string(&page).unwrap();
    let planted = tmp.path().join("planted.html");
    std::fs::write(
        &planted,
        html.replace("</body>", "<img src=\"http://127.0.0.1:9/x.png\"></body>"),
    )
    .unwrap();
    let o = chromium(&planted, &["--dump-dom"]);
    let messages = console_messages(&o);
    assert!(
        messages
            .iter()
            .any(|m| m.contains("Content Security Policy")),
        "a remote fetch must show: {messages:?}"
    );
}
