//! Per-user and per-terminal windows behind the behaviour features.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Transactions a user's window remembers; past it the oldest are forgotten (counts over 30
/// days saturate for a user making more than this many transactions a month).
pub const USER_WINDOW_TX_MAX: usize = 1024;
/// The longest user window.
pub const USER_WINDOW_US: i64 = 30 * finpulse_core::time::MICROS_PER_DAY;
/// Distinct devices, terminals or merchants remembered per user; past it the oldest is
/// forgotten (and would count as new again).
pub const SEEN_MAX: usize = 64;

/// A user's recent transactions (time, amount), oldest first, within [`USER_WINDOW_US`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TxWindow {
    recent: VecDeque<(i64, i64)>,
}

/// Count, amount sum and largest amount over a window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Span {
    /// Transactions.
    pub count: u32,
    /// Their amounts, minor units.
    pub sum_fen: i64,
    /// The largest of them (0 without transactions).
    pub max_fen: i64,
}

impl Span {
    /// The average amount; NaN without transactions.
    pub fn avg_fen(self) -> f64 {
        if self.count == 0 { f64::NAN } else { self.sum_fen as f64 / self.count as f64 }
    }
    /// The largest amount; NaN without transactions.
    pub fn max_amount_fen(self) -> f64 {
        if self.count == 0 { f64::NAN } else { self.max_fen as f64 }
    }
}

impl TxWindow {
    /// Count and sum of transactions in `(now - len, now)`, for each length (ascending).
    pub fn spans<const N: usize>(&self, now_us: i64, lens_us: [i64; N]) -> [Span; N] {
        let mut out = [Span::default(); N];
        // Newest first: each shorter window is a prefix of the longer ones.
        for &(ts, amount) in self.recent.iter().rev() {
            let age = now_us - ts;
            if age < 0 {
                continue; // recorded after `now` (out-of-order input): not before this transaction
            }
            let mut any = false;
            for (span, &len) in out.iter_mut().zip(&lens_us) {
                if age < len {
                    span.max_fen = if span.count == 0 { amount } else { span.max_fen.max(amount) };
                    span.count += 1;
                    span.sum_fen += amount;
                    any = true;
                }
            }
            if !any {
                break;
            }
        }
        out
    }

    /// Of the transactions in `(now - recent_us, now)`, those with an amount above `factor` times
    /// the median amount over `(now - baseline_us, now)`: a run of unusually large spending (a
    /// stolen card's pattern), robust to the run itself. 0 without transactions.
    pub fn count_above_median(&self, now_us: i64, recent_us: i64, baseline_us: i64, factor: i64) -> u32 {
        // One pass, newest first: the baseline's amounts (the recent ones are its first) and
        // the largest recent one. Most users' month fits on the stack; a busier one goes to
        // the heap.
        let mut on_stack = [0i64; MEDIAN_STACK_MAX];
        let mut on_heap: Vec<i64> = Vec::new();
        let (mut n, mut recent_n, mut recent_max) = (0, 0, i64::MIN);
        for &(ts, amount) in self.recent.iter().rev() {
            let age = now_us - ts;
            if age < 0 {
                continue; // recorded after `now` (out-of-order input): not before this transaction
            }
            if age >= baseline_us {
                break;
            }
            if age < recent_us {
                recent_n += 1;
                recent_max = recent_max.max(amount);
            }
            if n < MEDIAN_STACK_MAX {
                on_stack[n] = amount;
            } else {
                if on_heap.is_empty() {
                    on_heap.extend_from_slice(&on_stack);
                }
                on_heap.push(amount);
            }
            n += 1;
        }
        if recent_n == 0 {
            return 0;
        }
        let amounts: &mut [i64] = if n <= MEDIAN_STACK_MAX { &mut on_stack[..n] } else { &mut on_heap };
        // The largest recent amount is above factor × the lower median only when at least
        // half the amounts (rounded up) are below its factor-th part; most payments end here.
        let below = amounts.iter().filter(|&&a| a.saturating_mul(factor) < recent_max).count();
        if below < n.div_ceil(2) {
            return 0;
        }
        // The lower median: with two amounts, the smaller (a card's first large payment stands out).
        let median = *amounts.select_nth_unstable((n - 1) / 2).1;
        let threshold = median.saturating_mul(factor);
        // The recent amounts were the first gathered, but the selection reordered them: count
        // them again from the window.
        let recent = self.recent.iter().rev().filter(|&&(ts, _)| ts <= now_us).take_while(|&&(ts, _)| now_us - ts < recent_us);
        recent.filter(|&&(_, amount)| amount > threshold).count() as u32
    }

