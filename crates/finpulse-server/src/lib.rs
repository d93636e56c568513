//! finpulse's HTTP API: ingestion (JSON array or NDJSON), SQL, the schema registry, health,
//! Prometheus metrics and an OpenAPI document generated from the routes.

pub mod access;
pub mod decisions;
pub mod experiments;
mod insights;
pub mod json;
pub mod models;
pub mod protection;
pub mod risk;
pub mod subjects;
mod tenants;
pub mod wire;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use finpulse_core::mask::{Exposure, FieldExposure, field_exposure};
use finpulse_core::registry::CustomTypeDef;
use finpulse_core::{Registry, ValidationLimits};
use finpulse_ingest::{Position, Rejection};
use finpulse_log::{AppendStatus, EventStore, ViewHandle};
use finpulse_query::QueryOptions;
use finpulse_risk::live::Live;
use finpulse_write::Submission;
pub use finpulse_write::{Writer, WriterError};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The media type of an Arrow IPC stream, for SQL results.
pub const ARROW_STREAM_MEDIA_TYPE: &str = "application/vnd.apache.arrow.stream";

/// Limits the API enforces; each is named in the errors it causes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiLimits {
    /// Largest request body, bytes (413 beyond).
    pub body_bytes_max: usize,
    /// Most records in one ingestion request (413 beyond).
    pub batch_records_max: usize,
    /// Longest text field value, bytes (the record is rejected beyond).
    pub field_bytes_max: usize,
    /// How far in the future an event time may be, seconds.
    pub ts_future_skew_secs: i64,
    /// Requests waiting for the writer (503 beyond).
    pub write_queue_depth: usize,
    /// Most rows a JSON SQL answer carries (the answer says when it was cut).
    pub sql_rows_max: usize,
    /// Memory one query may use, bytes.
    pub query_memory_bytes_max: usize,
    /// A non-empty tail is compacted at least this often, seconds.
    pub compaction_interval_secs: u64,
    /// How often saved segments are re-materialised, in seconds.
    pub segment_refresh_secs: u64,
    /// How often the server looks whether to move the live-state checkpoint up, in seconds.
    pub checkpoint_check_secs: u64,
    /// Events applied since the last live-state checkpoint before a new one is written in the
    /// background (a restart replays at most about this many, plus one check's worth).
    pub checkpoint_events_min: u64,
    /// The longest a request may take, seconds; past it the answer is 503 and its work is
    /// dropped (a write already queued is still stored: sending it again is safe).
    pub request_timeout_secs: u64,
    /// Queries running at once (SQL, insights, goals, segment saves, churn risk, pricing
    /// computations, a retried decision's lookup); more wait for a turn, within the request
    /// timeout.
    pub queries_concurrent_max: usize,
}

/// Limits that do not fit together.
#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    /// A limit that must be positive is zero.
    #[error("limits.{0} must be at least 1")]
    Zero(&'static str),
    /// One limit is over another it must fit in.
    #[error("limits.{name} = {value} is over {bound_name} = {bound}: {why}")]
    Over {
        /// The limit.
        name: &'static str,
        /// Its value.
        value: usize,
        /// The limit it must fit in.
        bound_name: &'static str,
        /// That limit's value.
        bound: usize,
        /// What would go wrong.
        why: &'static str,
    },
}

