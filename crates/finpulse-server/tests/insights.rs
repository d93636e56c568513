//! Insights over HTTP: events sent through the API answer a funnel by GET and by POST, a bad
//! option is a 400 naming it, and a segment saved over HTTP is materialised and filters insights.

use finpulse_log::{EventStore, StoreOptions};
use finpulse_server::{ApiLimits, Server};
use serde_json::{Value, json};

fn event(id: &str, user: &str, day: u32, kind: &str, extra: Value) -> Value {
    let mut e = json!({"event_id": id, "user_id": user, "ts": format!("2026-03-{day:02}T10:00:00+00:00"), "type": kind});
    e.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insights_answer_by_get_and_post_and_segments_are_saved_materialised_and_used_as_filters() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let server = Server::start(store, "127.0.0.1:0".parse().unwrap(), ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let c = reqwest::Client::new();
    let deposit = json!({"amount_fen": 1000, "currency": "CNY"});
    let events = json!([
        event("s1", "u1", 1, "user_signup", json!({"channel": "douyin"})),
        event("s2", "u2", 1, "user_signup", json!({"channel": "wechat"})),
        event("s3", "u3", 2, "user_signup", json!({"channel": "douyin"})),
        event("d1", "u1", 3, "deposit", deposit.clone()),
        event("d3", "u3", 20, "deposit", deposit),
    ]);
    let r = c.post(format!("{base}/v1/events")).json(&events).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let get: Value = c
        .get(format!("{base}/v1/insights/funnel?steps=user_signup,deposit&window=7d&breakdown=user.channel"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let users = get["columns"].as_array().unwrap().iter().position(|c| c == "users").unwrap();
    let counts: Vec<(String, i64)> =
        get["rows"].as_array().unwrap().iter().map(|r| (r[0].as_str().unwrap().to_string(), r[users].as_i64().unwrap())).collect();
    assert_eq!(counts, [("douyin".into(), 2), ("douyin".into(), 1), ("wechat".into(), 1), ("wechat".into(), 0)]);

    let post: Value = c
        .post(format!("{base}/v1/insights/funnel"))
        .json(&json!({"steps": ["user_signup", "deposit"], "window": "30d"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let users = post["columns"].as_array().unwrap().iter().position(|c| c == "users").unwrap();
    assert_eq!(post["rows"].as_array().unwrap().iter().map(|r| r[users].as_i64().unwrap()).collect::<Vec<_>>(), [3, 2]);

    let bad = c.get(format!("{base}/v1/insights/funnel?steps=user_signup&window=0")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.json::<Value>().await.unwrap()["error"].as_str().unwrap().starts_with("window:"));
    let bad = c.get(format!("{base}/v1/insights/funnel?steps=user_signup&dropped_at=two")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let unknown = c.get(format!("{base}/v1/insights/cohorts")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);

    // A segment saved over HTTP is materialised at once; membership, CSV export, and as a filter.
    let saved = c
        .post(format!("{base}/v1/segments"))
        .json(&json!({"name": "douyin_depositors", "rules": ["user.channel = douyin", "did deposit"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);
    assert_eq!(saved.json::<Value>().await.unwrap()["state"]["members"], 2);
    let member: Value =
        c.get(format!("{base}/v1/segments/douyin_depositors/members?user_id=u3")).send().await.unwrap().json().await.unwrap();
    assert_eq!(member["member"], true);
    let member: Value =
        c.get(format!("{base}/v1/segments/douyin_depositors/members?user_id=u2")).send().await.unwrap().json().await.unwrap();
    assert_eq!(member["member"], false);
    let csv = c.get(format!("{base}/v1/segments/douyin_depositors/members?format=csv")).send().await.unwrap().text().await.unwrap();
    assert_eq!(csv, "user_id\nu1\nu3\n");
    let filtered: Value = c
        .get(format!("{base}/v1/insights/trends?event=user_signup&filters=segment%3Ddouyin_depositors"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(filtered["rows"].as_array().unwrap().iter().map(|r| r[1].as_i64().unwrap()).sum::<i64>(), 2);
    let listed: Value = c.get(format!("{base}/v1/segments")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["segments"][0]["name"], "douyin_depositors");
    let bad = c.post(format!("{base}/v1/segments")).json(&json!({"name": "x", "rules": ["did nothing_here"]})).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.json::<Value>().await.unwrap()["error"].as_str().unwrap().starts_with("rules[0]: unknown event type"));
    assert_eq!(c.get(format!("{base}/v1/segments/nobody/members")).send().await.unwrap().status(), 404);
}
