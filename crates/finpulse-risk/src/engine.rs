//! The decision: a transaction's features against the state before it, the lists, the model's
//! score and the rules, in that order, within a time budget.

use crate::ruleset::{Action, Ruleset};
use finpulse_core::Event;
use finpulse_models::row::RowScorer;
use finpulse_state::features::{FeatureRef, FeatureRow, NUMERIC, Num, Text, lookup};
use finpulse_state::{LiveState, Vocabulary, key};
use serde::Serialize;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

/// Model features named in a decision's reasons.
pub const MODEL_REASONS_MAX: usize = 3;
/// The default time budget of a decision, microseconds.
pub const DECISION_BUDGET_US_DEFAULT: u64 = 20_000;

/// What happens when a decision cannot be made within its budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Allow the transaction.
    Open,
    /// Block it.
    Closed,
}

/// Decision settings.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// The time budget, microseconds, counted from when the request arrived.
    pub budget_us: u64,
    /// What to do past it.
    pub fail_mode: FailMode,
}

impl Default for Policy {
    fn default() -> Self {
        Self { budget_us: DECISION_BUDGET_US_DEFAULT, fail_mode: FailMode::Open }
    }
}

/// Why a model does not fit the features.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The model reads a feature decisions do not have.
    #[error("the model reads {0:?}, which is not a numeric decision feature (`finpulse rules features` lists them)")]
    UnknownFeature(String),
    /// Not a payment, transfer or withdrawal.
    #[error("event type {0:?} does not get decisions: send a payment, transfer or withdrawal")]
    NotATransaction(String),
}

/// A model bound to the decision features.
pub struct FraudModel {
    /// The registry version, when it came from the registry.
    pub version: Option<u32>,
    scorer: Arc<dyn RowScorer>,
    inputs: Vec<Num>,
}

impl FraudModel {
    /// Binds a model to the features by name.
    pub fn new(version: Option<u32>, scorer: Arc<dyn RowScorer>) -> Result<Self, EngineError> {
        let inputs = scorer
            .feature_names()
            .iter()
            .map(|name| match lookup(name) {
                Some(FeatureRef::Num(n)) if n != Num::ModelScore => Ok(n),
                _ => Err(EngineError::UnknownFeature(name.clone())),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { version, scorer, inputs })
    }

    fn vector(&self, row: &FeatureRow<'_>) -> Vec<f64> {
        self.inputs.iter().map(|&n| row.get(n)).collect()
    }

    /// The probability for one row.
    pub fn score(&self, row: &FeatureRow<'_>) -> f64 {
        self.scorer.score_row(&self.vector(row))
    }

    /// The features that pushed the score up most, with their value and contribution.
    pub fn reasons(&self, row: &FeatureRow<'_>) -> Vec<Reason> {
        let x = self.vector(row);
        let mut c = vec![0.0; x.len()];
        self.scorer.contributions_row(&x, &mut c);
        let mut order: Vec<usize> = (0..c.len()).filter(|&i| c[i] > 0.0).collect();
        order.sort_by(|&a, &b| c[b].total_cmp(&c[a]));
        order
            .into_iter()
            .take(MODEL_REASONS_MAX)
            .map(|i| Reason::Model {
                feature: NUMERIC[self.inputs[i] as usize].name,
                value: Some(x[i]).filter(|v| v.is_finite()),
                contribution: c[i],
            })
            .collect()
    }
}

/// Why a decision came out as it did.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// An allow or block list matched.
    List {
        /// Which list.
        list: &'static str,
    },
    /// A rule's condition held.
    Rule {
        /// The rule.
        name: String,
        /// Its score.
        score: f64,
        /// Its action.
        action: Action,
    },
    /// A feature pushed the model's score up.
    Model {
        /// The feature.
        feature: &'static str,
        /// Its value (absent when missing).
        value: Option<f64>,
        /// Its contribution to the log-odds.
        contribution: f64,
    },
}

