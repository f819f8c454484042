//! Loading a policy file (TOML, or JSON with the same structure): the whole file is
//! checked and every problem is reported at once, each with its place in the file.

use super::attr::{Attr, Scope, Type};
use super::cond::{self, Env, Template};
use super::model::{
    CounterDef, ExceptionReason, Page, Policy, ReadinessDef, Rule, Severity, ShareDef, SurfaceDef,
};
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
    #[error("policy `{source_name}` has {} problem(s){note}:\n  - {}", problems.len(), problems.join("\n  - "))]
    Invalid {
        /// The file or shipped name.
        source_name: String,
        /// Said after the count (how places are counted in an extending policy).
        note: String,
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
        note: String::new(),
        problems,
    };
    let table: Table = match format {
        Format::Toml => toml::from_str(text).map_err(|e| invalid(vec![e.message().to_owned()]))?,
        Format::Json => serde_json::from_str(text).map_err(|e| invalid(vec![e.to_string()]))?,
    };
    let base = table
        .get("extends")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let table = extend(table, source_name, 0).map_err(|p| invalid(vec![p]))?;
    let mut cx = Cx::default();
    let policy = build(&table, &mut cx);
    // A named condition used in several places reports its own problem once.
    let mut seen = BTreeSet::new();
    cx.problems.retain(|p| seen.insert(p.clone()));
    match policy {
        Some(p) if cx.problems.is_empty() => Ok(p),
        _ => Err(PolicyError::Invalid {
            source_name: source_name.to_owned(),
            note: base
                .map(|b| {
                    format!(" (it extends `{b}`: list positions count the entries of `{b}` first)")
                })
                .unwrap_or_default(),
            problems: cx.problems,
        }),
    }
}

/// Resolves `extends = "NAME|FILE"`: the base policy's table with this one laid over it
/// (tables merged key by key, lists of tables appended, anything else replaced). A
/// relative file is found beside the extending one.
fn extend(mut table: Table, source_name: &str, depth: usize) -> Result<Table, String> {
    let Some(base) = table.remove("extends") else {
        return Ok(table);
    };
    let Value::String(base) = base else {
        return Err("`extends`: must name a shipped policy or a policy file".into());
    };
    if depth >= 8 {
        return Err(format!(
            "`extends`: `{base}` is more than 8 levels deep (a loop?)"
        ));
    }
    if !table.contains_key("version") {
        return Err(format!(
            "`version`: is missing: a policy that extends `{base}` needs a version of its own"
        ));
    }
    let (text, name, format) = match SHIPPED.iter().find(|(n, _)| *n == base) {
        Some((n, text)) => ((*text).to_owned(), (*n).to_owned(), Format::Toml),
        None => {
            let dir = Path::new(source_name).parent().unwrap_or(Path::new(""));
            let path = dir.join(&base);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "`extends`: `{base}` is neither a shipped policy ({}) nor a readable file ({e})",
                    SHIPPED.map(|(n, _)| n).join(", ")
                )
            })?;
            (text, path.display().to_string(), Format::from_path(&path))
        }
    };
    let parsed: Table = match format {
        Format::Toml => {
            toml::from_str(&text).map_err(|e| format!("`extends` `{base}`: {}", e.message()))?
        }
        Format::Json => {
            serde_json::from_str(&text).map_err(|e| format!("`extends` `{base}`: {e}"))?
        }
    };
    let mut merged = extend(parsed, &name, depth + 1)?;
    overlay(&mut merged, table);
    Ok(merged)
}

