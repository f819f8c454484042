//! Recognising a document by its shape and decoding it, record by record for a batch,
//! without copying the text the rules read.

use super::directory::{self, Category};
use super::facts::{
    ApiCaller, ApiRequest, DashboardRequest, ExceptionStatus, PolicyOverride, Registration, Role,
    RoleAction, RoleAssignment, SignIn, TechnicalException,
};
use super::reason::{BadDocument, Reason};
use super::time::EventTime;
use super::token::{TokenError, TokenReader};
use super::wire::{SignInProps, Text, Wire};
use super::{Event, Skipped};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

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
        let sign_in = directory::category(w.category.as_deref()) == directory::Category::SignIn;
        if !has_id || !sign_in || w.records.is_some() || w.kind.is_some() {
            return None;
        }
        let event = recognise(w, doc, tokens, None, None).ok()?;
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
    let mut items = Vec::new();
    decode_each(doc, tokens, default_tenant, &mut |item| items.push(item));
    items
}

/// [`decode_with`], giving each item to `each` in order instead of collecting them: a
/// lone document costs no list (the hot path allocates nothing per event).
pub fn decode_each<'a>(
    doc: &'a str,
    tokens: &TokenReader,
    default_tenant: Option<&str>,
    each: &mut dyn FnMut(Item<'a>),
) {
    // An Event Hubs batch is parsed once, records typed; only when a record is malformed
    // is it parsed again record by record, so that the bad one alone is dead-lettered.
    if doc.trim_start().starts_with("{\"records\"") {
        if let Some(items) = decode_batch_fast(doc, tokens) {
            items.into_iter().for_each(each);
            return;
        }
    }
    if let Err(bad) = an_object(doc) {
        return each(Item {
            record: None,
            raw: doc,
            event: Err(bad),
        });
    }
    if let Some(event) = audit_record(doc, default_tenant) {
        return each(Item {
            record: None,
            raw: doc,
            event,
        });
    }
    let wire: Wire<'a> = match serde_json::from_str(doc) {
        Ok(w) => w,
        Err(e) => {
            return each(Item {
                record: None,
                raw: doc,
                event: not_a_sign_in(doc, default_tenant)
                    .unwrap_or_else(|| Err(json_error(doc, &e))),
            })
        }
    };
    if wire.kind.is_none() && wire.properties.is_none() {
        let batch = match (&wire.records, wire.value) {
            (Some(records), _) => Some(Ok(records.clone())),
            (None, Some(value)) => Some(page(value)),
            (None, None) => None,
        };
        match batch {
            Some(Ok(batch)) => {
                let context = wire.odata_context.as_deref();
                for (i, rec) in batch.iter().enumerate() {
                    let raw = rec.get();
                    if let Some(event) = audit_record(raw, default_tenant) {
                        each(Item {
                            record: Some(i),
                            raw,
                            event,
                        });
                        continue;
                    }
                    let event =
                        an_object(raw).and_then(|()| match serde_json::from_str::<Wire<'a>>(raw) {
                            Ok(w) if w.records.is_some() => {
                                Err(BadDocument::new(Reason::UnknownShape, "nested batch"))
                            }
                            Ok(w) => recognise(w, raw, tokens, default_tenant, context),
                            Err(e) => not_a_sign_in(raw, default_tenant)
                                .unwrap_or_else(|| Err(json_error(raw, &e))),
                        });
                    each(Item {
                        record: Some(i),
                        raw,
                        event,
                    });
                }
                return;
            }
            Some(Err(bad)) => {
                return each(Item {
                    record: None,
                    raw: doc,
                    event: Err(bad),
                })
            }
            None => {}
        }
    }
    each(Item {
        record: None,
        raw: doc,
        event: recognise(wire, doc, tokens, default_tenant, None),
    })
}

/// A Graph response's `value`: a page's list, or the one object some calls answer with.
fn page(value: &RawValue) -> Result<Vec<&RawValue>, BadDocument> {
    let text = value.get().trim_start();
    if text.starts_with('[') {
        serde_json::from_str(value.get())
            .map_err(|e| BadDocument::new(Reason::WrongType, e.to_string()))
    } else if text.starts_with('{') {
        Ok(vec![value])
    } else {
        Err(BadDocument::new(
            Reason::WrongType,
            "`value` of a page is neither a list nor an object",
        ))
    }
}

