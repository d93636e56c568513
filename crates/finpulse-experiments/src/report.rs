//! An experiment's report: users per variation and the sample-ratio check, then per metric and
//! variation the means, the absolute and relative effect against control with their intervals
//! and p-value (Welch's t-test, or the sequential test's always-valid ones), the Bayesian chance
//! to win and risk, adjusted p-values across the goal metrics (Holm or Benjamini–Hochberg), and
//! a verdict on each guardrail metric.

use crate::bayesian::{BayesianConfig, BayesianResult, GaussianPrior, PriorScale, bayesian_test};
use crate::definition::{Correction, Experiment, MetricDef, Phase, Status};
use crate::effect::{DifferenceType, Guard};
use crate::frequentist::{FrequentistConfig, FrequentistResult, SEQUENTIAL_TUNING_PARAMETER_DEFAULT, sequential_test, welch_t_test};
use crate::guardrail::{GuardrailStatus, bayesian_guardrail};
use crate::metrics::{Exposures, exposures, statistics};
use crate::srm::{SrmCheck, srm_check};
use crate::statistics::Statistic;
use crate::{BookError, benjamini_hochberg, holm};
use finpulse_log::StoreView;
use finpulse_query::QueryOptions;

/// Users in one variation.
#[derive(Debug, Clone, PartialEq)]
pub struct VariationUsers {
    /// The variation's key.
    pub key: String,
    /// Its intended share.
    pub weight: f64,
    /// Users exposed to it (and to no other).
    pub users: u64,
}

/// An effect with its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effect {
    /// The estimate.
    pub estimate: f64,
    /// The interval's lower end.
    pub lower: f64,
    /// Its upper end.
    pub upper: f64,
}

/// A treatment against control on one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Treatment minus control, in the metric's units.
    pub absolute: Effect,
    /// The same as a share of control's mean (delta method).
    pub relative: Effect,
    /// The relative test's p-value.
    pub p_value: f64,
    /// After the correction across goal metrics (`None` for guardrails or no correction).
    pub adjusted_p_value: Option<f64>,
    /// Whether the (adjusted) p-value is below alpha.
    pub significant: bool,
    /// The posterior chance the treatment is better (lower, for an inverse metric).
    pub chance_to_win: f64,
    /// Expected loss choosing control.
    pub risk_control: f64,
    /// Expected loss choosing the treatment.
    pub risk_treatment: f64,
    /// Why a test gave its uninformative answer (gbstats' guard), if it did.
    pub guard: Option<Guard>,
    /// The verdict, for a guardrail metric.
    pub guardrail: Option<GuardrailStatus>,
}

/// One variation on one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct VariationResult {
    /// The variation's key.
    pub key: String,
    /// Users measured.
    pub users: u64,
    /// The metric's mean over them.
    pub mean: f64,
    /// The mean after CUPED (the mean itself without a covariate).
    pub adjusted_mean: f64,
    /// The per-user standard deviation the tests used.
    pub stddev: f64,
    /// Against control (`None` for control).
    pub comparison: Option<Comparison>,
}

/// One metric's results.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricReport {
    /// Its definition.
    pub metric: MetricDef,
    /// The CUPED coefficient θ when a covariate was used.
    pub theta: Option<f64>,
    /// Control first.
    pub variations: Vec<VariationResult>,
}

/// An experiment's report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The experiment's key.
    pub key: String,
    /// Its status.
    pub status: Status,
    /// When it ran.
    pub phases: Vec<Phase>,
    /// Users per variation.
    pub variations: Vec<VariationUsers>,
    /// Users left out for being exposed to several variations.
    pub multiple_variation_users: u64,
    /// Users left out for a variation the experiment does not have.
    pub unknown_variation_users: u64,
    /// Whether the split matches the weights.
    pub srm: SrmCheck,
    /// Per metric.
    pub metrics: Vec<MetricReport>,
    /// The worst guardrail verdict (`None` without guardrail metrics).
    pub guardrails: Option<GuardrailStatus>,
}

/// Runs the experiment's queries over `view` and analyses them.
pub async fn report(view: &StoreView, experiment: &Experiment) -> Result<Report, BookError> {
    let ctx = finpulse_query::session(view, QueryOptions::default()).await.map_err(|e| BookError::Query(e.to_string()))?;
    let def = &experiment.definition;
    let exposed = exposures(&ctx, def).await?;
    let mut data = Vec::with_capacity(def.metrics.len());
    for metric in &def.metrics {
        data.push(statistics(&ctx, def, metric).await?);
    }
    analyse(experiment, &exposed, &data)
}

