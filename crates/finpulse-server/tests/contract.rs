//! The public answers' JSON, pinned: a change to an engine type must not change what clients
//! read. Times that vary from run to run are replaced by "<number>" before comparing. To accept
//! a deliberate change of the API, bless the file again
//! (`FINPULSE_BLESS_GOLDEN=1 cargo test --workspace --test contract`) and review its diff.

mod common;

use finpulse_log::{EventStore, StoreOptions};
use finpulse_server::ApiLimits;
use serde_json::{Value, json};

/// Keys whose values differ from run to run (case changes are stamped with the wall clock).
const VOLATILE: &[&str] = &[
    "elapsed_us",
    "opened_us",
    "at_us",
    "as_of_us",
    "last_seen_us",
    "recency_days",
    "at_secs",
    "computed_at",
    "as_of",
    "log_bytes",
    "warming",
];

fn normalise(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                if VOLATILE.contains(&k.as_str()) && x.is_number() {
                    *x = json!("<number>");
                } else if VOLATILE.contains(&k.as_str()) && x.is_string() {
                    *x = json!("<text>");
                } else if VOLATILE.contains(&k.as_str()) && x.is_boolean() {
                    *x = json!("<bool>");
                } else {
                    normalise(x);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalise),
        // Keys are made fresh for each run: their ids are random.
        Value::String(text) if text.starts_with("key:") => *v = json!("key:<id>"),
        _ => {}
    }
}

fn payment(id: &str, minute: u32, amount: i64) -> Value {
    json!({"event_id": id, "user_id": "u1", "ts": format!("2026-03-01T10:{minute:02}:00+08:00"), "type": "payment",
           "amount_fen": amount, "currency": "CNY", "terminal_id": "t1", "device_id": "d1"})
}

const RULES: &str = r#"name = "cards"
review_at = 0.5
block_at = 0.9

[[rule]]
name = "large"
when = "payment.amount_fen > 5000"
score = 0.7
action = "review"

