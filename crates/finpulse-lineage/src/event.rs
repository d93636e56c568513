//! The OpenLineage 2-0-2 `RunEvent` as finpulse's own serde types, with the facets finpulse
//! writes: `schema` and `columnLineage` on datasets, `errorMessage` on failed runs.
//!
//! The JSON these types make is the spec's wire format (that is this crate's job), checked by
//! `tests/validate.py` against the schemas copied in `spec/`. Facets other producers add are
//! kept as JSON under their names, so reading and writing an event loses nothing.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The core schema's `$id`: the OpenLineage version the events follow.
pub const OPENLINEAGE_SCHEMA_ID: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json";
/// Every event's `schemaURL`: the `RunEvent` definition in the 2-0-2 core schema.
pub const RUN_EVENT_SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
/// The `_schemaURL` of the `schema` dataset facet (SchemaDatasetFacet 1-2-0).
pub const SCHEMA_FACET_SCHEMA_URL: &str = "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
/// The `_schemaURL` of the `columnLineage` dataset facet (ColumnLineageDatasetFacet 1-2-0).
pub const COLUMN_LINEAGE_FACET_SCHEMA_URL: &str =
    "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet";
/// The `_schemaURL` of the `errorMessage` run facet (ErrorMessageRunFacet 1-0-1).
pub const ERROR_MESSAGE_FACET_SCHEMA_URL: &str =
    "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
/// Who wrote an event or facet (`producer`, `_producer`): this crate at its version, so a
/// collector holding events from several versions can tell them apart.
pub const PRODUCER: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/tree/v", env!("CARGO_PKG_VERSION"), "/crates/finpulse-lineage");
/// The `programmingLanguage` of finpulse's error message facets (the facet requires one).
pub const PROGRAMMING_LANGUAGE: &str = "RUST";
/// The facet name of the dataset schema.
pub const SCHEMA_FACET: &str = "schema";
/// The facet name of column lineage.
pub const COLUMN_LINEAGE_FACET: &str = "columnLineage";
/// The facet name of a failed run's error message.
pub const ERROR_MESSAGE_FACET: &str = "errorMessage";

/// The run's transition. The spec asks for one START and one of COMPLETE, ABORT or FAIL per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    /// The run began.
    Start,
    /// The run is still going (extra metadata on the way).
    Running,
    /// The run finished and its outputs are written: the only events the graph is built from.
    Complete,
    /// The run was stopped before finishing.
    Abort,
    /// The run failed.
    Fail,
    /// Metadata added to a run outside its transitions.
    Other,
}

/// One OpenLineage run event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEvent {
    /// The transition this event reports.
    #[serde(rename = "eventType")]
    pub event_type: EventType,
    /// When it happened, UTC microseconds since the epoch (RFC 3339 on the wire).
    #[serde(rename = "eventTime", with = "rfc3339_us")]
    pub event_time_us: i64,
    /// The run.
    pub run: RunInfo,
    /// The job the run is an instance of.
    pub job: Job,
    /// The datasets read.
    #[serde(default)]
    pub inputs: Vec<Dataset>,
    /// The datasets written.
    #[serde(default)]
    pub outputs: Vec<Dataset>,
    /// Who wrote the event (a URI).
    pub producer: String,
    /// The schema the event follows (a URI).
    #[serde(rename = "schemaURL")]
    pub schema_url: String,
}

/// The spec's `run` object: the run's id and run facets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run's id, the same in all of its events (finpulse makes UUIDv7s, which sort by start).
    #[serde(rename = "runId", with = "uuid_text")]
    pub run_id: Uuid,
    /// Run facets.
    #[serde(default, skip_serializing_if = "RunFacets::is_empty")]
    pub facets: RunFacets,
}

/// The run facets finpulse knows, and any other kept as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunFacets {
    /// Why a run failed.
    #[serde(rename = "errorMessage", default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<ErrorMessageFacet>,
    /// Facets finpulse does not write, by name.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl RunFacets {
    /// Whether there is no facet at all (then the event leaves `facets` out).
    pub fn is_empty(&self) -> bool {
        self.error_message.is_none() && self.other.is_empty()
    }
}

