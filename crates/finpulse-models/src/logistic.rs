//! L2-regularised logistic regression by Newton's method (iteratively reweighted least squares).
//! Numbers are standardised, with a missing-value indicator where training saw gaps; categories
//! become one indicator per frequent level. The result is a scorecard-style model: one weight per
//! readable term.

use crate::optimize::solve_positive_definite;
use crate::table::{MISSING_CODE, Table, Values};
use serde::{Deserialize, Serialize};

/// Most indicator terms per categorical feature (the most frequent levels after the baseline;
/// the rest share the baseline's zero).
const LEVELS_PER_FEATURE_MAX: usize = 50;
/// Newton steps before giving up.
const ITERATIONS_MAX: usize = 50;
/// Converged when the penalised loss improves by less than this, relatively.
const LOSS_TOLERANCE: f64 = 1e-10;

/// Training settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LogisticParams {
    /// L2 penalty on the weights (not the intercept), on the summed log loss.
    pub l2: f64,
}

impl Default for LogisticParams {
    fn default() -> Self {
        Self { l2: 1.0 }
    }
}

/// Why training failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LogisticError {
    /// The Newton system could not be solved.
    #[error("the fit is singular (perfectly collinear terms with no penalty); raise --l2")]
    Singular,
    /// No convergence.
    #[error("did not converge in {0} Newton steps")]
    NotConverged(usize),
    /// A setting out of range.
    #[error("invalid setting: {0}")]
    Setting(String),
}

/// One model term.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Term {
    /// `(x − mean) / scale`, 0 when missing.
    Numeric {
        /// Feature index.
        feature: usize,
        /// Training mean.
        #[serde(with = "crate::float_text::one")]
        mean: f64,
        /// Training standard deviation.
        #[serde(with = "crate::float_text::one")]
        scale: f64,
    },
    /// 1 when the number is missing.
    Missing {
        /// Feature index.
        feature: usize,
    },
    /// 1 when the category code is `code`.
    Level {
        /// Feature index.
        feature: usize,
        /// Category code.
        code: u32,
    },
}

/// A trained model.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Logistic {
    /// Intercept.
    #[serde(with = "crate::float_text::one")]
    pub intercept: f64,
    /// Terms.
    pub terms: Vec<Term>,
    /// One weight per term.
    #[serde(with = "crate::float_text::many")]
    pub weights: Vec<f64>,
    /// Newton steps taken.
    pub iterations: usize,
}

fn term_value(term: &Term, table: &Table, row: usize) -> f64 {
    match term {
        Term::Numeric { feature, mean, scale } => match &table.columns[*feature].values {
            Values::Numeric(v) if !v[row].is_nan() => (v[row] - mean) / scale,
            _ => 0.0,
        },
        Term::Missing { feature } => match &table.columns[*feature].values {
            Values::Numeric(v) => f64::from(u8::from(v[row].is_nan())),
            Values::Categorical { .. } => 0.0,
        },
        Term::Level { feature, code } => match &table.columns[*feature].values {
            Values::Categorical { codes, .. } => f64::from(u8::from(codes[row] == *code)),
            Values::Numeric(_) => 0.0,
        },
    }
}

fn terms_for(table: &Table) -> Vec<Term> {
    let mut terms = Vec::new();
    for (feature, column) in table.columns.iter().enumerate() {
        match &column.values {
            Values::Numeric(v) => {
                let present: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
                let mean = present.iter().sum::<f64>() / present.len().max(1) as f64;
                let var = present.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / present.len().max(1) as f64;
                if var > 0.0 {
                    terms.push(Term::Numeric { feature, mean, scale: var.sqrt() });
                }
                if present.len() < v.len() {
                    terms.push(Term::Missing { feature });
                }
            }
            Values::Categorical { codes, levels } => {
                let mut counts = vec![0usize; levels.len()];
                for &c in codes.iter().filter(|&&c| c != MISSING_CODE) {
                    counts[c as usize] += 1;
                }
                let mut order: Vec<u32> = (0..levels.len() as u32).filter(|&c| counts[c as usize] > 0).collect();
                order.sort_by(|&a, &b| counts[b as usize].cmp(&counts[a as usize]).then(a.cmp(&b)));
                // The most frequent level is the baseline (weight zero), so the terms are not
                // collinear with the intercept.
                terms.extend(order.into_iter().skip(1).take(LEVELS_PER_FEATURE_MAX).map(|code| Term::Level { feature, code }));
            }
        }
    }
    terms
}

