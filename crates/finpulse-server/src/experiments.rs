//! A/B experiments over HTTP: `GET|POST /v1/experiments` (list, define),
//! `POST /v1/experiments/{key}/start|stop`, `GET /v1/experiments/{key}/report`,
//! `GET /v1/experiments/assign?user_id=…` (the running experiments a user is in, with the
//! variation) and `GET /v1/experiments/power` (minimum detectable effect, users needed).
//!
//! Assignment answers from a compiled [`Assigner`] per data directory, rebuilt when the
//! experiments change through this server at once, and otherwise when the store's index or a
//! targeted segment's materialisation changed, looked at no more than every
//! [`ASSIGNER_RECHECK_MS`] milliseconds, so a request is a few hashes and no file access.

use crate::{AppState, ErrorBody, Tenant, error};
use axum::Json;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use finpulse_experiments::definition::{ExperimentDef, user_properties};
use finpulse_experiments::power::{PowerInput, minimum_detectable_effect, users_needed};
use finpulse_experiments::report::{Comparison, Effect, MetricReport, Report, VariationResult};
use finpulse_experiments::{Assigner, Assignment, BookError, Experiment, ExperimentBook, Members};
use finpulse_growth::segments::SegmentBook;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime};
use utoipa::{IntoParams, ToSchema};

/// How often, at most, assignment looks whether experiments or segments changed on disk
/// (through another process), milliseconds.
pub const ASSIGNER_RECHECK_MS: u64 = 1_000;
/// Most user attributes one assignment request may carry.
pub const ASSIGN_ATTRIBUTES_MAX: usize = 32;

fn book_error(e: BookError) -> Response {
    let status = match e {
        BookError::Field { .. } | BookError::LayerOverlap { .. } | BookError::Analysis(_) => StatusCode::BAD_REQUEST,
        BookError::NotFound(_) => StatusCode::NOT_FOUND,
        BookError::State(_) => StatusCode::CONFLICT,
        BookError::Store(_) | BookError::Query(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.to_string())
}

/// One period an experiment ran.
#[derive(Serialize, ToSchema)]
pub struct PhaseBody {
    /// When it started (RFC 3339, UTC).
    pub start: String,
    /// When it stopped; absent while running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
}

/// An experiment: its definition, status and phases.
#[derive(Serialize, ToSchema)]
pub struct ExperimentBody {
    /// Its key.
    pub key: String,
    /// draft, running or stopped.
    pub status: String,
    /// When it ran, oldest first.
    pub phases: Vec<PhaseBody>,
    /// The definition as given.
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
}

impl From<&Experiment> for ExperimentBody {
    fn from(e: &Experiment) -> Self {
        let time = finpulse_core::time::format_us;
        Self {
            key: e.definition.key.clone(),
            status: e.status.name().into(),
            phases: e.phases.iter().map(|p| PhaseBody { start: time(p.start_us), stop: p.stop_us.map(time) }).collect(),
            definition: serde_json::to_value(&e.definition).unwrap_or_default(),
        }
    }
}

/// The experiments.
#[derive(Serialize, ToSchema)]
pub struct ExperimentsBody {
    /// By key.
    pub experiments: Vec<ExperimentBody>,
}

fn load(state: &AppState) -> Result<ExperimentBook, BookError> {
    ExperimentBook::load(&state.data_dir)
}

/// Every experiment with its definition, status and phases.
#[utoipa::path(get, path = "/v1/experiments", tag = "experiments", responses((status = 200, body = ExperimentsBody)))]
pub(crate) async fn list(Tenant(state): Tenant) -> Response {
    match load(&state) {
        Ok(book) => Json(ExperimentsBody { experiments: book.experiments().values().map(ExperimentBody::from).collect() }).into_response(),
        Err(e) => book_error(e),
    }
}

/// Defines an experiment (or changes a draft; a started one keeps its split), e.g.
/// `{"key": "onboarding-v2", "variations": [{"key": "control", "weight": 0.5}, {"key": "new_tasks", "weight": 0.5}],
/// "metrics": [{"name": "activated", "kind": "conversion", "event": "deposit", "window_days": 1}]}`.
#[utoipa::path(post, path = "/v1/experiments", tag = "experiments", request_body = Object,
    responses((status = 200, body = ExperimentBody), (status = 400, body = ErrorBody)))]
