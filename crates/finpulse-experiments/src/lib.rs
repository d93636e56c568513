//! finpulse's A/B experiments: what an experiment is, who is in it, and what it did.
//!
//! **Owns**: experiment definitions (variations and weights, targeting, traffic share, layers,
//! metrics, analysis settings) and their life (draft, running, stopped, restarted), kept in
//! the versioned store under `<data-dir>/experiments` ([`ExperimentBook`]); assignment in
//! process ([`Assigner`], GrowthBook-compatible hashing, allocation-free per call); metrics on
//! events turned into per-variation sufficient statistics by SQL over the store
//! ([`metrics`]); and the analysis of those statistics into a [`Report`] — the statistics
//! core below — plus a power / minimum-detectable-effect calculator ([`power`]).
//!
//! The statistics core: the per-variation sufficient statistics ([`SampleMean`],
//! [`Proportion`], [`Ratio`], [`RegressionAdjusted`]); the tests of treatment against control —
//! Welch's t-test, the always-valid sequential test and the Bayesian effect test — with
//! absolute, relative (delta method) and scaled effects and CUPED; the sample-ratio-mismatch
//! check; Holm and Benjamini–Hochberg adjusted p-values across metrics; guardrail verdicts;
//! GrowthBook-compatible bucketing. It does no I/O and reads no clock.
//!
//! **Never does**: HTTP or JSON wire formats (the server and the CLI own those), writing
//! events (exposures are sent as `experiment_exposure` events through the write path like any
//! other), storing assignments (a fixed split makes them reproducible instead).
//!
//! **Reference**: every number is that of GrowthBook's `gbstats` 0.8.0 on the same sufficient
//! statistics (checked to 1e-6 by `tests/gbstats_differential.rs` over thousands of random and
//! degenerate inputs), including its uninformative answers where gbstats guards:
//!
//! | here | gbstats 0.8.0 |
//! |---|---|
//! | [`welch_t_test`] | `frequentist.tests.TwoSidedTTest.compute_result` |
//! | [`sequential_test`] | `frequentist.tests.SequentialTwoSidedTTest.compute_result` |
//! | [`bayesian_test`] | `bayesian.tests.EffectBayesianABTest.compute_result` |
//! | [`regression_adjustment_theta`] | `models.statistics.compute_theta` |
//! | `mean`/`variance` of the statistics | `models.statistics.*Statistic` |
//! | [`srm_p_value`] | `utils.check_srm` |
//! | [`holm`], [`benjamini_hochberg`] | statsmodels `multipletests(method="holm" / "fdr_bh")` |
//! | [`bucket`], [`bucket_ranges`], [`choose_variation`] | the `growthbook` SDK's `gbhash`, `getBucketRanges`, `chooseVariation` |
//! | [`bayesian_guardrail`] | GrowthBook front end's `GuardrailResult` cut-offs |
//!
//! Deliberately absent: gbstats' one-sided t-tests, quantile metrics, a non-zero null
//! (`test_value`), ratio metrics with CUPED, and the runner's rewriting of `expected` for
//! display.

mod assigner;
mod assignment;
mod bayesian;
mod book;
mod correction;
pub mod definition;
mod distribution;
mod effect;
mod frequentist;
mod guardrail;
pub mod metrics;
pub mod power;
pub mod report;
mod srm;
mod statistics;

pub use assigner::{Assigner, Assignment, Members};
pub use book::{EXPERIMENTS_DIR, ExperimentBook};
pub use definition::{Experiment, ExperimentDef, Status};
pub use report::{Report, report};

pub use assignment::{BucketRange, ExperimentSplit, HashVersion, assign_variation, bucket, bucket_ranges, choose_variation, fnv1a32};
pub use bayesian::{BayesianConfig, BayesianResult, GaussianPrior, PriorScale, Risk, bayesian_test};
pub use correction::{COMPARISONS_MAX, benjamini_hochberg, holm};
pub use effect::{DifferenceType, Guard, Interval, Uplift};
pub use frequentist::{FrequentistConfig, FrequentistResult, SEQUENTIAL_TUNING_PARAMETER_DEFAULT, sequential_test, welch_t_test};
pub use guardrail::{
    GUARDRAIL_DANGER_CHANCE_TO_LOSE, GUARDRAIL_LARGER_TOTAL_MIN, GUARDRAIL_SMALLER_TOTAL_MIN, GUARDRAIL_WARNING_CHANCE_TO_LOSE,
    GuardrailStatus, bayesian_guardrail, frequentist_guardrail, has_enough_data,
};
pub use srm::{SRM_P_VALUE_THRESHOLD, SrmCheck, srm_check, srm_p_value};
pub use statistics::{ArmSummary, Moments, Proportion, Ratio, RegressionAdjusted, SampleMean, Statistic, regression_adjustment_theta};

