//! Live state and decisions over HTTP: POST /v1/decisions, GET /v1/users/{id},
//! GET|POST /v1/rules, and risk cases. The state itself is `finpulse_risk::live::Live`, a
//! consumer of the write path; this module only speaks HTTP.

use crate::access::Caller;
use crate::wire::{CaseBody, CasesBody, DecisionBody, ReasonBody};
use crate::{AppState, ErrorBody, Tenant, error};
use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use finpulse_access::approvals::{ApprovalKind, Change};
use finpulse_core::Event;
use finpulse_log::AppendStatus;
use finpulse_risk::cases::{CaseAction, CaseError, CaseStatus};
use finpulse_risk::live::decision_record;
use finpulse_risk::ruleset::{Ruleset, RulesetError, RulesetStore};
use finpulse_write::Batch;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use utoipa::ToSchema;

/// Most recent decisions answered from memory when their transaction is sent again; older
/// retries read the recorded decision back from the store (a query of some milliseconds).
pub const RECENT_DECISIONS_MAX: usize = 100_000;

/// What a retry is told: the decision recorded the first time.
const RECORDED_THEN: &str = "duplicate: this event_id was stored before; this is the decision recorded then";

/// The latest decisions by event id, as their record reads back, bounded at
/// [`RECENT_DECISIONS_MAX`] (the oldest goes first). Filled again in the background after a
/// start ([`recall_recent_decisions`]); until then retries of earlier decisions read the store.
#[derive(Default)]
pub(crate) struct RecentDecisions {
    inner: std::sync::Mutex<(std::collections::HashMap<String, DecisionBody>, std::collections::VecDeque<String>)>,
}

impl RecentDecisions {
    /// Remembers a recorded decision in the shape a retry is answered with.
    fn remember(&self, d: &finpulse_risk::engine::Decision) {
        let mut first = DecisionBody::new(d, RECORDED_THEN);
        // What the record does not keep, a retry does not get, wherever it is answered from.
        first.ruleset = None;
        first.model_score = None;
        let mut guard = self.inner.lock().expect("no panic while holding the recent decisions");
        let (by_id, order) = &mut *guard;
        if by_id.insert(d.event_id.clone(), first).is_none() {
            order.push_back(d.event_id.clone());
            if order.len() > RECENT_DECISIONS_MAX
                && let Some(oldest) = order.pop_front()
            {
                by_id.remove(&oldest);
            }
        }
    }

    /// Adds decisions read back from the store, newest first, behind every decision already
    /// remembered (they are older), up to the bound; returns how many were added.
    fn recall(&self, newest_first: Vec<DecisionBody>) -> usize {
        let mut guard = self.inner.lock().expect("no panic while holding the recent decisions");
        let (by_id, order) = &mut *guard;
        let mut added = 0;
        for d in newest_first {
            if order.len() >= RECENT_DECISIONS_MAX {
                break;
            }
            if !by_id.contains_key(&d.event_id) {
                order.push_front(d.event_id.clone());
                by_id.insert(d.event_id.clone(), d);
                added += 1;
            }
        }
        added
    }

    /// How many decisions are remembered.
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().expect("no panic while holding the recent decisions").1.len()
    }

    fn get(&self, event_id: &str) -> Option<DecisionBody> {
        self.inner.lock().expect("no panic while holding the recent decisions").0.get(event_id).cloned()
    }
}

/// Decide a transaction: one record in the ingestion shape (type payment, transfer or
/// withdrawal). Answers the decision, its score and reasons, the ruleset and model versions and
/// the time taken; the transaction and the decision are durable before the answer.
#[utoipa::path(post, path = "/v1/decisions", tag = "risk",
    request_body(content = String, description = "One JSON record, as for POST /v1/events", content_type = "application/json"),
    responses(
        (status = 200, description = "The decision, recorded; for an event_id decided before, the decision recorded then", body = DecisionBody),
        (status = 400, description = "Not one valid transaction record", body = ErrorBody),
        (status = 503, description = "Not stored", body = ErrorBody),
    ))]
