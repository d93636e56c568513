//! Lifecycle: per period, how many active users are new (first period ever active), returning
//! (active the period before too) or resurrecting (back after a gap); how many went dormant
//! (active the period before, not this one) and how many churned (last seen `churn_after`
//! periods ago); with active users, DAU/WAU/MAU (daily), stickiness (average daily active over
//! the period's active users) and usage time per active user from `app_session.session_secs`.
//! Statuses look at all history, so a user active before the range is not counted as new in it.

use crate::params::{EventSpec, Period, Property, Scope, ScopeInput};
use crate::table::{self, Cell};
use crate::{Catalog, InsightError, Table, sql};
use arrow::array::{Array, AsArray};
use datafusion::prelude::SessionContext;
use finpulse_log::StoreView;
use std::collections::BTreeMap;

/// A lifecycle request as asked.
#[derive(Debug, Clone, Default)]
pub struct LifecycleInput {
    /// What counts as active (default `any`).
    pub event: Option<String>,
    /// day, week (default) or month.
    pub interval: Option<String>,
    /// Periods without activity after which a user counts as churned (default 30 days, 4 weeks, 2 months).
    pub churn_after: Option<u32>,
}

/// A checked lifecycle request.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    event: EventSpec,
    interval: Period,
    churn_after: u32,
    scope: Scope,
}

impl Lifecycle {
    /// Checks a lifecycle request.
    pub fn parse(input: &LifecycleInput, scope: &ScopeInput, cx: &Catalog) -> Result<Self, InsightError> {
        let registry = cx.registry;
        let event = EventSpec::parse(input.event.as_deref().unwrap_or("any"), registry, "event")?;
        let interval = Period::parse(input.interval.as_deref().unwrap_or("week"), "interval")?;
        if interval == Period::Quarter {
            return Err(InsightError::param("interval", "day, week or month"));
        }
        let churn_after = input.churn_after.unwrap_or(match interval {
            Period::Day => 30,
            Period::Week => 4,
            _ => 2,
        });
        if churn_after == 0 {
            return Err(InsightError::param("churn_after", "must be at least 1"));
        }
        let scope = Scope::parse(scope, cx)?;
        Ok(Self { event, interval, churn_after, scope })
    }
}

/// The group of a user without a value for the breakdown.
const NO_GROUP: &str = "(none)";

/// Each user's value of a user-property breakdown, as text (as the SQL path reads it); users
/// without one are left out.
async fn user_groups(ctx: &SessionContext, scope: &Scope) -> Result<std::collections::HashMap<String, String>, InsightError> {
    let q = format!(
        "WITH {}x AS (SELECT u.user_id, {} AS grp FROM users u) SELECT user_id, grp FROM x",
        scope.with_users_always(),
        scope.breakdown_sql()
    );
    let mut groups = std::collections::HashMap::new();
    for b in sql(ctx, &q).await? {
        let (users, values) = (finpulse_query::text_values(b.column(0))?, finpulse_query::text_values(b.column(1))?);
        for (user, value) in users.into_iter().zip(values) {
            if let (Some(user), Some(value)) = (user, value) {
                groups.insert(user, value);
            }
        }
    }
    Ok(groups)
}

/// The group every user is in without a breakdown (what [`crate::params::NO_BREAKDOWN_SQL`]
/// reads as).
const NO_BREAKDOWN_GROUP: &str = "all";

#[derive(Default, Clone, Copy)]
struct PeriodCounts {
    new: i64,
    returning: i64,
    resurrecting: i64,
    dormant: i64,
    churned: i64,
    active: i64,
    /// Sum over the period's days of users active that day.
    user_days: i64,
    /// Whether any user's history touched the period (only those are reported).
    touched: bool,
}

