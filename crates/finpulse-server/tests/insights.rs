//! Insights over HTTP: events sent through the API answer a funnel by GET and by POST, a bad
//! option is a 400 naming it, a segment saved over HTTP is materialised and filters insights,
//! and goals are set and evaluated.

mod common;

use finpulse_log::{EventStore, StoreOptions};
use finpulse_server::ApiLimits;
use serde_json::{Value, json};

fn event(id: &str, user: &str, day: u32, kind: &str, extra: Value) -> Value {
    let mut e = json!({"event_id": id, "user_id": user, "ts": format!("2026-03-{day:02}T10:00:00+00:00"), "type": kind});
    e.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    e
}

/// GETs a URL: its status and JSON body (Null when the body is not JSON).
async fn get(c: &reqwest::Client, url: String) -> (u16, Value) {
    let r = c.get(url).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// POSTs JSON: the status and JSON body.
async fn post(c: &reqwest::Client, url: String, body: &Value) -> (u16, Value) {
    let r = c.post(url).json(body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insights_segments_and_goals_answer_over_http_and_bad_options_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let server = common::start(store, ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let c = common::admin_client(dir.path());
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

    let (_, got) = get(&c, format!("{base}/v1/insights/funnel?steps=user_signup,deposit&window=7d&breakdown=user.channel")).await;
    let users = got["columns"].as_array().unwrap().iter().position(|c| c == "users").unwrap();
    let counts: Vec<(String, i64)> =
        got["rows"].as_array().unwrap().iter().map(|r| (r[0].as_str().unwrap().to_string(), r[users].as_i64().unwrap())).collect();
    assert_eq!(counts, [("douyin".into(), 2), ("douyin".into(), 1), ("wechat".into(), 1), ("wechat".into(), 0)]);

    let (_, posted) = post(&c, format!("{base}/v1/insights/funnel"), &json!({"steps": ["user_signup", "deposit"], "window": "30d"})).await;
    let users = posted["columns"].as_array().unwrap().iter().position(|c| c == "users").unwrap();
    assert_eq!(posted["rows"].as_array().unwrap().iter().map(|r| r[users].as_i64().unwrap()).collect::<Vec<_>>(), [3, 2]);

    let (status, bad) = get(&c, format!("{base}/v1/insights/funnel?steps=user_signup&window=0")).await;
    assert_eq!(status, 400);
    assert!(bad["error"].as_str().unwrap().starts_with("window:"));
    assert_eq!(get(&c, format!("{base}/v1/insights/funnel?steps=user_signup&dropped_at=two")).await.0, 400);
    let (status, bad) = post(&c, format!("{base}/v1/insights/funnel"), &json!(["user_signup"])).await;
    assert_eq!(status, 400);
    assert!(bad["error"].as_str().unwrap().starts_with("body:"));
    // Options of the wrong type, unknown or of another kind are named.
    let refused = |status: u16, body: &serde_json::Value| {
        assert_eq!(status, 400, "{body}");
        body["error"].as_str().unwrap().to_string()
    };
    let (status, bad) = post(&c, format!("{base}/v1/insights/trends"), &json!({"from": 20260101})).await;
    assert!(refused(status, &bad).starts_with("from: invalid type"), "{bad}");
    let (status, bad) = post(&c, format!("{base}/v1/insights/trends"), &json!({"filters": "user.channel = douyin"})).await;
    assert!(refused(status, &bad).starts_with("filters: invalid type"), "{bad}");
    let (status, bad) = post(&c, format!("{base}/v1/insights/funnel"), &json!({"steps": ["user_signup"], "stepz": 1})).await;
    assert!(refused(status, &bad).contains("unknown field `stepz`"), "{bad}");
    let (status, bad) = post(&c, format!("{base}/v1/insights/funnel"), &json!({"steps": ["user_signup"], "periods": 3})).await;
    assert!(refused(status, &bad).starts_with("periods: funnel does not take periods"), "{bad}");
    let (status, bad) = get(&c, format!("{base}/v1/insights/funnel?steps=user_signup&stepz=1")).await;
    assert!(refused(status, &bad).starts_with("stepz: not an insight option"), "{bad}");
    let (status, bad) = get(&c, format!("{base}/v1/insights/retention?unbounded=yes")).await;
    assert!(refused(status, &bad).starts_with("unbounded: 'yes' is not true or false"), "{bad}");
    assert_eq!(get(&c, format!("{base}/v1/insights/cohorts")).await.0, 404);

    // A segment saved over HTTP is materialised at once; membership, CSV export, and as a filter.
    let rules = json!({"name": "douyin_depositors", "rules": ["user.channel = douyin", "did deposit"]});
    let (status, saved) = post(&c, format!("{base}/v1/segments"), &rules).await;
    assert_eq!(status, 200);
    assert_eq!(saved["state"]["members"], 2);
    assert_eq!(get(&c, format!("{base}/v1/segments/douyin_depositors/members?user_id=u3")).await.1["member"], true);
    assert_eq!(get(&c, format!("{base}/v1/segments/douyin_depositors/members?user_id=u2")).await.1["member"], false);
    let csv = c.get(format!("{base}/v1/segments/douyin_depositors/members?format=csv")).send().await.unwrap().text().await.unwrap();
    assert_eq!(csv, "user_id\nu1\nu3\n");
    assert_eq!(get(&c, format!("{base}/v1/segments/douyin_depositors/members?format=xml")).await.0, 400);
    let (_, filtered) = get(&c, format!("{base}/v1/insights/trends?event=user_signup&filters=segment%3Ddouyin_depositors")).await;
    assert_eq!(filtered["rows"].as_array().unwrap().iter().map(|r| r[1].as_i64().unwrap()).sum::<i64>(), 2);
    assert_eq!(get(&c, format!("{base}/v1/segments")).await.1["segments"][0]["name"], "douyin_depositors");
    let (status, bad) = post(&c, format!("{base}/v1/segments"), &json!({"name": "x", "rules": ["did nothing_here"]})).await;
    assert_eq!(status, 400);
    assert!(bad["error"].as_str().unwrap().starts_with("rules[0]: unknown event type"));
    assert_eq!(get(&c, format!("{base}/v1/segments/nobody/members")).await.0, 404);

    // Goals: set over HTTP, evaluated from the same events; a bad goal is named.
    let goal = json!({"name": "signups", "metric": "new_users_7d", "target": 3, "deadline": "2026-12-31"});
    assert_eq!(post(&c, format!("{base}/v1/goals"), &goal).await.0, 200);
    let (_, goals) = get(&c, format!("{base}/v1/goals")).await;
    assert_eq!(goals["rows"][0][0], "signups");
    assert_eq!(goals["rows"][0][6], 0.0, "no signups in the 7 days to 03-20, the last day with data");
    let (status, bad) =
        post(&c, format!("{base}/v1/goals"), &json!({"name": "g", "metric": "joy", "target": 1, "deadline": "2026-12-31"})).await;
    assert_eq!(status, 400);
    assert!(bad["error"].as_str().unwrap().starts_with("metric: unknown metric 'joy'"));
}
