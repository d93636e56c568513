//! Frequentist tests, as gbstats 0.8.0's `frequentist/tests.py`: Welch's two-sided t-test
//! (`TwoSidedTTest`) and the always-valid sequential test (`SequentialTwoSidedTTest`, Waudby-Smith
//! et al. 2023), with the same guards and the same uninformative answer when one fires.

use crate::ExperimentError;
use crate::distribution::{students_t_cdf, students_t_ppf};
use crate::effect::{DifferenceType, Guard, Interval, Uplift, effect_variance, point_estimate, scale_factor, validate_alpha};
use crate::statistics::{ArmSummary, Statistic, ZeroTheta, arms};

/// gbstats' default tuning parameter for sequential tests: the sample size (both variations)
/// at which the always-valid interval is tightest.
pub const SEQUENTIAL_TUNING_PARAMETER_DEFAULT: f64 = 5000.0;

/// Settings of a frequentist test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrequentistConfig {
    /// The significance level: the interval has coverage 1 − alpha.
    pub alpha: f64,
    /// How the effect is expressed.
    pub difference: DifferenceType,
}

impl Default for FrequentistConfig {
    /// gbstats' defaults: alpha 0.05, relative effect.
    fn default() -> Self {
        FrequentistConfig { alpha: 0.05, difference: DifferenceType::Relative }
    }
}

/// A frequentist test's answer (gbstats' `FrequentistTestResult`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrequentistResult {
    /// The effect's point estimate.
    pub expected: f64,
    /// The confidence interval (always-valid for the sequential test).
    pub ci: Interval,
    /// The two-sided p-value (always-valid for the sequential test).
    pub p_value: f64,
    /// The effect's sampling distribution.
    pub uplift: Uplift,
    /// Set when the inputs allowed no test and the answer is the uninformative one.
    pub guard: Option<Guard>,
    /// The control as the test used it.
    pub control: ArmSummary,
    /// The treatment as the test used it.
    pub treatment: ArmSummary,
    /// θ, when both statistics were regression adjusted.
    pub theta: Option<f64>,
}

/// What the two frequentist tests do differently: the interval's half-width and the p-value.
trait Inference {
    fn half_width(&self, e: &Estimate) -> Result<f64, ExperimentError>;
    fn p_value(&self, e: &Estimate) -> Result<f64, ExperimentError>;
}

/// The effect, its variance and the Welch–Satterthwaite degrees of freedom.
struct Estimate {
    point: f64,
    variance: f64,
    dof: f64,
    n_total: f64,
}

struct Welch {
    alpha: f64,
}

impl Inference for Welch {
    fn half_width(&self, e: &Estimate) -> Result<f64, ExperimentError> {
        Ok(students_t_ppf(1.0 - self.alpha / 2.0, e.dof)? * e.variance.sqrt())
    }

    fn p_value(&self, e: &Estimate) -> Result<f64, ExperimentError> {
        let t = e.point / e.variance.sqrt();
        Ok(2.0 * (1.0 - students_t_cdf(t.abs(), e.dof)?))
    }
}

/// Waudby-Smith et al. 2023 (arXiv 2103.06476v7), normal-mixture asymptotic confidence sequence.
struct Sequential {
    alpha: f64,
    tuning_parameter: f64,
}

impl Sequential {
    /// ρ from eq. 161: the mixture's spread, chosen so the interval is tightest at the tuning
    /// parameter's sample size.
    fn rho(&self) -> f64 {
        let log_alpha = self.alpha.ln();
        ((-2.0 * log_alpha + (-2.0 * log_alpha + 1.0).ln()) / self.tuning_parameter).sqrt()
    }
}

impl Inference for Sequential {
    /// Eq. 9.
    fn half_width(&self, e: &Estimate) -> Result<f64, ExperimentError> {
        let n = e.n_total;
        let rho = self.rho();
        let s2 = e.variance * n;
        let nr2p1 = n * rho.powi(2) + 1.0;
        Ok(s2.sqrt() * ((2.0 * nr2p1) * (nr2p1.sqrt() / self.alpha).ln() / (n * rho).powi(2)).sqrt())
    }

