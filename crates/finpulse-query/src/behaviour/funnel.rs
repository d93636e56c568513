//! `window_funnel`: the deepest step of an ordered funnel a user reached inside a sliding window,
//! with ClickHouse's `windowFunnel` semantics.
//!
//! A user's rows become *entries* `(ts, step)`: one per condition a row meets (steps count from
//! 1), and under `strict_order` a step-0 entry for a row that meets none. Entries are taken in
//! `(ts, step)` order — so when one row meets several conditions, or rows tie in time, the lower
//! step comes first — and entries tied in both in their rows' order key (the events' log
//! positions, `_seq`, or their arrival where the query gives none). A chain starts at every
//! step-1 entry; step k joins the chain of step k−1 when it is within `window` of that chain's
//! start (and, under `strict_increase`, strictly after the chain's previous step). The answer is
//! the deepest step any chain reached.

use super::rows::{Rows, order_ties};
use super::{BehaviourError, MAX_CONDITIONS};

/// The options of a funnel, as ClickHouse spells them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FunnelMode {
    /// Stop at the first row that meets no condition or jumps ahead of the chain.
    pub strict_order: bool,
    /// Stop when a step already reached happens again.
    pub strict_deduplication: bool,
    /// Only count a step strictly later in time than the previous one.
    pub strict_increase: bool,
    /// One row counts for one step of a chain at most, even if it meets several conditions.
    pub strict_once: bool,
    /// Under `strict_order`, skip a row that jumps ahead instead of stopping.
    pub allow_reentry: bool,
}

impl FunnelMode {
    /// Parses `''` or a comma-separated list of options.
    pub fn parse(text: &str) -> Result<Self, BehaviourError> {
        let mut mode = Self::default();
        for option in text.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            match option {
                "strict_order" => mode.strict_order = true,
                "strict_deduplication" => mode.strict_deduplication = true,
                "strict_increase" => mode.strict_increase = true,
                "strict_once" => mode.strict_once = true,
                "allow_reentry" => mode.allow_reentry = true,
                "strict" => {
                    return Err(BehaviourError::Argument("mode: 'strict' was renamed 'strict_deduplication'".into()));
                }
                other => {
                    return Err(BehaviourError::Argument(format!(
                        "mode: unknown option '{other}' (expected strict_order, strict_deduplication, strict_increase, strict_once, allow_reentry)"
                    )));
                }
            }
        }
        if mode.allow_reentry && !mode.strict_order {
            return Err(BehaviourError::Argument("mode: allow_reentry needs strict_order".into()));
        }
        Ok(mode)
    }
}

/// A funnel: window (in the timestamp's units), options and number of steps.
#[derive(Debug, Clone, Copy)]
pub struct Funnel {
    /// The window, in the units of the timestamps it is applied to.
    pub window: i64,
    /// Options.
    pub mode: FunnelMode,
    /// Number of steps (conditions), 1..=32.
    pub steps: usize,
}

/// One entry: a row's time, the step it meets (0: none), and the row it came from.
type Entry = (i64, u8, u32);

impl Funnel {
    /// A funnel, checking its shape.
    pub fn new(window: i64, mode: FunnelMode, steps: usize) -> Result<Self, BehaviourError> {
        if window < 0 {
            return Err(BehaviourError::Argument(format!("window must not be negative, got {window}")));
        }
        if steps == 0 || steps > MAX_CONDITIONS {
            return Err(BehaviourError::Argument(format!("a funnel takes 1 to {MAX_CONDITIONS} conditions, got {steps}")));
        }
        Ok(Self { window, mode, steps })
    }

    /// Whether rows that meet no condition must be kept (they break a strict order).
    pub fn keeps_empty_rows(&self) -> bool {
        self.mode.strict_order
    }