/// A decision.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Decision {
    /// The transaction.
    pub event_id: String,
    /// Its user.
    pub user_id: Option<String>,
    /// allow, review or block.
    pub action: Action,
    /// In [0, 1]: the highest of the model's score and the scores of the rules that hit.
    pub score: f64,
    /// Lists, rules and model features behind it.
    pub reasons: Vec<Reason>,
    /// Shadow rules that would have hit (recorded, not acted on).
    pub shadow_hits: Vec<String>,
    /// The ruleset's name and version.
    pub ruleset: String,
    /// Its version.
    pub ruleset_version: u32,
    /// The model's registry version, if a model scored it.
    pub model_version: Option<u32>,
    /// The model's probability.
    pub model_score: Option<f64>,
    /// Time from the request's arrival to the decision, microseconds.
    pub elapsed_us: f64,
    /// Set when the decision is the fail-open/closed fallback: why.
    pub fallback: Option<String>,
}

/// The rules, lists and model decisions are made with.
#[derive(Clone)]
pub struct Engine {
    /// The active ruleset.
    pub ruleset: Arc<Ruleset>,
    /// The active model.
    pub model: Option<Arc<FraudModel>>,
    /// Budget and failure mode.
    pub policy: Policy,
}

impl Engine {
    /// Decides `e` against `state` (which must not yet contain it). `started` is when the
    /// request arrived: time spent before counts against the budget.
    pub fn decide(&self, state: &LiveState, vocab: &Vocabulary, e: &Event, started: Instant) -> Result<Decision, EngineError> {
        let Some(row) = state.features(vocab, e) else {
            return Err(EngineError::NotATransaction(vocab.type_name(e.type_id).to_string()));
        };
        Ok(self.decide_features(e, row, started))
    }

    /// Decides a transaction whose features are already computed (replays, backtests).
    pub fn decide_row(&self, e: &Event, row: FeatureRow<'_>) -> Decision {
        self.decide_features(e, row, Instant::now())
    }

    fn decide_features(&self, e: &Event, mut row: FeatureRow<'_>, started: Instant) -> Decision {
        let mut d = self.undecided(e);
        if let Some(list) = self.blocked_by(&row) {
            d.action = Action::Block;
            d.score = 1.0;
            d.reasons.push(Reason::List { list });
        } else if let Some(list) = self.allowed_by(&row) {
            d.reasons.push(Reason::List { list });
        } else {
            if let Some(m) = &self.model {
                let p = m.score(&row);
                row.set(Num::ModelScore, p);
                d.model_score = Some(p);
                d.score = p;
            }
            let mut action = Action::Allow;
            for rule in &self.ruleset.rules {
                if !rule.when.holds(&row) {
                    continue;
                }
                if rule.shadow {
                    d.shadow_hits.push(rule.name.clone());
                    continue;
                }
                action = action.max(rule.action);
                d.score = d.score.max(rule.score);
                d.reasons.push(Reason::Rule { name: rule.name.clone(), score: rule.score, action: rule.action });
            }
            let by_score = if d.score >= self.ruleset.block_at {
                Action::Block
            } else if d.score >= self.ruleset.review_at {
                Action::Review
            } else {
                Action::Allow
            };
            d.action = action.max(by_score);
            if let (Some(m), true) = (&self.model, d.action != Action::Allow || d.model_score.is_some_and(|p| p >= self.ruleset.review_at))
            {
                d.reasons.extend(m.reasons(&row));
            }
        }
        d.elapsed_us = started.elapsed().as_secs_f64() * 1e6;
        if d.elapsed_us > self.policy.budget_us as f64 {
            let why = format!(
                "decided in {:.0} µs, past the {} µs budget; it would have been {}",
                d.elapsed_us,
                self.policy.budget_us,
                d.action.name()
            );
            d.action = fallback_action(self.policy.fail_mode);
            d.fallback = Some(why);
        }
        d
    }

    /// The decision when the engine could not decide in time (state busy, say).
    pub fn fallback(&self, e: &Event, why: String, started: Instant) -> Decision {
        Decision {
            action: fallback_action(self.policy.fail_mode),
            elapsed_us: started.elapsed().as_secs_f64() * 1e6,
            fallback: Some(why),
            ..self.undecided(e)
        }
    }

