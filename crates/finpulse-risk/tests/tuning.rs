//! `fraud train --tune`: settings chosen by prequential validation on the history before the
//! training period, never on the period's own future.

use finpulse_core::time::MICROS_PER_DAY;
use finpulse_log::{EventStore, StoreOptions};
use finpulse_models::gbdt::GbdtParams;
use finpulse_risk::fraud;
use finpulse_sim::{SimConfig, Simulator};

const SIM: SimConfig = SimConfig { users: 600, days: 50, seed: 9, start_day: 20_454 };

fn day_us(d: i64) -> i64 {
    (SIM.start_day + d) * MICROS_PER_DAY
}

fn simulated(dir: &std::path::Path) {
    let mut store = EventStore::open(dir, StoreOptions::default()).unwrap();
    let registry = store.registry();
    let mut sim = Simulator::new(SIM, &registry);
    while let Some(day) = sim.next_day() {
        store.append_groups(&[day]).unwrap();
    }
}

fn small_grid() -> Vec<GbdtParams> {
    [(3, 20), (7, 40)]
        .into_iter()
        .map(|(leaves_max, rounds_max)| GbdtParams { leaves_max, rounds_max, threads: 1, ..fraud::training_params() })
        .collect()
}

#[test]
fn tuning_validates_each_candidate_on_weeks_before_the_training_period_and_keeps_the_best() {
    let dir = tempfile::tempdir().unwrap();
    simulated(dir.path());
    let grid = small_grid();
    let report = fraud::tune(dir.path(), day_us(35), day_us(42), 7, 2, &grid).unwrap();
    let day = |d: i64| finpulse_core::time::day_label(SIM.start_day + d);
    // The latest validation week ends where the training period does; the fold trains on a
    // week ending a delay before it. The next fold is a week earlier.
    let spans: Vec<[String; 4]> =
        report.folds.iter().map(|f| [f.train_from.clone(), f.train_to.clone(), f.valid_from.clone(), f.valid_to.clone()]).collect();
    assert_eq!(spans, vec![[day(21), day(28), day(35), day(42)], [day(14), day(21), day(28), day(35)]]);
    assert_eq!(report.candidates.len(), grid.len());
    for c in &report.candidates {
        assert_eq!(c.card_precision.len(), 2);
        assert!(c.card_precision.iter().all(|p| (0.0..=1.0).contains(p)), "{c:?}");
        assert!((0.0..=1.0).contains(&c.average_precision_mean) && (0.0..=1.0).contains(&c.auc_mean), "{c:?}");
    }
    let best = report.candidates.iter().map(|c| c.card_precision_mean).fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(report.candidates[report.chosen].card_precision_mean, best);
    assert_eq!(report.candidates[report.chosen].params, grid[report.chosen]);
    // The same history gives the same choice.
    let again = fraud::tune(dir.path(), day_us(35), day_us(42), 7, 2, &grid).unwrap();
    assert_eq!(serde_json::to_string(&again).unwrap(), serde_json::to_string(&report).unwrap());
}

#[test]
fn tuning_refuses_folds_the_history_cannot_hold_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    simulated(dir.path());
    let grid = small_grid();
    // The simulated history's first week has no fraud labelled: a fold that trains on it is
    // named, and fewer folds suggested; a first fold that does cannot be helped by fewer.
    let e = fraud::tune(dir.path(), day_us(21), day_us(28), 7, 3, &grid).unwrap_err().to_string();
    assert!(e.contains("tuning fold 2 (") && e.contains("no fraud labelled") && e.contains("fewer folds"), "{e}");
    let e = fraud::tune(dir.path(), day_us(14), day_us(21), 7, 1, &grid).unwrap_err().to_string();
    assert!(e.contains("tuning fold 1 (") && e.contains("later period") && !e.contains("fewer"), "{e}");
    let e = fraud::tune(dir.path(), day_us(0), day_us(7), 7, 1, &grid).unwrap_err().to_string();
    assert!(e.contains("no payments"), "{e}");
    let e = fraud::tune(dir.path(), day_us(21), day_us(28), 7, 0, &grid).unwrap_err().to_string();
    assert!(e.contains("tuning folds must be 1 to"), "{e}");
    let e = fraud::tune(dir.path(), day_us(21), day_us(28), 7, 1, &[]).unwrap_err().to_string();
    assert!(e.contains("no settings"), "{e}");
}
