//! finpulse's durable event log and its derived storage: the segmented write-ahead log (the
//! source of truth), the idempotency index, the live tail as Arrow batches, and compaction of
//! the tail into Parquet partitioned by day and sorted by (type, user_id, ts).

pub mod codec;
pub mod columns;
pub mod dedup;
pub mod lineage;
pub mod protection;
pub mod store;
pub mod wal;

pub use store::{
    AppendStatus, CompactionReport, EventStore, PreparedEvents, Preparer, StoreError, StoreOptions, StoreStats, StoreView, ViewHandle,
};
