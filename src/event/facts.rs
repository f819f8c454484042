//! The vocabulary of events: partner roles, and one type per input kind, each borrowing
//! its text from the input document.

use super::time::EventTime;
use super::token::TokenInfo;
use super::wire::{SignInProps, Text};
use std::fmt;
use std::sync::Arc;

/// A partner role (EVENTS.md `partner_role_assignment.role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Admin agent.
    AdminAgent,
    /// Sales agent.
    SalesAgent,
    /// Helpdesk agent.
    HelpdeskAgent,
    /// Global admin (a partner role from the 2020 version on).
    GlobalAdmin,
    /// Billing admin (a partner role from the 2020 version on).
    BillingAdmin,
    /// Security admin (a partner role on the current "Mandating MFA for your partner
    /// tenant" page, where the 2020 text had global admin).
    SecurityAdmin,
}

impl Role {
    /// Every role, in a fixed order.
    pub const ALL: [Role; 6] = [
        Role::AdminAgent,
        Role::SalesAgent,
        Role::HelpdeskAgent,
        Role::GlobalAdmin,
        Role::BillingAdmin,
        Role::SecurityAdmin,
    ];

    /// The name used in events and policy files.
    pub fn name(self) -> &'static str {
        match self {
            Role::AdminAgent => "AdminAgent",
            Role::SalesAgent => "SalesAgent",
            Role::HelpdeskAgent => "HelpdeskAgent",
            Role::GlobalAdmin => "GlobalAdmin",
            Role::BillingAdmin => "BillingAdmin",
            Role::SecurityAdmin => "SecurityAdmin",
        }
    }

    /// Parses a role name, ignoring case, blanks and `_`/`-`/` ` between words
    /// (`admin_agent`, `Admin Agent`, `AdminAgent`).
    pub fn parse(s: &str) -> Option<Role> {
        let key: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Role::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(&key))
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A small set of roles.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct RoleSet(u8);

impl RoleSet {
    /// Adds a role.
    pub fn insert(&mut self, r: Role) {
        self.0 |= r.bit();
    }
    /// Removes a role.
    pub fn remove(&mut self, r: Role) {
        self.0 &= !r.bit();
    }
    /// Holds `r`.
    pub fn contains(self, r: Role) -> bool {
        self.0 & r.bit() != 0
    }
    /// Holds none.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Shares a role with `other`.
    pub fn intersects(self, other: RoleSet) -> bool {
        self.0 & other.0 != 0
    }
    /// The roles held, in [`Role::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.contains(*r))
    }
}

impl FromIterator<Role> for RoleSet {
    fn from_iter<I: IntoIterator<Item = Role>>(iter: I) -> Self {
        let mut s = RoleSet::default();
        for r in iter {
            s.insert(r);
        }
        s
    }
}

/// A sign-in record (Azure Monitor record or Graph `signIn`).
pub struct SignIn<'a> {
    /// `properties.id`, or derived from the content.
    pub event_id: Text<'a>,
    /// `createdDateTime`, else the record's `time`.
    pub time: EventTime,
    /// The partner tenant: `homeTenantId`, else the record's `tenantId`.
    pub tenant_id: Text<'a>,
    /// The record's `resultType` (success is `0`).
    pub result_type: Option<Text<'a>>,
    /// The record's `category` (`SignInLogs`, `NonInteractiveUserSignInLogs`, ...);
    /// `None` for a Graph `signIn`.
    pub category: Option<Text<'a>>,
    /// The sign-in fields.
    pub props: SignInProps<'a>,
}

impl SignIn<'_> {
    /// Succeeded (`status.errorCode = 0`, else `resultType`: `0` or `Success`, as
    /// Microsoft's 2019 schema wrote it; another number or `Failure` is a failure);
    /// `None` when unknown or unreadable (never a guess from `resultSignature`).
    pub fn succeeded(&self) -> Option<bool> {
        match self.props.status.as_ref().and_then(|s| s.error_code) {
            Some(code) => Some(code == 0),
            None => {
                let r = self.result_type.as_deref()?.trim();
                if r.eq_ignore_ascii_case("success") {
                    Some(true)
                } else if r.eq_ignore_ascii_case("failure") {
                    Some(false)
                } else {
                    r.parse::<i64>().ok().map(|code| code == 0)
                }
            }
        }
    }

    /// Whose sign-in: `workload` for the service-principal and managed-identity
    /// categories (or a record with a `servicePrincipalId` and no user), `adfs` for AD FS
    /// sign-ins Entra forwards, else `user`.
    pub fn identity(&self) -> &'static str {
        let category = self.category.as_deref().map(str::trim).unwrap_or("");
        let is = |c: &str| category.eq_ignore_ascii_case(c);
        if is("ServicePrincipalSignInLogs")
            || is("MicrosoftServicePrincipalSignInLogs")
            || is("ManagedIdentitySignInLogs")
        {
            return "workload";
        }
        if is("ADFSSignInLogs") {
            return "adfs";
        }
        let has = |v: &Option<Text<'_>>| v.as_deref().is_some_and(|x| !x.trim().is_empty());
        if has(&self.props.service_principal_id) && !has(&self.props.user_id) {
            return "workload";
        }
        "user"
    }

    /// The customer tenant of a sign-in into another tenant than the home one.
    pub fn resource_tenant_if_foreign(&self) -> Option<&str> {
        let home = self.props.home_tenant_id.as_deref()?;
        let res = self.props.resource_tenant_id.as_deref()?;
        (!home.eq_ignore_ascii_case(res)).then_some(res)
    }
}

