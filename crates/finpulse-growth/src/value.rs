//! What new users are worth, for acquisition: each user's revenue curve by day since signup —
//! realised revenue up to the as-of day, then what the LTV models expect — summed per group, so
//! a group's LTV over a horizon and the day its revenue per user covers its CAC (payback) can be
//! read off.
//!
//! The models see a user as born at signup. A purchase is a day (UTC) after the signup day with
//! revenue (`revenue.amount_fen`, summed per day), so x is the number of such days, t_x the last
//! one's offset from the signup day and T the offset of the last observed day. BG/NBD gives the
//! expected purchase days after T, Gamma-Gamma the expected revenue of each (from the user's own
//! average over their purchase days, shrunk to the population's). Both are fitted on every user
//! who signed up before the as-of day, not only on the group asked about.
//!
//! Projections are evaluated every [`PROJECTION_STEP_DAYS`] days after T and joined by straight
//! lines; realised revenue is exact per day.

use crate::params::day_number_sql;
use crate::users::{FIRST_SIGNUP_COLUMN, USERS_TABLE};
use crate::{InsightError, sql};
use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use datafusion::prelude::SessionContext;
use finpulse_core::time::MICROS_PER_DAY;
use finpulse_models::{Customer, LtvFit, LtvModel};
use std::collections::HashMap;

/// The LTV horizon when none is asked for: a year after signup.
pub const LTV_HORIZON_DAYS_DEFAULT: i64 = 365;
/// The longest LTV horizon: ten years, far past what three months of history can say.
pub const LTV_HORIZON_DAYS_MAX: i64 = 3650;
/// Days between the points where a user's expected purchases are evaluated.
pub const PROJECTION_STEP_DAYS: i64 = 14;
/// Fewest users with a repeat purchase day before the models are fitted: fewer cannot identify
/// four BG/NBD and three Gamma-Gamma parameters.
pub const REPEAT_BUYERS_MIN: usize = 30;

/// One user's revenue: the signup day and the revenue per day on or after it (ascending).
#[derive(Debug, Clone, Default)]
struct UserRevenue {
    signup_day: i64,
    days: Vec<(i64, i64)>,
}

/// Every user who signed up before the as-of day, with their revenue up to it.
#[derive(Debug, Default)]
pub struct History {
    users: HashMap<String, UserRevenue>,
    /// The first day not observed.
    pub as_of_day: i64,
}

impl History {
    /// Reads first signups (from the session's users table) and revenue up to `end_day`
    /// (exclusive; `None`: everything, and the as-of day is the day after the last signup or
    /// revenue seen). Empty when the store has no revenue.
    pub async fn read(ctx: &SessionContext, end_day: Option<i64>) -> Result<Self, InsightError> {
        if !ctx.table_exist("revenue")? {
            return Ok(Self::default());
        }
        let before = |ts: &str| end_day.map_or_else(|| "TRUE".to_string(), |d| format!("{} < {d}", day_number_sql(ts)));
        // Two plain reads joined here: a user's revenue counts from their first signup on.
        let signups = format!(
            "SELECT user_id, arrow_cast({FIRST_SIGNUP_COLUMN}, 'Int64') FROM {USERS_TABLE} WHERE user_id IS NOT NULL AND {}",
            before(FIRST_SIGNUP_COLUMN)
        );
        let revenue = format!(
            "SELECT user_id, arrow_cast(ts, 'Int64'), CAST(amount_fen AS BIGINT) FROM revenue WHERE user_id IS NOT NULL AND {}",
            before("ts")
        );
        let (signups, revenue) = tokio::try_join!(sql(ctx, &signups), sql(ctx, &revenue))?;
        let day_of = |us: i64| us.div_euclid(MICROS_PER_DAY);
        // Each user's first signup time, then revenue per (user, day) on or after it.
        let mut users: HashMap<String, (i64, UserRevenue)> = HashMap::new();
        let mut last_day = i64::MIN;
        for b in &signups {
            let t0 = b.column(1).as_primitive::<Int64Type>();
            for (i, id) in finpulse_query::text_values(b.column(0))?.into_iter().enumerate() {
                if let Some(id) = id.filter(|_| t0.is_valid(i)) {
                    let signup_day = day_of(t0.value(i));
                    last_day = last_day.max(signup_day);
                    users.insert(id, (t0.value(i), UserRevenue { signup_day, days: Vec::new() }));
                }
            }
        }
        for b in &revenue {
            let (ts, fen) = (b.column(1).as_primitive::<Int64Type>(), b.column(2).as_primitive::<Int64Type>());
            for (i, id) in finpulse_query::text_values(b.column(0))?.into_iter().enumerate() {
                let Some((t0, u)) = id.and_then(|id| users.get_mut(&id)) else { continue };
                if ts.value(i) < *t0 {
                    continue;
                }
                let day = day_of(ts.value(i));
                last_day = last_day.max(day);
                u.days.push((day, if fen.is_valid(i) { fen.value(i) } else { 0 }));
            }
        }
        let users = users
            .into_iter()
            .map(|(id, (_, mut u))| {
                // One entry per day: the day's revenue summed.
                u.days.sort_unstable_by_key(|(day, _)| *day);
                u.days.dedup_by(|later, kept| {
                    let same = later.0 == kept.0;
                    if same {
                        kept.1 += later.1;
                    }
                    same
                });
                (id, u)
            })
            .collect();
        let as_of_day = end_day.unwrap_or(last_day.saturating_add(1));
        Ok(Self { users, as_of_day })
    }

