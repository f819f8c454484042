//! Every rule of a policy, on one event, against the tenant's state as it stood before
//! the event: one evaluator, driven by the policy's data. `run`, `explain` and `diff` all
//! call [`evaluate`] (`explain` with a [`Trace`] that records what each rule read).

use super::attr::{self, Attr, Val};
use super::cond::{Eval, Memo, Tri};
use super::facts::{self, row_user, Facts};
use super::model::{Policy, Rule};
use super::Finding;
use crate::event::{ApiCaller, Event};
use crate::policy::cond::KindMask;
use crate::state::{Tally, TenantState};
use std::sync::Arc;

/// What evaluation returns: the findings, the counters the event adds, and the rules
/// that were not applicable.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// Findings, one per rule that fired, in the policy's rule order.
    pub findings: Vec<Finding>,
    /// The rollout counters this event adds.
    pub tally: Tally,
    /// Rules not applicable to this event (an attribute they read was absent), inline up
    /// to 4: a rule that is not applicable to most events (one that reads a fact the
    /// partner may never send, such as its GDAP export) costs no allocation per event.
    pub skipped: crate::event::few::Few<Arc<str>, 4>,
    /// Whether the sign-in satisfied MFA (what state records for the user).
    pub sign_in_mfa: bool,
    /// Whether the sign-in starts a dashboard session.
    pub starts_pc_session: bool,
    /// Quiet spells the findings start (`suppress`): rule id, key, length in µs.
    pub suppress: Vec<(Arc<str>, String, i64)>,
    /// Rules whose findings a quiet spell held back.
    pub suppressed: Vec<Arc<str>>,
    /// What the event read of the policy's windows and histories, and leaves in them
    /// (`None`: the policy has none).
    pub probes: Option<super::windows::Probes>,
}

/// A rule's outcome on one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its condition held: a finding.
    Fired,
    /// Its condition did not hold.
    Quiet,
    /// An attribute it needs is absent.
    NotApplicable,
    /// Its condition held, in a quiet spell of its `suppress` after an earlier finding
    /// with the same key: no finding (counted in `mfa_audit_findings_suppressed_total`).
    Suppressed,
}

impl Outcome {
    /// The name in `explain` output.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Fired => "fired",
            Outcome::Quiet => "quiet",
            Outcome::NotApplicable => "not_applicable",
            Outcome::Suppressed => "suppressed",
        }
    }
}

/// What `explain` records of one rule.
#[derive(Debug, Clone)]
pub struct RuleTrace {
    /// The rule's position in the policy.
    pub rule: usize,
    /// Its outcome.
    pub outcome: Outcome,
    /// Whether its surface was enforced at the event's time.
    pub enforced: bool,
    /// Whether an exception covered it (read for every outcome).
    pub excepted: bool,
    /// Every attribute its condition read, in order, with its value (`null`: absent).
    pub reads: Vec<(Attr, serde_json::Value)>,
    /// The finding's detail, when it fired.
    pub detail: Option<String>,
    /// The windows and histories its condition read (`window.NAME`, `history.NAME`),
    /// with what it read of them: the group's key, the count, seen and the age.
    pub probes: Vec<(String, serde_json::Value)>,
}

/// The rules' traces of one event (for `explain`).
#[derive(Debug, Default)]
pub struct Trace {
    /// One per rule, in the policy's order.
    pub rules: Vec<RuleTrace>,
}

/// The fields every finding of one event shares.
fn finding_base(facts: &Facts<'_>, version: &Arc<str>) -> Finding {
    let event = facts.event();
    let (user_id, upn) = row_user(event, facts.user());
    let (customer, app_id, client_app, sha) = match event {
        Event::SignIn(s) => (
            if facts::into_customer_tenant(s) == Some(true) {
                s.props.resource_tenant_id.as_deref().unwrap_or("")
            } else {
                ""
            },
            s.props.app_id.as_deref().unwrap_or(""),
            s.props.client_app_used.as_deref().unwrap_or(""),
            "",
        ),
        Event::Api(a) => (
            "",
            a.application_id.as_deref().unwrap_or(""),
            "",
            match &a.caller {
                ApiCaller::Token(t) => t.sha256.as_str(),
                _ => "",
            },
        ),
        _ => ("", "", "", ""),
    };
    Finding {
        event_id: event.event_id().to_owned(),
        event_time: event.time(),
        tenant_id: event.tenant_id().to_owned(),
        customer_tenant_id: customer.to_owned(),
        user_id: user_id.to_owned(),
        upn: upn.to_owned(),
        rule_id: Arc::from(""),
        severity: super::Severity::Low,
        surface: Arc::from(""),
        policy_version: Arc::clone(version),
        enforced: false,
        excepted: false,
        app_id: app_id.to_owned(),
        client_app: client_app.to_owned(),
        token_sha256: sha.to_owned(),
        detail: String::new(),
        context: super::Context::default(),
    }
}

