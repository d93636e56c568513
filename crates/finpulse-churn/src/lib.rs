//! Churn early warning: who will stop using the product in the next
//! [`ChurnSpec::horizon_days`] days, with a probability and the reasons.
//!
//! - A user has churned as of a moment when they have no qualifying activity
//!   ([`ChurnSpec::activity`]) in the horizon after it. Only users active in the
//!   [`ChurnSpec::active_within_days`] before the moment are scored: the ones still to be kept.
//! - Features ([`features::FEATURES`]) are computed from events strictly before the moment.
//! - Training uses past snapshots whose label windows had closed by the training date, and stops
//!   boosting early on the latest of them (a time-based split), so the reported validation
//!   quality is out of time.

pub mod features;

use features::{FEATURES, Snapshot, active_between, data_end_us, snapshot};
use finpulse_core::registry::Registry;
use finpulse_core::time::{day_label, day_of_us};
use finpulse_log::StoreView;
use finpulse_models::gbdt::GbdtParams;
use finpulse_models::metrics::{self, CalibrationBin, Evaluation};
use finpulse_models::table::{LabelSpec, RawColumn, RawValues, TableError, conform, labelled_from_columns};
use finpulse_models::tabular::{Algo, ModelError, TabularModel};
use serde::{Deserialize, Serialize};

/// Microseconds in a day.
pub use finpulse_core::time::MICROS_PER_DAY as DAY_US;
/// The model registry purpose of churn models.
pub const PURPOSE: &str = "churn";
/// The label column's name in a churn model.
pub const LABEL: &str = "churned";
/// User actions that count as activity unless the caller names others.
pub const ACTIVITY_DEFAULT: &[&str] = &[
    "app_session",
    "login",
    "page_view",
    "deposit",
    "withdrawal",
    "transfer",
    "payment",
    "wealth_purchase",
    "wealth_redemption",
    "loan_application",
    "instalment_purchase",
    "feedback",
];
/// Longest label horizon.
pub const HORIZON_DAYS_MAX: u32 = 366;
/// Most training snapshots.
pub const SNAPSHOTS_MAX: u32 = 52;
/// Ranks at which precision is reported.
pub const PRECISION_AT: &[usize] = &[100, 1000];
/// Probability bins of the calibration table.
pub const CALIBRATION_BINS: usize = 10;

/// Why a churn step failed.
#[derive(Debug, thiserror::Error)]
pub enum ChurnError {
    /// The SQL over the store.
    #[error(transparent)]
    Query(#[from] finpulse_query::QueryError),
    /// Training or applying the model.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Building the feature table.
    #[error(transparent)]
    Table(#[from] TableError),
    /// A setting out of range; the message names it.
    #[error("{0}")]
    Setting(String),
    /// Too little history before the training date.
    #[error("{0}")]
    NoHistory(String),
    /// The label window reaches past the data.
    #[error(
        "the {horizon_days}-day label window after {as_of} ends {label_end}, but the data ends {data_end}: labels are not known yet; pick an earlier date"
    )]
    LabelWindow {
        /// The as-of date.
        as_of: String,
        /// Horizon.
        horizon_days: u32,
        /// Where the label window ends.
        label_end: String,
        /// The last event's day.
        data_end: String,
    },
    /// Nothing to score.
    #[error("no user was active in the {days} days before {as_of}: nothing to score")]
    NoUsers {
        /// The as-of date.
        as_of: String,
        /// The activity window.
        days: u32,
    },
    /// A registry entry without a readable churn definition.
    #[error("the model's training record has no churn definition: {0}")]
    Spec(String),
    /// A defect: Arrow returned an unexpected type.
    #[error("internal: {0}")]
    Internal(String),
}

/// What churn means.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChurnSpec {
    /// Days after the as-of moment in which a user must act to count as retained.
    pub horizon_days: u32,
    /// Event types that count as the user's own activity.
    pub activity: Vec<String>,
    /// Only users with activity in this many days before the moment are scored.
    pub active_within_days: u32,
}

impl Default for ChurnSpec {
    fn default() -> Self {
        Self { horizon_days: 30, activity: ACTIVITY_DEFAULT.iter().map(|s| s.to_string()).collect(), active_within_days: 30 }
    }
}

