//! How large an effect an experiment can detect, and how many users it needs: the two-sided
//! z-test's power for a treatment against control with equal users and equal spread,
//!
//! power(δ) = Φ(δ/se − z₁₋α/₂) + Φ(−δ/se − z₁₋α/₂), se = σ √(2/n),
//!
//! and its inverse without the far tail, MDE = (z₁₋α/₂ + z_power) · se and
//! n = 2σ² (z₁₋α/₂ + z_power)² / δ². Each treatment is compared with control at `alpha`; with
//! several treatments and a correction the effective alpha is smaller (divide it by the number
//! of comparisons for a Bonferroni bound).

use crate::ExperimentError;
use crate::distribution::{normal_cdf, normal_ppf};

/// Most users per variation a calculation takes (a bound, not a recommendation).
pub const USERS_PER_VARIATION_MAX: u64 = 1_000_000_000_000;

/// What a power calculation starts from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerInput {
    /// The control's mean (a conversion rate for conversions).
    pub mean: f64,
    /// The per-user standard deviation (√(p(1 − p)) for a conversion rate p).
    pub stddev: f64,
    /// The significance level, in (0, 1).
    pub alpha: f64,
    /// The chance of detecting the effect, in (0, 1).
    pub power: f64,
}

impl PowerInput {
    /// For a conversion rate `rate` in (0, 1).
    pub fn conversion(rate: f64, alpha: f64, power: f64) -> Result<Self, ExperimentError> {
        if !(rate > 0.0 && rate < 1.0) {
            return Err(ExperimentError::PowerInput { field: "conversion_rate", message: format!("{rate} is not in (0, 1)") });
        }
        Ok(Self { mean: rate, stddev: (rate * (1.0 - rate)).sqrt(), alpha, power })
    }

    fn check(&self) -> Result<(), ExperimentError> {
        let bad = |field: &'static str, message: String| Err(ExperimentError::PowerInput { field, message });
        if !(self.mean.is_finite() && self.mean != 0.0) {
            return bad("mean", format!("{} is not a non-zero number", self.mean));
        }
        if !(self.stddev.is_finite() && self.stddev > 0.0) {
            return bad("stddev", format!("{} is not a positive number", self.stddev));
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return bad("alpha", format!("{} is not in (0, 1)", self.alpha));
        }
        if !(self.power > 0.0 && self.power < 1.0) {
            return bad("power", format!("{} is not in (0, 1)", self.power));
        }
        Ok(())
    }

    fn z_sum(&self) -> f64 {
        normal_ppf(1.0 - self.alpha / 2.0) + normal_ppf(self.power)
    }
}

/// The smallest effect detected with the input's power.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mde {
    /// In the metric's units.
    pub absolute: f64,
    /// As a share of the control's mean.
    pub relative: f64,
}

fn check_users(users_per_variation: u64) -> Result<f64, ExperimentError> {
    if (2..=USERS_PER_VARIATION_MAX).contains(&users_per_variation) {
        Ok(users_per_variation as f64)
    } else {
        Err(ExperimentError::PowerInput {
            field: "users_per_variation",
            message: format!("{users_per_variation} is not 2 to {USERS_PER_VARIATION_MAX}"),
        })
    }
}

/// The minimum detectable effect with `users_per_variation` users in control and in the
/// treatment.
pub fn minimum_detectable_effect(input: &PowerInput, users_per_variation: u64) -> Result<Mde, ExperimentError> {
    input.check()?;
    let n = check_users(users_per_variation)?;
    let absolute = input.z_sum() * input.stddev * (2.0 / n).sqrt();
    Ok(Mde { absolute, relative: absolute / input.mean.abs() })
}

/// Users per variation needed to detect a relative effect (0.05 for +5%).
pub fn users_needed(input: &PowerInput, relative_effect: f64) -> Result<u64, ExperimentError> {
    input.check()?;
    if !(relative_effect.is_finite() && relative_effect != 0.0) {
        return Err(ExperimentError::PowerInput {
            field: "relative_effect",
            message: format!("{relative_effect} is not a non-zero number"),
        });
    }
    let delta = relative_effect * input.mean;
    let n = (2.0 * input.stddev.powi(2) * input.z_sum().powi(2) / delta.powi(2)).ceil();
    if n > USERS_PER_VARIATION_MAX as f64 {
        return Err(ExperimentError::PowerInput {
            field: "relative_effect",
            message: format!("{relative_effect} needs more than {USERS_PER_VARIATION_MAX} users per variation"),
        });
    }
    Ok((n as u64).max(2))
}

/// The chance a two-sided test at `alpha` detects an absolute effect `effect` with
/// `users_per_variation` users per variation (both tails).
pub fn power_at(effect: f64, stddev: f64, users_per_variation: u64, alpha: f64) -> Result<f64, ExperimentError> {
    let n = check_users(users_per_variation)?;
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(ExperimentError::PowerInput { field: "alpha", message: format!("{alpha} is not in (0, 1)") });
    }
    let se = stddev * (2.0 / n).sqrt();
    let z = normal_ppf(1.0 - alpha / 2.0);
    Ok(normal_cdf(effect / se - z) + normal_cdf(-effect / se - z))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook case: a 10% conversion rate, +10% relative, α = 0.05, 80% power needs
    /// 2 · 0.09 · (1.959964 + 0.841621)² / 0.01² = 14,127.98 → 14,128 users per variation.
    #[test]
    fn users_needed_matches_the_closed_form() {
        let input = PowerInput::conversion(0.1, 0.05, 0.8).unwrap();
        assert_eq!(users_needed(&input, 0.1).unwrap(), 14_128);
        let z: f64 = 1.959_963_984_540_054 + 0.841_621_233_572_914_3;
        let n = (2.0 * 0.09 * z * z / 0.0001_f64).ceil() as u64;
        assert_eq!(users_needed(&input, 0.1).unwrap(), n);
    }

    #[test]
    fn the_mde_is_detected_with_the_asked_power() {
        let input = PowerInput { mean: 250.0, stddev: 900.0, alpha: 0.05, power: 0.8 };
        let mde = minimum_detectable_effect(&input, 20_000).unwrap();
        assert!((mde.absolute - 2.801_585_218 * 900.0 * (2.0_f64 / 20_000.0).sqrt()).abs() < 1e-6, "{mde:?}");
        // The far tail adds Φ(−z_power − 2 z_α/2) ≈ 1e-6.
        let p = power_at(mde.absolute, input.stddev, 20_000, 0.05).unwrap();
        assert!((p - 0.8).abs() < 1e-5, "{p}");
        assert!((mde.relative - mde.absolute / 250.0).abs() < 1e-15);
        // No effect: the power is the test's size.
        assert!((power_at(0.0, 900.0, 20_000, 0.05).unwrap() - 0.05).abs() < 1e-9);
    }

    #[test]
    fn bad_inputs_are_named() {
        assert!(PowerInput::conversion(1.5, 0.05, 0.8).unwrap_err().to_string().starts_with("conversion_rate:"));
        let input = PowerInput { mean: 1.0, stddev: 0.0, alpha: 0.05, power: 0.8 };
        assert!(minimum_detectable_effect(&input, 100).unwrap_err().to_string().starts_with("stddev:"));
        let input = PowerInput { stddev: 1.0, ..input };
        assert!(minimum_detectable_effect(&input, 1).unwrap_err().to_string().starts_with("users_per_variation:"));
        assert!(users_needed(&input, 0.0).unwrap_err().to_string().starts_with("relative_effect:"));
    }
}