[[rule]]
name = "watch"
when = "payment.amount_fen > 1"
score = 0.1
shadow = true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_answers_keep_their_shape() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let server = common::start(store, ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let c = common::admin_client(dir.path());
    let call = |method: &'static str, path: &str, body: Option<String>| {
        let req = match method {
            "GET" => c.get(format!("{base}{path}")),
            _ => c.post(format!("{base}{path}")).header("content-type", "application/json").body(body.unwrap_or_default()),
        };
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let mut v: Value = r.json().await.unwrap();
            normalise(&mut v);
            json!({"status": status, "body": v})
        }
    };
    let mut answers = serde_json::Map::new();
    answers.insert("ingest".into(), call("POST", "/v1/events", Some(json!([payment("e1", 0, 100), {"type": "nope"}]).to_string())).await);
    // Insights and goals before any decision: case changes are stamped with the wall clock.
    answers.insert("insight_trends".into(), call("GET", "/v1/insights/trends?event=payment&interval=day", None).await);
    let funnel = json!({"steps": ["payment", "payment:amount_fen>5000"], "window": "1d"});
    answers.insert("insight_funnel".into(), call("POST", "/v1/insights/funnel", Some(funnel.to_string())).await);
    answers.insert("insight_bad".into(), call("POST", "/v1/insights/funnel", Some(json!({"periods": 3}).to_string())).await);
    let goal = json!({"name": "payers", "metric": "mau", "target": 10.0, "deadline": "2026-06-30"});
    answers.insert("goal_set".into(), call("POST", "/v1/goals", Some(goal.to_string())).await);
    answers.insert("goals".into(), call("GET", "/v1/goals", None).await);
    answers.insert("rules_check".into(), call("POST", "/v1/rules/check", Some(RULES.into())).await);
    let bad = RULES.replace("payment.amount_fen > 5000", "payment.amount_fen >> 5000");
    answers.insert("rules_check_bad".into(), call("POST", "/v1/rules/check", Some(bad)).await);
    answers.insert("rules_backtest".into(), call("POST", "/v1/rules/backtest?from=2026-03-01&to=2026-03-01", Some(RULES.into())).await);
    answers
        .insert("rules_backtest_bad_period".into(), call("POST", "/v1/rules/backtest?from=2026-03-01&to=March", Some(RULES.into())).await);
    answers.insert("rules_publish".into(), call("POST", "/v1/rules", Some(RULES.into())).await);
    answers.insert("decision_new".into(), call("POST", "/v1/decisions", Some(payment("p1", 1, 9000).to_string())).await);
    answers.insert("decision_retried".into(), call("POST", "/v1/decisions", Some(payment("p1", 1, 9000).to_string())).await);
    answers.insert("decision_bad".into(), call("POST", "/v1/decisions", Some("[]".into())).await);
    answers.insert("cases".into(), call("GET", "/v1/cases", None).await);
    answers.insert(
        "case_resolve".into(),
        call("POST", "/v1/cases/case-1/resolve", Some(json!({"label": "fraud", "note": "confirmed"}).to_string())).await,
    );
    answers.insert("case".into(), call("GET", "/v1/cases/case-1", None).await);
    answers.insert("case_missing".into(), call("GET", "/v1/cases/case-9", None).await);
    answers.insert("sql".into(), call("POST", "/v1/sql", Some(json!({"query": "SELECT 1 AS one, 'a' AS t"}).to_string())).await);
    answers.insert("sql_bad".into(), call("POST", "/v1/sql", Some(json!({"query": "SELEC"}).to_string())).await);
    answers.insert("user".into(), call("GET", "/v1/users/u1", None).await);
    answers.insert("rules".into(), call("GET", "/v1/rules", None).await);
    answers.insert("rules_rollback_none".into(), call("POST", "/v1/rules/rollback", None).await);
    answers.insert("models".into(), call("GET", "/v1/models", None).await);
    answers.insert("model_rollback_none".into(), call("POST", "/v1/models/churn/rollback", None).await);
    answers.insert("churn_risk_no_model".into(), call("GET", "/v1/churn/risk", None).await);
    answers.insert("offers_none".into(), call("GET", "/v1/pricing/offers", None).await);
    let segment = json!({"name": "big_payers", "rules": ["did payment:amount_fen>5000"]});
    answers.insert("segment_save".into(), call("POST", "/v1/segments", Some(segment.to_string())).await);
    answers.insert("segments".into(), call("GET", "/v1/segments", None).await);
    answers.insert("segment_members".into(), call("GET", "/v1/segments/big_payers/members", None).await);
    answers.insert("segment_rollback_none".into(), call("POST", "/v1/segments/big_payers/rollback", None).await);
    answers.insert("goal_rollback".into(), call("POST", "/v1/goals/payers/rollback", None).await);
    let custom =
        json!({"name": "coupon_redeemed", "fields": [{"name": "coupon_code", "type": "string", "class": {"category": "C1", "level": 2}}]});
    answers.insert("schema_type".into(), call("POST", "/v1/schema/types", Some(custom.to_string())).await);
    answers.insert(
        "schema_type_bad".into(),
        call("POST", "/v1/schema/types", Some(json!({"name": "Bad Name", "fields": []}).to_string())).await,
    );
    answers.insert("schema".into(), call("GET", "/v1/schema", None).await);
    let pricing = json!({"purchase_event": "payment", "calibration_end": "2026-03-02"});
    answers.insert("pricing_compute_no_model".into(), call("POST", "/v1/pricing/compute", Some(pricing.to_string())).await);
    answers.insert("compact".into(), call("POST", "/v1/admin/compact", None).await);
    answers.insert("healthz".into(), call("GET", "/healthz", None).await);
    server.stop().await.unwrap();

    let now = serde_json::to_string_pretty(&Value::Object(answers)).unwrap() + "\n";
    let path = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap()).join("tests/contract/answers.json");
    if std::env::var_os("FINPULSE_BLESS_GOLDEN").is_some() {
        std::fs::write(&path, &now).unwrap();
    }
    let pinned = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (pinned_v, now_v): (Value, Value) = (serde_json::from_str(&pinned).unwrap(), serde_json::from_str(&now).unwrap());
    for (name, want) in pinned_v.as_object().unwrap() {
        assert_eq!(&now_v[name], want, "the answer {name:?} changed shape or content; see {}", path.display());
    }
    assert_eq!(pinned_v.as_object().unwrap().len(), now_v.as_object().unwrap().len(), "answers were added or removed");
}
