//! Directory facts in Microsoft's own shapes: Entra audit records (an Azure Monitor
//! `AuditLogs` record, whose `properties` is a Graph `directoryAudit`, the bare Graph
//! object, and the 2018 `Audit` schema), Graph `userRegistrationDetails` rows, and GDAP
//! (`delegatedAdminRelationship`, `delegatedAdminAccessAssignment`).
//!
//! Real records differ in small ways (tests/realdata/directory/README.md lists them):
//! `result` is `"success"` or the integer `0`; `"Type"` stands for `"type"`;
//! `targetResource` for `targetResources`; `oldValue`/`newValue` are JSON encoded as
//! strings, or (in Graph's own examples and the 2018 schema) JSON as it is; `appId` is
//! `null`; times come with a space for the `T`. What is there is decoded; only a record
//! that cannot be placed (no time, no tenant, no activity) is a dead letter. These records
//! are rare beside sign-ins, so they are read through `serde_json::Value`, which takes
//! every variant above without a struct per variant.
//!
//! - [`read`](mod@read): the records read into the types below (`serde_json::Value`).
//! - [`audit`](mod@audit): what an audit record states (a role granted, a CA policy
//!   weakened, ...), read once when it is decoded.

mod audit;
mod lazy;
mod read;
#[cfg(test)]
mod tests;

pub use audit::decoded;
pub use read::{assignment, audit, audit_record, registration, relationship};

use super::time::EventTime;

/// Who did it: `initiatedBy.user` or `initiatedBy.app`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    /// The user's object id.
    pub user_id: Option<String>,
    /// The user's UPN.
    pub upn: Option<String>,
    /// The application's id (often `null` in real records).
    pub app_id: Option<String>,
    /// The service principal's object id.
    pub service_principal_id: Option<String>,
    /// A name to show: the user's UPN, else the app's display name, else an id.
    pub display: Option<String>,
}

/// One changed property of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modified {
    /// `displayName` (`Role.TemplateId`, `Group.DisplayName`, `ConditionalAccessPolicy`, ...).
    pub name: String,
    /// `oldValue`, decoded once: a JSON string's content (itself often JSON, as Entra
    /// encodes it), else the JSON text as written; `None` when absent or `null`.
    pub old: Option<String>,
    /// `newValue`, decoded as `old` is.
    pub new: Option<String>,
}

/// One target of an audit record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// `id`.
    pub id: Option<String>,
    /// `type` (or `Type`): `User`, `Group`, `Role`, `ServicePrincipal`, `Policy`, ...
    pub kind: Option<String>,
    /// `displayName`.
    pub display_name: Option<String>,
    /// `userPrincipalName`.
    pub upn: Option<String>,
    /// `modifiedProperties`.
    pub modified: Vec<Modified>,
}

/// An Entra audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryAudit {
    /// `id` (the Graph object's, or the record's `properties.id`), else derived.
    pub event_id: String,
    /// `activityDateTime`, else the record's `time`.
    pub time: EventTime,
    /// The tenant whose log holds it: the record's `tenantId`, else `--tenant`.
    pub tenant_id: String,
    /// `activityDisplayName`, else the record's `operationName`, as written.
    pub activity: String,
    /// `category` of the activity (`RoleManagement`, `GroupManagement`, `Policy`, ...).
    pub category: Option<String>,
    /// `loggedByService` (`Core Directory`, `PIM`, `Conditional Access`, ...).
    pub service: Option<String>,
    /// `result`: `success` or `0` is true, `failure` (or another number) false.
    pub success: Option<bool>,
    /// `initiatedBy`.
    pub initiated_by: Actor,
    /// `targetResources`.
    pub targets: Vec<Target>,
    /// `additionalDetails`, as key and value.
    pub details: Vec<(String, String)>,
    /// What it states, read once.
    pub facts: AuditFacts,
}

