//! Recognise a document by its shape and decode it into an [`Event`], borrowing from the
//! input. A document that cannot be decoded becomes a [`BadDocument`] with a bounded
//! reason code: never a panic, never silence.

pub mod time;
pub mod token;
pub mod wire;

use self::time::EventTime;
use self::token::{TokenError, TokenInfo, TokenReader};
use self::wire::{SignInProps, Text, Wire};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// A partner role (EVENTS.md `partner_role_assignment.role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Admin agent.
    AdminAgent,
    /// Sales agent.
    SalesAgent,
    /// Helpdesk agent.
    HelpdeskAgent,
    /// Global admin (a partner role from the 2020 version on).
    GlobalAdmin,
    /// Billing admin (a partner role from the 2020 version on).
    BillingAdmin,
    /// Security admin (a partner role on the current "Mandating MFA for your partner
    /// tenant" page, where the 2020 text had global admin).
    SecurityAdmin,
}

impl Role {
    /// Every role, in a fixed order.
    pub const ALL: [Role; 6] = [
        Role::AdminAgent,
        Role::SalesAgent,
        Role::HelpdeskAgent,
        Role::GlobalAdmin,
        Role::BillingAdmin,
        Role::SecurityAdmin,
    ];

    /// The name used in events and policy files.
    pub fn name(self) -> &'static str {
        match self {
            Role::AdminAgent => "AdminAgent",
            Role::SalesAgent => "SalesAgent",
            Role::HelpdeskAgent => "HelpdeskAgent",
            Role::GlobalAdmin => "GlobalAdmin",
            Role::BillingAdmin => "BillingAdmin",
            Role::SecurityAdmin => "SecurityAdmin",
        }
    }

    /// Parses a role name, ignoring case, blanks and `_`/`-`/` ` between words
    /// (`admin_agent`, `Admin Agent`, `AdminAgent`).
    pub fn parse(s: &str) -> Option<Role> {
        let key: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Role::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(&key))
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A small set of roles.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct RoleSet(u8);

impl RoleSet {
    /// Adds a role.
    pub fn insert(&mut self, r: Role) {
        self.0 |= r.bit();
    }
    /// Removes a role.
    pub fn remove(&mut self, r: Role) {
        self.0 &= !r.bit();
    }
    /// Holds `r`.
    pub fn contains(self, r: Role) -> bool {
        self.0 & r.bit() != 0
    }
    /// Holds none.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Shares a role with `other`.
    pub fn intersects(self, other: RoleSet) -> bool {
        self.0 & other.0 != 0
    }
    /// The roles held, in [`Role::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.contains(*r))
    }
}

impl FromIterator<Role> for RoleSet {
    fn from_iter<I: IntoIterator<Item = Role>>(iter: I) -> Self {
        let mut s = RoleSet::default();
        for r in iter {
            s.insert(r);
        }
        s
    }
}

/// A sign-in record (Azure Monitor record or Graph `signIn`).
pub struct SignIn<'a> {
    /// `properties.id`, or derived from the content.
    pub event_id: Text<'a>,
    /// `createdDateTime`, else the record's `time`.
    pub time: EventTime,
    /// The partner tenant: `homeTenantId`, else the record's `tenantId`.
    pub tenant_id: Text<'a>,
    /// The record's `resultType` (success is `0`).
    pub result_type: Option<String>,
    /// The record's `category` (`SignInLogs`, `NonInteractiveUserSignInLogs`, ...);
    /// `None` for a Graph `signIn`.
    pub category: Option<Text<'a>>,
    /// The sign-in fields.
    pub props: SignInProps<'a>,
}

