//! Experiments over HTTP, against a real server: defining (and the bad definitions refused by
//! name), starting, assigning (the same variation in process, over HTTP, and after a stop and a
//! restart), exposures sent as events, the report over them (checked against counts made here
//! from the events sent), a variation nobody saw, the power calculator, who may do what, and
//! the audit trail of every change.

mod common;

use finpulse_access::{Role, audit};
use finpulse_experiments::{Assigner, ExperimentBook};
use finpulse_log::{EventStore, StoreOptions};
use finpulse_server::ApiLimits;
use serde_json::{Value, json};

const USERS: usize = 600;

fn event(id: String, user: &str, day: u32, hour: u32, kind: &str, extra: Value) -> Value {
    let ts = format!("2026-11-{day:02}T{hour:02}:00:00+00:00");
    let mut e = json!({"event_id": id, "user_id": user, "ts": ts, "type": kind});
    e.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    e
}

async fn get(c: &reqwest::Client, url: String) -> (u16, Value) {
    let r = c.get(url).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn post(c: &reqwest::Client, url: String, body: &Value) -> (u16, Value) {
    let r = c.post(url).json(body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn definition(key: &str) -> Value {
    json!({
        "key": key,
        "description": "new onboarding tasks",
        "variations": [{"key": "control", "weight": 0.5}, {"key": "new_tasks", "weight": 0.5}],
        "metrics": [
            {"name": "deposited", "kind": "conversion", "event": "deposit", "window_days": 7},
            {"name": "deposit_fen", "kind": "sum", "event": "deposit", "field": "amount_fen", "window_days": 7, "pre_window_days": 7},
            {"name": "deposit_fen_per_session", "kind": "ratio", "event": "deposit", "field": "amount_fen",
             "denominator": {"event": "app_session"}, "window_days": 7},
            {"name": "complaints", "kind": "count", "event": "feedback", "inverse": true, "guardrail": true}
        ]
    })
}

/// Whether user `i` in `variation` deposits inside the window: 20% of control, 45% of the
/// treatment (by the user's number, so the counts are known exactly).
fn converts(i: usize, variation: &str) -> bool {
    let share = if variation == "control" { 20 } else { 45 };
    (i * 37) % 100 < share
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_is_defined_assigned_exposed_and_reported_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let server = common::start(store, ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let c = common::admin_client(dir.path());

    // Bad definitions are refused, each naming its field.
    let mut bad = definition("onboarding");
    bad["variations"][1]["weight"] = json!(0.4);
    let (status, body) = post(&c, format!("{base}/v1/experiments"), &bad).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().starts_with("variations: the weights sum to 0.9, not 1"), "{body}");
    let mut bad = definition("onboarding");
    bad["metrics"][0]["event"] = json!("teleport");
    let (status, body) = post(&c, format!("{base}/v1/experiments"), &bad).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "metrics[0].event: no event type 'teleport' in the schema"));
    let mut layered = definition("home-a");
    layered["layer"] = json!({"name": "home", "start": 0.0, "end": 0.6});
    assert_eq!(post(&c, format!("{base}/v1/experiments"), &layered).await.0, 200);
    let mut clash = definition("home-b");
    clash["layer"] = json!({"name": "home", "start": 0.5, "end": 1.0});
    let (status, body) = post(&c, format!("{base}/v1/experiments"), &clash).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "layer 'home': home-b [0.5, 1) overlaps home-a [0, 0.6)"));

    // Define and start; a second start is a conflict, an unknown key a 404.
    let (status, defined) = post(&c, format!("{base}/v1/experiments"), &definition("onboarding")).await;
    assert_eq!((status, defined["status"].as_str()), (200, Some("draft")), "{defined}");
    let (status, started) = post(&c, format!("{base}/v1/experiments/onboarding/start"), &json!({})).await;
    assert_eq!((status, started["status"].as_str()), (200, Some("running")), "{started}");
    assert_eq!(post(&c, format!("{base}/v1/experiments/onboarding/start"), &json!({})).await.0, 409);
    assert_eq!(post(&c, format!("{base}/v1/experiments/nope/start"), &json!({})).await.0, 404);

    // Assignment over HTTP is the in-process one; a partner app may assign but not define.
    let partner = common::client_with(&common::key(dir.path(), Role::PartnerApp));
    assert_eq!(post(&partner, format!("{base}/v1/experiments"), &definition("x")).await.0, 403);
    let ops = common::client_with(&common::key(dir.path(), Role::OpsManager));
    assert_eq!(get(&ops, format!("{base}/v1/experiments/assign?user_id=u1")).await.0, 403);
    let registry = finpulse_core::Registry::builtin();
    let book = ExperimentBook::load(dir.path()).unwrap();
    let in_process = Assigner::new(&book, &registry, |_| None).unwrap();
    let mut variations = Vec::with_capacity(USERS);
    let mut out = Vec::new();
    for i in 0..USERS {
        let user = format!("u{i}");
        let (status, body) = get(&partner, format!("{base}/v1/experiments/assign?user_id={user}")).await;
        assert_eq!(status, 200, "{body}");
        let got: Vec<&Value> = body["assignments"].as_array().unwrap().iter().filter(|a| a["experiment"] == "onboarding").collect();
        in_process.assign(&user, &[], &mut out);
        let here = out.iter().find(|a| a.experiment == "onboarding").unwrap();
        assert_eq!(got[0]["variation"].as_str(), Some(here.variation), "{user}");
        variations.push(here.variation.to_string());
    }
    let (status, body) = get(&partner, format!("{base}/v1/experiments/assign?user_id=u1&shoe_size=42")).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().starts_with("shoe_size: not a user property"), "{body}");
    assert_eq!(get(&partner, format!("{base}/v1/experiments/assign")).await.0, 400);

    // Exposures and outcomes, as events.
    let mut events = Vec::new();
    for (i, variation) in variations.iter().enumerate() {
        let user = format!("u{i}");
        events.push(event(
            format!("x{i}"),
            &user,
            2,
            10,
            "experiment_exposure",
            json!({"experiment_key": "onboarding", "variation": variation}),
        ));
        events.push(event(
            format!("x{i}b"),
            &user,
            3,
            10,
            "experiment_exposure",
            json!({"experiment_key": "onboarding", "variation": variation}),
        ));
        events.push(event(format!("s{i}"), &user, 2, 11, "app_session", json!({"session_secs": 60})));
        if i % 3 == 0 {
            // Before exposure: the covariate's window, not the metric's.
            events.push(event(format!("p{i}"), &user, 1, 9, "deposit", json!({"amount_fen": 5_000, "currency": "CNY"})));
        }
        if converts(i, variation) {
            events.push(event(format!("d{i}"), &user, 4, 12, "deposit", json!({"amount_fen": 10_000 + 10 * i as i64, "currency": "CNY"})));
        }
        // After the window: never counted.
        events.push(event(format!("late{i}"), &user, 20, 12, "deposit", json!({"amount_fen": 99_000, "currency": "CNY"})));
    }
    // One user saw both variations: left out.
    events.push(event(
        "both".into(),
        "u0",
        3,
        12,
        "experiment_exposure",
        json!({"experiment_key": "onboarding", "variation": if variations[0] == "control" { "new_tasks" } else { "control" }}),
    ));
    let r = c.post(format!("{base}/v1/events")).json(&events).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let (status, report) = get(&c, format!("{base}/v1/experiments/onboarding/report")).await;
    assert_eq!(status, 200, "{report}");
    let users = |v: &str| (1..USERS).filter(|&i| variations[i] == v).count() as u64;
    let conversions = |v: &str| (1..USERS).filter(|&i| variations[i] == v && converts(i, v)).count() as f64;
    assert_eq!(report["multiple_variation_users"], 1);
    assert_eq!(report["variations"][0]["users"].as_u64(), Some(users("control")));
    assert_eq!(report["variations"][1]["users"].as_u64(), Some(users("new_tasks")));
    assert_eq!(report["srm"]["mismatch"], false, "{}", report["srm"]);
    let deposited = &report["metrics"][0];
    assert_eq!(deposited["metric"], "deposited");
    let control_mean = deposited["variations"][0]["mean"].as_f64().unwrap();
    assert!((control_mean - conversions("control") / users("control") as f64).abs() < 1e-12, "{deposited}");
    let treatment = &deposited["variations"][1];
    assert!((treatment["mean"].as_f64().unwrap() - conversions("new_tasks") / users("new_tasks") as f64).abs() < 1e-12);
    let comparison = &treatment["comparison"];
    assert!(comparison["p_value"].as_f64().unwrap() < 1e-3, "{comparison}");
    assert_eq!(comparison["significant"], true);
    assert!(comparison["chance_to_win"].as_f64().unwrap() > 0.999);
    assert!(comparison["relative"]["lower"].as_f64().unwrap() > 0.0);
    assert!(comparison["adjusted_p_value"].as_f64().unwrap() >= comparison["p_value"].as_f64().unwrap());
    // The sum over the window: amounts of converters only (not the pre-period or late ones).
    let sum_mean = |v: &str| {
        (1..USERS).filter(|&i| variations[i] == v && converts(i, v)).map(|i| 10_000.0 + 10.0 * i as f64).sum::<f64>() / users(v) as f64
    };
    let fen = &report["metrics"][1];
    assert!((fen["variations"][0]["mean"].as_f64().unwrap() - sum_mean("control")).abs() < 1e-6, "{fen}");
    assert!(fen["theta"].is_number(), "CUPED ran: {fen}");
    let ratio = &report["metrics"][2];
    assert!((ratio["variations"][1]["mean"].as_f64().unwrap() - sum_mean("new_tasks")).abs() < 1e-6, "one session each: {ratio}");
    let complaints = &report["metrics"][3]["variations"][1]["comparison"];
    assert_eq!(complaints["guardrail"], "not_enough_data", "{complaints}");
    assert_eq!(report["guardrails"], "not_enough_data");

    // Stop: nobody is assigned; restart: everyone gets their variation back.
    let (status, stopped) = post(&c, format!("{base}/v1/experiments/onboarding/stop"), &json!({})).await;
    assert_eq!((status, stopped["status"].as_str()), (200, Some("stopped")));
    let (_, body) = get(&partner, format!("{base}/v1/experiments/assign?user_id=u7")).await;
    assert!(!body["assignments"].to_string().contains("onboarding"), "{body}");
    let (status, body) = post(&c, format!("{base}/v1/experiments/onboarding/stop"), &json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(post(&c, format!("{base}/v1/experiments/onboarding/start"), &json!({})).await.0, 200);
    for (i, variation) in variations.iter().enumerate().step_by(7) {
        let (_, body) = get(&partner, format!("{base}/v1/experiments/assign?user_id=u{i}")).await;
        let got = body["assignments"].as_array().unwrap().iter().find(|a| a["experiment"] == "onboarding").unwrap().clone();
        assert_eq!(got["variation"].as_str(), Some(variation.as_str()), "u{i} moved after a restart");
    }
    let (_, listed) = get(&c, format!("{base}/v1/experiments")).await;
    let onboarding = listed["experiments"].as_array().unwrap().iter().find(|e| e["key"] == "onboarding").unwrap().clone();
    assert_eq!(onboarding["phases"].as_array().unwrap().len(), 2, "{onboarding}");
    // The split of a started experiment is fixed.
    let mut reweighted = definition("onboarding");
    reweighted["variations"] = json!([{"key": "control", "weight": 0.2}, {"key": "new_tasks", "weight": 0.8}]);
    let (status, body) = post(&c, format!("{base}/v1/experiments"), &reweighted).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().starts_with("variations: experiment 'onboarding' has started"), "{body}");

    // A variation nobody saw: guarded answers, never NaN.
    let mut three = definition("three-way");
    three["variations"] = json!([{"key": "control", "weight": 0.4}, {"key": "a", "weight": 0.3}, {"key": "b", "weight": 0.3}]);
    assert_eq!(post(&c, format!("{base}/v1/experiments"), &three).await.0, 200);
    let seen: Vec<Value> = (0..40)
        .map(|i| {
            let v = if i % 2 == 0 { "control" } else { "a" };
            event(format!("t{i}"), &format!("u{i}"), 2, 10, "experiment_exposure", json!({"experiment_key": "three-way", "variation": v}))
        })
        .collect();
    assert_eq!(c.post(format!("{base}/v1/events")).json(&seen).send().await.unwrap().status(), 200);
    let (status, report) = get(&c, format!("{base}/v1/experiments/three-way/report")).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["variations"][2]["users"], 0);
    let empty = &report["metrics"][0]["variations"][2];
    assert_eq!(empty["users"], 0);
    assert!(empty["comparison"]["guard"].is_string(), "{empty}");
    assert_eq!(empty["comparison"]["p_value"], 1.0);
    assert!(!report.to_string().contains("null"), "no NaN (sent as null): {report}");

    // The power calculator.
    let (status, power) = get(&c, format!("{base}/v1/experiments/power?conversion_rate=0.1&relative_effect=0.1")).await;
    assert_eq!((status, power["users_needed_per_variation"].as_u64()), (200, Some(14_128)), "{power}");
    let (status, power) = get(&c, format!("{base}/v1/experiments/power?conversion_rate=1.5&users_per_variation=100")).await;
    assert_eq!(status, 400);
    assert!(power["error"].as_str().unwrap().starts_with("conversion_rate:"), "{power}");

    server.stop().await.unwrap();
    let snap = audit::read(&finpulse_access::audit_dir(dir.path())).unwrap();
    let changes: Vec<(&str, &str)> = snap
        .entries
        .iter()
        .filter(|e| e.record.action.starts_with("POST /v1/experiments"))
        .map(|e| (e.record.action.as_str(), e.record.outcome.as_str()))
        .collect();
    assert!(changes.iter().any(|(a, o)| a.ends_with("/start") && *o == "ok"), "{changes:?}");
    assert!(changes.iter().any(|(a, o)| a.ends_with("/stop") && *o == "ok"), "{changes:?}");
    assert!(changes.iter().any(|(a, o)| *a == "POST /v1/experiments" && *o != "ok" && *o != "started"), "refusals too: {changes:?}");
}