/// The most variations an experiment may have: bounds the SRM check and the bucket ranges.
pub const VARIATIONS_MAX: usize = 256;

/// Why an analysis could not be run at all (degenerate data is not an error: it gets the
/// uninformative answer with a [`Guard`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExperimentError {
    /// Control and treatment (or their post/pre parts) are different kinds of statistic.
    #[error("control is a {control} statistic but treatment is a {treatment} one")]
    StatisticKindMismatch {
        /// The control's kind.
        control: &'static str,
        /// The treatment's kind.
        treatment: &'static str,
    },
    /// A sufficient statistic is infinite or NaN.
    #[error("{name} is not finite: {value}")]
    NonFinite {
        /// Which sum.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// Alpha outside (0, 1).
    #[error("alpha must lie in (0, 1), got {0}")]
    Alpha(f64),
    /// A sequential tuning parameter that is not a positive number.
    #[error("the sequential tuning parameter must be positive, got {0}")]
    TuningParameter(f64),
    /// A proper prior without a finite mean and a positive, finite variance.
    #[error("a proper prior needs a finite mean and a positive finite variance, got mean {mean}, variance {variance}")]
    Prior {
        /// The prior mean.
        mean: f64,
        /// The prior variance.
        variance: f64,
    },
    /// A negative or non-finite traffic proportion for a scaled effect.
    #[error("the traffic proportion must be a non-negative number, got {0}")]
    TrafficProportion(f64),
    /// A phase length that is not a positive number of days.
    #[error("the phase length must be a positive number of days, got {0}")]
    PhaseLength(f64),
    /// Degrees of freedom a distribution cannot take (only reachable through overflowing sums).
    #[error("degrees of freedom out of range: {0}")]
    DegreesOfFreedom(f64),
    /// Different numbers of user counts and weights.
    #[error("{variations} variations but {weights} weights")]
    WeightCount {
        /// User counts given.
        variations: usize,
        /// Weights given.
        weights: usize,
    },
    /// A negative or non-finite traffic weight.
    #[error("traffic weights must be non-negative numbers, got {0}")]
    Weight(f64),
    /// An SRM check needs at least two variations.
    #[error("a sample-ratio check needs at least two variations, got {0}")]
    TooFewVariations(usize),
    /// More variations than [`VARIATIONS_MAX`].
    #[error("{variations} variations exceed the limit of {max}")]
    TooManyVariations {
        /// Variations given.
        variations: usize,
        /// The limit.
        max: usize,
    },
    /// More p-values than [`COMPARISONS_MAX`].
    #[error("{comparisons} p-values exceed the limit of {max}")]
    TooManyComparisons {
        /// P-values given.
        comparisons: usize,
        /// The limit.
        max: usize,
    },
    /// A power calculation's input out of its range.
    #[error("{field}: {message}")]
    PowerInput {
        /// The input.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A p-value outside [0, 1].
    #[error("p-value {index} is {value}, outside [0, 1]")]
    PValue {
        /// Its position.
        index: usize,
        /// Its value.
        value: f64,
    },
}

/// Why an experiment could not be defined, started, stopped or reported on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BookError {
    /// A field of a definition or request is wrong.
    #[error("{field}: {message}")]
    Field {
        /// The field, as definitions name it (`variations[1].weight`, `metrics[0].event`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// Two experiments of a layer that are not stopped would share users.
    #[error("layer '{layer}': {first} {first_range} overlaps {second} {second_range}")]
    LayerOverlap {
        /// The layer.
        layer: String,
        /// The experiment being defined or started.
        first: String,
        /// Its slice.
        first_range: String,
        /// The experiment it clashes with.
        second: String,
        /// That one's slice.
        second_range: String,
    },
    /// No experiment of that key.
    #[error("no experiment '{0}'")]
    NotFound(String),
    /// The change does not apply in the experiment's state (starting a running one).
    #[error("{0}")]
    State(String),
    /// The versioned store could not be read or written.
    #[error("experiment store: {0}")]
    Store(String),
    /// A metric's query failed.
    #[error("query failed: {0}")]
    Query(String),
    /// The analysis refused its inputs.
    #[error("analysis: {0}")]
    Analysis(#[from] ExperimentError),
}

impl BookError {
    /// A field error.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Field { field: field.to_string(), message: message.into() }
    }
}
