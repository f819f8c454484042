//! Microsoft's directory records in the generated world (`--directory-share`): Azure
//! Monitor `AuditLogs` records of every tenant (the record's `properties` is a Graph
//! `directoryAudit`), and the first tenant's own Graph exports, which name no tenant
//! (`userRegistrationDetails`, `delegatedAdminRelationships` and their `accessAssignments`,
//! one page each: the run names the tenant with `--tenant`).
//!
//! Every shape is that of the public records in tests/realdata/directory/ (its README) and
//! of docs/sources-directory.md, field for field; where a field is known only from a third
//! party (the role and group properties, `StrongAuthenticationRequirement`), that page's
//! section 6 says so. Nothing is added to Microsoft's shapes.
//!
//! The records are drawn from a random stream of their own (ChaCha stream 1 of the same
//! seed), so every other kind is drawn as in a stream without them. They follow the world:
//! a role or group is granted to a user who does not hold it and removed only after such a
//! grant, the Conditional Access policy that requires MFA is weakened only while it does and
//! mended after, and a tenant's share of violating records is `violations * risk`, as for
//! the other kinds.

use super::shapes::{iso, write};
use super::{guid, Tenant, User};
use crate::event::time::EventTime;
use base64::Engine;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

mod activities;
mod exports;

/// A directory role: its template id and name ("Microsoft Entra built-in roles",
/// docs/sources-directory.md, section 1).
struct Role {
    template: &'static str,
    name: &'static str,
    /// The world's partner role of the same meaning (`partner_role_assignment`'s name),
    /// so a grant goes to a user who does not hold it yet.
    world: Option<&'static str>,
}

const GLOBAL_ADMIN: usize = 0;
const SECURITY_ADMIN: usize = 1;
const BILLING_ADMIN: usize = 2;
const DIRECTORY_READERS: usize = 3;
const APPLICATION_ADMIN: usize = 4;

const ROLES: [Role; 5] = [
    Role {
        template: "62e90394-69f5-4237-9190-012177145e10",
        name: "Global Administrator",
        world: Some("GlobalAdmin"),
    },
    Role {
        template: "194ae4cb-b126-40b2-bd5b-6091b380977d",
        name: "Security Administrator",
        world: None,
    },
    Role {
        template: "b0f54661-2d74-4c50-afa3-1ec803f12efe",
        name: "Billing Administrator",
        world: Some("BillingAdmin"),
    },
    Role {
        template: "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
        name: "Directory Readers",
        world: None,
    },
    Role {
        template: "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
        name: "Application Administrator",
        world: None,
    },
];

/// Roles a GDAP relationship grants besides Global Administrator (template ids of the same
/// table): Directory Readers, Helpdesk, User, Global Reader, License, Service Support and
/// Exchange Administrator.
const GDAP_ROLES: [&str; 7] = [
    "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
    "4d6ac14f-3453-41d0-bef9-a3e0c569773a",
    "f023fd81-a637-4b56-95fd-791ac0226033",
    "29232cdf-9323-42fd-ade2-1d097af3e4de",
];
/// Of those, what a helpdesk group is given: Directory Readers, Helpdesk Administrator,
/// Service Support Administrator.
const HELPDESK_ROLES: [&str; 3] = [
    "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "f023fd81-a637-4b56-95fd-791ac0226033",
];

/// Partner Center's agent groups of a partner tenant and the world's role each stands for
/// (docs/sources-directory.md, section 2; the policies' `[directory] groups`).
const GROUPS: [(&str, &str); 3] = [
    ("AdminAgents", "AdminAgent"),
    ("HelpdeskAgents", "HelpdeskAgent"),
    ("SalesAgents", "SalesAgent"),
];

/// The world's roles that are partner roles under every policy (a target of the
/// MFA-weakening activities holds one).
const AGENT_ROLES: [&str; 4] = ["AdminAgent", "SalesAgent", "HelpdeskAgent", "BillingAdmin"];

const CA_POLICY: &str = "Require MFA for all users";
const PORTAL_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91";

