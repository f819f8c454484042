//! The attributes a rule's condition can read: each has a name, a type and the source
//! field(s) it is read from. An attribute the event does not carry is *absent*, which
//! makes a test on it *unknown* and the rule *not applicable* (never an error).
//!
//! Reading an attribute ([`super::facts`]) allocates nothing: values borrow from the
//! event, the state or the policy. `mfa-audit policy attributes` prints this table;
//! `docs/rules.md` explains it.

use crate::event::wire::{RequirementPolicy, Text};
use crate::event::{ApiCaller, RoleSet};
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
    EventKind = "event.kind", Text, Event, "the input kind: `sign_in`, `partner_api_request`, `dashboard_request`, `partner_role_assignment`, `mfa_registration`, `technical_exception`, `policy_override`, `directory_audit`, `gdap_relationship`, `gdap_access_assignment`";
    RuleEnforced = "rule.enforced", Bool, Event, "the rule's surface is enforced at the event's time (`[[surfaces]] enforced_from`, or the tenant's own date from a `policy_override`)";
    RuleExcepted = "rule.excepted", Bool, Event, "an approved technical exception whose reason covers this rule covers this user at the event's time (state)";

    SignInCategory = "sign_in.category", Text, Event, "record `category` (`SignInLogs`, `NonInteractiveUserSignInLogs`, `ServicePrincipalSignInLogs`, `ManagedIdentitySignInLogs`, ...); absent for a Graph `signIn`";
    SignInIdentity = "sign_in.identity", Text, Event, "`workload` (the service-principal and managed-identity categories, or a `servicePrincipalId` and no `userId`), `adfs` (`ADFSSignInLogs`: AD FS sign-ins Entra forwards) or `user`";
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
    SignInGdapActive = "sign_in.gdap_active", Bool, Event, "for a sign-in into a customer tenant: a GDAP relationship with that customer was active at the sign-in's time (its last exported `status` is `active`, and the time is between `activatedDateTime` and `endDateTime`) (state); absent when the partner has exported no relationship";
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
    SignInMfaSkipped = "sign_in.mfa_skipped", Bool, Event, "`status.additionalDetails` or a step's `authenticationStepResultDetail` is in `[mfa] skipped_details` (the requirement was skipped, e.g. by IP or location: no MFA performed)";
    SignInRequirementProviders = "sign_in.requirement_providers", List, Event, "`authenticationRequirementPolicies[].requirementProvider` (`enforcedForCspAdmins`, `multiConditionalAccess`, `securityDefaults`, `user`, ...)";
    SignInIp = "sign_in.ip", Text, Event, "`ipAddress`";
    SignInUpn = "sign_in.upn", Text, Event, "`userPrincipalName`";
    SignInCountry = "sign_in.country", Text, Event, "`location.countryOrRegion` (two letters, `US`)";
    SignInCity = "sign_in.city", Text, Event, "`location.city`";
    SignInState = "sign_in.state", Text, Event, "`location.state`";
    SignInRiskDuring = "sign_in.risk_level_during", Text, Event, "`riskLevelDuringSignIn` (`none`, `low`, `medium`, `high`, `hidden`)";
    SignInRiskAggregated = "sign_in.risk_level_aggregated", Text, Event, "`riskLevelAggregated`";
    SignInRiskState = "sign_in.risk_state", Text, Event, "`riskState` (`none`, `atRisk`, `confirmedCompromised`, `dismissed`, `remediated`, ...)";
    SignInRiskDetail = "sign_in.risk_detail", Text, Event, "`riskDetail`";
    SignInRiskEventTypes = "sign_in.risk_event_types", List, Event, "`riskEventTypes_v2`, else `riskEventTypes` (`unfamiliarFeatures`, `anonymizedIPAddress`, ...)";
    SignInDeviceTrustType = "sign_in.device_trust_type", Text, Event, "`deviceDetail.trustType` (`Azure AD joined`, `Hybrid Azure AD joined`, `Azure AD registered`)";
    SignInDeviceId = "sign_in.device_id", Text, Event, "`deviceDetail.deviceId`";
    SignInDeviceOs = "sign_in.device_os", Text, Event, "`deviceDetail.operatingSystem`";
    SignInDeviceBrowser = "sign_in.device_browser", Text, Event, "`deviceDetail.browser`";
    SignInTransferMethod = "sign_in.original_transfer_method", Text, Event, "`originalTransferMethod` (`deviceCodeFlow`, `authenticationTransfer`, `none`)";
    SignInSessionId = "sign_in.session_id", Text, Event, "`sessionId`";
    SignInStepResultDetails = "sign_in.step_result_details", List, Event, "every `authenticationDetails[].authenticationStepResultDetail`; absent without `authenticationDetails`";
    SignInCaApplied = "sign_in.ca_policies_applied", List, Event, "`displayName` of each `appliedConditionalAccessPolicies` entry whose `result` is `success` or `failure`";
    SignInCaNotApplied = "sign_in.ca_policies_not_applied", List, Event, "`displayName` of each entry whose `result` is `notApplied`";
    SignInCaMfaNotApplied = "sign_in.ca_mfa_not_applied", Bool, Event, "an `appliedConditionalAccessPolicies` entry whose `enforcedGrantControls` hold `Mfa` (any case) or an authentication strength (`authenticationStrength`, or a control naming one) has `result` `notApplied`; absent when the record carries no such list (Graph `signIn` and `appliedConditionalAccessPolicy` resources)";
    SignInPartnerCenter = "sign_in.partner_center", Bool, Event, "`appId`, `appDisplayName`, `resourceId` or `resourceDisplayName` is in `[session] partner_center_apps`";

    ApiStatus = "api.status", Int, Event, "`statusCode`";
    ApiStatusText = "api.status_text", Text, Event, "`status 200`, or `status unknown` (for details)";
    ApiOperation = "api.operation", Text, Event, "`operationName` (`GET /v1/customers/{id}`)";
    ApiMethod = "api.method", Text, Event, "the HTTP method: the first word of `operationName`";
    ApiAppId = "api.app_id", Text, Event, "`applicationId`, else the token's `appid`/`azp`";
    ApiCallerKind = "api.caller", Text, Event, "`token` (a bearer token), `report` (a `partnerRequests` row: `objectId`, no token) or `app_only` (neither)";
    ApiAppUser = "api.app_user", Bool, Event, "an App+User call: a token with `scp` (or `idtyp` = `user`), or a report row";
    ApiMfa = "api.mfa", Bool, Event, "the token's `amr` holds the exact `mfa` (`ngcmfa` is not `mfa`); a report row's `mfaCompliant`; absent for app-only calls";
    ApiErrorCode = "api.error_code", Text, Event, "`errorCode` of the response (a number or text: Partner Center's error code, e.g. `900421`)";
    ApiMfaVerdict = "api.mfa_verdict", Bool, Event, "`isMfaCompliant`: the MFA verdict the API returned in its response";
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

    AuditActivity = "audit.activity", Text, Event, "`activityDisplayName` of an Entra audit record (else the record's `operationName`), as written";
    AuditCategory = "audit.category", Text, Event, "the activity's `category` (`RoleManagement`, `GroupManagement`, `UserManagement`, `Policy`, ...)";
    AuditService = "audit.service", Text, Event, "`loggedByService` (`Core Directory`, `PIM`, `Conditional Access`, `Authentication Methods`, ...)";
    AuditSuccess = "audit.success", Bool, Event, "`result`: `success` or `0` (else the record's `resultType`)";
    AuditActor = "audit.actor", Text, Event, "`initiatedBy`: the user's UPN, else the app's name, else an id";
    AuditTarget = "audit.target", Text, Event, "the target user's UPN, else the first target's name or id (the event's user, for `user.*`, is the target user)";
    AuditRoleGranted = "audit.role_granted", Text, Event, "the template id (lower case) of a directory role granted: `Add member to role`, `Add eligible member to role`, PIM's completed grants and activations, never a request or a failed record; from `Role.TemplateId`, else PIM's `TemplateId`; absent for other records";
    AuditRoleRemoved = "audit.role_removed", Text, Event, "likewise, of a role removed (`Remove member from role`, `Remove eligible member from role`)";
    AuditRoleName = "audit.role_name", Text, Event, "the name of the role granted or removed (`Role.DisplayName`, else the role target's `displayName`)";
    AuditRoleWellKnown = "audit.role_well_known", Text, Event, "`Role.WellKnownObjectName` of the role granted or removed";
    AuditRoleEligible = "audit.role_eligible", Bool, Event, "the grant or removal is of an eligible assignment";
    AuditRoleToUser = "audit.role_to_user", Bool, Event, "the role's member is a user, not a service principal";
    AuditGroup = "audit.group", Text, Event, "the group of `Add member to group` / `Remove member from group` (`Group.DisplayName`, else the group target's name)";
    AuditGroupAdded = "audit.group_added", Bool, Event, "that change added the member (false: removed)";
    AuditMfaRemoved = "audit.mfa_requirement_removed", Bool, Event, "the per-user MFA requirement removed: `Disable Strong Authentication`, or `StrongAuthenticationRequirement` going to none; false for other audit records";
    AuditSecurityInfoDeleted = "audit.security_info_deleted", Bool, Event, "`User deleted security info` or `Admin deleted security info`, not failed";
    AuditCaMfaWeakened = "audit.ca_mfa_weakened", Bool, Event, "a Conditional Access policy that was enabled and required MFA (`grantControls.builtInControls` holds `mfa`, any case, or an authentication strength) is deleted, disabled, set to report-only or loses that control (`Update`/`Delete conditional access policy`; the Core Directory `Update policy` twin is not read); absent for other records";
    AuditCaPolicy = "audit.ca_policy", Text, Event, "that policy's `displayName`";
    AuditCaChange = "audit.ca_change", Text, Event, "what changed: `deleted`, `disabled`, `set to report-only`, `MFA control removed`";

    GdapStatus = "gdap.status", Text, Event, "`status` of a GDAP relationship or access assignment (`active`, `expired`, `terminated`, ...)";
    GdapCustomer = "gdap.customer_tenant_id", Text, Event, "`customer.tenantId` of a relationship";
    GdapRelationship = "gdap.relationship_id", Text, Event, "the relationship's `id` (an access assignment's, from its page's `@odata.context`)";
    GdapRoles = "gdap.roles", List, Event, "`accessDetails.unifiedRoles[].roleDefinitionId`, lower case";
    GdapActive = "gdap.active", Bool, Event, "`status` is `active` and, for a relationship, the event's time is between `activatedDateTime` and `endDateTime` (where given)";

    UserRoles = "user.roles", List, Event, "the roles the event's user holds (state, before the event)";
    UserPartnerRole = "user.partner_role", Bool, Event, "the user holds one of the policy's `partner_roles` (state)";
    UserRegistered = "user.registered", Bool, Event, "the user's MFA registration (state); absent until a registration row says";
    UserGuest = "user.guest", Bool, Event, "the user is a guest: `userType` = `Guest` of the event, else as last seen (state); absent when never seen";
    UserDirectoryRoles = "user.directory_roles", List, Event, "the directory roles the event's user holds, from audit records (state, before the event): each as `audit.role_granted` names it (template id, else well-known name, else display name); test with `contains = \"<list name>\"`";
    UserEligibleRoles = "user.eligible_roles", List, Event, "likewise, the directory roles the user is eligible for (PIM; usable once activated)";
    UserPerUserMfa = "user.per_user_mfa", Bool, Event, "the user's per-user MFA requirement as the latest audit record that changed it left it (state, before the event); absent until one did";
    UserLatestSuccessMfa = "user.latest_success_mfa", Bool, Event, "the user's latest successful sign-in satisfied MFA (this event, when it is one; else state); absent before any";

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
                | Attr::UserDirectoryRoles
                | Attr::UserEligibleRoles
                | Attr::UserPerUserMfa
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
