//! The JSON the API answers with, kept apart from the engine's types: renaming a field of
//! `finpulse_risk::engine::Decision` or `finpulse_risk::cases::Case` changes the conversion
//! below, never the public answer. `tests/contract.rs` pins these shapes.

use finpulse_core::Registry;
use finpulse_core::mask::{Exposure, FieldExposure, field_exposure};
use finpulse_core::versions::Activation;
use finpulse_risk::cases::{Alert, Case, Change, Resolution};
use finpulse_risk::engine::{Decision, Reason};
use finpulse_risk::live::StoredReason;
use finpulse_state::view::UserView;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Why a decision came out as it did.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReasonBody {
    /// An allow or block list matched.
    List {
        /// Which list (e.g. `block_devices`).
        list: String,
    },
    /// A rule's condition held.
    Rule {
        /// The rule.
        name: String,
        /// Its score.
        score: f64,
        /// Its action: allow, review or block.
        action: String,
    },
    /// A feature pushed the model's score up.
    Model {
        /// The feature.
        feature: String,
        /// Its value (absent when missing).
        value: Option<f64>,
        /// Its contribution to the log-odds.
        contribution: f64,
    },
}

impl From<StoredReason> for ReasonBody {
    fn from(r: StoredReason) -> Self {
        match r {
            StoredReason::List { list } => Self::List { list },
            StoredReason::Rule { name, score, action } => Self::Rule { name, score, action },
            StoredReason::Model { feature, value, contribution } => Self::Model { feature, value, contribution },
        }
    }
}

/// A reason made now reads as it will be stored, so a retry's answer equals the first one.
impl From<&Reason> for ReasonBody {
    fn from(r: &Reason) -> Self {
        Self::from(StoredReason::from(r))
    }
}

/// A decision on one transaction.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct DecisionBody {
    /// The transaction.
    pub event_id: String,
    /// Its user.
    pub user_id: Option<String>,
    /// allow, review or block.
    pub action: String,
    /// In [0, 1]: the highest of the model's score and the scores of the rules that hit.
    pub score: Option<f64>,
    /// Lists, rules and model features behind it.
    pub reasons: Vec<ReasonBody>,
    /// Shadow rules that would have hit (recorded, not acted on).
    pub shadow_hits: Vec<String>,
    /// The ruleset's name (null for a decision read back from the log, which does not keep it).
    pub ruleset: Option<String>,
    /// The ruleset's version.
    pub ruleset_version: Option<u32>,
    /// The model's registry version, if a model scored it.
    pub model_version: Option<u32>,
    /// The model's own probability (null when no model scored it, or read back from the log).
    pub model_score: Option<f64>,
    /// Time from the request's arrival to the decision, microseconds.
    pub elapsed_us: Option<f64>,
    /// Set when the decision is the fail-open/closed fallback: why.
    pub fallback: Option<String>,
    /// `new`, or why this decision is not a new record (a retried event id).
    pub recorded: String,
}

impl DecisionBody {
    /// A decision made now, with what became of its record.
    pub fn new(d: &Decision, recorded: impl Into<String>) -> Self {
        Self {
            event_id: d.event_id.clone(),
            user_id: d.user_id.clone(),
            action: d.action.name().to_string(),
            score: Some(d.score),
            reasons: d.reasons.iter().map(ReasonBody::from).collect(),
            shadow_hits: d.shadow_hits.clone(),
            ruleset: Some(d.ruleset.clone()),
            ruleset_version: Some(d.ruleset_version),
            model_version: d.model_version,
            model_score: d.model_score,
            elapsed_us: Some(d.elapsed_us),
            fallback: d.fallback.clone(),
            recorded: recorded.into(),
        }
    }
}

/// An alert: a transaction decided review or block.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct AlertBody {
    /// The transaction.
    pub event_id: String,
    /// review or block.
    pub action: String,
    /// The decision's score.
    pub score: f64,
    /// When the transaction happened (UTC µs).
    pub ts_us: i64,
}

/// One change to a case.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct ChangeBody {
    /// assign, comment or resolve.
    pub action: String,
    /// Who.
    pub by: String,
    /// When (UTC µs).
    pub at_us: i64,
    /// The assignee, comment or resolution note.
    pub detail: Option<String>,
}

/// A case's verdict.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct ResolutionBody {
    /// Whether the transactions were fraud.
    pub fraud: bool,
    /// Who decided.
    pub by: String,
    /// When (UTC µs).
    pub at_us: i64,
}

