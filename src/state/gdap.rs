//! The GDAP relationships a partner has exported (Graph `delegatedAdminRelationship`),
//! each as last seen: whether a delegated-admin sign-in into a customer tenant had an
//! active relationship behind it.

use crate::event::time::EventTime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most relationships held per partner tenant: a partner has one or a few per customer;
/// past this, a new relationship id is refused as a `state_limit` dead letter
/// ([`Gdap::has_room`]), never dropped.
pub const MAX_RELATIONSHIPS: usize = 100_000;

/// One relationship as last seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relationship {
    /// `customer.tenantId`, lower case.
    pub customer: String,
    /// `status`, lower case.
    pub status: String,
    /// `activatedDateTime`.
    pub activated: Option<EventTime>,
    /// `endDateTime`.
    pub ends: Option<EventTime>,
    /// The time of the export that said so.
    pub seen: EventTime,
    /// `accessDetails.unifiedRoles[].roleDefinitionId`, lower case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// `autoExtendDuration` (`PT0S`: none), as exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_extend: Option<String>,
}

/// A partner's relationships by id.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gdap {
    relationships: BTreeMap<String, Relationship>,
}

impl Gdap {
    /// No relationship was ever exported (then no sign-in is judged by them).
    pub fn is_empty(&self) -> bool {
        self.relationships.is_empty()
    }

    /// Relationships held.
    pub fn len(&self) -> usize {
        self.relationships.len()
    }

    /// Whether relationship `id` is held or there is room for it.
    pub fn has_room(&self, id: &str) -> bool {
        self.relationships.len() < MAX_RELATIONSHIPS || self.relationships.contains_key(id)
    }

    /// Records a relationship as an export shows it; an older export of one already
    /// seen later changes nothing.
    pub fn apply(&mut self, id: &str, r: Relationship) {
        let room = self.relationships.len() < MAX_RELATIONSHIPS;
        match self.relationships.get_mut(id) {
            Some(old) if old.seen > r.seen => {}
            Some(old) => *old = r,
            None if room => {
                self.relationships.insert(id.to_owned(), r);
            }
            None => {}
        }
    }

    /// Whether a relationship with `customer` was active at `at`: its last known status
    /// is `active` and `at` falls between `activatedDateTime` and `endDateTime` (where
    /// given).
    pub fn active_with(&self, customer: &str, at: EventTime) -> bool {
        self.relationships.values().any(|r| {
            r.customer.eq_ignore_ascii_case(customer.trim())
                && r.status == "active"
                && r.activated.is_none_or(|t| t <= at)
                && r.ends.is_none_or(|t| at < t)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> EventTime {
        EventTime::parse(s).unwrap_or(EventTime(0))
    }

    #[test]
    fn active_within_its_window_and_status() {
        let mut g = Gdap::default();
        assert!(g.is_empty());
        let r = |status: &str, seen: &str| Relationship {
            customer: "c1".into(),
            status: status.into(),
            activated: Some(t("2026-01-01")),
            ends: Some(t("2027-01-01")),
            seen: t(seen),
            roles: Vec::new(),
            auto_extend: None,
        };
        g.apply("r1", r("active", "2026-01-02"));
        assert!(g.active_with("C1", t("2026-06-01")));
        assert!(!g.active_with("c1", t("2025-12-31")));
        assert!(!g.active_with("c1", t("2027-01-01")));
        assert!(!g.active_with("c2", t("2026-06-01")));
        g.apply("r1", r("terminated", "2026-07-01"));
        assert!(!g.active_with("c1", t("2026-06-01")));
        // An older export does not bring it back.
        g.apply("r1", r("active", "2026-03-01"));
        assert!(!g.active_with("c1", t("2026-06-01")));
        // Bounded: past MAX_RELATIONSHIPS a new id has no room, a held one has.
        for i in g.len()..MAX_RELATIONSHIPS {
            g.apply(&format!("x{i}"), r("active", "2026-01-02"));
        }
        assert_eq!(g.len(), MAX_RELATIONSHIPS);
        assert!(!g.has_room("new") && g.has_room("r1"));
    }
}
