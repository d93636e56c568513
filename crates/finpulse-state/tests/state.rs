//! Live state over a simulated app: deterministic, rebuilt from a checkpoint plus the log to the
//! same state, and blind to fraud labels that have not arrived yet.

use finpulse_core::Event;
use finpulse_log::{EventStore, StoreOptions};
use finpulse_sim::{SimConfig, Simulator};
use finpulse_state::features::Num;
use finpulse_state::view::user_view;
use finpulse_state::{LiveState, Vocabulary, advance_checkpoint, checkpoint_path, load_checkpoint, rebuild, save_checkpoint};

const SIM: SimConfig = SimConfig { users: 800, days: 40, seed: 11, start_day: 20_454 };

fn simulate(dir: &std::path::Path) -> Vec<Event> {
    let mut store = EventStore::open(dir, StoreOptions::default()).unwrap();
    let mut sim = Simulator::new(SIM, &store.registry());
    let mut events = Vec::new();
    while let Some(day) = sim.next_day() {
        store.append_groups(std::slice::from_ref(&day)).unwrap();
        events.extend(day);
    }
    events
}

/// A simulated store's events, with its registry and the state's vocabulary of it.
fn simulated(dir: &std::path::Path) -> (Vec<Event>, std::sync::Arc<finpulse_core::Registry>, Vocabulary) {
    let events = simulate(dir);
    let registry = EventStore::load_registry(dir).unwrap();
    let vocab = Vocabulary::new(&registry);
    (events, registry, vocab)
}

#[test]
fn state_rebuilt_from_a_checkpoint_and_the_log_equals_the_state_before() {
    let dir = tempfile::tempdir().unwrap();
    let events = simulate(dir.path());
    let (full, vocab, next) = rebuild(dir.path(), 4).unwrap();
    assert_eq!(next as usize, events.len());
    assert_eq!(full.applied as usize, events.len());
    assert!(full.user_count() > 500);

    // Checkpoint part-way, then rebuild: checkpoint + the rest of the log.
    let half = events.len() / 2;
    let mut partial = LiveState::new(4);
    for e in &events[..half] {
        partial.apply(&vocab, e);
    }
    save_checkpoint(&checkpoint_path(dir.path()), &partial, half as u64).unwrap();
    let (loaded, from) = load_checkpoint(&checkpoint_path(dir.path())).unwrap();
    assert_eq!(from as usize, half);
    assert!(loaded == partial, "a checkpoint loads to the state it saved");
    let (rebuilt, _, next) = rebuild(dir.path(), 4).unwrap();
    assert_eq!(next as usize, events.len());
    assert!(rebuilt == full, "checkpoint + log tail gives the same state as the whole log");
}

#[test]
fn a_damaged_checkpoint_is_reported_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    simulate(dir.path());
    let (full, _, next) = rebuild(dir.path(), 2).unwrap();
    let path = checkpoint_path(dir.path());
    save_checkpoint(&path, &full, next).unwrap();
    let good = std::fs::read(&path).unwrap();
    let refused = |bytes: &[u8]| {
        std::fs::write(&path, bytes).unwrap();
        let err = rebuild(dir.path(), 2).unwrap_err().to_string();
        assert!(err.contains("checkpoint.bin"), "{err}");
        err
    };
    // One flipped bit in the state, a file cut short, and a file that is no checkpoint at all.
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x10;
    assert!(refused(&flipped).contains("checksum mismatch"));
    assert!(refused(&good[..good.len() - 100]).contains("torn"));
    assert!(refused(b"PK\x03\x04 an archive").contains("not a live-state checkpoint"));
    // The intact file still loads to the state it saved.
    std::fs::write(&path, &good).unwrap();
    assert!(load_checkpoint(&path).unwrap() == (full, next));
}