/// A user's risk case.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct CaseBody {
    /// `case-N`, numbered in log order.
    pub case_id: String,
    /// The user.
    pub user_id: String,
    /// open or resolved.
    pub status: String,
    /// When its first alert happened (UTC µs).
    pub opened_us: i64,
    /// Its alerts, oldest first.
    pub alerts: Vec<AlertBody>,
    /// The analyst it is assigned to.
    pub assignee: Option<String>,
    /// Every change, oldest first.
    pub history: Vec<ChangeBody>,
    /// The verdict, once resolved.
    pub resolution: Option<ResolutionBody>,
}

impl From<&Case> for CaseBody {
    fn from(c: &Case) -> Self {
        let alert =
            |a: &Alert| AlertBody { event_id: a.event_id.clone(), action: a.action.name().to_string(), score: a.score, ts_us: a.ts_us };
        let change =
            |h: &Change| ChangeBody { action: h.action.name().to_string(), by: h.by.clone(), at_us: h.at_us, detail: h.detail.clone() };
        let resolution = |r: &Resolution| ResolutionBody { fraud: r.fraud, by: r.by.clone(), at_us: r.at_us };
        Self {
            case_id: c.case_id.clone(),
            user_id: c.user_id.clone(),
            status: c.status.name().to_string(),
            opened_us: c.opened_us,
            alerts: c.alerts.iter().map(alert).collect(),
            assignee: c.assignee.clone(),
            history: c.history.iter().map(change).collect(),
            resolution: c.resolution.as_ref().map(resolution),
        }
    }
}

/// A page of cases.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct CasesBody {
    /// Newest first.
    pub cases: Vec<CaseBody>,
}

/// An insight's options, as a JSON object (POST) or query parameters (GET). Each kind takes the
/// scope (`from`, `to`, `filters`, `breakdown`) and its own options; an option of another kind
/// is refused by name.
#[derive(Deserialize, ToSchema, utoipa::IntoParams, Debug, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InsightBody {
    /// First day, `YYYY-MM-DD` (UTC), inclusive.
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive.
    pub to: Option<String>,
    /// Filters, each `PROPERTY OP VALUE` (`user.channel = douyin`, `amount_fen >= 100000`) or
    /// `segment = NAME`.
    pub filters: Option<Vec<String>>,
    /// A property to break results down by (`user.channel`, an event field).
    pub breakdown: Option<String>,
    /// funnel: steps in order, each `TYPE` or `TYPE:FIELD=VALUE`.
    pub steps: Option<Vec<String>>,
    /// funnel, activation, acquisition: a window (`3600`, `30m`, `24h`, `7d`).
    pub window: Option<String>,
    /// funnel: strict_order, strict_deduplication, strict_increase, strict_once, allow_reentry
    /// (comma-separated).
    pub mode: Option<String>,
    /// funnel: list the users who reached the step before this one (1-based) but not this one.
    pub dropped_at: Option<usize>,
    /// funnel, retention: most users listed.
    pub limit: Option<usize>,
    /// retention: what puts a user in a cohort (default `user_signup`).
    pub cohort_event: Option<String>,
    /// retention: what counts as coming back (default `any`).
    pub return_event: Option<String>,
    /// retention, acquisition: day, week, month or quarter.
    pub period: Option<String>,
    /// retention: periods to show.
    pub periods: Option<usize>,
    /// retention: on-or-after retention.
    pub unbounded: Option<bool>,
    /// retention: counts instead of shares.
    pub counts: Option<bool>,
    /// retention: with `period_index`, list the users behind this cohort's cell (its first day).
    pub cohort: Option<String>,
    /// retention: with `cohort`, the period after the cohort's.
    pub period_index: Option<usize>,
    /// trends, lifecycle: the event (`TYPE`, `TYPE:FIELD=VALUE` or `any`).
    pub event: Option<String>,
    /// trends: count, users, sum:FIELD or avg:FIELD.
    pub measure: Option<String>,
    /// trends, lifecycle: day, week, month (trends also quarter).
    pub interval: Option<String>,
    /// lifecycle: periods without activity after which a user has churned.
    pub churn_after: Option<u32>,
    /// activation, acquisition: new-user tasks, each `TYPE` or `TYPE:FIELD=VALUE`.
    pub tasks: Option<Vec<String>>,
    /// acquisition: how long after signup LTV counts, in whole days (default `365d`).
    pub ltv_horizon: Option<String>,
}

