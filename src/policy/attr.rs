//! The attributes a rule's condition can read: each has a name, a type and the source
//! field(s) it is read from. An attribute the event does not carry is *absent*, which
//! makes a test on it *unknown* and the rule *not applicable* (never an error).
//!
//! Reading an attribute allocates nothing: values borrow from the event, the state or the
//! policy. `mfa-audit policy attributes` prints this table; `docs/rules.md` explains it.

use super::model::{Page, Policy, Rule};
use crate::event::time::EventTime;
use crate::event::token::Signature;
use crate::event::wire::{device_flags, RequirementPolicy, Text};
use crate::event::{ApiCaller, Event, RoleSet, SignIn};
use crate::state::{DayCounters, TenantState, UserState};
use std::fmt;

/// An attribute's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// Text, compared ignoring case and surrounding blanks.
    Text,
    /// `true` / `false`.
    Bool,
    /// A whole number.
    Int,
    /// A list of texts (`contains`).
    List,
}

impl Type {
    /// The name in messages and docs.
    pub fn name(self) -> &'static str {
        match self {
            Type::Text => "text",
            Type::Bool => "bool",
            Type::Int => "int",
            Type::List => "list",
        }
    }
}

/// Where an attribute may be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Rules, shares and counters: one event (and the tenant's state before it).
    Event,
    /// `[readiness]`: one tenant's day (or its 7-day window).
    Day,
}

/// One attribute's definition.
#[derive(Debug)]
pub struct AttrDef {
    /// The attribute.
    pub attr: Attr,
    /// Its name in policy files (`sign_in.client_app`).
    pub name: &'static str,
    /// Its type.
    pub ty: Type,
    /// Where it may be read.
    pub scope: Scope,
    /// The source field(s), or how it is derived.
    pub source: &'static str,
}

macro_rules! attributes {
    ($( $var:ident = $name:literal, $ty:ident, $scope:ident, $src:literal; )*) => {
        /// Every attribute (see [`ATTRS`] for names, types and sources).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum Attr { $($var),* }

        /// Every attribute's definition, in documentation order.
        pub const ATTRS: &[AttrDef] = &[
            $( AttrDef { attr: Attr::$var, name: $name, ty: Type::$ty, scope: Scope::$scope, source: $src } ),*
        ];
    };
}

