//! `finpulse ltv`: fit LTV models and write per-customer predictions, from a summary CSV or
//! from the store's own purchase events.

use crate::Format;
use crate::config::Config;
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use finpulse_core::time::MICROS_PER_DAY;
use finpulse_growth::{InsightKind, InsightOptions};
use finpulse_models::summary::read_summary;
use finpulse_models::{Customer, LtvFit, LtvModel, clv, expected_spend, fit, predict};
use std::io::Write;
use std::path::PathBuf;

/// Where the customer summaries come from.
#[derive(Args, Debug)]
pub struct Source {
    /// A summary CSV: frequency, recency, T (and monetary_value), or x, t_x, T (and zbar).
    #[arg(long, conflicts_with_all = ["calibration_end", "purchase_event"])]
    input: Option<PathBuf>,
    /// From the store: purchases before this date (YYYY-MM-DD, UTC) are the calibration period.
    #[arg(long, requires = "purchase_event")]
    calibration_end: Option<String>,
    /// From the store: the event type that counts as a purchase (e.g. wealth_purchase, revenue).
    #[arg(long, requires = "calibration_end")]
    purchase_event: Option<String>,
    /// The time unit of frequency, recency and T.
    #[arg(long, value_enum, default_value = "week")]
    unit: Unit,
}

/// A time unit.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Unit {
    Day,
    Week,
}

impl From<Unit> for finpulse_value::TimeUnit {
    fn from(u: Unit) -> Self {
        match u {
            Unit::Day => Self::Day,
            Unit::Week => Self::Week,
        }
    }
}

/// The models the CLI fits.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModelArg {
    Bgnbd,
    Mbgnbd,
    Pnbd,
    Bgbb,
    Gg,
}

impl From<ModelArg> for LtvModel {
    fn from(m: ModelArg) -> Self {
        match m {
            ModelArg::Bgnbd => Self::Bgnbd,
            ModelArg::Mbgnbd => Self::Mbgnbd,
            ModelArg::Pnbd => Self::Pnbd,
            ModelArg::Bgbb => Self::Bgbb,
            ModelArg::Gg => Self::Gg,
        }
    }
}

fn customers(config: &Config, source: &Source, runtime: &tokio::runtime::Runtime) -> Result<Vec<Customer>> {
    if let Some(path) = &source.input {
        let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        return read_summary(file).with_context(|| format!("reading {}", path.display()));
    }
    let view = finpulse_log::EventStore::read_view(&config.data_dir)
        .with_context(|| format!("reading data directory {}", config.data_dir.display()))?;
    Ok(runtime.block_on(finpulse_value::customers_from_store(&view, &purchase_source(source)?))?)
}

/// The store's purchases the flags name (`--calibration-end` and `--purchase-event`).
pub(crate) fn purchase_source(source: &Source) -> Result<finpulse_value::PurchaseSource> {
    let (Some(end), Some(event)) = (&source.calibration_end, &source.purchase_event) else {
        bail!("give --input FILE.csv, or --calibration-end DATE and --purchase-event TYPE to summarise the store's events");
    };
    let calibration_end_us =
        finpulse_core::time::parse_date_us(end).with_context(|| format!("--calibration-end '{end}' is not a YYYY-MM-DD date"))?;
    Ok(finpulse_value::PurchaseSource { purchase_event: event.clone(), calibration_end_us, unit: source.unit.into() })
}

/// A fit as `ltv fit --format json` prints it: the fit and the seconds it took (reading the
/// input not included).
#[derive(serde::Serialize)]
struct FitReport<'a> {
    #[serde(flatten)]
    fit: &'a LtvFit,
    fit_secs: f64,
}

/// `finpulse ltv fit`.
pub fn fit_command(config: &Config, model: ModelArg, source: &Source, format: Format, runtime: &tokio::runtime::Runtime) -> Result<()> {
    let customers = customers(config, source, runtime)?;
    let started = std::time::Instant::now();
    let f = fit(model.into(), &customers)?;
    let secs = started.elapsed().as_secs_f64();
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&FitReport { fit: &f, fit_secs: secs })?),
        Format::Csv => {
            println!("parameter,value,std_error");
            for p in &f.params {
                println!("{},{},{}", p.name, p.value, p.std_error.map(|e| e.to_string()).unwrap_or_default());
            }
            println!("log_likelihood,{},", f.log_likelihood);
        }
        Format::Table => {
            println!("{} fitted on {} customers in {secs:.3} s ({} likelihood evaluations)", f.model.name(), f.customers, f.evaluations);
            if f.left_out > 0 {
                println!("{} customers without a repeat purchase left out: Gamma-Gamma models the spend of repeat purchases", f.left_out);
            }
            println!("{:<10} {:>14} {:>14}", "parameter", "estimate", "std. error");
            for p in &f.params {
                println!("{:<10} {:>14.4} {:>14}", p.name, p.value, p.std_error.map(|e| format!("{e:.4}")).unwrap_or_else(|| "n/a".into()));
            }
            println!("log-likelihood {:.2}", f.log_likelihood);
        }
    }
    for w in &f.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}

