//! The first tenant's own Graph exports, which name no tenant: its
//! `userRegistrationDetails`, `delegatedAdminRelationships` and their `accessAssignments`.

use super::*;
use crate::generate::Tenant;

impl Directory {
    /// The first tenant's Graph exports at `at`: its `userRegistrationDetails` page (which
    /// stands for its registration facts), its `delegatedAdminRelationships` page (one
    /// relationship per customer, active unless this tenant's share of violations made it
    /// expired or terminated; the first customer's grants Global Administrator; one ended
    /// with a former customer and one awaiting approval), and one `accessAssignments` page
    /// per active relationship.
    pub(in crate::generate) fn exports(&mut self, t: &Tenant, at: EventTime) -> Vec<Value> {
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
}