impl SignIn<'_> {
    /// Succeeded (`status.errorCode = 0`, else `resultType`: `0` or `Success`, as
    /// Microsoft's 2019 schema wrote it; another number or `Failure` is a failure);
    /// `None` when unknown or unreadable (never a guess from `resultSignature`).
    pub fn succeeded(&self) -> Option<bool> {
        match self.props.status.as_ref().and_then(|s| s.error_code) {
            Some(code) => Some(code == 0),
            None => {
                let r = self.result_type.as_deref()?.trim();
                if r.eq_ignore_ascii_case("success") {
                    Some(true)
                } else if r.eq_ignore_ascii_case("failure") {
                    Some(false)
                } else {
                    r.parse::<i64>().ok().map(|code| code == 0)
                }
            }
        }
    }

    /// Whose sign-in: `workload` for the service-principal and managed-identity
    /// categories (or a record with a `servicePrincipalId` and no user), `adfs` for AD FS
    /// sign-ins Entra forwards, else `user`.
    pub fn identity(&self) -> &'static str {
        let category = self.category.as_deref().map(str::trim).unwrap_or("");
        let is = |c: &str| category.eq_ignore_ascii_case(c);
        if is("ServicePrincipalSignInLogs")
            || is("MicrosoftServicePrincipalSignInLogs")
            || is("ManagedIdentitySignInLogs")
        {
            return "workload";
        }
        if is("ADFSSignInLogs") {
            return "adfs";
        }
        let has = |v: &Option<Text<'_>>| v.as_deref().is_some_and(|x| !x.trim().is_empty());
        if has(&self.props.service_principal_id) && !has(&self.props.user_id) {
            return "workload";
        }
        "user"
    }

    /// The customer tenant of a sign-in into another tenant than the home one.
    pub fn resource_tenant_if_foreign(&self) -> Option<&str> {
        let home = self.props.home_tenant_id.as_deref()?;
        let res = self.props.resource_tenant_id.as_deref()?;
        (!home.eq_ignore_ascii_case(res)).then_some(res)
    }
}

/// Who called the Partner Center API.
pub enum ApiCaller<'a> {
    /// The bearer token the gateway saw (decoded; the raw token is gone).
    Token(Arc<TokenInfo>),
    /// No token: the `partnerRequests` report's own fields.
    Report {
        /// `objectId`.
        object_id: Text<'a>,
        /// `upn`.
        upn: Option<Text<'a>>,
        /// `mfaCompliant`; `None` when the row does not say.
        mfa_compliant: Option<bool>,
    },
    /// No token and no user: an app-only call.
    AppOnly,
}

/// A Partner Center API request.
pub struct ApiRequest<'a> {
    /// `requestId`, or derived.
    pub event_id: Text<'a>,
    /// `requestDateTime`.
    pub time: EventTime,
    /// `tenantId`, else the token's `tid`.
    pub tenant_id: String,
    /// HTTP status answered.
    pub status_code: Option<i64>,
    /// `operationName`.
    pub operation_name: Option<Text<'a>>,
    /// `applicationId`, else the token's `appid`/`azp`.
    pub application_id: Option<String>,
    /// The caller.
    pub caller: ApiCaller<'a>,
    /// `errorCode`: Partner Center's error code in the response.
    pub error_code: Option<String>,
    /// `isMfaCompliant`: the MFA verdict the API returned.
    pub mfa_verdict: Option<bool>,
}

/// A Partner Center dashboard request.
pub struct DashboardRequest<'a> {
    /// `requestId`, or derived.
    pub event_id: Text<'a>,
    /// `time`.
    pub time: EventTime,
    /// `tenantId`.
    pub tenant_id: Text<'a>,
    /// `userId`.
    pub user_id: Option<Text<'a>>,
    /// `upn`.
    pub upn: Option<Text<'a>>,
    /// `sessionId`.
    pub session_id: Option<Text<'a>>,
    /// `url`.
    pub url: Text<'a>,
    /// `statusCode`.
    pub status_code: Option<i64>,
    /// `roles` as sent (unknown names are skipped); empty when absent.
    pub roles: RoleSet,
    /// `sessionAmr`, when the front end knows it.
    pub session_amr: Option<Vec<Text<'a>>>,
}

/// Add or remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleAction {
    /// The user gains the role.
    Add,
    /// The user loses it.
    Remove,
}