/// Prediction settings.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// The purchase model.
    #[arg(long, value_enum, default_value = "bgnbd")]
    model: ModelArg,
    /// Expected purchases over this many time units.
    #[arg(long, default_value_t = 52.0)]
    horizon: f64,
    /// CLV: periods to sum.
    #[arg(long, default_value_t = 12)]
    periods: u32,
    /// CLV: time units per period (e.g. 4.345 weeks a month).
    #[arg(long, default_value_t = 4.345)]
    period_units: f64,
    /// CLV: discount rate per period.
    #[arg(long, default_value_t = 0.01)]
    discount_rate: f64,
    /// Where to write one row per customer.
    #[arg(long)]
    out: PathBuf,
    /// Also LTV per new user, CAC, LTV:CAC and payback by signup channel or month, over the CLV
    /// horizon, from the acquisition insight's model; needs the store as the source.
    #[arg(long, value_enum)]
    by: Option<GroupBy>,
}

/// How to group customers for LTV:CAC.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GroupBy {
    /// The channel of the user's signup.
    Channel,
    /// The month of the user's signup.
    Cohort,
}

/// `finpulse ltv predict`: fits the purchase model (and Gamma-Gamma when values are known), then
/// writes id, frequency, recency, T, p_alive, expected purchases, expected spend and CLV.
pub fn predict_command(config: &Config, source: &Source, args: &PredictArgs, runtime: &tokio::runtime::Runtime) -> Result<()> {
    if matches!(args.model, ModelArg::Gg) {
        bail!(
            "--model: predictions need a purchase model (bgnbd, mbgnbd, pnbd or bgbb); Gamma-Gamma is fitted alongside when spend is known"
        );
    }
    if args.horizon <= 0.0 || args.period_units <= 0.0 {
        bail!("--horizon and --period-units must be positive");
    }
    if args.by.is_some() && source.input.is_some() {
        bail!("--by needs the store's signups and spend: use --calibration-end and --purchase-event instead of --input");
    }
    let customers = customers(config, source, runtime)?;
    let purchases: LtvFit = fit(args.model.into(), &customers)?;
    let spend =
        if customers.iter().any(|c| c.frequency > 0.0 && c.monetary.is_some()) { Some(fit(LtvModel::Gg, &customers)?) } else { None };
    let mut out = std::io::BufWriter::new(std::fs::File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?);
    writeln!(out, "id,frequency,recency,T,p_alive,expected_purchases,expected_spend,clv")?;
    let cell = |v: Option<f64>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
    for c in &customers {
        let p = predict(&purchases, c, args.horizon);
        let avg = spend.as_ref().and_then(|g| expected_spend(g, c));
        let value = spend.as_ref().and_then(|g| clv(&purchases, g, c, args.periods, args.period_units, args.discount_rate));
        writeln!(
            out,
            "{},{},{},{},{},{},{},{}",
            c.id,
            c.frequency,
            c.recency,
            c.age,
            cell(p.as_ref().map(|p| p.p_alive)),
            cell(p.as_ref().map(|p| p.expected_purchases)),
            cell(avg),
            cell(value)
        )?;
    }
    out.flush()?;
    for w in purchases.warnings.iter().chain(spend.iter().flat_map(|g| g.warnings.iter())) {
        eprintln!("warning: {w}");
    }
    let params = |f: &LtvFit| f.params.iter().map(|p| format!("{} {:.4}", p.name, p.value)).collect::<Vec<_>>().join(", ");
    println!(
        "{}: {} ({} customers, log-likelihood {:.2})",
        purchases.model.name(),
        params(&purchases),
        purchases.customers,
        purchases.log_likelihood
    );
    if let Some(g) = &spend {
        println!("gg: {} ({} customers with repeat purchases)", params(g), g.customers);
    }
    println!("wrote {} predictions to {}", customers.len(), args.out.display());
    if let (Some(by), Some(end)) = (args.by, &source.calibration_end) {
        let unit_us = finpulse_value::TimeUnit::from(source.unit).micros();
        let horizon_days = (f64::from(args.periods) * args.period_units * unit_us as f64 / MICROS_PER_DAY as f64).round() as i64;
        acquisition_value(config, end, by, horizon_days, source.purchase_event.as_deref(), runtime)?;
    }
    Ok(())
}