pub(crate) async fn decide(Tenant(app): Tenant, body: Bytes) -> Response {
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
    let decision = match live.decide(&tx, started) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let Some(record) = decision_record(preparer.registry(), &tx, &decision) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "the registry has no risk_decision type");
    };
    let events = Arc::new(vec![tx, record]);
    // A transaction stored before keeps the decision it got then: this one is not stored.
    let batch = match Batch::shared(&preparer, events.clone()) {
        Ok(b) => b.following_the_first(),
        Err(e @ finpulse_log::StoreError::Seal(finpulse_core::seal::SealError::Erased { .. })) => {
            return error(StatusCode::CONFLICT, e.to_string());
        }
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("the decision was not recorded: {e}")),
    };
    let statuses = match app.writer.append(batch).await {
        Ok(s) => s,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("the decision was not recorded: {e}")),
    };
    if statuses[0] != AppendStatus::Accepted {
        // A retry: the answer is the decision recorded the first time, so a client that timed
        // out and sent the transaction again cannot get a different verdict for it; from memory
        // when it is recent, from the store otherwise.
        if let Some(first) = app.recent.get(&events[0].event_id) {
            metrics::counter!("finpulse_decision_retries_total", "answered_from" => "memory").increment(1);
            return (StatusCode::OK, Json(first)).into_response();
        }
        metrics::counter!("finpulse_decision_retries_total", "answered_from" => "store").increment(1);
        return match recorded_decision(&app, &events[0]).await {
            Ok(Some(first)) => (StatusCode::OK, Json(first)).into_response(),
            Ok(None) => {
                let body = DecisionBody::new(
                    &decision,
                    "duplicate: this event_id was stored before, without a decision; this decision was not recorded",
                );
                (StatusCode::OK, Json(body)).into_response()
            }
            Err(e) => {
                error(StatusCode::SERVICE_UNAVAILABLE, format!("this event_id was decided before; reading that decision failed: {e}"))
            }
        };
    }
    app.recent.remember(&decision);
    metrics::histogram!("finpulse_decision_seconds").record(decision.elapsed_us / 1e6);
    metrics::counter!("finpulse_decisions_total", "action" => decision.action.name()).increment(1);
    (StatusCode::OK, Json(DecisionBody::new(&decision, "new"))).into_response()
}

/// The columns a stored decision is read back from, in [`stored_decisions`]' order.
const STORED_DECISION_COLUMNS: &str = "event_id, user_id, decision, risk_score, ruleset_version, model_version, reasons, decision_us";

/// The suffix a transaction's id takes in the id of its `risk_decision` event.
const DECISION_ID_SUFFIX: &str = "#decision";

/// The decision stored for transaction `tx` (its `risk_decision` event, found by the user and
/// the event id), in the shape of a decision answer, or `None` when it was stored without one
/// (ingested, not decided). The ruleset's name and the model's own score are not stored, so
/// they are null.
async fn recorded_decision(app: &AppState, tx: &Event) -> Result<Option<DecisionBody>, String> {
    let quoted = finpulse_query::sql::text_literal;
    let user = tx.user_id.as_deref().map_or("user_id IS NULL".to_string(), |u| format!("user_id = {}", quoted(u)));
    let sql = format!(
        "SELECT {STORED_DECISION_COLUMNS} FROM risk_decision WHERE {user} AND event_id = {}",
        quoted(&format!("{}{DECISION_ID_SUFFIX}", tx.event_id))
    );
    Ok(stored_decisions(app, &sql).await?.into_iter().next())
}

/// Runs `sql` (selecting [`STORED_DECISION_COLUMNS`] from `risk_decision`) and reads each row
/// back as the answer a retry of its transaction gets.
async fn stored_decisions(app: &AppState, sql: &str) -> Result<Vec<DecisionBody>, String> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Float64Type};
    let _turn = app.query_turn().await;
    let view = app.views.snapshot();
    let opts = finpulse_query::QueryOptions { memory_bytes_max: app.limits.query_memory_bytes_max, ..Default::default() };
    let result = finpulse_query::run_sql(&view, sql, opts).await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for batch in &result.batches {
        let text = |i: usize| finpulse_query::text_values(batch.column(i)).map_err(|e| e.to_string());
        let (ids, users, actions, reasons) = (text(0)?, text(1)?, text(2)?, text(6)?);
        let numbers: Vec<arrow::array::ArrayRef> = [3, 4, 5, 7]
            .iter()
            .map(|&i| arrow::compute::cast(batch.column(i), &DataType::Float64).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        let number = |c: usize, row: usize| {
            let column = numbers[c].as_primitive::<Float64Type>();
            (!column.is_null(row)).then(|| column.value(row))
        };
        let rows = ids.into_iter().zip(users).zip(actions.into_iter().zip(reasons));
        for (row, ((id, user_id), (action, stored_why))) in rows.enumerate() {
            let why = match stored_why {
                Some(r) => finpulse_risk::live::StoredWhy::parse(&r).map_err(|e| format!("the stored reasons do not read: {e}"))?,
                None => finpulse_risk::live::StoredWhy::default(),
            };
            let id = id.unwrap_or_default();
            out.push(DecisionBody {
                event_id: id.strip_suffix(DECISION_ID_SUFFIX).unwrap_or(&id).to_string(),
                user_id,
                action: action.unwrap_or_default(),
                score: number(0, row),
                reasons: why.reasons.into_iter().map(ReasonBody::from).collect(),
                shadow_hits: why.shadow_hits,
                ruleset: None,
                ruleset_version: number(1, row).map(|v| v as u32),
                model_version: number(2, row).map(|v| v as u32),
                model_score: None,
                elapsed_us: number(3, row),
                fallback: why.fallback,
                recorded: RECORDED_THEN.into(),
            });
        }
    }
    Ok(out)
}

