//! End to end on simulated users: an experiment defined and started in the book, users assigned
//! by the engine's own `Assigner` as the simulator signs them up, exposures and outcomes stored
//! as events, and the report over the store finds the effect the simulator put in (one more
//! session the next day for a known share of the treatment's users), with an interval that
//! covers it, a sample ratio that matches the weights, and no effect where none was put.

use finpulse_experiments::definition::{AnalysisSettings, ExperimentDef, MetricDef, MetricKind, Targeting, VariationDef};
use finpulse_experiments::{Assigner, ExperimentBook};
use finpulse_log::{EventStore, StoreOptions};
use finpulse_sim::{SimConfig, SimExperiment, Simulator};

const KEY: &str = "onboarding-next-day";
/// The true effect: extra sessions per treatment user in the week after exposure.
const EXTRA_SESSION_P: f64 = 0.6;

fn metric(name: &str, kind: MetricKind, event: &str, field: Option<&str>) -> MetricDef {
    MetricDef {
        name: name.into(),
        kind,
        event: event.into(),
        field: field.map(str::to_string),
        denominator: None,
        window_days: 7,
        pre_window_days: None,
        inverse: false,
        guardrail: false,
    }
}

fn definition() -> ExperimentDef {
    ExperimentDef {
        key: KEY.into(),
        description: "a next-day reminder after signup".into(),
        variations: vec![VariationDef { key: "control".into(), weight: 0.5 }, VariationDef { key: "reminder".into(), weight: 0.5 }],
        traffic_share: 1.0,
        targeting: Targeting::default(),
        layer: None,
        metrics: vec![
            metric("sessions_7d", MetricKind::Count, "app_session", None),
            // The reminder moves sessions only: deposits are the same in both arms.
            metric("deposit_fen_7d", MetricKind::Sum, "deposit", Some("amount_fen")),
        ],
        analysis: AnalysisSettings::default(),
    }
}

#[test]
fn the_report_finds_the_effect_the_simulator_put_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let registry = store.registry();
    let mut book = ExperimentBook::load(dir.path()).unwrap();
    book.define(definition(), &registry, &[], "demo").unwrap();
    book.start(KEY, 0, "demo").unwrap();
    let assigner = Assigner::new(&book, &registry, |_| None).unwrap();
    let experiment = SimExperiment {
        key: KEY.into(),
        variations: vec!["control".into(), "reminder".into()],
        extra_session_p: EXTRA_SESSION_P,
        seed: 7,
        assign: |user: &str| {
            let mut out = Vec::new();
            assigner.assign(user, &[], &mut out);
            out.first().map(|a| a.variation_index)
        },
    };
    let mut sim = Simulator::new(SimConfig { users: 4_000, days: 30, seed: 11, start_day: 20_454 }, &registry);
    while let Some(mut day) = sim.next_day() {
        experiment.apply(&registry, &mut day);
        store.append_groups(&[day]).unwrap();
    }
    let view = store.view_handle().snapshot();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let report = runtime.block_on(finpulse_experiments::report(&view, book.get(KEY).unwrap())).unwrap();

    let users: u64 = report.variations.iter().map(|v| v.users).sum();
    assert!(users > 3_500, "most simulated users signed up and were exposed: {users}");
    assert!(!report.srm.mismatch, "the split follows the weights: p = {}", report.srm.p_value);
    let sessions = report.metrics[0].variations[1].comparison.as_ref().unwrap();
    eprintln!(
        "users {:?}, srm p {:.3}, sessions_7d effect {:?}, p {:e}",
        report.variations, report.srm.p_value, sessions.absolute, sessions.p_value
    );
    assert!(sessions.significant, "{sessions:?}");
    assert!(
        sessions.absolute.lower < EXTRA_SESSION_P && EXTRA_SESSION_P < sessions.absolute.upper,
        "the interval [{}, {}] covers the true effect {EXTRA_SESSION_P}",
        sessions.absolute.lower,
        sessions.absolute.upper
    );
    assert!(sessions.chance_to_win > 0.99);
    let deposits = report.metrics[1].variations[1].comparison.as_ref().unwrap();
    assert!(!deposits.significant, "no effect was put on deposits: {deposits:?}");
}
