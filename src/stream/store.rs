//! Where a checkpoint keeps each partition's state: the [`SnapshotStore`] port, and
//! ClickHouse's `state_snapshots` table as its production implementation.
//!
//! The rule every implementation serves: a checkpoint commits a partition's offset only
//! after [`SnapshotStore::store`] acknowledged the state of every tenant that changed
//! before it. Each tenant's state is stored with the offset it reflects, so a restore
//! skips that tenant's events below it, whatever other tenants' rows say. A store that
//! refuses makes the checkpoint fail, and the offset stays where the last stored state is
//! (the engine retries later, with the partitions paused).

use crate::sink::clickhouse::{ClickHouse, ClickHouseError, StoredSnapshot};
use std::future::Future;
use std::pin::Pin;
use thiserror::Error;

/// What a store's requests return: a future the engine awaits on its runtime.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A snapshot store refused or failed; the checkpoint that needed it commits nothing.
#[derive(Debug, Error)]
#[error(transparent)]
pub struct StoreError(Box<dyn std::error::Error + Send + Sync>);

impl StoreError {
    /// Wraps the cause.
    pub fn new(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(cause.into())
    }
}

impl From<ClickHouseError> for StoreError {
    fn from(e: ClickHouseError) -> Self {
        Self(Box::new(e))
    }
}

/// Stores and loads the state of the tenants of one (topic, partition) of this consumer
/// group.
pub trait SnapshotStore: Send {
    /// The newest stored state of each tenant of a partition (and a whole-partition one,
    /// `tenant_id` empty, from before per-tenant checkpoints, first).
    fn load<'a>(&'a self, topic: &'a str, partition: i32) -> StoreFuture<'a, Vec<StoredSnapshot>>;

    /// Stores some tenants' states (tenant id, JSON), each reflecting every offset below
    /// `next_offset`. `Ok` means they are durable: a restart's [`SnapshotStore::load`] may
    /// return them.
    fn store<'a>(
        &'a self,
        topic: &'a str,
        partition: i32,
        next_offset: u64,
        tenants: &'a [(String, String)],
    ) -> StoreFuture<'a, ()>;
}

/// The production store: ClickHouse's `state_snapshots`, rows keyed by consumer group.
#[derive(Clone)]
pub struct ClickHouseStore {
    ch: ClickHouse,
    group_id: String,
}

impl ClickHouseStore {
    /// The snapshots of `group_id` in `ch`'s database.
    pub fn new(ch: ClickHouse, group_id: impl Into<String>) -> Self {
        Self {
            ch,
            group_id: group_id.into(),
        }
    }
}

impl SnapshotStore for ClickHouseStore {
    fn load<'a>(&'a self, topic: &'a str, partition: i32) -> StoreFuture<'a, Vec<StoredSnapshot>> {
        Box::pin(async move {
            Ok(self
                .ch
                .load_snapshot(&self.group_id, topic, partition)
                .await?)
        })
    }

    fn store<'a>(
        &'a self,
        topic: &'a str,
        partition: i32,
        next_offset: u64,
        tenants: &'a [(String, String)],
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            Ok(self
                .ch
                .save_snapshot(&self.group_id, topic, partition, next_offset, tenants)
                .await?)
        })
    }
}