impl ApiLimits {
    /// Checks limits that interact against each other (and against the log's fixed record
    /// limit), so a configuration that would fail later is refused at start.
    pub fn check(&self) -> Result<(), LimitsError> {
        let positive: [(&'static str, u64); 7] = [
            ("body_bytes_max", self.body_bytes_max as u64),
            ("batch_records_max", self.batch_records_max as u64),
            ("field_bytes_max", self.field_bytes_max as u64),
            ("write_queue_depth", self.write_queue_depth as u64),
            ("query_memory_bytes_max", self.query_memory_bytes_max as u64),
            ("request_timeout_secs", self.request_timeout_secs),
            ("queries_concurrent_max", self.queries_concurrent_max as u64),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(LimitsError::Zero(name));
        }
        // One valid event holds at least one field of field_bytes_max; its log record must fit.
        let record = finpulse_log::wal::RECORD_BYTES_MAX - RECORD_OVERHEAD_BYTES_MAX;
        if self.field_bytes_max > record {
            return Err(LimitsError::Over {
                name: "field_bytes_max",
                value: self.field_bytes_max,
                bound_name: "the log's record limit less an event's own fields",
                bound: record,
                why: "a valid event with one such field could not be stored",
            });
        }
        if self.field_bytes_max > self.body_bytes_max {
            return Err(LimitsError::Over {
                name: "field_bytes_max",
                value: self.field_bytes_max,
                bound_name: "body_bytes_max",
                bound: self.body_bytes_max,
                why: "no request could carry a field that long",
            });
        }
        Ok(())
    }
}

/// Room an event's id, user, time, type and field ids take in its log record beside one long
/// field, kept free when `field_bytes_max` is checked against the log's record limit.
pub const RECORD_OVERHEAD_BYTES_MAX: usize = 4096;

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            body_bytes_max: 32 << 20,
            batch_records_max: 50_000,
            field_bytes_max: 4096,
            ts_future_skew_secs: 86_400,
            write_queue_depth: 1024,
            sql_rows_max: 100_000,
            query_memory_bytes_max: finpulse_query::QUERY_MEMORY_BYTES_MAX_DEFAULT,
            compaction_interval_secs: 300,
            segment_refresh_secs: finpulse_growth::segments::SEGMENT_REFRESH_SECS_DEFAULT,
            checkpoint_check_secs: 60,
            checkpoint_events_min: 1_000_000,
            request_timeout_secs: 300,
            queries_concurrent_max: 2 * finpulse_core::cores(),
        }
    }
}

/// One tenant's data and engines, as handlers see them (see [`Tenant`]).
#[derive(Clone)]
pub(crate) struct AppState {
    /// Whose data this is.
    tenant: Arc<str>,
    writer: Writer,
    views: ViewHandle,
    limits: ApiLimits,
    metrics: PrometheusHandle,
    /// The data directory, for the model registry and offers beside the store.
    data_dir: std::path::PathBuf,
    /// The last offers file read, with its modification time.
    offers: Arc<models::OffersCache>,
    /// Live state and the decision engine.
    live: Arc<Live>,
    /// Held while saving segments or goals or materialising segments: files are written one at a time.
    segments: Arc<tokio::sync::Mutex<()>>,
    /// One permit per query allowed to run at once (`queries_concurrent_max`).
    queries: Arc<tokio::sync::Semaphore>,
    /// The latest decisions, for retries.
    recent: Arc<risk::RecentDecisions>,
    /// Whether the insight caches are still being filled after the start (queries meanwhile
    /// share the machine with it).
    warming: Arc<std::sync::atomic::AtomicBool>,
    /// Keys, users, sessions, per-key limits and the audit log.
    access: access::SharedAccess,
    /// The home tenant, and what needs a key.
    access_options: access::AccessOptions,
}

/// The caller's tenant's state: the guard puts it in every request (the home tenant's for
/// routes that answer without a key), so a handler can reach no other tenant's data.
pub(crate) struct Tenant(pub AppState);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Tenant {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<AppState>()
            .cloned()
            .map(Tenant)
            .ok_or_else(|| error(StatusCode::INTERNAL_SERVER_ERROR, "no tenant was chosen for this request"))
    }
}

impl AppState {
    /// Waits for a turn to run a query (at most `queries_concurrent_max` run at once); the
    /// turn ends when the permit is dropped.
    pub(crate) async fn query_turn(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.queries.clone().acquire_owned().await.expect("the query semaphore is never closed")
    }

    /// The limits records are validated under, as of now.
    pub(crate) fn validation_limits(&self) -> ValidationLimits {
        ValidationLimits {
            field_bytes_max: self.limits.field_bytes_max,
            ts_future_skew_secs: self.limits.ts_future_skew_secs,
            now_us: finpulse_core::time::now_us(),
        }
    }
}

/// A JSON error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(ErrorBody { error: message.into() })).into_response()
}