/// Fills the memory of recent decisions, after a start, with the latest
/// [`RECENT_DECISIONS_MAX`] decisions the store holds, so a retry of one of them is answered
/// from memory as it would have been before the restart. Runs in the background; decisions
/// made meanwhile are newer and stay.
pub(crate) async fn recall_recent_decisions(app: AppState) {
    let sql = format!("SELECT {STORED_DECISION_COLUMNS} FROM risk_decision ORDER BY ts DESC, event_id DESC LIMIT {RECENT_DECISIONS_MAX}");
    let started = Instant::now();
    match stored_decisions(&app, &sql).await {
        Ok(newest_first) => {
            let recalled = app.recent.recall(newest_first);
            tracing::info!(recalled, secs = started.elapsed().as_secs_f64(), "recent decisions read back for retries");
        }
        Err(e) => tracing::warn!(error = %e, "reading recent decisions back failed; retries of earlier ones read the store"),
    }
}

/// A user's live profile: identity, channel, lifecycle stage, RFM, balances and AUM, products,
/// loans and overdues, the latest credit report, tasks, tags and recent behaviour, from memory.
/// Fields follow their data class: credit data (C2, level 3) is null unless the caller may read
/// it in clear and states a purpose (`X-Purpose`), and such a read is audited.
#[utoipa::path(get, path = "/v1/users/{id}", tag = "risk",
    params(("id" = String, Path, description = "user id"), ("X-Purpose" = Option<String>, Header, description = "why the caller reads C2 fields in clear")),
    responses((status = 200, description = "The profile", body = crate::wire::UserBody), (status = 404, description = "Unknown user", body = ErrorBody)))]
pub(crate) async fn user(Tenant(app): Tenant, axum::Extension(caller): axum::Extension<Caller>, Path(id): Path<String>) -> Response {
    let registry = app.views.registry();
    app.live.with_user_view(&id, |view| match view {
        Some(v) => Json(crate::wire::UserBody::from(&v).exposed(&registry, caller.exposure)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no user {id:?}")),
    })
}

/// The active ruleset (name, version, rules, lists) and the publication history.
#[utoipa::path(get, path = "/v1/rules", tag = "risk", responses((status = 200, description = "Active ruleset and history", body = Object)))]
pub(crate) async fn rules(Tenant(app): Tenant) -> Response {
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

/// Where a ruleset is wrong.
#[derive(Serialize, ToSchema)]
pub struct RuleCheckBody {
    /// Whether it compiles.
    pub ok: bool,
    /// 1-based line of the first problem (absent for a problem with the whole file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based column (characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// What is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The rules it holds, when it compiles.
    pub rules: usize,
}

/// Compile a ruleset (the TOML text as the body) without storing or publishing it: an editor
/// calls this as its user types, to show the first syntax or type error at its line and column.
#[utoipa::path(post, path = "/v1/rules/check", tag = "risk",
    request_body(content = String, description = "A ruleset file (TOML)", content_type = "text/plain"),
    responses((status = 200, description = "Whether it compiles, and where it does not", body = RuleCheckBody)))]
pub(crate) async fn check_rules(body: Bytes) -> Response {
    let Ok(src) = std::str::from_utf8(&body) else {
        return Json(RuleCheckBody {
            ok: false,
            line: None,
            column: None,
            message: Some("the ruleset is not UTF-8 text".into()),
            rules: 0,
        })
        .into_response();
    };
    let answer = match Ruleset::compile(src, "request body") {
        Ok(r) => RuleCheckBody { ok: true, line: None, column: None, message: None, rules: r.rules.len() },
        Err(RulesetError::At { line, column, message, .. }) => {
            RuleCheckBody { ok: false, line: Some(line), column: Some(column), message: Some(message), rules: 0 }
        }
        Err(e) => RuleCheckBody { ok: false, line: None, column: None, message: Some(e.to_string()), rules: 0 },
    };
    Json(answer).into_response()
}