attributes! {
    EventKind = "event.kind", Text, Event, "the input kind: `sign_in`, `partner_api_request`, `dashboard_request`, `partner_role_assignment`, `mfa_registration`, `technical_exception`";
    RuleEnforced = "rule.enforced", Bool, Event, "the rule's surface is enforced at the event's time (`[[surfaces]] enforced_from`)";
    RuleExcepted = "rule.excepted", Bool, Event, "an approved technical exception whose reason covers this rule covers this user at the event's time (state)";

    SignInCategory = "sign_in.category", Text, Event, "record `category` (`SignInLogs`, `NonInteractiveUserSignInLogs`, `ServicePrincipalSignInLogs`, `ManagedIdentitySignInLogs`, ...); absent for a Graph `signIn`";
    SignInInteractive = "sign_in.interactive", Bool, Event, "`isInteractive`";
    SignInSuccess = "sign_in.success", Bool, Event, "`status.errorCode` = 0, else `resultType` = `0`";
    SignInErrorCode = "sign_in.error_code", Int, Event, "`status.errorCode`, else `resultType` when it is a number";
    SignInAppId = "sign_in.app_id", Text, Event, "`appId`";
    SignInAppName = "sign_in.app_name", Text, Event, "`appDisplayName`";
    SignInResourceId = "sign_in.resource_id", Text, Event, "`resourceId`";
    SignInResourceName = "sign_in.resource_name", Text, Event, "`resourceDisplayName`";
    SignInClientApp = "sign_in.client_app", Text, Event, "`clientAppUsed`";
    SignInProtocol = "sign_in.protocol", Text, Event, "`authenticationProtocol` (absent on older records)";
    SignInUserAgent = "sign_in.user_agent", Text, Event, "`userAgent`";
    SignInUserType = "sign_in.user_type", Text, Event, "`userType` (`Member`, `Guest`)";
    SignInUserId = "sign_in.user_id", Text, Event, "`userId`";
    SignInCrossTenant = "sign_in.cross_tenant_access_type", Text, Event, "`crossTenantAccessType` (`none`, `b2bCollaboration`, `serviceProvider`, ...)";
    SignInHomeTenant = "sign_in.home_tenant_id", Text, Event, "`homeTenantId`";
    SignInResourceTenant = "sign_in.resource_tenant_id", Text, Event, "`resourceTenantId`";
    SignInTenantsDiffer = "sign_in.tenants_differ", Bool, Event, "`homeTenantId` differs from `resourceTenantId` (both present)";
    SignInIntoCustomer = "sign_in.into_customer_tenant", Bool, Event, "a sign-in into a customer tenant: `crossTenantAccessType` = `serviceProvider`; where that field is absent, home tenant differs from resource tenant";
    SignInCustomerTenant = "sign_in.customer_tenant_id", Text, Event, "`resourceTenantId` of a sign-in into a customer tenant";
    SignInTokenIssuer = "sign_in.token_issuer_type", Text, Event, "`tokenIssuerType` (`AzureAD`, `ADFederationServices`, ...)";
    SignInIncomingToken = "sign_in.incoming_token_type", Text, Event, "`incomingTokenType`";
    SignInCaStatus = "sign_in.conditional_access_status", Text, Event, "`conditionalAccessStatus` (`success`, `failure`, `notApplied`)";
    SignInDeviceManaged = "sign_in.device_managed", Bool, Event, "`deviceDetail.isManaged`";
    SignInDeviceCompliant = "sign_in.device_compliant", Bool, Event, "`deviceDetail.isCompliant`";
    SignInMfa = "sign_in.mfa", Bool, Event, "MFA satisfied, by the policy's `[mfa]` lists: not when `status.errorCode` is a demanded code; `authenticationRequirement` = `multiFactorAuthentication` with success, or a satisfied detail, or a succeeded second-factor step";
    SignInMfaRequirement = "sign_in.mfa_requirement", Text, Event, "`authenticationRequirement` (`singleFactorAuthentication`, `multiFactorAuthentication`)";
    SignInMfaDetail = "sign_in.mfa_detail", Text, Event, "`status.additionalDetails`";
    SignInMfaStep = "sign_in.mfa_step_succeeded", Bool, Event, "a succeeded `authenticationDetails` step that is a second factor (its requirement names MFA, or its method is in `[mfa] second_factor_methods`); absent without `authenticationDetails`";
    SignInMfaByClaim = "sign_in.mfa_by_claim", Bool, Event, "`status.additionalDetails` or a step's `authenticationStepResultDetail` is \"MFA requirement satisfied by claim in the token\"";
    SignInMfaDemanded = "sign_in.mfa_demanded", Bool, Event, "`status.errorCode` is in `[mfa] demanded_error_codes` (MFA asked for, not performed)";
    SignInRequirementProviders = "sign_in.requirement_providers", List, Event, "`authenticationRequirementPolicies[].requirementProvider` (`enforcedForCspAdmins`, `multiConditionalAccess`, `securityDefaults`, `user`, ...)";
    SignInPartnerCenter = "sign_in.partner_center", Bool, Event, "`appId`, `appDisplayName`, `resourceId` or `resourceDisplayName` is in `[session] partner_center_apps`";

    ApiStatus = "api.status", Int, Event, "`statusCode`";
    ApiStatusText = "api.status_text", Text, Event, "`status 200`, or `status unknown` (for details)";
    ApiOperation = "api.operation", Text, Event, "`operationName` (`GET /v1/customers/{id}`)";
    ApiMethod = "api.method", Text, Event, "the HTTP method: the first word of `operationName`";
    ApiAppId = "api.app_id", Text, Event, "`applicationId`, else the token's `appid`/`azp`";
    ApiCallerKind = "api.caller", Text, Event, "`token` (a bearer token), `report` (a `partnerRequests` row: `objectId`, no token) or `app_only` (neither)";
    ApiAppUser = "api.app_user", Bool, Event, "an App+User call: a token with `scp` (or `idtyp` = `user`), or a report row";
    ApiMfa = "api.mfa", Bool, Event, "the token's `amr` holds the exact `mfa` (`ngcmfa` is not `mfa`); a report row's `mfaCompliant`; absent for app-only calls";
    ApiMfaEvidence = "api.mfa_evidence", Text, Event, "`amr=[pwd,mfa]`, or `mfaCompliant=false` for a report row (for details)";
    TokenAmr = "token.amr", List, Event, "the token's `amr` claim";
    TokenPublicClient = "token.public_client", Bool, Event, "`appidacr`/`azpacr` = `0`";
    TokenPasswordFlow = "token.password_flow", Bool, Event, "`amr` is only `pwd` and the client is public";
    TokenSignature = "token.signature", Text, Event, "`valid`, `invalid` or `unchecked` (without `--jwks`)";
    TokenSignatureError = "token.signature_error", Text, Event, "why the signature check failed";

    DashboardUrl = "dashboard.url", Text, Event, "`url`";
    DashboardStatus = "dashboard.status", Int, Event, "`statusCode`";
    DashboardPage = "dashboard.page", Text, Event, "the id of the policy's `[[pages]]` entry the URL falls in; absent for other pages";
    DashboardPageName = "dashboard.page_name", Text, Event, "that page's name";
    DashboardPageRoles = "dashboard.page_roles", List, Event, "the roles that page lets in";
    DashboardRoles = "dashboard.roles", List, Event, "`roles` of the request, else the user's roles in state; absent when neither is known";
    DashboardRoleAllowed = "dashboard.role_allowed", Bool, Event, "those roles include one the page lets in";
    SessionMfa = "session.mfa", Bool, Event, "the dashboard session completed MFA: `sessionAmr` holds `mfa`, else the user's latest interactive Partner Center sign-in within `[session] max_age_hours` (state)";

    RegistrationRegistered = "registration.registered", Bool, Event, "`isMfaRegistered` of an `mfa_registration` row";
    RegistrationMethods = "registration.methods", List, Event, "`methodsRegistered`";
    RoleName = "role.name", Text, Event, "`role` of a `partner_role_assignment`";
    RoleAction = "role.action", Text, Event, "`add` or `remove`";

    UserRoles = "user.roles", List, Event, "the roles the event's user holds (state, before the event)";
    UserPartnerRole = "user.partner_role", Bool, Event, "the user holds one of the policy's `partner_roles` (state)";
    UserRegistered = "user.registered", Bool, Event, "the user's MFA registration (state); absent until a registration row says";

    DayFindings = "day.findings", Int, Day, "findings";
    DayUncoveredLow = "day.uncovered_low", Int, Day, "findings not covered by an exception, severity low";
    DayUncoveredMedium = "day.uncovered_medium", Int, Day, "likewise, medium";
    DayUncoveredHigh = "day.uncovered_high", Int, Day, "likewise, high";
    DayUncoveredCritical = "day.uncovered_critical", Int, Day, "likewise, critical";
    DayEnforcedGap = "day.enforced_gap", Bool, Day, "a surface with a share, enforced at the day's start, has calls without MFA that no exception covers";
    DayPartnerRoleUsers = "day.partner_role_users", Int, Day, "partner-role users (at the day's last event)";
    DayAgentsRegistered = "day.agents_registered", Int, Day, "of those, registered for MFA";
    DayAgentsUnregistered = "day.agents_unregistered", Int, Day, "of those, not (yet) registered";
    DayExceptionsOpen = "day.exceptions_open", Int, Day, "exception requests open";
    DayExceptionsOverdue = "day.exceptions_overdue", Int, Day, "of those, past `[exceptions] response_business_days`";
    DayExceptionsApproved = "day.exceptions_approved", Int, Day, "exceptions approved and in force";
}