/// The `errorMessage` run facet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMessageFacet {
    /// Who wrote the facet.
    #[serde(rename = "_producer")]
    pub producer: String,
    /// The facet's schema.
    #[serde(rename = "_schemaURL")]
    pub schema_url: String,
    /// The error, for people.
    pub message: String,
    /// The language of the failing program.
    #[serde(rename = "programmingLanguage")]
    pub programming_language: String,
    /// A stack trace, when there is one.
    #[serde(rename = "stackTrace", default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
}

/// A job: what runs are instances of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The namespace, e.g. `finpulse://<instance>`.
    pub namespace: String,
    /// The name, unique in the namespace, e.g. `compaction`.
    pub name: String,
    /// Job facets (finpulse writes none), kept as JSON by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facets: BTreeMap<String, serde_json::Value>,
}

impl Job {
    /// Its identity in the graph.
    pub fn id(&self) -> JobId {
        JobId { namespace: self.namespace.clone(), name: self.name.clone() }
    }
}

/// A dataset read or written by a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// The namespace (the data source), e.g. `finpulse://<instance>`.
    pub namespace: String,
    /// The name, unique in the namespace, e.g. `segments/day=2026-03-01`.
    pub name: String,
    /// Dataset facets.
    #[serde(default, skip_serializing_if = "DatasetFacets::is_empty")]
    pub facets: DatasetFacets,
}

impl Dataset {
    /// A dataset without facets.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), name: name.into(), facets: DatasetFacets::default() }
    }

    /// Its identity in the graph.
    pub fn id(&self) -> DatasetId {
        DatasetId { namespace: self.namespace.clone(), name: self.name.clone() }
    }

    /// The same dataset with its `schema` facet set to `fields`.
    pub fn with_schema(mut self, fields: Vec<SchemaField>) -> Self {
        self.facets.schema = Some(SchemaFacet { producer: PRODUCER.to_string(), schema_url: SCHEMA_FACET_SCHEMA_URL.to_string(), fields });
        self
    }

    /// The same dataset recording which input columns its column `field` was derived from.
    /// Recorded for protected columns (personal data classes), so a question about where a
    /// personal value went, or came from, is answered per column and not only per dataset.
    pub fn with_column_lineage(mut self, field: impl Into<String>, inputs: Vec<InputField>) -> Self {
        let facet = self.facets.column_lineage.get_or_insert_with(|| ColumnLineageFacet {
            producer: PRODUCER.to_string(),
            schema_url: COLUMN_LINEAGE_FACET_SCHEMA_URL.to_string(),
            fields: BTreeMap::new(),
        });
        facet.fields.entry(field.into()).or_insert_with(|| ColumnLineage { input_fields: Vec::new() }).input_fields.extend(inputs);
        self
    }
}

/// The dataset facets finpulse knows, and any other kept as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetFacets {
    /// The dataset's columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<SchemaFacet>,
    /// Which input columns each output column came from.
    #[serde(rename = "columnLineage", default, skip_serializing_if = "Option::is_none")]
    pub column_lineage: Option<ColumnLineageFacet>,
    /// Facets finpulse does not write, by name.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl DatasetFacets {
    /// Whether there is no facet at all (then the dataset leaves `facets` out).
    pub fn is_empty(&self) -> bool {
        self.schema.is_none() && self.column_lineage.is_none() && self.other.is_empty()
    }
}

/// The `schema` dataset facet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaFacet {
    /// Who wrote the facet.
    #[serde(rename = "_producer")]
    pub producer: String,
    /// The facet's schema.
    #[serde(rename = "_schemaURL")]
    pub schema_url: String,
    /// The columns, in order.
    #[serde(default)]
    pub fields: Vec<SchemaField>,
}

