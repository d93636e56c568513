//! Fraud models by the protocol of Le Borgne et al.'s handbook, over finpulse's own log:
//! features come from replaying the log through the same live state decisions use, so a model
//! learns exactly what it will see at decision time (fraud labels count only once they have
//! arrived).
//!
//! - Train on payments in `[from, to)`, labelled by the fraud labels that arrived before
//!   `to + delay` (the handbook's delay period: chargebacks still on their way are unknown).
//! - Score and evaluate a later period: AUC ROC, average precision, and card precision@100 per
//!   day, after removing cards already known compromised (a fraud label arrived before that
//!   day) and cards detected on earlier test days, as the handbook does.

use crate::engine::FraudModel;
use finpulse_core::Event;
use finpulse_core::time::MICROS_PER_DAY;
use finpulse_log::EventStore;
use finpulse_models::gbdt::GbdtParams;
use finpulse_models::metrics;
use finpulse_models::table::{LabelSpec, RawColumn, RawValues, labelled_from_columns};
use finpulse_models::tabular::{Algo, ModelError, TabularModel};
use finpulse_state::features::{FeatureRow, Num, model_features};
use finpulse_state::{Kind, LiveState, StateError, Vocabulary, key};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The model registry purpose of fraud models.
pub const PURPOSE: &str = "fraud";
/// The card precision cut-off (the handbook's k).
pub const CARD_PRECISION_K: usize = 100;

/// GBDT settings for fraud models: many small trees learnt slowly, with an L2 penalty, and every
/// labelled fraud kept for training (no early-stopping holdout: a week holds a few hundred
/// frauds, and a tenth held out is a tenth not learnt from). Chosen on the handbook's data
/// (`bench/fraud_handbook.py`) and checked on the demo's; `fraud train`'s flags change them.
pub fn training_params() -> GbdtParams {
    GbdtParams { rounds_max: 400, learning_rate: 0.05, leaves_max: 7, l2: 1.0, early_stopping_rounds: 0, ..GbdtParams::default() }
}

