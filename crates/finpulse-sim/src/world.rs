//! The simulated app: users, their lives, and the business around them, one day at a time.

use crate::emit::{Emitter, V};
use crate::fraud::{self, CardProfile, TerminalGrid};
use crate::pii;
use finpulse_core::time::{MICROS_PER_DAY, MICROS_PER_SEC};
use finpulse_core::{Event, Registry};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal, Poisson};
use rand_pcg::Pcg64Mcg;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Acquisition channels.
pub const CHANNELS: [&str; 5] = ["douyin", "wechat", "app_store", "referral", "offline_branch"];

/// What sets channels apart: share of signups, cost per acquisition (yuan), how likely each
/// new-user task is completed, sessions per day, share of users who churn and their mean
/// lifetime in days.
struct ChannelProfile {
    share: f64,
    cac_yuan: f64,
    task_p: f64,
    sessions_per_day: f64,
    churn_share: f64,
    churn_mean_days: f64,
}

const PROFILES: [ChannelProfile; 5] = [
    ChannelProfile { share: 0.32, cac_yuan: 95.0, task_p: 0.50, sessions_per_day: 0.55, churn_share: 0.70, churn_mean_days: 22.0 },
    ChannelProfile { share: 0.25, cac_yuan: 70.0, task_p: 0.62, sessions_per_day: 0.75, churn_share: 0.55, churn_mean_days: 35.0 },
    ChannelProfile { share: 0.20, cac_yuan: 55.0, task_p: 0.68, sessions_per_day: 0.85, churn_share: 0.45, churn_mean_days: 45.0 },
    ChannelProfile { share: 0.15, cac_yuan: 30.0, task_p: 0.78, sessions_per_day: 0.95, churn_share: 0.35, churn_mean_days: 55.0 },
    ChannelProfile { share: 0.08, cac_yuan: 210.0, task_p: 0.88, sessions_per_day: 0.65, churn_share: 0.25, churn_mean_days: 70.0 },
];
const CAMPAIGNS: [[&str; 2]; 5] = [
    ["douyin_livestream", "douyin_feed_ads"],
    ["wechat_moments", "wechat_mini_program"],
    ["app_store_search", "app_store_featured"],
    ["referral_cash_bonus", "referral_coupon"],
    ["branch_walk_in", "branch_salon"],
];
const CITIES: [&str; 8] = ["北京", "上海", "深圳", "杭州", "成都", "武汉", "南京", "重庆"];
const TASKS: [&str; 4] = ["verify_identity", "bind_card", "first_deposit", "first_investment"];
const TASK_REWARD_FEN: [i64; 4] = [500, 800, 1000, 2000];
/// New-user tasks count (and pay rewards) inside this many days from signup.
pub const TASK_WINDOW_DAYS: u32 = 7;
/// Activity fades over this many days before a churner's last day.
pub const CHURN_LEAD_UP_DAYS: u32 = 21;
const WEALTH: [(&str, &str); 3] = [("mmf_yuebao", "money_market"), ("bond_fund_a", "bond_fund"), ("equity_fund_csi300", "equity_fund")];
const SCENARIOS: [&str; 3] = ["meituan_food", "ctrip_travel", "jd_mall"];
const PARTNERS: [&str; 3] = ["partner_insurer", "partner_ecommerce", "partner_travel"];
const COMPLAINT_CATEGORIES: [&str; 5] = ["fraud", "loan", "fees", "app_bug", "service"];
/// The fee for repaying an instalment late.
const LATE_FEE_FEN: i64 = 5000;
/// Handbook population the fraud scenario rates are stated for.
const HANDBOOK_CUSTOMERS: f64 = 5000.0;
/// Terminals on the grid (the handbook's count).
const TERMINALS: usize = 10_000;
/// Scenario 2: terminals compromised per day (the handbook's rate).
const TERMINALS_COMPROMISED_PER_DAY: usize = 2;
/// Scenario 3: customers compromised per day per 5,000 customers (the handbook's rate).
const CUSTOMERS_COMPROMISED_PER_DAY_PER_5000: f64 = 3.0;
/// A fraud label arrives this long after its payment, at the earliest…
const LABEL_DELAY_SECS_MIN: i64 = 3600;
/// …and at the latest: the handbook's one-week feedback delay.
const LABEL_DELAY_SECS_MAX: i64 = 7 * 86_400;
/// Simulated local times are business time (Beijing, UTC+8), converted to UTC.
const BEIJING_OFFSET_SECS: i64 = finpulse_core::time::BUSINESS_UTC_OFFSET_SECS;

/// Simulation settings.
#[derive(Debug, Clone, Copy)]
pub struct SimConfig {
    /// Users who sign up over the period.
    pub users: u32,
    /// Days simulated.
    pub days: u32,
    /// Random seed.
    pub seed: u64,
    /// First simulated day, days since 1970-01-01 (Beijing calendar day).
    pub start_day: i64,
}

impl Default for SimConfig {
    fn default() -> Self {
        // 2026-01-01.
        Self { users: 10_000, days: 90, seed: 42, start_day: 20_454 }
    }
}