    /// Eq. 155: one over the e-value, capped at 1.
    fn p_value(&self, e: &Estimate) -> Result<f64, ExperimentError> {
        let n = e.n_total;
        let rho2 = self.rho().powi(2);
        let st2 = e.point.powi(2) * n / e.variance;
        let tr2p1 = n * rho2 + 1.0;
        let evalue = (rho2 * st2 / (2.0 * tr2p1)).exp() / tr2p1.sqrt();
        Ok((1.0 / evalue).min(1.0))
    }
}

/// Welch's unequal-variance two-sided t-test of treatment against control (gbstats'
/// `TwoSidedTTest`), CUPED applied when both statistics are regression adjusted.
pub fn welch_t_test(control: &Statistic, treatment: &Statistic, config: &FrequentistConfig) -> Result<FrequentistResult, ExperimentError> {
    validate_alpha(config.alpha)?;
    run(control, treatment, config.difference, &Welch { alpha: config.alpha })
}

/// The always-valid sequential test (gbstats' `SequentialTwoSidedTTest`): its interval and
/// p-value stay valid however often the experiment is looked at. `tuning_parameter` is the total
/// sample size at which the interval is tightest ([`SEQUENTIAL_TUNING_PARAMETER_DEFAULT`]).
pub fn sequential_test(
    control: &Statistic,
    treatment: &Statistic,
    config: &FrequentistConfig,
    tuning_parameter: f64,
) -> Result<FrequentistResult, ExperimentError> {
    validate_alpha(config.alpha)?;
    if !(tuning_parameter.is_finite() && tuning_parameter > 0.0) {
        return Err(ExperimentError::TuningParameter(tuning_parameter));
    }
    run(control, treatment, config.difference, &Sequential { alpha: config.alpha, tuning_parameter })
}

fn run(
    control: &Statistic,
    treatment: &Statistic,
    difference: DifferenceType,
    inference: &dyn Inference,
) -> Result<FrequentistResult, ExperimentError> {
    difference.validate()?;
    let arms = arms(control, treatment, ZeroTheta::UsePostPeriod)?;
    let (a, b) = (arms.control, arms.treatment);
    let uninformative = |guard| FrequentistResult {
        expected: 0.0,
        ci: Interval::ZERO,
        p_value: 1.0,
        uplift: Uplift::ZERO,
        guard: Some(guard),
        control: a,
        treatment: b,
        theta: arms.theta,
    };
    // gbstats checks the baseline mean before anything else, for absolute effects too.
    if a.mean == 0.0 || a.unadjusted_mean == 0.0 {
        return Ok(uninformative(Guard::ZeroBaseline));
    }
    if a.has_zero_variance() || b.has_zero_variance() {
        return Ok(uninformative(Guard::ZeroOrNegativeVariance));
    }
    let relative = difference.is_relative();
    let (n_a, n_b) = (a.n as f64, b.n as f64);
    let estimate = Estimate {
        point: point_estimate(a.mean, b.mean, relative, a.unadjusted_mean),
        variance: effect_variance(a.variance, a.unadjusted_mean, n_a, b.variance, b.unadjusted_mean, n_b, relative),
        dof: welch_satterthwaite(&a, &b),
        n_total: n_a + n_b,
    };
    let half_width = inference.half_width(&estimate)?;
    let mut result = FrequentistResult {
        expected: estimate.point,
        ci: Interval { lower: estimate.point - half_width, upper: estimate.point + half_width },
        p_value: inference.p_value(&estimate)?,
        uplift: Uplift { mean: estimate.point, stddev: estimate.variance.sqrt() },
        guard: None,
        control: a,
        treatment: b,
        theta: arms.theta,
    };
    if let DifferenceType::Scaled { traffic_proportion, phase_length_days } = difference {
        let Some(factor) = scale_factor(b.n, traffic_proportion, phase_length_days) else {
            return Ok(uninformative(Guard::ZeroScaledVariation));
        };
        result.expected *= factor;
        result.ci = result.ci.scaled(factor);
        result.uplift = Uplift { mean: result.uplift.mean * factor, stddev: result.uplift.stddev * factor };
    }
    Ok(result)
}