    /// An allow with no reasons, naming the transaction and the versions in force.
    fn undecided(&self, e: &Event) -> Decision {
        Decision {
            event_id: e.event_id.clone(),
            user_id: e.user_id.clone(),
            action: Action::Allow,
            score: 0.0,
            reasons: Vec::new(),
            shadow_hits: Vec::new(),
            ruleset: self.ruleset.name.clone(),
            ruleset_version: self.ruleset.version,
            model_version: self.model.as_ref().and_then(|m| m.version),
            model_score: None,
            elapsed_us: 0.0,
            fallback: None,
        }
    }

    fn blocked_by(&self, row: &FeatureRow<'_>) -> Option<&'static str> {
        let k = &self.ruleset.keys;
        first_listed(
            row,
            [
                (&k.block_users, Text::UserId, "block_users"),
                (&k.block_devices, Text::TxnDeviceId, "block_devices"),
                (&k.block_terminals, Text::TxnTerminalId, "block_terminals"),
                (&k.block_merchants, Text::TxnMerchantId, "block_merchants"),
                (&k.block_cards, Text::TxnCardNumber, "block_cards"),
            ],
        )
    }

    fn allowed_by(&self, row: &FeatureRow<'_>) -> Option<&'static str> {
        let k = &self.ruleset.keys;
        first_listed(
            row,
            [
                (&k.allow_users, Text::UserId, "allow_users"),
                (&k.allow_devices, Text::TxnDeviceId, "allow_devices"),
                (&k.allow_cards, Text::TxnCardNumber, "allow_cards"),
            ],
        )
    }
}

/// The name of the first list holding the row's value of its feature.
fn first_listed<const N: usize>(row: &FeatureRow<'_>, lists: [(&HashSet<u64>, Text, &'static str); N]) -> Option<&'static str> {
    lists
        .into_iter()
        .find(|(set, t, _)| {
            let v = row.text(*t);
            !set.is_empty() && !v.is_empty() && set.contains(&key(v))
        })
        .map(|(_, _, name)| name)
}

