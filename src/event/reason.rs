//! Why a document (or one record of a batch) was not processed: a bounded code and a
//! detail, the dead letter's `reason`.

/// Why a document (or one record of a batch) was not processed: the dead letter's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Not valid JSON (or not UTF-8).
    NotJson,
    /// Valid JSON, but not an object.
    NotAnObject,
    /// An object of no kind we know.
    UnknownShape,
    /// A field of the wrong type.
    WrongType,
    /// A field the kind requires is absent.
    MissingField,
    /// A value outside its allowed set (a role, an action, a status).
    BadValue,
    /// A timestamp that does not parse.
    BadTime,
    /// A bearer token that is not a readable JWT.
    BadToken,
    /// A bearer token over the size limit.
    TokenOversized,
    /// A document over the size limit.
    Oversized,
    /// An object with the same key twice (which one to believe is a guess).
    DuplicateKey,
    /// A `policy_override` its policy does not allow (an unknown policy or surface, a
    /// date past the postponement limit).
    OverrideRejected,
    /// An event dated further past the time it was processed than the allowed clock skew
    /// (`pipeline.future_skew_hours`): one such event would move its tenant's readiness
    /// day ahead and end its replay window.
    FutureTime,
    /// Applying it would take state past a configured bound (`pipeline.max_tenants`,
    /// `pipeline.max_users_per_tenant`): refused, never silently dropped.
    StateLimit,
}

impl Reason {
    /// Every reason, for metrics and docs.
    pub const ALL: [Reason; 14] = [
        Reason::NotJson,
        Reason::NotAnObject,
        Reason::UnknownShape,
        Reason::WrongType,
        Reason::MissingField,
        Reason::BadValue,
        Reason::BadTime,
        Reason::BadToken,
        Reason::TokenOversized,
        Reason::Oversized,
        Reason::DuplicateKey,
        Reason::OverrideRejected,
        Reason::FutureTime,
        Reason::StateLimit,
    ];

    /// The bounded code (metric label, start of the dead letter's `reason`).
    pub fn code(self) -> &'static str {
        match self {
            Reason::NotJson => "not_json",
            Reason::NotAnObject => "not_an_object",
            Reason::UnknownShape => "unknown_shape",
            Reason::WrongType => "wrong_type",
            Reason::MissingField => "missing_field",
            Reason::BadValue => "bad_value",
            Reason::BadTime => "bad_time",
            Reason::BadToken => "bad_token",
            Reason::TokenOversized => "token_oversized",
            Reason::Oversized => "oversized",
            Reason::DuplicateKey => "duplicate_key",
            Reason::OverrideRejected => "override_rejected",
            Reason::FutureTime => "future_time",
            Reason::StateLimit => "state_limit",
        }
    }
}

/// A document or record that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadDocument {
    /// The bounded reason.
    pub reason: Reason,
    /// What exactly (a field name, the parser's message); never token material.
    pub detail: String,
}

impl BadDocument {
    /// A bad document with its reason and detail.
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }

    /// `code: detail`, the dead letter's `reason` column: credentials removed from the
    /// detail (a parser's message may quote the input) and cut to
    /// [`scrub::MAX_REASON_BYTES`](super::scrub::MAX_REASON_BYTES).
    pub fn reason_text(&self) -> String {
        if self.detail.is_empty() {
            self.reason.code().to_owned()
        } else {
            let full = format!("{}: {}", self.reason.code(), self.detail);
            super::scrub::cut(&super::scrub::text(&full), super::scrub::MAX_REASON_BYTES).to_owned()
        }
    }
}
