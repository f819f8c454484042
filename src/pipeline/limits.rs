//! What an event must pass before it is applied: the bounds of state that grows with the
//! input (a tenant, a user, a directory role or a GDAP relationship past one is refused as
//! a `state_limit` dead letter, never dropped), its time against the clock, and a
//! `policy_override` against the policy it names.

use super::{shown, Processor};
use crate::event::time::EventTime;
use crate::event::{self, Event, Reason};
use crate::policy;

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

    /// An event dated past the clock by more than the skew is refused: no single event
    /// may move its tenant's readiness day ahead (the security review of 2026-12, F5).
    /// An event before 1970 is refused too: ClickHouse's `Date` starts there, and 18.16
    /// writes any earlier day as `0000-00-00`, folding them all onto one row (F16).
    pub(super) fn check_time(
        &self,
        ev: &Event<'_>,
        now: EventTime,
    ) -> Result<(), event::BadDocument> {
        if ev.time().0 < 0 {
            return Err(event::BadDocument::new(
                Reason::BadTime,
                format!(
                    "event time {} is before 1970-01-01, where ClickHouse dates start",
                    ev.time()
                ),
            ));
        }
        let limit = now.0.saturating_add(self.future_skew_micros);
        if ev.time().0 > limit {
            return Err(event::BadDocument::new(
                Reason::FutureTime,
                format!(
                    "event time {} is more than {} h past the time it was processed ({})",
                    ev.time(),
                    self.future_skew_micros / 3_600_000_000,
                    now
                ),
            ));
        }
        Ok(())
    }

    /// A `policy_override` is checked against its policy, chosen or shipped: the policy
    /// and surface must exist, the surface must allow postponing, and the date must not
    /// pass its `postpone_until`. Other events pass.
    pub(super) fn check_override(&self, ev: &Event<'_>) -> Result<(), event::BadDocument> {
        let Event::Override(o) = ev else {
            return Ok(());
        };
        let reject =
            |detail: String| Err(event::BadDocument::new(Reason::OverrideRejected, detail));
        let name = o.policy.trim();
        let chosen = self.engines.iter().find(|e| &*e.version == name);
        // A version not chosen is checked against the shipped one (parsed once per
        // process).
        let others = || {
            policy::shipped()
                .iter()
                .filter(|p| !self.engines.iter().any(|e| *e.version == *p.version))
        };
        let Some(policy) = chosen
            .map(|e| &*e.policy)
            .or_else(|| others().find(|p| p.version == name))
        else {
            let mut known: Vec<&str> = self.engines.iter().map(|e| &*e.version).collect();
            known.extend(others().map(|p| p.version.as_str()));
            return reject(format!(
                "unknown policy `{}` (known: {})",
                shown(name),
                known.join(", ")
            ));
        };
        let Some(i) = policy.surface(o.surface.trim()) else {
            let names: Vec<&str> = policy.surfaces.iter().map(|s| &*s.name).collect();
            return reject(format!(
                "policy `{name}` has no surface `{}` (surfaces: {})",
                shown(&o.surface),
                names.join(", ")
            ));
        };
        let Some(surface) = policy.surfaces.get(i) else {
            return reject(String::new());
        };
        let Some(limit) = surface.postpone_until else {
            return reject(format!(
                "surface `{}` of policy `{name}` cannot be postponed (no `postpone_until`)",
                surface.name
            ));
        };
        if o.enforced_from > limit {
            return reject(format!(
                "`enforcedFrom` {} is past the latest date policy `{name}` allows for surface `{}` ({})",
                o.enforced_from.day(),
                surface.name,
                limit.day()
            ));
        }
        let outcome = if chosen.is_some() {
            "applied"
        } else {
            "not_chosen"
        };
        crate::telemetry::inc(&self.metrics.overrides, &[name, outcome]);
        Ok(())
    }
}
