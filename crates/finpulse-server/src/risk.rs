//! Live state and decisions over HTTP: POST /v1/decisions, GET /v1/users/{id},
//! GET|POST /v1/rules.
//!
//! The writer thread applies every stored event to the live state in log order, so the state is
//! a function of the log. A decision reads the state before its transaction; the transaction and
//! its `risk_decision` event are then stored durably (and applied) before the answer. Decisions
//! in flight in the same group commit do not see each other (a window of one fsync).

use crate::{AppState, ErrorBody, error};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use finpulse_core::{Event, Registry, Value};
use finpulse_log::AppendStatus;
use finpulse_risk::cases::{CaseAction, CaseBook, CaseError};
use finpulse_risk::engine::{Engine, Policy};
use finpulse_risk::ruleset::{Ruleset, RulesetStore};
use finpulse_state::{LiveState, Vocabulary};
use serde_json::json;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// How often the engine looks for a ruleset or model published by another process.
pub const ENGINE_RELOAD_CHECK: Duration = Duration::from_secs(1);
/// Events applied to the live state per hold of its lock.
pub const LIVE_APPLY_CHUNK: usize = 1024;

/// The live state, the engine and where they come from.
pub struct Live {
    state: Mutex<LiveState>,
    /// Alerts and cases (not in the state checkpoint: rebuilt from the log's decisions and
    /// case updates, which a filtered replay reads without decoding other events).
    cases: Mutex<CaseBook>,
    /// Case changes are checked and written one at a time, so two resolutions cannot race.
    case_writes: tokio::sync::Mutex<()>,
    vocab: Vocabulary,
    engine: RwLock<Arc<Engine>>,
    /// The ruleset index's and the model registry's modification times last loaded.
    stamps: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
    data_dir: PathBuf,
    policy: Policy,
    /// Where the checkpoint on disk stands (the next log record it has not applied).
    checkpoint_seq: std::sync::atomic::AtomicU64,
    /// Checkpoints are written one at a time (the background one and the one at stop).
    checkpoint_writes: Mutex<()>,
}

fn model_stamp(data_dir: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(data_dir.join(finpulse_models::registry::REGISTRY_DIR).join("index.json")).and_then(|m| m.modified()).ok()
}

fn load_engine(data_dir: &std::path::Path, policy: Policy) -> Result<Engine, String> {
    let ruleset = RulesetStore::in_data_dir(data_dir).active().map_err(|e| e.to_string())?.unwrap_or_else(Ruleset::empty);
    let model = finpulse_risk::fraud::registered_model(data_dir, None).map_err(|e| e.to_string())?.map(Arc::new);
    Ok(Engine { ruleset: Arc::new(ruleset), model, policy })
}

impl Live {
    /// Rebuilds the state of a data directory (checkpoint plus log) and loads the active
    /// ruleset and fraud model.
    pub fn open(data_dir: &std::path::Path, policy: Policy) -> Result<Self, String> {
        let rebuilt =
            finpulse_state::rebuild_through(data_dir, finpulse_state::LIVE_STATE_PARTITIONS, u64::MAX).map_err(|e| e.to_string())?;
        let (state, vocab) = (rebuilt.state, rebuilt.vocab);
        let cases = CaseBook::rebuild(data_dir).map_err(|e| e.to_string())?;
        let engine = load_engine(data_dir, policy)?;
        let stamps = (RulesetStore::in_data_dir(data_dir).stamp(), model_stamp(data_dir));
        Ok(Self {
            state: Mutex::new(state),
            cases: Mutex::new(cases),
            case_writes: tokio::sync::Mutex::new(()),
            vocab,
            engine: RwLock::new(Arc::new(engine)),
            stamps: Mutex::new(stamps),
            data_dir: data_dir.to_path_buf(),
            policy,
            checkpoint_seq: rebuilt.checkpoint_seq.into(),
            checkpoint_writes: Mutex::new(()),
        })
    }

