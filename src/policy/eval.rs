//! Every rule, on one event, against the tenant's state as it stood before the event.

use super::model::{Condition, Page, Policy, Surface};
use super::Finding;
use crate::event::time::EventTime;
use crate::event::{ApiCaller, ApiRequest, DashboardRequest, Event, RoleSet, SignIn};
use crate::state::{Tally, TenantState};
use std::sync::Arc;

/// A rule that did not apply to an event, and why (a missing field, unknown state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skip {
    /// The condition that could not be tested.
    pub condition: Condition,
    /// Why.
    pub why: &'static str,
}

/// What evaluation returns: the findings, the counters the event adds, and the rules
/// that were not applicable.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// Findings, one per rule that fired.
    pub findings: Vec<Finding>,
    /// The rollout counters this event adds.
    pub tally: Tally,
    /// Rules not applicable to this event, with the reason.
    pub skipped: Vec<Skip>,
}

/// The fields every finding of one event shares.
struct Ctx<'p, 's> {
    policy: &'p Policy,
    version: &'p Arc<str>,
    state: &'s TenantState,
    event_id: &'p str,
    time: EventTime,
    tenant_id: &'p str,
    customer_tenant_id: &'p str,
    user_id: &'p str,
    upn: &'p str,
    app_id: &'p str,
    client_app: &'p str,
    token_sha256: &'p str,
}

impl Ctx<'_, '_> {
    fn covered(&self, rule_id: &str) -> bool {
        self.state
            .exception_covers(self.policy, rule_id, self.user_id, self.upn, self.time)
    }

    /// Adds a finding when the version has a rule for `c`; returns whether it was covered.
    fn fire(&self, out: &mut Evaluation, c: Condition, detail: String) -> bool {
        let Some(rule) = self.policy.rule(c) else {
            return false;
        };
        let excepted = self.covered(&rule.id);
        let enforced = rule.surface != Surface::Registration
            && self.policy.is_enforced(rule.surface, self.time);
        out.findings.push(Finding {
            event_id: self.event_id.to_owned(),
            event_time: self.time,
            tenant_id: self.tenant_id.to_owned(),
            customer_tenant_id: self.customer_tenant_id.to_owned(),
            user_id: self.user_id.to_owned(),
            upn: self.upn.to_owned(),
            rule_id: Arc::clone(&rule.id),
            severity: rule.severity,
            surface: rule.surface,
            policy_version: Arc::clone(self.version),
            enforced,
            excepted,
            app_id: self.app_id.to_owned(),
            client_app: self.client_app.to_owned(),
            token_sha256: self.token_sha256.to_owned(),
            detail,
        });
        excepted
    }
}

fn skip(out: &mut Evaluation, condition: Condition, why: &'static str) {
    out.skipped.push(Skip { condition, why });
}

/// Evaluates every rule of `policy` on `event`, reading `state` as it stood before the
/// event. `version` is the policy version as a shared string (saves one allocation per
/// finding).
pub fn evaluate(
    policy: &Policy,
    version: &Arc<str>,
    event: &Event<'_>,
    state: &TenantState,
) -> Evaluation {
    let mut out = Evaluation::default();
    match event {
        Event::SignIn(s) => sign_in(policy, version, s, state, &mut out),
        Event::Api(a) => api(policy, version, a, state, &mut out),
        Event::Dashboard(d) => dashboard(policy, version, d, state, &mut out),
        Event::Registration(r) => {
            let roles = state.user(&r.user_id).map(|u| u.roles).unwrap_or_default();
            if !r.registered && roles.intersects(policy.partner_roles) {
                let upn = state
                    .user(&r.user_id)
                    .and_then(|u| u.upn.as_deref())
                    .unwrap_or("");
                let ctx = Ctx {
                    policy,
                    version,
                    state,
                    event_id: &r.event_id,
                    time: r.time,
                    tenant_id: &r.tenant_id,
                    customer_tenant_id: "",
                    user_id: &r.user_id,
                    upn,
                    app_id: "",
                    client_app: "",
                    token_sha256: "",
                };
                let detail = format!(
                    "registration snapshot: not registered; roles {}",
                    role_list(roles)
                );
                ctx.fire(&mut out, Condition::PartnerRoleUserUnregistered, detail);
            }
        }
        Event::Role(_) | Event::Exception(_) => {}
    }
    out
}

