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

use super::decode::{derived_id, required_time};
use super::reason::{BadDocument, Reason};
use super::time::EventTime;
use serde_json::{Map, Value};

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
    /// Security info deleted.
    pub security_info_deleted: bool,
    /// A Conditional Access policy changed.
    pub ca: Option<CaChange>,
    /// The target user's object id.
    pub target_user_id: Option<String>,
    /// The target: a user's UPN, else a display name, else an id.
    pub target: Option<String>,
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

/// A JSON value a modified property holds as text (`"\"Global Administrator\""`, `"[]"`):
/// decoded once; the text itself when it is not JSON.
pub fn decoded(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// Text of a decoded value: a string's content, else the JSON text.
fn decoded_text(text: &str) -> Option<String> {
    match decoded(text) {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Null => None,
        Value::Array(a) if a.is_empty() => None,
        other => Some(other.to_string()),
    }
}

/// Whether an enabled Conditional Access policy (Graph's shape) requires MFA: a
/// `grantControls.builtInControls` entry `mfa` in any case, or an authentication strength.
fn requires_mfa(policy: &Value) -> bool {
    let enabled = policy
        .get("state")
        .and_then(Value::as_str)
        .is_some_and(|s| s.eq_ignore_ascii_case("enabled"));
    let grant = policy.get("grantControls");
    let mfa = grant
        .and_then(|g| g.get("builtInControls"))
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|x| x.as_str().is_some_and(|x| x.eq_ignore_ascii_case("mfa")))
        });
    let strength = grant
        .and_then(|g| g.get("authenticationStrength"))
        .is_some_and(|s| !s.is_null());
    enabled && (mfa || strength)
}

impl DirectoryAudit {
    /// The activity is one of `names`: compared without case, a trailing `.` (the 2018
    /// schema's) and doubled blanks.
    pub fn activity_is(&self, names: &[&str]) -> bool {
        let a = normal(&self.activity);
        names.iter().any(|n| a.eq_ignore_ascii_case(n))
    }

