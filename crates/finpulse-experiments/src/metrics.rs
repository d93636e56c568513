//! From events to the sufficient statistics the analysis takes, by SQL over the store.
//!
//! Who is in: the users with an `experiment_exposure` of the experiment; each one's variation
//! is the one their exposures name, and their first exposure starts their windows. A user whose
//! exposures name two variations is left out (counted in [`Exposures::multiple_variations`]), as
//! GrowthBook does, and so is one whose variation is not the experiment's.
//!
//! Per user, a metric's value is taken over `[first exposure, first exposure + window_days)`:
//! 1 or 0 for a conversion, the number of events for a count, the sum of a field for a sum;
//! a ratio takes a numerator and a denominator (each a sum or a count) per user. With
//! `pre_window_days`, the same value over the days before the first exposure is the covariate
//! for CUPED. Per variation, one query sums n, Σx, Σx², and the covariate's and cross sums.
//! Values reach SQL only quoted ([`finpulse_query::sql`]).

use crate::BookError;
use crate::definition::{ExperimentDef, MetricDef, MetricKind};
use crate::statistics::{Moments, Proportion, Ratio, RegressionAdjusted, SampleMean, Statistic};
use datafusion::prelude::SessionContext;
use finpulse_growth::table::{self, Cell};
use finpulse_query::sql::{ident, text_literal};

/// The event type exposures are recorded as.
pub const EXPOSURE_EVENT: &str = "experiment_exposure";

/// Who was exposed, per variation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposures {
    /// Users per variation, in the definition's order.
    pub users: Vec<u64>,
    /// Users whose exposures name more than one variation (left out).
    pub multiple_variations: u64,
    /// Users exposed to a variation the experiment does not have (left out).
    pub unknown_variation: u64,
}

/// The exposed users with one variation each: `x` (every exposed user) and `u` (those kept),
/// as CTEs.
fn exposed_ctes(key: &str) -> String {
    format!(
        "x AS (SELECT user_id, min(ts) AS first_ts, min(variation) AS variation, count(DISTINCT variation) AS variations \
         FROM {EXPOSURE_EVENT} WHERE experiment_key = {} AND user_id IS NOT NULL GROUP BY user_id), \
         u AS (SELECT user_id, first_ts, variation FROM x WHERE variations = 1)",
        text_literal(key)
    )
}

fn query_error(e: impl std::fmt::Display) -> BookError {
    BookError::Query(e.to_string())
}

async fn rows(ctx: &SessionContext, sql: &str) -> Result<Vec<Vec<Cell>>, BookError> {
    let batches = ctx.sql(sql).await.map_err(query_error)?.collect().await.map_err(query_error)?;
    table::rows(&batches).map_err(query_error)
}

/// Counts the exposed users of `def` per variation.
pub async fn exposures(ctx: &SessionContext, def: &ExperimentDef) -> Result<Exposures, BookError> {
    let sql = format!("WITH {} SELECT CASE WHEN variations = 1 THEN variation END, count(*) FROM x GROUP BY 1", exposed_ctes(&def.key));
    let mut out = Exposures { users: vec![0; def.variations.len()], multiple_variations: 0, unknown_variation: 0 };
    for row in rows(ctx, &sql).await? {
        let n = count(&row[1])?;
        match row[0].as_text() {
            None => out.multiple_variations += n,
            Some(v) => match def.variations.iter().position(|d| d.key == v) {
                Some(i) => out.users[i] += n,
                None => out.unknown_variation += n,
            },
        }
    }
    Ok(out)
}

fn count(cell: &Cell) -> Result<u64, BookError> {
    match cell {
        Cell::Null => Ok(0),
        c => c.as_int().and_then(|n| u64::try_from(n).ok()).ok_or_else(|| BookError::Query(format!("not a count: {}", c.display()))),
    }
}

fn float(cell: &Cell) -> Result<f64, BookError> {
    match cell {
        Cell::Null => Ok(0.0),
        c => c.as_float().ok_or_else(|| BookError::Query(format!("not a number: {}", c.display()))),
    }
}

/// One per-user aggregate of one event type as a CTE named `name`: `post` over the window
/// after the first exposure, `pre` over the covariate window before it (0 without one).
fn component_cte(name: &str, event: &str, field: Option<&str>, conversion: bool, window_days: u32, pre_days: Option<u32>) -> String {
    let value = match field {
        Some(f) => format!("CAST(e.{} AS DOUBLE)", ident(f)),
        None => "1.0".to_string(),
    };
    let aggregate = if conversion { "max" } else { "sum" };
    let part = |condition: &str| format!("coalesce({aggregate}(CASE WHEN {condition} THEN {value} END), 0.0)");
    let from = match pre_days {
        Some(d) => format!("u.first_ts - INTERVAL '{d} days'"),
        None => "u.first_ts".to_string(),
    };
    let pre = if pre_days.is_some() { part("e.ts < u.first_ts") } else { "0.0".to_string() };
    format!(
        "{name} AS (SELECT u.user_id, {post} AS post, {pre} AS pre FROM u LEFT JOIN {table} e \
         ON e.user_id = u.user_id AND e.ts >= {from} AND e.ts < u.first_ts + INTERVAL '{window_days} days' GROUP BY u.user_id)",
        post = part("e.ts >= u.first_ts"),
        table = ident(event),
    )
}

