//! Customer value over the store: the purchase summaries LTV models fit on, read from the
//! store's own events; each customer's discounted CLV; and pricing offers by LTV tier and
//! churn-risk band, stored where the API serves them. The CLI (`finpulse ltv`, `finpulse
//! pricing compute`) and the API (`POST /v1/pricing/compute`) both call these.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type, TimestampMicrosecondType};
use finpulse_core::time::{MICROS_PER_DAY, day_label, day_of_us};
use finpulse_log::StoreView;
use finpulse_models::pricing::{OFFERS_FILE, OfferSet, PricingInput, PricingPolicy, assign};
use finpulse_models::registry::ModelRegistry;
use finpulse_models::summary::{Purchase, summarise};
use finpulse_models::{Customer, LtvModel, clv, fit};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Customer value failed; each error says what to change.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    /// The purchase event is not a type the store knows.
    #[error("purchase event: unknown event type '{0}' (see `finpulse schema` or GET /v1/schema)")]
    UnknownEvent(String),
    /// No purchases before the calibration end.
    #[error("no '{event}' events before {end}: nothing to fit")]
    NoPurchases {
        /// The purchase event.
        event: String,
        /// The calibration end, YYYY-MM-DD.
        end: String,
    },
    /// CLV needs spend, and the purchases carry none.
    #[error("purchase event '{0}': CLV needs purchase amounts (amount_fen) and repeat purchases; this event has none")]
    NoAmounts(String),
    /// A setting out of range.
    #[error("{0}")]
    Setting(String),
    /// Reading the store.
    #[error(transparent)]
    Query(#[from] finpulse_query::QueryError),
    /// Fitting a model.
    #[error("fitting {model}: {problem}")]
    Fit {
        /// The model.
        model: &'static str,
        /// What went wrong.
        problem: String,
    },
    /// The churn model or its scoring.
    #[error("pricing uses the active churn model: {0}")]
    Churn(String),
    /// The pricing policy.
    #[error("pricing policy: {0}")]
    Policy(String),
    /// Writing the offers.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The time unit of frequency, recency and T.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeUnit {
    /// Days.
    Day,
    /// Weeks.
    Week,
}

impl TimeUnit {
    /// Its length in microseconds.
    pub fn micros(self) -> i64 {
        match self {
            Self::Day => MICROS_PER_DAY,
            Self::Week => 7 * MICROS_PER_DAY,
        }
    }

    /// A month in this unit (30 days, or 4.345 weeks).
    pub fn per_month(self) -> f64 {
        match self {
            Self::Day => 30.0,
            Self::Week => 4.345,
        }
    }
}

/// Which of the store's events are purchases, and the calibration period they summarise.
#[derive(Clone, Debug)]
pub struct PurchaseSource {
    /// The event type that counts as a purchase (e.g. wealth_purchase, revenue).
    pub purchase_event: String,
    /// Purchases before this moment (UTC µs) are the calibration period.
    pub calibration_end_us: i64,
    /// The unit of frequency, recency and T.
    pub unit: TimeUnit,
}

/// Per-customer summaries (frequency, recency, T, mean spend) of the store's purchases before
/// the calibration end; spend is `amount_fen` where the event has it.
pub async fn customers_from_store(view: &StoreView, source: &PurchaseSource) -> Result<Vec<Customer>, ValueError> {
    let event = &source.purchase_event;
    let registry = view.registry.clone();
    let type_id = registry.type_id(event).ok_or_else(|| ValueError::UnknownEvent(event.clone()))?;
    let has_amount = registry.event_type(type_id).fields.iter().any(|f| registry.field(f.field).name == "amount_fen");
    let value = if has_amount { "amount_fen" } else { "NULL" };
    let query = format!(
        "SELECT user_id, ts, CAST({value} AS BIGINT) AS value FROM events WHERE type = {} AND user_id IS NOT NULL",
        finpulse_query::sql::text_literal(event)
    );
    let result = finpulse_query::run_sql(view, &query, finpulse_query::QueryOptions::default()).await?;
    let mut purchases = Vec::new();
    for batch in &result.batches {
        let users = finpulse_query::text_values(batch.column(0))?.into_iter().map(Option::unwrap_or_default);
        let ts = batch.column(1).as_primitive::<TimestampMicrosecondType>();
        let values = batch.column(2);
        for (i, user_id) in users.into_iter().enumerate() {
            let value =
                (values.data_type() == &DataType::Int64 && values.is_valid(i)).then(|| values.as_primitive::<Int64Type>().value(i) as f64);
            purchases.push(Purchase { user_id, ts_us: ts.value(i), value });
        }
    }
    let summary = summarise(&mut purchases, source.calibration_end_us, source.unit.micros());
    if summary.is_empty() {
        return Err(ValueError::NoPurchases { event: event.clone(), end: day_label(day_of_us(source.calibration_end_us)) });
    }
    Ok(summary)
}