/// Why a fraud command failed.
#[derive(Debug, thiserror::Error)]
pub enum FraudError {
    /// The log or state.
    #[error(transparent)]
    State(#[from] StateError),
    /// Training or scoring.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The period asked for.
    #[error("{0}")]
    Period(String),
    /// The model registry.
    #[error(transparent)]
    Registry(#[from] finpulse_models::registry::RegistryError),
    /// A registered model that does not fit the decision features.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
}

/// The active fraud model of a data directory (or a registered `version`), bound to the
/// decision features; `None` when no fraud model is active.
pub fn registered_model(data_dir: &Path, version: Option<u32>) -> Result<Option<FraudModel>, FraudError> {
    use finpulse_models::registry::{ModelRegistry, RegistryError};
    let registry = ModelRegistry::in_data_dir(data_dir)?;
    let found = match version {
        Some(v) => registry.get(PURPOSE, v)?,
        None => match registry.active(PURPOSE) {
            Ok(x) => x,
            Err(RegistryError::Store(finpulse_core::versions::VersionsError::NoActive { .. })) => return Ok(None),
            Err(e) => return Err(e.into()),
        },
    };
    let (entry, model) = found;
    let scorer = finpulse_models::row::TabularRowScorer::new(model)?;
    Ok(Some(FraudModel::new(Some(entry.version), std::sync::Arc::new(scorer))?))
}

/// The first day a registered fraud model was trained on (UTC midnight, microseconds), as its
/// registry entry records it; `None` for an unknown version or one registered without it.
pub fn training_start_us(data_dir: &Path, version: u32) -> Result<Option<i64>, FraudError> {
    let registry = finpulse_models::registry::ModelRegistry::in_data_dir(data_dir)?;
    let (entry, _) = registry.get(PURPOSE, version)?;
    Ok(entry.meta.training.get("from").and_then(|v| v.as_str()).and_then(finpulse_core::time::parse_date_us))
}

impl From<finpulse_log::StoreError> for FraudError {
    fn from(e: finpulse_log::StoreError) -> Self {
        Self::State(StateError::Store(e))
    }
}

/// Kinds of events that change the features (others are skipped when replaying for training).
fn feeds_features(k: Kind) -> bool {
    matches!(
        k,
        Kind::Payment
            | Kind::Transfer
            | Kind::Withdrawal
            | Kind::FraudLabel
            | Kind::Signup
            | Kind::Deposit
            | Kind::LoanOverdue
            | Kind::LoanRepayment
            | Kind::LoanDecision
            | Kind::CreditReport
    )
}

/// The order events are applied in when history is replayed: event time, then, at one instant,
/// what is known before the transactions of that instant, then the event id. It depends on
/// nothing but the events themselves, so the same history gives the same features however it
/// was imported (in time order, type by type, in any file order, interleaved).
fn point_in_time_order(vocab: &Vocabulary, a: &Event, b: &Event) -> std::cmp::Ordering {
    let rank = |e: &Event| u8::from(vocab.kind(e.type_id).is_transaction());
    (a.ts_us, rank(a)).cmp(&(b.ts_us, rank(b))).then_with(|| a.event_id.cmp(&b.event_id))
}

/// Replays a data directory's history in event-time order ([`point_in_time_order`]), not the
/// order it was imported in, calling `on_txn` with each transaction's features against the
/// state of everything that happened before it, for transactions with `from_us <= ts < to_us`
/// of the kinds `want` accepts. A fraud label counts from its own `ts`, the time its verdict
/// arrived: a label imported after the payments it refers to still counts for the payments
/// after its `ts`, and no earlier. Returns every fraud verdict in the log (see [`Labels`]).
///
/// The events before `to_us` that feed the features are held in memory to be sorted (about
/// 300 bytes each).
pub fn replay_transactions(
    data_dir: &Path,
    from_us: i64,
    to_us: i64,
    want: impl Fn(Kind) -> bool,
    mut on_txn: impl FnMut(&Event, &FeatureRow<'_>),
) -> Result<Labels, FraudError> {
    let registry = EventStore::load_registry(data_dir)?;
    let vocab = Vocabulary::new(&registry);
    let mut labels = Labels::default();
    let target = registry.field_id("target_event_id");
    let is_fraud = registry.field_id("is_fraud");
    let mut history: Vec<Event> = Vec::new();
    EventStore::replay(
        data_dir,
        0,
        |_, t| feeds_features(vocab.kind(t)),
        |_, e| {
            if vocab.kind(e.type_id) == Kind::FraudLabel
                && let (Some(finpulse_core::Value::Str(t)), Some(finpulse_core::Value::Bool(f))) =
                    (target.and_then(|f| e.get(f)), is_fraud.and_then(|f| e.get(f)))
            {
                labels.add(t, e.user_id.as_deref(), &e.event_id, e.ts_us, *f);
            }
            // Nothing at or after `to_us` comes before a transaction of the period.
            if e.ts_us < to_us {
                history.push(e);
            }
        },
    )?;
    labels.settle();
    let targets: std::collections::HashSet<u64> = labels.frauds.iter().map(|f| f.2).collect();
    for e in history.iter().filter(|e| vocab.kind(e.type_id).is_transaction()) {
        let k = key(&e.event_id);
        if targets.contains(&k) {
            labels.target_ts.insert(k, e.ts_us);
        }
    }
    history.sort_unstable_by(|a, b| point_in_time_order(&vocab, a, b));
    let mut state = LiveState::new(1);
    for e in &history {
        let kind = vocab.kind(e.type_id);
        if kind != Kind::FraudLabel
            && want(kind)
            && e.ts_us >= from_us
            && let Some(row) = state.features(&vocab, e)
        {
            on_txn(e, &row);
        }
        state.apply(&vocab, e);
    }
    Ok(labels)
}

/// Fraud verdicts seen in the whole log, by the time they arrived (their `ts`), whatever order
/// they were imported in.
#[derive(Default, Debug)]
pub struct Labels {
    /// Event key → its verdicts: (arrival, label event key, fraud), in arrival order.
    by_event: HashMap<u64, Vec<(i64, u64, bool)>>,
    /// Fraud verdicts: (user key, arrival, target event key).
    frauds: Vec<(u64, i64, u64)>,
    /// Target event key → the payment's time, for the targets found in the replayed history.
    target_ts: HashMap<u64, i64>,
}

impl Labels {
    fn add(&mut self, target_event_id: &str, user_id: Option<&str>, label_id: &str, ts_us: i64, fraud: bool) {
        let target = key(target_event_id);
        self.by_event.entry(target).or_default().push((ts_us, key(label_id), fraud));
        if let (true, Some(u)) = (fraud, user_id) {
            self.frauds.push((key(u), ts_us, target));
        }
    }

    /// When each user's first fraud label arrived, counting frauds on payments made at or after
    /// `since_us` only (`i64::MIN`: all of them). The handbook counts a card as known
    /// compromised from frauds since its training period began.
    pub fn first_fraud_by_user(&self, since_us: i64) -> HashMap<u64, i64> {
        let mut first: HashMap<u64, i64> = HashMap::new();
        for &(user, arrived, target) in &self.frauds {
            // A target not in the replayed history was paid before it began, or after it ended.
            let paid = self.target_ts.get(&target).copied().unwrap_or(i64::MIN);
            if since_us == i64::MIN || paid >= since_us {
                let t = first.entry(user).or_insert(arrived);
                *t = (*t).min(arrived);
            }
        }
        first
    }

    /// Puts each event's verdicts in arrival order (ties by the label's id), so "the latest"
    /// does not depend on the import order.
    fn settle(&mut self) {
        for v in self.by_event.values_mut() {
            v.sort_unstable();
        }
    }

    /// Whether the event's latest verdict that arrived before `known_by_us` says fraud.
    pub fn fraud_known_by(&self, event_id: &str, known_by_us: i64) -> bool {
        self.by_event.get(&key(event_id)).and_then(|v| v.iter().rev().find(|(t, _, _)| *t < known_by_us)).is_some_and(|v| v.2)
    }
}

/// Payments of a period with their features.
pub struct Dataset {
    /// Event ids.
    pub event_ids: Vec<String>,
    /// Users.
    pub user_ids: Vec<String>,
    /// Times.
    pub ts_us: Vec<i64>,
    /// One column per feature of [`model_features`], in that order.
    pub columns: Vec<(&'static str, Vec<f64>)>,
    /// Labels over the whole log (shared by the periods cut from one replay).
    pub labels: Arc<Labels>,
}

impl Dataset {
    /// Rows.
    pub fn len(&self) -> usize {
        self.event_ids.len()
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.event_ids.is_empty()
    }
    /// The payments with `from_us <= ts < to_us`, sharing the labels. Rows are in time order
    /// (the replay's), so a period is one run of them.
    pub fn between(&self, from_us: i64, to_us: i64) -> Dataset {
        let a = self.ts_us.partition_point(|&t| t < from_us);
        let b = self.ts_us.partition_point(|&t| t < to_us).max(a);
        Dataset {
            event_ids: self.event_ids[a..b].to_vec(),
            user_ids: self.user_ids[a..b].to_vec(),
            ts_us: self.ts_us[a..b].to_vec(),
            columns: self.columns.iter().map(|(n, c)| (*n, c[a..b].to_vec())).collect(),
            labels: Arc::clone(&self.labels),
        }
    }

    /// A row's features, as a decision would see them.
    pub fn row(&self, i: usize) -> FeatureRow<'static> {
        let mut r = FeatureRow::default();
        for (def, (_, col)) in model_features().zip(&self.columns) {
            r.set(def.id, col[i]);
        }
        r
    }
}

/// Collects the card payments of `[from_us, to_us)` with their features.
pub fn payments(data_dir: &Path, from_us: i64, to_us: i64) -> Result<Dataset, FraudError> {
    if to_us <= from_us {
        return Err(FraudError::Period("--to must be after --from".into()));
    }
    let inputs: Vec<Num> = model_features().map(|d| d.id).collect();
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); inputs.len()];
    let (mut event_ids, mut user_ids, mut ts_us) = (Vec::new(), Vec::new(), Vec::new());
    let labels = replay_transactions(
        data_dir,
        from_us,
        to_us,
        |k| k == Kind::Payment,
        |e, row| {
            event_ids.push(e.event_id.clone());
            user_ids.push(e.user_id.clone().unwrap_or_default());
            ts_us.push(e.ts_us);
            for (col, &n) in columns.iter_mut().zip(&inputs) {
                col.push(row.get(n));
            }
        },
    )?;
    Ok(Dataset { event_ids, user_ids, ts_us, columns: model_features().map(|d| d.name).zip(columns).collect(), labels: Arc::new(labels) })
}

/// What training did.
#[derive(Debug, Serialize)]
pub struct TrainReport {
    /// Payments trained on.
    pub payments: usize,
    /// Of which labelled fraud by the end of the delay.
    pub frauds_known: usize,
    /// Frauds whose labels arrived only after the delay (trained on as genuine).
    pub frauds_unknown_at_training: usize,
    /// Validation AUC (early stopping split).
    pub valid_auc: Option<f64>,
    /// Rounds kept.
    pub rounds: usize,
    /// Features dropped (constant in the period).
    pub dropped: Vec<String>,
}

/// Trains a GBDT on `[from_us, to_us)` with the labels known by `to_us + delay_days`.
pub fn train(
    data_dir: &Path,
    from_us: i64,
    to_us: i64,
    delay_days: u32,
    params: &GbdtParams,
) -> Result<(TabularModel, TrainReport), FraudError> {
    train_on(&payments(data_dir, from_us, to_us)?, to_us, delay_days, params)
}

/// Trains a GBDT on the payments of `data`, a period ending at `to_us`, with the labels known
/// by `to_us + delay`.
pub fn train_on(data: &Dataset, to_us: i64, delay_days: u32, params: &GbdtParams) -> Result<(TabularModel, TrainReport), FraudError> {
    if data.is_empty() {
        return Err(FraudError::Period("no payments in the training period".into()));
    }
    let known_by = to_us + i64::from(delay_days) * MICROS_PER_DAY;
    let labels: Vec<f64> = data.event_ids.iter().map(|id| f64::from(u8::from(data.labels.fraud_known_by(id, known_by)))).collect();
    let frauds_known = labels.iter().filter(|&&y| y > 0.0).count();
    let frauds_total = data.event_ids.iter().filter(|id| data.labels.fraud_known_by(id, i64::MAX)).count();
    if frauds_known == 0 {
        return Err(FraudError::Period("no fraud labels known for the training period: widen it or the delay".into()));
    }
    let payments = data.len();
    let raw: Vec<RawColumn> = data.columns.iter().map(|(n, v)| (n.to_string(), RawValues::Numeric(v.clone()))).collect();
    let table = labelled_from_columns(raw, labels, "is_fraud", Some(data.event_ids.clone())).map_err(ModelError::from)?;
    let (model, _) = TabularModel::train_table(
        &table,
        LabelSpec { column: "is_fraud".into(), positive: None },
        Some("event_id".into()),
        &Algo::Gbdt(params.clone()),
        None,
    )?;
    let (valid_auc, rounds) = match &model.learner {
        finpulse_models::tabular::Learner::Gbdt { report, .. } => (report.valid_auc, report.rounds_kept),
        _ => (None, 0),
    };
    let report = TrainReport {
        payments,
        frauds_known,
        frauds_unknown_at_training: frauds_total - frauds_known,
        valid_auc,
        rounds,
        dropped: model.dropped.iter().map(|d| d.0.clone()).collect(),
    };
    Ok((model, report))
}

/// One scored payment.
#[derive(Debug, Clone, Serialize)]
pub struct ScoredPayment {
    /// The payment.
    pub event_id: String,
    /// Its user (the card).
    pub user_id: String,
    /// When.
    pub ts_us: i64,
    /// The model's probability.
    pub score: f64,
    /// Fraud by every label in the log.
    pub label: bool,
    /// The card had a fraud label before this payment's (UTC) day began: known compromised.
    pub known_compromised: bool,
}

/// Scores the payments of a dataset with `model`, exactly as decisions would. A card is known
/// compromised on a day when a fraud label on one of its payments made at or after
/// `known_since_us` arrived before that day.
pub fn score(data: &Dataset, model: &FraudModel, known_since_us: i64) -> Vec<ScoredPayment> {
    score_with_labels_by(data, model, known_since_us, i64::MAX)
}

/// [`score`], with each payment's label as the verdicts that arrived before `labels_by_us` say.
pub fn score_with_labels_by(data: &Dataset, model: &FraudModel, known_since_us: i64, labels_by_us: i64) -> Vec<ScoredPayment> {
    let first_fraud = data.labels.first_fraud_by_user(known_since_us);
    (0..data.len())
        .map(|i| {
            let day_start = finpulse_core::time::day_of_us(data.ts_us[i]) * MICROS_PER_DAY;
            ScoredPayment {
                event_id: data.event_ids[i].clone(),
                user_id: data.user_ids[i].clone(),
                ts_us: data.ts_us[i],
                score: model.score(&data.row(i)),
                label: data.labels.fraud_known_by(&data.event_ids[i], labels_by_us),
                known_compromised: first_fraud.get(&key(&data.user_ids[i])).is_some_and(|&t| t < day_start),
            }
        })
        .collect()
}

/// Card precision on one test day.
#[derive(Debug, Clone, Serialize)]
pub struct DayPrecision {
    /// The UTC day (YYYY-MM-DD).
    pub day: String,
    /// Payments evaluated that day.
    pub payments: usize,
    /// Compromised cards among them.
    pub compromised_cards: usize,
    /// Share of the top-k cards by score that were compromised that day.
    pub card_precision: f64,
}

/// The handbook's metrics.
#[derive(Debug, Clone, Serialize)]
pub struct FraudEvaluation {
    /// Payments evaluated (known-compromised cards removed).
    pub payments: usize,
    /// Frauds among them.
    pub frauds: usize,
    /// Payments removed because their card was known compromised.
    pub removed_known_compromised: usize,
    /// AUC ROC.
    pub auc: Option<f64>,
    /// Average precision.
    pub average_precision: Option<f64>,
    /// Mean card precision@k over the days.
    pub card_precision_at_k: f64,
    /// The k.
    pub k: usize,
    /// Per day.
    pub days: Vec<DayPrecision>,
}

/// AUC, AP and card precision@k per day, the handbook's way.
pub fn evaluate(scored: &[ScoredPayment], k: usize) -> FraudEvaluation {
    let kept: Vec<&ScoredPayment> = scored.iter().filter(|s| !s.known_compromised).collect();
    let scores: Vec<f64> = kept.iter().map(|s| s.score).collect();
    let labels: Vec<f64> = kept.iter().map(|s| f64::from(u8::from(s.label))).collect();
    // Days are UTC days, as the periods' dates are.
    let mut by_day: std::collections::BTreeMap<i64, Vec<&ScoredPayment>> = Default::default();
    for s in &kept {
        by_day.entry(finpulse_core::time::day_of_us(s.ts_us)).or_default().push(s);
    }
    let mut detected: std::collections::HashSet<&str> = Default::default();
    let mut days = Vec::new();
    for (day, rows) in by_day {
        // Per card: the highest score and whether any payment that day was fraud.
        let mut cards: HashMap<&str, (f64, bool)> = HashMap::new();
        for s in rows.iter().filter(|s| !detected.contains(s.user_id.as_str())) {
            let c = cards.entry(&s.user_id).or_insert((f64::NEG_INFINITY, false));
            c.0 = c.0.max(s.score);
            c.1 |= s.label;
        }
        let compromised_cards = cards.values().filter(|c| c.1).count();
        let mut ranked: Vec<(&str, f64, bool)> = cards.into_iter().map(|(u, (s, f))| (u, s, f)).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        let top = &ranked[..ranked.len().min(k)];
        let hits: Vec<&str> = top.iter().filter(|c| c.2).map(|c| c.0).collect();
        days.push(DayPrecision {
            day: finpulse_core::time::day_label(day),
            payments: rows.len(),
            compromised_cards,
            card_precision: hits.len() as f64 / k as f64,
        });
        detected.extend(hits);
    }
    FraudEvaluation {
        payments: kept.len(),
        frauds: labels.iter().filter(|&&y| y > 0.0).count(),
        removed_known_compromised: scored.len() - kept.len(),
        auc: metrics::auc(&scores, &labels),
        average_precision: metrics::average_precision(&scores, &labels),
        card_precision_at_k: if days.is_empty() { 0.0 } else { days.iter().map(|d| d.card_precision).sum::<f64>() / days.len() as f64 },
        k,
        days,
    }
}

/// Days each tuning fold validates on (the handbook's assessment week).
pub const TUNE_VALIDATION_DAYS: i64 = 7;
/// Tuning folds by default.
pub const TUNE_FOLDS_DEFAULT: usize = 3;
/// The most tuning folds (each adds a training period's worth of history to replay).
pub const TUNE_FOLDS_MAX: usize = 8;

/// The settings `fraud train --tune` chooses among: tree size, shrinkage and length, each
/// around [`training_params`].
pub fn tuning_grid() -> Vec<GbdtParams> {
    let mut grid = Vec::new();
    for leaves_max in [3, 7, 15] {
        for learning_rate in [0.05, 0.1] {
            for rounds_max in [200, 400] {
                grid.push(GbdtParams { rounds_max, learning_rate, leaves_max, ..training_params() });
            }
        }
    }
    grid
}

/// The periods of one tuning fold (UTC days, `YYYY-MM-DD`, ends exclusive).
#[derive(Debug, Clone, Serialize)]
pub struct FoldPeriods {
    /// First training day.
    pub train_from: String,
    /// Day after the last training day.
    pub train_to: String,
    /// First validation day.
    pub valid_from: String,
    /// Day after the last validation day.
    pub valid_to: String,
}

/// One candidate's measures on the validation weeks.
#[derive(Debug, Clone, Serialize)]
pub struct TuneCandidate {
    /// Its settings.
    pub params: GbdtParams,
    /// Card precision@100 per fold, then their mean.
    pub card_precision: Vec<f64>,
    /// Mean card precision@100.
    pub card_precision_mean: f64,
    /// Mean average precision.
    pub average_precision_mean: f64,
    /// Mean AUC.
    pub auc_mean: f64,
}

/// What tuning tried and chose.
#[derive(Debug, Clone, Serialize)]
pub struct TuneReport {
    /// The folds, latest first.
    pub folds: Vec<FoldPeriods>,
    /// Every candidate, in grid order.
    pub candidates: Vec<TuneCandidate>,
    /// The index of the chosen one: highest mean card precision@100, then average precision.
    pub chosen: usize,
}

/// Chooses GBDT settings for a model trained on `[from_us, to_us)` by prequential validation on
/// the history before it, as the handbook tuned its models: fold `f` trains on a period as long
/// as `[from_us, to_us)` ending a delay before a validation week, the latest week ending at
/// `to_us` and each earlier fold a week before the last. Each candidate is trained on every
/// fold and judged on its validation week by card precision@100 with the labels known at
/// `to_us + delay` (when the real model is trained), never later ones; cards known
/// compromised since the fold's training start are left out, as in `fraud eval`. Nothing
/// of the training period's own future is used.
pub fn tune(
    data_dir: &Path,
    from_us: i64,
    to_us: i64,
    delay_days: u32,
    folds: usize,
    grid: &[GbdtParams],
) -> Result<TuneReport, FraudError> {
    if !(1..=TUNE_FOLDS_MAX).contains(&folds) {
        return Err(FraudError::Period(format!("tuning folds must be 1 to {TUNE_FOLDS_MAX}, not {folds}")));
    }
    if grid.is_empty() {
        return Err(FraudError::Period("no settings to tune among".into()));
    }
    let (week, delay, span) = (TUNE_VALIDATION_DAYS * MICROS_PER_DAY, i64::from(delay_days) * MICROS_PER_DAY, to_us - from_us);
    let periods: Vec<[i64; 4]> = (0..folds as i64)
        .map(|f| {
            let valid_to = to_us - f * week;
            let valid_from = valid_to - week;
            [valid_from - delay - span, valid_from - delay, valid_from, valid_to]
        })
        .collect();
    let all = payments(data_dir, periods[folds - 1][0], to_us)?;
    let known_at = to_us + delay;
    let day = |us: i64| finpulse_core::time::day_label(finpulse_core::time::day_of_us(us));
    let mut sets = Vec::with_capacity(folds);
    for (f, &[train_from, train_to, valid_from, valid_to]) in periods.iter().enumerate() {
        let (train, valid) = (all.between(train_from, train_to), all.between(valid_from, valid_to));
        let why = |what: &str| {
            FraudError::Period(format!(
                "tuning fold {} ({} to {}, validated {} to {}) has {what}: {}",
                f + 1,
                day(train_from),
                day(train_to),
                day(valid_from),
                day(valid_to),
                if f == 0 { "train on a later period" } else { "ask for fewer folds (--tune-folds), or train on a later period" }
            ))
        };
        if train.is_empty() || valid.is_empty() {
            return Err(why("no payments"));
        }
        if !train.event_ids.iter().any(|id| train.labels.fraud_known_by(id, valid_from)) {
            return Err(why("no fraud labelled in its training period"));
        }
        sets.push((train, valid, train_from, train_to));
    }
    let mut candidates = Vec::with_capacity(grid.len());
    for params in grid {
        let (mut cp, mut ap, mut auc) = (Vec::new(), 0.0, 0.0);
        for (train, valid, train_from, train_to) in &sets {
            let (model, _) = train_on(train, *train_to, delay_days, params)?;
            let scorer = finpulse_models::row::TabularRowScorer::new(model)?;
            let model = FraudModel::new(None, Arc::new(scorer))?;
            let e = evaluate(&score_with_labels_by(valid, &model, *train_from, known_at), CARD_PRECISION_K);
            cp.push(e.card_precision_at_k);
            ap += e.average_precision.unwrap_or(0.0);
            auc += e.auc.unwrap_or(0.5);
        }
        let n = sets.len() as f64;
        candidates.push(TuneCandidate {
            params: params.clone(),
            card_precision_mean: cp.iter().sum::<f64>() / n,
            card_precision: cp,
            average_precision_mean: ap / n,
            auc_mean: auc / n,
        });
    }
    let chosen = (0..candidates.len())
        .max_by(|&a, &b| {
            let (x, y) = (&candidates[a], &candidates[b]);
            // The earlier candidate wins a tie: the grid lists smaller models first.
            x.card_precision_mean
                .total_cmp(&y.card_precision_mean)
                .then(x.average_precision_mean.total_cmp(&y.average_precision_mean))
                .then(b.cmp(&a))
        })
        .expect("the grid is not empty");
    let folds = periods
        .iter()
        .map(|p| FoldPeriods { train_from: day(p[0]), train_to: day(p[1]), valid_from: day(p[2]), valid_to: day(p[3]) })
        .collect();
    Ok(TuneReport { folds, candidates, chosen })
}
