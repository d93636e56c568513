//! Tables for the tabular learners: a CSV read into typed columns (numbers or categories, with
//! missing cells), a binary label, and the same columns read again for prediction under the
//! schema the model was trained on.
//!
//! A cell is missing when it is empty or one of [`MISSING_TOKENS`]. `NaN` and infinities are
//! refused rather than guessed at: they usually mean an upstream bug, and a model cannot learn
//! from them. Every error names the row (one-based, header excluded) and the column.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Cell texts read as a missing value (after trimming).
pub const MISSING_TOKENS: &[&str] = &["", "NA", "N/A", "null", "NULL"];

/// Why a table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// CSV syntax or I/O.
    #[error("{0}")]
    Csv(#[from] csv::Error),
    /// The file has a header but no data rows.
    #[error("the table has no data rows")]
    NoRows,
    /// A column named on the command line is not in the header.
    #[error("no column '{column}' in the header; it has: {header}")]
    MissingColumn {
        /// The column asked for.
        column: String,
        /// The header.
        header: String,
    },
    /// Two header cells with one name.
    #[error("column '{0}' appears twice in the header")]
    DuplicateColumn(String),
    /// NaN or an infinity in a numeric cell.
    #[error("row {row}, column '{column}': '{text}' is not a finite number (leave the cell empty for a missing value)")]
    NotFinite {
        /// One-based data row.
        row: usize,
        /// Column name.
        column: String,
        /// The cell.
        text: String,
    },
    /// A numeric feature cell that does not parse (prediction under a trained schema).
    #[error("row {row}, column '{column}': '{text}' is not a number, and the model was trained on numbers here")]
    NotNumber {
        /// One-based data row.
        row: usize,
        /// Column name.
        column: String,
        /// The cell.
        text: String,
    },
    /// A label cell that is not one of the two classes.
    #[error("row {row}, label column '{column}': '{text}' is not a binary label ({expected})")]
    BadLabel {
        /// One-based data row.
        row: usize,
        /// Column name.
        column: String,
        /// The cell.
        text: String,
        /// What is accepted.
        expected: String,
    },
    /// Every row has the same label.
    #[error("label column '{column}' has only one class ('{class}' in all {rows} rows); a classifier needs both")]
    OneClass {
        /// Column name.
        column: String,
        /// The only class seen.
        class: String,
        /// Rows read.
        rows: usize,
    },
    /// An in-memory column whose length differs from the row count.
    #[error("column '{column}' has {len} values for {rows} rows")]
    Length {
        /// Column name.
        column: String,
        /// Values given.
        len: usize,
        /// Rows expected.
        rows: usize,
    },
    /// An in-memory column of the other type than the model was trained on.
    #[error("column '{column}': the model was trained on {expected} here")]
    Kind {
        /// Column name.
        column: String,
        /// What the model expects.
        expected: &'static str,
    },
    /// No usable feature column is left.
    #[error("no usable feature columns: {0}")]
    NoFeatures(String),
}

/// One column's values.
#[derive(Clone, Debug)]
pub enum Values {
    /// Numbers; `NaN` marks a missing cell.
    Numeric(Vec<f64>),
    /// Category codes into `levels`; [`MISSING_CODE`] marks a missing cell.
    Categorical {
        /// Index into `levels` per row.
        codes: Vec<u32>,
        /// Distinct texts, in order of first appearance.
        levels: Vec<String>,
    },
}

/// The category code of a missing cell.
pub const MISSING_CODE: u32 = u32::MAX;

/// A named column.
#[derive(Clone, Debug)]
pub struct Column {
    /// Header name.
    pub name: String,
    /// Values, one per row.
    pub values: Values,
}

impl Column {
    /// Whether every present cell holds the same value (or every cell is missing).
    pub fn is_constant(&self) -> bool {
        match &self.values {
            Values::Numeric(v) => {
                let mut present = v.iter().filter(|x| !x.is_nan());
                match present.next() {
                    None => true,
                    Some(first) => present.all(|x| x == first),
                }
            }
            Values::Categorical { levels, .. } => levels.len() <= 1,
        }
    }
}