/// A rejected record in an ingestion answer.
#[derive(Serialize, ToSchema)]
pub struct RecordErrorBody {
    /// Zero-based index in a JSON array body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// One-based line of an NDJSON body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The offending field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// The answer to an ingestion request.
#[derive(Serialize, ToSchema)]
pub struct IngestResponse {
    /// Records stored, durably (fsync'd) before this answer was sent.
    pub accepted: usize,
    /// Records whose event_id was already stored (or repeated earlier in this request):
    /// acknowledged, not stored again.
    pub duplicates: usize,
    /// Records refused; `errors` says where and why.
    pub rejected: usize,
    /// One entry per rejected record, at most 1,000.
    pub errors: Vec<RecordErrorBody>,
}

/// A refused ingestion request: the per-record errors when the body held records, or one error
/// when it did not parse or held none.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum IngestRefusalBody {
    /// No record was valid.
    Records(IngestResponse),
    /// The body was not records.
    Body(ErrorBody),
}

/// Most per-record errors one answer lists.
pub const ERRORS_LISTED_MAX: usize = 1000;

fn record_error(r: &Rejection) -> RecordErrorBody {
    let (index, line) = match r.position {
        Position::Index(i) | Position::Row(i) => (Some(i), None),
        Position::Line(l) | Position::CsvLine(l) => (None, Some(l)),
    };
    RecordErrorBody { index, line, field: r.field.clone(), message: r.message.clone() }
}

/// Ingest events: a JSON array of records or NDJSON. Valid records are stored even when others
/// are rejected; the answer counts accepted, duplicate and rejected records and lists the errors.
#[utoipa::path(post, path = "/v1/events", tag = "ingestion",
    request_body(content = String, description = "JSON array of flat records, or NDJSON (one per line). Each record: event_id (optional), user_id, ts (RFC 3339 or epoch ms), type, then the type's fields.", content_type = "application/json"),
    responses(
        (status = 200, description = "Valid records are durable", body = IngestResponse),
        (status = 400, description = "No valid record (the per-record errors), or a body that is not records at all (one error)", body = IngestRefusalBody),
        (status = 413, description = "Body or batch over its limit", body = ErrorBody),
        (status = 503, description = "Write queue full or store failed", body = ErrorBody),
    ))]
async fn ingest(Tenant(state): Tenant, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body is over the limit of {} bytes (body_bytes_max)", state.limits.body_bytes_max),
            );
        }
        Err(e) => return error(e.status(), e.body_text()),
    };
    // Parsing and validating are CPU work: keep them off the async workers' polling path.
    let decoded = match tokio::task::block_in_place(|| finpulse_ingest::decode_body(&body)) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if decoded.len() > state.limits.batch_records_max {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{} records is over the limit of {} per request (batch_records_max)", decoded.len(), state.limits.batch_records_max),
        );
    }
    if decoded.is_empty() {
        return error(StatusCode::BAD_REQUEST, "the body holds no records");
    }
    let preparer = state.views.preparer();
    let limits = state.validation_limits();
    // Validating and preparing (encoding, keying, building columns) happen here, on the
    // request's thread, so the single writer only deduplicates, writes and fsyncs.
    let submission = match tokio::task::block_in_place(|| Submission::records(&preparer, decoded, &limits)) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("events were not stored: {e}")),
    };
    let rejected = submission.rejected.len();
    let errors: Vec<RecordErrorBody> = submission.rejected.iter().take(ERRORS_LISTED_MAX).map(record_error).collect();
    metrics::counter!("finpulse_ingest_records_total", "outcome" => "rejected").increment(rejected as u64);
    if submission.batch.is_empty() {
        return (StatusCode::BAD_REQUEST, Json(IngestResponse { accepted: 0, duplicates: 0, rejected, errors })).into_response();
    }
    let statuses = match state.writer.append(submission.batch).await {
        Ok(s) => s,
        Err(e @ WriterError::QueueFull(_)) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("events were not stored: {e}")),
    };
    let accepted = statuses.iter().filter(|s| **s == AppendStatus::Accepted).count();
    let duplicates = statuses.len() - accepted;
    metrics::counter!("finpulse_ingest_records_total", "outcome" => "accepted").increment(accepted as u64);
    metrics::counter!("finpulse_ingest_records_total", "outcome" => "duplicate").increment(duplicates as u64);
    metrics::histogram!("finpulse_ingest_request_seconds").record(started.elapsed().as_secs_f64());
    (StatusCode::OK, Json(IngestResponse { accepted, duplicates, rejected, errors })).into_response()
}