/// Analyses the statistics of each metric (`data[i]` for `metrics[i]`, one per variation).
pub fn analyse(experiment: &Experiment, exposed: &Exposures, data: &[Vec<Statistic>]) -> Result<Report, BookError> {
    let def = &experiment.definition;
    let weights = def.weights();
    let srm = srm_check(&exposed.users, &weights)?;
    let mut metrics = Vec::with_capacity(def.metrics.len());
    for (metric, stats) in def.metrics.iter().zip(data) {
        metrics.push(analyse_metric(experiment, metric, stats)?);
    }
    correct(experiment, &mut metrics)?;
    let guardrails = metrics
        .iter()
        .filter(|m| m.metric.guardrail)
        .flat_map(|m| m.variations.iter().filter_map(|v| v.comparison.as_ref()?.guardrail))
        .max();
    Ok(Report {
        key: def.key.clone(),
        status: experiment.status,
        phases: experiment.phases.clone(),
        variations: def
            .variations
            .iter()
            .zip(&exposed.users)
            .map(|(v, &users)| VariationUsers { key: v.key.clone(), weight: v.weight, users })
            .collect(),
        multiple_variation_users: exposed.multiple_variations,
        unknown_variation_users: exposed.unknown_variation,
        srm,
        metrics,
        guardrails,
    })
}

fn frequentist(experiment: &Experiment, a: &Statistic, b: &Statistic, difference: DifferenceType) -> Result<FrequentistResult, BookError> {
    let settings = &experiment.definition.analysis;
    let config = FrequentistConfig { alpha: settings.alpha, difference };
    Ok(if settings.sequential {
        sequential_test(a, b, &config, SEQUENTIAL_TUNING_PARAMETER_DEFAULT)?
    } else {
        welch_t_test(a, b, &config)?
    })
}

fn bayesian(experiment: &Experiment, metric: &MetricDef, a: &Statistic, b: &Statistic) -> Result<BayesianResult, BookError> {
    let settings = &experiment.definition.analysis;
    let prior = settings.prior_stddev.map_or(GaussianPrior::FLAT, |s| GaussianPrior::normal(0.0, s));
    let config = BayesianConfig {
        alpha: settings.alpha,
        inverse: metric.inverse,
        difference: DifferenceType::Relative,
        prior,
        prior_scale: PriorScale::Relative,
    };
    Ok(bayesian_test(a, b, &config)?)
}

/// The metric's total in a variation (conversions, events, the summed field; a ratio's
/// numerator): what decides whether a guardrail has enough data.
fn total(s: &Statistic) -> f64 {
    match s {
        Statistic::SampleMean(m) => m.sum,
        Statistic::Proportion(p) => p.successes as f64,
        Statistic::Ratio(r) => r.numerator.sum(),
        Statistic::RegressionAdjusted(r) => r.post.sum(),
    }
}

fn effect(r: &FrequentistResult) -> Effect {
    Effect { estimate: r.expected, lower: r.ci.lower, upper: r.ci.upper }
}

fn analyse_metric(experiment: &Experiment, metric: &MetricDef, stats: &[Statistic]) -> Result<MetricReport, BookError> {
    let def = &experiment.definition;
    let Some(control) = stats.first() else { return Ok(MetricReport { metric: metric.clone(), theta: None, variations: Vec::new() }) };
    let mut variations = Vec::with_capacity(stats.len());
    let mut theta = None;
    let mut control_row = None;
    for (i, treatment) in stats.iter().enumerate().skip(1) {
        let relative = frequentist(experiment, control, treatment, DifferenceType::Relative)?;
        let absolute = frequentist(experiment, control, treatment, DifferenceType::Absolute)?;
        let bayes = bayesian(experiment, metric, control, treatment)?;
        theta = relative.theta;
        let guard = relative.guard.or(absolute.guard).or(bayes.guard);
        let guardrail = metric.guardrail.then(|| bayesian_guardrail(&bayes, total(control), total(treatment)));
        control_row.get_or_insert_with(|| row(&def.variations[0].key, &relative.control, None));
        variations.push(row(
            &def.variations[i].key,
            &relative.treatment,
            Some(Comparison {
                absolute: effect(&absolute),
                relative: effect(&relative),
                p_value: relative.p_value,
                adjusted_p_value: None,
                significant: guard.is_none() && relative.p_value < def.analysis.alpha,
                chance_to_win: bayes.chance_to_win,
                risk_control: bayes.risk.control,
                risk_treatment: bayes.risk.treatment,
                guard,
                guardrail,
            }),
        ));
    }
    variations.insert(0, control_row.expect("an experiment has at least two variations"));
    Ok(MetricReport { metric: metric.clone(), theta, variations })
}

fn row(key: &str, arm: &crate::statistics::ArmSummary, comparison: Option<Comparison>) -> VariationResult {
    VariationResult {
        key: key.to_string(),
        users: arm.n,
        mean: arm.unadjusted_mean,
        adjusted_mean: arm.mean,
        stddev: arm.stddev(),
        comparison,
    }
}

