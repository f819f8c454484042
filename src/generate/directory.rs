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

    /// The first tenant's Graph exports at `at`: its `userRegistrationDetails` page (which
    /// stands for its registration facts), its `delegatedAdminRelationships` page (one
    /// relationship per customer, active unless this tenant's share of violations made it
    /// expired or terminated; the first customer's grants Global Administrator; one ended
    /// with a former customer and one awaiting approval), and one `accessAssignments` page
    /// per active relationship.
    pub(super) fn exports(&mut self, t: &Tenant, at: EventTime) -> Vec<Value> {
        let rng = &mut self.rng;
        let bad_share = (self.violations * t.risk).min(1.0);
        let mut pages = Vec::new();
        let rows: Vec<Value> = t
            .users
            .iter()
            .map(|u| {
                let methods = if u.registered {
                    json!(["microsoftAuthenticatorPush", "softwareOneTimePasscode"])
                } else {
                    json!([])
                };
                json!({
                    "id": u.id,
                    "userPrincipalName": u.upn,
                    "userDisplayName": u.name,
                    "isAdmin": holds(u, "GlobalAdmin") || holds(u, "BillingAdmin"),
                    "isSsprRegistered": u.registered,
                    "isSsprEnabled": false,
                    "isSsprCapable": false,
                    "isMfaRegistered": u.registered,
                    "isMfaCapable": u.registered,
                    "isPasswordlessCapable": false,
                    "lastUpdatedDateTime": iso(at),
                    "methodsRegistered": methods,
                    "isSystemPreferredAuthenticationMethodEnabled": true,
                    "systemPreferredAuthenticationMethods": if u.registered { json!(["push"]) } else { json!([]) },
                    "userPreferredMethodForSecondaryAuthentication": if u.registered { "push" } else { "" },
                    "userType": if u.guest { "guest" } else { "member" },
                })
            })
            .collect();
        pages.push(json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#reports/authenticationMethods/userRegistrationDetails",
            "value": rows,
        }));

        // Relationships: `id` is two GUIDs joined by `-`, the second the same in every item
        // of Microsoft's example (here the partner's id).
        let etag = |rng: &mut ChaCha8Rng| {
            let inner = format!("\"{}\"", guid(rng));
            format!(
                "W/\"{}\"",
                base64::engine::general_purpose::STANDARD.encode(format!("'{inner}'"))
            )
        };
        let day = 86_400;
        let mut relationships = Vec::new();
        let mut active = Vec::new();
        let mut others: Vec<(String, &'static str)> = t
            .customers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let status = if i > 0 && rng.random_bool(bad_share) {
                    if rng.random_bool(0.5) {
                        "expired"
                    } else {
                        "terminated"
                    }
                } else {
                    "active"
                };
                (c.clone(), status)
            })
            .collect();
        others.push((guid(rng), "terminated"));
        others.push((guid(rng), "approvalPending"));
        for (i, (customer, status)) in others.iter().enumerate() {
            let id = format!("{}-{}", guid(rng), t.id);
            let modified = at.plus_seconds(rng.random_range(0..3_000));
            let (duration, days) = if rng.random_bool(0.7) {
                ("P730D", 730)
            } else {
                ("P365D", 365)
            };
            // Created within its duration before the export: an active one has not ended.
            let created = at.plus_seconds(-rng.random_range(30..days - 30) * day);
            let activated = created.plus_seconds(rng.random_range(60..900));
            let (activated, ends, auto) = match *status {
                "active" => (
                    Some(activated),
                    Some(activated.plus_seconds(days * day)),
                    if rng.random_bool(0.5) {
                        "P180D"
                    } else {
                        "PT0S"
                    },
                ),
                "expired" => {
                    // Ended before the export: activated `days` before its end.
                    let ends = at.plus_seconds(-rng.random_range(2..60) * day);
                    (Some(ends.plus_seconds(-days * day)), Some(ends), "PT0S")
                }
                "terminated" => (Some(activated), Some(modified), "PT0S"),
                _ => (None, None, "PT0S"),
            };
            let mut roles: Vec<&str> = Vec::new();
            if i == 0 {
                roles.push(ROLES[GLOBAL_ADMIN].template);
            }
            for r in GDAP_ROLES {
                if rng.random_bool(0.4) || roles.is_empty() {
                    roles.push(r);
                }
            }
            let name = if i < t.customers.len() {
                format!("Customer {:02}", i + 1)
            } else if *status == "terminated" {
                "Former customer".to_owned()
            } else {
                "New customer".to_owned()
            };
            relationships.push(json!({
                "@odata.type": "#microsoft.graph.delegatedAdminRelationship",
                "@odata.etag": etag(rng),
                "id": id,
                "displayName": format!("{name} admin relationship"),
                "duration": duration,
                "customer": {"tenantId": customer, "displayName": name},
                "accessDetails": {"unifiedRoles": roles.iter().map(|r| json!({"roleDefinitionId": r})).collect::<Vec<_>>()},
                "status": status,
                "autoExtendDuration": auto,
                "createdDateTime": iso(created),
                "lastModifiedDateTime": iso(modified),
                "activatedDateTime": activated.map(iso),
                "endDateTime": ends.map(iso),
            }));
            if *status == "active" {
                active.push((roles, created, modified));
            }
        }
        pages.push(json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/tenantRelationships/$metadata#delegatedAdminRelationships",
            "value": relationships,
        }));

        // Access assignments: the relationship's roles to AdminAgents, its helpdesk roles to
        // HelpdeskAgents. The list's `@odata.context` names no relationship in Microsoft's
        // example, so none is named here.
        let side = &self.sides[0];
        for (roles, created, modified) in active {
            let created = created.plus_seconds(rng.random_range(900..86_400));
            let helpdesk: Vec<&str> = roles
                .iter()
                .copied()
                .filter(|r| HELPDESK_ROLES.contains(r))
                .collect();
            let mut value = Vec::new();
            for (group, roles) in [
                (&side.groups[0], roles.clone()),
                (&side.groups[1], helpdesk),
            ] {
                if roles.is_empty() {
                    continue;
                }
                value.push(json!({
                    "@odata.type": "#microsoft.graph.delegatedAdminAccessAssignment",
                    "@odata.etag": etag(rng),
                    "id": guid(rng),
                    "status": "active",
                    "createdDateTime": iso(created),
                    "lastModifiedDateTime": iso(modified.plus_seconds(rng.random_range(1..600))),
                    "accessContainer": {"accessContainerId": group, "accessContainerType": "securityGroup"},
                    "accessDetails": {"unifiedRoles": roles.iter().map(|r| json!({"roleDefinitionId": r})).collect::<Vec<_>>()},
                }));
            }
            pages.push(json!({
                "@odata.context": "https://graph.microsoft.com/v1.0/tenantRelationships/$metadata#accessAssignments",
                "value": value,
            }));
        }
        pages
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

    fn violating(&mut self, n: usize, t: &Tenant, now: EventTime) -> Audit {
        match self.rng.random_range(0..6) {
            0 | 1 => {
                let role = if self.rng.random_bool(0.55) {
                    GLOBAL_ADMIN
                } else {
                    SECURITY_ADMIN
                };
                if let Some(a) = self.grant(n, t, role, true) {
                    return a;
                }
                self.security_info_deleted(t)
            }
            2 => {
                let actor = self.admin(t);
                let u = self.agent(t, Some(actor));
                Audit {
                    activity: "Disable Strong Authentication",
                    category: "UserManagement",
                    service: "Core Directory",
                    operation: "Update",
                    success: true,
                    reason: "",
                    actor,
                    targets: vec![user_target(&t.users[u], vec![])],
                }
            }
            3 => {
                let actor = self.admin(t);
                let u = self.agent(t, Some(actor));
                self.strong_auth(t, u, actor, now, false)
            }
            4 => self.security_info_deleted(t),
            _ => {
                if self.sides[n].ca != Ca::Mfa {
                    return self.security_info_deleted(t);
                }
                let to = match self.rng.random_range(0..3) {
                    0 => Ca::Disabled,
                    1 => Ca::ReportOnly,
                    _ => Ca::NoMfa,
                };
                self.ca_update(n, t, now, to)
            }
        }
    }

    fn harmless(&mut self, n: usize, t: &Tenant, now: EventTime) -> Audit {
        let roll = self.rng.random_range(0..100);
        let fallback = |d: &mut Self| d.quiet(t);
        match roll {
            0..8 => self
                .grant(n, t, BILLING_ADMIN, true)
                .unwrap_or_else(|| fallback(self)),
            8..14 => {
                let role = if self.rng.random_bool(0.5) {
                    DIRECTORY_READERS
                } else {
                    APPLICATION_ADMIN
                };
                self.grant(n, t, role, false)
                    .unwrap_or_else(|| fallback(self))
            }
            14..24 => self.ungrant(n, t).unwrap_or_else(|| fallback(self)),
            24..34 => self.join(n, t).unwrap_or_else(|| fallback(self)),
            34..42 => self.leave(n, t).unwrap_or_else(|| fallback(self)),
            42..52 => {
                let u = self.rng.random_range(0..t.users.len());
                let actor = self.admin(t);
                self.strong_auth(t, u, actor, now, true)
            }
            52..60 => {
                let to = Ca::Mfa;
                self.ca_update(n, t, now, to)
            }
            60..63 => {
                // A grant that failed, as Elastic's record shows: nothing granted.
                let mut a = self
                    .grant(n, t, GLOBAL_ADMIN, true)
                    .unwrap_or_else(|| fallback(self));
                if a.activity == "Add member to role" {
                    self.sides[n].granted.pop();
                    a.success = false;
                    a.reason = "The directory object quota limit for the tenant has been exceeded.";
                }
                a
            }
            _ => fallback(self),
        }
    }

    /// `User registered security info`, `Admin registered security info` or `Reset
    /// password`: activities no rule reads.
    fn quiet(&mut self, t: &Tenant) -> Audit {
        let admin = self.admin(t);
        let u = self.pick(t, |i, _| i != admin).unwrap_or(admin);
        let (activity, service, actor) = match self.rng.random_range(0..3) {
            0 => ("User registered security info", "Authentication Methods", u),
            1 => (
                "Admin registered security info",
                "Authentication Methods",
                admin,
            ),
            _ => ("Reset password", "Core Directory", admin),
        };
        Audit {
            activity,
            category: "UserManagement",
            service,
            operation: "Update",
            success: true,
            reason: "",
            actor,
            targets: vec![user_target(&t.users[u], vec![])],
        }
    }

    fn security_info_deleted(&mut self, t: &Tenant) -> Audit {
        let (activity, actor, u) = if self.rng.random_bool(0.5) {
            let u = self.agent(t, None);
            ("User deleted security info", u, u)
        } else {
            let admin = self.admin(t);
            (
                "Admin deleted security info",
                admin,
                self.agent(t, Some(admin)),
            )
        };
        Audit {
            activity,
            category: "UserManagement",
            service: "Authentication Methods",
            operation: "Delete",
            success: true,
            reason: "",
            actor,
            targets: vec![user_target(&t.users[u], vec![])],
        }
    }

    /// `Update user` with `StrongAuthenticationRequirement` removed (`[...]` to `[]`), or
    /// set where there was none (`enable`).
    fn strong_auth(
        &mut self,
        t: &Tenant,
        u: usize,
        actor: usize,
        now: EventTime,
        enable: bool,
    ) -> Audit {
        let since = now.plus_seconds(-self.rng.random_range(1..400) * 86_400);
        let requirement = json!([{"RelyingParty": "*", "State": 1, "RememberDevicesNotIssuedBefore": iso(since)}]);
        let (old, new) = if enable {
            (json!([]), requirement)
        } else {
            (requirement, json!([]))
        };
        Audit {
            activity: "Update user",
            category: "UserManagement",
            service: "Core Directory",
            operation: "Update",
            success: true,
            reason: "",
            actor,
            targets: vec![user_target(
                &t.users[u],
                vec![
                    property("StrongAuthenticationRequirement", Some(old), Some(new)),
                    property(
                        "Included Updated Properties",
                        None,
                        Some(json!("StrongAuthenticationRequirement")),
                    ),
                ],
            )],
        }
    }

    /// The targets of a role change: the member with the role's properties, then the role.
    fn role_targets(&self, n: usize, member: Value, role: usize, add: bool) -> Vec<Value> {
        let r = &ROLES[role];
        let v = |x: &str| Some(json!(x));
        let mut props = vec![
            ("Role.ObjectID", v(&self.sides[n].role_objects[role])),
            ("Role.DisplayName", v(r.name)),
            ("Role.TemplateId", v(r.template)),
        ];
        if role == GLOBAL_ADMIN {
            // Its well-known name as Sentinel's rules match it (docs/sources-directory.md,
            // section 1); the others' are not known to us, so not written.
            props.push(("Role.WellKnownObjectName", v("TenantAdmins")));
        }
        let modified: Vec<Value> = props
            .into_iter()
            .map(|(name, value)| {
                if add {
                    property(name, None, value)
                } else {
                    property(name, value, None)
                }
            })
            .collect();
        let mut member = member;
        if let Some(m) = member.as_object_mut() {
            if let Some(Value::Array(list)) = m.get_mut("modifiedProperties") {
                list.splice(0..0, modified);
            }
        }
        vec![
            member,
            json!({"id": self.sides[n].role_objects[role], "displayName": null, "type": "Role",
                   "modifiedProperties": [], "administrativeUnits": []}),
        ]
    }

    /// `Add member to role`: `role` to a user who does not hold it (`to_user`), else to the
    /// tenant's service principal; `None` when every user holds it.
    fn grant(&mut self, n: usize, t: &Tenant, role: usize, to_user: bool) -> Option<Audit> {
        let actor = self.admin(t);
        let member = if to_user {
            let granted = &self.sides[n].granted;
            let held: Vec<usize> = granted
                .iter()
                .filter(|(_, r)| *r == role)
                .map(|(u, _)| *u)
                .collect();
            let u = self.pick(t, |i, u| {
                i != actor && !held.contains(&i) && ROLES[role].world.is_none_or(|w| !holds(u, w))
            })?;
            self.sides[n].granted.push((u, role));
            user_target(&t.users[u], vec![])
        } else {
            let (id, app) = &self.sides[n].sp;
            json!({
                "id": id, "displayName": "partner-billing-sync", "type": "ServicePrincipal",
                "modifiedProperties": [property("TargetId.ServicePrincipalNames", None, Some(json!(app)))],
                "administrativeUnits": [],
            })
        };
        Some(Audit {
            activity: "Add member to role",
            category: "RoleManagement",
            service: "Core Directory",
            operation: "Assign",
            success: true,
            reason: "",
            actor,
            targets: self.role_targets(n, member, role, true),
        })
    }

    /// `Remove member from role`: a role an earlier record granted to a user.
    fn ungrant(&mut self, n: usize, t: &Tenant) -> Option<Audit> {
        let granted = &mut self.sides[n].granted;
        if granted.is_empty() {
            return None;
        }
        let (u, role) = granted.swap_remove(self.rng.random_range(0..granted.len()));
        let actor = self.admin(t);
        Some(Audit {
            activity: "Remove member from role",
            category: "RoleManagement",
            service: "Core Directory",
            operation: "Unassign",
            success: true,
            reason: "",
            actor,
            targets: self.role_targets(n, user_target(&t.users[u], vec![]), role, false),
        })
    }

    fn group_targets(&self, n: usize, u: &User, group: usize, add: bool) -> Vec<Value> {
        let id = &self.sides[n].groups[group];
        let name = GROUPS[group].0;
        let props = [
            ("Group.ObjectID", json!(id)),
            ("Group.DisplayName", json!(name)),
        ]
        .into_iter()
        .map(|(p, v)| {
            if add {
                property(p, None, Some(v))
            } else {
                property(p, Some(v), None)
            }
        })
        .collect();
        vec![
            user_target(u, props),
            json!({"id": id, "displayName": name, "type": "Group", "modifiedProperties": [],
                   "administrativeUnits": []}),
        ]
    }

    /// `Add member to group`: a user to an agent group whose role they do not hold.
    fn join(&mut self, n: usize, t: &Tenant) -> Option<Audit> {
        let group = self.rng.random_range(0..GROUPS.len());
        let joined: Vec<usize> = self.sides[n]
            .joined
            .iter()
            .filter(|(_, g)| *g == group)
            .map(|(u, _)| *u)
            .collect();
        let actor = self.admin(t);
        let u = self.pick(t, |i, u| {
            i != actor && !joined.contains(&i) && !holds(u, GROUPS[group].1)
        })?;
        self.sides[n].joined.push((u, group));
        Some(Audit {
            activity: "Add member to group",
            category: "GroupManagement",
            service: "Core Directory",
            operation: "Assign",
            success: true,
            reason: "",
            actor,
            targets: self.group_targets(n, &t.users[u], group, true),
        })
    }

    /// `Remove member from group`: a user an earlier record added.
    fn leave(&mut self, n: usize, t: &Tenant) -> Option<Audit> {
        let joined = &mut self.sides[n].joined;
        if joined.is_empty() {
            return None;
        }
        let (u, group) = joined.swap_remove(self.rng.random_range(0..joined.len()));
        let actor = self.admin(t);
        Some(Audit {
            activity: "Remove member from group",
            category: "GroupManagement",
            service: "Core Directory",
            operation: "Unassign",
            success: true,
            reason: "",
            actor,
            targets: self.group_targets(n, &t.users[u], group, false),
        })
    }

    /// The policy as Graph writes it (Panther's records), in state `ca`.
    fn ca_policy(&self, n: usize, ca: Ca, modified: EventTime) -> String {
        let side = &self.sides[n];
        let excluded: Vec<&str> = if side.excluded {
            vec![&side.break_glass]
        } else {
            vec![]
        };
        let mut p = json!({
            "id": side.ca_id,
            "displayName": CA_POLICY,
            "createdDateTime": iso_offset(side.ca_created),
            "modifiedDateTime": iso_offset(modified),
            "state": match ca {
                Ca::Disabled => "disabled",
                Ca::ReportOnly => "enabledForReportingButNotEnforced",
                Ca::Mfa | Ca::NoMfa => "enabled",
            },
            "conditions": {
                "applications": {"includeApplications": ["All"], "excludeApplications": [], "includeUserActions": [],
                                 "includeAuthenticationContextClassReferences": [], "applicationFilter": null},
                "users": {"includeUsers": ["All"], "excludeUsers": excluded, "includeGroups": [], "excludeGroups": [],
                          "includeRoles": [], "excludeRoles": []},
                "userRiskLevels": [], "signInRiskLevels": [], "clientAppTypes": ["all"], "servicePrincipalRiskLevels": [],
            },
            "grantControls": {"operator": "OR", "builtInControls": ["mfa"], "customAuthenticationFactors": [], "termsOfUse": []},
            "sessionControls": null,
        });
        if ca == Ca::NoMfa {
            if let Some(o) = p.as_object_mut() {
                o.remove("grantControls");
            }
        }
        p.to_string()
    }

    /// `Update conditional access policy` of the policy that requires MFA, to `to`; an
    /// update to `Ca::Mfa` mends a weakened policy, or toggles the break-glass exclusion.
    fn ca_update(&mut self, n: usize, t: &Tenant, now: EventTime, to: Ca) -> Audit {
        let side = &mut self.sides[n];
        if side.ca_created == EventTime(0) {
            side.ca_created = now.plus_seconds(-self.rng.random_range(60..700) * 86_400);
        }
        let from = side.ca;
        let last = now.plus_seconds(-self.rng.random_range(3_600..30 * 86_400));
        let old = self.ca_policy(n, from, last);
        let side = &mut self.sides[n];
        if from == Ca::Mfa && to == Ca::Mfa {
            side.excluded = !side.excluded;
        }
        side.ca = to;
        let new = self.ca_policy(n, to, now);
        let actor = self.admin(t);
        let id = self.sides[n].ca_id.clone();
        Audit {
            activity: "Update conditional access policy",
            category: "Policy",
            service: "Conditional Access",
            operation: "Update",
            success: true,
            reason: "",
            actor,
            targets: vec![json!({
                "id": id, "displayName": CA_POLICY, "type": "Policy",
                "modifiedProperties": [{"displayName": "ConditionalAccessPolicy", "oldValue": old, "newValue": new}],
                "administrativeUnits": [],
            })],
        }
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
