//! Who may call what, what they see of personal data, and the audit trail it leaves — tried the
//! way an attacker would: no key, bad keys, keys beyond their role, SQL
//! that tries to unmask a field, brute-force sign-in, changes without the CSRF token.

mod common;

use finpulse_access::approvals::ApprovalKind;
use finpulse_access::audit;
use finpulse_access::{KeyLimits, Keys, NewKey, Role};
use finpulse_log::{EventStore, StoreOptions};
use finpulse_server::ApiLimits;
use finpulse_server::access::{AccessOptions, Need, route_need};
use serde_json::{Value, json};

const ID_NUMBER: &str = "110101199003071234";
const REAL_NAME: &str = "张三丰";
const CARD: &str = "6222021234561234";
const MOBILE: &str = "13812345678";

fn personal_events() -> Value {
    json!([
        {"event_id": "s1", "user_id": "u1", "ts": "2026-03-01T09:00:00+08:00", "type": "user_signup", "channel": "douyin", "mobile": MOBILE},
        {"event_id": "v1", "user_id": "u1", "ts": "2026-03-01T09:05:00+08:00", "type": "identity_verified", "id_number": ID_NUMBER, "real_name": REAL_NAME},
        {"event_id": "c1", "user_id": "u1", "ts": "2026-03-01T09:06:00+08:00", "type": "card_bound", "card_number": CARD},
    ])
}

