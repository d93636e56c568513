//! Files: CSV (header row, untyped cells), NDJSON and Parquet, read in chunks so a file of any
//! size streams through bounded memory.

use crate::json::decode_ndjson;
use crate::{Decoded, FormatError, Position};
use arrow::array::{Array, AsArray, RecordBatch};

use finpulse_core::{RawRecord, RawValue, Registry};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

/// Records per chunk a reader yields.
pub const CHUNK_RECORDS: usize = 64 * 1024;

/// A supported file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// Apache Parquet.
    Parquet,
}

impl FileFormat {
    /// The format a file name's extension implies.
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "ndjson" | "jsonl" | "json" => Some(Self::Ndjson),
            "parquet" | "pq" => Some(Self::Parquet),
            _ => None,
        }
    }
}

/// Rows of a CSV file held as one text buffer plus cell boundaries, so validation reads each
/// cell in place: no allocation per cell or per row.
#[derive(Debug, Default)]
pub struct CsvChunk {
    /// Column names, from the header row (checked for duplicates once).
    pub(crate) header: Arc<[String]>,
    text: String,
    /// End offset in `text` of every cell, row after row.
    cell_ends: Vec<usize>,
    pub(crate) rows: Vec<CsvRow>,
}

#[derive(Debug)]
pub(crate) struct CsvRow {
    /// One-based line in the file.
    pub(crate) line: usize,
    /// The row's cells as a range of `cell_ends`, or why the row is not a record.
    pub(crate) cells: Result<Range<usize>, String>,
}

impl CsvChunk {
    /// The cells of a row, as text.
    pub(crate) fn cells(&self, range: Range<usize>) -> impl Iterator<Item = &str> + Clone {
        let start = if range.start == 0 { 0 } else { self.cell_ends[range.start - 1] };
        let ends = &self.cell_ends[range];
        let mut from = start;
        ends.iter().map(move |&end| {
            let cell = &self.text[from..end];
            from = end;
            cell
        })
    }

    /// Rows in the chunk (records and unreadable rows alike).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the chunk has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// A chunk of a file: decoded records, or CSV rows kept as text.
#[derive(Debug)]
pub enum Chunk {
    /// Records decoded one by one (NDJSON, Parquet).
    Records(Vec<Decoded>),
    /// CSV rows, validated in place.
    Csv(CsvChunk),
}

impl Chunk {
    /// Records or rows in the chunk.
    pub fn len(&self) -> usize {
        match self {
            Self::Records(r) => r.len(),
            Self::Csv(c) => c.len(),
        }
    }

    /// Whether the chunk is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A file being read in chunks of records.
pub struct FileReader {
    inner: Inner,
    /// Units done so far (bytes for text formats, rows for Parquet).
    pub done: u64,
    /// Units in all.
    pub total: u64,
}

enum Inner {
    Csv(csv::Reader<LineBreaks<File>>, Arc<[String]>, csv::StringRecord),
    Ndjson(BufReader<File>, usize),
    Parquet(ParquetRecordBatchReader, usize),
}

/// A CSV file as the parser reads it, noting where its line breaks are so each row's line is
/// exact: the parser's own count (`csv::Position::line`) is taken before the line breaks it skips
/// at the start of a row, so it misses the LF of every CRLF and blank lines, and it counts no
/// lone CR. A line ends at an LF, a CRLF or a lone CR, as the parser ends a row.
struct LineBreaks<R> {
    inner: R,
    /// Bytes read so far.
    read: u64,
    /// Offsets of the CR and LF bytes read and not yet passed, each with whether it is an LF.
    breaks: VecDeque<(u64, bool)>,
    /// Line breaks passed.
    lines: u64,
}

impl<R> LineBreaks<R> {
    fn new(inner: R) -> Self {
        Self { inner, read: 0, breaks: VecDeque::new(), lines: 0 }
    }

