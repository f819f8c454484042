//! The Grafana content of `dashboards/grafana/`: every query of every panel (rows' nested
//! panels included) and of every template variable, and the expansions Grafana and the
//! ClickHouse data source apply before a query reaches its server, so tests can run them.
//!
//! SQL goes through two steps, in Grafana's order: the front end replaces template
//! variables (`${name:singlequote}` only: `'a','b'`, each `'` escaped as `\'`), then the
//! ClickHouse plugin's back end expands its macros (`$__timeFilter(col)`,
//! `$__dateFilter(col)`, `$__fromTime`, `$__toTime`, `$__interval_s`), exactly as
//! grafana-clickhouse-datasource v4 writes them. PromQL gets Grafana's built-in
//! `$__interval`, `$__rate_interval` and `$__range` family as concrete durations.
//! Anything left with a `$` is an error, never passed on.

use super::root;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where the dashboards are.
pub const DASHBOARDS_DIR: &str = "dashboards/grafana/dashboards";
/// The provisioned data sources.
pub const DATASOURCES_FILE: &str = "dashboards/grafana/provisioning/datasources/mfa-audit.yaml";
/// The dashboard provider.
pub const PROVIDER_FILE: &str = "dashboards/grafana/provisioning/dashboards/mfa-audit.yaml";
/// The ClickHouse plugin's data source type.
pub const CLICKHOUSE_TYPE: &str = "grafana-clickhouse-datasource";
/// Prometheus' data source type.
pub const PROMETHEUS_TYPE: &str = "prometheus";

/// One dashboard file.
pub struct Dashboard {
    /// The file name (`compliance-overview.json`).
    pub file: String,
    /// Its JSON.
    pub json: Value,
}

impl Dashboard {
    /// The dashboard's uid (empty when missing).
    pub fn uid(&self) -> &str {
        self.json["uid"].as_str().unwrap_or_default()
    }

    /// The dashboard's title (empty when missing).
    pub fn title(&self) -> &str {
        self.json["title"].as_str().unwrap_or_default()
    }

    /// Every panel, rows and the panels nested in collapsed rows included, in file order.
    pub fn panels(&self) -> Vec<&Value> {
        fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
            for p in panels.as_array().into_iter().flatten() {
                out.push(p);
                walk(&p["panels"], out);
            }
        }
        let mut out = Vec::new();
        walk(&self.json["panels"], &mut out);
        out
    }

    /// The template variables.
    pub fn variables(&self) -> Vec<&Value> {
        self.json["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .collect()
    }
}

/// Every dashboard, by file name. Panics, naming the file, when one is not JSON.
pub fn dashboards() -> Vec<Dashboard> {
    let dir = root().join(DASHBOARDS_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()));
            Dashboard {
                file: p.file_name().unwrap().to_string_lossy().into_owned(),
                json,
            }
        })
        .collect()
}

/// A query's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// ClickHouse SQL (the ClickHouse plugin's `rawSql`).
    Sql,
    /// PromQL (a Prometheus target's `expr`).
    PromQl,
}

/// One query of a panel target or a template variable.
#[derive(Debug, Clone)]
pub struct Query {
    /// The dashboard file.
    pub dashboard: String,
    /// The panel title, or `variable `name`` for a template variable.
    pub panel: String,
    /// The target's refId (empty for a variable).
    pub ref_id: String,
    /// The data source uid the query goes to.
    pub datasource_uid: String,
    /// The language, from the data source type.
    pub language: Language,
    /// The text as the JSON holds it (or, from [`promql_expressions`], expanded).
    pub text: String,
    /// The template variable this query fills, if it is one.
    pub variable: Option<String>,
}

impl Query {
    /// `file / panel / refId`, for messages.
    pub fn label(&self) -> String {
        if self.ref_id.is_empty() {
            format!("{} / {}", self.dashboard, self.panel)
        } else {
            format!("{} / {} / {}", self.dashboard, self.panel, self.ref_id)
        }
    }
}

fn datasource_of(v: &Value) -> (&str, &str) {
    (
        v["datasource"]["uid"].as_str().unwrap_or_default(),
        v["datasource"]["type"].as_str().unwrap_or_default(),
    )
}

fn language(ds_type: &str) -> Option<Language> {
    match ds_type {
        CLICKHOUSE_TYPE => Some(Language::Sql),
        PROMETHEUS_TYPE => Some(Language::PromQl),
        _ => None,
    }
}