    /// The level one user reached; `rows` are that user's rows in arrival order.
    pub fn level(&self, rows: Rows<'_>, scratch: &mut Vec<Entry>) -> u8 {
        if rows.is_empty() {
            return 0;
        }
        if !self.mode.strict_order && self.steps == 1 {
            return 1;
        }
        scratch.clear();
        let mut sorted = true;
        let mut previous: (i64, u8) = (i64::MIN, 0);
        for (row, (&ts, &mask)) in rows.ts.iter().zip(rows.masks).enumerate() {
            if mask == 0 {
                let entry = (ts, 0);
                sorted &= previous <= entry;
                previous = entry;
                scratch.push((ts, 0, row as u32));
                continue;
            }
            let mut bits = mask;
            while bits != 0 {
                let step = bits.trailing_zeros() as u8 + 1;
                bits &= bits - 1;
                let entry = (ts, step);
                sorted &= previous <= entry;
                previous = entry;
                scratch.push((ts, step, row as u32));
            }
        }
        if !sorted {
            scratch.sort_unstable();
        }
        order_ties(scratch, rows.order, |e| (e.0, e.1), |e| e.2);
        if self.mode.strict_once {
            self.walk(scratch, &mut AllChains(vec![Vec::new(); self.steps]))
        } else {
            self.walk(scratch, &mut LatestChains([None; MAX_CONDITIONS]))
        }
    }

    fn window_end(&self, start: i64) -> i64 {
        start.saturating_add(self.window)
    }

    /// ClickHouse's walk over the entries: the modes decide here, the chains kept decide how a
    /// step extends them.
    fn walk<C: Chains>(&self, entries: &[Entry], chains: &mut C) -> u8 {
        let steps = self.steps;
        let deepest = |chains: &C| (0..steps).rev().find(|&k| chains.reached(k)).map_or(0, |k| k as u8 + 1);
        let mut started = false;
        for &(ts, step, row) in entries {
            if step == 0 {
                // Only kept under strict_order: a row outside the funnel ends it once it started.
                if started {
                    break;
                }
                continue;
            }
            let k = usize::from(step - 1);
            if k == 0 {
                chains.start(ts, row);
                started = true;
            } else if self.mode.strict_deduplication && chains.reached(k) {
                return deepest(chains);
            } else if self.mode.strict_order && started && !chains.reached(k - 1) {
                if self.mode.allow_reentry {
                    continue;
                }
                return (0..steps).find(|&k| !chains.reached(k)).map_or(steps as u8, |k| k as u8);
            } else if chains.reached(k - 1) && chains.extend(self, k, ts, row) && k + 1 == steps {
                return steps as u8;
            }
        }
        deepest(chains)
    }
}

/// The chains a funnel keeps while walking a user's entries.
trait Chains {
    /// Whether some chain reached step `k` (0-based).
    fn reached(&self, k: usize) -> bool;
    /// A step-1 entry starts a chain.
    fn start(&mut self, ts: i64, row: u32);
    /// A step-`k` entry (k ≥ 1) extends the chains at step k−1 it may; true when one did.
    fn extend(&mut self, funnel: &Funnel, k: usize, ts: i64, row: u32) -> bool;
}

/// Per step only the chain that reached it last: `(chain start, time of the step)`. Enough
/// when a row may count for several steps, since later starts leave more of the window.
struct LatestChains([Option<(i64, i64)>; MAX_CONDITIONS]);

impl Chains for LatestChains {
    fn reached(&self, k: usize) -> bool {
        self.0[k].is_some()
    }

    fn start(&mut self, ts: i64, _row: u32) {
        self.0[0] = Some((ts, ts));
    }

    fn extend(&mut self, funnel: &Funnel, k: usize, ts: i64, _row: u32) -> bool {
        let Some((start, last)) = self.0[k - 1] else { return false };
        let in_time = ts <= funnel.window_end(start) && (!funnel.mode.strict_increase || last < ts);
        if in_time {
            self.0[k] = Some((start, ts));
        }
        in_time
    }
}

#[derive(Clone)]
struct Chain {
    start: i64,
    last: i64,
    /// The row used for each step so far.
    rows: [u32; MAX_CONDITIONS],
}

/// Every chain with the rows it used (strict_once: one row counts for one step of a chain).
struct AllChains(Vec<Vec<Chain>>);

impl Chains for AllChains {
    fn reached(&self, k: usize) -> bool {
        !self.0[k].is_empty()
    }

    fn start(&mut self, ts: i64, row: u32) {
        let mut rows = [u32::MAX; MAX_CONDITIONS];
        rows[0] = row;
        self.0[0].push(Chain { start: ts, last: ts, rows });
    }

