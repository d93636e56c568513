//! Lifecycle analytics over the event store: the numbers an operations team runs its week on —
//! funnels, retention, trends, lifecycle stages, new-user activation and acquisition cost — as
//! insights, each a checked request turned into SQL over a finpulse session (using the
//! behaviour functions `window_funnel` and `retention`) and answered as a [`Table`].
//!
//! Segments (`segments`: users by behaviour and properties, saved, materialised, usable as a
//! filter in every insight) and KPI goals (`goals`: metric, target, deadline, projection,
//! status) live here too.
//!
//! Every parameter is checked before any SQL runs, and an error names it; an insight over a range
//! with no data is an empty table, not an error.

pub mod acquisition;
pub mod activation;
pub mod funnel;
pub mod goals;
pub mod lifecycle;
pub mod params;
pub mod retention;
pub mod segments;
pub mod table;
pub mod trends;
pub mod users;
pub mod value;

#[cfg(test)]
pub(crate) mod test_support {
    use finpulse_log::EventStore;
    use finpulse_sim::{SimConfig, Simulator};

    /// A new store in a new temporary directory (kept while the directory lives).
    pub(crate) fn empty_store() -> (tempfile::TempDir, EventStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = EventStore::open(dir.path(), finpulse_log::StoreOptions::default()).unwrap();
        (dir, store)
    }

    /// Appends a simulated app (`users` signing up over `days` from 2026-01-01) to `store` one day
    /// at a time; `after_day(store, day)` runs after each (to compact, or to look part-way).
    pub(crate) fn simulate(store: &mut EventStore, users: u32, days: u32, seed: u64, mut after_day: impl FnMut(&mut EventStore, u32)) {
        let registry = store.registry();
        let mut sim = Simulator::new(SimConfig { users, days, seed, start_day: 20_454 }, &registry);
        let mut day = 0;
        while let Some(events) = sim.next_day() {
            store.append_groups(&[events]).unwrap();
            day += 1;
            after_day(store, day);
        }
    }

    /// A two-worker runtime for the async insight code.
    pub(crate) fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
    }
}

pub use table::Table;

use arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;
use finpulse_log::StoreView;
use finpulse_query::QueryOptions;

/// Why an insight cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum InsightError {
    /// A parameter is wrong.
    #[error("{param}: {message}")]
    Param {
        /// The offending parameter, as the API and CLI name it.
        param: String,
        /// What is wrong with it.
        message: String,
    },
    /// The insight's query failed.
    #[error("query failed: {0}")]
    Query(String),
    /// A segment or goal file could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl InsightError {
    /// A parameter error.
    pub fn param(param: &str, message: impl Into<String>) -> Self {
        Self::Param { param: param.to_string(), message: message.into() }
    }

    /// A file error.
    pub fn file(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        Self::File { path: path.to_path_buf(), message: e.to_string() }
    }
}

impl From<datafusion::error::DataFusionError> for InsightError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Self::Query(e.to_string())
    }
}

impl From<finpulse_query::QueryError> for InsightError {
    fn from(e: finpulse_query::QueryError) -> Self {
        Self::Query(e.to_string())
    }
}

/// The insight kinds, as named by `finpulse insight KIND` and `/v1/insights/KIND`.
pub const KINDS: [&str; 6] = ["acquisition", "activation", "funnel", "retention", "lifecycle", "trends"];

/// A session over a store view, for one insight: the store's tables and the users table
/// ([`users::USERS_TABLE`]).
pub async fn session(view: &StoreView) -> Result<SessionContext, InsightError> {
    let ctx = plain_session(view).await?;
    users::register(&ctx, view).await?;
    Ok(ctx)
}

/// Fills the caches insights read (every compacted file's activity, the users table) for
/// `view`, so the first insight after a start does not pay for them.
pub async fn warm_caches(view: &StoreView) -> Result<(), InsightError> {
    session(view).await?;
    // Every file is read and kept whatever types are asked; asking for none gathers nothing.
    active_days(view, Vec::new()).await?;
    Ok(())
}

/// A session with the store's tables only.
pub(crate) async fn plain_session(view: &StoreView) -> Result<SessionContext, InsightError> {
    Ok(finpulse_query::session(view, QueryOptions::default()).await?)
}

/// [`finpulse_query::activity::user_day_last_times`] off the async workers (it reads every file).
pub(crate) async fn active_days(
    view: &StoreView,
    types: Vec<String>,
) -> Result<Vec<(String, Vec<finpulse_query::activity::ActiveDay>)>, InsightError> {
    let view = view.clone();
    tokio::task::spawn_blocking(move || finpulse_query::activity::user_day_last_times(&view, &types))
        .await
        .map_err(|e| InsightError::Query(format!("activity scan stopped: {e}")))?
        .map_err(InsightError::from)
}

/// Runs one SQL statement of an insight.
pub(crate) async fn sql(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, InsightError> {
    Ok(ctx.sql(sql).await?.collect().await?)
}

/// What requests are checked against: the event catalogue and the saved segments.
#[derive(Clone, Copy)]
pub struct Catalog<'a> {
    /// Event types and fields.
    pub registry: &'a finpulse_core::Registry,
    /// Saved segments (`segment = NAME` filters).
    pub segments: &'a segments::SegmentBook,
}

/// Answers an insight given as JSON (the API body), by kind.
pub async fn run_json(
    view: &StoreView,
    segments: &segments::SegmentBook,
    kind: &str,
    body: serde_json::Value,
) -> Result<Table, InsightError> {
    fn parse<T: serde::de::DeserializeOwned>(fields: serde_json::Map<String, serde_json::Value>) -> Result<T, InsightError> {
        serde_json::from_value(serde_json::Value::Object(fields)).map_err(|e| {
            let text = e.to_string();
            let param = text.split('`').nth(1).unwrap_or("body").to_string();
            InsightError::Param { param, message: text }
        })
    }
    let unknown = |kind: &str| InsightError::param("kind", format!("unknown insight '{kind}' (known: {})", KINDS.join(", ")));
    if !KINDS.contains(&kind) {
        return Err(unknown(kind));
    }
    let serde_json::Value::Object(mut body) = body else { return Err(InsightError::param("body", "must be a JSON object of options")) };
    let scope = params::ScopeInput::take_from(&mut body)?;
    let registry = view.registry.clone();
    let cx = Catalog { registry: &registry, segments };
    let ctx = session(view).await?;
    match kind {
        "funnel" => funnel::run(&ctx, &funnel::Funnel::parse(&parse(body)?, &scope, &cx)?).await,
        "retention" => retention::run(&ctx, view, &retention::Retention::parse(&parse(body)?, &scope, &cx)?).await,
        "trends" => trends::run(&ctx, &trends::Trends::parse(&parse(body)?, &scope, &cx)?).await,
        "lifecycle" => lifecycle::run(&ctx, view, &lifecycle::Lifecycle::parse(&parse(body)?, &scope, &cx)?).await,
        "activation" => activation::run(&ctx, view, &activation::Activation::parse(&parse(body)?, &scope, &cx)?).await,
        "acquisition" => acquisition::run(&ctx, view, &acquisition::Acquisition::parse(&parse(body)?, &scope, &cx)?).await,
        other => Err(unknown(other)),
    }
}
