//! Rules that stay quiet after a finding (`suppress`): per tenant, the rule and key of a
//! finding with the end of its quiet spell, in event time.

use super::TenantState;
use crate::event::time::EventTime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most quiet spells one tenant holds. Past it, spells already over are dropped; when
/// every one is still running, a new finding is written and starts none (a finding is
/// never lost to the bound; only its repeats are not held back).
pub const MAX_SUPPRESSIONS: usize = 100_000;

/// One quiet spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quiet {
    /// The finding that started it.
    pub since: EventTime,
    /// Its end (exclusive).
    pub until: EventTime,
}

/// The quiet spells of a tenant by rule id and key (`rule` and key joined by U+001F).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppressions(BTreeMap<String, Quiet>);

impl Suppressions {
    /// No spell is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Spells held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    fn key(rule: &str, key: &str) -> String {
        format!("{rule}\u{1f}{key}")
    }

    /// Whether a finding of `rule` with `key` at `t` falls in a quiet spell.
    pub fn quiet(&self, rule: &str, key: &str, t: EventTime) -> bool {
        self.0
            .get(&Self::key(rule, key))
            .is_some_and(|q| q.since <= t && t < q.until)
    }
}

impl TenantState {
    /// Starts a quiet spell of `micros` for `rule` and `key` after a finding at `t`.
    pub fn apply_suppression(&mut self, rule: &str, key: &str, t: EventTime, micros: i64) {
        let s = &mut self.suppressions.0;
        if s.len() >= MAX_SUPPRESSIONS {
            let now = self.watermark.max(t);
            s.retain(|_, q| q.until > now);
        }
        let k = Suppressions::key(rule, key);
        if s.len() >= MAX_SUPPRESSIONS && !s.contains_key(&k) {
            return;
        }
        s.insert(
            k,
            Quiet {
                since: t,
                until: EventTime(t.0.saturating_add(micros)),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spell_holds_for_its_rule_and_key_until_it_ends() {
        let mut t = TenantState::default();
        let min = 60_000_000;
        t.apply_suppression("R", "u1", EventTime(0), 10 * min);
        let s = &t.suppressions;
        assert!(s.quiet("R", "u1", EventTime(9 * min)));
        assert!(
            !s.quiet("R", "u1", EventTime(10 * min)),
            "the end is exclusive"
        );
        assert!(!s.quiet("R", "u2", EventTime(min)), "another key");
        assert!(!s.quiet("Q", "u1", EventTime(min)), "another rule");
        assert!(!s.quiet("R", "u1", EventTime(-1)), "before the finding");
    }

    #[test]
    fn the_bound_drops_spells_that_are_over_and_never_a_running_one() {
        let mut t = TenantState::default();
        for i in 0..MAX_SUPPRESSIONS {
            t.apply_suppression("R", &i.to_string(), EventTime(0), 10);
        }
        t.apply_suppression("R", "late", EventTime(5), 10);
        assert_eq!(t.suppressions.len(), MAX_SUPPRESSIONS, "all still running");
        assert!(!t.suppressions.quiet("R", "late", EventTime(6)));
        t.apply_suppression("R", "later", EventTime(100), 10);
        assert_eq!(t.suppressions.len(), 1, "the spells over were dropped");
        assert!(t.suppressions.quiet("R", "later", EventTime(101)));
    }
}
