//! An insight's answer: named columns and rows of JSON values, printable as an aligned table,
//! CSV or JSON, and what the console draws.

use crate::InsightError;
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType};
use serde::Serialize;
use serde_json::Value;

/// Columns and rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Table {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, one value per column (`null` where there is none).
    pub rows: Vec<Vec<Value>>,
    /// What a reader needs to know to trust the numbers: the models behind predicted columns,
    /// or why such columns are empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A day or a time as text: `2026-01-05` at midnight UTC, RFC 3339 otherwise.
pub fn time_text(micros: i64) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_micros(micros) else { return micros.to_string() };
    if micros.rem_euclid(finpulse_core::time::MICROS_PER_DAY) == 0 {
        t.format("%Y-%m-%d").to_string()
    } else {
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

/// Reads a query result into rows of JSON values (integers, floats, text, times as text).
pub fn rows(batches: &[RecordBatch]) -> Result<Vec<Vec<Value>>, InsightError> {
    let mut out = Vec::new();
    for b in batches {
        let mut columns: Vec<Box<dyn Fn(usize) -> Value>> = Vec::new();
        for c in b.columns() {
            let read: Box<dyn Fn(usize) -> Value> = match c.data_type() {
                DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
                    let a = arrow::compute::cast(c, &DataType::Timestamp(TimeUnit::Microsecond, None)).map_err(query)?;
                    Box::new(move |r| {
                        if a.is_null(r) {
                            Value::Null
                        } else {
                            Value::from(time_text(a.as_primitive::<TimestampMicrosecondType>().value(r)))
                        }
                    })
                }
                t if t.is_integer() => {
                    let a = arrow::compute::cast(c, &DataType::Int64).map_err(query)?;
                    Box::new(move |r| if a.is_null(r) { Value::Null } else { Value::from(a.as_primitive::<Int64Type>().value(r)) })
                }
                t if t.is_floating() || matches!(t, DataType::Decimal128(_, _)) => {
                    let a = arrow::compute::cast(c, &DataType::Float64).map_err(query)?;
                    Box::new(move |r| {
                        let v = a.as_primitive::<Float64Type>();
                        if a.is_null(r) || !v.value(r).is_finite() { Value::Null } else { Value::from(v.value(r)) }
                    })
                }
                DataType::Boolean => {
                    let a = c.clone();
                    Box::new(move |r| if a.is_null(r) { Value::Null } else { Value::from(a.as_boolean().value(r)) })
                }
                _ => {
                    let a = arrow::compute::cast(c, &DataType::Utf8).map_err(query)?;
                    Box::new(move |r| if a.is_null(r) { Value::Null } else { Value::from(a.as_string::<i32>().value(r)) })
                }
            };
            columns.push(read);
        }
        for r in 0..b.num_rows() {
            out.push(columns.iter().map(|read| read(r)).collect());
        }
    }
    Ok(out)
}

fn query(e: arrow::error::ArrowError) -> InsightError {
    InsightError::Query(e.to_string())
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => {
                let text = format!("{f:.4}");
                text.trim_end_matches('0').trim_end_matches('.').to_string()
            }
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

impl Table {
    /// A table with these columns and no rows.
    pub fn new(columns: &[&str]) -> Self {
        Self { columns: columns.iter().map(|c| c.to_string()).collect(), rows: Vec::new(), notes: Vec::new() }
    }

    /// Removes column `i` (e.g. the breakdown when none was asked for).
    pub fn drop_column(&mut self, i: usize) {
        self.columns.remove(i);
        self.rows.iter_mut().for_each(|r| {
            r.remove(i);
        });
    }

    /// Aligned text, for a terminal.
    pub fn to_text(&self) -> String {
        let cells: Vec<Vec<String>> = self.rows.iter().map(|r| r.iter().map(cell).collect()).collect();
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| cells.iter().map(|r| r[i].chars().count()).chain([self.columns[i].chars().count()]).max().unwrap_or(0))
            .collect();
        let line = |values: Vec<&str>| -> String {
            values.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string() + "\n"
        };
        let mut out = line(self.columns.iter().map(String::as_str).collect());
        for r in &cells {
            out.push_str(&line(r.iter().map(String::as_str).collect()));
        }
        if self.rows.is_empty() {
            out.push_str("(no rows)\n");
        }
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        out
    }

    /// CSV with a header row.
    pub fn to_csv(&self) -> String {
        let quote = |s: &str| if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() };
        let mut out = self.columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(",") + "\n";
        for r in &self.rows {
            out.push_str(&(r.iter().map(|v| quote(&cell(v))).collect::<Vec<_>>().join(",") + "\n"));
        }
        out
    }
}