    /// The one-based line of the row the parser started reading at byte `from`: the row starts
    /// after the CRs and LFs there (blank lines, the LF of the last row's CRLF). Rows come in
    /// file order, each read to its end before this is asked.
    fn line_of_row_from(&mut self, from: u64) -> usize {
        let mut at = from;
        while let Some(&(offset, lf)) = self.breaks.front() {
            if offset > at {
                break;
            }
            if offset == at {
                at += 1;
            }
            self.breaks.pop_front();
            // The byte after a CR passed here is read (it is at most the row's first), so
            // whether an LF follows it is known.
            let crlf = !lf && self.breaks.front().is_some_and(|&(next, lf)| lf && next == offset + 1);
            self.lines += u64::from(!crlf);
        }
        (self.lines + 1) as usize
    }
}

impl<R: Read> Read for LineBreaks<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, &b) in buf[..n].iter().enumerate() {
            if b == b'\n' || b == b'\r' {
                self.breaks.push_back((self.read + i as u64, b == b'\n'));
            }
        }
        self.read += n as u64;
        Ok(n)
    }
}

fn file_err(path: &Path, message: impl ToString) -> FormatError {
    FormatError::File { path: path.display().to_string(), message: message.to_string() }
}

/// Opens a file for import; the format comes from its extension.
pub fn open_file(path: &Path) -> Result<FileReader, FormatError> {
    let format = FileFormat::from_path(path).ok_or_else(|| file_err(path, "unknown format: use .csv, .ndjson (.jsonl) or .parquet"))?;
    let file = File::open(path).map_err(|e| file_err(path, e))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok(match format {
        FileFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(LineBreaks::new(file));
            let headers: Vec<String> = reader.headers().map_err(|e| file_err(path, e))?.iter().map(|h| h.trim().to_string()).collect();
            if headers.is_empty() {
                return Err(file_err(path, "the CSV has no header row"));
            }
            Registry::check_column_names(&headers).map_err(|e| file_err(path, format!("header row: {e}")))?;
            FileReader { inner: Inner::Csv(reader, headers.into(), csv::StringRecord::new()), done: 0, total: bytes }
        }
        FileFormat::Ndjson => FileReader { inner: Inner::Ndjson(BufReader::with_capacity(1 << 20, file), 0), done: 0, total: bytes },
        FileFormat::Parquet => {
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| file_err(path, e))?;
            let rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
            let reader = builder.with_batch_size(CHUNK_RECORDS).build().map_err(|e| file_err(path, e))?;
            FileReader { inner: Inner::Parquet(reader, 0), done: 0, total: rows }
        }
    })
}

impl FileReader {
    /// The next chunk of records, or `None` at the end.
    pub fn next_chunk(&mut self) -> Option<Result<Chunk, FormatError>> {
        match &mut self.inner {
            Inner::Csv(reader, headers, row) => {
                let mut out = CsvChunk { header: headers.clone(), ..CsvChunk::default() };
                while out.rows.len() < CHUNK_RECORDS {
                    match reader.read_record(row) {
                        Ok(false) => break,
                        Ok(true) => {
                            let line = row.position().map_or(0, |p| reader.get_mut().line_of_row_from(p.byte()));
                            let cells = if row.len() != headers.len() {
                                Err(format!("has {} cells, the header has {}", row.len(), headers.len()))
                            } else {
                                let first = out.cell_ends.len();
                                for cell in row.iter() {
                                    out.text.push_str(cell);
                                    out.cell_ends.push(out.text.len());
                                }
                                Ok(first..out.cell_ends.len())
                            };
                            out.rows.push(CsvRow { line, cells });
                        }
                        Err(e) => {
                            let line = e.position().map_or(0, |p| reader.get_mut().line_of_row_from(p.byte()));
                            out.rows.push(CsvRow { line, cells: Err(e.to_string()) });
                            if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. } | csv::ErrorKind::UnequalLengths { .. }) {
                                break;
                            }
                        }
                    }
                }
                self.done = reader.position().byte();
                (!out.is_empty()).then_some(Ok(Chunk::Csv(out)))
            }
            Inner::Ndjson(reader, line_no) => {
                let mut out = Vec::new();
                let mut buf = Vec::new();
                while out.len() < CHUNK_RECORDS {
                    buf.clear();
                    match reader.by_ref().read_until(b'\n', &mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            self.done += n as u64;
                            *line_no += 1;
                            match std::str::from_utf8(&buf) {
                                Ok(text) => out.extend(decode_ndjson(text, *line_no - 1)),
                                Err(e) => out.push(Decoded {
                                    position: Position::Line(*line_no),
                                    record: Err(format!("not valid UTF-8 at byte {} of the line", e.valid_up_to())),
                                }),
                            }
                        }
                        Err(e) => return Some(Err(FormatError::File { path: String::new(), message: e.to_string() })),
                    }
                }
                (!out.is_empty()).then_some(Ok(Chunk::Records(out)))
            }
            Inner::Parquet(reader, row_no) => {
                let batch = match reader.next()? {
                    Ok(b) => b,
                    Err(e) => return Some(Err(FormatError::File { path: String::new(), message: e.to_string() })),
                };
                let out = batch_records(&batch, *row_no);
                *row_no += batch.num_rows();
                self.done = *row_no as u64;
                Some(Ok(Chunk::Records(out)))
            }
        }
    }
}

