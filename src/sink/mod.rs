//! Sinks: the rows mfa-audit writes (`findings`, `rollout_daily`, `rollout_surfaces`, `agents`,
//! `dead_letters`), in ClickHouse `JSONEachRow` form, to NDJSON files or (production)
//! ClickHouse; and the findings, as the same lines, to a Kafka topic (`kafka`), in either
//! mode. Every field name here is a column name.

pub mod clickhouse;
pub mod file;
pub mod kafka;
pub mod rows;

pub use rows::{AgentRow, DayStats, DeadLetter, RolloutRow, SurfaceRow};

use crate::policy::Finding;

/// Where the streaming rows go (findings and dead letters as they happen). Rollout and
/// agent rows are absolute values derived from state, written by [`RowSink::snapshot`].
pub trait RowSink {
    /// The error a write can fail with.
    type Error: std::error::Error + Send + Sync + 'static;
    /// One finding.
    fn finding(&mut self, f: &Finding) -> Result<(), Self::Error>;
    /// One dead letter.
    fn dead_letter(&mut self, d: &DeadLetter) -> Result<(), Self::Error>;
    /// The current rollout, surface and agent rows (each replaces any earlier row of its
    /// key). By default a sink keeps none of them (a sink of findings and dead letters
    /// only: the stream's flush batch, `diff`'s counter).
    fn snapshot(
        &mut self,
        rollout: &[RolloutRow],
        surfaces: &[SurfaceRow],
        agents: &[AgentRow],
    ) -> Result<(), Self::Error> {
        let _ = (rollout, surfaces, agents);
        Ok(())
    }
}

/// A sink that keeps everything in memory (tests, benches, and the report).
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    /// Findings written.
    pub findings: Vec<Finding>,
    /// Dead letters written.
    pub dead_letters: Vec<DeadLetter>,
    /// The last rollout snapshot.
    pub rollout: Vec<RolloutRow>,
    /// The last surfaces snapshot.
    pub surfaces: Vec<SurfaceRow>,
    /// The last agents snapshot.
    pub agents: Vec<AgentRow>,
}

impl RowSink for MemorySink {
    type Error = std::convert::Infallible;
    fn finding(&mut self, f: &Finding) -> Result<(), Self::Error> {
        self.findings.push(f.clone());
        Ok(())
    }
    fn dead_letter(&mut self, d: &DeadLetter) -> Result<(), Self::Error> {
        self.dead_letters.push(d.clone());
        Ok(())
    }
    fn snapshot(
        &mut self,
        rollout: &[RolloutRow],
        surfaces: &[SurfaceRow],
        agents: &[AgentRow],
    ) -> Result<(), Self::Error> {
        self.rollout = rollout.to_vec();
        self.surfaces = surfaces.to_vec();
        self.agents = agents.to_vec();
        Ok(())
    }
}
