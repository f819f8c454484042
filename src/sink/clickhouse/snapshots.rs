//! The checkpoint tables: `tenant_snapshots`, each tenant's state with the offset it
//! reflects, written at a checkpoint for the tenants that changed, before that offset is
//! committed, and read back when the partition is assigned again (the stream mode's
//! restart); and `state_snapshots`, a whole partition's state as checkpoints were stored
//! before, still read.

use super::{escape, ClickHouse, ClickHouseError};
use bytes::Bytes;

/// One stored checkpoint: of one tenant, or (`tenant_id` empty) of a whole partition as
/// stored before per-tenant checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct StoredSnapshot {
    /// The tenant (empty: every tenant of the partition, in `state_snapshots`).
    pub tenant_id: String,
    /// The first offset the state does not reflect.
    pub next_offset: u64,
    /// The state (JSON).
    pub state: String,
}

fn stored(r: &serde_json::Value, tenant_id: String) -> Option<StoredSnapshot> {
    // JSONEachRow writes UInt64 as a quoted string on some versions.
    let next = r.get("next_offset")?;
    let next_offset = next
        .as_u64()
        .or_else(|| next.as_str().and_then(|s| s.parse().ok()))?;
    Some(StoredSnapshot {
        tenant_id,
        next_offset,
        state: r.get("state")?.as_str()?.to_owned(),
    })
}

impl ClickHouse {
    /// The newest checkpoint of a partition: the whole-partition one of `state_snapshots`
    /// (if any) first, then each tenant's newest of `tenant_snapshots`.
    pub async fn load_snapshot(
        &self,
        group_id: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<StoredSnapshot>, ClickHouseError> {
        let key = format!(
            "group_id = '{}' AND topic = '{}' AND partition = {}",
            escape(group_id),
            escape(topic),
            partition.max(0)
        );
        let sql = format!(
            "SELECT next_offset, state FROM state_snapshots FINAL WHERE {key} \
             ORDER BY next_offset DESC LIMIT 1"
        );
        let mut out: Vec<StoredSnapshot> = self
            .rows(&sql)
            .await?
            .iter()
            .filter_map(|r| stored(r, String::new()))
            .collect();
        let sql = format!(
            "SELECT tenant_id, next_offset, state FROM tenant_snapshots FINAL \
             WHERE {key} AND tenant_id != '' ORDER BY tenant_id"
        );
        out.extend(self.rows(&sql).await?.iter().filter_map(|r| {
            let tenant = r.get("tenant_id")?.as_str()?.to_owned();
            stored(r, tenant)
        }));
        Ok(out)
    }

    /// Stores some tenants' checkpoints (tenant id, state JSON), each reflecting every
    /// offset below `next_offset`, in one insert.
    pub async fn save_snapshot(
        &self,
        group_id: &str,
        topic: &str,
        partition: i32,
        next_offset: u64,
        tenants: &[(String, String)],
    ) -> Result<(), ClickHouseError> {
        let mut rows = String::new();
        for (tenant_id, state) in tenants {
            rows.push_str(
                &serde_json::json!({
                    "group_id": group_id, "topic": topic, "partition": partition.max(0),
                    "tenant_id": tenant_id, "next_offset": next_offset, "state": state,
                })
                .to_string(),
            );
            rows.push('\n');
        }
        self.insert(
            "tenant_snapshots",
            Some("group_id, topic, partition, tenant_id, next_offset, state"),
            Bytes::from(rows),
        )
        .await
    }
}
