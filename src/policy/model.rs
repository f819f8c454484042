//! A policy version, compiled from its file: what the evaluator reads.

use crate::event::time::EventTime;
use crate::event::RoleSet;
use globset::GlobSet;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// An enforced surface (POLICY.md, "The three enforced surfaces", plus sign-ins and
/// registration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Surface {
    /// Partner Center API.
    Api,
    /// Partner Center dashboard.
    Dashboard,
    /// Delegated administration into customer tenants.
    DelegatedAdmin,
    /// Sign-ins of partner users.
    SignIn,
    /// MFA registration (a readiness signal, never enforced).
    Registration,
}

impl Surface {
    /// Every surface.
    pub const ALL: [Surface; 5] = [
        Surface::Api,
        Surface::Dashboard,
        Surface::DelegatedAdmin,
        Surface::SignIn,
        Surface::Registration,
    ];

    /// The name in files and rows.
    pub fn name(self) -> &'static str {
        match self {
            Surface::Api => "api",
            Surface::Dashboard => "dashboard",
            Surface::DelegatedAdmin => "delegated_admin",
            Surface::SignIn => "sign_in",
            Surface::Registration => "registration",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Surface> {
        Surface::ALL.into_iter().find(|x| x.name() == s)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Surface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A finding's severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The name in files and rows.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// The closed set of conditions a rule can name in its `when` key. The evaluator knows how
/// to test each; the file says which rule id, severity and surface it reports under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Condition {
    /// App+User API call whose token's `amr` lacks the exact `mfa`.
    ApiAppUserWithoutMfa,
    /// The same, answered 2xx after the API's enforcement date.
    ApiAppUserWithoutMfaServed,
    /// An App+User API token from the password flow (`amr` only `pwd`, public client).
    ApiPasswordFlowToken,
    /// An API token whose signature fails the `--jwks` key set.
    ApiTokenSignatureInvalid,
    /// A successful sign-in with `authenticationProtocol = ropc`.
    SignInPasswordFlow,
    /// A successful sign-in with a client app outside the modern list.
    SignInLegacyProtocol,
    /// A successful federated sign-in whose MFA is not satisfied.
    SignInFederatedMfaNotRecognised,
    /// A successful sign-in into a customer tenant without MFA.
    DelegatedAdminWithoutMfa,
    /// A protected dashboard page served to a session that never completed MFA.
    DashboardPageWithoutMfa,
    /// A protected dashboard page served to roles the matrix does not give access.
    DashboardRoleNotAllowed,
    /// A partner-role user known not to have registered MFA.
    PartnerRoleUserUnregistered,
}

impl Condition {
    /// Every condition.
    pub const ALL: [Condition; 11] = [
        Condition::ApiAppUserWithoutMfa,
        Condition::ApiAppUserWithoutMfaServed,
        Condition::ApiPasswordFlowToken,
        Condition::ApiTokenSignatureInvalid,
        Condition::SignInPasswordFlow,
        Condition::SignInLegacyProtocol,
        Condition::SignInFederatedMfaNotRecognised,
        Condition::DelegatedAdminWithoutMfa,
        Condition::DashboardPageWithoutMfa,
        Condition::DashboardRoleNotAllowed,
        Condition::PartnerRoleUserUnregistered,
    ];

    /// The name a policy file uses in `when`.
    pub fn name(self) -> &'static str {
        match self {
            Condition::ApiAppUserWithoutMfa => "api_app_user_without_mfa",
            Condition::ApiAppUserWithoutMfaServed => {
                "api_app_user_without_mfa_served_when_enforced"
            }
            Condition::ApiPasswordFlowToken => "api_password_flow_token",
            Condition::ApiTokenSignatureInvalid => "api_token_signature_invalid",
            Condition::SignInPasswordFlow => "sign_in_password_flow",
            Condition::SignInLegacyProtocol => "sign_in_legacy_protocol",
            Condition::SignInFederatedMfaNotRecognised => "sign_in_federated_mfa_not_recognised",
            Condition::DelegatedAdminWithoutMfa => "delegated_admin_without_mfa",
            Condition::DashboardPageWithoutMfa => "dashboard_protected_page_without_mfa",
            Condition::DashboardRoleNotAllowed => "dashboard_role_not_allowed",
            Condition::PartnerRoleUserUnregistered => "partner_role_user_unregistered",
        }
    }

    /// Parses a `when` name.
    pub fn parse(s: &str) -> Option<Condition> {
        Condition::ALL.into_iter().find(|c| c.name() == s)
    }

    /// The surface whose events this condition tests.
    pub fn surface(self) -> Surface {
        match self {
            Condition::ApiAppUserWithoutMfa
            | Condition::ApiAppUserWithoutMfaServed
            | Condition::ApiPasswordFlowToken
            | Condition::ApiTokenSignatureInvalid => Surface::Api,
            Condition::SignInPasswordFlow
            | Condition::SignInLegacyProtocol
            | Condition::SignInFederatedMfaNotRecognised => Surface::SignIn,
            Condition::DelegatedAdminWithoutMfa => Surface::DelegatedAdmin,
            Condition::DashboardPageWithoutMfa | Condition::DashboardRoleNotAllowed => {
                Surface::Dashboard
            }
            Condition::PartnerRoleUserUnregistered => Surface::Registration,
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// One rule of the catalogue.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The stable rule id (`API_APP_USER_NO_MFA`).
    pub id: Arc<str>,
    /// What it tests.
    pub condition: Condition,
    /// The surface (decides the enforcement date).
    pub surface: Surface,
    /// Its severity.
    pub severity: Severity,
    /// One line for people.
    pub summary: String,
}

/// A protected dashboard page and the roles the matrix lets in.
#[derive(Debug, Clone)]
pub struct Page {
    /// Short id (`customers`).
    pub id: String,
    /// Name for people.
    pub name: String,
    /// URL patterns as written (lower-cased).
    pub urls: Vec<String>,
    /// The compiled patterns.
    pub(crate) matcher: GlobSet,
    /// Roles allowed.
    pub roles: RoleSet,
}

/// A technical-exception reason.
#[derive(Debug, Clone)]
pub struct ExceptionReason {
    /// Valid for this version: only a valid reason may cover findings.
    pub valid: bool,
    /// The rule ids it covers.
    pub covers: Vec<Arc<str>>,
    /// Name for people.
    pub name: String,
}

/// A compiled, validated policy version.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The version id (`partner-mfa-2020-05`).
    pub version: String,
    /// Title for people.
    pub title: String,
    /// Enforcement start per surface (`None`: never enforced, readiness only).
    pub(crate) enforced_from: [Option<EventTime>; 5],
    /// Which roles are partner roles in this version.
    pub partner_roles: RoleSet,
    /// Modern client apps (`clientAppUsed`), lower-cased.
    pub modern_clients: Vec<String>,
    /// Protected dashboard pages.
    pub pages: Vec<Page>,
    /// Rules by condition.
    pub(crate) by_condition: [Option<Rule>; 11],
    /// Every rule, in file order.
    pub rules: Vec<Rule>,
    /// How long an interactive Partner Center sign-in stands for a dashboard session.
    pub session_max_age_secs: i64,
    /// App ids / display names of Partner Center sign-ins, lower-cased.
    pub partner_center_apps: Vec<String>,
    /// `status.additionalDetails` / step result texts that mean MFA was satisfied.
    pub mfa_satisfied_details: Vec<String>,
    /// `authenticationMethod` values that are a second factor, lower-cased.
    pub second_factor_methods: Vec<String>,
    /// Error codes meaning MFA (or its registration) was demanded, not satisfied.
    pub mfa_demanded_error_codes: Vec<i64>,
    /// Business days Microsoft takes to answer an exception request.
    pub exception_response_business_days: i64,
    /// Exception reasons by id.
    pub exception_reasons: BTreeMap<String, ExceptionReason>,
}

impl Policy {
    /// The rule for a condition, when this version has one.
    pub fn rule(&self, c: Condition) -> Option<&Rule> {
        self.by_condition.get(c.index()).and_then(Option::as_ref)
    }

    /// The surface's enforcement start.
    pub fn enforced_from(&self, s: Surface) -> Option<EventTime> {
        self.enforced_from.get(s.index()).copied().flatten()
    }

    /// Whether `t` falls at or after the surface's enforcement start.
    pub fn is_enforced(&self, s: Surface, t: EventTime) -> bool {
        self.enforced_from(s).is_some_and(|from| t >= from)
    }

    /// The protected page a URL falls under (first match in file order).
    pub fn protected_page(&self, url: &str) -> Option<&Page> {
        let normal = normalise_url(url);
        self.pages.iter().find(|p| p.matcher.is_match(&*normal))
    }

    /// Whether `client_app` is modern.
    pub fn is_modern_client(&self, client_app: &str) -> bool {
        let c = client_app.trim();
        self.modern_clients
            .iter()
            .any(|m| m.eq_ignore_ascii_case(c))
    }

    /// Whether an exception reason covers a rule id in this version.
    pub fn reason_covers(&self, reason: &str, rule_id: &str) -> bool {
        self.exception_reasons
            .get(&reason.trim().to_ascii_lowercase())
            .is_some_and(|r| r.valid && r.covers.iter().any(|c| &**c == rule_id))
    }
}

/// Lower-cases a URL and makes a path-only one absolute on `partner.microsoft.com`
/// (without allocating when it already is both).
pub(crate) fn normalise_url(url: &str) -> std::borrow::Cow<'_, str> {
    let u = url.trim();
    let lower = !u.bytes().any(|b| b.is_ascii_uppercase());
    match (u.starts_with('/'), lower) {
        (false, true) => std::borrow::Cow::Borrowed(u),
        (false, false) => std::borrow::Cow::Owned(u.to_ascii_lowercase()),
        (true, _) => std::borrow::Cow::Owned(format!(
            "https://partner.microsoft.com{}",
            u.to_ascii_lowercase()
        )),
    }
}
