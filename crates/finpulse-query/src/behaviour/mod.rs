//! Behaviour functions: per-user state machines over events, as SQL aggregate functions with
//! ClickHouse's semantics, registered in every finpulse session.
//!
//! - `window_funnel(window, mode, ts, cond1, …)` → UInt8, ClickHouse's `windowFunnel(window, mode…)(ts, cond1, …)`;
//! - `retention(cond1, …)` → List<UInt8>, ClickHouse's `retention`;
//! - `sequence_match(pattern, ts, cond1, …)` → UInt8 and `sequence_count(…)` → UInt64,
//!   ClickHouse's `sequenceMatch(pattern)(ts, cond1, …)` and `sequenceCount`.
//!
//! `ts` may be a timestamp (windows and `(?t…)` in seconds), a date (in days) or an integer (in
//! its own units). Conditions are booleans, at most [`MAX_CONDITIONS`]. A row with a NULL
//! argument is ignored. All four run as groups accumulators: rows of every group are kept flat
//! (16 bytes per row that meets a condition) and bucketed by group once, when results are due.

mod funnel;
mod rows;
mod sequence;
mod udaf;

pub use funnel::{Funnel, FunnelMode};
pub use rows::{Bucketed, RowStore, Rows};
pub use sequence::{Pattern, SEQUENCE_STEPS_MAX};
pub use udaf::register;

/// Most conditions one call takes (as in ClickHouse).
pub const MAX_CONDITIONS: usize = 32;

/// Why a behaviour function cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BehaviourError {
    /// A parameter is wrong; the message names it.
    #[error("{0}")]
    Argument(String),
    /// A pattern needs more backtracking than allowed.
    #[error("the pattern needs more than {0} steps to match against one user's rows; simplify it")]
    TooCostly(usize),
}