impl InsightBody {
    /// The options from query parameters: lists comma-separated (`steps`, `tasks`), `filters`
    /// repeatable, numbers and true/false checked here with the parameter named.
    pub fn from_query(pairs: Vec<(String, String)>) -> Result<Self, String> {
        fn number<T: std::str::FromStr>(key: &str, v: &str) -> Result<Option<T>, String> {
            v.trim().parse().map(Some).map_err(|_| format!("{key}: '{v}' is not a whole number"))
        }
        fn flag(key: &str, v: &str) -> Result<Option<bool>, String> {
            v.trim().parse().map(Some).map_err(|_| format!("{key}: '{v}' is not true or false"))
        }
        let list = |v: &str| Some(v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect());
        let mut b = Self::default();
        for (key, v) in pairs {
            let text = Some(v.clone());
            match key.as_str() {
                "from" => b.from = text,
                "to" => b.to = text,
                "filters" | "filter" => b.filters.get_or_insert_with(Vec::new).push(v),
                "breakdown" => b.breakdown = text,
                "steps" => b.steps = list(&v),
                "window" => b.window = text,
                "mode" => b.mode = text,
                "dropped_at" => b.dropped_at = number(&key, &v)?,
                "limit" => b.limit = number(&key, &v)?,
                "cohort_event" => b.cohort_event = text,
                "return_event" => b.return_event = text,
                "period" => b.period = text,
                "periods" => b.periods = number(&key, &v)?,
                "unbounded" => b.unbounded = flag(&key, &v)?,
                "counts" => b.counts = flag(&key, &v)?,
                "cohort" => b.cohort = text,
                "period_index" => b.period_index = number(&key, &v)?,
                "event" => b.event = text,
                "measure" => b.measure = text,
                "interval" => b.interval = text,
                "churn_after" => b.churn_after = number(&key, &v)?,
                "tasks" => b.tasks = list(&v),
                "ltv_horizon" => b.ltv_horizon = text,
                other => return Err(format!("{other}: not an insight option")),
            }
        }
        Ok(b)
    }
}

impl From<InsightBody> for finpulse_growth::InsightOptions {
    fn from(b: InsightBody) -> Self {
        Self {
            from: b.from,
            to: b.to,
            filters: b.filters.unwrap_or_default(),
            breakdown: b.breakdown,
            steps: b.steps.unwrap_or_default(),
            window: b.window,
            mode: b.mode,
            dropped_at: b.dropped_at,
            limit: b.limit,
            cohort_event: b.cohort_event,
            return_event: b.return_event,
            period: b.period,
            periods: b.periods,
            unbounded: b.unbounded,
            counts: b.counts,
            cohort: b.cohort,
            period_index: b.period_index,
            event: b.event,
            measure: b.measure,
            interval: b.interval,
            churn_after: b.churn_after,
            tasks: b.tasks.unwrap_or_default(),
            ltv_horizon: b.ltv_horizon,
        }
    }
}

/// An insight's or the goals' answer: named columns and rows. Numbers are JSON numbers (whole
/// ones exact), days are `YYYY-MM-DD`, times RFC 3339 (UTC), and a missing value is `null`.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct TableBody {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, one value per column.
    #[schema(value_type = Vec<Vec<Object>>)]
    pub rows: Vec<Vec<serde_json::Value>>,
    /// What a reader needs to know to trust the numbers (the models behind predicted columns,
    /// or why they are empty); absent when there is nothing to say.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl From<&finpulse_growth::Table> for TableBody {
    fn from(t: &finpulse_growth::Table) -> Self {
        use finpulse_growth::Cell;
        let value = |c: &Cell| match c {
            Cell::Null => serde_json::Value::Null,
            Cell::Int(v) => serde_json::Value::from(*v),
            Cell::Float(v) => serde_json::Number::from_f64(*v).map_or(serde_json::Value::Null, serde_json::Value::Number),
            Cell::Bool(v) => serde_json::Value::Bool(*v),
            Cell::Text(_) | Cell::Day(_) | Cell::Time(_) => serde_json::Value::String(c.display()),
        };
        Self { columns: t.columns.clone(), rows: t.rows.iter().map(|r| r.iter().map(value).collect()).collect(), notes: t.notes.clone() }
    }
}

