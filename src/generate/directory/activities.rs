//! The audit activities a record is drawn from: violating ones (roles and groups granted,
//! per-user MFA and security info removed, the policy that requires MFA weakened), and
//! harmless ones that keep the world consistent (removals after grants, the policy mended).

use super::*;
use crate::generate::{Tenant, User};

impl Directory {
    pub(super) fn violating(&mut self, n: usize, t: &Tenant, now: EventTime) -> Audit {
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

    pub(super) fn harmless(&mut self, n: usize, t: &Tenant, now: EventTime) -> Audit {
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
}
