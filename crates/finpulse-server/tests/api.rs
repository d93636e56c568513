//! The HTTP API over a real socket and a real data directory.

mod common;

use finpulse_log::{EventStore, StoreOptions};
use finpulse_server::{ApiLimits, Server};
use serde_json::{Value, json};

struct Api {
    server: Option<Server>,
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start(limits: ApiLimits) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let server = common::start(store, limits).await.unwrap();
    let base = format!("http://{}", server.addr);
    Api { server: Some(server), base, client: common::admin_client(dir.path()), _dir: dir }
}

impl Api {
    async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let r =
            self.client.post(format!("{}{path}", self.base)).header("content-type", "application/json").body(body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_raw(path, body.to_string()).await
    }
    async fn sql(&self, query: &str) -> (u16, Value) {
        self.post("/v1/sql", json!({"query": query})).await
    }
    async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self.client.get(format!("{}{path}", self.base)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
    async fn stop(mut self) {
        self.server.take().unwrap().stop().await.unwrap();
    }
}

fn payment(id: &str, user: &str, amount: i64) -> Value {
    json!({"event_id": id, "user_id": user, "ts": "2026-03-01T10:00:00+08:00", "type": "payment", "amount_fen": amount, "currency": "CNY", "terminal_id": "t1"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_events_are_queryable_at_once_and_duplicates_are_acknowledged_once() {
    let api = start(ApiLimits::default()).await;
    let (status, body) = api.post("/v1/events", json!([payment("e1", "u1", 100), payment("e2", "u2", 250)])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["accepted"].as_u64(), body["duplicates"].as_u64(), body["rejected"].as_u64()), (Some(2), Some(0), Some(0)));
    let (_, body) = api.post("/v1/events", json!([payment("e1", "u1", 100), payment("e3", "u1", 5), payment("e3", "u1", 5)])).await;
    assert_eq!((body["accepted"].as_u64(), body["duplicates"].as_u64()), (Some(1), Some(2)));
    let (status, body) =
        api.sql("SELECT user_id, sum(amount_fen) AS fen, count(*) AS n FROM payment GROUP BY user_id ORDER BY user_id").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"], json!([["u1", 105, 2], ["u2", 250, 1]]));
    assert_eq!(body["columns"][0]["name"], "user_id");
    let (_, body) = api.sql("SELECT ts FROM events WHERE event_id = 'e1'").await;
    assert_eq!(body["rows"][0][0], "2026-03-01T02:00:00Z");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_are_named_and_valid_ones_in_the_batch_are_kept() {
    let api = start(ApiLimits::default()).await;
    let batch = json!([
        payment("ok1", "u1", 1),
        {"event_id": "b1", "user_id": "u1", "ts": "2026-03-01T10:00:00Z", "type": "payment", "amount_fen": "12", "currency": "CNY", "terminal_id": "t"},
        {"event_id": "b2", "user_id": "u1", "ts": "2026-03-01T10:00:00Z", "type": "payment", "amount_fen": 12, "currency": "CNY"},
        {"event_id": "b3", "user_id": "u1", "ts": "2026-03-01T10:00:00Z", "type": "teleport"},
        {"event_id": "b4", "user_id": "u1", "ts": "2026-03-01T10:00:00Z", "type": "payment", "amount_fen": -5, "currency": "CNY", "terminal_id": "t"},
        {"event_id": "b5", "user_id": "u1", "ts": "3026-03-01T10:00:00Z", "type": "payment", "amount_fen": 5, "currency": "CNY", "terminal_id": "t"},
        {"event_id": "b6", "user_id": "u1", "ts": "yesterday", "type": "payment", "amount_fen": 5, "currency": "CNY", "terminal_id": "t"},
        "not an object",
    ]);
    let (status, body) = api.post("/v1/events", batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["accepted"].as_u64(), body["rejected"].as_u64()), (Some(1), Some(7)));
    let errors = body["errors"].as_array().unwrap();
    let by_index: Vec<(u64, Option<&str>)> = errors.iter().map(|e| (e["index"].as_u64().unwrap(), e["field"].as_str())).collect();
    assert_eq!(
        by_index,
        vec![
            (1, Some("amount_fen")),
            (2, Some("terminal_id")),
            (3, Some("type")),
            (4, Some("amount_fen")),
            (5, Some("ts")),
            (6, Some("ts")),
            (7, None)
        ]
    );
    assert!(errors[0]["message"].as_str().unwrap().contains("expected int, got string"));
    assert!(errors[3]["message"].as_str().unwrap().contains("negative"));

    // Nothing valid: 400, with the reasons.
    let (status, body) = api.post("/v1/events", json!([{"type": "payment"}])).await;
    assert_eq!(status, 400);
    assert_eq!(body["rejected"], 1);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_refused_with_where_and_why() {
    let api = start(ApiLimits::default()).await;
    let (status, body) = api.post_raw("/v1/events", "[{\"a\": 1},\n {\"b\": }]").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("line 2, column 8"), "{body}");
    let (status, body) = api.post_raw("/v1/events", b"[{\"user_id\": \"\xff\"}]".to_vec()).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("UTF-8 at byte 14"), "{body}");
    // NDJSON: a bad line fails alone and is named by line number.
    let ndjson = format!("{}\n{{oops\n{}\n", payment("n1", "u1", 1), payment("n2", "u1", 1));
    let (status, body) = api.post_raw("/v1/events", ndjson).await;
    assert_eq!(status, 200);
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["errors"][0]["line"], 2);
    let (status, _) = api.post_raw("/v1/events", "").await;
    assert_eq!(status, 400);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_answer_413_and_name_the_limit() {
    let limits = ApiLimits { body_bytes_max: 4096, batch_records_max: 3, ..ApiLimits::default() };
    let api = start(limits).await;
    let big = json!([{"user_id": "u", "type": "feedback", "text": "x".repeat(5000)}]);
    let (status, body) = api.post("/v1/events", big).await;
    assert_eq!(status, 413);
    assert!(body["error"].as_str().unwrap().contains("body_bytes_max"), "{body}");
    let four: Vec<Value> = (0..4).map(|i| payment(&format!("p{i}"), "u", 1)).collect();
    let (status, body) = api.post("/v1/events", Value::Array(four)).await;
    assert_eq!(status, 413);
    assert!(body["error"].as_str().unwrap().contains("batch_records_max"), "{body}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_is_read_only_and_reports_bad_queries() {
    let api = start(ApiLimits::default()).await;
    api.post("/v1/events", json!([payment("e1", "u1", 100)])).await;
    let (status, body) = api.sql("SELEC 1").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().to_lowercase().contains("sql"), "{body}");
    let (status, _) = api.sql("CREATE TABLE x AS SELECT 1").await;
    assert_eq!(status, 400);
    let (status, _) = api.sql("COPY (SELECT 1) TO '/tmp/finpulse-should-not-exist.csv'").await;
    assert_eq!(status, 400);
    assert!(!std::path::Path::new("/tmp/finpulse-should-not-exist.csv").exists());
    let (status, _) = api.sql("SELECT no_such_column FROM payment").await;
    assert_eq!(status, 400);
    // Compaction moves events to Parquet; queries see the same rows.
    let (status, _) = api.post("/v1/admin/compact", json!({})).await;
    assert_eq!(status, 200);
    api.post("/v1/events", json!([payment("e2", "u1", 7)])).await;
    let (_, body) = api.sql("SELECT count(*), sum(amount_fen) FROM payment").await;
    assert_eq!(body["rows"], json!([[2, 107]]));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_health_metrics_and_openapi_are_served() {
    let api = start(ApiLimits::default()).await;
    let (status, text) = api.get_text("/v1/schema").await;
    assert_eq!(status, 200);
    let schema: Value = serde_json::from_str(&text).unwrap();
    let types = schema["types"].as_array().unwrap();
    let card = types.iter().find(|t| t["name"] == "card_bound").unwrap();
    let number = card["fields"].as_array().unwrap().iter().find(|f| f["name"] == "card_number").unwrap();
    assert_eq!((number["category"].as_str(), number["level"].as_u64()), (Some("C2"), Some(3)));

    let (status, _) = api.get_text("/healthz").await;
    assert_eq!(status, 200);
    api.post("/v1/events", json!([payment("m1", "u1", 1)])).await;
    let (status, metrics) = api.get_text("/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("finpulse_ingest_records_total"), "{metrics}");
    assert!(metrics.contains("finpulse_log_bytes"), "{metrics}");
    // The recorder is shared by the tests of this process: other tests' commits count too.
    for commit in ["finpulse_log_commit_seconds_count ", "finpulse_log_commit_requests_sum "] {
        assert!(metrics.contains(commit), "{commit} in {metrics}");
    }
    let (status, openapi) = api.get_text("/openapi.json").await;
    assert_eq!(status, 200);
    let openapi: Value = serde_json::from_str(&openapi).unwrap();
    for path in ["/v1/events", "/v1/sql", "/v1/schema", "/healthz", "/metrics"] {
        assert!(openapi["paths"].get(path).is_some(), "{path} missing from OpenAPI");
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_types_are_registered_then_ingested_and_queried() {
    let api = start(ApiLimits::default()).await;
    let def = json!({"name": "coupon_redeemed", "fields": [
        {"name": "coupon_code", "type": "string", "required": true, "class": {"category": "C1", "level": 2}},
        {"name": "amount_fen", "type": "int"}
    ]});
    let (status, body) = api.post("/v1/schema/types", def.clone()).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = api.post("/v1/schema/types", def).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("already exists"));
    let (status, body) = api.post("/v1/schema/types", json!({"name": "x", "fields": [{"name": "mystery", "type": "int"}]})).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("data class"), "{body}");
    let (status, body) = api
        .post(
            "/v1/events",
            json!([{"user_id": "u1", "ts": 1772330400000i64, "type": "coupon_redeemed", "coupon_code": "SPRING", "amount_fen": 500}]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = api.sql("SELECT coupon_code, amount_fen FROM coupon_redeemed").await;
    assert_eq!(body["rows"], json!([["SPRING", 500]]));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_answers_arrow_ipc_when_asked() {
    let api = start(ApiLimits::default()).await;
    api.post("/v1/events", json!([payment("a1", "u1", 100), payment("a2", "u2", 200)])).await;
    let r = api
        .client
        .post(format!("{}/v1/sql", api.base))
        .header("accept", finpulse_server::ARROW_STREAM_MEDIA_TYPE)
        .json(&json!({"query": "SELECT user_id, amount_fen FROM payment ORDER BY user_id"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], finpulse_server::ARROW_STREAM_MEDIA_TYPE);
    let bytes = r.bytes().await.unwrap();
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    use arrow::array::AsArray;
    let amounts = batch.column(1).as_primitive::<arrow::datatypes::Int64Type>();
    assert_eq!(amounts.values().to_vec(), vec![100, 200]);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_answer_stops_at_sql_rows_max_without_computing_the_rest() {
    let api = start(ApiLimits { sql_rows_max: 10, ..ApiLimits::default() }).await;
    // Ten billion rows: collected whole, this would run for hours or exhaust the query memory.
    let started = std::time::Instant::now();
    let (status, body) = api.sql("SELECT value FROM generate_series(1, 10000000000)").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"].as_array().unwrap().len(), 10);
    assert_eq!(body["rows"][9], json!([10]));
    assert_eq!(body["rows_truncated"], json!(true));
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "took {:?}", started.elapsed());
    let (_, body) = api.sql("SELECT value FROM generate_series(1, 10)").await;
    assert_eq!(body["rows_truncated"], json!(false), "exactly the limit is not cut");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_time_limit_is_answered_503_and_named() {
    let api = start(ApiLimits { request_timeout_secs: 1, ..ApiLimits::default() }).await;
    let started = std::time::Instant::now();
    let (status, body) = api.sql("SELECT count(*) FROM generate_series(1, 100000000000)").await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("request_timeout_secs"), "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "took {:?}", started.elapsed());
    // The server goes on answering.
    let (status, body) = api.sql("SELECT 1 AS one").await;
    assert_eq!((status, &body["rows"]), (200, &json!([[1]])));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_that_do_not_fit_together_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let limits = ApiLimits { field_bytes_max: 2 << 20, body_bytes_max: 64 << 20, ..ApiLimits::default() };
    let Err(e) = common::start(store, limits).await else { panic!("started with conflicting limits") };
    assert!(e.to_string().contains("limits.field_bytes_max"), "{e}");
}
