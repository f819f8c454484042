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
pub mod near;
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
    /// The attributes the rule carries (`context = [...]`), name to value; absent ones
    /// left out. Not written when the rule carries none (rows stay as they were); else
    /// written as JSON text, in files as in ClickHouse's `String` column, so that a
    /// findings file loads into ClickHouse 18.16 as it is (it reads no object into a
    /// `String`).
    #[serde(
        skip_serializing_if = "Context::is_empty",
        serialize_with = "context_text"
    )]
    pub context: Context,
}

/// A finding's `context`: attribute name to value (text, bool, number or list), in the
/// rule's order, written as the text of a JSON object (in NDJSON rows, ClickHouse's
/// `findings.context` column and the findings topic alike); texts are scrubbed as the
/// row's are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context(pub Vec<(&'static str, serde_json::Value)>);

impl Context {
    /// Whether it holds nothing (no allocation behind it).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// As JSON text (`{}` when empty), for ClickHouse's `String` column.
    pub fn to_json_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

impl Serialize for Context {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, &Scrubbed(v))?;
        }
        m.end()
    }
}

/// A JSON value with its texts scrubbed (`crate::event::scrub::text`).
struct Scrubbed<'a>(&'a serde_json::Value);

impl Serialize for Scrubbed<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            serde_json::Value::String(t) => s.serialize_str(&crate::event::scrub::text(t)),
            serde_json::Value::Array(a) => s.collect_seq(a.iter().map(Scrubbed)),
            other => other.serialize(s),
        }
    }
}

fn context_text<S: serde::Serializer>(c: &Context, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&c.to_json_text())
}

fn by_name_severity<S: serde::Serializer>(v: &Severity, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.name())
}