/// Adjusts the goal metrics' p-values together and re-reads significance from them.
fn correct(experiment: &Experiment, metrics: &mut [MetricReport]) -> Result<(), BookError> {
    let settings = &experiment.definition.analysis;
    let adjust = match settings.correction {
        Correction::None => return Ok(()),
        Correction::Holm => holm,
        Correction::BenjaminiHochberg => benjamini_hochberg,
    };
    let p_values: Vec<f64> = (metrics.iter().filter(|m| !m.metric.guardrail))
        .flat_map(|m| m.variations.iter().filter_map(|v| v.comparison.as_ref().map(|c| c.p_value)))
        .collect();
    let adjusted = adjust(&p_values)?;
    let mut next = adjusted.into_iter();
    for m in metrics.iter_mut().filter(|m| !m.metric.guardrail) {
        for c in m.variations.iter_mut().filter_map(|v| v.comparison.as_mut()) {
            let p = next.next().expect("one adjusted p-value per comparison");
            c.adjusted_p_value = Some(p);
            c.significant = c.guard.is_none() && p < settings.alpha;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::{AnalysisSettings, ExperimentDef, MetricKind, Targeting, VariationDef};
    use crate::statistics::Proportion;

    fn metric(name: &str, guardrail: bool, inverse: bool) -> MetricDef {
        MetricDef {
            name: name.into(),
            kind: MetricKind::Conversion,
            event: "deposit".into(),
            field: None,
            denominator: None,
            window_days: 7,
            pre_window_days: None,
            inverse,
            guardrail,
        }
    }

    fn experiment(metrics: Vec<MetricDef>, correction: Correction) -> Experiment {
        Experiment {
            definition: ExperimentDef {
                key: "e".into(),
                description: String::new(),
                variations: vec![
                    VariationDef { key: "control".into(), weight: 0.5 },
                    VariationDef { key: "treatment".into(), weight: 0.5 },
                ],
                traffic_share: 1.0,
                targeting: Targeting::default(),
                layer: None,
                metrics,
                analysis: AnalysisSettings { correction, ..AnalysisSettings::default() },
            },
            status: Status::Running,
            phases: Vec::new(),
        }
    }

    fn conversions(pairs: &[(u64, u64)]) -> Vec<Statistic> {
        pairs.iter().map(|&(n, successes)| Statistic::Proportion(Proportion { n, successes })).collect()
    }

    #[test]
    fn holm_adjusts_goal_metrics_and_leaves_guardrails() {
        let e = experiment(vec![metric("a", false, false), metric("b", false, false), metric("complaints", true, true)], Correction::Holm);
        let exposed = Exposures { users: vec![5000, 5000], multiple_variations: 3, unknown_variation: 0 };
        let data =
            [conversions(&[(5000, 500), (5000, 580)]), conversions(&[(5000, 500), (5000, 505)]), conversions(&[(5000, 100), (5000, 160)])];
        let r = analyse(&e, &exposed, &data).unwrap();
        let a = r.metrics[0].variations[1].comparison.as_ref().unwrap();
        let b = r.metrics[1].variations[1].comparison.as_ref().unwrap();
        assert!(a.p_value < b.p_value);
        assert_eq!(a.adjusted_p_value, Some((a.p_value * 2.0).min(1.0)));
        assert_eq!(b.adjusted_p_value, Some(b.p_value.max(a.p_value * 2.0).min(1.0)));
        assert!(a.significant && !b.significant);
        assert_eq!(r.metrics[0].variations[0].mean, 0.1);
        let guard = r.metrics[2].variations[1].comparison.as_ref().unwrap();
        assert_eq!(guard.adjusted_p_value, None);
        assert_eq!(guard.guardrail, Some(GuardrailStatus::Danger), "complaints rose by 60%");
        assert_eq!(r.guardrails, Some(GuardrailStatus::Danger));
        assert!(!r.srm.mismatch);
        assert_eq!(r.multiple_variation_users, 3);
    }

    #[test]
    fn a_variation_with_no_users_gets_guarded_answers_not_nan() {
        let e = experiment(vec![metric("a", false, false)], Correction::BenjaminiHochberg);
        let exposed = Exposures { users: vec![4000, 0], multiple_variations: 0, unknown_variation: 0 };
        let r = analyse(&e, &exposed, &[conversions(&[(4000, 400), (0, 0)])]).unwrap();
        let c = r.metrics[0].variations[1].comparison.as_ref().unwrap();
        assert!(c.guard.is_some(), "{c:?}");
        assert_eq!((c.p_value, c.chance_to_win, c.relative.estimate), (1.0, 0.5, 0.0));
        assert!(!c.significant);
        assert!(r.srm.mismatch, "4000 against 0 is not a 50/50 split");
        assert_eq!(r.metrics[0].variations[1].users, 0);
    }
}
