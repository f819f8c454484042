//! Rollout readiness: per tenant and day, the counters of POLICY.md, and the status
//! (`ready`, `at_risk`, `blocked`) for the day and over a rolling 7 days.

use crate::event::time::Day;
use crate::policy::model::{Severity, Surface};
use crate::policy::{Finding, Policy};
use std::fmt;

/// What one event adds to its day's counters (decided by the evaluator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tally {
    /// Nothing to count (directory facts, unprotected pages).
    #[default]
    Nothing,
    /// An app-only API call: counted apart, never in the MFA share.
    ApiAppOnly,
    /// An App+User API call.
    ApiAppUser {
        /// `mfa` in `amr` (`None`: the report row does not say).
        mfa: Option<bool>,
        /// Without MFA but covered by an exception.
        excepted: bool,
        /// Token from the password flow.
        password_flow: bool,
    },
    /// A protected dashboard page served.
    Dashboard {
        /// The session's MFA (`None`: unknown).
        mfa: Option<bool>,
        /// Without MFA but covered by an exception.
        excepted: bool,
    },
    /// A sign-in.
    SignIn {
        /// Into a customer tenant: (MFA satisfied, covered by an exception).
        delegated: Option<(bool, bool)>,
        /// By a legacy protocol.
        legacy: bool,
        /// By the password flow.
        password_flow: bool,
        /// MFA satisfied (also what state records for the user's last sign-in).
        mfa: bool,
    },
}

/// One (tenant, day)'s counters: columns of `rollout_daily`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DayStats {
    /// App+User API calls.
    pub api_app_user_calls: u64,
    /// Of those, with `mfa`.
    pub api_app_user_calls_mfa: u64,
    /// Of those without, covered by an exception.
    pub api_app_user_calls_excepted: u64,
    /// Of those, MFA unknown (report rows without `mfaCompliant`).
    pub api_app_user_calls_mfa_unknown: u64,
    /// App-only API calls (left out of the share).
    pub api_app_only_calls: u64,
    /// Protected dashboard pages served.
    pub dashboard_protected_requests: u64,
    /// Of those, to a session with MFA.
    pub dashboard_protected_requests_mfa: u64,
    /// Of those without, covered by an exception.
    pub dashboard_protected_requests_excepted: u64,
    /// Of those, session MFA unknown.
    pub dashboard_protected_requests_mfa_unknown: u64,
    /// Successful delegated-admin sign-ins.
    pub delegated_admin_signins: u64,
    /// Of those, with MFA.
    pub delegated_admin_signins_mfa: u64,
    /// Of those without, covered by an exception.
    pub delegated_admin_signins_excepted: u64,
    /// Successful legacy-protocol sign-ins.
    pub legacy_protocol_signins: u64,
    /// Password-flow tokens (sign-ins and API tokens).
    pub password_flow_tokens: u64,
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
    /// Findings.
    pub findings: u64,
    /// Findings not covered by an exception, critical.
    pub findings_uncovered_critical: u64,
    /// Findings not covered by an exception, high.
    pub findings_uncovered_high: u64,
}

impl DayStats {
    pub(crate) fn add(&mut self, tally: &Tally, findings: &[Finding]) {
        match *tally {
            Tally::Nothing => {}
            Tally::ApiAppOnly => self.api_app_only_calls += 1,
            Tally::ApiAppUser {
                mfa,
                excepted,
                password_flow,
            } => {
                self.api_app_user_calls += 1;
                match mfa {
                    Some(true) => self.api_app_user_calls_mfa += 1,
                    Some(false) if excepted => self.api_app_user_calls_excepted += 1,
                    Some(false) => {}
                    None => self.api_app_user_calls_mfa_unknown += 1,
                }
                self.password_flow_tokens += u64::from(password_flow);
            }
            Tally::Dashboard { mfa, excepted } => {
                self.dashboard_protected_requests += 1;
                match mfa {
                    Some(true) => self.dashboard_protected_requests_mfa += 1,
                    Some(false) if excepted => self.dashboard_protected_requests_excepted += 1,
                    Some(false) => {}
                    None => self.dashboard_protected_requests_mfa_unknown += 1,
                }
            }
            Tally::SignIn {
                delegated,
                legacy,
                password_flow,
                ..
            } => {
                if let Some((mfa, excepted)) = delegated {
                    self.delegated_admin_signins += 1;
                    if mfa {
                        self.delegated_admin_signins_mfa += 1;
                    } else if excepted {
                        self.delegated_admin_signins_excepted += 1;
                    }
                }
                self.legacy_protocol_signins += u64::from(legacy);
                self.password_flow_tokens += u64::from(password_flow);
            }
        }
        for f in findings {
            self.findings += 1;
            if !f.excepted {
                match f.severity {
                    Severity::Critical => self.findings_uncovered_critical += 1,
                    Severity::High => self.findings_uncovered_high += 1,
                    _ => {}
                }
            }
        }
    }

