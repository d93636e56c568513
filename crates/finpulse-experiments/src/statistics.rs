//! Sufficient statistics of one metric in one variation, and the mean and variance gbstats 0.8.0
//! derives from each (`gbstats/models/statistics.py`), with its guards: a variation with at most
//! one unit has variance 0, an empty one has mean 0, and a ratio over a zero denominator has
//! mean and variance 0. Those zeros are what route a test to its uninformative answer later.

use crate::ExperimentError;

/// A per-unit metric summed over a variation's units: n, Σx and Σx².
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleMean {
    /// Units (users) in the variation.
    pub n: u64,
    /// Σx over those units.
    pub sum: f64,
    /// Σx² over those units.
    pub sum_squares: f64,
}

impl SampleMean {
    /// Σx / n, 0 for an empty variation.
    pub fn mean(&self) -> f64 {
        if self.n == 0 { 0.0 } else { self.sum / self.n as f64 }
    }

    /// The sample variance with Bessel's correction, 0 for one unit or none.
    pub fn variance(&self) -> f64 {
        if self.n <= 1 {
            return 0.0;
        }
        let n = self.n as f64;
        (self.sum_squares - self.sum.powi(2) / n) / (n - 1.0)
    }
}

/// A conversion: how many of a variation's units converted. Σx² = Σx for 0/1 values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Proportion {
    /// Units in the variation.
    pub n: u64,
    /// Units that converted (gbstats' `sum`). Kept whole, so that one unit never has a
    /// positive variance.
    pub successes: u64,
}

impl Proportion {
    /// The conversion rate, 0 for an empty variation.
    pub fn mean(&self) -> f64 {
        if self.n == 0 { 0.0 } else { self.successes as f64 / self.n as f64 }
    }

    /// p (1 − p), the Bernoulli variance (gbstats applies no small-sample correction here).
    pub fn variance(&self) -> f64 {
        let p = self.mean();
        p * (1.0 - p)
    }

    fn sum(&self) -> f64 {
        self.successes as f64
    }
}

/// The two shapes a numerator, denominator, post-period or pre-period metric can take.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Moments {
    /// A per-unit value.
    SampleMean(SampleMean),
    /// A per-unit conversion.
    Proportion(Proportion),
}

impl Moments {
    /// Units counted.
    pub fn n(&self) -> u64 {
        match self {
            Moments::SampleMean(s) => s.n,
            Moments::Proportion(p) => p.n,
        }
    }

    /// Σx.
    pub fn sum(&self) -> f64 {
        match self {
            Moments::SampleMean(s) => s.sum,
            Moments::Proportion(p) => p.sum(),
        }
    }

    /// Σx / n (0 when empty).
    pub fn mean(&self) -> f64 {
        match self {
            Moments::SampleMean(s) => s.mean(),
            Moments::Proportion(p) => p.mean(),
        }
    }

    /// The variance gbstats uses for this shape.
    pub fn variance(&self) -> f64 {
        match self {
            Moments::SampleMean(s) => s.variance(),
            Moments::Proportion(p) => p.variance(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Moments::SampleMean(_) => "sample mean",
            Moments::Proportion(_) => "proportion",
        }
    }

    /// Control and treatment pooled over `n` units, as gbstats' `create_joint_statistic` does;
    /// `None` when the two are of different shapes.
    fn joint(&self, other: &Moments, n: u64) -> Option<Moments> {
        match (self, other) {
            (Moments::Proportion(a), Moments::Proportion(b)) => {
                Some(Moments::Proportion(Proportion { n, successes: a.successes + b.successes }))
            }
            (Moments::SampleMean(a), Moments::SampleMean(b)) => {
                Some(Moments::SampleMean(SampleMean { n, sum: a.sum + b.sum, sum_squares: a.sum_squares + b.sum_squares }))
            }
            _ => None,
        }
    }

    fn check_finite(&self) -> Result<(), ExperimentError> {
        if let Moments::SampleMean(s) = self {
            finite("sum", s.sum)?;
            finite("sum_squares", s.sum_squares)?;
        }
        Ok(())
    }
}

/// A ratio metric (numerator per denominator, e.g. yuan per order), with the cross term Σxy
/// the delta method needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ratio {
    /// Units in the variation.
    pub n: u64,
    /// The numerator's moments.
    pub numerator: Moments,
    /// The denominator's moments.
    pub denominator: Moments,
    /// Σ numerator × denominator over units.
    pub sum_of_products: f64,
}