    /// Records a transaction and forgets those older than the longest window.
    pub fn push(&mut self, ts_us: i64, amount_fen: i64) {
        // Input is in log order, normally time order; an older one goes to its place.
        let at = self.recent.iter().rposition(|&(t, _)| t <= ts_us).map_or(0, |i| i + 1);
        self.recent.insert(at, (ts_us, amount_fen));
        let newest = self.recent.back().map_or(ts_us, |b| b.0);
        while self.recent.front().is_some_and(|&(t, _)| newest - t >= USER_WINDOW_US) || self.recent.len() > USER_WINDOW_TX_MAX {
            self.recent.pop_front();
        }
    }

    /// Transactions remembered.
    pub fn len(&self) -> usize {
        self.recent.len()
    }

    /// Whether none are remembered.
    pub fn is_empty(&self) -> bool {
        self.recent.is_empty()
    }
}

/// Amounts a median is taken over without a heap buffer.
const MEDIAN_STACK_MAX: usize = 128;

/// A small set of 64-bit keys with when each was last used, bounded by [`SEEN_MAX`]: past it,
/// the key used longest ago is forgotten. "Longest ago" is by event time, not by arrival, so
/// history imported after newer events keeps the same keys as history applied in time order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeenSet(Vec<(u64, i64)>);

impl SeenSet {
    /// Whether the key was seen.
    pub fn contains(&self, key: u64) -> bool {
        self.0.iter().any(|&(k, _)| k == key)
    }
    /// Records a use of `key` at `ts_us`. When full, a key used before every one kept is not
    /// kept; otherwise the one used longest ago makes room.
    pub fn insert(&mut self, key: u64, ts_us: i64) {
        if let Some(e) = self.0.iter_mut().find(|(k, _)| *k == key) {
            e.1 = e.1.max(ts_us);
            return;
        }
        if self.0.len() < SEEN_MAX {
            self.0.push((key, ts_us));
            return;
        }
        // The oldest use; at equal times the larger key goes first, so the choice does not
        // depend on the order the uses came in.
        let (oldest, &(old_key, old_ts)) = self.0.iter().enumerate().min_by_key(|(_, (k, t))| (*t, std::cmp::Reverse(*k))).expect("full");
        if (ts_us, std::cmp::Reverse(key)) > (old_ts, std::cmp::Reverse(old_key)) {
            self.0[oldest] = (key, ts_us);
        }
    }
    /// Keys remembered.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A seen-set as checkpoint format 3 stored it: keys only, oldest first.
#[derive(Deserialize)]
pub(crate) struct SeenSetV3(Vec<u64>);

impl SeenSetV3 {
    /// The same keys, their order kept as times (format 3 kept no times: the oldest gets the
    /// earliest, so the next to go is the same).
    pub(crate) fn migrate(self) -> SeenSet {
        SeenSet(self.0.into_iter().zip(i64::MIN..).collect())
    }
}

/// Days a terminal's buckets cover: the longest terminal window is 30 days, lagged by up to
/// [`crate::TERMINAL_LABEL_LAG_DAYS`].
pub const TERMINAL_DAYS: usize = 40;

/// Payments and known frauds per business day at a terminal or merchant, for the last
/// [`TERMINAL_DAYS`] days.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DayBuckets {
    #[serde(with = "per_day")]
    day: [i32; TERMINAL_DAYS],
    #[serde(with = "per_day")]
    tx: [u32; TERMINAL_DAYS],
    #[serde(with = "per_day")]
    fraud: [u32; TERMINAL_DAYS],
}

/// A bucket array as a sequence (serde derives arrays of at most 32); one of another length is
/// refused when read.
mod per_day {
    use super::TERMINAL_DAYS;
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

    pub fn serialize<T: Serialize, S: Serializer>(a: &[T; TERMINAL_DAYS], s: S) -> Result<S::Ok, S::Error> {
        a.as_slice().serialize(s)
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<[T; TERMINAL_DAYS], D::Error> {
        let v = Vec::<T>::deserialize(d)?;
        let n = v.len();
        v.try_into().map_err(|_| D::Error::custom(format!("{n} day buckets, expected {TERMINAL_DAYS}")))
    }
}

impl Default for DayBuckets {
    fn default() -> Self {
        Self { day: [i32::MIN; TERMINAL_DAYS], tx: [0; TERMINAL_DAYS], fraud: [0; TERMINAL_DAYS] }
    }
}

/// Days the buckets of checkpoint format 3 covered.
pub(crate) const TERMINAL_DAYS_V3: usize = 32;

/// A terminal's buckets as checkpoint format 3 stored them (32 days).
#[derive(Deserialize)]
pub(crate) struct DayBucketsV3 {
    day: [i32; TERMINAL_DAYS_V3],
    tx: [u32; TERMINAL_DAYS_V3],
    fraud: [u32; TERMINAL_DAYS_V3],
}

impl From<DayBucketsV3> for DayBuckets {
    /// The same days in today's slots: 32 consecutive days never share a slot of 40.
    fn from(old: DayBucketsV3) -> Self {
        let mut b = DayBuckets::default();
        for i in (0..TERMINAL_DAYS_V3).filter(|&i| old.day[i] != i32::MIN) {
            let slot = old.day[i].rem_euclid(TERMINAL_DAYS as i32) as usize;
            (b.day[slot], b.tx[slot], b.fraud[slot]) = (old.day[i], old.tx[i], old.fraud[i]);
        }
        b
    }
}

impl DayBuckets {
    fn slot(&mut self, day: i32) -> Option<usize> {
        let i = day.rem_euclid(TERMINAL_DAYS as i32) as usize;
        if self.day[i] == day {
            return Some(i);
        }
        if self.day[i] > day {
            return None; // older than the buckets keep
        }
        self.day[i] = day;
        self.tx[i] = 0;
        self.fraud[i] = 0;
        Some(i)
    }