impl Attr {
    /// Its definition.
    pub fn def(self) -> &'static AttrDef {
        // INVARIANT: ATTRS lists every variant in declaration order (checked by a test).
        #[allow(clippy::indexing_slicing)]
        &ATTRS[self as usize]
    }

    /// Its name in policy files.
    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// Finds an attribute by name.
    pub fn parse(name: &str) -> Option<Attr> {
        ATTRS.iter().find(|d| d.name == name).map(|d| d.attr)
    }

    /// The event kind whose events carry it (`None`: every kind, or a day attribute).
    pub fn kind(self) -> Option<&'static str> {
        let name = self.name();
        let prefix = name.split('.').next().unwrap_or_default();
        match prefix {
            "sign_in" => Some("sign_in"),
            "api" | "token" => Some("partner_api_request"),
            "dashboard" | "session" => Some("dashboard_request"),
            "registration" => Some("mfa_registration"),
            "role" => Some("partner_role_assignment"),
            _ => None,
        }
    }
}

/// The attributes as a table for people (`mfa-audit policy attributes`).
pub fn table() -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "{:<36} {:<5} {:<6} source", "attribute", "type", "scope");
    for d in ATTRS {
        let scope = match d.scope {
            Scope::Event => "event",
            Scope::Day => "day",
        };
        let _ = writeln!(
            s,
            "{:<36} {:<5} {:<6} {}",
            d.name,
            d.ty.name(),
            scope,
            d.source
        );
    }
    s
}