/// A `partner_role_assignment` fact.
pub struct RoleAssignment<'a> {
    /// Derived from the content.
    pub event_id: Text<'a>,
    /// `time`.
    pub time: EventTime,
    /// `tenantId`.
    pub tenant_id: Text<'a>,
    /// `userId`.
    pub user_id: Text<'a>,
    /// `upn`.
    pub upn: Option<Text<'a>>,
    /// `userType`.
    pub user_type: Option<Text<'a>>,
    /// `role`.
    pub role: Role,
    /// `action`.
    pub action: RoleAction,
}

/// An `mfa_registration` fact (a Graph `userRegistrationDetails` row).
pub struct Registration<'a> {
    /// Derived from the content.
    pub event_id: Text<'a>,
    /// `time`.
    pub time: EventTime,
    /// `tenantId`.
    pub tenant_id: Text<'a>,
    /// `userId`.
    pub user_id: Text<'a>,
    /// `isMfaRegistered`.
    pub registered: bool,
    /// `methodsRegistered`.
    pub methods: Vec<Text<'a>>,
}

/// A technical exception's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ExceptionStatus {
    /// Asked for, not yet answered.
    Requested,
    /// Approved: may cover findings.
    Approved,
    /// Rejected.
    Rejected,
    /// Expired.
    Expired,
}

impl ExceptionStatus {
    fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "requested" => Some(Self::Requested),
            "approved" => Some(Self::Approved),
            "rejected" => Some(Self::Rejected),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }
}

/// A `technical_exception` fact.
pub struct TechnicalException<'a> {
    /// Derived from the content.
    pub event_id: Text<'a>,
    /// `time`: when the status took effect.
    pub time: EventTime,
    /// `tenantId`.
    pub tenant_id: Text<'a>,
    /// `exceptionId`.
    pub exception_id: Text<'a>,
    /// `status`.
    pub status: ExceptionStatus,
    /// `reason` (a reason id of the policy file).
    pub reason: Text<'a>,
    /// `users`: user ids or UPNs it is limited to; `None` covers the whole tenant.
    pub users: Option<Vec<Text<'a>>>,
    /// `expiresAt`.
    pub expires_at: Option<EventTime>,
}

/// A `policy_override` fact: a tenant moves one surface's enforcement date of one
/// policy (Microsoft lets a tenant postpone a phase of Azure's mandatory MFA). Whether the
/// policy and surface exist and allow that date is the pipeline's check: it knows the
/// policies.
pub struct PolicyOverride<'a> {
    /// Derived from the content.
    pub event_id: Text<'a>,
    /// `time`: from when the override holds.
    pub time: EventTime,
    /// `tenantId`.
    pub tenant_id: Text<'a>,
    /// `policy`: the policy version it applies to.
    pub policy: Text<'a>,
    /// `surface`: the surface of that policy.
    pub surface: Text<'a>,
    /// `enforcedFrom`: the surface's new enforcement date for this tenant.
    pub enforced_from: EventTime,
}

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
}

/// Every event kind's name, in [`Event::kind_index`] order.
pub const KINDS: [&str; 7] = [
    "sign_in",
    "partner_api_request",
    "dashboard_request",
    "partner_role_assignment",
    "mfa_registration",
    "technical_exception",
    "policy_override",
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
        }
    }

    /// The kind's name, for metrics (`kind` label).
    pub fn kind(&self) -> &'static str {
        KINDS[self.kind_index()]
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
        }
    }
}

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
}

impl Reason {
    /// Every reason, for metrics and docs.
    pub const ALL: [Reason; 12] = [
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

    /// `code: detail`, the dead letter's `reason` column.
    pub fn reason_text(&self) -> String {
        if self.detail.is_empty() {
            self.reason.code().to_owned()
        } else {
            format!("{}: {}", self.reason.code(), self.detail)
        }
    }
}

/// One item of a decoded document: a batch yields one per record.
pub struct Item<'a> {
    /// Index of the record in a batch (`None` for a lone document).
    pub record: Option<usize>,
    /// The record's own bytes (for the dead letter's excerpt).
    pub raw: &'a str,
    /// The event, or why not.
    pub event: Result<Event<'a>, BadDocument>,
}

