//! Retention: users grouped into cohorts by the period (day, week, month, quarter) of their first
//! cohort event in the range; for each later period, the share who did the return event in it
//! ("bounded") or in it or any later one ("unbounded", on-or-after). Cells for periods the data
//! has not reached yet are empty, not zero. Built on the `retention` behaviour function.

use crate::params::{EventSpec, Period, Scope, ScopeInput, date_of_day, text_literal};
use crate::table::{self, Cell};
use crate::{Catalog, InsightError, Table, sql};
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use finpulse_core::time::MICROS_PER_DAY;
use finpulse_log::StoreView;
use finpulse_query::activity::ActiveDay;
use finpulse_query::behaviour::MAX_CONDITIONS;

/// The table of per-cohort-member rows (user_id, grp, cohort, r0…rN: 1 when the user came back
/// in period k) a retention query reads when the return event is a plain set of types; a name
/// no event type can take.
pub const PER_USER_TABLE: &str = "_retention_per_user";

/// Most users listed behind a cell when no limit is given.
pub const USERS_LISTED_DEFAULT: usize = 1_000;

/// A retention request as asked.
#[derive(Debug, Clone, Default)]
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
    pub unbounded: bool,
    /// Counts instead of shares.
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

    /// `c`: one row per user (and breakdown value) with the user's first cohort event in range
    /// (`t0`), after the `users` CTE when filters or the breakdown need it.
    fn cohort_ctes(&self) -> String {
        format!(
            "{users}c AS (SELECT e.user_id, {grp} AS grp, min(e.ts) AS t0 FROM {from} WHERE {cohort} AND {range} AND {filters} GROUP BY e.user_id, {grp})",
            users = self.scope.with_users(),
            grp = self.scope.breakdown_sql(),
            from = self.scope.from_events(),
            cohort = self.cohort_event.sql(),
            range = self.scope.range_sql("e.ts"),
            filters = self.scope.filters_sql(),
        )
    }

    /// The cohort members as `user_id, grp, t0_us, cohort`.
    fn cohort_sql(&self) -> String {
        format!(
            "WITH {c} SELECT user_id, grp, arrow_cast(t0, 'Int64') AS t0_us, {cohort_period} AS cohort FROM c",
            c = self.cohort_ctes(),
            cohort_period = self.period.trunc_sql("t0"),
        )
    }

    /// Per cohort member (`user_id, grp, cohort`), the `retention` array (`ret`) of the
    /// cohort condition and one condition per period, all in SQL (any return event).
    fn per_user_sql(&self) -> String {
        let op = if self.unbounded { ">=" } else { "=" };
        let conditions = (0..=self.periods).map(|k| format!("coalesce(r.k {op} {k}, false)")).collect::<Vec<_>>().join(", ");
        format!(
            "WITH {c}, \
             c2 AS (SELECT user_id, grp, t0, {cohort_period} AS cohort FROM c), \
             ev0 AS (SELECT e.user_id, {day} AS dn, max(e.ts) AS last_ts FROM events e WHERE {ret} GROUP BY 1, 2), \
             ev AS (SELECT user_id, {return_period} AS rp, max(last_ts) AS last_ts \
               FROM ev0 GROUP BY 1, 2), \
             r AS (SELECT c2.user_id, c2.grp, {k} AS k FROM c2 JOIN ev ON ev.user_id = c2.user_id WHERE ev.last_ts >= c2.t0), \
             per_user AS (SELECT c2.user_id, c2.grp, c2.cohort, retention(TRUE, {conditions}) AS ret FROM c2 LEFT JOIN r \
               ON r.user_id = c2.user_id AND r.grp IS NOT DISTINCT FROM c2.grp GROUP BY c2.user_id, c2.grp, c2.cohort)",
            c = self.cohort_ctes(),
            k = self.period.between_sql("c2.cohort", "ev.rp"),
            cohort_period = self.period.trunc_sql("t0"),
            return_period = self.period.trunc_sql("arrow_cast(dn * 86400000000, 'Timestamp(Microsecond, None)')"),
            ret = self.return_event.sql(),
            day = crate::params::day_number_sql("e.ts"),
        )
    }

    /// Which periods after its cohort's a member came back in (`came_back[k]`), from the
    /// member's first cohort event `t0_us` and their active days of the return event. A period
    /// counts when it holds a return event at or after `t0_us` — what the SQL form's join gives.
    fn came_back(&self, t0_us: i64, days: &[ActiveDay], came_back: &mut [bool]) {
        came_back.fill(false);
        let cohort = self.period.ordinal(t0_us.div_euclid(MICROS_PER_DAY));
        for &(day, last_us) in days {
            if last_us < t0_us {
                continue;
            }
            let Ok(k) = usize::try_from(self.period.ordinal(day) - cohort) else { continue };
            if self.unbounded {
                // On or after: period k counts for every j ≤ k.
                came_back[..=k.min(self.periods)].fill(true);
            } else if k <= self.periods {
                came_back[k] = true;
            }
        }
    }

    /// Registers [`PER_USER_TABLE`]: the cohort members from SQL, and whether each came back in
    /// each period from the return days read straight from the store.
    async fn register_per_user(&self, ctx: &SessionContext, view: &StoreView, types: &[String]) -> Result<(), InsightError> {
        use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
        use arrow::datatypes::{DataType, Field, Int64Type, Schema};
        use std::sync::Arc;
        let active = crate::active_days(view, types.to_vec()).await?;
        let by_user: std::collections::HashMap<&str, &[ActiveDay]> = active.iter().map(|(u, d)| (u.as_str(), d.as_slice())).collect();
        let members = ctx.sql(&self.cohort_sql()).await?;
        let fields = members.schema().as_arrow().fields().clone();
        let mut out_fields: Vec<Field> = [&fields[0], &fields[1], &fields[3]].iter().map(|f| f.as_ref().clone()).collect();
        out_fields.extend((0..=self.periods).map(|k| Field::new(format!("r{k}"), DataType::Int64, false)));
        let schema = Arc::new(Schema::new(out_fields));
        let mut batches = Vec::new();
        let mut came_back = vec![false; self.periods + 1];
        for b in members.collect().await? {
            let users = finpulse_query::text_values(b.column(0))?;
            let t0 = b.column(2).as_primitive::<Int64Type>();
            let mut returns: Vec<Vec<i64>> = vec![Vec::with_capacity(b.num_rows()); self.periods + 1];
            for (i, user) in users.iter().enumerate() {
                let days = user.as_deref().and_then(|u| by_user.get(u).copied()).unwrap_or_default();
                if t0.is_valid(i) {
                    self.came_back(t0.value(i), days, &mut came_back);
                } else {
                    came_back.fill(false);
                }
                for (column, &back) in returns.iter_mut().zip(&came_back) {
                    column.push(i64::from(back));
                }
            }
            let mut columns: Vec<ArrayRef> = vec![b.column(0).clone(), b.column(1).clone(), b.column(3).clone()];
            columns.extend(returns.into_iter().map(|r| Arc::new(Int64Array::from(r)) as ArrayRef));
            batches.push(RecordBatch::try_new(schema.clone(), columns).map_err(|e| InsightError::Query(e.to_string()))?);
        }
        ctx.register_table(PER_USER_TABLE, Arc::new(datafusion::datasource::MemTable::try_new(schema, vec![batches])?))?;
        Ok(())
    }
}

