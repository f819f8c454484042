//! What one event offers its rules under one policy ([`Facts`]), and what one tenant's
//! day offers the readiness rule ([`DayFacts`]): every attribute of [`super::attr`], read
//! from the event, the tenant's state before it, and the policy's data (its `[mfa]`
//! lists, pages, partner roles and Partner Center apps).

use super::attr::{Attr, Val};
use super::model::{Page, Policy, Rule};
use crate::event::directory::{DirectoryAudit, RoleChange};
use crate::event::token::Signature;
use crate::event::wire::{self, device_flags, CaPolicy, DeviceTexts, Location, Text};
use crate::event::{ApiCaller, Event, RoleSet, SignIn};
use crate::state::{TenantState, UserState};
use std::cell::OnceCell;

mod day;
mod kinds;
mod mfa;

pub use day::DayFacts;
use kinds::{api, audit};
use mfa::{any_detail, contains_ci_bytes, is_mfa_step, is_partner_center};
pub use mfa::{mfa_skipped, sign_in_mfa};

fn text<'a>(t: &'a Option<Text<'a>>) -> Option<Val<'a>> {
    t.as_deref().map(|s| Val::Text(s.trim()))
}

/// What one event offers its rules under one policy: the event, the tenant's state as it
/// stood before the event, and what the policy derives from both (computed once).
pub struct Facts<'a> {
    event: &'a Event<'a>,
    policy: &'a Policy,
    state: &'a TenantState,
    user: Option<&'a UserState>,
    page: Option<&'a Page>,
    sign_in_mfa: bool,
    session_mfa: Option<bool>,
    roles: RoleSet,
    lazy: Lazy<'a>,
}

/// The parts of a sign-in decoded only when a rule reads them (once per event): a
/// sign-in no loaded rule asks about pays for none of them.
#[derive(Default)]
struct Lazy<'a> {
    location: OnceCell<Option<Location<'a>>>,
    device: OnceCell<Option<DeviceTexts<'a>>>,
    risk_event_types: OnceCell<Option<Vec<Text<'a>>>>,
    step_result_details: OnceCell<Option<Vec<Text<'a>>>>,
    ca: OnceCell<Option<CaResults>>,
}

/// What `appliedConditionalAccessPolicies` says.
struct CaResults {
    applied: Vec<String>,
    not_applied: Vec<String>,
    mfa_not_applied: bool,
}

impl CaResults {
    fn of(policies: Vec<CaPolicy<'_>>) -> CaResults {
        let mut r = CaResults {
            applied: Vec::new(),
            not_applied: Vec::new(),
            mfa_not_applied: false,
        };
        for p in policies {
            let result = p.result.as_deref().map(str::trim).unwrap_or_default();
            let name = || p.display_name.as_deref().map(|n| n.trim().to_owned());
            if result.eq_ignore_ascii_case("success") || result.eq_ignore_ascii_case("failure") {
                r.applied.extend(name());
            } else if result.eq_ignore_ascii_case("notApplied") {
                r.not_applied.extend(name());
                let mfa = p.authentication_strength.is_some()
                    || p.enforced_grant_controls
                        .iter()
                        .flatten()
                        .flatten()
                        .any(|c| {
                            let c = c.trim();
                            c.eq_ignore_ascii_case("mfa")
                                || contains_ci_bytes(c, "authenticationstrength")
                                || contains_ci_bytes(c, "authentication strength")
                        });
                r.mfa_not_applied |= mfa;
            }
        }
        r
    }
}

impl<'a> Facts<'a> {
    /// Gathers the facts of `event` under `policy`.
    pub fn new(event: &'a Event<'a>, policy: &'a Policy, state: &'a TenantState) -> Self {
        let user = event_user_id(event).and_then(|u| state.user(u));
        let mut f = Facts {
            event,
            policy,
            state,
            user,
            page: None,
            sign_in_mfa: false,
            session_mfa: None,
            roles: RoleSet::default(),
            lazy: Lazy::default(),
        };
        match event {
            Event::SignIn(s) => f.sign_in_mfa = sign_in_mfa(policy, s),
            Event::Dashboard(d) => {
                f.page = policy.protected_page(&d.url);
                f.session_mfa = f.dashboard_session_mfa();
                f.roles = if d.roles.is_empty() {
                    user.map(|u| u.roles).unwrap_or_default()
                } else {
                    d.roles
                };
            }
            _ => {}
        }
        f
    }

