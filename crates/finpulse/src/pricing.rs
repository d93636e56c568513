//! `finpulse pricing compute`: offers and price tiers by LTV tier and churn-risk band, under a
//! policy with guardrails, stored in the data directory where the API serves them.

use crate::Format;
use crate::config::Config;
use anyhow::{Context, Result};
use clap::Args;
use finpulse_models::pricing::PricingPolicy;
use finpulse_value::{ClvSettings, PricingRequest};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `finpulse pricing compute`.
#[derive(Args, Debug)]
pub struct ComputeArgs {
    #[command(flatten)]
    source: crate::ltv::Source,
    /// The policy (TOML: product, list_price_fen, unit_cost_fen, margin_floor_pct,
    /// discount_cap_pct, quantiles, risk thresholds, [discounts_pct]); fields left out keep the
    /// defaults, which price the value-added membership.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The churn-risk date (YYYY-MM-DD); defaults to the calibration end.
    #[arg(long)]
    as_of: Option<String>,
    /// CLV: periods to sum.
    #[arg(long, default_value_t = 12)]
    periods: u32,
    /// CLV: time units per period (default: a month, 30 days or 4.345 weeks).
    #[arg(long)]
    period_units: Option<f64>,
    /// CLV: discount rate per period.
    #[arg(long, default_value_t = 0.01)]
    discount_rate: f64,
    /// Also write every offer as CSV.
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

fn read_policy(path: Option<&Path>) -> Result<PricingPolicy> {
    let Some(path) = path else { return Ok(PricingPolicy::default()) };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    // Fields a file leaves out keep their defaults; unknown fields are errors.
    let mut merged = toml::Table::try_from(PricingPolicy::default()).context("the default policy as TOML")?;
    let given: toml::Table = toml::from_str(&text).with_context(|| format!("{}: not a pricing policy", path.display()))?;
    for (k, v) in given {
        merged.insert(k, v);
    }
    let policy: PricingPolicy = merged.try_into().with_context(|| format!("{}: not a pricing policy", path.display()))?;
    policy.check().with_context(|| path.display().to_string())?;
    Ok(policy)
}

/// Computes and stores the offers.
pub fn compute(config: &Config, args: &ComputeArgs, runtime: &tokio::runtime::Runtime) -> Result<()> {
    let policy = read_policy(args.policy.as_deref())?;
    let source = crate::ltv::purchase_source(&args.source).context("pricing needs the store")?;
    let as_of_us = match &args.as_of {
        Some(text) => Some(finpulse_core::time::parse_date_us(text).with_context(|| format!("--as-of '{text}' is not a YYYY-MM-DD date"))?),
        None => None,
    };
    let clv = ClvSettings {
        periods: args.periods,
        period_units: args.period_units.unwrap_or_else(|| source.unit.per_month()),
        discount_rate: args.discount_rate,
    };
    let view = finpulse_log::EventStore::read_view(&config.data_dir)
        .with_context(|| format!("reading data directory {}", config.data_dir.display()))?;
    let request = PricingRequest { source, as_of_us, clv, policy: policy.clone() };
    let set = runtime.block_on(finpulse_value::compute_offers(&config.data_dir, &view, &request))?;
    let path = finpulse_value::offers_path(&config.data_dir);
    if let Some(out) = &args.out {
        let mut w = std::io::BufWriter::new(std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?);
        writeln!(w, "user_id,clv,churn_probability,ltv_tier,risk_band,price_tier,discount_pct,price_fen,bound_by")?;
        for o in &set.offers {
            let p = o.churn_probability.map(|p| format!("{p:.6}")).unwrap_or_default();
            writeln!(
                w,
                "{},{:.2},{p},{},{},{},{:.2},{},{}",
                o.user_id,
                o.clv,
                o.ltv_tier,
                o.risk_band,
                o.price_tier,
                o.discount_pct,
                o.price_fen,
                o.bound_by.as_deref().unwrap_or("")
            )?;
        }
        w.flush()?;
    }
    // One line per cell of the matrix (every offer in a cell is the same).
    let segments = finpulse_value::segments(&set);
    match args.format {
        Format::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({"offers": set.offers.len(), "file": path, "segments": segments}))?
            );
        }
        Format::Table | Format::Csv => {
            println!(
                "{} offers on {} (list {:.2} yuan) as of {} with churn model v{}; stored in {}",
                set.offers.len(),
                policy.product,
                policy.list_price_fen as f64 / 100.0,
                set.as_of,
                set.churn_model_version,
                path.display()
            );
            println!("{:<6} {:<8} {:>8} {:>10} {:>11} {:>12}  guardrail", "LTV", "risk", "users", "discount", "price", "mean CLV");
            for s in &segments {
                println!(
                    "{:<6} {:<8} {:>8} {:>9.1}% {:>11.2} {:>12.2}  {}",
                    s.ltv_tier,
                    s.risk_band,
                    s.users,
                    s.discount_pct,
                    s.price_fen as f64 / 100.0,
                    s.mean_clv / 100.0,
                    s.bound_by.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}
