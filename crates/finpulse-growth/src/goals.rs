//! KPI goals in the operating plan's three dimensions — growth, value, compliance — each a
//! built-in metric with a target and a deadline. Evaluating a goal computes the metric's daily
//! series from the events, its current value, a linear trend over the last
//! [`TREND_DAYS`] days projected to the deadline, and a status: on track, at risk (projected
//! within [`AT_RISK_GAP`] of the target, relative), off track; met or missed once the deadline
//! has passed. Goals are kept in `<data-dir>/goals.json`.

use crate::table::{self, Cell};
use crate::versioned::JsonVersions;
use crate::{InsightError, Table, sql};
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use finpulse_core::versions::{Activation, Kind, VersionsError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Days of the series the trend is fitted on.
pub const TREND_DAYS: usize = 28;
/// A projection short of the target by at most this share of it is "at risk", not "off track".
pub const AT_RISK_GAP: f64 = 0.05;
/// The window of the quarterly retention metric, in days.
pub const RETENTION_WINDOW_DAYS: i64 = 90;
/// The window of the incident-rate, MAU and monthly retention metrics, in days.
pub const TRAILING_DAYS: i64 = 30;

/// The metrics a goal can track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Growth: of the users active in the 90 days before the last 90, the share active in the last 90.
    Retention90d,
    /// Growth: the same over 30-day windows.
    Retention30d,
    /// Growth: users active in the last 30 days.
    Mau,
    /// Growth: signups in the last 7 days.
    NewUsers7d,
    /// Value: assets under management, fen: wealth purchases less redemptions, cumulative.
    AumFen,
    /// Value: revenue over marketing spend, cumulative (realised return on acquisition).
    RevenueRoi,
    /// Compliance: fraud labels over payments in the last 30 days.
    RiskIncidentRate,
}

impl Metric {
    /// All metrics, for help and errors.
    pub const ALL: [Metric; 7] =
        [Self::Retention90d, Self::Retention30d, Self::Mau, Self::NewUsers7d, Self::AumFen, Self::RevenueRoi, Self::RiskIncidentRate];

    /// The name used in requests.
    pub fn name(self) -> &'static str {
        match self {
            Self::Retention90d => "retention_90d",
            Self::Retention30d => "retention_30d",
            Self::Mau => "mau",
            Self::NewUsers7d => "new_users_7d",
            Self::AumFen => "aum_fen",
            Self::RevenueRoi => "revenue_roi",
            Self::RiskIncidentRate => "risk_incident_rate",
        }
    }

    /// The plan dimension it belongs to.
    pub fn dimension(self) -> &'static str {
        match self {
            Self::Retention90d | Self::Retention30d | Self::Mau | Self::NewUsers7d => "growth",
            Self::AumFen | Self::RevenueRoi => "value",
            Self::RiskIncidentRate => "compliance",
        }
    }

    /// Whether its values are shares (between 0 and 1).
    pub fn is_share(self) -> bool {
        matches!(self, Self::Retention90d | Self::Retention30d | Self::RiskIncidentRate)
    }

    /// Whether more is better.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Self::RiskIncidentRate)
    }

    fn parse(text: &str) -> Result<Self, InsightError> {
        Self::ALL.into_iter().find(|m| m.name() == text).ok_or_else(|| {
            InsightError::param("metric", format!("unknown metric '{text}' (known: {})", Self::ALL.map(Metric::name).join(", ")))
        })
    }
}

/// A goal as saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Goal {
    /// Its name.
    pub name: String,
    /// One of [`Metric::ALL`], by name.
    pub metric: String,
    /// The target value (shares as fractions: 0.85 for 85%).
    pub target: f64,
    /// `YYYY-MM-DD`: when the target must hold.
    pub deadline: String,
}

impl Goal {
    /// Checks a goal.
    pub fn check(&self) -> Result<(Metric, NaiveDate), InsightError> {
        if self.name.trim().is_empty() {
            return Err(InsightError::param("name", "give the goal a name"));
        }
        let metric = Metric::parse(&self.metric)?;
        if !self.target.is_finite() {
            return Err(InsightError::param("target", "must be a number"));
        }
        let deadline = NaiveDate::parse_from_str(&self.deadline, "%Y-%m-%d")
            .map_err(|_| InsightError::param("deadline", format!("'{}' is not a date (YYYY-MM-DD)", self.deadline)))?;
        Ok((metric, deadline))
    }
}

