//! `GET /v1/decisions/recent`: the latest recorded risk decisions, newest first, for a live
//! decision stream. Read back from the store (the `risk_decision` records) in the order
//! finpulse accepted them (`_seq`), masked by the caller's exposure like any query; a client
//! polls with `after_seq` to get only what was decided since its last look.

use crate::access::Caller;
use crate::wire::ReasonBody;
use crate::{ErrorBody, Tenant, error};
use axum::Json;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use finpulse_risk::live::StoredWhy;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Most decisions one answer carries.
pub const RECENT_DECISIONS_LIMIT_MAX: usize = 500;
/// Decisions an answer carries unless asked.
pub const RECENT_DECISIONS_LIMIT_DEFAULT: usize = 50;

/// The suffix a transaction's id takes in the id of its `risk_decision` event.
const DECISION_ID_SUFFIX: &str = "#decision";

/// The actions a decision can have, as the `action` filter takes them.
const ACTIONS: [&str; 3] = ["allow", "review", "block"];

/// What to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecentQuery {
    /// Decisions to return, newest first (default 50, at most 500).
    pub limit: Option<usize>,
    /// Only decisions recorded after this log position (a previous answer's `seq`).
    pub after_seq: Option<u64>,
    /// Only this action: allow, review or block.
    pub action: Option<String>,
}

/// One recorded decision.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct RecentDecisionBody {
    /// Its log position: larger is later.
    pub seq: Option<u64>,
    /// The transaction decided.
    pub event_id: String,
    /// Its user, masked as the caller's exposure says.
    pub user_id: Option<String>,
    /// The transaction's time, RFC 3339 (UTC).
    pub ts: String,
    /// allow, review or block.
    pub action: String,
    /// In [0, 1].
    pub score: Option<f64>,
    /// Lists, rules and model features behind it.
    pub reasons: Vec<ReasonBody>,
    /// Shadow rules that would have hit.
    pub shadow_hits: Vec<String>,
    /// The ruleset's version.
    pub ruleset_version: Option<u32>,
    /// The model's registry version, if a model scored it.
    pub model_version: Option<u32>,
    /// Time the decision took, microseconds.
    pub elapsed_us: Option<f64>,
    /// Why the fail-open/closed fallback answered, when it did.
    pub fallback: Option<String>,
}

/// The latest decisions.
#[derive(Serialize, ToSchema)]
pub struct RecentDecisionsBody {
    /// Newest first.
    pub decisions: Vec<RecentDecisionBody>,
}

/// The checked query: limit, after and action.
fn checked(q: &RecentQuery) -> Result<(usize, Option<u64>, Option<&str>), String> {
    let limit = q.limit.unwrap_or(RECENT_DECISIONS_LIMIT_DEFAULT);
    if limit == 0 || limit > RECENT_DECISIONS_LIMIT_MAX {
        return Err(format!("limit must be between 1 and {RECENT_DECISIONS_LIMIT_MAX}, not {limit}"));
    }
    let action = match q.action.as_deref() {
        None | Some("") => None,
        Some(a) if ACTIONS.contains(&a) => Some(a),
        Some(a) => return Err(format!("action must be allow, review or block, not {a:?}")),
    };
    Ok((limit, q.after_seq, action))
}

/// The query for `limit` decisions after `after`, of `action` if given.
fn recent_sql(limit: usize, after: Option<u64>, action: Option<&str>) -> String {
    let mut filters = Vec::new();
    if let Some(seq) = after {
        filters.push(format!("_seq > {seq}"));
    }
    if let Some(a) = action {
        filters.push(format!("decision = {}", finpulse_query::sql::text_literal(a)));
    }
    let filter = if filters.is_empty() { String::new() } else { format!("WHERE {}", filters.join(" AND ")) };
    format!(
        "SELECT _seq, event_id, user_id, ts, decision, risk_score, reasons, ruleset_version, model_version, decision_us \
         FROM risk_decision {filter} ORDER BY _seq DESC NULLS LAST, ts DESC, event_id DESC LIMIT {limit}"
    )
}

/// The latest recorded risk decisions, newest first (in the order they were recorded), with
/// their reasons. Poll with `after_seq` set to the largest `seq` seen to get only newer ones.
#[utoipa::path(get, path = "/v1/decisions/recent", tag = "risk", params(RecentQuery),
    responses(
        (status = 200, description = "The latest decisions", body = RecentDecisionsBody),
        (status = 400, description = "Bad limit or action", body = ErrorBody)))]
