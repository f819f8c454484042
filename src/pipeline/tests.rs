//! The processor's bounds: state past a configured bound is refused as a dead letter.

use super::*;
use crate::sink::MemorySink;

fn processor(limits: Limits) -> Processor {
    let p = crate::policy::load("partner-mfa-2020-05").unwrap();
    Processor::new(Arc::new(p), TokenReader::new(100), Arc::new(Metrics::new())).with_limits(limits)
}

fn role(tenant: &str, user: &str) -> String {
    format!(
        r#"{{"type":"partner_role_assignment","time":"2020-05-01T00:00:00Z","tenantId":"{tenant}","userId":"{user}","role":"AdminAgent","action":"add"}}"#
    )
}

fn run(p: &Processor, docs: &[String]) -> MemorySink {
    let mut sink = MemorySink::default();
    for (i, d) in docs.iter().enumerate() {
        let pos = format!("line {}", i + 1);
        let origin = Origin {
            source: "t",
            position: &pos,
        };
        p.process(origin, d.as_bytes(), None, &mut sink).unwrap();
    }
    sink
}

#[test]
fn tenants_and_users_past_their_bound_are_dead_letters() {
    let p = processor(Limits {
        max_tenants: 2,
        max_users_per_tenant: 2,
    });
    let docs = [
        role("t1", "u1"),
        role("t2", "u1"),
        role("t3", "u1"),
        role("t1", "u2"),
        role("t1", "u3"),
        // A user already held is not refused.
        role("t1", "U1"),
    ];
    let sink = run(&p, &docs);
    let reasons: Vec<(&str, &str)> = sink
        .dead_letters
        .iter()
        .map(|d| (d.position.as_str(), d.reason.split(':').next().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [("line 3", "state_limit"), ("line 5", "state_limit")]
    );
    assert!(sink.dead_letters[0].reason.contains("pipeline.max_tenants"));
    assert!(sink.dead_letters[1]
        .reason
        .contains("pipeline.max_users_per_tenant"));
    let size = p.engines()[0].state().size();
    assert_eq!((size.tenants, size.users), (2, 3));
    p.refresh_gauges(crate::event::time::EventTime(0));
    let m = p.metrics();
    assert_eq!(m.state_tenants.get(), 2);
    assert_eq!(m.state_users.get(), 3);
    assert_eq!(m.replay_ids.get(), 4, "the events applied");
    assert_eq!(m.dead_letters.with_label_values(&["state_limit"]).get(), 2);
}

/// An Entra audit record granting (or removing) a directory role to a user.
fn audit_role(user: &str, activity: &str, role: &str) -> String {
    format!(
        r#"{{"time":"2026-05-02T10:00:00Z","category":"AuditLogs","tenantId":"t1","operationName":"{activity}","properties":{{"id":"a-{user}-{role}-{activity}","activityDisplayName":"{activity}","activityDateTime":"2026-05-02T10:00:00Z","loggedByService":"Core Directory","result":"success","targetResources":[{{"id":"{user}","type":"User","modifiedProperties":[{{"displayName":"Role.DisplayName","oldValue":null,"newValue":"\"{role}\""}}]}}]}}}}"#
    )
}

#[test]
fn audit_records_are_held_to_the_user_and_role_bounds() {
    // An audit record adds the user it grants a role to, so a stream of grants to new
    // users is bounded like sign-ins are; and one user's directory roles are bounded.
    let p = processor(Limits {
        max_tenants: 2,
        max_users_per_tenant: 2,
    });
    let mut docs = vec![
        audit_role("u1", "Add member to role", "Helpdesk Administrator"),
        audit_role("u2", "Add member to role", "Helpdesk Administrator"),
        audit_role("u3", "Add member to role", "Helpdesk Administrator"),
    ];
    let max = crate::state::MAX_DIRECTORY_ROLES_PER_USER;
    docs.extend((0..max).map(|i| audit_role("u1", "Add member to role", &format!("r{i}"))));
    // A role already held, and a removal, are not refused.
    docs.push(audit_role("u1", "Add member to role", "r7"));
    docs.push(audit_role("u1", "Remove member from role", "r8"));
    docs.push(audit_role("u1", "Add member to role", "r8"));
    let sink = run(&p, &docs);
    let reasons: Vec<(&str, &str)> = sink
        .dead_letters
        .iter()
        .map(|d| (d.position.as_str(), d.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!(reasons[0].0, "line 3");
    assert!(reasons[0].1.contains("pipeline.max_users_per_tenant"));
    // u1 held Helpdesk Administrator, so the 256th role `r254` is its last.
    assert_eq!(reasons[1].0, format!("line {}", 3 + max));
    assert!(reasons[1].1.contains("directory roles"), "{}", reasons[1].1);
    let size = p.engines()[0].state().size();
    assert_eq!((size.tenants, size.users), (1, 2));
}

fn dashboard(day: i64) -> String {
    let d = crate::event::time::Day(18_383 + day);
    format!(
        r#"{{"type":"dashboard_request","time":"{d}T10:00:00Z","tenantId":"t1","userId":"u1","url":"https://partner.microsoft.com/dashboard/commerce/orders","statusCode":200,"sessionId":"s{day}"}}"#
    )
}

#[test]
fn a_snapshot_grows_with_state_not_with_the_length_of_history() {
    // The security review of 2026-12: a tenant with 20,000 days had an 11.3 MB snapshot.
    // With days past `keep_days` dropped at each checkpoint, it stays the size of the
    // days kept.
    let p = processor(Limits::default());
    let tenants = ["t1".to_owned()];
    let mut sizes = Vec::new();
    for day in 0..2_000 {
        run(&p, &[dashboard(day)]);
        if day % 50 == 49 {
            p.drop_days(&tenants, 30);
            sizes.push(p.snapshot_json(&tenants).unwrap().len());
        }
    }
    let (first, last) = (sizes[1], *sizes.last().unwrap());
    assert!(
        last <= first + first / 10,
        "{first} bytes after 100 days, {last} after 2,000"
    );
    let days = p.engines()[0].state().size().days;
    assert!(days <= 80, "{days} days held");
    // An event whose 7-day window reaches a dropped day is refused; a recent one is not.
    let sink = run(&p, &[dashboard(1_900), dashboard(1_990)]);
    assert_eq!(sink.dead_letters.len(), 1);
    assert!(
        sink.dead_letters[0].reason.contains("pipeline.keep_days"),
        "{:?}",
        sink.dead_letters
    );
    assert_eq!(sink.dead_letters[0].position, "line 1");
}
