//! What every test shares: how the effect is expressed, its point estimate and variance (the
//! delta method for a relative lift), the uninformative answers for degenerate inputs, and the
//! rescaling of an absolute effect to a daily total.

use crate::ExperimentError;

/// How the effect of treatment over control is expressed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DifferenceType {
    /// (treatment − control) / control, its variance by the delta method.
    Relative,
    /// treatment − control, in the metric's own unit.
    Absolute,
    /// The absolute effect scaled to the whole population per day: × n_treatment /
    /// traffic_proportion / phase_length_days (gbstats' "scaled" impact).
    Scaled {
        /// The share of all traffic the treatment received (0 gives an uninformative answer).
        traffic_proportion: f64,
        /// How long the phase has run.
        phase_length_days: f64,
    },
}

impl DifferenceType {
    pub(crate) fn is_relative(&self) -> bool {
        matches!(self, DifferenceType::Relative)
    }

    pub(crate) fn validate(&self) -> Result<(), ExperimentError> {
        if let DifferenceType::Scaled { traffic_proportion, phase_length_days } = *self {
            if !(traffic_proportion.is_finite() && traffic_proportion >= 0.0) {
                return Err(ExperimentError::TrafficProportion(traffic_proportion));
            }
            if !(phase_length_days.is_finite() && phase_length_days > 0.0) {
                return Err(ExperimentError::PhaseLength(phase_length_days));
            }
        }
        Ok(())
    }
}

/// Why a test gave its uninformative answer (gbstats' `errorMessage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// The control mean is 0 (or, for a relative effect, either control mean is): a relative
    /// lift over it is undefined.
    ZeroBaseline,
    /// A variation's variance is zero or negative: nothing to test against.
    ZeroOrNegativeVariance,
    /// A variation has no units (Bayesian test).
    NoUnits,
    /// A scaled effect with a traffic proportion of 0.
    ZeroScaledVariation,
}

impl Guard {
    /// gbstats' message string for this guard.
    pub fn message(&self) -> &'static str {
        match self {
            Guard::ZeroBaseline => "ZERO_NEGATIVE_BASELINE_VARIATION",
            Guard::ZeroOrNegativeVariance => "ZERO_NEGATIVE_VARIANCE",
            Guard::NoUnits => "NO_UNITS_IN_VARIATION",
            Guard::ZeroScaledVariation => "ZERO_SCALED_VARIATION_WEIGHT",
        }
    }
}

/// A two-sided interval; a bound may be infinite.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
}

impl Interval {
    pub(crate) const ZERO: Interval = Interval { lower: 0.0, upper: 0.0 };

    pub(crate) fn scaled(&self, factor: f64) -> Interval {
        Interval { lower: self.lower * factor, upper: self.upper * factor }
    }
}

/// The effect's sampling (frequentist) or posterior (Bayesian) distribution: always normal.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Uplift {
    /// Its mean.
    pub mean: f64,
    /// Its standard deviation.
    pub stddev: f64,
}

impl Uplift {
    pub(crate) const ZERO: Uplift = Uplift { mean: 0.0, stddev: 0.0 };
}

/// The effect's point estimate (gbstats' `frequentist_diff`): the adjusted means' difference,
/// relative to the control's unadjusted mean when asked.
pub(crate) fn point_estimate(mean_a: f64, mean_b: f64, relative: bool, unadjusted_mean_a: f64) -> f64 {
    // gbstats falls back to the adjusted mean when the unadjusted one is 0; every caller has
    // already guarded that case for relative effects, but keep the fallback to stay identical.
    let denominator = if unadjusted_mean_a == 0.0 { mean_a } else { unadjusted_mean_a };
    if relative { (mean_b - mean_a) / denominator } else { mean_b - mean_a }
}

/// The point estimate's variance (gbstats' `frequentist_variance`): for a relative effect the
/// delta method's Var(b)/(a² n_b) + Var(a) b²/(a⁴ n_a), with a and b the unadjusted means.
pub(crate) fn effect_variance(var_a: f64, mean_a: f64, n_a: f64, var_b: f64, mean_b: f64, n_b: f64, relative: bool) -> f64 {
    if relative { var_b / (mean_a.powi(2) * n_b) + var_a * mean_b.powi(2) / (mean_a.powf(4.0) * n_a) } else { var_b / n_b + var_a / n_a }
}

/// The factor that turns an absolute effect into a daily population total; `None` for a
/// traffic proportion of 0.
pub(crate) fn scale_factor(n_b: u64, traffic_proportion: f64, phase_length_days: f64) -> Option<f64> {
    (traffic_proportion != 0.0).then(|| n_b as f64 / traffic_proportion / phase_length_days)
}

/// Rejects an alpha outside (0, 1).
pub(crate) fn validate_alpha(alpha: f64) -> Result<(), ExperimentError> {
    if alpha > 0.0 && alpha < 1.0 { Ok(()) } else { Err(ExperimentError::Alpha(alpha)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_variance_is_the_delta_method() {
        // Var((b − a)/a) ≈ Var(b)/a² + b² Var(a)/a⁴, each per unit over n.
        let v = effect_variance(4.0, 2.0, 100.0, 9.0, 3.0, 50.0, true);
        let expected = 9.0 / (4.0 * 50.0) + 4.0 * 9.0 / (16.0 * 100.0);
        assert!((v - expected).abs() < 1e-15);
        assert_eq!(effect_variance(4.0, 2.0, 100.0, 9.0, 3.0, 50.0, false), 9.0 / 50.0 + 4.0 / 100.0);
    }

    #[test]
    fn guard_messages_are_gbstats_strings() {
        assert_eq!(Guard::ZeroBaseline.message(), "ZERO_NEGATIVE_BASELINE_VARIATION");
        assert_eq!(Guard::ZeroScaledVariation.message(), "ZERO_SCALED_VARIATION_WEIGHT");
    }
}