    /// Applies events the writer stored (log order), skipping duplicates. The lock is taken
    /// per [`LIVE_APPLY_CHUNK`] events, so a large ingest batch does not hold decisions up, and
    /// the case book is brought up to date after the state's lock is let go: decisions never
    /// wait for it (its lists grow by copying, at times a pause of milliseconds).
    pub fn apply(&self, events: &[Event], statuses: &[AppendStatus]) {
        for (events, statuses) in events.chunks(LIVE_APPLY_CHUNK).zip(statuses.chunks(LIVE_APPLY_CHUNK)) {
            let stored = || events.iter().zip(statuses).filter(|(_, s)| **s == AppendStatus::Accepted).map(|(e, _)| e);
            {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                stored().for_each(|e| state.apply(&self.vocab, e));
            }
            let mut cases = self.cases.lock().unwrap_or_else(|p| p.into_inner());
            stored().for_each(|e| cases.apply(e));
        }
    }

    /// Saves a checkpoint of the state as it is (at shutdown, when nothing applies events any
    /// more: it holds the state's lock while it writes).
    pub fn checkpoint(&self) -> Result<(), String> {
        let _one_writer = self.checkpoint_writes.lock().unwrap_or_else(|p| p.into_inner());
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        finpulse_state::save_checkpoint(&finpulse_state::checkpoint_path(&self.data_dir), &state, state.applied)
            .map_err(|e| e.to_string())?;
        self.checkpoint_seq.store(state.applied, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Moves the checkpoint up to what the live state has applied, once that is at least
    /// `events_min` records past it, without holding the live state: the state is rebuilt from
    /// the checkpoint and the log on the side (for a while, a second copy in memory). Returns
    /// where the new checkpoint stands, if one was written.
    pub fn advance_checkpoint(&self, events_min: u64) -> Result<Option<u64>, String> {
        use std::sync::atomic::Ordering;
        // Events are applied after their fsync: everything applied is durable in the log.
        let applied = self.state.lock().unwrap_or_else(|p| p.into_inner()).applied;
        if applied < self.checkpoint_seq.load(Ordering::SeqCst).saturating_add(events_min.max(1)) {
            return Ok(None);
        }
        let _one_writer = self.checkpoint_writes.lock().unwrap_or_else(|p| p.into_inner());
        // Another writer (the stop) may have moved it meanwhile.
        if applied <= self.checkpoint_seq.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let written = finpulse_state::advance_checkpoint(&self.data_dir, finpulse_state::LIVE_STATE_PARTITIONS, applied)
            .map_err(|e| e.to_string())?;
        if let Some(seq) = written {
            self.checkpoint_seq.store(seq, Ordering::SeqCst);
        }
        Ok(written)
    }

    /// Every `every`, moves the checkpoint up once `events_min` events have been applied since
    /// it (see [`Live::advance_checkpoint`]), until the task is aborted.
    pub fn watch_checkpoints(self: Arc<Self>, every: Duration, events_min: u64) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let live = self.clone();
                let started = Instant::now();
                let work = move || {
                    // The rebuild takes a core for a while (about 20 s at 100k users): it yields
                    // to decisions and ingestion.
                    lower_this_threads_priority();
                    live.advance_checkpoint(events_min)
                };
                // Its own thread, so the lowered priority leaves with it.
                let run = move || -> Result<Option<u64>, String> {
                    let thread = std::thread::Builder::new().name("checkpoint".into()).spawn(work).map_err(|e| e.to_string())?;
                    thread.join().map_err(|_| "the checkpoint thread panicked".to_string())?
                };
                let outcome = tokio::task::spawn_blocking(run).await.map_err(|e| e.to_string()).and_then(|r| r);
                match outcome {
                    Ok(Some(seq)) => {
                        tracing::info!(next_seq = seq, secs = started.elapsed().as_secs_f64(), "live-state checkpoint moved up")
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "moving the live-state checkpoint up failed; the last one stays"),
                }
            }
        })
    }

    /// The engine in force.
    fn engine(&self) -> Arc<Engine> {
        self.engine.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Looks for a ruleset or model published by another process every
    /// [`ENGINE_RELOAD_CHECK`], off the decision path, until the task is aborted.
    pub fn watch_publications(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(ENGINE_RELOAD_CHECK).await;
                let live = self.clone();
                let _ = tokio::task::spawn_blocking(move || live.reload_if_published()).await;
            }
        })
    }

    /// Reloads the engine when the ruleset index or the model registry changed.
    pub fn reload_if_published(&self) {
        let mut stamps = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        let now = (RulesetStore::in_data_dir(&self.data_dir).stamp(), model_stamp(&self.data_dir));
        if now == *stamps {
            return;
        }
        match load_engine(&self.data_dir, self.policy) {
            Ok(e) => {
                *self.engine.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(e);
                *stamps = now;
            }
            Err(e) => tracing::error!(error = %e, "reloading rules or model failed; keeping the active ones"),
        }
    }

    fn set_engine(&self, e: Engine) {
        *self.engine.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(e);
        let mut stamps = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        stamps.0 = RulesetStore::in_data_dir(&self.data_dir).stamp();
    }
}