/// A batch parsed in one pass, each record typed: the fast path for a batch whose
/// records are all well formed.
#[derive(serde::Deserialize)]
struct TypedBatch<'a> {
    #[serde(borrow)]
    records: Vec<Wire<'a>>,
}

/// The one-pass batch: `None` unless every record parses, has its own id and decodes, so
/// that ids derived from a record's bytes and dead-letter excerpts come only from the
/// record-by-record path.
fn decode_batch_fast<'a>(doc: &'a str, tokens: &TokenReader) -> Option<Vec<Item<'a>>> {
    let batch = serde_json::from_str::<TypedBatch<'a>>(doc).ok()?;
    let mut items = Vec::with_capacity(batch.records.len());
    for (i, w) in batch.records.into_iter().enumerate() {
        let has_id = w
            .properties
            .as_ref()
            .and_then(|p| p.id.as_deref())
            .is_some_and(|id| !id.trim().is_empty());
        if !has_id || w.records.is_some() || w.kind.is_some() {
            return None;
        }
        let event = recognise(w, doc, tokens, None).ok()?;
        items.push(Item {
            record: Some(i),
            raw: doc,
            event: Ok(event),
        });
    }
    Some(items)
}

/// Decodes one document into its items (one, or one per record of a batch).
pub fn decode<'a>(doc: &'a str, tokens: &TokenReader) -> Vec<Item<'a>> {
    decode_with(doc, tokens, None)
}

/// [`decode`], with the tenant of sign-in records that carry none (`--tenant`: a Graph
/// `signIn` export of one tenant has no tenant id).
pub fn decode_with<'a>(
    doc: &'a str,
    tokens: &TokenReader,
    default_tenant: Option<&str>,
) -> Vec<Item<'a>> {
    // An Event Hubs batch is parsed once, records typed; only when a record is malformed
    // is it parsed again record by record, so that the bad one alone is dead-lettered.
    if doc.trim_start().starts_with("{\"records\"") {
        if let Some(items) = decode_batch_fast(doc, tokens) {
            return items;
        }
    }
    let wire: Wire<'a> = match serde_json::from_str(doc) {
        Ok(w) => w,
        Err(e) => {
            return vec![Item {
                record: None,
                raw: doc,
                event: Err(json_error(doc, &e)),
            }]
        }
    };
    if let Some(batch) = wire.records.as_ref().or(wire.value.as_ref()) {
        if wire.kind.is_none() && wire.properties.is_none() {
            return batch
                .iter()
                .enumerate()
                .map(|(i, rec)| {
                    let raw = rec.get();
                    let event = serde_json::from_str::<Wire<'a>>(raw)
                        .map_err(|e| json_error(raw, &e))
                        .and_then(|w| {
                            if w.records.is_some() {
                                Err(BadDocument::new(Reason::UnknownShape, "nested batch"))
                            } else {
                                recognise(w, raw, tokens, default_tenant)
                            }
                        });
                    Item {
                        record: Some(i),
                        raw,
                        event,
                    }
                })
                .collect();
        }
    }
    vec![Item {
        record: None,
        raw: doc,
        event: recognise(wire, doc, tokens, default_tenant),
    }]
}

fn json_error(doc: &str, e: &serde_json::Error) -> BadDocument {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => {
            let trimmed = doc.trim_start();
            if !trimmed.starts_with('{') {
                BadDocument::new(Reason::NotAnObject, "a document must be a JSON object")
            } else if e.to_string().starts_with("duplicate field") {
                BadDocument::new(Reason::DuplicateKey, e.to_string())
            } else {
                BadDocument::new(Reason::WrongType, e.to_string())
            }
        }
        Category::Syntax | Category::Eof | Category::Io => {
            BadDocument::new(Reason::NotJson, e.to_string())
        }
    }
}