/// Lays an extending policy over its base. Top-level tables (`[lists]`, `[conditions]`,
/// `[readiness]`, `[session]`, `[mfa]`, `[exceptions]`) are merged key by key, each key's
/// value replaced whole; lists of tables are merged by their key (`name` of surfaces and
/// counters, `id` of pages, rules and exception reasons): an entry whose key the base
/// has replaces the base's entries of that key, in place; others are appended. Anything
/// else is replaced.
fn overlay(base: &mut Table, top: Table) {
    for (k, v) in top {
        match (base.get_mut(&k), v) {
            (Some(Value::Table(b)), Value::Table(t)) => {
                for (kk, vv) in t {
                    match (b.get_mut(&kk), vv) {
                        (Some(Value::Array(ba)), Value::Array(ta)) if kk == "reasons" => {
                            merge_keyed(ba, ta, "id")
                        }
                        (_, vv) => {
                            b.insert(kk, vv);
                        }
                    }
                }
            }
            (Some(Value::Array(b)), Value::Array(t)) if is_tables(b) && is_tables(&t) => {
                merge_keyed(
                    b,
                    t,
                    if k == "surfaces" || k == "counters" {
                        "name"
                    } else {
                        "id"
                    },
                )
            }
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn is_tables(a: &[Value]) -> bool {
    a.iter().all(|x| matches!(x, Value::Table(_)))
}

fn merge_keyed(base: &mut Vec<Value>, top: Vec<Value>, key: &str) {
    let key_of = |v: &Value| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let top_keys: BTreeSet<String> = top.iter().filter_map(key_of).collect();
    let mut pending: Vec<Option<Value>> = top.into_iter().map(Some).collect();
    let mut placed = BTreeSet::new();
    let mut out = Vec::with_capacity(base.len() + pending.len());
    for b in base.drain(..) {
        match key_of(&b) {
            // The base's entries of a key the extending policy writes are dropped; the new
            // ones take the place of the first.
            Some(k) if top_keys.contains(&k) => {
                if placed.insert(k.clone()) {
                    for slot in pending.iter_mut() {
                        if slot.as_ref().and_then(key_of).as_deref() == Some(k.as_str()) {
                            out.extend(slot.take());
                        }
                    }
                }
            }
            _ => out.push(b),
        }
    }
    out.extend(pending.into_iter().flatten());
    *base = out;
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
    "lists",
    "conditions",
    "surfaces",
    "pages",
    "rules",
    "counters",
    "readiness",
    "session",
    "mfa",
    "exceptions",
];

/// The `rollout_daily` column groups a surface's share can fill.
pub const ROLLOUT_SHARE_COLUMNS: [&str; 3] = [
    "api_app_user_calls",
    "dashboard_protected_requests",
    "delegated_admin_signins",
];

/// The `rollout_daily` columns a counter can fill.
pub const ROLLOUT_COUNTER_COLUMNS: [&str; 3] = [
    "api_app_only_calls",
    "legacy_protocol_signins",
    "password_flow_tokens",
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
    let lists = cond::lists(t.get("lists"), &mut cx.problems);
    let conditions: BTreeMap<String, Value> = match t.get("conditions") {
        None => BTreeMap::new(),
        Some(Value::Table(c)) => c.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Some(other) => {
            cx.problem(
                "conditions",
                format!(
                    "must be a table of named conditions, not {}",
                    other.type_str()
                ),
            );
            BTreeMap::new()
        }
    };
    let env = Env {
        lists: &lists,
        conditions: &conditions,
        scope: Some(Scope::Event),
    };
    // Every named condition is checked, used or not (its scope where it is used).
    let any_scope = Env { scope: None, ..env };
    for (name, v) in &conditions {
        let _ = cond::compile(
            v,
            &format!("conditions.{name}"),
            &any_scope,
            &mut cx.problems,
        );
    }
    let surfaces = surfaces(t, cx, &env);
    let pages = pages(t, cx, partner_roles);
    let rules = rules(t, cx, &env, &surfaces);
    check_shares(cx, &surfaces, t);
    let counters = counters(t, cx, &env);
    let readiness = readiness(t, cx, &lists, &conditions);
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
            "skipped_details",
            "second_factor_methods",
            "demanded_error_codes",
        ],
        "mfa",
    );
    let mfa_satisfied_details = lower(cx.strings(&mfa, "satisfied_details", "mfa"));
    let mfa_skipped_details = match mfa.get("skipped_details") {
        None => Vec::new(),
        Some(_) => lower(cx.strings(&mfa, "skipped_details", "mfa")),
    };
    let second_factor_methods = lower(cx.strings(&mfa, "second_factor_methods", "mfa"));
    let mfa_demanded_error_codes = error_codes(&mfa, cx);
    let (exception_response_business_days, exception_reasons) = exceptions(t, cx);

    Some(Policy {
        version: version?,
        title: title?,
        surfaces,
        partner_roles,
        pages,
        rules,
        conditions: conditions
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
        counters,
        readiness: readiness?,
        session_max_age_secs: session_max_age_secs?,
        partner_center_apps,
        mfa_satisfied_details,
        mfa_skipped_details,
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

fn date(cx: &mut Cx, v: Option<&Value>, at: &str) -> Option<EventTime> {
    match v {
        None => None,
        Some(Value::Datetime(d)) => {
            let when = EventTime::parse(&d.to_string());
            if when.is_none() {
                cx.problem(at, "must be a date (YYYY-MM-DD)");
            }
            when
        }
        Some(Value::String(d)) => {
            let when = EventTime::parse(d);
            if when.is_none() {
                cx.problem(at, format!("`{d}` is not a date (YYYY-MM-DD)"));
            }
            when
        }
        Some(other) => {
            cx.problem(at, format!("must be a date, not {}", other.type_str()));
            None
        }
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn surfaces(t: &Table, cx: &mut Cx, env: &Env<'_>) -> Vec<SurfaceDef> {
    let mut out: Vec<SurfaceDef> = Vec::new();
    if let Some(Value::Table(_)) = t.get("surfaces") {
        cx.problem(
            "surfaces",
            "surfaces are a list now: write `[[surfaces]]` entries with `name` (see docs/rules.md)",
        );
        return out;
    }
    let mut columns = BTreeMap::new();
    for (at, st) in cx.tables(t, "surfaces", "") {
        cx.unknown_keys(
            st,
            &["name", "enforced_from", "note", "share", "rollout_columns"],
            &at,
        );
        let Some(name) = cx.string(st, "name", &at) else {
            continue;
        };
        if !is_name(&name) {
            cx.problem(
                &format!("{at}.name"),
                format!("`{name}` must be lower_snake_case"),
            );
        }
        if out.iter().any(|s| *s.name == *name) {
            cx.problem(
                &format!("{at}.name"),
                format!("surface `{name}` is declared twice"),
            );
            continue;
        }
        let enforced_from = date(cx, st.get("enforced_from"), &format!("{at}.enforced_from"));
        let share = match st.get("share") {
            None => None,
            Some(Value::Table(sh)) => share(cx, sh, &format!("{at}.share"), env),
            Some(other) => {
                cx.problem(
                    &format!("{at}.share"),
                    format!("must be a table, not {}", other.type_str()),
                );
                None
            }
        };
        let rollout_columns = cx.optional_string(st, "rollout_columns", &at);
        if let Some(c) = &rollout_columns {
            if !ROLLOUT_SHARE_COLUMNS.contains(&c.as_str()) {
                cx.problem(
                    &format!("{at}.rollout_columns"),
                    format!(
                        "`{c}` is not a column group of rollout_daily ({}); every surface's share is also in rollout_surfaces",
                        ROLLOUT_SHARE_COLUMNS.join(", ")
                    ),
                );
            } else if share.is_none() {
                cx.problem(
                    &format!("{at}.rollout_columns"),
                    "needs a `share` to fill them",
                );
            } else if let Some(prev) = columns.insert(c.clone(), at.clone()) {
                cx.problem(
                    &format!("{at}.rollout_columns"),
                    format!("`{c}` is already filled by `{prev}`"),
                );
            }
        }
        out.push(SurfaceDef {
            name: Arc::from(name.as_str()),
            enforced_from,
            share,
            rollout_columns,
        });
    }
    if out.is_empty() {
        cx.problem("surfaces", "must declare at least one surface");
    }
    if out.len() > 64 {
        cx.problem("surfaces", "at most 64 surfaces");
    }
    out
}

fn share(cx: &mut Cx, sh: &Table, at: &str, env: &Env<'_>) -> Option<ShareDef> {
    cx.unknown_keys(sh, &["counts", "mfa", "excepted_by"], at);
    let counts = match sh.get("counts") {
        Some(v) => cond::compile(v, &format!("{at}.counts"), env, &mut cx.problems)
            .map(|c| (c, v.to_string())),
        None => {
            cx.problem(
                &format!("{at}.counts"),
                "is missing (which events the share counts)",
            );
            None
        }
    };
    let mfa = cx
        .string(sh, "mfa", at)
        .and_then(|m| match Attr::parse(&m) {
            Some(a) if a.def().ty == Type::Bool && a.def().scope == Scope::Event => Some(a),
            Some(_) => {
                cx.problem(
                    &format!("{at}.mfa"),
                    format!("`{m}` must be a bool attribute of an event"),
                );
                None
            }
            None => {
                cx.problem(&format!("{at}.mfa"), format!("`{m}` is not an attribute"));
                None
            }
        });
    let excepted_by = match sh.get("excepted_by") {
        None => Vec::new(),
        Some(_) => cx.strings(sh, "excepted_by", at).unwrap_or_default(),
    };
    if let Some((c, _)) = &counts {
        no_rule_attrs(cx, c, &format!("{at}.counts"));
    }
    let ((counts, counts_source), mfa) = (counts?, mfa?);
    Some(ShareDef {
        kinds: counts.kinds(),
        counts,
        counts_source,
        mfa,
        excepted_by: excepted_by.iter().map(|s| Arc::from(s.as_str())).collect(),
    })
}

/// Every `excepted_by` names a rule id written in the file (valid or not: a rule with a
/// problem of its own is reported once, there).
/// `rule.*` attributes describe a rule: shares and counters have none to read.
fn no_rule_attrs(cx: &mut Cx, c: &cond::Cond, at: &str) {
    let mut reads = Vec::new();
    c.attrs(&mut reads);
    for a in reads {
        if matches!(a, Attr::RuleEnforced | Attr::RuleExcepted) {
            cx.problem(
                at,
                format!(
                    "`{}` is read by rules only: a share or counter has no rule",
                    a.name()
                ),
            );
        }
    }
}

fn check_shares(cx: &mut Cx, surfaces: &[SurfaceDef], t: &Table) {
    let ids = written_rule_ids(t);
    for (i, s) in surfaces.iter().enumerate() {
        let Some(share) = &s.share else { continue };
        for (j, id) in share.excepted_by.iter().enumerate() {
            if !ids.contains(&**id) {
                cx.problem(
                    &format!("surfaces[{i}].share.excepted_by[{j}]"),
                    format!("`{id}` is not a rule id of this policy"),
                );
            }
        }
    }
}

fn pages(t: &Table, cx: &mut Cx, partner_roles: RoleSet) -> Vec<Page> {
    let mut out = Vec::new();
    let mut ids = BTreeSet::new();
    let list = match t.get("pages") {
        None => Vec::new(),
        Some(_) => cx.tables(t, "pages", ""),
    };
    for (at, p) in list {
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

fn rules(t: &Table, cx: &mut Cx, env: &Env<'_>, surfaces: &[SurfaceDef]) -> Vec<Rule> {
    let mut all: Vec<Rule> = Vec::new();
    let mut severities: BTreeMap<String, (Severity, String)> = BTreeMap::new();
    for (at, r) in cx.tables(t, "rules", "") {
        cx.unknown_keys(
            r,
            &["id", "when", "surface", "severity", "summary", "detail"],
            &at,
        );
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
        let when = match r.get("when") {
            Some(Value::String(name)) => {
                cx.problem(
                    &format!("{at}.when"),
                    format!(
                        "`{name}` names a built-in condition, which no longer exist: write the condition as data, e.g. `when = {{ all = [{{ attr = \"event.kind\", eq = \"sign_in\" }}, ...] }}` (docs/rules.md)"
                    ),
                );
                None
            }
            Some(v) => cond::compile(v, &format!("{at}.when"), env, &mut cx.problems)
                .map(|c| (c, v.to_string())),
            None => {
                cx.problem(&format!("{at}.when"), "is missing");
                None
            }
        };
        let surface = cx.string(r, "surface", &at).and_then(|s| {
            let x = surfaces.iter().position(|d| *d.name == *s);
            if x.is_none() {
                cx.problem(
                    &format!("{at}.surface"),
                    format!(
                        "`{s}` is not a declared surface (surfaces: {})",
                        surfaces
                            .iter()
                            .map(|d| &*d.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
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
        let detail = match r.get("detail") {
            None => summary.as_deref().and_then(|s| {
                Template::parse(
                    &s.replace('{', "{{").replace('}', "}}"),
                    &at,
                    &mut cx.problems,
                )
            }),
            Some(Value::String(d)) => Template::parse(d, &format!("{at}.detail"), &mut cx.problems),
            Some(other) => {
                cx.problem(
                    &format!("{at}.detail"),
                    format!("must be text, not {}", other.type_str()),
                );
                None
            }
        };
        let (
            Some(id),
            Some((when, when_source)),
            Some(surface),
            Some(severity),
            Some(summary),
            Some(detail),
        ) = (id, when, surface, severity, summary, detail)
        else {
            continue;
        };
        let Some(surface_def) = surfaces.get(surface) else {
            continue;
        };
        let mut reads = Vec::new();
        when.attrs(&mut reads);
        if reads.contains(&Attr::RuleEnforced) && surface_def.enforced_from.is_none() {
            cx.problem(
                &format!("{at}.when"),
                format!(
                    "reads `rule.enforced`, but surface `{}` has no `enforced_from`",
                    surface_def.name
                ),
            );
        }
        if let Some((prev, prev_at)) = severities.get(&id) {
            if *prev != severity {
                cx.problem(
                    &format!("{at}.severity"),
                    format!(
                        "rule `{id}` is {} at `{prev_at}`: one id, one severity",
                        prev.name()
                    ),
                );
            }
        } else {
            severities.insert(id.clone(), (severity, at.clone()));
        }
        all.push(Rule {
            kinds: when.kinds(),
            id: Arc::from(id.as_str()),
            surface,
            surface_name: Arc::clone(&surface_def.name),
            severity,
            summary,
            when,
            when_source,
            detail,
        });
    }
    if all.is_empty() {
        cx.problem("rules", "must hold at least one rule");
    }
    all
}

fn counters(t: &Table, cx: &mut Cx, env: &Env<'_>) -> Vec<CounterDef> {
    let mut out: Vec<CounterDef> = Vec::new();
    if t.get("counters").is_none() {
        return out;
    }
    for (at, c) in cx.tables(t, "counters", "") {
        cx.unknown_keys(c, &["name", "when", "note"], &at);
        let name = cx.string(c, "name", &at);
        if let Some(n) = &name {
            if !ROLLOUT_COUNTER_COLUMNS.contains(&n.as_str()) {
                cx.problem(
                    &format!("{at}.name"),
                    format!(
                        "`{n}` is not a counter column of rollout_daily ({})",
                        ROLLOUT_COUNTER_COLUMNS.join(", ")
                    ),
                );
            } else if out.iter().any(|x| x.name == *n) {
                cx.problem(
                    &format!("{at}.name"),
                    format!("counter `{n}` is declared twice"),
                );
            }
        }
        let when = match c.get("when") {
            Some(v) => cond::compile(v, &format!("{at}.when"), env, &mut cx.problems)
                .map(|w| (w, v.to_string())),
            None => {
                cx.problem(&format!("{at}.when"), "is missing");
                None
            }
        };
        if let Some((w, _)) = &when {
            no_rule_attrs(cx, w, &format!("{at}.when"));
        }
        if let (Some(name), Some((when, when_source))) = (name, when) {
            out.push(CounterDef {
                kinds: when.kinds(),
                name,
                when,
                when_source,
            });
        }
    }
    out
}

fn readiness(
    t: &Table,
    cx: &mut Cx,
    lists: &BTreeMap<String, cond::List>,
    conditions: &BTreeMap<String, Value>,
) -> Option<ReadinessDef> {
    let r = cx.table(t, "readiness", "")?;
    cx.unknown_keys(r, &["blocked", "ready", "note"], "readiness");
    let env = Env {
        lists,
        conditions,
        scope: Some(Scope::Day),
    };
    let mut one = |key: &str| match r.get(key) {
        Some(v) => cond::compile(v, &format!("readiness.{key}"), &env, &mut cx.problems)
            .map(|c| (c, v.to_string())),
        None => {
            cx.problem(&format!("readiness.{key}"), "is missing");
            None
        }
    };
    let blocked = one("blocked");
    let ready = one("ready");
    let ((blocked, b), (ready, r)) = (blocked?, ready?);
    Some(ReadinessDef {
        blocked,
        ready,
        sources: [b, r],
    })
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

/// The rule ids written in the file, valid or not (a rule with a problem of its own is
/// reported there, not again where it is named).
fn written_rule_ids(t: &Table) -> BTreeSet<&str> {
    match t.get("rules") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|r| r.get("id").and_then(Value::as_str))
            .collect(),
        _ => BTreeSet::new(),
    }
}

fn exceptions(t: &Table, cx: &mut Cx) -> (Option<i64>, BTreeMap<String, ExceptionReason>) {
    let mut reasons = BTreeMap::new();
    let Some(e) = cx.table(t, "exceptions", "") else {
        return (None, reasons);
    };
    cx.unknown_keys(e, &["response_business_days", "reasons"], "exceptions");
    let days = cx.integer(e, "response_business_days", "exceptions", 1);
    let rule_ids = written_rule_ids(t);
    let listed = match e.get("reasons") {
        None => Vec::new(),
        Some(_) => cx.tables(e, "reasons", "exceptions"),
    };
    for (at, r) in listed {
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
            [lists]
            apps = ["a", "b"]
            codes = [1, 2]
            mixed = ["a", 1]
            [conditions]
            loop = { condition = "loop" }
            [[surfaces]]
            name = "api"
            enforced_from = "someday"
            share = { counts = { attr = "event.kind", eq = "x" }, mfa = "api.mfa", excepted_by = ["NOPE"] }
            [[surfaces]]
            name = "api"
            [[surfaces]]
            name = "Portal"
            rollout_columns = "portal_calls"
            share = { counts = { attr = "event.kind", eq = "x" }, mfa = "api.status" }
            [[pages]]
            id = "p"
            name = "P"
            urls = ["ftp://x/[*"]
            roles = ["SalesAgent"]
            [[rules]]
            id = "lower_case"
            when = { attr = "sign_in.colour", eq = "red" }
            surface = "api"
            severity = "urgent"
            summary = "s"
            [[rules]]
            id = "WRONG_TYPE"
            surface = "nowhere"
            severity = "low"
            summary = "s"
            when = { all = [
              { attr = "sign_in.success", eq = "yes" },
              { attr = "sign_in.app_id", in = "no_such_list" },
              { attr = "sign_in.error_code", in = "apps" },
              { any = [] },
              { attr = "api.status", glob = "2*" },
              { attr = "day.findings", gt = 0 },
              { attr = "token.amr", contains = "mfa", colour = 1 },
              { condition = "loop" },
            ] }
            detail = "{sign_in.nope} and {"
            [[rules]]
            id = "OLD_STYLE"
            when = "api_app_user_without_mfa"
            surface = "api"
            severity = "high"
            summary = "s"
            [[counters]]
            name = "my_counter"
            when = { attr = "event.kind", eq = "sign_in" }
            [readiness]
            blocked = { attr = "sign_in.success", eq = true }
            ready = { attr = "day.findings", eq = "none" }
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
            "`lists.mixed`: must hold only texts or only whole numbers",
            "`conditions.loop.condition`: `loop` refers to itself",
            "`surfaces[0].enforced_from`: `someday` is not a date",
            "`surfaces[2].share.mfa`: `api.status` must be a bool attribute",
            "`surfaces[0].share.excepted_by[0]`: `NOPE` is not a rule id",
            "`surfaces[1].name`: surface `api` is declared twice",
            "`surfaces[2].name`: `Portal` must be lower_snake_case",
            "`surfaces[2].rollout_columns`: `portal_calls` is not a column group",
            "`pages[0].roles`: `SalesAgent` is not among",
            "`pages[0].urls[0]`: `ftp://x/[*` must be an absolute https",
            "`rules[0].id`: `lower_case` must be UPPER_SNAKE_CASE",
            "`rules[0].when.attr`: `sign_in.colour` is not an attribute",
            "`rules[0].severity`: `urgent` is not a severity",
            "`rules[1].surface`: `nowhere` is not a declared surface",
            "`rules[1].when.all[0].eq`: `sign_in.success` is a bool: compare it with `true` or `false`, not string",
            "`rules[1].when.all[1].in`: `no_such_list` is not a list of `[lists]`",
            "`rules[1].when.all[2].in`: list `apps` holds texts, not numbers",
            "`rules[1].when.all[3].any`: must hold at least one condition",
            "`rules[1].when.all[4].glob`: `glob` does not apply to `api.status`, an int",
            "`rules[1].when.all[5].attr`: `day.findings` describes a day",
            "`rules[1].when.all[6].colour`: unknown comparison",
            "`rules[1].detail`: `{sign_in.nope}` is not an event attribute",
            "`rules[2].when`: `api_app_user_without_mfa` names a built-in condition",
            "`counters[0].name`: `my_counter` is not a counter column",
            "`readiness.blocked.attr`: `sign_in.success` describes an event",
            "`readiness.ready.eq`: `day.findings` is an int: compare it with a whole number, not string",
            "`session.max_age_hours`: 0 is below the minimum 1",
            "`mfa.demanded_error_codes[0]`: must be a whole number",
            "`exceptions.reasons[0].covers[0]`: `NOPE` is not a rule id",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
    }

    #[test]
    fn a_rule_on_a_never_enforced_surface_cannot_read_rule_enforced() {
        let text = SHIPPED[0].1.replace(
            r#"when = { all = [{ condition = "app_user_call" }, { attr = "api.mfa", eq = false }] }"#,
            r#"when = { all = [{ condition = "app_user_call" }, { attr = "rule.enforced", eq = true }] }"#,
        );
        let err = parse(&text, "test", Format::Toml).unwrap_err().to_string();
        assert!(
            err.contains("reads `rule.enforced`, but surface `api` has no `enforced_from`"),
            "{err}"
        );
    }

    #[test]
    fn an_extending_policy_replaces_by_key_and_adds_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.toml");
        std::fs::write(
            &path,
            r#"
            extends = "partner-mfa-2020-05"
            version = "mine"
            [lists]
            modern_clients = ["Browser"]
            [conditions]
            successful_sign_in = { all = [{ attr = "event.kind", eq = "sign_in" }, { attr = "sign_in.error_code", eq = 0 }] }
            [[surfaces]]
            name = "api"
            enforced_from = 2026-04-01
            share = { counts = { condition = "app_user_call" }, mfa = "api.mfa" }
            [[surfaces]]
            name = "azure"
            [[rules]]
            id = "LEGACY_PROTOCOL"
            surface = "sign_in"
            severity = "low"
            summary = "replaced"
            when = { condition = "legacy_sign_in" }
            [[rules]]
            id = "NEW_RULE"
            surface = "azure"
            severity = "low"
            summary = "added"
            when = { attr = "event.kind", eq = "sign_in" }
            [[exceptions.reasons]]
            id = "needs_more_time"
            name = "now valid"
            valid = true
            covers = ["NEW_RULE"]
            "#,
        )
        .unwrap();
        let p = load(path.to_str().unwrap()).unwrap_or_else(|e| panic!("{e}"));
        let base = load("partner-mfa-2020-05").unwrap();
        assert_eq!(p.version, "mine");
        assert_eq!(p.title, base.title, "kept from the base");
        let names: Vec<&str> = p.surfaces.iter().map(|s| &*s.name).collect();
        assert_eq!(
            names,
            [
                "api",
                "dashboard",
                "delegated_admin",
                "sign_in",
                "registration",
                "azure"
            ]
        );
        let api = p.surface("api").unwrap();
        assert_eq!(
            p.enforced_from(api).unwrap().day().to_string(),
            "2026-04-01",
            "replaced in place"
        );
        assert_eq!(p.rules.len(), base.rules.len() + 1);
        let legacy = p
            .rules
            .iter()
            .position(|r| &*r.id == "LEGACY_PROTOCOL")
            .unwrap();
        assert_eq!(
            legacy,
            base.rules
                .iter()
                .position(|r| &*r.id == "LEGACY_PROTOCOL")
                .unwrap(),
            "a replaced rule keeps its place"
        );
        assert_eq!(p.rules[legacy].severity, Severity::Low);
        assert_eq!(p.rules.last().unwrap().id.as_ref(), "NEW_RULE");
        assert!(p.reason_covers("needs_more_time", "NEW_RULE"));
        assert!(
            p.reason_covers("third_party_mfa_not_recognised", "LEGACY_PROTOCOL")
                == base.reason_covers("third_party_mfa_not_recognised", "LEGACY_PROTOCOL")
        );
        assert!(
            p.conditions["successful_sign_in"].contains("sign_in.error_code"),
            "replaced whole, not merged"
        );
        // Its problems are placed in the merged lists, and it says so.
        std::fs::write(
            &path,
            "extends = \"partner-mfa-2020-05\"\nversion = \"m\"\n[[rules]]\nid = \"X\"\nsurface = \"nowhere\"\nseverity = \"low\"\nsummary = \"s\"\nwhen = { attr = \"event.kind\", eq = \"sign_in\" }\n",
        )
        .unwrap();
        let e = load(path.to_str().unwrap()).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "`rules[{}].surface`: `nowhere` is not a declared surface",
                base.rules.len()
            )),
            "{e}"
        );
        assert!(
            e.contains("list positions count the entries of `partner-mfa-2020-05` first"),
            "{e}"
        );
        let e = parse("extends = \"partner-mfa-2020-05\"", "x.toml", Format::Toml)
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs a version of its own"), "{e}");
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