fn role_list(roles: RoleSet) -> String {
    let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
    }
}

/// Whether a sign-in satisfied MFA (EVENTS.md, "MFA satisfied").
pub(crate) fn sign_in_mfa(policy: &Policy, s: &SignIn<'_>) -> bool {
    let p = &s.props;
    let status = p.status.as_ref();
    if status
        .and_then(|st| st.error_code)
        .is_some_and(|c| policy.mfa_demanded_error_codes.contains(&c))
    {
        return false;
    }
    let satisfied_text = |t: Option<&str>| {
        t.is_some_and(|t| {
            let t = t.trim();
            policy
                .mfa_satisfied_details
                .iter()
                .any(|d| d.eq_ignore_ascii_case(t))
        })
    };
    if p.authentication_requirement
        .as_deref()
        .is_some_and(|r| r.eq_ignore_ascii_case("multiFactorAuthentication"))
        && s.succeeded() == Some(true)
    {
        return true;
    }
    if satisfied_text(status.and_then(|st| st.additional_details.as_deref())) {
        return true;
    }
    p.authentication_details.iter().flatten().any(|d| {
        d.succeeded == Some(true)
            && (d
                .authentication_step_requirement
                .as_deref()
                .is_some_and(is_mfa_step)
                || satisfied_text(d.authentication_step_result_detail.as_deref())
                || d.authentication_method.as_deref().is_some_and(|m| {
                    let m = m.trim();
                    policy
                        .second_factor_methods
                        .iter()
                        .any(|x| x.eq_ignore_ascii_case(m))
                }))
    })
}

fn is_mfa_step(requirement: &str) -> bool {
    let r = requirement.to_ascii_lowercase();
    r.contains("multi-factor") || r.contains("multifactor") || r == "mfa"
}

fn is_partner_center(policy: &Policy, s: &SignIn<'_>) -> bool {
    let p = &s.props;
    [
        &p.app_id,
        &p.app_display_name,
        &p.resource_id,
        &p.resource_display_name,
    ]
    .into_iter()
    .flatten()
    .any(|v| {
        let v = v.trim();
        policy
            .partner_center_apps
            .iter()
            .any(|a| a.eq_ignore_ascii_case(v))
    })
}

