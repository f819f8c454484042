//! `mfa-audit explain`: for chosen events, every rule of every policy with its outcome,
//! the attributes its condition read and their values, the state facts it used, and the
//! rule's source clause. The evaluator is `run`'s, with a trace.

use super::AppError;
use super::{each_document, processor};
use crate::cli::ExplainArgs;
use mfa_audit::event::scrub;
use mfa_audit::pipeline::Explained;
use mfa_audit::policy::attr::Attr;
use mfa_audit::policy::cond::{Cond, Op};
use mfa_audit::policy::{Policy, RuleTrace};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write;

/// Runs the command.
pub fn run(args: &ExplainArgs) -> Result<(), AppError> {
    let p = processor(&args.policies, &args.replay)?;
    let wanted: BTreeSet<&str> = args.event_ids.iter().map(|s| s.trim()).collect();
    let accept = |id: &str| wanted.is_empty() || wanted.contains(id);
    let rules: BTreeSet<&str> = args.rules.iter().map(String::as_str).collect();
    // A rule no chosen policy has would print nothing: say so instead.
    let known: BTreeSet<&str> = p
        .engines()
        .iter()
        .flat_map(|e| e.policy().rules.iter().map(|r| &*r.id))
        .collect();
    let unknown: Vec<&str> = rules
        .iter()
        .copied()
        .filter(|r| !known.contains(r))
        .collect();
    if !unknown.is_empty() {
        let near = |r: &str| -> String {
            match mfa_audit::policy::near::nearest(r, known.iter().copied()).first() {
                Some(k) => format!(" (did you mean {k}?)"),
                None => String::new(),
            }
        };
        return Err(AppError::Usage(format!(
            "no rule {} in {} (`mfa-audit policy show NAME` lists a policy's rules)",
            unknown
                .iter()
                .map(|r| format!("{r}{}", near(r)))
                .collect::<Vec<_>>()
                .join(", "),
            p.engines()
                .iter()
                .map(|e| format!("`{}`", e.policy().version))
                .collect::<Vec<_>>()
                .join(", "),
        )));
    }
    let mut stdout = std::io::stdout().lock();
    let mut found = BTreeSet::new();
    let mut failure = None;
    each_document(&args.replay, &mut |_, doc| {
        if doc.oversized || failure.is_some() {
            return;
        }
        for e in p.explain_document(doc.bytes, &accept) {
            found.insert(e.event_id.clone());
            let policies: Vec<&Policy> = p.engines().iter().map(|x| x.policy()).collect();
            let text = if args.json {
                json_lines(&e, &policies, &rules)
            } else {
                text(&e, &policies, &rules)
            };
            // Whatever a record carried (a token in a URL, a user agent), none reaches
            // the screen: removed by shape from the whole output.
            let text = scrub::text(&text);
            if let Err(err) = stdout.write_all(text.as_bytes()) {
                failure = Some(AppError::Io(format!("cannot write to stdout: {err}")));
            }
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|id| !found.contains(*id))
        .collect();
    if !missing.is_empty() {
        return Err(AppError::Usage(format!(
            "no event with id {} in the input (ids are `properties.id`, `requestId`, or the `event_id` of a finding row)",
            missing.join(", ")
        )));
    }
    Ok(())
}

fn reads(t: &RuleTrace, state: bool) -> Map<String, Value> {
    t.reads
        .iter()
        .filter(|(a, _)| a.from_state() == state)
        .map(|(a, v)| (a.name().to_owned(), v.clone()))
        .collect()
}

/// One JSON object per (event, policy, rule).
pub fn json_lines(e: &Explained, policies: &[&Policy], only: &BTreeSet<&str>) -> String {
    let mut out = String::new();
    for (policy, trace) in policies.iter().zip(&e.traces) {
        for t in &trace.rules {
            let Some(rule) = policy.rules.get(t.rule) else {
                continue;
            };
            if !only.is_empty() && !only.contains(&*rule.id) {
                continue;
            }
            let conditions: Map<String, Value> = policy
                .conditions_used(&rule.when_source)
                .into_iter()
                .map(|(n, b)| (n.to_owned(), Value::String(b.to_owned())))
                .collect();
            let row = json!({
                "event_id": e.event_id,
                "event_kind": e.kind,
                "tenant_id": e.tenant_id,
                "event_time": e.time.to_string(),
                "policy_version": policy.version,
                "rule_id": &*rule.id,
                "surface": &*rule.surface_name,
                "severity": rule.severity.name(),
                "outcome": t.outcome.name(),
                "enforced": t.enforced,
                "excepted": t.excepted,
                "attributes": reads(t, false),
                "state": reads(t, true),
                "when": rule.when_source,
                "conditions": conditions,
                "detail": t.detail,
            });
            let mut row = row;
            // What window and history tests read, only where the rule read some (rows of
            // other rules stay as they were).
            if let (false, Some(obj)) = (t.probes.is_empty(), row.as_object_mut()) {
                obj.insert(
                    "windows".into(),
                    Value::Object(t.probes.iter().cloned().collect()),
                );
            }
            let _ = writeln!(out, "{row}");
        }
    }
    if e.replay {
        let _ = writeln!(
            out,
            "{}",
            json!({"event_id": e.event_id, "event_kind": e.kind, "tenant_id": e.tenant_id, "replay": true})
        );
    }
    out
}

/// The attributes read, in the order the condition first read them: a value read by
/// several tests is listed once.
fn value_list(t: &RuleTrace, state: bool) -> Option<String> {
    let mut listed = std::collections::HashSet::new();
    let items: Vec<String> = t
        .reads
        .iter()
        .filter(|(a, _)| a.from_state() == state && listed.insert(*a))
        .map(|(a, v)| {
            let v = if v.is_null() {
                "(absent)".to_owned()
            } else {
                v.to_string()
            };
            format!("{} = {v}", a.name())
        })
        .chain(
            t.probes
                .iter()
                .filter(|_| !state)
                .map(|(name, v)| format!("{name} = {}", scrub::terminal(&probe_text(v)))),
        )
        .collect();
    (!items.is_empty()).then(|| items.join(", "))
}

/// What a window or history test read, for people: `7 (key u1)`, `seen false, age 86400 s
/// (key u1, values app)`.
fn probe_text(v: &Value) -> String {
    let shown = |x: &Value| match x {
        Value::Null => "unknown".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let key = match &v["key"] {
        Value::Null => "absent: a `by` attribute is".to_owned(),
        k => shown(k),
    };
    if v.get("count").is_some() {
        format!("{} (key {key})", shown(&v["count"]))
    } else {
        format!(
            "seen {}, age {} s (key {key}, values {})",
            shown(&v["seen"]),
            shown(&v["age_seconds"]),
            shown(&v["values"])
        )
    }
}

/// The event for people.
pub fn text(e: &Explained, policies: &[&Policy], only: &BTreeSet<&str>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "event {} ({}, tenant {}, {})",
        scrub::terminal(&e.event_id),
        e.kind,
        scrub::terminal(&e.tenant_id),
        e.time
    );
    if e.replay {
        let _ = writeln!(s, "  a replay of an event already applied: no rule ran\n");
        return s;
    }
    for (policy, trace) in policies.iter().zip(&e.traces) {
        let _ = writeln!(s, "  under {}:", policy.version);
        let mut other_kinds: Vec<String> = Vec::new();
        for t in &trace.rules {
            let Some(rule) = policy.rules.get(t.rule) else {
                continue;
            };
            if !only.is_empty() && !only.contains(&*rule.id) {
                continue;
            }
            // Quiet on the event kind alone: one line for all of them.
            if t.outcome == mfa_audit::policy::Outcome::Quiet
                && t.reads.len() == 1
                && t.reads
                    .first()
                    .is_some_and(|(a, _)| *a == mfa_audit::policy::attr::Attr::EventKind)
            {
                other_kinds.push(format!("{} ({})", rule.id, rule.surface_name));
                continue;
            }
            let _ = writeln!(
                s,
                "    {} {} - {} ({}, {}; {}, {})",
                rule.id,
                t.outcome.name().to_ascii_uppercase(),
                rule.summary,
                rule.surface_name,
                rule.severity.name(),
                if t.enforced {
                    "enforced"
                } else if policy
                    .surfaces
                    .get(rule.surface)
                    .is_some_and(|x| !x.readiness)
                {
                    "a detection"
                } else {
                    "readiness only"
                },
                if t.excepted {
                    "excepted"
                } else {
                    "no exception"
                },
            );
            let read = value_list(t, false).unwrap_or_else(|| "-".into());
            let _ = writeln!(s, "      read:  {read}");
            if let Some(state) = value_list(t, true) {
                let _ = writeln!(s, "      state: {state}");
            }
            let mut matched = Vec::new();
            let read_value = |a: Attr| t.reads.iter().find(|(x, _)| *x == a).map(|(_, v)| v);
            list_matches(&rule.when, &read_value, &mut matched);
            if !matched.is_empty() {
                let _ = writeln!(s, "      matched: {}", scrub::terminal(&matched.join("; ")));
            }
            let _ = writeln!(s, "      when:  {}", rule.when_source);
            for (name, body) in policy.conditions_used(&rule.when_source) {
                let _ = writeln!(s, "        {name} = {body}");
            }
            if let Some(d) = &t.detail {
                let _ = writeln!(s, "      detail: {}", scrub::terminal(d));
            }
        }
        if !other_kinds.is_empty() {
            let _ = writeln!(
                s,
                "    quiet, for other event kinds: {}",
                other_kinds.join(", ")
            );
        }
    }
    s.push('\n');
    s
}

/// For each test over a list or patterns (`in`, `glob`, `prefix`, `contains`, `regex`)
/// that holds on the value read, which item or pattern it matched: `sign_in.user_agent
/// contains "python-requests"`. Named conditions are followed; what was not read is not
/// shown.
fn list_matches<'v>(c: &Cond, read: &dyn Fn(Attr) -> Option<&'v Value>, out: &mut Vec<String>) {
    match c {
        Cond::All(parts) | Cond::Any(parts) => {
            for p in parts {
                list_matches(p, read, out);
            }
        }
        Cond::Not(p) => list_matches(p, read, out),
        Cond::Named(n) => list_matches(&n.body, read, out),
        Cond::Test(attr, ops) => {
            let Some(v) = read(*attr) else { return };
            let texts: Vec<&str> = match v {
                Value::String(t) => vec![t.as_str()],
                Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                _ => return,
            };
            for op in ops {
                if let Some(hit) = texts.iter().find_map(|t| op_match(op, t)) {
                    let line = format!("{} {hit}", attr.name());
                    if !out.contains(&line) {
                        out.push(line);
                    }
                }
            }
        }
        Cond::Bool(..) | Cond::Kind(..) | Cond::Probe(..) => {}
    }
}

/// What of `op` matched `text` (ignoring ASCII case, as the evaluator compares), if any.
fn op_match(op: &Op, text: &str) -> Option<String> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let quoted = |x: &str| serde_json::to_string(x).unwrap_or_default();
    match op {
        Op::InText(list, false) | Op::Contains(list) => list
            .iter()
            .find(|x| x.trim().eq_ignore_ascii_case(t))
            .map(|x| format!("in {}", quoted(x))),
        Op::Glob(g) => g
            .is_match(t)
            .then(|| format!("glob {}", quoted(g.glob().glob()))),
        Op::Globs(gs) => gs
            .iter()
            .find(|g| g.is_match(t))
            .map(|g| format!("glob {}", quoted(g.glob().glob()))),
        Op::Prefix(p) => lower
            .starts_with(&p.to_ascii_lowercase())
            .then(|| format!("prefix {}", quoted(p))),
        Op::Prefixes(ps) => ps
            .iter()
            .find(|p| lower.starts_with(&p.to_ascii_lowercase()))
            .map(|p| format!("prefix {}", quoted(p))),
        Op::Substr(subs) => subs
            .iter()
            .find(|x| lower.contains(x.as_str()))
            .map(|x| format!("contains {}", quoted(x))),
        Op::Regex(r) => r
            .find(t)
            .map(|m| format!("regex {} (at {})", quoted(r.as_str()), quoted(m.as_str()))),
        _ => None,
    }
}