/// Feature columns plus, when training, the binary label.
#[derive(Clone, Debug)]
pub struct Table {
    /// Feature columns, in header order.
    pub columns: Vec<Column>,
    /// Row count.
    pub rows: usize,
    /// The identifier column's values, when one was named.
    pub ids: Option<Vec<String>>,
}

/// How the label column maps to classes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LabelSpec {
    /// Label column name.
    pub column: String,
    /// The text of the positive class; `None` means 1/0, true/false or yes/no.
    pub positive: Option<String>,
}

/// Reads the label cell `text` as 0 or 1.
fn parse_label(text: &str, spec: &LabelSpec) -> Option<f64> {
    let t = text.trim();
    if let Some(positive) = &spec.positive {
        return if t.is_empty() { None } else { Some(if t == positive { 1.0 } else { 0.0 }) };
    }
    match t.to_ascii_lowercase().as_str() {
        "1" | "1.0" | "true" | "yes" | "y" | "t" => Some(1.0),
        "0" | "0.0" | "false" | "no" | "n" | "f" => Some(0.0),
        _ => None,
    }
}

fn is_missing(text: &str) -> bool {
    MISSING_TOKENS.contains(&text.trim())
}

/// Parses a numeric cell: `Ok(None)` when it is not a number at all, an error for NaN/inf.
fn parse_number(text: &str, row: usize, column: &str) -> Result<Option<f64>, TableError> {
    let t = text.trim();
    match t.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Some(x)),
        Ok(_) => Err(TableError::NotFinite { row, column: column.to_string(), text: t.to_string() }),
        Err(_) => Ok(None),
    }
}

fn header_of(reader: &mut csv::Reader<&[u8]>) -> Result<Vec<String>, TableError> {
    let header: Vec<String> = reader.headers()?.iter().map(|h| h.trim().to_string()).collect();
    for (i, name) in header.iter().enumerate() {
        if header[..i].contains(name) {
            return Err(TableError::DuplicateColumn(name.clone()));
        }
    }
    Ok(header)
}

fn position(header: &[String], column: &str) -> Result<usize, TableError> {
    header
        .iter()
        .position(|h| h == column)
        .ok_or_else(|| TableError::MissingColumn { column: column.to_string(), header: header.join(", ") })
}

/// What to read from a training CSV.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// The label column and its positive class.
    pub label: Option<LabelSpec>,
    /// An identifier column: carried to predictions, never a feature.
    pub id: Option<String>,
    /// Columns to leave out.
    pub ignore: Vec<String>,
}

/// A training table: features, labels, and the columns that were dropped, with why.
#[derive(Clone, Debug)]
pub struct LabelledTable {
    /// The features.
    pub table: Table,
    /// 0 or 1 per row.
    pub labels: Vec<f64>,
    /// Columns left out, each with the reason.
    pub dropped: Vec<(String, String)>,
}