/// The goals of a data directory, each versioned ([`finpulse_core::versions`], in
/// `<data-dir>/goals`): setting a goal stores a new version, removing one keeps them, and a
/// roll-back returns to the one before. Goals kept in `goals.json` before are adopted once.
#[derive(Debug, Clone)]
pub struct GoalBook {
    data_dir: PathBuf,
    /// Goals by name.
    pub goals: BTreeMap<String, Goal>,
}

/// Where goals are versioned inside a data directory.
pub const GOALS_DIR: &str = "goals";
/// Where goals were kept before they were versioned; adopted once, left in place.
pub const EARLIER_GOALS_FILE: &str = "goals.json";

const GOALS: Kind = Kind { noun: "goal", format: "finpulse-goals/1", reads_also: &[], no_active_hint: "", ext: "json" };

impl GoalBook {
    fn store(data_dir: &Path) -> JsonVersions<Goal> {
        JsonVersions::new(data_dir.join(GOALS_DIR), GOALS)
    }

    /// Loads the active goals (none when there are none).
    pub fn load(data_dir: &Path) -> Result<Self, InsightError> {
        let store = Self::store(data_dir);
        let earlier = data_dir.join(EARLIER_GOALS_FILE);
        if earlier.exists() {
            store.adopt(|| {
                let text = std::fs::read(&earlier).map_err(|source| VersionsError::Io { path: earlier.clone(), source })?;
                let list: Vec<Goal> =
                    serde_json::from_slice(&text).map_err(|e| VersionsError::Format { path: earlier.clone(), detail: e.to_string() })?;
                Ok(list.into_iter().map(|g| (g.name.clone(), serde_json::to_vec_pretty(&g).expect("a goal serialises"))).collect())
            })?;
        }
        Ok(Self { data_dir: data_dir.to_path_buf(), goals: store.active()? })
    }

    /// Adds or replaces a goal as the next version of its name, durably, recording `by`.
    pub fn set(&mut self, goal: Goal, by: &str) -> Result<(), InsightError> {
        goal.check()?;
        Self::store(&self.data_dir).put(&goal.name, &goal, by)?;
        self.goals.insert(goal.name.clone(), goal);
        Ok(())
    }

    /// Removes a goal (its versions stay); false when there was none.
    pub fn remove(&mut self, name: &str, by: &str) -> Result<bool, InsightError> {
        let removed = Self::store(&self.data_dir).remove(name, by)?;
        self.goals.remove(name);
        Ok(removed)
    }

    /// Returns a goal to its version before the current one (or brings back a removed one).
    pub fn rollback(&mut self, name: &str, by: &str) -> Result<Activation, InsightError> {
        let (a, goal) = Self::store(&self.data_dir).rollback(name, by)?;
        self.goals.insert(name.to_string(), goal);
        Ok(a)
    }

    /// Every change of the goals, oldest first.
    pub fn history(&self) -> Result<Vec<Activation>, InsightError> {
        Self::store(&self.data_dir).history()
    }
}

/// A metric's value per day (days since 1970-01-01), for every day from the first with data.
type Series = BTreeMap<i64, f64>;

async fn daily_counts(ctx: &SessionContext, q: &str) -> Result<BTreeMap<i64, f64>, InsightError> {
    let mut out = BTreeMap::new();
    for r in table::rows(&sql(ctx, q).await?)? {
        // A day with no value of the metric is not a day of the series.
        if let (Some(day), Some(v)) = (table::int_or_null(&r, 0, "day")?, table::float_or_null(&r, 1, "value")?) {
            out.insert(day, v);
        }
    }
    Ok(out)
}

fn day_sql(column: &str) -> String {
    format!("CAST(floor(date_part('epoch', {column}) / 86400) AS BIGINT)")
}