/// An SQL request.
#[derive(Deserialize, ToSchema)]
pub struct SqlRequest {
    /// One read-only SQL statement over `events` and the per-type views.
    pub query: String,
}

/// Run SQL over `events` (every event) and one view per event type. Answers JSON
/// `{"columns", "rows"}`, or an Arrow IPC stream when the Accept header asks for it.
#[utoipa::path(post, path = "/v1/sql", tag = "sql", request_body = SqlRequest,
    responses(
        (status = 200, description = "columns and rows (rows_truncated when cut at sql_rows_max)", body = Object),
        (status = 400, description = "Bad SQL", body = ErrorBody),
    ))]
async fn sql(
    Tenant(state): Tenant,
    axum::Extension(caller): axum::Extension<access::Caller>,
    headers: HeaderMap,
    body: Result<Json<SqlRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body must be {{\"query\": \"...\"}}: {}", e.body_text())),
    };
    let wants_arrow = access::wants_arrow(&headers);
    // An Arrow stream has no row limit: in clear, it is an export of personal data.
    if wants_arrow && caller.exposure == Exposure::Clear && !caller.principal.allows(finpulse_access::Permission::ExportPersonal) {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "role {} may read personal data in clear but not export it: an Arrow stream in clear needs the export_personal permission (ask for JSON, or leave out {} for masked data)",
                caller.principal.role,
                access::PURPOSE_HEADER
            ),
        );
    }
    let _key_turn = match caller.query_turn(&state) {
        Ok(t) => t,
        Err(r) => return r.response(),
    };
    let _turn = state.query_turn().await;
    let view = state.views.snapshot();
    // A JSON answer carries at most sql_rows_max rows: the query stops there.
    let rows_max = (!wants_arrow).then_some(state.limits.sql_rows_max);
    // Personal data is masked at the scan by its class unless the caller may and did state a purpose.
    let opts = QueryOptions {
        memory_bytes_max: state.limits.query_memory_bytes_max,
        rows_max,
        exposure: caller.exposure,
        ..QueryOptions::default()
    };
    let started = Instant::now();
    let run = finpulse_query::run_sql(&view, &req.query, opts);
    let ran = match caller.query_time_max() {
        Some(limit) => match tokio::time::timeout(limit, run).await {
            Ok(r) => r,
            Err(_) => {
                let r = finpulse_access::LimitRefusal::QueryTime { limit_secs: limit.as_secs() };
                metrics::counter!("finpulse_requests_limited_total", "limit" => r.name()).increment(1);
                return access::Refusal::TooMany { message: r.to_string(), retry_after_secs: r.retry_after_secs() }.response();
            }
        },
        None => run.await,
    };
    let result = match ran {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    metrics::histogram!("finpulse_sql_query_seconds").record(started.elapsed().as_secs_f64());
    if wants_arrow {
        let mut buf = Vec::new();
        let written = (|| -> Result<(), arrow::error::ArrowError> {
            let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut buf, &result.schema)?;
            for b in &result.batches {
                w.write(b)?;
            }
            w.finish()
        })();
        return match written {
            Ok(()) => ([(header::CONTENT_TYPE, ARROW_STREAM_MEDIA_TYPE)], buf).into_response(),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
    }
    let (rows, cut_here) = json::rows(&result.batches, state.limits.sql_rows_max);
    let truncated = result.rows_truncated || cut_here;
    Json(json!({"columns": json::columns(&result.schema), "rows": rows, "rows_truncated": truncated})).into_response()
}