#[test]
fn a_checkpoint_of_an_earlier_format_is_set_aside_and_the_log_rebuilds_the_state() {
    let dir = tempfile::tempdir().unwrap();
    simulate(dir.path());
    let (full, _, next) = rebuild(dir.path(), 2).unwrap();
    let path = checkpoint_path(dir.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // A later binary format's name, then an earlier version's JSON under the current name.
    for earlier in [&b"finpulse-live-state/2\n\x01\x02"[..], b"{\"format\": \"finpulse-live-state/1\", \"next_seq\": 3}"] {
        std::fs::write(&path, earlier).unwrap();
        assert!(matches!(load_checkpoint(&path), Err(finpulse_state::StateError::CheckpointFormat { .. })));
        let (rebuilt, _, _) = rebuild(dir.path(), 2).unwrap();
        assert!(rebuilt == full, "the whole log rebuilds the state");
    }
    // Earlier versions' JSON file, under its own name: ignored at start, removed by the next
    // checkpoint.
    std::fs::remove_file(&path).unwrap();
    let legacy = path.with_file_name(finpulse_state::LEGACY_CHECKPOINT_FILE);
    std::fs::write(&legacy, b"{\"format\": \"finpulse-live-state/2\", \"next_seq\": 3}").unwrap();
    let (rebuilt, _, _) = rebuild(dir.path(), 2).unwrap();
    assert!(rebuilt == full);
    save_checkpoint(&path, &rebuilt, next).unwrap();
    assert!(!legacy.exists() && path.exists());
}

#[test]
fn terminal_fraud_counts_only_labels_that_have_arrived() {
    let dir = tempfile::tempdir().unwrap();
    let (events, registry, vocab) = simulated(dir.path());
    let label_type = registry.type_id("fraud_label").unwrap();
    let target = registry.field_id("target_event_id").unwrap();
    // A fraudulent payment whose label arrives later.
    let (label_at, label) = events.iter().enumerate().find(|(_, e)| e.type_id == label_type).expect("the simulation labels frauds");
    let Some(finpulse_core::Value::Str(paid_id)) = label.get(target) else { panic!("label without target") };
    let paid_at = events.iter().position(|e| &e.event_id == paid_id).expect("labelled payment is in the log");
    assert!(paid_at < label_at);
    let paid = &events[paid_at];
    let mut state = LiveState::new(1);
    for e in &events[..label_at] {
        state.apply(&vocab, e);
    }
    let probe = Event { event_id: "probe".into(), ts_us: label.ts_us, ..paid.clone() };
    let before = state.features(&vocab, &probe).unwrap().get(Num::TerminalFraudCount30d);
    state.apply(&vocab, label);
    let after = state.features(&vocab, &probe).unwrap().get(Num::TerminalFraudCount30d);
    assert_eq!(after, before + 1.0, "the label counts once it has arrived, not before");
    let user = paid.user_id.as_deref().unwrap();
    assert!(state.user(user).unwrap().baseline.known_frauds >= 1);
    assert!(user_view(&state, user).unwrap().tags.contains(&"fraud_victim"));
}

#[test]
fn features_of_a_transaction_exclude_the_transaction_itself_and_cold_starts_are_not_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (events, registry, vocab) = simulated(dir.path());
    let payment_type = registry.type_id("payment").unwrap();
    let mut state = LiveState::new(1);
    let mut checked = 0;
    for e in &events {
        if e.type_id == payment_type && checked < 200 {
            let before = state.features(&vocab, e).unwrap().get(Num::UserTxCountTotal);
            let mut after_state = state.clone();
            after_state.apply(&vocab, e);
            let later = Event { event_id: "later".into(), ts_us: e.ts_us + 1, ..e.clone() };
            let after = after_state.features(&vocab, &later).unwrap();
            assert_eq!(after.get(Num::UserTxCountTotal), before + 1.0);
            assert!(after.get(Num::UserTxCount10m) >= 1.0);
            checked += 1;
        }
        state.apply(&vocab, e);
    }
    assert_eq!(checked, 200);
    let stranger = Event { user_id: Some("nobody-yet".into()), ..events.iter().find(|e| e.type_id == payment_type).unwrap().clone() };
    let row = state.features(&vocab, &stranger).unwrap();
    assert_eq!(row.get(Num::UserKnown), 0.0);
    assert_eq!(row.get(Num::UserTxCount30d), 0.0);
    assert!(row.get(Num::UserAvgAmountFen30d).is_nan());
    assert!(row.get(Num::UserAmountZscore).is_finite(), "a cold start is compared with everyone's amounts");
}

#[test]
fn a_checkpoint_moved_up_on_the_side_equals_the_state_applied_through_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let (events, _, vocab) = simulated(dir.path());
    let through = |n: usize| {
        let mut s = LiveState::new(4);
        events[..n].iter().for_each(|e| s.apply(&vocab, e));
        s
    };
    let path = checkpoint_path(dir.path());
    // No checkpoint yet: the first one is built from the log alone.
    let third = events.len() / 3;
    assert_eq!(advance_checkpoint(dir.path(), 4, third as u64).unwrap(), Some(third as u64));
    let (loaded, at) = load_checkpoint(&path).unwrap();
    assert_eq!(at as usize, third);
    assert!(loaded == through(third));
    // From that checkpoint to two thirds: the same as applying two thirds from scratch.
    let two_thirds = 2 * events.len() / 3;
    assert_eq!(advance_checkpoint(dir.path(), 4, two_thirds as u64).unwrap(), Some(two_thirds as u64));
    let (loaded, at) = load_checkpoint(&path).unwrap();
    assert_eq!(at as usize, two_thirds);
    assert!(loaded == through(two_thirds));
    // Not backwards, and not past the end of the log (records there are not durable yet).
    assert_eq!(advance_checkpoint(dir.path(), 4, third as u64).unwrap(), None);
    assert_eq!(advance_checkpoint(dir.path(), 4, events.len() as u64 + 10).unwrap(), None);
    assert_eq!(load_checkpoint(&path).unwrap().1 as usize, two_thirds);
    // And the start after it rebuilds the whole state.
    let (rebuilt, _, next) = rebuild(dir.path(), 4).unwrap();
    assert_eq!(next as usize, events.len());
    assert!(rebuilt == through(events.len()));
}