impl Ratio {
    /// Σnumerator / Σdenominator, 0 when the denominator sums to 0.
    pub fn mean(&self) -> f64 {
        if self.denominator.sum() == 0.0 { 0.0 } else { self.numerator.sum() / self.denominator.sum() }
    }

    /// The delta-method variance of the per-unit ratio, 0 for at most one unit or a zero mean
    /// denominator.
    pub fn variance(&self) -> f64 {
        let d_mean = self.denominator.mean();
        if d_mean == 0.0 || self.n <= 1 {
            return 0.0;
        }
        let m_mean = self.numerator.mean();
        self.numerator.variance() / d_mean.powi(2) - 2.0 * self.covariance() * m_mean / d_mean.powf(3.0)
            + m_mean.powi(2) * self.denominator.variance() / d_mean.powf(4.0)
    }

    /// The sample covariance of numerator and denominator.
    pub fn covariance(&self) -> f64 {
        covariance(self.n, self.sum_of_products, self.numerator.sum(), self.denominator.sum())
    }
}

/// A post-period metric with its pre-period covariate, for CUPED (regression adjustment).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegressionAdjusted {
    /// Units in the variation.
    pub n: u64,
    /// The metric during the experiment.
    pub post: Moments,
    /// The same metric (or another covariate) before it.
    pub pre: Moments,
    /// Σ post × pre over units.
    pub post_pre_sum_of_products: f64,
}

impl RegressionAdjusted {
    /// post mean − θ pre mean.
    pub fn mean(&self, theta: f64) -> f64 {
        self.post.mean() - theta * self.pre.mean()
    }

    /// Var(post) + θ² Var(pre) − 2θ Cov(post, pre), 0 for at most one unit.
    pub fn variance(&self, theta: f64) -> f64 {
        if self.n <= 1 {
            return 0.0;
        }
        self.post.variance() + theta.powi(2) * self.pre.variance() - 2.0 * theta * self.covariance()
    }

    /// The sample covariance of post and pre.
    pub fn covariance(&self) -> f64 {
        covariance(self.n, self.post_pre_sum_of_products, self.post.sum(), self.pre.sum())
    }
}

/// The sample covariance from n, Σxy, Σx and Σy; 0 for at most one unit.
fn covariance(n: u64, sum_of_products: f64, sum_x: f64, sum_y: f64) -> f64 {
    if n <= 1 {
        return 0.0;
    }
    let n = n as f64;
    (sum_of_products - sum_x * sum_y / n) / (n - 1.0)
}

/// θ = Cov(post, pre) / Var(pre) over control and treatment pooled (gbstats' `compute_theta`):
/// the coefficient that removes the most variance shared with the pre-period. 0 when either
/// pooled period has no variance, which the tests read as "adjust nothing".
pub fn regression_adjustment_theta(a: &RegressionAdjusted, b: &RegressionAdjusted) -> Result<f64, ExperimentError> {
    let n = a.n + b.n;
    let mismatch = |x: &Moments, y: &Moments| ExperimentError::StatisticKindMismatch { control: x.kind(), treatment: y.kind() };
    let post = a.post.joint(&b.post, n).ok_or_else(|| mismatch(&a.post, &b.post))?;
    let pre = a.pre.joint(&b.pre, n).ok_or_else(|| mismatch(&a.pre, &b.pre))?;
    if pre.variance() == 0.0 || post.variance() == 0.0 {
        return Ok(0.0);
    }
    let joint = RegressionAdjusted { n, post, pre, post_pre_sum_of_products: a.post_pre_sum_of_products + b.post_pre_sum_of_products };
    Ok(joint.covariance() / pre.variance())
}

