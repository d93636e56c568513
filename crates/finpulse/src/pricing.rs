//! `finpulse pricing compute`: offers and price tiers by LTV tier and churn-risk band, under a
//! policy with guardrails, stored in the data directory where the API serves them.

use crate::Format;
use crate::config::Config;
use anyhow::{Context, Result, bail};
use clap::Args;
use finpulse_models::pricing::{OFFERS_FILE, Offer, OfferSet, PricingInput, PricingPolicy, assign};
use finpulse_models::registry::ModelRegistry;
use std::collections::BTreeMap;
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

/// Users of one (LTV tier, risk band) cell and the offer they all get.
struct Segment<'a> {
    users: usize,
    clv_total: f64,
    offer: &'a Offer,
}

/// Computes and stores the offers.
pub fn compute(config: &mut Config, args: &ComputeArgs, runtime: &tokio::runtime::Runtime) -> Result<()> {
    let policy = read_policy(args.policy.as_deref())?;
    let Some(end) = crate::ltv::calibration_end(&args.source) else {
        bail!("pricing needs the store: give --calibration-end DATE and --purchase-event TYPE");
    };
    let end = end.to_string();
    let period_units = args.period_units.unwrap_or_else(|| crate::ltv::units_per_month(&args.source));
    if !(period_units > 0.0 && args.discount_rate >= 0.0) {
        bail!("--period-units must be positive and --discount-rate not negative");
    }
    let clv = crate::ltv::clv_by_user(config, &args.source, args.periods, period_units, args.discount_rate, runtime)?;
    let as_of = args.as_of.clone().unwrap_or_else(|| end.clone());
    let as_of_us = finpulse_core::time::parse_date_us(&as_of).with_context(|| format!("--as-of '{as_of}' is not a YYYY-MM-DD date"))?;
    let registry = ModelRegistry::in_data_dir(&config.data_dir)?;
    let (version, model, spec) = crate::churn::model_and_spec(&registry, None).context("pricing uses the active churn model")?;
    let view = finpulse_log::EventStore::read_view(&config.data_dir)
        .with_context(|| format!("reading data directory {}", config.data_dir.display()))?;
    let risk = match runtime.block_on(finpulse_churn::score(&view, &model, &spec, as_of_us)) {
        Ok(list) => list.rows,
        Err(finpulse_churn::ChurnError::NoUsers { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let mut users: BTreeMap<String, PricingInput> =
        clv.into_iter().map(|(id, clv)| (id.clone(), PricingInput { user_id: id, clv, churn_probability: None })).collect();
    for row in risk {
        users
            .entry(row.user_id.clone())
            .or_insert(PricingInput { user_id: row.user_id, clv: 0.0, churn_probability: None })
            .churn_probability = Some(row.probability);
    }
    let inputs: Vec<PricingInput> = users.into_values().collect();
    let offers = assign(&policy, &inputs)?;
    let computed_unix_secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let set = OfferSet { computed_unix_secs, as_of, calibration_end: end, churn_model_version: version, policy: policy.clone(), offers };
    let path = config.data_dir.join(OFFERS_FILE);
    let dir = path.parent().context("the offers file has a folder")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    finpulse_core::durable::write_file(&path, &serde_json::to_vec(&set)?).with_context(|| format!("writing {}", path.display()))?;
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
    // One line per segment (every offer in a segment is the same: one cell of the matrix).
    let mut segments: BTreeMap<(String, String), Segment> = BTreeMap::new();
    for o in &set.offers {
        let s = segments.entry((o.ltv_tier.clone(), o.risk_band.clone())).or_insert(Segment { users: 0, clv_total: 0.0, offer: o });
        s.users += 1;
        s.clv_total += o.clv;
    }
    match args.format {
        Format::Json => {
            let rows: Vec<serde_json::Value> = segments
                .iter()
                .map(|((t, b), s)| {
                    serde_json::json!({
                        "ltv_tier": t, "risk_band": b, "users": s.users, "discount_pct": s.offer.discount_pct,
                        "price_fen": s.offer.price_fen, "mean_clv": s.clv_total / s.users as f64, "bound_by": s.offer.bound_by,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({"offers": set.offers.len(), "file": path, "segments": rows}))?);
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
            for ((t, b), s) in &segments {
                println!(
                    "{t:<6} {b:<8} {:>8} {:>9.1}% {:>11.2} {:>12.2}  {}",
                    s.users,
                    s.offer.discount_pct,
                    s.offer.price_fen as f64 / 100.0,
                    s.clv_total / s.users as f64 / 100.0,
                    s.offer.bound_by.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}
