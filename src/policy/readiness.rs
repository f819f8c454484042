//! A tenant's readiness on a day (or over a window), by the policy's `[readiness]` rule.

use super::cond::{Eval, Tri};
use super::facts::DayFacts;
use super::model::Policy;
use crate::event::time::Day;
use crate::policy::cond::KindMask;
use crate::state::{DayCounters, Readiness, TenantState};

/// Whether a surface with a share, enforced for the tenant at the day's start (its own
/// date, when a `policy_override` moved it), has known events neither with MFA nor
/// covered by an exception.
pub fn enforced_gap(
    policy: &Policy,
    tenant: &TenantState,
    counters: &DayCounters,
    day: Day,
) -> bool {
    let at = day.start();
    policy.surfaces.iter().enumerate().any(|(i, s)| {
        s.share.is_some() && policy.is_enforced_for(i, tenant, at) && counters.share(i).has_gap()
    })
}

/// The status: `blocked` when `[readiness] blocked` holds, else `ready` when
/// `[readiness] ready` holds, else `at_risk` (an unknown counts as not holding).
pub fn status(
    policy: &Policy,
    tenant: &TenantState,
    counters: &DayCounters,
    day: Day,
) -> Readiness {
    let facts = DayFacts {
        counters,
        enforced_gap: enforced_gap(policy, tenant, counters, day),
    };
    let mut e = Eval {
        get: |a| facts.get(a),
        kind: KindMask::MAX,
        memo: None,
        tracing: false,
        probes: None,
    };
    // A policy of detections has no readiness: nothing asks it (no rollout rows, no
    // readiness line); were it asked, nothing blocks and nothing is ready.
    let Some(readiness) = &policy.readiness else {
        return Readiness::AtRisk;
    };
    if readiness.blocked.eval(&mut e) == Tri::True {
        Readiness::Blocked
    } else if readiness.ready.eval(&mut e) == Tri::True {
        Readiness::Ready
    } else {
        Readiness::AtRisk
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::time::EventTime;
    use crate::state::ShareCount;

    fn day(s: &str) -> Day {
        EventTime::parse(s).unwrap().day()
    }

    #[test]
    fn readiness_follows_the_policy_rules() {
        let p = crate::policy::load("partner-mfa-2020-05").unwrap();
        let api = p.surface("api").unwrap();
        let enforced = day("2020-05-02");
        let before = day("2020-04-20");
        let t = TenantState::default();
        let mut s = DayCounters {
            partner_role_users: 2,
            partner_role_users_registered: 2,
            ..DayCounters::default()
        };
        assert_eq!(status(&p, &t, &s, enforced), Readiness::Ready);
        s.partner_role_users_registered = 1;
        assert_eq!(
            status(&p, &t, &s, enforced),
            Readiness::AtRisk,
            "an agent unregistered"
        );
        s.partner_role_users_registered = 2;
        s.uncovered[2] = 1;
        assert_eq!(
            status(&p, &t, &s, enforced),
            Readiness::AtRisk,
            "an uncovered high finding"
        );
        s.uncovered[2] = 0;
        s.uncovered[3] = 1;
        assert_eq!(
            status(&p, &t, &s, enforced),
            Readiness::Blocked,
            "an uncovered critical"
        );
        s.uncovered[3] = 0;
        // An enforced surface under 100 % MFA blocks; covered calls count as compliant;
        // before the enforcement date it does not block.
        s.shares = vec![ShareCount::default(); p.surfaces.len()];
        s.shares[api] = ShareCount {
            total: 4,
            mfa: 3,
            ..ShareCount::default()
        };
        assert_eq!(status(&p, &t, &s, enforced), Readiness::Blocked);
        assert_eq!(status(&p, &t, &s, before), Readiness::Ready);
        s.shares[api].excepted = 1;
        assert_eq!(status(&p, &t, &s, enforced), Readiness::Ready);
        assert_eq!(s.share(api).share(), Some(0.75));
        s.shares[api].mfa_unknown = 2;
        s.shares[api].total = 6;
        assert_eq!(
            s.share(api).share(),
            Some(0.75),
            "unknown MFA is left out of the share"
        );
        let p19 = crate::policy::load("partner-mfa-2019-09").unwrap();
        s.shares[api].excepted = 0;
        assert_eq!(
            status(&p19, &t, &s, enforced),
            Readiness::Ready,
            "2019-09 enforces nothing"
        );
    }
}
