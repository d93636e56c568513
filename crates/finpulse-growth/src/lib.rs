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
mod versioned;

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

pub use table::{Cell, Table};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsightKind {
    /// New users, spend, CAC, activation and LTV by channel or campaign.
    Acquisition,
    /// New users' tasks completed inside a window.
    Activation,
    /// Ordered steps inside a window.
    Funnel,
    /// Cohorts coming back period after period.
    Retention,
    /// New, returning, resurrecting, dormant and churned users per period.
    Lifecycle,
    /// A measure of an event per period.
    Trends,
}

impl InsightKind {
    /// Every kind.
    pub const ALL: [Self; 6] = [Self::Acquisition, Self::Activation, Self::Funnel, Self::Retention, Self::Lifecycle, Self::Trends];

    /// The name in commands and paths.
    pub fn name(self) -> &'static str {
        match self {
            Self::Acquisition => "acquisition",
            Self::Activation => "activation",
            Self::Funnel => "funnel",
            Self::Retention => "retention",
            Self::Lifecycle => "lifecycle",
            Self::Trends => "trends",
        }
    }

    /// The options this kind takes beside the scope (`from`, `to`, `filters`, `breakdown`).
    pub fn options(self) -> &'static [&'static str] {
        match self {
            Self::Acquisition => &["period", "tasks", "window", "ltv_horizon"],
            Self::Activation => &["tasks", "window"],
            Self::Funnel => &["steps", "window", "mode", "dropped_at", "limit"],
            Self::Retention => {
                &["cohort_event", "return_event", "period", "periods", "unbounded", "counts", "cohort", "period_index", "limit"]
            }
            Self::Lifecycle => &["event", "interval", "churn_after"],
            Self::Trends => &["event", "measure", "interval"],
        }
    }
}

impl std::str::FromStr for InsightKind {
    type Err = InsightError;

    fn from_str(text: &str) -> Result<Self, InsightError> {
        Self::ALL.into_iter().find(|k| k.name() == text).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
            InsightError::param("kind", format!("unknown insight '{text}' (known: {})", known.join(", ")))
        })
    }
}

impl std::fmt::Display for InsightKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One insight's own options, by kind.
#[derive(Debug, Clone)]
pub enum InsightRequest {
    /// See [`acquisition`].
    Acquisition(acquisition::AcquisitionInput),
    /// See [`activation`].
    Activation(activation::ActivationInput),
    /// See [`funnel`].
    Funnel(funnel::FunnelInput),
    /// See [`retention`].
    Retention(retention::RetentionInput),
    /// See [`lifecycle`].
    Lifecycle(lifecycle::LifecycleInput),
    /// See [`trends`].
    Trends(trends::TrendsInput),
}

impl InsightRequest {
    /// Its kind.
    pub fn kind(&self) -> InsightKind {
        match self {
            Self::Acquisition(_) => InsightKind::Acquisition,
            Self::Activation(_) => InsightKind::Activation,
            Self::Funnel(_) => InsightKind::Funnel,
            Self::Retention(_) => InsightKind::Retention,
            Self::Lifecycle(_) => InsightKind::Lifecycle,
            Self::Trends(_) => InsightKind::Trends,
        }
    }
}

/// An insight as asked: the scope every kind shares and the kind's own options.
#[derive(Debug, Clone)]
pub struct Insight {
    /// Date range, filters, breakdown.
    pub scope: params::ScopeInput,
    /// The kind and its options.
    pub request: InsightRequest,
}

/// Every option of every kind, flat, as front ends collect them (command-line flags, query
/// parameters, a JSON object). [`InsightOptions::into_insight`] keeps those of one kind and
/// refuses, by name, any given that the kind does not take.
#[derive(Debug, Clone, Default)]
pub struct InsightOptions {
    /// First day, `YYYY-MM-DD` (UTC), inclusive.
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive.
    pub to: Option<String>,
    /// Filters, each `PROPERTY OP VALUE` or `segment = NAME`.
    pub filters: Vec<String>,
    /// A property to break results down by.
    pub breakdown: Option<String>,
    /// funnel: steps in order.
    pub steps: Vec<String>,
    /// funnel, activation, acquisition: a window (`3600`, `30m`, `24h`, `7d`).
    pub window: Option<String>,
    /// funnel: strictness modes, comma-separated.
    pub mode: Option<String>,
    /// funnel: list the users who dropped at this step.
    pub dropped_at: Option<usize>,
    /// funnel, retention: most users listed.
    pub limit: Option<usize>,
    /// retention: what puts a user in a cohort.
    pub cohort_event: Option<String>,
    /// retention: what counts as coming back.
    pub return_event: Option<String>,
    /// retention, acquisition: day, week, month or quarter.
    pub period: Option<String>,
    /// retention: periods to show.
    pub periods: Option<usize>,
    /// retention: on-or-after retention.
    pub unbounded: Option<bool>,
    /// retention: counts instead of shares.
    pub counts: Option<bool>,
    /// retention: with `period_index`, the cohort whose users to list.
    pub cohort: Option<String>,
    /// retention: with `cohort`, the period after the cohort's.
    pub period_index: Option<usize>,
    /// trends, lifecycle: the event.
    pub event: Option<String>,
    /// trends: count, users, sum:FIELD or avg:FIELD.
    pub measure: Option<String>,
    /// trends, lifecycle: day, week, month (trends also quarter).
    pub interval: Option<String>,
    /// lifecycle: periods without activity after which a user has churned.
    pub churn_after: Option<u32>,
    /// activation, acquisition: new-user tasks.
    pub tasks: Vec<String>,
    /// acquisition: how long after signup LTV counts, in whole days.
    pub ltv_horizon: Option<String>,
}