/// Answers a lifecycle request: who was active on which day comes from one query; statuses,
/// DAU/WAU/MAU and stickiness are counted from it here, in one pass per user.
pub async fn run(ctx: &SessionContext, view: &StoreView, lc: &Lifecycle) -> Result<Table, InsightError> {
    let days = match lc.event.types_only() {
        // Plain activity of some types, for everyone, whole or by a user property (one value per
        // user): read from the sorted files directly.
        Some(types) if lc.scope.filters.is_empty() && matches!(lc.scope.breakdown, None | Some(Property::User(_))) => {
            let days = crate::active_days(view, types.to_vec()).await?;
            let days = days.into_iter().map(|(user, d)| (user, d.into_iter().map(|(day, _)| day).collect::<Vec<i64>>()));
            match lc.scope.breakdown {
                None => days.into_iter().map(|(_, d)| (NO_BREAKDOWN_GROUP.to_string(), d)).collect(),
                Some(_) => {
                    let groups = user_groups(ctx, &lc.scope).await?;
                    days.into_iter().map(|(user, d)| (groups.get(&user).cloned().unwrap_or_else(|| NO_GROUP.to_string()), d)).collect()
                }
            }
        }
        _ => {
            let condition = format!("{} AND {}", lc.event.sql(), lc.scope.filters_sql());
            let daily_sql = daily_sql(&lc.scope.with_users(), lc.scope.from_events(), &lc.scope.breakdown_sql(), &condition);
            active_days(ctx, &daily_sql).await?
        }
    };
    // Each user's days are sorted, so the span is from the smallest first day to the largest last.
    let (Some(first_day), Some(last_day)) =
        (days.iter().filter_map(|(_, d)| d.first()).min().copied(), days.iter().filter_map(|(_, d)| d.last()).max().copied())
    else {
        return Ok(Table::new(&columns(lc)));
    };
    let (first_period, last_period) = (lc.interval.ordinal(first_day), lc.interval.ordinal(last_day));
    let churn = i64::from(lc.churn_after);
    // Days and periods index dense arrays from the first one: millions of user-days at 100k
    // users, each a few array increments.
    let (day_at, period_at) = (|day: i64| (day - first_day) as usize, |period: i64| (period - first_period) as usize);
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    for (grp, user_days) in &days {
        let tally = tallies.entry(grp.as_str()).or_insert_with(|| Tally::new(last_day - first_day, last_period - first_period));
        let mut periods: Vec<i64> = Vec::with_capacity(user_days.len());
        let mut previous_day: Option<i64> = None;
        for &day in user_days {
            tally.dau[day_at(day)] += 1;
            for (t, n) in tally.trailing.iter_mut().zip(TRAILING_DAYS) {
                let start = previous_day.map_or(day, |p| day.max(p + n));
                t[day_at(start)] += 1;
                t[day_at(day + n)] -= 1;
            }
            previous_day = Some(day);
            let p = lc.interval.ordinal(day);
            let c = &mut tally.counts[period_at(p)];
            c.user_days += 1;
            c.touched = true;
            if periods.last() != Some(&p) {
                periods.push(p);
            }
        }
        for (i, &p) in periods.iter().enumerate() {
            let c = &mut tally.counts[period_at(p)];
            c.active += 1;
            match i.checked_sub(1).map(|j| periods[j]) {
                None => c.new += 1,
                Some(prev) if prev == p - 1 => c.returning += 1,
                Some(_) => c.resurrecting += 1,
            }
            let next = periods.get(i + 1).copied();
            if next.is_none_or(|n| n > p + 1) && p < last_period {
                let c = &mut tally.counts[period_at(p + 1)];
                c.dormant += 1;
                c.touched = true;
            }
            if next.is_none_or(|n| n > p + churn) && p + churn <= last_period {
                let c = &mut tally.counts[period_at(p + churn)];
                c.churned += 1;
                c.touched = true;
            }
        }
    }
    // Users covered by a trailing window on a day: the running sum of the starts and ends.
    for tally in tallies.values_mut() {
        for t in &mut tally.trailing {
            let mut sum = 0;
            t.iter_mut().for_each(|v| {
                sum += *v;
                *v = sum;
            });
        }
    }

    // Session time per period (and group), from app_session.session_secs, summed per day in
    // SQL and folded into periods here.
    let mut usage: BTreeMap<(String, String), f64> = BTreeMap::new();
    if ctx.table_exist("app_session")? {
        let q = format!(
            "WITH {users}x AS (SELECT {day} AS d, {grp} AS grp, sum(e.session_secs) AS secs FROM {from} \
             WHERE e.\"type\" = 'app_session' AND {filters} GROUP BY 1, 2) SELECT d, grp, secs FROM x",
            users = lc.scope.with_users(),
            day = crate::params::day_number_sql("e.ts"),
            grp = lc.scope.breakdown_sql(),
            from = lc.scope.from_events(),
            filters = lc.scope.filters_sql(),
        );
        for r in table::rows(&sql(ctx, &q).await?)? {
            let period = lc.interval.ordinal_start(lc.interval.ordinal(table::int(&r, 0, "day")?)).to_string();
            // No session time on a day that had sessions (all of them without the field) adds none.
            let secs = table::float_or_null(&r, 2, "secs")?.unwrap_or(0.0);
            *usage.entry((table::group(&r, 1), period)).or_default() += secs;
        }
    }
    let first = lc.scope.from.map(|f| lc.interval.ordinal(f.signed_duration_since(crate::params::date_of_day(0)).num_days()));
    let last = lc.scope.to.map(|t| lc.interval.ordinal(t.signed_duration_since(crate::params::date_of_day(0)).num_days()));
    let mut t = Table::new(&columns(lc));
    for (grp, tally) in &tallies {
        let shown = first.unwrap_or(i64::MIN).max(first_period)..=last.unwrap_or(i64::MAX).min(last_period);
        for (p, c) in shown.map(|p| (p, &tally.counts[period_at(p)])).filter(|(_, c)| c.touched) {
            let start_date = lc.interval.ordinal_start(p);
            let start = start_date.to_string();
            let mut row = Vec::new();
            if lc.scope.breakdown.is_some() {
                row.push(Cell::from(*grp));
            }
            row.extend([
                Cell::Day(crate::params::day_of_date(start_date)),
                Cell::from(c.new),
                Cell::from(c.returning),
                Cell::from(c.resurrecting),
                Cell::from(-c.dormant),
                Cell::from(-c.churned),
                Cell::from(c.active),
            ]);
            if lc.interval == Period::Day {
                // Daily: the period is the day.
                let (wau, mau) = (tally.trailing[0][day_at(p)], tally.trailing[1][day_at(p)]);
                row.extend([Cell::from(wau), Cell::from(mau), if mau > 0 { Cell::from(c.active as f64 / mau as f64) } else { Cell::Null }]);
            } else {
                let days = (first_day..=last_day).filter(|&d| tally.dau[day_at(d)] > 0 && lc.interval.ordinal(d) == p).count() as i64;
                let avg = if days > 0 { c.user_days as f64 / days as f64 } else { 0.0 };
                row.extend([Cell::from(avg), if c.active > 0 { Cell::from(avg / c.active as f64) } else { Cell::Null }]);
            }
            row.push(match usage.get(&(grp.to_string(), start)) {
                Some(secs) if c.active > 0 => Cell::from(secs / c.active as f64),
                _ => Cell::Null,
            });
            t.rows.push(row);
        }
    }
    Ok(t)
}

