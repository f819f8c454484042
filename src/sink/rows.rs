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
/// by a row of higher `version`, never summed. The counters are [`DayStats`]' fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolloutRow {
    /// Partner tenant.
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
    #[serde(serialize_with = "crate::event::time::datetime_text")]
    pub last_sign_in: EventTime,
    /// Whether it satisfied MFA: `yes`, `no` or `unknown`.
    pub last_sign_in_mfa: &'static str,
    /// Policy version.
    pub policy_version: String,
    /// Row version.
    pub version: u64,
}