/// The metric's value at the end of each day.
async fn series(ctx: &SessionContext, any_user_event: &str, metric: Metric, first: i64, last: i64) -> Result<Series, InsightError> {
    let days = first..=last;
    let cumulative = |flows: &BTreeMap<i64, f64>| -> Series {
        let mut total = 0.0;
        days.clone()
            .map(|d| {
                total += flows.get(&d).copied().unwrap_or(0.0);
                (d, total)
            })
            .collect()
    };
    let trailing = |flows: &BTreeMap<i64, f64>, n: i64| -> BTreeMap<i64, f64> {
        days.clone().map(|d| (d, flows.range(d - n + 1..=d).map(|(_, v)| v).sum())).collect()
    };
    let exists = |t: &str| ctx.table_exist(t);
    Ok(match metric {
        Metric::NewUsers7d => {
            let signups = if exists("user_signup")? {
                daily_counts(ctx, &format!("SELECT {}, count(*) FROM user_signup GROUP BY 1", day_sql("ts"))).await?
            } else {
                BTreeMap::new()
            };
            trailing(&signups, 7)
        }
        Metric::AumFen => {
            let mut flows = BTreeMap::new();
            for (t, sign) in [("wealth_purchase", 1.0), ("wealth_redemption", -1.0)] {
                if exists(t)? {
                    for (d, v) in daily_counts(ctx, &format!("SELECT {}, sum(amount_fen) FROM {t} GROUP BY 1", day_sql("ts"))).await? {
                        *flows.entry(d).or_insert(0.0) += sign * v;
                    }
                }
            }
            cumulative(&flows)
        }
        Metric::RevenueRoi => {
            let flow = |t: &'static str| async move {
                if ctx.table_exist(t)? {
                    daily_counts(ctx, &format!("SELECT {}, sum(amount_fen) FROM {t} GROUP BY 1", day_sql("ts"))).await
                } else {
                    Ok(BTreeMap::new())
                }
            };
            let (revenue, spend) = (cumulative(&flow("revenue").await?), cumulative(&flow("marketing_spend").await?));
            revenue.iter().filter(|(d, _)| spend[d] > 0.0).map(|(d, r)| (*d, r / spend[d])).collect()
        }
        Metric::RiskIncidentRate => {
            let q = |t: &str, cond: &str| format!("SELECT {}, count(*) FROM {t} WHERE {cond} GROUP BY 1", day_sql("ts"));
            let payments = if exists("payment")? {
                trailing(&daily_counts(ctx, &q("payment", "TRUE")).await?, TRAILING_DAYS)
            } else {
                BTreeMap::new()
            };
            let frauds = if exists("fraud_label")? {
                trailing(&daily_counts(ctx, &q("fraud_label", "is_fraud")).await?, TRAILING_DAYS)
            } else {
                BTreeMap::new()
            };
            payments.iter().filter(|(_, p)| **p > 0.0).map(|(d, p)| (*d, frauds.get(d).copied().unwrap_or(0.0) / p)).collect()
        }
        Metric::Mau | Metric::Retention90d | Metric::Retention30d => {
            let daily = crate::lifecycle::daily_sql("", "events e", "'all'", any_user_event);
            let activity: Vec<Vec<i64>> = crate::lifecycle::active_days(ctx, &daily).await?.into_iter().map(|(_, d)| d).collect();
            let active_in = |days: &[i64], from: i64, to: i64| {
                let i = days.partition_point(|&d| d < from);
                i < days.len() && days[i] <= to
            };
            days.clone()
                .filter_map(|d| {
                    if metric == Metric::Mau {
                        return Some((d, activity.iter().filter(|u| active_in(u, d - TRAILING_DAYS + 1, d)).count() as f64));
                    }
                    let w = if metric == Metric::Retention90d { RETENTION_WINDOW_DAYS } else { TRAILING_DAYS };
                    // Only once the data covers the earlier window entirely.
                    if d - 2 * w + 1 < first {
                        return None;
                    }
                    let earlier = activity.iter().filter(|u| active_in(u, d - 2 * w + 1, d - w)).collect::<Vec<_>>();
                    let kept = earlier.iter().filter(|u| active_in(u, d - w + 1, d)).count();
                    (!earlier.is_empty()).then(|| (d, kept as f64 / earlier.len() as f64))
                })
                .collect()
        }
    })
}

/// Least-squares line through the last [`TREND_DAYS`] points, evaluated at `day`.
fn project(series: &Series, day: i64) -> Option<f64> {
    let points: Vec<(f64, f64)> = series.iter().rev().take(TREND_DAYS).map(|(d, v)| (*d as f64, *v)).collect();
    if points.len() < 2 {
        return points.first().map(|p| p.1);
    }
    let n = points.len() as f64;
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    Some(my + slope * (day as f64 - mx))
}

