//! The profit balance: the revenue mix per period, held to guardrails, projected to the end of
//! the current period, with alerts and what-if.
//!
//! The projection fits, for each stream's daily revenue (and each stream's and the total's
//! daily costs) over the last `trend_days` business days, a least-squares line, and adds the
//! line's values for the days left in the period (never below zero) to what the period has
//! booked so far. Least squares because a line is what the data can support over a few weeks:
//! daily revenue is noisy (weekdays, month-end settlements) and a whole number of weeks in the
//! window averages the weekday pattern out; the line is the unbiased straight-line fit, it
//! is explainable to whoever reads the alert, and it is the trend the goals board uses, so a
//! goal and a guardrail over the same series project alike. Amounts are projected, not shares:
//! shares computed from projected amounts stay within 0 and 1 and sum to one, which lines
//! fitted to shares would not.

pub mod config;

use crate::account::Stream;
use crate::ledger::State;
use crate::period::{Period, day_of};
use crate::report::{Counted, View, counted};
use config::{Guardrail, ProfitConfig, Subject};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Revenue and costs of one period (or part of one), in minor units of the configured currency.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Mix {
    /// The first business day of the period.
    pub period_start_day: i64,
    /// The period as text.
    pub period: String,
    /// Revenue by stream (accrual).
    pub revenue_minor: BTreeMap<Stream, i128>,
    /// Costs attributed to a stream.
    pub cost_minor: BTreeMap<Stream, i128>,
    /// All costs, attributed or not.
    pub cost_total_minor: i128,
}

impl Mix {
    /// All revenue.
    pub fn revenue_total_minor(&self) -> i128 {
        self.revenue_minor.values().sum()
    }

    /// Each stream's share of revenue (empty when there is no positive revenue).
    pub fn shares(&self) -> BTreeMap<Stream, f64> {
        let total = self.revenue_total_minor();
        if total <= 0 {
            return BTreeMap::new();
        }
        self.revenue_minor.iter().map(|(s, v)| (*s, *v as f64 / total as f64)).collect()
    }

    fn revenue_of(&self, subject: Subject) -> i128 {
        match subject {
            Subject::Stream(s) => self.revenue_minor.get(&s).copied().unwrap_or(0),
            Subject::Total => self.revenue_total_minor(),
        }
    }

    fn cost_of(&self, subject: Subject) -> i128 {
        match subject {
            Subject::Stream(s) => self.cost_minor.get(&s).copied().unwrap_or(0),
            Subject::Total => self.cost_total_minor,
        }
    }

    /// (revenue - costs) / revenue of a subject; `None` without positive revenue.
    pub fn margin(&self, subject: Subject) -> Option<f64> {
        let r = self.revenue_of(subject);
        (r > 0).then(|| (r - self.cost_of(subject)) as f64 / r as f64)
    }

    /// A subject's share of revenue; `None` without positive revenue.
    pub fn share(&self, subject: Subject) -> Option<f64> {
        let total = self.revenue_total_minor();
        (total > 0).then(|| self.revenue_of(subject) as f64 / total as f64)
    }

    fn add(&mut self, other: &Mix) {
        for (s, v) in &other.revenue_minor {
            *self.revenue_minor.entry(*s).or_insert(0) += v;
        }
        for (s, v) in &other.cost_minor {
            *self.cost_minor.entry(*s).or_insert(0) += v;
        }
        self.cost_total_minor += other.cost_total_minor;
    }
}

/// Which bound an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// Share above `share_max`.
    ShareMax,
    /// Share below `share_min`.
    ShareMin,
    /// Growth above `growth_max`.
    GrowthMax,
    /// Growth below `growth_min`.
    GrowthMin,
    /// Margin below `margin_floor`.
    MarginFloor,
}

impl Bound {
    /// The configuration field's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ShareMax => "share_max",
            Self::ShareMin => "share_min",
            Self::GrowthMax => "growth_max",
            Self::GrowthMin => "growth_min",
            Self::MarginFloor => "margin_floor",
        }
    }

    fn is_upper(self) -> bool {
        matches!(self, Self::ShareMax | Self::GrowthMax)
    }
}