fn sign_in(
    policy: &Policy,
    version: &Arc<str>,
    s: &SignIn<'_>,
    state: &TenantState,
    out: &mut Evaluation,
) {
    let p = &s.props;
    let user_id = p.user_id.as_deref().unwrap_or("");
    let success = s.succeeded();
    let mfa = sign_in_mfa(policy, s);
    let cross = p.cross_tenant_access_type.as_deref();
    let delegated = match cross {
        Some(c) => c.trim().eq_ignore_ascii_case("serviceProvider"),
        None => s.resource_tenant_if_foreign().is_some(),
    };
    let customer = if delegated {
        p.resource_tenant_id.as_deref().unwrap_or("")
    } else {
        ""
    };
    let ctx = Ctx {
        policy,
        version,
        state,
        event_id: &s.event_id,
        time: s.time,
        tenant_id: &s.tenant_id,
        customer_tenant_id: customer,
        user_id,
        upn: p.user_principal_name.as_deref().unwrap_or(""),
        app_id: p.app_id.as_deref().unwrap_or(""),
        client_app: p.client_app_used.as_deref().unwrap_or(""),
        token_sha256: "",
    };
    let mut tally_delegated = None;
    let mut legacy = false;
    let mut password_flow = false;

    match success {
        None => {
            for c in [
                Condition::SignInPasswordFlow,
                Condition::SignInLegacyProtocol,
                Condition::SignInFederatedMfaNotRecognised,
                Condition::DelegatedAdminWithoutMfa,
            ] {
                skip(
                    out,
                    c,
                    "no status.errorCode nor resultType: success unknown",
                );
            }
        }
        Some(false) => {}
        Some(true) => {
            match p.authentication_protocol.as_deref() {
                Some(proto) if proto.trim().eq_ignore_ascii_case("ropc") => {
                    password_flow = true;
                    ctx.fire(
                        out,
                        Condition::SignInPasswordFlow,
                        "authenticationProtocol=ropc".into(),
                    );
                }
                Some(_) => {}
                None => skip(
                    out,
                    Condition::SignInPasswordFlow,
                    "no authenticationProtocol",
                ),
            }
            match p.client_app_used.as_deref() {
                Some(app) if !policy.is_modern_client(app) => {
                    legacy = true;
                    ctx.fire(
                        out,
                        Condition::SignInLegacyProtocol,
                        format!("clientAppUsed={}", app.trim()),
                    );
                }
                Some(_) => {}
                None => skip(out, Condition::SignInLegacyProtocol, "no clientAppUsed"),
            }
            match p.token_issuer_type.as_deref() {
                Some(issuer) if !issuer.trim().eq_ignore_ascii_case("AzureAD") && !mfa => {
                    ctx.fire(
                        out,
                        Condition::SignInFederatedMfaNotRecognised,
                        format!("tokenIssuerType={}; MFA not satisfied", issuer.trim()),
                    );
                }
                Some(_) => {}
                None => skip(
                    out,
                    Condition::SignInFederatedMfaNotRecognised,
                    "no tokenIssuerType",
                ),
            }
            if cross.is_none() && (p.home_tenant_id.is_none() || p.resource_tenant_id.is_none()) {
                skip(
                    out,
                    Condition::DelegatedAdminWithoutMfa,
                    "no crossTenantAccessType nor both home and resource tenant ids",
                );
            } else if delegated {
                let excepted = !mfa
                    && ctx.fire(
                        out,
                        Condition::DelegatedAdminWithoutMfa,
                        format!(
                            "sign-in into customer tenant {customer} ({}) without MFA",
                            cross.unwrap_or("home tenant differs from resource tenant")
                        ),
                    );
                tally_delegated = Some((mfa, excepted));
            }
        }
    }
    if !user_id.is_empty() && state.is_unregistered_role_user(policy, user_id) {
        let roles = state.user(user_id).map(|u| u.roles).unwrap_or_default();
        ctx.fire(
            out,
            Condition::PartnerRoleUserUnregistered,
            format!(
                "signed in while not registered for MFA; roles {}",
                role_list(roles)
            ),
        );
    }
    out.tally = Tally::SignIn {
        delegated: tally_delegated,
        legacy,
        password_flow,
        mfa,
    };
}

fn api(
    policy: &Policy,
    version: &Arc<str>,
    a: &ApiRequest<'_>,
    state: &TenantState,
    out: &mut Evaluation,
) {
    let served = a.status_code.is_some_and(|c| (200..300).contains(&c));
    let status = a
        .status_code
        .map_or_else(|| "status unknown".to_owned(), |c| format!("status {c}"));
    let op = a.operation_name.as_deref().unwrap_or("");
    let (user_id, upn, sha, mfa, password_flow, sig) = match &a.caller {
        ApiCaller::AppOnly => {
            out.tally = Tally::ApiAppOnly;
            return;
        }
        ApiCaller::Token(t) => {
            if !t.claims.is_app_user() {
                out.tally = Tally::ApiAppOnly;
                return;
            }
            let c = &t.claims;
            (
                c.oid.as_deref().unwrap_or(""),
                c.user_name().unwrap_or(""),
                t.sha256.as_str(),
                Some(c.has_mfa()),
                c.is_password_flow(),
                Some(&t.signature),
            )
        }
        ApiCaller::Report {
            object_id,
            upn,
            mfa_compliant,
        } => (
            &**object_id,
            upn.as_deref().unwrap_or(""),
            "",
            *mfa_compliant,
            false,
            None,
        ),
    };
    let ctx = Ctx {
        policy,
        version,
        state,
        event_id: &a.event_id,
        time: a.time,
        tenant_id: &a.tenant_id,
        customer_tenant_id: "",
        user_id,
        upn,
        app_id: a.application_id.as_deref().unwrap_or(""),
        client_app: "",
        token_sha256: sha,
    };
    let amr = match &a.caller {
        ApiCaller::Token(t) => format!(
            "amr=[{}]",
            t.claims.amr.as_deref().unwrap_or_default().join(",")
        ),
        _ => "mfaCompliant=false".to_owned(),
    };
    let mut excepted = false;
    match mfa {
        Some(false) => {
            excepted = ctx.fire(
                out,
                Condition::ApiAppUserWithoutMfa,
                format!("App+User call without mfa: {amr}; {status}; {op}"),
            );
            if served && policy.is_enforced(Surface::Api, a.time) {
                ctx.fire(
                    out,
                    Condition::ApiAppUserWithoutMfaServed,
                    format!("answered {status} after enforcement without mfa: {amr}; {op}"),
                );
            }
        }
        Some(true) => {}
        None => {
            skip(
                out,
                Condition::ApiAppUserWithoutMfa,
                "report row without mfaCompliant",
            );
            skip(
                out,
                Condition::ApiAppUserWithoutMfaServed,
                "report row without mfaCompliant",
            );
        }
    }
    if password_flow {
        ctx.fire(
            out,
            Condition::ApiPasswordFlowToken,
            format!("token from the password flow: {amr}, public client; {op}"),
        );
    }
    if let Some(crate::event::token::Signature::Invalid(why)) = sig {
        ctx.fire(
            out,
            Condition::ApiTokenSignatureInvalid,
            format!("signature check failed: {why}"),
        );
    }
    out.tally = Tally::ApiAppUser {
        mfa,
        excepted,
        password_flow,
    };
}