    /// Counts a payment on `day`.
    pub fn add_tx(&mut self, day: i32) {
        if let Some(i) = self.slot(day) {
            self.tx[i] += 1;
        }
    }

    /// Changes the known frauds among `day`'s payments by `delta` (a label arriving or being
    /// reversed); a day no longer kept is ignored.
    pub fn add_fraud(&mut self, day: i32, delta: i32) {
        let i = day.rem_euclid(TERMINAL_DAYS as i32) as usize;
        if self.day[i] == day {
            self.fraud[i] = self.fraud[i].saturating_add_signed(delta);
        }
    }

    /// The latest day up to `today` with a payment known to be fraud, of the days kept.
    pub fn latest_fraud_day(&self, today: i32) -> Option<i32> {
        (0..TERMINAL_DAYS).filter(|&i| self.fraud[i] > 0 && self.day[i] <= today).map(|i| self.day[i]).max()
    }

    /// The run of payments known to be fraud that ends on the latest day with payments in
    /// `(until - days, until]`: going back from that day, every day whose payments are all
    /// known fraud extends it (days without payments are passed over), and it stops at the
    /// first day with a payment not known as fraud, taking that day's frauds as the run's start
    /// (the order within a day is not kept). `Some((frauds, first day))`, or `None` when the
    /// latest payments are not fraud.
    pub fn fraud_streak(&self, until: i32, days: i32) -> Option<(u32, i32)> {
        let mut run: Option<(u32, i32)> = None;
        for day in (until - days + 1..=until).rev() {
            let i = day.rem_euclid(TERMINAL_DAYS as i32) as usize;
            if self.day[i] != day || self.tx[i] == 0 {
                continue;
            }
            let (tx, fraud) = (self.tx[i], self.fraud[i].min(self.tx[i]));
            if fraud > 0 {
                run = Some((run.map_or(0, |r| r.0) + fraud, day));
            }
            if fraud < tx {
                break;
            }
        }
        run
    }

