//! Guardrail metrics: metrics an experiment must not hurt (complaints, repayment defaults, app
//! crashes) while it tries to move its goal metrics. A guardrail is judged on the chance that
//! the treatment makes it worse, with GrowthBook's cut-offs (its front end's `GuardrailResult`;
//! gbstats itself has no guardrail verdict), or, for a frequentist result, on a significant
//! move in the harmful direction.

use crate::bayesian::BayesianResult;
use crate::frequentist::FrequentistResult;

/// A chance of being worse from here on is a warning.
pub const GUARDRAIL_WARNING_CHANCE_TO_LOSE: f64 = 0.65;
/// A chance of being worse from here on is a failure.
pub const GUARDRAIL_DANGER_CHANCE_TO_LOSE: f64 = 0.9;
/// Enough data needs the larger variation's metric total to reach this (GrowthBook's
/// `hasEnoughData`): below it a chance to lose is mostly noise.
pub const GUARDRAIL_LARGER_TOTAL_MIN: f64 = 80.0;
/// … and the smaller variation's metric total to reach this.
pub const GUARDRAIL_SMALLER_TOTAL_MIN: f64 = 20.0;

/// A guardrail's verdict, ordered from harmless to failing so the worst of several is `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum GuardrailStatus {
    /// Too little data, or a test that gave its uninformative answer.
    NotEnoughData,
    /// No sign of harm.
    Ok,
    /// Harm is more likely than not, but not yet conclusive.
    Warning,
    /// The treatment is very likely hurting this metric.
    Danger,
}

/// Whether both variations' metric totals (e.g. counts of complaints) are large enough to judge.
pub fn has_enough_data(control_total: f64, treatment_total: f64) -> bool {
    control_total.max(treatment_total) >= GUARDRAIL_LARGER_TOTAL_MIN && control_total.min(treatment_total) >= GUARDRAIL_SMALLER_TOTAL_MIN
}

/// The verdict on a Bayesian result; its chance to win already accounts for inverse metrics.
pub fn bayesian_guardrail(result: &BayesianResult, control_total: f64, treatment_total: f64) -> GuardrailStatus {
    if result.guard.is_some() || !has_enough_data(control_total, treatment_total) {
        return GuardrailStatus::NotEnoughData;
    }
    let chance_to_lose = 1.0 - result.chance_to_win;
    if chance_to_lose >= GUARDRAIL_DANGER_CHANCE_TO_LOSE {
        GuardrailStatus::Danger
    } else if chance_to_lose >= GUARDRAIL_WARNING_CHANCE_TO_LOSE {
        GuardrailStatus::Warning
    } else {
        GuardrailStatus::Ok
    }
}

/// The verdict on a frequentist result: `Danger` when the effect is significant at `alpha` and
/// harmful (a rise for an `inverse` metric, a fall otherwise), `Ok` otherwise. There is no
/// warning band: a p-value has no counterpart of "harm is more likely than not".
pub fn frequentist_guardrail(
    result: &FrequentistResult,
    alpha: f64,
    inverse: bool,
    control_total: f64,
    treatment_total: f64,
) -> GuardrailStatus {
    if result.guard.is_some() || !has_enough_data(control_total, treatment_total) {
        return GuardrailStatus::NotEnoughData;
    }
    let harmful = if inverse { result.expected > 0.0 } else { result.expected < 0.0 };
    if harmful && result.p_value < alpha { GuardrailStatus::Danger } else { GuardrailStatus::Ok }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bayesian::{BayesianConfig, bayesian_test};
    use crate::frequentist::{FrequentistConfig, welch_t_test};
    use crate::statistics::{Proportion, Statistic};

    fn conversions(n: u64, successes: u64) -> Statistic {
        Statistic::Proportion(Proportion { n, successes })
    }

    #[test]
    fn a_metric_clearly_made_worse_is_in_danger() {
        let (a, b) = (conversions(5000, 600), conversions(5000, 500));
        let bayes = bayesian_test(&a, &b, &BayesianConfig::default()).unwrap();
        assert_eq!(bayesian_guardrail(&bayes, 600.0, 500.0), GuardrailStatus::Danger);
        let freq = welch_t_test(&a, &b, &FrequentistConfig::default()).unwrap();
        assert_eq!(frequentist_guardrail(&freq, 0.05, false, 600.0, 500.0), GuardrailStatus::Danger);
        // The same move is good news for an inverse metric (fewer complaints).
        assert_eq!(frequentist_guardrail(&freq, 0.05, true, 600.0, 500.0), GuardrailStatus::Ok);
    }

    #[test]
    fn small_totals_are_not_judged() {
        let r = bayesian_test(&conversions(100, 10), &conversions(100, 5), &BayesianConfig::default()).unwrap();
        assert_eq!(bayesian_guardrail(&r, 10.0, 5.0), GuardrailStatus::NotEnoughData);
        assert!(has_enough_data(80.0, 20.0) && !has_enough_data(79.0, 79.0));
    }

    #[test]
    fn statuses_order_from_harmless_to_failing() {
        let worst = [GuardrailStatus::Ok, GuardrailStatus::Danger, GuardrailStatus::Warning].into_iter().max();
        assert_eq!(worst, Some(GuardrailStatus::Danger));
    }
}