/// The schema registry as JSON: every type with its fields, each with type and data class.
pub fn schema_json(registry: &Registry) -> serde_json::Value {
    let types: Vec<serde_json::Value> = registry
        .event_types()
        .map(|t| {
            let fields: Vec<serde_json::Value> = t
                .fields
                .iter()
                .map(|tf| {
                    let f = registry.field(tf.field);
                    // What a reader without the clear-text permission (or a purpose) gets.
                    let (exposure, mask) = match field_exposure(f.class, f.mask, Exposure::Masked) {
                        FieldExposure::Shown => ("shown", None),
                        // Masked text keeps its ends; other masked values are withheld (null).
                        FieldExposure::Masked(style) if f.ty == finpulse_core::FieldType::String => ("masked", Some(style)),
                        FieldExposure::Masked(_) => ("withheld", None),
                        FieldExposure::Withheld => ("withheld", None),
                    };
                    let mut field = json!({
                        "name": f.name, "type": f.ty.name(), "required": tf.required,
                        "category": format!("{:?}", f.class.category), "level": f.class.level, "exposure": exposure, "doc": f.doc,
                    });
                    if let Some(style) = mask {
                        field["mask"] = json!(style);
                    }
                    field
                })
                .collect();
            json!({"name": t.name, "doc": t.doc, "scope": t.scope, "builtin": t.builtin, "fields": fields})
        })
        .collect();
    json!({
        "common_fields": [
            {"name": "event_id", "type": "string", "required": false, "doc": "unique id; generated when absent; ingestion is idempotent on it"},
            {"name": "user_id", "type": "string", "required": true, "doc": "required for user-scoped types", "category": "C2", "level": 2, "exposure": "shown"},
            {"name": "ts", "type": "timestamp", "required": true, "doc": "RFC 3339 with zone, or epoch milliseconds; stored as UTC"},
            {"name": "type", "type": "string", "required": true, "doc": "event type name"},
        ],
        "types": types,
    })
}

/// The event catalogue and custom types, each field with its type and data class
/// (JR/T 0171-2020 category, JR/T 0197-2020 level).
#[utoipa::path(get, path = "/v1/schema", tag = "schema", responses((status = 200, description = "Every event type and field", body = Object)))]
async fn schema(Tenant(state): Tenant) -> Response {
    Json(schema_json(&state.views.registry())).into_response()
}

/// Register a custom event type. New fields need a data class unless their name implies one.
#[utoipa::path(post, path = "/v1/schema/types", tag = "schema", request_body = Object,
    responses((status = 201, description = "Registered", body = Object), (status = 400, body = ErrorBody)))]
