//! The distribution functions gbstats takes from scipy.stats (`norm`, `t`, `chi2`), on `statrs`.

use crate::ExperimentError;
use statrs::distribution::{ChiSquared, Continuous, ContinuousCDF, Normal, StudentsT};

/// Newton steps [`students_t_ppf`] takes at most to polish statrs' quantile; from statrs' start
/// it needs fewer than ten even at ten million degrees of freedom.
const NEWTON_STEPS_MAX: usize = 100;

fn standard_normal() -> Normal {
    // Proof: mean 0 and standard deviation 1 are valid parameters.
    Normal::standard()
}

/// Φ(x), the standard normal CDF.
pub(crate) fn normal_cdf(x: f64) -> f64 {
    standard_normal().cdf(x)
}

/// Φ⁻¹(p), the standard normal quantile.
pub(crate) fn normal_ppf(p: f64) -> f64 {
    standard_normal().inverse_cdf(p)
}

/// φ(x), the standard normal density.
pub(crate) fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

fn students_t(dof: f64) -> Result<StudentsT, ExperimentError> {
    StudentsT::new(0.0, 1.0, dof).map_err(|_| ExperimentError::DegreesOfFreedom(dof))
}

/// The CDF of Student's t with `dof` (not necessarily whole) degrees of freedom.
pub(crate) fn students_t_cdf(x: f64, dof: f64) -> Result<f64, ExperimentError> {
    Ok(students_t(dof)?.cdf(x))
}

/// The quantile of Student's t with `dof` degrees of freedom, for p in (0, 1).
///
/// statrs' `inverse_cdf` (AS 109 on the incomplete beta) drifts far from scipy's `t.ppf` past
/// about 10⁵ degrees of freedom (off in the second digit at 10⁷), which large experiments reach,
/// while its CDF stays accurate there. So its answer is only the start of Newton's method on the
/// tail probability on p's side, which gives scipy's quantile to within rounding.
pub(crate) fn students_t_ppf(p: f64, dof: f64) -> Result<f64, ExperimentError> {
    let t = students_t(dof)?;
    let mut x = t.inverse_cdf(p);
    if !x.is_finite() {
        x = normal_ppf(p);
    }
    for _ in 0..NEWTON_STEPS_MAX {
        let density = t.pdf(x);
        // d/dx sf = −pdf: solving sf(x) = 1 − p above the median keeps the tail's precision.
        let step = if p >= 0.5 { -(t.sf(x) - (1.0 - p)) / density } else { (t.cdf(x) - p) / density };
        if !step.is_finite() {
            break;
        }
        x -= step;
        if step.abs() <= 4.0 * f64::EPSILON * x.abs() {
            break;
        }
    }
    Ok(x)
}

/// P(χ²_dof > x).
pub(crate) fn chi_squared_sf(x: f64, dof: f64) -> Result<f64, ExperimentError> {
    let chi2 = ChiSquared::new(dof).map_err(|_| ExperimentError::DegreesOfFreedom(dof))?;
    Ok(chi2.sf(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_scipy_from_few_to_ten_million_degrees_of_freedom() {
        // scipy.stats.t.ppf(p, dof), scipy 1.17.
        let cases = [
            (0.975, 1e7, 1.959_964_221_767_205),
            (0.95, 1e6, 1.644_855_150_722_040_4),
            (0.975, 2.5, 3.574_654_842_003_681_7),
            (0.9995, 30.0, 3.645_958_635_042_062_7),
            (0.025, 1e5, -1.959_987_707_534_61),
        ];
        for (p, dof, scipy) in cases {
            let ours = students_t_ppf(p, dof).unwrap();
            // statrs' CDF itself carries ~1e-8 at 10⁷ degrees of freedom (its log-gamma
            // differences cancel); statrs' own quantile is off by 7% there (1.83 for 1.96).
            assert!((ours - scipy).abs() < 1e-7, "t.ppf({p}, {dof}): {ours} vs {scipy}");
        }
    }

    #[test]
    fn impossible_degrees_of_freedom_are_an_error_not_nan() {
        assert_eq!(students_t_cdf(1.0, 0.0), Err(ExperimentError::DegreesOfFreedom(0.0)));
        assert!(matches!(students_t_ppf(0.5, f64::NAN), Err(ExperimentError::DegreesOfFreedom(_))));
    }
}
