//! Loading a policy file (TOML, or JSON with the same structure): the whole file is
//! checked and every problem is reported at once, each with its place in the file.

use super::model::{Condition, ExceptionReason, Page, Policy, Rule, Severity, Surface};
use crate::event::time::EventTime;
use crate::event::{Role, RoleSet};
use globset::{GlobBuilder, GlobSetBuilder};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;
use toml::{Table, Value};

/// The policy versions that ship with the tool (the files in `policies/`), newest last.
pub const SHIPPED: [(&str, &str); 2] = [
    (
        "partner-mfa-2019-09",
        include_str!("../../policies/partner-mfa-2019-09.toml"),
    ),
    (
        "partner-mfa-2020-05",
        include_str!("../../policies/partner-mfa-2020-05.toml"),
    ),
];

/// The default policy: the newest shipped.
pub const DEFAULT_POLICY: &str = "partner-mfa-2020-05";

/// Why a policy could not be loaded.
#[derive(Debug, Error)]
pub enum PolicyError {
    /// Neither a shipped name nor a readable file.
    #[error("no policy `{name}`: not a shipped policy ({shipped}) nor a readable file ({cause})")]
    NotFound {
        /// What was asked for.
        name: String,
        /// The shipped names.
        shipped: String,
        /// Why the file could not be read.
        cause: String,
    },
    /// The file has problems; all of them are listed.
    #[error("policy `{source_name}` has {} problem(s):\n  - {}", problems.len(), problems.join("\n  - "))]
    Invalid {
        /// The file or shipped name.
        source_name: String,
        /// Every problem found.
        problems: Vec<String>,
    },
}

/// Loads a shipped policy by name, or a policy file by path.
pub fn load(name_or_path: &str) -> Result<Policy, PolicyError> {
    if let Some((name, text)) = SHIPPED.iter().find(|(n, _)| *n == name_or_path) {
        return parse(text, name, Format::Toml);
    }
    let path = PathBuf::from(name_or_path);
    let text = std::fs::read_to_string(&path).map_err(|e| PolicyError::NotFound {
        name: name_or_path.to_owned(),
        shipped: SHIPPED.map(|(n, _)| n).join(", "),
        cause: e.to_string(),
    })?;
    parse(&text, name_or_path, Format::from_path(&path))
}

/// A policy file's syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML.
    Toml,
    /// JSON.
    Json,
}

impl Format {
    /// By file extension (`.json` is JSON, anything else TOML).
    pub fn from_path(p: &Path) -> Format {
        match p.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Toml,
        }
    }
}

/// Parses and validates policy text.
pub fn parse(text: &str, source_name: &str, format: Format) -> Result<Policy, PolicyError> {
    let invalid = |problems| PolicyError::Invalid {
        source_name: source_name.to_owned(),
        problems,
    };
    let table: Table = match format {
        Format::Toml => toml::from_str(text).map_err(|e| invalid(vec![e.message().to_owned()]))?,
        Format::Json => serde_json::from_str(text).map_err(|e| invalid(vec![e.to_string()]))?,
    };
    let mut cx = Cx::default();
    let policy = build(&table, &mut cx);
    match policy {
        Some(p) if cx.problems.is_empty() => Ok(p),
        _ => Err(invalid(cx.problems)),
    }
}

#[derive(Default)]
struct Cx {
    problems: Vec<String>,
}

impl Cx {
    fn problem(&mut self, at: &str, what: impl std::fmt::Display) {
        self.problems.push(format!("`{at}`: {what}"));
    }