/// LTV:CAC by signup channel or month for `ltv predict --by`: answered by the acquisition
/// insight's model (realised revenue since signup, then BG/NBD and Gamma-Gamma fitted on every
/// user; see ARCHITECTURE.md), so the CLI and the insight give one answer to one question.
fn acquisition_value(
    config: &Config,
    end: &str,
    by: GroupBy,
    horizon_days: i64,
    purchase_event: Option<&str>,
    runtime: &tokio::runtime::Runtime,
) -> Result<()> {
    let end_us = finpulse_core::time::parse_date_us(end).with_context(|| format!("--calibration-end '{end}' is not a YYYY-MM-DD date"))?;
    let last_day = finpulse_core::time::day_label(finpulse_core::time::day_of_us(end_us) - 1);
    if !(1..=finpulse_growth::value::LTV_HORIZON_DAYS_MAX).contains(&horizon_days) {
        bail!(
            "--by: the CLV horizon (--periods × --period-units) is {horizon_days} days; give 1 to {} days",
            finpulse_growth::value::LTV_HORIZON_DAYS_MAX
        );
    }
    if purchase_event.is_some_and(|e| e != "revenue") {
        eprintln!("note: LTV:CAC by group counts revenue events, whatever --purchase-event the per-customer predictions used");
    }
    let options = InsightOptions {
        to: Some(last_day.clone()),
        period: Some("month".into()),
        ltv_horizon: Some(format!("{horizon_days}d")),
        ..Default::default()
    };
    let insight = options.into_insight(InsightKind::Acquisition)?;
    let view = finpulse_log::EventStore::read_view(&config.data_dir)
        .with_context(|| format!("reading data directory {}", config.data_dir.display()))?;
    let book = finpulse_growth::segments::SegmentBook::load(&config.data_dir)?;
    let table = runtime.block_on(finpulse_growth::run(&view, &book, &insight))?;
    let column =
        |name: &str| table.columns.iter().position(|c| c == name).with_context(|| format!("the acquisition insight has no {name} column"));
    let (period, group, users, spend, cac, ltv, ratio, payback) = (
        column("period")?,
        column("user.channel")?,
        column("new_users")?,
        column("spend_fen")?,
        column("cac_fen")?,
        column("ltv_fen")?,
        column("ltv_to_cac")?,
        column("payback_days_projected")?,
    );
    let yuan = |c: &finpulse_growth::Cell| c.as_float().map_or_else(|| "-".to_string(), |v| format!("{:.2}", v / 100.0));
    let plain = |c: &finpulse_growth::Cell| if c.is_null() { "-".to_string() } else { c.display() };
    println!(
        "LTV over {horizon_days} days after signup by {} to {last_day}: realised revenue, then BG/NBD and Gamma-Gamma (amounts in yuan):",
        if matches!(by, GroupBy::Channel) { "signup channel" } else { "signup month and channel" }
    );
    println!("{:<20} {:>9} {:>12} {:>10} {:>10} {:>9} {:>8}", "group", "acquired", "spend", "CAC", "LTV/user", "LTV:CAC", "payback");
    for row in &table.rows {
        let is_total = row[period].as_text() == Some("total");
        let label = match by {
            GroupBy::Channel if is_total => plain(&row[group]),
            GroupBy::Cohort if !is_total => format!("{} {}", plain(&row[period]).chars().take(7).collect::<String>(), plain(&row[group])),
            _ => continue,
        };
        println!(
            "{:<20} {:>9} {:>12} {:>10} {:>10} {:>9} {:>8}",
            label,
            plain(&row[users]),
            yuan(&row[spend]),
            yuan(&row[cac]),
            yuan(&row[ltv]),
            row[ratio].as_float().map_or_else(|| "-".to_string(), |v| format!("{v:.2}")),
            plain(&row[payback])
        );
    }
    for n in &table.notes {
        eprintln!("note: {n}");
    }
    Ok(())
}