/// The Welch–Satterthwaite approximation to the degrees of freedom (of the absolute
/// difference, which gbstats uses for relative effects too). Both variances are positive here,
/// so both arms have at least two units and no denominator is 0.
fn welch_satterthwaite(a: &ArmSummary, b: &ArmSummary) -> f64 {
    let (n_a, n_b) = (a.n as f64, b.n as f64);
    (b.variance / n_b + a.variance / n_a).powi(2)
        / (b.variance.powi(2) / (n_b.powi(2) * (n_b - 1.0)) + a.variance.powi(2) / (n_a.powi(2) * (n_a - 1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statistics::{Proportion, SampleMean};

    fn mean(n: u64, mean: f64, variance: f64) -> Statistic {
        let nf = n as f64;
        let sum = mean * nf;
        Statistic::SampleMean(SampleMean { n, sum, sum_squares: variance * (nf - 1.0) + sum * sum / nf })
    }

    #[test]
    fn equal_groups_give_p_value_one_and_a_symmetric_interval() {
        let r = welch_t_test(&mean(100, 10.0, 4.0), &mean(100, 10.0, 4.0), &FrequentistConfig::default()).unwrap();
        assert!(r.expected.abs() < 1e-12);
        assert!((r.p_value - 1.0).abs() < 1e-12);
        assert!((r.ci.lower + r.ci.upper).abs() < 1e-12);
        assert_eq!(r.guard, None);
    }

    #[test]
    fn a_large_lift_is_significant_and_its_interval_excludes_zero() {
        let config = FrequentistConfig { alpha: 0.05, difference: DifferenceType::Absolute };
        let r = welch_t_test(&mean(1000, 10.0, 4.0), &mean(1000, 11.0, 4.0), &config).unwrap();
        assert!((r.expected - 1.0).abs() < 1e-9);
        assert!(r.p_value < 1e-10);
        assert!(r.ci.lower > 0.0);
    }

    #[test]
    fn zero_baseline_gives_the_uninformative_answer_not_nan() {
        let a = Statistic::Proportion(Proportion { n: 100, successes: 0 });
        let b = Statistic::Proportion(Proportion { n: 100, successes: 5 });
        let r = welch_t_test(&a, &b, &FrequentistConfig::default()).unwrap();
        assert_eq!(r.guard, Some(Guard::ZeroBaseline));
        assert_eq!((r.expected, r.p_value, r.ci), (0.0, 1.0, Interval::ZERO));
    }

    #[test]
    fn one_unit_has_no_variance_to_test_against() {
        let r = welch_t_test(&mean(1, 3.0, 0.0), &mean(50, 3.0, 1.0), &FrequentistConfig::default()).unwrap();
        assert_eq!(r.guard, Some(Guard::ZeroOrNegativeVariance));
    }

    #[test]
    fn sequential_interval_is_wider_than_the_fixed_horizon_one() {
        let (a, b) = (mean(2000, 10.0, 4.0), mean(2000, 10.2, 4.0));
        let config = FrequentistConfig::default();
        let fixed = welch_t_test(&a, &b, &config).unwrap();
        let sequential = sequential_test(&a, &b, &config, SEQUENTIAL_TUNING_PARAMETER_DEFAULT).unwrap();
        assert!(sequential.ci.upper - sequential.ci.lower > fixed.ci.upper - fixed.ci.lower);
        assert!(sequential.p_value > fixed.p_value);
    }

    #[test]
    fn invalid_settings_are_typed_errors() {
        let (a, b) = (mean(10, 1.0, 1.0), mean(10, 1.0, 1.0));
        let bad_alpha = FrequentistConfig { alpha: 1.5, ..FrequentistConfig::default() };
        assert_eq!(welch_t_test(&a, &b, &bad_alpha), Err(ExperimentError::Alpha(1.5)));
        assert_eq!(sequential_test(&a, &b, &FrequentistConfig::default(), 0.0), Err(ExperimentError::TuningParameter(0.0)));
    }
}