#[test]
fn a_verdict_that_arrives_before_its_payment_counts_once_the_payment_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let (events, registry, vocab) = simulated(dir.path());
    let label_type = registry.type_id("fraud_label").unwrap();
    let payment_type = registry.type_id("payment").unwrap();
    let labelled_users: Vec<&str> = events.iter().filter(|e| e.type_id == label_type).filter_map(|e| e.user_id.as_deref()).collect();
    assert!(!labelled_users.is_empty());
    let mut in_order = LiveState::new(2);
    events.iter().for_each(|e| in_order.apply(&vocab, e));
    // Labels first (a backfilled label feed, or a labels file imported before the payments).
    let mut labels_first = LiveState::new(2);
    events.iter().filter(|e| e.type_id == label_type).for_each(|e| labels_first.apply(&vocab, e));
    events.iter().filter(|e| e.type_id != label_type).for_each(|e| labels_first.apply(&vocab, e));
    for u in &labelled_users {
        let (a, b) = (&in_order.user(u).unwrap().baseline, &labels_first.user(u).unwrap().baseline);
        assert_eq!((a.known_frauds, a.last_fraud_label_us), (b.known_frauds, b.last_fraud_label_us), "user {u}");
    }
    // Every terminal's known frauds as a payment at the end of the history would see them.
    let end = events.iter().map(|e| e.ts_us).max().unwrap();
    let mut terminals_with_frauds = 0;
    for p in events.iter().filter(|e| e.type_id == payment_type) {
        let probe = Event { event_id: "probe".into(), ts_us: end, ..p.clone() };
        let (a, b) = (in_order.features(&vocab, &probe).unwrap(), labels_first.features(&vocab, &probe).unwrap());
        assert_eq!(a.get(Num::TerminalFraudCount30d), b.get(Num::TerminalFraudCount30d), "terminal of {}", p.event_id);
        assert_eq!(a.get(Num::MerchantFraudRate30d).to_bits(), b.get(Num::MerchantFraudRate30d).to_bits());
        terminals_with_frauds += usize::from(a.get(Num::TerminalFraudCount30d) > 0.0);
    }
    assert!(terminals_with_frauds > 0, "the labels reached some terminals");
}

#[test]
fn history_imported_into_a_running_state_gives_the_features_of_the_state_built_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let (events, registry, vocab) = simulated(dir.path());
    let end = events.iter().map(|e| e.ts_us).max().unwrap();
    let cut = end - 10 * finpulse_core::time::MICROS_PER_DAY;
    let mut in_order = LiveState::new(2);
    events.iter().for_each(|e| in_order.apply(&vocab, e));
    // A server running on the last ten days, then the older history imported one export file
    // per type (labels of old payments among them).
    let mut running = LiveState::new(2);
    events.iter().filter(|e| e.ts_us >= cut).for_each(|e| running.apply(&vocab, e));
    let mut by_type: std::collections::BTreeMap<&str, Vec<&Event>> = Default::default();
    for e in events.iter().filter(|e| e.ts_us < cut) {
        by_type.entry(&registry.event_type(e.type_id).name).or_default().push(e);
    }
    by_type.values().flatten().for_each(|e| running.apply(&vocab, e));

    let payment_type = registry.type_id("payment").unwrap();
    let mut compared = 0;
    for p in events.iter().filter(|e| e.type_id == payment_type && e.ts_us >= cut).step_by(7) {
        let probe = Event { event_id: "probe".into(), ts_us: end + 1, ..p.clone() };
        let (a, b) = (in_order.features(&vocab, &probe).unwrap(), running.features(&vocab, &probe).unwrap());
        for def in finpulse_state::features::NUMERIC {
            // Loan overdues are the one known exception: a repayment imported before the overdue
            // it settles leaves the loan overdue (the state keeps no time per loan).
            if def.id == Num::UserOverdueLoans {
                continue;
            }
            let (x, y) = (a.get(def.id), b.get(def.id));
            // Running means and variances sum in another order: equal up to rounding.
            let close = (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-9 * x.abs().max(1.0);
            assert!(close, "{} of {}: {x} in time order, {y} imported into a running state", def.name, p.event_id);
        }
        compared += 1;
    }
    assert!(compared > 50);
}
