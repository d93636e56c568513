//! An insight's answer: named columns and rows of typed cells, printable as an aligned table or
//! CSV. How a table is sent (JSON over HTTP, `--format json`) belongs to the front ends.

use crate::InsightError;
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType};
use finpulse_core::time::{MICROS_PER_DAY, day_label, format_us};

/// One value of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// No value (a ratio over nothing, a period not yet over).
    Null,
    /// A whole number: users, events, minor units of money.
    Int(i64),
    /// A finite number with a fraction: a share, a ratio, an average.
    Float(f64),
    /// Text: a breakdown value, an event label, a status.
    Text(String),
    /// True or false.
    Bool(bool),
    /// A calendar day, as days since 1970-01-01 (UTC): a period's start, an as-of date.
    Day(i64),
    /// A moment, as microseconds since 1970-01-01 (UTC).
    Time(i64),
}

impl Cell {
    /// The whole number, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// The number, whole or not.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Self::Int(v) => Some(*v as f64),
            Self::Float(v) => Some(*v),
            _ => None,
        }
    }

    /// The text, if this is text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(v) => Some(v),
            _ => None,
        }
    }

    /// The day number, if this is a day.
    pub fn as_day(&self) -> Option<i64> {
        match self {
            Self::Day(v) => Some(*v),
            _ => None,
        }
    }

    /// Whether there is no value.
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// As a person reads it: numbers to four decimals at most, days as `YYYY-MM-DD`, times as
    /// RFC 3339, nothing for no value.
    pub fn display(&self) -> String {
        match self {
            Self::Null => String::new(),
            Self::Int(v) => v.to_string(),
            Self::Float(v) => {
                let text = format!("{v:.4}");
                text.trim_end_matches('0').trim_end_matches('.').to_string()
            }
            Self::Text(v) => v.clone(),
            Self::Bool(v) => v.to_string(),
            Self::Day(d) => day_label(*d),
            Self::Time(us) => format_us(*us),
        }
    }
}

impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<usize> for Cell {
    fn from(v: usize) -> Self {
        Self::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<i32> for Cell {
    fn from(v: i32) -> Self {
        Self::Int(i64::from(v))
    }
}

impl From<u32> for Cell {
    fn from(v: u32) -> Self {
        Self::Int(i64::from(v))
    }
}

impl From<f64> for Cell {
    /// A non-finite number (a division by zero upstream) is no value.
    fn from(v: f64) -> Self {
        if v.is_finite() { Self::Float(v) } else { Self::Null }
    }
}

impl From<String> for Cell {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Self::Text(v.to_string())
    }
}

impl From<bool> for Cell {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// Columns and rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, one cell per column.
    pub rows: Vec<Vec<Cell>>,
    /// What a reader needs to know to trust the numbers: the models behind predicted columns,
    /// or why such columns are empty.
    pub notes: Vec<String>,
}

/// Reads a query result into rows of cells. Integers stay whole, decimals become floats, dates
/// become days, and a timestamp at exactly midnight UTC is a day (insights' periods start
/// there); any other time stays a time.
pub fn rows(batches: &[RecordBatch]) -> Result<Vec<Vec<Cell>>, InsightError> {
    let mut out = Vec::new();
    for b in batches {
        let mut columns: Vec<Box<dyn Fn(usize) -> Cell>> = Vec::new();
        for c in b.columns() {
            let read: Box<dyn Fn(usize) -> Cell> = match c.data_type() {
                DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
                    let a = arrow::compute::cast(c, &DataType::Timestamp(TimeUnit::Microsecond, None)).map_err(query)?;
                    Box::new(move |r| {
                        if a.is_null(r) {
                            return Cell::Null;
                        }
                        let us = a.as_primitive::<TimestampMicrosecondType>().value(r);
                        if us.rem_euclid(MICROS_PER_DAY) == 0 { Cell::Day(us.div_euclid(MICROS_PER_DAY)) } else { Cell::Time(us) }
                    })
                }
                t if t.is_integer() => {
                    let a = arrow::compute::cast(c, &DataType::Int64).map_err(query)?;
                    Box::new(move |r| if a.is_null(r) { Cell::Null } else { Cell::Int(a.as_primitive::<Int64Type>().value(r)) })
                }
                t if t.is_floating() || matches!(t, DataType::Decimal128(_, _)) => {
                    let a = arrow::compute::cast(c, &DataType::Float64).map_err(query)?;
                    Box::new(move |r| if a.is_null(r) { Cell::Null } else { Cell::from(a.as_primitive::<Float64Type>().value(r)) })
                }
                DataType::Boolean => {
                    let a = c.clone();
                    Box::new(move |r| if a.is_null(r) { Cell::Null } else { Cell::Bool(a.as_boolean().value(r)) })
                }
                _ => {
                    let a = arrow::compute::cast(c, &DataType::Utf8).map_err(query)?;
                    Box::new(move |r| if a.is_null(r) { Cell::Null } else { Cell::Text(a.as_string::<i32>().value(r).to_string()) })
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

/// Column `i` of a query row as a whole number; anything else is an error naming `column`, so
/// a change in a query's result type stops the insight instead of reading as zero.
pub(crate) fn int(row: &[Cell], i: usize, column: &str) -> Result<i64, InsightError> {
    row[i].as_int().ok_or_else(|| drift(column, "a whole number", &row[i]))
}

/// Column `i` of a query row as a whole number, or none when it is null.
pub(crate) fn int_or_null(row: &[Cell], i: usize, column: &str) -> Result<Option<i64>, InsightError> {
    if row[i].is_null() { Ok(None) } else { int(row, i, column).map(Some) }
}

/// Column `i` of a query row as a number, or none when it is null.
pub(crate) fn float_or_null(row: &[Cell], i: usize, column: &str) -> Result<Option<f64>, InsightError> {
    if row[i].is_null() { Ok(None) } else { row[i].as_float().map(Some).ok_or_else(|| drift(column, "a number", &row[i])) }
}

/// Column `i` of a query row as a day, or none when it is null.
pub(crate) fn day_or_null(row: &[Cell], i: usize, column: &str) -> Result<Option<i64>, InsightError> {
    if row[i].is_null() { Ok(None) } else { row[i].as_day().map(Some).ok_or_else(|| drift(column, "a day", &row[i])) }
}

/// A breakdown group's value: its text, or `(none)` for users without the property.
pub(crate) fn group(row: &[Cell], i: usize) -> String {
    match &row[i] {
        Cell::Null => "(none)".to_string(),
        other => other.display(),
    }
}

fn drift(column: &str, expected: &str, got: &Cell) -> InsightError {
    InsightError::Query(format!("column {column}: expected {expected}, the query returned {got:?}"))
}

fn query(e: arrow::error::ArrowError) -> InsightError {
    InsightError::Query(e.to_string())
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
        let cells: Vec<Vec<String>> = self.rows.iter().map(|r| r.iter().map(Cell::display).collect()).collect();
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
            out.push_str(&(r.iter().map(|v| quote(&v.display())).collect::<Vec<_>>().join(",") + "\n"));
        }
        out
    }
}
