//! Unit tests of `event::decode`.

use super::*;

fn one(doc: &str) -> Result<Event<'_>, BadDocument> {
    let tokens = Box::leak(Box::new(TokenReader::new(8)));
    let mut items = decode(doc, tokens);
    assert_eq!(items.len(), 1);
    items.remove(0).event
}

#[test]
fn recognises_each_kind_by_shape() {
    let cases = [
        (
            r#"{"time":"2020-05-02T00:00:00Z","tenantId":"t","category":"SignInLogs","properties":{"id":"s1","userId":"u"}}"#,
            "sign_in",
        ),
        (
            r#"{"createdDateTime":"2020-05-02T00:00:00Z","id":"g1","homeTenantId":"t","status":{"errorCode":0}}"#,
            "sign_in",
        ),
        (
            r#"{"type":"dashboard_request","time":"2020-05-02T00:00:00Z","tenantId":"t","url":"https://partner.microsoft.com/commerce/x"}"#,
            "dashboard_request",
        ),
        (
            r#"{"type":"partner_role_assignment","time":"2020-05-02","tenantId":"t","userId":"u","role":"admin_agent","action":"add"}"#,
            "partner_role_assignment",
        ),
        (
            r#"{"type":"mfa_registration","time":"2020-05-02","tenantId":"t","userId":"u","isMfaRegistered":false}"#,
            "mfa_registration",
        ),
        (
            r#"{"type":"technical_exception","time":"2020-05-02","tenantId":"t","exceptionId":"e","status":"approved","reason":"x"}"#,
            "technical_exception",
        ),
        (
            r#"{"type":"partner_api_request","requestDateTime":"2020-05-02","tenantId":"t","objectId":"u","mfaCompliant":false}"#,
            "partner_api_request",
        ),
    ];
    for (doc, kind) in cases {
        match one(doc) {
            Ok(e) => assert_eq!(e.kind(), kind, "{doc}"),
            Err(b) => panic!("{doc}: {b:?}"),
        }
    }
}

#[test]
fn a_batch_yields_one_item_per_record_and_isolates_a_bad_one() {
    let doc = r#"{"records":[
        {"time":"2020-05-02T00:00:00Z","tenantId":"t","properties":{"id":"a"}},
        {"time":"2020-05-02T00:00:00Z","tenantId":"t","properties":{"id":5}},
        {"time":"2020-05-02T00:00:00Z","tenantId":"t","properties":{"id":"c"}}]}"#;
    let tokens = TokenReader::new(8);
    let items = decode(doc, &tokens);
    assert_eq!(items.len(), 3);
    assert!(items[0].event.is_ok());
    assert_eq!(
        items[1].event.as_ref().err().map(|b| b.reason),
        Some(Reason::WrongType)
    );
    assert_eq!(items[1].record, Some(1));
    assert!(items[2].event.is_ok());
}

/// Issue 17's repro: an audit record in an Event Hubs batch was judged as a sign-in.
#[test]
fn records_are_what_their_category_says() {
    let doc = r#"{"records":[
        {"time":"2024-05-01T10:00:00Z","tenantId":"t","category":"AuditLogs","operationName":"User deleted security info",
         "properties":{"id":"a1","activityDisplayName":"User deleted security info","activityDateTime":"2024-05-01T10:00:00Z","result":"success",
           "initiatedBy":{"user":{"id":"u1","userPrincipalName":"admin@p.com"}},"targetResources":[{"id":"u1","type":"User","userPrincipalName":"admin@p.com"}]}},
        {"time":"2024-05-01T10:00:00Z","tenantId":"t","category":"RiskyUsers","properties":{"id":"r1","riskLevel":"high"}},
        {"time":"2024-05-01T10:00:00Z","tenantId":"t","category":"SignInLogs","properties":{"id":"s1","userId":"u1"}}]}"#;
    let tokens = TokenReader::new(8);
    let kinds: Vec<&str> = decode(doc, &tokens)
        .iter()
        .map(|i| i.event.as_ref().map_or("bad", |e| e.kind()))
        .collect();
    assert_eq!(kinds, ["directory_audit", "skipped_record", "sign_in"]);
}

#[test]
fn a_page_whose_value_is_neither_list_nor_object() {
    let tokens = TokenReader::new(8);
    let items = decode(r#"{"value": 42}"#, &tokens);
    let bad = items[0].event.as_ref().err().unwrap();
    assert_eq!(bad.reason, Reason::WrongType);
    assert!(
        bad.detail.contains("neither a list nor an object"),
        "{}",
        bad.detail
    );
    // One object under `value` (as "Get userRegistrationDetails" answers) is read.
    let one = r#"{"value":{"id":"u1","isMfaRegistered":true,"isMfaCapable":false,"lastUpdatedDateTime":"2024-01-01T00:00:00Z"}}"#;
    let items = decode_with(one, &tokens, Some("p"));
    match &items[0].event {
        Ok(Event::Registration(r)) => assert!(!r.registered, "isMfaCapable counts"),
        _ => panic!("not a registration"),
    }
}

#[test]
fn bad_documents_get_bounded_reasons() {
    let cases = [
        ("not json", Reason::NotJson),
        ("[1,2]", Reason::NotAnObject),
        ("42", Reason::NotAnObject),
        // A top-level array was read as the struct's fields in order (review F16).
        (r#"["partner_api_request"]"#, Reason::NotAnObject),
        (r#"[[{"time":"2020-05-02"}]]"#, Reason::NotAnObject),
        (r#"{"records":[["x"]]}"#, Reason::NotAnObject),
        (r#"{"hello":"world"}"#, Reason::UnknownShape),
        (r#"{"type":"nope"}"#, Reason::UnknownShape),
        (
            r#"{"type":"dashboard_request","time":"2020-05-02","url":"u"}"#,
            Reason::MissingField,
        ),
        (
            r#"{"type":"dashboard_request","time":"soon","tenantId":"t","url":"u"}"#,
            Reason::BadTime,
        ),
        (
            r#"{"type":"partner_role_assignment","time":"2020-05-02","tenantId":"t","userId":"u","role":"Boss"}"#,
            Reason::BadValue,
        ),
        (
            r#"{"type":"partner_api_request","requestDateTime":"2020-05-02","tenantId":"t","authorization":"Bearer x.y"}"#,
            Reason::BadToken,
        ),
        (
            r#"{"type":"dashboard_request","time":"2020-05-02","tenantId":"t","url":"u","statusCode":"two hundred"}"#,
            Reason::WrongType,
        ),
    ];
    for (doc, want) in cases {
        match one(doc) {
            Ok(e) => panic!("{doc} decoded as {}", e.kind()),
            Err(b) => assert_eq!(b.reason, want, "{doc}: {}", b.reason_text()),
        }
    }
}

#[test]
fn messy_real_fields_are_read_leniently() {
    let doc = r#"{"Level":"4","time":"2020-05-02 00:00:00.123","tenantid":"t","resultType":0,
        "properties":{"isInteractive":"True","status":{"errorCode":"0"}}}"#;
    let Ok(Event::SignIn(s)) = one(doc) else {
        panic!("not a sign-in")
    };
    assert_eq!(s.succeeded(), Some(true));
    assert_eq!(s.props.is_interactive, Some(true));
    assert_eq!(s.event_id.len(), 32, "derived id");
}

#[test]
fn derived_ids_are_stable() {
    assert_eq!(derived_id("{\"a\":1}"), derived_id(" {\"a\":1}\n"));
    assert_ne!(derived_id("{\"a\":1}"), derived_id("{\"a\":2}"));
}