    /// The first target that is a user.
    pub fn target_user(&self) -> Option<&Target> {
        self.targets.iter().find(|t| {
            t.kind
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case("User"))
        })
    }

    /// A modified property of any target, by name without case.
    pub fn property(&self, name: &str) -> Option<&Modified> {
        self.targets
            .iter()
            .flat_map(|t| &t.modified)
            .find(|m| m.name.eq_ignore_ascii_case(name))
    }

    fn detail(&self, key: &str) -> Option<&str> {
        self.details
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// A directory role granted: `Add member to role`, `Add eligible member to role`, and
    /// PIM's completed grants (`... completed (permanent|timebound)`, `... (PIM
    /// activation)`); a *request* grants nothing, nor does a failed record.
    pub fn role_grant(&self) -> Option<RoleChange> {
        let a = normal(&self.activity).to_ascii_lowercase();
        let add =
            a.starts_with("add member to role") || a.starts_with("add eligible member to role");
        let pim = a.contains("pim");
        if !add
            || a.contains("request")
            || (pim && !a.contains("completed") && !a.contains("activation"))
        {
            return None;
        }
        self.role_change(a.starts_with("add eligible"))
    }

    /// A directory role removed (`Remove member from role`, `Remove eligible member from
    /// role`, PIM's completed removals).
    pub fn role_removal(&self) -> Option<RoleChange> {
        let a = normal(&self.activity).to_ascii_lowercase();
        let remove = a.starts_with("remove member from role")
            || a.starts_with("remove eligible member from role");
        if !remove || a.contains("request") {
            return None;
        }
        self.role_change(a.starts_with("remove eligible"))
    }

    fn role_change(&self, eligible: bool) -> Option<RoleChange> {
        if self.success == Some(false) {
            return None;
        }
        let value = |name: &str| {
            self.property(name)
                .and_then(|m| m.new.as_deref().or(m.old.as_deref()))
                .and_then(decoded_text)
        };
        let role_target = self.targets.iter().find(|t| {
            t.kind
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case("Role"))
        });
        let template_id = value("Role.TemplateId")
            .or_else(|| value("TemplateId"))
            .or_else(|| self.detail("TemplateId").map(str::to_owned))
            .map(|t| t.to_ascii_lowercase());
        let member = self.targets.iter().find(|t| {
            t.kind.as_deref().is_some_and(|k| {
                k.eq_ignore_ascii_case("User") || k.eq_ignore_ascii_case("ServicePrincipal")
            })
        });
        Some(RoleChange {
            template_id,
            well_known: value("Role.WellKnownObjectName"),
            name: value("Role.DisplayName")
                .or_else(|| role_target.and_then(|t| t.display_name.clone())),
            eligible,
            member_id: member.and_then(|m| m.id.clone()),
            member_name: member.and_then(|m| m.upn.clone().or_else(|| m.display_name.clone())),
            member_is_user: member
                .and_then(|m| m.kind.as_deref())
                .is_some_and(|k| k.eq_ignore_ascii_case("User")),
        })
    }

    /// A group membership change: the group's display name and whether the member was
    /// added (`Add member to group`) or removed (`Remove member from group`).
    pub fn group_change(&self) -> Option<GroupChange> {
        let add = self.activity_is(&["Add member to group"]);
        if !add && !self.activity_is(&["Remove member from group"]) || self.success == Some(false) {
            return None;
        }
        let group = self
            .property("Group.DisplayName")
            .and_then(|m| m.new.as_deref().or(m.old.as_deref()))
            .and_then(decoded_text)
            .or_else(|| {
                self.targets
                    .iter()
                    .find(|t| {
                        t.kind
                            .as_deref()
                            .is_some_and(|k| k.eq_ignore_ascii_case("Group"))
                    })
                    .and_then(|t| t.display_name.clone())
            })?;
        let member = self.target_user();
        Some(GroupChange {
            group,
            added: add,
            member_id: member.and_then(|m| m.id.clone()),
            member_upn: member.and_then(|m| m.upn.clone()),
        })
    }

    /// The per-user MFA requirement removed: `Disable Strong Authentication`, or
    /// `StrongAuthenticationRequirement` going from a requirement to none on `Update user`.
    pub fn mfa_requirement_removed(&self) -> bool {
        if self.success == Some(false) {
            return false;
        }
        if self.activity_is(&["Disable Strong Authentication"]) {
            return true;
        }
        let Some(m) = self.property("StrongAuthenticationRequirement") else {
            return false;
        };
        let had = m.old.as_deref().and_then(decoded_text).is_some();
        let has = m.new.as_deref().and_then(decoded_text).is_some();
        had && !has
    }

    /// A user's or an admin's deletion of security info (authentication methods).
    pub fn security_info_deleted(&self) -> bool {
        self.success != Some(false)
            && self.activity_is(&["User deleted security info", "Admin deleted security info"])
    }

    /// A Conditional Access policy that was enabled and required MFA, deleted, disabled,
    /// set to report-only, or stripped of its MFA control. Only the Conditional Access
    /// service's own activities count (`Update/Delete conditional access policy`): the
    /// Core Directory `Update policy` twin of the same change is not a second one.
    /// `Err` when the policy's value is not JSON.
    pub fn ca_change(&self) -> Result<Option<CaChange>, BadDocument> {
        let delete = self.activity_is(&["Delete conditional access policy"]);
        if !delete && !self.activity_is(&["Update conditional access policy"]) {
            return Ok(None);
        }
        let Some(m) = self.property("ConditionalAccessPolicy") else {
            return Ok(None);
        };
        let parse = |v: &Option<String>| -> Result<Option<Value>, BadDocument> {
            match v.as_deref() {
                None => Ok(None),
                Some(t) => match serde_json::from_str::<Value>(t) {
                    Ok(v @ Value::Object(_)) => Ok(Some(v)),
                    _ => Err(BadDocument::new(
                        Reason::BadValue,
                        "`ConditionalAccessPolicy` holds no JSON policy object",
                    )),
                },
            }
        };
        let old = parse(&m.old)?;
        let new = if delete { None } else { parse(&m.new)? };
        let name = new
            .as_ref()
            .or(old.as_ref())
            .and_then(|p| p.get("displayName"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let before = old.as_ref().is_some_and(requires_mfa);
        let after = new.as_ref().is_some_and(requires_mfa);
        let state = new
            .as_ref()
            .and_then(|p| p.get("state"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let change = if delete {
            "deleted"
        } else if state.eq_ignore_ascii_case("disabled") {
            "disabled"
        } else if state.eq_ignore_ascii_case("enabledForReportingButNotEnforced") {
            "set to report-only"
        } else {
            "MFA control removed"
        };
        Ok(Some(CaChange {
            name,
            required_mfa_before: before,
            requires_mfa_after: after,
            change,
        }))
    }
}

/// An activity name as compared: trimmed, without a trailing `.`, blanks folded.
fn normal(activity: &str) -> String {
    activity
        .trim()
        .trim_end_matches('.')
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Which of these shapes a document without `type` has, by its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A Graph `directoryAudit` (`activityDisplayName`).
    Audit,
    /// A `userRegistrationDetails` row (`isMfaRegistered` or `isMfaCapable`).
    Registration,
    /// A `delegatedAdminRelationship` (`customer` beside `accessDetails` or `status`).
    Relationship,
    /// A `delegatedAdminAccessAssignment` (`accessContainer`).
    Assignment,
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

/// A member of `o` by any of `names` (the first present and not `null`), compared as
/// written, then without case (`Type` for `type`).
fn get<'v>(o: &'v Map<String, Value>, names: &[&str]) -> Option<&'v Value> {
    for n in names {
        if let Some(v) = o.get(*n).filter(|v| !v.is_null()) {
            return Some(v);
        }
    }
    o.iter()
        .find(|(k, v)| !v.is_null() && names.iter().any(|n| k.eq_ignore_ascii_case(n)))
        .map(|(_, v)| v)
}

/// Text of a member: a string as it is (trimmed, empty is absent), a number or boolean
/// as written.
fn text(o: &Map<String, Value>, names: &[&str]) -> Option<String> {
    match get(o, names)? {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn object<'v>(o: &'v Map<String, Value>, names: &[&str]) -> Option<&'v Map<String, Value>> {
    get(o, names)?.as_object()
}

fn list<'v>(o: &'v Map<String, Value>, names: &[&str]) -> &'v [Value] {
    get(o, names)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A modified property's value: a string's content, else the JSON as written.
fn property_value(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn time_of(o: &Map<String, Value>, names: &[&str], field: &str) -> Result<EventTime, BadDocument> {
    let t = names.iter().find_map(|n| text(o, &[n]));
    required_time(t.as_deref(), field)
}

fn optional_time(o: &Map<String, Value>, name: &str) -> Option<EventTime> {
    text(o, &[name]).and_then(|t| EventTime::parse(&t))
}

fn parse_object(raw: &str) -> Result<Map<String, Value>, BadDocument> {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(BadDocument::new(
            Reason::NotAnObject,
            "a document must be a JSON object",
        )),
        Err(e) => Err(BadDocument::new(Reason::NotJson, e.to_string())),
    }
}

fn tenant(
    o: Option<&Map<String, Value>>,
    default_tenant: Option<&str>,
    what: &str,
) -> Result<String, BadDocument> {
    o.and_then(|o| text(o, &["tenantId"]))
        .or_else(|| default_tenant.map(str::to_owned))
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            BadDocument::new(
                Reason::MissingField,
                format!("`tenantId` ({what} names no tenant: name it with `--tenant ID`, or `pipeline.tenant`)"),
            )
        })
}