/// How much lower than the server's other threads the background checkpoint runs (`nice`).
pub const CHECKPOINT_NICENESS: i32 = 10;

/// Lowers the calling thread's scheduling priority by [`CHECKPOINT_NICENESS`] (Linux sets it
/// per thread); elsewhere, or when refused, it runs at the normal priority.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take and return plain integers; they touch no memory of ours.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, CHECKPOINT_NICENESS);
    }
}

fn decision_event(registry: &Registry, tx: &Event, d: &finpulse_risk::engine::Decision) -> Option<Event> {
    let t = registry.type_id("risk_decision")?;
    let f = |n: &str| registry.field_id(n);
    let mut fields = vec![
        (f("target_event_id")?, Value::Str(tx.event_id.clone())),
        (f("decision")?, Value::Str(d.action.name().into())),
        (f("risk_score")?, Value::Float(d.score)),
        (f("ruleset_version")?, Value::Int(i64::from(d.ruleset_version))),
        (
            f("reasons")?,
            Value::Str(serde_json::to_string(&json!({ "reasons": d.reasons, "shadow_hits": d.shadow_hits, "fallback": d.fallback })).ok()?),
        ),
        (f("decision_us")?, Value::Float(d.elapsed_us)),
    ];
    if let Some(v) = d.model_version {
        fields.push((f("model_version")?, Value::Int(i64::from(v))));
    }
    fields.sort_by_key(|(id, _)| *id);
    Some(Event { event_id: format!("{}#decision", tx.event_id), user_id: tx.user_id.clone(), ts_us: tx.ts_us, type_id: t, fields })
}

/// Decide a transaction: one record in the ingestion shape (type payment, transfer or
/// withdrawal). Answers the decision, its score and reasons, the ruleset and model versions and
/// the time taken; the transaction and the decision are durable before the answer.
#[utoipa::path(post, path = "/v1/decisions", tag = "risk",
    request_body(content = String, description = "One JSON record, as for POST /v1/events", content_type = "application/json"),
    responses(
        (status = 200, description = "The decision, recorded; for an event_id decided before, the decision recorded then", body = Object),
        (status = 400, description = "Not one valid transaction record", body = ErrorBody),
        (status = 503, description = "Not stored", body = ErrorBody),
    ))]