impl InsightOptions {
    /// The names of the kind-specific options that were given.
    fn given(&self) -> Vec<&'static str> {
        let flags = [
            ("steps", !self.steps.is_empty()),
            ("window", self.window.is_some()),
            ("mode", self.mode.is_some()),
            ("dropped_at", self.dropped_at.is_some()),
            ("limit", self.limit.is_some()),
            ("cohort_event", self.cohort_event.is_some()),
            ("return_event", self.return_event.is_some()),
            ("period", self.period.is_some()),
            ("periods", self.periods.is_some()),
            ("unbounded", self.unbounded.is_some()),
            ("counts", self.counts.is_some()),
            ("cohort", self.cohort.is_some()),
            ("period_index", self.period_index.is_some()),
            ("event", self.event.is_some()),
            ("measure", self.measure.is_some()),
            ("interval", self.interval.is_some()),
            ("churn_after", self.churn_after.is_some()),
            ("tasks", !self.tasks.is_empty()),
            ("ltv_horizon", self.ltv_horizon.is_some()),
        ];
        flags.into_iter().filter(|(_, given)| *given).map(|(name, _)| name).collect()
    }

    /// The insight of `kind` these options ask for; an option the kind does not take is an
    /// error naming it.
    pub fn into_insight(self, kind: InsightKind) -> Result<Insight, InsightError> {
        if let Some(foreign) = self.given().into_iter().find(|o| !kind.options().contains(o)) {
            return Err(InsightError::param(
                foreign,
                format!("{kind} does not take {foreign} (it takes from, to, filters, breakdown, {})", kind.options().join(", ")),
            ));
        }
        let scope = params::ScopeInput { from: self.from, to: self.to, filters: self.filters, breakdown: self.breakdown };
        let request = match kind {
            InsightKind::Acquisition => InsightRequest::Acquisition(acquisition::AcquisitionInput {
                period: self.period,
                tasks: self.tasks,
                window: self.window,
                ltv_horizon: self.ltv_horizon,
            }),
            InsightKind::Activation => InsightRequest::Activation(activation::ActivationInput { tasks: self.tasks, window: self.window }),
            InsightKind::Funnel => InsightRequest::Funnel(funnel::FunnelInput {
                steps: self.steps,
                window: self.window,
                mode: self.mode.unwrap_or_default(),
                dropped_at: self.dropped_at,
                limit: self.limit,
            }),
            InsightKind::Retention => InsightRequest::Retention(retention::RetentionInput {
                cohort_event: self.cohort_event,
                return_event: self.return_event,
                period: self.period,
                periods: self.periods,
                unbounded: self.unbounded.unwrap_or(false),
                counts: self.counts.unwrap_or(false),
                cohort: self.cohort,
                period_index: self.period_index,
                limit: self.limit,
            }),
            InsightKind::Lifecycle => InsightRequest::Lifecycle(lifecycle::LifecycleInput {
                event: self.event,
                interval: self.interval,
                churn_after: self.churn_after,
            }),
            InsightKind::Trends => {
                InsightRequest::Trends(trends::TrendsInput { event: self.event, measure: self.measure, interval: self.interval })
            }
        };
        Ok(Insight { scope, request })
    }
}

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

/// Answers an insight: its options are checked against the catalogue and the saved segments
/// first, then its queries run over `view`.
pub async fn run(view: &StoreView, segments: &segments::SegmentBook, insight: &Insight) -> Result<Table, InsightError> {
    let registry = view.registry.clone();
    let cx = Catalog { registry: &registry, segments };
    let scope = &insight.scope;
    let ctx = session(view).await?;
    match &insight.request {
        InsightRequest::Funnel(i) => funnel::run(&ctx, &funnel::Funnel::parse(i, scope, &cx)?).await,
        InsightRequest::Retention(i) => retention::run(&ctx, view, &retention::Retention::parse(i, scope, &cx)?).await,
        InsightRequest::Trends(i) => trends::run(&ctx, &trends::Trends::parse(i, scope, &cx)?).await,
        InsightRequest::Lifecycle(i) => lifecycle::run(&ctx, view, &lifecycle::Lifecycle::parse(i, scope, &cx)?).await,
        InsightRequest::Activation(i) => activation::run(&ctx, view, &activation::Activation::parse(i, scope, &cx)?).await,
        InsightRequest::Acquisition(i) => acquisition::run(&ctx, view, &acquisition::Acquisition::parse(i, scope, &cx)?).await,
    }
}
