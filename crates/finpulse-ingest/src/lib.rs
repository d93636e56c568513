//! Wire formats into records: a JSON array or NDJSON body, and CSV, NDJSON or Parquet files,
//! decoded into format-neutral [`RawRecord`]s that the registry validates. Each record keeps its
//! position (array index, line or row) so every error can say where it is.

use finpulse_core::{RawRecord, RawValue};
use std::fmt;

mod file;
mod json;

pub use file::{Chunk, CsvChunk, FileFormat, FileReader, open_file};
pub use json::decode_body;

/// Where a record sits in its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Zero-based index in a JSON array.
    Index(usize),
    /// One-based line of an NDJSON body or file.
    Line(usize),
    /// One-based line of a CSV file (the header is line 1).
    CsvLine(usize),
    /// Zero-based row of a Parquet file.
    Row(usize),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Index(i) => write!(f, "record {i}"),
            Self::Line(l) | Self::CsvLine(l) => write!(f, "line {l}"),
            Self::Row(r) => write!(f, "row {r}"),
        }
    }
}

/// One decoded record, or why its bytes are not a record, with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// Where it is.
    pub position: Position,
    /// The record, or the reason it could not be read.
    pub record: Result<RawRecord, String>,
}

/// An input that cannot be read at all (as opposed to one bad record in it).
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Not UTF-8.
    #[error("input is not valid UTF-8 at byte {0}")]
    Utf8(usize),
    /// Malformed JSON in an array body.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Json {
        /// One-based line.
        line: usize,
        /// One-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A body that is neither a JSON array nor NDJSON objects.
    #[error("body must be a JSON array of objects or NDJSON (one object per line)")]
    NotRecords,
    /// A file error.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Converts a JSON value to a raw value; objects and arrays are not field values.
pub(crate) fn raw_from_json(value: serde_json::Value) -> Result<RawValue, &'static str> {
    use serde_json::Value as J;
    Ok(match value {
        J::Null => RawValue::Null,
        J::Bool(b) => RawValue::Bool(b),
        J::Number(n) => match n.as_i64() {
            Some(i) => RawValue::Int(i),
            None if n.is_u64() => return Err("integer out of the 64-bit signed range"),
            None => RawValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => RawValue::Str(s),
        J::Array(_) => return Err("arrays are not field values"),
        J::Object(_) => return Err("nested objects are not field values"),
    })
}

/// Converts a JSON object to a record; the error names the offending field.
pub(crate) fn record_from_json(value: serde_json::Value) -> Result<RawRecord, String> {
    let serde_json::Value::Object(map) = value else {
        return Err("a record must be a JSON object".to_string());
    };
    let mut fields = Vec::with_capacity(map.len());
    for (name, v) in map {
        match raw_from_json(v) {
            Ok(raw) => fields.push((name, raw)),
            Err(why) => return Err(format!("field '{name}': {why}")),
        }
    }
    Ok(RawRecord { fields })
}

use finpulse_core::{Event, Registry, ValidationLimits};

/// Records decoded from an input at or above this many are validated on all cores.
pub const PARALLEL_VALIDATION_RECORDS_MIN: usize = 8192;

/// A record that was not accepted: where it is, which field, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Where the record is.
    pub position: Position,
    /// The offending field, when one is to blame.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// The valid events of an input, with their positions, and the rejected records.
#[derive(Debug, Default)]
pub struct Validated {
    /// Valid events, in input order.
    pub events: Vec<Event>,
    /// The position of each valid event.
    pub positions: Vec<Position>,
    /// Records that were not valid.
    pub rejected: Vec<Rejection>,
}

fn validate_slice(registry: &Registry, decoded: Vec<Decoded>, limits: &ValidationLimits) -> Validated {
    let mut out = Validated::default();
    for d in decoded {
        match d.record {
            Err(message) => out.rejected.push(Rejection { position: d.position, field: None, message }),
            Ok(raw) => match registry.validate(&raw, limits) {
                Ok(event) => {
                    out.events.push(event);
                    out.positions.push(d.position);
                }
                Err(e) => out.rejected.push(Rejection { position: d.position, field: e.field.clone(), message: e.to_string() }),
            },
        }
    }
    out
}

/// Validates decoded records against the registry, on every core for large inputs.
pub fn validate(registry: &Registry, decoded: Vec<Decoded>, limits: &ValidationLimits) -> Validated {
    let parts = split_even(decoded);
    if parts.len() == 1 {
        return validate_slice(registry, parts.into_iter().next().unwrap_or_default(), limits);
    }
    join(std::thread::scope(|s| {
        let handles: Vec<_> = parts.into_iter().map(|p| s.spawn(move || validate_slice(registry, p, limits))).collect();
        // A panic in validation is a bug; re-raise it here rather than lose records silently.
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    }))
}

/// Validates a file chunk, on every core for large chunks.
pub fn validate_chunk(registry: &Registry, chunk: Chunk, limits: &ValidationLimits) -> Validated {
    match chunk {
        Chunk::Records(decoded) => validate(registry, decoded, limits),
        Chunk::Csv(csv) => {
            let parts = parallel_parts(csv.rows.len());
            if parts <= 1 {
                return validate_csv_rows(registry, &csv, 0..csv.rows.len(), limits);
            }
            let per = csv.rows.len().div_ceil(parts);
            let csv = &csv;
            join(std::thread::scope(|s| {
                let handles: Vec<_> = (0..parts)
                    .map(|i| {
                        let rows = (i * per).min(csv.rows.len())..((i + 1) * per).min(csv.rows.len());
                        s.spawn(move || validate_csv_rows(registry, csv, rows, limits))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
            }))
        }
    }
}

fn validate_csv_rows(registry: &Registry, csv: &CsvChunk, rows: std::ops::Range<usize>, limits: &ValidationLimits) -> Validated {
    let mut out = Validated { events: Vec::with_capacity(rows.len()), positions: Vec::with_capacity(rows.len()), rejected: Vec::new() };
    for row in &csv.rows[rows] {
        let position = Position::CsvLine(row.line);
        let cells = match &row.cells {
            Ok(cells) => cells.clone(),
            Err(message) => {
                out.rejected.push(Rejection { position, field: None, message: message.clone() });
                continue;
            }
        };
        match registry.validate_row(&csv.header, csv.cells(cells), limits) {
            Ok(event) => {
                out.events.push(event);
                out.positions.push(position);
            }
            Err(e) => out.rejected.push(Rejection { position, field: e.field.clone(), message: e.to_string() }),
        }
    }
    out
}

/// How many threads to validate `n` records on.
fn parallel_parts(n: usize) -> usize {
    if n < PARALLEL_VALIDATION_RECORDS_MIN { 1 } else { finpulse_core::cores() }
}

fn split_even(mut decoded: Vec<Decoded>) -> Vec<Vec<Decoded>> {
    let parts = parallel_parts(decoded.len());
    let per = decoded.len().div_ceil(parts.max(1)).max(1);
    let mut out = Vec::with_capacity(parts);
    while decoded.len() > per {
        let rest = decoded.split_off(per);
        out.push(std::mem::replace(&mut decoded, rest));
    }
    out.push(decoded);
    out
}

/// Concatenates per-thread results, keeping input order.
fn join(results: Vec<Validated>) -> Validated {
    let events = results.iter().map(|r| r.events.len()).sum();
    let mut out = Validated { events: Vec::with_capacity(events), positions: Vec::with_capacity(events), rejected: Vec::new() };
    for r in results {
        out.events.extend(r.events);
        out.positions.extend(r.positions);
        out.rejected.extend(r.rejected);
    }
    out
}
