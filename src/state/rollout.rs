//! Rollout counters: per tenant and day, what each event added (as the policy's
//! evaluation decided it) and the tenant-wide snapshot of agents and exceptions. The
//! state keeps numbers only: which surfaces and counters exist, and what makes a day
//! `ready`, is the policy's.

use serde::{Deserialize, Serialize};

/// One surface's share on one day: events counted, with MFA, without MFA but covered by
/// an exception, and MFA unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareCount {
    /// Events counted.
    pub total: u64,
    /// Of those, with MFA.
    pub mfa: u64,
    /// Of those without, covered by an exception.
    pub excepted: u64,
    /// Of those, MFA unknown (left out of the share).
    pub mfa_unknown: u64,
    /// Events apart from those counted: MFA demanded and not performed (enforcement seen
    /// working: a sign-in failed with 50074, an API call answered 401 / 900421).
    #[serde(default)]
    pub demanded: u64,
}

impl ShareCount {
    /// Adds another day's.
    pub fn merge(&mut self, o: &ShareCount) {
        self.total += o.total;
        self.mfa += o.mfa;
        self.excepted += o.excepted;
        self.mfa_unknown += o.mfa_unknown;
        self.demanded += o.demanded;
    }

    /// Events whose MFA is known.
    pub fn known(&self) -> u64 {
        self.total.saturating_sub(self.mfa_unknown)
    }

    /// Share with MFA, of those whose MFA is known (`None` when none).
    pub fn share(&self) -> Option<f64> {
        let known = self.known();
        (known > 0).then(|| self.mfa as f64 / known as f64)
    }

    /// Known events neither with MFA nor covered: a gap, where the surface is enforced.
    pub fn has_gap(&self) -> bool {
        self.mfa + self.excepted < self.known()
    }
}

/// What one event adds to its day (decided by the policy's evaluation). Bit `i` of a
/// mask stands for surface or counter `i` (a policy declares at most 64 of each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Surfaces whose share counts the event.
    pub counted: u64,
    /// Of those, where it had MFA.
    pub mfa: u64,
    /// Of those, where it lacked MFA and an exception covered it.
    pub excepted: u64,
    /// Of those, where its MFA is unknown.
    pub unknown: u64,
    /// Surfaces whose share counts it as MFA demanded.
    pub demanded: u64,
    /// Counters it adds one to.
    pub counters: u64,
    /// Findings it raised.
    pub findings: u64,
    /// Of those, not covered by an exception, by severity (low to critical).
    pub uncovered: [u64; 4],
}

/// One (tenant, day)'s counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCounters {
    /// Per surface of the policy, in its order.
    pub shares: Vec<ShareCount>,
    /// Per counter of the policy, in its order.
    pub counters: Vec<u64>,
    /// Findings.
    pub findings: u64,
    /// Findings not covered by an exception, by severity (low to critical).
    pub uncovered: [u64; 4],
    /// Partner-role users (snapshot at the day's last event).
    pub partner_role_users: u32,
    /// Of those, MFA-registered.
    pub partner_role_users_registered: u32,
    /// Exception requests open.
    pub exceptions_open: u32,
    /// Of those, open past the response time.
    pub exceptions_overdue: u32,
    /// Exceptions approved and in force.
    pub exceptions_approved: u32,
}

/// The set bits of a mask, lowest first.
fn bits(mut mask: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            i
        })
    })
}

fn slot<T: Default + Clone>(v: &mut Vec<T>, i: usize) -> Option<&mut T> {
    if v.len() <= i {
        v.resize(i + 1, T::default());
    }
    v.get_mut(i)
}

