//! What an event changes in its tenant's state under one policy.

use crate::event::{Event, RoleAction};
use crate::policy::{Evaluation, Policy};
use crate::state::{DirectoryRoleChange, TenantState};

/// Applies an event's facts to its tenant's state, then counts it into its day.
pub(super) fn apply_to_state(
    policy: &Policy,
    ev: &Event<'_>,
    eval: &Evaluation,
    t: &mut TenantState,
) {
    let dir = policy.directory();
    match ev {
        Event::SignIn(s) => {
            if let Some(user) = s.props.user_id.as_deref().filter(|u| !u.trim().is_empty()) {
                let session = eval
                    .starts_pc_session
                    .then_some(s.props.session_id.as_deref());
                let success = s.succeeded() == Some(true) && s.identity() == "user";
                t.apply_sign_in(
                    user,
                    s.props.user_principal_name.as_deref(),
                    s.props.user_type.as_deref(),
                    s.time,
                    (success, eval.sign_in_mfa),
                    session,
                );
            }
        }
        Event::Role(r) => t.apply_role(
            &dir,
            &r.user_id,
            r.upn.as_deref(),
            r.user_type.as_deref(),
            r.role,
            r.action,
        ),
        Event::Registration(r) => {
            let methods: Vec<&str> = r.methods.iter().map(|m| &**m).collect();
            t.apply_registration(&dir, &r.user_id, r.registered, &methods);
        }
        Event::Exception(e) => t.apply_exception(
            &dir,
            &e.exception_id,
            e.status,
            &e.reason,
            e.users
                .as_ref()
                .map(|v| v.iter().map(|u| u.to_string()).collect()),
            e.expires_at,
            e.time,
        ),
        // Checked before (`check_override`); it moves a date of its own policy only.
        Event::Override(o) if o.policy.trim() == policy.version => {
            t.apply_override(o.surface.trim(), o.time, o.enforced_from)
        }
        // Partner roles from Microsoft's own records: membership of a group the policy
        // maps (`[directory] groups`: Partner Center's AdminAgents, ...), and a directory
        // role it maps (`[directory] roles`: Billing Administrator, ...) granted to or
        // removed from a user. An eligible assignment is not held until activated (its
        // activation is a grant of its own). Besides, every directory role a user holds or
        // is eligible for, and the per-user MFA requirement as last changed.
        Event::Audit(a) => {
            let f = &a.facts;
            if let Some(g) = &f.group {
                if let (Some(role), Some(user)) =
                    (policy.group_role(&g.group), g.member_id.as_deref())
                {
                    let action = if g.added {
                        RoleAction::Add
                    } else {
                        RoleAction::Remove
                    };
                    t.apply_role(&dir, user, g.member_upn.as_deref(), None, role, action);
                }
            }
            for (change, action) in [
                (&f.role_granted, RoleAction::Add),
                (&f.role_removed, RoleAction::Remove),
            ] {
                let Some(r) = change.as_ref().filter(|r| r.member_is_user) else {
                    continue;
                };
                // Every directory role a user holds or is eligible for, privileged or
                // not (the policy's lists say which are), as `audit.role_granted` names it.
                if let (Some(name), Some(user)) = (r.key(), r.member_id.as_deref()) {
                    let change = DirectoryRoleChange {
                        role: name,
                        eligible: r.eligible,
                        granted: action == RoleAction::Add,
                    };
                    let upn = r.member_name.as_deref().filter(|n| n.contains('@'));
                    t.apply_directory_role(user, upn, change);
                }
                if r.eligible {
                    continue;
                }
                let role = r
                    .template_id
                    .as_deref()
                    .and_then(|id| policy.template_role(id));
                if let (Some(role), Some(user)) = (role, r.member_id.as_deref()) {
                    t.apply_role(&dir, user, r.member_name.as_deref(), None, role, action);
                }
            }
            if let Some(user) = f.target_user_id.as_deref() {
                if f.mfa_requirement_removed || f.mfa_requirement_set {
                    t.apply_per_user_mfa(user, None, f.mfa_requirement_set);
                }
            }
        }
        Event::Gdap(g) => t.gdap.apply(
            &g.relationship_id,
            crate::state::Relationship {
                customer: g.customer_tenant_id.to_ascii_lowercase(),
                status: g.status.clone(),
                activated: g.activated,
                ends: g.ends,
                seen: g.time,
                roles: g.roles.clone(),
                auto_extend: g.auto_extend.clone(),
            },
        ),
        Event::Api(_)
        | Event::Dashboard(_)
        | Event::Override(_)
        | Event::GdapAssignment(_)
        | Event::Skipped(_) => {}
    }
    if let Some(p) = &eval.probes {
        crate::policy::windows::apply(policy, p, ev.time(), t);
    }
    for (rule, key, micros) in &eval.suppress {
        t.apply_suppression(rule, key, ev.time(), *micros);
    }
    t.tally(&dir, ev.time(), &eval.tally);
}
