//! A deterministic simulator of a fintech app: acquisition by channel with marketing spend, a
//! 7-day new-user task system, app use, money movement, wealth products, loans with repayments
//! and overdues, partner-scenario instalments, credit reports, revenue by stream, churn with a
//! visible lead-up, feedback and complaints, and card payments with fraud following the
//! simulator of Le Borgne et al., "Reproducible Machine Learning for Credit Card Fraud
//! Detection – Practical Handbook" (scenarios 1–3, labels arriving late as `fraud_label`).
//!
//! The same [`SimConfig`] always yields the same events, including their ids, so replaying the
//! demo into the same data directory is idempotent.

mod emit;
mod experiment;
mod fraud;
mod pii;
mod world;

pub use experiment::SimExperiment;
pub use world::{CHANNELS, SimConfig, SimStats, Simulator};
