//! Sample-ratio mismatch: whether the users each variation received fit the traffic split the
//! experiment asked for. A mismatch means assignment or logging is broken, and every metric's
//! result is suspect, so it is checked before any of them is read.

use crate::distribution::chi_squared_sf;
use crate::{ExperimentError, VARIATIONS_MAX};

/// Below this p-value the split is flagged as mismatched (GrowthBook's default threshold): low
/// enough that a daily check over a long experiment rarely raises a false alarm.
pub const SRM_P_VALUE_THRESHOLD: f64 = 0.001;

/// The outcome of a sample-ratio-mismatch check.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SrmCheck {
    /// The χ² goodness-of-fit p-value.
    pub p_value: f64,
    /// True when `p_value` < [`SRM_P_VALUE_THRESHOLD`].
    pub mismatch: bool,
}

/// The χ² test of observed users per variation against the expected split `weights` (gbstats'
/// `check_srm`): variations of weight 0 add nothing to the statistic but still count towards
/// its degrees of freedom (variations − 1), and no users at all gives p = 1.
pub fn srm_p_value(users: &[u64], weights: &[f64]) -> Result<f64, ExperimentError> {
    if users.len() != weights.len() {
        return Err(ExperimentError::WeightCount { variations: users.len(), weights: weights.len() });
    }
    if users.len() < 2 {
        return Err(ExperimentError::TooFewVariations(users.len()));
    }
    if users.len() > VARIATIONS_MAX {
        return Err(ExperimentError::TooManyVariations { variations: users.len(), max: VARIATIONS_MAX });
    }
    if let Some(&w) = weights.iter().find(|w| !w.is_finite() || **w < 0.0) {
        return Err(ExperimentError::Weight(w));
    }
    let total_observed: u64 = users.iter().sum();
    if total_observed == 0 {
        return Ok(1.0);
    }
    let total_observed = total_observed as f64;
    let total_weight: f64 = weights.iter().sum();
    let mut statistic = 0.0;
    for (&observed, &weight) in users.iter().zip(weights) {
        if weight <= 0.0 {
            continue;
        }
        let expected = weight / total_weight * total_observed;
        statistic += (observed as f64 - expected).powi(2) / expected;
    }
    chi_squared_sf(statistic, (users.len() - 1) as f64)
}

/// [`srm_p_value`] with the mismatch flag.
pub fn srm_check(users: &[u64], weights: &[f64]) -> Result<SrmCheck, ExperimentError> {
    let p_value = srm_p_value(users, weights)?;
    Ok(SrmCheck { p_value, mismatch: p_value < SRM_P_VALUE_THRESHOLD })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_that_matches_the_weights_is_not_flagged() {
        let check = srm_check(&[5000, 5000], &[0.5, 0.5]).unwrap();
        assert_eq!(check.p_value, 1.0);
        assert!(!check.mismatch);
    }

    #[test]
    fn a_lopsided_split_is_flagged() {
        // 5200 vs 4800 on 50/50: χ² = 16, p ≈ 6.3e-5.
        let check = srm_check(&[5200, 4800], &[0.5, 0.5]).unwrap();
        assert!((check.p_value - 6.334_248_366_623_988e-5).abs() < 1e-12, "{}", check.p_value);
        assert!(check.mismatch);
    }

    #[test]
    fn no_users_is_no_evidence_of_mismatch() {
        assert_eq!(srm_p_value(&[0, 0, 0], &[0.2, 0.3, 0.5]).unwrap(), 1.0);
    }

    #[test]
    fn malformed_inputs_are_typed_errors() {
        assert_eq!(srm_p_value(&[1, 2], &[1.0]), Err(ExperimentError::WeightCount { variations: 2, weights: 1 }));
        assert_eq!(srm_p_value(&[1], &[1.0]), Err(ExperimentError::TooFewVariations(1)));
        assert_eq!(srm_p_value(&[1, 2], &[0.5, -0.5]), Err(ExperimentError::Weight(-0.5)));
    }
}
