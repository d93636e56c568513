//! `GET /v1/decisions/recent`, the live decision stream, over a real socket and a real data
//! directory: newest first in the order decided, polled with `after_seq`, filtered by action,
//! behind read_cases, bad parameters named.

mod common;

use finpulse_access::Role;
use finpulse_log::{EventStore, StoreOptions};
use finpulse_server::ApiLimits;
use serde_json::{Value, json};

const RULES: &str = r#"name = "cards"
review_at = 0.5
block_at = 0.9

[lists]
block_devices = ["stolen-phone"]

[[rule]]
name = "large"
when = "payment.amount_fen > 500000"
score = 0.7
action = "review"
"#;

fn payment(id: &str, user: &str, minute: u32, amount_fen: i64, device: &str) -> Value {
    json!({"event_id": id, "user_id": user, "ts": format!("2026-03-01T10:{minute:02}:00+08:00"), "type": "payment",
           "amount_fen": amount_fen, "currency": "CNY", "terminal_id": "t1", "device_id": device})
}

async fn get(client: &reqwest::Client, url: String) -> (u16, Value) {
    let r = client.get(url).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn ids(answer: &Value) -> Vec<&str> {
    answer["decisions"].as_array().unwrap().iter().map(|d| d["event_id"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_decisions_come_newest_first_as_decided_and_a_poll_gets_only_the_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let server = common::start(store, ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let admin = common::admin_client(dir.path());
    let analyst = common::client_with(&common::key(dir.path(), Role::RiskAnalyst));

    // Before any decision the stream is empty, not an error.
    let (s, empty) = get(&analyst, format!("{base}/v1/decisions/recent")).await;
    assert_eq!((s, empty["decisions"].as_array().map(Vec::len)), (200, Some(0)), "{empty}");

    let r = admin.post(format!("{base}/v1/rules")).body(RULES).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    // Decided in this order; the second's transaction time is the earliest, yet it was decided
    // second, and the stream keeps the order of deciding.
    for p in [payment("a", "u1", 30, 1000, "d1"), payment("b", "u2", 5, 900_000, "d2"), payment("c", "u3", 20, 100, "stolen-phone")] {
        let r = admin.post(format!("{base}/v1/decisions")).json(&p).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    }
    let (s, all) = get(&analyst, format!("{base}/v1/decisions/recent")).await;
    assert_eq!(s, 200, "{all}");
    assert_eq!(ids(&all), ["c", "b", "a"], "{all}");
    let newest = &all["decisions"][0];
    assert_eq!((newest["action"].as_str(), newest["user_id"].as_str()), (Some("block"), Some("u3")), "{newest}");
    assert_eq!(newest["reasons"][0], json!({"kind": "list", "list": "block_devices"}), "{newest}");
    assert_eq!(newest["ruleset_version"], 1, "{newest}");
    assert_eq!(all["decisions"][1]["reasons"][0]["name"], "large", "{all}");
    assert_eq!(all["decisions"][1]["ts"], "2026-03-01T02:05:00Z", "{all}");
    let seqs: Vec<u64> = all["decisions"].as_array().unwrap().iter().map(|d| d["seq"].as_u64().unwrap()).collect();
    assert!(seqs[0] > seqs[1] && seqs[1] > seqs[2], "{seqs:?}");

    // A poll after the newest seen gets nothing, then only what was decided since.
    let (_, none) = get(&analyst, format!("{base}/v1/decisions/recent?after_seq={}", seqs[0])).await;
    assert_eq!(ids(&none), Vec::<&str>::new(), "{none}");
    let r = admin.post(format!("{base}/v1/decisions")).json(&payment("d", "u4", 40, 700_000, "d4")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, new) = get(&analyst, format!("{base}/v1/decisions/recent?after_seq={}", seqs[0])).await;
    assert_eq!(ids(&new), ["d"], "{new}");

    // Filtered by action, and cut at the limit.
    let (_, reviews) = get(&analyst, format!("{base}/v1/decisions/recent?action=review")).await;
    assert_eq!(ids(&reviews), ["d", "b"], "{reviews}");
    let (_, one) = get(&analyst, format!("{base}/v1/decisions/recent?limit=1")).await;
    assert_eq!(ids(&one), ["d"], "{one}");

    // Bad parameters are named.
    for (query, says) in
        [("limit=0", "limit must be between 1 and 500"), ("limit=501", "not 501"), ("action=deny", "action must be allow, review or block")]
    {
        let (s, e) = get(&analyst, format!("{base}/v1/decisions/recent?{query}")).await;
        assert_eq!(s, 400, "{query}: {e}");
        assert!(e["error"].as_str().unwrap().contains(says), "{query}: {e}");
    }
    let (s, e) = get(&analyst, format!("{base}/v1/decisions/recent?after_seq=soon")).await;
    assert_eq!(s, 400, "{e}");
    assert!(e["error"].as_str().unwrap().contains("after_seq"), "{e}");

    // Reading decisions is the risk team's: a data scientist or a partner app is refused.
    for role in [Role::DataScientist, Role::PartnerApp] {
        let c = common::client_with(&common::key(dir.path(), role));
        let (s, _) = get(&c, format!("{base}/v1/decisions/recent")).await;
        assert_eq!(s, 403, "{role:?}");
    }
    server.stop().await.unwrap();
}