impl Attr {
    /// Whether the value comes from the tenant's state (what earlier events left), not
    /// from the event itself.
    pub fn from_state(self) -> bool {
        matches!(
            self,
            Attr::RuleExcepted
                | Attr::UserRoles
                | Attr::UserPartnerRole
                | Attr::UserRegistered
                | Attr::SessionMfa
        )
    }
}

/// A value read from an event, borrowed.
#[derive(Clone, Copy)]
pub enum Val<'a> {
    /// Text (already trimmed).
    Text(&'a str),
    /// A flag.
    Bool(bool),
    /// A number.
    Int(i64),
    /// A list of borrowed texts.
    Texts(&'a [Text<'a>]),
    /// A list of owned texts.
    Strings(&'a [String]),
    /// Roles.
    Roles(RoleSet),
    /// `authenticationRequirementPolicies` (a list of their providers).
    Providers(&'a [RequirementPolicy<'a>]),
    /// An HTTP status as text: `status 200`, `status unknown`.
    Status(Option<i64>),
    /// An API call's MFA evidence as text: `amr=[pwd,mfa]`, `mfaCompliant=false`.
    Evidence(&'a ApiCaller<'a>),
}

impl Val<'_> {
    /// Whether a list value holds `item` (ignoring case). `false` for scalars.
    pub fn list_contains(&self, item: &str) -> bool {
        match self {
            Val::Texts(v) => v.iter().any(|x| x.trim().eq_ignore_ascii_case(item)),
            Val::Strings(v) => v.iter().any(|x| x.trim().eq_ignore_ascii_case(item)),
            Val::Roles(r) => r.iter().any(|x| x.name().eq_ignore_ascii_case(item)),
            Val::Providers(v) => v.iter().any(|r| {
                r.requirement_provider
                    .as_deref()
                    .is_some_and(|p| p.trim().eq_ignore_ascii_case(item))
            }),
            _ => false,
        }
    }

    /// The value as text, for text comparisons (borrowed where it can be).
    pub fn as_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Val::Text(s) => std::borrow::Cow::Borrowed(s),
            other => std::borrow::Cow::Owned(other.to_string()),
        }
    }
}

