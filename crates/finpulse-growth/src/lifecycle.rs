//! Lifecycle: per period, how many active users are new (first period ever active), returning
//! (active the period before too) or resurrecting (back after a gap); how many went dormant
//! (active the period before, not this one) and how many churned (last seen `churn_after`
//! periods ago); with active users, DAU/WAU/MAU (daily), stickiness (average daily active over
//! the period's active users) and usage time per active user from `app_session.session_secs`.
//! Statuses look at all history, so a user active before the range is not counted as new in it.

use crate::params::{EventSpec, Period, Scope, ScopeInput};
use crate::{InsightError, Table, sql, table};
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use finpulse_core::registry::Registry;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A lifecycle request as sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleInput {
    /// What counts as active (default `any`).
    pub event: Option<String>,
    /// day, week (default) or month.
    pub interval: Option<String>,
    /// Periods without activity after which a user counts as churned (default 30 days, 4 weeks, 2 months).
    pub churn_after: Option<u32>,
    /// First day (inclusive).
    pub from: Option<String>,
    /// Last day (inclusive).
    pub to: Option<String>,
    /// Filters.
    #[serde(default)]
    pub filters: Vec<String>,
    /// Not supported for lifecycle; rejected with a clear error.
    pub breakdown: Option<String>,
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
    pub fn parse(input: &LifecycleInput, registry: &Registry) -> Result<Self, InsightError> {
        if input.breakdown.is_some() {
            return Err(InsightError::param("breakdown", "lifecycle has no breakdown; filter on a property instead"));
        }
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
        let scope = Scope::parse(
            &ScopeInput { from: input.from.clone(), to: input.to.clone(), filters: input.filters.clone(), breakdown: None },
            registry,
        )?;
        Ok(Self { event, interval, churn_after, scope })
    }

    fn interval_sql(&self, n: u32) -> String {
        match self.interval {
            Period::Day => format!("INTERVAL '{n} days'"),
            Period::Week => format!("INTERVAL '{} days'", 7 * n),
            _ => format!("INTERVAL '{n} months'"),
        }
    }
}

fn day_of(v: &Value) -> Option<NaiveDate> {
    v.as_str().and_then(|t| NaiveDate::parse_from_str(&t[..10.min(t.len())], "%Y-%m-%d").ok())
}

