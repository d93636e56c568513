//! The Bayesian test, as gbstats 0.8.0's `EffectBayesianABTest`: a Gaussian model of the effect
//! itself, its likelihood the effect's sampling distribution and its prior flat or normal.

use crate::ExperimentError;
use crate::distribution::{normal_cdf, normal_pdf, normal_ppf};
use crate::effect::{DifferenceType, Guard, Interval, Uplift, effect_variance, point_estimate, scale_factor, validate_alpha};
use crate::statistics::{ArmSummary, Statistic, ZeroTheta, arms};

/// A normal prior on the effect; `proper: false` makes it flat (mean and variance ignored).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GaussianPrior {
    /// The prior mean of the effect.
    pub mean: f64,
    /// The prior variance of the effect.
    pub variance: f64,
    /// Whether the prior is used at all.
    pub proper: bool,
}

impl GaussianPrior {
    /// The flat (improper) prior: the posterior is the likelihood.
    pub const FLAT: GaussianPrior = GaussianPrior { mean: 0.0, variance: 1.0, proper: false };

    /// A proper normal prior with the given mean and standard deviation (GrowthBook's
    /// `prior_mean`, `prior_stddev`).
    pub fn normal(mean: f64, stddev: f64) -> GaussianPrior {
        GaussianPrior { mean, variance: stddev.powi(2), proper: true }
    }
}

/// The scale the prior is stated on; gbstats rescales it by the control mean to the effect's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriorScale {
    /// A prior on the relative lift (GrowthBook's metric priors).
    Relative,
    /// A prior on the absolute difference.
    Absolute,
}

/// Settings of a Bayesian test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BayesianConfig {
    /// The credible interval has probability 1 − alpha.
    pub alpha: f64,
    /// True for metrics where lower is better: chance to win and risk are then flipped.
    pub inverse: bool,
    /// How the effect is expressed.
    pub difference: DifferenceType,
    /// The prior on the effect.
    pub prior: GaussianPrior,
    /// The scale `prior` is stated on.
    pub prior_scale: PriorScale,
}

impl Default for BayesianConfig {
    /// gbstats' defaults: alpha 0.05, relative effect, flat prior stated on the relative scale.
    fn default() -> Self {
        BayesianConfig {
            alpha: 0.05,
            inverse: false,
            difference: DifferenceType::Relative,
            prior: GaussianPrior::FLAT,
            prior_scale: PriorScale::Relative,
        }
    }
}

/// Expected loss of each decision, in the effect's unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Risk {
    /// Expected loss from shipping control: E[effect⁺] (flipped for inverse metrics).
    pub control: f64,
    /// Expected loss from shipping treatment: E[effect⁻] as a positive number.
    pub treatment: f64,
}

/// A Bayesian test's answer (gbstats' `BayesianTestResult`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BayesianResult {
    /// The posterior mean of the effect.
    pub expected: f64,
    /// The equal-tailed credible interval.
    pub ci: Interval,
    /// The posterior probability that treatment beats control.
    pub chance_to_win: f64,
    /// The expected loss of each choice (not scaled for a scaled effect, as in gbstats).
    pub risk: Risk,
    /// The effect's posterior.
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

