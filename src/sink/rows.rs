//! The rows of `rollout_daily`, `agents` and `dead_letters` (`findings` rows are
//! [`crate::policy::Finding`]).

use crate::event::time::{Day, EventTime};
use crate::state::{DayStats, Readiness};
use serde::Serialize;

/// One `dead_letters` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The input (file path, `stdin`, or `topic` in Kafka mode).
    pub source: String,
    /// Where in it (`line 12`, `line 12 record 3`, or `partition 2 offset 991`).
    pub position: String,
    /// `code: detail`; the code is bounded (see `event::Reason`).
    pub reason: String,
    /// The document's first 512 bytes at most, tokens redacted.
    pub excerpt: String,
}

/// One `rollout_daily` row: absolute values for (tenant, day, policy version), replaced
/// by a row of higher `version`, never summed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolloutRow {
    /// Partner tenant.
    pub tenant_id: String,
    /// UTC day.
    pub day: Day,
    /// Policy version.
    pub policy_version: String,
    /// App+User API calls.
    pub api_app_user_calls: u64,
    /// With `mfa`.
    pub api_app_user_calls_mfa: u64,
    /// Without, covered by an exception.
    pub api_app_user_calls_excepted: u64,
    /// MFA unknown.
    pub api_app_user_calls_mfa_unknown: u64,
    /// App-only calls (left out of the share).
    pub api_app_only_calls: u64,
    /// Protected dashboard pages served.
    pub dashboard_protected_requests: u64,
    /// With MFA.
    pub dashboard_protected_requests_mfa: u64,
    /// Without, covered by an exception.
    pub dashboard_protected_requests_excepted: u64,
    /// MFA unknown.
    pub dashboard_protected_requests_mfa_unknown: u64,
    /// Successful delegated-admin sign-ins.
    pub delegated_admin_signins: u64,
    /// With MFA.
    pub delegated_admin_signins_mfa: u64,
    /// Without, covered by an exception.
    pub delegated_admin_signins_excepted: u64,
    /// Legacy-protocol sign-ins.
    pub legacy_protocol_signins: u64,
    /// Password-flow tokens.
    pub password_flow_tokens: u64,
    /// Partner-role users.
    pub partner_role_users: u32,
    /// Of those, MFA-registered.
    pub partner_role_users_registered: u32,
    /// Exception requests open.
    pub exceptions_open: u32,
    /// Open past the response time.
    pub exceptions_overdue: u32,
    /// Approved and in force.
    pub exceptions_approved: u32,
    /// Findings.
    pub findings: u64,
    /// Uncovered critical findings.
    pub findings_uncovered_critical: u64,
    /// Uncovered high findings.
    pub findings_uncovered_high: u64,
    /// Readiness on this day.
    pub status: &'static str,
    /// Readiness over the 7 days ending on this day.
    pub status_7d: &'static str,
    /// Row version (the tenant's event count when the day last changed).
    pub version: u64,
}

impl RolloutRow {
    /// Builds the row from the day's counters and statuses.
    pub fn new(
        tenant_id: &str,
        day: Day,
        policy_version: &str,
        s: &DayStats,
        status: Readiness,
        status_7d: Readiness,
    ) -> Self {
        Self {
            tenant_id: tenant_id.to_owned(),
            day,
            policy_version: policy_version.to_owned(),
            api_app_user_calls: s.api_app_user_calls,
            api_app_user_calls_mfa: s.api_app_user_calls_mfa,
            api_app_user_calls_excepted: s.api_app_user_calls_excepted,
            api_app_user_calls_mfa_unknown: s.api_app_user_calls_mfa_unknown,
            api_app_only_calls: s.api_app_only_calls,
            dashboard_protected_requests: s.dashboard_protected_requests,
            dashboard_protected_requests_mfa: s.dashboard_protected_requests_mfa,
            dashboard_protected_requests_excepted: s.dashboard_protected_requests_excepted,
            dashboard_protected_requests_mfa_unknown: s.dashboard_protected_requests_mfa_unknown,
            delegated_admin_signins: s.delegated_admin_signins,
            delegated_admin_signins_mfa: s.delegated_admin_signins_mfa,
            delegated_admin_signins_excepted: s.delegated_admin_signins_excepted,
            legacy_protocol_signins: s.legacy_protocol_signins,
            password_flow_tokens: s.password_flow_tokens,
            partner_role_users: s.partner_role_users,
            partner_role_users_registered: s.partner_role_users_registered,
            exceptions_open: s.exceptions_open,
            exceptions_overdue: s.exceptions_overdue,
            exceptions_approved: s.exceptions_approved,
            findings: s.findings,
            findings_uncovered_critical: s.findings_uncovered_critical,
            findings_uncovered_high: s.findings_uncovered_high,
            status: status.name(),
            status_7d: status_7d.name(),
            version: s.version,
        }
    }
}

/// One `agents` row: a user who holds (or held) a partner role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentRow {
    /// Partner tenant.
    pub tenant_id: String,
    /// User object id.
    pub user_id: String,
    /// UPN (else empty).
    pub upn: String,
    /// `Member` / `Guest` (else empty).
    pub user_type: String,
    /// Partner roles held now.
    pub roles: Vec<&'static str>,
    /// `registered`, `unregistered` or `unknown`.
    pub mfa_registration: &'static str,
    /// Methods registered.
    pub methods_registered: Vec<String>,
    /// Latest sign-in (`1970-01-01 00:00:00` when none was seen).
    pub last_sign_in: EventTime,
    /// Whether it satisfied MFA: `yes`, `no` or `unknown`.
    pub last_sign_in_mfa: &'static str,
    /// Policy version.
    pub policy_version: String,
    /// Row version.
    pub version: u64,
}