impl ChurnSpec {
    /// Checks the definition against the store's event types.
    pub fn check(&self, registry: &Registry) -> Result<(), ChurnError> {
        if self.horizon_days == 0 || self.horizon_days > HORIZON_DAYS_MAX {
            return Err(ChurnError::Setting(format!("--horizon-days must be between 1 and {HORIZON_DAYS_MAX}, not {}", self.horizon_days)));
        }
        if self.active_within_days == 0 || self.active_within_days > HORIZON_DAYS_MAX {
            return Err(ChurnError::Setting(format!(
                "--active-within-days must be between 1 and {HORIZON_DAYS_MAX}, not {}",
                self.active_within_days
            )));
        }
        if self.activity.is_empty() {
            return Err(ChurnError::Setting("--activity must name at least one event type".into()));
        }
        for t in &self.activity {
            if registry.type_id(t).is_none() {
                return Err(ChurnError::Setting(format!("--activity: unknown event type '{t}' (see `finpulse schema`)")));
            }
        }
        Ok(())
    }

    /// Reads the definition a churn model was trained with from its registry record.
    pub fn from_training(training: &serde_json::Value) -> Result<Self, ChurnError> {
        let spec = training.get("spec").ok_or_else(|| ChurnError::Spec("no 'spec' field".into()))?;
        serde_json::from_value(spec.clone()).map_err(|e| ChurnError::Spec(e.to_string()))
    }
}

/// How to train.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Past snapshots to learn from (the latest is the validation set).
    pub snapshots: u32,
    /// Days between snapshots.
    pub step_days: u32,
    /// Boosting settings (the validation split is by time, not `valid_fraction`).
    pub gbdt: GbdtParams,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self { snapshots: 4, step_days: 7, gbdt: GbdtParams::default() }
    }
}

/// One training snapshot.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SnapshotSummary {
    /// Its as-of date.
    pub as_of: String,
    /// Users in it.
    pub users: usize,
    /// Share who churned in the horizon after it.
    pub churn_rate: f64,
    /// Whether it was the validation snapshot.
    pub validation: bool,
}

/// What training did.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainReport {
    /// The training date: every label used was known by then.
    pub as_of: String,
    /// The churn definition.
    pub spec: ChurnSpec,
    /// The snapshots, latest first.
    pub snapshots: Vec<SnapshotSummary>,
    /// Out-of-time quality on the validation snapshot.
    pub validation: Evaluation,
    /// Precision among the top-ranked validation users, at [`PRECISION_AT`] ranks.
    pub validation_precision_at: Vec<(usize, f64)>,
}

impl TrainReport {
    /// The registry's training record: the definition and the data range.
    pub fn training_record(&self) -> serde_json::Value {
        serde_json::json!({
            "as_of": self.as_of,
            "spec": self.spec,
            "snapshots": self.snapshots,
            "from": self.snapshots.last().map(|s| s.as_of.clone()),
            "to": self.as_of,
        })
    }
}

/// Labels for `snap`: 1 when the user had no qualifying activity in the horizon after it.
async fn labels(view: &StoreView, spec: &ChurnSpec, snap: &Snapshot) -> Result<Vec<f64>, ChurnError> {
    let end = snap.as_of_us + i64::from(spec.horizon_days) * DAY_US;
    let mut retained = active_between(view, spec, snap.as_of_us, end).await?;
    retained.sort_unstable();
    Ok(snap.users.iter().map(|u| if retained.binary_search(u).is_ok() { 0.0 } else { 1.0 }).collect())
}

fn date(us: i64) -> String {
    day_label(day_of_us(us))
}

async fn check_label_window(view: &StoreView, spec: &ChurnSpec, as_of_us: i64) -> Result<(), ChurnError> {
    let label_end = as_of_us + i64::from(spec.horizon_days) * DAY_US;
    let end = data_end_us(view).await?;
    if end.is_none_or(|e| e < label_end - DAY_US) {
        return Err(ChurnError::LabelWindow {
            as_of: date(as_of_us),
            horizon_days: spec.horizon_days,
            label_end: date(label_end),
            data_end: end.map_or_else(|| "before it starts (the store is empty)".into(), date),
        });
    }
    Ok(())
}