/// The stable id of a document without one: the first 128 bits of its SHA-256, in hex.
pub fn derived_id(raw: &str) -> String {
    let d = Sha256::digest(raw.trim().as_bytes());
    hex::encode(&d[..16])
}

fn id_or_derived<'a>(id: Option<Text<'a>>, raw: &str) -> Text<'a> {
    match id {
        Some(id) if !id.trim().is_empty() => id,
        _ => Cow::Owned(derived_id(raw)),
    }
}

fn required<'a>(v: Option<Text<'a>>, field: &str) -> Result<Text<'a>, BadDocument> {
    match v {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(BadDocument::new(Reason::MissingField, format!("`{field}`"))),
    }
}

fn required_time(v: Option<&str>, field: &str) -> Result<EventTime, BadDocument> {
    let s = v.ok_or_else(|| BadDocument::new(Reason::MissingField, format!("`{field}`")))?;
    EventTime::parse(s).ok_or_else(|| {
        let shown: String = s.chars().take(40).collect();
        BadDocument::new(Reason::BadTime, format!("`{field}` = `{shown}`"))
    })
}

fn recognise<'a>(
    wire: Wire<'a>,
    raw: &'a str,
    tokens: &TokenReader,
    default_tenant: Option<&str>,
) -> Result<Event<'a>, BadDocument> {
    if let Some(kind) = wire.kind.as_deref() {
        return match kind {
            "partner_api_request" => api_request(wire, raw, tokens).map(Event::Api),
            "dashboard_request" => dashboard(wire, raw).map(Event::Dashboard),
            "partner_role_assignment" => role(wire, raw).map(Event::Role),
            "mfa_registration" => registration(wire, raw).map(Event::Registration),
            "technical_exception" => exception(wire, raw).map(Event::Exception),
            "policy_override" => policy_override(wire, raw).map(Event::Override),
            other => {
                let shown: String = other.chars().take(40).collect();
                Err(BadDocument::new(
                    Reason::UnknownShape,
                    format!("unknown `type` `{shown}`"),
                ))
            }
        };
    }
    if wire.properties.is_some() {
        return azure_record(wire, raw, default_tenant).map(Event::SignIn);
    }
    if wire.created_date_time.is_some() {
        // A flat Graph signIn: its fields are the `properties` ones, at the top.
        let props: SignInProps<'a> = serde_json::from_str(raw).map_err(|e| json_error(raw, &e))?;
        return sign_in(props, None, None, None, raw, default_tenant).map(Event::SignIn);
    }
    Err(BadDocument::new(
        Reason::UnknownShape,
        "neither `records`, `properties`, `createdDateTime` nor a known `type`",
    ))
}

fn azure_record<'a>(
    mut wire: Wire<'a>,
    raw: &'a str,
    default_tenant: Option<&str>,
) -> Result<SignIn<'a>, BadDocument> {
    let props = wire.properties.take().unwrap_or_default();
    sign_in(
        props,
        wire.time,
        wire.tenant_id,
        wire.result_type,
        raw,
        default_tenant,
    )
    .map(|s| SignIn {
        category: wire.category,
        ..s
    })
}

fn sign_in<'a>(
    props: SignInProps<'a>,
    record_time: Option<Text<'a>>,
    record_tenant: Option<Text<'a>>,
    result_type: Option<String>,
    raw: &'a str,
    default_tenant: Option<&str>,
) -> Result<SignIn<'a>, BadDocument> {
    let time_text = props
        .created_date_time
        .as_deref()
        .or(record_time.as_deref());
    let time = required_time(time_text, "createdDateTime")?;
    let tenant_id = props
        .home_tenant_id
        .clone()
        .filter(|t| !t.trim().is_empty())
        .or(record_tenant)
        .or_else(|| props.resource_tenant_id.clone())
        .filter(|t| !t.trim().is_empty())
        .or_else(|| default_tenant.map(|t| Cow::Owned(t.to_owned())));
    let Some(tenant_id) = tenant_id else {
        return Err(BadDocument::new(
            Reason::MissingField,
            "`homeTenantId` or `tenantId` (a Microsoft Graph signIn export of one tenant carries neither: name the tenant with `--tenant ID`, or `pipeline.tenant` in the configuration)",
        ));
    };
    Ok(SignIn {
        event_id: id_or_derived(props.id.clone(), raw),
        time,
        tenant_id,
        result_type,
        category: None,
        props,
    })
}