/// The status of a goal given its current value, projection and whether the deadline passed.
pub fn status(metric: Metric, target: f64, current: Option<f64>, projected: Option<f64>, deadline_passed: bool) -> &'static str {
    let meets = |v: f64| if metric.higher_is_better() { v >= target } else { v <= target };
    if deadline_passed {
        return match current {
            Some(v) if meets(v) => "met",
            Some(_) => "missed",
            None => "no data",
        };
    }
    match projected {
        None => "no data",
        Some(p) if meets(p) => "on track",
        Some(p) => {
            let gap = if metric.higher_is_better() { target - p } else { p - target };
            if gap <= AT_RISK_GAP * target.abs().max(f64::EPSILON) { "at risk" } else { "off track" }
        }
    }
}

/// Evaluates every goal against the data.
pub async fn evaluate(ctx: &SessionContext, registry: &finpulse_core::Registry, book: &GoalBook) -> Result<Table, InsightError> {
    let any_user_event = crate::params::EventSpec::parse("any", registry, "metric")?;
    let mut t = Table::new(&["name", "dimension", "metric", "target", "deadline", "as_of", "current", "projected", "status"]);
    if book.goals.is_empty() {
        return Ok(t);
    }
    let bounds = table::rows(&sql(ctx, &format!("SELECT min({d}), max({d}) FROM events", d = day_sql("ts"))).await?)?;
    let (Some(first), Some(last)) = (table::int_or_null(&bounds[0], 0, "first day")?, table::int_or_null(&bounds[0], 1, "last day")?)
    else {
        return Ok(t);
    };
    let mut cache: BTreeMap<&str, Series> = BTreeMap::new();
    for goal in book.goals.values() {
        let (metric, deadline) = goal.check()?;
        if !cache.contains_key(metric.name()) {
            cache.insert(metric.name(), series(ctx, any_user_event.sql(), metric, first, last).await?);
        }
        let s = &cache[metric.name()];
        let deadline_day = deadline.signed_duration_since(NaiveDate::default()).num_days();
        let passed = deadline_day <= last;
        // Past the deadline, judge the value on the deadline.
        let current = if passed { s.range(..=deadline_day).next_back().map(|(_, v)| *v) } else { s.values().next_back().copied() };
        // Every metric is at least 0; shares are at most 1.
        let ceiling = if metric.is_share() { 1.0 } else { f64::INFINITY };
        let projected = if passed { current } else { project(s, deadline_day).map(|p| p.clamp(0.0, ceiling)) };
        t.rows.push(vec![
            Cell::from(goal.name.as_str()),
            Cell::from(metric.dimension()),
            Cell::from(metric.name()),
            Cell::from(goal.target),
            Cell::from(goal.deadline.as_str()),
            Cell::Day(last),
            Cell::from(current),
            Cell::from(projected),
            Cell::from(status(metric, goal.target, current, projected, passed)),
        ]);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rising_series_is_projected_along_its_line() {
        let s: Series = (0..10).map(|d| (d, 0.5 + 0.01 * d as f64)).collect();
        assert!((project(&s, 20).unwrap() - 0.70).abs() < 1e-9);
    }

    #[test]
    fn status_reads_direction_and_the_at_risk_band() {
        assert_eq!(status(Metric::Retention90d, 0.85, Some(0.8), Some(0.86), false), "on track");
        assert_eq!(status(Metric::Retention90d, 0.85, Some(0.8), Some(0.83), false), "at risk");
        assert_eq!(status(Metric::Retention90d, 0.85, Some(0.8), Some(0.70), false), "off track");
        assert_eq!(status(Metric::RiskIncidentRate, 0.005, Some(0.004), Some(0.004), false), "on track");
        assert_eq!(status(Metric::RiskIncidentRate, 0.005, Some(0.012), Some(0.012), false), "off track");
        assert_eq!(status(Metric::RiskIncidentRate, 0.005, Some(0.012), None, true), "missed");
    }

    #[test]
    fn bad_goals_are_named() {
        let g = |metric: &str, deadline: &str| Goal { name: "g".into(), metric: metric.into(), target: 1.0, deadline: deadline.into() };
        assert!(g("happiness", "2026-06-30").check().unwrap_err().to_string().starts_with("metric: unknown metric 'happiness'"));
        assert!(g("mau", "June").check().unwrap_err().to_string().starts_with("deadline:"));
    }
}