async fn register_type(Tenant(state): Tenant, body: Result<Json<CustomTypeDef>, axum::extract::rejection::JsonRejection>) -> Response {
    let Json(def) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let name = def.name.clone();
    match state.writer.register(def).await {
        Ok(_) => (StatusCode::CREATED, Json(json!({"registered": name}))).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// Compact the live tail into Parquet now.
#[utoipa::path(post, path = "/v1/admin/compact", tag = "admin", responses((status = 200, body = Object), (status = 503, body = ErrorBody)))]
async fn compact(Tenant(state): Tenant) -> Response {
    match state.writer.compact().await {
        Ok(r) => Json(json!({"events": r.events, "files": r.files})).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// Liveness: the process answers and its writer runs; `warming` is true while the insight
/// caches are still being filled after a start.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Object), (status = 503, body = ErrorBody)))]
async fn healthz(Tenant(state): Tenant) -> Response {
    match state.writer.stats().await {
        Ok(s) => Json(json!({
            "status": "ok",
            "events_stored": s.events_stored,
            "log_bytes": s.log_bytes,
            "warming": state.warming.load(std::sync::atomic::Ordering::Relaxed),
        }))
        .into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// Prometheus metrics: ingestion counts and latencies, query latencies, log size.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", body = String)))]
async fn metrics_text(Tenant(state): Tenant) -> Response {
    if let Ok(s) = state.writer.stats().await {
        metrics::gauge!("finpulse_log_bytes").set(s.log_bytes as f64);
        metrics::gauge!("finpulse_log_records").set(s.log_records as f64);
        metrics::gauge!("finpulse_events_stored").set(s.events_stored as f64);
        metrics::gauge!("finpulse_tail_events").set(s.tail_events as f64);
        metrics::gauge!("finpulse_parquet_files").set(s.parquet_files as f64);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

#[derive(OpenApi)]
#[openapi(info(title = "finpulse", description = "The operations engine of a fintech product: ingestion, SQL and the event schema."))]
struct ApiDoc;

fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Only fails when another recorder is installed; then this handle renders nothing,
            // which /metrics shows plainly rather than failing the server.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// A running API: its address, and a way to stop it.
pub struct Server {
    /// The bound address.
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Every tenant's writer, engines and background work.
    tenants: Arc<tenants::Tenants>,
}

/// Answers 503 for a request still running after `request_timeout_secs`; its work is dropped.
async fn deadline(State(limit): State<Duration>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(answer) => answer,
        Err(_) => {
            metrics::counter!("finpulse_requests_timed_out_total").increment(1);
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the request took longer than {} s (request_timeout_secs) and was stopped; a write already queued is still stored, so sending it again is safe",
                    limit.as_secs()
                ),
            )
        }
    }
}

/// A path no route matches: the API's JSON 404 under `/v1`, the web console everywhere else
/// (its files, or `index.html` for a screen's deep link).
async fn console_or_not_found(req: axum::extract::Request) -> Response {
    let path = req.uri().path();
    if access::is_api_path(path) {
        return error(StatusCode::NOT_FOUND, format!("no route {} {path}", req.method()));
    }
    finpulse_console::Console::embedded().answer(req.method(), path, req.headers())
}

/// The router and the OpenAPI document it was generated with.
fn router(tenants: Arc<tenants::Tenants>) -> axum::Router {
    let (router, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(ingest))
        .routes(routes!(sql))
        .routes(routes!(schema))
        .routes(routes!(register_type))
        .routes(routes!(compact))
        .routes(routes!(healthz))
        .routes(routes!(metrics_text))
        .routes(routes!(models::list))
        .routes(routes!(models::promote))
        .routes(routes!(models::rollback))
        .routes(routes!(models::churn_risk))
        .routes(routes!(models::offers))
        .routes(routes!(models::compute_offers))
        .routes(routes!(insights::get_insight, insights::post_insight))
        .routes(routes!(insights::list_segments, insights::save_segment))
        .routes(routes!(insights::segment_members))
        .routes(routes!(insights::list_goals, insights::set_goal))
        .routes(routes!(insights::rollback_segment))
        .routes(routes!(insights::rollback_goal))
        .routes(routes!(experiments::list, experiments::define))
        .routes(routes!(experiments::start))
        .routes(routes!(experiments::stop))
        .routes(routes!(experiments::report))
        .routes(routes!(experiments::assign))
        .routes(routes!(experiments::power))
        .routes(routes!(risk::decide))
        .routes(routes!(decisions::recent))
        .routes(routes!(risk::user))
        .routes(routes!(risk::rules, risk::publish))
        .routes(routes!(risk::rollback_rules))
        .routes(routes!(risk::check_rules))
        .routes(routes!(risk::backtest_rules))
        .routes(routes!(risk::cases))
        .routes(routes!(risk::case))
        .routes(routes!(risk::change_case))
        .routes(routes!(access::sign_in))
        .routes(routes!(access::sign_out))
        .routes(routes!(access::whoami))
        .routes(routes!(access::list_keys, access::create_key))
        .routes(routes!(access::revoke_key))
        .routes(routes!(access::rotate_key))
        .routes(routes!(access::list_users, access::create_user))
        .routes(routes!(access::remove_user))
        .routes(routes!(access::reset_password))
        .routes(routes!(access::set_role))
        .routes(routes!(access::change_own_password))
        .routes(routes!(access::audit_log))
        .routes(routes!(access::list_approvals))
        .routes(routes!(access::approve))
        .routes(routes!(access::reject))
        .routes(routes!(subjects::export))
        .routes(routes!(subjects::erase))
        .routes(routes!(subjects::erasure_certificate))
        .routes(routes!(subjects::lineage))
        .split_for_parts();
    let mut api = api;
    access::document(&mut api);
    let api = Arc::new(api);
    let limits = tenants.shared.limits;
    let timeout = Duration::from_secs(limits.request_timeout_secs);
    router
        .route("/openapi.json", get(move || async move { Json(api.as_ref().clone()) }))
        .fallback(console_or_not_found)
        .layer(axum::middleware::from_fn_with_state(timeout, deadline))
        .layer(axum::middleware::from_fn_with_state(tenants, access::guard))
        .layer(axum::middleware::from_fn(access::json_errors))
        .layer(DefaultBodyLimit::max(limits.body_bytes_max))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

impl Server {
    /// Binds `listen` and serves the store until [`Server::stop`]: `store` holds the home
    /// tenant's events (`access.tenant`); any other tenant's are opened with `store_options`
    /// under `tenants/` in the same directory when one of its principals first calls. Every
    /// route but `/healthz` and `/metrics` needs a key or a console session; a server
    /// listening beyond loopback refuses to start until at least one key or user exists.
    pub async fn start(
        store: EventStore,
        store_options: finpulse_log::StoreOptions,
        listen: SocketAddr,
        limits: ApiLimits,
        access_options: access::AccessOptions,
    ) -> std::io::Result<Self> {
        limits.check().map_err(std::io::Error::other)?;
        if !finpulse_access::keys::valid_tenant(&access_options.tenant) {
            return Err(std::io::Error::other(format!("access.tenant '{}' is not a valid tenant name", access_options.tenant)));
        }
        let root = store.dir().to_path_buf();
        let access = Arc::new(finpulse_access::Access::open(&root).map_err(std::io::Error::other)?);
        let configured = access.configured().map_err(std::io::Error::other)?;
        if !configured && !access::loopback_only(&listen) {
            return Err(std::io::Error::other(format!(
                "refusing to listen on {listen} with no API key or user to authenticate with: create one first (finpulse keys create --role admin --data-dir {})",
                root.display()
            )));
        }
        if !configured {
            tracing::warn!(
                "no API key or user exists yet: every request but /healthz and /metrics is refused until one is created (finpulse keys create --role admin)"
            );
        }
        finpulse_query::set_query_memory_bytes_max(limits.query_memory_bytes_max);
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = tenants::Shared {
            root,
            store_options,
            limits,
            metrics: metrics_handle(),
            access: access.clone(),
            access_options,
            queries: Arc::new(tokio::sync::Semaphore::new(limits.queries_concurrent_max)),
            owner_note: Arc::new(std::sync::Mutex::new(Some(format!("finpulse serve, pid {}, http://{addr}", std::process::id())))),
        };
        let tenants = Arc::new(tenants::Tenants::start(shared, store).map_err(std::io::Error::other)?);
        // Tenants that already have principals are opened now, so a broken directory shows at
        // start rather than at someone's first request.
        for tenant in access.tenants().map_err(std::io::Error::other)? {
            tenants.get(&tenant).await.map_err(std::io::Error::other)?;
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = router(tenants.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
        });
        Ok(Self { addr, shutdown: Some(tx), task, tenants })
    }

    /// Stops accepting requests, finishes those in flight, and stops every tenant's writer.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let result = (&mut self.task).await.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.tenants.stop().await;
        result
    }

    /// How many decisions a retry is answered with from memory, over every tenant opened (the
    /// latest of each, up to `RECENT_DECISIONS_MAX`; read back from the store in the background
    /// after a start).
    pub fn decisions_remembered(&self) -> usize {
        self.tenants.opened().iter().map(|t| t.recent.len()).sum()
    }

    /// The tenants whose data this server has opened so far.
    pub fn tenants_opened(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tenants.opened().iter().map(|t| t.tenant.to_string()).collect();
        names.sort();
        names
    }

    /// Waits until the server stops by itself (it does not, unless it fails).
    pub async fn wait(mut self) -> std::io::Result<()> {
        (&mut self.task).await.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}
