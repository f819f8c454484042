//! The rows of one stream flush: findings and dead letters gathered as they happen (a
//! [`RowSink`]), then written with the changed tenants' rollout, surface and agent rows,
//! one `JSONEachRow` insert per table.

use super::{ClickHouse, ClickHouseError, DEAD_LETTER_COLUMNS};
use crate::policy::Finding;
use crate::sink::{AgentRow, DeadLetter, RolloutRow, RowSink, SurfaceRow};
use bytes::Bytes;
use std::time::{Duration, Instant};

/// Rows waiting for the next flush, as NDJSON.
#[derive(Default)]
pub struct Batch {
    findings: Vec<u8>,
    dead_letters: Vec<u8>,
    rows: usize,
    line: Vec<u8>,
}

/// The NDJSON bodies of one flush, one per table.
#[derive(Debug, Default, Clone)]
pub struct Flush {
    /// `findings` rows.
    pub findings: Bytes,
    /// `dead_letters` rows (without `received_at`).
    pub dead_letters: Bytes,
    /// `rollout_daily` rows.
    pub rollout: Bytes,
    /// `rollout_surfaces` rows.
    pub surfaces: Bytes,
    /// `agents` rows.
    pub agents: Bytes,
}

impl Batch {
    /// Appends `row` to `buf` as one NDJSON line (`line` is scratch space). A row that
    /// cannot be serialised is left out.
    fn push<T: serde::Serialize>(buf: &mut Vec<u8>, line: &mut Vec<u8>, row: &T) {
        line.clear();
        if serde_json::to_writer(&mut *line, row).is_ok() {
            buf.extend_from_slice(line);
            buf.push(b'\n');
        }
    }

    /// Findings and dead letters gathered since the last [`Batch::clear`].
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The gathered findings, as the lines of `findings.ndjson`.
    pub fn findings_ndjson(&self) -> &[u8] {
        &self.findings
    }

    /// Their size as NDJSON.
    pub fn bytes(&self) -> usize {
        self.findings.len() + self.dead_letters.len()
    }

    /// Forgets the gathered rows (after they were written).
    pub fn clear(&mut self) {
        self.findings.clear();
        self.dead_letters.clear();
        self.rows = 0;
    }

    /// The bodies of a flush: the gathered findings and dead letters, with `rollout`,
    /// `surfaces` and `agents` (absolute values of the changed tenants). The batch keeps
    /// its rows until [`Batch::clear`], so a failed write is retried whole.
    pub fn to_flush(
        &self,
        rollout: &[RolloutRow],
        surfaces: &[SurfaceRow],
        agents: &[AgentRow],
    ) -> Flush {
        let mut line = Vec::new();
        Flush {
            findings: Bytes::copy_from_slice(&self.findings),
            dead_letters: Bytes::copy_from_slice(&self.dead_letters),
            rollout: ndjson(rollout, &mut line),
            surfaces: ndjson(surfaces, &mut line),
            agents: ndjson(agents, &mut line),
        }
    }
}

/// Rows as NDJSON (`line` is scratch space).
fn ndjson<T: serde::Serialize>(rows: &[T], line: &mut Vec<u8>) -> Bytes {
    let mut buf = Vec::new();
    for r in rows {
        Batch::push(&mut buf, line, r);
    }
    Bytes::from(buf)
}

impl RowSink for Batch {
    type Error = std::convert::Infallible;
    fn finding(&mut self, f: &Finding) -> Result<(), Self::Error> {
        // `context`, when any, is JSON text (`Finding`'s own serialisation).
        Self::push(&mut self.findings, &mut self.line, f);
        self.rows += 1;
        Ok(())
    }
    fn dead_letter(&mut self, d: &DeadLetter) -> Result<(), Self::Error> {
        Self::push(&mut self.dead_letters, &mut self.line, d);
        self.rows += 1;
        Ok(())
    }
}

impl ClickHouse {
    /// Writes a flush: findings, dead letters, rollout, surfaces, agents, in that order,
    /// stopping at the first refusal. `observe` hears each insert's duration.
    pub async fn write_flush(
        &self,
        flush: Flush,
        observe: impl Fn(Duration),
    ) -> Result<(), ClickHouseError> {
        let tables = [
            ("findings", None, flush.findings),
            (
                "dead_letters",
                Some(DEAD_LETTER_COLUMNS),
                flush.dead_letters,
            ),
            ("rollout_daily", None, flush.rollout),
            ("rollout_surfaces", None, flush.surfaces),
            ("agents", None, flush.agents),
        ];
        for (table, columns, body) in tables {
            let t = Instant::now();
            let r = self.insert(table, columns, body).await;
            observe(t.elapsed());
            r?;
        }
        Ok(())
    }
}
