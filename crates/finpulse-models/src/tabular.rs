//! A classifier for any table: trained from a CSV with a binary label column, stored as one
//! self-describing JSON file (schema, learner, settings, training report), and applied to
//! another CSV by column name. Fraud, churn and credit scoring all go through this.

use crate::gbdt::{Gbdt, GbdtError, GbdtParams, GbdtReport};
use crate::logistic::{Logistic, LogisticError, LogisticParams};
use crate::metrics::{self, Evaluation};
use crate::table::{FeatureSpec, LabelSpec, LabelledTable, ReadOptions, Table, TableError, read_for_schema, read_labelled, schema_of};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The model file format this build writes and reads.
pub const MODEL_FORMAT: &str = "finpulse-model/1";
/// Contributions reported per scored row.
pub const REASONS_PER_ROW: usize = 3;

/// Why a model could not be trained, stored, loaded or applied.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The table.
    #[error(transparent)]
    Table(#[from] TableError),
    /// Boosting.
    #[error(transparent)]
    Gbdt(#[from] GbdtError),
    /// Logistic regression.
    #[error(transparent)]
    Logistic(#[from] LogisticError),
    /// File I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// A model that cannot score single rows of numbers.
    #[error("this model cannot score live rows: {0}")]
    NotRowScorable(String),
    /// Not a model file, or one from another format version.
    #[error("{path}: not a finpulse model file ({detail})")]
    Format {
        /// The file.
        path: String,
        /// Why.
        detail: String,
    },
}

/// The learner and its fitted state.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "algo", rename_all = "snake_case")]
pub enum Learner {
    /// Gradient-boosted trees.
    Gbdt {
        /// Settings used.
        params: GbdtParams,
        /// What training did.
        report: GbdtReport,
        /// The trees.
        model: Gbdt,
    },
    /// Logistic regression.
    Logistic {
        /// Settings used.
        params: LogisticParams,
        /// The weights.
        model: Logistic,
    },
    /// Trees trained elsewhere (LightGBM, XGBoost), imported.
    Imported {
        /// The trees.
        model: crate::import::ImportedTrees,
    },
}

/// Which learner to train, with its settings.
#[derive(Clone, Debug)]
pub enum Algo {
    /// Gradient-boosted trees.
    Gbdt(GbdtParams),
    /// Logistic regression.
    Logistic(LogisticParams),
}

/// A trained classifier with everything needed to apply it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TabularModel {
    /// Always [`MODEL_FORMAT`].
    pub format: String,
    /// The label column and its positive class.
    pub label: LabelSpec,
    /// The identifier column carried to predictions, if any.
    pub id: Option<String>,
    /// Feature columns and their types, in model order.
    pub features: Vec<FeatureSpec>,
    /// Columns left out of training, with why.
    pub dropped: Vec<(String, String)>,
    /// Training rows.
    pub rows: usize,
    /// In-sample quality (all training rows).
    pub train_evaluation: Evaluation,
    /// The learner.
    pub learner: Learner,
}

/// Scores for a table.
#[derive(Clone, Debug)]
pub struct Scored {
    /// The id column's values, when the model has one and the table carries it.
    pub ids: Option<Vec<String>>,
    /// Probability of the positive class per row.
    pub scores: Vec<f64>,
    /// Labels, when the table carries the label column.
    pub labels: Option<Vec<f64>>,
    /// The features that pushed each row's score up most, with their raw-score contribution.
    pub reasons: Vec<Vec<(String, f64)>>,
}

impl TabularModel {
    /// Trains on CSV bytes.
    pub fn train(csv_bytes: &[u8], options: &ReadOptions, algo: &Algo) -> Result<Self, ModelError> {
        let data = read_labelled(csv_bytes, options)?;
        let label = options.label.clone().unwrap_or(LabelSpec { column: String::new(), positive: None });
        Ok(Self::train_table(&data, label, options.id.clone(), algo, None)?.0)
    }

    /// Trains on a table already in memory (built from SQL, say): `label` names what the labels
    /// mean, `id` the identifier the table's ids carry. `validation` marks the rows boosting
    /// stops early on (a time-based split); without it a random slice is held out. Returns the
    /// model and its score for every row of `data`.
    pub fn train_table(
        data: &LabelledTable,
        label: LabelSpec,
        id: Option<String>,
        algo: &Algo,
        validation: Option<&[bool]>,
    ) -> Result<(Self, Vec<f64>), ModelError> {
        let (learner, scores) = match algo {
            Algo::Gbdt(params) => {
                let (model, report) = match validation {
                    Some(is_valid) => Gbdt::fit_with_validation(&data.table, &data.labels, is_valid, params)?,
                    None => Gbdt::fit(&data.table, &data.labels, params)?,
                };
                let scores = model.predict(&data.table);
                (Learner::Gbdt { params: params.clone(), report, model }, scores)
            }
            Algo::Logistic(params) => {
                let model = Logistic::fit(&data.table, &data.labels, params)?;
                let scores = model.predict(&data.table);
                (Learner::Logistic { params: params.clone(), model }, scores)
            }
        };
        let model = Self {
            format: MODEL_FORMAT.to_string(),
            label,
            id,
            features: schema_of(&data.table),
            dropped: data.dropped.clone(),
            rows: data.table.rows,
            train_evaluation: metrics::evaluate(&scores, &data.labels),
            learner,
        };
        Ok((model, scores))
    }

    /// The learner's name and its settings, for listings.
    pub fn learner_summary(&self) -> (String, serde_json::Value) {
        match &self.learner {
            Learner::Gbdt { params, .. } => ("gbdt".into(), serde_json::to_value(params).unwrap_or_default()),
            Learner::Logistic { params, .. } => ("logistic".into(), serde_json::to_value(params).unwrap_or_default()),
            Learner::Imported { model } => (
                format!(
                    "imported_{}",
                    serde_json::to_value(model.source).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
                ),
                serde_json::json!({ "trees": model.trees.len() }),
            ),
        }
    }

    fn scores(&self, table: &Table) -> Vec<f64> {
        match &self.learner {
            Learner::Gbdt { model, .. } => model.predict(table),
            Learner::Logistic { model, .. } => model.predict(table),
            Learner::Imported { model } => (0..table.rows).map(|row| model.predict_row(&numeric_row(table, row))).collect(),
        }
    }

    fn contributions(&self, table: &Table) -> Vec<Vec<f64>> {
        match &self.learner {
            Learner::Gbdt { model, .. } => model.contributions(table),
            Learner::Logistic { model, .. } => (0..table.rows).map(|row| model.contributions(table, row)).collect(),
            Learner::Imported { model } => (0..table.rows)
                .map(|row| {
                    let mut c = vec![0.0; table.columns.len()];
                    model.contributions_row(&numeric_row(table, row), &mut c);
                    c
                })
                .collect(),
        }
    }

    /// Wraps trees trained elsewhere as a model over their named numeric features, checked on
    /// a labelled CSV first (its `label` column; every feature must be a column of it): the
    /// check's quality is recorded as the model's evaluation.
    pub fn import(trees: crate::import::ImportedTrees, check_csv: &[u8], label: LabelSpec) -> Result<Self, ModelError> {
        let features: Vec<FeatureSpec> =
            trees.features.iter().map(|name| FeatureSpec { name: name.clone(), kind: crate::table::FeatureKind::Numeric }).collect();
        let (table, labels) = read_for_schema(check_csv, &features, None, Some(&label))?;
        let labels = labels.ok_or_else(|| TableError::MissingColumn { column: label.column.clone(), header: "(the check file)".into() })?;
        let scores: Vec<f64> = (0..table.rows).map(|row| trees.predict_row(&numeric_row(&table, row))).collect();
        Ok(Self {
            format: MODEL_FORMAT.to_string(),
            label,
            id: None,
            features,
            dropped: Vec::new(),
            rows: labels.len(),
            train_evaluation: metrics::evaluate(&scores, &labels),
            learner: Learner::Imported { model: trees },
        })
    }

    /// Scores CSV bytes by column name; reads the label too when present, for evaluation.
    /// `with_reasons` adds each row's top positive contributions.
    pub fn score(&self, csv_bytes: &[u8], with_reasons: bool) -> Result<Scored, ModelError> {
        let (table, labels) = read_for_schema(csv_bytes, &self.features, self.id.as_deref(), Some(&self.label))?;
        Ok(self.score_table(table, labels, with_reasons))
    }

    /// Scores a table whose columns follow this model's schema (see
    /// [`crate::table::conform`]); `labels` ride along for evaluation.
    pub fn score_table(&self, table: Table, labels: Option<Vec<f64>>, with_reasons: bool) -> Scored {
        let scores = self.scores(&table);
        let reasons = if with_reasons {
            self.contributions(&table)
                .into_iter()
                .map(|row| {
                    let mut c: Vec<(usize, f64)> = row.into_iter().enumerate().filter(|(_, v)| *v > 0.0).collect();
                    c.sort_by(|a, b| b.1.total_cmp(&a.1));
                    c.into_iter().take(REASONS_PER_ROW).map(|(f, v)| (self.features[f].name.clone(), v)).collect()
                })
                .collect()
        } else {
            Vec::new()
        };
        Scored { ids: table.ids, scores, labels, reasons }
    }

    /// Writes the model as JSON, durably ([`finpulse_core::durable::write_file`]).
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let io = |source| ModelError::Io { path: path.display().to_string(), source };
        let json = serde_json::to_vec(self).map_err(|e| io(std::io::Error::other(e)))?;
        finpulse_core::durable::write_file(path, &json).map_err(io)
    }

    /// Reads a model written by [`TabularModel::save`].
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io { path: shown.clone(), source })?;
        Self::from_json(&bytes, &shown)
    }

    /// Reads a model from the bytes of a model file (`shown` names it in errors).
    pub fn from_json(bytes: &[u8], shown: &str) -> Result<Self, ModelError> {
        let shown = shown.to_string();
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| ModelError::Format { path: shown.clone(), detail: e.to_string() })?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(MODEL_FORMAT) => {}
            Some(other) => {
                return Err(ModelError::Format { path: shown, detail: format!("format '{other}', this build reads '{MODEL_FORMAT}'") });
            }
            None => return Err(ModelError::Format { path: shown, detail: "no 'format' field".into() }),
        }
        serde_json::from_value(value).map_err(|e| ModelError::Format { path: shown, detail: e.to_string() })
    }

    /// Evaluates the model on a labelled CSV.
    pub fn evaluate(&self, csv_bytes: &[u8]) -> Result<Evaluation, ModelError> {
        let scored = self.score(csv_bytes, false)?;
        let labels = scored
            .labels
            .ok_or_else(|| TableError::MissingColumn { column: self.label.column.clone(), header: "(the scored file)".into() })?;
        Ok(metrics::evaluate(&scored.scores, &labels))
    }
}