/// The period a backtest replays.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BacktestQuery {
    /// First day, YYYY-MM-DD (UTC), inclusive.
    pub from: String,
    /// Last day, YYYY-MM-DD (UTC), inclusive.
    pub to: String,
}

/// Replay a period's transactions through a ruleset (the TOML text as the body) and the active
/// fraud model, without publishing it: what it would have flagged, with precision and recall
/// by the labels known now, rule by rule and day by day.
#[utoipa::path(post, path = "/v1/rules/backtest", tag = "risk", params(BacktestQuery),
    request_body(content = String, description = "A ruleset file (TOML)", content_type = "text/plain"),
    responses((status = 200, body = crate::wire::BacktestBody), (status = 400, description = "Bad ruleset or period", body = ErrorBody)))]
pub(crate) async fn backtest_rules(
    Tenant(app): Tenant,
    axum::Extension(caller): axum::Extension<crate::access::Caller>,
    query: Result<axum::extract::Query<BacktestQuery>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Response {
    let axum::extract::Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let day = |name: &str, text: &str| {
        finpulse_core::time::parse_date_us(text).ok_or_else(|| format!("{name}: '{text}' is not a YYYY-MM-DD date"))
    };
    let (from_us, to_us) = match (day("from", &q.from), day("to", &q.to)) {
        (Ok(f), Ok(t)) => (f, t + finpulse_core::time::MICROS_PER_DAY),
        (Err(why), _) | (_, Err(why)) => return error(StatusCode::BAD_REQUEST, why),
    };
    let Ok(src) = std::str::from_utf8(&body) else { return error(StatusCode::BAD_REQUEST, "the ruleset is not UTF-8 text") };
    let ruleset = match Ruleset::compile(src, "request body") {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let _key_turn = match caller.query_turn(&app) {
        Ok(t) => t,
        Err(r) => return r.response(),
    };
    let _turn = app.query_turn().await;
    let data_dir = app.data_dir.clone();
    let ran = tokio::task::spawn_blocking(move || -> Result<finpulse_risk::backtest::Backtest, String> {
        let model = finpulse_risk::fraud::registered_model(&data_dir, None).map_err(|e| e.to_string())?.map(Arc::new);
        finpulse_risk::backtest::backtest(&data_dir, ruleset, model, from_us, to_us).map_err(|e| e.to_string())
    })
    .await;
    match ran {
        Ok(Ok(b)) => Json(crate::wire::BacktestBody::from(&b)).into_response(),
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Publish a ruleset (the TOML text as the body). It is compiled first: a syntax or type error
/// answers 400 with its line and column, and the active ruleset stays. Takes effect at once.
#[utoipa::path(post, path = "/v1/rules", tag = "risk",
    request_body(content = String, description = "A ruleset file (TOML)", content_type = "text/plain"),
    responses(
        (status = 200, description = "Published and active", body = Object),
        (status = 202, description = "Stored, not active: waiting for a second person (access.approval_required has rules)", body = crate::access::ApprovalBody),
        (status = 400, description = "Refused; the active one stays", body = ErrorBody)))]
pub(crate) async fn publish(Tenant(app): Tenant, axum::Extension(caller): axum::Extension<crate::access::Caller>, body: Bytes) -> Response {
    let Ok(src) = std::str::from_utf8(&body) else { return error(StatusCode::BAD_REQUEST, "the ruleset is not UTF-8 text") };
    let store = RulesetStore::in_data_dir(&app.data_dir);
    if app.access_options.needs_approval(ApprovalKind::Rules) {
        let proposed = match store.propose(src, "request body", caller.actor()) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("{e} (not stored; the active ruleset stays)")),
        };
        let kind = ApprovalKind::Rules;
        return match app.access.approvals.request(
            &app.tenant,
            kind,
            RulesetStore::slot(),
            proposed.version,
            Change::Activate,
            caller.actor(),
        ) {
            Ok(a) => (StatusCode::ACCEPTED, Json(crate::access::ApprovalBody::from(&a))).into_response(),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
    }
    match store.publish(src, "request body", caller.actor()) {
        Ok(r) => {
            let version = r.version;
            app.live.activate_ruleset(r);
            Json(json!({ "version": version, "active": true })).into_response()
        }
        Err(e) => {
            let active = app.live.engine().ruleset.version;
            error(StatusCode::BAD_REQUEST, format!("{e} (not published; version {active} stays active)"))
        }
    }
}

/// Make the ruleset active before the current one active again; takes effect at once, or,
/// where publishing needs a second person, waits for their approval.
#[utoipa::path(post, path = "/v1/rules/rollback", tag = "risk",
    responses(
        (status = 200, description = "The ruleset now active", body = Object),
        (status = 202, description = "Waiting for a second person (access.approval_required has rules)", body = crate::access::ApprovalBody),
        (status = 409, description = "No earlier ruleset", body = ErrorBody)))]
