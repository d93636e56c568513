//! Trends: an event's count, unique users, or the sum / average of a numeric field, per day,
//! week, month or quarter, optionally broken down.

use crate::params::{EventSpec, Period, Scope, ScopeInput, ident};
use crate::{Catalog, InsightError, Table, sql, table};
use datafusion::prelude::SessionContext;
use finpulse_core::registry::FieldType;

/// A trends request as asked.
#[derive(Debug, Clone, Default)]
pub struct TrendsInput {
    /// The event (`TYPE`, `TYPE:FIELD=VALUE` or `any`; default `any`).
    pub event: Option<String>,
    /// count (default), users, sum:FIELD or avg:FIELD.
    pub measure: Option<String>,
    /// day (default), week, month or quarter.
    pub interval: Option<String>,
}

/// A checked trends request.
#[derive(Debug, Clone)]
pub struct Trends {
    event: EventSpec,
    measure: String,
    measure_sql: String,
    interval: Period,
    scope: Scope,
}

impl Trends {
    /// Checks a trends request.
    pub fn parse(input: &TrendsInput, scope: &ScopeInput, cx: &Catalog) -> Result<Self, InsightError> {
        let registry = cx.registry;
        let event = EventSpec::parse(input.event.as_deref().unwrap_or("any"), registry, "event")?;
        let measure = input.measure.clone().unwrap_or_else(|| "count".into());
        let measure_sql = match measure.split_once(':') {
            None if measure == "count" => "count(*)".to_string(),
            None if measure == "users" => "count(DISTINCT e.user_id)".to_string(),
            Some((agg @ ("sum" | "avg"), field)) => {
                let numeric = registry.field_id(field).map(|id| registry.field(id).ty);
                match numeric {
                    Some(FieldType::Int | FieldType::Float) => format!("{agg}(e.{})", ident(field)),
                    Some(_) => return Err(InsightError::param("measure", format!("{field} is not numeric"))),
                    None => return Err(InsightError::param("measure", format!("unknown field '{field}'"))),
                }
            }
            _ => return Err(InsightError::param("measure", format!("'{measure}' is not count, users, sum:FIELD or avg:FIELD"))),
        };
        let interval = Period::parse(input.interval.as_deref().unwrap_or("day"), "interval")?;
        let scope = Scope::parse(scope, cx)?;
        Ok(Self { event, measure, measure_sql, interval, scope })
    }
}

/// Answers a trends request.
pub async fn run(ctx: &SessionContext, trends: &Trends) -> Result<Table, InsightError> {
    let q = format!(
        "WITH {users}x AS (SELECT {period} AS period, {grp} AS grp, {m} AS value FROM {from} WHERE {event} AND {range} AND {filters} \
         GROUP BY 1, 2) SELECT grp, period, value FROM x ORDER BY grp, period",
        users = trends.scope.with_users(),
        period = trends.interval.trunc_sql("e.ts"),
        grp = trends.scope.breakdown_sql(),
        m = trends.measure_sql,
        from = trends.scope.from_events(),
        event = trends.event.sql(),
        range = trends.scope.range_sql("e.ts"),
        filters = trends.scope.filters_sql(),
    );
    let mut t = Table::new(&["breakdown", "period", &trends.measure]);
    t.rows = table::rows(&sql(ctx, &q).await?)?;
    if trends.scope.breakdown.is_none() {
        t.drop_column(0);
    }
    Ok(t)
}
