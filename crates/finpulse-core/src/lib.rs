//! finpulse's shared vocabulary: event and field identities, time, money, data classes, the
//! built-in fintech event catalogue, the schema registry and record validation.
//!
//! Engine crates speak these types; only the server and the CLI (through `finpulse-ingest`) know
//! wire formats such as JSON and CSV.

pub mod catalogue;
pub mod class;
pub mod durable;
pub mod event;
pub mod mask;
pub mod money;
pub mod pii;
pub mod record;
pub mod registry;
pub mod seal;
pub mod sharded;
pub mod time;
pub mod versions;

pub use class::{DataClass, JrCategory};
pub use event::{Event, FieldId, TypeId, Value};
pub use record::{RawRecord, RawRef, RawValue, RecordError, RecordProblem, ValidationLimits};
pub use registry::{EventTypeSpec, FieldSpec, FieldType, Registry, RegistryError, Scope, TypeFieldSpec};

/// Cores this process may use, asked once: `std::thread::available_parallelism` reads the
/// cgroup files on every call, which cost more than a whole decision when asked per request.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
