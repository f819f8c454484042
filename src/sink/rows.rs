//! The rows of `rollout_daily`, `rollout_surfaces`, `agents` and `dead_letters` (`findings` rows are
//! [`crate::policy::Finding`]).

use crate::event::time::{Day, EventTime};
use crate::policy::Policy;
use crate::state::{DayCounters, Readiness, ShareCount};
use serde::{Deserialize, Serialize};

/// The counter columns of `rollout_daily`. A policy fills them through its surfaces'
/// `rollout_columns` and its `[[counters]]`; a column it does not name stays 0. Every
/// declared surface's share is also in `rollout_surfaces`, whatever its name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The columns of a day's counters, as the policy maps them.
    pub fn from_counters(policy: &Policy, c: &DayCounters) -> DayStats {
        let mut d = DayStats {
            partner_role_users: c.partner_role_users,
            partner_role_users_registered: c.partner_role_users_registered,
            exceptions_open: c.exceptions_open,
            exceptions_overdue: c.exceptions_overdue,
            exceptions_approved: c.exceptions_approved,
            findings: c.findings,
            findings_uncovered_critical: c.uncovered[3],
            findings_uncovered_high: c.uncovered[2],
            ..DayStats::default()
        };
        for (i, s) in policy.surfaces.iter().enumerate() {
            let share = c.share(i);
            match s.rollout_columns.as_deref() {
                Some("api_app_user_calls") => {
                    d.api_app_user_calls = share.total;
                    d.api_app_user_calls_mfa = share.mfa;
                    d.api_app_user_calls_excepted = share.excepted;
                    d.api_app_user_calls_mfa_unknown = share.mfa_unknown;
                }
                Some("dashboard_protected_requests") => {
                    d.dashboard_protected_requests = share.total;
                    d.dashboard_protected_requests_mfa = share.mfa;
                    d.dashboard_protected_requests_excepted = share.excepted;
                    d.dashboard_protected_requests_mfa_unknown = share.mfa_unknown;
                }
                Some("delegated_admin_signins") => {
                    d.delegated_admin_signins = share.total;
                    d.delegated_admin_signins_mfa = share.mfa;
                    d.delegated_admin_signins_excepted = share.excepted;
                }
                _ => {}
            }
        }
        for (i, k) in policy.counters.iter().enumerate() {
            let n = c.counter(i);
            match k.name.as_str() {
                "api_app_only_calls" => d.api_app_only_calls = n,
                "legacy_protocol_signins" => d.legacy_protocol_signins = n,
                "password_flow_tokens" => d.password_flow_tokens = n,
                _ => {}
            }
        }
        d
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
}

fn share(part: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| part as f64 / total as f64)
}

/// One `rollout_surfaces` row: one declared surface's MFA share for (tenant, day, policy
/// version), absolute, replaced by a row of higher `version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurfaceRow {
    /// Partner tenant.
    #[serde(serialize_with = "crate::event::scrub::ser")]
    pub tenant_id: String,
    /// UTC day.
    #[serde(
        serialize_with = "crate::event::time::date_text",
        deserialize_with = "day_text"
    )]
    pub day: Day,
    /// Policy version.
    pub policy_version: String,
    /// The surface, as the policy names it.
    pub surface: String,
    /// Whether the surface is enforced at the day's start (`true`/`false` in files, 1/0
    /// read back from ClickHouse).
    #[serde(deserialize_with = "flag")]
    pub enforced: bool,
    /// Events counted.
    pub total: u64,
    /// Of those, with MFA.
    pub mfa: u64,
    /// Of those without, covered by an exception.
    pub excepted: u64,
    /// Of those, MFA unknown.
    pub mfa_unknown: u64,
    /// Events apart from `total`: MFA demanded and not performed (enforcement seen
    /// working; the share's `demanded` condition).
    #[serde(default)]
    pub demanded: u64,
    /// Row version (as `rollout_daily`'s).
    pub version: u64,
}