/// A credit bureau's latest report on a user.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct CreditBody {
    /// The bureau.
    pub bureau: String,
    /// Its score; null when masked (a C2 level-3 field read without a purpose).
    pub score: Option<i64>,
    /// Delinquencies in the last 24 months.
    pub delinquencies_24m: Option<i64>,
    /// Inquiries in the last 6 months.
    pub inquiries_6m: Option<i64>,
    /// When it was reported (UTC microseconds).
    pub ts_us: i64,
}

/// Recency, frequency and monetary value of a user's transactions.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct RfmBody {
    /// Days since the latest money movement; absent without any.
    pub recency_days: Option<f64>,
    /// Transactions in the last 30 days.
    pub frequency_30d: u32,
    /// Their total, minor units.
    pub monetary_fen_30d: i64,
}

/// Recent behaviour, as of the live state's clock.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct BehaviourBody {
    /// Transactions in the last day.
    pub tx_count_1d: u32,
    /// In the last 7 days.
    pub tx_count_7d: u32,
    /// In the last 30 days.
    pub tx_count_30d: u32,
    /// Average amount over 30 days, minor units.
    pub avg_amount_fen_30d: Option<f64>,
    /// Transactions ever.
    pub tx_count_total: u64,
    /// Transactions labelled fraud so far.
    pub known_frauds: u32,
    /// Devices used.
    pub devices_seen: usize,
    /// Terminals used.
    pub terminals_seen: usize,
}

/// A user's live profile (`GET /v1/users/{id}`).
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct UserBody {
    /// The user id.
    pub user_id: String,
    /// Signup time (UTC microseconds).
    pub signup_us: Option<i64>,
    /// Acquisition channel.
    pub channel: Option<String>,
    /// Acquisition campaign.
    pub campaign: Option<String>,
    /// City at signup.
    pub city: Option<String>,
    /// Operating system at signup.
    pub os: Option<String>,
    /// Real-name verification passed.
    pub identity_verified: bool,
    /// Bank cards bound.
    pub cards_bound: u32,
    /// First event time (UTC microseconds).
    pub first_seen_us: i64,
    /// Last event time (UTC microseconds).
    pub last_seen_us: i64,
    /// Events by type.
    pub counters: BTreeMap<String, u64>,
    /// Deposits less withdrawals and transfers out, minor units.
    pub balance_fen: i64,
    /// Holdings by wealth product (purchases less redemptions), minor units.
    pub holdings_fen: BTreeMap<String, i64>,
    /// Approved loans and their principal not yet repaid, minor units.
    pub loans_outstanding_fen: BTreeMap<String, i64>,
    /// Loans with an overdue instalment not yet repaid, with the overdue amount.
    pub overdue_fen: BTreeMap<String, i64>,
    /// The latest credit report.
    pub credit: Option<CreditBody>,
    /// New-user tasks completed.
    pub tasks_completed: Vec<String>,
    /// Product types bought, by count.
    pub product_types: BTreeMap<String, u32>,
    /// Revenue the user generated, by stream, minor units.
    pub revenue_fen: BTreeMap<String, i64>,
    /// Total length of app sessions, seconds.
    pub session_secs_total: i64,
    /// Complaints filed.
    pub complaints: u32,
    /// Time of the latest money movement or payment (UTC microseconds).
    pub last_money_us: Option<i64>,
    /// new, active, dormant or churned.
    pub lifecycle_stage: String,
    /// Wealth holdings in total, minor units.
    pub aum_fen: i64,
    /// Recency, frequency, monetary value.
    pub rfm: RfmBody,
    /// Recent behaviour.
    pub behaviour: BehaviourBody,
    /// Derived tags (e.g. `high_value`).
    pub tags: Vec<String>,
    /// The live state's clock the profile was read at (UTC microseconds).
    pub as_of_us: i64,
}

