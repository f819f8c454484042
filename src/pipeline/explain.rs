//! `explain`'s view of the processor: one document decoded and applied as `process` does,
//! with what every rule of every policy read and decided for the events asked about.

use super::*;

/// One event as `explain` shows it.
#[derive(Debug)]
pub struct Explained {
    /// The event id.
    pub event_id: String,
    /// Its kind.
    pub kind: &'static str,
    /// Its tenant.
    pub tenant_id: String,
    /// Its time.
    pub time: EventTime,
    /// A replay of an event already applied (no rule ran).
    pub replay: bool,
    /// Per policy, in the order chosen: every rule's trace.
    pub traces: Vec<policy::Trace>,
}

impl Processor {
    /// Decodes and applies one document as [`Processor::process`] does (state included),
    /// and returns, for each event whose id `wanted` accepts, what every rule of every
    /// policy read and decided (`explain`). Bad documents are only counted.
    pub fn explain_document(&self, bytes: &[u8], wanted: &dyn Fn(&str) -> bool) -> Vec<Explained> {
        self.metrics.documents.inc();
        let mut out = Vec::new();
        let Ok(text) = std::str::from_utf8(bytes) else {
            return out;
        };
        for item in event::decode_with(text, &self.tokens, self.default_tenant.as_deref()) {
            let Ok(ev) = item.event else {
                continue;
            };
            if matches!(ev, Event::Skipped(_)) {
                continue;
            }
            if self.check_time(&ev, (self.clock)()).is_err()
                || self.check_override(&ev).is_err()
                || self.over_limit(&ev).is_some()
            {
                continue;
            }
            let want = wanted(ev.event_id());
            let mut traces = Vec::new();
            let applied = self.apply_traced(&ev, item.raw, want.then_some(&mut traces));
            if want {
                out.push(Explained {
                    event_id: ev.event_id().to_owned(),
                    kind: ev.kind(),
                    tenant_id: ev.tenant_id().to_owned(),
                    time: ev.time(),
                    replay: applied.is_none(),
                    traces,
                });
            }
        }
        out
    }
}
