//! Customer summaries from CSV: lifetimes-style columns (`frequency`, `recency`, `T`,
//! `monetary_value`) or Fader–Hardie-style (`x`, `t_x`, `T`, `zbar`), with an optional id column
//! and an optional `weights` column for aggregated rows (`periods` or `n` stand for T in the
//! discrete-time BG/BB).

use crate::ltv::{Customer, SummaryError, check_customer};
use std::io::Read;

/// Column names accepted for each quantity, first match wins.
const ID_COLUMNS: &[&str] = &["id", "customer_id", "user_id", "ID"];
const FREQUENCY_COLUMNS: &[&str] = &["frequency", "x"];
const RECENCY_COLUMNS: &[&str] = &["recency", "t_x"];
const AGE_COLUMNS: &[&str] = &["T", "age", "periods", "n"];
/// How many customers a row stands for (aggregated data, such as the BG/BB donation file).
const WEIGHT_COLUMNS: &[&str] = &["weights", "weight", "count"];
/// Most customers one weighted row may stand for.
pub const ROW_WEIGHT_MAX: u64 = 10_000_000;
const MONETARY_COLUMNS: &[&str] = &["monetary_value", "zbar", "monetary"];

/// Why a summary file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A required column is absent.
    #[error("missing column '{wanted}' (or one of: {aliases}); the header has: {header}")]
    MissingColumn {
        /// The quantity.
        wanted: &'static str,
        /// Accepted names.
        aliases: String,
        /// What the header has.
        header: String,
    },
    /// A cell that is not a number.
    #[error("row {row}, column '{column}': '{text}' is not a number")]
    NotNumber {
        /// One-based data row.
        row: usize,
        /// Column name.
        column: String,
        /// The cell.
        text: String,
    },
    /// A row with more or fewer cells than the header.
    #[error("row {row}: {found} cells, but the header has {expected}")]
    Width {
        /// One-based data row.
        row: usize,
        /// Cells in the row.
        found: usize,
        /// Cells in the header.
        expected: usize,
    },
    /// A value out of its domain.
    #[error(transparent)]
    Summary(#[from] SummaryError),
    /// CSV syntax or I/O.
    #[error("{0}")]
    Csv(#[from] csv::Error),
}

fn find(header: &csv::StringRecord, names: &[&str]) -> Option<usize> {
    names.iter().find_map(|n| header.iter().position(|h| h.trim() == *n))
}

/// Files at least this large are parsed in pieces on every core.
pub const PARALLEL_PARSE_BYTES_MIN: usize = 1 << 20;

/// Where each quantity is in a summary file's columns.
struct Columns {
    header: csv::StringRecord,
    id: Option<usize>,
    frequency: usize,
    recency: usize,
    age: usize,
    monetary: Option<usize>,
    weight: Option<usize>,
}

/// Reads and checks a customer summary. Every error names the row and column. A large file
/// without quoted cells is split at line ends and its pieces parsed on every core; rows keep
/// the file's order and numbering.
pub fn read_summary(mut input: impl Read) -> Result<Vec<Customer>, ReadError> {
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes).map_err(csv::Error::from)?;
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::Headers).from_reader(&bytes[..]);
    let header = reader.headers()?.clone();
    let body = &bytes[reader.position().byte() as usize..];
    let require = |wanted: &'static str, names: &[&str]| {
        find(&header, names).ok_or_else(|| ReadError::MissingColumn {
            wanted,
            aliases: names.join(", "),
            header: header.iter().collect::<Vec<_>>().join(", "),
        })
    };
    let columns = Columns {
        frequency: require("frequency", FREQUENCY_COLUMNS)?,
        recency: require("recency", RECENCY_COLUMNS)?,
        age: require("T", AGE_COLUMNS)?,
        id: find(&header, ID_COLUMNS),
        monetary: find(&header, MONETARY_COLUMNS),
        weight: find(&header, WEIGHT_COLUMNS),
        header: header.clone(),
    };
    // A quoted cell may hold a line end, so only files without quotes are split; weighted rows
    // are named after their row, so those files are read in one piece.
    let parts = if body.len() >= PARALLEL_PARSE_BYTES_MIN && columns.weight.is_none() && !body.contains(&b'"') {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        1
    };
    let mut pieces = Vec::with_capacity(parts);
    let mut rest = body;
    for left in (1..=parts).rev() {
        let cut = if left == 1 {
            rest.len()
        } else {
            let at = rest.len() / left;
            rest[at..].iter().position(|&b| b == b'\n').map_or(rest.len(), |p| at + p + 1)
        };
        let (piece, after) = rest.split_at(cut);
        pieces.push(piece);
        rest = after;
    }
    let parsed: Vec<Result<(Vec<Customer>, usize), ReadError>> = std::thread::scope(|s| {
        let handles: Vec<_> = pieces.iter().map(|piece| s.spawn(|| read_rows(piece, &columns, parts == 1))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    let mut out: Vec<Customer> = Vec::new();
    let mut rows_before = 0;
    for piece in parsed {
        match piece {
            // The first piece's customers are kept in place; the rest are appended.
            Ok((customers, rows)) if out.is_empty() => (out, rows_before) = (customers, rows_before + rows),
            Ok((customers, rows)) => {
                out.extend(customers);
                rows_before += rows;
            }
            Err(e) => return Err(e.after_rows(rows_before)),
        }
    }
    if out.is_empty() {
        return Err(SummaryError::Empty(" (the file has a header but no rows)").into());
    }
    if parts > 1 && columns.id.is_none() {
        // Unweighted, so customer i is data row i + 1 of the file; named on every core.
        let per = out.len().div_ceil(parts);
        std::thread::scope(|s| {
            for (k, chunk) in out.chunks_mut(per).enumerate() {
                s.spawn(move || chunk.iter_mut().enumerate().for_each(|(i, c)| c.id = (k * per + i + 1).to_string()));
            }
        });
    }
    Ok(out)
}

impl ReadError {
    /// The same error, for a piece of the file that starts after `rows` data rows.
    fn after_rows(self, rows: usize) -> Self {
        match self {
            Self::NotNumber { row, column, text } => Self::NotNumber { row: row + rows, column, text },
            Self::Width { row, found, expected } => Self::Width { row: row + rows, found, expected },
            Self::Summary(SummaryError::Value { row, column, problem }) => {
                Self::Summary(SummaryError::Value { row: row + rows, column, problem })
            }
            other => other,
        }
    }
}

/// Parses data rows (no header); rows are numbered from 1 within `piece`, and without an id
/// column customers are named by that number when `name_by_row` (else left unnamed). Returns
/// the customers and the number of rows read.
fn read_rows(piece: &[u8], columns: &Columns, name_by_row: bool) -> Result<(Vec<Customer>, usize), ReadError> {
    // Row widths are checked here, against the header, so the error carries the file's row
    // number whichever piece the row is in.
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(piece);
    let header = &columns.header;
    // About one customer per line (weighted rows may stand for more).
    let mut out = Vec::with_capacity(piece.iter().filter(|&&b| b == b'\n').count() + 1);
    // One record buffer for the whole piece, and cells trimmed as they are read: a summary of a
    // large base has millions of rows.
    let mut record = csv::ByteRecord::new();
    let mut row = 0;
    while reader.read_byte_record(&mut record)? {
        row += 1;
        if record.len() != header.len() {
            return Err(ReadError::Width { row, found: record.len(), expected: header.len() });
        }
        let number = |col: usize| -> Result<f64, ReadError> {
            let bytes = record.get(col).unwrap_or_default().trim_ascii();
            let text = std::str::from_utf8(bytes).ok();
            text.and_then(|t| t.parse::<f64>().ok()).ok_or_else(|| ReadError::NotNumber {
                row,
                column: header[col].to_string(),
                text: String::from_utf8_lossy(bytes).into_owned(),
            })
        };
        let customer = Customer {
            id: match columns.id {
                Some(c) => String::from_utf8_lossy(record.get(c).unwrap_or_default().trim_ascii()).into_owned(),
                None if name_by_row => row.to_string(),
                None => String::new(),
            },
            frequency: number(columns.frequency)?,
            recency: number(columns.recency)?,
            age: number(columns.age)?,
            monetary: columns.monetary.map(number).transpose()?,
        };
        check_customer(row, &customer)?;
        let copies = match columns.weight {
            None => 1,
            Some(col) => {
                let weight = number(col)?;
                if !(weight >= 0.0 && weight.fract() == 0.0 && weight <= ROW_WEIGHT_MAX as f64) {
                    return Err(SummaryError::Value {
                        row,
                        column: "weights",
                        problem: format!("{weight} is not a whole number of customers from 0 to {ROW_WEIGHT_MAX}"),
                    }
                    .into());
                }
                weight as u64
            }
        };
        if copies == 1 {
            out.push(customer);
        } else {
            out.extend((0..copies).map(|k| Customer { id: format!("{}#{}", customer.id, k + 1), ..customer.clone() }));
        }
    }
    Ok((out, row))
}

/// One purchase: who, when (UTC microseconds) and its value, if the event has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Purchase {
    /// The customer.
    pub user_id: String,
    /// When.
    pub ts_us: i64,
    /// Its value (e.g. an amount in minor units).
    pub value: Option<f64>,
}

/// Summarises purchases made before `calibration_end_us` (exclusive) per customer, in time units
/// of `unit_us`, the way the LTV literature counts: purchases in the same unit count once;
/// frequency = units with purchases after the first; recency = units from the first to the last;
/// T = units from the first to the end of calibration; monetary = the mean value of the repeat
/// units (each unit's values summed). Customers come out sorted by id.
pub fn summarise(purchases: &mut [Purchase], calibration_end_us: i64, unit_us: i64) -> Vec<Customer> {
    purchases.sort_by(|a, b| a.user_id.cmp(&b.user_id).then(a.ts_us.cmp(&b.ts_us)));
    let end_unit = calibration_end_us as f64 / unit_us as f64;
    let mut out = Vec::new();
    for same_user in purchases.chunk_by(|a, b| a.user_id == b.user_id) {
        let in_calibration: Vec<&Purchase> = same_user.iter().filter(|p| p.ts_us < calibration_end_us).collect();
        let Some(first) = in_calibration.first() else { continue };
        let first_unit = first.ts_us.div_euclid(unit_us);
        // (unit, summed value) per unit with purchases, in time order.
        let mut units: Vec<(i64, Option<f64>)> = Vec::new();
        for p in &in_calibration {
            let unit = p.ts_us.div_euclid(unit_us);
            match units.last_mut() {
                Some((u, v)) if *u == unit => *v = v.zip(p.value).map(|(a, b)| a + b),
                _ => units.push((unit, p.value)),
            }
        }
        let repeats = &units[1..];
        let values: Option<Vec<f64>> = repeats.iter().map(|(_, v)| *v).collect();
        out.push(Customer {
            id: first.user_id.clone(),
            frequency: repeats.len() as f64,
            recency: repeats.last().map_or(0, |(u, _)| u - first_unit) as f64,
            age: (end_unit - first_unit as f64).max(0.0).floor(),
            monetary: values.filter(|v| !v.is_empty()).map(|v| v.iter().sum::<f64>() / v.len() as f64),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_rows_stand_for_that_many_customers() {
        let c = read_summary("frequency,recency,periods,weights\n0,0,6,3\n2,4,6,0\n1,1,6,1\n".as_bytes()).unwrap();
        assert_eq!(c.len(), 4, "3 + 0 + 1 customers");
        assert_eq!((c[0].age, c[3].frequency), (6.0, 1.0));
    }

    #[test]
    fn both_column_conventions_read() {
        let a = read_summary("ID,frequency,recency,T\n1,2,30.43,38.86\n2,0,0,38.86\n".as_bytes()).unwrap();
        assert_eq!(a[0], Customer { id: "1".into(), frequency: 2.0, recency: 30.43, age: 38.86, monetary: None });
        let b = read_summary("x,t_x,T,zbar\n1,1.71,38.86,11.77\n".as_bytes()).unwrap();
        assert_eq!((b[0].id.as_str(), b[0].monetary), ("1", Some(11.77)));
    }

    #[test]
    fn purchases_summarise_by_unit_before_the_calibration_end() {
        const DAY: i64 = 86_400_000_000;
        let p = |user: &str, day: i64, value: f64| Purchase { user_id: user.into(), ts_us: day * DAY + 3_600_000_000, value: Some(value) };
        let mut purchases = vec![p("b", 3, 1.0), p("a", 0, 10.0), p("a", 0, 5.0), p("a", 4, 20.0), p("a", 9, 40.0), p("a", 30, 99.0)];
        let summary = summarise(&mut purchases, 20 * DAY, DAY);
        assert_eq!(summary.len(), 2);
        // a: units 0, 4, 9 before day 20 → 2 repeats, last at 9, T = 20, mean repeat value 30.
        assert_eq!(summary[0], Customer { id: "a".into(), frequency: 2.0, recency: 9.0, age: 20.0, monetary: Some(30.0) });
        assert_eq!(summary[1], Customer { id: "b".into(), frequency: 0.0, recency: 0.0, age: 17.0, monetary: None });
        for (i, c) in summary.iter().enumerate() {
            check_customer(i + 1, c).unwrap();
        }
    }

    #[test]
    fn a_large_file_read_in_pieces_keeps_row_order_names_and_numbers() {
        // Over PARALLEL_PARSE_BYTES_MIN, so every core takes a piece.
        let rows = 300_000;
        let mut text = String::from("frequency,recency,T\n");
        for i in 0..rows {
            text.push_str(&format!("{},{},{}\n", i % 3, i % 3, 10 + i % 7));
        }
        assert!(text.len() >= PARALLEL_PARSE_BYTES_MIN);
        let c = read_summary(text.as_bytes()).unwrap();
        assert_eq!(c.len(), rows);
        for i in [0, 1, rows / 2, rows / 2 + 1, rows - 1] {
            assert_eq!(
                c[i],
                Customer {
                    id: (i + 1).to_string(),
                    frequency: (i % 3) as f64,
                    recency: (i % 3) as f64,
                    age: (10 + i % 7) as f64,
                    monetary: None
                }
            );
        }
        let bad_row = rows - 10;
        let broken = text.replacen(&format!("\n{},{},{}\n", (bad_row - 1) % 3, (bad_row - 1) % 3, 10 + (bad_row - 1) % 7), "\n1,x,3\n", 1);
        let message = read_summary(broken.as_bytes()).unwrap_err().to_string();
        assert!(message.starts_with("row ") && message.contains("column 'recency': 'x' is not a number"), "{message}");
        let reported: usize = message["row ".len()..].split(',').next().unwrap().parse().unwrap();
        assert_eq!(broken.lines().nth(reported).unwrap(), "1,x,3", "row {reported} is the bad line");
        // A short row in the second piece is named by its row in the file too.
        let short = text.replacen(&format!("\n{},{},{}\n", (bad_row - 1) % 3, (bad_row - 1) % 3, 10 + (bad_row - 1) % 7), "\n1,1\n", 1);
        let message = read_summary(short.as_bytes()).unwrap_err().to_string();
        let reported: usize = message["row ".len()..].split(':').next().unwrap().parse().unwrap();
        assert!(message.ends_with("2 cells, but the header has 3"), "{message}");
        assert_eq!(short.lines().nth(reported).unwrap(), "1,1", "row {reported} is the short line");
    }

    #[test]
    fn bad_files_name_the_row_and_column() {
        let err = |text: &str| read_summary(text.as_bytes()).unwrap_err().to_string();
        assert!(err("frequency,T\n1,2\n").contains("missing column 'recency'"));
        assert!(err("frequency,recency,T\n1,2,3\n1,x,3\n").contains("row 2, column 'recency': 'x' is not a number"));
        assert!(err("frequency,recency,T\n1,-2,3\n").contains("row 1, column 'recency': -2 is negative"));
        assert!(err("frequency,recency,T\n1,5,3\n").contains("row 1, column 'recency': 5 is after T = 3"));
        assert!(err("frequency,recency,T\n1.5,1,3\n").contains("not a whole number"));
        assert!(err("frequency,recency,T\nNaN,1,3\n").contains("not a finite number"));
        assert!(err("frequency,recency,T\n1,inf,3\n").contains("column 'recency'"));
        assert!(err("frequency,recency,T\n").contains("no rows"));
        assert!(err("frequency,recency,T\n1,1,3\n1,1,3,4\n").contains("row 2: 4 cells, but the header has 3"));
        assert!(
            err("frequency,recency,periods,weights\n0,0,6,3\n1,1,6,-2\n")
                .contains("row 2, column 'weights': -2 is not a whole number of customers")
        );
        assert!(err("frequency,recency,periods,weights\n1,1,6,2.5\n").contains("row 1, column 'weights'"));
    }
}