/// How CLV is summed.
#[derive(Clone, Copy, Debug)]
pub struct ClvSettings {
    /// Periods to sum.
    pub periods: u32,
    /// Time units per period.
    pub period_units: f64,
    /// Discount rate per period.
    pub discount_rate: f64,
}

impl ClvSettings {
    fn check(&self) -> Result<(), ValueError> {
        if !(self.period_units > 0.0 && self.discount_rate >= 0.0 && self.periods > 0) {
            return Err(ValueError::Setting(format!(
                "CLV settings: periods ({}) and period_units ({}) must be positive and discount_rate ({}) not negative",
                self.periods, self.period_units, self.discount_rate
            )));
        }
        Ok(())
    }
}

/// Each customer's discounted CLV: BG/NBD for purchases, Gamma-Gamma for spend.
pub fn clv_by_user(customers: &[Customer], event: &str, settings: ClvSettings) -> Result<Vec<(String, f64)>, ValueError> {
    settings.check()?;
    let fit_err = |model: &'static str| move |e: finpulse_models::FitError| ValueError::Fit { model, problem: e.to_string() };
    let purchases = fit(LtvModel::Bgnbd, customers).map_err(fit_err("BG/NBD"))?;
    if !customers.iter().any(|c| c.frequency > 0.0 && c.monetary.is_some()) {
        return Err(ValueError::NoAmounts(event.to_string()));
    }
    let spend = fit(LtvModel::Gg, customers).map_err(fit_err("Gamma-Gamma"))?;
    let (periods, units, rate) = (settings.periods, settings.period_units, settings.discount_rate);
    Ok(customers.iter().map(|c| (c.id.clone(), clv(&purchases, &spend, c, periods, units, rate).unwrap_or(0.0))).collect())
}

/// What offers are computed from.
#[derive(Clone, Debug)]
pub struct PricingRequest {
    /// The purchases LTV is fitted on.
    pub source: PurchaseSource,
    /// The churn-risk moment (UTC µs); the calibration end when absent.
    pub as_of_us: Option<i64>,
    /// How CLV is summed.
    pub clv: ClvSettings,
    /// The discount matrix and its guardrails.
    pub policy: PricingPolicy,
}

/// Computes every user's offer — CLV from the store's purchases, churn risk from the active
/// churn model, the policy's matrix and guardrails — and stores the set durably as
/// `<data_dir>/pricing/offers.json`, where the API serves it.
pub async fn compute_offers(data_dir: &Path, view: &StoreView, req: &PricingRequest) -> Result<OfferSet, ValueError> {
    // A lineage run from the events and the churn models to the offers file.
    let mut inputs = finpulse_log::lineage::events_inputs(data_dir);
    inputs.push(finpulse_log::lineage::dataset(data_dir, "models"));
    let outputs = vec![finpulse_log::lineage::dataset(data_dir, OFFERS_FILE)];
    finpulse_log::lineage::around(data_dir, PRICING_JOB, inputs, outputs, offers_of(data_dir, view, req)).await
}

/// The lineage job that computes offers.
pub const PRICING_JOB: &str = "pricing";

