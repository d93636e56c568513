//! Acquisition: per period and channel (or campaign), new users, marketing spend, cost per new
//! user (CAC), how many activated (every new-user task inside the window) and the cost per
//! activated user, and what the new users are worth: LTV per new user over a horizon (realised
//! revenue, then what the LTV models expect — see [`crate::value`]), LTV:CAC and the projected
//! payback day. Over the whole range it also gives the payback period on realised revenue alone:
//! days after signup until the cohort's revenue per user covered its CAC. Money is in fen (minor
//! units, CNY).

use crate::activation::{SIGNUPS_TABLE, Tasks};
use crate::params::{Period, Property, Scope, ScopeInput, date_of_day, duration_secs};
use crate::table::{self, Cell};
use crate::value::{Curve, History, LTV_HORIZON_DAYS_DEFAULT, LTV_HORIZON_DAYS_MAX, Projector, ValueModel};
use crate::{Catalog, InsightError, Table, sql};
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::prelude::SessionContext;
use finpulse_log::StoreView;
use std::collections::{BTreeMap, HashMap};

/// An acquisition request as asked.
#[derive(Debug, Clone, Default)]
pub struct AcquisitionInput {
    /// day, week (default), month or quarter.
    pub period: Option<String>,
    /// New-user tasks that make a user activated (default: the four new-user tasks).
    pub tasks: Vec<String>,
    /// Window after signup for activation (default 7d).
    pub window: Option<String>,
    /// How long after signup LTV counts, in whole days (default 365d).
    pub ltv_horizon: Option<String>,
}

/// A checked acquisition request.
#[derive(Debug, Clone)]
pub struct Acquisition {
    period: Period,
    spend_column: &'static str,
    tasks: Tasks,
    scope: Scope,
    ltv_horizon_days: i64,
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
        let ltv_horizon_days = match input.ltv_horizon.as_deref() {
            None => LTV_HORIZON_DAYS_DEFAULT,
            Some(text) => {
                let secs = duration_secs(text, "ltv_horizon")?;
                let days = secs / 86_400;
                if secs % 86_400 != 0 || days > LTV_HORIZON_DAYS_MAX {
                    return Err(InsightError::param("ltv_horizon", format!("'{text}': give whole days, at most {LTV_HORIZON_DAYS_MAX}d")));
                }
                days
            }
        };
        Ok(Self { period, spend_column, tasks, scope, ltv_horizon_days })
    }
}

/// Answers an acquisition request.
pub async fn run(ctx: &SessionContext, view: &StoreView, a: &Acquisition) -> Result<Table, InsightError> {
    // The signups are found once and read by both the cohorts and the value curves, which are
    // worked out side by side.
    a.tasks.register_signups(ctx, view, &a.scope, false).await?;
    let (rows, values) = tokio::try_join!(counts(ctx, a), value_curves(ctx, a))?;
    let mut totals: BTreeMap<String, [i64; 3]> = BTreeMap::new();
    for ((_, grp), counts) in &rows {
        let total = totals.entry(grp.clone()).or_default();
        (0..3).for_each(|i| total[i] += counts[i]);
    }
    let ratio = |a: i64, b: i64| if b > 0 { Cell::from(a as f64 / b as f64) } else { Cell::Null };
    let row = |period: &str, grp: &str, [users, activated, spend]: [i64; 3]| {
        let curve = values.curves.get(&(period.to_string(), grp.to_string()));
        let cac = (users > 0 && spend > 0).then(|| spend as f64 / users as f64);
        let realised_payback = curve.zip(cac).and_then(|(curve, c)| curve.realised_payback_day(c));
        let ltv = curve.filter(|_| values.predicted).and_then(Curve::per_user_fen);
        let projected_payback = curve.filter(|_| values.predicted).zip(cac).and_then(|(curve, c)| curve.payback_day(c));
        vec![
            Cell::from(period),
            Cell::from(grp),
            Cell::from(users),
            Cell::from(spend),
            ratio(spend, users),
            Cell::from(activated),
            ratio(activated, users),
            ratio(spend, activated),
            Cell::from(realised_payback),
            Cell::from(ltv),
            Cell::from(ltv.zip(cac).map(|(l, c)| l / c)),
            Cell::from(projected_payback),
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
        "ltv_fen",
        "ltv_to_cac",
        "payback_days_projected",
    ]);
    t.rows = rows.iter().map(|((period, grp), counts)| row(period, grp, *counts)).collect();
    t.rows.extend(totals.iter().map(|(grp, counts)| row(TOTAL, grp, *counts)));
    t.notes = values.notes;
    Ok(t)
}