impl DayCounters {
    /// Counts one event's tally.
    pub fn add(&mut self, t: &Tally) {
        for i in bits(t.counted) {
            if let Some(s) = slot(&mut self.shares, i) {
                let bit = 1u64 << i;
                s.total += 1;
                if t.mfa & bit != 0 {
                    s.mfa += 1;
                } else if t.excepted & bit != 0 {
                    s.excepted += 1;
                } else if t.unknown & bit != 0 {
                    s.mfa_unknown += 1;
                }
            }
        }
        for i in bits(t.demanded) {
            if let Some(s) = slot(&mut self.shares, i) {
                s.demanded += 1;
            }
        }
        for i in bits(t.counters) {
            if let Some(c) = slot(&mut self.counters, i) {
                *c += 1;
            }
        }
        self.findings += t.findings;
        for (u, add) in self.uncovered.iter_mut().zip(t.uncovered) {
            *u += add;
        }
    }

    /// Adds another day's counters (for a rolling window); snapshots take `other`'s.
    pub fn merge(&mut self, other: &DayCounters) {
        for (i, s) in other.shares.iter().enumerate() {
            if let Some(mine) = slot(&mut self.shares, i) {
                mine.merge(s);
            }
        }
        for (i, c) in other.counters.iter().enumerate() {
            if let Some(mine) = slot(&mut self.counters, i) {
                *mine += c;
            }
        }
        self.findings += other.findings;
        for (u, add) in self.uncovered.iter_mut().zip(other.uncovered) {
            *u += add;
        }
        self.partner_role_users = other.partner_role_users;
        self.partner_role_users_registered = other.partner_role_users_registered;
        self.exceptions_open = other.exceptions_open;
        self.exceptions_overdue = other.exceptions_overdue;
        self.exceptions_approved = other.exceptions_approved;
    }

    /// A surface's share counts (zero when the day saw none).
    pub fn share(&self, surface: usize) -> ShareCount {
        self.shares.get(surface).copied().unwrap_or_default()
    }

    /// A counter (zero when the day saw none).
    pub fn counter(&self, i: usize) -> u64 {
        self.counters.get(i).copied().unwrap_or_default()
    }
}

/// A tenant's readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Readiness {
    /// Ready for enforcement.
    Ready,
    /// Something to fix.
    AtRisk,
    /// Enforcement would break it, or it is already breaking the rule.
    Blocked,
}

impl Readiness {
    /// The name in rows.
    pub fn name(self) -> &'static str {
        match self {
            Readiness::Ready => "ready",
            Readiness::AtRisk => "at_risk",
            Readiness::Blocked => "blocked",
        }
    }
}

impl std::fmt::Display for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_counts_into_its_surfaces_and_counters() {
        let mut d = DayCounters::default();
        d.add(&Tally {
            counted: 0b101,
            mfa: 0b001,
            excepted: 0b100,
            counters: 0b10,
            findings: 2,
            uncovered: [0, 0, 1, 1],
            ..Tally::default()
        });
        d.add(&Tally {
            counted: 0b100,
            unknown: 0b100,
            ..Tally::default()
        });
        // MFA demanded is counted apart from the share's events.
        d.add(&Tally {
            demanded: 0b100,
            ..Tally::default()
        });
        assert_eq!(
            d.share(0),
            ShareCount {
                total: 1,
                mfa: 1,
                excepted: 0,
                mfa_unknown: 0,
                demanded: 0
            }
        );
        assert_eq!(d.share(1), ShareCount::default());
        assert_eq!(
            d.share(2),
            ShareCount {
                total: 2,
                mfa: 0,
                excepted: 1,
                mfa_unknown: 1,
                demanded: 1
            }
        );
        assert_eq!(d.counter(1), 1);
        assert_eq!(d.counter(0), 0);
        assert_eq!((d.findings, d.uncovered), (2, [0, 0, 1, 1]));
        assert!(!d.share(2).has_gap(), "the known one is covered");
        let mut w = DayCounters::default();
        w.merge(&d);
        w.merge(&d);
        assert_eq!(w.share(2).total, 4);
        assert_eq!(w.share(0).share(), Some(1.0));
    }
}