/// Reads a labelled training table from CSV bytes, inferring each column's type: numeric when
/// every present cell is a number, otherwise categorical. Constant columns and categorical
/// columns with a distinct value in every row (identifiers) are dropped and reported.
pub fn read_labelled(csv_bytes: &[u8], options: &ReadOptions) -> Result<LabelledTable, TableError> {
    let Some(label_spec) = &options.label else {
        return Err(TableError::MissingColumn { column: "(label)".into(), header: String::new() });
    };
    let mut reader = csv::ReaderBuilder::new().from_reader(csv_bytes);
    let header = header_of(&mut reader)?;
    let label_col = position(&header, &label_spec.column)?;
    let id_col = options.id.as_deref().map(|c| position(&header, c)).transpose()?;
    for ignored in &options.ignore {
        position(&header, ignored)?;
    }
    let feature_cols: Vec<usize> =
        (0..header.len()).filter(|&c| c != label_col && Some(c) != id_col && !options.ignore.contains(&header[c])).collect();

    // Pass 1: which columns are numeric.
    let mut numeric = vec![true; header.len()];
    let mut rows = 0usize;
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record)? {
        rows += 1;
        for &c in &feature_cols {
            if numeric[c] {
                let text = record.get(c).unwrap_or("");
                if !is_missing(text) && parse_number(text, rows, &header[c])?.is_none() {
                    numeric[c] = false;
                }
            }
        }
    }
    if rows == 0 {
        return Err(TableError::NoRows);
    }

    // Pass 2: the values.
    let mut builders: Vec<Builder> = feature_cols.iter().map(|&c| Builder::new(numeric[c], rows)).collect();
    let mut labels = Vec::with_capacity(rows);
    let mut ids = id_col.map(|_| Vec::with_capacity(rows));
    let mut reader = csv::ReaderBuilder::new().from_reader(csv_bytes);
    reader.headers()?;
    let mut row = 0usize;
    while reader.read_record(&mut record)? {
        row += 1;
        let text = record.get(label_col).unwrap_or("");
        let label = parse_label(text, label_spec).ok_or_else(|| TableError::BadLabel {
            row,
            column: label_spec.column.clone(),
            text: text.to_string(),
            expected: match &label_spec.positive {
                Some(p) => format!("'{p}' or any other non-empty text"),
                None => "1/0, true/false or yes/no; name the positive class with --positive for other texts".into(),
            },
        })?;
        labels.push(label);
        if let (Some(ids), Some(c)) = (ids.as_mut(), id_col) {
            ids.push(record.get(c).unwrap_or("").to_string());
        }
        for (builder, &c) in builders.iter_mut().zip(&feature_cols) {
            builder.push(record.get(c).unwrap_or(""), row, &header[c])?;
        }
    }
    let positives = labels.iter().filter(|&&y| y == 1.0).count();
    if positives == 0 || positives == rows {
        let class = if positives == 0 { "0" } else { "1" };
        return Err(TableError::OneClass { column: label_spec.column.clone(), class: class.into(), rows });
    }

    let columns =
        builders.into_iter().zip(&feature_cols).map(|(builder, &c)| Column { name: header[c].clone(), values: builder.finish() }).collect();
    let (columns, dropped) = keep_features(columns, rows)?;
    Ok(LabelledTable { table: Table { columns, rows, ids }, labels, dropped })
}

/// Leaves out constant columns and categorical columns with a distinct value in every row
/// (identifiers), saying why; an error when nothing is left.
/// Columns left out of a table, each with why.
pub type Dropped = Vec<(String, String)>;

fn keep_features(all: Vec<Column>, rows: usize) -> Result<(Vec<Column>, Dropped), TableError> {
    let mut columns = Vec::new();
    let mut dropped = Vec::new();
    for column in all {
        if column.is_constant() {
            dropped.push((column.name, "constant: the same value in every row".to_string()));
        } else if matches!(&column.values, Values::Categorical { levels, .. } if levels.len() == rows) {
            dropped.push((column.name, "a different text in every row: an identifier, not a feature (name it with --id)".to_string()));
        } else {
            columns.push(column);
        }
    }
    if columns.is_empty() {
        let why = if dropped.is_empty() {
            "the table has only the label (and id) columns".to_string()
        } else {
            dropped.iter().map(|(c, w)| format!("'{c}' {w}")).collect::<Vec<_>>().join("; ")
        };
        return Err(TableError::NoFeatures(why));
    }
    Ok((columns, dropped))
}

/// A column handed over in memory (from SQL, say) rather than read from CSV.
#[derive(Clone, Debug, PartialEq)]
pub enum RawValues {
    /// Numbers; `NaN` marks a missing value.
    Numeric(Vec<f64>),
    /// Texts; `None` marks a missing value.
    Text(Vec<Option<String>>),
}

impl RawValues {
    fn len(&self) -> usize {
        match self {
            Self::Numeric(v) => v.len(),
            Self::Text(v) => v.len(),
        }
    }
}

/// A named in-memory column.
pub type RawColumn = (String, RawValues);