/// New users, activated users and spend per (period, group).
async fn counts(ctx: &SessionContext, a: &Acquisition) -> Result<BTreeMap<(String, String), [i64; 3]>, InsightError> {
    let cohorts = format!(
        "WITH s AS (SELECT user_id, grp, t0 FROM {SIGNUPS_TABLE}), per_user AS ({per_user}) \
         SELECT {t0_period} AS period, grp, count(*) AS new_users, \
         sum(CASE WHEN {all} THEN 1 ELSE 0 END) AS activated FROM per_user GROUP BY 1, 2",
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
    let mut rows: BTreeMap<(String, String), [i64; 3]> = BTreeMap::new();
    for r in table::rows(&sql(ctx, &cohorts).await?)? {
        let e = rows.entry((table::group(&r, 0), table::group(&r, 1))).or_default();
        e[0] += table::int(&r, 2, "new_users")?;
        e[1] += table::int(&r, 3, "activated")?;
    }
    if ctx.table_exist("marketing_spend")? {
        for r in table::rows(&sql(ctx, &spend).await?)? {
            // A group whose spend rows all lack an amount spent nothing.
            let spent = table::int_or_null(&r, 2, "spend_fen")?.unwrap_or(0);
            rows.entry((table::group(&r, 0), table::group(&r, 1))).or_default()[2] += spent;
        }
    }
    Ok(rows)
}

/// The label of the rows over the whole range.
const TOTAL: &str = "total";

/// The new users' revenue curves and what is known of the models behind them.
struct Values {
    /// Per (period, group) and per ("total", group).
    curves: BTreeMap<(String, String), Curve>,
    /// Whether the curves hold expected revenue after each user's last observed day (the models
    /// were fitted), or realised revenue only.
    predicted: bool,
    /// The models and the as-of day, or why there are no predictions.
    notes: Vec<String>,
}

/// Revenue curves of the new users per (period, group) and per ("total", group): the history
/// and the signups are read, then the models fitted and the curves built off the async workers.
async fn value_curves(ctx: &SessionContext, a: &Acquisition) -> Result<Values, InsightError> {
    let end_day = a.scope.to.and_then(|t| t.succ_opt()).map(|d| d.signed_duration_since(date_of_day(0)).num_days());
    let signups = format!("SELECT user_id, grp, {} FROM {SIGNUPS_TABLE}", a.period.trunc_sql("t0"));
    let (history, signups) = tokio::try_join!(History::read(ctx, end_day), sql(ctx, &signups))?;
    let horizon_days = a.ltv_horizon_days;
    tokio::task::spawn_blocking(move || build_values(&history, &signups, horizon_days))
        .await
        .map_err(|e| InsightError::Query(format!("value curves stopped: {e}")))?
}

/// Fits the value models on `history`, sums each signup's revenue curve into its (period,
/// group), and each group's periods into its total.
fn build_values(history: &History, signups: &[RecordBatch], horizon_days: i64) -> Result<Values, InsightError> {
    let model = ValueModel::fit(history);
    let notes = match &model {
        Ok(m) => std::iter::once(format!(
            "LTV over {horizon_days} days after signup, as of {}: realised revenue, then {}",
            date_of_day(history.as_of_day - 1),
            m.describe()
        ))
        .chain(m.warnings())
        .collect(),
        Err(why) => vec![format!("no LTV: {why}")],
    };
    let mut projector = Projector::new(history, model.as_ref().ok(), horizon_days);
    let mut curves: BTreeMap<(String, String), Curve> = BTreeMap::new();
    let mut labels: HashMap<i64, String> = HashMap::new();
    for b in signups {
        let users = finpulse_query::text_values(b.column(0))?;
        let groups = finpulse_query::text_values(b.column(1))?;
        let periods = arrow::compute::cast(b.column(2), &DataType::Timestamp(TimeUnit::Microsecond, None))
            .map_err(|e| InsightError::Query(e.to_string()))?;
        let periods = periods.as_primitive::<TimestampMicrosecondType>();
        for (i, (user, grp)) in users.into_iter().zip(groups).enumerate() {
            let Some(user) = user else { continue };
            let period = labels.entry(periods.value(i)).or_insert_with_key(|&us| finpulse_core::time::format_us_brief(us)).clone();
            let key = (period, grp.unwrap_or_else(|| "(none)".to_string()));
            projector.add(curves.entry(key).or_insert_with(|| projector.curve()), &user);
        }
    }
    curves.values_mut().for_each(Curve::finish);
    // A group's total is the sum of its periods.
    let mut totals: BTreeMap<(String, String), Curve> = BTreeMap::new();
    for ((_, grp), curve) in &curves {
        totals.entry((TOTAL.to_string(), grp.clone())).or_insert_with(|| projector.curve()).absorb(curve);
    }
    curves.extend(totals);
    Ok(Values { curves, predicted: model.is_ok(), notes })
}

#[cfg(test)]
mod tests {
    use crate::segments::SegmentBook;
    use crate::test_support::{runtime, simulate};
    use crate::{Cell, InsightKind, InsightOptions};

    fn column<'a>(t: &'a crate::Table, name: &str) -> Vec<&'a Cell> {
        let i = t.columns.iter().position(|c| c == name).unwrap_or_else(|| panic!("no column {name}"));
        t.rows.iter().map(|r| &r[i]).collect()
    }

    #[test]
    fn ltv_and_projected_payback_read_only_what_was_known_on_the_last_day() {
        let (_dir, mut store) = crate::test_support::empty_store();
        // The simulator's days are Beijing days (UTC+8): after its 31st, every event up to
        // 2026-01-31 16:00 UTC is in, which covers 2026-01-30 (UTC) whole.
        let mut after_day_31 = None;
        simulate(&mut store, 1500, 45, 11, |store, day| {
            if day == 31 {
                after_day_31 = Some(store.view_handle().snapshot());
            }
        });
        let (then, now) = (after_day_31.unwrap(), store.view_handle().snapshot());
        let rt = runtime();
        let ask = |view, options: InsightOptions| {
            let insight = options.into_insight(InsightKind::Acquisition).unwrap();
            rt.block_on(crate::run(view, &SegmentBook::empty(), &insight)).unwrap()
        };
        // Asked later with `to` set to 2026-01-30, LTV and payback are the ones given then (up to
        // the order floating-point sums ran in). Activation may differ: its 7-day window runs past `to`.
        let body = InsightOptions { period: Some("week".into()), to: Some("2026-01-30".into()), ..Default::default() };
        let (later, earlier) = (ask(&now, body.clone()), ask(&then, body));
        assert_eq!(later.notes, earlier.notes);
        for name in ["payback_days", "ltv_fen", "ltv_to_cac", "payback_days_projected"] {
            for (a, b) in column(&later, name).into_iter().zip(column(&earlier, name)) {
                let same = match (a.as_float(), b.as_float()) {
                    (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
                    _ => a == b,
                };
                assert!(same, "{name}: {a:?} later, {b:?} then");
            }
        }
        assert!(later.notes[0].contains("as of 2026-01-30") && later.notes[0].contains("BG/NBD"), "{:?}", later.notes);

        let (ltv, cac, ratio) = (column(&later, "ltv_fen"), column(&later, "cac_fen"), column(&later, "ltv_to_cac"));
        let (realised, projected) = (column(&later, "payback_days"), column(&later, "payback_days_projected"));
        assert!(ltv.iter().filter(|v| v.as_float().is_some()).count() >= 5, "{later:?}");
        for i in 0..later.rows.len() {
            if let (Some(l), Some(c)) = (ltv[i].as_float(), cac[i].as_float()) {
                assert!((ratio[i].as_float().unwrap() - l / c).abs() < 1e-9 * l / c);
            }
            // Expected revenue only adds to realised revenue: it pays back no later.
            if let Some(r) = realised[i].as_int() {
                assert!(projected[i].as_int().is_some_and(|p| p <= r), "row {i}: {:?}", later.rows[i]);
            }
        }

        // A longer horizon is worth at least as much, row by row.
        let longer = ask(
            &now,
            InsightOptions {
                period: Some("week".into()),
                to: Some("2026-01-30".into()),
                ltv_horizon: Some("730d".into()),
                ..Default::default()
            },
        );
        for (short, long) in ltv.iter().zip(column(&longer, "ltv_fen")) {
            assert!(long.as_float().unwrap() >= short.as_float().unwrap());
        }
        assert!(longer.notes[0].contains("over 730 days"));
    }

    #[test]
    fn ltv_horizons_are_whole_days_within_the_limit() {
        let (_dir, mut store) = crate::test_support::empty_store();
        simulate(&mut store, 50, 3, 5, |_, _| {});
        let view = store.view_handle().snapshot();
        let rt = runtime();
        for (horizon, says) in [("36h", "whole days"), ("4000d", "at most 3650d"), ("0d", "more than 0"), ("soon", "not a duration")] {
            let insight =
                InsightOptions { ltv_horizon: Some(horizon.into()), ..Default::default() }.into_insight(InsightKind::Acquisition).unwrap();
            match rt.block_on(crate::run(&view, &SegmentBook::empty(), &insight)) {
                Err(crate::InsightError::Param { param, message }) => {
                    assert_eq!(param, "ltv_horizon");
                    assert!(message.contains(says), "{horizon}: {message}");
                }
                other => panic!("{horizon}: {other:?}"),
            }
        }
    }
}