/// Every query of one dashboard: variables first, then the panels' targets. A target
/// without its own data source takes its panel's. Panics on a query of an unknown kind.
pub fn dashboard_queries(d: &Dashboard) -> Vec<Query> {
    let mut out = Vec::new();
    for v in d.variables() {
        if v["type"] != "query" {
            continue;
        }
        let name = v["name"].as_str().unwrap_or_default().to_owned();
        let (uid, ty) = datasource_of(v);
        let lang = language(ty).unwrap_or_else(|| {
            panic!("{}: variable `{name}` uses data source type `{ty}`", d.file)
        });
        let text = match (&v["query"], lang) {
            (Value::String(s), _) => s.clone(),
            (q, Language::Sql) => q["rawSql"].as_str().unwrap_or_default().to_owned(),
            (q, Language::PromQl) => q["query"].as_str().unwrap_or_default().to_owned(),
        };
        out.push(Query {
            dashboard: d.file.clone(),
            panel: format!("variable `{name}`"),
            ref_id: String::new(),
            datasource_uid: uid.to_owned(),
            language: lang,
            text,
            variable: Some(name),
        });
    }
    for p in d.panels() {
        let title = p["title"].as_str().unwrap_or_default();
        for t in p["targets"].as_array().into_iter().flatten() {
            let (mut uid, mut ty) = datasource_of(t);
            if uid.is_empty() {
                (uid, ty) = datasource_of(p);
            }
            let lang = language(ty).unwrap_or_else(|| {
                panic!(
                    "{}: panel `{title}` queries data source type `{ty}`",
                    d.file
                )
            });
            let field = match lang {
                Language::Sql => "rawSql",
                Language::PromQl => "expr",
            };
            out.push(Query {
                dashboard: d.file.clone(),
                panel: title.to_owned(),
                ref_id: t["refId"].as_str().unwrap_or_default().to_owned(),
                datasource_uid: uid.to_owned(),
                language: lang,
                text: t[field].as_str().unwrap_or_default().to_owned(),
                variable: None,
            });
        }
    }
    out
}

/// Every query of every dashboard.
pub fn queries() -> Vec<Query> {
    dashboards().iter().flat_map(dashboard_queries).collect()
}

/// Every ClickHouse SQL query (panels and variables), unexpanded.
pub fn sql_queries() -> Vec<Query> {
    queries()
        .into_iter()
        .filter(|q| q.language == Language::Sql)
        .collect()
}

/// Every PromQL expression, with Grafana's interval variables expanded for
/// [`PromRange::default`] (panics, naming the panel, on anything it cannot expand).
pub fn promql_expressions() -> Vec<Query> {
    promql_expressions_for(&PromRange::default())
}

/// Every PromQL expression, expanded for `range`.
pub fn promql_expressions_for(range: &PromRange) -> Vec<Query> {
    queries()
        .into_iter()
        .filter(|q| q.language == Language::PromQl)
        .map(|mut q| {
            q.text = expand_promql(&q.text, range)
                .unwrap_or_else(|e| panic!("{}: {e}\n{}", q.label(), q.text));
            q
        })
        .collect()
}

/// A data source of the provisioning file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
    /// Its plugin type.
    pub kind: String,
}

/// The data sources the provisioning file declares (read line by line: each starts with
/// `- name:` and has `uid:` and `type:` at the same level).
pub fn provisioned_datasources() -> Vec<Provisioned> {
    let path = root().join(DATASOURCES_FILE);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out: Vec<Provisioned> = Vec::new();
    let mut item_indent = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let l = line.trim();
        if let Some(name) = l.strip_prefix("- name:") {
            item_indent = Some(indent + 2);
            out.push(Provisioned {
                name: name.trim().to_owned(),
                uid: String::new(),
                kind: String::new(),
            });
        } else if Some(indent) == item_indent {
            if let Some(last) = out.last_mut() {
                if let Some(v) = l.strip_prefix("uid:") {
                    last.uid = v.trim().to_owned();
                } else if let Some(v) = l.strip_prefix("type:") {
                    last.kind = v.trim().to_owned();
                }
            }
        }
    }
    out
}

/// The dashboard time range, in Unix seconds.
#[derive(Debug, Clone, Copy)]
pub struct TimeRange {
    /// Start.
    pub from: i64,
    /// End.
    pub to: i64,
}

/// What a ClickHouse query is expanded with.
pub struct SqlContext<'a> {
    /// The time range.
    pub range: TimeRange,
    /// The panel's interval in seconds (`$__interval_s`; at least 1, as the plugin makes it).
    pub interval_s: i64,
    /// Each template variable's selected values (All: every value of its query).
    pub variables: &'a BTreeMap<String, Vec<String>>,
}

fn utc(secs: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default()
}

/// Grafana's `singlequote` format: each value in `'`, `'` escaped as `\'`, joined by `,`.
pub fn singlequote(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("'{}'", v.replace('\'', "\\'")))
        .collect::<Vec<_>>()
        .join(",")
}

