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
    assert!(sink.dead_letters[1].reason.contains("pipeline.max_users_per_tenant"));
    let size = p.engines()[0].state().size();
    assert_eq!((size.tenants, size.users), (2, 3));
    p.refresh_gauges(crate::event::time::EventTime(0));
    let m = p.metrics();
    assert_eq!(m.state_tenants.get(), 2);
    assert_eq!(m.state_users.get(), 3);
    assert_eq!(m.replay_ids.get(), 4, "the events applied");
    assert_eq!(
        m.dead_letters.with_label_values(&["state_limit"]).get(),
        2
    );
}