/// The state of a tenant's Conditional Access policy that requires MFA.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ca {
    /// Enabled, MFA required.
    Mfa,
    Disabled,
    ReportOnly,
    /// Enabled, its grant controls gone (as Panther's record shows).
    NoMfa,
}

/// What the directory knows of one tenant beyond the world.
struct Side {
    /// Object ids of AdminAgents, HelpdeskAgents, SalesAgents.
    groups: [String; 3],
    /// Object ids of the roles of [`ROLES`] in this directory.
    role_objects: [String; 5],
    /// A service principal of the tenant (an automation app) and its app id.
    sp: (String, String),
    ca_id: String,
    ca_created: EventTime,
    ca: Ca,
    /// A break-glass account the policy may exclude, and whether it does.
    break_glass: String,
    excluded: bool,
    /// Roles granted by an audit record: (user, index in [`ROLES`]).
    granted: Vec<(usize, usize)>,
    /// Groups joined by an audit record: (user, index in [`GROUPS`]).
    joined: Vec<(usize, usize)>,
}

/// The directory side of the generated world.
pub(super) struct Directory {
    rng: ChaCha8Rng,
    /// The chance that a draw of the event loop is an audit record, so that `share` of the
    /// documents are.
    per_draw: f64,
    violations: f64,
    sides: Vec<Side>,
}

/// One audit record's content, before its envelope.
struct Audit {
    activity: &'static str,
    category: &'static str,
    service: &'static str,
    operation: &'static str,
    success: bool,
    reason: &'static str,
    actor: usize,
    targets: Vec<Value>,
}

/// A modified property: values JSON encoded as strings, as Entra writes them.
fn property(name: &str, old: Option<Value>, new: Option<Value>) -> Value {
    let enc = |v: Option<Value>| v.map_or(Value::Null, |v| Value::String(v.to_string()));
    json!({"displayName": name, "oldValue": enc(old), "newValue": enc(new)})
}

/// `2026-04-01T10:00:00.1234567+00:00`, as `activityDateTime` is written.
fn iso_offset(t: EventTime) -> String {
    let mut s = iso(t);
    s.pop();
    s + "+00:00"
}

fn user_target(u: &User, modified: Vec<Value>) -> Value {
    json!({
        "id": u.id, "displayName": null, "type": "User", "userPrincipalName": u.upn,
        "modifiedProperties": modified, "administrativeUnits": [],
    })
}

fn holds(u: &User, role: &str) -> bool {
    u.roles.contains(&role)
}