fn api_request<'a>(
    wire: Wire<'a>,
    raw: &'a str,
    tokens: &TokenReader,
) -> Result<ApiRequest<'a>, BadDocument> {
    let time = required_time(wire.request_date_time.as_deref(), "requestDateTime")?;
    let caller = match wire.authorization.as_deref() {
        Some(auth) if !auth.trim().is_empty() => match tokens.read(auth) {
            Ok(info) => ApiCaller::Token(info),
            Err(TokenError::Oversized(n)) => {
                return Err(BadDocument::new(
                    Reason::TokenOversized,
                    format!("`authorization` token of {n} bytes"),
                ))
            }
            Err(e @ TokenError::Malformed(_)) => {
                return Err(BadDocument::new(Reason::BadToken, e.to_string()))
            }
        },
        _ => match wire.object_id {
            Some(oid) if !oid.trim().is_empty() => ApiCaller::Report {
                object_id: oid,
                upn: wire.upn,
                mfa_compliant: wire.mfa_compliant,
            },
            _ => ApiCaller::AppOnly,
        },
    };
    let token_claims = match &caller {
        ApiCaller::Token(t) => Some(&t.claims),
        _ => None,
    };
    let tenant_id = wire
        .tenant_id
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .or(token_claims.and_then(|c| c.tid.as_deref()))
        .map(str::to_owned)
        .ok_or_else(|| {
            BadDocument::new(Reason::MissingField, "`tenantId` (nor `tid` in a token)")
        })?;
    let application_id = wire
        .application_id
        .as_deref()
        .or(token_claims.and_then(|c| c.client_id()))
        .map(str::to_owned);
    Ok(ApiRequest {
        event_id: id_or_derived(wire.request_id, raw),
        time,
        tenant_id,
        status_code: wire.status_code,
        operation_name: wire.operation_name,
        application_id,
        caller,
        error_code: wire.error_code,
        mfa_verdict: wire.is_mfa_compliant,
    })
}

fn dashboard<'a>(wire: Wire<'a>, raw: &'a str) -> Result<DashboardRequest<'a>, BadDocument> {
    let time = required_time(wire.time.as_deref(), "time")?;
    Ok(DashboardRequest {
        event_id: id_or_derived(wire.request_id, raw),
        time,
        tenant_id: required(wire.tenant_id, "tenantId")?,
        user_id: wire.user_id,
        upn: wire.upn,
        session_id: wire.session_id,
        url: required(wire.url, "url")?,
        status_code: wire.status_code,
        roles: wire
            .roles
            .iter()
            .flatten()
            .filter_map(|r| Role::parse(r))
            .collect(),
        session_amr: wire.session_amr,
    })
}

fn role<'a>(wire: Wire<'a>, raw: &'a str) -> Result<RoleAssignment<'a>, BadDocument> {
    let time = required_time(wire.time.as_deref(), "time")?;
    let role_text = required(wire.role, "role")?;
    let role = Role::parse(&role_text).ok_or_else(|| {
        let shown: String = role_text.chars().take(40).collect();
        BadDocument::new(Reason::BadValue, format!("unknown `role` `{shown}`"))
    })?;
    let action = match wire
        .action
        .as_deref()
        .map(|a| a.trim().to_ascii_lowercase())
    {
        None => RoleAction::Add,
        Some(a) if a == "add" => RoleAction::Add,
        Some(a) if a == "remove" => RoleAction::Remove,
        Some(a) => {
            let shown: String = a.chars().take(40).collect();
            return Err(BadDocument::new(
                Reason::BadValue,
                format!("unknown `action` `{shown}`"),
            ));
        }
    };
    Ok(RoleAssignment {
        event_id: Cow::Owned(derived_id(raw)),
        time,
        tenant_id: required(wire.tenant_id, "tenantId")?,
        user_id: required(wire.user_id, "userId")?,
        upn: wire.upn,
        user_type: wire.user_type,
        role,
        action,
    })
}

