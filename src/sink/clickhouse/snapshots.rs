//! The `state_snapshots` table: each partition's tenant state with the offset it reflects,
//! written at a checkpoint before that offset is committed and read back when the
//! partition is assigned again (the stream mode's restart).

use super::{escape, ClickHouse, ClickHouseError};
use bytes::Bytes;

/// One stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct StoredSnapshot {
    /// The first offset the state does not reflect.
    pub next_offset: u64,
    /// The state (JSON).
    pub state: String,
}

impl ClickHouse {
    /// The newest checkpoint of a partition.
    pub async fn load_snapshot(
        &self,
        group_id: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Option<StoredSnapshot>, ClickHouseError> {
        let sql = format!(
            "SELECT next_offset, state FROM state_snapshots FINAL \
             WHERE group_id = '{}' AND topic = '{}' AND partition = {} \
             ORDER BY next_offset DESC LIMIT 1",
            escape(group_id),
            escape(topic),
            partition.max(0)
        );
        let rows = self.rows(&sql).await?;
        Ok(rows.into_iter().next().and_then(|r| {
            // JSONEachRow writes UInt64 as a quoted string on some versions.
            let next = r.get("next_offset")?;
            let next_offset = next
                .as_u64()
                .or_else(|| next.as_str().and_then(|s| s.parse().ok()))?;
            Some(StoredSnapshot {
                next_offset,
                state: r.get("state")?.as_str()?.to_owned(),
            })
        }))
    }

    /// Stores a partition's checkpoint.
    pub async fn save_snapshot(
        &self,
        group_id: &str,
        topic: &str,
        partition: i32,
        next_offset: u64,
        state: &str,
    ) -> Result<(), ClickHouseError> {
        let row = serde_json::json!({
            "group_id": group_id, "topic": topic, "partition": partition.max(0),
            "next_offset": next_offset, "state": state,
        })
        .to_string();
        self.insert(
            "state_snapshots",
            Some("group_id, topic, partition, next_offset, state"),
            Bytes::from(row),
        )
        .await
    }
}
