//! Decisions, live profiles and rules over a real socket and a real data directory.

mod common;

use finpulse_log::{EventStore, StoreOptions};
use finpulse_server::ApiLimits;
use serde_json::{Value, json};

async fn post(client: &reqwest::Client, url: String, body: String) -> (u16, Value) {
    let r = client.post(url).header("content-type", "application/json").body(body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn payment(id: &str, user: &str, minute: u32, amount: i64) -> Value {
    json!({"event_id": id, "user_id": user, "ts": format!("2026-03-01T10:{minute:02}:00+08:00"), "type": "payment",
           "amount_fen": amount, "currency": "CNY", "terminal_id": "t1", "device_id": "d1"})
}

const RULES: &str = r#"name = "cards"
review_at = 0.5
block_at = 0.9

[lists]
block_devices = ["stolen-phone"]

[[rule]]
name = "large_vs_own_history"
when = "payment.amount_fen > 5 * user.avg_amount_fen_30d"
score = 0.7
action = "review"

[[rule]]
name = "burst"
when = "user.tx_count_10m >= 3"
score = 0.2
shadow = true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_use_the_state_before_the_transaction_rules_publish_without_restart_and_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let server = common::start(store, ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let c = common::admin_client(dir.path());

    // A cold-start user is decided, not refused; with no rules or model everything is allowed.
    let (s, d) = post(&c, format!("{base}/v1/decisions"), payment("p1", "u1", 0, 1000).to_string()).await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["action"], "allow");
    assert_eq!(d["recorded"], "new");
    assert!(d["elapsed_us"].as_f64().unwrap() > 0.0);

    // A ruleset with a type error is refused with its line and column; nothing becomes active.
    let bad = RULES.replace("5 * user.avg_amount_fen_30d", "'five'");
    let (s, e) = post(&c, format!("{base}/v1/rules"), bad).await;
    assert_eq!(s, 400);
    let msg = e["error"].as_str().unwrap();
    assert!(msg.starts_with("request body:10:28: rule \"large_vs_own_history\": cannot compare a number with a text"), "{msg}");
    assert!(msg.contains("version 0 stays active"), "{msg}");
    let (s, p) = post(&c, format!("{base}/v1/rules"), RULES.to_string()).await;
    assert_eq!((s, p["version"].as_u64()), (200, Some(1)), "{p}");

    for (i, amount) in [1200, 900, 1100].iter().enumerate() {
        let (s, d) =
            post(&c, format!("{base}/v1/decisions"), payment(&format!("p{}", i + 2), "u1", i as u32 + 1, *amount).to_string()).await;
        assert_eq!((s, d["action"].as_str()), (200, Some("allow")), "{d}");
    }
    // 9,000 is more than 5× the user's average so far (1,050): reviewed, with the rule as reason.
    let (_, d) = post(&c, format!("{base}/v1/decisions"), payment("p5", "u1", 5, 9000).to_string()).await;
    assert_eq!(d["action"], "review", "{d}");
    assert_eq!(d["ruleset_version"], 1);
    assert_eq!(d["reasons"][0]["name"], "large_vs_own_history");
    assert_eq!(d["shadow_hits"], json!(["burst"]), "shadow rules are recorded, not acted on");
    let p5_elapsed_us = d["elapsed_us"].as_f64().unwrap();
    // A blocked device is blocked whatever the rules say.
    let mut stolen = payment("p6", "u2", 6, 100);
    stolen["device_id"] = json!("stolen-phone");
    let (_, d) = post(&c, format!("{base}/v1/decisions"), stolen.to_string()).await;
    assert_eq!((d["action"].as_str(), d["reasons"][0]["list"].as_str()), (Some("block"), Some("block_devices")), "{d}");
    // The same event id again is not stored twice, and is answered with the decision recorded
    // the first time (its time taken too), not one made now.
    let (s, d) = post(&c, format!("{base}/v1/decisions"), payment("p5", "u1", 5, 9000).to_string()).await;
    assert_eq!(s, 200, "{d}");
    assert!(d["recorded"].as_str().unwrap().starts_with("duplicate"), "{d}");
    assert_eq!((d["event_id"].as_str(), d["action"].as_str(), d["ruleset_version"].as_u64()), (Some("p5"), Some("review"), Some(1)), "{d}");
    assert_eq!(d["reasons"][0]["name"], "large_vs_own_history", "{d}");
    assert_eq!(d["shadow_hits"], json!(["burst"]), "{d}");
    assert!(d["score"].as_f64().unwrap() >= 0.5, "{d}");
    assert_eq!(d["elapsed_us"].as_f64(), Some(p5_elapsed_us), "{d}");
    let retried_p5 = d.clone();
    // Ids are looked up as text, whatever quotes they hold.
    let odd = payment("q' OR '1'='1", "u5", 9, 100);
    let (_, first) = post(&c, format!("{base}/v1/decisions"), odd.to_string()).await;
    let (_, again) = post(&c, format!("{base}/v1/decisions"), odd.to_string()).await;
    assert_eq!((first["recorded"].as_str(), again["event_id"].as_str()), (Some("new"), Some("q' OR '1'='1")), "{again}");
    assert!(again["recorded"].as_str().unwrap().ends_with("the decision recorded then"), "{again}");
    assert_eq!(again["elapsed_us"], first["elapsed_us"], "{again}");
    // An id stored by plain ingestion, never decided, gets a decision that is not recorded.
    let (s, _) = post(&c, format!("{base}/v1/events"), json!([payment("ing1", "u3", 8, 100)]).to_string()).await;
    assert_eq!(s, 200);
    let (_, d) = post(&c, format!("{base}/v1/decisions"), payment("ing1", "u3", 8, 100).to_string()).await;
    assert!(d["recorded"].as_str().unwrap().contains("without a decision"), "{d}");
    assert_eq!(d["action"], "allow", "{d}");

    // Bad requests name what is wrong.
    let (s, e) = post(
        &c,
        format!("{base}/v1/decisions"),
        json!({"event_id": "x", "user_id": "u1", "ts": "2026-03-01T10:00:00Z", "type": "deposit", "amount_fen": 5, "currency": "CNY"})
            .to_string(),
    )
    .await;
    assert_eq!(s, 400);
    assert!(e["error"].as_str().unwrap().contains("does not get decisions"), "{e}");
    let mut no_amount = payment("p7", "u1", 7, 1);
    no_amount.as_object_mut().unwrap().remove("amount_fen");
    let (s, e) = post(&c, format!("{base}/v1/decisions"), no_amount.to_string()).await;
    assert_eq!(s, 400);
    assert!(e["error"].as_str().unwrap().contains("amount_fen"), "{e}");

    // Events ingested the ordinary way reach the live state too.
    let deposit = json!({"event_id": "dep1", "user_id": "u1", "ts": "2026-03-01T09:00:00+08:00", "type": "deposit", "amount_fen": 50_000, "currency": "CNY"});
    let (s, r) = post(&c, format!("{base}/v1/events"), json!([deposit]).to_string()).await;
    assert_eq!((s, r["accepted"].as_u64()), (200, Some(1)), "{r}");

    // The profile answers from memory and counts the five payments of u1.
    let profile: Value = c.get(format!("{base}/v1/users/u1")).send().await.unwrap().json().await.unwrap();
    assert_eq!(profile["counters"]["payment"], 5, "{profile}");
    assert_eq!(profile["counters"]["risk_decision"], 5, "{profile}");
    assert_eq!(profile["behaviour"]["tx_count_total"], 5);
    assert_eq!(profile["balance_fen"], 50_000, "{profile}");
    assert_eq!(c.get(format!("{base}/v1/users/nobody")).send().await.unwrap().status().as_u16(), 404);
    let rules: Value = c.get(format!("{base}/v1/rules")).send().await.unwrap().json().await.unwrap();
    assert_eq!(rules["version"], 1);
    // A ruleset published by another process (the CLI) is picked up without a restart.
    finpulse_risk::ruleset::RulesetStore::in_data_dir(dir.path()).publish(&RULES.replace("0.7", "0.75"), "cli.toml", "ana").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let rules: Value = c.get(format!("{base}/v1/rules")).send().await.unwrap().json().await.unwrap();
        if rules["version"] == 2 {
            assert_eq!(rules["rules"][0]["score"], 0.75);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the published ruleset was not picked up: {rules}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The review (u1) and the block (u2) raised alerts, gathered into one case per user.
    let cases: Value = c.get(format!("{base}/v1/cases?status=open")).send().await.unwrap().json().await.unwrap();
    let bad = c.get(format!("{base}/v1/cases?status=closed")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let bad: Value = bad.json().await.unwrap();
    assert_eq!(bad["error"], "status \"closed\": use open or resolved");
    let open: Vec<(&str, usize)> = cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["user_id"].as_str().unwrap(), c["alerts"].as_array().unwrap().len()))
        .collect();
    assert_eq!(open, [("u2", 1), ("u1", 1)], "{cases}");
    let case_of_u1 = cases["cases"][1]["case_id"].as_str().unwrap().to_string();
    let act = |action: &str, body: Value| (format!("{base}/v1/cases/{case_of_u1}/{action}"), body.to_string());
    let (u, b) = act("assign", json!({"assignee": "li"}));
    assert_eq!(post(&c, u, b).await.0, 200);
    let (u, b) = act("resolve", json!({"label": "maybe"}));
    let (s, e) = post(&c, u, b).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("label \"maybe\": use fraud or genuine")));
    let (u, b) = act("comment", json!({}));
    assert_eq!(post(&c, u, b).await.0, 400, "a comment needs its text");
    let (u, b) = act("resolve", json!({"label": "fraud", "note": "customer confirmed"}));
    let (s, resolved) = post(&c, u, b).await;
    assert_eq!((s, resolved["status"].as_str()), (200, Some("resolved")), "{resolved}");
    assert_eq!(resolved["history"].as_array().unwrap().len(), 2);
    // Changes are recorded under the authenticated caller, never a name the body claims.
    assert!(resolved["history"][1]["by"].as_str().unwrap().starts_with("key:"), "{resolved}");
    let (u, b) = act("comment", json!({"text": "late"}));
    assert_eq!(post(&c, u, b).await.0, 409, "a resolved case takes no more changes");
    assert_eq!(post(&c, format!("{base}/v1/cases/case-99/comment"), json!({"text": "x"}).to_string()).await.0, 404);
    // The verdict became a fraud label on the reviewed payment: the loop is closed.
    let (_, q) =
        post(&c, format!("{base}/v1/sql"), json!({"query": "SELECT target_event_id, is_fraud FROM fraud_label"}).to_string()).await;
    assert_eq!(q["rows"], json!([["p5", true]]), "{q}");
    let profile_after: Value = c.get(format!("{base}/v1/users/u1")).send().await.unwrap().json().await.unwrap();
    assert_eq!(profile_after["behaviour"]["known_frauds"], 1, "{profile_after}");

    // Decisions are stored with their transactions and are queryable: one per new transaction
    // (p1–p4 and the quoted id allowed), none for retries or the id ingested before.
    let (_, q) = post(
        &c,
        format!("{base}/v1/sql"),
        json!({"query": "SELECT decision, count(*) AS n FROM risk_decision GROUP BY decision ORDER BY decision"}).to_string(),
    )
    .await;
    assert_eq!(q["rows"], json!([["allow", 5], ["block", 1], ["review", 1]]), "{q}");
    let decided = 7;

    // A restart rebuilds the same profile (from the checkpoint written at stop).
    server.stop().await.unwrap();
    assert!(finpulse_state::checkpoint_path(dir.path()).exists());
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let server = common::start(store, ApiLimits::default()).await.unwrap();
    let again: Value = c.get(format!("http://{}/v1/users/u1", server.addr)).send().await.unwrap().json().await.unwrap();
    assert_eq!(again, profile_after);
    let case: Value = c.get(format!("http://{}/v1/cases/{case_of_u1}", server.addr)).send().await.unwrap().json().await.unwrap();
    assert_eq!(case["status"], "resolved", "cases are rebuilt from the log: {case}");
    // After the restart the latest decisions are read back into memory; a retry gets the same
    // answer from there (or from the store, before they are back).
    let (_, after_restart) = post(&c, format!("http://{}/v1/decisions", server.addr), payment("p5", "u1", 5, 9000).to_string()).await;
    assert_eq!(after_restart, retried_p5, "a retry answers the same from memory and from the store");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while server.decisions_remembered() < decided {
        assert!(std::time::Instant::now() < deadline, "{} of {decided} decisions read back", server.decisions_remembered());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(server.decisions_remembered(), decided);
    let (_, from_memory) = post(&c, format!("http://{}/v1/decisions", server.addr), payment("p5", "u1", 5, 9000).to_string()).await;
    assert_eq!(from_memory, retried_p5, "read back, the decision answers a retry as it did before the restart");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_server_moves_its_checkpoint_up_in_the_background_to_the_state_it_applied() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let limits = ApiLimits { checkpoint_check_secs: 1, checkpoint_events_min: 10, ..ApiLimits::default() };
    let server = common::start(store, limits).await.unwrap();
    let base = format!("http://{}", server.addr);
    let c = common::admin_client(dir.path());
    // Each decision stores the payment and its risk_decision: 24 log records.
    for i in 0..12u32 {
        let (s, d) = post(&c, format!("{base}/v1/decisions"), payment(&format!("p{i}"), &format!("u{}", i % 3), i, 1000).to_string()).await;
        assert_eq!(s, 200, "{d}");
    }
    let path = finpulse_state::checkpoint_path(dir.path());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // The first check after the decisions finds 24 records applied (or, on a slow machine, a
    // check part-way finds at least 10).
    let at = loop {
        if let Ok((_, at)) = finpulse_state::load_checkpoint(&path) {
            break at;
        }
        assert!(std::time::Instant::now() < deadline, "no background checkpoint within a minute");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!((10..=24).contains(&at), "{at}");
    // The checkpoint is the state of its records applied from scratch.
    let (checkpointed, _) = finpulse_state::load_checkpoint(&path).unwrap();
    let registry = EventStore::load_registry(dir.path()).unwrap();
    let vocab = finpulse_state::Vocabulary::new(&registry);
    let mut replayed = finpulse_state::LiveState::new(finpulse_state::LIVE_STATE_PARTITIONS);
    EventStore::replay(
        dir.path(),
        0,
        |_, _| true,
        |seq, e| {
            if seq < at {
                replayed.apply(&vocab, &e);
            }
        },
    )
    .unwrap();
    assert!(checkpointed == replayed, "the background checkpoint equals the log replayed through it");
    // Decisions go on while it runs; the stop writes the final one.
    let (s, _) = post(&c, format!("{base}/v1/decisions"), payment("p-last", "u0", 40, 500).to_string()).await;
    assert_eq!(s, 200);
    server.stop().await.unwrap();
    assert_eq!(finpulse_state::load_checkpoint(&path).unwrap().1, 26);
}