/// One column of a dataset's schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaField {
    /// The column's name.
    pub name: String,
    /// Its type as the dataset's engine names it (Arrow's names for finpulse's Parquet).
    #[serde(rename = "type")]
    pub data_type: String,
    /// What it holds, e.g. its data class for protected columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl SchemaField {
    /// A column without description.
    pub fn new(name: impl Into<String>, data_type: impl Into<String>) -> Self {
        Self { name: name.into(), data_type: data_type.into(), description: None }
    }

    /// The same column with a description.
    pub fn described(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

/// The `columnLineage` dataset facet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnLineageFacet {
    /// Who wrote the facet.
    #[serde(rename = "_producer")]
    pub producer: String,
    /// The facet's schema.
    #[serde(rename = "_schemaURL")]
    pub schema_url: String,
    /// Output column → the input columns it was derived from.
    pub fields: BTreeMap<String, ColumnLineage>,
}

/// Where one output column came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnLineage {
    /// The input columns.
    #[serde(rename = "inputFields")]
    pub input_fields: Vec<InputField>,
}

/// An input column an output column depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputField {
    /// The input dataset's namespace.
    pub namespace: String,
    /// The input dataset's name.
    pub name: String,
    /// The input column.
    pub field: String,
    /// How the output depends on it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transformations: Vec<Transformation>,
}

impl InputField {
    /// Column `field` of `dataset`, used as `transformation` says.
    pub fn new(dataset: &DatasetId, field: impl Into<String>, transformation: Transformation) -> Self {
        Self {
            namespace: dataset.namespace.clone(),
            name: dataset.name.clone(),
            field: field.into(),
            transformations: vec![transformation],
        }
    }
}

/// How an output column depends on an input column, in the spec's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransformationKind {
    /// DIRECT/IDENTITY: the value copied as it is.
    Identity,
    /// DIRECT/TRANSFORMATION: the value computed from the input (a hash, a bucket, a score).
    Transformation,
    /// DIRECT/AGGREGATION: the value aggregated over input rows (a sum, a count).
    Aggregation,
    /// INDIRECT/FILTER: the input decided which rows were kept.
    Filter,
    /// INDIRECT/JOIN: the input joined rows.
    Join,
    /// INDIRECT/GROUP_BY: the input grouped rows.
    GroupBy,
    /// INDIRECT/SORT: the input ordered rows.
    Sort,
    /// INDIRECT/WINDOW: the input framed a window.
    Window,
    /// INDIRECT/CONDITIONAL: the input chose between values.
    Conditional,
}

impl TransformationKind {
    /// The spec's `type` and `subtype`.
    pub fn type_and_subtype(self) -> (&'static str, &'static str) {
        match self {
            Self::Identity => ("DIRECT", "IDENTITY"),
            Self::Transformation => ("DIRECT", "TRANSFORMATION"),
            Self::Aggregation => ("DIRECT", "AGGREGATION"),
            Self::Filter => ("INDIRECT", "FILTER"),
            Self::Join => ("INDIRECT", "JOIN"),
            Self::GroupBy => ("INDIRECT", "GROUP_BY"),
            Self::Sort => ("INDIRECT", "SORT"),
            Self::Window => ("INDIRECT", "WINDOW"),
            Self::Conditional => ("INDIRECT", "CONDITIONAL"),
        }
    }
}

/// One transformation of an input column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transformation {
    /// `DIRECT` or `INDIRECT`.
    #[serde(rename = "type")]
    pub kind: String,
    /// E.g. `IDENTITY`, `AGGREGATION`, `FILTER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    /// What was done, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether the output hides the input (masked, hashed, encrypted): what a reviewer of
    /// personal data looks for first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masking: Option<bool>,
}

impl Transformation {
    /// A transformation of `kind`, saying whether it masks the input.
    pub fn new(kind: TransformationKind, masking: bool) -> Self {
        let (kind, subtype) = kind.type_and_subtype();
        Self { kind: kind.to_string(), subtype: Some(subtype.to_string()), description: None, masking: Some(masking) }
    }