/// Counts of what was simulated, for the demo's summary.
#[derive(Debug, Clone, Default)]
pub struct SimStats {
    /// Events produced.
    pub events: u64,
    /// Users who signed up.
    pub signups: u64,
    /// Card payments.
    pub payments: u64,
    /// Card payments that are fraud.
    pub fraud_payments: u64,
    /// Users set to churn within the period.
    pub churners: u64,
    /// Loans approved.
    pub loans: u64,
}

struct Loan {
    id: String,
    monthly_principal_fen: i64,
    monthly_interest_fen: i64,
    remaining: u32,
    next_due_day: u32,
    bad: bool,
    defaulted: bool,
}

struct User {
    id: String,
    signup_day: u32,
    channel: usize,
    campaign: usize,
    device: String,
    os: &'static str,
    sessions_per_day: f64,
    churn_day: Option<u32>,
    return_day: Option<u32>,
    card: CardProfile,
    task_stage: usize,
    next_task_day: u32,
    gave_up: bool,
    wealth_fen: i64,
    bureau_score: i64,
    loan: Option<Loan>,
    compromised_until: u32,
    member_until: u32,
}

impl User {
    fn card_bound(&self) -> bool {
        self.task_stage > 1
    }

    /// How active the user is on `day`: 0 before signup and after churn, fading before churn.
    fn activity(&self, day: u32) -> f64 {
        if day < self.signup_day {
            return 0.0;
        }
        if let Some(churn) = self.churn_day {
            if day >= churn {
                return match self.return_day {
                    Some(back) if day >= back => 0.5,
                    _ => 0.0,
                };
            }
            if churn - day <= CHURN_LEAD_UP_DAYS {
                return (churn - day) as f64 / CHURN_LEAD_UP_DAYS as f64;
            }
        }
        1.0
    }
}

struct Deferred {
    ts_us: i64,
    order: u64,
    event: Event,
}
impl PartialEq for Deferred {
    fn eq(&self, o: &Self) -> bool {
        (self.ts_us, self.order) == (o.ts_us, o.order)
    }
}
impl Eq for Deferred {}
impl PartialOrd for Deferred {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Deferred {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.ts_us, self.order).cmp(&(o.ts_us, o.order))
    }
}

/// The simulator; call [`Simulator::next_day`] until it returns `None`.
pub struct Simulator {
    cfg: SimConfig,
    rng: Pcg64Mcg,
    em: Emitter,
    users: Vec<User>,
    signed_up: usize,
    day: u32,
    grid: TerminalGrid,
    terminal_compromised_until: Vec<u32>,
    deferred: BinaryHeap<Reverse<Deferred>>,
    deferred_order: u64,
    counter: u64,
    stats: SimStats,
}

fn pick_weighted(rng: &mut impl Rng, weights: impl Iterator<Item = f64> + Clone) -> usize {
    let total: f64 = weights.clone().sum();
    let mut x = rng.random_range(0.0..total);
    let mut last = 0;
    for (i, w) in weights.enumerate() {
        if x < w {
            return i;
        }
        x -= w;
        last = i;
    }
    last
}

impl Simulator {
    /// Sets up the population: signup days, channels, spending profiles, fates.
    pub fn new(cfg: SimConfig, registry: &Registry) -> Self {
        let mut rng = Pcg64Mcg::seed_from_u64(cfg.seed);
        let grid = TerminalGrid::new(&mut rng, TERMINALS);
        let days = cfg.days.max(1);
        // Signups grow over the period, with more on weekends.
        let day_weights: Vec<f64> = (0..days)
            .map(|d| {
                let weekday = (cfg.start_day + d as i64 + 3).rem_euclid(7); // 0 = Monday
                (0.6 + 0.8 * d as f64 / days as f64) * if weekday >= 5 { 1.25 } else { 1.0 }
            })
            .collect();
        let mut users: Vec<User> = (0..cfg.users)
            .map(|_| {
                let signup_day = pick_weighted(&mut rng, day_weights.iter().copied()) as u32;
                let channel = pick_weighted(&mut rng, PROFILES.iter().map(|p| p.share));
                let p = &PROFILES[channel];
                let churn_day = (rng.random::<f64>() < p.churn_share).then(|| {
                    let life = Exp::new(1.0 / p.churn_mean_days).expect("positive rate").sample(&mut rng);
                    signup_day + 3 + life as u32
                });
                let return_day = churn_day.filter(|_| rng.random::<f64>() < 0.12).map(|c| c + rng.random_range(15..40));
                let sessions_per_day = p.sessions_per_day * LogNormal::new(0.0, 0.5).expect("valid").sample(&mut rng);
                User {
                    id: String::new(),
                    signup_day,
                    channel,
                    campaign: rng.random_range(0..2),
                    device: format!("d{:08x}", rng.random::<u32>()),
                    os: if rng.random::<f64>() < 0.72 { "android" } else { "ios" },
                    sessions_per_day,
                    churn_day,
                    return_day,
                    card: fraud::profile(&mut rng, &grid),
                    task_stage: 0,
                    next_task_day: signup_day,
                    gave_up: false,
                    wealth_fen: 0,
                    bureau_score: (rng.random_range(450.0..820.0) + rng.random_range(-60.0..60.0)) as i64,
                    loan: None,
                    compromised_until: 0,
                    member_until: 0,
                }
            })
            .collect();
        users.sort_by_key(|u| u.signup_day);
        for (i, u) in users.iter_mut().enumerate() {
            u.id = format!("u{:07}", i + 1);
        }
        let stats =
            SimStats { churners: users.iter().filter(|u| u.churn_day.is_some_and(|c| c < days)).count() as u64, ..SimStats::default() };
        Self {
            cfg,
            em: Emitter::new(registry, cfg.seed),
            rng,
            users,
            signed_up: 0,
            day: 0,
            terminal_compromised_until: vec![0; grid.len()],
            grid,
            deferred: BinaryHeap::new(),
            deferred_order: 0,
            counter: 0,
            stats,
        }
    }

