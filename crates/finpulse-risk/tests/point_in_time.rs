//! Features are a function of when things happened, not of the order history was imported in:
//! the same simulated history imported in time order, type by type, in reverse file order and
//! interleaved gives identical training sets, models, scores and backtests.

use finpulse_core::Event;
use finpulse_core::time::MICROS_PER_DAY;
use finpulse_log::{EventStore, StoreOptions};
use finpulse_models::gbdt::GbdtParams;
use finpulse_risk::backtest::backtest;
use finpulse_risk::engine::FraudModel;
use finpulse_risk::fraud;
use finpulse_risk::ruleset::Ruleset;
use finpulse_sim::{SimConfig, Simulator};
use std::path::Path;
use std::sync::Arc;

const SIM: SimConfig = SimConfig { users: 600, days: 36, seed: 5, start_day: 20_454 };
/// Rows written per append, as an import writes them.
const IMPORT_BATCH: usize = 2_000;

fn day_us(d: i64) -> i64 {
    (SIM.start_day + d) * MICROS_PER_DAY
}

/// The simulated history, in the order it happened, and the name of each event's type.
fn history() -> (Vec<Event>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let registry = store.registry();
    let mut sim = Simulator::new(SIM, &registry);
    let mut events = Vec::new();
    while let Some(day) = sim.next_day() {
        events.extend(day);
    }
    let names = events.iter().map(|e| registry.event_type(e.type_id).name.to_string()).collect();
    (events, names)
}

/// One export file per event type, as a bank would bring them, in type-name order.
fn files_by_type(events: &[Event], names: &[String]) -> Vec<Vec<Event>> {
    let mut by: std::collections::BTreeMap<&str, Vec<Event>> = Default::default();
    for (e, n) in events.iter().zip(names) {
        by.entry(n).or_default().push(e.clone());
    }
    by.into_values().collect()
}

fn import(dir: &Path, events: &[Event]) {
    let mut store = EventStore::open(dir, StoreOptions::default()).unwrap();
    for batch in events.chunks(IMPORT_BATCH) {
        store.append_groups(&[batch.to_vec()]).unwrap();
    }
}

/// Everything a fraud workflow computes from one data directory, as comparable text.
fn outcomes(dir: &Path) -> Vec<String> {
    let (train_from, train_to) = (day_us(14), day_us(21));
    let (test_from, test_to) = (day_us(28), day_us(35));
    let train_set = fraud::payments(dir, train_from, train_to).unwrap();
    let features: Vec<String> = (0..train_set.len())
        .map(|i| {
            let row: Vec<u64> = train_set.columns.iter().map(|(_, c)| c[i].to_bits()).collect();
            format!("{} {} {:?}", train_set.event_ids[i], train_set.ts_us[i], row)
        })
        .collect();
    let params = GbdtParams { rounds_max: 30, threads: 1, ..GbdtParams::default() };
    let (model, report) = fraud::train(dir, train_from, train_to, 7, &params).unwrap();
    let scorer = finpulse_models::row::TabularRowScorer::new(model.clone()).unwrap();
    let bound = FraudModel::new(Some(1), Arc::new(scorer)).unwrap();
    let test_set = fraud::payments(dir, test_from, test_to).unwrap();
    let scored = fraud::score(&test_set, &bound, train_from);
    let evaluation = fraud::evaluate(&scored, fraud::CARD_PRECISION_K);
    let rules = "name = \"terminals\"\n[[rule]]\nname = \"risky_terminal\"\nwhen = \"terminal.fraud_count_30d > 0\"\naction = \"review\"\nscore = 0.6\n[[rule]]\nname = \"flagged_user\"\nwhen = \"user.known_fraud_count > 0\"\nscore = 0.6\nshadow = true\n";
    let ruleset = Ruleset::compile(rules, "terminals.toml").unwrap();
    let tested = backtest(dir, ruleset, None, test_from, test_to).unwrap();
    vec![
        features.join("\n"),
        serde_json::to_string(&report).unwrap(),
        serde_json::to_string(&model).unwrap(),
        serde_json::to_string(&scored).unwrap(),
        serde_json::to_string(&evaluation).unwrap(),
        serde_json::to_string(&tested).unwrap(),
    ]
}

#[test]
fn training_scoring_and_backtests_do_not_depend_on_the_import_order() {
    let (events, names) = history();
    let files = files_by_type(&events, &names);
    assert!(files.len() >= 5, "the history has several event types");
    let in_time_order = events.clone();
    let type_by_type: Vec<Event> = files.iter().flatten().cloned().collect();
    let reverse_files: Vec<Event> = files.iter().rev().flatten().cloned().collect();
    // One row from each file in turn.
    let longest = files.iter().map(Vec::len).max().unwrap();
    let interleaved: Vec<Event> = (0..longest).flat_map(|i| files.iter().filter_map(move |f| f.get(i).cloned())).collect();
    assert_eq!(interleaved.len(), events.len());

    let reference_dir = tempfile::tempdir().unwrap();
    import(reference_dir.path(), &in_time_order);
    let reference = outcomes(reference_dir.path());
    // The label-based features carry signal in the reference: the check below is not vacuous.
    assert!(reference[5].contains("\"risky_terminal\""), "{}", reference[5]);
    let train_set = fraud::payments(reference_dir.path(), day_us(14), day_us(21)).unwrap();
    let col = |name: &str| &train_set.columns.iter().find(|(n, _)| *n == name).unwrap().1;
    assert!(col("terminal.fraud_count_30d").iter().any(|&x| x > 0.0), "some terminals have known frauds");
    assert!(col("user.known_fraud_count").iter().any(|&x| x > 0.0), "some users have known frauds");

    for (how, order) in [("type by type", type_by_type), ("in reverse file order", reverse_files), ("interleaved", interleaved)] {
        let dir = tempfile::tempdir().unwrap();
        import(dir.path(), &order);
        let got = outcomes(dir.path());
        let what = ["training set", "training report", "model", "scores", "evaluation", "backtest"];
        for ((w, r), g) in what.iter().zip(&reference).zip(&got) {
            assert!(r == g, "imported {how}, the {w} differs from the one imported in time order");
        }
    }
}

#[test]
fn a_label_counts_from_its_own_time_whenever_it_was_imported() {
    let (events, names) = history();
    let is_label: Vec<bool> = names.iter().map(|n| n == "fraud_label").collect();
    // Payments first, then every label: the order a late-arriving label feed gives.
    let (labels, rest): (Vec<_>, Vec<_>) = events.iter().zip(&is_label).partition(|(_, l)| **l);
    let labels_last: Vec<Event> = rest.into_iter().chain(labels).map(|(e, _)| e.clone()).collect();
    let dir = tempfile::tempdir().unwrap();
    import(dir.path(), &labels_last);
    let data = fraud::payments(dir.path(), day_us(14), day_us(35)).unwrap();
    // A payment sees a user's fraud only once a label on that user has arrived, by its `ts`.
    let known = &data.columns.iter().find(|(n, _)| *n == "user.known_fraud_count").unwrap().1;
    let first_fraud = data.labels.first_fraud_by_user(i64::MIN);
    let mut seen_known = 0;
    for (i, &count) in known.iter().enumerate() {
        let first = first_fraud.get(&finpulse_state::key(&data.user_ids[i])).copied();
        let arrived_before = first.is_some_and(|t| t < data.ts_us[i]);
        assert_eq!(count > 0.0, arrived_before, "payment {} at {}", data.event_ids[i], data.ts_us[i]);
        seen_known += usize::from(arrived_before);
    }
    assert!(seen_known > 0, "some payments come after a label on their user");
}