    /// The event.
    pub fn event(&self) -> &'a Event<'a> {
        self.event
    }

    /// The user's state before the event, if known.
    pub fn user(&self) -> Option<&'a UserState> {
        self.user
    }

    /// The tenant's state before the event.
    pub fn state(&self) -> &'a TenantState {
        self.state
    }

    /// The sign-in's MFA verdict (`false` for other kinds).
    pub fn sign_in_mfa(&self) -> bool {
        self.sign_in_mfa
    }

    /// Whether the event starts a dashboard session: an interactive, successful Partner
    /// Center sign-in.
    pub fn starts_pc_session(&self) -> bool {
        match self.event {
            Event::SignIn(s) => {
                s.props.is_interactive == Some(true)
                    && s.succeeded() == Some(true)
                    && is_partner_center(self.policy, s)
            }
            _ => false,
        }
    }

    fn dashboard_session_mfa(&self) -> Option<bool> {
        let Event::Dashboard(d) = self.event else {
            return None;
        };
        if let Some(amr) = &d.session_amr {
            return Some(amr.iter().any(|m| m == "mfa"));
        }
        let s = self.user?.pc_session.as_ref()?;
        let age = d.time.0 - s.time.0;
        let same_session = match (&s.session_id, d.session_id.as_deref()) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        (age >= 0 && age <= self.policy.session_max_age_secs * 1_000_000 && same_session)
            .then_some(s.mfa)
    }

    /// Reads one attribute for `rule` (rule attributes need it; `None` reads them absent).
    pub fn get(&self, attr: Attr, rule: Option<&Rule>) -> Option<Val<'_>> {
        use Attr as A;
        let ev = self.event;
        match attr {
            A::EventKind => Some(Val::Text(ev.kind())),
            A::RuleEnforced => {
                let r = rule?;
                Some(Val::Bool(self.policy.is_enforced_for(
                    r.surface,
                    self.state,
                    ev.time(),
                )))
            }
            A::RuleExcepted => {
                let r = rule?;
                Some(Val::Bool(self.covered(&r.id)))
            }
            A::UserRoles => self
                .user_id()
                .map(|_| Val::Roles(self.user.map(|u| u.roles).unwrap_or_default())),
            A::UserPartnerRole => self.user_id().map(|_| {
                Val::Bool(
                    self.user
                        .is_some_and(|u| u.roles.intersects(self.policy.partner_roles)),
                )
            }),
            A::UserRegistered => self.user?.registered.map(Val::Bool),
            A::UserDirectoryRoles => self
                .user_id()
                .map(|_| Val::Strings(self.user.map_or(&[][..], |u| &u.directory_roles))),
            A::UserEligibleRoles => self
                .user_id()
                .map(|_| Val::Strings(self.user.map_or(&[][..], |u| &u.eligible_roles))),
            A::UserPerUserMfa => self.user?.per_user_mfa.map(Val::Bool),
            A::UserGuest => {
                let own = match ev {
                    Event::SignIn(s) => s.props.user_type.as_deref(),
                    Event::Role(r) => r.user_type.as_deref(),
                    _ => None,
                };
                own.filter(|t| !t.trim().is_empty())
                    .or_else(|| self.user?.user_type.as_deref())
                    .map(|t| Val::Bool(t.trim().eq_ignore_ascii_case("guest")))
            }
            A::UserLatestSuccessMfa => match ev {
                Event::SignIn(s) if s.succeeded() == Some(true) && s.identity() == "user" => {
                    Some(Val::Bool(self.sign_in_mfa))
                }
                _ => self.user?.last_success_mfa.map(Val::Bool),
            },
            _ => match ev {
                Event::SignIn(s) => self.sign_in(attr, s),
                Event::Api(a) => api(attr, a),
                Event::Dashboard(d) => self.dashboard(attr, d),
                Event::Registration(r) => match attr {
                    A::RegistrationRegistered => Some(Val::Bool(r.registered)),
                    A::RegistrationMethods => Some(Val::Texts(&r.methods)),
                    _ => None,
                },
                Event::Role(r) => match attr {
                    A::RoleName => Some(Val::Text(r.role.name())),
                    A::RoleAction => Some(Val::Text(match r.action {
                        crate::event::RoleAction::Add => "add",
                        crate::event::RoleAction::Remove => "remove",
                    })),
                    _ => None,
                },
                Event::Audit(a) => audit(attr, a),
                Event::Gdap(g) => match attr {
                    A::GdapStatus => Some(Val::Text(&g.status)),
                    A::GdapCustomer => Some(Val::Text(&g.customer_tenant_id)),
                    A::GdapRelationship => Some(Val::Text(&g.relationship_id)),
                    A::GdapRoles => Some(Val::Strings(&g.roles)),
                    A::GdapActive => Some(Val::Bool(
                        g.status == "active"
                            && g.activated.is_none_or(|t| t <= g.time)
                            && g.ends.is_none_or(|t| g.time < t),
                    )),
                    _ => None,
                },
                Event::GdapAssignment(g) => match attr {
                    A::GdapStatus => Some(Val::Text(&g.status)),
                    A::GdapRelationship => g.relationship_id.as_deref().map(Val::Text),
                    A::GdapRoles => Some(Val::Strings(&g.roles)),
                    A::GdapActive => Some(Val::Bool(g.status == "active")),
                    _ => None,
                },
                Event::Exception(_) | Event::Override(_) | Event::Skipped(_) => None,
            },
        }
    }

    fn user_id(&self) -> Option<&'a str> {
        event_user_id(self.event).filter(|u| !u.trim().is_empty())
    }

    /// Whether an approved exception covers `rule_id` for this event's user now.
    pub fn covered(&self, rule_id: &str) -> bool {
        let (user_id, upn) = row_user(self.event, self.user);
        let policy = self.policy;
        self.state.exception_covers(
            &|reason| policy.reason_covers(reason, rule_id),
            user_id,
            upn,
            self.event.time(),
        )
    }

    fn sign_in(&self, attr: Attr, s: &'a SignIn<'a>) -> Option<Val<'_>> {
        use Attr as A;
        let p = &s.props;
        match attr {
            A::SignInCategory => text(&s.category),
            A::SignInIdentity => Some(Val::Text(s.identity())),
            A::SignInInteractive => p.is_interactive.map(Val::Bool),
            A::SignInSuccess => s.succeeded().map(Val::Bool),
            A::SignInErrorCode => match p.status.as_ref().and_then(|st| st.error_code) {
                Some(c) => Some(Val::Int(c)),
                None => s
                    .result_type
                    .as_deref()
                    .and_then(|r| r.trim().parse().ok())
                    .map(Val::Int),
            },
            A::SignInAppId => text(&p.app_id),
            A::SignInAppName => text(&p.app_display_name),
            A::SignInResourceId => text(&p.resource_id),
            A::SignInResourceName => text(&p.resource_display_name),
            A::SignInClientApp => text(&p.client_app_used),
            A::SignInProtocol => text(&p.authentication_protocol),
            A::SignInUserAgent => text(&p.user_agent),
            A::SignInUserType => text(&p.user_type),
            A::SignInUserId => text(&p.user_id),
            A::SignInCrossTenant => text(&p.cross_tenant_access_type),
            A::SignInHomeTenant => text(&p.home_tenant_id),
            A::SignInResourceTenant => text(&p.resource_tenant_id),
            A::SignInTenantsDiffer => {
                let home = p.home_tenant_id.as_deref()?;
                let res = p.resource_tenant_id.as_deref()?;
                Some(Val::Bool(!home.eq_ignore_ascii_case(res)))
            }
            A::SignInIntoCustomer => into_customer_tenant(s).map(Val::Bool),
            A::SignInCustomerTenant => {
                if into_customer_tenant(s) == Some(true) {
                    text(&p.resource_tenant_id)
                } else {
                    None
                }
            }
            A::SignInGdapActive => {
                let customer = p.resource_tenant_id.as_deref()?;
                (into_customer_tenant(s) == Some(true) && !self.state.gdap.is_empty())
                    .then(|| Val::Bool(self.state.gdap.active_with(customer, s.time)))
            }
            A::SignInTokenIssuer => text(&p.token_issuer_type),
            A::SignInIncomingToken => text(&p.incoming_token_type),
            A::SignInCaStatus => text(&p.conditional_access_status),
            A::SignInDeviceManaged => device_flags(p.device_detail?).is_managed.map(Val::Bool),
            A::SignInDeviceCompliant => device_flags(p.device_detail?).is_compliant.map(Val::Bool),
            A::SignInMfa => Some(Val::Bool(self.sign_in_mfa)),
            A::SignInMfaRequirement => text(&p.authentication_requirement),
            A::SignInMfaDetail => p
                .status
                .as_ref()
                .and_then(|st| st.additional_details.as_deref())
                .map(|d| Val::Text(d.trim())),
            A::SignInMfaStep => p.authentication_details.as_ref().map(|steps| {
                Val::Bool(steps.iter().any(|d| {
                    d.succeeded == Some(true)
                        && (d
                            .authentication_step_requirement
                            .as_deref()
                            .is_some_and(is_mfa_step)
                            || d.authentication_method.as_deref().is_some_and(|m| {
                                contains_ci(&self.policy.second_factor_methods, m)
                            }))
                }))
            }),
            A::SignInMfaByClaim => Some(Val::Bool(any_detail(s, |t| {
                t.trim()
                    .eq_ignore_ascii_case("MFA requirement satisfied by claim in the token")
            }))),
            A::SignInMfaSkipped => Some(Val::Bool(mfa_skipped(self.policy, s))),
            A::SignInMfaDemanded => {
                let code = p.status.as_ref().and_then(|st| st.error_code)?;
                Some(Val::Bool(
                    self.policy.mfa_demanded_error_codes.contains(&code),
                ))
            }
            A::SignInRequirementProviders => p
                .authentication_requirement_policies
                .as_deref()
                .map(Val::Providers),
            A::SignInPartnerCenter => Some(Val::Bool(is_partner_center(self.policy, s))),
            A::SignInIp => text(&p.ip_address),
            A::SignInUpn => text(&p.user_principal_name),
            A::SignInRiskDuring => text(&p.risk_level_during_sign_in),
            A::SignInRiskAggregated => text(&p.risk_level_aggregated),
            A::SignInRiskState => text(&p.risk_state),
            A::SignInRiskDetail => text(&p.risk_detail),
            A::SignInTransferMethod => text(&p.original_transfer_method),
            A::SignInSessionId => text(&p.session_id),
            A::SignInCountry | A::SignInCity | A::SignInState => {
                let l = self
                    .lazy
                    .location
                    .get_or_init(|| p.location.and_then(wire::decode_raw))
                    .as_ref()?;
                text(match attr {
                    A::SignInCountry => &l.country_or_region,
                    A::SignInCity => &l.city,
                    _ => &l.state,
                })
            }
            A::SignInDeviceTrustType
            | A::SignInDeviceId
            | A::SignInDeviceOs
            | A::SignInDeviceBrowser => {
                let d = self
                    .lazy
                    .device
                    .get_or_init(|| p.device_detail.and_then(wire::decode_raw))
                    .as_ref()?;
                text(match attr {
                    A::SignInDeviceTrustType => &d.trust_type,
                    A::SignInDeviceId => &d.device_id,
                    A::SignInDeviceOs => &d.operating_system,
                    _ => &d.browser,
                })
            }
            A::SignInRiskEventTypes => self
                .lazy
                .risk_event_types
                .get_or_init(|| {
                    p.risk_event_types_v2
                        .and_then(wire::raw_texts)
                        .or_else(|| p.risk_event_types.and_then(wire::raw_texts))
                })
                .as_deref()
                .map(Val::Texts),
            A::SignInStepResultDetails => self
                .lazy
                .step_result_details
                .get_or_init(|| {
                    p.authentication_details.as_ref().map(|steps| {
                        steps
                            .iter()
                            .filter_map(|d| d.authentication_step_result_detail.clone())
                            .collect()
                    })
                })
                .as_deref()
                .map(Val::Texts),
            A::SignInCaApplied | A::SignInCaNotApplied | A::SignInCaMfaNotApplied => {
                let ca = self
                    .lazy
                    .ca
                    .get_or_init(|| {
                        p.applied_conditional_access_policies
                            .and_then(wire::decode_raw)
                            .map(CaResults::of)
                    })
                    .as_ref()?;
                Some(match attr {
                    A::SignInCaApplied => Val::Strings(&ca.applied),
                    A::SignInCaNotApplied => Val::Strings(&ca.not_applied),
                    _ => Val::Bool(ca.mfa_not_applied),
                })
            }
            _ => None,
        }
    }

    fn dashboard(&self, attr: Attr, d: &'a crate::event::DashboardRequest<'a>) -> Option<Val<'_>> {
        use Attr as A;
        match attr {
            A::DashboardUrl => Some(Val::Text(d.url.trim())),
            A::DashboardStatus => d.status_code.map(Val::Int),
            A::DashboardPage => self.page.map(|p| Val::Text(&p.id)),
            A::DashboardPageName => self.page.map(|p| Val::Text(&p.name)),
            A::DashboardPageRoles => self.page.map(|p| Val::Roles(p.roles)),
            A::DashboardRoles => (!self.roles.is_empty()).then_some(Val::Roles(self.roles)),
            A::DashboardRoleAllowed => {
                let page = self.page?;
                (!self.roles.is_empty()).then_some(Val::Bool(self.roles.intersects(page.roles)))
            }
            A::SessionMfa => self.session_mfa.map(Val::Bool),
            _ => None,
        }
    }
}

