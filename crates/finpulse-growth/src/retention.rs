//! Retention: users grouped into cohorts by the period (day, week, month, quarter) of their first
//! cohort event in the range; for each later period, the share who did the return event in it
//! ("bounded") or in it or any later one ("unbounded", on-or-after). Cells for periods the data
//! has not reached yet are empty, not zero. Built on the `retention` behaviour function.

use crate::params::{EventSpec, Period, Scope, ScopeInput, text_literal};
use crate::{Catalog, InsightError, Table, sql, table};
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use finpulse_log::StoreView;
use finpulse_query::behaviour::MAX_CONDITIONS;
use serde::Deserialize;
use serde_json::Value;

/// The table of (user_id, dn, last_ts) return days a retention query reads when the return
/// event is a plain set of types; a name no event type can take.
pub const RETURN_DAYS_TABLE: &str = "_return_days";

/// Most users listed behind a cell when no limit is given.
pub const USERS_LISTED_DEFAULT: usize = 1_000;

/// A retention request as sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionInput {
    /// What puts a user in a cohort (default `user_signup`).
    pub cohort_event: Option<String>,
    /// What counts as coming back (default `any`).
    pub return_event: Option<String>,
    /// day, week, month or quarter (default day).
    pub period: Option<String>,
    /// Periods after the cohort's to show (default 30 days, 12 weeks, 6 months, 4 quarters).
    pub periods: Option<usize>,
    /// On-or-after retention.
    #[serde(default)]
    pub unbounded: bool,
    /// Counts instead of shares.
    #[serde(default)]
    pub counts: bool,
    /// With `period_index`: list the users behind this cohort's cell (the cohort's first day).
    pub cohort: Option<String>,
    /// With `cohort`: the period after the cohort's.
    pub period_index: Option<usize>,
    /// Most users listed.
    pub limit: Option<usize>,
}

/// A checked retention request.
#[derive(Debug, Clone)]
pub struct Retention {
    cohort_event: EventSpec,
    return_event: EventSpec,
    period: Period,
    periods: usize,
    unbounded: bool,
    counts: bool,
    cell: Option<(NaiveDate, usize)>,
    limit: usize,
    scope: Scope,
}

impl Retention {
    /// Checks a retention request.
    pub fn parse(input: &RetentionInput, scope: &ScopeInput, cx: &Catalog) -> Result<Self, InsightError> {
        let registry = cx.registry;
        let cohort_event = EventSpec::parse(input.cohort_event.as_deref().unwrap_or("user_signup"), registry, "cohort_event")?;
        let return_event = EventSpec::parse(input.return_event.as_deref().unwrap_or("any"), registry, "return_event")?;
        let period = Period::parse(input.period.as_deref().unwrap_or("day"), "period")?;
        let periods = input.periods.unwrap_or(match period {
            Period::Day => 30,
            Period::Week => 12,
            Period::Month => 6,
            Period::Quarter => 4,
        });
        // One condition for the cohort plus one per period, within the function's limit.
        if periods + 2 > MAX_CONDITIONS {
            return Err(InsightError::param("periods", format!("at most {}, got {periods}", MAX_CONDITIONS - 2)));
        }
        let cell = match (&input.cohort, input.period_index) {
            (None, None) => None,
            (Some(c), Some(k)) => {
                let day = NaiveDate::parse_from_str(c, "%Y-%m-%d")
                    .map_err(|_| InsightError::param("cohort", format!("'{c}' is not a date (YYYY-MM-DD)")))?;
                if k > periods {
                    return Err(InsightError::param("period_index", format!("from 0 to {periods}, got {k}")));
                }
                Some((day, k))
            }
            (Some(_), None) => return Err(InsightError::param("period_index", "give it with cohort to list a cell's users")),
            (None, Some(_)) => return Err(InsightError::param("cohort", "give it with period_index to list a cell's users")),
        };
        let scope = Scope::parse(scope, cx)?;
        Ok(Self {
            cohort_event,
            return_event,
            period,
            periods,
            unbounded: input.unbounded,
            counts: input.counts,
            cell,
            limit: input.limit.unwrap_or(USERS_LISTED_DEFAULT),
            scope,
        })
    }