/// The trailing windows counted for WAU and MAU, days.
const TRAILING_DAYS: [i64; 2] = [7, 30];

/// Per breakdown group: statuses per period, users per day, and trailing 7/30-day coverage,
/// each indexed from the first day (period) with activity.
struct Tally {
    counts: Vec<PeriodCounts>,
    dau: Vec<i64>,
    /// +1 where a user's 7- (30-) day coverage starts, −1 where it ends; after the fold, the
    /// running sum: users covered on each day.
    trailing: [Vec<i64>; 2],
}

impl Tally {
    /// A tally over `days + 1` days and `periods + 1` periods.
    fn new(days: i64, periods: i64) -> Self {
        let (days, periods) = (days as usize + 1, periods as usize + 1);
        Self {
            counts: vec![PeriodCounts::default(); periods],
            dau: vec![0; days],
            // Coverage ends up to the longest window after the last day.
            trailing: [vec![0; days + TRAILING_DAYS[1] as usize], vec![0; days + TRAILING_DAYS[1] as usize]],
        }
    }
}

fn columns(lc: &Lifecycle) -> Vec<&'static str> {
    let mut columns = if lc.scope.breakdown.is_some() { vec!["breakdown"] } else { Vec::new() };
    columns.extend(["period", "new", "returning", "resurrecting", "dormant", "churned", "active"]);
    if lc.interval == Period::Day {
        columns.extend(["wau", "mau", "stickiness"]);
    } else {
        columns.extend(["avg_daily_active", "stickiness"]);
    }
    columns.push("usage_secs_per_active_user");
    columns
}