/// Whether the bound is crossed already or will be by the period's end on the trend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// The period so far crosses the bound.
    Breach,
    /// The period so far keeps to it; the projection to the period's end crosses it.
    ProjectedBreach,
}

/// A guardrail crossed, or projected to be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable id: one alert per period, subject, bound and status.
    pub id: String,
    /// The period's first business day.
    pub period_start_day: i64,
    /// The period as text.
    pub period: String,
    /// The stream, or `total`.
    pub subject: Subject,
    /// The bound crossed.
    pub bound: Bound,
    /// Crossed or projected to be.
    pub status: AlertStatus,
    /// The value found (a share, growth or margin as a fraction).
    pub value: f64,
    /// The bound's value.
    pub limit: f64,
    /// The moment the data was assessed at, UTC microseconds.
    pub as_of_us: i64,
}

/// The mix as of a moment: history, the current period so far, its projection, the alerts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assessment {
    /// The last business day counted.
    pub as_of_day: i64,
    /// The moment assessed, UTC microseconds (stamped on alerts).
    pub as_of_us: i64,
    /// Every period with data up to the current one (which is partial).
    pub history: Vec<Mix>,
    /// The current period up to `as_of_day`.
    pub to_date: Mix,
    /// The current period projected to its end; `None` with too little history.
    pub projected: Option<Mix>,
    /// The previous period, whole.
    pub previous: Mix,
    /// Guardrails crossed, or projected to be.
    pub alerts: Vec<Alert>,
}

/// Daily revenue and costs in the configured currency, up to a day.
struct Daily {
    days: BTreeMap<i64, Mix>,
}

impl Daily {
    fn of(state: &State, config: &ProfitConfig, last_day: i64) -> Self {
        let mut days: BTreeMap<i64, Mix> = BTreeMap::new();
        for tx in state.transactions() {
            let day = day_of(tx.booked_us);
            if day > last_day {
                continue;
            }
            for (p, c) in counted(tx, View::Accrual).filter(|(p, _)| p.currency == config.currency) {
                let m = days.entry(day).or_default();
                match (c, p.account.stream) {
                    (Counted::Revenue(v), Some(s)) => *m.revenue_minor.entry(s).or_insert(0) += v,
                    (Counted::Revenue(_), None) => {}
                    (Counted::Cost(v), stream) => {
                        m.cost_total_minor += v;
                        if let Some(s) = stream {
                            *m.cost_minor.entry(s).or_insert(0) += v;
                        }
                    }
                }
            }
        }
        Self { days }
    }

    /// The sum over business days `first..=last`, labelled as `period` starting at `start`.
    fn sum(&self, first: i64, last: i64, period: Period, start: i64) -> Mix {
        let mut m = Mix { period_start_day: start, period: period.label(start), ..Default::default() };
        for (_, d) in self.days.range(first..=last) {
            m.add(d);
        }
        m
    }
}

/// Assesses the mix as of business day `as_of_day` (inclusive) against `config`.
pub fn assess(state: &State, config: &ProfitConfig, as_of_day: i64, as_of_us: i64) -> Assessment {
    let daily = Daily::of(state, config, as_of_day);
    let period = config.period;
    let start = period.start(as_of_day);
    let end = period.next_start(as_of_day) - 1;
    let prev_start = period.start(start - 1);
    let mut history = Vec::new();
    if let Some((&first, _)) = daily.days.first_key_value() {
        let mut s = period.start(first);
        while s <= start {
            history.push(daily.sum(s, period.next_start(s) - 1, period, s));
            s = period.next_start(s);
        }
    }
    let to_date = daily.sum(start, as_of_day, period, start);
    let previous = daily.sum(prev_start, start - 1, period, prev_start);
    // The same days of the previous period as the current one has had so far.
    let elapsed = as_of_day - start;
    let previous_to_date = daily.sum(prev_start, (prev_start + elapsed).min(start - 1), period, prev_start);
    let projected = project(&daily, config, as_of_day, end).map(|rest| {
        let mut p = to_date.clone();
        p.add(&rest);
        p
    });
    let mut alerts = Vec::new();
    for g in &config.guardrails {
        let current = Values::of(g.subject, &to_date, &previous_to_date);
        let ahead = projected.as_ref().map(|p| Values::of(g.subject, p, &previous));
        alerts.extend(check(g, &current, ahead.as_ref(), &to_date, as_of_us));
    }
    Assessment { as_of_day, as_of_us, history, to_date, projected, previous, alerts }
}