    /// The same transformation with a description.
    pub fn described(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

/// A dataset's identity: namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DatasetId {
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl DatasetId {
    /// The dataset `name` in `namespace`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), name: name.into() }
    }
}

/// A job's identity: namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId {
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl JobId {
    /// The job `name` in `namespace`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), name: name.into() }
    }
}

/// `eventTime` as RFC 3339 text over UTC microseconds.
mod rfc3339_us {
    use finpulse_core::time::{format_us, parse_rfc3339_us};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts_us: &i64, s: S) -> Result<S::Ok, S::Error> {
        let text = format_us(*ts_us);
        // Assert at the boundary: a time chrono cannot write as RFC 3339 (beyond year 9999)
        // must not reach the file as text nothing can read back.
        if parse_rfc3339_us(&text) != Ok(*ts_us) {
            return Err(serde::ser::Error::custom(format_args!("event time {ts_us} us cannot be written as RFC 3339")));
        }
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = String::deserialize(d)?;
        parse_rfc3339_us(&text).map_err(serde::de::Error::custom)
    }
}

/// `runId` as the hyphenated text form of a UUID.
mod uuid_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use uuid::Uuid;

    pub fn serialize<S: Serializer>(id: &Uuid, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&id.hyphenated())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Uuid, D::Error> {
        let text = String::deserialize(d)?;
        Uuid::try_parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> RunEvent {
        let events = DatasetId::new("finpulse://test", "events");
        RunEvent {
            event_type: EventType::Complete,
            event_time_us: 1_772_323_200_123_456,
            run: RunInfo { run_id: Uuid::now_v7(), facets: RunFacets::default() },
            job: Job { namespace: "finpulse://test".into(), name: "compaction".into(), facets: BTreeMap::new() },
            inputs: vec![Dataset::new("finpulse://test", "events")],
            outputs: vec![
                Dataset::new("finpulse://test", "segments")
                    .with_schema(vec![SchemaField::new("mobile", "Utf8").described("C2/L3")])
                    .with_column_lineage(
                        "mobile",
                        vec![InputField::new(&events, "mobile", Transformation::new(TransformationKind::Identity, false))],
                    ),
            ],
            producer: PRODUCER.into(),
            schema_url: RUN_EVENT_SCHEMA_URL.into(),
        }
    }

    #[test]
    fn an_event_reads_back_as_written_with_spec_field_names() {
        let e = event();
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["eventType"], "COMPLETE");
        assert_eq!(json["eventTime"], "2026-03-01T00:00:00.123456Z");
        assert_eq!(json["run"]["runId"], e.run.run_id.hyphenated().to_string());
        assert!(json["run"].get("facets").is_none(), "empty facets are left out");
        let schema = &json["outputs"][0]["facets"]["schema"];
        assert_eq!(schema["_schemaURL"], SCHEMA_FACET_SCHEMA_URL);
        assert_eq!(schema["fields"][0]["type"], "Utf8");
        let lineage = &json["outputs"][0]["facets"]["columnLineage"]["fields"]["mobile"]["inputFields"][0];
        assert_eq!(lineage["transformations"][0]["subtype"], "IDENTITY");
        let back: RunEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn facets_of_other_producers_survive_a_round_trip() {
        let mut json = serde_json::to_value(event()).unwrap();
        let custom = serde_json::json!({"_producer": "https://x.invalid", "_schemaURL": "https://x.invalid/s.json", "rows": 3});
        json["outputs"][0]["facets"]["custom"] = custom.clone();
        let back: RunEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back.outputs[0].facets.other["custom"], custom);
        assert!(back.outputs[0].facets.schema.is_some());
    }

    #[test]
    fn a_time_beyond_rfc_3339_is_refused_rather_than_written() {
        let mut e = event();
        e.event_time_us = i64::MAX / 2;
        assert!(serde_json::to_string(&e).is_err());
    }

    #[test]
    fn a_run_id_that_is_not_a_uuid_is_refused() {
        let mut json = serde_json::to_value(event()).unwrap();
        json["run"]["runId"] = "run-1".into();
        assert!(serde_json::from_value::<RunEvent>(json).is_err());
    }
}
