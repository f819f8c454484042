//! The bounds of state that grows with the input: a tenant, a user or a directory role
//! past one is refused as a `state_limit` dead letter, never dropped.

use super::Processor;
use crate::event::{self, Event, Reason};

/// The bounds of state that grows with the input (`pipeline.max_tenants`,
/// `pipeline.max_users_per_tenant`): an event past one is a `state_limit` dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most tenants held.
    pub max_tenants: usize,
    /// Most users held in one tenant.
    pub max_users_per_tenant: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_tenants: crate::state::DEFAULT_MAX_TENANTS,
            max_users_per_tenant: crate::state::DEFAULT_MAX_USERS_PER_TENANT,
        }
    }
}

impl Processor {
    /// Why applying `ev` would take state past a bound, if it would: a tenant not held
    /// when `max_tenants` are, or a user not held in a tenant that holds
    /// `max_users_per_tenant`. Every policy's state holds the same tenants and users: the
    /// first one's is asked. Each tenant's events are applied on one thread, so the user
    /// bound refuses the same events whatever the threads; when tenants are applied on
    /// several threads, which tenant comes first past the tenant bound can vary.
    pub(super) fn over_limit(&self, ev: &Event<'_>) -> Option<event::BadDocument> {
        let state = &self.engines.first()?.state;
        let user = match ev {
            Event::SignIn(s) => s.props.user_id.as_deref().filter(|u| !u.trim().is_empty()),
            Event::Role(r) => Some(&*r.user_id),
            Event::Registration(r) => Some(&*r.user_id),
            Event::Audit(a) => a.facts.state_user(),
            _ => None,
        };
        let role = match ev {
            Event::Audit(a) => a.facts.role_granted.as_ref().filter(|r| r.member_is_user),
            _ => None,
        };
        let day = ev.time().day();
        let max_users = self.limits.max_users_per_tenant;
        // One look-up: whether the tenant is held, its days reach back far enough, and
        // the user is held or has room (for one more directory role too; a GDAP
        // relationship likewise).
        let held = state.with_tenant(ev.tenant_id(), |t| {
            let room = user.is_none_or(|u| t.users.len() < max_users || t.user(u).is_some());
            let roles = match (user, role.and_then(|r| Some((r.key()?, r.eligible)))) {
                (Some(u), Some((key, eligible))) => t.directory_role_room(u, key, eligible),
                _ => match ev {
                    Event::Gdap(g) => t.gdap.has_room(&g.relationship_id),
                    _ => true,
                },
            };
            (t.holds_window_of(day), room, roles)
        });
        let detail = match held {
            None if state.len() >= self.limits.max_tenants => format!(
                "{} tenants held, the most `pipeline.max_tenants` allows: a new tenant is refused",
                self.limits.max_tenants
            ),
            None | Some((true, true, true)) => return None,
            Some((false, ..)) => format!(
                "day {day} is before the days the tenant's state keeps (`pipeline.keep_days`): its rows were written and its counters dropped"
            ),
            Some((true, false, _)) => format!(
                "{max_users} users held for the tenant, the most `pipeline.max_users_per_tenant` allows: a new user is refused"
            ),
            Some((true, true, false)) if matches!(ev, Event::Gdap(_)) => format!(
                "{} GDAP relationships held for the partner, the most state keeps: a new one is refused",
                crate::state::MAX_RELATIONSHIPS
            ),
            Some((true, true, false)) => format!(
                "the user holds {} directory roles, the most state keeps for one user: another is refused",
                crate::state::MAX_DIRECTORY_ROLES_PER_USER
            ),
        };
        Some(event::BadDocument::new(Reason::StateLimit, detail))
    }
}
