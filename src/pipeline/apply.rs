//! What an event changes in its tenant's state under one policy.

use crate::event::Event;
use crate::policy::{Evaluation, Policy};
use crate::state::TenantState;

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
        // Directory facts from Microsoft's records are decoded and counted; what they
        // change in state (roles from group membership and role grants, per-user MFA,
        // GDAP) is the next step of issue 17.
        Event::Api(_)
        | Event::Dashboard(_)
        | Event::Override(_)
        | Event::Audit(_)
        | Event::Gdap(_)
        | Event::GdapAssignment(_)
        | Event::Skipped(_) => {}
    }
    t.tally(&dir, ev.time(), &eval.tally);
}
