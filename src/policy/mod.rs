//! Policy versions as data ([`load`]), and evaluation of every rule on one event
//! ([`evaluate`]): a value (findings, counters, and why a rule did not apply), never an
//! error that stops the pipeline.

pub mod attr;
pub mod compile;
pub mod cond;
pub mod eval;
pub mod facts;
pub mod load;
pub mod model;
mod ops;
pub mod readiness;
pub mod template;
pub mod windows;

pub use eval::{evaluate, Evaluation, Outcome, RuleTrace, Trace};
pub use load::{load, shipped, PolicyError, DEFAULT_POLICY, SHIPPED};
pub use model::{Policy, Rule, Severity, SurfaceDef};

use crate::event::time::EventTime;
use serde::Serialize;
use std::sync::Arc;

/// One finding: one row of `findings` (key: `event_id`, `rule_id`). The field order and
/// names are the `findings` table's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The event's id.
    #[serde(serialize_with = "crate::event::scrub::ser")]
    pub event_id: String,
    /// The event's time.
    #[serde(serialize_with = "crate::event::time::datetime_text")]
    pub event_time: EventTime,
    /// The partner tenant.
    #[serde(serialize_with = "crate::event::scrub::ser")]
    pub tenant_id: String,
    /// The customer tenant, for delegated admin (else empty).
    #[serde(serialize_with = "crate::event::scrub::ser")]
    pub customer_tenant_id: String,
    /// The user's object id (else empty).
    #[serde(serialize_with = "crate::event::scrub::ser")]
    pub user_id: String,
    /// The user's UPN (else empty).
    #[serde(serialize_with = "crate::event::scrub::ser")]
    pub upn: String,
    /// The rule id.
    pub rule_id: Arc<str>,
    /// Its severity.
    #[serde(serialize_with = "by_name_severity")]
    pub severity: Severity,
    /// Its surface.
    pub surface: Arc<str>,
    /// The policy version that produced it.
    pub policy_version: Arc<str>,
    /// At or after the surface's enforcement date.
    pub enforced: bool,
    /// Covered by an approved technical exception.
    pub excepted: bool,
    /// Client application id.
    #[serde(serialize_with = "crate::event::scrub::ser")]
    pub app_id: String,
    /// `clientAppUsed` of a sign-in (else empty).
    #[serde(serialize_with = "crate::event::scrub::ser")]
    pub client_app: String,
    /// SHA-256 of the bearer token (else empty): never the token.
    pub token_sha256: String,
    /// A short explanation.
    #[serde(serialize_with = "crate::event::scrub::ser")]
    pub detail: String,
}

fn by_name_severity<S: serde::Serializer>(v: &Severity, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.name())
}