fn check_raw(columns: &[RawColumn], rows: usize) -> Result<(), TableError> {
    for (name, values) in columns {
        if values.len() != rows {
            return Err(TableError::Length { column: name.clone(), len: values.len(), rows });
        }
        if let RawValues::Numeric(v) = values
            && let Some(i) = v.iter().position(|x| x.is_infinite())
        {
            return Err(TableError::NotFinite { row: i + 1, column: name.clone(), text: v[i].to_string() });
        }
    }
    Ok(())
}

/// Builds a training table from in-memory columns and 0/1 labels: texts become categories
/// (levels in order of first appearance); constant and identifier columns are left out as
/// [`read_labelled`] does.
pub fn labelled_from_columns(
    columns: Vec<RawColumn>,
    labels: Vec<f64>,
    label_column: &str,
    ids: Option<Vec<String>>,
) -> Result<LabelledTable, TableError> {
    let rows = labels.len();
    if rows == 0 {
        return Err(TableError::NoRows);
    }
    check_raw(&columns, rows)?;
    let positives = labels.iter().filter(|&&y| y == 1.0).count();
    if positives == 0 || positives == rows {
        let class = if positives == 0 { "0" } else { "1" };
        return Err(TableError::OneClass { column: label_column.to_string(), class: class.into(), rows });
    }
    let built = columns
        .into_iter()
        .map(|(name, values)| {
            let values = match values {
                RawValues::Numeric(v) => Values::Numeric(v),
                RawValues::Text(texts) => {
                    let mut levels: Vec<String> = Vec::new();
                    let mut index: HashMap<String, u32> = HashMap::new();
                    let codes = texts
                        .into_iter()
                        .map(|t| match t {
                            None => MISSING_CODE,
                            Some(t) => *index.entry(t).or_insert_with_key(|t| {
                                levels.push(t.clone());
                                levels.len() as u32 - 1
                            }),
                        })
                        .collect();
                    Values::Categorical { codes, levels }
                }
            };
            Column { name, values }
        })
        .collect();
    let (columns, dropped) = keep_features(built, rows)?;
    Ok(LabelledTable { table: Table { columns, rows, ids }, labels, dropped })
}

/// Builds a table under a trained schema from in-memory columns, matched by name (extra
/// columns are ignored); a text never seen in training reads as missing.
pub fn conform(columns: &[RawColumn], schema: &[FeatureSpec], rows: usize, ids: Option<Vec<String>>) -> Result<Table, TableError> {
    check_raw(columns, rows)?;
    let names: Vec<String> = columns.iter().map(|c| c.0.clone()).collect();
    let mut out = Vec::with_capacity(schema.len());
    for spec in schema {
        let (_, values) = &columns[position(&names, &spec.name)?];
        let values = match (&spec.kind, values) {
            (FeatureKind::Numeric, RawValues::Numeric(v)) => Values::Numeric(v.clone()),
            (FeatureKind::Categorical { levels }, RawValues::Text(texts)) => {
                let index: HashMap<&str, u32> = levels.iter().enumerate().map(|(i, l)| (l.as_str(), i as u32)).collect();
                let codes = texts.iter().map(|t| t.as_deref().and_then(|t| index.get(t).copied()).unwrap_or(MISSING_CODE)).collect();
                Values::Categorical { codes, levels: levels.clone() }
            }
            (FeatureKind::Numeric, RawValues::Text(_)) => return Err(TableError::Kind { column: spec.name.clone(), expected: "numbers" }),
            (FeatureKind::Categorical { .. }, RawValues::Numeric(_)) => {
                return Err(TableError::Kind { column: spec.name.clone(), expected: "texts" });
            }
        };
        out.push(Column { name: spec.name.clone(), values });
    }
    Ok(Table { columns: out, rows, ids })
}

/// The type a model expects for one feature.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureKind {
    /// A number.
    Numeric,
    /// A category, with the levels seen in training.
    Categorical {
        /// Levels, by code.
        levels: Vec<String>,
    },
}

