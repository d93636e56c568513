//! `finpulse ltv`: fit LTV models and write per-customer predictions, from a summary CSV or
//! from the store's own purchase events.

use crate::Format;
use crate::config::Config;
use anyhow::{Context, Result, bail};
use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use clap::{Args, ValueEnum};
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
    /// Also aggregate CLV by acquisition channel or signup month, against acquisition spend
    /// (CAC and LTV:CAC); needs the store as the source.
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
    if let (Some(by), Some(gg), Some(end)) = (args.by, &spend, &source.calibration_end) {
        let end_us =
            finpulse_core::time::parse_date_us(end).with_context(|| format!("--calibration-end '{end}' is not a YYYY-MM-DD date"))?;
        let (group_of, acquired, spend_by) = acquisition(config, end_us, by, runtime)?;
        let values: Vec<(&str, f64)> = customers
            .iter()
            .filter_map(|c| {
                Some((
                    group_of.get(&c.id)?.as_str(),
                    clv(&purchases, gg, c, args.periods, args.period_units, args.discount_rate).unwrap_or(0.0),
                ))
            })
            .collect();
        let groups = finpulse_models::roi::by_group(values, &acquired, &spend_by);
        let yuan = |fen: f64| fen / 100.0;
        let opt = |v: Option<f64>, digits: usize| v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"));
        println!(
            "CLV over {} periods by {}, amounts in yuan (purchase values and spend are fen):",
            args.periods,
            if matches!(by, GroupBy::Channel) { "signup channel" } else { "signup month" }
        );
        println!("{:<16} {:>9} {:>9} {:>12} {:>10} {:>10} {:>9}", "group", "acquired", "buyers", "CLV total", "CLV/user", "CAC", "LTV:CAC");
        for g in &groups {
            println!(
                "{:<16} {:>9} {:>9} {:>12.0} {:>10.2} {:>10} {:>9}",
                g.group,
                g.users_acquired,
                g.customers,
                yuan(g.clv_total),
                yuan(g.clv_per_user),
                opt(g.cac.map(yuan), 2),
                opt(g.ltv_to_cac, 2)
            );
        }
    } else if args.by.is_some() {
        eprintln!("warning: --by needs spend per purchase (a purchase event with amount_fen) for CLV; no groups printed");
    }
    Ok(())
}

type Acquisition =
    (std::collections::HashMap<String, String>, std::collections::BTreeMap<String, u64>, std::collections::BTreeMap<String, f64>);

/// Users' acquisition groups, users acquired per group and spend per group (fen), all before
/// `end_us`.
fn acquisition(config: &Config, end_us: i64, by: GroupBy, runtime: &tokio::runtime::Runtime) -> Result<Acquisition> {
    let view = finpulse_log::EventStore::read_view(&config.data_dir)
        .with_context(|| format!("reading data directory {}", config.data_dir.display()))?;
    let month = |t: i64| finpulse_core::time::day_label(finpulse_core::time::day_of_us(t)).chars().take(7).collect::<String>();
    let label = |channel: Option<String>, t: i64| match by {
        GroupBy::Channel => channel.unwrap_or_else(|| "(none)".into()),
        GroupBy::Cohort => month(t),
    };
    let run = |q: String| runtime.block_on(finpulse_query::run_sql(&view, &q, finpulse_query::QueryOptions::default()));
    let signups =
        run(format!("SELECT user_id, channel, arrow_cast(ts, 'Int64') FROM user_signup WHERE arrow_cast(ts, 'Int64') < {end_us}"))?;
    let (mut group_of, mut acquired) = (std::collections::HashMap::new(), std::collections::BTreeMap::new());
    for b in &signups.batches {
        let (users, channels) = (finpulse_query::text_values(b.column(0))?, finpulse_query::text_values(b.column(1))?);
        let ts = b.column(2).as_primitive::<Int64Type>();
        for (i, (user, channel)) in users.into_iter().zip(channels).enumerate() {
            let g = label(channel, ts.value(i));
            *acquired.entry(g.clone()).or_insert(0u64) += 1;
            if let Some(u) = user {
                group_of.insert(u, g);
            }
        }
    }
    let spend =
        run(format!("SELECT channel, arrow_cast(ts, 'Int64'), amount_fen FROM marketing_spend WHERE arrow_cast(ts, 'Int64') < {end_us}"))?;
    let mut spend_by = std::collections::BTreeMap::new();
    for b in &spend.batches {
        let channels = finpulse_query::text_values(b.column(0))?;
        let (ts, amount) = (b.column(1).as_primitive::<Int64Type>(), b.column(2).as_primitive::<Int64Type>());
        for (i, channel) in channels.into_iter().enumerate() {
            *spend_by.entry(label(channel, ts.value(i))).or_insert(0.0) += amount.value(i) as f64;
        }
    }
    Ok((group_of, acquired, spend_by))
}
