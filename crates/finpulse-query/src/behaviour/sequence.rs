//! `sequence_match` and `sequence_count`: does a user's history contain a pattern of steps, and
//! how many times without overlap — with ClickHouse's `sequenceMatch` / `sequenceCount`
//! semantics.
//!
//! Pattern language: `(?N)` a row meeting condition N; `.` any one row; `.*` any rows;
//! `(?t op S)` with op one of `<=`, `<`, `>=`, `>`, `==`: time since the previous step, in the
//! timestamp's units (seconds for timestamps). Only rows meeting at least one condition take
//! part, in time order; rows tied in time are taken in their order key: the events' log
//! positions (`_seq`, the order finpulse accepted them in, which is ClickHouse's insertion
//! order; ClickHouse keeps it for users with up to 20 such rows, beyond which its unstable sort
//! leaves ties in no set order), or their arrival order where the query gives none. A pattern
//! without time conditions is matched by a small automaton; one with them by backtracking,
//! bounded by [`SEQUENCE_STEPS_MAX`] steps as ClickHouse bounds it.

use super::rows::{Rows, order_ties};
use super::{BehaviourError, MAX_CONDITIONS};

/// A row taking part in a match: time, conditions met, and its row among the group's rows.
pub type Step = (i64, u32, u32);

/// Backtracking steps allowed per match attempt before the pattern is reported too costly.
pub const SEQUENCE_STEPS_MAX: usize = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TimeOp {
    Le,
    Lt,
    Ge,
    Gt,
    Eq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Action {
    /// A row meeting this condition (0-based).
    Event(u32),
    /// Any one row.
    Any,
    /// Any number of rows.
    Star,
    /// Time since the previous step.
    Time(TimeOp, i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Transition {
    None,
    Any,
    Event(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct State {
    star: bool,
    transition: Transition,
}

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    actions: Vec<Action>,
    states: Vec<State>,
    has_time: bool,
    /// Conditions the pattern names: a user who never met one cannot match.
    needed: u32,
}

impl Pattern {
    /// Parses `text` for a function over `conditions` conditions; `time_unit` converts the
    /// seconds written in `(?t…)` into the timestamp's units.
    pub fn parse(text: &str, conditions: usize, time_unit: i64) -> Result<Self, BehaviourError> {
        let bytes = text.as_bytes();
        let mut actions = vec![Action::Star];
        let mut states = vec![State { star: true, transition: Transition::None }];
        let mut has_time = false;
        let mut needed = 0u32;
        let mut pos = 0;
        let error = |pos: usize, what: &str| BehaviourError::Argument(format!("pattern: {what} at position {pos} of '{text}'"));
        let number = |pos: &mut usize| -> Option<u64> {
            let start = *pos;
            while *pos < bytes.len() && bytes[*pos].is_ascii_digit() {
                *pos += 1;
            }
            text[start..*pos].parse().ok()
        };
        while pos < bytes.len() {
            let rest = &bytes[pos..];
            if rest.starts_with(b"(?") {
                let open = pos;
                pos += 2;
                if bytes.get(pos) == Some(&b't') {
                    pos += 1;
                    let op = [("<=", TimeOp::Le), ("<", TimeOp::Lt), (">=", TimeOp::Ge), (">", TimeOp::Gt), ("==", TimeOp::Eq)]
                        .into_iter()
                        .find(|(s, _)| bytes[pos..].starts_with(s.as_bytes()));
                    let Some((symbol, op)) = op else {
                        return Err(error(pos, "unknown time comparison (expected <=, <, >=, > or ==)"));
                    };
                    pos += symbol.len();
                    let at = pos;
                    let seconds = number(&mut pos).ok_or_else(|| error(at, "expected a number of seconds"))?;
                    if !matches!(actions.last(), Some(Action::Event(_) | Action::Any | Action::Star)) {
                        return Err(error(open, "a time condition must follow a step"));
                    }
                    let units =
                        i64::try_from(seconds).ok().and_then(|s| s.checked_mul(time_unit)).ok_or_else(|| error(at, "time is too large"))?;
                    actions.push(Action::Time(op, units));
                    has_time = true;
                } else {
                    let at = pos;
                    let n = number(&mut pos).ok_or_else(|| error(at, "expected a condition number"))?;
                    if n == 0 || n > conditions as u64 {
                        return Err(error(at, &format!("condition {n} does not exist (there are {conditions}, numbered from 1)")));
                    }
                    let event = (n - 1) as u32;
                    actions.push(Action::Event(event));
                    states.last_mut().expect("a start state").transition = Transition::Event(event);
                    states.push(State { star: false, transition: Transition::None });
                    needed |= 1 << event;
                }
                if bytes.get(pos) != Some(&b')') {
                    return Err(error(pos, "expected ')'"));
                }
                pos += 1;
            } else if rest.starts_with(b".*") {
                pos += 2;
                actions.push(Action::Star);
                states.last_mut().expect("a start state").star = true;
            } else if rest.starts_with(b".") {
                pos += 1;
                actions.push(Action::Any);
                states.last_mut().expect("a start state").transition = Transition::Any;
                states.push(State { star: false, transition: Transition::None });
            } else {
                return Err(error(pos, "unexpected character (expected '(?N)', '(?t…)', '.' or '.*')"));
            }
        }
        debug_assert!(conditions <= MAX_CONDITIONS);
        Ok(Self { actions, states, has_time, needed })
    }

    /// Keeps the rows that meet a condition, in time order, ties in their order key's order.
    fn events<'s>(rows: Rows<'_>, scratch: &'s mut Vec<Step>) -> &'s [Step] {
        scratch.clear();
        scratch.extend(rows.ts.iter().zip(rows.masks).enumerate().filter(|(_, (_, m))| **m != 0).map(|(r, (&t, &m))| (t, m, r as u32)));
        if !scratch.is_sorted_by_key(|e| e.0) {
            scratch.sort_by_key(|e| e.0);
        }
        order_ties(scratch, rows.order, |e| e.0, |e| e.2);
        scratch
    }

    fn could_match(&self, rows: Rows<'_>) -> bool {
        let met = rows.masks.iter().fold(0u32, |a, &m| a | m);
        met & self.needed == self.needed
    }

    /// Whether the user's rows match.
    pub fn matches(&self, rows: Rows<'_>, scratch: &mut Vec<Step>) -> Result<bool, BehaviourError> {
        if !self.could_match(rows) {
            return Ok(false);
        }
        let events = Self::events(rows, scratch);
        if self.has_time {
            let mut at = 0;
            self.backtrack(events, &mut at)
        } else {
            Ok(self.automaton(events))
        }
    }

    /// How many times the pattern matches, each match starting after the previous one ended.
    pub fn count(&self, rows: Rows<'_>, scratch: &mut Vec<Step>) -> Result<u64, BehaviourError> {
        if !self.could_match(rows) {
            return Ok(0);
        }
        let events = Self::events(rows, scratch);
        let mut at = 0;
        let mut count = 0;
        while at < events.len() && self.backtrack(events, &mut at)? {
            count += 1;
        }
        Ok(count)
    }

    /// Runs the states of the pattern side by side over the rows.
    fn automaton(&self, events: &[Step]) -> bool {
        let n = self.states.len();
        let mut active = vec![false; n];
        let mut next = vec![false; n];
        active[0] = true;
        let mut live = 1;
        for &(_, mask, _) in events {
            if live == 0 || active[n - 1] {
                break;
            }
            live = 0;
            next.fill(false);
            for (s, state) in self.states.iter().enumerate() {
                if !active[s] {
                    continue;
                }
                let advance = match state.transition {
                    Transition::None => false,
                    Transition::Any => true,
                    Transition::Event(e) => mask & (1 << e) != 0,
                };
                if advance {
                    next[s + 1] = true;
                    live += 1;
                }
                if state.star {
                    next[s] = true;
                    live += 1;
                }
            }
            std::mem::swap(&mut active, &mut next);
        }
        active[n - 1]
    }

    /// One match attempt from `*at`, leaving `*at` after the rows it used (or one further when
    /// it used none).
    fn backtrack(&self, events: &[Step], at: &mut usize) -> Result<bool, BehaviourError> {
        let end = events.len();
        let begin = *at;
        let mut ev = begin;
        let mut base = begin;
        let mut a = 0;
        // (action, row, base) to resume from.
        let mut stack: Vec<(usize, usize, usize)> = Vec::new();
        let backtrack = |stack: &mut Vec<(usize, usize, usize)>, a: &mut usize, ev: &mut usize, base: &mut usize| -> bool {
            while let Some((ta, tev, tbase)) = stack.pop() {
                *a = ta;
                *ev = tev + 1;
                *base = tbase;
                if *ev != end {
                    return true;
                }
            }
            false
        };
        let mut steps = 0usize;
        while a < self.actions.len() && ev < end {
            match self.actions[a] {
                Action::Event(e) => {
                    if events[ev].1 & (1 << e) != 0 {
                        base = ev;
                        a += 1;
                        ev += 1;
                    } else if !backtrack(&mut stack, &mut a, &mut ev, &mut base) {
                        break;
                    }
                }
                Action::Any => {
                    base = ev;
                    a += 1;
                    ev += 1;
                }
                Action::Star => {
                    stack.push((a, ev, base));
                    base = ev;
                    a += 1;
                }
                Action::Time(op, d) => {
                    let (t, limit) = (events[ev].0, events[base].0.saturating_add(d));
                    let holds = match op {
                        TimeOp::Le => t <= limit,
                        TimeOp::Lt => t < limit,
                        TimeOp::Ge => t >= limit,
                        TimeOp::Gt => t > limit,
                        TimeOp::Eq => t == limit,
                    };
                    if holds {
                        stack.push((a, ev, base));
                        base = ev;
                        a += 1;
                    } else if matches!(op, TimeOp::Le | TimeOp::Lt) {
                        // Later rows are later still: only backtracking can help.
                        if !backtrack(&mut stack, &mut a, &mut ev, &mut base) {
                            break;
                        }
                    } else {
                        // Not long enough yet: try a later row.
                        ev += 1;
                        if ev == end && !backtrack(&mut stack, &mut a, &mut ev, &mut base) {
                            break;
                        }
                    }
                }
            }
            steps += 1;
            if steps > SEQUENCE_STEPS_MAX {
                return Err(BehaviourError::TooCostly(SEQUENCE_STEPS_MAX));
            }
        }
        // Rows ran out: what is left may still match nothing.
        while a < self.actions.len()
            && matches!(self.actions[a], Action::Star | Action::Time(TimeOp::Le | TimeOp::Lt, _) | Action::Time(TimeOp::Ge, 0))
        {
            a += 1;
        }
        if ev == begin {
            ev += 1;
        }
        *at = ev;
        Ok(a == self.actions.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pattern: &str, ts: &[i64], masks: &[u32]) -> (bool, u64) {
        let order: Vec<u64> = (0..ts.len() as u64).collect();
        run_ordered(pattern, ts, masks, &order)
    }

    fn run_ordered(pattern: &str, ts: &[i64], masks: &[u32], order: &[u64]) -> (bool, u64) {
        let p = Pattern::parse(pattern, 3, 1).unwrap();
        let rows = Rows { ts, masks, order };
        (p.matches(rows, &mut Vec::new()).unwrap(), p.count(rows, &mut Vec::new()).unwrap())
    }

    #[test]
    fn steps_in_order_match_and_are_counted_without_overlap() {
        assert_eq!(run("(?1)(?2)", &[1, 2, 3, 4], &[1, 2, 1, 2]), (true, 2));
        assert_eq!(run("(?1).*(?2)", &[1, 2, 3, 4], &[1, 4, 4, 2]), (true, 1));
        assert_eq!(run("(?1)(?2)", &[1, 2, 3], &[1, 4, 2]), (false, 0));
    }

    #[test]
    fn rows_meeting_no_condition_take_no_part() {
        assert_eq!(run("(?1)(?2)", &[1, 2, 3], &[1, 0, 2]), (true, 1));
    }

    #[test]
    fn time_conditions_bound_the_gap_to_the_previous_step() {
        assert_eq!(run("(?1)(?t<=5)(?2)", &[0, 5], &[1, 2]), (true, 1));
        assert_eq!(run("(?1)(?t<=5)(?2)", &[0, 6], &[1, 2]), (false, 0));
        assert_eq!(run("(?1)(?t>5)(?2)", &[0, 3, 9], &[1, 2, 2]), (true, 1));
    }

    #[test]
    fn rows_tied_in_time_are_taken_in_their_order_key_not_their_arrival() {
        // Arrived as step 2 then step 1, all at t=5; logged as step 1 then step 2.
        assert_eq!(run_ordered("(?1)(?2)", &[5, 5], &[2, 1], &[8, 7]), (true, 1));
        assert_eq!(run_ordered("(?1)(?2)", &[5, 5], &[2, 1], &[7, 8]), (false, 0));
        // The order key only breaks ties: time comes first.
        assert_eq!(run_ordered("(?1)(?2)", &[4, 5], &[2, 1], &[8, 7]), (false, 0));
    }

    #[test]
    fn a_condition_never_met_means_no_match() {
        assert_eq!(run("(?1)(?3)", &[1, 2], &[1, 2]), (false, 0));
    }

    #[test]
    fn malformed_patterns_say_where() {
        let err = |p: &str| Pattern::parse(p, 2, 1).unwrap_err().to_string();
        assert!(err("(?1)x").contains("position 4"), "{}", err("(?1)x"));
        assert!(err("(?3)").contains("condition 3 does not exist"));
        assert!(err("(?0)").contains("condition 0"));
        assert!(err("(?1").contains("expected ')'"));
        assert!(err("(?t~5)").contains("unknown time comparison"));
        assert!(err("(?1)(?t<5)(?t<3)").contains("must follow a step"));
    }
}
