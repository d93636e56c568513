//! Decision latency in process: live state with N users, a GBDT fraud model and a ruleset,
//! then one decision per incoming payment (each applied after it is decided, as the server
//! does), timed one by one.

use anyhow::Result;
use finpulse_core::{Event, Registry, Value};
use finpulse_models::gbdt::GbdtParams;
use finpulse_models::row::TabularRowScorer;
use finpulse_models::table::{LabelSpec, RawColumn, RawValues, labelled_from_columns};
use finpulse_models::tabular::{Algo, TabularModel};
use finpulse_risk::engine::{Engine, FraudModel, Policy};
use finpulse_risk::ruleset::Ruleset;
use finpulse_state::features::model_features;
use finpulse_state::{LiveState, Vocabulary};
use std::sync::Arc;
use std::time::Instant;

/// Which GBDT settings the benchmark's model is trained with.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum GbdtSettings {
    /// `finpulse fraud train`'s.
    Fraud,
    /// The library's defaults.
    Library,
}

const TERMINALS: u64 = 10_000;
use finpulse_core::time::MICROS_PER_DAY as DAY_US;
const START_US: i64 = 1_767_225_600_000_000; // 2026-01-01

const RULES: &str = r#"name = "bench"
review_at = 0.5
block_at = 0.9
[lists]
block_devices = ["stolen-1", "stolen-2"]
[[rule]]
name = "large_vs_own_history"
when = "payment.amount_fen > 5 * user.avg_amount_fen_30d and user.tx_count_30d >= 5"
score = 0.7
[[rule]]
name = "burst"
when = "user.tx_count_1h > 10 or user.amount_sum_fen_1h > 500000"
score = 0.6
[[rule]]
name = "risky_terminal"
when = "terminal.fraud_rate_7d > 0.2 and txn.new_terminal == 1"
score = 0.8
action = "block"
[[rule]]
name = "night_new_device"
when = "txn.is_night == 1 and txn.new_device == 1 and txn.type in ['payment', 'transfer']"
score = 0.4
shadow = true
"#;

/// A tiny deterministic generator (xorshift64*), so the bench needs no RNG crate.
/// A xorshift generator: repeatable uniform 64-bit values for the benches' synthetic data.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Maker {
    payment: finpulse_core::TypeId,
    amount: finpulse_core::FieldId,
    currency: finpulse_core::FieldId,
    terminal: finpulse_core::FieldId,
    device: finpulse_core::FieldId,
    serial: u64,
}

