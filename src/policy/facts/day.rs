//! What one tenant's day (or 7-day window) offers `[readiness]`: the `day.*` attributes.

use crate::policy::attr::{Attr, Val};
use crate::state::DayCounters;

/// A tenant's day (or window) as `[readiness]` reads it.
pub struct DayFacts<'a> {
    /// The counters.
    pub counters: &'a DayCounters,
    /// Whether an enforced surface has a gap that day.
    pub enforced_gap: bool,
}

impl DayFacts<'_> {
    /// Reads a day attribute.
    pub fn get(&self, attr: Attr) -> Option<Val<'static>> {
        use Attr as A;
        let c = self.counters;
        let int = |n: u64| Some(Val::Int(i64::try_from(n).unwrap_or(i64::MAX)));
        match attr {
            A::DayFindings => int(c.findings),
            A::DayUncoveredLow => int(c.uncovered[0]),
            A::DayUncoveredMedium => int(c.uncovered[1]),
            A::DayUncoveredHigh => int(c.uncovered[2]),
            A::DayUncoveredCritical => int(c.uncovered[3]),
            A::DayEnforcedGap => Some(Val::Bool(self.enforced_gap)),
            A::DayPartnerRoleUsers => int(u64::from(c.partner_role_users)),
            A::DayAgentsRegistered => int(u64::from(c.partner_role_users_registered)),
            A::DayAgentsUnregistered => int(u64::from(
                c.partner_role_users
                    .saturating_sub(c.partner_role_users_registered),
            )),
            A::DayExceptionsOpen => int(u64::from(c.exceptions_open)),
            A::DayExceptionsOverdue => int(u64::from(c.exceptions_overdue)),
            A::DayExceptionsApproved => int(u64::from(c.exceptions_approved)),
            _ => None,
        }
    }
}