impl UserBody {
    /// The profile as a reader with `exposure` may see it: each field taken from an event field
    /// follows that field's data class in the schema, as SQL does (a masked text in its style, a
    /// masked number null; a C3 field never shown).
    pub fn exposed(mut self, registry: &Registry, exposure: Exposure) -> Self {
        let shown = |name: &str| {
            registry.field_id(name).map_or(FieldExposure::Shown, |id| {
                let f = registry.field(id);
                field_exposure(f.class, f.mask, exposure)
            })
        };
        let text = |value: &mut Option<String>, name: &str| match shown(name) {
            FieldExposure::Shown => {}
            FieldExposure::Masked(style) => *value = value.as_deref().map(|v| style.apply(v)),
            FieldExposure::Withheld => *value = None,
        };
        let number = |value: &mut Option<i64>, name: &str| {
            if shown(name) != FieldExposure::Shown {
                *value = None;
            }
        };
        use finpulse_state::view::source;
        text(&mut self.channel, source::CHANNEL);
        text(&mut self.campaign, source::CAMPAIGN);
        text(&mut self.city, source::CITY);
        text(&mut self.os, source::OS);
        if let Some(c) = &mut self.credit {
            let mut bureau = Some(std::mem::take(&mut c.bureau));
            text(&mut bureau, source::CREDIT_BUREAU);
            c.bureau = bureau.unwrap_or_default();
            number(&mut c.score, source::CREDIT_SCORE);
            number(&mut c.delinquencies_24m, source::CREDIT_DELINQUENCIES_24M);
            number(&mut c.inquiries_6m, source::CREDIT_INQUIRIES_6M);
        }
        self
    }
}

impl From<&UserView<'_>> for UserBody {
    fn from(v: &UserView<'_>) -> Self {
        let p = v.profile;
        let (r, b) = (&v.rfm, &v.behaviour);
        Self {
            user_id: p.user_id.clone(),
            signup_us: p.signup_us,
            channel: p.channel.clone(),
            campaign: p.campaign.clone(),
            city: p.city.clone(),
            os: p.os.clone(),
            identity_verified: p.identity_verified,
            cards_bound: p.cards_bound,
            first_seen_us: p.first_seen_us,
            last_seen_us: p.last_seen_us,
            counters: p.counters.clone(),
            balance_fen: p.balance_fen,
            holdings_fen: p.holdings_fen.clone(),
            loans_outstanding_fen: p.loans_outstanding_fen.clone(),
            overdue_fen: p.overdue_fen.clone(),
            credit: p.credit.as_ref().map(|c| CreditBody {
                bureau: c.bureau.clone(),
                score: Some(c.score),
                delinquencies_24m: c.delinquencies_24m,
                inquiries_6m: c.inquiries_6m,
                ts_us: c.ts_us,
            }),
            tasks_completed: p.tasks_completed.clone(),
            product_types: p.product_types.clone(),
            revenue_fen: p.revenue_fen.clone(),
            session_secs_total: p.session_secs_total,
            complaints: p.complaints,
            last_money_us: p.last_money_us,
            lifecycle_stage: v.lifecycle_stage.to_string(),
            aum_fen: v.aum_fen,
            rfm: RfmBody { recency_days: r.recency_days, frequency_30d: r.frequency_30d, monetary_fen_30d: r.monetary_fen_30d },
            behaviour: BehaviourBody {
                tx_count_1d: b.tx_count_1d,
                tx_count_7d: b.tx_count_7d,
                tx_count_30d: b.tx_count_30d,
                avg_amount_fen_30d: b.avg_amount_fen_30d,
                tx_count_total: b.tx_count_total,
                known_frauds: b.known_frauds,
                devices_seen: b.devices_seen,
                terminals_seen: b.terminals_seen,
            },
            tags: v.tags.iter().map(|t| t.to_string()).collect(),
            as_of_us: v.as_of_us,
        }
    }
}

/// One registered model version (`GET /v1/models`).
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct ModelVersionBody {
    /// What the model is for (`churn`, `fraud`, `credit`, …).
    pub purpose: String,
    /// 1, 2, … per purpose.
    pub version: u32,
    /// When it was registered, seconds since the Unix epoch.
    pub created_unix_secs: u64,
    /// Who registered it.
    pub created_by: String,
    /// `gbdt` or `logistic`.
    pub algo: String,
    /// The model file, inside the data directory's model registry.
    pub file: String,
    /// What it was trained on: data range, as-of dates, label definition.
    #[schema(value_type = Object)]
    pub training: serde_json::Value,
    /// Feature names, in model order.
    pub features: Vec<String>,
    /// Training settings.
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// Quality measured at training time.
    #[schema(value_type = Object)]
    pub metrics: serde_json::Value,
}

impl From<&finpulse_models::registry::ModelEntry> for ModelVersionBody {
    fn from(e: &finpulse_models::registry::ModelEntry) -> Self {
        Self {
            purpose: e.name.clone(),
            version: e.version,
            created_unix_secs: e.created_unix_secs,
            created_by: e.created_by.clone(),
            algo: e.meta.algo.clone(),
            file: e.file.clone(),
            training: e.meta.training.clone(),
            features: e.meta.features.clone(),
            params: e.meta.params.clone(),
            metrics: e.meta.metrics.clone(),
        }
    }
}