impl Directory {
    /// The directory of `tenants`, drawn from stream 1 of `seed`.
    pub(super) fn new(seed: u64, share: f64, violations: f64, tenants: &[Tenant]) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(1);
        let sides = tenants
            .iter()
            .map(|_| Side {
                groups: [guid(&mut rng), guid(&mut rng), guid(&mut rng)],
                role_objects: [
                    guid(&mut rng),
                    guid(&mut rng),
                    guid(&mut rng),
                    guid(&mut rng),
                    guid(&mut rng),
                ],
                sp: (guid(&mut rng), guid(&mut rng)),
                ca_id: guid(&mut rng),
                ca_created: EventTime(0),
                ca: Ca::Mfa,
                break_glass: guid(&mut rng),
                excluded: rng.random_bool(0.5),
                granted: Vec::new(),
                joined: Vec::new(),
            })
            .collect();
        // A draw of the other kinds writes 1.3325 documents on average (API calls come in
        // bursts of 4.5: `super::write`'s shares), an audit record one.
        let docs = 1.3325;
        Self {
            rng,
            per_draw: (share * docs / (1.0 - share + share * docs)).clamp(0.0, 1.0),
            violations,
            sides,
        }
    }

    /// Whether the next document is an audit record (a draw of this stream only).
    pub(super) fn next_is_audit(&mut self) -> bool {
        self.per_draw > 0.0 && self.rng.random_bool(self.per_draw)
    }

    /// Microseconds after `at` for the next audit record.
    pub(super) fn jitter(&mut self) -> i64 {
        self.rng.random_range(0..1_000_000)
    }

    /// One audit record of a tenant drawn at random, at `now`: a violating one with the
    /// tenant's share of violations (Global or Security Administrator granted to a user,
    /// the per-user MFA requirement removed or security info deleted for a partner agent,
    /// the policy that requires MFA disabled, set to report-only or stripped of its
    /// control), else a harmless one.
    pub(super) fn audit(&mut self, line: &mut Vec<u8>, tenants: &[Tenant], now: EventTime) {
        let n = self.rng.random_range(0..tenants.len());
        let t = &tenants[n];
        let bad = self.rng.random_bool((self.violations * t.risk).min(1.0));
        let a = if bad {
            self.violating(n, t, now)
        } else {
            self.harmless(n, t, now)
        };
        self.record(line, t, now, a);
    }

    /// A user of `t` that `ok` accepts, drawn at random.
    fn pick(&mut self, t: &Tenant, ok: impl Fn(usize, &User) -> bool) -> Option<usize> {
        let fits: Vec<usize> = (0..t.users.len()).filter(|&i| ok(i, &t.users[i])).collect();
        (!fits.is_empty()).then(|| fits[self.rng.random_range(0..fits.len())])
    }

    /// An admin of the tenant (a Global Administrator or admin agent), else anyone.
    fn admin(&mut self, t: &Tenant) -> usize {
        self.pick(t, |_, u| holds(u, "GlobalAdmin") || holds(u, "AdminAgent"))
            .unwrap_or_else(|| self.rng.random_range(0..t.users.len()))
    }

    /// A partner agent of the tenant other than `not` where there is one, else anyone.
    fn agent(&mut self, t: &Tenant, not: Option<usize>) -> usize {
        self.pick(t, |i, u| {
            Some(i) != not && AGENT_ROLES.iter().any(|r| holds(u, r))
        })
        .or_else(|| self.pick(t, |i, _| Some(i) != not))
        .unwrap_or_else(|| self.rng.random_range(0..t.users.len()))
    }

    /// The Azure Monitor record around a `directoryAudit`.
    fn record(&mut self, line: &mut Vec<u8>, t: &Tenant, now: EventTime, a: Audit) {
        let rng = &mut self.rng;
        let correlation = guid(rng);
        let id = match a.service {
            "Core Directory" => {
                const CODE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
                let code: String = (0..5)
                    .map(|_| char::from(CODE[rng.random_range(0..CODE.len())]))
                    .collect();
                format!(
                    "Directory_{correlation}_{code}_{}",
                    rng.random_range(100_000_000..1_000_000_000u32)
                )
            }
            "Conditional Access" => format!("IPCGraph_{correlation}"),
            _ => guid(rng),
        };
        let ip = format!("203.0.113.{}", rng.random_range(1..255));
        let actor = &t.users[a.actor];
        let details = match a.service {
            "Conditional Access" => json!([{"key": "Category", "value": "Conditional Access"}]),
            "Core Directory" => json!([{"key": "User-Agent", "value": PORTAL_UA}]),
            _ => json!([]),
        };
        let v = json!({
            "time": iso(now),
            "resourceId": format!("/tenants/{}/providers/Microsoft.aadiam", t.id),
            "operationName": a.activity,
            "operationVersion": "1.0",
            "category": "AuditLogs",
            "tenantId": t.id,
            "resultSignature": "None",
            "durationMs": 0,
            "callerIpAddress": ip,
            "correlationId": correlation,
            "identity": actor.name,
            "Level": 4,
            "properties": {
                "id": id,
                "category": a.category,
                "correlationId": correlation,
                "result": if a.success { "success" } else { "failure" },
                "resultReason": a.reason,
                "activityDisplayName": a.activity,
                "activityDateTime": iso_offset(now),
                "loggedByService": a.service,
                "operationType": a.operation,
                "userAgent": null,
                "initiatedBy": {"user": {"id": actor.id, "displayName": null, "userPrincipalName": actor.upn,
                                         "ipAddress": ip, "roles": []}},
                "targetResources": a.targets,
                "additionalDetails": details,
            },
        });
        write(line, &v);
    }
}