fn append(into: &mut [RawColumn], from: Vec<RawColumn>) {
    for ((_, a), (_, b)) in into.iter_mut().zip(from) {
        match (a, b) {
            (RawValues::Numeric(a), RawValues::Numeric(b)) => a.extend(b),
            (RawValues::Text(a), RawValues::Text(b)) => a.extend(b),
            // Each column's SQL type is fixed by its expression, whatever the snapshot.
            (a, b) => unreachable!("column type changed between snapshots: {a:?} vs {b:?}"),
        }
    }
}

/// Trains a churn model as of `as_of_us`: snapshots at `as_of − horizon − k·step` for
/// `k = 0..snapshots`, whose labels were all known by `as_of`; the `k = 0` snapshot is held out
/// for early stopping and reported as out-of-time validation.
pub async fn train(
    view: &StoreView,
    spec: &ChurnSpec,
    as_of_us: i64,
    options: &TrainOptions,
) -> Result<(TabularModel, TrainReport), ChurnError> {
    spec.check(&view.registry)?;
    if options.snapshots < 2 || options.snapshots > SNAPSHOTS_MAX {
        return Err(ChurnError::Setting(format!(
            "--snapshots must be between 2 and {SNAPSHOTS_MAX} (the latest validates), not {}",
            options.snapshots
        )));
    }
    if options.step_days == 0 {
        return Err(ChurnError::Setting("--step-days must be at least 1".into()));
    }
    let latest = as_of_us - i64::from(spec.horizon_days) * DAY_US;
    check_label_window(view, spec, latest).await?;
    let mut columns: Option<Vec<RawColumn>> = None;
    let (mut all_labels, mut is_valid, mut summaries) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..options.snapshots {
        let at = latest - i64::from(k) * i64::from(options.step_days) * DAY_US;
        let snap = snapshot(view, spec, at).await?;
        let y = labels(view, spec, &snap).await?;
        summaries.push(SnapshotSummary {
            as_of: date(at),
            users: y.len(),
            churn_rate: y.iter().sum::<f64>() / y.len().max(1) as f64,
            validation: k == 0,
        });
        is_valid.extend(std::iter::repeat_n(k == 0, y.len()));
        all_labels.extend(y);
        match &mut columns {
            None => columns = Some(snap.columns),
            Some(c) => append(c, snap.columns),
        }
    }
    let valid_rows = summaries[0].users;
    let train_rows = all_labels.len() - valid_rows;
    if valid_rows == 0 || train_rows == 0 {
        return Err(ChurnError::NoHistory(format!(
            "too little history before {}: {} users in the validation snapshot ({}) and {train_rows} in the earlier ones; train later, or with fewer --snapshots or a smaller --step-days",
            date(as_of_us),
            valid_rows,
            summaries[0].as_of
        )));
    }
    let columns = columns.unwrap_or_default();
    let data = labelled_from_columns(columns, all_labels, LABEL, None)?;
    let params = GbdtParams { valid_fraction: 0.0, ..options.gbdt.clone() };
    let label = LabelSpec { column: LABEL.into(), positive: None };
    let (model, scores) = TabularModel::train_table(&data, label, None, &Algo::Gbdt(params), Some(&is_valid))?;
    let (valid_scores, valid_labels): (Vec<f64>, Vec<f64>) =
        scores.iter().zip(&data.labels).zip(&is_valid).filter(|(_, v)| **v).map(|((s, y), _)| (*s, *y)).unzip();
    let report = TrainReport {
        as_of: date(as_of_us),
        spec: spec.clone(),
        validation: metrics::evaluate(&valid_scores, &valid_labels),
        validation_precision_at: PRECISION_AT.iter().map(|&k| (k, metrics::precision_at_k(&valid_scores, &valid_labels, k))).collect(),
        snapshots: summaries,
    };
    Ok((model, report))
}

/// Why one user is at risk: a feature, its value, and how much it raised the score.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Reason {
    /// Feature name.
    pub feature: String,
    /// The user's value ("" when missing).
    pub value: String,
    /// Raise in log-odds.
    pub contribution: f64,
}

/// One user on the risk list.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RiskRow {
    /// The user.
    pub user_id: String,
    /// Probability of churning in the horizon.
    pub probability: f64,
    /// The strongest reasons, strongest first.
    pub reasons: Vec<Reason>,
}

