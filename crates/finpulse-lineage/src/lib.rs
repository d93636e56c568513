//! Data lineage as OpenLineage 2-0-2 run events. Every derivation — compaction, segment
//! materialisation, model training, churn scoring, pricing, reports, exports — records a START
//! event and then a COMPLETE or FAIL one, naming its job, the datasets it read and wrote, their
//! schemas and, for protected columns, the input columns each was derived from.
//!
//! - [`event`]: the spec's `RunEvent` as own serde types, and the facets finpulse writes.
//! - [`run`]: the builder a derivation uses: [`Run::start`], then [`Run::complete`] or [`Run::fail`].
//! - [`store`]: the durable NDJSON event file with its own retention, behind [`LineageSink`].
//! - [`graph`]: the datasets and jobs upstream and downstream of a dataset.
//! - [`forward`]: URLs and bodies for a Marquez-compatible collector; this crate knows no HTTP.
//!
//! The schemas the events follow are copied in `spec/` (see `spec/PROVENANCE.md`), and the
//! tests validate every kind of event this crate makes against them.

pub mod event;
pub mod forward;
pub mod graph;
pub mod run;
pub mod store;

pub use event::{
    ColumnLineage, Dataset, DatasetId, EventType, InputField, Job, JobId, RunEvent, SchemaField, Transformation, TransformationKind,
};
pub use forward::{ForwardRequest, forward_request, forward_requests};
pub use graph::{Edge, Graph, LineageIndex, Node, NodeId};
pub use run::Run;
pub use store::{LineageSink, LineageStore, Pruned};

use std::path::PathBuf;

/// Why lineage could not be recorded, read or forwarded.
#[derive(Debug, thiserror::Error)]
pub enum LineageError {
    /// A file could not be read or written.
    #[error("lineage store {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A stored line is not an event; the store is damaged there.
    #[error("lineage store {path}, line {line}: {why}")]
    BadLine {
        /// The events file.
        path: PathBuf,
        /// The line's number, from 1.
        line: u64,
        /// What is wrong.
        why: String,
    },
    /// An event cannot be written as JSON (e.g. a time beyond year 9999).
    #[error("a lineage event cannot be written: {why}")]
    Unwritable {
        /// What is wrong.
        why: String,
    },
    /// An event is larger than [`store::EVENT_LINE_BYTES_MAX`].
    #[error("a lineage event of {bytes} bytes is over the limit of {max} bytes")]
    EventTooLarge {
        /// Its size as JSON.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// More events in one append than [`store::APPEND_EVENTS_MAX`].
    #[error("{count} lineage events in one append are over the limit of {max}")]
    TooManyEvents {
        /// Events offered.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A graph deeper than [`graph::GRAPH_DEPTH_MAX`] was asked for.
    #[error("a lineage graph {depth} jobs deep is over the limit of {max}")]
    DepthTooLarge {
        /// The depth asked for.
        depth: usize,
        /// The limit.
        max: usize,
    },
    /// A collector URL that cannot take events.
    #[error("'{url}' cannot be a lineage collector's base URL: {why}")]
    BadCollectorUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        why: &'static str,
    },
}
