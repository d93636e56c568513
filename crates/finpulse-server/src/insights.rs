//! `GET|POST /v1/insights/{kind}`: lifecycle insights. POST takes the request as a JSON object;
//! GET takes the same options as query parameters (lists comma-separated, `filters` repeatable).
//! `GET|POST /v1/segments`, `GET /v1/segments/{name}/members`: saved segments, materialised on
//! save and then on a schedule.

use crate::wire::{InsightBody, TableBody};
use crate::{AppState, ErrorBody, Tenant, error};
use axum::Json;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use finpulse_growth::segments::{SegmentBook, SegmentDef};
use finpulse_growth::{InsightError, InsightKind, InsightOptions};
use finpulse_log::ViewHandle;
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use utoipa::IntoParams;

fn insight_error(e: InsightError) -> Response {
    match e {
        InsightError::Param { .. } => error(StatusCode::BAD_REQUEST, e.to_string()),
        InsightError::Query(_) | InsightError::File { .. } => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn load_book(state: &AppState) -> Result<SegmentBook, Box<Response>> {
    SegmentBook::load(&state.data_dir).map_err(|e| Box::new(insight_error(e)))
}

async fn answer(state: AppState, caller: crate::access::Caller, kind: String, body: InsightBody) -> Response {
    let kind: InsightKind = match kind.parse() {
        Ok(k) => k,
        Err(e) => return error(StatusCode::NOT_FOUND, format!("{e}")),
    };
    let insight = match InsightOptions::from(body).into_insight(kind) {
        Ok(i) => i,
        Err(e) => return insight_error(e),
    };
    let _key_turn = match caller.query_turn(&state) {
        Ok(t) => t,
        Err(r) => return r.response(),
    };
    let _turn = state.query_turn().await;
    let view = state.views.snapshot();
    let book = match load_book(&state) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match finpulse_growth::run(&view, &book, &insight).await {
        Ok(table) => Json(TableBody::from(&table)).into_response(),
        Err(e) => insight_error(e),
    }
}

/// An insight (acquisition, activation, funnel, retention, lifecycle, trends) with options as
/// query parameters, e.g. `/v1/insights/funnel?steps=user_signup,deposit&window=7d&breakdown=user.channel`.
#[utoipa::path(get, path = "/v1/insights/{kind}", tag = "insights",
    params(("kind" = String, Path, description = "acquisition, activation, funnel, retention, lifecycle or trends"), InsightBody),
    responses((status = 200, description = "columns and rows", body = TableBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_insight(
    Tenant(state): Tenant,
    axum::Extension(caller): axum::Extension<crate::access::Caller>,
    Path(kind): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    match InsightBody::from_query(pairs) {
        Ok(body) => answer(state, caller, kind, body).await,
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

/// An insight with options as a JSON object, e.g.
/// `{"steps": ["user_signup", "deposit"], "window": "7d", "mode": "strict_order", "filters": ["user.channel = douyin"]}`.
#[utoipa::path(post, path = "/v1/insights/{kind}", tag = "insights",
    params(("kind" = String, Path, description = "acquisition, activation, funnel, retention, lifecycle or trends")),
    request_body = InsightBody,
    responses((status = 200, description = "columns and rows", body = TableBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn post_insight(
    Tenant(state): Tenant,
    axum::Extension(caller): axum::Extension<crate::access::Caller>,
    Path(kind): Path<String>,
    body: Result<Json<InsightBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    match body {
        Ok(Json(body)) => answer(state, caller, kind, body).await,
        Err(e) => error(StatusCode::BAD_REQUEST, options_error(&e.body_text())),
    }
}

/// A refused options object, as `OPTION: what is wrong` when one option is at fault
/// (`from: invalid type: integer ...`) and `body: ...` when the whole body is.
fn options_error(text: &str) -> String {
    let detail = text.split_once("target type: ").map_or(text, |(_, d)| d);
    match detail.split_once(": ") {
        Some((option, _)) if !option.is_empty() && !option.contains(' ') => detail.to_string(),
        _ => format!("body: {detail}"),
    }
}

/// Re-materialises every saved segment every `every`, in the background.
pub(crate) fn refresh_segments(
    views: ViewHandle,
    data_dir: PathBuf,
    lock: Arc<tokio::sync::Mutex<()>>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
        tick.tick().await;
        loop {
            tick.tick().await;
            let _guard = lock.lock().await;
            let result = match SegmentBook::load(&data_dir) {
                Ok(book) if !book.defs().is_empty() => {
                    finpulse_growth::segments::materialise_all(&views.snapshot(), &book).await.map(|s| s.len())
                }
                Ok(_) => Ok(0),
                Err(e) => Err(e),
            };
            match result {
                Ok(n) if n > 0 => tracing::info!(segments = n, "segments materialised"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "materialising segments failed; the previous members stay"),
            }
        }
    })
}

/// Saved segments, each with its rules and last materialisation.
#[utoipa::path(get, path = "/v1/segments", tag = "segments", responses((status = 200, body = Object)))]
pub(crate) async fn list_segments(Tenant(state): Tenant) -> Response {
    let book = match load_book(&state) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let list: Vec<Value> = book
        .defs()
        .values()
        .map(|d| serde_json::json!({"name": d.name, "description": d.description, "rules": d.rules, "state": book.state(&d.name)}))
        .collect();
    Json(serde_json::json!({ "segments": list })).into_response()
}

/// Saves (or replaces) a segment, e.g. `{"name": "douyin_no_deposit", "rules": ["user.channel = douyin", "not deposit"]}`,
/// and materialises it at once.
#[utoipa::path(post, path = "/v1/segments", tag = "segments", request_body = Object,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub(crate) async fn save_segment(
    axum::Extension(caller): axum::Extension<crate::access::Caller>,
    Tenant(state): Tenant,
    body: Result<Json<SegmentDef>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let def = match body {
        Ok(Json(d)) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let _guard = state.segments.lock().await;
    let _turn = state.query_turn().await;
    let view = state.views.snapshot();
    let mut book = match load_book(&state) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let segment = match book.save(def, &view.registry, caller.actor()) {
        Ok(s) => s,
        Err(e) => return insight_error(e),
    };
    match finpulse_growth::segments::materialise_one(&view, &book, &segment.def.name).await {
        Ok(s) => Json(serde_json::json!({"name": segment.def.name, "rules": segment.def.rules, "state": s})).into_response(),
        Err(e) => insight_error(e),
    }
}

/// Membership options.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MembersQuery {
    /// Is this user a member? (Answers `{"member": true|false}` instead of the list.)
    pub user_id: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// A segment's members as of its last materialisation (CSV export with `format=csv`), or
/// whether one user is a member.
#[utoipa::path(get, path = "/v1/segments/{name}/members", tag = "segments", params(("name" = String, Path), MembersQuery),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn segment_members(
    Tenant(state): Tenant,
    Path(name): Path<String>,
    query: Result<Query<MembersQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let book = match load_book(&state) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if !book.defs().contains_key(&name) {
        return error(StatusCode::NOT_FOUND, format!("no segment '{name}'"));
    }
    let (Some(members), Some(seg_state)) = (book.materialised_members(&name), book.state(&name)) else {
        return error(StatusCode::NOT_FOUND, format!("segment '{name}' is not materialised yet"));
    };
    if let Some(user) = q.user_id {
        let member = members.binary_search(&user).is_ok();
        return Json(serde_json::json!({"segment": name, "user_id": user, "member": member, "as_of": seg_state.as_of})).into_response();
    }
    match q.format.as_deref() {
        Some("csv") => {
            let mut csv = String::from("user_id\n");
            for m in &members {
                csv.push_str(m);
                csv.push('\n');
            }
            ([(axum::http::header::CONTENT_TYPE, "text/csv")], csv).into_response()
        }
        None | Some("json") => Json(serde_json::json!({"segment": name, "as_of": seg_state.as_of, "members": members})).into_response(),
        Some(other) => error(StatusCode::BAD_REQUEST, format!("format: '{other}' is not json or csv")),
    }
}

/// Every KPI goal with its current value, trend projection to the deadline and status.
#[utoipa::path(get, path = "/v1/goals", tag = "goals", responses((status = 200, description = "columns and rows", body = TableBody)))]
pub(crate) async fn list_goals(Tenant(state): Tenant) -> Response {
    let _turn = state.query_turn().await;
    let view = state.views.snapshot();
    let run = async {
        let book = finpulse_growth::goals::GoalBook::load(&state.data_dir)?;
        let ctx = finpulse_growth::session(&view).await?;
        finpulse_growth::goals::evaluate(&ctx, &view.registry, &book).await
    };
    match run.await {
        Ok(t) => Json(TableBody::from(&t)).into_response(),
        Err(e) => insight_error(e),
    }
}

/// Adds or replaces a goal: `{"name": "q2-retention", "metric": "retention_90d", "target": 0.85, "deadline": "2026-06-30"}`.
#[utoipa::path(post, path = "/v1/goals", tag = "goals", request_body = Object,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub(crate) async fn set_goal(
    axum::Extension(caller): axum::Extension<crate::access::Caller>,
    Tenant(state): Tenant,
    body: Result<Json<finpulse_growth::goals::Goal>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let goal = match body {
        Ok(Json(g)) => g,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let _guard = state.segments.lock().await;
    let result = finpulse_growth::goals::GoalBook::load(&state.data_dir).and_then(|mut book| book.set(goal.clone(), caller.actor()));
    match result {
        Ok(()) => Json(goal).into_response(),
        Err(e) => insight_error(e),
    }
}

/// A refused roll-back: 409 when there is nothing earlier, 400 for a bad name.
fn rollback_error(e: InsightError) -> Response {
    match &e {
        InsightError::Param { message, .. } if message.contains("no earlier version") => error(StatusCode::CONFLICT, e.to_string()),
        _ => insight_error(e),
    }
}

/// Return a segment to its definition before the current one (or bring back a removed one),
/// and materialise it.
#[utoipa::path(post, path = "/v1/segments/{name}/rollback", tag = "segments",
    params(("name" = String, Path, description = "The segment")),
    responses((status = 200, description = "The change", body = crate::wire::ActivationBody), (status = 409, description = "No earlier definition", body = ErrorBody)))]
pub(crate) async fn rollback_segment(
    Tenant(state): Tenant,
    axum::Extension(caller): axum::Extension<crate::access::Caller>,
    Path(name): Path<String>,
) -> Response {
    let _guard = state.segments.lock().await;
    let mut book = match load_book(&state) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let activation = match book.rollback(&name, caller.actor()) {
        Ok(a) => a,
        Err(e) => return rollback_error(e),
    };
    if let Err(e) = finpulse_growth::segments::materialise_one(&state.views.snapshot(), &book, &name).await {
        tracing::error!(segment = %name, error = %e, "materialising a rolled-back segment failed; the schedule retries");
    }
    Json(crate::wire::ActivationBody::from(&activation)).into_response()
}

/// Return a goal to its version before the current one (or bring back a removed one).
#[utoipa::path(post, path = "/v1/goals/{name}/rollback", tag = "goals",
    params(("name" = String, Path, description = "The goal")),
    responses((status = 200, description = "The change", body = crate::wire::ActivationBody), (status = 409, description = "No earlier version", body = ErrorBody)))]
pub(crate) async fn rollback_goal(
    Tenant(state): Tenant,
    axum::Extension(caller): axum::Extension<crate::access::Caller>,
    Path(name): Path<String>,
) -> Response {
    let _guard = state.segments.lock().await;
    match finpulse_growth::goals::GoalBook::load(&state.data_dir).and_then(|mut book| book.rollback(&name, caller.actor())) {
        Ok(a) => Json(crate::wire::ActivationBody::from(&a)).into_response(),
        Err(e) => rollback_error(e),
    }
}
