//! The model registry, churn early warning and pricing over HTTP: list models, promote and roll
//! back versions, the daily churn risk list from the active churn model, and the LTV-based
//! offers campaigns read.

use crate::wire::{ModelActivationBody, ModelVersionBody};
use crate::{AppState, ErrorBody, Tenant, error};
use axum::Json;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use finpulse_access::approvals::{ApprovalKind, Change};
use finpulse_churn::{ChurnError, ChurnSpec, PURPOSE, RiskList};
use finpulse_core::versions::VersionsError;
use finpulse_models::pricing::{OFFERS_FILE, Offer, OfferSet};
use finpulse_models::registry::{ModelRegistry, RegistryError};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// Most rows one risk-list or offers answer carries.
pub const LIST_ROWS_MAX: usize = 10_000;
/// Rows a risk-list or offers answer carries unless asked.
pub const LIST_ROWS_DEFAULT: usize = 100;

/// The `limit` parameter of a list, checked against [`LIST_ROWS_MAX`].
pub(crate) fn list_limit(limit: Option<usize>) -> Result<usize, String> {
    let limit = limit.unwrap_or(LIST_ROWS_DEFAULT);
    if limit == 0 || limit > LIST_ROWS_MAX {
        return Err(format!("limit must be between 1 and {LIST_ROWS_MAX}, not {limit}"));
    }
    Ok(limit)
}