/// A `$` reference at `at`: its name, format and length (`$name`, `${name}`,
/// `${name:format}`), or `None` when no name follows the `$`.
fn reference(text: &str, at: usize) -> Option<(String, Option<String>, usize)> {
    let rest = &text[at + 1..];
    if let Some(inner) = rest.strip_prefix('{') {
        let end = inner.find('}')?;
        let body = &inner[..end];
        let (name, format) = match body.split_once(':') {
            Some((n, f)) => (n, Some(f.to_owned())),
            None => (body, None),
        };
        return Some((name.to_owned(), format, end + 3));
    }
    let len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    (len > 0).then(|| (rest[..len].to_owned(), None, len + 1))
}

/// Replaces the template variables as Grafana's front end does (`${name:singlequote}`
/// only, every other form is refused); `$__` macros are left for [`expand_macros`].
pub fn expand_variables(
    sql: &str,
    variables: &BTreeMap<String, Vec<String>>,
) -> Result<String, String> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let Some((name, format, len)) = reference(rest, i) else {
            return Err(format!("a lone `$` at `{}`", &rest[i..]));
        };
        if name.starts_with("__") {
            out.push_str(&rest[i..i + len]);
        } else {
            let values = variables
                .get(&name)
                .ok_or_else(|| format!("`${name}` is not a template variable here"))?;
            if values.is_empty() {
                return Err(format!("`${name}` has no value selected"));
            }
            match format.as_deref() {
                Some("singlequote") => out.push_str(&singlequote(values)),
                other => {
                    return Err(format!(
                        "`{}` (format {other:?}): write `${{{name}:singlequote}}` so the \
                         expansion is quoted",
                        &rest[i..i + len]
                    ))
                }
            }
        }
        rest = &rest[i + len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The arguments of a macro call whose `(` is at `open`: the text up to the matching `)`,
/// split at top-level commas; and the index just past the `)`.
fn macro_args(text: &str, open: usize) -> Result<(Vec<String>, usize), String> {
    let mut depth = 0;
    for (j, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    let inner = &text[open + 1..open + j];
                    let mut args = Vec::new();
                    let mut level = 0;
                    let mut start = 0;
                    for (k, ch) in inner.char_indices() {
                        match ch {
                            '(' => level += 1,
                            ')' => level -= 1,
                            ',' if level == 0 => {
                                args.push(inner[start..k].trim().to_owned());
                                start = k + 1;
                            }
                            _ => {}
                        }
                    }
                    if !inner.trim().is_empty() {
                        args.push(inner[start..].trim().to_owned());
                    }
                    return Ok((args, open + j + 1));
                }
            }
            _ => {}
        }
    }
    Err(format!("unclosed macro call at `{}`", &text[open..]))
}

/// Expands the ClickHouse plugin's macros the way its back end writes them; an unknown
/// macro or a wrong argument count is an error.
pub fn expand_macros(sql: &str, cx: &SqlContext<'_>) -> Result<String, String> {
    let (from, to) = (cx.range.from, cx.range.to);
    let date = |s: i64| format!("toDate('{}')", utc(s).format("%Y-%m-%d"));
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql.to_owned();
    while let Some(i) = rest.find("$__") {
        out.push_str(&rest[..i]);
        let name_len = rest[i + 3..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len() - i - 3);
        let name = rest[i + 3..i + 3 + name_len].to_owned();
        let mut end = i + 3 + name_len;
        let mut args = Vec::new();
        if rest[end..].starts_with('(') {
            (args, end) = macro_args(&rest, end)?;
        }
        let want = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "`$__{name}` takes {n} argument(s), got {}",
                    args.len()
                ))
            }
        };
        let expansion = match name.as_str() {
            "timeFilter" => {
                want(1)?;
                let c = &args[0];
                format!("{c} >= toDateTime({from}) AND {c} <= toDateTime({to})")
            }
            "dateFilter" => {
                want(1)?;
                let c = &args[0];
                format!("{c} >= {} AND {c} <= {}", date(from), date(to))
            }
            "fromTime" => {
                want(0)?;
                format!("toDateTime({from})")
            }
            "toTime" => {
                want(0)?;
                format!("toDateTime({to})")
            }
            "interval_s" => {
                want(0)?;
                cx.interval_s.max(1).to_string()
            }
            other => {
                return Err(format!(
                    "`$__{other}` is not a macro this test expands (and `$__timeInterval` \
                     needs toStartOfInterval, which ClickHouse 18.16 lacks)"
                ))
            }
        };
        out.push_str(&expansion);
        rest = rest[end..].to_owned();
    }
    out.push_str(&rest);
    Ok(out)
}

