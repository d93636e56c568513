//! Per-key limits: a token bucket for requests per second, a daily quota and a count of
//! queries running at once. Counted in memory per process.

use crate::keys::KeyLimits;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

const DAY_US: i64 = 86_400 * 1_000_000;

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
}

impl LimitRefusal {
    /// The `Retry-After` to answer with, seconds.
    pub fn retry_after_secs(&self) -> u64 {
        match self {
            LimitRefusal::Rate { retry_after_secs, .. } | LimitRefusal::Daily { retry_after_secs, .. } => *retry_after_secs,
            LimitRefusal::Queries { .. } => 1,
        }
    }

    /// The limit's name, for metrics.
    pub fn name(&self) -> &'static str {
        match self {
            LimitRefusal::Rate { .. } => "requests_per_sec",
            LimitRefusal::Daily { .. } => "daily_requests_max",
            LimitRefusal::Queries { .. } => "queries_concurrent_max",
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
}