    /// The last observed day's offset from a user's signup day (T).
    fn observed_days(&self, u: &UserRevenue) -> i64 {
        (self.as_of_day - 1 - u.signup_day).max(0)
    }

    /// A user's summary for the models (days as the time unit; the models need no id).
    fn customer(&self, u: &UserRevenue) -> Customer {
        let (mut x, mut last, mut total) = (0u32, u.signup_day, 0i64);
        for &(day, fen) in u.days.iter().filter(|(d, _)| *d > u.signup_day) {
            (x, last, total) = (x + 1, day, total + fen);
        }
        let monetary = (x > 0 && total > 0).then(|| total as f64 / f64::from(x));
        Customer {
            id: String::new(),
            frequency: f64::from(x),
            recency: (last - u.signup_day) as f64,
            age: self.observed_days(u) as f64,
            monetary,
        }
    }
}

/// The fitted purchase (BG/NBD) and spend (Gamma-Gamma) models.
#[derive(Debug, Clone)]
pub struct ValueModel {
    /// Expected purchase days.
    pub purchases: LtvFit,
    /// Expected revenue per purchase day.
    pub spend: LtvFit,
}

impl ValueModel {
    /// Fits both models on every user in `history`; the reason when they cannot be.
    pub fn fit(history: &History) -> Result<Self, String> {
        let customers: Vec<Customer> = history.users.values().map(|u| history.customer(u)).collect();
        let buyers = customers.iter().filter(|c| c.frequency > 0.0 && c.monetary.is_some()).count();
        if buyers < REPEAT_BUYERS_MIN {
            return Err(format!(
                "{buyers} users have revenue on a day after their signup day; the LTV models need at least {REPEAT_BUYERS_MIN}"
            ));
        }
        let purchases = finpulse_models::fit(LtvModel::Bgnbd, &customers).map_err(|e| format!("BG/NBD: {e}"))?;
        // Users whose repeat days net to nothing (refunds) have no spend to learn from.
        let spenders: Vec<Customer> = customers.into_iter().filter(|c| c.frequency == 0.0 || c.monetary.is_some()).collect();
        let spend = finpulse_models::fit(LtvModel::Gg, &spenders).map_err(|e| format!("Gamma-Gamma: {e}"))?;
        Ok(Self { purchases, spend })
    }

    /// What the fits warn of (parameters the data barely identifies, …).
    pub fn warnings(&self) -> impl Iterator<Item = String> + '_ {
        self.purchases
            .warnings
            .iter()
            .map(|w| format!("BG/NBD: {w}"))
            .chain(self.spend.warnings.iter().map(|w| format!("Gamma-Gamma: {w}")))
    }

    /// One line naming the models and their parameters.
    pub fn describe(&self) -> String {
        let params = |f: &LtvFit| f.params.iter().map(|p| format!("{} {:.4}", p.name, p.value)).collect::<Vec<_>>().join(", ");
        format!(
            "BG/NBD ({}; {} users) and Gamma-Gamma ({}; {} repeat buyers)",
            params(&self.purchases),
            self.purchases.customers,
            params(&self.spend),
            self.spend.customers
        )
    }
}