fn registration<'a>(wire: Wire<'a>, raw: &'a str) -> Result<Registration<'a>, BadDocument> {
    let time = required_time(wire.time.as_deref(), "time")?;
    let registered = wire
        .is_mfa_registered
        .ok_or_else(|| BadDocument::new(Reason::MissingField, "`isMfaRegistered`"))?;
    Ok(Registration {
        event_id: Cow::Owned(derived_id(raw)),
        time,
        tenant_id: required(wire.tenant_id, "tenantId")?,
        user_id: required(wire.user_id, "userId")?,
        registered,
        methods: wire.methods_registered.unwrap_or_default(),
    })
}

fn exception<'a>(wire: Wire<'a>, raw: &'a str) -> Result<TechnicalException<'a>, BadDocument> {
    let time = required_time(wire.time.as_deref(), "time")?;
    let status_text = wire
        .status
        .ok_or_else(|| BadDocument::new(Reason::MissingField, "`status`"))?;
    let status = ExceptionStatus::parse(&status_text).ok_or_else(|| {
        let shown: String = status_text.chars().take(40).collect();
        BadDocument::new(Reason::BadValue, format!("unknown `status` `{shown}`"))
    })?;
    let expires_at = match wire.expires_at.as_deref() {
        None => None,
        Some(s) => Some(required_time(Some(s), "expiresAt")?),
    };
    Ok(TechnicalException {
        event_id: Cow::Owned(derived_id(raw)),
        time,
        tenant_id: required(wire.tenant_id, "tenantId")?,
        exception_id: required(wire.exception_id, "exceptionId")?,
        status,
        reason: required(wire.reason, "reason")?,
        users: wire.users,
        expires_at,
    })
}