/// A record that did not read as a sign-in may be an audit record or another category
/// (their `properties` are not a sign-in's): those are routed by `category` alone.
fn not_a_sign_in<'a>(
    raw: &'a str,
    default_tenant: Option<&str>,
) -> Option<Result<Event<'a>, BadDocument>> {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        category: Option<Cow<'a, str>>,
        properties: Option<serde::de::IgnoredAny>,
    }
    let e: Envelope<'a> = serde_json::from_str(raw).ok()?;
    e.properties?;
    match directory::category(e.category.as_deref()) {
        Category::SignIn => None,
        Category::Audit => {
            Some(directory::audit(raw, true, default_tenant).map(|a| Event::Audit(Box::new(a))))
        }
        Category::Other(category) => Some(Ok(skipped(category, raw, None, None))),
    }
}

fn skipped<'a>(
    category: &'static str,
    raw: &'a str,
    tenant: Option<Text<'a>>,
    time: Option<&str>,
) -> Event<'a> {
    Event::Skipped(Skipped {
        category,
        tenant_id: tenant.unwrap_or_default(),
        event_id: Cow::Owned(derived_id(raw)),
        time: time.and_then(EventTime::parse).unwrap_or(EventTime(0)),
    })
}

/// A document (or batch record) must be a JSON object: serde would read a top-level
/// array as the struct's fields in order (the security review of 2026-12, F16).
fn an_object(doc: &str) -> Result<(), BadDocument> {
    if doc.trim_start().starts_with('{') {
        return Ok(());
    }
    Err(match serde_json::from_str::<serde::de::IgnoredAny>(doc) {
        Ok(_) => BadDocument::new(Reason::NotAnObject, "a document must be a JSON object"),
        Err(e) => BadDocument::new(Reason::NotJson, e.to_string()),
    })
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
    hex::encode(d.get(..16).unwrap_or_default())
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

pub(super) fn required_time(v: Option<&str>, field: &str) -> Result<EventTime, BadDocument> {
    let s = v.ok_or_else(|| BadDocument::new(Reason::MissingField, format!("`{field}`")))?;
    EventTime::parse(s).ok_or_else(|| {
        let shown: String = s.chars().take(40).collect();
        BadDocument::new(Reason::BadTime, format!("`{field}` = `{shown}`"))
    })
}

/// An Azure Monitor `AuditLogs` record decoded in one pass ([`directory::audit_record`]),
/// skipping the `Wire` pass that would only send it there. Asked only of a document
/// that names `AuditLogs` in its first 512 bytes (where Azure Monitor writes
/// `category`), so a sign-in pays for a short search, not a second parse.
fn audit_record<'a>(
    raw: &'a str,
    default_tenant: Option<&str>,
) -> Option<Result<Event<'a>, BadDocument>> {
    use memchr::memmem::Finder;
    use std::sync::LazyLock;
    // Built once: a finder's set-up costs more than its search of 512 bytes.
    static AUDIT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"AuditLogs\""));
    static RECORDS: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"records\""));
    let head = raw.as_bytes().get(..512).unwrap_or(raw.as_bytes());
    AUDIT.find(head)?;
    // An Event Hubs batch (`{"records": [...]}`) names it too: its records are asked one
    // by one; the batch is not parsed twice.
    if RECORDS.find(head).is_some() {
        return None;
    }
    directory::audit_record(raw, default_tenant).map(|r| r.map(|a| Event::Audit(Box::new(a))))
}

use ours::{api_request, dashboard, exception, policy_override, registration, role};