impl fmt::Debug for Val<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", to_json(Some(*self)))
    }
}

impl fmt::Display for Val<'_> {
    /// As details show it: lists joined with `,`, roles as `none` when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Text(s) => f.write_str(s),
            Val::Bool(b) => write!(f, "{b}"),
            Val::Int(i) => write!(f, "{i}"),
            Val::Texts(v) => join(f, v.iter().map(|x| &**x)),
            Val::Strings(v) => join(f, v.iter().map(|x| x.as_str())),
            Val::Roles(r) if r.is_empty() => f.write_str("none"),
            Val::Roles(r) => join(f, r.iter().map(|x| x.name())),
            Val::Providers(v) => join(
                f,
                v.iter()
                    .filter_map(|r| r.requirement_provider.as_deref())
                    .map(str::trim),
            ),
            Val::Status(Some(c)) => write!(f, "status {c}"),
            Val::Status(None) => f.write_str("status unknown"),
            Val::Evidence(ApiCaller::Token(t)) => {
                write!(
                    f,
                    "amr=[{}]",
                    t.claims.amr.as_deref().unwrap_or_default().join(",")
                )
            }
            Val::Evidence(ApiCaller::Report { mfa_compliant, .. }) => match mfa_compliant {
                Some(b) => write!(f, "mfaCompliant={b}"),
                None => f.write_str("mfaCompliant=unknown"),
            },
            Val::Evidence(ApiCaller::AppOnly) => f.write_str("app-only"),
        }
    }
}

fn join<'x>(f: &mut fmt::Formatter<'_>, items: impl Iterator<Item = &'x str>) -> fmt::Result {
    for (i, x) in items.enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        f.write_str(x)?;
    }
    Ok(())
}

/// A value as JSON (for `explain --json`).
pub fn to_json(v: Option<Val<'_>>) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        None => J::Null,
        Some(Val::Text(s)) => J::String(s.to_owned()),
        Some(Val::Bool(b)) => J::Bool(b),
        Some(Val::Int(i)) => J::from(i),
        Some(Val::Texts(v)) => J::Array(v.iter().map(|x| J::String(x.to_string())).collect()),
        Some(Val::Strings(v)) => J::Array(v.iter().map(|x| J::String(x.clone())).collect()),
        Some(Val::Roles(r)) => J::Array(r.iter().map(|x| J::String(x.name().into())).collect()),
        Some(Val::Providers(v)) => J::Array(
            v.iter()
                .filter_map(|r| r.requirement_provider.as_deref())
                .map(|p| J::String(p.trim().to_owned()))
                .collect(),
        ),
        Some(v @ (Val::Status(_) | Val::Evidence(_))) => J::String(v.to_string()),
    }
}

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
}

impl<'a> Facts<'a> {
    /// Gathers the facts of `event` under `policy`.
    pub fn new(event: &'a Event<'a>, policy: &'a Policy, state: &'a TenantState) -> Self {
        let user_id = match event {
            Event::SignIn(s) => s.props.user_id.as_deref(),
            Event::Dashboard(d) => d.user_id.as_deref(),
            Event::Registration(r) => Some(&*r.user_id),
            Event::Role(r) => Some(&*r.user_id),
            Event::Api(_) | Event::Exception(_) => None,
        };
        let user = user_id.and_then(|u| state.user(u));
        let mut f = Facts {
            event,
            policy,
            state,
            user,
            page: None,
            sign_in_mfa: false,
            session_mfa: None,
            roles: RoleSet::default(),
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
    pub fn get(&self, attr: Attr, rule: Option<&Rule>) -> Option<Val<'a>> {
        use Attr as A;
        let ev = self.event;
        match attr {
            A::EventKind => Some(Val::Text(ev.kind())),
            A::RuleEnforced => {
                let r = rule?;
                Some(Val::Bool(self.policy.is_enforced(r.surface, ev.time())))
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
                Event::Exception(_) => None,
            },
        }
    }

    fn user_id(&self) -> Option<&'a str> {
        let id = match self.event {
            Event::SignIn(s) => s.props.user_id.as_deref(),
            Event::Dashboard(d) => d.user_id.as_deref(),
            Event::Registration(r) => Some(&*r.user_id),
            Event::Role(r) => Some(&*r.user_id),
            Event::Api(_) | Event::Exception(_) => None,
        };
        id.filter(|u| !u.trim().is_empty())
    }

