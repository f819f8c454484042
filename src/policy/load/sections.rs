//! The sections of a policy file, each built and checked: the whole policy ([`build`]),
//! surfaces and their shares, counters, readiness, the MFA signals and the exceptions.

use super::rules::{pages, rules};
use super::settings::{error_codes, exceptions, readiness, written_rule_ids};
use super::{lower, Cx};
use crate::event::time::EventTime;
use crate::policy::attr::{Attr, Scope, Type};
use crate::policy::compile::{self, Env};
use crate::policy::cond::Cond;
use crate::policy::model::{CounterDef, Policy, ShareDef, SurfaceDef};
use std::collections::BTreeMap;
use std::sync::Arc;
use toml::{Table, Value};

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
    "directory",
    "windows",
    "histories",
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

pub(super) fn build(t: &Table, cx: &mut Cx) -> Option<Policy> {
    cx.unknown_keys(t, TOP_KEYS, "");
    let version = cx.string(t, "version", "");
    let title = cx.string(t, "title", "");
    let _source = cx.optional_string(t, "source", "");
    let partner_roles = cx
        .strings(t, "partner_roles", "")
        .map(|r| cx.roles(&r, "partner_roles"))
        .unwrap_or_default();
    // An empty list is a choice (Azure's mandatory MFA counts every user alike); a
    // missing one is reported by `strings`.
    let lists = compile::lists(t.get("lists"), &mut cx.problems);
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
    let compiled = compile::Compiled::default();
    let probe_names = crate::policy::windows::ProbeNames::of(t);
    let env = Env {
        lists: &lists,
        conditions: &conditions,
        scope: Some(Scope::Event),
        compiled: &compiled,
        probes: &probe_names,
    };
    // Every named condition is checked, used or not (its scope where it is used).
    let any_scope = Env { scope: None, ..env };
    for (name, v) in &conditions {
        let _ = compile::compile(
            v,
            &format!("conditions.{name}"),
            &any_scope,
            &mut cx.problems,
        );
    }
    let windows = crate::policy::windows::windows(t, &env, &mut cx.problems);
    let histories = crate::policy::windows::histories(t, &env, &mut cx.problems);
    let surfaces = surfaces(t, cx, &env);
    let (pages, page_index) = pages(t, cx, partner_roles);
    let rules = rules(t, cx, &env, &surfaces);
    check_shares(cx, &surfaces, t);
    let counters = counters(t, cx, &env);
    // A policy of detections (every surface `readiness = false`) needs no `[readiness]`,
    // `[session]`, `[mfa]` or `[exceptions]`: without them it has no readiness, carries
    // no dashboard session from a sign-in, reads MFA from the record alone (no `[mfa]`
    // lists) and has no exception reasons.
    let detections = !surfaces.is_empty() && surfaces.iter().all(|s| !s.readiness);
    let readiness = if detections && !t.contains_key("readiness") {
        Some(None)
    } else {
        readiness(
            t,
            cx,
            &Env {
                scope: Some(Scope::Day),
                ..env
            },
        )
        .map(Some)
    };
    let (session_max_age_secs, partner_center_apps) = if detections && !t.contains_key("session") {
        (Some(0), Vec::new())
    } else {
        let session = cx.table(t, "session", "").cloned().unwrap_or_default();
        cx.unknown_keys(
            &session,
            &["max_age_hours", "partner_center_apps"],
            "session",
        );
        (
            cx.integer(&session, "max_age_hours", "session", 1)
                .map(|h| h * 3600),
            lower(cx.strings(&session, "partner_center_apps", "session")),
        )
    };
    let no_mfa = detections && !t.contains_key("mfa");
    let mfa = if no_mfa {
        toml::Table::from_iter([
            ("satisfied_details".to_owned(), Value::Array(Vec::new())),
            ("second_factor_methods".to_owned(), Value::Array(Vec::new())),
            ("demanded_error_codes".to_owned(), Value::Array(Vec::new())),
        ])
    } else {
        cx.table(t, "mfa", "").cloned().unwrap_or_default()
    };
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
    let (exception_response_business_days, exception_reasons) =
        if detections && !t.contains_key("exceptions") {
            // No reason covers anything; the response time, which only the readiness
            // counts read, is Microsoft's ("up to three business days").
            (Some(3), BTreeMap::new())
        } else {
            exceptions(t, cx)
        };
    let (directory_groups, directory_roles) = super::directory::directory(t, cx);

    Some(Policy {
        version: version?,
        title: title?,
        surfaces,
        partner_roles,
        rules,
        conditions: conditions
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
        counters,
        windows,
        histories,
        readiness: readiness?,
        session_max_age_secs: session_max_age_secs?,
        partner_center_apps,
        mfa_satisfied_details,
        mfa_skipped_details,
        second_factor_methods,
        mfa_demanded_error_codes,
        exception_response_business_days: exception_response_business_days?,
        exception_reasons,
        directory_groups,
        directory_roles,
        page_index,
        pages,
    })
}

pub(super) fn date(cx: &mut Cx, v: Option<&Value>, at: &str) -> Option<EventTime> {
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
            &[
                "name",
                "enforced_from",
                "postpone_until",
                "note",
                "share",
                "rollout_columns",
                "readiness",
            ],
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
        let postpone_until = date(
            cx,
            st.get("postpone_until"),
            &format!("{at}.postpone_until"),
        );
        match (enforced_from, postpone_until) {
            (None, Some(_)) => cx.problem(
                &format!("{at}.postpone_until"),
                "needs an `enforced_from` to postpone",
            ),
            (Some(from), Some(until)) if until < from => {
                cx.problem(&format!("{at}.postpone_until"), "is before `enforced_from`")
            }
            _ => {}
        }
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
        let readiness = match st.get("readiness") {
            None => true,
            Some(Value::Boolean(b)) => *b,
            Some(other) => {
                cx.problem(
                    &format!("{at}.readiness"),
                    format!(
                        "must be `true` or `false` (whether its findings count toward readiness), not {}",
                        other.type_str()
                    ),
                );
                true
            }
        };
        if !readiness && (share.is_some() || enforced_from.is_some()) {
            cx.problem(
                &format!("{at}.readiness"),
                "a surface outside readiness has no `share` and no `enforced_from` (it holds detections)",
            );
        }
        out.push(SurfaceDef {
            name: Arc::from(name.as_str()),
            enforced_from,
            share,
            rollout_columns,
            postpone_until,
            readiness,
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
    cx.unknown_keys(sh, &["counts", "mfa", "excepted_by", "demanded"], at);
    let demanded = sh.get("demanded").and_then(|v| {
        let c = compile::compile(v, &format!("{at}.demanded"), env, &mut cx.problems)?;
        no_rule_attrs(cx, &c, &format!("{at}.demanded"));
        let kinds = c.kinds();
        Some((c, kinds))
    });
    let counts = match sh.get("counts") {
        Some(v) => compile::compile(v, &format!("{at}.counts"), env, &mut cx.problems)
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
        demanded,
    })
}

/// Every `excepted_by` names a rule id written in the file (valid or not: a rule with a
/// problem of its own is reported once, there).
/// `rule.*` attributes describe a rule: shares and counters have none to read.
fn no_rule_attrs(cx: &mut Cx, c: &Cond, at: &str) {
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
            Some(v) => compile::compile(v, &format!("{at}.when"), env, &mut cx.problems)
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
