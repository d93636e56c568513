//! What the store tells the lineage store (`<data-dir>/lineage`): each compaction as an
//! OpenLineage run from the log to the Parquet files, with the files' schema and, for each
//! protected column, the log field it comes from — masked forms marked as masking.
//!
//! Lineage is a record about derived data, not the data: a lineage store that cannot be
//! opened or written is logged, and never stops the log taking events.

use crate::columns::{SEQ_COLUMN, masked_form_column};
use arrow::datatypes::Schema;
use finpulse_core::mask::MaskStyle;
use finpulse_core::{JrCategory, Registry};
use finpulse_lineage::{Dataset, InputField, LineageStore, RunEvent, SchemaField, Transformation, TransformationKind};
use std::path::Path;

/// Where a data directory's lineage events are kept.
pub const LINEAGE_DIR: &str = "lineage";
/// The namespace of finpulse's jobs.
pub const JOB_NAMESPACE: &str = "finpulse";
/// OpenLineage's namespace for datasets that are local files; their names are paths.
pub const FILE_NAMESPACE: &str = "file";
/// The compaction job's name.
pub const COMPACTION_JOB: &str = "compaction";

/// The dataset at `relative` inside the data directory `dir`.
pub fn dataset(dir: &Path, relative: &str) -> Dataset {
    Dataset::new(FILE_NAMESPACE, dir.join(relative).to_string_lossy())
}

/// Opens the data directory's lineage store; `None` (logged) when it cannot be.
pub fn open(dir: &Path) -> Option<LineageStore> {
    match LineageStore::open(dir.join(LINEAGE_DIR)) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "the lineage store could not be opened: compactions go unrecorded until it can");
            None
        }
    }
}

/// Appends `event`, logging (not returning) a failure.
pub fn record(store: Option<&LineageStore>, event: RunEvent) {
    if let Some(store) = store
        && let Err(e) = store.append(&[event])
    {
        tracing::warn!(error = %e, "a lineage event could not be written");
    }
}

/// The compacted files as a dataset: their columns, and the log field each protected column
/// and each stored masked form comes from.
pub(crate) fn compacted_files(dir: &Path, schema: &Schema, registry: &Registry, masked: &[(String, MaskStyle)]) -> Dataset {
    let log = dataset(dir, "wal").id();
    let mut fields: Vec<SchemaField> = schema.fields().iter().map(|f| SchemaField::new(f.name(), f.data_type().to_string())).collect();
    fields.push(SchemaField::new(SEQ_COLUMN, "UInt64").described("the event's position in the log"));
    fields.extend(
        masked
            .iter()
            .map(|(name, style)| SchemaField::new(masked_form_column(name), "Utf8").described(format!("{name} masked ({style:?})"))),
    );
    let mut files = dataset(dir, "parquet").with_schema(fields);
    for f in registry.fields().filter(|f| f.class.category == JrCategory::C3 || f.class.level >= finpulse_core::mask::MASKED_LEVEL_MIN) {
        let copied = Transformation::new(TransformationKind::Identity, false).described(format!("class {}", f.class));
        files = files.with_column_lineage(f.name.clone(), vec![InputField::new(&log, f.name.clone(), copied)]);
    }
    for (name, _) in masked {
        let masked = Transformation::new(TransformationKind::Transformation, true).described("masked by its data class");
        files = files.with_column_lineage(masked_form_column(name), vec![InputField::new(&log, name.clone(), masked)]);
    }
    files
}

/// The data directory's events (the log and its compacted files), as a derivation's inputs.
pub fn events_inputs(dir: &Path) -> Vec<Dataset> {
    vec![dataset(dir, "wal"), dataset(dir, "parquet")]
}

/// Runs `derive` as a lineage run of `job` in the data directory `dir`: START before it, then
/// COMPLETE with `outputs` when it succeeds or FAIL with its error. What `derive` answers is
/// returned as it is; lineage failures are logged, never returned.
pub async fn around<T, E: std::fmt::Display>(
    dir: &Path,
    job: &str,
    inputs: Vec<Dataset>,
    outputs: Vec<Dataset>,
    derive: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let store = open(dir);
    let (run, started) = finpulse_lineage::Run::start(JOB_NAMESPACE, job, inputs, outputs.clone());
    record(store.as_ref(), started);
    let result = derive.await;
    let ended = match &result {
        Ok(_) => run.complete(outputs),
        Err(e) => run.fail(&e.to_string()),
    };
    record(store.as_ref(), ended);
    result
}
