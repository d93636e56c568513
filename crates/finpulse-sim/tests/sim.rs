//! The simulator: deterministic, valid against the registry, and with the patterns later
//! analyses must find.

use finpulse_core::{Event, RawRecord, RawValue, Registry, ValidationLimits, Value};
use finpulse_sim::{SimConfig, Simulator};
use std::collections::{HashMap, HashSet};

fn run(cfg: SimConfig) -> Vec<Event> {
    let reg = Registry::builtin();
    let mut sim = Simulator::new(cfg, &reg);
    let mut out = Vec::new();
    while let Some(day) = sim.next_day() {
        out.extend(day);
    }
    out
}

fn small() -> SimConfig {
    SimConfig { users: 3000, days: 60, seed: 7, ..SimConfig::default() }
}

fn to_raw(reg: &Registry, e: &Event) -> RawRecord {
    let mut r = RawRecord::default()
        .with("event_id", RawValue::Str(e.event_id.clone()))
        .with("ts", RawValue::Micros(e.ts_us))
        .with("type", RawValue::Str(reg.event_type(e.type_id).name.clone()));
    if let Some(u) = &e.user_id {
        r = r.with("user_id", RawValue::Str(u.clone()));
    }
    for (f, v) in &e.fields {
        let raw = match v {
            Value::Bool(b) => RawValue::Bool(*b),
            Value::Int(i) => RawValue::Int(*i),
            Value::Float(x) => RawValue::Float(*x),
            Value::Str(s) => RawValue::Str(s.clone()),
            Value::Ts(t) => RawValue::Micros(*t),
        };
        r = r.with(&reg.field(*f).name, raw);
    }
    r
}

#[test]
fn the_same_seed_gives_the_same_events() {
    let cfg = SimConfig { users: 500, days: 20, ..small() };
    assert_eq!(run(cfg), run(cfg));
    assert_ne!(run(cfg), run(SimConfig { seed: 8, ..cfg }));
}

/// The simulated app with an A/B experiment on it (exposures at signup), as `demo --experiment`.
fn run_with_experiment(cfg: SimConfig) -> Vec<Event> {
    let reg = Registry::builtin();
    let mut sim = Simulator::new(cfg, &reg);
    let experiment = finpulse_sim::SimExperiment {
        key: "onboarding".into(),
        variations: vec!["control".into(), "treatment".into()],
        extra_session_p: 0.3,
        seed: 1,
        assign: |user: &str| user.bytes().last().map(|b| usize::from(b % 2)),
    };
    let mut out = Vec::new();
    while let Some(mut day) = sim.next_day() {
        experiment.apply(&reg, &mut day);
        out.extend(day);
    }
    out
}

#[test]
fn every_simulated_event_passes_validation_unchanged() {
    let reg = Registry::builtin();
    let events = run_with_experiment(small());
    let limits = ValidationLimits { now_us: i64::MAX / 2, ..ValidationLimits::default() };
    let mut ids = HashSet::new();
    for e in &events {
        let validated = reg.validate(&to_raw(&reg, e), &limits).unwrap_or_else(|err| panic!("{e:?}: {err}"));
        assert_eq!(&validated, e);
        assert!(ids.insert(e.event_id.clone()), "duplicate id {}", e.event_id);
    }
    // Every built-in type the app produces appears (decisions and cases are the engine's output).
    let seen: HashSet<&str> = events.iter().map(|e| reg.event_type(e.type_id).name.as_str()).collect();
    for t in reg.event_types().filter(|t| !["risk_decision", "case_update"].contains(&t.name.as_str())) {
        assert!(seen.contains(t.name.as_str()), "no {} events", t.name);
    }
}

#[test]
fn channels_differ_in_cost_per_signup() {
    let reg = Registry::builtin();
    let events = run(small());
    let channel = reg.field_id("channel").unwrap();
    let amount = reg.field_id("amount_fen").unwrap();
    let (signup, spend) = (reg.type_id("user_signup").unwrap(), reg.type_id("marketing_spend").unwrap());
    let mut signups: HashMap<String, f64> = HashMap::new();
    let mut spent: HashMap<String, f64> = HashMap::new();
    for e in &events {
        let Some(Value::Str(c)) = e.get(channel) else { continue };
        if e.type_id == signup {
            *signups.entry(c.clone()).or_default() += 1.0;
        } else if e.type_id == spend
            && let Some(Value::Int(fen)) = e.get(amount)
        {
            *spent.entry(c.clone()).or_default() += *fen as f64;
        }
    }
    let cac = |c: &str| spent[c] / signups[c] / 100.0;
    assert!(cac("offline_branch") > 3.0 * cac("referral"), "{} vs {}", cac("offline_branch"), cac("referral"));
    assert!(cac("douyin") > cac("app_store"));
}

#[test]
fn fraud_is_rare_and_labelled_later() {
    let reg = Registry::builtin();
    let events = run(small());
    let payment = reg.type_id("payment").unwrap();
    let label = reg.type_id("fraud_label").unwrap();
    let target = reg.field_id("target_event_id").unwrap();
    let ts_of: HashMap<&str, i64> = events.iter().filter(|e| e.type_id == payment).map(|e| (e.event_id.as_str(), e.ts_us)).collect();
    let labels: Vec<&Event> = events.iter().filter(|e| e.type_id == label).collect();
    let share = labels.len() as f64 / ts_of.len() as f64;
    assert!((0.002..0.05).contains(&share), "fraud share {share}");
    for l in labels {
        let Some(Value::Str(t)) = l.get(target) else { panic!("label without target") };
        assert!(l.ts_us > ts_of[t.as_str()], "label before its payment");
    }
}

#[test]
fn churners_fade_before_they_stop() {
    // Compare each user's last 14 active days with their first 14: users who went silent well
    // before the end slowed down much more than users still active at the end.
    let reg = Registry::builtin();
    let cfg = SimConfig { days: 90, ..small() };
    let events = run(cfg);
    let session = reg.type_id("app_session").unwrap();
    let day = |ts: i64| (ts / finpulse_core::time::MICROS_PER_DAY - cfg.start_day) as i32;
    let mut per_user: HashMap<&str, Vec<i32>> = HashMap::new();
    for e in events.iter().filter(|e| e.type_id == session) {
        per_user.entry(e.user_id.as_deref().unwrap()).or_default().push(day(e.ts_us));
    }
    let (mut churned, mut stayed) = ([0usize; 2], [0usize; 2]);
    for days in per_user.values() {
        let (first, last) = (*days.iter().min().unwrap(), *days.iter().max().unwrap());
        if last - first < 35 {
            continue;
        }
        let early = days.iter().filter(|d| **d < first + 14).count();
        let late = days.iter().filter(|d| **d > last - 14).count();
        let bucket = if last < cfg.days as i32 - 15 {
            &mut churned
        } else if last >= cfg.days as i32 - 2 {
            &mut stayed
        } else {
            continue;
        };
        bucket[0] += early;
        bucket[1] += late;
    }
    assert!(churned[0] > 300 && stayed[0] > 300, "{churned:?} {stayed:?}");
    let ratio = |b: [usize; 2]| b[1] as f64 / b[0] as f64;
    assert!(ratio(churned) < 0.8 * ratio(stayed), "churned {:.2} vs stayed {:.2}", ratio(churned), ratio(stayed));
}