    /// Adds another day's counters (for the rolling window); snapshots take `other`'s.
    pub fn merge(&mut self, other: &DayStats) {
        self.api_app_user_calls += other.api_app_user_calls;
        self.api_app_user_calls_mfa += other.api_app_user_calls_mfa;
        self.api_app_user_calls_excepted += other.api_app_user_calls_excepted;
        self.api_app_user_calls_mfa_unknown += other.api_app_user_calls_mfa_unknown;
        self.api_app_only_calls += other.api_app_only_calls;
        self.dashboard_protected_requests += other.dashboard_protected_requests;
        self.dashboard_protected_requests_mfa += other.dashboard_protected_requests_mfa;
        self.dashboard_protected_requests_excepted += other.dashboard_protected_requests_excepted;
        self.dashboard_protected_requests_mfa_unknown +=
            other.dashboard_protected_requests_mfa_unknown;
        self.delegated_admin_signins += other.delegated_admin_signins;
        self.delegated_admin_signins_mfa += other.delegated_admin_signins_mfa;
        self.delegated_admin_signins_excepted += other.delegated_admin_signins_excepted;
        self.legacy_protocol_signins += other.legacy_protocol_signins;
        self.password_flow_tokens += other.password_flow_tokens;
        self.findings += other.findings;
        self.findings_uncovered_critical += other.findings_uncovered_critical;
        self.findings_uncovered_high += other.findings_uncovered_high;
        self.partner_role_users = other.partner_role_users;
        self.partner_role_users_registered = other.partner_role_users_registered;
        self.exceptions_open = other.exceptions_open;
        self.exceptions_overdue = other.exceptions_overdue;
        self.exceptions_approved = other.exceptions_approved;
    }

    /// Share of App+User calls with MFA, of those whose MFA is known (`None` when none).
    pub fn api_mfa_share(&self) -> Option<f64> {
        share(
            self.api_app_user_calls_mfa,
            self.api_app_user_calls - self.api_app_user_calls_mfa_unknown,
        )
    }

    /// Share of protected dashboard requests with MFA, of those whose MFA is known.
    pub fn dashboard_mfa_share(&self) -> Option<f64> {
        share(
            self.dashboard_protected_requests_mfa,
            self.dashboard_protected_requests - self.dashboard_protected_requests_mfa_unknown,
        )
    }

    /// Share of delegated-admin sign-ins with MFA.
    pub fn delegated_admin_mfa_share(&self) -> Option<f64> {
        share(
            self.delegated_admin_signins_mfa,
            self.delegated_admin_signins,
        )
    }

    /// Readiness: `blocked` for an uncovered critical finding or an enforced surface under
    /// 100 % MFA (counting covered requests as compliant); `ready` with no uncovered high
    /// or critical finding and every partner-role user registered; else `at_risk`.
    pub fn readiness(&self, policy: &Policy, day: Day) -> Readiness {
        let at = day.start();
        let gap = |s: Surface, total: u64, ok: u64| policy.is_enforced(s, at) && ok < total;
        let api_gap = gap(
            Surface::Api,
            self.api_app_user_calls - self.api_app_user_calls_mfa_unknown,
            self.api_app_user_calls_mfa + self.api_app_user_calls_excepted,
        );
        let dash_gap = gap(
            Surface::Dashboard,
            self.dashboard_protected_requests - self.dashboard_protected_requests_mfa_unknown,
            self.dashboard_protected_requests_mfa + self.dashboard_protected_requests_excepted,
        );
        let da_gap = gap(
            Surface::DelegatedAdmin,
            self.delegated_admin_signins,
            self.delegated_admin_signins_mfa + self.delegated_admin_signins_excepted,
        );
        if self.findings_uncovered_critical > 0 || api_gap || dash_gap || da_gap {
            Readiness::Blocked
        } else if self.findings_uncovered_high == 0
            && self.partner_role_users_registered >= self.partner_role_users
        {
            Readiness::Ready
        } else {
            Readiness::AtRisk
        }
    }
}

fn share(part: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| part as f64 / total as f64)
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

impl fmt::Display for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::time::EventTime;

    fn day(s: &str) -> Day {
        EventTime::parse(s).unwrap().day()
    }

    #[test]
    fn readiness_follows_the_policy_rules() {
        let p = crate::policy::load("partner-mfa-2020-05").unwrap();
        let enforced = day("2020-05-02");
        let before = day("2020-04-20");
        let mut s = DayStats {
            partner_role_users: 2,
            partner_role_users_registered: 2,
            ..DayStats::default()
        };
        assert_eq!(s.readiness(&p, enforced), Readiness::Ready);
        s.partner_role_users_registered = 1;
        assert_eq!(
            s.readiness(&p, enforced),
            Readiness::AtRisk,
            "an agent unregistered"
        );
        s.partner_role_users_registered = 2;
        s.findings_uncovered_high = 1;
        assert_eq!(
            s.readiness(&p, enforced),
            Readiness::AtRisk,
            "an uncovered high finding"
        );
        s.findings_uncovered_high = 0;
        s.findings_uncovered_critical = 1;
        assert_eq!(
            s.readiness(&p, enforced),
            Readiness::Blocked,
            "an uncovered critical finding"
        );
        s.findings_uncovered_critical = 0;
        // An enforced surface under 100 % MFA blocks; covered calls count as compliant;
        // before the enforcement date it does not block.
        s.api_app_user_calls = 4;
        s.api_app_user_calls_mfa = 3;
        assert_eq!(s.readiness(&p, enforced), Readiness::Blocked);
        assert_eq!(s.readiness(&p, before), Readiness::Ready);
        s.api_app_user_calls_excepted = 1;
        assert_eq!(s.readiness(&p, enforced), Readiness::Ready);
        assert_eq!(s.api_mfa_share(), Some(0.75));
        s.api_app_user_calls_mfa_unknown = 2;
        s.api_app_user_calls = 6;
        assert_eq!(
            s.api_mfa_share(),
            Some(0.75),
            "unknown MFA is left out of the share"
        );
        let p19 = crate::policy::load("partner-mfa-2019-09").unwrap();
        s.api_app_user_calls_excepted = 0;
        assert_eq!(
            s.readiness(&p19, enforced),
            Readiness::Ready,
            "2019-09 enforces nothing"
        );
    }
}