fn success(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Number(n) => n.as_i64().map(|c| c == 0),
        Value::String(s) => {
            let s = s.trim();
            if s.eq_ignore_ascii_case("success") {
                Some(true)
            } else if s.eq_ignore_ascii_case("failure") {
                Some(false)
            } else {
                s.parse::<i64>().ok().map(|c| c == 0)
            }
        }
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

fn roles(o: &Map<String, Value>) -> Vec<String> {
    object(o, &["accessDetails"])
        .map(|a| list(a, &["unifiedRoles"]))
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r.as_object().and_then(|r| text(r, &["roleDefinitionId"])))
        .map(|r| r.to_ascii_lowercase())
        .collect()
}

/// An audit record: `envelope` is the Azure Monitor record (`None` for a bare Graph
/// `directoryAudit`), `props` its `properties` (or the Graph object itself).
pub fn audit(
    raw: &str,
    envelope: bool,
    default_tenant: Option<&str>,
) -> Result<DirectoryAudit, BadDocument> {
    let doc = parse_object(raw)?;
    let (record, props) = if envelope {
        let props = object(&doc, &["properties"]).ok_or_else(|| {
            BadDocument::new(
                Reason::WrongType,
                "`properties` of an audit record is not an object",
            )
        })?;
        (Some(&doc), props)
    } else {
        (None, &doc)
    };
    let time = match record {
        Some(r) => time_of(props, &["activityDateTime"], "activityDateTime")
            .or_else(|_| time_of(r, &["time"], "time"))?,
        None => time_of(props, &["activityDateTime"], "activityDateTime")?,
    };
    let tenant_id = tenant(record.or(Some(props)), default_tenant, "this audit record")?;
    let activity = text(props, &["activityDisplayName"])
        .or_else(|| record.and_then(|r| text(r, &["operationName"])))
        .ok_or_else(|| BadDocument::new(Reason::MissingField, "`activityDisplayName`"))?;
    let mut initiated_by = Actor::default();
    if let Some(by) = object(props, &["initiatedBy"]) {
        if let Some(u) = object(by, &["user"]) {
            initiated_by.user_id = text(u, &["id"]);
            initiated_by.upn = text(u, &["userPrincipalName"]);
        }
        if let Some(a) = object(by, &["app"]) {
            initiated_by.app_id = text(a, &["appId"]);
            initiated_by.service_principal_id = text(a, &["servicePrincipalId"]);
            initiated_by.display = text(a, &["displayName", "servicePrincipalName"]);
        }
        initiated_by.display = initiated_by
            .upn
            .clone()
            .or(initiated_by.display)
            .or_else(|| initiated_by.user_id.clone())
            .or_else(|| initiated_by.service_principal_id.clone());
    } else if let Some(who) = record.and_then(|r| text(r, &["identity"])) {
        // The 2018 schema names the actor only in the record's `identity`.
        initiated_by.display = Some(who);
    }
    let targets = list(props, &["targetResources", "targetResource"])
        .iter()
        .filter_map(Value::as_object)
        .map(|t| Target {
            id: text(t, &["id"]),
            kind: text(t, &["type"]),
            display_name: text(t, &["displayName"]),
            upn: text(t, &["userPrincipalName"]),
            modified: list(t, &["modifiedProperties"])
                .iter()
                .filter_map(Value::as_object)
                .filter_map(|m| {
                    Some(Modified {
                        name: text(m, &["displayName", "Name"])?,
                        old: property_value(get(m, &["oldValue"])),
                        new: property_value(get(m, &["newValue"])),
                    })
                })
                .collect(),
        })
        .collect();
    let details = match get(props, &["additionalDetails"]) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|d| Some((text(d, &["key"])?, text(d, &["value"]).unwrap_or_default())))
            .collect(),
        _ => Vec::new(),
    };
    let event_id = text(props, &["id"])
        .or_else(|| {
            record
                .and_then(|r| text(r, &["correlationId"]))
                .map(|c| format!("{c}:{activity}"))
        })
        .unwrap_or_else(|| derived_id(raw));
    let mut audit = DirectoryAudit {
        event_id,
        time,
        tenant_id,
        activity,
        category: text(props, &["category", "auditEventCategory"]),
        service: text(props, &["loggedByService"]),
        success: success(get(props, &["result"]))
            .or_else(|| record.and_then(|r| success(get(r, &["resultType"])))),
        initiated_by,
        targets,
        details,
        facts: AuditFacts::default(),
    };
    // A Conditional Access record whose policy is not JSON cannot be judged: said now.
    let ca = audit.ca_change()?;
    let target = audit.target_user();
    let facts = AuditFacts {
        role_granted: audit.role_grant(),
        role_removed: audit.role_removal(),
        group: audit.group_change(),
        mfa_requirement_removed: audit.mfa_requirement_removed(),
        security_info_deleted: audit.security_info_deleted(),
        target_user_id: target.and_then(|t| t.id.clone()),
        target: target.or_else(|| audit.targets.first()).and_then(|t| {
            t.upn
                .clone()
                .or_else(|| t.display_name.clone())
                .or_else(|| t.id.clone())
        }),
        ca,
    };
    audit.facts = facts;
    Ok(audit)
}