/// Revenue per day since signup, summed over a group's users: `cumulative_fen[d]` is what the
/// group brought in on days 0..=d after their signup days, realised up to each user's last
/// observed day and expected after it; `realised_fen[d]` is the realised part alone.
#[derive(Debug, Clone)]
pub struct Curve {
    /// Users summed.
    pub users: u64,
    /// Cumulative realised and expected revenue (fen) by day since signup, days 0..=horizon.
    pub cumulative_fen: Vec<f64>,
    /// Cumulative realised revenue (fen) by day since signup, days 0..=horizon.
    pub realised_fen: Vec<f64>,
    /// While users are added: changes in the expected revenue per day, by day (days 0..=horizon+1).
    rate_change_fen: Vec<f64>,
}

impl Curve {
    fn new(horizon_days: i64) -> Self {
        let days = horizon_days as usize + 1;
        Self { users: 0, cumulative_fen: vec![0.0; days], realised_fen: vec![0.0; days], rate_change_fen: vec![0.0; days + 1] }
    }

    /// Revenue per user over the whole horizon.
    pub fn per_user_fen(&self) -> Option<f64> {
        (self.users > 0).then(|| self.cumulative_fen.last().copied().unwrap_or(0.0) / self.users as f64)
    }

    /// The first day since signup on which realised and expected revenue per user reaches
    /// `cac_fen`, within the horizon.
    pub fn payback_day(&self, cac_fen: f64) -> Option<usize> {
        Self::first_reaching(&self.cumulative_fen, cac_fen * self.users as f64).filter(|_| self.users > 0)
    }

    /// The same on realised revenue alone.
    pub fn realised_payback_day(&self, cac_fen: f64) -> Option<usize> {
        Self::first_reaching(&self.realised_fen, cac_fen * self.users as f64).filter(|_| self.users > 0)
    }

    fn first_reaching(cumulative: &[f64], target: f64) -> Option<usize> {
        cumulative.iter().position(|&v| v >= target)
    }

    /// Turns the daily amounts gathered by [`Projector::add`] into cumulative revenue; call once,
    /// after the last user is added.
    pub fn finish(&mut self) {
        let (mut rate, mut total, mut realised) = (0.0, 0.0, 0.0);
        for d in 0..self.cumulative_fen.len() {
            rate += self.rate_change_fen[d];
            realised += self.realised_fen[d];
            total += self.realised_fen[d] + rate;
            self.realised_fen[d] = realised;
            self.cumulative_fen[d] = total;
        }
        self.rate_change_fen.clear();
    }

    /// Adds another finished curve of the same horizon (another group's users) to this one.
    pub fn absorb(&mut self, other: &Curve) {
        self.users += other.users;
        self.cumulative_fen.iter_mut().zip(&other.cumulative_fen).for_each(|(a, b)| *a += b);
        self.realised_fen.iter_mut().zip(&other.realised_fen).for_each(|(a, b)| *a += b);
    }
}

/// Builds revenue curves for groups of users: realised revenue always, expected revenue when
/// the models could be fitted.
pub struct Projector<'a> {
    history: &'a History,
    model: Option<&'a ValueModel>,
    horizon_days: i64,
    /// Expected purchase days at each projection point of a user still active, per (x, T):
    /// users share them.
    if_alive: HashMap<(u32, i64), Vec<f64>>,
}

impl<'a> Projector<'a> {
    /// A projector over `horizon_days` days after signup.
    pub fn new(history: &'a History, model: Option<&'a ValueModel>, horizon_days: i64) -> Self {
        Self { history, model, horizon_days, if_alive: HashMap::new() }
    }

    /// An empty curve to add users to.
    pub fn curve(&self) -> Curve {
        Curve::new(self.horizon_days)
    }

    /// Adds a user's realised and expected revenue to `curve` (as daily amounts; call
    /// [`Curve::finish`] once all are added). A user the history does not know adds nothing
    /// but still counts.
    pub fn add(&mut self, curve: &mut Curve, user_id: &str) {
        curve.users += 1;
        let Some(u) = self.history.users.get(user_id) else { return };
        let h = self.horizon_days;
        for &(day, fen) in &u.days {
            let offset = day - u.signup_day;
            if (0..=h).contains(&offset) {
                curve.realised_fen[offset as usize] += fen as f64;
            }
        }
        let observed = self.history.observed_days(u);
        let Some(model) = self.model.filter(|_| observed < h) else { return };
        let c = self.history.customer(u);
        let (Some(spend), Some(p_alive)) =
            (finpulse_models::expected_spend(&model.spend, &c), finpulse_models::ltv::p_alive(&model.purchases, &c))
        else {
            return;
        };
        let points = projection_points(h - observed);
        // What an active user with this x and T buys by each point; P(alive) scales it.
        let if_alive = self.if_alive.entry((c.frequency as u32, observed)).or_insert_with(|| {
            points
                .iter()
                .map(|&tau| {
                    finpulse_models::ltv::expected_purchases_if_alive(&model.purchases, c.frequency, c.age, tau as f64).unwrap_or(0.0)
                })
                .collect()
        });
        // Each step's expected revenue, spread evenly over its days: a constant rate from the
        // day after the step starts through the day it ends.
        let (mut before_tau, mut before) = (0, 0.0);
        for (&tau, &upto) in points.iter().zip(if_alive.iter()) {
            let upto = upto * p_alive;
            let per_day = (upto - before) * spend / (tau - before_tau) as f64;
            curve.rate_change_fen[(observed + before_tau + 1) as usize] += per_day;
            curve.rate_change_fen[(observed + tau + 1) as usize] -= per_day;
            (before_tau, before) = (tau, upto);
        }
    }
}

