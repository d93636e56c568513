//! Adjusted p-values for many metrics (or variations) read at once, so that "one of twenty
//! metrics moved at p < 0.05" is not taken for a finding. Same answers as statsmodels'
//! `multipletests(method="holm")` and `multipletests(method="fdr_bh")`.

use crate::ExperimentError;

/// The most p-values one call adjusts: far beyond metrics × variations of any experiment, and
/// it bounds the sort.
pub const COMPARISONS_MAX: usize = 100_000;

/// Holm's step-down adjustment, controlling the family-wise error rate: the k-th smallest
/// p-value times (m − k + 1), made non-decreasing in that order, capped at 1. Returned in the
/// input's order.
pub fn holm(p_values: &[f64]) -> Result<Vec<f64>, ExperimentError> {
    let order = ascending(p_values)?;
    let m = order.len();
    let mut adjusted = vec![0.0; m];
    let mut running_max = 0.0_f64;
    for (rank, &i) in order.iter().enumerate() {
        running_max = running_max.max(p_values[i] * (m - rank) as f64);
        adjusted[i] = running_max.min(1.0);
    }
    Ok(adjusted)
}

/// Benjamini and Hochberg's step-up adjustment, controlling the false discovery rate: the k-th
/// smallest p-value times m / k, made non-decreasing from the largest down, capped at 1.
/// Returned in the input's order.
pub fn benjamini_hochberg(p_values: &[f64]) -> Result<Vec<f64>, ExperimentError> {
    let order = ascending(p_values)?;
    let m = order.len();
    let mut adjusted = vec![0.0; m];
    let mut running_min = f64::INFINITY;
    for (rank, &i) in order.iter().enumerate().rev() {
        // statsmodels divides by the empirical CDF k/m rather than multiplying by m/k.
        let ecdf = (rank + 1) as f64 / m as f64;
        running_min = running_min.min(p_values[i] / ecdf);
        adjusted[i] = running_min.min(1.0);
    }
    Ok(adjusted)
}

/// Indices of `p_values` from smallest to largest, after checking each lies in [0, 1]. Ties may
/// come in any order: both adjustments give tied p-values the same answer.
fn ascending(p_values: &[f64]) -> Result<Vec<usize>, ExperimentError> {
    if p_values.len() > COMPARISONS_MAX {
        return Err(ExperimentError::TooManyComparisons { comparisons: p_values.len(), max: COMPARISONS_MAX });
    }
    if let Some((index, &value)) = p_values.iter().enumerate().find(|(_, p)| !(0.0..=1.0).contains(*p)) {
        return Err(ExperimentError::PValue { index, value });
    }
    let mut order: Vec<usize> = (0..p_values.len()).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    #[test]
    fn holm_multiplies_by_the_hypotheses_left_and_keeps_order() {
        // Sorted 0.01, 0.03, 0.04 → 0.03, 0.06, 0.06 (the last raised to the running maximum).
        let adjusted = holm(&[0.01, 0.04, 0.03]).unwrap();
        assert!(close(&adjusted, &[0.03, 0.06, 0.06]), "{adjusted:?}");
    }

    #[test]
    fn benjamini_hochberg_steps_up_from_the_largest() {
        // m = 4: 0.01·4/1, 0.02·4/2, 0.03·4/3, 0.5·4/4 → 0.04, 0.04, 0.04, 0.5.
        let adjusted = benjamini_hochberg(&[0.5, 0.03, 0.01, 0.02]).unwrap();
        assert!(close(&adjusted, &[0.5, 0.04, 0.04, 0.04]), "{adjusted:?}");
    }

    #[test]
    fn adjusted_p_values_are_capped_at_one() {
        assert!(close(&holm(&[0.6, 0.7]).unwrap(), &[1.0, 1.0]));
        assert!(holm(&[]).unwrap().is_empty());
    }

    #[test]
    fn p_values_outside_the_unit_interval_are_rejected() {
        assert!(matches!(holm(&[0.1, f64::NAN]), Err(ExperimentError::PValue { index: 1, .. })));
        assert!(matches!(benjamini_hochberg(&[1.5]), Err(ExperimentError::PValue { index: 0, .. })));
    }
}