/// Answers a retention request.
pub async fn run(ctx: &SessionContext, view: &StoreView, retention: &Retention) -> Result<Table, InsightError> {
    run_reading(ctx, view, retention, true).await
}

/// [`run`], with `from_store` false keeping every step in SQL (what the store-read form is held
/// equal to in tests).
async fn run_reading(ctx: &SessionContext, view: &StoreView, retention: &Retention, from_store: bool) -> Result<Table, InsightError> {
    // A return event that is only a set of types is read straight from the store, and who came
    // back when is worked out here; otherwise all of it is SQL with the `retention` function.
    let (per_user, from, returned): (String, &str, fn(usize) -> String) = match retention.return_event.types_only().filter(|_| from_store) {
        Some(types) => {
            retention.register_per_user(ctx, view, types).await?;
            (String::new(), PER_USER_TABLE, |k| format!("r{k}"))
        }
        None => (retention.per_user_sql(), "per_user", |k| format!("ret[{}]", k + 2)),
    };
    if let Some((day, k)) = retention.cell {
        let q = format!(
            "{per_user} SELECT user_id, grp FROM {from} WHERE cohort = {} AND {} = 1 ORDER BY user_id LIMIT {}",
            text_literal(&format!("{day}T00:00:00Z")),
            returned(k),
            retention.limit
        );
        let mut t = Table::new(&["user_id", "breakdown"]);
        t.rows = table::rows(&sql(ctx, &q).await?)?;
        if retention.scope.breakdown.is_none() {
            t.drop_column(1);
        }
        return Ok(t);
    }
    let sums = (0..=retention.periods).map(|k| format!("sum({})", returned(k))).collect::<Vec<_>>().join(", ");
    let q = format!("{per_user} SELECT grp, cohort, count(*) AS users, {sums} FROM {from} GROUP BY grp, cohort ORDER BY grp, cohort");
    let rows = table::rows(&sql(ctx, &q).await?)?;
    // The last day with data: cells starting after it are not known yet.
    let last = table::rows(&sql(ctx, "SELECT max(ts) FROM events").await?)?;
    let last_day = match last.first().map(|r| &r[0]) {
        Some(Cell::Day(d)) => Some(date_of_day(*d)),
        Some(Cell::Time(us)) => Some(date_of_day(us.div_euclid(MICROS_PER_DAY))),
        _ => None,
    };
    let mut columns = vec!["breakdown".to_string(), "cohort".to_string(), "users".to_string()];
    columns.extend((0..=retention.periods).map(|k| format!("{}_{k}", retention.period.name())));
    let mut t = Table { columns, rows: Vec::new(), notes: Vec::new() };
    for r in rows {
        let users = table::int(&r, 2, "users")?;
        let cohort = table::day_or_null(&r, 1, "cohort")?.map(date_of_day);
        let mut out = vec![r[0].clone(), r[1].clone(), Cell::from(users)];
        for k in 0..=retention.periods {
            let known = match (cohort, last_day) {
                (Some(c), Some(last)) => retention.period.advance(c, k as i64).is_some_and(|start| start <= last),
                _ => true,
            };
            let n = table::int(&r, 3 + k, "returned")?;
            out.push(match (known, retention.counts) {
                (false, _) => Cell::Null,
                (true, true) => Cell::from(n),
                (true, false) if users > 0 => Cell::from(n as f64 / users as f64),
                (true, false) => Cell::Null,
            });
        }
        t.rows.push(out);
    }
    if retention.scope.breakdown.is_none() {
        t.drop_column(0);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segments::SegmentBook;

    /// Reading the return days from the store and working out who came back here gives the
    /// same table as doing all of it in SQL with `retention`, for every period, bounded and
    /// unbounded, with a breakdown, a filter, counts and a cell's users, over files and a tail.
    #[test]
    fn retention_from_the_store_equals_the_sql_answer() {
        let (_dir, mut store) = crate::test_support::empty_store();
        let registry = store.registry();
        crate::test_support::simulate(&mut store, 600, 100, 5, |store, day| {
            if day % 20 == 0 && day < 100 {
                store.compact().unwrap();
            }
        });
        let view = store.view_handle().snapshot();
        assert!(!view.files.is_empty() && !view.tail.is_empty(), "files and a tail");
        let runtime = crate::test_support::runtime();
        let segments = SegmentBook::empty();
        let cx = Catalog { registry: &registry, segments: &segments };
        let text = |s: &str| Some(s.to_string());
        let week = || text("week");
        let shapes = [
            (RetentionInput::default(), ScopeInput::default()),
            (RetentionInput { period: week(), unbounded: true, ..Default::default() }, ScopeInput::default()),
            (
                RetentionInput { period: text("month"), return_event: text("app_session"), counts: true, ..Default::default() },
                ScopeInput::default(),
            ),
            (RetentionInput { period: text("quarter"), periods: Some(2), unbounded: true, ..Default::default() }, ScopeInput::default()),
            (
                RetentionInput { period: week(), return_event: text("payment"), ..Default::default() },
                ScopeInput { breakdown: text("user.channel"), ..Default::default() },
            ),
            (
                RetentionInput { cohort_event: text("login"), periods: Some(10), ..Default::default() },
                ScopeInput { filters: vec!["user.channel = 'douyin'".into()], from: text("2026-01-10"), ..Default::default() },
            ),
            (RetentionInput { cohort: text("2026-01-05"), period_index: Some(3), ..Default::default() }, ScopeInput::default()),
            (
                RetentionInput { period: week(), unbounded: true, cohort: text("2026-01-05"), period_index: Some(1), ..Default::default() },
                ScopeInput::default(),
            ),
        ];
        for (input, scope) in shapes {
            let shape = format!("{input:?} {scope:?}");
            let r = Retention::parse(&input, &scope, &cx).unwrap();
            let ctx = runtime.block_on(crate::session(&view)).unwrap();
            let by_store = runtime.block_on(run_reading(&ctx, &view, &r, true)).unwrap();
            let ctx = runtime.block_on(crate::session(&view)).unwrap();
            let by_sql = runtime.block_on(run_reading(&ctx, &view, &r, false)).unwrap();
            assert!(by_sql.rows.len() > 1, "{shape}: {} rows", by_sql.rows.len());
            assert_eq!(by_store.columns, by_sql.columns, "{shape}");
            assert_eq!(by_store.rows, by_sql.rows, "{shape}");
        }
    }
}