/// Days after T at which expected purchases are evaluated: every step, and the last day.
fn projection_points(days: i64) -> Vec<i64> {
    let mut points: Vec<i64> = (1..).map(|k| k * PROJECTION_STEP_DAYS).take_while(|&t| t < days).collect();
    points.push(days);
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user as (id, signup day, revenue per day).
    type User<'a> = (&'a str, i64, &'a [(i64, i64)]);

    fn history(users: &[User], as_of_day: i64) -> History {
        History {
            users: users.iter().map(|(id, s, days)| (id.to_string(), UserRevenue { signup_day: *s, days: days.to_vec() })).collect(),
            as_of_day,
        }
    }

    #[test]
    fn a_summary_counts_days_after_the_signup_day_up_to_the_last_observed_day() {
        let h = history(&[("a", 10, &[(10, 500), (12, 100), (15, 300)])], 20);
        let c = h.customer(&h.users["a"]);
        // Signup-day revenue is the birth, not a repeat purchase: x 2, t_x 5, T 9, mean 200.
        assert_eq!((c.frequency, c.recency, c.age, c.monetary), (2.0, 5.0, 9.0, Some(200.0)));
    }

    /// The history read equals a SQL join of first signups and revenue per day, with and
    /// without an end day, over compacted files and a tail.
    #[test]
    fn the_history_read_equals_the_sql_join_of_signups_and_revenue() {
        let (_dir, mut store) = crate::test_support::empty_store();
        crate::test_support::simulate(&mut store, 400, 40, 7, |store, day| {
            if day == 25 {
                store.compact().unwrap();
            }
        });
        let view = store.view_handle().snapshot();
        assert!(!view.files.is_empty() && !view.tail.is_empty());
        let rt = crate::test_support::runtime();
        let ctx = rt.block_on(crate::session(&view)).unwrap();
        for end_day in [None, Some(20_454 + 30)] {
            let history = rt.block_on(History::read(&ctx, end_day)).unwrap();
            let before = |ts: &str| end_day.map_or_else(|| "TRUE".to_string(), |d| format!("{} < {d}", day_number_sql(ts)));
            let q = format!(
                "WITH f AS (SELECT user_id, min(ts) AS t0 FROM user_signup WHERE {} GROUP BY user_id) \
                 SELECT f.user_id, {}, {}, CAST(sum(r.amount_fen) AS BIGINT) FROM f LEFT JOIN revenue r \
                 ON r.user_id = f.user_id AND r.ts >= f.t0 AND {} GROUP BY 1, 2, 3",
                before("ts"),
                day_number_sql("f.t0"),
                day_number_sql("r.ts"),
                before("r.ts")
            );
            let mut expected: HashMap<String, (i64, Vec<(i64, i64)>)> = HashMap::new();
            for r in crate::table::rows(&rt.block_on(crate::sql(&ctx, &q)).unwrap()).unwrap() {
                let e = expected.entry(r[0].as_text().unwrap().to_string()).or_default();
                e.0 = r[1].as_int().unwrap();
                if let Some(day) = r[2].as_int() {
                    e.1.push((day, r[3].as_int().unwrap()));
                }
            }
            let buyers = expected.values().filter(|e| !e.1.is_empty()).count();
            assert!(expected.len() > 200 && buyers > 30, "{} users, {buyers} with revenue", expected.len());
            assert_eq!(history.users.len(), expected.len());
            for (id, (signup_day, mut days)) in expected {
                days.sort_unstable();
                let u = &history.users[&id];
                assert_eq!((u.signup_day, &u.days), (signup_day, &days), "{id}");
            }
        }
    }

    #[test]
    fn points_step_fortnightly_and_end_on_the_horizon() {
        assert_eq!(projection_points(3), [3]);
        assert_eq!(projection_points(14), [14]);
        assert_eq!(projection_points(30), [14, 28, 30]);
    }

    /// A model with known parameters (no fit needed).
    fn model() -> ValueModel {
        let fit = |model, names: &[&'static str], values: &[f64]| LtvFit {
            model,
            params: names.iter().zip(values).map(|(name, &value)| finpulse_models::Param { name, value, std_error: None }).collect(),
            log_likelihood: 0.0,
            customers: 1,
            left_out: 0,
            evaluations: 0,
            warnings: Vec::new(),
        };
        ValueModel {
            purchases: fit(LtvModel::Bgnbd, &["r", "alpha", "a", "b"], &[0.5, 10.0, 0.8, 2.5]),
            spend: fit(LtvModel::Gg, &["p", "q", "gamma"], &[6.0, 4.0, 15.0]),
        }
    }

    #[test]
    fn a_curve_is_realised_revenue_then_expected_revenue_that_never_falls() {
        let h = history(&[("a", 0, &[(0, 1_000), (3, 200), (8, 400)]), ("b", 5, &[])], 10);
        let model = model();
        let mut p = Projector::new(&h, Some(&model), 30);
        let (mut a_only, mut others) = (p.curve(), p.curve());
        p.add(&mut a_only, "a");
        p.add(&mut others, "b");
        p.add(&mut others, "nobody");
        a_only.finish();
        others.finish();
        let mut curve = p.curve();
        curve.absorb(&a_only);
        curve.absorb(&others);
        assert_eq!((curve.users, a_only.users), (3, 1));
        let c = &curve.cumulative_fen;
        // Day 0 holds a's signup-day revenue only: b's T is 4, so b's projection starts on day 5.
        assert_eq!(c[0], 1_000.0);
        assert!((c[3] - 1_200.0).abs() < 1e-9, "{c:?}");
        assert!(c.windows(2).all(|w| w[1] >= w[0]), "{c:?}");
        // Expected purchases over a's remaining 21 days at the model's expected spend.
        let customer = h.customer(&h.users["a"]);
        let spend = finpulse_models::expected_spend(&model.spend, &customer).unwrap();
        let a_future = finpulse_models::predict(&model.purchases, &customer, 21.0).unwrap().expected_purchases * spend;
        let b_customer = h.customer(&h.users["b"]);
        let b_spend = finpulse_models::expected_spend(&model.spend, &b_customer).unwrap();
        let b_future = finpulse_models::predict(&model.purchases, &b_customer, 26.0).unwrap().expected_purchases * b_spend;
        assert!((c[30] - (1_600.0 + a_future + b_future)).abs() < 1e-6, "{} vs {}", c[30], 1_600.0 + a_future + b_future);
        assert!((curve.per_user_fen().unwrap() - c[30] / 3.0).abs() < 1e-9);
        // 1,000 fen per user (3,000 in all) is reached after day 9 at the earliest.
        let day = curve.payback_day(1_000.0);
        assert!(day.is_none_or(|d| c[d] >= 3_000.0 && c[d - 1] < 3_000.0), "{day:?} {c:?}");
        assert_eq!(curve.payback_day(0.0), Some(0));
        assert_eq!(curve.payback_day(1e12), None);
        // Realised alone: 1,000 on day 0, 1,200 from day 3, 1,600 from day 8 and flat after.
        assert_eq!((a_only.realised_fen[2], a_only.realised_fen[3], a_only.realised_fen[30]), (1_000.0, 1_200.0, 1_600.0));
        assert_eq!((a_only.realised_payback_day(1_100.0), a_only.realised_payback_day(1_601.0)), (Some(3), None));
        assert!((a_only.cumulative_fen[30] - (1_600.0 + a_future)).abs() < 1e-6);
    }

    #[test]
    fn without_a_model_a_curve_is_realised_revenue_only() {
        let h = history(&[("a", 0, &[(0, 1_000), (3, 200)])], 10);
        let mut p = Projector::new(&h, None, 30);
        let mut curve = p.curve();
        p.add(&mut curve, "a");
        curve.finish();
        assert_eq!(curve.cumulative_fen, curve.realised_fen);
        assert_eq!(curve.per_user_fen(), Some(1_200.0));
    }
}