/// Who called the Partner Center API.
pub enum ApiCaller<'a> {
    /// The bearer token the gateway saw (decoded; the raw token is gone).
    Token(Arc<TokenInfo>),
    /// No token: the `partnerRequests` report's own fields.
    Report {
        /// `objectId`.
        object_id: Text<'a>,
        /// `upn`.
        upn: Option<Text<'a>>,
        /// `mfaCompliant`; `None` when the row does not say.
        mfa_compliant: Option<bool>,
    },
    /// No token and no user: an app-only call.
    AppOnly,
}

/// A Partner Center API request.
pub struct ApiRequest<'a> {
    /// `requestId`, or derived.
    pub event_id: Text<'a>,
    /// `requestDateTime`.
    pub time: EventTime,
    /// `tenantId`, else the token's `tid`.
    pub tenant_id: String,
    /// HTTP status answered.
    pub status_code: Option<i64>,
    /// `operationName`.
    pub operation_name: Option<Text<'a>>,
    /// `applicationId`, else the token's `appid`/`azp`.
    pub application_id: Option<String>,
    /// The caller.
    pub caller: ApiCaller<'a>,
    /// `errorCode`: Partner Center's error code in the response.
    pub error_code: Option<Text<'a>>,
    /// `isMfaCompliant`: the MFA verdict the API returned.
    pub mfa_verdict: Option<bool>,
}

/// A Partner Center dashboard request.
pub struct DashboardRequest<'a> {
    /// `requestId`, or derived.
    pub event_id: Text<'a>,
    /// `time`.
    pub time: EventTime,
    /// `tenantId`.
    pub tenant_id: Text<'a>,
    /// `userId`.
    pub user_id: Option<Text<'a>>,
    /// `upn`.
    pub upn: Option<Text<'a>>,
    /// `sessionId`.
    pub session_id: Option<Text<'a>>,
    /// `url`.
    pub url: Text<'a>,
    /// `statusCode`.
    pub status_code: Option<i64>,
    /// `roles` as sent (unknown names are skipped); empty when absent.
    pub roles: RoleSet,
    /// `sessionAmr`, when the front end knows it.
    pub session_amr: Option<Vec<Text<'a>>>,
}

/// Add or remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleAction {
    /// The user gains the role.
    Add,
    /// The user loses it.
    Remove,
}

/// A `partner_role_assignment` fact.
pub struct RoleAssignment<'a> {
    /// Derived from the content.
    pub event_id: Text<'a>,
    /// `time`.
    pub time: EventTime,
    /// `tenantId`.
    pub tenant_id: Text<'a>,
    /// `userId`.
    pub user_id: Text<'a>,
    /// `upn`.
    pub upn: Option<Text<'a>>,
    /// `userType`.
    pub user_type: Option<Text<'a>>,
    /// `role`.
    pub role: Role,
    /// `action`.
    pub action: RoleAction,
}

/// An `mfa_registration` fact (a Graph `userRegistrationDetails` row).
pub struct Registration<'a> {
    /// Derived from the content.
    pub event_id: Text<'a>,
    /// `time`.
    pub time: EventTime,
    /// `tenantId`.
    pub tenant_id: Text<'a>,
    /// `userId`.
    pub user_id: Text<'a>,
    /// `isMfaRegistered`.
    pub registered: bool,
    /// `methodsRegistered`.
    pub methods: Vec<Text<'a>>,
}

/// A technical exception's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ExceptionStatus {
    /// Asked for, not yet answered.
    Requested,
    /// Approved: may cover findings.
    Approved,
    /// Rejected.
    Rejected,
    /// Expired.
    Expired,
}

impl ExceptionStatus {
    /// Parses a status, ignoring case and blanks.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "requested" => Some(Self::Requested),
            "approved" => Some(Self::Approved),
            "rejected" => Some(Self::Rejected),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }
}

/// A `technical_exception` fact.
pub struct TechnicalException<'a> {
    /// Derived from the content.
    pub event_id: Text<'a>,
    /// `time`: when the status took effect.
    pub time: EventTime,
    /// `tenantId`.
    pub tenant_id: Text<'a>,
    /// `exceptionId`.
    pub exception_id: Text<'a>,
    /// `status`.
    pub status: ExceptionStatus,
    /// `reason` (a reason id of the policy file).
    pub reason: Text<'a>,
    /// `users`: user ids or UPNs it is limited to; `None` covers the whole tenant.
    pub users: Option<Vec<Text<'a>>>,
    /// `expiresAt`.
    pub expires_at: Option<EventTime>,
}

/// A `policy_override` fact: a tenant moves one surface's enforcement date of one
/// policy (Microsoft lets a tenant postpone a phase of Azure's mandatory MFA). Whether the
/// policy and surface exist and allow that date is the pipeline's check: it knows the
/// policies.
pub struct PolicyOverride<'a> {
    /// Derived from the content.
    pub event_id: Text<'a>,
    /// `time`: from when the override holds.
    pub time: EventTime,
    /// `tenantId`.
    pub tenant_id: Text<'a>,
    /// `policy`: the policy version it applies to.
    pub policy: Text<'a>,
    /// `surface`: the surface of that policy.
    pub surface: Text<'a>,
    /// `enforcedFrom`: the surface's new enforcement date for this tenant.
    pub enforced_from: EventTime,
}