/// One feature of a trained model's schema.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FeatureSpec {
    /// Column name.
    pub name: String,
    /// Its type.
    #[serde(flatten)]
    pub kind: FeatureKind,
}

/// The schema of a table, as a model stores it.
pub fn schema_of(table: &Table) -> Vec<FeatureSpec> {
    table
        .columns
        .iter()
        .map(|c| FeatureSpec {
            name: c.name.clone(),
            kind: match &c.values {
                Values::Numeric(_) => FeatureKind::Numeric,
                Values::Categorical { levels, .. } => FeatureKind::Categorical { levels: levels.clone() },
            },
        })
        .collect()
}

/// Reads a table for prediction under a trained schema: the feature columns must be present
/// (extra columns are ignored), numeric features must parse, and categorical cells map to the
/// trained levels (an unseen level is read as missing). The label column, if present, is read
/// too, so a caller can evaluate.
pub fn read_for_schema(
    csv_bytes: &[u8],
    schema: &[FeatureSpec],
    id: Option<&str>,
    label: Option<&LabelSpec>,
) -> Result<(Table, Option<Vec<f64>>), TableError> {
    let mut reader = csv::ReaderBuilder::new().from_reader(csv_bytes);
    let header = header_of(&mut reader)?;
    let cols: Vec<usize> = schema.iter().map(|f| position(&header, &f.name)).collect::<Result<_, _>>()?;
    let id_col = match id {
        Some(name) => header.iter().position(|h| h == name),
        None => None,
    };
    let label_col = label.and_then(|l| header.iter().position(|h| *h == l.column));
    let lookups: Vec<Option<HashMap<&str, u32>>> = schema
        .iter()
        .map(|f| match &f.kind {
            FeatureKind::Numeric => None,
            FeatureKind::Categorical { levels } => Some(levels.iter().enumerate().map(|(i, l)| (l.as_str(), i as u32)).collect()),
        })
        .collect();
    let mut numeric: Vec<Vec<f64>> = vec![Vec::new(); schema.len()];
    let mut codes: Vec<Vec<u32>> = vec![Vec::new(); schema.len()];
    let mut ids = id_col.map(|_| Vec::new());
    let mut labels = label_col.map(|_| Vec::new());
    let mut record = csv::StringRecord::new();
    let mut row = 0usize;
    while reader.read_record(&mut record)? {
        row += 1;
        for (k, &c) in cols.iter().enumerate() {
            let text = record.get(c).unwrap_or("");
            match &lookups[k] {
                None => {
                    let x = if is_missing(text) {
                        f64::NAN
                    } else {
                        parse_number(text, row, &header[c])?.ok_or_else(|| TableError::NotNumber {
                            row,
                            column: header[c].clone(),
                            text: text.to_string(),
                        })?
                    };
                    numeric[k].push(x);
                }
                Some(map) => codes[k].push(if is_missing(text) { MISSING_CODE } else { map.get(text).copied().unwrap_or(MISSING_CODE) }),
            }
        }
        if let (Some(ids), Some(c)) = (ids.as_mut(), id_col) {
            ids.push(record.get(c).unwrap_or("").to_string());
        }
        if let (Some(labels), Some(c), Some(spec)) = (labels.as_mut(), label_col, label) {
            let text = record.get(c).unwrap_or("");
            let y = parse_label(text, spec).ok_or_else(|| TableError::BadLabel {
                row,
                column: spec.column.clone(),
                text: text.to_string(),
                expected: "the classes the model was trained on".into(),
            })?;
            labels.push(y);
        }
    }
    let columns = schema
        .iter()
        .zip(numeric.into_iter().zip(codes))
        .map(|(f, (nums, codes))| Column {
            name: f.name.clone(),
            values: match &f.kind {
                FeatureKind::Numeric => Values::Numeric(nums),
                FeatureKind::Categorical { levels } => Values::Categorical { codes, levels: levels.clone() },
            },
        })
        .collect();
    Ok((Table { columns, rows: row, ids }, labels))
}

