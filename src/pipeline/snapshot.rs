//! A stream-mode snapshot: every chosen policy's state of some tenants, in one versioned
//! document, and its restore.

use super::Processor;

impl Processor {
    /// Serialises some tenants' state under every policy (a snapshot).
    pub fn snapshot_json(&self, tenant_ids: &[String]) -> Result<String, serde_json::Error> {
        let mut parts = Vec::with_capacity(self.engines.len());
        for e in &self.engines {
            // Each engine's state is embedded as it was written, not parsed again.
            let state =
                serde_json::value::RawValue::from_string(e.state.snapshot_json(tenant_ids)?)?;
            parts.push((e.version.to_string(), state));
        }
        serde_json::to_string(&Snapshot {
            format: SNAPSHOT_FORMAT,
            policies: parts,
        })
    }

    /// Restores tenants from a snapshot; returns their ids. A snapshot without the state
    /// of one of the chosen policies fails: its rows would restart from nothing.
    pub fn restore_json(&self, json: &str) -> Result<Vec<String>, SnapshotError> {
        let snap: Snapshot<&serde_json::value::RawValue> =
            serde_json::from_str(json).map_err(SnapshotError::Json)?;
        if !READS.contains(&snap.format) {
            return Err(SnapshotError::Format(snap.format));
        }
        let mut ids = std::collections::BTreeSet::new();
        for e in &self.engines {
            let Some((_, state)) = snap.policies.iter().find(|(v, _)| **v == *e.version) else {
                return Err(SnapshotError::MissingPolicy(e.version.to_string()));
            };
            ids.extend(
                e.state
                    .restore_json(state.get())
                    .map_err(SnapshotError::Json)?,
            );
        }
        Ok(ids.into_iter().collect())
    }
}

/// The format of a stream-mode state snapshot (`state_snapshots.state`). 3: replay keys
/// are keyed hashes of kind, id and content, under a key stored with each tenant.
const SNAPSHOT_FORMAT: u32 = 3;

/// The formats a restore reads: 2's replay ids (unkeyed hashes of kind and id) cannot be
/// compared with 3's and are left out (the stream's replay window is a day by default:
/// a message produced twice across the upgrade is applied twice).
const READS: [u32; 2] = [2, SNAPSHOT_FORMAT];

/// A stream-mode snapshot: every policy's state, each as its own JSON text.
#[derive(serde::Serialize, serde::Deserialize)]
struct Snapshot<S> {
    format: u32,
    policies: Vec<(String, S)>,
}

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Not a snapshot this release reads.
    #[error("not a state snapshot of this release: {0}")]
    Json(serde_json::Error),
    /// Written by another release.
    #[error("snapshot format {0}, this release reads formats 2 and {SNAPSHOT_FORMAT}: clear `state_snapshots` and replay the topic from the start")]
    Format(u32),
    /// A chosen policy's state is missing.
    #[error("the snapshot holds no state for policy `{0}`: it was taken with other policies; clear `state_snapshots` and replay, or run with the policies it was taken with")]
    MissingPolicy(String),
}
