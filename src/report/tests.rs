//! The report's reduction of rows, on rows written by hand.
use super::*;

fn rollout(tenant: &str, day: i64, version: u64, api: (u64, u64), status: &str) -> RolloutRecord {
    RolloutRecord {
        tenant_id: tenant.into(),
        day: Day(day),
        policy_version: "v".into(),
        stats: DayStats {
            api_app_user_calls: api.0,
            api_app_user_calls_mfa: api.1,
            ..DayStats::default()
        },
        status: status.into(),
        status_7d: status.into(),
        version,
    }
}

#[test]
fn the_highest_version_of_a_day_wins_and_the_window_is_seven_days() {
    let mut b = Builder::default();
    b.rollout(rollout("t", 100, 5, (10, 5), "at_risk"));
    b.rollout(rollout("t", 100, 3, (99, 0), "blocked"));
    b.rollout(rollout("t", 93, 1, (1000, 0), "blocked")); // 7 days before day 100: outside
    b.rollout(rollout("t", 94, 1, (10, 10), "ready"));
    let r = b.finish("x".into(), "v".into(), None);
    assert_eq!(r.tenants.len(), 1);
    let t = &r.tenants[0];
    assert_eq!((t.day, t.status.as_str()), (Day(100), "at_risk"));
    assert_eq!(t.window.api_app_user_calls, 20);
    assert_eq!(t.window.api_mfa_share(), Some(0.75));
    assert_eq!(r.daily.len(), 3);
}

fn surface(
    tenant: &str,
    day: i64,
    surface: &str,
    version: u64,
    mfa: (u64, u64, u64),
) -> SurfaceRecord {
    SurfaceRecord {
        tenant_id: tenant.into(),
        day: Day(day),
        policy_version: "v".into(),
        surface: surface.into(),
        enforced: false,
        total: mfa.0,
        mfa: mfa.1,
        excepted: 0,
        mfa_unknown: mfa.2,
        demanded: 0,
        version,
    }
}

#[test]
fn every_surface_in_the_rows_gets_its_shares_whatever_its_name() {
    let mut b = Builder::default();
    b.rollout(rollout("t", 100, 1, (0, 0), "ready"));
    b.rollout(rollout("u", 99, 1, (0, 0), "ready"));
    b.surface(surface("t", 100, "zeta_portal", 2, (10, 3, 4)));
    b.surface(surface("t", 100, "zeta_portal", 1, (99, 0, 0))); // replaced
    b.surface(surface("t", 94, "zeta_portal", 1, (4, 4, 0)));
    b.surface(surface("t", 93, "zeta_portal", 1, (1000, 0, 0))); // outside t's window
    b.surface(surface("u", 99, "azure_admin_portals", 1, (2, 1, 0)));
    let r = b.finish("x".into(), "v".into(), None);
    // Not a loaded policy: by name.
    assert_eq!(r.surfaces, ["azure_admin_portals", "zeta_portal"]);
    let t = r.tenants.iter().find(|t| t.tenant_id == "t").unwrap();
    assert_eq!(t.shares[0], ShareCount::default());
    assert_eq!(t.shares[1].share(), Some(7.0 / 10.0));
    let u = r.tenants.iter().find(|t| t.tenant_id == "u").unwrap();
    assert_eq!(u.shares[0].share(), Some(0.5));
    let days: Vec<i64> = r.daily.iter().map(|(d, _)| d.0).collect();
    assert_eq!(days, [93, 94, 99, 100]);
    assert_eq!(r.daily[3].1[1].total, 10);
}

#[test]
fn surfaces_follow_the_policy_order_then_names() {
    let policy = crate::policy::load("partner-mfa-2020-05").unwrap();
    let mut b = Builder::default();
    b.rollout(rollout("t", 100, 1, (0, 0), "ready"));
    for name in ["delegated_admin", "azure_admin_portals", "api", "dashboard"] {
        b.surface(surface("t", 100, name, 1, (1, 1, 0)));
    }
    let r = b.finish("x".into(), "v".into(), Some(&policy));
    assert_eq!(
        r.surfaces,
        ["api", "dashboard", "delegated_admin", "azure_admin_portals"]
    );
}

#[test]
fn findings_split_into_enforced_readiness_and_excepted() {
    let mut b = Builder::default();
    for (enforced, excepted, n) in [(true, false, 3), (false, false, 2), (true, true, 1)] {
        b.findings(&FindingCount {
            rule_id: "R".into(),
            severity: "high".into(),
            enforced,
            excepted,
            policy_version: String::new(),
            n,
            context: None,
            event_time: String::new(),
            upn: String::new(),
            user_id: String::new(),
        });
    }
    b.dead_letters("bad_json: expected value", 2);
    b.dead_letters("bad_json: trailing", 1);
    let r = b.finish("x".into(), "v".into(), None);
    assert_eq!(
        r.rules,
        vec![RuleCount {
            rule_id: "R".into(),
            severity: "high".into(),
            enforced: 3,
            readiness: 2,
            excepted: 1
        }]
    );
    assert_eq!(r.dead_letters, vec![("bad_json".to_owned(), 3)]);
}

#[test]
fn tenants_are_listed_blocked_first() {
    let mut b = Builder::default();
    b.rollout(rollout("a", 1, 1, (1, 1), "ready"));
    b.rollout(rollout("b", 1, 1, (1, 0), "blocked"));
    b.rollout(rollout("c", 1, 1, (1, 0), "at_risk"));
    let r = b.finish("x".into(), "v".into(), None);
    let order: Vec<&str> = r.tenants.iter().map(|t| t.tenant_id.as_str()).collect();
    assert_eq!(order, ["b", "c", "a"]);
}

#[test]
fn flags_read_as_booleans_or_numbers() {
    let a: FindingCount = serde_json::from_str(
        r#"{"rule_id":"R","severity":"low","enforced":1,"excepted":false,"n":4}"#,
    )
    .unwrap();
    let b: FindingCount =
        serde_json::from_str(r#"{"rule_id":"R","severity":"low","enforced":true,"excepted":0}"#)
            .unwrap();
    assert!(a.enforced && !a.excepted && a.n == 4);
    assert!(b.enforced && !b.excepted && b.n == 1);
}
