//! Scoring one row of numeric features at a time, without building a table: the path live
//! decisions take. Any classifier that can do this implements [`RowScorer`], so a decision
//! engine does not care whether finpulse trained the model or it was imported.

use crate::gbdt::{BinMap, Gbdt, sigmoid};
use crate::logistic::{Logistic, Term};
use crate::table::FeatureKind;
use crate::tabular::{Learner, ModelError, TabularModel};

/// A classifier over named numeric features, scored row by row.
pub trait RowScorer: Send + Sync {
    /// Its features, in the order rows give them.
    fn feature_names(&self) -> &[String];
    /// The probability of the positive class for one row (NaN = missing).
    fn score_row(&self, x: &[f64]) -> f64;
    /// Each feature's contribution to the row's raw score (log-odds), written to `out`
    /// (one slot per feature).
    fn contributions_row(&self, x: &[f64], out: &mut [f64]);
}

impl Gbdt {
    /// A row's bin of each feature (rows carry numbers: a categorical feature is missing).
    fn row_bins(&self, x: &[f64]) -> Vec<u8> {
        self.bins
            .iter()
            .zip(x)
            .map(|(m, &v)| match m {
                BinMap::Numeric { uppers } => BinMap::numeric_bin(uppers, v),
                BinMap::Categorical { categories, .. } => categories + 1,
            })
            .collect()
    }

    /// The raw score (log-odds) of one row of numeric values, in feature order.
    pub fn predict_row_raw(&self, x: &[f64]) -> f64 {
        let bins = self.row_bins(x);
        self.init_score + self.trees.iter().map(|t| t.leaves[t.leaf_by(|f| bins[f])]).sum::<f64>()
    }

    /// Per-feature contributions of one row (as [`Gbdt::contributions`]).
    pub fn contributions_row(&self, x: &[f64], out: &mut [f64]) {
        let bins = self.row_bins(x);
        out.iter_mut().for_each(|o| *o = 0.0);
        self.contributions_by(|f| bins[f], out);
    }
}

impl Logistic {
    fn term_value_row(term: &Term, x: &[f64]) -> (usize, f64) {
        match *term {
            Term::Numeric { feature, mean, scale } => (feature, if x[feature].is_nan() { 0.0 } else { (x[feature] - mean) / scale }),
            Term::Missing { feature } => (feature, f64::from(u8::from(x[feature].is_nan()))),
            Term::Level { feature, .. } => (feature, 0.0),
        }
    }

    /// The raw score of one row of numeric values.
    pub fn predict_row_raw(&self, x: &[f64]) -> f64 {
        self.intercept + self.terms.iter().zip(&self.weights).map(|(t, w)| w * Self::term_value_row(t, x).1).sum::<f64>()
    }

    /// Per-feature contributions of one row.
    pub fn contributions_row(&self, x: &[f64], out: &mut [f64]) {
        out.iter_mut().for_each(|o| *o = 0.0);
        for (t, w) in self.terms.iter().zip(&self.weights) {
            let (f, v) = Self::term_value_row(t, x);
            out[f] += w * v;
        }
    }
}

/// A finpulse model file, ready to score rows: every feature must be numeric.
pub struct TabularRowScorer {
    names: Vec<String>,
    model: TabularModel,
}

impl TabularRowScorer {
    /// Wraps a trained model; refuses one with categorical features (rows carry numbers only).
    pub fn new(model: TabularModel) -> Result<Self, ModelError> {
        if let Some(f) = model.features.iter().find(|f| !matches!(f.kind, FeatureKind::Numeric)) {
            return Err(ModelError::NotRowScorable(format!("feature {:?} is categorical; row scoring takes numbers only", f.name)));
        }
        Ok(Self { names: model.features.iter().map(|f| f.name.clone()).collect(), model })
    }

    /// The model.
    pub fn model(&self) -> &TabularModel {
        &self.model
    }
}

impl RowScorer for TabularRowScorer {
    fn feature_names(&self) -> &[String] {
        &self.names
    }
    fn score_row(&self, x: &[f64]) -> f64 {
        sigmoid(match &self.model.learner {
            Learner::Gbdt { model, .. } => model.predict_row_raw(x),
            Learner::Logistic { model, .. } => model.predict_row_raw(x),
            Learner::Imported { model } => return model.predict_row(x),
        })
    }
    fn contributions_row(&self, x: &[f64], out: &mut [f64]) {
        match &self.model.learner {
            Learner::Gbdt { model, .. } => model.contributions_row(x, out),
            Learner::Logistic { model, .. } => model.contributions_row(x, out),
            Learner::Imported { model } => model.contributions_row(x, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gbdt::GbdtParams;
    use crate::table::{LabelSpec, RawColumn, RawValues, labelled_from_columns};
    use crate::tabular::Algo;

    #[test]
    fn row_scores_equal_table_scores_for_gbdt_and_logistic() {
        let n = 2000;
        let a: Vec<f64> = (0..n).map(|i| ((i * 37) % 101) as f64).collect();
        let b: Vec<f64> = (0..n).map(|i| if i % 7 == 0 { f64::NAN } else { ((i * 13) % 17) as f64 }).collect();
        let y: Vec<f64> = (0..n).map(|i| f64::from(u8::from(a[i] + if b[i].is_nan() { 30.0 } else { b[i] } > 60.0))).collect();
        let columns: Vec<RawColumn> =
            vec![("a".to_string(), RawValues::Numeric(a.clone())), ("b".to_string(), RawValues::Numeric(b.clone()))];
        let data = labelled_from_columns(columns, y, "y", None).unwrap();
        for algo in [Algo::Gbdt(GbdtParams { rounds_max: 30, ..GbdtParams::default() }), Algo::Logistic(Default::default())] {
            let (model, scores) =
                TabularModel::train_table(&data, LabelSpec { column: "y".into(), positive: None }, None, &algo, None).unwrap();
            let scorer = TabularRowScorer::new(model).unwrap();
            assert_eq!(scorer.feature_names(), ["a", "b"]);
            for i in (0..n).step_by(97) {
                let row = [a[i], b[i]];
                assert!((scorer.score_row(&row) - scores[i]).abs() < 1e-12, "row {i}");
                let mut c = [0.0; 2];
                scorer.contributions_row(&row, &mut c);
                assert!(c.iter().all(|v| v.is_finite()));
            }
        }
    }
}