/// A change of the active model of a purpose.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct ModelActivationBody {
    /// The purpose.
    pub purpose: String,
    /// The version made active.
    pub version: u32,
    /// The version active before.
    pub previous: Option<u32>,
    /// publish, promote or rollback.
    pub action: String,
    /// Who did it.
    pub by: String,
    /// When, seconds since the Unix epoch.
    pub at_unix_secs: u64,
}

impl From<&Activation> for ModelActivationBody {
    fn from(a: &Activation) -> Self {
        Self {
            purpose: a.name.clone(),
            version: a.version,
            previous: a.previous,
            action: a.action.to_string(),
            by: a.by.clone(),
            at_unix_secs: a.at_unix_secs,
        }
    }
}

/// A change of what is active under a name: a ruleset, a segment, a goal.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct ActivationBody {
    /// The name.
    pub name: String,
    /// The version made active (for a removal: the version that was active).
    pub version: u32,
    /// The version active before.
    pub previous: Option<u32>,
    /// publish, promote, rollback or remove.
    pub action: String,
    /// Who did it.
    pub by: String,
    /// When, seconds since the Unix epoch.
    pub at_unix_secs: u64,
}

impl From<&Activation> for ActivationBody {
    fn from(a: &Activation) -> Self {
        Self {
            name: a.name.clone(),
            version: a.version,
            previous: a.previous,
            action: a.action.to_string(),
            by: a.by.clone(),
            at_unix_secs: a.at_unix_secs,
        }
    }
}

/// What a ruleset would have done over a period, rule by rule and day by day.
#[derive(Serialize, ToSchema)]
pub struct BacktestBody {
    /// The ruleset's name.
    pub ruleset: String,
    /// The fraud model version it ran with, if any.
    pub model_version: Option<u32>,
    /// Transactions decided.
    pub transactions: u64,
    /// Of which labelled fraud (by the labels known now).
    pub frauds: u64,
    /// Flagged (review or block) and fraud.
    pub true_positives: u64,
    /// Flagged and not fraud.
    pub false_positives: u64,
    /// Fraud not flagged.
    pub false_negatives: u64,
    /// Neither.
    pub true_negatives: u64,
    /// Of the flagged, the share that was fraud.
    pub precision: Option<f64>,
    /// Of the fraud, the share flagged.
    pub recall: Option<f64>,
    /// Each rule's hits, shadow rules included.
    pub rules: Vec<BacktestRuleBody>,
    /// Alert volume per day.
    pub days: Vec<BacktestDayBody>,
}

/// One rule's part in a backtest.
#[derive(Serialize, ToSchema)]
pub struct BacktestRuleBody {
    /// The rule.
    pub name: String,
    /// Whether it only records hits.
    pub shadow: bool,
    /// Transactions it matched.
    pub hits: u64,
    /// Of which fraud.
    pub fraud_hits: u64,
    /// fraud_hits / hits.
    pub precision: Option<f64>,
}

/// One day of a backtest.
#[derive(Serialize, ToSchema)]
pub struct BacktestDayBody {
    /// The day, YYYY-MM-DD.
    pub day: String,
    /// Transactions decided.
    pub transactions: u64,
    /// Sent to review.
    pub reviews: u64,
    /// Blocked.
    pub blocks: u64,
}

impl From<&finpulse_risk::backtest::Backtest> for BacktestBody {
    fn from(b: &finpulse_risk::backtest::Backtest) -> Self {
        Self {
            ruleset: b.ruleset.clone(),
            model_version: b.model_version,
            transactions: b.transactions,
            frauds: b.frauds,
            true_positives: b.confusion.true_positives,
            false_positives: b.confusion.false_positives,
            false_negatives: b.confusion.false_negatives,
            true_negatives: b.confusion.true_negatives,
            precision: b.precision,
            recall: b.recall,
            rules: b
                .rules
                .iter()
                .map(|r| BacktestRuleBody {
                    name: r.name.clone(),
                    shadow: r.shadow,
                    hits: r.hits,
                    fraud_hits: r.fraud_hits,
                    precision: r.precision,
                })
                .collect(),
            days: b
                .days
                .iter()
                .map(|d| BacktestDayBody { day: d.day.clone(), transactions: d.transactions, reviews: d.reviews, blocks: d.blocks })
                .collect(),
        }
    }
}
