//! A user's profile as the API and CLI show it: the stored profile plus what is derived from it
//! at read time (lifecycle stage, RFM, AUM, tags, recent behaviour).

use crate::live::{LiveState, Profile, UserState};
use serde::Serialize;

use finpulse_core::time::MICROS_PER_DAY;
/// A user signed up within this many days is new.
pub const NEW_USER_DAYS: i64 = 7;
/// Active: any event within this many days.
pub const ACTIVE_DAYS: i64 = 7;
/// Churned: no event within this many days (dormant in between).
pub const CHURNED_DAYS: i64 = 30;
/// AUM at or above this (minor units) tags a user high_value.
pub const HIGH_VALUE_AUM_FEN: i64 = 5_000_000;

/// The event field each profile value is copied from. Live state reads these names when it
/// builds a profile, and a reader applies the named field's data class to the value, so a
/// profile is masked exactly as SQL masks the events it came from.
pub mod source {
    /// `channel`.
    pub const CHANNEL: &str = "channel";
    /// `campaign`.
    pub const CAMPAIGN: &str = "campaign";
    /// `city`.
    pub const CITY: &str = "city";
    /// `os`.
    pub const OS: &str = "os";
    /// `credit.bureau`.
    pub const CREDIT_BUREAU: &str = "bureau";
    /// `credit.score`.
    pub const CREDIT_SCORE: &str = "bureau_score";
    /// `credit.delinquencies_24m`.
    pub const CREDIT_DELINQUENCIES_24M: &str = "delinquencies_24m";
    /// `credit.inquiries_6m`.
    pub const CREDIT_INQUIRIES_6M: &str = "inquiries_6m";
}

/// Recency, frequency and monetary value of a user's transactions.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Rfm {
    /// Days since the latest money movement; `None` without any.
    pub recency_days: Option<f64>,
    /// Transactions in the last 30 days.
    pub frequency_30d: u32,
    /// Their total, minor units.
    pub monetary_fen_30d: i64,
}

/// Recent behaviour, as of the state's clock.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Behaviour {
    /// Transactions in the last day, 7 days and 30 days.
    pub tx_count_1d: u32,
    /// 7 days.
    pub tx_count_7d: u32,
    /// 30 days.
    pub tx_count_30d: u32,
    /// Average amount over 30 days, minor units.
    pub avg_amount_fen_30d: Option<f64>,
    /// Transactions ever.
    pub tx_count_total: u64,
    /// Transactions labelled fraud so far.
    pub known_frauds: u32,
    /// Devices and terminals used.
    pub devices_seen: usize,
    /// Terminals.
    pub terminals_seen: usize,
}

/// A user as shown.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct UserView<'a> {
    /// The stored profile.
    #[serde(flatten)]
    pub profile: &'a Profile,
    /// new, active, dormant or churned.
    pub lifecycle_stage: &'static str,
    /// Wealth holdings in total, minor units.
    pub aum_fen: i64,
    /// RFM.
    pub rfm: Rfm,
    /// Recent behaviour.
    pub behaviour: Behaviour,
    /// Derived tags.
    pub tags: Vec<&'static str>,
    /// The state's clock the view was taken at (UTC microseconds).
    pub as_of_us: i64,
}

/// A user's view against the state's clock.
pub fn user_view<'a>(state: &'a LiveState, user_id: &str) -> Option<UserView<'a>> {
    let u: &UserState = state.user(user_id)?;
    let p = &u.profile;
    let now = state.clock_us;
    let days = |t: i64| (now - t) as f64 / MICROS_PER_DAY as f64;
    let idle_days = (now - p.last_seen_us) / MICROS_PER_DAY;
    let lifecycle_stage = if p.signup_us.is_some_and(|s| (now - s) / MICROS_PER_DAY < NEW_USER_DAYS) {
        "new"
    } else if idle_days < ACTIVE_DAYS {
        "active"
    } else if idle_days < CHURNED_DAYS {
        "dormant"
    } else {
        "churned"
    };
    let [d1, d7, d30] = u.baseline.window.spans(now + 1, [MICROS_PER_DAY, 7 * MICROS_PER_DAY, 30 * MICROS_PER_DAY]);
    let aum_fen = p.holdings_fen.values().sum();
    let mut tags = Vec::new();
    if aum_fen >= HIGH_VALUE_AUM_FEN {
        tags.push("high_value");
    }
    if !p.overdue_fen.is_empty() {
        tags.push("overdue");
    }
    if u.baseline.known_frauds > 0 {
        tags.push("fraud_victim");
    }
    if p.complaints > 0 {
        tags.push("complained");
    }
    if p.tasks_completed.len() >= 4 {
        tags.push("activated");
    }
    Some(UserView {
        profile: p,
        lifecycle_stage,
        aum_fen,
        rfm: Rfm { recency_days: p.last_money_us.map(days), frequency_30d: d30.count, monetary_fen_30d: d30.sum_fen },
        behaviour: Behaviour {
            tx_count_1d: d1.count,
            tx_count_7d: d7.count,
            tx_count_30d: d30.count,
            avg_amount_fen_30d: Some(d30.avg_fen()).filter(|x| x.is_finite()),
            tx_count_total: u.baseline.amounts.n,
            known_frauds: u.baseline.known_frauds,
            devices_seen: u.baseline.devices.len(),
            terminals_seen: u.baseline.terminals.len(),
        },
        tags,
        as_of_us: now,
    })
}