/// Per (user, group), the days (since 1970-01-01) they were active, sorted, from a query of
/// distinct `(user_id, group, day start in epoch seconds)` rows.
pub(crate) async fn active_days(ctx: &SessionContext, daily_sql: &str) -> Result<Vec<(String, Vec<i64>)>, InsightError> {
    let text = |a: &arrow::array::ArrayRef| {
        arrow::compute::cast(a, &arrow::datatypes::DataType::Utf8).map_err(|e| InsightError::Query(e.to_string()))
    };
    // Group → user → position in `days`; keys are allocated once per user, not per row, and
    // hashed with a fast hash (millions of rows at 100k users).
    let mut index: foldhash::HashMap<String, foldhash::HashMap<String, usize>> = foldhash::HashMap::default();
    let mut days: Vec<(String, Vec<i64>)> = Vec::new();
    for b in sql(ctx, daily_sql).await? {
        let (users, groups) = (text(b.column(0))?, text(b.column(1))?);
        let (users, groups) = (users.as_string::<i32>(), groups.as_string::<i32>());
        let d = arrow::compute::cast(b.column(2), &arrow::datatypes::DataType::Int64).map_err(|e| InsightError::Query(e.to_string()))?;
        let d = d.as_primitive::<arrow::datatypes::Int64Type>();
        for r in 0..b.num_rows() {
            if users.is_null(r) {
                continue;
            }
            let grp = if groups.is_null(r) { NO_GROUP } else { groups.value(r) };
            let by_user = match index.get_mut(grp) {
                Some(m) => m,
                None => index.entry(grp.to_string()).or_default(),
            };
            let i = match by_user.get(users.value(r)) {
                Some(&i) => i,
                None => {
                    by_user.insert(users.value(r).to_string(), days.len());
                    days.push((grp.to_string(), Vec::new()));
                    days.len() - 1
                }
            };
            days[i].1.push(d.value(r).div_euclid(86_400));
        }
    }
    days.iter_mut().for_each(|(_, d)| d.sort_unstable());
    Ok(days)
}