    /// Whether an approved exception covers `rule_id` for this event's user now.
    pub fn covered(&self, rule_id: &str) -> bool {
        let (user_id, upn) = crate::policy::eval::row_user(self.event, self.user);
        let policy = self.policy;
        self.state.exception_covers(
            &|reason| policy.reason_covers(reason, rule_id),
            user_id,
            upn,
            self.event.time(),
        )
    }

    fn sign_in(&self, attr: Attr, s: &'a SignIn<'a>) -> Option<Val<'a>> {
        use Attr as A;
        let p = &s.props;
        match attr {
            A::SignInCategory => text(&s.category),
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
            A::SignInMfaByClaim => {
                let by_claim = |t: Option<&str>| {
                    t.is_some_and(|t| {
                        t.trim()
                            .eq_ignore_ascii_case("MFA requirement satisfied by claim in the token")
                    })
                };
                Some(Val::Bool(
                    by_claim(
                        p.status
                            .as_ref()
                            .and_then(|st| st.additional_details.as_deref()),
                    ) || p
                        .authentication_details
                        .iter()
                        .flatten()
                        .any(|d| by_claim(d.authentication_step_result_detail.as_deref())),
                ))
            }
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
            _ => None,
        }
    }

    fn dashboard(&self, attr: Attr, d: &'a crate::event::DashboardRequest<'a>) -> Option<Val<'a>> {
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

fn api<'a>(attr: Attr, a: &'a crate::event::ApiRequest<'a>) -> Option<Val<'a>> {
    use Attr as A;
    let token = match &a.caller {
        ApiCaller::Token(t) => Some(&**t),
        _ => None,
    };
    match attr {
        A::ApiStatus => a.status_code.map(Val::Int),
        A::ApiStatusText => Some(Val::Status(a.status_code)),
        A::ApiOperation => a.operation_name.as_deref().map(|o| Val::Text(o.trim())),
        A::ApiMethod => a
            .operation_name
            .as_deref()
            .and_then(|o| o.split_whitespace().next())
            .map(Val::Text),
        A::ApiAppId => a.application_id.as_deref().map(|s| Val::Text(s.trim())),
        A::ApiCallerKind => Some(Val::Text(match &a.caller {
            ApiCaller::Token(_) => "token",
            ApiCaller::Report { .. } => "report",
            ApiCaller::AppOnly => "app_only",
        })),
        A::ApiAppUser => Some(Val::Bool(match &a.caller {
            ApiCaller::Token(t) => t.claims.is_app_user(),
            ApiCaller::Report { .. } => true,
            ApiCaller::AppOnly => false,
        })),
        A::ApiMfa => match &a.caller {
            ApiCaller::Token(t) if t.claims.is_app_user() => Some(Val::Bool(t.claims.has_mfa())),
            ApiCaller::Report { mfa_compliant, .. } => mfa_compliant.map(Val::Bool),
            _ => None,
        },
        A::ApiMfaEvidence => Some(Val::Evidence(&a.caller)),
        A::TokenAmr => token.map(|t| Val::Strings(t.claims.amr.as_deref().unwrap_or_default())),
        A::TokenPublicClient => token.and_then(|t| {
            t.claims
                .appidacr
                .as_deref()
                .or(t.claims.azpacr.as_deref())
                .map(|v| Val::Bool(v.trim() == "0"))
        }),
        A::TokenPasswordFlow => token.map(|t| Val::Bool(t.claims.is_password_flow())),
        A::TokenSignature => token.map(|t| {
            Val::Text(match t.signature {
                Signature::NotChecked => "unchecked",
                Signature::Valid => "valid",
                Signature::Invalid(_) => "invalid",
            })
        }),
        A::TokenSignatureError => token.and_then(|t| match &t.signature {
            Signature::Invalid(why) => Some(Val::Text(why)),
            _ => None,
        }),
        _ => None,
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

/// Whether a sign-in satisfied MFA, by the policy's `[mfa]` lists (EVENTS.md, "MFA
/// satisfied").
pub fn sign_in_mfa(policy: &Policy, s: &SignIn<'_>) -> bool {
    let p = &s.props;
    let status = p.status.as_ref();
    if status
        .and_then(|st| st.error_code)
        .is_some_and(|c| policy.mfa_demanded_error_codes.contains(&c))
    {
        return false;
    }
    let satisfied_text =
        |t: Option<&str>| t.is_some_and(|t| contains_ci(&policy.mfa_satisfied_details, t));
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
                || d.authentication_method
                    .as_deref()
                    .is_some_and(|m| contains_ci(&policy.second_factor_methods, m)))
    })
}