pub(crate) async fn rollback_rules(Tenant(app): Tenant, axum::Extension(caller): axum::Extension<crate::access::Caller>) -> Response {
    let data_dir = app.data_dir.clone();
    let by = caller.actor().to_string();
    if app.access_options.needs_approval(ApprovalKind::Rules) {
        let target = match RulesetStore::in_data_dir(&data_dir).rollback_target() {
            Ok(v) => v,
            Err(RulesetError::Store(e)) => return error(crate::models::versions_status(&e), e.to_string()),
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
        return match app.access.approvals.request(&app.tenant, ApprovalKind::Rules, RulesetStore::slot(), target, Change::RollBack, &by) {
            Ok(a) => (StatusCode::ACCEPTED, Json(crate::access::ApprovalBody::from(&a))).into_response(),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
    }
    let rolled = tokio::task::spawn_blocking(move || RulesetStore::in_data_dir(&data_dir).rollback(&by)).await;
    match rolled {
        Ok(Ok(r)) => {
            let version = r.version;
            app.live.activate_ruleset(r);
            Json(json!({ "version": version, "active": true })).into_response()
        }
        Ok(Err(RulesetError::Store(e))) => error(crate::models::versions_status(&e), e.to_string()),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("rollback stopped: {e}")),
    }
}

/// Case list options.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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
    responses((status = 200, description = "Cases", body = CasesBody), (status = 400, description = "Bad status or limit", body = ErrorBody)))]
pub(crate) async fn cases(Tenant(app): Tenant, axum::extract::Query(q): axum::extract::Query<CasesQuery>) -> Response {
    let status = match q.status.as_deref().map(|s| CaseStatus::parse(s).ok_or(s)).transpose() {
        Ok(status) => status,
        Err(s) => return error(StatusCode::BAD_REQUEST, format!("status {s:?}: use open or resolved")),
    };
    let limit = match crate::models::list_limit(q.limit) {
        Ok(l) => l,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let cases = app.live.cases(status, q.assignee.as_deref(), limit);
    Json(CasesBody { cases: cases.iter().map(CaseBody::from).collect() }).into_response()
}

/// One case.
#[utoipa::path(get, path = "/v1/cases/{id}", tag = "risk", params(("id" = String, Path, description = "case id")),
    responses((status = 200, description = "The case", body = CaseBody), (status = 404, description = "No such case", body = ErrorBody)))]
pub(crate) async fn case(Tenant(app): Tenant, Path(id): Path<String>) -> Response {
    match app.live.case(&id) {
        Some(c) => Json(CaseBody::from(&c)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no case {id:?}")),
    }
}

/// A change to a case; it is recorded under the caller's name (`user:<name>` or `key:<id>`).
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseRequest {
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
        (status = 200, description = "The case after the change", body = CaseBody),
        (status = 400, description = "Bad action or field", body = ErrorBody),
        (status = 404, description = "No such case", body = ErrorBody),
        (status = 409, description = "The case is resolved", body = ErrorBody),
    ))]
pub(crate) async fn change_case(
    axum::Extension(caller): axum::Extension<crate::access::Caller>,
    Tenant(app): Tenant,
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
    let _one_at_a_time = app.live.case_writes().lock().await;
    let preparer = app.views.preparer();
    let planned = app.live.plan_case_change(&id, &action, caller.actor(), finpulse_core::time::now_us());
    let events = match planned {
        Ok(e) => e,
        Err(e @ CaseError::NotFound(_)) => return error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ CaseError::Resolved(_)) => return error(StatusCode::CONFLICT, e.to_string()),
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let batch = match Batch::shared(&preparer, Arc::new(events)) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("the change was not stored: {e}")),
    };
    if let Err(e) = app.writer.append(batch).await {
        return error(StatusCode::SERVICE_UNAVAILABLE, format!("the change was not stored: {e}"));
    }
    match app.live.case(&id) {
        Some(c) => Json(CaseBody::from(&c)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no case {id:?}")),
    }
}