fn fallback_action(mode: FailMode) -> Action {
    match mode {
        FailMode::Open => Action::Allow,
        FailMode::Closed => Action::Block,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use finpulse_core::Registry;

    /// A model whose probability is `txn.amount_fen / 10,000`, with the amount as its reason.
    struct AmountScorer(Vec<String>);

    impl RowScorer for AmountScorer {
        fn feature_names(&self) -> &[String] {
            &self.0
        }
        fn score_row(&self, x: &[f64]) -> f64 {
            (x[0] / 10_000.0).clamp(0.0, 1.0)
        }
        fn contributions_row(&self, x: &[f64], out: &mut [f64]) {
            out[0] = x[0] / 1000.0;
            out[1] = -1.0;
        }
    }

    fn setup(rules: &str, model: bool, policy: Policy) -> (Engine, LiveState, Vocabulary, Registry) {
        let registry = Registry::builtin();
        let vocab = Vocabulary::new(&registry);
        let scorer = AmountScorer(vec!["txn.amount_fen".into(), "user.tx_count_1h".into()]);
        let model = model.then(|| Arc::new(FraudModel::new(Some(3), Arc::new(scorer)).unwrap()));
        let ruleset = Ruleset::compile(rules, "r.toml").unwrap();
        (Engine { ruleset: Arc::new(ruleset), model, policy }, LiveState::new(1), vocab, registry)
    }

    fn payment(registry: &Registry, user: &str, device: &str, amount: i64) -> Event {
        let f = |n: &str| registry.field_id(n).unwrap();
        let mut fields = vec![
            (f("amount_fen"), finpulse_core::Value::Int(amount)),
            (f("currency"), finpulse_core::Value::Str("CNY".into())),
            (f("terminal_id"), finpulse_core::Value::Str("t1".into())),
            (f("device_id"), finpulse_core::Value::Str(device.into())),
        ];
        fields.sort_by_key(|x| x.0);
        Event {
            event_id: "e1".into(),
            user_id: Some(user.into()),
            ts_us: 1_780_000_000_000_000,
            type_id: registry.type_id("payment").unwrap(),
            fields,
        }
    }

    const LISTS: &str = "name = \"l\"\n[lists]\nblock_devices = [\"bad\"]\nallow_users = [\"vip\"]\n[[rule]]\nname = \"any\"\nwhen = \"true\"\naction = \"block\"\nscore = 1.0\n";

    #[test]
    fn a_block_list_wins_over_an_allow_list_which_wins_over_the_rules() {
        let (engine, state, vocab, reg) = setup(LISTS, false, Policy::default());
        let decide = |user: &str, device: &str| engine.decide(&state, &vocab, &payment(&reg, user, device, 100), Instant::now()).unwrap();
        let d = decide("vip", "bad");
        assert_eq!((d.action, &d.reasons[..]), (Action::Block, &[Reason::List { list: "block_devices" }][..]));
        let d = decide("vip", "ok");
        assert_eq!((d.action, &d.reasons[..]), (Action::Allow, &[Reason::List { list: "allow_users" }][..]));
        let d = decide("someone", "ok");
        assert_eq!(d.action, Action::Block);
        assert!(matches!(&d.reasons[0], Reason::Rule { name, .. } if name == "any"));
    }

    #[test]
    fn the_model_score_sets_the_action_by_threshold_and_names_the_features_that_raised_it() {
        let rules = "name = \"m\"\nreview_at = 0.5\nblock_at = 0.9\n[[rule]]\nname = \"model_and_amount\"\nwhen = \"model.score > 0.6 and txn.amount_fen < 7000\"\nscore = 0.3\nshadow = true\n";
        let (engine, state, vocab, reg) = setup(rules, true, Policy::default());
        let decide = |amount| engine.decide(&state, &vocab, &payment(&reg, "u", "d", amount), Instant::now()).unwrap();
        let d = decide(1_000);
        assert_eq!((d.action, d.model_score, d.model_version), (Action::Allow, Some(0.1), Some(3)));
        assert!(d.reasons.is_empty(), "no reasons for a quiet allow: {:?}", d.reasons);
        let d = decide(6_500);
        assert_eq!(d.action, Action::Review);
        assert_eq!(d.reasons, [Reason::Model { feature: "txn.amount_fen", value: Some(6_500.0), contribution: 6.5 }]);
        assert_eq!(d.shadow_hits, ["model_and_amount"], "rules read the model's score");
        assert_eq!(decide(9_500).action, Action::Block);
    }

    #[test]
    fn past_its_budget_a_decision_fails_open_or_closed_and_says_why() {
        let started = Instant::now() - std::time::Duration::from_millis(5);
        for (mode, action) in [(FailMode::Open, Action::Allow), (FailMode::Closed, Action::Block)] {
            let (engine, state, vocab, reg) = setup(LISTS, false, Policy { budget_us: 1_000, fail_mode: mode });
            let d = engine.decide(&state, &vocab, &payment(&reg, "someone", "ok", 100), started).unwrap();
            assert_eq!(d.action, action);
            let why = d.fallback.unwrap();
            assert!(why.contains("past the 1000 µs budget; it would have been block"), "{why}");
        }
    }

    #[test]
    fn only_transactions_get_decisions_and_a_model_must_read_known_features() {
        let (engine, state, vocab, reg) = setup(LISTS, false, Policy::default());
        let mut deposit = payment(&reg, "u", "d", 5);
        deposit.type_id = reg.type_id("deposit").unwrap();
        let e = engine.decide(&state, &vocab, &deposit, Instant::now()).unwrap_err().to_string();
        assert!(e.contains("\"deposit\" does not get decisions"), "{e}");
        let bad = FraudModel::new(None, Arc::new(AmountScorer(vec!["txn.amount_yuan".into()]))).err().unwrap().to_string();
        assert!(bad.contains("\"txn.amount_yuan\""), "{bad}");
        let text = FraudModel::new(None, Arc::new(AmountScorer(vec!["txn.type".into()]))).err().unwrap().to_string();
        assert!(text.contains("not a numeric decision feature"), "{text}");
    }
}