/// Variables, then macros; refuses a result that still holds a `$`.
pub fn expand_sql(sql: &str, cx: &SqlContext<'_>) -> Result<String, String> {
    let expanded = expand_macros(&expand_variables(sql, cx.variables)?, cx)?;
    match expanded.find('$') {
        Some(i) => Err(format!("left unexpanded: `{}`", &expanded[i..])),
        None => Ok(expanded),
    }
}

/// What Grafana's PromQL interval variables stand for.
#[derive(Debug, Clone, Copy)]
pub struct PromRange {
    /// The dashboard range, seconds (`$__range`).
    pub range_s: i64,
    /// The panel interval, seconds (`$__interval`).
    pub interval_s: i64,
    /// The data source's scrape interval (`timeInterval`), seconds.
    pub scrape_interval_s: i64,
}

impl Default for PromRange {
    /// The pipeline dashboard's default 6 hours, a 15 s interval and the provisioned 15 s
    /// scrape interval.
    fn default() -> Self {
        Self {
            range_s: 6 * 3600,
            interval_s: 15,
            scrape_interval_s: 15,
        }
    }
}

impl PromRange {
    /// Grafana's `$__rate_interval`: max(`$__interval` + scrape interval, 4 × scrape
    /// interval).
    pub fn rate_interval_s(&self) -> i64 {
        (self.interval_s + self.scrape_interval_s).max(4 * self.scrape_interval_s)
    }
}

/// Expands `$__interval`, `$__interval_ms`, `$__rate_interval`, `$__range`, `$__range_s`
/// and `$__range_ms` (also as `${...}`); anything else with a `$` is an error.
pub fn expand_promql(expr: &str, r: &PromRange) -> Result<String, String> {
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let Some((name, format, len)) = reference(rest, i) else {
            return Err(format!("a lone `$` at `{}`", &rest[i..]));
        };
        if format.is_some() {
            return Err(format!("`{}`: no format applies here", &rest[i..i + len]));
        }
        let value = match name.as_str() {
            "__interval" => format!("{}s", r.interval_s),
            "__interval_ms" => (r.interval_s * 1000).to_string(),
            "__rate_interval" => format!("{}s", r.rate_interval_s()),
            "__range" => format!("{}s", r.range_s),
            "__range_s" => r.range_s.to_string(),
            "__range_ms" => (r.range_s * 1000).to_string(),
            other => return Err(format!("`${other}` is not expanded for PromQL here")),
        };
        out.push_str(&value);
        rest = &rest[i + len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The metric names and label names a PromQL expression mentions.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PromNames {
    /// Metric names of the selectors.
    pub metrics: Vec<String>,
    /// Label names in matchers (`{name="..."}`) and groupings (`by (name)`).
    pub labels: Vec<String>,
}

const PROM_KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
const PROM_GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Reads the metric and label names out of an (expanded) PromQL expression: an
/// identifier followed by `(` is a function, keywords and numbers are skipped, `{...}`
/// holds label matchers, `[...]` a duration, and a grouping keyword's `(...)` labels.
pub fn promql_names(expr: &str) -> PromNames {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = PromNames::default();
    let mut i = 0;
    let skip_string = |i: usize| -> usize {
        let q = chars[i];
        let mut j = i + 1;
        while j < chars.len() && chars[j] != q {
            j += if chars[j] == '\\' { 2 } else { 1 };
        }
        j + 1
    };
    let mut after_grouping = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(i);
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c == '{' || (c == '(' && after_grouping) {
            let close = if c == '{' { '}' } else { ')' };
            i += 1;
            while i < chars.len() && chars[i] != close {
                if chars[i] == '"' || chars[i] == '\'' || chars[i] == '`' {
                    i = skip_string(i);
                    continue;
                }
                if chars[i].is_ascii_alphabetic() || chars[i] == '_' {
                    let s = i;
                    while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                        i += 1;
                    }
                    names.labels.push(chars[s..i].iter().collect());
                    continue;
                }
                i += 1;
            }
            i += 1;
            after_grouping = false;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let s = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[s..i].iter().collect();
            let mut k = i;
            while k < chars.len() && chars[k].is_whitespace() {
                k += 1;
            }
            let lower = word.to_ascii_lowercase();
            if PROM_GROUPING.contains(&lower.as_str()) {
                after_grouping = chars.get(k) == Some(&'(');
            } else if PROM_KEYWORDS.contains(&lower.as_str()) || chars.get(k) == Some(&'(') {
                // an operator keyword or a function
            } else {
                names.metrics.push(word);
            }
        } else {
            i += 1;
        }
    }
    names
}