fn recognise<'a>(
    wire: Wire<'a>,
    raw: &'a str,
    tokens: &TokenReader,
    default_tenant: Option<&str>,
    context: Option<&str>,
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
        return match directory::category(wire.category.as_deref()) {
            Category::SignIn => azure_record(wire, raw, default_tenant).map(Event::SignIn),
            Category::Audit => {
                directory::audit(raw, true, default_tenant).map(|a| Event::Audit(Box::new(a)))
            }
            Category::Other(category) => {
                Ok(skipped(category, raw, wire.tenant_id, wire.time.as_deref()))
            }
        };
    }
    if wire.activity_display_name.is_some() {
        return directory::audit(raw, false, default_tenant).map(|a| Event::Audit(Box::new(a)));
    }
    if wire.is_mfa_capable.is_some() || (wire.is_mfa_registered.is_some() && wire.user_id.is_none())
    {
        return directory::registration(raw, default_tenant).map(|r| {
            Event::Registration(Registration {
                event_id: Cow::Owned(r.event_id),
                time: r.time,
                tenant_id: Cow::Owned(r.tenant_id),
                user_id: Cow::Owned(r.user_id),
                registered: r.registered,
                methods: r.methods.into_iter().map(Cow::Owned).collect(),
            })
        });
    }
    if wire.access_container.is_some() {
        return directory::assignment(raw, context, default_tenant)
            .map(|a| Event::GdapAssignment(Box::new(a)));
    }
    let relationship_type = wire.odata_type.as_deref().is_some_and(|t| {
        let suffix = "delegatedadminrelationship";
        t.len() >= suffix.len()
            && t.get(t.len() - suffix.len()..)
                .is_some_and(|end| end.eq_ignore_ascii_case(suffix))
    });
    if wire.customer.is_some() || relationship_type {
        return directory::relationship(raw, default_tenant).map(|r| Event::Gdap(Box::new(r)));
    }
    if wire.created_date_time.is_some() {
        // A flat Graph signIn: its fields are the `properties` ones, at the top.
        let props: SignInProps<'a> = serde_json::from_str(raw).map_err(|e| json_error(raw, &e))?;
        return sign_in(props, Record::default(), raw, default_tenant).map(Event::SignIn);
    }
    Err(BadDocument::new(
        Reason::UnknownShape,
        "neither `records`, `properties`, `createdDateTime` nor a known `type`",
    ))
}

fn azure_record<'a>(
    wire: Wire<'a>,
    raw: &'a str,
    default_tenant: Option<&str>,
) -> Result<SignIn<'a>, BadDocument> {
    sign_in(
        wire.properties.unwrap_or_default(),
        Record {
            time: wire.time,
            tenant: wire.tenant_id,
            result_type: wire.result_type,
            category: wire.category,
        },
        raw,
        default_tenant,
    )
}

/// What an Azure Monitor record carries around a sign-in's properties.
#[derive(Default)]
struct Record<'a> {
    time: Option<Text<'a>>,
    tenant: Option<Text<'a>>,
    result_type: Option<Text<'a>>,
    category: Option<Text<'a>>,
}

fn sign_in<'a>(
    props: SignInProps<'a>,
    record: Record<'a>,
    raw: &'a str,
    default_tenant: Option<&str>,
) -> Result<SignIn<'a>, BadDocument> {
    let time_text = props
        .created_date_time
        .as_deref()
        .or(record.time.as_deref());
    let time = required_time(time_text, "createdDateTime")?;
    // Whose log it belongs to. A delegated-admin sign-in (`serviceProvider`, or, where
    // that field is absent, a home tenant other than the resource tenant) is the
    // partner's: its home tenant. Any other sign-in belongs to the tenant whose log holds
    // it: the record's `tenantId`, else `--tenant`, else `resourceTenantId`; so a B2B
    // guest admin of the partner is judged in the partner's state, not in a phantom
    // tenant of its home.
    let given = |t: &Option<Text<'a>>| t.clone().filter(|t| !t.trim().is_empty());
    let delegated = match props.cross_tenant_access_type.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => t.eq_ignore_ascii_case("serviceProvider"),
        _ => match (
            given(&props.home_tenant_id),
            given(&props.resource_tenant_id),
        ) {
            (Some(home), Some(res)) => !home.trim().eq_ignore_ascii_case(res.trim()),
            _ => false,
        },
    };
    let default = || default_tenant.map(|t| Cow::Owned(t.to_owned()));
    let tenant_id = if delegated {
        given(&props.home_tenant_id)
            .or_else(|| given(&record.tenant))
            .or_else(default)
    } else {
        given(&record.tenant)
            .or_else(default)
            .or_else(|| given(&props.resource_tenant_id))
            .or_else(|| given(&props.home_tenant_id))
    };
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
        result_type: record.result_type,
        category: record.category,
        props,
    })
}

mod ours;
#[cfg(test)]
mod tests;