/// A `userRegistrationDetails` row.
pub fn registration(
    raw: &str,
    default_tenant: Option<&str>,
) -> Result<RegistrationReport, BadDocument> {
    let o = parse_object(raw)?;
    let time = time_of(&o, &["lastUpdatedDateTime"], "lastUpdatedDateTime")?;
    let flag = |name: &str| match get(&o, &[name]) {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    };
    let registered = flag("isMfaCapable")
        .or_else(|| flag("isMfaRegistered"))
        .ok_or_else(|| {
            BadDocument::new(Reason::MissingField, "`isMfaCapable` or `isMfaRegistered`")
        })?;
    Ok(RegistrationReport {
        event_id: derived_id(raw),
        time,
        tenant_id: tenant(Some(&o), default_tenant, "a registration report")?,
        user_id: text(&o, &["id", "userId"])
            .ok_or_else(|| BadDocument::new(Reason::MissingField, "`id`"))?,
        upn: text(&o, &["userPrincipalName"]),
        user_type: text(&o, &["userType"]),
        registered,
        methods: list(&o, &["methodsRegistered"])
            .iter()
            .filter_map(|m| m.as_str().map(str::to_owned))
            .collect(),
    })
}

/// A `delegatedAdminRelationship`.
pub fn relationship(
    raw: &str,
    default_tenant: Option<&str>,
) -> Result<GdapRelationship, BadDocument> {
    let o = parse_object(raw)?;
    let time = time_of(
        &o,
        &[
            "lastModifiedDateTime",
            "activatedDateTime",
            "createdDateTime",
        ],
        "lastModifiedDateTime",
    )?;
    let customer_tenant_id = object(&o, &["customer"])
        .and_then(|c| text(c, &["tenantId"]))
        .ok_or_else(|| BadDocument::new(Reason::MissingField, "`customer.tenantId`"))?;
    Ok(GdapRelationship {
        event_id: derived_id(raw),
        time,
        tenant_id: tenant(Some(&o), default_tenant, "a GDAP relationship export")?,
        relationship_id: text(&o, &["id"])
            .ok_or_else(|| BadDocument::new(Reason::MissingField, "`id`"))?,
        customer_tenant_id,
        status: text(&o, &["status"])
            .ok_or_else(|| BadDocument::new(Reason::MissingField, "`status`"))?
            .to_ascii_lowercase(),
        activated: optional_time(&o, "activatedDateTime"),
        ends: optional_time(&o, "endDateTime"),
        duration: text(&o, &["duration"]),
        auto_extend: text(&o, &["autoExtendDuration"]),
        roles: roles(&o),
    })
}