    fn string(&mut self, t: &Table, key: &str, at: &str) -> Option<String> {
        match t.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(Value::String(_)) => {
                self.problem(&join(at, key), "must not be empty");
                None
            }
            Some(other) => {
                self.problem(
                    &join(at, key),
                    format!("must be text, not {}", other.type_str()),
                );
                None
            }
            None => {
                self.problem(&join(at, key), "is missing");
                None
            }
        }
    }

    fn optional_string(&mut self, t: &Table, key: &str, at: &str) -> Option<String> {
        t.get(key)?;
        self.string(t, key, at)
    }

    fn strings(&mut self, t: &Table, key: &str, at: &str) -> Option<Vec<String>> {
        let place = join(at, key);
        match t.get(key) {
            Some(Value::Array(a)) => {
                let mut out = Vec::with_capacity(a.len());
                for (i, v) in a.iter().enumerate() {
                    match v {
                        Value::String(s) => out.push(s.clone()),
                        other => self.problem(
                            &format!("{place}[{i}]"),
                            format!("must be text, not {}", other.type_str()),
                        ),
                    }
                }
                Some(out)
            }
            Some(other) => {
                self.problem(&place, format!("must be a list, not {}", other.type_str()));
                None
            }
            None => {
                self.problem(&place, "is missing");
                None
            }
        }
    }

    fn integer(&mut self, t: &Table, key: &str, at: &str, min: i64) -> Option<i64> {
        let place = join(at, key);
        match t.get(key) {
            Some(Value::Integer(i)) if *i >= min => Some(*i),
            Some(Value::Integer(i)) => {
                self.problem(&place, format!("{i} is below the minimum {min}"));
                None
            }
            Some(other) => {
                self.problem(
                    &place,
                    format!("must be a whole number, not {}", other.type_str()),
                );
                None
            }
            None => {
                self.problem(&place, "is missing");
                None
            }
        }
    }

    fn table<'t>(&mut self, t: &'t Table, key: &str, at: &str) -> Option<&'t Table> {
        match t.get(key) {
            Some(Value::Table(x)) => Some(x),
            Some(other) => {
                self.problem(
                    &join(at, key),
                    format!("must be a table, not {}", other.type_str()),
                );
                None
            }
            None => {
                self.problem(&join(at, key), "is missing");
                None
            }
        }
    }

    fn tables<'t>(&mut self, t: &'t Table, key: &str, at: &str) -> Vec<(String, &'t Table)> {
        let place = join(at, key);
        match t.get(key) {
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::Table(x) => Some((format!("{place}[{i}]"), x)),
                    other => {
                        self.problem(
                            &format!("{place}[{i}]"),
                            format!("must be a table, not {}", other.type_str()),
                        );
                        None
                    }
                })
                .collect(),
            Some(other) => {
                self.problem(
                    &place,
                    format!("must be a list of tables, not {}", other.type_str()),
                );
                Vec::new()
            }
            None => {
                self.problem(&place, "is missing");
                Vec::new()
            }
        }
    }

    fn unknown_keys(&mut self, t: &Table, known: &[&str], at: &str) {
        for k in t.keys() {
            if !known.contains(&k.as_str()) {
                self.problem(
                    &join(at, k),
                    format!("unknown key (known here: {})", known.join(", ")),
                );
            }
        }
    }

    fn roles(&mut self, names: &[String], at: &str) -> RoleSet {
        let mut set = RoleSet::default();
        for (i, n) in names.iter().enumerate() {
            match Role::parse(n) {
                Some(r) => set.insert(r),
                None => self.problem(
                    &format!("{at}[{i}]"),
                    format!(
                        "`{n}` is not a role (roles: {})",
                        Role::ALL.map(Role::name).join(", ")
                    ),
                ),
            }
        }
        set
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

const TOP_KEYS: &[&str] = &[
    "version",
    "title",
    "source",
    "partner_roles",
    "modern_clients",
    "surfaces",
    "pages",
    "rules",
    "session",
    "mfa",
    "exceptions",
];

fn build(t: &Table, cx: &mut Cx) -> Option<Policy> {
    cx.unknown_keys(t, TOP_KEYS, "");
    let version = cx.string(t, "version", "");
    let title = cx.string(t, "title", "");
    let _source = cx.optional_string(t, "source", "");
    let partner_roles = cx
        .strings(t, "partner_roles", "")
        .map(|r| cx.roles(&r, "partner_roles"))
        .unwrap_or_default();
    if partner_roles.is_empty() {
        cx.problem("partner_roles", "must name at least one role");
    }
    let modern_clients: Vec<String> = cx
        .strings(t, "modern_clients", "")
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.trim().to_owned())
        .collect();
    if modern_clients.is_empty() {
        cx.problem("modern_clients", "must name at least one client app");
    }
    let enforced_from = surfaces(t, cx);
    let pages = pages(t, cx, partner_roles);
    let (rules, by_condition) = rules(t, cx, &enforced_from);
    let session = cx.table(t, "session", "").cloned().unwrap_or_default();
    cx.unknown_keys(
        &session,
        &["max_age_hours", "partner_center_apps"],
        "session",
    );
    let session_max_age_secs = cx
        .integer(&session, "max_age_hours", "session", 1)
        .map(|h| h * 3600);
    let partner_center_apps = lower(cx.strings(&session, "partner_center_apps", "session"));
    let mfa = cx.table(t, "mfa", "").cloned().unwrap_or_default();
    cx.unknown_keys(
        &mfa,
        &[
            "satisfied_details",
            "second_factor_methods",
            "demanded_error_codes",
        ],
        "mfa",
    );
    let mfa_satisfied_details = lower(cx.strings(&mfa, "satisfied_details", "mfa"));
    let second_factor_methods = lower(cx.strings(&mfa, "second_factor_methods", "mfa"));
    let mfa_demanded_error_codes = error_codes(&mfa, cx);
    let (exception_response_business_days, exception_reasons) = exceptions(t, cx, &rules);

    Some(Policy {
        version: version?,
        title: title?,
        enforced_from,
        partner_roles,
        modern_clients,
        pages,
        by_condition,
        rules,
        session_max_age_secs: session_max_age_secs?,
        partner_center_apps,
        mfa_satisfied_details,
        second_factor_methods,
        mfa_demanded_error_codes,
        exception_response_business_days: exception_response_business_days?,
        exception_reasons,
    })
}

