//! Event-sourced per-tenant state: partner-role users and their roles, MFA registration,
//! the latest interactive Partner Center sign-in per user, technical exceptions with
//! their validity windows, and the per-day rollout counters. Event time drives it all.
//!
//! Tenants live in a [`DashMap`]; the processor locks one tenant for the span of one
//! event (never across an `.await`, never while touching the map again).

mod exceptions;
mod replay;
mod rollout;
mod tenant;

pub use replay::Sighting;
pub use rollout::{DayCounters, Readiness, ShareCount, Tally};
pub use tenant::{
    Directory, ExceptionState, PcSession, SurfaceOverride, TenantState, UserState,
    DEFAULT_REPLAY_WINDOW_DAYS,
};

use dashmap::mapref::one::RefMut;
use dashmap::DashMap;

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

    /// How many tenants, users and Partner Center sessions the state holds.
    pub fn size(&self) -> (usize, usize, usize) {
        let mut users = 0;
        let mut sessions = 0;
        for t in self.tenants.iter() {
            users += t.users.len();
            sessions += t.users.values().filter(|u| u.pc_session.is_some()).count();
        }
        (self.tenants.len(), users, sessions)
    }
}
