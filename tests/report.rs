//! `mfa-audit report`: the page agrees with the rows it was made from (the MFA shares with
//! `rollout_surfaces`, whatever surfaces a policy names), is the same whether the rows come
//! from a file-mode folder or from ClickHouse, and loads in a real headless Chromium
//! (Debian's, installed by `scripts/services tools`) with no console message and no fetch;
//! a screenshot is left in `target/test-artifacts/report.png`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure is reported by panicking"
)]

mod common;

use common::{bin, ok};

use bytes::Bytes;
use chrono::NaiveDate;
use mfa_audit::report::html::surface_label;
use mfa_audit::sink::clickhouse::{ClickHouse, Connection};
use regex::Regex;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
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

/// The cells of each row of the readiness table, after its header's cells.
fn readiness_cells(page: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let table = part(page, "<table id=\"readiness\">", "</table>");
    let head = part(table, "<thead>", "</thead>");
    let header = Regex::new(r"<th[^>]*>(.*?)</th>")
        .unwrap()
        .captures_iter(head)
        .map(|c| c[1].replace("<wbr>", ""))
        .collect();
    let cell = Regex::new(r"<td[^>]*>(.*?)</td>").unwrap();
    let rows = part(table, "<tbody>", "</tbody>")
        .lines()
        .filter(|l| l.starts_with("<tr>"))
        .map(|l| {
            cell.captures_iter(l)
                .map(|c| c[1].to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    (header, rows)
}

/// Share as the page prints it: one decimal, `–` when no MFA is known.
fn pct(mfa: u64, known: u64) -> String {
    if known == 0 {
        "–".to_owned()
    } else {
        format!("{:.1}%", mfa as f64 / known as f64 * 100.0)
    }
}

/// A surface's counts: (mfa, known).
type Counts = BTreeMap<String, (u64, u64)>;

/// `rollout_surfaces` rows of a folder, the newest version of each key: per (tenant, day),
/// each surface's (mfa, known MFA).
fn surface_rows(dir: &Path) -> BTreeMap<(String, NaiveDate), Counts> {
    let mut newest: HashMap<(String, String, String, String), (u64, Value)> = HashMap::new();
    for r in lines(&dir.join("rollout_surfaces.ndjson")) {
        let key = ["tenant_id", "day", "policy_version", "surface"]
            .map(|k| r[k].as_str().unwrap().to_owned());
        let version = r["version"].as_u64().unwrap();
        if newest
            .get(&key.clone().into())
            .is_none_or(|(v, _)| *v <= version)
        {
            newest.insert(key.into(), (version, r));
        }
    }
    let mut out: BTreeMap<(String, NaiveDate), Counts> = BTreeMap::new();
    for ((tenant, day, _, surface), (_, r)) in newest {
        let n = |k: &str| r[k].as_u64().unwrap();
        let day = NaiveDate::parse_from_str(&day, "%Y-%m-%d").unwrap();
        let c = out
            .entry((tenant, day))
            .or_default()
            .entry(surface)
            .or_default();
        c.0 += n("mfa");
        c.1 += n("total") - n("mfa_unknown");
    }
    out
}

/// The share chart's points: (surface label, share, day) from each point's title, and the
/// legend's names.
fn chart_points(page: &str) -> (BTreeSet<(String, String, String)>, Vec<String>) {
    let chart = part(page, "<svg id=\"share-chart\"", "</svg>");
    let points =
        Regex::new(r"<circle [^>]*><title>([^<]+): ([0-9.]+%) on ([0-9-]+)</title></circle>")
            .unwrap()
            .captures_iter(chart)
            .map(|c| (c[1].to_owned(), c[2].to_owned(), c[3].to_owned()))
            .collect();
    let legend = Regex::new(r#"<rect [^>]*height="4"[^>]*/><text [^>]*>([^<]+)</text>"#)
        .unwrap()
        .captures_iter(chart)
        .map(|c| c[1].to_owned())
        .collect();
    (points, legend)
}

/// Checks the readiness table's share columns and the share chart against the folder's
/// `rollout_surfaces` rows: one column and one line per surface in them, each tenant's
/// shares over the 7 days ending on its newest `rollout_daily` day, each day's share of all
/// tenants. Returns the surfaces seen.
fn check_shares(page: &str, dir: &Path) -> BTreeSet<String> {
    let rows = surface_rows(dir);
    let surfaces: BTreeSet<String> = rows.values().flat_map(|c| c.keys().cloned()).collect();
    let mut newest: BTreeMap<String, NaiveDate> = BTreeMap::new();
    for r in lines(&dir.join("rollout_daily.ndjson")) {
        let day = NaiveDate::parse_from_str(r["day"].as_str().unwrap(), "%Y-%m-%d").unwrap();
        let e = newest
            .entry(r["tenant_id"].as_str().unwrap().to_owned())
            .or_insert(day);
        *e = (*e).max(day);
    }

    // The table: a column per surface, after the four status columns.
    let (header, table) = readiness_cells(page);
    let columns: Vec<&str> = header[4..4 + surfaces.len()]
        .iter()
        .map(|h| {
            h.strip_suffix(" MFA")
                .unwrap_or_else(|| panic!("{h}: not a share column"))
        })
        .collect();
    let labels: BTreeSet<&str> = surfaces.iter().map(|s| surface_label(s)).collect();
    assert_eq!(
        columns.iter().copied().collect::<BTreeSet<_>>(),
        labels,
        "one share column per surface in rollout_surfaces"
    );
    assert!(!header[4 + surfaces.len()].ends_with(" MFA"), "{header:?}");
    assert_eq!(table.len(), newest.len());
    for cells in &table {
        let tenant = &cells[0];
        let last = newest[tenant];
        let mut window: Counts = BTreeMap::new();
        for ((_, _), c) in
            rows.range((tenant.clone(), last - chrono::Days::new(6))..=(tenant.clone(), last))
        {
            for (s, (mfa, known)) in c {
                let w = window.entry(s.clone()).or_default();
                w.0 += mfa;
                w.1 += known;
            }
        }
        for (column, shown) in columns.iter().zip(&cells[4..]) {
            let s = surfaces
                .iter()
                .find(|s| surface_label(s) == *column)
                .unwrap();
            let (mfa, known) = window.get(s).copied().unwrap_or_default();
            assert_eq!(*shown, pct(mfa, known), "{tenant} {s}");
        }
    }

    // The chart: a point per surface and day with known MFA, at every tenant's share.
    let mut daily: BTreeMap<(NaiveDate, String), (u64, u64)> = BTreeMap::new();
    for ((_, day), c) in &rows {
        for (s, (mfa, known)) in c {
            let d = daily.entry((*day, s.clone())).or_default();
            d.0 += mfa;
            d.1 += known;
        }
    }
    let want: BTreeSet<(String, String, String)> = daily
        .iter()
        .filter(|(_, (_, known))| *known > 0)
        .map(|((day, s), (mfa, known))| {
            (
                surface_label(s).to_owned(),
                pct(*mfa, *known),
                day.to_string(),
            )
        })
        .collect();
    let (points, legend) = chart_points(page);
    assert_eq!(points, want, "the share chart's points");
    assert_eq!(legend, columns, "a line per surface, in the table's order");
    surfaces
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

    // The MFA shares: the table's columns and the chart, from rollout_surfaces.
    let surfaces = check_shares(&page, dir);
    let default = mfa_audit::policy::load(mfa_audit::policy::DEFAULT_POLICY).unwrap();
    assert_eq!(
        surfaces,
        default
            .surfaces
            .iter()
            .filter(|s| s.share.is_some())
            .map(|s| s.name.to_string())
            .collect::<BTreeSet<String>>(),
        "the default policy's surfaces with a share"
    );
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

/// The columns of a table in `schemas/clickhouse/`, as (name, type).
fn ddl_columns(table: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(common::root().join("schemas/clickhouse")).unwrap() {
        let sql = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let Some(at) = sql.find(&format!("CREATE TABLE IF NOT EXISTS {table}\n")) else {
            continue;
        };
        let body = &sql[at..];
        let body = &body[body.find('(').unwrap() + 1..body.find("\n)").unwrap()];
        for line in body.lines().map(|l| l.trim().trim_end_matches(',')) {
            if let Some((name, ty)) = line.split_once(' ') {
                out.push((name.to_owned(), ty.to_owned()));
            }
        }
    }
    assert!(!out.is_empty(), "no table `{table}` in schemas/clickhouse");
    out
}

/// A `rollout_daily` row with every counter 0 (its columns from the DDL).
fn rollout_row(tenant: &str, day: &str, policy: &str, status: &str) -> String {
    let mut row = serde_json::Map::new();
    for (name, ty) in ddl_columns("rollout_daily") {
        let v = match (name.as_str(), ty.as_str()) {
            ("tenant_id", _) => tenant.into(),
            ("day", _) => day.into(),
            ("policy_version", _) => policy.into(),
            ("status" | "status_7d", _) => status.into(),
            (_, "String") => "".into(),
            _ => 0.into(),
        };
        row.insert(name, v);
    }
    Value::Object(row).to_string()
}

/// Writes a hand-made output folder: two tenants under a policy of one's own whose surfaces
/// are `api` and `azure_admin_portals` (not one the code knows).
fn own_policy_folder(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let policy = "contoso-admin-portals-2026";
    let rollout = [
        rollout_row("t1", "2026-03-01", policy, "ready"),
        rollout_row("t1", "2026-03-02", policy, "at_risk"),
        rollout_row("t1", "2026-03-03", policy, "blocked"),
        rollout_row("t2", "2026-03-03", policy, "ready"),
    ];
    let surface = |tenant: &str, day: &str, surface: &str, n: [u64; 3], version: u64| {
        serde_json::json!({
            "tenant_id": tenant, "day": day, "policy_version": policy, "surface": surface,
            "enforced": day >= "2026-03-02", "total": n[0], "mfa": n[1], "excepted": 0,
            "mfa_unknown": n[2], "version": version,
        })
        .to_string()
    };
    let surfaces = [
        surface("t1", "2026-03-01", "api", [4, 4, 0], 1),
        surface("t1", "2026-03-01", "azure_admin_portals", [8, 2, 0], 1),
        surface("t1", "2026-03-02", "api", [5, 0, 5], 2), // MFA unknown: no point
        surface("t1", "2026-03-02", "azure_admin_portals", [99, 0, 0], 1), // replaced below
        surface("t1", "2026-03-02", "azure_admin_portals", [10, 3, 4], 2),
        surface("t1", "2026-03-03", "azure_admin_portals", [3, 3, 0], 3),
        surface("t2", "2026-03-03", "azure_admin_portals", [1, 0, 0], 1),
        surface("t2", "2026-03-03", "api", [0, 0, 0], 1),
    ];
    let write = |name: &str, rows: &[String]| {
        let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
        std::fs::write(dir.join(name), text).unwrap();
    };
    write("rollout_daily.ndjson", &rollout);
    write("rollout_surfaces.ndjson", &surfaces);
    for empty in ["agents", "findings", "dead_letters"] {
        write(&format!("{empty}.ndjson"), &[]);
    }
}

#[test]
#[cfg_attr(
    not(feature = "integration"),
    ignore = "needs ClickHouse: cargo test --features integration (scripts/test starts it)"
)]
fn a_surface_of_a_policys_own_shows_with_no_code() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rows");
    own_policy_folder(&dir);
    let page = report(
        &["--from", dir.to_str().unwrap()],
        &tmp.path().join("r.html"),
    );

    let surfaces = check_shares(&page, &dir);
    assert_eq!(
        surfaces,
        BTreeSet::from(["api", "azure_admin_portals"].map(String::from))
    );
    // Spelled out: t1's 7 days are (2 + 3 + 3) of (8 + 6 + 3) known, t2's 0 of 1.
    let (header, rows) = readiness_cells(&page);
    assert_eq!(
        header[4..6],
        ["API (App+User) MFA", "azure_admin_portals MFA"]
    );
    let t1 = rows.iter().find(|r| r[0] == "t1").unwrap();
    assert_eq!(t1[4..6], ["100.0%", "47.1%"]);
    let t2 = rows.iter().find(|r| r[0] == "t2").unwrap();
    assert_eq!(t2[4..6], ["–", "0.0%"]);
    let (points, legend) = chart_points(&page);
    assert_eq!(legend, ["API (App+User)", "azure_admin_portals"]);
    assert!(points.contains(&(
        "azure_admin_portals".to_owned(),
        "50.0%".to_owned(),
        "2026-03-02".to_owned()
    )));
    assert_eq!(points.len(), 4, "{points:?}");

    // ClickHouse gives the same page.
    let db = Database::load(&dir, "own");
    let from_clickhouse = report(
        &["--url", &common::clickhouse_url(), "--database", &db.name],
        &tmp.path().join("clickhouse.html"),
    );
    assert!(
        body(&page) == body(&from_clickhouse),
        "the two pages differ; see {}",
        tmp.keep().display()
    );
}

#[test]
fn a_folder_from_before_rollout_surfaces_still_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("old");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["rollout_daily", "agents", "findings", "dead_letters"] {
        let name = format!("{f}.ndjson");
        std::fs::copy(sample().join(&name), dir.join(&name)).unwrap();
    }
    let page = report(
        &["--from", dir.to_str().unwrap()],
        &tmp.path().join("r.html"),
    );
    let (header, rows) = readiness_cells(&page);
    assert!(header.iter().all(|h| !h.ends_with(" MFA")), "{header:?}");
    assert!(rows.iter().all(|r| r.len() == header.len()));
    assert!(page.contains("No MFA shares"));
    assert!(!page.contains("<svg id=\"share-chart\""));
}

/// Rows are written by whoever sends events: a tenant id, a surface of a policy's own, a
/// rule id or a dead letter's reason holding markup is text on the page, never a tag or an
/// attribute (the templates escape every value).
#[test]
fn markup_injected_in_the_rows_is_only_text_on_the_page() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rows");
    std::fs::create_dir_all(&dir).unwrap();
    let policy = "partner-mfa-2026";
    let tenant = "<script>alert(1)</script>";
    let quoted = "t\" onmouseover=\"alert(2)";
    let surface = "<img src=x onerror=alert(3)>";
    let write = |name: &str, rows: &[String]| {
        let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
        std::fs::write(dir.join(name), text).unwrap();
    };
    write(
        "rollout_daily.ndjson",
        &[
            rollout_row(tenant, "2026-04-01", policy, "blocked"),
            rollout_row(quoted, "2026-04-01", policy, "<b>bold</b>"),
        ],
    );
    write(
        "rollout_surfaces.ndjson",
        &[serde_json::json!({
            "tenant_id": tenant, "day": "2026-04-01", "policy_version": policy,
            "surface": surface, "enforced": true, "total": 4, "mfa": 1, "excepted": 0,
            "mfa_unknown": 0, "version": 1,
        })
        .to_string()],
    );
    write(
        "agents.ndjson",
        &[serde_json::json!({
            "tenant_id": tenant, "user_id": "<u>", "roles": ["AdminAgent"],
            "mfa_registration": "unregistered", "policy_version": policy, "version": 1,
        })
        .to_string()],
    );
    write(
        "findings.ndjson",
        &[serde_json::json!({
            "rule_id": "</svg><script>alert(4)</script>", "severity": "<i>high</i>",
            "enforced": true, "excepted": false, "policy_version": policy,
        })
        .to_string()],
    );
    write(
        "dead_letters.ndjson",
        &[serde_json::json!({"reason": "<style>*{color none}</style>: bad"}).to_string()],
    );
    let page = report(
        &["--from", dir.to_str().unwrap()],
        &tmp.path().join("r.html"),
    );

    // Every tag on the page is one the templates write, and no attribute runs a script.
    let allowed = [
        "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "p", "section",
        "div", "b", "span", "table", "thead", "tbody", "tr", "th", "td", "wbr", "code", "svg",
        "line", "text", "polyline", "circle", "rect",
    ];
    let tags: BTreeSet<String> = Regex::new(r"<([a-zA-Z][a-zA-Z0-9]*)")
        .unwrap()
        .captures_iter(&page)
        .map(|c| c[1].to_ascii_lowercase())
        .collect();
    for tag in &tags {
        assert!(
            allowed.contains(&tag.as_str()),
            "<{tag}> on the page:\n{page}"
        );
    }
    assert_eq!(page.matches("<style>").count(), 1, "{page}");
    let in_tags = Regex::new(r"<[^>]*\son[a-z]+\s*=").unwrap();
    assert!(
        !in_tags.is_match(&page),
        "an event handler attribute:\n{page}"
    );
    // The texts are there, escaped.
    let (header, rows) = readiness_cells(&page);
    assert!(
        header.contains(&"&#60;img src=x onerror=alert(3)&#62; MFA".to_owned()),
        "{header:?}"
    );
    let ids: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert!(
        ids.contains(&"&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{ids:?}"
    );
    assert!(ids.contains(&"t&#34; onmouseover=&#34;alert(2)"), "{ids:?}");
    assert!(page.contains(
        "&#60;/svg&#62;&#60;script&#62;alert(4)&#60;/script&#62; (&#60;i&#62;high&#60;/i&#62;)"
    ));
    assert!(page.contains("<td class=\"l\">&#60;style&#62;*{color none}&#60;/style&#62;</td>"));
    assert!(page.contains("&#60;b&#62;bold&#60;/b&#62;"));
}

/// The rows of the sample folder loaded into a fresh ClickHouse database, dropped after.
struct Database {
    name: String,
    ch: ClickHouse,
}

impl Database {
    fn load(dir: &Path, tag: &str) -> Database {
        let addr = common::service_addr("CLICKHOUSE_HTTP", 8123);
        assert!(
            TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)).is_ok(),
            "ClickHouse is not answering on {addr}: start it with \
             `scripts/services start clickhouse` (scripts/test does it)"
        );
        let name = format!("mfa_audit_report_{tag}_{}", std::process::id());
        ok(
            bin()
                .args(["schema", "apply", "--database", &name, "--url"])
                .arg(common::clickhouse_url())
                .output()
                .unwrap(),
            "schema apply",
        );
        let ch = ClickHouse::new(&Connection {
            url: common::clickhouse_url(),
            database: name.clone(),
            user: "default".into(),
            password: String::new(),
            validation: false,
            timeout: Duration::from_secs(60),
            ca_file: None,
            allow_plaintext: false,
        })
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
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
#[cfg_attr(
    not(feature = "integration"),
    ignore = "needs ClickHouse: cargo test --features integration (scripts/test starts it)"
)]
fn the_page_from_clickhouse_is_the_page_from_the_files() {
    let dir = sample();
    let db = Database::load(dir, "sample");
    let tmp = tempfile::tempdir().unwrap();
    let from_files = report(
        &["--from", dir.to_str().unwrap()],
        &tmp.path().join("files.html"),
    );
    let from_clickhouse = report(
        &["--url", &common::clickhouse_url(), "--database", &db.name],
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
    assert!(
        err.contains(&format!("it holds {}", mfa_audit::policy::DEFAULT_POLICY)),
        "{err}"
    );
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
#[cfg_attr(
    not(feature = "integration"),
    ignore = "needs Chromium: cargo test --features integration (scripts/test starts it)"
)]
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