/// One variation's sufficient statistics for one metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Statistic {
    /// A per-unit value (revenue per user).
    SampleMean(SampleMean),
    /// A conversion rate.
    Proportion(Proportion),
    /// A ratio of two per-unit sums.
    Ratio(Ratio),
    /// A per-unit value adjusted by its pre-period covariate (CUPED).
    RegressionAdjusted(RegressionAdjusted),
}

impl Statistic {
    /// Units in the variation.
    pub fn n(&self) -> u64 {
        match self {
            Statistic::SampleMean(s) => s.n,
            Statistic::Proportion(p) => p.n,
            Statistic::Ratio(r) => r.n,
            Statistic::RegressionAdjusted(r) => r.n,
        }
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Statistic::SampleMean(_) => "sample mean",
            Statistic::Proportion(_) => "proportion",
            Statistic::Ratio(_) => "ratio",
            Statistic::RegressionAdjusted(_) => "regression adjusted",
        }
    }

    /// Rejects non-finite sums: gbstats would carry a NaN through every number it reports.
    pub(crate) fn check_finite(&self) -> Result<(), ExperimentError> {
        match self {
            Statistic::SampleMean(s) => Moments::SampleMean(*s).check_finite(),
            Statistic::Proportion(_) => Ok(()),
            Statistic::Ratio(r) => {
                r.numerator.check_finite()?;
                r.denominator.check_finite()?;
                finite("sum_of_products", r.sum_of_products)
            }
            Statistic::RegressionAdjusted(r) => {
                r.post.check_finite()?;
                r.pre.check_finite()?;
                finite("post_pre_sum_of_products", r.post_pre_sum_of_products)
            }
        }
    }

    /// This variation as a test sees it, θ applied to a regression-adjusted statistic.
    pub(crate) fn summary(&self, theta: f64) -> ArmSummary {
        let (mean, unadjusted_mean, variance) = match self {
            Statistic::SampleMean(s) => (s.mean(), s.mean(), s.variance()),
            Statistic::Proportion(p) => (p.mean(), p.mean(), p.variance()),
            Statistic::Ratio(r) => (r.mean(), r.mean(), r.variance()),
            Statistic::RegressionAdjusted(r) => (r.mean(theta), r.post.mean(), r.variance(theta)),
        };
        ArmSummary { n: self.n(), mean, unadjusted_mean, variance }
    }
}

impl From<Moments> for Statistic {
    fn from(m: Moments) -> Self {
        match m {
            Moments::SampleMean(s) => Statistic::SampleMean(s),
            Moments::Proportion(p) => Statistic::Proportion(p),
        }
    }
}

/// One variation as a test used it: what gbstats' runner reports as the variation's mean,
/// stddev and users.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArmSummary {
    /// Units.
    pub n: u64,
    /// The (regression-adjusted, where it applies) mean the effect is measured on.
    pub mean: f64,
    /// The plain mean, the denominator of a relative effect.
    pub unadjusted_mean: f64,
    /// The per-unit variance.
    pub variance: f64,
}

impl ArmSummary {
    /// √variance, 0 where the variance is not positive.
    pub fn stddev(&self) -> f64 {
        if self.variance <= 0.0 { 0.0 } else { self.variance.sqrt() }
    }

    pub(crate) fn has_zero_variance(&self) -> bool {
        self.variance <= 0.0
    }
}

fn finite(name: &'static str, value: f64) -> Result<(), ExperimentError> {
    if value.is_finite() { Ok(()) } else { Err(ExperimentError::NonFinite { name, value }) }
}

/// Control and treatment as a test uses them: each arm's summary, and θ when CUPED applied.
pub(crate) struct Arms {
    pub control: ArmSummary,
    pub treatment: ArmSummary,
    pub theta: Option<f64>,
}

/// How a test treats a regression-adjusted pair whose θ comes out 0.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum ZeroTheta {
    /// Fall back to the post-period statistics (gbstats' `BaseABTest`: the frequentist tests).
    UsePostPeriod,
    /// Keep the regression-adjusted statistics with θ = 0 (gbstats' `EffectBayesianABTest`
    /// restores the original objects after its base class swapped them).
    KeepAdjusted,
}

