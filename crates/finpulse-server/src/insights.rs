//! `GET|POST /v1/insights/{kind}`: lifecycle insights. POST takes the request as a JSON object;
//! GET takes the same options as query parameters (lists comma-separated, `filters` repeatable).

use crate::{AppState, ErrorBody, error};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use finpulse_growth::InsightError;
use serde_json::{Map, Value};

/// Options given as numbers in query strings.
const NUMBER_OPTIONS: [&str; 5] = ["dropped_at", "limit", "periods", "period_index", "churn_after"];
/// Options given as lists in query strings (comma-separated).
const LIST_OPTIONS: [&str; 2] = ["steps", "tasks"];

/// Query parameters as the JSON object a POST would send.
fn body_from_query(pairs: Vec<(String, String)>) -> Result<Value, String> {
    let mut m = Map::new();
    for (k, v) in pairs {
        let value = if k == "filters" || k == "filter" {
            let list = m.entry("filters").or_insert_with(|| Value::Array(Vec::new()));
            list.as_array_mut().expect("filters is a list").push(Value::from(v));
            continue;
        } else if LIST_OPTIONS.contains(&k.as_str()) {
            Value::from(v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect::<Vec<_>>())
        } else if NUMBER_OPTIONS.contains(&k.as_str()) {
            Value::from(v.parse::<u64>().map_err(|_| format!("{k}: '{v}' is not a whole number"))?)
        } else if k == "unbounded" || k == "counts" {
            Value::from(v.parse::<bool>().map_err(|_| format!("{k}: '{v}' is not true or false"))?)
        } else {
            Value::from(v)
        };
        m.insert(k, value);
    }
    Ok(Value::Object(m))
}

async fn answer(state: AppState, kind: String, body: Value) -> Response {
    let view = state.views.snapshot();
    match finpulse_growth::run_json(&view, &kind, body).await {
        Ok(table) => Json(table).into_response(),
        Err(e @ InsightError::Param { .. }) => {
            let status = if kind_known(&kind) { StatusCode::BAD_REQUEST } else { StatusCode::NOT_FOUND };
            error(status, e.to_string())
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn kind_known(kind: &str) -> bool {
    finpulse_growth::KINDS.contains(&kind)
}

/// An insight (acquisition, activation, funnel, retention, lifecycle, trends) with options as
/// query parameters, e.g. `/v1/insights/funnel?steps=user_signup,deposit&window=7d&breakdown=user.channel`.
#[utoipa::path(get, path = "/v1/insights/{kind}", tag = "insights",
    params(("kind" = String, Path, description = "acquisition, activation, funnel, retention, lifecycle or trends")),
    responses((status = 200, description = "columns and rows", body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_insight(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    match body_from_query(pairs) {
        Ok(body) => answer(state, kind, body).await,
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

/// An insight with options as a JSON object, e.g.
/// `{"steps": ["user_signup", "deposit"], "window": "7d", "mode": "strict_order", "filters": ["user.channel = douyin"]}`.
#[utoipa::path(post, path = "/v1/insights/{kind}", tag = "insights",
    params(("kind" = String, Path, description = "acquisition, activation, funnel, retention, lifecycle or trends")),
    request_body = Object,
    responses((status = 200, description = "columns and rows", body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn post_insight(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    match body {
        Ok(Json(body)) if body.is_object() => answer(state, kind, body).await,
        Ok(_) => error(StatusCode::BAD_REQUEST, "the body must be a JSON object of options"),
        Err(e) => error(StatusCode::BAD_REQUEST, e.body_text()),
    }
}
