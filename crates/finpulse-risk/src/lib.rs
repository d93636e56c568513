//! Risk decisions: every payment, transfer and withdrawal gets allow, review or block, from the
//! user's baseline, the terminal's recent risk, analysts' rules and a model.

pub mod backtest;
pub mod cases;
pub mod engine;
pub mod fraud;
pub mod live;
pub mod rules;
pub mod ruleset;