pub(crate) async fn decide(State(app): State<AppState>, body: Bytes) -> Response {
    let started = Instant::now();
    let live = app.live.clone();
    let decoded = match finpulse_ingest::decode_body(&body) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if decoded.len() != 1 {
        return error(StatusCode::BAD_REQUEST, format!("send exactly one transaction record, not {}", decoded.len()));
    }
    let preparer = app.views.preparer();
    let mut validated = finpulse_ingest::validate(preparer.registry(), decoded, &app.validation_limits());
    if let Some(r) = validated.rejected.first() {
        let at = r.field.as_ref().map_or(String::new(), |f| format!("field {f:?}: "));
        return error(StatusCode::BAD_REQUEST, format!("{at}{}", r.message));
    }
    let Some(tx) = validated.events.pop() else { return error(StatusCode::BAD_REQUEST, "no record") };
    let engine = live.engine();
    let decision = {
        let deadline = started + Duration::from_micros(engine.policy.budget_us);
        let mut guard = None;
        while guard.is_none() {
            match live.state.try_lock() {
                Ok(g) => guard = Some(g),
                Err(std::sync::TryLockError::Poisoned(p)) => guard = Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => std::thread::yield_now(),
                Err(std::sync::TryLockError::WouldBlock) => break,
            }
        }
        match guard {
            Some(state) => match engine.decide(&state, &live.vocab, &tx, started) {
                Ok(d) => d,
                Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
            },
            None => engine.fallback(&tx, format!("live state busy past the {} µs budget", engine.policy.budget_us), started),
        }
    };
    let Some(record) = decision_event(preparer.registry(), &tx, &decision) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "the registry has no risk_decision type");
    };
    let events = Arc::new(vec![tx, record]);
    // A transaction stored before keeps the decision it got then: this one is not stored.
    let prepared = preparer.prepare_shared(events.clone()).following_the_first();
    let statuses = match app.writer.append(prepared, events.clone()).await {
        Ok(s) => s,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("the decision was not recorded: {e}")),
    };
    if statuses[0] != AppendStatus::Accepted {
        // A retry: the answer is the decision recorded the first time, so a client that timed
        // out and sent the transaction again cannot get a different verdict for it.
        return match recorded_decision(&app, &events[0]).await {
            Ok(Some(mut first)) => {
                first["recorded"] = json!("duplicate: this event_id was stored before; this is the decision recorded then");
                (StatusCode::OK, Json(first)).into_response()
            }
            Ok(None) => {
                let mut body = serde_json::to_value(&decision).unwrap_or_default();
                body["recorded"] = json!("duplicate: this event_id was stored before, without a decision; this decision was not recorded");
                (StatusCode::OK, Json(body)).into_response()
            }
            Err(e) => {
                error(StatusCode::SERVICE_UNAVAILABLE, format!("this event_id was decided before; reading that decision failed: {e}"))
            }
        };
    }
    metrics::histogram!("finpulse_decision_seconds").record(decision.elapsed_us / 1e6);
    metrics::counter!("finpulse_decisions_total", "action" => decision.action.name()).increment(1);
    let mut body = serde_json::to_value(&decision).unwrap_or_default();
    body["recorded"] = json!("new");
    (StatusCode::OK, Json(body)).into_response()
}

/// The decision stored for transaction `tx` (its `risk_decision` event, found by the user and
/// the event id), in the shape of a decision answer, or `None` when it was stored without one
/// (ingested, not decided). The ruleset's name and the model's own score are not stored, so
/// they are absent.
async fn recorded_decision(app: &AppState, tx: &Event) -> Result<Option<serde_json::Value>, String> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Float64Type};
    let quoted = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let user = tx.user_id.as_deref().map_or("user_id IS NULL".to_string(), |u| format!("user_id = {}", quoted(u)));
    let sql = format!(
        "SELECT decision, risk_score, ruleset_version, model_version, reasons, decision_us FROM risk_decision \
         WHERE {user} AND event_id = {}",
        quoted(&format!("{}#decision", tx.event_id))
    );
    let view = app.views.snapshot();
    let opts = finpulse_query::QueryOptions { memory_bytes_max: app.limits.query_memory_bytes_max, ..Default::default() };
    let result = finpulse_query::run_sql(&view, &sql, opts).await.map_err(|e| e.to_string())?;
    let Some(batch) = result.batches.iter().find(|b| b.num_rows() > 0) else { return Ok(None) };
    let text = |i: usize| finpulse_query::text_values(batch.column(i)).map(|v| v.into_iter().next().flatten()).map_err(|e| e.to_string());
    let number = |i: usize| -> Result<Option<f64>, String> {
        let column = arrow::compute::cast(batch.column(i), &DataType::Float64).map_err(|e| e.to_string())?;
        let column = column.as_primitive::<Float64Type>();
        Ok((!column.is_null(0)).then(|| column.value(0)))
    };
    let why: serde_json::Value = match text(4)? {
        Some(r) => serde_json::from_str(&r).map_err(|e| format!("the stored reasons are not JSON: {e}"))?,
        None => json!({}),
    };
    Ok(Some(json!({
        "event_id": tx.event_id,
        "user_id": tx.user_id,
        "action": text(0)?,
        "score": number(1)?,
        "reasons": why.get("reasons").cloned().unwrap_or_else(|| json!([])),
        "shadow_hits": why.get("shadow_hits").cloned().unwrap_or_else(|| json!([])),
        "fallback": why.get("fallback").cloned().unwrap_or(serde_json::Value::Null),
        "ruleset_version": number(2)?.map(|v| v as u32),
        "model_version": number(3)?.map(|v| v as u32),
        "elapsed_us": number(5)?,
    })))
}