fn lower(v: Option<Vec<String>>) -> Vec<String> {
    v.unwrap_or_default()
        .into_iter()
        .map(|s| s.trim().to_ascii_lowercase())
        .collect()
}

fn surfaces(t: &Table, cx: &mut Cx) -> [Option<EventTime>; 5] {
    let mut out = [None; 5];
    let Some(s) = cx.table(t, "surfaces", "") else {
        return out;
    };
    for (name, v) in s {
        let at = format!("surfaces.{name}");
        let Some(surface) = Surface::parse(name) else {
            cx.problem(
                &at,
                format!(
                    "unknown surface (surfaces: {})",
                    Surface::ALL.map(Surface::name).join(", ")
                ),
            );
            continue;
        };
        let Value::Table(st) = v else {
            cx.problem(&at, format!("must be a table, not {}", v.type_str()));
            continue;
        };
        cx.unknown_keys(st, &["enforced_from", "note"], &at);
        match st.get("enforced_from") {
            None => {}
            Some(Value::Datetime(d)) => match EventTime::parse(&d.to_string()) {
                Some(when) => out[surface.index()] = Some(when),
                None => cx.problem(
                    &format!("{at}.enforced_from"),
                    "must be a date (YYYY-MM-DD)",
                ),
            },
            Some(Value::String(d)) => match EventTime::parse(d) {
                Some(when) => out[surface.index()] = Some(when),
                None => cx.problem(
                    &format!("{at}.enforced_from"),
                    format!("`{d}` is not a date (YYYY-MM-DD)"),
                ),
            },
            Some(other) => cx.problem(
                &format!("{at}.enforced_from"),
                format!("must be a date, not {}", other.type_str()),
            ),
        }
    }
    for surface in Surface::ALL {
        if !s.contains_key(surface.name()) {
            cx.problem(
                &format!("surfaces.{}", surface.name()),
                "is missing (write an empty table for a surface that is never enforced)",
            );
        }
    }
    if out[Surface::Registration.index()].is_some() {
        cx.problem(
            "surfaces.registration.enforced_from",
            "registration is a readiness signal and is never enforced",
        );
    }
    out
}

