//! Quality measures for binary scores: ranking (AUC, average precision, lift, precision@k) and
//! calibration (log loss, Brier score, a calibration table). Shared by every classifier finpulse
//! trains — fraud, churn, credit.

use serde::{Deserialize, Serialize};

/// Probabilities are clamped this far from 0 and 1 before taking logarithms.
const PROBABILITY_EPSILON: f64 = 1e-15;

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative, ties counting half. `None` when one class is absent.
pub fn auc(scores: &[f64], labels: &[f64]) -> Option<f64> {
    assert_eq!(scores.len(), labels.len(), "one label per score");
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let positives = labels.iter().filter(|&&y| y > 0.5).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    // Sum of the (average) ranks of the positives, ties sharing their mean rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += order[i..=j].iter().filter(|&&k| labels[k] > 0.5).count() as f64 * mean_rank;
        i = j + 1;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

/// Average precision: the mean of precision at each positive, scores descending (ties broken by
/// input order, as scikit-learn's step interpolation does per distinct threshold).
pub fn average_precision(scores: &[f64], labels: &[f64]) -> Option<f64> {
    let order = descending(scores);
    let positives = labels.iter().filter(|&&y| y > 0.5).count();
    if positives == 0 {
        return None;
    }
    let (mut tp, mut seen, mut sum) = (0usize, 0usize, 0.0);
    let mut i = 0;
    while i < order.len() {
        // A run of tied scores is one threshold.
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let run_tp = order[i..=j].iter().filter(|&&k| labels[k] > 0.5).count();
        tp += run_tp;
        seen += j - i + 1;
        sum += run_tp as f64 * tp as f64 / seen as f64;
        i = j + 1;
    }
    Some(sum / positives as f64)
}

/// Mean negative log-likelihood of the labels under the probabilities.
pub fn log_loss(probabilities: &[f64], labels: &[f64]) -> f64 {
    let total: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let p = p.clamp(PROBABILITY_EPSILON, 1.0 - PROBABILITY_EPSILON);
            -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
        })
        .sum();
    total / probabilities.len().max(1) as f64
}

/// Mean squared difference between probability and label.
pub fn brier(probabilities: &[f64], labels: &[f64]) -> f64 {
    probabilities.iter().zip(labels).map(|(p, y)| (p - y) * (p - y)).sum::<f64>() / probabilities.len().max(1) as f64
}

/// Positives among the `k` highest scores, divided by `k`.
pub fn precision_at_k(scores: &[f64], labels: &[f64], k: usize) -> f64 {
    let order = descending(scores);
    let k = k.min(order.len());
    if k == 0 {
        return 0.0;
    }
    order[..k].iter().filter(|&&i| labels[i] > 0.5).count() as f64 / k as f64
}

/// The positive rate in the top `fraction` of scores over the overall positive rate (1.0 means
/// no better than random).
pub fn lift(scores: &[f64], labels: &[f64], fraction: f64) -> f64 {
    let k = ((scores.len() as f64 * fraction).ceil() as usize).max(1);
    let base = labels.iter().filter(|&&y| y > 0.5).count() as f64 / labels.len().max(1) as f64;
    if base == 0.0 { 0.0 } else { precision_at_k(scores, labels, k) / base }
}

/// One row of a calibration table.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CalibrationBin {
    /// Lower edge of predicted probability.
    pub from: f64,
    /// Upper edge.
    pub to: f64,
    /// Rows in the bin.
    pub rows: usize,
    /// Mean predicted probability.
    pub predicted: f64,
    /// Observed positive rate.
    pub observed: f64,
}

/// Predicted against observed rates in `bins` equal-width probability bins (empty bins left out).
pub fn calibration(probabilities: &[f64], labels: &[f64], bins: usize) -> Vec<CalibrationBin> {
    let mut acc = vec![(0usize, 0.0, 0.0); bins];
    for (&p, &y) in probabilities.iter().zip(labels) {
        let b = ((p * bins as f64) as usize).min(bins - 1);
        acc[b].0 += 1;
        acc[b].1 += p;
        acc[b].2 += y;
    }
    acc.into_iter()
        .enumerate()
        .filter(|(_, a)| a.0 > 0)
        .map(|(b, (rows, p, y))| CalibrationBin {
            from: b as f64 / bins as f64,
            to: (b + 1) as f64 / bins as f64,
            rows,
            predicted: p / rows as f64,
            observed: y / rows as f64,
        })
        .collect()
}

/// A classifier's scores summarised.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Evaluation {
    /// Rows scored.
    pub rows: usize,
    /// Positive rate.
    pub positive_rate: f64,
    /// Area under the ROC curve.
    pub auc: Option<f64>,
    /// Average precision.
    pub average_precision: Option<f64>,
    /// Mean log loss.
    pub log_loss: f64,
    /// Brier score.
    pub brier: f64,
    /// Lift in the top 10% of scores.
    pub top_decile_lift: f64,
}

/// All the summary measures at once.
pub fn evaluate(probabilities: &[f64], labels: &[f64]) -> Evaluation {
    Evaluation {
        rows: labels.len(),
        positive_rate: labels.iter().sum::<f64>() / labels.len().max(1) as f64,
        auc: auc(probabilities, labels),
        average_precision: average_precision(probabilities, labels),
        log_loss: log_loss(probabilities, labels),
        brier: brier(probabilities, labels),
        top_decile_lift: lift(probabilities, labels, 0.1),
    }
}

fn descending(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_as_half() {
        assert_eq!(auc(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]), Some(0.75));
        assert_eq!(auc(&[0.5, 0.5], &[0.0, 1.0]), Some(0.5));
        assert_eq!(auc(&[0.5, 0.7], &[1.0, 1.0]), None);
    }

    #[test]
    fn average_precision_matches_the_textbook_example() {
        // scikit-learn's documented example: 0.8333...
        let ap = average_precision(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]).unwrap();
        assert!((ap - 0.833_333_333).abs() < 1e-9, "{ap}");
    }

    #[test]
    fn lift_and_precision_reward_ranking_positives_first() {
        let scores: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let labels: Vec<f64> = (0..100).map(|i| if i >= 90 { 1.0 } else { 0.0 }).collect();
        assert_eq!(precision_at_k(&scores, &labels, 10), 1.0);
        assert!((lift(&scores, &labels, 0.1) - 10.0).abs() < 1e-12);
        let calibration = calibration(&[0.05, 0.15, 0.95], &[0.0, 0.0, 1.0], 10);
        assert_eq!(calibration.len(), 3);
        assert_eq!(calibration[2].observed, 1.0);
        assert!((brier(&[0.0, 1.0], &[0.0, 1.0])).abs() < 1e-12);
        assert!(log_loss(&[0.5], &[1.0]) - std::f64::consts::LN_2 < 1e-12);
    }
}