/// The dashboard session's MFA: `sessionAmr` when sent, else the user's latest
/// interactive Partner Center sign-in in the same session window.
fn session_mfa(policy: &Policy, d: &DashboardRequest<'_>, state: &TenantState) -> Option<bool> {
    if let Some(amr) = &d.session_amr {
        return Some(amr.iter().any(|m| m == "mfa"));
    }
    let user = state.user(d.user_id.as_deref()?)?;
    let s = user.pc_session.as_ref()?;
    let age = d.time.0 - s.time.0;
    let same_session = match (&s.session_id, d.session_id.as_deref()) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    (age >= 0 && age <= policy.session_max_age_secs * 1_000_000 && same_session).then_some(s.mfa)
}

fn dashboard(
    policy: &Policy,
    version: &Arc<str>,
    d: &DashboardRequest<'_>,
    state: &TenantState,
    out: &mut Evaluation,
) {
    let Some(page): Option<&Page> = policy.protected_page(&d.url) else {
        return;
    };
    let served = d.status_code.is_some_and(|c| (200..300).contains(&c));
    if !served {
        return;
    }
    let user_id = d.user_id.as_deref().unwrap_or("");
    let roles = if d.roles.is_empty() {
        state.user(user_id).map(|u| u.roles).unwrap_or_default()
    } else {
        d.roles
    };
    let ctx = Ctx {
        policy,
        version,
        state,
        event_id: &d.event_id,
        time: d.time,
        tenant_id: &d.tenant_id,
        customer_tenant_id: "",
        user_id,
        upn: d.upn.as_deref().unwrap_or(""),
        app_id: "",
        client_app: "",
        token_sha256: "",
    };
    let mfa = session_mfa(policy, d, state);
    let mut excepted = false;
    match mfa {
        Some(false) => {
            excepted = ctx.fire(
                out,
                Condition::DashboardPageWithoutMfa,
                format!("{} served to a session without MFA", page.name),
            );
        }
        Some(true) => {}
        None => skip(
            out,
            Condition::DashboardPageWithoutMfa,
            "no sessionAmr and no Partner Center sign-in in the session window",
        ),
    }
    if roles.is_empty() {
        skip(out, Condition::DashboardRoleNotAllowed, "roles unknown");
    } else if !roles.intersects(page.roles) {
        ctx.fire(
            out,
            Condition::DashboardRoleNotAllowed,
            format!(
                "{} served to roles {} (allowed: {})",
                page.name,
                role_list(roles),
                role_list(page.roles)
            ),
        );
    }
    out.tally = Tally::Dashboard { mfa, excepted };
}

/// Whether a sign-in is an interactive Partner Center one (a dashboard session).
pub(crate) fn starts_pc_session(policy: &Policy, s: &SignIn<'_>) -> bool {
    s.props.is_interactive == Some(true)
        && s.succeeded() == Some(true)
        && is_partner_center(policy, s)
}