impl Maker {
    fn payment(&mut self, user: u64, ts_us: i64, amount_fen: i64, terminal: u64) -> Event {
        self.serial += 1;
        let mut fields = vec![
            (self.amount, Value::Int(amount_fen)),
            (self.currency, Value::Str("CNY".into())),
            (self.terminal, Value::Str(format!("t{terminal:05}"))),
            (self.device, Value::Str(format!("d{user}"))),
        ];
        fields.sort_by_key(|f| f.0);
        Event { event_id: format!("b{}", self.serial), user_id: Some(format!("u{user:08}")), ts_us, type_id: self.payment, fields }
    }
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

/// Builds state for `users` users with `history` payments each over 30 days, trains a fraud
/// model on a sample, and times `decisions` decisions.
pub fn run(users: u64, history: u64, decisions: usize, gbdt: GbdtSettings) -> Result<()> {
    let registry = Registry::builtin();
    let vocab = Vocabulary::new(&registry);
    let f = |n: &str| registry.field_id(n).expect("built-in field");
    let mut mk = Maker {
        payment: registry.type_id("payment").expect("built-in type"),
        amount: f("amount_fen"),
        currency: f("currency"),
        terminal: f("terminal_id"),
        device: f("device_id"),
        serial: 0,
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let rss_before = rss_bytes();
    let built = Instant::now();
    let mut state = LiveState::new(1);
    // History in time order: day by day, every user's share of payments that day.
    let per_day = history as f64 / 30.0;
    for day in 0..30i64 {
        for u in 0..users {
            let n = per_day.floor() as u64 + u64::from((rng.below(1000) as f64) < per_day.fract() * 1000.0);
            for _ in 0..n {
                let ts = START_US + day * DAY_US + rng.below(DAY_US as u64) as i64;
                let amount = 500 + rng.below(20_000) as i64;
                let e = mk.payment(u, ts, amount, (u * 7 + rng.below(20)) % TERMINALS);
                state.apply(&vocab, &e);
            }
        }
    }
    let build_s = built.elapsed().as_secs_f64();
    let rss_state = rss_bytes().saturating_sub(rss_before);
    println!(
        "state: {} users, {} payments applied in {build_s:.1} s ({:.0} events/s); resident memory {:.0} MB, {:.0} bytes per user",
        state.user_count(),
        state.applied,
        state.applied as f64 / build_s,
        rss_state as f64 / 1e6,
        rss_state as f64 / users as f64
    );

    // A fraud model trained on 50,000 sampled transactions (label: large amounts at a few
    // terminals), so its trees have the size a real one has.
    let now = START_US + 30 * DAY_US;
    let sample: Vec<Event> = (0..50_000u64)
        .map(|i| {
            let u = rng.below(users);
            mk.payment(u, now + i as i64 * 1000, 500 + rng.below(60_000) as i64, rng.below(TERMINALS))
        })
        .collect();
    let names: Vec<&'static str> = model_features().map(|d| d.name).collect();
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut labels = Vec::new();
    for e in &sample {
        let row = state.features(&vocab, e).expect("a payment");
        for (col, def) in columns.iter_mut().zip(model_features()) {
            col.push(row.get(def.id));
        }
        let amount = row.get(finpulse_state::features::Num::TxnAmountFen);
        labels.push(f64::from(u8::from(amount > 40_000.0 && rng.below(3) > 0)));
    }
    let raw: Vec<RawColumn> = names.iter().map(|n| n.to_string()).zip(columns.into_iter().map(RawValues::Numeric)).collect();
    let table = labelled_from_columns(raw, labels, "is_fraud", None)?;
    let (model, _) = TabularModel::train_table(
        &table,
        LabelSpec { column: "is_fraud".into(), positive: None },
        None,
        &Algo::Gbdt(match gbdt {
            GbdtSettings::Fraud => finpulse_risk::fraud::training_params(),
            GbdtSettings::Library => GbdtParams::default(),
        }),
        None,
    )?;
    let trees = match &model.learner {
        finpulse_models::tabular::Learner::Gbdt { model, .. } => model.trees.len(),
        _ => 0,
    };
    let scorer = FraudModel::new(Some(1), Arc::new(TabularRowScorer::new(model)?))?;
    let engine = Engine { ruleset: Arc::new(Ruleset::compile(RULES, "bench")?), model: Some(Arc::new(scorer)), policy: Policy::default() };

    // Decisions: each decided against the state before it, then applied.
    let mut took_ns = Vec::with_capacity(decisions);
    let mut flagged = 0usize;
    let started = Instant::now();
    for i in 0..decisions {
        let u = rng.below(users);
        // Mostly ordinary amounts, one in 50 far above the user's usual.
        let amount = if rng.below(50) == 0 { 40_000 + rng.below(60_000) } else { 500 + rng.below(20_000) };
        let e = mk.payment(u, now + 60_000_000 + i as i64 * 100, amount as i64, (u * 7 + rng.below(25)) % TERMINALS);
        let t = Instant::now();
        let d = engine.decide(&state, &vocab, &e, t)?;
        took_ns.push(t.elapsed().as_nanos() as u64);
        flagged += usize::from(d.action != finpulse_risk::ruleset::Action::Allow);
        state.apply(&vocab, &e);
    }
    let wall = started.elapsed().as_secs_f64();
    took_ns.sort_unstable();
    let q = |p: f64| took_ns[((took_ns.len() as f64 * p) as usize).min(took_ns.len() - 1)] as f64 / 1000.0;
    println!(
        "decisions: {decisions} with a {trees}-tree GBDT and {} rules; p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs (target p99 <= 50 µs); {:.0} decisions/s on one core including applying each; {flagged} flagged",
        engine.ruleset.rules.len(),
        q(0.5),
        q(0.99),
        q(0.999),
        q(1.0),
        decisions as f64 / wall
    );
    Ok(())
}