/// A volume change for what-if: the stream's revenue (and costs attributed to it) scaled by
/// `1 + growth` over the period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VolumeChange {
    /// The stream.
    pub stream: Stream,
    /// The relative change (0.3 = +30%), at least -1.
    pub growth: f64,
}

/// Where the mix lands if volumes change: the period's projection (or, with too little
/// history for one, the period so far) with each change applied, and the guardrails it
/// would cross. Nothing is stored.
pub fn what_if(assessment: &Assessment, config: &ProfitConfig, changes: &[VolumeChange]) -> Result<(Mix, Vec<Alert>), crate::LedgerError> {
    let mut mix = assessment.projected.clone().unwrap_or_else(|| assessment.to_date.clone());
    for (i, c) in changes.iter().enumerate() {
        if !c.growth.is_finite() || c.growth < -1.0 {
            return Err(crate::LedgerError::invalid(format!("changes[{i}].growth"), format!("{} (at least -1 expected)", c.growth)));
        }
        let scale = |v: &mut i128| *v = (*v as f64 * (1.0 + c.growth)).round() as i128;
        let attributed_before = mix.cost_minor.get(&c.stream).copied().unwrap_or(0);
        mix.revenue_minor.entry(c.stream).and_modify(scale);
        mix.cost_minor.entry(c.stream).and_modify(scale);
        mix.cost_total_minor += mix.cost_minor.get(&c.stream).copied().unwrap_or(0) - attributed_before;
    }
    let mut alerts = Vec::new();
    for g in &config.guardrails {
        let v = Values::of(g.subject, &mix, &assessment.previous);
        alerts.extend(check(g, &v, None, &mix, assessment.as_of_us).into_iter().map(|mut a| {
            a.status = AlertStatus::ProjectedBreach;
            a.id = alert_id(&mix, g.subject, a.bound, a.status);
            a
        }));
    }
    Ok((mix, alerts))
}

/// The values a guardrail reads.
struct Values {
    share: Option<f64>,
    growth: Option<f64>,
    margin: Option<f64>,
}

impl Values {
    fn of(subject: Subject, mix: &Mix, before: &Mix) -> Self {
        let (now, then) = (mix.revenue_of(subject), before.revenue_of(subject));
        let growth = (then > 0).then(|| now as f64 / then as f64 - 1.0);
        let share = if subject == Subject::Total { None } else { mix.share(subject) };
        Self { share, growth, margin: mix.margin(subject) }
    }

    fn get(&self, bound: Bound) -> Option<f64> {
        match bound {
            Bound::ShareMax | Bound::ShareMin => self.share,
            Bound::GrowthMax | Bound::GrowthMin => self.growth,
            Bound::MarginFloor => self.margin,
        }
    }
}

fn check(g: &Guardrail, current: &Values, ahead: Option<&Values>, period: &Mix, as_of_us: i64) -> Vec<Alert> {
    let bounds = [
        (Bound::ShareMax, g.share_max),
        (Bound::ShareMin, g.share_min),
        (Bound::GrowthMax, g.growth_max),
        (Bound::GrowthMin, g.growth_min),
        (Bound::MarginFloor, g.margin_floor),
    ];
    let crosses = |bound: Bound, limit: f64, v: f64| if bound.is_upper() { v > limit } else { v < limit };
    let mut out = Vec::new();
    for (bound, limit) in bounds {
        let Some(limit) = limit else { continue };
        let found = match (current.get(bound), ahead.and_then(|a| a.get(bound))) {
            (Some(v), _) if crosses(bound, limit, v) => Some((AlertStatus::Breach, v)),
            (_, Some(v)) if crosses(bound, limit, v) => Some((AlertStatus::ProjectedBreach, v)),
            _ => None,
        };
        if let Some((status, value)) = found {
            out.push(Alert {
                id: alert_id(period, g.subject, bound, status),
                period_start_day: period.period_start_day,
                period: period.period.clone(),
                subject: g.subject,
                bound,
                status,
                value,
                limit,
                as_of_us,
            });
        }
    }
    out
}