pub(crate) async fn define(
    axum::Extension(caller): axum::Extension<crate::access::Caller>,
    Tenant(state): Tenant,
    body: Result<Json<ExperimentDef>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let def = match body {
        Ok(Json(d)) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let _guard = state.segments.lock().await;
    let segments = match SegmentBook::load(&state.data_dir) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let names: Vec<&str> = segments.defs().keys().map(String::as_str).collect();
    let registry = state.views.snapshot().registry.clone();
    let mut book = match load(&state) {
        Ok(b) => b,
        Err(e) => return book_error(e),
    };
    let answer = book.define(def, &registry, &names, caller.actor()).map(|e| Json(ExperimentBody::from(e)).into_response());
    forget_assigner(&state.data_dir);
    answer.unwrap_or_else(book_error)
}

async fn change(state: AppState, caller: crate::access::Caller, key: String, start: bool) -> Response {
    let _guard = state.segments.lock().await;
    let mut book = match load(&state) {
        Ok(b) => b,
        Err(e) => return book_error(e),
    };
    let now_us = finpulse_core::time::now_us();
    let result = if start { book.start(&key, now_us, caller.actor()) } else { book.stop(&key, now_us, caller.actor()) };
    let answer = result.map(|e| Json(ExperimentBody::from(e)).into_response());
    forget_assigner(&state.data_dir);
    answer.unwrap_or_else(book_error)
}

/// Starts an experiment, or restarts a stopped one (every user gets the variation they had).
#[utoipa::path(post, path = "/v1/experiments/{key}/start", tag = "experiments", params(("key" = String, Path)),
    responses((status = 200, body = ExperimentBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn start(
    axum::Extension(caller): axum::Extension<crate::access::Caller>,
    Tenant(state): Tenant,
    Path(key): Path<String>,
) -> Response {
    change(state, caller, key, true).await
}

/// Stops a running experiment: nobody is assigned until it restarts.
#[utoipa::path(post, path = "/v1/experiments/{key}/stop", tag = "experiments", params(("key" = String, Path)),
    responses((status = 200, body = ExperimentBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn stop(
    axum::Extension(caller): axum::Extension<crate::access::Caller>,
    Tenant(state): Tenant,
    Path(key): Path<String>,
) -> Response {
    change(state, caller, key, false).await
}

/// An effect with its interval.
#[derive(Serialize, ToSchema)]
pub struct EffectBody {
    /// The estimate.
    pub estimate: f64,
    /// The interval's lower end.
    pub lower: f64,
    /// Its upper end.
    pub upper: f64,
}

impl From<&Effect> for EffectBody {
    fn from(e: &Effect) -> Self {
        Self { estimate: e.estimate, lower: e.lower, upper: e.upper }
    }
}

/// A treatment against control on one metric.
#[derive(Serialize, ToSchema)]
pub struct ComparisonBody {
    /// Treatment minus control.
    pub absolute: EffectBody,
    /// The same as a share of control's mean.
    pub relative: EffectBody,
    /// The relative test's p-value.
    pub p_value: f64,
    /// After the correction across goal metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adjusted_p_value: Option<f64>,
    /// Whether the (adjusted) p-value is below alpha.
    pub significant: bool,
    /// The posterior chance the treatment is better.
    pub chance_to_win: f64,
    /// Expected loss choosing control.
    pub risk_control: f64,
    /// Expected loss choosing the treatment.
    pub risk_treatment: f64,
    /// gbstats' reason for an uninformative answer (`NO_UNITS_IN_VARIATION`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
    /// A guardrail's verdict: not_enough_data, ok, warning or danger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guardrail: Option<String>,
}

fn guardrail_name(g: finpulse_experiments::GuardrailStatus) -> String {
    use finpulse_experiments::GuardrailStatus as G;
    match g {
        G::NotEnoughData => "not_enough_data",
        G::Ok => "ok",
        G::Warning => "warning",
        G::Danger => "danger",
    }
    .into()
}

impl From<&Comparison> for ComparisonBody {
    fn from(c: &Comparison) -> Self {
        Self {
            absolute: (&c.absolute).into(),
            relative: (&c.relative).into(),
            p_value: c.p_value,
            adjusted_p_value: c.adjusted_p_value,
            significant: c.significant,
            chance_to_win: c.chance_to_win,
            risk_control: c.risk_control,
            risk_treatment: c.risk_treatment,
            guard: c.guard.map(|g| g.message().to_string()),
            guardrail: c.guardrail.map(guardrail_name),
        }
    }
}

/// One variation on one metric.
#[derive(Serialize, ToSchema)]
pub struct VariationResultBody {
    /// The variation.
    pub variation: String,
    /// Users measured.
    pub users: u64,
    /// The metric's mean.
    pub mean: f64,
    /// After CUPED (the mean without a covariate).
    pub adjusted_mean: f64,
    /// Per-user standard deviation.
    pub stddev: f64,
    /// Against control; absent for control.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<ComparisonBody>,
}

impl From<&VariationResult> for VariationResultBody {
    fn from(v: &VariationResult) -> Self {
        Self {
            variation: v.key.clone(),
            users: v.users,
            mean: v.mean,
            adjusted_mean: v.adjusted_mean,
            stddev: v.stddev,
            comparison: v.comparison.as_ref().map(ComparisonBody::from),
        }
    }
}

/// One metric's results.
#[derive(Serialize, ToSchema)]
pub struct MetricReportBody {
    /// The metric's name.
    pub metric: String,
    /// conversion, count, sum or ratio.
    pub kind: String,
    /// Whether it is a guardrail.
    pub guardrail: bool,
    /// Whether lower is better.
    pub inverse: bool,
    /// The CUPED coefficient, when a covariate was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub theta: Option<f64>,
    /// Control first.
    pub variations: Vec<VariationResultBody>,
}

impl From<&MetricReport> for MetricReportBody {
    fn from(m: &MetricReport) -> Self {
        Self {
            metric: m.metric.name.clone(),
            kind: m.metric.kind.name().into(),
            guardrail: m.metric.guardrail,
            inverse: m.metric.inverse,
            theta: m.theta,
            variations: m.variations.iter().map(VariationResultBody::from).collect(),
        }
    }
}

/// Users in one variation.
#[derive(Serialize, ToSchema)]
pub struct VariationUsersBody {
    /// The variation.
    pub variation: String,
    /// Its intended share.
    pub weight: f64,
    /// Users exposed to it.
    pub users: u64,
}

/// The sample-ratio-mismatch check.
#[derive(Serialize, ToSchema)]
pub struct SrmBody {
    /// The χ² test's p-value.
    pub p_value: f64,
    /// Whether it is below 0.001: the split is not the one intended, and the results are suspect.
    pub mismatch: bool,
}

/// An experiment's report.
#[derive(Serialize, ToSchema)]
pub struct ReportBody {
    /// The experiment.
    pub key: String,
    /// draft, running or stopped.
    pub status: String,
    /// When it ran.
    pub phases: Vec<PhaseBody>,
    /// Users per variation.
    pub variations: Vec<VariationUsersBody>,
    /// Users exposed to several variations, left out.
    pub multiple_variation_users: u64,
    /// Users exposed to a variation the experiment does not have, left out.
    pub unknown_variation_users: u64,
    /// The sample-ratio check.
    pub srm: SrmBody,
    /// Per metric.
    pub metrics: Vec<MetricReportBody>,
    /// The worst guardrail verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guardrails: Option<String>,
}

impl From<&Report> for ReportBody {
    fn from(r: &Report) -> Self {
        let time = finpulse_core::time::format_us;
        Self {
            key: r.key.clone(),
            status: r.status.name().into(),
            phases: r.phases.iter().map(|p| PhaseBody { start: time(p.start_us), stop: p.stop_us.map(time) }).collect(),
            variations: r
                .variations
                .iter()
                .map(|v| VariationUsersBody { variation: v.key.clone(), weight: v.weight, users: v.users })
                .collect(),
            multiple_variation_users: r.multiple_variation_users,
            unknown_variation_users: r.unknown_variation_users,
            srm: SrmBody { p_value: r.srm.p_value, mismatch: r.srm.mismatch },
            metrics: r.metrics.iter().map(MetricReportBody::from).collect(),
            guardrails: r.guardrails.map(guardrail_name),
        }
    }
}

/// The experiment's report: users per variation, the sample-ratio check, and per metric and
/// variation the effect against control with intervals, p-values, chance to win and risk.
#[utoipa::path(get, path = "/v1/experiments/{key}/report", tag = "experiments", params(("key" = String, Path)),
    responses((status = 200, body = ReportBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn report(
    axum::Extension(caller): axum::Extension<crate::access::Caller>,
    Tenant(state): Tenant,
    Path(key): Path<String>,
) -> Response {
    let book = match load(&state) {
        Ok(b) => b,
        Err(e) => return book_error(e),
    };
    let experiment = match book.get(&key) {
        Ok(e) => e.clone(),
        Err(e) => return book_error(e),
    };
    let _key_turn = match caller.query_turn(&state) {
        Ok(t) => t,
        Err(r) => return r.response(),
    };
    let _turn = state.query_turn().await;
    match finpulse_experiments::report(&state.views.snapshot(), &experiment).await {
        Ok(r) => Json(ReportBody::from(&r)).into_response(),
        Err(e) => book_error(e),
    }
}

/// A compiled assigner with what it was compiled from.
struct Cached {
    assigner: Arc<Assigner>,
    properties: Vec<String>,
    stamp: Stamp,
    checked: Instant,
}

/// What an assigner depends on: the experiments' index and each targeted segment's members.
type Stamp = (Option<SystemTime>, Vec<Option<SystemTime>>);

fn cache() -> &'static Mutex<HashMap<PathBuf, Arc<Cached>>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<Cached>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn forget_assigner(data_dir: &FsPath) {
    cache().lock().expect("the assigner cache's lock is never poisoned").remove(data_dir);
}

fn members_file(data_dir: &FsPath, segment: &str) -> PathBuf {
    data_dir.join("segments").join(format!("{segment}.members.csv"))
}

fn stamp(data_dir: &FsPath, book: &ExperimentBook) -> Stamp {
    let modified = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let segments = book
        .experiments()
        .values()
        .filter_map(|e| e.definition.targeting.segment.as_deref())
        .map(|s| modified(members_file(data_dir, s)))
        .collect();
    (ExperimentBook::stamp(data_dir), segments)
}

/// The assigner of `state`'s data directory, compiled again when what it depends on changed.
fn assigner(state: &AppState) -> Result<Arc<Cached>, BookError> {
    let dir = &state.data_dir;
    let held = cache().lock().expect("the assigner cache's lock is never poisoned").get(dir).cloned();
    if let Some(c) = &held
        && c.checked.elapsed().as_millis() < u128::from(ASSIGNER_RECHECK_MS)
    {
        return Ok(c.clone());
    }
    let book = ExperimentBook::load(dir)?;
    let now = stamp(dir, &book);
    let compiled = match held {
        Some(c) if c.stamp == now => {
            Arc::new(Cached { assigner: c.assigner.clone(), properties: c.properties.clone(), stamp: now, checked: Instant::now() })
        }
        _ => {
            let registry = state.views.snapshot().registry.clone();
            let segments = SegmentBook::load(dir).map_err(|e| BookError::Store(e.to_string()))?;
            let assigner = Assigner::new(&book, &registry, |name| segments.materialised_members(name).map(Members::new))?;
            Arc::new(Cached { assigner: Arc::new(assigner), properties: user_properties(&registry), stamp: now, checked: Instant::now() })
        }
    };
    cache().lock().expect("the assigner cache's lock is never poisoned").insert(dir.clone(), compiled.clone());
    Ok(compiled)
}

/// One assignment.
#[derive(Serialize, ToSchema)]
pub struct AssignmentBody {
    /// The experiment's key.
    pub experiment: String,
    /// The variation's key.
    pub variation: String,
    /// Its position (0 is control).
    pub variation_index: usize,
}

/// A user's assignments.
#[derive(Serialize, ToSchema)]
pub struct AssignBody {
    /// The user.
    pub user_id: String,
    /// Every running experiment the user is in, by key.
    pub assignments: Vec<AssignmentBody>,
}

/// The running experiments a user is in, with their variation. `user_id` is required; any
/// other parameter is a user property for targeting filters (`channel=douyin`). Nothing is
/// recorded: send an `experiment_exposure` event when the user sees the variation.
#[utoipa::path(get, path = "/v1/experiments/assign", tag = "experiments",
    params(("user_id" = String, Query, description = "The user"),
        ("attributes" = Option<String>, Query, description = "Any other parameter: a user property, e.g. channel=douyin")),
    responses((status = 200, body = AssignBody), (status = 400, body = ErrorBody)))]
pub(crate) async fn assign(Tenant(state): Tenant, Query(pairs): Query<Vec<(String, String)>>) -> Response {
    let cached = match assigner(&state) {
        Ok(c) => c,
        Err(e) => return book_error(e),
    };
    let mut user_id = None;
    let mut attributes: Vec<(&str, &str)> = Vec::new();
    for (name, value) in &pairs {
        if name == "user_id" {
            user_id = Some(value.as_str());
        } else if !cached.properties.contains(name) {
            return error(
                StatusCode::BAD_REQUEST,
                format!("{name}: not a user property (known: user_id, {})", cached.properties.join(", ")),
            );
        } else if attributes.len() == ASSIGN_ATTRIBUTES_MAX {
            return error(StatusCode::BAD_REQUEST, format!("{name}: at most {ASSIGN_ATTRIBUTES_MAX} properties"));
        } else {
            attributes.push((name.as_str(), value.as_str()));
        }
    }
    let Some(user_id) = user_id.filter(|u| !u.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "user_id: give the user to assign");
    };
    let mut out: Vec<Assignment<'_>> = Vec::with_capacity(cached.assigner.len());
    cached.assigner.assign(user_id, &attributes, &mut out);
    let assignments = out
        .iter()
        .map(|a| AssignmentBody { experiment: a.experiment.into(), variation: a.variation.into(), variation_index: a.variation_index })
        .collect();
    Json(AssignBody { user_id: user_id.into(), assignments }).into_response()
}

/// Power calculation inputs: the baseline as `conversion_rate` or as `mean` and `stddev`;
/// `users_per_variation` for the minimum detectable effect, `relative_effect` for the users
/// needed (either or both).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PowerQuery {
    /// The control's conversion rate, in (0, 1).
    pub conversion_rate: Option<f64>,
    /// The control's mean (with `stddev`).
    pub mean: Option<f64>,
    /// The per-user standard deviation (with `mean`).
    pub stddev: Option<f64>,
    /// Users in each variation.
    pub users_per_variation: Option<u64>,
    /// The relative effect to detect (0.05 for +5%).
    pub relative_effect: Option<f64>,
    /// Significance level (0.05 by default).
    pub alpha: Option<f64>,
    /// Power (0.8 by default).
    pub power: Option<f64>,
}

/// A power calculation's answer.
#[derive(Serialize, ToSchema)]
pub struct PowerBody {
    /// The smallest absolute effect detected with the power asked, given `users_per_variation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mde_absolute: Option<f64>,
    /// The same relative to the mean.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mde_relative: Option<f64>,
    /// Users per variation needed to detect `relative_effect`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users_needed_per_variation: Option<u64>,
}

/// The minimum detectable effect for a number of users, and the users needed for an effect
/// (two-sided z-test, each treatment against control, equal users).
#[utoipa::path(get, path = "/v1/experiments/power", tag = "experiments", params(PowerQuery),
    responses((status = 200, body = PowerBody), (status = 400, body = ErrorBody)))]