/// A Graph `delegatedAdminRelationship` (GDAP) as the partner's export gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GdapRelationship {
    /// Derived from the content: the same relationship is exported again as it changes.
    pub event_id: String,
    /// `lastModifiedDateTime`, else `activatedDateTime`, else `createdDateTime`.
    pub time: EventTime,
    /// The partner tenant: a `tenantId` the export added, else `--tenant`.
    pub tenant_id: String,
    /// `id`.
    pub relationship_id: String,
    /// `customer.tenantId`.
    pub customer_tenant_id: String,
    /// `status` (`active`, `expired`, `terminated`, ...), lower case.
    pub status: String,
    /// `activatedDateTime` (`null` or `""` before activation).
    pub activated: Option<EventTime>,
    /// `endDateTime`.
    pub ends: Option<EventTime>,
    /// `duration` (ISO 8601, `P730D`).
    pub duration: Option<String>,
    /// `autoExtendDuration` (`PT0S`: none).
    pub auto_extend: Option<String>,
    /// `accessDetails.unifiedRoles[].roleDefinitionId`, lower case.
    pub roles: Vec<String>,
}

/// A Graph `delegatedAdminAccessAssignment`: roles of a relationship given to a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GdapAssignment {
    /// Derived from the content.
    pub event_id: String,
    /// `lastModifiedDateTime`, else `createdDateTime`.
    pub time: EventTime,
    /// The partner tenant.
    pub tenant_id: String,
    /// `id`.
    pub assignment_id: String,
    /// The relationship, from the page's `@odata.context` when the export keeps it.
    pub relationship_id: Option<String>,
    /// `status`, lower case.
    pub status: String,
    /// `accessContainer.accessContainerId`.
    pub container_id: Option<String>,
    /// `accessDetails.unifiedRoles[].roleDefinitionId`, lower case.
    pub roles: Vec<String>,
}

/// A `userRegistrationDetails` row, as the registration fact it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationReport {
    /// Derived from the content.
    pub event_id: String,
    /// `lastUpdatedDateTime`.
    pub time: EventTime,
    /// `--tenant` (the report carries none).
    pub tenant_id: String,
    /// `id`: the user's object id.
    pub user_id: String,
    /// `userPrincipalName`.
    pub upn: Option<String>,
    /// `userType`.
    pub user_type: Option<String>,
    /// `isMfaCapable` where present (registered *and* allowed by policy), else
    /// `isMfaRegistered`.
    pub registered: bool,
    /// `methodsRegistered`.
    pub methods: Vec<String>,
}

/// A directory role granted or removed by an audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleChange {
    /// `Role.TemplateId` (or PIM's `TemplateId`), lower case, where the record gives it.
    pub template_id: Option<String>,
    /// `Role.WellKnownObjectName`, where given.
    pub well_known: Option<String>,
    /// `Role.DisplayName`, else the role target's `displayName`.
    pub name: Option<String>,
    /// An eligible assignment (PIM: usable only after activation).
    pub eligible: bool,
    /// The member's object id.
    pub member_id: Option<String>,
    /// The member's UPN (a user) or display name.
    pub member_name: Option<String>,
    /// The member is a user (not a service principal).
    pub member_is_user: bool,
}

impl RoleChange {
    /// The role as rules and state name it: the template id, else the well-known name,
    /// else the display name (Microsoft's records do not always carry the first).
    pub fn key(&self) -> Option<&str> {
        self.template_id
            .as_deref()
            .or(self.well_known.as_deref())
            .or(self.name.as_deref())
            .map(str::trim)
            .filter(|k| !k.is_empty())
    }
}

/// A group membership change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupChange {
    /// The group's display name.
    pub group: String,
    /// Added (else removed).
    pub added: bool,
    /// The member's object id.
    pub member_id: Option<String>,
    /// The member's UPN.
    pub member_upn: Option<String>,
}

