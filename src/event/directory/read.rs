//! The records read lazily ([`Obj`]: each member's raw JSON, read when a fact needs it),
//! taking every variant Microsoft writes (`"Type"` for `"type"`, `result` as `0` or
//! `"success"`, values encoded as strings or plain) without a struct per variant.

use super::lazy::{Json, Obj};
use super::{
    Actor, AuditFacts, DirectoryAudit, GdapAssignment, GdapRelationship, Modified,
    RegistrationReport, Target,
};
use crate::event::decode::{derived_id, required_time};
use crate::event::reason::{BadDocument, Reason};
use crate::event::time::EventTime;

/// A member of `o` by any of `names` (the first present and not `null`), compared as
/// written, then without case (`Type` for `type`).
fn get<'o, 'a>(o: &'o Obj<'a>, names: &[&str]) -> Option<&'o Json<'a>> {
    o.get(names)
}

/// Text of a member: a string as it is (trimmed, empty is absent), a number or boolean
/// as written.
fn text(o: &Obj<'_>, names: &[&str]) -> Option<String> {
    match get(o, names)? {
        Json::Str(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Json::Bool(b) => Some(b.to_string()),
        n @ Json::Num(_) => Some(n.compact()),
        _ => None,
    }
}

fn object<'o, 'a>(o: &'o Obj<'a>, names: &[&str]) -> Option<&'o Obj<'a>> {
    match get(o, names)? {
        Json::Obj(o) => Some(o),
        _ => None,
    }
}

fn list<'o, 'a>(o: &'o Obj<'a>, names: &[&str]) -> &'o [Json<'a>] {
    match get(o, names) {
        Some(Json::Arr(a)) => a,
        _ => &[],
    }
}

fn as_object<'o, 'a>(v: &'o Json<'a>) -> Option<&'o Obj<'a>> {
    match v {
        Json::Obj(o) => Some(o),
        _ => None,
    }
}

/// A modified property's value: a string's content, else the JSON as written.
fn property_value(v: Option<&Json<'_>>) -> Option<String> {
    match v? {
        Json::Null => None,
        Json::Str(s) => Some(s.to_string()),
        other => Some(other.compact()),
    }
}

fn time_of(o: &Obj<'_>, names: &[&str], field: &str) -> Result<EventTime, BadDocument> {
    let t = names.iter().find_map(|n| text(o, &[n]));
    required_time(t.as_deref(), field)
}

fn optional_time(o: &Obj<'_>, name: &str) -> Option<EventTime> {
    text(o, &[name]).and_then(|t| EventTime::parse(&t))
}

fn parse_object(raw: &str) -> Result<Obj<'_>, BadDocument> {
    match Obj::parse(raw) {
        Ok(Some(o)) => Ok(o),
        Ok(None) => Err(BadDocument::new(
            Reason::NotAnObject,
            "a document must be a JSON object",
        )),
        Err(e) => Err(BadDocument::new(Reason::NotJson, e.to_string())),
    }
}

fn tenant(
    o: Option<&Obj<'_>>,
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

fn success(v: Option<&Json<'_>>) -> Option<bool> {
    match v? {
        Json::Num(n) => n.as_i64().map(|c| c == 0),
        Json::Str(s) => {
            let s = s.trim();
            if s.eq_ignore_ascii_case("success") {
                Some(true)
            } else if s.eq_ignore_ascii_case("failure") {
                Some(false)
            } else {
                s.parse::<i64>().ok().map(|c| c == 0)
            }
        }
        Json::Bool(b) => Some(*b),
        _ => None,
    }
}

fn roles(o: &Obj<'_>) -> Vec<String> {
    object(o, &["accessDetails"])
        .map(|a| list(a, &["unifiedRoles"]))
        .unwrap_or_default()
        .iter()
        .filter_map(|r| as_object(r).and_then(|r| text(r, &["roleDefinitionId"])))
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
    audit_of(&doc, raw, envelope, default_tenant)
}

/// An Azure Monitor `AuditLogs` record read in one pass, when `raw` plainly is one: a
/// JSON object with one `category` (text, an audit category), one `properties` (not
/// `null`) and no `type`, `records` or `value`. `None` otherwise: then the caller's
/// general path decides, and for such a record it comes to [`audit`] of the same text
/// (a `Wire` that reads it, or the envelope it falls back to), so the rows are the same.
pub fn audit_record(
    raw: &str,
    default_tenant: Option<&str>,
) -> Option<Result<DirectoryAudit, BadDocument>> {
    let doc = Obj::parse(raw).ok()??;
    let mut category = None;
    let mut properties = 0;
    for (k, v) in doc.members() {
        match &**k {
            "category" => {
                if category.is_some() {
                    return None;
                }
                category = Some(v);
            }
            "properties" if matches!(v, Json::Null) => return None,
            "properties" => properties += 1,
            "type" | "records" | "value" => return None,
            _ => {}
        }
    }
    let Some(Json::Str(c)) = category else {
        return None;
    };
    if properties != 1 || super::category(Some(c)) != super::Category::Audit {
        return None;
    }
    Some(audit_of(&doc, raw, true, default_tenant))
}

fn audit_of(
    doc: &Obj<'_>,
    raw: &str,
    envelope: bool,
    default_tenant: Option<&str>,
) -> Result<DirectoryAudit, BadDocument> {
    let (record, props) = if envelope {
        let props = object(doc, &["properties"]).ok_or_else(|| {
            BadDocument::new(
                Reason::WrongType,
                "`properties` of an audit record is not an object",
            )
        })?;
        (Some(doc), props)
    } else {
        (None, doc)
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
        .filter_map(as_object)
        .map(|t| Target {
            id: text(t, &["id"]),
            kind: text(t, &["type"]),
            display_name: text(t, &["displayName"]),
            upn: text(t, &["userPrincipalName"]),
            modified: list(t, &["modifiedProperties"])
                .iter()
                .filter_map(as_object)
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
    let details = list(props, &["additionalDetails"])
        .iter()
        .filter_map(as_object)
        .filter_map(|d| Some((text(d, &["key"])?, text(d, &["value"]).unwrap_or_default())))
        .collect();
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
        mfa_requirement_set: audit.mfa_requirement_set(),
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
        Some(Json::Bool(b)) => Some(*b),
        Some(Json::Str(s)) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Some(Json::Str(s)) if s.trim().eq_ignore_ascii_case("false") => Some(false),
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
            .filter_map(|m| match m {
                Json::Str(s) => Some(s.to_string()),
                _ => None,
            })
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
pub(super) fn relationship_in_context(context: &str) -> Option<String> {
    let lower = context.to_ascii_lowercase();
    let at = lower.find("delegatedadminrelationships(")? + "delegatedadminrelationships(".len();
    let rest = context.get(at..)?;
    let end = rest.find(')')?;
    let id = rest.get(..end)?.trim_matches(|c| c == '\'' || c == '"');
    (!id.is_empty()).then(|| id.to_owned())
}
