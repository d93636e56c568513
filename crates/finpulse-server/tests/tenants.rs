//! One server, two tenants: each principal reaches its own tenant's events, state, rules,
//! cases, segments, goals, keys, approvals and audit trail, and nothing of the other's — tried
//! on every route the OpenAPI document lists, with the other tenant's identifiers.

mod common;

use finpulse_access::Role;
use finpulse_access::approvals::ApprovalKind;
use finpulse_log::{EventStore, StoreOptions};
use finpulse_server::access::AccessOptions;
use finpulse_server::{ApiLimits, Server};
use serde_json::{Value, json};
use std::path::Path;

/// What only tenant A's data holds; none of it may appear in an answer to tenant B.
const A_USER: &str = "bank-a-user-7781";
const A_MOBILE: &str = "13877665544";
const A_CARD: &str = "6222027788991122";
const A_SEGMENT: &str = "bank_a_big_payers";
const A_GOAL: &str = "bank_a_payers_goal";
const A_RULE: &str = "bank_a_large_payment";
const A_PERSON: &str = "bank_a_officer";
const B_TENANT: &str = "bank-b";

fn payment(id: &str, user: &str, minute: u32, amount: i64) -> Value {
    json!({"event_id": id, "user_id": user, "ts": format!("2026-03-01T10:{minute:02}:00+08:00"), "type": "payment",
           "amount_fen": amount, "currency": "CNY", "terminal_id": "t1", "device_id": "d1"})
}

fn rules(version_note: &str) -> String {
    format!(
        "name = \"cards\"\nreview_at = 0.5\nblock_at = 0.9\n# {version_note}\n[[rule]]\nname = \"{A_RULE}\"\nwhen = \"payment.amount_fen > 5000\"\nscore = 0.7\naction = \"review\"\n"
    )
}

async fn start(dir: &Path) -> Server {
    let store = EventStore::open(dir, StoreOptions::default()).unwrap();
    let options = AccessOptions { approval_required: vec![ApprovalKind::Rules], ..AccessOptions::default() };
    Server::start(store, StoreOptions::default(), "127.0.0.1:0".parse().unwrap(), ApiLimits::default(), options).await.unwrap()
}

async fn post(c: &reqwest::Client, url: String, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let r = c.post(url).header("content-type", "application/json").body(body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(c: &reqwest::Client, url: String) -> (u16, Value) {
    let r = c.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(walk_files(&path)) } else { out.push(path) }
    }
    out
}