fn alert_id(period: &Mix, subject: Subject, bound: Bound, status: AlertStatus) -> String {
    let status = match status {
        AlertStatus::Breach => "breach",
        AlertStatus::ProjectedBreach => "projected",
    };
    format!("{}/{}/{}/{status}", period.period, subject.name(), bound.name())
}

/// What the trend adds for the days after `as_of_day` up to `end`; `None` with fewer than
/// `trend_days_min` days between the first day with data and `as_of_day`.
fn project(daily: &Daily, config: &ProfitConfig, as_of_day: i64, end: i64) -> Option<Mix> {
    let first_data = *daily.days.first_key_value()?.0;
    let window_start = (as_of_day - i64::from(config.trend_days) + 1).max(first_data);
    if as_of_day - window_start + 1 < i64::from(config.trend_days_min) {
        return None;
    }
    let days: Vec<i64> = (window_start..=as_of_day).collect();
    let series = |f: &dyn Fn(&Mix) -> i128| -> Vec<f64> { days.iter().map(|d| daily.days.get(d).map_or(0.0, |m| f(m) as f64)).collect() };
    let ahead = |ys: Vec<f64>| -> i128 {
        let line = Line::fit(&days, &ys);
        ((as_of_day + 1)..=end).map(|d| line.at(d).max(0.0)).sum::<f64>().round() as i128
    };
    let mut rest = Mix::default();
    for s in Stream::ALL {
        let r = ahead(series(&|m| m.revenue_minor.get(&s).copied().unwrap_or(0)));
        let c = ahead(series(&|m| m.cost_minor.get(&s).copied().unwrap_or(0)));
        if r != 0 {
            rest.revenue_minor.insert(s, r);
        }
        if c != 0 {
            rest.cost_minor.insert(s, c);
        }
    }
    rest.cost_total_minor = ahead(series(&|m| m.cost_total_minor));
    Some(rest)
}

/// A least-squares line through (day, value) points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    /// The mean day.
    pub day_mean: f64,
    /// The value at the mean day.
    pub value_mean: f64,
    /// Change per day.
    pub slope: f64,
}

impl Line {
    /// Fits the line; one point (or all on one day) gives a flat line through their mean.
    pub fn fit(days: &[i64], values: &[f64]) -> Self {
        let n = days.len().max(1) as f64;
        let mx = days.iter().map(|d| *d as f64).sum::<f64>() / n;
        let my = values.iter().sum::<f64>() / n;
        let sxx: f64 = days.iter().map(|d| (*d as f64 - mx).powi(2)).sum();
        let sxy: f64 = days.iter().zip(values).map(|(d, y)| (*d as f64 - mx) * (y - my)).sum();
        Self { day_mean: mx, value_mean: my, slope: if sxx > 0.0 { sxy / sxx } else { 0.0 } }
    }

    /// The line's value on `day`.
    pub fn at(&self, day: i64) -> f64 {
        self.value_mean + self.slope * (day as f64 - self.day_mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_fits_exact_points_exactly() {
        let line = Line::fit(&[10, 11, 12, 13], &[5.0, 7.0, 9.0, 11.0]);
        assert!((line.slope - 2.0).abs() < 1e-12);
        assert!((line.at(20) - 25.0).abs() < 1e-9);
        let flat = Line::fit(&[3], &[4.0]);
        assert_eq!((flat.slope, flat.at(100)), (0.0, 4.0));
    }
}