/// A finding of `rule`, its event's shared fields still empty (see [`share`]).
fn finding(
    rule: &Rule,
    version: &Arc<str>,
    enforced: bool,
    excepted: bool,
    detail: String,
) -> Finding {
    Finding {
        event_id: String::new(),
        event_time: crate::event::time::EventTime::default(),
        tenant_id: String::new(),
        customer_tenant_id: String::new(),
        user_id: String::new(),
        upn: String::new(),
        rule_id: Arc::clone(&rule.id),
        severity: rule.severity,
        surface: Arc::clone(&rule.surface_name),
        policy_version: Arc::clone(version),
        enforced,
        excepted,
        app_id: String::new(),
        client_app: String::new(),
        token_sha256: String::new(),
        detail,
        context: super::Context::default(),
    }
}

/// Evaluates every rule of `policy` on `event`, reading `state` as it stood before the
/// event. `version` is the policy version as a shared string (one allocation saved per
/// finding). With `trace`, records what every rule read (`explain`).
pub fn evaluate(
    policy: &Policy,
    version: &Arc<str>,
    event: &Event<'_>,
    state: &TenantState,
    mut trace: Option<&mut Trace>,
) -> Evaluation {
    let facts = Facts::new(event, policy, state);
    let mut out = Evaluation {
        sign_in_mfa: facts.sign_in_mfa(),
        starts_pc_session: facts.starts_pc_session(),
        ..Evaluation::default()
    };
    let kind: KindMask = 1 << event.kind_index();
    let tracing = trace.is_some();
    // Named conditions are decided once per event (not when tracing: `explain` shows
    // every read of every rule).
    let mut memo = Memo::default();
    // Windows and histories are read (and later recorded) for every event, whatever the
    // rules read.
    let probes = (!policy.windows.is_empty() || !policy.histories.is_empty()).then(|| {
        super::windows::probe(
            policy,
            state,
            event.time(),
            kind,
            &mut |a| facts.get(a, None),
            &mut memo,
        )
    });
    for (i, rule) in policy.rules.iter().enumerate() {
        // A rule that cannot hold on this kind of event is quiet (`explain` evaluates it
        // anyway, to show what it read).
        if rule.kinds & kind == 0 && !tracing {
            continue;
        }
        let mut reads: Vec<(Attr, serde_json::Value)> = Vec::new();
        let mut get = |a: Attr| {
            let v = facts.get(a, Some(rule));
            if tracing {
                reads.push((a, attr::to_json(v)));
            }
            v
        };
        let mut e = Eval {
            get: &mut get,
            kind,
            memo: (!tracing).then_some(&mut memo),
            tracing,
            probes: probes.as_ref(),
        };
        let mut outcome = match rule.when.eval(&mut e) {
            // Findings are keyed by (event, rule id): of several entries of one id, the
            // first that fires reports it.
            Tri::True if out.findings.iter().any(|f| f.rule_id == rule.id) => Outcome::Quiet,
            Tri::True => Outcome::Fired,
            Tri::False => Outcome::Quiet,
            Tri::Unknown => Outcome::NotApplicable,
        };
        if let (Outcome::Fired, Some(q)) = (outcome, &rule.suppress) {
            let key = suppress_key(q, &mut |a| facts.get(a, Some(rule)));
            if state.suppressions.quiet(&rule.id, &key, event.time()) {
                outcome = Outcome::Suppressed;
                out.suppressed.push(Arc::clone(&rule.id));
            } else {
                out.suppress.push((Arc::clone(&rule.id), key, q.micros));
            }
        }
        let mut detail_text = None;
        if outcome == Outcome::Fired || tracing {
            let enforced = policy.is_enforced_for(rule.surface, state, event.time());
            let excepted = facts.covered(&rule.id);
            if outcome == Outcome::Fired {
                let detail = rule.detail.render(&mut |a| facts.get(a, Some(rule)));
                detail_text = tracing.then(|| detail.clone());
                // A surface of detections (`readiness = false`) leaves the day's counts.
                if policy
                    .surfaces
                    .get(rule.surface)
                    .is_none_or(|s| s.readiness)
                {
                    out.tally.findings += 1;
                    if !excepted {
                        if let Some(u) = out.tally.uncovered.get_mut(rule.severity.index()) {
                            *u += 1;
                        }
                    }
                }
                // The fields every finding of the event shares are filled in below.
                let mut f = finding(rule, version, enforced, excepted, detail);
                if !rule.context.is_empty() {
                    f.context = context(rule, &facts);
                }
                out.findings.push(f);
            } else if outcome == Outcome::NotApplicable {
                out.skipped.push(Arc::clone(&rule.id));
            }
            if let Some(t) = trace.as_deref_mut() {
                t.rules.push(RuleTrace {
                    rule: i,
                    outcome,
                    enforced,
                    excepted,
                    reads,
                    detail: detail_text,
                    probes: probes
                        .as_ref()
                        .map(|p| p.take_reads(policy))
                        .unwrap_or_default(),
                });
            }
        } else if outcome == Outcome::NotApplicable {
            out.skipped.push(Arc::clone(&rule.id));
        }
    }
    // The shared fields, built once: cloned into every finding but the last, which
    // takes them.
    if let Some((last, rest)) = out.findings.split_last_mut() {
        let base = finding_base(&facts, version);
        for f in rest {
            share(f, base.clone());
        }
        share(last, base);
    }
    tally(
        policy,
        &facts,
        kind,
        &mut memo,
        probes.as_ref(),
        &out.findings,
        &mut out.tally,
    );
    out.probes = probes;
    out
}