pub(crate) async fn power(query: Result<Query<PowerQuery>, axum::extract::rejection::QueryRejection>) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match power_answer(&q) {
        Ok(body) => Json(body).into_response(),
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

fn power_answer(q: &PowerQuery) -> Result<PowerBody, String> {
    let (alpha, power) = (q.alpha.unwrap_or(0.05), q.power.unwrap_or(0.8));
    let input = match (q.conversion_rate, q.mean, q.stddev) {
        (Some(rate), None, None) => PowerInput::conversion(rate, alpha, power).map_err(|e| e.to_string())?,
        (None, Some(mean), Some(stddev)) => PowerInput { mean, stddev, alpha, power },
        _ => return Err("conversion_rate: give conversion_rate, or mean and stddev".into()),
    };
    if q.users_per_variation.is_none() && q.relative_effect.is_none() {
        return Err("users_per_variation: give users_per_variation, relative_effect or both".into());
    }
    let mut body = PowerBody { mde_absolute: None, mde_relative: None, users_needed_per_variation: None };
    if let Some(n) = q.users_per_variation {
        let mde = minimum_detectable_effect(&input, n).map_err(|e| e.to_string())?;
        (body.mde_absolute, body.mde_relative) = (Some(mde.absolute), Some(mde.relative));
    }
    if let Some(effect) = q.relative_effect {
        body.users_needed_per_variation = Some(users_needed(&input, effect).map_err(|e| e.to_string())?);
    }
    Ok(body)
}
