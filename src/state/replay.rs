//! Replay detection: which events a tenant already applied, within a window of days.
//!
//! An event is a *replay* when the same kind, id and content were applied within the
//! window: an overlapping export or a redelivered message, skipped. The same kind and id
//! with other content is *not* a replay: an id is chosen by whoever sent the event
//! (Partner Center's `MS-RequestId` is a client header), so reusing one must not hide an
//! event. It is applied, and counted as an id reused.
//!
//! The content is the record's bytes as read (a batch's record on its own): an overlapping
//! export or a redelivered message carries the same bytes. Leaving out the blanks between
//! JSON tokens would cost a scan of every byte (about a fifth of a one-thread run), so the
//! same record formatted otherwise is applied again, and counted as an id reused.
//!
//! The keys are 64-bit SipHash-1-3 under a 128-bit random key: drawn once per process, copied into each
//! tenant's state when the tenant is first seen, and stored in its snapshot, so that the
//! ids of a restored tenant are compared under the key they were hashed with. Without the
//! key, nobody can choose two contents that collide.

use crate::event::time::{Day, EventTime};
use foldhash::{HashMap, HashSet};
use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher13;
use std::collections::BTreeMap;
use std::hash::Hasher;
use std::sync::OnceLock;

/// What an event is, as far as replays go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sighting {
    /// Not applied before (within the window): apply it.
    New,
    /// The same kind, id and content already applied: skip it.
    Replay,
    /// The kind and id were applied with other content: apply it, and count it.
    IdReused,
}

/// The hash key of a process: drawn once from the operating system's randomness (std's
/// `RandomState` is seeded from it; two of its outputs make the key).
fn process_key() -> (u64, u64) {
    static KEY: OnceLock<(u64, u64)> = OnceLock::new();
    *KEY.get_or_init(|| {
        use std::hash::BuildHasher;
        let s = std::collections::hash_map::RandomState::new();
        (
            s.hash_one(0x6d66_615f_7230_u64),
            s.hash_one(0x6d66_615f_7231_u64),
        )
    })
}

/// The events of one tenant applied within the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replays {
    /// The key every hash below is computed with.
    key: (u64, u64),
    /// Hashes of (kind, id, content), by the event's day.
    events: BTreeMap<Day, HashSet<u64>>,
    /// Hashes of (kind, id), with the newest day each was applied on.
    ids: HashMap<u64, Day>,
}

impl Default for Replays {
    fn default() -> Self {
        Self {
            key: process_key(),
            events: BTreeMap::new(),
            ids: HashMap::default(),
        }
    }
}

impl Replays {
    fn id_hash(&self, kind: &str, id: &str) -> SipHasher13 {
        let mut h = SipHasher13::new_with_keys(self.key.0, self.key.1);
        h.write(kind.as_bytes());
        h.write_u8(0xff);
        h.write(id.as_bytes());
        h.write_u8(0xff);
        h
    }

    /// Records an event; what it is. `watermark` is the tenant's newest event time before
    /// this one; events older than `window_days` behind it are applied as new.
    pub fn sighting(
        &mut self,
        (kind, id, raw): (&str, &str, &[u8]),
        t: EventTime,
        watermark: EventTime,
        window_days: i64,
    ) -> Sighting {
        let day = t.day();
        if day < watermark.day().plus(-window_days) {
            // Older than the replay window: nothing to compare with; applied as new.
            return Sighting::New;
        }
        let ids = self.id_hash(kind, id);
        let id_key = ids.finish();
        let mut full = ids;
        full.write(raw);
        let fresh = self.events.entry(day).or_default().insert(full.finish());
        let known_id = match self.ids.get_mut(&id_key) {
            Some(d) => {
                *d = (*d).max(day);
                true
            }
            None => {
                self.ids.insert(id_key, day);
                false
            }
        };
        if t > watermark && day != watermark.day() {
            let horizon = day.plus(-window_days);
            self.events.retain(|d, _| *d >= horizon);
            self.ids.retain(|_, d| *d >= horizon);
        }
        match (fresh, known_id) {
            (false, _) => Sighting::Replay,
            (true, true) => Sighting::IdReused,
            (true, false) => Sighting::New,
        }
    }

    /// Events remembered.
    pub fn remembered(&self) -> usize {
        self.events.values().map(HashSet::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_id_with_other_content_is_not_a_replay() {
        let mut r = Replays::default();
        let at = EventTime::parse("2020-06-01T10:00:00Z").unwrap();
        let w = EventTime::default();
        let one = (
            "api",
            "attacker-chosen-0001",
            &br#"{"amr":["pwd","mfa"]}"#[..],
        );
        let two = ("api", "attacker-chosen-0001", &br#"{"amr":["pwd"]}"#[..]);
        assert_eq!(r.sighting(one, at, w, 31), Sighting::New);
        assert_eq!(r.sighting(one, at, at, 31), Sighting::Replay);
        assert_eq!(r.sighting(two, at, at, 31), Sighting::IdReused);
        assert_eq!(r.sighting(two, at, at, 31), Sighting::Replay);
    }
}