fn is_mfa_step(requirement: &str) -> bool {
    requirement.eq_ignore_ascii_case("mfa")
        || contains_ci_bytes(requirement, "multi-factor")
        || contains_ci_bytes(requirement, "multifactor")
}

fn contains_ci_bytes(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
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
    .any(|v| contains_ci(&policy.partner_center_apps, v))
}

/// A tenant's day (or window) as `[readiness]` reads it.
pub struct DayFacts<'a> {
    /// The counters.
    pub counters: &'a DayCounters,
    /// Whether an enforced surface has a gap that day.
    pub enforced_gap: bool,
}

impl DayFacts<'_> {
    /// Reads a day attribute.
    pub fn get(&self, attr: Attr) -> Option<Val<'static>> {
        use Attr as A;
        let c = self.counters;
        let int = |n: u64| Some(Val::Int(i64::try_from(n).unwrap_or(i64::MAX)));
        match attr {
            A::DayFindings => int(c.findings),
            A::DayUncoveredLow => int(c.uncovered[0]),
            A::DayUncoveredMedium => int(c.uncovered[1]),
            A::DayUncoveredHigh => int(c.uncovered[2]),
            A::DayUncoveredCritical => int(c.uncovered[3]),
            A::DayEnforcedGap => Some(Val::Bool(self.enforced_gap)),
            A::DayPartnerRoleUsers => int(u64::from(c.partner_role_users)),
            A::DayAgentsRegistered => int(u64::from(c.partner_role_users_registered)),
            A::DayAgentsUnregistered => int(u64::from(
                c.partner_role_users
                    .saturating_sub(c.partner_role_users_registered),
            )),
            A::DayExceptionsOpen => int(u64::from(c.exceptions_open)),
            A::DayExceptionsOverdue => int(u64::from(c.exceptions_overdue)),
            A::DayExceptionsApproved => int(u64::from(c.exceptions_approved)),
            _ => None,
        }
    }
}

/// Whether `t` is at or after `from`.
pub fn at_or_after(t: EventTime, from: Option<EventTime>) -> bool {
    from.is_some_and(|f| t >= f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_attribute_in_order_with_a_unique_name() {
        let mut names = std::collections::BTreeSet::new();
        for (i, d) in ATTRS.iter().enumerate() {
            assert_eq!(d.attr as usize, i, "{} out of order", d.name);
            assert!(names.insert(d.name), "{} twice", d.name);
            assert_eq!(Attr::parse(d.name), Some(d.attr));
        }
    }
}