/// The query of distinct active (user, group, day) rows for an event condition on `events e`.
/// Days are whole days since 1970 computed on the integer time (much cheaper than truncating
/// timestamps), and the group takes part in the grouping only when there is a breakdown.
pub(crate) fn daily_sql(with_users: &str, from: &str, group: &str, condition: &str) -> String {
    let day = crate::params::day_number_sql("e.ts");
    if group == crate::params::NO_BREAKDOWN_SQL {
        format!(
            "WITH {with_users}x AS (SELECT e.user_id, {day} AS d FROM {from} WHERE {condition} AND e.user_id <> '' GROUP BY 1, 2) \
             SELECT user_id, {group} AS grp, d * 86400 AS d FROM x"
        )
    } else {
        format!(
            "WITH {with_users}x AS (SELECT e.user_id, {group} AS grp, {day} AS d FROM {from} WHERE {condition} AND e.user_id <> '' GROUP BY 1, 2, 3) \
             SELECT user_id, grp, d * 86400 AS d FROM x"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct scan of files and tail gives the same (user, day, last time) as the SQL query
    /// it stands in for, over compacted days and a tail, for `any` and for single types — also
    /// when asked again (files from the cache), after more days were compacted, and from calls
    /// racing with drops of the cache.
    #[test]
    fn active_days_read_from_the_files_equal_the_sql_answer() {
        let (_dir, mut store) = crate::test_support::empty_store();
        let registry = store.registry();
        let runtime = crate::test_support::runtime();
        let check = |view: &finpulse_log::StoreView| {
            assert!(!view.files.is_empty() && !view.tail.is_empty(), "files and a tail");
            let ctx = runtime.block_on(crate::session(view)).unwrap();
            for spec in ["any", "app_session", "payment"] {
                let event = crate::params::EventSpec::parse(spec, &registry, "event").unwrap();
                let types = event.types_only().unwrap().to_vec();
                // What lifecycle asked SQL for, with the user kept.
                let sql = format!(
                    "SELECT e.user_id, {} AS d, arrow_cast(max(e.ts), 'Int64') FROM events e WHERE {} AND e.user_id <> '' GROUP BY 1, 2",
                    crate::params::day_number_sql("e.ts"),
                    event.sql()
                );
                let mut by_sql: std::collections::BTreeMap<String, Vec<(i64, i64)>> = Default::default();
                for b in runtime.block_on(crate::sql(&ctx, &sql)).unwrap() {
                    let users = finpulse_query::text_values(b.column(0)).unwrap();
                    let days = b.column(1).as_primitive::<arrow::datatypes::Int64Type>();
                    let last = b.column(2).as_primitive::<arrow::datatypes::Int64Type>();
                    for (i, u) in users.into_iter().enumerate() {
                        by_sql.entry(u.unwrap()).or_default().push((days.value(i), last.value(i)));
                    }
                }
                by_sql.values_mut().for_each(|d| d.sort_unstable());
                assert!(by_sql.len() > 30, "{spec}: {} users", by_sql.len());
                for _ in 0..2 {
                    let by_scan: std::collections::BTreeMap<String, Vec<(i64, i64)>> =
                        finpulse_query::activity::user_day_last_times(view, &types).unwrap().into_iter().collect();
                    assert_eq!(by_scan, by_sql, "{spec}: days and each day's last time");
                }
            }
        };
        // Calls racing while the cache is dropped after every one (a budget of 0 bytes) still
        // see every file: a call whose reads a drop made stale reads again.
        let racing = |view: &finpulse_log::StoreView| {
            let types: Vec<String> = registry.event_types().map(|t| t.name.clone()).collect();
            let expected = finpulse_query::activity::user_day_last_times(view, &types).unwrap();
            std::thread::scope(|s| {
                let types = &types;
                let calls: Vec<_> = [0, usize::MAX, 0, usize::MAX]
                    .into_iter()
                    .map(|budget| {
                        s.spawn(move || {
                            (0..20)
                                .map(|_| finpulse_query::activity::user_day_last_times_within(view, types, budget).unwrap())
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                let mut expected = expected;
                expected.sort();
                for answers in calls.into_iter().map(|c| c.join().unwrap()) {
                    for mut a in answers {
                        a.sort();
                        let days = |d: &[(String, Vec<(i64, i64)>)]| d.iter().map(|(_, d)| d.len()).sum::<usize>();
                        assert!(
                            a == expected,
                            "an answer while the cache was being dropped: {} users, {} days; expected {} and {}",
                            a.len(),
                            days(&a),
                            expected.len(),
                            days(&expected)
                        );
                    }
                }
            });
        };
        crate::test_support::simulate(&mut store, 400, 40, 11, |store, day| {
            // Compacted every ten days, the last stretch left in the tail; a day's events may
            // also arrive after its day was compacted (late events), giving a second file.
            if day % 10 == 0 && day < 40 {
                store.compact().unwrap();
            }
            if day == 15 {
                check(&store.view_handle().snapshot());
            }
        });
        check(&store.view_handle().snapshot());
        racing(&store.view_handle().snapshot());
    }
}
