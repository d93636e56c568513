//! Per-key limits: a token bucket for requests per second, a daily quota and a count of
//! queries running at once; and per network address, a cap on failed sign-ins whatever the
//! user name tried. Counted in memory per process.

use crate::keys::KeyLimits;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

const DAY_US: i64 = 86_400 * 1_000_000;

/// Failed sign-ins one network address may make in a window, whatever names it tries: the
/// per-account lockout stops guessing one password, this stops trying one password on many
/// accounts.
pub const SIGN_IN_FAILURES_PER_ADDRESS_MAX: u32 = 20;
/// The window those failures are counted in, seconds.
pub const SIGN_IN_ADDRESS_WINDOW_SECS: i64 = 15 * 60;
/// Addresses remembered at once; past this, windows that have ended are dropped first.
pub const SIGN_IN_ADDRESSES_TRACKED_MAX: usize = 100_000;

/// Why a request was refused for its key's limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitRefusal {
    /// Over the per-second rate.
    #[error("over this key's limit of {limit} requests per second (requests_per_sec)")]
    Rate {
        /// The limit.
        limit: u32,
        /// Seconds until a request would pass.
        retry_after_secs: u64,
    },
    /// Over the daily quota.
    #[error("over this key's quota of {limit} requests per UTC day (daily_requests_max)")]
    Daily {
        /// The quota.
        limit: u64,
        /// Seconds until the day turns.
        retry_after_secs: u64,
    },
    /// Too many queries at once.
    #[error("this key already runs {limit} queries at once (queries_concurrent_max)")]
    Queries {
        /// The limit.
        limit: u32,
    },
    /// A query ran past its time and was stopped.
    #[error("the query ran past this key's limit of {limit_secs} s (query_secs_max) and was stopped")]
    QueryTime {
        /// The limit, seconds.
        limit_secs: u64,
    },
    /// Too many failed sign-ins from one address.
    #[error(
        "too many failed sign-ins from this address ({SIGN_IN_FAILURES_PER_ADDRESS_MAX} in {SIGN_IN_ADDRESS_WINDOW_SECS} s); try again in {retry_after_secs} s"
    )]
    SignInAddress {
        /// Seconds until the window ends.
        retry_after_secs: u64,
    },
}

impl LimitRefusal {
    /// The `Retry-After` to answer with, seconds.
    pub fn retry_after_secs(&self) -> u64 {
        match self {
            LimitRefusal::Rate { retry_after_secs, .. }
            | LimitRefusal::Daily { retry_after_secs, .. }
            | LimitRefusal::SignInAddress { retry_after_secs } => *retry_after_secs,
            // Running it again at once meets the same limit; a lighter query may pass.
            LimitRefusal::Queries { .. } | LimitRefusal::QueryTime { .. } => 1,
        }
    }

    /// The limit's name, for metrics.
    pub fn name(&self) -> &'static str {
        match self {
            LimitRefusal::Rate { .. } => "requests_per_sec",
            LimitRefusal::Daily { .. } => "daily_requests_max",
            LimitRefusal::Queries { .. } => "queries_concurrent_max",
            LimitRefusal::QueryTime { .. } => "query_secs_max",
            LimitRefusal::SignInAddress { .. } => "sign_in_failures_per_address",
        }
    }
}

#[derive(Default)]
struct Counters {
    tokens: f64,
    refilled_us: i64,
    day: i64,
    today: u64,
    queries: Arc<AtomicU32>,
}

/// Every key's counters.
#[derive(Default)]
pub struct Limiter {
    by_key: Mutex<HashMap<String, Counters>>,
}

/// A query's turn under its key's `queries_concurrent_max`; released when dropped.
pub struct QueryTurn(Option<Arc<AtomicU32>>);

