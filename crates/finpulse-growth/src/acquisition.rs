//! Acquisition: per period and channel (or campaign), new users, marketing spend, cost per new
//! user (CAC), how many activated (every new-user task inside the window) and the cost per
//! activated user, and — over the whole range — the payback period: days after signup until the
//! cohort's realised revenue per user covered its CAC. Money is in fen (minor units, CNY).

use crate::activation::{SIGNUPS_TABLE, Tasks};
use crate::params::{Period, Property, Scope, ScopeInput};
use crate::{Catalog, InsightError, Table, sql, table};
use datafusion::prelude::SessionContext;
use finpulse_log::StoreView;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// An acquisition request as sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcquisitionInput {
    /// day, week (default), month or quarter.
    pub period: Option<String>,
    /// New-user tasks that make a user activated (default: the four new-user tasks).
    #[serde(default)]
    pub tasks: Vec<String>,
    /// Window after signup for activation (default 7d).
    pub window: Option<String>,
}

/// A checked acquisition request.
#[derive(Debug, Clone)]
pub struct Acquisition {
    period: Period,
    spend_column: &'static str,
    tasks: Tasks,
    scope: Scope,
}

impl Acquisition {
    /// Checks an acquisition request.
    pub fn parse(input: &AcquisitionInput, scope: &ScopeInput, cx: &Catalog) -> Result<Self, InsightError> {
        let registry = cx.registry;
        let period = Period::parse(input.period.as_deref().unwrap_or("week"), "period")?;
        let scope = Scope::parse(&scope.with_default_breakdown("user.channel"), cx)?;
        let spend_column = match &scope.breakdown {
            Some(Property::User(f)) if f == "channel" => "channel",
            Some(Property::User(f)) if f == "campaign" => "campaign",
            _ => {
                return Err(InsightError::param(
                    "breakdown",
                    "spend is recorded by channel and campaign: use user.channel or user.campaign",
                ));
            }
        };
        if scope.filters.iter().any(|f| !f.on_user()) {
            return Err(InsightError::param("filters", "acquisition filters on user properties only (user.FIELD)"));
        }
        let tasks = Tasks::parse(&input.tasks, input.window.as_deref(), registry)?;
        Ok(Self { period, spend_column, tasks, scope })
    }
}

/// Answers an acquisition request.
pub async fn run(ctx: &SessionContext, view: &StoreView, a: &Acquisition) -> Result<Table, InsightError> {
    // The signups are found once and read by both the cohorts and the revenue.
    a.tasks.register_signups(ctx, view, &a.scope, false).await?;
    let signups = format!("s AS (SELECT user_id, grp, t0 FROM {SIGNUPS_TABLE})");
    let cohorts = format!(
        "WITH {s}, per_user AS ({per_user}) SELECT {t0_period} AS period, grp, count(*) AS new_users, \
         sum(CASE WHEN {all} THEN 1 ELSE 0 END) AS activated FROM per_user GROUP BY 1, 2",
        s = signups,
        per_user = a.tasks.per_user_sql(false),
        t0_period = a.period.trunc_sql("t0"),
        all = a.tasks.all_done_sql(),
    );
    let spend = format!(
        "SELECT {period} AS period, \"{c}\" AS grp, sum(amount_fen) FROM marketing_spend WHERE {range} GROUP BY 1, 2",
        period = a.period.trunc_sql("ts"),
        c = a.spend_column,
        range = a.scope.range_sql("ts"),
    );
    // Realised revenue per signed-up user by whole days since signup, for payback.
    let revenue = format!(
        "WITH {s} SELECT s.grp, CAST(floor((date_part('epoch', r.ts) - date_part('epoch', s.t0)) / 86400) AS BIGINT) AS day, sum(r.amount_fen) \
         FROM s JOIN revenue r ON r.user_id = s.user_id AND r.ts >= s.t0 GROUP BY 1, 2 ORDER BY 1, 2",
        s = signups,
    );
    type Key = (String, String);
    let text = |v: &Value| v.as_str().map_or_else(|| "(none)".to_string(), str::to_string);
    let mut rows: BTreeMap<Key, [i64; 3]> = BTreeMap::new();
    for r in table::rows(&sql(ctx, &cohorts).await?)? {
        let e = rows.entry((text(&r[0]), text(&r[1]))).or_default();
        e[0] += r[2].as_i64().unwrap_or(0);
        e[1] += r[3].as_i64().unwrap_or(0);
    }
    if ctx.table_exist("marketing_spend")? {
        for r in table::rows(&sql(ctx, &spend).await?)? {
            rows.entry((text(&r[0]), text(&r[1]))).or_default()[2] += r[2].as_i64().unwrap_or(0);
        }
    }
    let mut revenue_by_day: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    if ctx.table_exist("revenue")? {
        for r in table::rows(&sql(ctx, &revenue).await?)? {
            revenue_by_day.entry(text(&r[0])).or_default().push((r[1].as_i64().unwrap_or(0), r[2].as_i64().unwrap_or(0)));
        }
    }
    let ratio = |a: i64, b: i64| if b > 0 { Value::from(a as f64 / b as f64) } else { Value::Null };
    let row = |period: &str, grp: &str, [users, activated, spend]: [i64; 3], payback: Option<i64>| {
        vec![
            Value::from(period),
            Value::from(grp),
            Value::from(users),
            Value::from(spend),
            ratio(spend, users),
            Value::from(activated),
            ratio(activated, users),
            ratio(spend, activated),
            payback.map_or(Value::Null, Value::from),
        ]
    };
    let mut t = Table::new(&[
        "period",
        &format!("user.{}", a.spend_column),
        "new_users",
        "spend_fen",
        "cac_fen",
        "activated",
        "activation_rate",
        "activated_cac_fen",
        "payback_days",
    ]);
    let mut totals: BTreeMap<String, [i64; 3]> = BTreeMap::new();
    for ((period, grp), [users, activated, spend]) in &rows {
        let total = totals.entry(grp.clone()).or_default();
        total[0] += users;
        total[1] += activated;
        total[2] += spend;
        t.rows.push(row(period, grp, [*users, *activated, *spend], None));
    }
    for (grp, [users, activated, spend]) in &totals {
        // Payback: the first day on which cumulative revenue per new user reaches CAC.
        let payback = (*users > 0 && *spend > 0)
            .then(|| {
                let cac = *spend as f64 / *users as f64;
                let mut cumulative = 0i64;
                revenue_by_day.get(grp)?.iter().find_map(|(day, fen)| {
                    cumulative += fen;
                    (cumulative as f64 / *users as f64 >= cac).then_some(*day)
                })
            })
            .flatten();
        t.rows.push(row("total", grp, [*users, *activated, *spend], payback));
    }
    Ok(t)
}