fn policy_override<'a>(wire: Wire<'a>, raw: &'a str) -> Result<PolicyOverride<'a>, BadDocument> {
    Ok(PolicyOverride {
        event_id: Cow::Owned(derived_id(raw)),
        time: required_time(wire.time.as_deref(), "time")?,
        tenant_id: required(wire.tenant_id, "tenantId")?,
        policy: required(wire.policy, "policy")?,
        surface: required(wire.surface, "surface")?,
        enforced_from: required_time(wire.enforced_from.as_deref(), "enforcedFrom")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(doc: &str) -> Result<Event<'_>, BadDocument> {
        let tokens = Box::leak(Box::new(TokenReader::new(8)));
        let mut items = decode(doc, tokens);
        assert_eq!(items.len(), 1);
        items.remove(0).event
    }

    #[test]
    fn recognises_each_kind_by_shape() {
        let cases = [
            (
                r#"{"time":"2020-05-02T00:00:00Z","tenantId":"t","category":"SignInLogs","properties":{"id":"s1","userId":"u"}}"#,
                "sign_in",
            ),
            (
                r#"{"createdDateTime":"2020-05-02T00:00:00Z","id":"g1","homeTenantId":"t","status":{"errorCode":0}}"#,
                "sign_in",
            ),
            (
                r#"{"type":"dashboard_request","time":"2020-05-02T00:00:00Z","tenantId":"t","url":"https://partner.microsoft.com/commerce/x"}"#,
                "dashboard_request",
            ),
            (
                r#"{"type":"partner_role_assignment","time":"2020-05-02","tenantId":"t","userId":"u","role":"admin_agent","action":"add"}"#,
                "partner_role_assignment",
            ),
            (
                r#"{"type":"mfa_registration","time":"2020-05-02","tenantId":"t","userId":"u","isMfaRegistered":false}"#,
                "mfa_registration",
            ),
            (
                r#"{"type":"technical_exception","time":"2020-05-02","tenantId":"t","exceptionId":"e","status":"approved","reason":"x"}"#,
                "technical_exception",
            ),
            (
                r#"{"type":"partner_api_request","requestDateTime":"2020-05-02","tenantId":"t","objectId":"u","mfaCompliant":false}"#,
                "partner_api_request",
            ),
        ];
        for (doc, kind) in cases {
            match one(doc) {
                Ok(e) => assert_eq!(e.kind(), kind, "{doc}"),
                Err(b) => panic!("{doc}: {b:?}"),
            }
        }
    }

    #[test]
    fn a_batch_yields_one_item_per_record_and_isolates_a_bad_one() {
        let doc = r#"{"records":[
            {"time":"2020-05-02T00:00:00Z","tenantId":"t","properties":{"id":"a"}},
            {"time":"2020-05-02T00:00:00Z","tenantId":"t","properties":{"id":5}},
            {"time":"2020-05-02T00:00:00Z","tenantId":"t","properties":{"id":"c"}}]}"#;
        let tokens = TokenReader::new(8);
        let items = decode(doc, &tokens);
        assert_eq!(items.len(), 3);
        assert!(items[0].event.is_ok());
        assert_eq!(
            items[1].event.as_ref().err().map(|b| b.reason),
            Some(Reason::WrongType)
        );
        assert_eq!(items[1].record, Some(1));
        assert!(items[2].event.is_ok());
    }

    #[test]
    fn bad_documents_get_bounded_reasons() {
        let cases = [
            ("not json", Reason::NotJson),
            ("[1,2]", Reason::NotAnObject),
            ("42", Reason::NotAnObject),
            (r#"{"hello":"world"}"#, Reason::UnknownShape),
            (r#"{"type":"nope"}"#, Reason::UnknownShape),
            (
                r#"{"type":"dashboard_request","time":"2020-05-02","url":"u"}"#,
                Reason::MissingField,
            ),
            (
                r#"{"type":"dashboard_request","time":"soon","tenantId":"t","url":"u"}"#,
                Reason::BadTime,
            ),
            (
                r#"{"type":"partner_role_assignment","time":"2020-05-02","tenantId":"t","userId":"u","role":"Boss"}"#,
                Reason::BadValue,
            ),
            (
                r#"{"type":"partner_api_request","requestDateTime":"2020-05-02","tenantId":"t","authorization":"Bearer x.y"}"#,
                Reason::BadToken,
            ),
            (
                r#"{"type":"dashboard_request","time":"2020-05-02","tenantId":"t","url":"u","statusCode":"two hundred"}"#,
                Reason::WrongType,
            ),
        ];
        for (doc, want) in cases {
            match one(doc) {
                Ok(e) => panic!("{doc} decoded as {}", e.kind()),
                Err(b) => assert_eq!(b.reason, want, "{doc}: {}", b.reason_text()),
            }
        }
    }

    #[test]
    fn messy_real_fields_are_read_leniently() {
        let doc = r#"{"Level":"4","time":"2020-05-02 00:00:00.123","tenantid":"t","resultType":0,
            "properties":{"isInteractive":"True","status":{"errorCode":"0"}}}"#;
        let Ok(Event::SignIn(s)) = one(doc) else {
            panic!("not a sign-in")
        };
        assert_eq!(s.succeeded(), Some(true));
        assert_eq!(s.props.is_interactive, Some(true));
        assert_eq!(s.event_id.len(), 32, "derived id");
    }

    #[test]
    fn derived_ids_are_stable() {
        assert_eq!(derived_id("{\"a\":1}"), derived_id(" {\"a\":1}\n"));
        assert_ne!(derived_id("{\"a\":1}"), derived_id("{\"a\":2}"));
    }
}