impl SurfaceRow {
    /// The share's counts.
    pub fn counts(&self) -> ShareCount {
        ShareCount {
            total: self.total,
            mfa: self.mfa,
            excepted: self.excepted,
            mfa_unknown: self.mfa_unknown,
            demanded: self.demanded,
        }
    }
}

/// One `dead_letters` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The input (file path, `stdin`, or `topic` in Kafka mode).
    #[serde(serialize_with = "crate::event::scrub::ser")]
    pub source: String,
    /// Where in it (`line 12`, `line 12 record 3`, or `partition 2 offset 991`).
    #[serde(serialize_with = "crate::event::scrub::ser")]
    pub position: String,
    /// `code: detail`; the code is bounded (see `event::Reason`).
    #[serde(serialize_with = "crate::event::scrub::ser")]
    pub reason: String,
    /// The document's first 512 bytes at most, tokens redacted.
    #[serde(serialize_with = "crate::event::scrub::ser")]
    pub excerpt: String,
}

/// One `rollout_daily` row: absolute values for (tenant, day, policy version), replaced
/// by a row of higher `version`, never summed. The counters are [`DayStats`]' fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolloutRow {
    /// Partner tenant.
    #[serde(serialize_with = "crate::event::scrub::ser")]
    pub tenant_id: String,
    /// UTC day.
    #[serde(serialize_with = "crate::event::time::date_text")]
    pub day: Day,
    /// Policy version.
    pub policy_version: String,
    /// The day's counters.
    #[serde(flatten)]
    pub stats: DayStats,
    /// Readiness on this day.
    pub status: &'static str,
    /// Readiness over the 7 days ending on this day.
    pub status_7d: &'static str,
    /// The tenant's event count when the row was made: a later row of the same key
    /// has a version at least as high.
    pub version: u64,
}

impl RolloutRow {
    /// Builds the row from the day's counters and statuses.
    pub fn new(
        tenant_id: &str,
        day: Day,
        policy_version: &str,
        stats: &DayStats,
        status: Readiness,
        status_7d: Readiness,
        version: u64,
    ) -> Self {
        Self {
            tenant_id: tenant_id.to_owned(),
            day,
            policy_version: policy_version.to_owned(),
            stats: stats.clone(),
            status: status.name(),
            status_7d: status_7d.name(),
            version,
        }
    }
}

/// One `agents` row: a user who holds (or held) a partner role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentRow {
    /// Partner tenant.
    #[serde(serialize_with = "crate::event::scrub::ser")]
    pub tenant_id: String,
    /// User object id.
    #[serde(serialize_with = "crate::event::scrub::ser")]
    pub user_id: String,
    /// UPN (else empty).
    #[serde(serialize_with = "crate::event::scrub::ser")]
    pub upn: String,
    /// `Member` / `Guest` (else empty).
    #[serde(serialize_with = "crate::event::scrub::ser")]
    pub user_type: String,
    /// Partner roles held now.
    pub roles: Vec<&'static str>,
    /// `registered`, `unregistered` or `unknown`.
    pub mfa_registration: &'static str,
    /// Methods registered.
    #[serde(serialize_with = "crate::event::scrub::ser_all")]
    pub methods_registered: Vec<String>,
    /// Latest sign-in (`1970-01-01 00:00:00` when none was seen).
    #[serde(serialize_with = "crate::event::time::datetime_text")]
    pub last_sign_in: EventTime,
    /// Whether it satisfied MFA: `yes`, `no` or `unknown`.
    pub last_sign_in_mfa: &'static str,
    /// Policy version.
    pub policy_version: String,
    /// Row version.
    pub version: u64,
}

/// A `YYYY-MM-DD` day, as the rows write it.
pub(crate) fn day_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Day, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    EventTime::parse(&text)
        .map(|t| t.day())
        .ok_or_else(|| serde::de::Error::custom(format!("not a date: {text:?}")))
}

/// A flag written as `true`/`false` (files) or `1`/`0` (ClickHouse `UInt8`).
pub(crate) fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Int(u64),
    }
    Ok(match Flag::deserialize(d)? {
        Flag::Bool(b) => b,
        Flag::Int(i) => i != 0,
    })
}