impl Drop for QueryTurn {
    fn drop(&mut self) {
        if let Some(c) = &self.0 {
            c.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Limiter {
    /// Counts one request of key `id` at `now_us`, or says which limit it is over.
    pub fn admit(&self, id: &str, limits: &KeyLimits, now_us: i64) -> Result<(), LimitRefusal> {
        if limits.requests_per_sec.is_none() && limits.daily_requests_max.is_none() {
            return Ok(());
        }
        let mut map = self.by_key.lock();
        let c = map.entry(id.to_string()).or_default();
        if let Some(quota) = limits.daily_requests_max {
            let day = now_us.div_euclid(DAY_US);
            if day != c.day {
                (c.day, c.today) = (day, 0);
            }
            if c.today >= quota {
                let retry_after_secs = ((day + 1) * DAY_US - now_us).div_euclid(1_000_000) as u64 + 1;
                return Err(LimitRefusal::Daily { limit: quota, retry_after_secs });
            }
        }
        if let Some(rate) = limits.requests_per_sec {
            let rate_f = f64::from(rate.max(1));
            if c.refilled_us == 0 {
                (c.tokens, c.refilled_us) = (rate_f, now_us);
            }
            let elapsed_secs = (now_us - c.refilled_us).max(0) as f64 / 1e6;
            c.tokens = (c.tokens + elapsed_secs * rate_f).min(rate_f);
            c.refilled_us = now_us;
            if c.tokens < 1.0 {
                let retry_after_secs = ((1.0 - c.tokens) / rate_f).ceil().max(1.0) as u64;
                return Err(LimitRefusal::Rate { limit: rate, retry_after_secs });
            }
            c.tokens -= 1.0;
        }
        c.today += 1;
        Ok(())
    }

    /// A turn for one more query of key `id`, or the refusal when it runs its limit already.
    pub fn query_turn(&self, id: &str, limits: &KeyLimits) -> Result<QueryTurn, LimitRefusal> {
        let Some(limit) = limits.queries_concurrent_max else {
            return Ok(QueryTurn(None));
        };
        let counter = self.by_key.lock().entry(id.to_string()).or_default().queries.clone();
        let before = counter.fetch_add(1, Ordering::AcqRel);
        if before >= limit {
            counter.fetch_sub(1, Ordering::AcqRel);
            return Err(LimitRefusal::Queries { limit });
        }
        Ok(QueryTurn(Some(counter)))
    }
}

/// Failed sign-ins per network address in fixed windows of `SIGN_IN_ADDRESS_WINDOW_SECS`.
#[derive(Default)]
pub struct SignInThrottle {
    by_address: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl SignInThrottle {
    /// Whether `address` may try to sign in at `now_us`.
    pub fn check(&self, address: IpAddr, now_us: i64) -> Result<(), LimitRefusal> {
        let map = self.by_address.lock();
        match map.get(&address) {
            Some(&(started_us, failures)) if failures >= SIGN_IN_FAILURES_PER_ADDRESS_MAX && now_us < window_end(started_us) => {
                Err(LimitRefusal::SignInAddress { retry_after_secs: (window_end(started_us) - now_us).div_euclid(1_000_000) as u64 + 1 })
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed sign-in from `address`.
    pub fn failed(&self, address: IpAddr, now_us: i64) {
        let mut map = self.by_address.lock();
        if map.len() >= SIGN_IN_ADDRESSES_TRACKED_MAX && !map.contains_key(&address) {
            map.retain(|_, (started_us, _)| now_us < window_end(*started_us));
            if map.len() >= SIGN_IN_ADDRESSES_TRACKED_MAX {
                // Still full of live windows: the oldest one gives way.
                if let Some(oldest) = map.iter().min_by_key(|(_, (started_us, _))| *started_us).map(|(a, _)| *a) {
                    map.remove(&oldest);
                }
            }
        }
        let entry = map.entry(address).or_insert((now_us, 0));
        if now_us >= window_end(entry.0) {
            *entry = (now_us, 0);
        }
        entry.1 += 1;
    }
}

fn window_end(started_us: i64) -> i64 {
    started_us + SIGN_IN_ADDRESS_WINDOW_SECS * 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_its_rate_then_refuses_with_a_retry_time() {
        let limiter = Limiter::default();
        let limits = KeyLimits { requests_per_sec: Some(5), ..KeyLimits::default() };
        let t = 1_000_000_000;
        for _ in 0..5 {
            limiter.admit("k", &limits, t).unwrap();
        }
        let refusal = limiter.admit("k", &limits, t).unwrap_err();
        assert_eq!(refusal.retry_after_secs(), 1);
        // A fifth of a second refills one token.
        limiter.admit("k", &limits, t + 200_000).unwrap();
        // Another key has its own bucket.
        limiter.admit("other", &limits, t).unwrap();
    }

    #[test]
    fn the_daily_quota_resets_at_the_turn_of_the_day() {
        let limiter = Limiter::default();
        let limits = KeyLimits { daily_requests_max: Some(2), ..KeyLimits::default() };
        let t = 10 * DAY_US + 5;
        limiter.admit("k", &limits, t).unwrap();
        limiter.admit("k", &limits, t).unwrap();
        assert!(matches!(limiter.admit("k", &limits, t), Err(LimitRefusal::Daily { .. })));
        limiter.admit("k", &limits, 11 * DAY_US).unwrap();
    }

    #[test]
    fn concurrent_queries_are_counted_until_their_turn_ends() {
        let limiter = Limiter::default();
        let limits = KeyLimits { queries_concurrent_max: Some(1), ..KeyLimits::default() };
        let turn = limiter.query_turn("k", &limits).unwrap();
        assert!(limiter.query_turn("k", &limits).is_err());
        drop(turn);
        assert!(limiter.query_turn("k", &limits).is_ok());
    }

    #[test]
    fn an_address_with_too_many_failed_sign_ins_waits_out_its_window() {
        let throttle = SignInThrottle::default();
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let b: IpAddr = "203.0.113.8".parse().unwrap();
        let t = 1_000_000_000;
        for _ in 0..SIGN_IN_FAILURES_PER_ADDRESS_MAX {
            throttle.check(a, t).unwrap();
            throttle.failed(a, t);
        }
        let refusal = throttle.check(a, t + 1_000_000).unwrap_err();
        assert_eq!(refusal.retry_after_secs(), SIGN_IN_ADDRESS_WINDOW_SECS as u64);
        assert_eq!(refusal.name(), "sign_in_failures_per_address");
        throttle.check(b, t).unwrap();
        throttle.check(a, window_end(t)).unwrap();
        throttle.failed(a, window_end(t));
        throttle.check(a, window_end(t)).unwrap();
    }

    #[test]
    fn the_throttle_remembers_a_bounded_number_of_addresses() {
        let throttle = SignInThrottle::default();
        for i in 0..SIGN_IN_ADDRESSES_TRACKED_MAX as u32 + 10 {
            throttle.failed(IpAddr::from(i.to_be_bytes()), i64::from(i));
        }
        assert_eq!(throttle.by_address.lock().len(), SIGN_IN_ADDRESSES_TRACKED_MAX);
    }
}
