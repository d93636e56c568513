//! The write path, the one way events reach the store.
//!
//! ```text
//! producer threads (HTTP requests, file import, the demo, stream sources)
//!   records ─► validate ─► prepare (frames, checksums, id hashes, tail rows) ─► Batch
//!                                                                                 │ bounded queue
//! the writer thread (owns the EventStore)                                         ▼
//!   take every queued batch ─► dedup ─► WAL append ─► fdatasync (one group commit)
//!   ─► each CommitConsumer, in log order ─► answer each producer
//! ```
//!
//! Producers do the costly work on their own threads, so the single writer only deduplicates,
//! writes and fsyncs. Consumers of committed events (the live risk state and case book today;
//! audit, lineage and stream offsets later) see every stored event once, after it is durable,
//! in log order, and only on the writer thread: what they hold is a function of the log.
//!
//! A panic on the writer thread — in the store or in a consumer — stops the process: a
//! consumer left half-applied would otherwise keep answering from state that matches no prefix
//! of the log, and everything acknowledged is in the log, from which a start rebuilds it.

mod writer;

pub use writer::{
    Batch, CommitConsumer, GROUP_COMMIT_EVENTS_MAX, GROUP_COMMIT_REQUESTS_MAX, Submission, Writer, WriterError, WriterOptions, WriterThread,
};