fn pages(t: &Table, cx: &mut Cx, partner_roles: RoleSet) -> Vec<Page> {
    let mut out = Vec::new();
    let mut ids = BTreeSet::new();
    for (at, p) in cx.tables(t, "pages", "") {
        cx.unknown_keys(p, &["id", "name", "urls", "roles"], &at);
        let id = cx.string(p, "id", &at);
        let name = cx.string(p, "name", &at);
        let urls = lower(cx.strings(p, "urls", &at));
        let roles = cx
            .strings(p, "roles", &at)
            .map(|r| cx.roles(&r, &format!("{at}.roles")))
            .unwrap_or_default();
        for r in roles.iter() {
            if !partner_roles.contains(r) {
                cx.problem(
                    &format!("{at}.roles"),
                    format!("`{r}` is not among this version's `partner_roles`"),
                );
            }
        }
        if urls.is_empty() {
            cx.problem(&format!("{at}.urls"), "must hold at least one URL pattern");
        }
        let mut set = GlobSetBuilder::new();
        for (i, u) in urls.iter().enumerate() {
            if !u.starts_with("https://") {
                cx.problem(
                    &format!("{at}.urls[{i}]"),
                    format!("`{u}` must be an absolute https URL pattern"),
                );
            }
            match GlobBuilder::new(u).literal_separator(false).build() {
                Ok(g) => {
                    set.add(g);
                }
                Err(e) => cx.problem(&format!("{at}.urls[{i}]"), format!("bad pattern: {e}")),
            }
        }
        let matcher = match set.build() {
            Ok(m) => m,
            Err(e) => {
                cx.problem(&format!("{at}.urls"), format!("bad patterns: {e}"));
                continue;
            }
        };
        if let (Some(id), Some(name)) = (id, name) {
            if !ids.insert(id.clone()) {
                cx.problem(&format!("{at}.id"), format!("page id `{id}` is used twice"));
            }
            out.push(Page {
                id,
                name,
                urls,
                matcher,
                roles,
            });
        }
    }
    out
}

type Rules = (Vec<Rule>, [Option<Rule>; 11]);