/// One row of a table as numbers, in column order (categories and missing cells as NaN).
fn numeric_row(table: &Table, row: usize) -> Vec<f64> {
    table
        .columns
        .iter()
        .map(|c| match &c.values {
            crate::table::Values::Numeric(v) => v[row],
            crate::table::Values::Categorical { .. } => f64::NAN,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(rows: usize) -> String {
        let mut s = String::from("id,balance,plan,churned\n");
        let mut state = 9u64;
        for i in 0..rows {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            let plan = ["gold", "silver", "basic"][i % 3];
            let churned = if (u < 0.3) ^ (plan == "basic" && i % 7 == 0) { "yes" } else { "no" };
            let balance = if i % 11 == 0 { String::new() } else { format!("{:.2}", u * 1000.0) };
            s.push_str(&format!("u{i},{balance},{plan},{churned}\n"));
        }
        s
    }

    #[test]
    fn a_model_survives_a_round_trip_through_its_file() {
        let data = csv(600);
        let options =
            ReadOptions { label: Some(LabelSpec { column: "churned".into(), positive: None }), id: Some("id".into()), ignore: vec![] };
        let dir = tempfile::tempdir().unwrap();
        for algo in [Algo::Gbdt(GbdtParams::default()), Algo::Logistic(LogisticParams::default())] {
            let model = TabularModel::train(data.as_bytes(), &options, &algo).unwrap();
            let path = dir.path().join("m.json");
            model.save(&path).unwrap();
            let loaded = TabularModel::load(&path).unwrap();
            let scored = loaded.score(data.as_bytes(), true).unwrap();
            // Bit-for-bit the same predictions as before saving.
            assert_eq!(scored.scores, model.score(data.as_bytes(), false).unwrap().scores);
            match (&loaded.learner, &model.learner) {
                (Learner::Gbdt { model: a, .. }, Learner::Gbdt { model: b, .. }) => assert_eq!(a.trees.len(), b.trees.len()),
                (Learner::Logistic { model: a, .. }, Learner::Logistic { model: b, .. }) => assert_eq!(a.weights, b.weights),
                _ => panic!("the learner kind changed"),
            }
            assert_eq!(scored.scores.len(), 600);
            assert_eq!(scored.ids.as_ref().unwrap()[5], "u5");
            // The balance drives the label, so it is the strongest model: AUC well above chance.
            assert!(loaded.evaluate(data.as_bytes()).unwrap().auc.unwrap() > 0.8);
        }
    }

    #[test]
    fn a_file_that_is_not_a_model_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        std::fs::write(&path, br#"{"format":"finpulse-model/0"}"#).unwrap();
        assert!(TabularModel::load(&path).unwrap_err().to_string().contains("this build reads 'finpulse-model/1'"));
        std::fs::write(&path, b"not json").unwrap();
        assert!(matches!(TabularModel::load(&path), Err(ModelError::Format { .. })));
    }
}