fn registry_error(e: RegistryError) -> Response {
    let status = match &e {
        RegistryError::Store(v) => versions_status(v),
        RegistryError::Model(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.to_string())
}

/// The status of a refused change to a versioned artefact (model, ruleset, segment, goal).
pub(crate) fn versions_status(e: &VersionsError) -> StatusCode {
    match e {
        VersionsError::Name { .. } => StatusCode::BAD_REQUEST,
        VersionsError::NoVersion { .. } | VersionsError::NoActive { .. } => StatusCode::NOT_FOUND,
        VersionsError::NothingToRollBack { .. } => StatusCode::CONFLICT,
        VersionsError::Io { .. } | VersionsError::Format { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Runs a registry operation off the async threads (it fsyncs).
async fn with_registry<T: Send + 'static>(
    state: &AppState,
    op: impl FnOnce(&ModelRegistry) -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, Response> {
    let dir = state.data_dir.clone();
    let joined = tokio::task::spawn_blocking(move || ModelRegistry::in_data_dir(&dir).and_then(|r| op(&r))).await;
    match joined {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(registry_error(e)),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, format!("registry task failed: {e}"))),
    }
}

/// Every registered model version, the active version per purpose, and every promotion and
/// roll-back.
#[utoipa::path(get, path = "/v1/models", tag = "models", responses((status = 200, body = Object), (status = 500, body = ErrorBody)))]
pub(crate) async fn list(Tenant(state): Tenant) -> Response {
    match with_registry(&state, |r| Ok((r.list()?, r.history()?))).await {
        Ok(((models, active), history)) => {
            let models: Vec<ModelVersionBody> = models.iter().map(ModelVersionBody::from).collect();
            let history: Vec<ModelActivationBody> = history.iter().map(ModelActivationBody::from).collect();
            Json(json!({ "models": models, "active": active, "history": history })).into_response()
        }
        Err(r) => r,
    }
}

/// Which version to promote.
#[derive(Deserialize, ToSchema)]
pub struct PromoteRequest {
    /// A registered version of the purpose.
    pub version: u32,
}

/// Make a registered version the active model of its purpose.
#[utoipa::path(post, path = "/v1/models/{purpose}/promote", tag = "models", request_body = PromoteRequest,
    params(("purpose" = String, Path, description = "e.g. churn")),
    responses(
        (status = 200, body = ModelActivationBody),
        (status = 202, description = "Waiting for a second person (access.approval_required has models)", body = crate::access::ApprovalBody),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn promote(
    axum::Extension(caller): axum::Extension<crate::access::Caller>,
    Tenant(state): Tenant,
    Path(purpose): Path<String>,
    body: Result<Json<PromoteRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body must be {{\"version\": N}}: {}", e.body_text())),
    };
    let by = caller.actor().to_string();
    if state.access_options.needs_approval(ApprovalKind::Models) {
        // The version must exist before anyone is asked to approve it.
        let (name, version) = (purpose.clone(), req.version);
        let listed = with_registry(&state, move |r| r.list()).await;
        match listed {
            Ok((entries, _)) if entries.iter().any(|e| e.name == name && e.version == version) => {}
            Ok(_) => return error(StatusCode::NOT_FOUND, format!("no model {purpose} v{version}")),
            Err(r) => return r,
        }
        return match state.access.approvals.request(&state.tenant, ApprovalKind::Models, &purpose, req.version, Change::Activate, &by) {
            Ok(a) => (StatusCode::ACCEPTED, Json(crate::access::ApprovalBody::from(&a))).into_response(),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
    }
    match with_registry(&state, move |r| r.promote(&purpose, req.version, &by)).await {
        Ok(a) => Json(ModelActivationBody::from(&a)).into_response(),
        Err(r) => r,
    }
}

/// Return a purpose to the version that was active before the current one. Where promotions
/// need a second person, so does this: the roll-back waits for approval.
#[utoipa::path(post, path = "/v1/models/{purpose}/rollback", tag = "models",
    params(("purpose" = String, Path, description = "e.g. churn")),
    responses(
        (status = 200, body = ModelActivationBody),
        (status = 202, description = "Waiting for a second person (access.approval_required has models)", body = crate::access::ApprovalBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn rollback(
    Tenant(state): Tenant,
    axum::Extension(caller): axum::Extension<crate::access::Caller>,
    Path(purpose): Path<String>,
) -> Response {
    let by = caller.actor().to_string();
    if state.access_options.needs_approval(ApprovalKind::Models) {
        let name = purpose.clone();
        let target = match with_registry(&state, move |r| r.rollback_target(&name)).await {
            Ok(v) => v,
            Err(r) => return r,
        };
        return match state.access.approvals.request(&state.tenant, ApprovalKind::Models, &purpose, target, Change::RollBack, &by) {
            Ok(a) => (StatusCode::ACCEPTED, Json(crate::access::ApprovalBody::from(&a))).into_response(),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
    }
    match with_registry(&state, move |r| r.rollback(&purpose, &by)).await {
        Ok(a) => Json(ModelActivationBody::from(&a)).into_response(),
        Err(r) => r,
    }
}

/// Risk-list options.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RiskQuery {
    /// The as-of date, YYYY-MM-DD (UTC); defaults to the day after the last stored event.
    pub as_of: Option<String>,
    /// Users to return, highest risk first (default 100, at most 10,000).
    pub limit: Option<usize>,
}

/// The daily churn risk list: every user active before the date, scored by the active churn
/// model, highest risk first, each with the reasons that raised the score.
#[utoipa::path(get, path = "/v1/churn/risk", tag = "churn", params(RiskQuery),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, description = "No active churn model", body = ErrorBody)))]
pub(crate) async fn churn_risk(
    Tenant(state): Tenant,
    query: Result<Query<RiskQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let limit = match list_limit(q.limit) {
        Ok(l) => l,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let (entry, model) = match with_registry(&state, |r| r.active(PURPOSE)).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let spec = match ChurnSpec::from_training(&entry.meta.training) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let _turn = state.query_turn().await;
    let view = state.views.snapshot();
    let as_of_us = match &q.as_of {
        Some(text) => match finpulse_core::time::parse_date_us(text) {
            Some(us) => us,
            None => return error(StatusCode::BAD_REQUEST, format!("as_of: '{text}' is not a YYYY-MM-DD date")),
        },
        None => match finpulse_churn::default_as_of(&view).await {
            Ok(Some(us)) => us,
            Ok(None) => return error(StatusCode::NOT_FOUND, "the store holds no events: nothing to score"),
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        },
    };
    match finpulse_churn::score(&view, &model, &spec, as_of_us).await {
        Ok(mut list) => {
            list.rows.truncate(limit);
            Json(json!({ "model_version": entry.version, "list": list })).into_response()
        }
        Err(e @ ChurnError::NoUsers { .. }) => {
            let empty = RiskList {
                as_of: finpulse_core::time::day_label(finpulse_core::time::day_of_us(as_of_us)),
                horizon_days: spec.horizon_days,
                users_scored: 0,
                mean_probability: 0.0,
                rows: Vec::new(),
            };
            Json(json!({ "model_version": entry.version, "list": empty, "message": e.to_string() })).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// Offer-list options.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OffersQuery {
    /// One user's offer.
    pub user_id: Option<String>,
    /// Only this price tier: retention, premium or standard.
    pub price_tier: Option<String>,
    /// Offers to return (default 100, at most 10,000).
    pub limit: Option<usize>,
}

/// The last offers file read, with its modification time.
pub(crate) type OffersCache = std::sync::Mutex<Option<(std::time::SystemTime, Arc<OfferSet>)>>;

/// Reads the stored offers, reusing the parsed copy while the file is unchanged.
fn offers_file(state: &AppState) -> Result<Arc<OfferSet>, (StatusCode, String)> {
    let path = state.data_dir.join(OFFERS_FILE);
    let modified = match std::fs::metadata(&path).and_then(|m| m.modified()) {
        Ok(t) => t,
        Err(_) => return Err((StatusCode::NOT_FOUND, "no offers computed yet: run `finpulse pricing compute`".into())),
    };
    let mut cache = state.offers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((at, set)) = cache.as_ref()
        && *at == modified
    {
        return Ok(set.clone());
    }
    let unreadable = |e: String| (StatusCode::INTERNAL_SERVER_ERROR, format!("{}: {e}", path.display()));
    let bytes = std::fs::read(&path).map_err(|e| unreadable(e.to_string()))?;
    let set: Arc<OfferSet> = Arc::new(serde_json::from_slice(&bytes).map_err(|e| unreadable(e.to_string()))?);
    *cache = Some((modified, set.clone()));
    Ok(set)
}

/// LTV-based offers for campaigns: each user's value tier, churn-risk band, price tier,
/// discount and price, with the guardrail that bound it; as computed by `finpulse pricing compute`.
#[utoipa::path(get, path = "/v1/pricing/offers", tag = "pricing", params(OffersQuery),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, description = "No offers yet, or no offer for the user", body = ErrorBody)))]
pub(crate) async fn offers(Tenant(state): Tenant, query: Result<Query<OffersQuery>, axum::extract::rejection::QueryRejection>) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let limit = match list_limit(q.limit) {
        Ok(l) => l,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let tier = match q.price_tier.as_deref().map(|t| finpulse_models::pricing::PriceTier::parse(t).ok_or(t)).transpose() {
        Ok(tier) => tier,
        Err(t) => return error(StatusCode::BAD_REQUEST, format!("price_tier: '{t}' is not one of retention, premium, standard")),
    };
    let set = match tokio::task::spawn_blocking({
        let state = state.clone();
        move || offers_file(&state)
    })
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err((status, message))) => return error(status, message),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("reading offers failed: {e}")),
    };
    let meta = json!({ "as_of": set.as_of, "calibration_end": set.calibration_end, "churn_model_version": set.churn_model_version, "product": set.policy.product, "list_price_fen": set.policy.list_price_fen });
    if let Some(user) = &q.user_id {
        return match set.offers.binary_search_by(|o| o.user_id.as_str().cmp(user)) {
            Ok(i) => Json(json!({ "offer": set.offers[i], "computed": meta })).into_response(),
            Err(_) => error(
                StatusCode::NOT_FOUND,
                format!("no offer for user '{user}' (not a customer and not scored for churn when offers were computed)"),
            ),
        };
    }
    let selected: Vec<&Offer> = set.offers.iter().filter(|o| tier.is_none_or(|t| o.price_tier == t)).take(limit).collect();
    Json(json!({ "offers": selected, "total": set.offers.len(), "computed": meta })).into_response()
}

/// What `POST /v1/pricing/compute` computes offers from; the same settings as
/// `finpulse pricing compute`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PricingComputeRequest {
    /// The event type that counts as a purchase (e.g. revenue, wealth_purchase).
    pub purchase_event: String,
    /// Purchases before this date (YYYY-MM-DD, UTC) are the LTV calibration period.
    pub calibration_end: String,
    /// The churn-risk date (YYYY-MM-DD); the calibration end when absent.
    pub as_of: Option<String>,
    /// day or week (default week): the unit of frequency, recency and T.
    pub unit: Option<UnitParam>,
    /// CLV: periods to sum (default 12).
    pub periods: Option<u32>,
    /// CLV: time units per period (default a month).
    pub period_units: Option<f64>,
    /// CLV: discount rate per period (default 0.01).
    pub discount_rate: Option<f64>,
    /// The policy's fields to change from the defaults (product, list_price_fen,
    /// unit_cost_fen, margin_floor_pct, discount_cap_pct, quantiles, risk thresholds,
    /// discounts_pct).
    #[schema(value_type = Object)]
    pub policy: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A time unit on the wire.
#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum UnitParam {
    /// Days.
    Day,
    /// Weeks.
    Week,
}

impl From<UnitParam> for finpulse_value::TimeUnit {
    fn from(u: UnitParam) -> Self {
        match u {
            UnitParam::Day => Self::Day,
            UnitParam::Week => Self::Week,
        }
    }
}

/// The answer of a computation: how many offers, when, and one line per cell of the matrix.
#[derive(serde::Serialize, ToSchema)]
pub struct PricingComputeBody {
    /// Offers computed and stored.
    pub offers: usize,
    /// The churn-risk date.
    pub as_of: String,
    /// The LTV calibration end.
    pub calibration_end: String,
    /// The churn model version used.
    pub churn_model_version: u32,
    /// Per (LTV tier, risk band): users, discount, price, mean CLV, guardrail.
    #[schema(value_type = Vec<Object>)]
    pub segments: Vec<finpulse_value::OfferSegment>,
}

/// Recompute every user's offer now from the store (CLV from its purchases, risk from the
/// active churn model, the policy's matrix and guardrails) and store them where
/// `GET /v1/pricing/offers` reads; what `finpulse pricing compute` does.
#[utoipa::path(post, path = "/v1/pricing/compute", tag = "pricing", request_body = PricingComputeRequest,
    responses(
        (status = 200, description = "Computed and stored", body = PricingComputeBody),
        (status = 400, description = "A bad setting or policy, or nothing to price", body = ErrorBody),
        (status = 500, description = "The offers could not be stored", body = ErrorBody),
    ))]
pub(crate) async fn compute_offers(
    Tenant(state): Tenant,
    body: Result<Json<PricingComputeRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let date = |field: &str, text: &str| {
        finpulse_core::time::parse_date_us(text).ok_or_else(|| format!("{field}: '{text}' is not a YYYY-MM-DD date"))
    };
    let calibration_end_us = match date("calibration_end", &req.calibration_end) {
        Ok(us) => us,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let as_of_us = match req.as_of.as_deref().map(|t| date("as_of", t)).transpose() {
        Ok(us) => us,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let policy = match policy_with(req.policy.unwrap_or_default()) {
        Ok(p) => p,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let unit: finpulse_value::TimeUnit = req.unit.unwrap_or(UnitParam::Week).into();
    let request = finpulse_value::PricingRequest {
        source: finpulse_value::PurchaseSource { purchase_event: req.purchase_event, calibration_end_us, unit },
        as_of_us,
        clv: finpulse_value::ClvSettings {
            periods: req.periods.unwrap_or(12),
            period_units: req.period_units.unwrap_or_else(|| unit.per_month()),
            discount_rate: req.discount_rate.unwrap_or(0.01),
        },
        policy,
    };
    let _turn = state.query_turn().await;
    let view = state.views.snapshot();
    match finpulse_value::compute_offers(&state.data_dir, &view, &request).await {
        Ok(set) => Json(PricingComputeBody {
            offers: set.offers.len(),
            segments: finpulse_value::segments(&set),
            as_of: set.as_of,
            calibration_end: set.calibration_end,
            churn_model_version: set.churn_model_version,
        })
        .into_response(),
        Err(e @ finpulse_value::ValueError::Io { .. }) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// The default policy with `changes` applied; unknown fields and values out of range are errors.
fn policy_with(changes: serde_json::Map<String, serde_json::Value>) -> Result<finpulse_models::pricing::PricingPolicy, String> {
    let mut merged = match serde_json::to_value(finpulse_models::pricing::PricingPolicy::default()) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => return Err("the default policy does not serialise".into()),
    };
    for (k, v) in changes {
        if !merged.contains_key(&k) {
            return Err(format!("policy: unknown field '{k}'"));
        }
        merged.insert(k, v);
    }
    let policy: finpulse_models::pricing::PricingPolicy =
        serde_json::from_value(serde_json::Value::Object(merged)).map_err(|e| format!("policy: {e}"))?;
    policy.check().map_err(|e| format!("policy: {e}"))?;
    Ok(policy)
}