    /// What has been simulated so far.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    fn ts(&self, day: u32, local_secs: i64) -> i64 {
        ((self.cfg.start_day + day as i64) * 86_400 + local_secs - BEIJING_OFFSET_SECS) * MICROS_PER_SEC
    }

    /// A local time of day for app activity: mornings, lunch and evenings are busy.
    fn app_secs(&mut self) -> i64 {
        const HOURS: [f64; 24] =
            [0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.6, 1.2, 1.8, 1.4, 1.2, 1.4, 1.9, 1.6, 1.2, 1.1, 1.1, 1.3, 1.6, 2.0, 2.3, 2.4, 1.8, 0.9];
        let hour = pick_weighted(&mut self.rng, HOURS.iter().copied()) as i64;
        hour * 3600 + self.rng.random_range(0..3600)
    }

    /// A time on `day` for app activity, in UTC microseconds.
    fn app_ts(&mut self, day: u32) -> i64 {
        let secs = self.app_secs();
        self.ts(day, secs)
    }

    fn defer(&mut self, event: Event) {
        self.deferred_order += 1;
        self.deferred.push(Reverse(Deferred { ts_us: event.ts_us, order: self.deferred_order, event }));
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{}", self.counter)
    }

    /// Simulates the next day; its events in time order. Events scheduled past the last day
    /// (late labels, future repayments) are never emitted.
    pub fn next_day(&mut self) -> Option<Vec<Event>> {
        if self.day >= self.cfg.days {
            return None;
        }
        let day = self.day;
        let mut out = Vec::new();
        self.compromise(day);
        self.signups(day, &mut out);
        for i in 0..self.signed_up {
            self.live(i, day, &mut out);
        }
        self.business(day, &mut out);
        let day_end_us = self.ts(day + 1, 0);
        while let Some(Reverse(d)) = self.deferred.peek() {
            if d.ts_us >= day_end_us {
                break;
            }
            let Some(Reverse(d)) = self.deferred.pop() else { break };
            out.push(d.event);
        }
        out.sort_by_key(|e| e.ts_us);
        self.stats.events += out.len() as u64;
        self.day += 1;
        Some(out)
    }

    fn compromise(&mut self, day: u32) {
        for _ in 0..TERMINALS_COMPROMISED_PER_DAY {
            let t = self.rng.random_range(0..self.grid.len());
            self.terminal_compromised_until[t] = day + fraud::SCENARIO2_DAYS;
        }
        if self.signed_up == 0 {
            return;
        }
        let per_day = CUSTOMERS_COMPROMISED_PER_DAY_PER_5000 * self.cfg.users as f64 / HANDBOOK_CUSTOMERS;
        let n = per_day.floor() as usize + usize::from(self.rng.random::<f64>() < per_day.fract());
        for _ in 0..n {
            let u = self.rng.random_range(0..self.signed_up);
            self.users[u].compromised_until = day + fraud::SCENARIO3_DAYS;
        }
    }

    fn signups(&mut self, day: u32, out: &mut Vec<Event>) {
        let mut by_campaign = [[0u32; 2]; 5];
        while self.signed_up < self.users.len() && self.users[self.signed_up].signup_day == day {
            let i = self.signed_up;
            self.signed_up += 1;
            let ts = self.app_ts(day);
            let f = self.em.fields();
            let (channel, campaign) = (self.users[i].channel, self.users[i].campaign);
            by_campaign[channel][campaign] += 1;
            let mut fields = vec![
                (f.channel, V::S(CHANNELS[channel].into())),
                (f.campaign, V::S(CAMPAIGNS[channel][campaign].into())),
                (f.city, V::S(CITIES[self.rng.random_range(0..CITIES.len())].into())),
                (f.os, V::S(self.users[i].os.into())),
                (f.device_id, V::S(self.users[i].device.clone())),
                (f.mobile, V::S(pii::mobile(&mut self.rng))),
            ];
            if channel == 3 && i > 0 {
                let referrer = self.rng.random_range(0..i);
                fields.push((f.referrer_id, V::S(self.users[referrer].id.clone())));
            }
            let uid = self.users[i].id.clone();
            let t = self.em.types.user_signup;
            out.push(self.em.event(t, Some(&uid), ts, fields));
            self.stats.signups += 1;
            if self.rng.random::<f64>() < 0.5 {
                self.credit_report(i, ts + 30 * MICROS_PER_SEC, out);
            }
        }
        // Spend per campaign: the cost of the day's signups at the channel's CAC, with noise,
        // plus a brand budget on the paid channels.
        for (c, profile) in PROFILES.iter().enumerate() {
            for (k, campaign) in CAMPAIGNS[c].iter().enumerate() {
                let brand_yuan = if c < 2 { 800.0 } else { 0.0 };
                let yuan = by_campaign[c][k] as f64 * profile.cac_yuan * self.rng.random_range(0.85..1.15) + brand_yuan;
                if yuan <= 0.0 {
                    continue;
                }
                let ts = self.ts(day, 23 * 3600 + 59 * 60);
                let f = self.em.fields();
                let mut fields = vec![(f.channel, V::S(CHANNELS[c].into())), (f.campaign, V::S((*campaign).into()))];
                fields.extend(self.em.money((yuan * 100.0).round() as i64));
                let t = self.em.types.marketing_spend;
                out.push(self.em.event(t, None, ts, fields));
            }
        }
    }

    fn credit_report(&mut self, i: usize, ts: i64, out: &mut Vec<Event>) {
        let u = &self.users[i];
        let score = (u.bureau_score + self.rng.random_range(-15..=15)).clamp(300, 900);
        let risky = score < 600;
        let f = self.em.fields();
        let fields = vec![
            (f.bureau, V::S("baihang".into())),
            (f.bureau_score, V::I(score)),
            (f.delinquencies_24m, V::I(if risky { self.rng.random_range(0..5) } else { self.rng.random_range(0..2) })),
            (f.inquiries_6m, V::I(self.rng.random_range(0..if risky { 12 } else { 5 }))),
            (f.open_accounts, V::I(self.rng.random_range(0..8))),
        ];
        let uid = u.id.clone();
        let t = self.em.types.credit_report;
        out.push(self.em.event(t, Some(&uid), ts, fields));
    }

    fn revenue(&mut self, user: Option<&str>, ts: i64, stream: &str, amount_fen: i64, source: Option<String>, out: &mut Vec<Event>) {
        if amount_fen <= 0 {
            return;
        }
        let f = self.em.fields();
        let mut fields = vec![(f.stream, V::S(stream.into()))];
        if let Some(s) = source {
            fields.push((f.source_event_id, V::S(s)));
        }
        fields.extend(self.em.money(amount_fen));
        let t = self.em.types.revenue;
        out.push(self.em.event(t, user, ts, fields));
    }

    /// One user's day.
    fn live(&mut self, i: usize, day: u32, out: &mut Vec<Event>) {
        let activity = self.users[i].activity(day);
        self.loan_dues(i, day, out);
        if activity <= 0.0 {
            return;
        }
        let uid = self.users[i].id.clone();
        let tenure = day - self.users[i].signup_day;
        let weekday = (self.cfg.start_day + day as i64 + 3).rem_euclid(7);
        let boost = if tenure < TASK_WINDOW_DAYS { 1.5 } else { 1.0 } * if weekday >= 5 { 1.15 } else { 1.0 };
        self.tasks(i, day, out);
        let lambda = self.users[i].sessions_per_day * activity * boost;
        let sessions = Poisson::new(lambda).map(|p| p.sample(&mut self.rng) as u32).unwrap_or(0);
        for _ in 0..sessions.min(12) {
            self.session(i, day, out);
        }
        if self.users[i].card_bound() {
            self.payments(i, day, activity, out);
        }
        let f = self.em.fields();
        let (f_method, f_fee, f_counterparty) = (f.method, f.fee_fen, f.counterparty_id);
        if self.users[i].task_stage > 2 && self.rng.random::<f64>() < 0.05 * activity {
            let ts = self.app_ts(day);
            let amount = (LogNormal::new(8.5, 1.0).expect("valid").sample(&mut self.rng) * 100.0) as i64;
            let mut fields = vec![(f_method, V::S("bank_transfer".into()))];
            fields.extend(self.em.money(amount));
            let t = self.em.types.deposit;
            out.push(self.em.event(t, Some(&uid), ts, fields));
        }
        if self.users[i].task_stage > 2 && self.rng.random::<f64>() < 0.025 * activity {
            let ts = self.app_ts(day);
            let amount = (LogNormal::new(7.5, 1.0).expect("valid").sample(&mut self.rng) * 100.0) as i64;
            let fee = (amount / 1000).max(100);
            let mut fields = vec![(f_fee, V::I(fee))];
            fields.extend(self.em.money(amount));
            let t = self.em.types.withdrawal;
            let e = self.em.event(t, Some(&uid), ts, fields);
            let source = e.event_id.clone();
            out.push(e);
            self.revenue(Some(&uid), ts, "fees", fee, Some(source), out);
        }
        if self.users[i].card_bound() && self.rng.random::<f64>() < 0.04 * activity {
            let ts = self.app_ts(day);
            let amount = (LogNormal::new(6.0, 1.2).expect("valid").sample(&mut self.rng) * 100.0) as i64;
            let other = format!("u{:07}", self.rng.random_range(1..=self.cfg.users));
            let mut fields = vec![(f_counterparty, V::S(other)), (self.em.fields().device_id, V::S(self.users[i].device.clone()))];
            fields.extend(self.em.money(amount));
            let t = self.em.types.transfer;
            out.push(self.em.event(t, Some(&uid), ts, fields));
        }
        if self.users[i].wealth_fen > 0 && self.rng.random::<f64>() < 0.012 * activity {
            let ts = self.app_ts(day);
            let amount = (self.users[i].wealth_fen as f64 * self.rng.random_range(0.2..1.0)) as i64;
            self.users[i].wealth_fen -= amount;
            let (pid, ptype) = WEALTH[self.rng.random_range(0..WEALTH.len())];
            let f = self.em.fields();
            let mut fields = vec![(f.product_id, V::S(pid.into())), (f.product_type, V::S(ptype.into()))];
            fields.extend(self.em.money(amount));
            let t = self.em.types.wealth_redemption;
            out.push(self.em.event(t, Some(&uid), ts, fields));
        }
        // Value-added membership: some engaged users subscribe after a month, renewed monthly.
        if tenure >= 30 && day >= self.users[i].member_until {
            let renew = self.users[i].member_until > 0 && self.rng.random::<f64>() < 0.85;
            if renew || (self.users[i].member_until == 0 && tenure == 30 && self.rng.random::<f64>() < 0.12) {
                self.users[i].member_until = day + 30;
                let ts = self.app_ts(day);
                self.revenue(Some(&uid), ts, "value_added", 1500, None, out);
            }
        }
        // Feedback; complaints come more from users about to leave and from fraud victims.
        let about_to_leave = self.users[i].churn_day.is_some_and(|c| c > day && c - day <= 5);
        let victim = self.users[i].compromised_until > day;
        let p_feedback = 0.002 * activity + if about_to_leave { 0.04 } else { 0.0 } + if victim { 0.03 } else { 0.0 };
        if self.rng.random::<f64>() < p_feedback {
            let ts = self.app_ts(day);
            let complaint = about_to_leave || victim || self.rng.random::<f64>() < 0.3;
            let f = self.em.fields();
            let (kind, category) = if complaint {
                ("complaint", if victim { "fraud" } else { COMPLAINT_CATEGORIES[self.rng.random_range(1..COMPLAINT_CATEGORIES.len())] })
            } else {
                ("feedback", "suggestion")
            };
            let mut fields = vec![(f.kind, V::S(kind.into())), (f.category, V::S(category.into())), (f.channel, V::S("in_app".into()))];
            if !complaint {
                fields.push((f.nps_score, V::I(self.rng.random_range(5..=10))));
            } else {
                fields.push((f.nps_score, V::I(self.rng.random_range(0..=6))));
                fields.push((f.text, V::S("体验不好，希望尽快处理".into())));
            }
            let t = self.em.types.feedback;
            out.push(self.em.event(t, Some(&uid), ts, fields));
        }
    }

    fn tasks(&mut self, i: usize, day: u32, out: &mut Vec<Event>) {
        let u = &self.users[i];
        if u.task_stage >= TASKS.len() || u.gave_up || day < u.next_task_day {
            return;
        }
        let p = PROFILES[u.channel].task_p;
        // Later tasks are harder: each stage converts less.
        let stage = u.task_stage;
        let p_stage = p * [0.95, 0.85, 0.75, 0.6][stage];
        if self.rng.random::<f64>() >= p_stage {
            if self.rng.random::<f64>() < 0.35 {
                self.users[i].gave_up = true;
            } else {
                self.users[i].next_task_day = day + 1;
            }
            return;
        }
        let uid = u.id.clone();
        let ts = self.app_ts(day);
        let f = self.em.fields();
        let action = match stage {
            0 => {
                let fields = vec![
                    (f.id_number, V::S(pii::resident_id(&mut self.rng))),
                    (f.real_name, V::S(pii::real_name(&mut self.rng))),
                    (f.method, V::S("face".into())),
                ];
                let t = self.em.types.identity_verified;
                self.em.event(t, Some(&uid), ts, fields)
            }
            1 => {
                let banks = ["icbc", "ccb", "boc", "abc", "cmb"];
                let fields = vec![
                    (f.card_number, V::S(pii::unionpay_card(&mut self.rng))),
                    (f.bank, V::S(banks[self.rng.random_range(0..banks.len())].into())),
                    (f.card_type, V::S("debit".into())),
                ];
                let t = self.em.types.card_bound;
                self.em.event(t, Some(&uid), ts, fields)
            }
            2 => {
                let amount = (LogNormal::new(8.0, 1.0).expect("valid").sample(&mut self.rng) * 100.0) as i64;
                let mut fields = vec![(f.method, V::S("bank_transfer".into()))];
                fields.extend(self.em.money(amount.max(100)));
                let t = self.em.types.deposit;
                self.em.event(t, Some(&uid), ts, fields)
            }
            _ => {
                let e = self.wealth_purchase(i, ts, out);
                out.push(e);
                self.finish_task(i, day, stage, ts, out);
                return;
            }
        };
        out.push(action);
        self.finish_task(i, day, stage, ts, out);
    }

    fn finish_task(&mut self, i: usize, day: u32, stage: usize, ts: i64, out: &mut Vec<Event>) {
        let u = &mut self.users[i];
        u.task_stage = stage + 1;
        let delay = if self.rng.random::<f64>() < 0.55 { 0 } else { self.rng.random_range(1..4) };
        u.next_task_day = day + delay;
        if day - u.signup_day < TASK_WINDOW_DAYS {
            let uid = u.id.clone();
            let f = self.em.fields();
            let fields =
                vec![(f.task, V::S(TASKS[stage].into())), (f.reward_fen, V::I(TASK_REWARD_FEN[stage])), (f.currency, V::S("CNY".into()))];
            let t = self.em.types.task_completed;
            out.push(self.em.event(t, Some(&uid), ts + MICROS_PER_SEC, fields));
        }
    }

    fn wealth_purchase(&mut self, i: usize, ts: i64, out: &mut Vec<Event>) -> Event {
        let uid = self.users[i].id.clone();
        let (pid, ptype) = WEALTH[self.rng.random_range(0..WEALTH.len())];
        let amount = (LogNormal::new(8.3, 1.1).expect("valid").sample(&mut self.rng) * 100.0) as i64;
        self.users[i].wealth_fen += amount;
        let f = self.em.fields();
        let mut fields = vec![(f.product_id, V::S(pid.into())), (f.product_type, V::S(ptype.into()))];
        fields.extend(self.em.money(amount));
        let t = self.em.types.wealth_purchase;
        let e = self.em.event(t, Some(&uid), ts, fields);
        // The platform earns a 0.3% distribution fee on wealth sales.
        self.revenue(Some(&uid), ts, "fees", amount * 3 / 1000, Some(e.event_id.clone()), out);
        e
    }

    /// An app session: login, a few screens along one of the app's flows, the session end.
    fn session(&mut self, i: usize, day: u32, out: &mut Vec<Event>) {
        let uid = self.users[i].id.clone();
        let start = self.app_secs();
        let mut t = self.ts(day, start);
        let f = self.em.fields();
        let ok = self.rng.random::<f64>() > 0.02;
        let ip = format!("10.{}.{}.{}", self.rng.random_range(0..255), self.rng.random_range(0..255), self.rng.random_range(1..255));
        let fields = vec![(f.device_id, V::S(self.users[i].device.clone())), (f.ip, V::S(ip)), (f.success, V::B(ok))];
        let lt = self.em.types.login;
        out.push(self.em.event(lt, Some(&uid), t, fields));
        if !ok {
            return;
        }
        let page = |sim: &mut Self, name: &str, product: Option<&str>, t: &mut i64, out: &mut Vec<Event>| {
            *t += sim.rng.random_range(3..60) * MICROS_PER_SEC;
            let f = sim.em.fields();
            let mut fields = vec![(f.page, V::S(name.into()))];
            if let Some(p) = product {
                fields.push((f.product_id, V::S(p.into())));
            }
            let pt = sim.em.types.page_view;
            out.push(sim.em.event(pt, Some(&uid), *t, fields));
        };
        page(self, "home", None, &mut t, out);
        let flow = self.rng.random::<f64>();
        if flow < 0.35 {
            let (pid, _) = WEALTH[self.rng.random_range(0..WEALTH.len())];
            page(self, "wealth_list", None, &mut t, out);
            if self.rng.random::<f64>() < 0.6 {
                page(self, "wealth_detail", Some(pid), &mut t, out);
                if self.users[i].task_stage >= 4 && self.rng.random::<f64>() < 0.3 {
                    t += self.rng.random_range(10..120) * MICROS_PER_SEC;
                    let e = self.wealth_purchase(i, t, out);
                    out.push(e);
                }
            }
        } else if flow < 0.5 {
            page(self, "loan_offer", None, &mut t, out);
            if self.rng.random::<f64>() < 0.3 {
                page(self, "loan_apply_form", None, &mut t, out);
                if self.users[i].task_stage >= 1 && self.users[i].loan.is_none() && self.rng.random::<f64>() < 0.5 {
                    t += self.rng.random_range(20..300) * MICROS_PER_SEC;
                    self.loan_application(i, day, t, out);
                }
            }
        } else if flow < 0.62 {
            page(self, "scenario_mall", None, &mut t, out);
            if self.users[i].card_bound() && self.rng.random::<f64>() < 0.25 {
                t += self.rng.random_range(20..200) * MICROS_PER_SEC;
                self.instalment(i, t, out);
            }
        } else if flow < 0.75 {
            page(self, "assets", None, &mut t, out);
        } else if flow < 0.8 {
            page(self, "education_article", None, &mut t, out);
        }
        let secs = (t - self.ts(day, start)) / MICROS_PER_SEC + self.rng.random_range(5..240);
        let f = self.em.fields();
        let fields = vec![
            (f.session_secs, V::I(secs)),
            (f.device_id, V::S(self.users[i].device.clone())),
            (f.os, V::S(self.users[i].os.into())),
            (f.app_version, V::S("5.12.0".into())),
        ];
        let st = self.em.types.app_session;
        let end = self.ts(day, start) + secs * MICROS_PER_SEC;
        out.push(self.em.event(st, Some(&uid), end, fields));
    }

    fn loan_application(&mut self, i: usize, day: u32, ts: i64, out: &mut Vec<Event>) {
        let uid = self.users[i].id.clone();
        let app_id = self.next_id("a");
        let cash = self.rng.random::<f64>() < 0.7;
        let amount_yuan: i64 = self.rng.random_range(2..50) * 1000;
        let term: i64 = [3, 6, 12][self.rng.random_range(0..3)];
        let f = self.em.fields();
        let mut fields = vec![
            (f.application_id, V::S(app_id.clone())),
            (f.product_id, V::S(if cash { "cash_loan" } else { "instalment_loan" }.into())),
            (f.term_months, V::I(term)),
        ];
        fields.extend(self.em.money(amount_yuan * 100));
        let t = self.em.types.loan_application;
        out.push(self.em.event(t, Some(&uid), ts, fields));
        self.credit_report(i, ts + 2 * MICROS_PER_SEC, out);
        let score = self.users[i].bureau_score;
        let approved = score >= 600 && self.rng.random::<f64>() < 0.85;
        let decided = ts + self.rng.random_range(5..120) * MICROS_PER_SEC;
        let loan_id = if approved { self.next_id("l") } else { String::new() };
        let f = self.em.fields();
        let mut fields = vec![(f.application_id, V::S(app_id)), (f.approved, V::B(approved))];
        if approved {
            let apr_bps = (2400 - (score - 600) * 5).clamp(1000, 2400);
            fields.push((f.loan_id, V::S(loan_id.clone())));
            fields.push((f.apr_bps, V::I(apr_bps)));
            fields.push((f.term_months, V::I(term)));
            fields.extend(self.em.money(amount_yuan * 100));
            let principal = amount_yuan * 100;
            // Riskier borrowers are likelier to fall behind.
            let p_bad = ((700 - score) as f64 / 400.0).clamp(0.02, 0.5);
            self.users[i].loan = Some(Loan {
                id: loan_id,
                monthly_principal_fen: principal / term,
                monthly_interest_fen: principal * apr_bps / 10_000 / 12,
                remaining: term as u32,
                next_due_day: day + 30,
                bad: self.rng.random::<f64>() < p_bad,
                defaulted: false,
            });
            self.stats.loans += 1;
        } else {
            fields.push((f.reason, V::S(if score < 600 { "score_below_threshold" } else { "policy_rule" }.into())));
        }
        let t = self.em.types.loan_decision;
        out.push(self.em.event(t, Some(&uid), decided, fields));
    }

    fn loan_dues(&mut self, i: usize, day: u32, out: &mut Vec<Event>) {
        let Some(loan) = &self.users[i].loan else { return };
        if loan.defaulted || loan.next_due_day != day {
            return;
        }
        let uid = self.users[i].id.clone();
        let (loan_id, principal, interest, bad) = (loan.id.clone(), loan.monthly_principal_fen, loan.monthly_interest_fen, loan.bad);
        let secs = 10 * 3600 + self.rng.random_range(0..3600);
        let ts = self.ts(day, secs);
        let f = self.em.fields();
        let (f_loan, f_days, f_overdue, f_currency) = (f.loan_id, f.days_overdue, f.overdue_fen, f.currency);
        if bad && self.rng.random::<f64>() < 0.6 {
            let overdue = principal + interest;
            let late_days = [1i64, 30, 60, 90];
            let cured_after = (self.rng.random::<f64>() < 0.5).then(|| self.rng.random_range(3..25i64));
            for d in late_days {
                if cured_after.is_some_and(|c| d > c) {
                    break;
                }
                let fields =
                    vec![(f_loan, V::S(loan_id.clone())), (f_days, V::I(d)), (f_overdue, V::I(overdue)), (f_currency, V::S("CNY".into()))];
                let t = self.em.types.loan_overdue;
                let e = self.em.event(t, Some(&uid), ts + (d - 1) * MICROS_PER_DAY, fields);
                if d == 1 {
                    out.push(e);
                } else {
                    self.defer(e);
                }
            }
            match cured_after {
                Some(c) => {
                    for e in self.repay(i, day, ts + c * MICROS_PER_DAY, LATE_FEE_FEN) {
                        self.defer(e);
                    }
                }
                None => {
                    if let Some(loan) = self.users[i].loan.as_mut() {
                        loan.defaulted = true;
                    }
                }
            }
        } else {
            let events = self.repay(i, day, ts, 0);
            out.extend(events);
        }
        if self.users[i].loan.as_ref().is_some_and(|l| l.remaining == 0) {
            self.users[i].loan = None;
        }
    }

    /// Repays the next instalment of user `i`'s loan at `ts`: the repayment, the interest
    /// booked as revenue, and a late fee when there is one.
    fn repay(&mut self, i: usize, day: u32, ts: i64, late_fee_fen: i64) -> Vec<Event> {
        let Some(loan) = self.users[i].loan.as_mut() else { return Vec::new() };
        loan.remaining -= 1;
        loan.next_due_day = day + 30;
        let (loan_id, principal, interest) = (loan.id.clone(), loan.monthly_principal_fen, loan.monthly_interest_fen);
        let uid = self.users[i].id.clone();
        let f = self.em.fields();
        let mut fields = vec![(f.loan_id, V::S(loan_id)), (f.principal_fen, V::I(principal)), (f.interest_fen, V::I(interest))];
        fields.extend(self.em.money(principal + interest));
        let t = self.em.types.loan_repayment;
        let e = self.em.event(t, Some(&uid), ts, fields);
        let source = e.event_id.clone();
        let mut out = vec![e];
        self.revenue(Some(&uid), ts, "interest", interest, Some(source.clone()), &mut out);
        self.revenue(Some(&uid), ts, "fees", late_fee_fen, Some(source), &mut out);
        out
    }

    fn instalment(&mut self, i: usize, ts: i64, out: &mut Vec<Event>) {
        let uid = self.users[i].id.clone();
        let s = self.rng.random_range(0..SCENARIOS.len());
        let amount = self.rng.random_range(50..3000) * 100;
        let f = self.em.fields();
        let mut fields = vec![
            (f.scenario_id, V::S(SCENARIOS[s].into())),
            (f.merchant_id, V::S(format!("{}_m{}", SCENARIOS[s], self.rng.random_range(0..200)))),
            (f.instalments, V::I([3, 6, 12][self.rng.random_range(0..3)])),
        ];
        fields.extend(self.em.money(amount));
        let t = self.em.types.instalment_purchase;
        let e = self.em.event(t, Some(&uid), ts, fields);
        let source = e.event_id.clone();
        out.push(e);
        // Partners pay a 2.5% commission on scenario-finance volume.
        self.revenue(Some(&uid), ts, "scenario_finance", amount * 25 / 1000, Some(source), out);
    }

    /// Card payments, fraud scenarios 1–3, and late labels for the frauds.
    fn payments(&mut self, i: usize, day: u32, activity: f64, out: &mut Vec<Event>) {
        let drafts = fraud::day_payments(&mut self.rng, &self.users[i].card, activity);
        if drafts.is_empty() {
            return;
        }
        let uid = self.users[i].id.clone();
        let victim = self.users[i].compromised_until > day;
        for d in drafts {
            let mut amount = d.amount_yuan;
            let mut fraud = amount > fraud::SCENARIO1_AMOUNT_YUAN;
            if self.terminal_compromised_until[d.terminal as usize] > day {
                fraud = true;
            }
            if victim && self.rng.random::<f64>() < 1.0 / 3.0 {
                amount *= fraud::SCENARIO3_AMOUNT_FACTOR;
                fraud = true;
            }
            let ts = self.ts(day, d.secs as i64);
            let f = self.em.fields();
            let mut fields = vec![
                (f.terminal_id, V::S(format!("t{:05}", d.terminal))),
                (f.merchant_id, V::S(format!("m{:05}", d.terminal / 3))),
                (f.device_id, V::S(self.users[i].device.clone())),
                (f.channel, V::S("pos".into())),
            ];
            fields.extend(self.em.money((amount * 100.0).round() as i64));
            let t = self.em.types.payment;
            let e = self.em.event(t, Some(&uid), ts, fields);
            self.stats.payments += 1;
            if fraud {
                self.stats.fraud_payments += 1;
                // Chargebacks arrive within the handbook's one-week feedback delay.
                let label_ts = ts + self.rng.random_range(LABEL_DELAY_SECS_MIN..=LABEL_DELAY_SECS_MAX) * MICROS_PER_SEC;
                let f = self.em.fields();
                let fields = vec![(f.target_event_id, V::S(e.event_id.clone())), (f.is_fraud, V::B(true))];
                let lt = self.em.types.fraud_label;
                let label = self.em.event(lt, Some(&uid), label_ts, fields);
                self.defer(label);
            }
            out.push(e);
        }
    }

    /// Business-level events: revenue from partners using the open platform's APIs.
    fn business(&mut self, day: u32, out: &mut Vec<Event>) {
        for (k, partner) in PARTNERS.iter().enumerate() {
            // Partner API revenue grows over the period and with the size of the user base.
            let scale = self.cfg.users as f64 / 20_000.0;
            let yuan = (150.0 + 2.0 * day as f64) * (k + 1) as f64 * scale * self.rng.random_range(0.8..1.2);
            let fen = (yuan * 100.0) as i64;
            let ts = self.ts(day, 23 * 3600 + 30 * 60);
            let f = self.em.fields();
            let mut fields = vec![(f.stream, V::S("api_ecosystem".into())), (f.partner_id, V::S((*partner).into()))];
            fields.extend(self.em.money(fen));
            let t = self.em.types.revenue;
            out.push(self.em.event(t, None, ts, fields));
        }
    }
}