async fn call(c: &reqwest::Client, method: &str, url: &str) -> reqwest::Response {
    match method {
        "GET" => c.get(url).send().await.unwrap(),
        _ => c.post(url).header("content-type", "application/json").body("{}").send().await.unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_has_a_permission_and_refuses_missing_and_bad_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let server = common::start(store, ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let admin = common::admin_client(dir.path());
    let routes = common::every_route(&base, &admin).await;
    assert!(routes.len() > 30, "{routes:?}");

    let keys = Keys::open(finpulse_access::access_dir(dir.path())).unwrap();
    let (revoked, revoked_text) = keys.create(NewKey { role: Some(Role::Admin), ..NewKey::default() }, "t").unwrap();
    keys.revoke(&revoked.id).unwrap();
    let expired = keys
        .create(NewKey { role: Some(Role::Admin), expires_at_us: Some(finpulse_core::time::now_us() - 1), ..NewKey::default() }, "t")
        .unwrap()
        .1;
    let anonymous = reqwest::Client::new();
    let last = if revoked_text.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &revoked_text[..revoked_text.len() - 1]);
    let cases: [(&str, reqwest::Client, u16, &str); 5] = [
        ("no credentials", anonymous.clone(), 401, "authentication required"),
        ("a malformed header", common::client_with("x").clone(), 401, "not a finpulse key"),
        ("a revoked key", common::client_with(&revoked_text), 401, "was revoked"),
        ("an expired key", common::client_with(&expired), 401, "has expired"),
        ("a wrong secret", common::client_with(&wrong), 401, "not valid"),
    ];
    for (method, path, filled) in &routes {
        assert!(route_need(method, path).is_some(), "{method} {path} has no permission in the routes table");
        if route_need(method, path) == Some(Need::Open) {
            continue;
        }
        for (what, client, status, says) in &cases {
            let r = call(client, method, &format!("{base}{filled}")).await;
            assert_eq!(r.status().as_u16(), *status, "{method} {filled} with {what}");
            if *status == 401 {
                assert!(r.headers().contains_key("www-authenticate"));
            }
            let body: Value = r.json().await.unwrap();
            assert!(body["error"].as_str().unwrap().contains(says), "{method} {filled} with {what}: {body}");
        }
    }
    // Open routes stay open; an unknown path asks for credentials before saying it is unknown.
    assert_eq!(anonymous.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(anonymous.get(format!("{base}/metrics")).send().await.unwrap().status(), 200);
    assert_eq!(anonymous.get(format!("{base}/v1/nothing")).send().await.unwrap().status(), 401);
    let r = admin.get(format!("{base}/v1/nothing")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("/v1/nothing"));
    // Everything outside the API is the console: its page answers everyone, deep links too,
    // and it signs in through /v1 like any client.
    for path in ["/", "/cases", "/insights?kind=funnel"] {
        let r = anonymous.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
        assert!(r.text().await.unwrap().contains("<div id=\"app\">"), "{path}");
    }
    // An oversized Authorization header is refused as such, never a 500.
    let huge = reqwest::Client::new().get(format!("{base}/v1/schema")).header("authorization", format!("Bearer {}", "a".repeat(8000)));
    let r = huge.send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("too long"));
    server.stop().await.unwrap();

    // Every refusal was audited, and the log verifies.
    let adir = finpulse_access::audit_dir(dir.path());
    let snap = audit::read(&adir).unwrap();
    let denied = snap.entries.iter().filter(|e| e.record.outcome == "denied").count();
    let protected = routes.iter().filter(|(m, p, _)| route_need(m, p) != Some(Need::Open)).count();
    assert!(denied >= protected * cases.len(), "{denied} denials audited for {} refusals", protected * cases.len());
    assert!(
        snap.entries
            .iter()
            .any(|e| e.record.actor == "anonymous" && e.record.detail.as_deref().is_some_and(|d| d.starts_with("authentication required")))
    );
    audit::verify(&adir, &audit::read_verifying_key(&adir).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_get_only_their_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let server = common::start(store, ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let as_role = |role| common::client_with(&common::key(dir.path(), role));
    let sql = json!({"query": "SELECT 1"}).to_string();
    let post = |c: reqwest::Client, path: &'static str, body: String| {
        let url = format!("{base}{path}");
        async move { c.post(url).header("content-type", "application/json").body(body).send().await.unwrap().status().as_u16() }
    };
    let get = |c: reqwest::Client, path: &'static str| {
        let url = format!("{base}{path}");
        async move { c.get(url).send().await.unwrap().status().as_u16() }
    };
    let auditor = as_role(Role::Auditor);
    assert_eq!(get(auditor.clone(), "/v1/audit").await, 200);
    assert_eq!(post(auditor.clone(), "/v1/sql", sql.clone()).await, 403);
    assert_eq!(get(auditor.clone(), "/v1/schema").await, 403);
    let partner = as_role(Role::PartnerApp);
    assert_eq!(post(partner.clone(), "/v1/events", personal_events().to_string()).await, 200);
    assert_eq!(post(partner.clone(), "/v1/sql", sql.clone()).await, 403);
    assert_eq!(post(partner.clone(), "/v1/rules", "x".into()).await, 403);
    let scientist = as_role(Role::DataScientist);
    assert_eq!(post(scientist.clone(), "/v1/sql", sql.clone()).await, 200);
    assert_eq!(post(scientist.clone(), "/v1/events", "[]".into()).await, 403);
    assert_eq!(get(scientist.clone(), "/v1/audit").await, 403);
    let r = scientist.post(format!("{base}/v1/rules")).body("x").send().await.unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "role data_scientist does not have the publish_rules permission that POST /v1/rules needs");
    let ops = as_role(Role::OpsManager);
    assert_eq!(post(ops.clone(), "/v1/auth/keys", json!({"role": "admin"}).to_string()).await, 403);
    let who: Value = ops.get(format!("{base}/v1/auth/whoami")).send().await.unwrap().json().await.unwrap();
    assert_eq!(who["role"], "ops_manager");
    assert!(!who["permissions"].as_array().unwrap().contains(&json!("read_personal_clear")));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_is_masked_by_class_in_every_query_and_shown_only_with_a_purpose() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let server = common::start(store, ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let admin = common::admin_client(dir.path());
    let r = admin.post(format!("{base}/v1/events")).body(personal_events().to_string()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let scientist = common::client_with(&common::key(dir.path(), Role::DataScientist));
    let analyst = common::client_with(&common::key(dir.path(), Role::RiskAnalyst));
    let sql = |c: &reqwest::Client, q: &str, purpose: Option<&str>| {
        let mut req = c.post(format!("{base}/v1/sql")).header("content-type", "application/json").body(json!({"query": q}).to_string());
        if let Some(p) = purpose {
            req = req.header("x-purpose", p);
        }
        async move {
            let r = req.send().await.unwrap();
            let exposure = r.headers().get("x-data-exposure").map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), exposure, r.text().await.unwrap())
        }
    };

    // The standard's examples, as a reader without the permission sees them.
    let (s, exposure, text) =
        sql(&scientist, "SELECT id_number, real_name FROM identity_verified UNION ALL SELECT card_number, mobile FROM events WHERE type <> 'identity_verified' ORDER BY 1", None).await;
    assert_eq!((s, exposure.as_deref()), (200, Some("masked")), "{text}");
    let rows: Value = serde_json::from_str::<Value>(&text).unwrap()["rows"].clone();
    assert_eq!(rows, json!([["110***********1234", "张**"], ["6222 **** **** 1234", null], [null, "138****5678"]]), "{text}");

    // No expression over a column reaches the value underneath.
    let attempts = [
        "SELECT * FROM events",
        "SELECT * FROM identity_verified",
        "SELECT CAST(id_number AS VARCHAR) || '' AS x FROM identity_verified",
        "SELECT concat(id_number, real_name), upper(real_name) FROM identity_verified",
        "SELECT substr(id_number, 4, 11) AS middle, substring(mobile, 4, 4) AS m FROM events",
        "SELECT regexp_replace(id_number, '\\*', '0', 'g') AS x, replace(card_number, '*', '') AS y FROM events",
        "SELECT a.id_number FROM identity_verified a JOIN identity_verified b ON a.id_number = b.id_number",
        "SELECT count(*) AS n FROM identity_verified WHERE id_number = '110101199003071234'",
        "SELECT count(*) AS n FROM identity_verified WHERE id_number LIKE '%19900307%'",
        "SELECT CAST(id_number AS BIGINT) FROM identity_verified",
        "SELECT to_hex(CAST(substr(id_number, 7, 8) AS BIGINT)) FROM identity_verified",
        "SELECT array_agg(mobile) FROM user_signup",
        "SELECT sha256(id_number) FROM identity_verified",
    ];
    for q in attempts {
        let (_, _, text) = sql(&scientist, q, None).await;
        for secret in ["19900307", "1234561", "12345678", "丰"] {
            assert!(!text.contains(secret), "{q} revealed {secret:?}: {text}");
        }
        if q.contains("count(*)") {
            assert!(text.contains("[[0]]"), "{q} matched the clear value: {text}");
        }
    }

    // A prefix filter on a masked column answers by the masked form: what it shows matches,
    // digits behind the stars do not.
    for (q, n) in [
        ("SELECT count(*) AS n FROM identity_verified WHERE id_number LIKE '110%'", 1),
        ("SELECT count(*) AS n FROM identity_verified WHERE id_number LIKE '1101019%'", 0),
        ("SELECT count(*) AS n FROM identity_verified WHERE id_number NOT LIKE '110***%'", 0),
        ("SELECT count(*) AS n FROM events WHERE card_number LIKE '6222 ****%'", 1),
        ("SELECT count(*) AS n FROM events WHERE card_number LIKE '622202%'", 0),
    ] {
        let (_, _, text) = sql(&scientist, q, None).await;
        assert!(text.contains(&format!("[[{n}]]")), "{q}: {text}");
    }

    // A purpose without the permission changes nothing; with it the answer is clear and audited.
    let (_, exposure, text) = sql(&scientist, "SELECT id_number FROM identity_verified", Some("curiosity")).await;
    assert_eq!(exposure.as_deref(), Some("masked"));
    assert!(!text.contains(ID_NUMBER));
    let (_, exposure, text) = sql(&analyst, "SELECT id_number, real_name FROM identity_verified", None).await;
    assert_eq!(exposure.as_deref(), Some("masked"));
    assert!(!text.contains(ID_NUMBER), "the permission alone is not enough: {text}");
    let (s, exposure, text) = sql(&analyst, "SELECT id_number, real_name FROM identity_verified", Some("fraud case 42 review")).await;
    assert_eq!((s, exposure.as_deref()), (200, Some("clear")));
    assert!(text.contains(ID_NUMBER) && text.contains(REAL_NAME), "{text}");
    let (s, _, text) = sql(&analyst, "SELECT 1", Some(&"why ".repeat(100))).await;
    assert_eq!(s, 400, "{text}");

    // An Arrow stream has no row limit: in clear it is an export, which reading in clear does
    // not allow; masked, anyone who may run SQL gets it. Both are audited.
    let arrow = |c: &reqwest::Client, purpose: Option<&str>| {
        let mut req = c
            .post(format!("{base}/v1/sql"))
            .header("content-type", "application/json")
            .header("accept", "application/vnd.apache.arrow.stream")
            .body(json!({"query": "SELECT id_number FROM identity_verified"}).to_string());
        if let Some(p) = purpose {
            req = req.header("x-purpose", p);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.bytes().await.unwrap())
        }
    };
    let (s, body) = arrow(&analyst, Some("fraud case 42 review")).await;
    assert_eq!(s, 403, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("export_personal"));
    let compliance = common::client_with(&common::key(dir.path(), Role::ComplianceOfficer));
    let (s, body) = arrow(&compliance, Some("regulator request 2026-17")).await;
    assert_eq!(s, 200);
    assert!(body.windows(ID_NUMBER.len()).any(|w| w == ID_NUMBER.as_bytes()), "the export is in clear");
    let (s, body) = arrow(&scientist, None).await;
    assert_eq!(s, 200);
    assert!(!body.windows(ID_NUMBER.len()).any(|w| w == ID_NUMBER.as_bytes()), "a masked export stays masked");
    server.stop().await.unwrap();

    let snap = audit::read(&finpulse_access::audit_dir(dir.path())).unwrap();
    let clear: Vec<_> = snap.entries.iter().filter(|e| e.record.action.contains("read in clear")).collect();
    assert_eq!(clear.len(), 1, "{clear:?}");
    assert_eq!(clear[0].record.purpose.as_deref(), Some("fraud case 42 review"));
    assert!(clear[0].record.request_sha256.as_ref().is_some_and(|h| h.len() == 64));
    let exports: Vec<(&str, &str, u16)> = snap
        .entries
        .iter()
        .filter(|e| e.record.action.contains("export"))
        .map(|e| (e.record.action.as_str(), e.record.role.as_deref().unwrap_or(""), e.record.status.unwrap_or(0)))
        .collect();
    assert_eq!(
        exports,
        [
            ("POST /v1/sql (export in clear)", "risk_analyst", 403),
            ("POST /v1/sql (export in clear)", "compliance_officer", 200),
            ("POST /v1/sql (export)", "data_scientist", 200)
        ],
        "{exports:?}"
    );
    // Nothing in the audit log holds the clear values either.
    let raw = std::fs::read_to_string(finpulse_access::audit_dir(dir.path()).join(audit::ENTRIES_FILE)).unwrap();
    assert!(!raw.contains(ID_NUMBER));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_profile_withholds_credit_data_unless_read_in_clear_with_a_purpose() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let server = common::start(store, ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let admin = common::admin_client(dir.path());
    let mut events = personal_events();
    events.as_array_mut().unwrap().push(json!({"event_id": "r1", "user_id": "u1", "ts": "2026-03-02T10:00:00+08:00",
        "type": "credit_report", "bureau": "pboc", "bureau_score": 687, "delinquencies_24m": 2, "inquiries_6m": 5}));
    let r = admin.post(format!("{base}/v1/events")).body(events.to_string()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let profile = |c: reqwest::Client, purpose: Option<&'static str>| {
        let mut req = c.get(format!("{base}/v1/users/u1"));
        if let Some(p) = purpose {
            req = req.header("x-purpose", p);
        }
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            let exposure = r.headers().get("x-data-exposure").unwrap().to_str().unwrap().to_string();
            (exposure, r.json::<Value>().await.unwrap())
        }
    };
    let ops = common::client_with(&common::key(dir.path(), Role::OpsManager));
    let analyst = common::client_with(&common::key(dir.path(), Role::RiskAnalyst));
    // Credit data is C2 level 3: without the permission, or without a purpose, it is null; the
    // bureau's name and the C1 fields stay.
    for (who, client, purpose) in [("ops manager", &ops, Some("a look")), ("risk analyst", &analyst, None)] {
        let (exposure, body) = profile(client.clone(), purpose).await;
        assert_eq!(exposure, "masked", "{who}");
        let credit = &body["credit"];
        assert_eq!((&credit["bureau"], &credit["score"]), (&json!("pboc"), &Value::Null), "{who}: {body}");
        assert_eq!((&credit["delinquencies_24m"], &credit["inquiries_6m"]), (&Value::Null, &Value::Null), "{who}: {body}");
        assert_eq!(body["channel"], "douyin", "{who}");
    }
    let (exposure, body) = profile(analyst.clone(), Some("loan application 7 review")).await;
    assert_eq!(exposure, "clear");
    assert_eq!(body["credit"]["score"], 687, "{body}");
    assert_eq!((&body["credit"]["delinquencies_24m"], &body["credit"]["inquiries_6m"]), (&json!(2), &json!(5)));
    server.stop().await.unwrap();

    // Only the read in clear is in the audit log, with its purpose.
    let snap = audit::read(&finpulse_access::audit_dir(dir.path())).unwrap();
    let reads: Vec<_> = snap.entries.iter().filter(|e| e.record.target.as_deref() == Some("/v1/users/u1")).collect();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert!(reads[0].record.action.contains("read in clear"), "{reads:?}");
    assert_eq!(reads[0].record.purpose.as_deref(), Some("loan application 7 review"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_past_its_rate_or_quota_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let server = common::start(store, ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let keys = Keys::open(finpulse_access::access_dir(dir.path())).unwrap();
    let limits = KeyLimits { requests_per_sec: Some(2), ..KeyLimits::default() };
    let (_, text) = keys.create(NewKey { role: Some(Role::Admin), limits, ..NewKey::default() }, "t").unwrap();
    let c = common::client_with(&text);
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..4 {
        let r = c.get(format!("{base}/v1/schema")).send().await.unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            let body: Value = r.json().await.unwrap();
            assert!(body["error"].as_str().unwrap().contains("requests_per_sec"), "{body}");
        }
    }
    assert_eq!(&statuses[..2], [200, 200]);
    assert!(statuses[2..].contains(&429), "{statuses:?}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("finpulse_requests_limited_total{limit=\"requests_per_sec\"}"), "{metrics}");

    let limits = KeyLimits { daily_requests_max: Some(1), ..KeyLimits::default() };
    let (_, text) = keys.create(NewKey { role: Some(Role::Admin), limits, ..NewKey::default() }, "t").unwrap();
    let c = common::client_with(&text);
    assert_eq!(c.get(format!("{base}/v1/schema")).send().await.unwrap().status(), 200);
    let r = c.get(format!("{base}/v1/schema")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() <= 86_400);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sessions_need_the_csrf_token_for_changes_and_brute_force_locks_the_account() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let users = finpulse_access::Users::open(finpulse_access::access_dir(dir.path())).unwrap();
    users.create("wang.fang", Role::OpsManager, "", "a long enough secret").unwrap();
    let server = common::start(store, ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let c = reqwest::Client::new();
    let login = |password: &str| {
        c.post(format!("{base}/v1/auth/login"))
            .header("content-type", "application/json")
            .body(json!({"name": "wang.fang", "password": password}).to_string())
            .send()
    };
    let r = login("a long enough secret").await.unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains("Secure"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_string();
    assert_eq!(body["role"], "ops_manager");

    let r = c.get(format!("{base}/v1/schema")).header("cookie", &session).send().await.unwrap();
    assert_eq!(r.status(), 200, "a read with the session cookie");
    let goal = json!({"name": "q3", "metric": "retention_90d", "target": 0.8, "deadline": "2026-09-30"}).to_string();
    let r = c.post(format!("{base}/v1/goals")).header("cookie", &session).header("content-type", "application/json").body(goal.clone());
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 403, "a change without the CSRF token");
    assert!(r.text().await.unwrap().contains("x-csrf-token"));
    let r = c
        .post(format!("{base}/v1/goals"))
        .header("cookie", &session)
        .header("x-csrf-token", &csrf)
        .header("content-type", "application/json")
        .body(goal)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = c.post(format!("{base}/v1/auth/logout")).header("cookie", &session).header("x-csrf-token", &csrf).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(c.get(format!("{base}/v1/schema")).header("cookie", &session).send().await.unwrap().status(), 401);

    // A user removed while signed in is signed out at their next request.
    users.create("zhao.lei", Role::RiskAnalyst, "", "another long secret").unwrap();
    let r = c
        .post(format!("{base}/v1/auth/login"))
        .header("content-type", "application/json")
        .body(json!({"name": "zhao.lei", "password": "another long secret"}).to_string())
        .send()
        .await
        .unwrap();
    let other = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    assert_eq!(c.get(format!("{base}/v1/schema")).header("cookie", &other).send().await.unwrap().status(), 200);
    users.remove("zhao.lei").unwrap();
    let r = c.get(format!("{base}/v1/schema")).header("cookie", &other).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("was removed"));

    let mut last = 0;
    for _ in 0..finpulse_access::users::SIGN_IN_FAILURES_MAX {
        last = login("guess").await.unwrap().status().as_u16();
    }
    assert_eq!(last, 429, "the fifth failure locks the account");
    let r = login("a long enough secret").await.unwrap();
    assert_eq!(r.status(), 429, "locked even with the right password");
    assert!(r.headers().contains_key("retry-after"));
    server.stop().await.unwrap();

    let snap = audit::read(&finpulse_access::audit_dir(dir.path())).unwrap();
    let sign_ins: Vec<&str> = snap
        .entries
        .iter()
        .filter(|e| e.record.action == "sign_in" && e.record.actor == "user:wang.fang")
        .map(|e| e.record.outcome.as_str())
        .collect();
    assert_eq!(sign_ins.iter().filter(|o| **o == "ok").count(), 1);
    assert_eq!(sign_ins.iter().filter(|o| **o == "denied").count(), 6);
    let goal_change = snap.entries.iter().find(|e| e.record.action == "POST /v1/goals" && e.record.outcome == "ok").unwrap();
    assert_eq!(goal_change.record.actor, "user:wang.fang");
    assert!(goal_change.record.request_sha256.is_some());
}

/// Signs `name` in; answers the session cookie (`name=value`) and its CSRF token.
async fn sign_in(c: &reqwest::Client, base: &str, name: &str, password: &str) -> reqwest::Result<(String, String)> {
    let r = c.post(format!("{base}/v1/auth/login")).json(&json!({"name": name, "password": password})).send().await?.error_for_status()?;
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let body: Value = r.json().await?;
    Ok((cookie, body["csrf_token"].as_str().unwrap().to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_manage_their_tenants_users_and_a_change_ends_the_users_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let server = common::start(store, ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let admin = common::admin_client(dir.path());
    let other_tenant = common::client_with(&common::key_in(dir.path(), Role::Admin, "bank-b"));
    let anyone = reqwest::Client::new();
    let post = |c: &reqwest::Client, path: &str, body: Value| c.post(format!("{base}{path}")).json(&body).send();

    let r = post(&admin, "/v1/auth/users", json!({"name": "chen", "role": "ops_manager", "password": "first passphrase"})).await.unwrap();
    assert_eq!(r.status(), 201);
    let (first, csrf) = sign_in(&anyone, &base, "chen", "first passphrase").await.unwrap();
    let schema = |cookie: String| anyone.get(format!("{base}/v1/schema")).header("cookie", cookie).send();
    assert_eq!(schema(first.clone()).await.unwrap().status(), 200);

    // Their own password: the current one is asked for, and the change starts a new session.
    let change = |cookie: &str, csrf: &str, current: &str, new: &str| {
        anyone
            .post(format!("{base}/v1/auth/password"))
            .header("cookie", cookie)
            .header("x-csrf-token", csrf)
            .json(&json!({"current_password": current, "new_password": new}))
            .send()
    };
    let r = change(&first, &csrf, "a wrong guess", "second passphrase").await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("wrong user name or password"));
    let r = change(&first, &csrf, "first passphrase", "short").await.unwrap();
    assert_eq!(r.status(), 400);
    let r = change(&first, &csrf, "first passphrase", "second passphrase").await.unwrap();
    assert_eq!(r.status(), 200);
    let second = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    assert_eq!(schema(first).await.unwrap().status(), 401, "the session from before the change ended");
    assert_eq!(schema(second.clone()).await.unwrap().status(), 200);
    let r = post(&admin, "/v1/auth/password", json!({"current_password": "x", "new_password": "y"})).await.unwrap();
    assert_eq!(r.status(), 403, "a key has no password to change");

    // Another role: their sessions end; a role that does not exist is named.
    let r = post(&admin, "/v1/auth/users/chen/role", json!({"role": "root"})).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("'root' is not a role"));
    let r = post(&admin, "/v1/auth/users/chen/role", json!({"role": "auditor"})).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["role"], "auditor");
    let r = schema(second).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("another role"));

    // A reset by an administrator; a weak password is refused.
    let r = post(&admin, "/v1/auth/users/chen/password", json!({"password": "short"})).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = post(&admin, "/v1/auth/users/chen/password", json!({"password": "reset passphrase"})).await.unwrap();
    assert_eq!(r.status(), 200);
    let (third, _) = sign_in(&anyone, &base, "chen", "reset passphrase").await.unwrap();

    // Another tenant's administrator cannot see, change or remove them.
    for (path, body) in [
        ("/v1/auth/users/chen/remove", json!({})),
        ("/v1/auth/users/chen/role", json!({"role": "admin"})),
        ("/v1/auth/users/chen/password", json!({"password": "taken over passphrase"})),
    ] {
        let r = post(&other_tenant, path, body).await.unwrap();
        assert_eq!(r.status(), 404, "{path} across tenants");
    }
    let r = other_tenant.get(format!("{base}/v1/auth/users")).send().await.unwrap();
    assert!(!r.text().await.unwrap().contains("chen"));
    assert!(sign_in(&anyone, &base, "chen", "reset passphrase").await.is_ok(), "nothing changed across tenants");

    let r = post(&admin, "/v1/auth/users/chen/remove", json!({})).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(schema(third).await.unwrap().status(), 401);
    assert_eq!(post(&admin, "/v1/auth/users/chen/remove", json!({})).await.unwrap().status(), 404);
    server.stop().await.unwrap();

    // Each change is on record; a body with a password in it is hashed under a secret, so the
    // trail cannot be used to test guesses.
    let snap = audit::read(&finpulse_access::audit_dir(dir.path())).unwrap();
    let ok = |action: &str| snap.entries.iter().filter(|e| e.record.action == action && e.record.outcome == "ok").count();
    assert_eq!(ok("POST /v1/auth/users/{name}/role"), 1);
    assert_eq!(ok("POST /v1/auth/users/{name}/password"), 1);
    assert_eq!(ok("POST /v1/auth/users/{name}/remove"), 1);
    assert_eq!(ok("POST /v1/auth/password"), 1);
    let reset = snap.entries.iter().find(|e| e.record.action == "POST /v1/auth/users/{name}/password" && e.record.outcome == "ok").unwrap();
    let plain = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(json!({"password": "reset passphrase"}).to_string().as_bytes()));
    let recorded = reset.record.request_sha256.as_deref().unwrap();
    assert_eq!(recorded.len(), 64);
    assert_ne!(recorded, plain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_failing_to_sign_in_as_many_users_is_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let users = finpulse_access::Users::open(finpulse_access::access_dir(dir.path())).unwrap();
    users.create("sun", Role::RiskAnalyst, "", "the right passphrase").unwrap();
    let server = common::start(store, ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let c = reqwest::Client::new();
    // One guess each at many names: no account reaches its lockout.
    for i in 0..finpulse_access::limits::SIGN_IN_FAILURES_PER_ADDRESS_MAX {
        let r = c.post(format!("{base}/v1/auth/login")).json(&json!({"name": format!("user{i}"), "password": "Summer2026!!"})).send();
        assert_eq!(r.await.unwrap().status(), 401);
    }
    let r = c.post(format!("{base}/v1/auth/login")).json(&json!({"name": "sun", "password": "the right passphrase"})).send().await.unwrap();
    assert_eq!(r.status(), 429, "the address waits out its window, whatever it tries");
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait > 0 && wait <= finpulse_access::limits::SIGN_IN_ADDRESS_WINDOW_SECS as u64, "{wait}");
    assert!(r.text().await.unwrap().contains("from this address"));
    let metrics = c.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("finpulse_requests_limited_total{limit=\"sign_in_failures_per_address\"}"), "{metrics}");
    server.stop().await.unwrap();
    assert_eq!(users.get("sun").unwrap().unwrap().failures, 0, "the throttled attempt never reached the account");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_throttle_counts_each_forwarded_client_and_ignores_the_header_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let users = finpulse_access::Users::open(finpulse_access::access_dir(dir.path())).unwrap();
    users.create("sun", Role::RiskAnalyst, "", "the right passphrase").unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let options = AccessOptions { trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()], ..AccessOptions::default() };
    let server =
        finpulse_server::Server::start(store, StoreOptions::default(), "127.0.0.1:0".parse().unwrap(), ApiLimits::default(), options)
            .await
            .unwrap();
    let base = format!("http://{}", server.addr);
    let c = reqwest::Client::new();
    let sign_in = |from: &'static str, name: String, password: &'static str| {
        c.post(format!("{base}/v1/auth/login")).header("x-forwarded-for", from).json(&json!({"name": name, "password": password})).send()
    };
    for i in 0..finpulse_access::limits::SIGN_IN_FAILURES_PER_ADDRESS_MAX {
        assert_eq!(sign_in("203.0.113.7", format!("user{i}"), "Summer2026!!").await.unwrap().status(), 401);
    }
    let r = sign_in("203.0.113.7", "sun".into(), "the right passphrase").await.unwrap();
    assert_eq!(r.status(), 429, "the guessing client waits");
    let r = sign_in("198.51.100.20", "sun".into(), "the right passphrase").await.unwrap();
    assert_eq!(r.status(), 200, "another client behind the same proxy does not");
    server.stop().await.unwrap();
    let snap = audit::read(&finpulse_access::audit_dir(dir.path())).unwrap();
    let froms: Vec<&str> = snap.entries.iter().filter(|e| e.record.action == "sign_in").filter_map(|e| e.record.from.as_deref()).collect();
    assert!(froms.iter().any(|f| f.starts_with("203.0.113.7 via 127.0.0.1:")), "{froms:?}");
    assert!(froms.iter().any(|f| f.starts_with("198.51.100.20 via 127.0.0.1:")), "{froms:?}");

    // Without trusted proxies the header is whatever a client wrote: every attempt counts
    // against the connection's own address.
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(EventStore::open(dir.path(), StoreOptions::default()).unwrap(), ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    for i in 0..=finpulse_access::limits::SIGN_IN_FAILURES_PER_ADDRESS_MAX {
        let from = format!("203.0.113.{i}");
        let r = c.post(format!("{base}/v1/auth/login")).header("x-forwarded-for", from).json(&json!({"name": "x", "password": "y"})).send();
        let expected = if i < finpulse_access::limits::SIGN_IN_FAILURES_PER_ADDRESS_MAX { 401 } else { 429 };
        assert_eq!(r.await.unwrap().status(), expected, "attempt {i}");
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_past_their_keys_time_or_concurrency_get_429_with_retry_after_counted_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let server = common::start(store, ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let keys = Keys::open(finpulse_access::access_dir(dir.path())).unwrap();
    let limits = KeyLimits { query_secs_max: Some(2), queries_concurrent_max: Some(1), ..KeyLimits::default() };
    let (record, text) = keys.create(NewKey { role: Some(Role::DataScientist), limits, ..NewKey::default() }, "t").unwrap();
    let c = common::client_with(&text);
    let sql = |query: &str| c.post(format!("{base}/v1/sql")).json(&json!({ "query": query })).send();
    let long = {
        let (c, url) = (c.clone(), format!("{base}/v1/sql"));
        tokio::spawn(
            async move { c.post(url).json(&json!({"query": "SELECT count(*) FROM generate_series(1, 100000000000)"})).send().await },
        )
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let r = sql("SELECT 1 AS one").await.unwrap();
    assert_eq!(r.status(), 429, "a second query while the first runs");
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(r.text().await.unwrap().contains("queries_concurrent_max"));
    let r = long.await.unwrap().unwrap();
    assert_eq!(r.status(), 429, "the long query is stopped at its time");
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(r.text().await.unwrap().contains("query_secs_max"));
    let r = sql("SELECT 1 AS one").await.unwrap();
    assert_eq!(r.status(), 200, "the turn is given back when a query is stopped");
    let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    for limit in ["query_secs_max", "queries_concurrent_max"] {
        assert!(metrics.contains(&format!("finpulse_requests_limited_total{{limit=\"{limit}\"}}")), "{limit}: {metrics}");
    }
    server.stop().await.unwrap();
    let snap = audit::read(&finpulse_access::audit_dir(dir.path())).unwrap();
    let refused: Vec<_> = snap.entries.iter().filter(|e| e.record.action == "POST /v1/sql" && e.record.status == Some(429)).collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused.iter().all(|e| e.record.actor == format!("key:{}", record.id)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_intent_cannot_be_audited_is_not_made() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let server = common::start(store, ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let admin = common::admin_client(dir.path());
    assert_eq!(admin.get(format!("{base}/v1/goals")).send().await.unwrap().status(), 200);
    // The entries file becomes a directory: no append can succeed.
    let entries = finpulse_access::audit_dir(dir.path()).join(audit::ENTRIES_FILE);
    let kept = std::fs::read(&entries).unwrap_or_default();
    std::fs::remove_file(&entries).ok();
    std::fs::create_dir(&entries).unwrap();
    let goal = json!({"name": "unaudited", "metric": "mau", "target": 10.0, "deadline": "2026-06-30"});
    let r = admin.post(format!("{base}/v1/goals")).json(&goal).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("the audit log could not be written, so nothing was changed"));
    std::fs::remove_dir(&entries).unwrap();
    std::fs::write(&entries, kept).unwrap();
    let goals = admin.get(format!("{base}/v1/goals")).send().await.unwrap().text().await.unwrap();
    assert!(!goals.contains("unaudited"), "the change was made without its trail: {goals}");
    let r = admin.post(format!("{base}/v1/goals")).json(&goal).send().await.unwrap();
    assert_eq!(r.status(), 200, "once the log can be written the change goes through");
    server.stop().await.unwrap();
    let adir = finpulse_access::audit_dir(dir.path());
    audit::verify(&adir, &audit::read_verifying_key(&adir).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_endpoint_answers_entries_with_proofs_that_verify_and_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let server = common::start(store, ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let admin = common::admin_client(dir.path());
    let made: Value = admin
        .post(format!("{base}/v1/auth/keys"))
        .header("content-type", "application/json")
        .body(json!({"role": "auditor", "label": "quarterly audit"}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let auditor = common::client_with(made["key"].as_str().unwrap());
    let _ = reqwest::Client::new().get(format!("{base}/v1/schema")).send().await.unwrap();
    let page: Value = auditor.get(format!("{base}/v1/audit")).send().await.unwrap().json().await.unwrap();
    let head = &page["tree_head"];
    let root: [u8; 32] = hex::decode(head["root"].as_str().unwrap()).unwrap().try_into().unwrap();
    let entries = page["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["action"] == "POST /v1/auth/keys" && e["outcome"] == "ok"), "{page}");
    assert!(entries.iter().any(|e| e["actor"] == "anonymous"), "{page}");
    for e in entries {
        let leaf: [u8; 32] = hex::decode(e["leaf_hash"].as_str().unwrap()).unwrap().try_into().unwrap();
        let proof: Vec<[u8; 32]> = e["inclusion_proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| hex::decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
            .collect();
        let seq = e["seq"].as_u64().unwrap();
        assert!(finpulse_access::merkle::verify_inclusion(&leaf, seq, head["tree_size"].as_u64().unwrap(), &proof, &root), "entry {seq}");
    }
    let csv = auditor.get(format!("{base}/v1/audit?format=csv&action=auth")).send().await.unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("seq,at,actor,role,tenant,action"), "{text}");
    assert!(text.contains("POST /v1/auth/keys"));
    let bad = auditor.get(format!("{base}/v1/audit?format=xml")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    // A time range: every entry was written today, none before 2000 or after 2999.
    let count = |query: &'static str| {
        let auditor = auditor.clone();
        let base = base.clone();
        async move {
            let page: Value = auditor.get(format!("{base}/v1/audit?{query}")).send().await.unwrap().json().await.unwrap();
            page["entries"].as_array().map(Vec::len)
        }
    };
    assert_eq!(count("since=2999-01-01").await, Some(0));
    assert_eq!(count("until=2000-01-01T00:00:00Z").await, Some(0));
    assert!(count("since=2000-01-01&until=2999-01-01").await.is_some_and(|n| n >= entries.len()));
    let bad = auditor.get(format!("{base}/v1/audit?since=yesterday")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("since 'yesterday'"));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_beyond_loopback_refuses_to_start_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let Err(e) = finpulse_server::Server::start(
        store,
        StoreOptions::default(),
        "0.0.0.0:0".parse().unwrap(),
        ApiLimits::default(),
        AccessOptions::default(),
    )
    .await
    else {
        panic!("started on every interface with no key or user")
    };
    assert!(e.to_string().contains("refusing to listen on 0.0.0.0:0"), "{e}");
}

/// A server on an empty store where changes of `kinds` wait for a second person.
async fn start_needing_approval(dir: &std::path::Path, kinds: Vec<ApprovalKind>) -> finpulse_server::Server {
    let store = EventStore::open(dir, StoreOptions::default()).unwrap();
    let options = AccessOptions { approval_required: kinds, ..AccessOptions::default() };
    finpulse_server::Server::start(store, StoreOptions::default(), "127.0.0.1:0".parse().unwrap(), ApiLimits::default(), options)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ruleset_set_to_need_approval_goes_live_only_when_a_second_person_approves() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_needing_approval(dir.path(), vec![ApprovalKind::Rules]).await;
    let base = format!("http://{}", server.addr);
    let maker = common::client_with(&common::key(dir.path(), Role::RiskAnalyst));
    let checker = common::client_with(&common::key(dir.path(), Role::RiskAnalyst));
    let scientist = common::client_with(&common::key(dir.path(), Role::DataScientist));
    let rules = "name = \"cards\"\nreview_at = 0.5\nblock_at = 0.9\n[[rule]]\nname = \"big\"\nwhen = \"payment.amount_fen > 100000\"\nscore = 0.6\n";
    let r = maker.post(format!("{base}/v1/rules")).body(rules).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let asked: Value = r.json().await.unwrap();
    assert_eq!((asked["kind"].as_str(), asked["state"].as_str(), asked["version"].as_u64()), (Some("rules"), Some("pending"), Some(1)));
    let id = asked["id"].as_u64().unwrap();
    let active: Value = maker.get(format!("{base}/v1/rules")).send().await.unwrap().json().await.unwrap();
    assert_ne!(active["version"], 1, "not live before approval: {active}");

    let r = maker.post(format!("{base}/v1/approvals/{id}/approve")).send().await.unwrap();
    assert_eq!(r.status(), 403, "the maker cannot check their own change");
    let r = scientist.post(format!("{base}/v1/approvals/{id}/approve")).send().await.unwrap();
    assert_eq!(r.status(), 403, "nor can a role without publish_rules");
    let listed: Value = scientist.get(format!("{base}/v1/approvals")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["approvals"], json!([]), "a role that cannot decide rules does not see them");
    let r = checker.post(format!("{base}/v1/approvals/{id}/approve")).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let active: Value = maker.get(format!("{base}/v1/rules")).send().await.unwrap().json().await.unwrap();
    assert_eq!(active["version"], 1, "live after approval: {active}");
    let r = checker.post(format!("{base}/v1/approvals/{id}/reject")).send().await.unwrap();
    assert_eq!(r.status(), 409, "decided already");
    let r = checker.post(format!("{base}/v1/approvals/99/approve")).send().await.unwrap();
    assert_eq!(r.status(), 404, "no such request");
    server.stop().await.unwrap();

    let snap = audit::read(&finpulse_access::audit_dir(dir.path())).unwrap();
    let approvals: Vec<(&str, u16)> = snap
        .entries
        .iter()
        .filter(|e| e.record.action.contains("/v1/approvals/{id}/approve"))
        .map(|e| (e.record.outcome.as_str(), e.record.status.unwrap_or(0)))
        .collect();
    // Each change's intent is on record before it is made, then its outcome.
    let started = ("started", 0);
    assert_eq!(
        approvals,
        [started, ("denied", 403), started, ("denied", 403), started, ("ok", 200), started, ("refused", 404)],
        "{approvals:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roll_back_where_publishing_needs_approval_waits_for_a_second_person_too() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_needing_approval(dir.path(), vec![ApprovalKind::Rules, ApprovalKind::Models]).await;
    let base = format!("http://{}", server.addr);
    let maker = common::client_with(&common::key(dir.path(), Role::RiskAnalyst));
    let checker = common::client_with(&common::key(dir.path(), Role::RiskAnalyst));
    let version =
        || async { maker.get(format!("{base}/v1/rules")).send().await.unwrap().json::<Value>().await.unwrap()["version"].clone() };
    let approve = |id: u64| checker.post(format!("{base}/v1/approvals/{id}/approve")).send();
    for threshold in [100_000, 200_000] {
        let rules = format!(
            "name = \"cards\"\nreview_at = 0.5\nblock_at = 0.9\n[[rule]]\nname = \"big\"\nwhen = \"payment.amount_fen > {threshold}\"\nscore = 0.6\n"
        );
        let asked: Value = maker.post(format!("{base}/v1/rules")).body(rules).send().await.unwrap().json().await.unwrap();
        assert_eq!(approve(asked["id"].as_u64().unwrap()).await.unwrap().status(), 200);
    }
    assert_eq!(version().await, 2);

    let r = maker.post(format!("{base}/v1/rules/rollback")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let first: Value = r.json().await.unwrap();
    assert_eq!(
        (first["change"].as_str(), first["version"].as_u64(), first["state"].as_str()),
        (Some("roll_back"), Some(1), Some("pending"))
    );
    assert_eq!(version().await, 2, "still v2 before approval");
    // A second request for the same roll-back, asked before the first is decided.
    let second: Value = maker.post(format!("{base}/v1/rules/rollback")).send().await.unwrap().json().await.unwrap();
    let r = approve(first["id"].as_u64().unwrap()).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(version().await, 1, "rolled back once approved");
    // The second no longer reaches v1 (nothing is before it): refused, and it stays pending.
    let r = approve(second["id"].as_u64().unwrap()).await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("stays pending"));
    assert_eq!(version().await, 1);

    // A model roll-back with nothing to go back to is refused before anyone is asked.
    let admin = common::admin_client(dir.path());
    let r = admin.post(format!("{base}/v1/models/fraud/rollback")).send().await.unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let listed: Value = checker.get(format!("{base}/v1/approvals")).send().await.unwrap().json().await.unwrap();
    assert!(listed["approvals"].as_array().unwrap().iter().all(|a| a["kind"] == "rules"), "{listed}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_of_the_wrong_type_and_wrong_methods_answer_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let server = common::start(store, ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let admin = common::admin_client(dir.path());
    for (method, path, status) in
        [("GET", "/v1/cases?limit=-1", 400), ("POST", "/v1/approvals/abc/approve", 400), ("DELETE", "/v1/sql", 405)]
    {
        let r = admin.request(method.parse().unwrap(), format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
        assert_eq!(r.headers()["content-type"], "application/json", "{method} {path}");
        let body: Value = r.json().await.unwrap();
        assert!(!body["error"].as_str().unwrap().is_empty(), "{method} {path}: {body}");
    }
    // The document says how to authenticate and what a refusal looks like.
    let spec: Value = admin.get(format!("{base}/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(spec["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(spec["paths"]["/v1/sql"]["post"]["responses"]["403"].is_object());
    assert!(spec["paths"]["/healthz"]["get"]["security"].is_null());
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_made_rotated_and_revoked_over_http_take_effect_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let server = common::start(store, ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let admin = common::admin_client(dir.path());
    let made: Value = admin
        .post(format!("{base}/v1/auth/keys"))
        .header("content-type", "application/json")
        .body(json!({"role": "partner_app", "label": "acme", "expires_in_days": 30, "limits": {"requests_per_sec": 100}}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, old_key) = (made["id"].as_str().unwrap().to_string(), made["key"].as_str().unwrap().to_string());
    assert_eq!(made["limits"]["requests_per_sec"], 100);
    let listed: Value = admin.get(format!("{base}/v1/auth/keys")).send().await.unwrap().json().await.unwrap();
    assert!(!listed.to_string().contains(&old_key[18..]), "a listing never carries a secret");
    let bad = admin.post(format!("{base}/v1/auth/keys/{id}/rotate")).body("{\"overlap\": 5}").send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let rotated: Value = admin.post(format!("{base}/v1/auth/keys/{id}/rotate")).send().await.unwrap().json().await.unwrap();
    assert_eq!(rotated["rotated_from"], id.as_str());
    let new_key = rotated["key"].as_str().unwrap().to_string();
    let whoami = |key: String| {
        let url = format!("{base}/v1/auth/whoami");
        async move { common::client_with(&key).get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!((whoami(old_key.clone()).await, whoami(new_key.clone()).await), (200, 200), "both work during the overlap");
    let r = admin.post(format!("{base}/v1/auth/keys/{id}/revoke")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!((whoami(old_key).await, whoami(new_key).await), (401, 200), "the revoked key stops at once");
    let other = admin.post(format!("{base}/v1/auth/keys/nope/revoke")).send().await.unwrap();
    assert_eq!(other.status(), 404);
    let bad =
        admin.post(format!("{base}/v1/auth/keys")).header("content-type", "application/json").body(json!({"role": "root"}).to_string());
    let bad = bad.send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("role: 'root' is not a role"));
    let weak = admin.post(format!("{base}/v1/auth/users")).header("content-type", "application/json");
    let weak = weak.body(json!({"name": "li", "role": "auditor", "password": "short"}).to_string()).send().await.unwrap();
    assert_eq!(weak.status(), 400, "a weak password is refused");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_set_to_need_a_key_with_the_operate_permission() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let options = AccessOptions { metrics_need_key: true, ..AccessOptions::default() };
    let server =
        finpulse_server::Server::start(store, StoreOptions::default(), "127.0.0.1:0".parse().unwrap(), ApiLimits::default(), options)
            .await
            .unwrap();
    let base = format!("http://{}", server.addr);
    assert_eq!(reqwest::get(format!("{base}/metrics")).await.unwrap().status(), 401);
    assert_eq!(reqwest::get(format!("{base}/healthz")).await.unwrap().status(), 200, "liveness stays open");
    let analyst = common::client_with(&common::key(dir.path(), Role::RiskAnalyst));
    assert_eq!(analyst.get(format!("{base}/metrics")).send().await.unwrap().status(), 403);
    assert_eq!(common::admin_client(dir.path()).get(format!("{base}/metrics")).send().await.unwrap().status(), 200);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_secure_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let users = finpulse_access::Users::open(finpulse_access::access_dir(dir.path())).unwrap();
    users.create("zhao.lei", Role::Auditor, "", "a long enough secret").unwrap();
    let options = AccessOptions { session_cookie_secure: true, ..AccessOptions::default() };
    let server =
        finpulse_server::Server::start(store, StoreOptions::default(), "127.0.0.1:0".parse().unwrap(), ApiLimits::default(), options)
            .await
            .unwrap();
    let base = format!("http://{}", server.addr);
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/auth/login"))
        .header("content-type", "application/json")
        .body(json!({"name": "zhao.lei", "password": "a long enough secret"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{cookie}");
    let csrf = r.json::<Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_string();
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/auth/logout"))
        .header("cookie", cookie.split(';').next().unwrap())
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("; Secure"));
    server.stop().await.unwrap();
}