impl Logistic {
    /// Fits on `table` with 0/1 `labels`.
    pub fn fit(table: &Table, labels: &[f64], params: &LogisticParams) -> Result<Self, LogisticError> {
        if !(params.l2 >= 0.0 && params.l2.is_finite()) {
            return Err(LogisticError::Setting("l2 must be a finite number ≥ 0".into()));
        }
        let terms = terms_for(table);
        let p = terms.len() + 1;
        // Design matrix, row-major, intercept first.
        let mut x = vec![0.0; table.rows * p];
        for row in 0..table.rows {
            x[row * p] = 1.0;
            for (j, term) in terms.iter().enumerate() {
                x[row * p + j + 1] = term_value(term, table, row);
            }
        }
        let mean_y = labels.iter().sum::<f64>() / labels.len().max(1) as f64;
        let mut w = vec![0.0; p];
        w[0] = (mean_y / (1.0 - mean_y)).ln();
        let loss_at = |w: &[f64]| -> f64 {
            let mut loss = 0.0;
            for row in 0..table.rows {
                let z: f64 = x[row * p..(row + 1) * p].iter().zip(w).map(|(a, b)| a * b).sum();
                // log(1 + e^z) − y·z, stable for either sign of z.
                loss += z.max(0.0) + (-z.abs()).exp().ln_1p() - labels[row] * z;
            }
            loss + 0.5 * params.l2 * w[1..].iter().map(|v| v * v).sum::<f64>()
        };
        let mut loss = loss_at(&w);
        for iteration in 1..=ITERATIONS_MAX {
            let mut grad = vec![0.0; p];
            let mut hess = vec![0.0; p * p];
            for row in 0..table.rows {
                let xr = &x[row * p..(row + 1) * p];
                let z: f64 = xr.iter().zip(&w).map(|(a, b)| a * b).sum();
                let mu = 1.0 / (1.0 + (-z).exp());
                let weight = (mu * (1.0 - mu)).max(1e-12);
                let r = mu - labels[row];
                for i in 0..p {
                    if xr[i] == 0.0 {
                        continue;
                    }
                    grad[i] += r * xr[i];
                    let wi = weight * xr[i];
                    for j in 0..=i {
                        hess[i * p + j] += wi * xr[j];
                    }
                }
            }
            for i in 1..p {
                grad[i] += params.l2 * w[i];
                hess[i * p + i] += params.l2;
            }
            for i in 0..p {
                for j in 0..i {
                    hess[j * p + i] = hess[i * p + j];
                }
            }
            let step = solve_positive_definite(&hess, &grad).ok_or(LogisticError::Singular)?;
            // Newton step with halving until the loss does not rise.
            let mut scale = 1.0;
            let (next, next_loss) = loop {
                let candidate: Vec<f64> = w.iter().zip(&step).map(|(a, s)| a - scale * s).collect();
                let l = loss_at(&candidate);
                if l <= loss || scale < 1e-6 {
                    break (candidate, l);
                }
                scale /= 2.0;
            };
            let improved = loss - next_loss;
            w = next;
            loss = next_loss;
            if improved.abs() <= LOSS_TOLERANCE * loss.abs().max(1.0) {
                return Ok(Self { intercept: w[0], terms, weights: w[1..].to_vec(), iterations: iteration });
            }
        }
        Err(LogisticError::NotConverged(ITERATIONS_MAX))
    }

    /// Raw scores (log-odds), one per row.
    pub fn predict_raw(&self, table: &Table) -> Vec<f64> {
        (0..table.rows)
            .map(|row| self.intercept + self.terms.iter().zip(&self.weights).map(|(t, w)| w * term_value(t, table, row)).sum::<f64>())
            .collect()
    }

    /// Probabilities, one per row.
    pub fn predict(&self, table: &Table) -> Vec<f64> {
        self.predict_raw(table).into_iter().map(|z| 1.0 / (1.0 + (-z).exp())).collect()
    }

    /// Each feature's share of one row's raw score (its terms' weight × value).
    pub fn contributions(&self, table: &Table, row: usize) -> Vec<f64> {
        let mut out = vec![0.0; table.columns.len()];
        for (t, w) in self.terms.iter().zip(&self.weights) {
            let feature = match t {
                Term::Numeric { feature, .. } | Term::Missing { feature } | Term::Level { feature, .. } => *feature,
            };
            out[feature] += w * term_value(t, table, row);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Column;

    #[test]
    fn recovers_the_weights_that_generated_the_labels() {
        // P(y) = σ(−1 + 2·x + 1·[plan = gold]), x ~ U(−1, 1).
        let mut state = 5u64;
        let mut next = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let n = 40_000;
        let (mut x, mut plan, mut y) = (vec![], vec![], vec![]);
        for _ in 0..n {
            let xi = next() * 2.0 - 1.0;
            let gold = next() < 0.5;
            let z = -1.0 + 2.0 * xi + if gold { 1.0 } else { 0.0 };
            x.push(xi);
            plan.push(u32::from(!gold));
            y.push(if next() < 1.0 / (1.0 + (-z).exp()) { 1.0 } else { 0.0 });
        }
        let table = Table {
            columns: vec![
                Column { name: "x".into(), values: Values::Numeric(x) },
                Column { name: "plan".into(), values: Values::Categorical { codes: plan, levels: vec!["gold".into(), "basic".into()] } },
            ],
            rows: n,
            ids: None,
        };
        let model = Logistic::fit(&table, &y, &LogisticParams { l2: 0.0 }).unwrap();
        // The baseline level has no term: its weight is zero.
        let weight = |want: &dyn Fn(&Term) -> bool| model.terms.iter().zip(&model.weights).find(|(t, _)| want(t)).map_or(0.0, |(_, w)| *w);
        let Term::Numeric { scale, .. } = model.terms[0] else { panic!() };
        let slope = weight(&|t| matches!(t, Term::Numeric { .. })) / scale;
        let gold_minus_basic =
            weight(&|t| matches!(t, Term::Level { code: 0, .. })) - weight(&|t| matches!(t, Term::Level { code: 1, .. }));
        assert!((slope - 2.0).abs() < 0.1, "slope {slope}");
        assert!((gold_minus_basic - 1.0).abs() < 0.1, "gold effect {gold_minus_basic}");
        let raw = model.predict_raw(&table);
        let sum: f64 = model.contributions(&table, 3).iter().sum::<f64>() + model.intercept;
        assert!((sum - raw[3]).abs() < 1e-9);
    }
}
