//! Rule backtests: a ruleset (and the active model) replayed over a period of history, each
//! transaction decided against the state before it as it would have been live, and compared
//! with the fraud labels known now.

use crate::engine::{Engine, FraudModel, Policy, Reason};
use crate::fraud::{FraudError, replay_transactions};
use crate::ruleset::{Action, Ruleset};
use finpulse_state::{Kind, business_day};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// A 2×2 table: flagged (review or block) against labelled fraud.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Confusion {
    /// Flagged and fraud.
    pub true_positives: u64,
    /// Flagged, not fraud.
    pub false_positives: u64,
    /// Not flagged, fraud.
    pub false_negatives: u64,
    /// Not flagged, not fraud.
    pub true_negatives: u64,
}

impl Confusion {
    fn add(&mut self, flagged: bool, fraud: bool) {
        match (flagged, fraud) {
            (true, true) => self.true_positives += 1,
            (true, false) => self.false_positives += 1,
            (false, true) => self.false_negatives += 1,
            (false, false) => self.true_negatives += 1,
        }
    }
    /// Share of flagged that were fraud; `None` when nothing was flagged.
    pub fn precision(&self) -> Option<f64> {
        let flagged = self.true_positives + self.false_positives;
        (flagged > 0).then(|| self.true_positives as f64 / flagged as f64)
    }
    /// Share of frauds flagged; `None` without frauds.
    pub fn recall(&self) -> Option<f64> {
        let frauds = self.true_positives + self.false_negatives;
        (frauds > 0).then(|| self.true_positives as f64 / frauds as f64)
    }
}

/// One rule's record over the period.
#[derive(Debug, Clone, Serialize)]
pub struct RuleRecord {
    /// The rule.
    pub name: String,
    /// Whether it is a shadow rule.
    pub shadow: bool,
    /// Transactions it hit.
    pub hits: u64,
    /// Of which fraud.
    pub fraud_hits: u64,
    /// fraud_hits / hits.
    pub precision: Option<f64>,
}

/// Alerts on one day.
#[derive(Debug, Clone, Serialize)]
pub struct DayRecord {
    /// The business day.
    pub day: String,
    /// Transactions decided.
    pub transactions: u64,
    /// Reviewed.
    pub reviews: u64,
    /// Blocked.
    pub blocks: u64,
}

/// A backtest's result.
#[derive(Debug, Clone, Serialize)]
pub struct Backtest {
    /// The ruleset's name.
    pub ruleset: String,
    /// The model version used, if any.
    pub model_version: Option<u32>,
    /// Transactions decided.
    pub transactions: u64,
    /// Of which labelled fraud (labels known at the end of the log).
    pub frauds: u64,
    /// Flagged (review or block) against fraud.
    pub confusion: Confusion,
    /// Precision of the flags.
    pub precision: Option<f64>,
    /// Recall of the flags.
    pub recall: Option<f64>,
    /// Per rule, shadow rules included.
    pub rules: Vec<RuleRecord>,
    /// Alert volume per day.
    pub days: Vec<DayRecord>,
}

/// Replays `[from_us, to_us)` deciding every transaction with `ruleset` and `model`.
pub fn backtest(
    data_dir: &Path,
    ruleset: Ruleset,
    model: Option<Arc<FraudModel>>,
    from_us: i64,
    to_us: i64,
) -> Result<Backtest, FraudError> {
    if to_us <= from_us {
        return Err(FraudError::Period("--to must be after --from".into()));
    }
    let name = ruleset.name.clone();
    let rules: Vec<(String, bool)> = ruleset.rules.iter().map(|r| (r.name.clone(), r.shadow)).collect();
    let model_version = model.as_ref().and_then(|m| m.version);
    let engine = Engine { ruleset: Arc::new(ruleset), model, policy: Policy { budget_us: u64::MAX, ..Policy::default() } };
    // (event id, day, action, rule indexes hit)
    let mut decided: Vec<(String, i32, Action, Vec<u16>)> = Vec::new();
    let index: std::collections::HashMap<&str, u16> = rules.iter().enumerate().map(|(i, r)| (r.0.as_str(), i as u16)).collect();
    let labels = replay_transactions(data_dir, from_us, to_us, Kind::is_transaction, |e, row| {
        let d = engine.decide_row(e, row.clone());
        let mut hit: Vec<u16> = d
            .reasons
            .iter()
            .filter_map(|r| match r {
                Reason::Rule { name, .. } => index.get(name.as_str()).copied(),
                _ => None,
            })
            .collect();
        hit.extend(d.shadow_hits.iter().filter_map(|n| index.get(n.as_str()).copied()));
        decided.push((e.event_id.clone(), business_day(e.ts_us), d.action, hit));
    })?;
    let mut confusion = Confusion::default();
    let mut per_rule = vec![(0u64, 0u64); rules.len()];
    let mut days: BTreeMap<i32, DayRecord> = BTreeMap::new();
    for (id, day, action, hit) in &decided {
        let fraud = labels.fraud_known_by(id, i64::MAX);
        confusion.add(*action != Action::Allow, fraud);
        for &r in hit {
            per_rule[r as usize].0 += 1;
            per_rule[r as usize].1 += u64::from(fraud);
        }
        let d = days.entry(*day).or_insert_with(|| DayRecord {
            day: finpulse_core::time::day_label(i64::from(*day)),
            transactions: 0,
            reviews: 0,
            blocks: 0,
        });
        d.transactions += 1;
        d.reviews += u64::from(*action == Action::Review);
        d.blocks += u64::from(*action == Action::Block);
    }
    Ok(Backtest {
        ruleset: name,
        model_version,
        transactions: decided.len() as u64,
        frauds: confusion.true_positives + confusion.false_negatives,
        precision: confusion.precision(),
        recall: confusion.recall(),
        confusion,
        rules: rules
            .into_iter()
            .zip(per_rule)
            .map(|((name, shadow), (hits, fraud_hits))| RuleRecord {
                name,
                shadow,
                hits,
                fraud_hits,
                precision: (hits > 0).then(|| fraud_hits as f64 / hits as f64),
            })
            .collect(),
        days: days.into_values().collect(),
    })
}