/// What an audit record states, read once when it is decoded (the rules' attributes
/// borrow from here).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFacts {
    /// A directory role granted.
    pub role_granted: Option<RoleChange>,
    /// A directory role removed.
    pub role_removed: Option<RoleChange>,
    /// A group membership change.
    pub group: Option<GroupChange>,
    /// The per-user MFA requirement removed.
    pub mfa_requirement_removed: bool,
    /// A per-user MFA requirement set where there was none.
    pub mfa_requirement_set: bool,
    /// Security info deleted.
    pub security_info_deleted: bool,
    /// A Conditional Access policy changed.
    pub ca: Option<CaChange>,
    /// The target user's object id.
    pub target_user_id: Option<String>,
    /// The target: a user's UPN, else a display name, else an id.
    pub target: Option<String>,
}

impl AuditFacts {
    /// The user whose state the record may change (and so add to a tenant's users): a
    /// user granted or removed a directory role, else a group's member, else the target
    /// of a per-user MFA change.
    pub fn state_user(&self) -> Option<&str> {
        let role = [&self.role_granted, &self.role_removed]
            .into_iter()
            .flatten()
            .find(|r| r.member_is_user)
            .and_then(|r| r.member_id.as_deref());
        role.or_else(|| self.group.as_ref()?.member_id.as_deref())
            .or_else(|| {
                (self.mfa_requirement_removed || self.mfa_requirement_set)
                    .then_some(self.target_user_id.as_deref())
                    .flatten()
            })
            .filter(|u| !u.trim().is_empty())
    }
}

/// A Conditional Access policy changed by an audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaChange {
    /// The policy's `displayName`.
    pub name: String,
    /// It was enabled and required MFA before.
    pub required_mfa_before: bool,
    /// It is enabled and requires MFA after (false when deleted).
    pub requires_mfa_after: bool,
    /// What changed, for a detail: `deleted`, `disabled`, `report-only`, `MFA control removed`.
    pub change: &'static str,
}

/// The categories of an Azure Monitor record that are sign-ins.
pub const SIGN_IN_CATEGORIES: [&str; 6] = [
    "SignInLogs",
    "NonInteractiveUserSignInLogs",
    "ServicePrincipalSignInLogs",
    "MicrosoftServicePrincipalSignInLogs",
    "ManagedIdentitySignInLogs",
    "ADFSSignInLogs",
];

/// The categories an Entra diagnostic setting sends besides sign-ins and audit records:
/// the label of `mfa_audit_records_skipped_total{category}` (anything else is `other`,
/// so a record cannot mint a series).
pub const OTHER_CATEGORIES: [&str; 12] = [
    "ProvisioningLogs",
    "RiskyUsers",
    "UserRiskEvents",
    "RiskyServicePrincipals",
    "ServicePrincipalRiskEvents",
    "MicrosoftGraphActivityLogs",
    "NetworkAccessTrafficLogs",
    "EnrichedOffice365AuditLogs",
    "RemoteNetworkHealthLogs",
    "NetworkAccessAlerts",
    "B2CRequestLogs",
    "NetworkAccessConnectionEvents",
];

/// What an Azure Monitor record's `category` makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// A sign-in (or no category at all: a sign-in, as before).
    SignIn,
    /// An audit record (`AuditLogs`, or `Audit` in the 2018 schema).
    Audit,
    /// Anything else: counted, not judged.
    Other(&'static str),
}

/// The category of a record, compared without case.
pub fn category(c: Option<&str>) -> Category {
    let Some(c) = c.map(str::trim).filter(|c| !c.is_empty()) else {
        return Category::SignIn;
    };
    if SIGN_IN_CATEGORIES.iter().any(|s| s.eq_ignore_ascii_case(c)) {
        Category::SignIn
    } else if c.eq_ignore_ascii_case("AuditLogs") || c.eq_ignore_ascii_case("Audit") {
        Category::Audit
    } else {
        Category::Other(
            OTHER_CATEGORIES
                .iter()
                .find(|s| s.eq_ignore_ascii_case(c))
                .copied()
                .unwrap_or("other"),
        )
    }
}