pub(crate) async fn recent(
    Tenant(app): Tenant,
    axum::Extension(caller): axum::Extension<Caller>,
    query: Result<Query<RecentQuery>, QueryRejection>,
) -> Response {
    let q = match query {
        Ok(Query(q)) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let (limit, after, action) = match checked(&q) {
        Ok(c) => c,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let _key_turn = match caller.query_turn(&app) {
        Ok(t) => t,
        Err(r) => return r.response(),
    };
    let _turn = app.query_turn().await;
    let view = app.views.snapshot();
    if view.registry.type_id("risk_decision").is_none() {
        return Json(RecentDecisionsBody { decisions: Vec::new() }).into_response();
    }
    let opts = finpulse_query::QueryOptions {
        memory_bytes_max: app.limits.query_memory_bytes_max,
        rows_max: Some(limit),
        exposure: caller.exposure,
        ..Default::default()
    };
    let result = match finpulse_query::run_sql(&view, &recent_sql(limit, after, action), opts).await {
        Ok(r) => r,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the decisions failed: {e}")),
    };
    match result.batches.iter().map(rows).collect::<Result<Vec<_>, String>>() {
        Ok(batches) => Json(RecentDecisionsBody { decisions: batches.into_iter().flatten().collect() }).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// The decisions of one batch of [`recent_sql`]'s answer.
fn rows(batch: &arrow::array::RecordBatch) -> Result<Vec<RecentDecisionBody>, String> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Float64Type, TimestampMicrosecondType, UInt64Type};
    let text = |i: usize| finpulse_query::text_values(batch.column(i)).map_err(|e| e.to_string());
    let (ids, users, actions, reasons) = (text(1)?, text(2)?, text(4)?, text(6)?);
    let cast = |i: usize, t: &DataType| arrow::compute::cast(batch.column(i), t).map_err(|e| e.to_string());
    let seqs = cast(0, &DataType::UInt64)?;
    let seqs = seqs.as_primitive::<UInt64Type>();
    let ts = cast(3, &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None))?;
    let ts = ts.as_primitive::<TimestampMicrosecondType>();
    let numbers: Vec<arrow::array::ArrayRef> = [5, 7, 8, 9].iter().map(|&i| cast(i, &DataType::Float64)).collect::<Result<_, _>>()?;
    let number = |c: usize, row: usize| {
        let column = numbers[c].as_primitive::<Float64Type>();
        (!column.is_null(row)).then(|| column.value(row))
    };
    let mut out = Vec::with_capacity(batch.num_rows());
    for (row, ((id, user_id), (action, stored_why))) in ids.into_iter().zip(users).zip(actions.into_iter().zip(reasons)).enumerate() {
        let why = match stored_why {
            Some(r) => StoredWhy::parse(&r).map_err(|e| format!("the stored reasons of row {row} do not read: {e}"))?,
            None => StoredWhy::default(),
        };
        let id = id.unwrap_or_default();
        out.push(RecentDecisionBody {
            seq: (!seqs.is_null(row)).then(|| seqs.value(row)),
            event_id: id.strip_suffix(DECISION_ID_SUFFIX).unwrap_or(&id).to_string(),
            user_id,
            ts: finpulse_core::time::format_us(ts.value(row)),
            action: action.unwrap_or_default(),
            score: number(0, row),
            reasons: why.reasons.into_iter().map(ReasonBody::from).collect(),
            shadow_hits: why.shadow_hits,
            ruleset_version: number(1, row).map(|v| v as u32),
            model_version: number(2, row).map(|v| v as u32),
            elapsed_us: number(3, row),
            fallback: why.fallback,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(limit: Option<usize>, action: Option<&str>) -> RecentQuery {
        RecentQuery { limit, after_seq: None, action: action.map(str::to_string) }
    }

    #[test]
    fn limits_and_actions_are_checked_with_their_names() {
        assert_eq!(checked(&query(None, None)).unwrap(), (RECENT_DECISIONS_LIMIT_DEFAULT, None, None));
        assert_eq!(checked(&query(Some(7), Some("block"))).unwrap(), (7, None, Some("block")));
        assert!(checked(&query(Some(0), None)).unwrap_err().starts_with("limit must be between 1 and 500"));
        assert!(checked(&query(Some(501), None)).unwrap_err().contains("not 501"));
        assert_eq!(checked(&query(None, Some("deny"))).unwrap_err(), "action must be allow, review or block, not \"deny\"");
    }

    #[test]
    fn the_query_filters_by_position_and_action_newest_first() {
        let sql = recent_sql(5, Some(41), Some("review"));
        assert!(sql.contains("WHERE _seq > 41 AND decision = 'review'"), "{sql}");
        assert!(sql.ends_with("ORDER BY _seq DESC NULLS LAST, ts DESC, event_id DESC LIMIT 5"), "{sql}");
        assert!(!recent_sql(5, None, None).contains("WHERE"));
    }
}