    /// With `return_days`, the return event's days come from [`RETURN_DAYS_TABLE`].
    fn per_user_sql(&self, return_days: bool) -> String {
        let p = self.period.name();
        let op = if self.unbounded { ">=" } else { "=" };
        let conditions = (0..=self.periods).map(|k| format!("coalesce(r.k {op} {k}, false)")).collect::<Vec<_>>().join(", ");
        format!(
            "WITH {users}c AS (SELECT e.user_id, {grp} AS grp, min(e.ts) AS t0 FROM {from} WHERE {cohort} AND {range} AND {filters} GROUP BY e.user_id, {grp}), \
             c2 AS (SELECT user_id, grp, t0, date_trunc('{p}', t0) AS cohort FROM c), \
             ev0 AS ({ev0}), \
             ev AS (SELECT user_id, date_trunc('{p}', arrow_cast(dn * 86400000000, 'Timestamp(µs, \"UTC\")')) AS rp, max(last_ts) AS last_ts \
               FROM ev0 GROUP BY 1, 2), \
             r AS (SELECT c2.user_id, c2.grp, {k} AS k FROM c2 JOIN ev ON ev.user_id = c2.user_id WHERE ev.last_ts >= c2.t0), \
             per_user AS (SELECT c2.user_id, c2.grp, c2.cohort, retention(TRUE, {conditions}) AS ret FROM c2 LEFT JOIN r \
               ON r.user_id = c2.user_id AND r.grp IS NOT DISTINCT FROM c2.grp GROUP BY c2.user_id, c2.grp, c2.cohort)",
            users = self.scope.with_users(),
            grp = self.scope.breakdown_sql(),
            from = self.scope.from_events(),
            cohort = self.cohort_event.sql(),
            range = self.scope.range_sql("e.ts"),
            filters = self.scope.filters_sql(),
            k = self.period.between_sql("c2.cohort", "ev.rp"),
            ev0 = if return_days {
                format!("SELECT user_id, dn, last_ts FROM {RETURN_DAYS_TABLE}")
            } else {
                format!(
                    "SELECT e.user_id, {day} AS dn, max(e.ts) AS last_ts FROM events e WHERE {ret} GROUP BY 1, 2",
                    ret = self.return_event.sql(),
                    day = crate::params::day_number_sql("e.ts"),
                )
            },
        )
    }
}

/// Answers a retention request.
pub async fn run(ctx: &SessionContext, view: &StoreView, retention: &Retention) -> Result<Table, InsightError> {
    // A return event that is only a set of types is read straight from the store.
    let return_days = match retention.return_event.types_only() {
        Some(types) => {
            crate::register_activity(ctx, view, types.to_vec(), RETURN_DAYS_TABLE).await?;
            true
        }
        None => false,
    };
    let per_user = retention.per_user_sql(return_days);
    if let Some((day, k)) = retention.cell {
        let q = format!(
            "{per_user} SELECT user_id, grp FROM per_user WHERE cohort = {} AND ret[{}] = 1 ORDER BY user_id LIMIT {}",
            text_literal(&format!("{day}T00:00:00Z")),
            k + 2,
            retention.limit
        );
        let mut t = Table::new(&["user_id", "breakdown"]);
        t.rows = table::rows(&sql(ctx, &q).await?)?;
        if retention.scope.breakdown.is_none() {
            t.drop_column(1);
        }
        return Ok(t);
    }
    let sums = (0..=retention.periods).map(|k| format!("sum(ret[{}])", k + 2)).collect::<Vec<_>>().join(", ");
    let q = format!("{per_user} SELECT grp, cohort, count(*) AS users, {sums} FROM per_user GROUP BY grp, cohort ORDER BY grp, cohort");
    let rows = table::rows(&sql(ctx, &q).await?)?;
    // The last day with data: cells starting after it are not known yet.
    let last = table::rows(&sql(ctx, "SELECT max(ts) FROM events").await?)?;
    let last_day = last.first().and_then(|r| r[0].as_str()).and_then(|t| NaiveDate::parse_from_str(&t[..10.min(t.len())], "%Y-%m-%d").ok());
    let mut columns = vec!["breakdown".to_string(), "cohort".to_string(), "users".to_string()];
    columns.extend((0..=retention.periods).map(|k| format!("{}_{k}", retention.period.name())));
    let mut t = Table { columns, rows: Vec::new() };
    for r in rows {
        let users = r[2].as_i64().unwrap_or(0);
        let cohort = r[1].as_str().and_then(|c| NaiveDate::parse_from_str(&c[..10.min(c.len())], "%Y-%m-%d").ok());
        let mut out = vec![r[0].clone(), r[1].clone(), Value::from(users)];
        for k in 0..=retention.periods {
            let known = match (cohort, last_day) {
                (Some(c), Some(last)) => retention.period.advance(c, k as i64).is_some_and(|start| start <= last),
                _ => true,
            };
            let n = r[3 + k].as_i64().unwrap_or(0);
            out.push(match (known, retention.counts) {
                (false, _) => Value::Null,
                (true, true) => Value::from(n),
                (true, false) if users > 0 => Value::from(n as f64 / users as f64),
                (true, false) => Value::Null,
            });
        }
        t.rows.push(out);
    }
    if retention.scope.breakdown.is_none() {
        t.drop_column(0);
    }
    Ok(t)
}