/// The Bayesian test of treatment against control (gbstats' `EffectBayesianABTest`).
///
/// gbstats raises ZeroDivisionError where the prior must be rescaled by a zero control mean.
/// Here a relative effect gets the zero-baseline guard's answer (gbstats divides before it
/// checks); an absolute or scaled effect with a relative prior, which rescales to variance 0,
/// drops a flat prior (it contributes nothing at any variance) and gives the uninformative
/// answer with [`Guard::ZeroBaseline`] for a proper one.
pub fn bayesian_test(control: &Statistic, treatment: &Statistic, config: &BayesianConfig) -> Result<BayesianResult, ExperimentError> {
    validate_alpha(config.alpha)?;
    config.difference.validate()?;
    let prior = config.prior;
    if prior.proper && !(prior.mean.is_finite() && prior.variance.is_finite() && prior.variance > 0.0) {
        return Err(ExperimentError::Prior { mean: prior.mean, variance: prior.variance });
    }
    let arms = arms(control, treatment, ZeroTheta::KeepAdjusted)?;
    let (a, b) = (arms.control, arms.treatment);
    let relative = config.difference.is_relative();
    let uninformative = |guard| BayesianResult {
        expected: 0.0,
        ci: Interval::ZERO,
        chance_to_win: 0.5,
        risk: Risk { control: 0.0, treatment: 0.0 },
        uplift: Uplift::ZERO,
        guard: Some(guard),
        control: a,
        treatment: b,
        theta: arms.theta,
    };
    if relative && (a.mean == 0.0 || a.unadjusted_mean == 0.0) {
        return Ok(uninformative(Guard::ZeroBaseline));
    }
    if a.n == 0 || b.n == 0 {
        return Ok(uninformative(Guard::NoUnits));
    }
    if a.has_zero_variance() || b.has_zero_variance() {
        return Ok(uninformative(Guard::ZeroOrNegativeVariance));
    }
    let prior = rescaled_prior(config, relative, a.unadjusted_mean);
    if prior.proper && prior.variance == 0.0 {
        return Ok(uninformative(Guard::ZeroBaseline));
    }

    let data_variance = effect_variance(a.variance, a.unadjusted_mean, a.n as f64, b.variance, b.unadjusted_mean, b.n as f64, relative);
    let data_mean = point_estimate(a.mean, b.mean, relative, a.unadjusted_mean);
    let (mean, stddev) = posterior(data_mean, data_variance, &prior);

    // P(effect > 0) is norm.sf(0, mean, stddev).
    let chance_positive = normal_cdf(mean / stddev);
    let (risk_control, risk_treatment) = risk(mean, stddev);
    let mut result = BayesianResult {
        expected: mean,
        ci: Interval { lower: mean + stddev * normal_ppf(config.alpha / 2.0), upper: mean + stddev * normal_ppf(1.0 - config.alpha / 2.0) },
        chance_to_win: if config.inverse { 1.0 - chance_positive } else { chance_positive },
        risk: if config.inverse {
            Risk { control: risk_treatment, treatment: risk_control }
        } else {
            Risk { control: risk_control, treatment: risk_treatment }
        },
        uplift: Uplift { mean, stddev },
        guard: None,
        control: a,
        treatment: b,
        theta: arms.theta,
    };
    if let DifferenceType::Scaled { traffic_proportion, phase_length_days } = config.difference {
        let Some(factor) = scale_factor(b.n, traffic_proportion, phase_length_days) else {
            return Ok(uninformative(Guard::ZeroScaledVariation));
        };
        result.expected *= factor;
        result.ci = result.ci.scaled(factor);
        result.uplift = Uplift { mean: result.uplift.mean * factor, stddev: result.uplift.stddev * factor };
    }
    Ok(result)
}

/// The prior on the effect's own scale: a relative prior times |control mean| (variance times
/// its square) for an absolute effect, and the reverse.
fn rescaled_prior(config: &BayesianConfig, relative: bool, control_mean: f64) -> GaussianPrior {
    let p = config.prior;
    match (relative, config.prior_scale) {
        (true, PriorScale::Absolute) => {
            GaussianPrior { mean: p.mean / control_mean.abs(), variance: p.variance / control_mean.powi(2), proper: p.proper }
        }
        (false, PriorScale::Relative) => {
            GaussianPrior { mean: p.mean * control_mean.abs(), variance: p.variance * control_mean.powi(2), proper: p.proper }
        }
        _ => p,
    }
}

/// The normal–normal posterior of the effect: precision-weighted mean, summed precisions.
fn posterior(data_mean: f64, data_variance: f64, prior: &GaussianPrior) -> (f64, f64) {
    if !prior.proper {
        return (data_mean, (1.0 / (1.0 / data_variance)).sqrt());
    }
    let precision = 1.0 / data_variance + 1.0 / prior.variance;
    let mean = (data_mean / data_variance + prior.mean / prior.variance) / precision;
    (mean, (1.0 / precision).sqrt())
}