/// Converts one Arrow column cell to a raw value.
fn cell(array: &dyn Array, row: usize) -> Result<RawValue, String> {
    if array.is_null(row) {
        return Ok(RawValue::Null);
    }
    use arrow::datatypes::*;
    Ok(match array.data_type() {
        DataType::Boolean => RawValue::Bool(array.as_boolean().value(row)),
        DataType::Int8 => RawValue::Int(array.as_primitive::<Int8Type>().value(row) as i64),
        DataType::Int16 => RawValue::Int(array.as_primitive::<Int16Type>().value(row) as i64),
        DataType::Int32 => RawValue::Int(array.as_primitive::<Int32Type>().value(row) as i64),
        DataType::Int64 => RawValue::Int(array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => RawValue::Int(array.as_primitive::<UInt8Type>().value(row) as i64),
        DataType::UInt16 => RawValue::Int(array.as_primitive::<UInt16Type>().value(row) as i64),
        DataType::UInt32 => RawValue::Int(array.as_primitive::<UInt32Type>().value(row) as i64),
        DataType::UInt64 => {
            let v = array.as_primitive::<UInt64Type>().value(row);
            RawValue::Int(i64::try_from(v).map_err(|_| format!("{v} is out of the 64-bit signed range"))?)
        }
        DataType::Float32 => RawValue::Float(array.as_primitive::<Float32Type>().value(row) as f64),
        DataType::Float64 => RawValue::Float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => RawValue::Str(array.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => RawValue::Str(array.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => RawValue::Str(array.as_string_view().value(row).to_string()),
        DataType::Timestamp(unit, _) => {
            let (v, per_us_mul, per_us_div) = match unit {
                TimeUnit::Second => (array.as_primitive::<TimestampSecondType>().value(row), 1_000_000, 1),
                TimeUnit::Millisecond => (array.as_primitive::<TimestampMillisecondType>().value(row), 1000, 1),
                TimeUnit::Microsecond => (array.as_primitive::<TimestampMicrosecondType>().value(row), 1, 1),
                TimeUnit::Nanosecond => (array.as_primitive::<TimestampNanosecondType>().value(row), 1, 1000),
            };
            RawValue::Micros(v.checked_mul(per_us_mul).ok_or("timestamp out of range")? / per_us_div)
        }
        other => return Err(format!("column type {other} is not supported")),
    })
}

fn batch_records(batch: &RecordBatch, first_row: usize) -> Vec<Decoded> {
    let schema = batch.schema();
    (0..batch.num_rows())
        .map(|row| {
            let mut fields = Vec::with_capacity(batch.num_columns());
            let mut problem = None;
            for (i, f) in schema.fields().iter().enumerate() {
                match cell(batch.column(i).as_ref(), row) {
                    Ok(v) => fields.push((f.name().clone(), v)),
                    Err(why) => {
                        problem = Some(format!("field '{}': {why}", f.name()));
                        break;
                    }
                }
            }
            Decoded { position: Position::Row(first_row + row), record: problem.map_or(Ok(RawRecord { fields }), Err) }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn all(reader: &mut FileReader) -> Vec<Decoded> {
        let mut out = Vec::new();
        while let Some(chunk) = reader.next_chunk() {
            match chunk.unwrap() {
                Chunk::Records(r) => out.extend(r),
                Chunk::Csv(_) => panic!("not a record chunk"),
            }
        }
        out
    }

    fn limits() -> finpulse_core::ValidationLimits {
        finpulse_core::ValidationLimits { now_us: 1_800_000_000_000_000, ..Default::default() }
    }

    #[test]
    fn csv_rows_validate_in_place_with_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.csv");
        let mut f = File::create(&path).unwrap();
        writeln!(f, "user_id,ts,type,amount_fen,currency,terminal_id\nu1,1777600000000,payment,100,CNY,t1\nu2,,payment\nu3,1777600000000,payment,-5,CNY,t1\n,1777600000000,marketing_spend,,,").unwrap();
        drop(f);
        let mut reader = open_file(&path).unwrap();
        let Some(Ok(chunk @ Chunk::Csv(_))) = reader.next_chunk() else { panic!("a CSV chunk") };
        assert!(reader.next_chunk().is_none());
        let registry = Registry::builtin();
        let v = crate::validate_chunk(&registry, chunk, &limits());
        assert_eq!(v.events.len(), 1);
        assert_eq!(v.positions, vec![Position::CsvLine(2)]);
        let amount = registry.field_id("amount_fen").unwrap();
        assert_eq!(v.events[0].get(amount), Some(&finpulse_core::Value::Int(100)));
        let rejected: Vec<(Position, Option<&str>, &str)> =
            v.rejected.iter().map(|r| (r.position, r.field.as_deref(), r.message.as_str())).collect();
        assert_eq!(rejected[0].0, Position::CsvLine(3));
        assert!(rejected[0].2.contains("3 cells"), "{}", rejected[0].2);
        assert_eq!((rejected[1].0, rejected[1].1), (Position::CsvLine(4), Some("amount_fen")));
        // marketing_spend needs its own fields: the empty cells are absent values, not errors.
        assert_eq!(rejected[2].0, Position::CsvLine(5));
        assert!(rejected[2].2.contains("is required"), "{}", rejected[2].2);
    }

    /// The line each row of a CSV file is placed at.
    fn row_lines(contents: &[u8]) -> Vec<usize> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.csv");
        std::fs::write(&path, contents).unwrap();
        let mut reader = open_file(&path).unwrap();
        let mut lines = Vec::new();
        while let Some(chunk) = reader.next_chunk() {
            let Chunk::Csv(csv) = chunk.unwrap() else { panic!("a CSV chunk") };
            lines.extend(csv.rows.iter().map(|r| r.line));
        }
        lines
    }

    #[test]
    fn csv_rows_name_their_own_line_whatever_the_line_breaks() {
        // Found by fuzzing: with CRLF line breaks (as spreadsheets write them) every row was
        // placed a line early, the first on the header's line.
        let crlf = b"event_id,user_id,ts,type,amount_fen,currency\r\n\"e-1\",\"u, \"\"q\"\"\",1777600000000,payment,250,CNY\r\ne-2,u2,1777600000000,transfer,\"1000\",CNY\r\n";
        assert_eq!(row_lines(crlf), [2, 3]);
        // A lone CR ends a line too; before, every row was on line 1.
        assert_eq!(row_lines(b"a,b\r1,2\r3,4"), [2, 3]);
        // Blank lines are skipped but counted.
        assert_eq!(row_lines(b"a,b\n\n1,2\r\n\r\n\n3,4\n"), [3, 6]);
        assert_eq!(row_lines(b"\n\na,b\n1,\"x\r\ny\"\n3,4\n"), [4, 6]);
        // A row that is not UTF-8 keeps its line, and so do the rows after it.
        assert_eq!(row_lines(b"a,b\r\n1,2\r\n3,\xff\r\n5,6"), [2, 3, 4]);
        assert_eq!(row_lines(b"\xef\xbb\xbfa,b\r\n1,2"), [2]);
    }

    #[test]
    fn a_csv_header_naming_a_column_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.csv");
        std::fs::write(&path, "user_id,ts,type,ts\nu1,1,payment,2\n").unwrap();
        let err = open_file(&path).err().expect("refused").to_string();
        assert!(err.contains("header row") && err.contains("'ts'"), "{err}");
    }

    #[test]
    fn ndjson_lines_with_bad_utf8_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.ndjson");
        std::fs::write(&path, b"{\"a\":1}\n{\"b\":\"\xff\"}\n{\"c\":2}\n").unwrap();
        let rows = all(&mut open_file(&path).unwrap());
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].position, Position::Line(2));
        assert!(rows[1].record.is_err());
        assert_eq!(rows[2].position, Position::Line(3));
    }

    #[test]
    fn unknown_extensions_are_refused() {
        assert!(open_file(Path::new("/tmp/x.xlsx")).is_err());
    }
}