/// Answers a lifecycle request.
pub async fn run(ctx: &SessionContext, lc: &Lifecycle) -> Result<Table, InsightError> {
    let p = lc.interval.name();
    let base = format!(
        "{users}daily AS (SELECT DISTINCT e.user_id, date_trunc('day', e.ts) AS d FROM {from} WHERE {event} AND {filters} AND e.user_id <> '')",
        users = lc.scope.with_users(),
        from = lc.scope.from_events(),
        event = lc.event.sql(),
        filters = lc.scope.filters_sql(),
    );
    let range = lc.scope.range_sql("p");
    let one = lc.interval_sql(1);
    let churn = lc.interval_sql(lc.churn_after);
    let statuses = format!(
        "WITH {base}, a AS (SELECT DISTINCT user_id, date_trunc('{p}', d) AS p FROM daily), \
         l AS (SELECT user_id, p, lag(p) OVER (PARTITION BY user_id ORDER BY p) AS prev, lead(p) OVER (PARTITION BY user_id ORDER BY p) AS next FROM a), \
         s AS (SELECT p, CASE WHEN prev IS NULL THEN 'new' WHEN prev = p - {one} THEN 'returning' ELSE 'resurrecting' END AS status FROM l \
           UNION ALL SELECT p + {one} AS p, 'dormant' AS status FROM l WHERE next IS NULL OR next > p + {one} \
           UNION ALL SELECT p + {churn} AS p, 'churned' AS status FROM l WHERE next IS NULL OR next > p + {churn}), \
         last AS (SELECT max(p) AS m FROM a) \
         SELECT p, status, count(*) FROM s, last WHERE p <= last.m AND {range} GROUP BY p, status ORDER BY p"
    );
    let activity = format!(
        "WITH {base}, x AS (SELECT date_trunc('{p}', d) AS p, user_id, d FROM daily) \
         SELECT p, count(DISTINCT user_id) AS active, CAST(count(*) AS DOUBLE) / count(DISTINCT d) AS avg_daily FROM x WHERE {range} GROUP BY p ORDER BY p"
    );
    let usage = format!(
        "SELECT date_trunc('{p}', ts) AS p, sum(session_secs) FROM app_session WHERE {} GROUP BY 1",
        lc.scope.range_sql("app_session.ts")
    );
    // Users counted in the trailing 7 and 30 days: each active day covers [day, day + N); a
    // user's covering intervals are made disjoint with the previous active day.
    let trailing = |n: u32| {
        format!(
            "WITH {base}, l AS (SELECT user_id, d, lag(d) OVER (PARTITION BY user_id ORDER BY d) AS prev FROM daily), \
             iv AS (SELECT CASE WHEN prev IS NULL OR prev + INTERVAL '{n} days' <= d THEN d ELSE prev + INTERVAL '{n} days' END AS s, d + INTERVAL '{n} days' AS e FROM l), \
             deltas AS (SELECT s AS day, 1 AS delta FROM iv UNION ALL SELECT e AS day, -1 AS delta FROM iv) \
             SELECT day, sum(delta) FROM deltas GROUP BY day ORDER BY day"
        )
    };

    let mut status: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for r in table::rows(&sql(ctx, &statuses).await?)? {
        let (period, s, n) =
            (r[0].as_str().unwrap_or_default().to_string(), r[1].as_str().unwrap_or_default().to_string(), r[2].as_i64().unwrap_or(0));
        status.entry(period).or_default().insert(s, n);
    }
    let mut usage_by: BTreeMap<String, f64> = BTreeMap::new();
    if ctx.table_exist("app_session")? {
        for r in table::rows(&sql(ctx, &usage).await?)? {
            usage_by.insert(r[0].as_str().unwrap_or_default().to_string(), r[1].as_f64().unwrap_or(0.0));
        }
    }
    let daily = lc.interval == Period::Day;
    let mut trailing_counts: Vec<BTreeMap<NaiveDate, i64>> = Vec::new();
    if daily {
        for n in [7, 30] {
            let mut running = 0;
            let mut by_day = BTreeMap::new();
            for r in table::rows(&sql(ctx, &trailing(n)).await?)? {
                running += r[1].as_i64().unwrap_or(0);
                if let Some(d) = day_of(&r[0]) {
                    by_day.insert(d, running);
                }
            }
            trailing_counts.push(by_day);
        }
    }
    let at = |m: &BTreeMap<NaiveDate, i64>, d: NaiveDate| m.range(..=d).next_back().map_or(0, |(_, v)| *v);

    let mut columns = vec!["period", "new", "returning", "resurrecting", "dormant", "churned", "active"];
    if daily {
        columns.extend(["wau", "mau", "stickiness"]);
    } else {
        columns.extend(["avg_daily_active", "stickiness"]);
    }
    columns.push("usage_secs_per_active_user");
    let mut t = Table::new(&columns);
    for r in table::rows(&sql(ctx, &activity).await?)? {
        let period = r[0].as_str().unwrap_or_default().to_string();
        let active = r[1].as_i64().unwrap_or(0);
        let avg_daily = r[2].as_f64().unwrap_or(0.0);
        let s = status.get(&period);
        let get = |k: &str| s.and_then(|m| m.get(k)).copied().unwrap_or(0);
        let mut row = vec![
            Value::from(period.clone()),
            Value::from(get("new")),
            Value::from(get("returning")),
            Value::from(get("resurrecting")),
            Value::from(-get("dormant")),
            Value::from(-get("churned")),
            Value::from(active),
        ];
        if daily {
            let d = day_of(&r[0]);
            let (wau, mau) = d.map_or((0, 0), |d| (at(&trailing_counts[0], d), at(&trailing_counts[1], d)));
            row.extend([Value::from(wau), Value::from(mau), if mau > 0 { Value::from(active as f64 / mau as f64) } else { Value::Null }]);
        } else {
            row.extend([Value::from(avg_daily), if active > 0 { Value::from(avg_daily / active as f64) } else { Value::Null }]);
        }
        row.push(match usage_by.get(&period) {
            Some(secs) if active > 0 => Value::from(secs / active as f64),
            _ => Value::Null,
        });
        t.rows.push(row);
    }
    Ok(t)
}