fn rules(t: &Table, cx: &mut Cx, enforced_from: &[Option<EventTime>; 5]) -> Rules {
    let mut all = Vec::new();
    let mut by_condition: [Option<Rule>; 11] = Default::default();
    let mut seen: BTreeMap<(String, Surface), String> = BTreeMap::new();
    for (at, r) in cx.tables(t, "rules", "") {
        cx.unknown_keys(r, &["id", "when", "surface", "severity", "summary"], &at);
        let id = cx.string(r, "id", &at);
        if let Some(id) = &id {
            if !id
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                cx.problem(
                    &format!("{at}.id"),
                    format!("`{id}` must be UPPER_SNAKE_CASE"),
                );
            }
        }
        let condition = cx.string(r, "when", &at).and_then(|w| {
            let c = Condition::parse(&w);
            if c.is_none() {
                cx.problem(
                    &format!("{at}.when"),
                    format!(
                        "`{w}` is not a condition (conditions: {})",
                        Condition::ALL.map(Condition::name).join(", ")
                    ),
                );
            }
            c
        });
        let surface = cx.string(r, "surface", &at).and_then(|s| {
            let x = Surface::parse(&s);
            if x.is_none() {
                cx.problem(&format!("{at}.surface"), format!("`{s}` is not a surface"));
            }
            x
        });
        let severity = cx.string(r, "severity", &at).and_then(|s| {
            let x = Severity::parse(&s);
            if x.is_none() {
                cx.problem(
                    &format!("{at}.severity"),
                    format!(
                        "`{s}` is not a severity (severities: {})",
                        Severity::ALL.map(Severity::name).join(", ")
                    ),
                );
            }
            x
        });
        let summary = cx.string(r, "summary", &at);
        let (Some(id), Some(condition), Some(surface), Some(severity), Some(summary)) =
            (id, condition, surface, severity, summary)
        else {
            continue;
        };
        if condition.surface() != surface {
            cx.problem(
                &format!("{at}.surface"),
                format!(
                    "`{}` tests {} events: its surface must be `{}`",
                    condition.name(),
                    condition.surface(),
                    condition.surface()
                ),
            );
            continue;
        }
        if condition == Condition::ApiAppUserWithoutMfaServed
            && enforced_from[Surface::Api.index()].is_none()
        {
            cx.problem(
                &format!("{at}.when"),
                "an enforcement gap needs `surfaces.api.enforced_from`",
            );
        }
        if let Some(prev) = seen.insert((id.clone(), surface), at.clone()) {
            cx.problem(
                &at,
                format!("rule `{id}` on surface `{surface}` is also defined at `{prev}`"),
            );
        }
        let rule = Rule {
            id: Arc::from(id.as_str()),
            condition,
            surface,
            severity,
            summary,
        };
        match &mut by_condition[condition.index()] {
            Some(existing) => cx.problem(
                &format!("{at}.when"),
                format!(
                    "condition `{}` is already reported by `{}`",
                    condition.name(),
                    existing.id
                ),
            ),
            slot => *slot = Some(rule.clone()),
        }
        all.push(rule);
    }
    if all.is_empty() {
        cx.problem("rules", "must hold at least one rule");
    }
    (all, by_condition)
}

fn error_codes(mfa: &Table, cx: &mut Cx) -> Vec<i64> {
    match mfa.get("demanded_error_codes") {
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .filter_map(|(i, v)| match v {
                Value::Integer(n) => Some(*n),
                other => {
                    cx.problem(
                        &format!("mfa.demanded_error_codes[{i}]"),
                        format!("must be a whole number, not {}", other.type_str()),
                    );
                    None
                }
            })
            .collect(),
        Some(other) => {
            cx.problem(
                "mfa.demanded_error_codes",
                format!("must be a list, not {}", other.type_str()),
            );
            Vec::new()
        }
        None => {
            cx.problem("mfa.demanded_error_codes", "is missing");
            Vec::new()
        }
    }
}

