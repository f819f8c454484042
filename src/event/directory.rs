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
}

/// A Graph `delegatedAdminRelationship` (GDAP) as the partner's export gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GdapRelationship {
    /// Derived from the content: the same relationship is exported again as it changes.
    pub event_id: String,
    /// `lastModifiedDateTime`, else `activatedDateTime`, else `createdDateTime`.
    pub time: EventTime,
    /// The partner tenant (`--tenant`, or the object's `tenantId` where one is written).
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
    Ok(DirectoryAudit {
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
    })
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
        tenant_id: tenant(None, default_tenant, "a GDAP relationship export")?,
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
        tenant_id: tenant(None, default_tenant, "a GDAP access assignment export")?,
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