/// A user's live profile: identity, channel, lifecycle stage, RFM, balances and AUM, products,
/// loans and overdues, the latest credit report, tasks, tags and recent behaviour, from memory.
#[utoipa::path(get, path = "/v1/users/{id}", tag = "risk",
    params(("id" = String, Path, description = "user id")),
    responses((status = 200, description = "The profile", body = Object), (status = 404, description = "Unknown user", body = ErrorBody)))]
pub(crate) async fn user(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    let state = app.live.state.lock().unwrap_or_else(|p| p.into_inner());
    match finpulse_state::view::user_view(&state, &id) {
        Some(v) => Json(v).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no user {id:?}")),
    }
}

/// The active ruleset (name, version, rules, lists) and the publication history.
#[utoipa::path(get, path = "/v1/rules", tag = "risk", responses((status = 200, description = "Active ruleset and history", body = Object)))]
pub(crate) async fn rules(State(app): State<AppState>) -> Response {
    let engine = app.live.engine();
    let r = &engine.ruleset;
    let history = RulesetStore::in_data_dir(&app.data_dir).history().unwrap_or_default();
    let rules: Vec<_> = r
        .rules
        .iter()
        .map(|x| json!({ "name": x.name, "score": x.score, "action": x.action, "shadow": x.shadow, "features": x.when.features(), "description": x.description }))
        .collect();
    Json(json!({
        "name": r.name, "version": r.version, "review_at": r.review_at, "block_at": r.block_at,
        "rules": rules, "lists": r.lists, "model_version": engine.model.as_ref().and_then(|m| m.version), "history": history,
    }))
    .into_response()
}

/// Publish a ruleset (the TOML text as the body). It is compiled first: a syntax or type error
/// answers 400 with its line and column, and the active ruleset stays. Takes effect at once.
#[utoipa::path(post, path = "/v1/rules", tag = "risk",
    request_body(content = String, description = "A ruleset file (TOML)", content_type = "text/plain"),
    responses((status = 200, description = "Published and active", body = Object), (status = 400, description = "Refused; the active one stays", body = ErrorBody)))]
pub(crate) async fn publish(State(app): State<AppState>, body: Bytes) -> Response {
    let Ok(src) = std::str::from_utf8(&body) else { return error(StatusCode::BAD_REQUEST, "the ruleset is not UTF-8 text") };
    let store = RulesetStore::in_data_dir(&app.data_dir);
    match store.publish(src, "request body", crate::models::API_ACTOR) {
        Ok(r) => {
            let version = r.version;
            let current = app.live.engine();
            app.live.set_engine(Engine { ruleset: Arc::new(r), model: current.model.clone(), policy: current.policy });
            Json(json!({ "version": version, "active": true })).into_response()
        }
        Err(e) => {
            let active = app.live.engine().ruleset.version;
            error(StatusCode::BAD_REQUEST, format!("{e} (not published; version {active} stays active)"))
        }
    }
}

/// Case list options.
#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct CasesQuery {
    /// open or resolved (default: both).
    pub status: Option<String>,
    /// Only cases assigned to this analyst.
    pub assignee: Option<String>,
    /// Cases to return, newest first (default 100, at most 10,000).
    pub limit: Option<usize>,
}

/// Risk cases, newest first: one per user with alerts (review or block decisions) until it is
/// resolved, with its alerts, assignee, history and verdict.
#[utoipa::path(get, path = "/v1/cases", tag = "risk", params(CasesQuery),
    responses((status = 200, description = "Cases", body = Object), (status = 400, description = "Bad status or limit", body = ErrorBody)))]