/// gbstats' `get_risk`: (P(effect > 0) · E[effect | effect > 0], −P(effect < 0) · E[effect |
/// effect < 0]) for effect ~ N(mu, sigma²), in closed form: E[X·1(X>0)] = μΦ(μ/σ) + σφ(μ/σ).
/// The closed form needs no truncated-normal mean, so it stays finite where either tail
/// probability underflows.
fn risk(mu: f64, sigma: f64) -> (f64, f64) {
    let z = mu / sigma;
    let positive_part = mu * normal_cdf(z) + sigma * normal_pdf(z);
    let negative_part = mu * normal_cdf(-z) - sigma * normal_pdf(z);
    (positive_part, -negative_part)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statistics::{Proportion, SampleMean};

    fn conversions(n: u64, successes: u64) -> Statistic {
        Statistic::Proportion(Proportion { n, successes })
    }

    #[test]
    fn a_clear_winner_has_high_chance_to_win_and_little_risk() {
        let r = bayesian_test(&conversions(5000, 500), &conversions(5000, 600), &BayesianConfig::default()).unwrap();
        assert!(r.chance_to_win > 0.99, "{}", r.chance_to_win);
        assert!(r.risk.treatment < 1e-4 && r.risk.control > 0.1);
        assert!(r.ci.lower > 0.0);
    }

    #[test]
    fn inverse_metrics_flip_chance_to_win_and_risk() {
        let plain = bayesian_test(&conversions(5000, 500), &conversions(5000, 540), &BayesianConfig::default()).unwrap();
        let config = BayesianConfig { inverse: true, ..BayesianConfig::default() };
        let inverse = bayesian_test(&conversions(5000, 500), &conversions(5000, 540), &config).unwrap();
        assert!((plain.chance_to_win + inverse.chance_to_win - 1.0).abs() < 1e-12);
        assert_eq!((plain.risk.control, plain.risk.treatment), (inverse.risk.treatment, inverse.risk.control));
    }

    #[test]
    fn a_proper_prior_shrinks_the_effect_towards_its_mean() {
        let (a, b) = (conversions(300, 30), conversions(300, 45));
        let flat = bayesian_test(&a, &b, &BayesianConfig::default()).unwrap();
        let config = BayesianConfig { prior: GaussianPrior::normal(0.0, 0.1), ..BayesianConfig::default() };
        let shrunk = bayesian_test(&a, &b, &config).unwrap();
        assert!(shrunk.expected > 0.0 && shrunk.expected < flat.expected);
        assert!(shrunk.uplift.stddev < flat.uplift.stddev);
    }

    #[test]
    fn risk_matches_the_truncated_normal_expectations() {
        // Numerically: E[max(X, 0)] for X ~ N(0.3, 1) by a fine midpoint sum.
        let (mu, sigma) = (0.3, 1.0);
        let step = 1e-4;
        let integral: f64 = (0..200_000)
            .map(|i| {
                let x = (i as f64 + 0.5) * step - 10.0;
                x.max(0.0) * normal_pdf((x - mu) / sigma) / sigma * step
            })
            .sum();
        let (control, treatment) = risk(mu, sigma);
        assert!((control - integral).abs() < 1e-8, "{control} vs {integral}");
        // E[max(X,0)] − E[max(−X,0)] = E[X].
        assert!((control - treatment - mu).abs() < 1e-12);
    }

    #[test]
    fn empty_and_constant_variations_are_guarded() {
        let empty = Statistic::SampleMean(SampleMean { n: 0, sum: 0.0, sum_squares: 0.0 });
        let some = Statistic::SampleMean(SampleMean { n: 10, sum: 10.0, sum_squares: 20.0 });
        let absolute = BayesianConfig { difference: DifferenceType::Absolute, ..BayesianConfig::default() };
        assert_eq!(bayesian_test(&some, &empty, &absolute).unwrap().guard, Some(Guard::NoUnits));
        let constant = Statistic::SampleMean(SampleMean { n: 10, sum: 10.0, sum_squares: 10.0 });
        let r = bayesian_test(&some, &constant, &absolute).unwrap();
        assert_eq!((r.guard, r.chance_to_win), (Some(Guard::ZeroOrNegativeVariance), 0.5));
    }
}