async fn offers_of(data_dir: &Path, view: &StoreView, req: &PricingRequest) -> Result<OfferSet, ValueError> {
    req.policy.check().map_err(|e| ValueError::Policy(e.to_string()))?;
    let customers = customers_from_store(view, &req.source).await?;
    let clv = clv_by_user(&customers, &req.source.purchase_event, req.clv)?;
    let as_of_us = req.as_of_us.unwrap_or(req.source.calibration_end_us);
    let churn = |e: &dyn std::fmt::Display| ValueError::Churn(e.to_string());
    let registry = ModelRegistry::in_data_dir(data_dir).map_err(|e| churn(&e))?;
    let (entry, model) = registry.active(finpulse_churn::PURPOSE).map_err(|e| churn(&e))?;
    let spec = finpulse_churn::ChurnSpec::from_training(&entry.meta.training).map_err(|e| churn(&e))?;
    let risk = match finpulse_churn::score(view, &model, &spec, as_of_us).await {
        Ok(list) => list.rows,
        Err(finpulse_churn::ChurnError::NoUsers { .. }) => Vec::new(),
        Err(e) => return Err(churn(&e)),
    };
    let mut users: BTreeMap<String, PricingInput> =
        clv.into_iter().map(|(id, clv)| (id.clone(), PricingInput { user_id: id, clv, churn_probability: None })).collect();
    for row in risk {
        users
            .entry(row.user_id.clone())
            .or_insert(PricingInput { user_id: row.user_id, clv: 0.0, churn_probability: None })
            .churn_probability = Some(row.probability);
    }
    let inputs: Vec<PricingInput> = users.into_values().collect();
    let offers = assign(&req.policy, &inputs).map_err(|e| ValueError::Policy(e.to_string()))?;
    let computed_unix_secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let set = OfferSet {
        computed_unix_secs,
        as_of: day_label(day_of_us(as_of_us)),
        calibration_end: day_label(day_of_us(req.source.calibration_end_us)),
        churn_model_version: entry.version,
        policy: req.policy.clone(),
        offers,
    };
    let path = offers_path(data_dir);
    let io = |source| ValueError::Io { path: path.clone(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let bytes = serde_json::to_vec(&set).expect("an offer set serialises");
    finpulse_core::durable::write_file(&path, &bytes).map_err(io)?;
    Ok(set)
}

/// Where a data directory's offers are stored.
pub fn offers_path(data_dir: &Path) -> PathBuf {
    data_dir.join(OFFERS_FILE)
}

/// One cell of the discount matrix: an LTV tier and a risk band, the users in it and the offer
/// they all get.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OfferSegment {
    /// The LTV tier.
    pub ltv_tier: String,
    /// The churn-risk band.
    pub risk_band: String,
    /// Users in the cell.
    pub users: usize,
    /// Their discount, percent.
    pub discount_pct: f64,
    /// Their price, fen.
    pub price_fen: i64,
    /// Their mean CLV.
    pub mean_clv: f64,
    /// The guardrail that bound the discount, if one did.
    pub bound_by: Option<String>,
}

/// The offer set by matrix cell, in (tier, band) order.
pub fn segments(set: &OfferSet) -> Vec<OfferSegment> {
    let mut cells: BTreeMap<(&str, &str), (usize, f64, &finpulse_models::pricing::Offer)> = BTreeMap::new();
    for o in &set.offers {
        let cell = cells.entry((o.ltv_tier.as_str(), o.risk_band.as_str())).or_insert((0, 0.0, o));
        cell.0 += 1;
        cell.1 += o.clv;
    }
    cells
        .into_iter()
        .map(|((tier, band), (users, clv_total, o))| OfferSegment {
            ltv_tier: tier.to_string(),
            risk_band: band.to_string(),
            users,
            discount_pct: o.discount_pct,
            price_fen: o.price_fen,
            mean_clv: clv_total / users as f64,
            bound_by: o.bound_by.clone(),
        })
        .collect()
}