pub(crate) async fn cases(State(app): State<AppState>, axum::extract::Query(q): axum::extract::Query<CasesQuery>) -> Response {
    if let Some(s) = q.status.as_deref().filter(|s| !["open", "resolved"].contains(s)) {
        return error(StatusCode::BAD_REQUEST, format!("status {s:?}: use open or resolved"));
    }
    let limit = match crate::models::list_limit(q.limit) {
        Ok(l) => l,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let book = app.live.cases.lock().unwrap_or_else(|p| p.into_inner());
    let cases: Vec<_> = book.list(q.status.as_deref(), q.assignee.as_deref()).take(limit).collect();
    Json(json!({ "cases": cases })).into_response()
}

/// One case.
#[utoipa::path(get, path = "/v1/cases/{id}", tag = "risk", params(("id" = String, Path, description = "case id")),
    responses((status = 200, description = "The case", body = Object), (status = 404, description = "No such case", body = ErrorBody)))]
pub(crate) async fn case(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    let book = app.live.cases.lock().unwrap_or_else(|p| p.into_inner());
    match book.case(&id) {
        Some(c) => Json(c).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no case {id:?}")),
    }
}

/// A change to a case: who makes it, and what.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseRequest {
    /// The analyst making the change.
    pub by: String,
    /// For assign: the analyst to give the case to.
    pub assignee: Option<String>,
    /// For comment: the comment.
    pub text: Option<String>,
    /// For resolve: fraud or genuine.
    pub label: Option<String>,
    /// For resolve: why.
    pub note: Option<String>,
}

/// Assign, comment on or resolve a case. Resolving with a label also stores a `fraud_label`
/// for every transaction of the case. The change is durable before the answer.
#[utoipa::path(post, path = "/v1/cases/{id}/{action}", tag = "risk", request_body = CaseRequest,
    params(("id" = String, Path, description = "case id"), ("action" = String, Path, description = "assign, comment or resolve")),
    responses(
        (status = 200, description = "The case after the change", body = Object),
        (status = 400, description = "Bad action or field", body = ErrorBody),
        (status = 404, description = "No such case", body = ErrorBody),
        (status = 409, description = "The case is resolved", body = ErrorBody),
    ))]
pub(crate) async fn change_case(
    State(app): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    body: Result<Json<CaseRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let missing = |field: &str| error(StatusCode::BAD_REQUEST, format!("{action} needs {field:?}"));
    let action = match action.as_str() {
        "assign" => match req.assignee {
            Some(assignee) => CaseAction::Assign { assignee },
            None => return missing("assignee"),
        },
        "comment" => match req.text {
            Some(text) => CaseAction::Comment { text },
            None => return missing("text"),
        },
        "resolve" => match req.label.as_deref() {
            Some("fraud") => CaseAction::Resolve { fraud: true, note: req.note },
            Some("genuine") => CaseAction::Resolve { fraud: false, note: req.note },
            Some(other) => return error(StatusCode::BAD_REQUEST, format!("label {other:?}: use fraud or genuine")),
            None => return missing("label"),
        },
        other => return error(StatusCode::BAD_REQUEST, format!("unknown case action {other:?}: use assign, comment or resolve")),
    };
    let _one_at_a_time = app.live.case_writes.lock().await;
    let preparer = app.views.preparer();
    let planned = {
        let book = app.live.cases.lock().unwrap_or_else(|p| p.into_inner());
        book.plan(&id, &action, &req.by, finpulse_core::time::now_us())
    };
    let events = match planned {
        Ok(e) => e,
        Err(e @ CaseError::NotFound(_)) => return error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ CaseError::Resolved(_)) => return error(StatusCode::CONFLICT, e.to_string()),
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let events = Arc::new(events);
    let prepared = preparer.prepare_shared(events.clone());
    if let Err(e) = app.writer.append(prepared, events).await {
        return error(StatusCode::SERVICE_UNAVAILABLE, format!("the change was not stored: {e}"));
    }
    let book = app.live.cases.lock().unwrap_or_else(|p| p.into_inner());
    match book.case(&id) {
        Some(c) => Json(c).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no case {id:?}")),
    }
}