/// A finding's `context`: the values of the rule's `context` attributes, absent ones
/// left out.
fn context(rule: &Rule, facts: &Facts<'_>) -> super::Context {
    super::Context(
        rule.context
            .iter()
            .filter_map(|a| {
                facts
                    .get(*a, Some(rule))
                    .map(|v| (a.name(), attr::to_json(Some(v))))
            })
            .collect(),
    )
}

/// A `suppress` key: the values of its `by` attributes (an absent one as nothing),
/// joined by U+001F.
fn suppress_key<'v>(
    q: &super::model::Suppress,
    get: &mut impl FnMut(Attr) -> Option<attr::Val<'v>>,
) -> String {
    use std::fmt::Write;
    let mut key = String::new();
    for (i, a) in q.by.iter().enumerate() {
        if i > 0 {
            key.push('\u{1f}');
        }
        if let Some(v) = get(*a) {
            let _ = write!(key, "{v}");
        }
    }
    key
}

fn share(f: &mut Finding, base: Finding) {
    f.event_id = base.event_id;
    f.event_time = base.event_time;
    f.tenant_id = base.tenant_id;
    f.customer_tenant_id = base.customer_tenant_id;
    f.user_id = base.user_id;
    f.upn = base.upn;
    f.app_id = base.app_id;
    f.client_app = base.client_app;
    f.token_sha256 = base.token_sha256;
}

/// The shares and counters this event adds to its day.
fn tally(
    policy: &Policy,
    facts: &Facts<'_>,
    kind: KindMask,
    memo: &mut Memo,
    probes: Option<&super::windows::Probes>,
    findings: &[Finding],
    t: &mut Tally,
) {
    let mut e = Eval {
        get: |a: Attr| facts.get(a, None),
        kind,
        memo: Some(memo),
        tracing: false,
        probes,
    };
    for (i, s) in policy.surfaces.iter().enumerate().take(64) {
        let Some(share) = &s.share else {
            continue;
        };
        let bit = 1u64 << i;
        if let Some((demanded, kinds)) = &share.demanded {
            if kinds & kind != 0 && demanded.eval(&mut e) == Tri::True {
                t.demanded |= bit;
            }
        }
        if share.kinds & kind == 0 || share.counts.eval(&mut e) != Tri::True {
            continue;
        }
        t.counted |= bit;
        match (e.get)(share.mfa) {
            Some(Val::Bool(true)) => t.mfa |= bit,
            Some(Val::Bool(false)) => {
                let covered = findings
                    .iter()
                    .any(|f| f.excepted && share.excepted_by.contains(&f.rule_id));
                if covered {
                    t.excepted |= bit;
                }
            }
            _ => t.unknown |= bit,
        }
    }
    for (i, c) in policy.counters.iter().enumerate().take(64) {
        if c.kinds & kind != 0 && c.when.eval(&mut e) == Tri::True {
            t.counters |= 1 << i;
        }
    }
}
