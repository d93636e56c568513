//! Churn early warning over a simulated app: features cannot see the future, a model trained
//! on past snapshots finds the users the simulator makes churn, and bad settings are named.

use finpulse_churn::{ChurnError, ChurnSpec, DAY_US, TrainOptions, evaluate, features::snapshot, score, train};
use finpulse_core::event::Event;
use finpulse_log::{EventStore, StoreOptions, StoreView};
use finpulse_sim::{SimConfig, Simulator};

const SIM: SimConfig = SimConfig { users: 3000, days: 90, seed: 7, start_day: 20_454 };

fn simulate(dir: &std::path::Path) -> (Vec<Event>, EventStore) {
    let store = EventStore::open(dir, StoreOptions::default()).unwrap();
    let mut sim = Simulator::new(SIM, &store.registry());
    let mut events = Vec::new();
    while let Some(day) = sim.next_day() {
        events.extend(day);
    }
    (events, store)
}

fn view_of(store: &mut EventStore, events: Vec<Event>) -> StoreView {
    store.append_groups(&[events]).unwrap();
    store.view_handle().snapshot()
}

fn day(d: i64) -> i64 {
    (SIM.start_day + d) * DAY_US
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(f)
}

#[test]
fn features_ignore_everything_after_the_as_of_moment() {
    let (full_dir, cut_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (events, mut full) = simulate(full_dir.path());
    let as_of = day(45);
    let before: Vec<Event> = events.iter().filter(|e| e.ts_us < as_of).cloned().collect();
    assert!(before.len() < events.len(), "the simulation runs past the as-of moment");
    let full_view = view_of(&mut full, events);
    let mut cut = EventStore::open(cut_dir.path(), StoreOptions::default()).unwrap();
    let cut_view = view_of(&mut cut, before);
    let spec = ChurnSpec::default();
    let (a, b) = block_on(async { (snapshot(&full_view, &spec, as_of).await.unwrap(), snapshot(&cut_view, &spec, as_of).await.unwrap()) });
    assert!(a.users.len() > 500, "active users at day 45: {}", a.users.len());
    // Compare by text so missing values (NaN) compare equal.
    assert_eq!(format!("{a:?}"), format!("{b:?}"), "a store that also holds the future gives the same features");
}

#[test]
fn a_model_trained_on_past_snapshots_finds_the_simulated_churners() {
    let dir = tempfile::tempdir().unwrap();
    let (events, mut store) = simulate(dir.path());
    let view = view_of(&mut store, events);
    let spec = ChurnSpec::default();
    let options = TrainOptions { snapshots: 4, step_days: 3, ..TrainOptions::default() };
    block_on(async {
        // Trained as of day 60: snapshots at days 30, 27, 24, 21, each labelled by the 30 days after it.
        let (model, report) = train(&view, &spec, day(60), &options).await.unwrap();
        assert_eq!(report.snapshots.len(), 4);
        assert!(report.snapshots[0].validation && !report.snapshots[1].validation);
        assert_eq!(report.snapshots[0].as_of, "2026-01-31");
        let auc = report.validation.auc.unwrap();
        assert!(auc > 0.75, "out-of-time validation AUC {auc}");
        // Evaluated on day 60, a month after the last training label.
        let e = evaluate(&view, &model, &spec, day(60)).await.unwrap();
        let auc = e.evaluation.auc.unwrap();
        assert!(auc > 0.75, "AUC on day 60: {auc}");
        assert!(e.evaluation.top_decile_lift > 2.0, "top-decile lift {}", e.evaluation.top_decile_lift);
        assert!(!e.calibration.is_empty());
        // The risk list: every active user once, highest risk first, each with reasons.
        let list = score(&view, &model, &spec, day(60)).await.unwrap();
        assert!(list.rows.windows(2).all(|w| w[0].probability >= w[1].probability));
        assert!(list.rows.iter().all(|r| (0.0..=1.0).contains(&r.probability)));
        assert!(!list.rows[0].reasons.is_empty(), "the riskiest user has reasons");
        let mut ids: Vec<&str> = list.rows.iter().map(|r| r.user_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), list.users_scored);
    });
}

#[test]
fn bad_settings_and_unknowable_labels_are_refused_with_their_names() {
    let dir = tempfile::tempdir().unwrap();
    let (events, mut store) = simulate(dir.path());
    let view = view_of(&mut store, events);
    block_on(async {
        let unknown = ChurnSpec { activity: vec!["app_session".into(), "app_open".into()], ..ChurnSpec::default() };
        let err = train(&view, &unknown, day(60), &TrainOptions::default()).await.unwrap_err();
        assert_eq!(err.to_string(), "--activity: unknown event type 'app_open' (see `finpulse schema`)");
        let zero = ChurnSpec { horizon_days: 0, ..ChurnSpec::default() };
        assert!(train(&view, &zero, day(60), &TrainOptions::default()).await.unwrap_err().to_string().starts_with("--horizon-days"));
        let one = TrainOptions { snapshots: 1, ..TrainOptions::default() };
        assert!(train(&view, &ChurnSpec::default(), day(60), &one).await.unwrap_err().to_string().starts_with("--snapshots"));
        // Trained as of day 80, the model exists; evaluating on day 80 needs data to day 110.
        let (model, _) = train(&view, &ChurnSpec::default(), day(80), &TrainOptions::default()).await.unwrap();
        let err = evaluate(&view, &model, &ChurnSpec::default(), day(80)).await.unwrap_err();
        assert!(matches!(err, ChurnError::LabelWindow { .. }), "{err}");
        assert!(err.to_string().contains("ends 2026-04-21"), "{err}");
        // Before anyone signed up there is nobody to score.
        let err = score(&view, &model, &ChurnSpec::default(), day(-1)).await.unwrap_err();
        assert!(matches!(err, ChurnError::NoUsers { .. }), "{err}");
        // Too early to have history: the training snapshots fall before the first signup.
        let err = train(&view, &ChurnSpec::default(), day(31), &TrainOptions::default()).await.unwrap_err();
        assert!(matches!(err, ChurnError::NoHistory(_) | ChurnError::Table(_)), "{err}");
    });
}
