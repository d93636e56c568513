//! Numeric tables as each party holds them: named columns of reals, read from CSV, and the
//! per-feature bins SecureBoost splits on.

use std::path::Path;

use crate::FederationError;

/// Rows a table may hold, at most.
pub const TABLE_ROWS_MAX: usize = 50_000_000;
/// Bins per feature, at most (bin numbers are bytes).
pub const BINS_MAX: usize = 256;

/// A table of reals, column by column.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column names, in order.
    pub names: Vec<String>,
    /// One vector per column, all of the same length.
    pub columns: Vec<Vec<f64>>,
}

impl Table {
    /// Reads a CSV file with a header whose every cell is a number; a bad cell is an error
    /// naming its line and column.
    pub fn read_csv(path: &Path) -> Result<Self, FederationError> {
        let mut reader = csv::Reader::from_path(path).map_err(|e| FederationError::Data(format!("{}: {e}", path.display())))?;
        let names: Vec<String> =
            reader.headers().map_err(|e| FederationError::Data(format!("{}: {e}", path.display())))?.iter().map(str::to_string).collect();
        let mut columns = vec![Vec::new(); names.len()];
        for (i, record) in reader.records().enumerate() {
            let line = i + 2;
            let record = record.map_err(|e| FederationError::Data(format!("{} line {line}: {e}", path.display())))?;
            if i >= TABLE_ROWS_MAX {
                return Err(FederationError::Data(format!("{}: more than {TABLE_ROWS_MAX} rows", path.display())));
            }
            for (c, cell) in record.iter().enumerate() {
                let value: f64 = cell.trim().parse().map_err(|_| {
                    FederationError::Data(format!("{} line {line} column {:?}: {cell:?} is not a number", path.display(), names[c]))
                })?;
                columns[c].push(value);
            }
        }
        Ok(Self { names, columns })
    }

    /// Rows in the table.
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Result<&[f64], FederationError> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| self.columns[i].as_slice())
            .ok_or_else(|| FederationError::Data(format!("no column {name:?}")))
    }

    /// A table of the named columns, in the order named.
    pub fn select(&self, names: &[&str]) -> Result<Table, FederationError> {
        let columns = names.iter().map(|n| self.column(n).map(<[f64]>::to_vec)).collect::<Result<Vec<_>, _>>()?;
        Ok(Table { names: names.iter().map(|n| n.to_string()).collect(), columns })
    }

    /// The rows at `rows`, in that order.
    pub fn take(&self, rows: &[usize]) -> Table {
        Table { names: self.names.clone(), columns: self.columns.iter().map(|c| rows.iter().map(|&r| c[r]).collect()).collect() }
    }
}

/// A feature's bins: bin `b` holds the values at most `upper[b]`; the last bin the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct Bins {
    /// Upper bounds of every bin but the last, increasing.
    pub upper: Vec<f64>,
}

impl Bins {
    /// At most `bins_max` bins: one per distinct value when there are few enough, else cut at
    /// quantiles of the distinct values weighted by rows.
    pub fn fit(values: &[f64], bins_max: usize) -> Self {
        assert!((2..=BINS_MAX).contains(&bins_max), "2 to {BINS_MAX} bins");
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        sorted.sort_by(f64::total_cmp);
        let mut distinct: Vec<f64> = sorted.clone();
        distinct.dedup();
        if distinct.len() <= bins_max {
            return Self { upper: distinct.split_last().map_or(Vec::new(), |(_, rest)| rest.to_vec()) };
        }
        let mut upper: Vec<f64> = (1..bins_max).map(|k| sorted[k * sorted.len() / bins_max - 1]).collect();
        upper.dedup();
        if upper.last() == sorted.last() {
            upper.pop();
        }
        Self { upper }
    }

    /// The bin of `value`.
    pub fn bin(&self, value: f64) -> u8 {
        // At most BINS_MAX - 1 bounds, so the position fits a byte.
        self.upper.partition_point(|&u| u < value) as u8
    }

    /// Bins of this feature.
    pub fn count(&self) -> usize {
        self.upper.len() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_distinct_values_get_a_bin_each() {
        let bins = Bins::fit(&[3.0, 1.0, 2.0, 2.0, 1.0], 16);
        assert_eq!(bins.upper, vec![1.0, 2.0]);
        assert_eq!([1.0, 2.0, 3.0, 0.5, 9.0].map(|v| bins.bin(v)), [0, 1, 2, 0, 2]);
    }

    #[test]
    fn many_values_are_cut_at_quantiles() {
        let values: Vec<f64> = (0..1000).map(f64::from).collect();
        let bins = Bins::fit(&values, 4);
        assert_eq!(bins.upper, vec![249.0, 499.0, 749.0]);
        assert_eq!(bins.count(), 4);
    }

    #[test]
    fn a_cell_that_is_no_number_is_named_by_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "a,b\n1,2\n3,x\n").unwrap();
        let err = Table::read_csv(&path).unwrap_err().to_string();
        assert!(err.contains("line 3 column \"b\""), "{err}");
    }
}