    /// (payments, known frauds) on `today` and the `days - 1` days before.
    pub fn window(&self, today: i32, days: i32) -> (u32, u32) {
        let (mut tx, mut fraud) = (0, 0);
        for i in 0..TERMINAL_DAYS {
            let d = self.day[i];
            if d <= today && d > today - days {
                tx += self.tx[i];
                fraud += self.fraud[i];
            }
        }
        (tx, fraud)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000_000;

    #[test]
    fn spans_count_only_transactions_strictly_inside_each_window() {
        let mut w = TxWindow::default();
        let now = 100 * 24 * HOUR;
        w.push(now - 25 * HOUR, 100); // outside 1d
        w.push(now - 2 * HOUR, 200);
        w.push(now - HOUR / 2, 300);
        let [h1, d1, d7] = w.spans(now, [HOUR, 24 * HOUR, 7 * 24 * HOUR]);
        assert_eq!((h1.count, h1.sum_fen), (1, 300));
        assert_eq!((d1.count, d1.sum_fen), (2, 500));
        assert_eq!((d7.count, d7.sum_fen), (3, 600));
        assert_eq!(d1.avg_fen(), 250.0);
        assert_eq!((h1.max_amount_fen(), d1.max_amount_fen(), d7.max_amount_fen()), (300.0, 300.0, 300.0));
        assert!(Span::default().avg_fen().is_nan());
    }

    #[test]
    fn large_amounts_are_counted_against_the_median_of_the_longer_window() {
        let mut w = TxWindow::default();
        let day = 24 * HOUR;
        let now = 100 * day;
        assert_eq!(w.count_above_median(now, 7 * day, 30 * day, 3), 0);
        for (ago_days, amount) in [(29, 100), (20, 120), (15, 90), (10, 110), (6, 500), (3, 301), (2, 300), (1, 100)] {
            w.push(now - ago_days * day, amount);
        }
        w.push(now + HOUR, 10_000); // after `now`: not before this transaction
        // Median of the 8 amounts is 110 (lower median): above 330 in the last 7 days is 500
        // alone; above 220, also 301 and 300.
        assert_eq!(w.count_above_median(now, 7 * day, 30 * day, 3), 1);
        assert_eq!(w.count_above_median(now, 7 * day, 30 * day, 2), 3);
        // Over 10 days the median is 300: nothing is above 900.
        assert_eq!(w.count_above_median(now, 7 * day, 10 * day, 3), 0);

        // A month busier than the stack buffer holds gives the same counts.
        let mut busy = TxWindow::default();
        for i in 0..300 {
            busy.push(now - 29 * day + i * HOUR, 100 + i % 7);
        }
        for amount in [350, 400, 200] {
            busy.push(now - day, amount);
        }
        assert_eq!(busy.count_above_median(now, 7 * day, 30 * day, 3), 2);
    }

    #[test]
    fn a_fraud_streak_runs_back_over_days_wholly_fraud_and_empty_days() {
        let mut b = DayBuckets::default();
        let pay = |b: &mut DayBuckets, day: i32, tx: u32, fraud: i32| {
            (0..tx).for_each(|_| b.add_tx(day));
            b.add_fraud(day, fraud);
        };
        pay(&mut b, 10, 3, 0);
        pay(&mut b, 11, 4, 2); // the run starts here: 2 frauds
        pay(&mut b, 13, 2, 2); // day 12 had no payments
        pay(&mut b, 14, 1, 1);
        pay(&mut b, 20, 5, 1); // after `until`
        assert_eq!(b.fraud_streak(14, 30), Some((5, 11)));
        assert_eq!(b.fraud_streak(14, 2), Some((3, 13)));
        assert_eq!(b.fraud_streak(10, 30), None);
        assert_eq!(b.fraud_streak(20, 3), Some((1, 20)));
        assert_eq!(DayBuckets::default().fraud_streak(20, 30), None);
    }

    #[test]
    fn old_transactions_are_forgotten_after_thirty_days() {
        let mut w = TxWindow::default();
        w.push(0, 1);
        w.push(USER_WINDOW_US - 1, 2);
        assert_eq!(w.len(), 2);
        w.push(USER_WINDOW_US, 3);
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn an_out_of_order_transaction_is_placed_by_time() {
        let mut w = TxWindow::default();
        w.push(10 * HOUR, 1);
        w.push(5 * HOUR, 2);
        let [s] = w.spans(6 * HOUR, [2 * HOUR]);
        assert_eq!((s.count, s.sum_fen), (1, 2));
    }

    #[test]
    fn seen_set_forgets_the_key_used_longest_ago_past_its_bound() {
        let mut s = SeenSet::default();
        for k in 0..SEEN_MAX as u64 + 1 {
            s.insert(k, k as i64);
        }
        assert!(!s.contains(0));
        assert!(s.contains(SEEN_MAX as u64));
        assert_eq!(s.len(), SEEN_MAX);
        // A use from before everything kept is not kept; using a kept key again keeps it.
        s.insert(1_000, -5);
        assert!(!s.contains(1_000));
        s.insert(1, 10_000);
        s.insert(2_000, 10_001);
        assert!(s.contains(1) && s.contains(2_000) && !s.contains(2));
    }

    #[test]
    fn seen_set_keeps_the_same_keys_whatever_order_the_uses_come_in() {
        let uses: Vec<(u64, i64)> = (0..200u64).map(|i| (i % 97, ((i * 7919) % 500) as i64)).collect();
        let mut forward = SeenSet::default();
        uses.iter().for_each(|&(k, t)| forward.insert(k, t));
        let mut backward = SeenSet::default();
        uses.iter().rev().for_each(|&(k, t)| backward.insert(k, t));
        let keys = |s: &SeenSet| (0..97).filter(|&k| s.contains(k)).collect::<Vec<u64>>();
        assert_eq!(keys(&forward), keys(&backward));
        assert_eq!(forward.len(), SEEN_MAX);
    }

    #[test]
    fn day_buckets_window_and_late_fraud() {
        let mut b = DayBuckets::default();
        b.add_tx(10);
        b.add_tx(10);
        b.add_tx(12);
        b.add_fraud(10, 1);
        assert_eq!(b.window(12, 1), (1, 0));
        assert_eq!(b.window(12, 7), (3, 1));
        // A day recycled 32 days later starts empty; a label for a forgotten day is ignored.
        b.add_tx(10 + TERMINAL_DAYS as i32);
        b.add_fraud(10, 1);
        assert_eq!(b.window(10 + TERMINAL_DAYS as i32, 1), (1, 0));
    }
}