/// Users ranked by churn risk as of a date.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RiskList {
    /// The as-of date.
    pub as_of: String,
    /// Horizon of the probabilities.
    pub horizon_days: u32,
    /// Active users scored.
    pub users_scored: usize,
    /// Mean probability over them: the expected churn rate.
    pub mean_probability: f64,
    /// Users, highest risk first.
    pub rows: Vec<RiskRow>,
}

fn cell(values: &RawValues, row: usize) -> String {
    match values {
        RawValues::Numeric(v) if v[row].is_nan() => String::new(),
        RawValues::Numeric(v) => format!("{}", (v[row] * 100.0).round() / 100.0),
        RawValues::Text(v) => v[row].clone().unwrap_or_default(),
    }
}

/// Scores every user active before `as_of_us` with `model`, highest risk first.
pub async fn score(view: &StoreView, model: &TabularModel, spec: &ChurnSpec, as_of_us: i64) -> Result<RiskList, ChurnError> {
    spec.check(&view.registry)?;
    let snap = snapshot(view, spec, as_of_us).await?;
    if snap.users.is_empty() {
        return Err(ChurnError::NoUsers { as_of: date(as_of_us), days: spec.active_within_days });
    }
    let table = conform(&snap.columns, &model.features, snap.users.len(), None)?;
    let scored = model.score_table(table, None, true);
    let by_name = |name: &str| snap.columns.iter().find(|c| c.0 == name).map(|c| &c.1);
    let mut rows: Vec<RiskRow> = snap
        .users
        .iter()
        .enumerate()
        .map(|(i, user)| RiskRow {
            user_id: user.clone(),
            probability: scored.scores[i],
            reasons: scored.reasons[i]
                .iter()
                .map(|(feature, contribution)| Reason {
                    feature: feature.clone(),
                    value: by_name(feature).map(|v| cell(v, i)).unwrap_or_default(),
                    contribution: *contribution,
                })
                .collect(),
        })
        .collect();
    rows.sort_by(|a, b| b.probability.total_cmp(&a.probability).then_with(|| a.user_id.cmp(&b.user_id)));
    Ok(RiskList {
        as_of: date(as_of_us),
        horizon_days: spec.horizon_days,
        users_scored: rows.len(),
        mean_probability: scored.scores.iter().sum::<f64>() / rows.len() as f64,
        rows,
    })
}

/// A churn model's quality on one date whose horizon has passed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChurnEvaluation {
    /// The as-of date.
    pub as_of: String,
    /// Horizon.
    pub horizon_days: u32,
    /// AUC, average precision, log loss, Brier score, top-decile lift.
    pub evaluation: Evaluation,
    /// Precision among the top-ranked users, at [`PRECISION_AT`] ranks.
    pub precision_at: Vec<(usize, f64)>,
    /// Predicted against observed churn by probability band.
    pub calibration: Vec<CalibrationBin>,
}

/// Scores the users active before `as_of_us` and compares with who actually churned.
pub async fn evaluate(view: &StoreView, model: &TabularModel, spec: &ChurnSpec, as_of_us: i64) -> Result<ChurnEvaluation, ChurnError> {
    spec.check(&view.registry)?;
    check_label_window(view, spec, as_of_us).await?;
    let snap = snapshot(view, spec, as_of_us).await?;
    if snap.users.is_empty() {
        return Err(ChurnError::NoUsers { as_of: date(as_of_us), days: spec.active_within_days });
    }
    let y = labels(view, spec, &snap).await?;
    let table = conform(&snap.columns, &model.features, snap.users.len(), None)?;
    let p = model.score_table(table, None, false).scores;
    Ok(ChurnEvaluation {
        as_of: date(as_of_us),
        horizon_days: spec.horizon_days,
        evaluation: metrics::evaluate(&p, &y),
        precision_at: PRECISION_AT.iter().map(|&k| (k, metrics::precision_at_k(&p, &y, k))).collect(),
        calibration: metrics::calibration(&p, &y, CALIBRATION_BINS),
    })
}

/// The natural "today" of a store: UTC midnight after its last event (`None` when empty).
pub async fn default_as_of(view: &StoreView) -> Result<Option<i64>, ChurnError> {
    Ok(data_end_us(view).await?.map(|end| (day_of_us(end) + 1) * DAY_US))
}

/// The documented feature list: name and meaning.
pub fn feature_docs() -> Vec<(&'static str, &'static str)> {
    FEATURES.iter().map(|f| (f.name, f.doc)).collect()
}