/// Accumulates one column during the second pass.
enum Builder {
    Numeric(Vec<f64>),
    Categorical { codes: Vec<u32>, levels: Vec<String>, index: HashMap<String, u32> },
}

impl Builder {
    fn new(numeric: bool, rows: usize) -> Self {
        if numeric {
            Self::Numeric(Vec::with_capacity(rows))
        } else {
            Self::Categorical { codes: Vec::with_capacity(rows), levels: Vec::new(), index: HashMap::new() }
        }
    }

    fn push(&mut self, text: &str, row: usize, column: &str) -> Result<(), TableError> {
        match self {
            Self::Numeric(v) => {
                // Pass 1 proved every present cell parses as a finite number.
                let x = if is_missing(text) { f64::NAN } else { parse_number(text, row, column)?.unwrap_or(f64::NAN) };
                v.push(x);
            }
            Self::Categorical { codes, levels, index } => {
                if is_missing(text) {
                    codes.push(MISSING_CODE);
                } else {
                    let next = levels.len() as u32;
                    let code = *index.entry(text.to_string()).or_insert_with(|| {
                        levels.push(text.to_string());
                        next
                    });
                    codes.push(code);
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Values {
        match self {
            Self::Numeric(v) => Values::Numeric(v),
            Self::Categorical { codes, levels, .. } => Values::Categorical { codes, levels },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(label: &str) -> ReadOptions {
        ReadOptions { label: Some(LabelSpec { column: label.into(), positive: None }), ..Default::default() }
    }

    #[test]
    fn columns_are_typed_and_blanks_are_missing() {
        let csv = b"id,age,plan,churn\na,30,gold,yes\nb, ,silver,no\nc,41,,No\n";
        let t = read_labelled(csv, &ReadOptions { id: Some("id".into()), ..options("churn") }).unwrap();
        assert_eq!(t.labels, vec![1.0, 0.0, 0.0]);
        assert_eq!(t.table.ids.as_deref(), Some(&["a".to_string(), "b".into(), "c".into()][..]));
        let Values::Numeric(age) = &t.table.columns[0].values else { panic!("age should be numeric") };
        assert!(age[1].is_nan());
        let Values::Categorical { codes, levels } = &t.table.columns[1].values else { panic!("plan should be categorical") };
        assert_eq!(levels, &["gold", "silver"]);
        assert_eq!(codes[2], MISSING_CODE);
    }

    #[test]
    fn nan_in_a_numeric_cell_names_row_and_column() {
        let err = read_labelled(b"x,y\n1,0\nNaN,1\n", &options("y")).unwrap_err();
        assert_eq!(err.to_string(), "row 2, column 'x': 'NaN' is not a finite number (leave the cell empty for a missing value)");
        let err = read_labelled(b"x,y\n1,0\n2,1\ninf,1\n", &options("y")).unwrap_err();
        assert!(err.to_string().starts_with("row 3, column 'x'"), "{err}");
    }

    #[test]
    fn bad_labels_are_refused_with_their_row() {
        let err = read_labelled(b"x,y\n1,0\n2,maybe\n", &options("y")).unwrap_err();
        assert!(err.to_string().starts_with("row 2, label column 'y': 'maybe' is not a binary label"), "{err}");
        let err = read_labelled(b"x,y\n1,0\n2,0\n", &options("y")).unwrap_err();
        assert!(matches!(err, TableError::OneClass { .. }), "{err}");
        let err = read_labelled(b"x,y\n", &options("y")).unwrap_err();
        assert!(matches!(err, TableError::NoRows));
        let err = read_labelled(b"x,z\n1,0\n", &options("y")).unwrap_err();
        assert_eq!(err.to_string(), "no column 'y' in the header; it has: x, z");
    }

    #[test]
    fn a_named_positive_class_reads_any_two_texts() {
        let mut o = options("status");
        o.label.as_mut().unwrap().positive = Some("defaulted".into());
        let t = read_labelled(b"x,status\n1,defaulted\n2,current\n3,current\n", &o).unwrap();
        assert_eq!(t.labels, vec![1.0, 0.0, 0.0]);
    }

    #[test]
    fn constant_and_identifier_columns_are_dropped_and_reported() {
        let t = read_labelled(b"k,c,x,y\na,5,1,0\nb,5,2,1\nc,5,1,1\n", &options("y")).unwrap();
        let names: Vec<_> = t.table.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["x"]);
        assert_eq!(t.dropped.len(), 2);
        assert!(t.dropped[0].1.contains("identifier"));
        assert!(t.dropped[1].1.contains("constant"));
        let err = read_labelled(b"c,y\n5,0\n5,1\n", &options("y")).unwrap_err();
        assert!(err.to_string().contains("'c' constant"), "{err}");
    }

    #[test]
    fn in_memory_columns_train_and_conform_to_the_trained_schema() {
        let columns = vec![
            ("x".to_string(), RawValues::Numeric(vec![1.0, f64::NAN, 3.0])),
            ("plan".to_string(), RawValues::Text(vec![Some("gold".into()), None, Some("silver".into())])),
            ("same".to_string(), RawValues::Numeric(vec![5.0, 5.0, 5.0])),
        ];
        let t = labelled_from_columns(columns.clone(), vec![1.0, 0.0, 0.0], "churned", None).unwrap();
        assert_eq!(t.dropped.len(), 1, "the constant column is left out");
        let schema = schema_of(&t.table);
        let fresh = vec![
            ("plan".to_string(), RawValues::Text(vec![Some("silver".into()), Some("platinum".into())])),
            ("x".to_string(), RawValues::Numeric(vec![2.0, 4.0])),
        ];
        let conformed = conform(&fresh, &schema, 2, None).unwrap();
        let Values::Categorical { codes, .. } = &conformed.columns[1].values else { panic!("plan is categorical") };
        assert_eq!(codes, &[1, MISSING_CODE], "an unseen level reads as missing");
        let err = labelled_from_columns(columns.clone(), vec![0.0, 0.0, 0.0], "churned", None).unwrap_err();
        assert!(matches!(err, TableError::OneClass { .. }), "{err}");
        let err = labelled_from_columns(columns, vec![0.0, 1.0], "churned", None).unwrap_err();
        assert_eq!(err.to_string(), "column 'x' has 3 values for 2 rows");
        let wrong = vec![("plan".to_string(), RawValues::Numeric(vec![1.0])), ("x".to_string(), RawValues::Numeric(vec![1.0]))];
        assert_eq!(conform(&wrong, &schema, 1, None).unwrap_err().to_string(), "column 'plan': the model was trained on texts here");
        let inf = vec![("x".to_string(), RawValues::Numeric(vec![1.0, f64::INFINITY]))];
        assert!(labelled_from_columns(inf, vec![0.0, 1.0], "y", None).unwrap_err().to_string().starts_with("row 2, column 'x'"));
    }

    #[test]
    fn prediction_reads_under_the_trained_schema() {
        let schema = vec![
            FeatureSpec { name: "x".into(), kind: FeatureKind::Numeric },
            FeatureSpec { name: "plan".into(), kind: FeatureKind::Categorical { levels: vec!["gold".into(), "silver".into()] } },
        ];
        let (t, labels) = read_for_schema(b"plan,extra,x\nsilver,?,1.5\nplatinum,?,\n", &schema, None, None).unwrap();
        assert!(labels.is_none());
        let Values::Categorical { codes, .. } = &t.columns[1].values else { panic!() };
        assert_eq!(codes, &[1, MISSING_CODE]);
        let err = read_for_schema(b"plan,x\ngold,abc\n", &schema, None, None).unwrap_err();
        assert!(err.to_string().starts_with("row 1, column 'x': 'abc' is not a number"), "{err}");
        let err = read_for_schema(b"plan\ngold\n", &schema, None, None).unwrap_err();
        assert!(matches!(err, TableError::MissingColumn { .. }));
    }
}
