//! The protected pages and the rules of a policy file.

use super::{lower, Cx};
use crate::event::RoleSet;
use crate::policy::attr::Attr;
use crate::policy::compile::{self, Env};
use crate::policy::model::{page_glob, Page, PageIndex, Rule, Severity, Suppress, SurfaceDef};
use crate::policy::template::Template;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use toml::{Table, Value};

/// The protected pages, and their URL patterns compiled into one index.
pub(super) fn pages(t: &Table, cx: &mut Cx, partner_roles: RoleSet) -> (Vec<Page>, PageIndex) {
    let mut out = Vec::new();
    let mut patterns = Vec::new();
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
        let mut globs = Vec::new();
        for (i, u) in urls.iter().enumerate() {
            if !u.starts_with("https://") {
                cx.problem(
                    &format!("{at}.urls[{i}]"),
                    format!("`{u}` must be an absolute https URL pattern"),
                );
            }
            match page_glob(u) {
                Ok(g) => globs.push(g),
                Err(e) => cx.problem(&format!("{at}.urls[{i}]"), format!("bad pattern: {e}")),
            }
        }
        if let (Some(id), Some(name)) = (id, name) {
            if !ids.insert(id.clone()) {
                cx.problem(&format!("{at}.id"), format!("page id `{id}` is used twice"));
            }
            patterns.extend(globs.into_iter().map(|g| (g, out.len())));
            out.push(Page {
                id,
                name,
                urls,
                roles,
            });
        }
    }
    let index = PageIndex::build(patterns).unwrap_or_else(|e| {
        cx.problem("pages", format!("bad patterns: {e}"));
        PageIndex::default()
    });
    (out, index)
}

pub(super) fn rules(t: &Table, cx: &mut Cx, env: &Env<'_>, surfaces: &[SurfaceDef]) -> Vec<Rule> {
    let mut all: Vec<Rule> = Vec::new();
    let mut severities: BTreeMap<String, (Severity, String)> = BTreeMap::new();
    let entries = cx.tables(t, "rules", "");
    // Only an empty list lacks rules: a missing one is said missing, and a rule with a
    // problem is said wrong, not absent.
    if entries.is_empty() && matches!(t.get("rules"), Some(Value::Array(a)) if a.is_empty()) {
        cx.problem("rules", "must hold at least one rule (the list is empty)");
    }
    for (at, r) in entries {
        cx.unknown_keys(
            r,
            &[
                "id", "when", "surface", "severity", "summary", "detail", "suppress", "context",
            ],
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
            Some(v) => compile::compile(v, &format!("{at}.when"), env, &mut cx.problems)
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
        let suppress = r
            .get("suppress")
            .map(|v| suppress(v, &format!("{at}.suppress"), cx));
        let context = context(r, &at, cx);
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
            suppress: suppress.flatten(),
            context,
        });
    }
    all
}

/// `context = ["sign_in.ip", ...]`: event attributes a finding carries.
fn context(r: &Table, at: &str, cx: &mut Cx) -> Vec<Attr> {
    if !r.contains_key("context") {
        return Vec::new();
    }
    let place = format!("{at}.context");
    let mut out = Vec::new();
    for (i, name) in cx
        .strings(r, "context", at)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let here = format!("{place}[{i}]");
        match Attr::parse(name.trim()) {
            Some(a) if a.def().scope == crate::policy::attr::Scope::Event => {
                if out.contains(&a) {
                    cx.problem(&here, format!("`{name}` is listed twice"));
                } else {
                    out.push(a);
                }
            }
            Some(_) => cx.problem(
                &here,
                format!(
                    "`{name}` describes a day (`[readiness]` only): a finding carries event attributes"
                ),
            ),
            None => cx.problem(
                &here,
                format!(
                    "`{name}` is not an attribute (`mfa-audit policy attributes` lists them){}",
                    compile::suggestion(name.trim())
                ),
            ),
        }
    }
    out
}

/// The longest `suppress` (a week): state holds a key that long.
pub(super) const MAX_SUPPRESS_MICROS: i64 = 7 * 24 * 3_600_000_000;

/// `suppress = "10m"` (per rule and tenant) or `suppress = { for = "10m", by = [ATTR, ...] }`
/// (per rule, tenant and the values of `by`).
fn suppress(v: &Value, at: &str, cx: &mut Cx) -> Option<Suppress> {
    let (span, by) = match v {
        Value::String(s) => (s.clone(), Vec::new()),
        Value::Table(t) => {
            cx.unknown_keys(t, &["for", "by"], at);
            let span = cx.string(t, "for", at)?;
            let by = if t.contains_key("by") {
                cx.strings(t, "by", at)?
            } else {
                Vec::new()
            };
            (span, by)
        }
        other => {
            cx.problem(
                at,
                format!(
                    "must be a duration (\"10m\") or {{ for = \"10m\", by = [\"sign_in.user_id\"] }}, not {}",
                    other.type_str()
                ),
            );
            return None;
        }
    };
    let micros = match parse_span(&span) {
        Some(m) if m > 0 && m <= MAX_SUPPRESS_MICROS => m,
        _ => {
            cx.problem(
                at,
                format!(
                    "`{span}` is not a duration from 1s to 7d (a number and s, m, h or d: `10m`)"
                ),
            );
            return None;
        }
    };
    let mut attrs = Vec::new();
    for name in &by {
        match Attr::parse(name.trim()) {
            Some(a) if a.def().scope == crate::policy::attr::Scope::Event => attrs.push(a),
            _ => cx.problem(
                &format!("{at}.by"),
                format!(
                    "`{name}` is not an event attribute (`mfa-audit policy attributes` lists them){}",
                    compile::suggestion(name)
                ),
            ),
        }
    }
    (attrs.len() == by.len()).then_some(Suppress {
        micros,
        by: attrs,
        source: span,
    })
}

/// `30s`, `10m`, `2h`, `1d` in microseconds.
pub(crate) fn parse_span(s: &str) -> Option<i64> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let n: i64 = s.get(..s.len() - 1)?.trim().parse().ok()?;
    let per: i64 = match unit {
        's' => 1_000_000,
        'm' => 60_000_000,
        'h' => 3_600_000_000,
        'd' => 86_400_000_000,
        _ => return None,
    };
    n.checked_mul(per)
}
