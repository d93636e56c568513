//! finpulse's models. So far: the LTV models (BG/NBD, Pareto/NBD, Gamma-Gamma) with their
//! maximum-likelihood fits, predictions and CLV, over customer summaries read from CSV or built
//! from the event store.

pub mod ltv;
pub mod optimize;
pub mod special;
pub mod summary;

pub use ltv::{Customer, FitError, LtvFit, LtvModel, Param, Prediction, SummaryError, clv, expected_spend, fit, predict};