    fn extend(&mut self, funnel: &Funnel, k: usize, ts: i64, row: u32) -> bool {
        let (before, after) = self.0.split_at_mut(k);
        let previous = std::mem::take(&mut before[k - 1]);
        let total = previous.len();
        let mut kept = Vec::with_capacity(total);
        let mut joined = false;
        for (i, chain) in previous.into_iter().enumerate() {
            let in_window = ts <= funnel.window_end(chain.start);
            // A chain that fell out of the window is dropped, but one is always kept.
            if !in_window && kept.len() + (total - i) > 1 {
                continue;
            }
            let fresh_row = chain.rows[..k].iter().all(|&r| r != row);
            if in_window && fresh_row && (!funnel.mode.strict_increase || chain.last < ts) {
                let mut rows = chain.rows;
                rows[k] = row;
                after[0].push(Chain { start: chain.start, last: ts, rows });
                joined = true;
            }
            kept.push(chain);
        }
        before[k - 1] = kept;
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(window: i64, mode: &str, steps: usize, ts: &[i64], masks: &[u32]) -> u8 {
        let funnel = Funnel::new(window, FunnelMode::parse(mode).unwrap(), steps).unwrap();
        funnel.level(Rows { ts, masks, order: &vec![0; ts.len()] }, &mut Vec::new())
    }

    #[test]
    fn a_complete_chain_inside_the_window_reaches_the_last_step() {
        assert_eq!(level(10, "", 3, &[1, 2, 3], &[0b001, 0b010, 0b100]), 3);
    }

    #[test]
    fn a_step_outside_the_window_of_its_chain_start_does_not_count() {
        assert_eq!(level(5, "", 3, &[1, 2, 7], &[0b001, 0b010, 0b100]), 2);
        // A later start opens a new chain that fits.
        assert_eq!(level(5, "", 3, &[1, 4, 5, 7], &[0b001, 0b001, 0b010, 0b100]), 3);
    }

    #[test]
    fn rows_arriving_out_of_order_are_taken_in_time_order() {
        assert_eq!(level(10, "", 3, &[3, 1, 2], &[0b100, 0b001, 0b010]), 3);
    }

    #[test]
    fn strict_order_stops_at_an_unrelated_row_and_at_a_jump_ahead() {
        assert_eq!(level(10, "strict_order", 3, &[1, 2, 3, 4], &[0b001, 0b010, 0, 0b100]), 2);
        assert_eq!(level(10, "strict_order", 3, &[1, 2, 3], &[0b001, 0b100, 0b010]), 1);
        assert_eq!(level(10, "strict_order,allow_reentry", 3, &[1, 2, 3, 4], &[0b001, 0b100, 0b010, 0b100]), 3);
    }

    #[test]
    fn strict_deduplication_stops_when_a_step_repeats() {
        assert_eq!(level(10, "strict_deduplication", 3, &[1, 2, 3, 4], &[0b001, 0b010, 0b010, 0b100]), 2);
    }

    #[test]
    fn strict_increase_ignores_a_step_at_the_same_time_as_the_previous_one() {
        assert_eq!(level(10, "", 2, &[1, 1], &[0b01, 0b10]), 2);
        assert_eq!(level(10, "strict_increase", 2, &[1, 1], &[0b01, 0b10]), 1);
    }

    #[test]
    fn strict_once_does_not_let_one_row_meet_two_steps() {
        assert_eq!(level(10, "", 2, &[1], &[0b11]), 2);
        assert_eq!(level(10, "strict_once", 2, &[1], &[0b11]), 1);
        assert_eq!(level(10, "strict_once", 2, &[1, 2], &[0b11, 0b10]), 2);
    }

    #[test]
    fn bad_modes_and_shapes_are_named() {
        assert!(FunnelMode::parse("strict").unwrap_err().to_string().contains("strict_deduplication"));
        assert!(FunnelMode::parse("fast").unwrap_err().to_string().contains("'fast'"));
        assert!(FunnelMode::parse("allow_reentry").unwrap_err().to_string().contains("strict_order"));
        assert!(Funnel::new(-1, FunnelMode::default(), 2).is_err());
        assert!(Funnel::new(1, FunnelMode::default(), 33).unwrap_err().to_string().contains("33"));
    }
}
