//! finpulse's models: the LTV models (BG/NBD, Pareto/NBD, Gamma-Gamma) with their
//! maximum-likelihood fits, predictions and CLV; and classifiers for any table (gradient-boosted
//! trees, logistic regression) with the measures to judge them.

pub mod float_text;
pub mod gbdt;
pub mod import;
pub mod logistic;
pub mod ltv;
pub mod metrics;
pub mod optimize;
pub mod pricing;
pub mod registry;
pub mod row;
pub mod special;
pub mod summary;
pub mod table;
pub mod tabular;

pub use ltv::{Customer, FitError, LtvFit, LtvModel, Param, Prediction, SummaryError, clv, expected_spend, fit, predict};