/// A `delegatedAdminAccessAssignment`; `context` is the page's `@odata.context`.
pub fn assignment(
    raw: &str,
    context: Option<&str>,
    default_tenant: Option<&str>,
) -> Result<GdapAssignment, BadDocument> {
    let o = parse_object(raw)?;
    let time = time_of(
        &o,
        &["lastModifiedDateTime", "createdDateTime"],
        "lastModifiedDateTime",
    )?;
    let context = text(&o, &["@odata.context"]).or_else(|| context.map(str::to_owned));
    Ok(GdapAssignment {
        event_id: derived_id(raw),
        time,
        tenant_id: tenant(Some(&o), default_tenant, "a GDAP access assignment export")?,
        assignment_id: text(&o, &["id"])
            .ok_or_else(|| BadDocument::new(Reason::MissingField, "`id`"))?,
        relationship_id: context.as_deref().and_then(relationship_in_context),
        status: text(&o, &["status"])
            .ok_or_else(|| BadDocument::new(Reason::MissingField, "`status`"))?
            .to_ascii_lowercase(),
        container_id: object(&o, &["accessContainer"])
            .and_then(|c| text(c, &["accessContainerId"])),
        roles: roles(&o),
    })
}

/// `...delegatedAdminRelationships('ID')/accessAssignments...` -> `ID`.
fn relationship_in_context(context: &str) -> Option<String> {
    let lower = context.to_ascii_lowercase();
    let at = lower.find("delegatedadminrelationships(")? + "delegatedadminrelationships(".len();
    let rest = context.get(at..)?;
    let end = rest.find(')')?;
    let id = rest.get(..end)?.trim_matches(|c| c == '\'' || c == '"');
    (!id.is_empty()).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories() {
        assert_eq!(category(None), Category::SignIn);
        assert_eq!(category(Some("signinlogs")), Category::SignIn);
        assert_eq!(category(Some("AuditLogs")), Category::Audit);
        assert_eq!(category(Some("Audit")), Category::Audit);
        assert_eq!(category(Some("RiskyUsers")), Category::Other("RiskyUsers"));
        assert_eq!(category(Some("Made Up")), Category::Other("other"));
    }

    #[test]
    fn an_audit_record_with_encoded_values() {
        let raw = r#"{"time":"2024-01-02T03:04:05Z","tenantId":"t1","category":"AuditLogs","operationName":"Add member to role","resultType":"0",
          "properties":{"id":"Directory_1","activityDisplayName":"Add member to role","activityDateTime":"2024-01-02 03:04:05.1234567","result":0,
          "initiatedBy":{"user":{"id":"u0","userPrincipalName":"admin@p.com"},"app":null},
          "targetResources":[{"id":"u1","Type":"User","userPrincipalName":"a@p.com","modifiedProperties":[
            {"displayName":"Role.DisplayName","oldValue":null,"newValue":"\"Global Administrator\""},
            {"displayName":"Role.TemplateId","oldValue":null,"newValue":"\"62e90394-69f5-4237-9190-012177145e10\""}]}]}}"#;
        let a = audit(raw, true, None).unwrap();
        assert_eq!(a.event_id, "Directory_1");
        assert_eq!(a.tenant_id, "t1");
        assert_eq!(a.success, Some(true));
        assert_eq!(a.initiated_by.display.as_deref(), Some("admin@p.com"));
        let t = &a.targets[0];
        assert_eq!(t.kind.as_deref(), Some("User"));
        assert_eq!(
            t.modified[0].new.as_deref(),
            Some("\"Global Administrator\"")
        );
        assert_eq!(t.modified[0].old, None);
    }

    fn one(activity: &str, targets: &str) -> DirectoryAudit {
        let raw = format!(
            r#"{{"id":"x","activityDisplayName":"{activity}","activityDateTime":"2024-01-01T00:00:00Z","tenantId":"t","result":"success","targetResources":{targets}}}"#
        );
        audit(&raw, false, None).unwrap()
    }

    #[test]
    fn role_grants_and_requests() {
        let targets = r#"[{"id":"u1","type":"User","userPrincipalName":"a@p.com","modifiedProperties":[
            {"displayName":"Role.TemplateId","oldValue":null,"newValue":"\"62E90394-69f5-4237-9190-012177145e10\""},
            {"displayName":"Role.DisplayName","oldValue":null,"newValue":"\"Global Administrator\""}]}]"#;
        let g = one("Add member to role.", targets);
        let r = g.role_grant().unwrap();
        assert_eq!(
            r.template_id.as_deref(),
            Some("62e90394-69f5-4237-9190-012177145e10")
        );
        assert_eq!(r.name.as_deref(), Some("Global Administrator"));
        assert_eq!(r.member_name.as_deref(), Some("a@p.com"));
        assert!(r.member_is_user);
        assert!(!r.eligible);
        assert!(
            one("Add member to role in PIM requested (permanent)", targets)
                .role_grant()
                .is_none()
        );
        assert!(
            one("Add member to role in PIM completed (permanent)", targets)
                .role_grant()
                .is_some()
        );
        assert!(
            one("Add member to role completed (PIM activation)", targets)
                .role_grant()
                .is_some()
        );
        assert!(
            one(
                "Add eligible member to role in PIM completed (permanent)",
                targets
            )
            .role_grant()
            .unwrap()
            .eligible
        );
        assert!(one("Remove member from role", targets)
            .role_removal()
            .is_some());
    }

    #[test]
    fn per_user_mfa_and_security_info() {
        let t = r#"[{"id":"u1","type":"User","modifiedProperties":[{"displayName":"StrongAuthenticationRequirement",
            "oldValue":"[{\"RelyingParty\":\"*\",\"State\":1}]","newValue":"[]"}]}]"#;
        assert!(one("Update user", t).mfa_requirement_removed());
        assert!(!one("Update user", "[]").mfa_requirement_removed());
        assert!(one("Disable Strong Authentication", "[]").mfa_requirement_removed());
        assert!(one("Admin deleted security info", "[]").security_info_deleted());
    }

    #[test]
    fn conditional_access_changes() {
        let policy = |state: &str, mfa: bool| {
            let controls = if mfa {
                r#"{"builtInControls":["MFA"]}"#
            } else {
                "null"
            };
            serde_json::to_string(&format!(
                r#"{{"displayName":"Require MFA","state":"{state}","grantControls":{controls}}}"#
            ))
            .unwrap()
        };
        let t = |old: String, new: String| {
            format!(
                r#"[{{"id":"p","type":"Policy","modifiedProperties":[{{"displayName":"ConditionalAccessPolicy","oldValue":{old},"newValue":{new}}}]}}]"#
            )
        };
        let c = one(
            "Update conditional access policy",
            &t(policy("enabled", true), policy("enabled", false)),
        )
        .ca_change()
        .unwrap()
        .unwrap();
        assert!(c.required_mfa_before && !c.requires_mfa_after);
        assert_eq!(c.change, "MFA control removed");
        let c = one(
            "Update conditional access policy",
            &t(policy("enabled", true), policy("disabled", true)),
        )
        .ca_change()
        .unwrap()
        .unwrap();
        assert_eq!((c.requires_mfa_after, c.change), (false, "disabled"));
        let c = one(
            "Delete conditional access policy",
            &t(policy("enabled", true), "null".into()),
        )
        .ca_change()
        .unwrap()
        .unwrap();
        assert_eq!(c.change, "deleted");
        // The Core Directory twin is not a Conditional Access change.
        assert!(one(
            "Update policy",
            &t(policy("enabled", true), policy("enabled", false))
        )
        .ca_change()
        .unwrap()
        .is_none());
        // A policy value that is not JSON is a dead letter.
        let raw = format!(
            r#"{{"id":"x","activityDisplayName":"Update conditional access policy","activityDateTime":"2024-01-01T00:00:00Z","tenantId":"t","targetResources":{}}}"#,
            t("\"not json\"".into(), "\"{{\"".into())
        );
        assert_eq!(
            audit(&raw, false, None).unwrap_err().reason,
            Reason::BadValue
        );
    }

    #[test]
    fn unusable_records_say_why() {
        let no_customer =
            r#"{"id":"r","status":"active","lastModifiedDateTime":"2024-01-01T00:00:00Z"}"#;
        let e = relationship(no_customer, Some("p")).unwrap_err();
        assert_eq!(e.reason, Reason::MissingField);
        assert!(e.detail.contains("customer.tenantId"), "{}", e.detail);
        let no_tenant =
            r#"{"id":"u","isMfaRegistered":true,"lastUpdatedDateTime":"2024-01-01T00:00:00Z"}"#;
        let e = registration(no_tenant, None).unwrap_err();
        assert!(e.detail.contains("--tenant"), "{}", e.detail);
    }

    #[test]
    fn the_relationship_of_an_assignment_page() {
        assert_eq!(
            relationship_in_context("https://graph.microsoft.com/v1.0/$metadata#tenantRelationships/delegatedAdminRelationships('5d02-877')/accessAssignments"),
            Some("5d02-877".into())
        );
        assert_eq!(
            relationship_in_context(
                "https://graph.microsoft.com/v1.0/tenantRelationships/$metadata#accessAssignments"
            ),
            None
        );
    }
}