fn exceptions(
    t: &Table,
    cx: &mut Cx,
    rules: &[Rule],
) -> (Option<i64>, BTreeMap<String, ExceptionReason>) {
    let mut reasons = BTreeMap::new();
    let Some(e) = cx.table(t, "exceptions", "") else {
        return (None, reasons);
    };
    cx.unknown_keys(e, &["response_business_days", "reasons"], "exceptions");
    let days = cx.integer(e, "response_business_days", "exceptions", 1);
    let rule_ids: BTreeSet<&str> = rules.iter().map(|r| &*r.id).collect();
    for (at, r) in cx.tables(e, "reasons", "exceptions") {
        cx.unknown_keys(r, &["id", "name", "valid", "covers"], &at);
        let id = cx.string(r, "id", &at).map(|s| s.to_ascii_lowercase());
        let name = cx.string(r, "name", &at);
        let valid = match r.get("valid") {
            Some(Value::Boolean(b)) => Some(*b),
            Some(other) => {
                cx.problem(
                    &format!("{at}.valid"),
                    format!("must be true or false, not {}", other.type_str()),
                );
                None
            }
            None => {
                cx.problem(&format!("{at}.valid"), "is missing");
                None
            }
        };
        let covers = match r.get("covers") {
            None => Vec::new(),
            Some(_) => cx.strings(r, "covers", &at).unwrap_or_default(),
        };
        for (i, c) in covers.iter().enumerate() {
            if !rule_ids.contains(c.as_str()) {
                cx.problem(
                    &format!("{at}.covers[{i}]"),
                    format!("`{c}` is not a rule id of this policy"),
                );
            }
        }
        if valid == Some(false) && !covers.is_empty() {
            cx.problem(
                &format!("{at}.covers"),
                "an invalid reason covers nothing: remove `covers`",
            );
        }
        if valid == Some(true) && covers.is_empty() {
            cx.problem(
                &format!("{at}.covers"),
                "a valid reason must cover at least one rule",
            );
        }
        if let (Some(id), Some(name), Some(valid)) = (id, name, valid) {
            let reason = ExceptionReason {
                valid,
                covers: covers.iter().map(|c| Arc::from(c.as_str())).collect(),
                name,
            };
            if reasons.insert(id.clone(), reason).is_some() {
                cx.problem(
                    &format!("{at}.id"),
                    format!("reason `{id}` is listed twice"),
                );
            }
        }
    }
    (days, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_policies_load() {
        for (name, _) in SHIPPED {
            let p = load(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.version, name);
        }
        assert!(SHIPPED.iter().any(|(n, _)| *n == DEFAULT_POLICY));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
            version = "x"
            title = ""
            colour = "blue"
            partner_roles = ["AdminAgent", "Wizard"]
            modern_clients = ["Browser"]
            [surfaces]
            api = { enforced_from = "someday" }
            dashboard = {}
            delegated_admin = {}
            sign_in = {}
            [[pages]]
            id = "p"
            name = "P"
            urls = ["ftp://x/[*"]
            roles = ["SalesAgent"]
            [[rules]]
            id = "lower_case"
            when = "no_such_condition"
            surface = "api"
            severity = "urgent"
            summary = "s"
            [session]
            max_age_hours = 0
            partner_center_apps = []
            [mfa]
            satisfied_details = []
            second_factor_methods = []
            demanded_error_codes = ["x"]
            [exceptions]
            response_business_days = 3
            [[exceptions.reasons]]
            id = "r"
            name = "R"
            valid = true
            covers = ["NOPE"]
        "#;
        let err = parse(text, "test", Format::Toml).unwrap_err();
        let PolicyError::Invalid { problems, .. } = err else {
            panic!("{err}")
        };
        let all = problems.join("\n");
        for want in [
            "`title`: must not be empty",
            "`colour`: unknown key",
            "`partner_roles[1]`: `Wizard` is not a role",
            "`surfaces.api.enforced_from`: `someday` is not a date",
            "`surfaces.registration`: is missing",
            "`pages[0].roles`: `SalesAgent` is not among",
            "`pages[0].urls[0]`: `ftp://x/[*` must be an absolute https",
            "`rules[0].id`: `lower_case` must be UPPER_SNAKE_CASE",
            "`rules[0].when`: `no_such_condition` is not a condition",
            "`rules[0].severity`: `urgent` is not a severity",
            "`session.max_age_hours`: 0 is below the minimum 1",
            "`mfa.demanded_error_codes[0]`: must be a whole number",
            "`exceptions.reasons[0].covers[0]`: `NOPE` is not a rule id",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
    }

    #[test]
    fn json_policies_load_like_toml() {
        let (_, text) = SHIPPED[1];
        let table: Table = toml::from_str(text).unwrap();
        let json = serde_json::to_string(&table).unwrap();
        let p = parse(&json, "x.json", Format::Json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.version, "partner-mfa-2020-05");
    }

    #[test]
    fn a_missing_file_names_the_shipped_policies() {
        let e = load("/nonexistent/policy.toml").unwrap_err().to_string();
        assert!(e.contains("partner-mfa-2020-05"), "{e}");
    }
}
