//! Event-sourced per-tenant state: partner-role users and their roles, MFA registration,
//! the latest interactive Partner Center sign-in per user, technical exceptions with
//! their validity windows, and the per-day rollout counters. Event time drives it all.
//!
//! Tenants live in a [`DashMap`]; the processor locks one tenant for the span of one
//! event (never across an `.await`, never while touching the map again).

mod directory;
mod exceptions;
mod gdap;
mod replay;
mod rollout;
mod suppress;
mod tenant;
mod windows;

pub use directory::{DirectoryRoleChange, MAX_DIRECTORY_ROLES_PER_USER};
pub use exceptions::ExceptionState;
pub use gdap::{Gdap, Relationship, MAX_RELATIONSHIPS};
pub use replay::Sighting;
pub use rollout::{DayCounters, Readiness, ShareCount, Tally};
pub use suppress::{Quiet, Suppressions, MAX_SUPPRESSIONS};
pub use tenant::{
    Directory, PcSession, SurfaceOverride, TenantState, UserState, DEFAULT_REPLAY_WINDOW_DAYS,
};
pub use windows::{
    HistoryState, Sight, This, WindowState, COUNT_CAP, MAX_ENTRIES, MAX_GROUPS, MAX_VALUES,
    MAX_VALUES_PER_GROUP,
};

use dashmap::mapref::one::RefMut;
use dashmap::DashMap;

/// Most tenants held in state, by default (`pipeline.max_tenants`): about 5.5 KB each with
/// one user and one day (556 MB RSS at the bound, one thread), more with more.
pub const DEFAULT_MAX_TENANTS: usize = 100_000;

/// Most users held in one tenant's state, by default (`pipeline.max_users_per_tenant`):
/// about 1 KB each, so some 100 MB for a tenant at the bound. Partner tenants have tens
/// to thousands of users.
pub const DEFAULT_MAX_USERS_PER_TENANT: usize = 100_000;

/// Days of rollout counters the stream mode keeps behind a tenant's newest day, by
/// default (`pipeline.keep_days`): 13 months, a year back plus the 7-day window. Older
/// days' rows are written, then the days leave state and snapshots.
pub const DEFAULT_KEEP_DAYS: i64 = 400;

/// Every tenant's state.
#[derive(Default)]
pub struct State {
    tenants: DashMap<String, TenantState, foldhash::fast::RandomState>,
}

impl State {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Locks one tenant's state (creating it), for the span of one event.
    pub fn tenant_mut(&self, tenant_id: &str) -> RefMut<'_, String, TenantState> {
        if let Some(t) = self.tenants.get_mut(tenant_id) {
            return t;
        }
        self.tenants.entry(tenant_id.to_owned()).or_default()
    }

    /// Tenant ids, sorted (for deterministic output).
    pub fn tenant_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.tenants.iter().map(|e| e.key().clone()).collect();
        ids.sort();
        ids
    }

    /// Runs `f` on one tenant's state, if it exists.
    pub fn with_tenant<R>(&self, tenant_id: &str, f: impl FnOnce(&TenantState) -> R) -> Option<R> {
        self.tenants.get(tenant_id).map(|t| f(t.value()))
    }

    /// Removes a tenant's state (its partition moved elsewhere, or to snapshot it).
    pub fn take_tenant(&self, tenant_id: &str) -> Option<TenantState> {
        self.tenants.remove(tenant_id).map(|(_, t)| t)
    }

    /// Puts a tenant's state (restored from a snapshot), replacing any held.
    pub fn put_tenant(&self, tenant_id: String, state: TenantState) {
        self.tenants.insert(tenant_id, state);
    }

    /// Serialises some tenants' state (a snapshot).
    pub fn snapshot_json(&self, tenant_ids: &[String]) -> Result<String, serde_json::Error> {
        let mut out: Vec<(&str, dashmap::mapref::one::Ref<'_, String, TenantState>)> = Vec::new();
        for id in tenant_ids {
            if let Some(t) = self.tenants.get(id) {
                out.push((id, t));
            }
        }
        let view: Vec<(&str, &TenantState)> = out.iter().map(|(id, t)| (*id, t.value())).collect();
        serde_json::to_string(&view)
    }

    /// Restores tenants from a snapshot; returns their ids.
    pub fn restore_json(&self, json: &str) -> Result<Vec<String>, serde_json::Error> {
        let tenants: Vec<(String, TenantState)> = serde_json::from_str(json)?;
        let ids = tenants.iter().map(|(id, _)| id.clone()).collect();
        for (id, t) in tenants {
            self.tenants.insert(id, t);
        }
        Ok(ids)
    }

    /// Whether a tenant is held.
    pub fn contains(&self, tenant_id: &str) -> bool {
        self.tenants.contains_key(tenant_id)
    }

    /// How many tenants are held.
    pub fn len(&self) -> usize {
        self.tenants.len()
    }

    /// Whether no tenant is held.
    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }

    /// How much the state holds.
    pub fn size(&self) -> Size {
        let mut s = Size {
            tenants: self.tenants.len(),
            ..Size::default()
        };
        for t in self.tenants.iter() {
            s.users += t.users.len();
            s.sessions += t.users.values().filter(|u| u.pc_session.is_some()).count();
            s.replay_ids += t.replay_ids();
            s.days += t.days.len();
        }
        s
    }
}

/// What a [`State`] holds: each grows with the input and has a bound (see the README's
/// Bounds section).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Tenants (`pipeline.max_tenants`).
    pub tenants: usize,
    /// Users, all tenants (`pipeline.max_users_per_tenant` each).
    pub users: usize,
    /// Partner Center sessions (one per user at most).
    pub sessions: usize,
    /// Events remembered for replay detection (`pipeline.replay_window_days`).
    pub replay_ids: usize,
    /// Days of rollout counters, all tenants (one per tenant and day with events).
    pub days: usize,
}
