//! The directory records' decoding and facts.

use super::read::relationship_in_context;
use super::*;
use crate::event::reason::Reason;

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
    assert!(!one("Update user", t).mfa_requirement_set());
    let set = r#"[{"id":"u1","type":"User","modifiedProperties":[{"displayName":"StrongAuthenticationRequirement",
        "oldValue":"[]","newValue":"[{\"RelyingParty\":\"*\",\"State\":1}]"}]}]"#;
    assert!(one("Update user", set).mfa_requirement_set());
    assert!(!one("Update user", set).mfa_requirement_removed());
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

#[test]
fn activity_names_compare_without_case_blanks_or_a_trailing_dot() {
    use super::audit::same_activity;
    assert!(same_activity(
        "  Add member to  group. ",
        "Add member to group"
    ));
    assert!(same_activity("ADD MEMBER TO GROUP", "add member to group"));
    assert!(!same_activity(
        "Add member to group extra",
        "Add member to group"
    ));
    assert!(!same_activity("Add member to", "Add member to group"));
    assert!(!same_activity("", "Add member to group"));
}

/// The one-pass route of an `AuditLogs` record gives what `audit` of the same text gives,
/// on every public audit record and the conformance file's; it declines what is not
/// plainly one record.
#[test]
fn the_one_pass_route_reads_audit_records_as_the_general_one() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut texts: Vec<String> = Vec::new();
    for f in std::fs::read_dir(root.join("tests/realdata/directory")).unwrap() {
        let t = std::fs::read_to_string(f.unwrap().path()).unwrap();
        texts.extend(t.lines().map(str::to_owned));
    }
    let conf = std::fs::read_to_string(root.join("tests/conformance/directory_2026.json")).unwrap();
    let conf: serde_json::Value = serde_json::from_str(&conf).unwrap();
    texts.extend(
        conf["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.to_string()),
    );
    let mut compared = 0;
    for t in &texts {
        if let Some(one_pass) = audit_record(t, Some("t0")) {
            assert_eq!(one_pass, audit(t, true, Some("t0")), "{t}");
            compared += 1;
        }
    }
    assert!(compared >= 30, "only {compared} audit records compared");
    let rec = r#"{"category":"AuditLogs","tenantId":"t","properties":{"activityDisplayName":"x","activityDateTime":"2026-01-01T00:00:00Z"}}"#;
    assert!(audit_record(rec, None).is_some());
    for declined in [
        rec.replace(
            r#""category":"AuditLogs","#,
            r#""category":"AuditLogs","category":"AuditLogs","#,
        ),
        rec.replace(r#""tenantId""#, r#""type":"x","tenantId""#),
        rec.replace(r#""category":"AuditLogs""#, r#""category":"SignInLogs""#),
        rec.replace(r#""properties":{"#, r#""properties":null,"p":{"#),
        r#"{"records":[]}"#.to_owned(),
        "[1]".to_owned(),
    ] {
        assert!(audit_record(&declined, None).is_none(), "{declined}");
    }
}
