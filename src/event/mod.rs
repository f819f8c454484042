//! Events: what mfa-audit judges. A document is recognised by its shape and decoded into
//! an [`Event`] borrowing from the input ([`decode`]); one that cannot be becomes a
//! [`BadDocument`] with a bounded [`Reason`]: never a panic, never silence.
//!
//! - [`facts`]: the vocabulary: roles, and one type per input kind.
//! - [`decode`](mod@decode): recognising and decoding documents and batch records.
//! - [`directory`]: Entra audit records, registration reports and GDAP, in Microsoft's
//!   own shapes.
//! - [`reason`]: why a document is a dead letter.
//! - [`scrub`]: credentials out of every text that leaves the process.
//! - [`wire`], [`token`], [`time`]: the JSON field shapes, bearer tokens, timestamps.

pub mod decode;
pub mod directory;
pub mod facts;
pub mod few;
pub mod reason;
pub mod scrub;
pub mod time;
pub mod token;
pub mod wire;

pub use decode::{decode, decode_each, decode_with, derived_id, Item};
pub use facts::{
    ApiCaller, ApiRequest, DashboardRequest, ExceptionStatus, PolicyOverride, Registration, Role,
    RoleAction, RoleAssignment, RoleSet, SignIn, TechnicalException,
};
pub use reason::{BadDocument, Reason};

use time::EventTime;
use wire::Text;

/// One decoded event. Not boxed: an event lives on the stack for the span of one
/// document, and a box would cost an allocation per sign-in on the hot path.
#[allow(clippy::large_enum_variant)]
pub enum Event<'a> {
    /// A sign-in record.
    SignIn(SignIn<'a>),
    /// A Partner Center API request.
    Api(ApiRequest<'a>),
    /// A Partner Center dashboard request.
    Dashboard(DashboardRequest<'a>),
    /// A role assignment.
    Role(RoleAssignment<'a>),
    /// An MFA registration snapshot row.
    Registration(Registration<'a>),
    /// A technical exception.
    Exception(TechnicalException<'a>),
    /// A tenant's own enforcement date for a surface.
    Override(PolicyOverride<'a>),
    /// An Entra audit record (boxed: rare beside sign-ins, and large).
    Audit(Box<directory::DirectoryAudit>),
    /// A GDAP relationship.
    Gdap(Box<directory::GdapRelationship>),
    /// A GDAP access assignment.
    GdapAssignment(Box<directory::GdapAssignment>),
    /// An Azure Monitor record of a category no rule judges (`RiskyUsers`,
    /// `ProvisioningLogs`, ...): counted by category, never judged as a sign-in.
    Skipped(Skipped<'a>),
}

/// A record of a category no rule judges.
pub struct Skipped<'a> {
    /// The record's `category` (bounded: one of [`directory::OTHER_CATEGORIES`] or
    /// `other`).
    pub category: &'static str,
    /// The record's tenant, where it names one.
    pub tenant_id: Text<'a>,
    /// Derived from the content.
    pub event_id: Text<'a>,
    /// The record's time (epoch when it has none: it is not judged).
    pub time: EventTime,
}

/// Every event kind's name, in [`Event::kind_index`] order.
pub const KINDS: [&str; 11] = [
    "sign_in",
    "partner_api_request",
    "dashboard_request",
    "partner_role_assignment",
    "mfa_registration",
    "technical_exception",
    "policy_override",
    "directory_audit",
    "gdap_relationship",
    "gdap_access_assignment",
    "skipped_record",
];

impl Event<'_> {
    /// The kind's position in [`KINDS`].
    pub fn kind_index(&self) -> usize {
        match self {
            Event::SignIn(_) => 0,
            Event::Api(_) => 1,
            Event::Dashboard(_) => 2,
            Event::Role(_) => 3,
            Event::Registration(_) => 4,
            Event::Exception(_) => 5,
            Event::Override(_) => 6,
            Event::Audit(_) => 7,
            Event::Gdap(_) => 8,
            Event::GdapAssignment(_) => 9,
            Event::Skipped(_) => 10,
        }
    }

    /// The kind's name, for metrics (`kind` label).
    pub fn kind(&self) -> &'static str {
        KINDS.get(self.kind_index()).copied().unwrap_or("unknown")
    }

    /// The partner tenant the event belongs to.
    pub fn tenant_id(&self) -> &str {
        match self {
            Event::SignIn(e) => &e.tenant_id,
            Event::Api(e) => &e.tenant_id,
            Event::Dashboard(e) => &e.tenant_id,
            Event::Role(e) => &e.tenant_id,
            Event::Registration(e) => &e.tenant_id,
            Event::Exception(e) => &e.tenant_id,
            Event::Override(e) => &e.tenant_id,
            Event::Audit(e) => &e.tenant_id,
            Event::Gdap(e) => &e.tenant_id,
            Event::GdapAssignment(e) => &e.tenant_id,
            Event::Skipped(e) => &e.tenant_id,
        }
    }

    /// The event id.
    pub fn event_id(&self) -> &str {
        match self {
            Event::SignIn(e) => &e.event_id,
            Event::Api(e) => &e.event_id,
            Event::Dashboard(e) => &e.event_id,
            Event::Role(e) => &e.event_id,
            Event::Registration(e) => &e.event_id,
            Event::Exception(e) => &e.event_id,
            Event::Override(e) => &e.event_id,
            Event::Audit(e) => &e.event_id,
            Event::Gdap(e) => &e.event_id,
            Event::GdapAssignment(e) => &e.event_id,
            Event::Skipped(e) => &e.event_id,
        }
    }

    /// The event time.
    pub fn time(&self) -> EventTime {
        match self {
            Event::SignIn(e) => e.time,
            Event::Api(e) => e.time,
            Event::Dashboard(e) => e.time,
            Event::Role(e) => e.time,
            Event::Registration(e) => e.time,
            Event::Exception(e) => e.time,
            Event::Override(e) => e.time,
            Event::Audit(e) => e.time,
            Event::Gdap(e) => e.time,
            Event::GdapAssignment(e) => e.time,
            Event::Skipped(e) => e.time,
        }
    }
}