/// The query summing a metric per variation: variation, n, Σpost, Σpost², Σpre, Σpre²,
/// Σpost·pre, Σden, Σden², Σpost·den.
pub fn metric_sql(key: &str, metric: &MetricDef) -> String {
    let conversion = metric.kind == MetricKind::Conversion;
    let mut ctes = vec![
        exposed_ctes(key),
        component_cte("c0", &metric.event, metric.field.as_deref(), conversion, metric.window_days, metric.pre_window_days),
    ];
    let (join, denominator) = match &metric.denominator {
        Some(d) => {
            ctes.push(component_cte("c1", &d.event, d.field.as_deref(), false, metric.window_days, None));
            (
                " JOIN c1 ON c1.user_id = u.user_id",
                "sum(c1.post) AS den, sum(c1.post * c1.post) AS den2, sum(c0.post * c1.post) AS post_den".to_string(),
            )
        }
        None => ("", "0.0 AS den, 0.0 AS den2, 0.0 AS post_den".to_string()),
    };
    format!(
        "WITH {} SELECT u.variation, count(*) AS n, sum(c0.post) AS post, sum(c0.post * c0.post) AS post2, sum(c0.pre) AS pre, \
         sum(c0.pre * c0.pre) AS pre2, sum(c0.post * c0.pre) AS post_pre, {denominator} \
         FROM u JOIN c0 ON c0.user_id = u.user_id{join} GROUP BY u.variation",
        ctes.join(", ")
    )
}

/// Per-variation sums as the query gives them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sums {
    n: u64,
    post: f64,
    post_squares: f64,
    pre: f64,
    pre_squares: f64,
    post_pre: f64,
    den: f64,
    den_squares: f64,
    post_den: f64,
}

/// The sufficient statistics of `metric` per variation of `def`, in the definition's order; a
/// variation nobody was exposed to has n = 0.
pub async fn statistics(ctx: &SessionContext, def: &ExperimentDef, metric: &MetricDef) -> Result<Vec<Statistic>, BookError> {
    let mut sums = vec![Sums::default(); def.variations.len()];
    for row in rows(ctx, &metric_sql(&def.key, metric)).await? {
        let Some(i) = row[0].as_text().and_then(|v| def.variations.iter().position(|d| d.key == v)) else { continue };
        let f = |j: usize| float(&row[j]);
        sums[i] = Sums {
            n: count(&row[1])?,
            post: f(2)?,
            post_squares: f(3)?,
            pre: f(4)?,
            pre_squares: f(5)?,
            post_pre: f(6)?,
            den: f(7)?,
            den_squares: f(8)?,
            post_den: f(9)?,
        };
    }
    Ok(sums.iter().map(|s| statistic(metric, s)).collect())
}

fn statistic(metric: &MetricDef, s: &Sums) -> Statistic {
    let mean = |sum: f64, sum_squares: f64| SampleMean { n: s.n, sum, sum_squares };
    // Conversions are 0/1 per user: their sums are whole numbers of users.
    let proportion = |sum: f64| Proportion { n: s.n, successes: sum.round() as u64 };
    let post = match metric.kind {
        MetricKind::Conversion => Moments::Proportion(proportion(s.post)),
        _ => Moments::SampleMean(mean(s.post, s.post_squares)),
    };
    if metric.kind == MetricKind::Ratio {
        return Statistic::Ratio(Ratio {
            n: s.n,
            numerator: post,
            denominator: Moments::SampleMean(mean(s.den, s.den_squares)),
            sum_of_products: s.post_den,
        });
    }
    if metric.pre_window_days.is_some() {
        let pre = match metric.kind {
            MetricKind::Conversion => Moments::Proportion(proportion(s.pre)),
            _ => Moments::SampleMean(mean(s.pre, s.pre_squares)),
        };
        return Statistic::RegressionAdjusted(RegressionAdjusted { n: s.n, post, pre, post_pre_sum_of_products: s.post_pre });
    }
    Statistic::from(post)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_names_reach_sql_quoted() {
        let metric = MetricDef {
            name: "m".into(),
            kind: MetricKind::Sum,
            event: "deposit".into(),
            field: Some("amount_fen".into()),
            denominator: None,
            window_days: 3,
            pre_window_days: Some(14),
            inverse: false,
            guardrail: false,
        };
        let sql = metric_sql("it's", &metric);
        assert!(sql.contains("experiment_key = 'it''s'"), "{sql}");
        assert!(sql.contains("LEFT JOIN \"deposit\" e") && sql.contains("CAST(e.\"amount_fen\" AS DOUBLE)"), "{sql}");
        assert!(sql.contains("u.first_ts - INTERVAL '14 days'") && sql.contains("INTERVAL '3 days'"), "{sql}");
    }
}