/// The user an event is about, whose state `user.*` reads.
fn event_user_id<'a>(event: &'a Event<'a>) -> Option<&'a str> {
    match event {
        Event::SignIn(s) => s.props.user_id.as_deref(),
        Event::Dashboard(d) => d.user_id.as_deref(),
        Event::Registration(r) => Some(&*r.user_id),
        Event::Role(r) => Some(&*r.user_id),
        // An audit record is about its target user.
        Event::Audit(a) => a.facts.target_user_id.as_deref(),
        Event::Api(_)
        | Event::Exception(_)
        | Event::Override(_)
        | Event::Gdap(_)
        | Event::GdapAssignment(_)
        | Event::Skipped(_) => None,
    }
}

/// The user id and UPN a finding of this event carries (and exceptions are matched on).
pub fn row_user<'a>(event: &'a Event<'a>, user: Option<&'a UserState>) -> (&'a str, &'a str) {
    match event {
        Event::SignIn(s) => (
            s.props.user_id.as_deref().unwrap_or(""),
            s.props.user_principal_name.as_deref().unwrap_or(""),
        ),
        Event::Api(a) => match &a.caller {
            ApiCaller::Token(t) => (
                t.claims.oid.as_deref().unwrap_or(""),
                t.claims.user_name().unwrap_or(""),
            ),
            ApiCaller::Report { object_id, upn, .. } => {
                (&**object_id, upn.as_deref().unwrap_or(""))
            }
            ApiCaller::AppOnly => ("", ""),
        },
        Event::Dashboard(d) => (
            d.user_id.as_deref().unwrap_or(""),
            d.upn.as_deref().unwrap_or(""),
        ),
        Event::Registration(r) => (
            &*r.user_id,
            user.and_then(|u| u.upn.as_deref()).unwrap_or(""),
        ),
        Event::Role(r) => (&*r.user_id, r.upn.as_deref().unwrap_or("")),
        // The user the record is about (the target), as `user.*` reads it.
        Event::Audit(a) => {
            let target = a.target_user();
            (
                target.and_then(|t| t.id.as_deref()).unwrap_or(""),
                target.and_then(|t| t.upn.as_deref()).unwrap_or(""),
            )
        }
        Event::Exception(_)
        | Event::Override(_)
        | Event::Gdap(_)
        | Event::GdapAssignment(_)
        | Event::Skipped(_) => ("", ""),
    }
}

/// A sign-in into a customer tenant (EVENTS.md): `crossTenantAccessType` =
/// `serviceProvider`; where that field is absent, home tenant differs from resource
/// tenant; `None` when neither can be read.
pub fn into_customer_tenant(s: &SignIn<'_>) -> Option<bool> {
    match s.props.cross_tenant_access_type.as_deref() {
        Some(c) => Some(c.trim().eq_ignore_ascii_case("serviceProvider")),
        None => {
            let home = s.props.home_tenant_id.as_deref()?;
            let res = s.props.resource_tenant_id.as_deref()?;
            Some(!home.eq_ignore_ascii_case(res))
        }
    }
}

fn contains_ci(list: &[String], v: &str) -> bool {
    let v = v.trim();
    list.iter().any(|x| x.eq_ignore_ascii_case(v))
}