/// Checks the pair and resolves θ the way gbstats 0.8.0's test constructors do.
pub(crate) fn arms(control: &Statistic, treatment: &Statistic, zero_theta: ZeroTheta) -> Result<Arms, ExperimentError> {
    control.check_finite()?;
    treatment.check_finite()?;
    if std::mem::discriminant(control) != std::mem::discriminant(treatment) {
        return Err(ExperimentError::StatisticKindMismatch { control: control.kind(), treatment: treatment.kind() });
    }
    if let (Statistic::RegressionAdjusted(a), Statistic::RegressionAdjusted(b)) = (control, treatment) {
        let theta = regression_adjustment_theta(a, b)?;
        if theta == 0.0 && zero_theta == ZeroTheta::UsePostPeriod {
            let (a, b) = (Statistic::from(a.post), Statistic::from(b.post));
            return Ok(Arms { control: a.summary(0.0), treatment: b.summary(0.0), theta: Some(0.0) });
        }
        return Ok(Arms { control: control.summary(theta), treatment: treatment.summary(theta), theta: Some(theta) });
    }
    Ok(Arms { control: control.summary(0.0), treatment: treatment.summary(0.0), theta: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean(n: u64, values: &[f64]) -> SampleMean {
        assert_eq!(n as usize, values.len());
        SampleMean { n, sum: values.iter().sum(), sum_squares: values.iter().map(|x| x * x).sum() }
    }

    #[test]
    fn sample_variance_uses_bessels_correction_and_guards_one_unit() {
        let s = mean(4, &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.mean(), 2.5);
        assert!((s.variance() - 5.0 / 3.0).abs() < 1e-12);
        assert_eq!(mean(1, &[7.0]).variance(), 0.0);
        assert_eq!(SampleMean { n: 0, sum: 0.0, sum_squares: 0.0 }.mean(), 0.0);
    }

    #[test]
    fn ratio_over_a_zero_denominator_has_no_mean_or_variance() {
        let zero = Moments::SampleMean(SampleMean { n: 10, sum: 0.0, sum_squares: 0.0 });
        let num = Moments::SampleMean(SampleMean { n: 10, sum: 5.0, sum_squares: 9.0 });
        let r = Ratio { n: 10, numerator: num, denominator: zero, sum_of_products: 0.0 };
        assert_eq!(r.mean(), 0.0);
        assert_eq!(r.variance(), 0.0);
    }

    #[test]
    fn theta_is_the_pooled_regression_slope() {
        // post = 2 pre + noise-free: θ must be exactly 2 whatever the split.
        let pre_a = [1.0, 2.0, 3.0];
        let pre_b = [2.0, 5.0, 4.0, 0.0];
        let ra = |pre: &[f64]| {
            let post: Vec<f64> = pre.iter().map(|x| 2.0 * x + 1.0).collect();
            RegressionAdjusted {
                n: pre.len() as u64,
                post: Moments::SampleMean(mean(post.len() as u64, &post)),
                pre: Moments::SampleMean(mean(pre.len() as u64, pre)),
                post_pre_sum_of_products: pre.iter().zip(&post).map(|(x, y)| x * y).sum(),
            }
        };
        let theta = regression_adjustment_theta(&ra(&pre_a), &ra(&pre_b)).unwrap();
        assert!((theta - 2.0).abs() < 1e-12, "{theta}");
        // Adjusted by θ the post-period keeps no variance the pre-period explains.
        assert!(ra(&pre_a).variance(theta).abs() < 1e-9);
    }

    #[test]
    fn mixed_shapes_across_variations_are_rejected() {
        let a = Statistic::Proportion(Proportion { n: 10, successes: 3 });
        let b = Statistic::SampleMean(SampleMean { n: 10, sum: 3.0, sum_squares: 3.0 });
        assert!(matches!(arms(&a, &b, ZeroTheta::UsePostPeriod), Err(ExperimentError::StatisticKindMismatch { .. })));
    }
}