async fn event_count(c: &reqwest::Client, base: &str) -> i64 {
    let (status, body) = post(c, format!("{base}/v1/sql"), json!({"query": "SELECT count(*) AS n FROM events"}).to_string()).await;
    assert_eq!(status, 200, "{body}");
    body["rows"][0][0].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_reaches_nothing_of_another_on_any_route() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let base = format!("http://{}", server.addr);
    let a = common::client_with(&common::key(dir.path(), Role::Admin));
    let a_checker = common::client_with(&common::key(dir.path(), Role::Admin));
    let b = common::client_with(&common::key_in(dir.path(), Role::Admin, B_TENANT));

    // Tenant A: events with personal data, a ruleset approved by a second person, a decision
    // that opened a case, a second ruleset waiting for approval, a segment and a goal.
    let signup = json!({"event_id": "a-s1", "user_id": A_USER, "ts": "2026-03-01T09:00:00+08:00", "type": "user_signup", "channel": "douyin", "mobile": A_MOBILE});
    let card =
        json!({"event_id": "a-c1", "user_id": A_USER, "ts": "2026-03-01T09:06:00+08:00", "type": "card_bound", "card_number": A_CARD});
    let (status, body) = post(&a, format!("{base}/v1/events"), json!([signup, card, payment("a-p0", A_USER, 0, 100)]).to_string()).await;
    assert_eq!((status, body["accepted"].as_u64()), (200, Some(3)), "{body}");
    let (status, asked) = post(&a, format!("{base}/v1/rules"), rules("v1")).await;
    assert_eq!(status, 202, "{asked}");
    let (status, body) = post(&a_checker, format!("{base}/v1/approvals/{}/approve", asked["id"]), "").await;
    assert_eq!(status, 200, "{body}");
    let (status, decided) = post(&a, format!("{base}/v1/decisions"), payment("a-p1", A_USER, 1, 9000).to_string()).await;
    assert_eq!((status, decided["action"].as_str()), (200, Some("review")), "{decided}");
    let (_, cases) = get(&a, format!("{base}/v1/cases")).await;
    let a_case = cases["cases"][0]["case_id"].as_str().expect("the review opened a case").to_string();
    let (status, pending) = post(&a, format!("{base}/v1/rules"), rules("v2")).await;
    assert_eq!(status, 202, "{pending}");
    let a_approval = pending["id"].as_u64().unwrap();
    let segment = json!({"name": A_SEGMENT, "rules": ["did payment:amount_fen>5000"]});
    assert!(post(&a, format!("{base}/v1/segments"), segment.to_string()).await.0 < 300);
    let goal = json!({"name": A_GOAL, "metric": "mau", "target": 10.0, "deadline": "2026-06-30"});
    assert!(post(&a, format!("{base}/v1/goals"), goal.to_string()).await.0 < 300);
    let person = json!({"name": A_PERSON, "role": "compliance_officer", "password": "a long enough passphrase"});
    assert_eq!(post(&a, format!("{base}/v1/auth/users"), person.to_string()).await.0, 201);
    let (_, people) = get(&a, format!("{base}/v1/auth/users")).await;
    assert_eq!(people["users"][0]["name"], A_PERSON, "{people}");
    assert!(!people.to_string().contains("argon2"), "a listing never carries a password hash: {people}");
    let (_, who) = get(&a, format!("{base}/v1/auth/whoami")).await;
    let a_key = who["actor"].as_str().unwrap().trim_start_matches("key:").to_string();
    let a_events = event_count(&a, &base).await;
    assert_eq!(a_events, 5, "three ingested, a decision and its payment");

    // Tenant B's own first writes: an event id A already holds is new to B, and a retried
    // decision id of A's is decided afresh in B, not answered with A's decision.
    let (status, body) = post(&b, format!("{base}/v1/events"), json!([payment("a-p0", "b-user", 0, 100)]).to_string()).await;
    assert_eq!((status, body["accepted"].as_u64(), body["duplicates"].as_u64()), (200, Some(1), Some(0)), "{body}");
    let (status, fresh) = post(&b, format!("{base}/v1/decisions"), payment("a-p1", "b-user", 1, 9000).to_string()).await;
    assert_eq!((status, fresh["action"].as_str()), (200, Some("allow")), "B has no rules: {fresh}");

    // Every route, as B, aimed at A's identifiers.
    let markers = [A_USER, A_MOBILE, &A_MOBILE[7..], A_CARD, &A_CARD[12..], A_SEGMENT, A_GOAL, A_RULE, A_PERSON, &a_key, &a_case];
    let routes = common::every_route(&base, &b).await;
    assert!(routes.len() > 30);
    for (method, path, _) in &routes {
        let filled = path
            .replace("/v1/users/{id}", &format!("/v1/users/{A_USER}"))
            .replace("/v1/subjects/{id}", &format!("/v1/subjects/{A_USER}"))
            .replace("/v1/cases/{id}", &format!("/v1/cases/{a_case}"))
            .replace("/v1/auth/keys/{id}", &format!("/v1/auth/keys/{a_key}"))
            .replace("/v1/approvals/{id}", &format!("/v1/approvals/{a_approval}"))
            .replace("/v1/segments/{name}", &format!("/v1/segments/{A_SEGMENT}"))
            .replace("/v1/goals/{name}", &format!("/v1/goals/{A_GOAL}"))
            .replace("/v1/auth/users/{name}", &format!("/v1/auth/users/{A_PERSON}"))
            .replace("{purpose}", "churn")
            .replace("{kind}", "trends")
            .replace("{action}", "resolve");
        let url = format!("{base}{filled}");
        let (status, body) = match (method.as_str(), path.as_str()) {
            ("POST", "/v1/sql") => post(&b, url, json!({"query": "SELECT * FROM events"}).to_string()).await,
            ("POST", "/v1/events") => post(&b, url, json!([payment("b-p9", "b-user", 9, 100)]).to_string()).await,
            ("POST", "/v1/decisions") => post(&b, url, payment("b-p10", "b-user", 10, 100).to_string()).await,
            ("POST", "/v1/cases/{id}/{action}") => post(&b, url, json!({"label": "fraud", "note": "not yours"}).to_string()).await,
            ("POST", "/v1/auth/login" | "/v1/auth/logout") => continue,
            ("POST", "/v1/auth/users/{name}/role") => post(&b, url, json!({"role": "admin"}).to_string()).await,
            ("POST", "/v1/auth/users/{name}/password") => post(&b, url, json!({"password": "taken over passphrase"}).to_string()).await,
            ("GET", "/v1/insights/{kind}") => get(&b, format!("{url}?event=payment&interval=day")).await,
            ("POST", _) => post(&b, url, "{}").await,
            _ => get(&b, url).await,
        };
        assert!(status < 500, "{method} {filled} as tenant B: {status} {body}");
        let text = body.to_string();
        for m in markers {
            // A refusal may repeat the name B itself asked for.
            if status >= 400 && filled.contains(m) {
                continue;
            }
            assert!(!text.contains(m), "{method} {filled} as tenant B answered with tenant A's {m:?}: {text}");
        }
    }
    // SQL cannot name A's files: no table but the tenant's own views, no path as a table.
    assert_eq!(post(&a, format!("{base}/v1/admin/compact"), "").await.0, 200);
    let a_file = walk_files(&dir.path().join("parquet")).into_iter().next().expect("A's events were compacted into Parquet");
    for query in [
        format!("SELECT * FROM '{}'", a_file.display()),
        format!("CREATE EXTERNAL TABLE a STORED AS PARQUET LOCATION '{}'", a_file.display()),
    ] {
        let (status, body) = post(&b, format!("{base}/v1/sql"), json!({ "query": query }).to_string()).await;
        assert_eq!(status, 400, "{query}: {body}");
    }

    // The direct tries, spelt out.
    assert_eq!(get(&b, format!("{base}/v1/users/{A_USER}")).await.0, 404);
    assert_eq!(post(&b, format!("{base}/v1/subjects/{A_USER}/export"), "").await.0, 404);
    assert_eq!(get(&b, format!("{base}/v1/cases/{a_case}")).await.0, 404);
    assert_eq!(post(&b, format!("{base}/v1/auth/keys/{a_key}/revoke"), "").await.0, 404);
    assert_eq!(post(&b, format!("{base}/v1/approvals/{a_approval}/approve"), "").await.0, 404);
    assert_eq!(get(&b, format!("{base}/v1/segments/{A_SEGMENT}/members")).await.0, 404);
    assert_eq!(post(&b, format!("{base}/v1/auth/users/{A_PERSON}/remove"), "").await.0, 404);

    // Nothing of A's changed: its events, its key, its pending approval, its case, its segment.
    assert_eq!(event_count(&a, &base).await, a_events);
    assert_eq!(get(&a, format!("{base}/v1/auth/whoami")).await.0, 200);
    let (_, people) = get(&a, format!("{base}/v1/auth/users")).await;
    assert_eq!(people["users"][0]["role"], "compliance_officer", "{people}");
    let (_, approvals) = get(&a, format!("{base}/v1/approvals")).await;
    let waiting = approvals["approvals"].as_array().unwrap().iter().find(|x| x["id"] == a_approval).unwrap().clone();
    assert_eq!(waiting["state"], "pending");
    let (_, case) = get(&a, format!("{base}/v1/cases/{a_case}")).await;
    assert_eq!(case["status"], "open", "{case}");
    let (_, segments) = get(&a, format!("{base}/v1/segments")).await;
    assert!(segments.to_string().contains(A_SEGMENT));
    // B's events are B's: the one it ingested first, the ones the route loop added.
    let (status, users) = post(&a, format!("{base}/v1/sql"), json!({"query": "SELECT DISTINCT user_id FROM events"}).to_string()).await;
    assert_eq!((status, users["rows"].to_string().contains("b-user")), (200, false), "{users}");
    let b_events = event_count(&b, &base).await;
    assert!(b_events >= 3, "{b_events}");

    // Each audit trail holds its own tenant's entries only.
    for (client, tenant) in [(&a, "default"), (&b, B_TENANT)] {
        let (status, trail) = get(client, format!("{base}/v1/audit?limit=10000")).await;
        assert_eq!(status, 200, "{trail}");
        let entries = trail["entries"].as_array().unwrap();
        assert!(!entries.is_empty());
        for e in entries {
            assert_eq!(e["tenant"], tenant, "{e}");
        }
    }
    server.stop().await.unwrap();

    // B's data is a data directory of its own, and comes back after a restart.
    assert!(dir.path().join("tenants").join(B_TENANT).join("wal").is_dir());
    let server = start(dir.path()).await;
    assert_eq!(server.tenants_opened(), vec![B_TENANT.to_string(), "default".to_string()]);
    let base = format!("http://{}", server.addr);
    assert_eq!(event_count(&b, &base).await, b_events);
    assert_eq!(event_count(&a, &base).await, a_events);
    server.stop().await.unwrap();
}
