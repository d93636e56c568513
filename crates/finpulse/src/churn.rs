//! `finpulse churn`: train the churn early-warning model on the store's history, score the
//! daily risk list, evaluate on a date whose horizon has passed; `finpulse models`: the model
//! registry (list, promote, roll back).

use crate::Format;
use crate::config::Config;
use anyhow::{Context, Result, bail};
use clap::Args;
use finpulse_access::approvals::{ApprovalKind, Change};
use finpulse_churn::{ACTIVITY_DEFAULT, ChurnSpec, PURPOSE, RiskList, TrainOptions};
use finpulse_log::StoreView;
use finpulse_models::gbdt::GbdtParams;
use finpulse_models::registry::{ModelRegistry, Registration};
use std::io::Write;
use std::path::PathBuf;

/// Where and as of when.
#[derive(Args, Debug)]
pub struct Common {
    /// The as-of date (YYYY-MM-DD, UTC midnight): only events before it are read as features.
    #[arg(long)]
    as_of: String,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// `finpulse churn train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    common: Common,
    /// A user churns with no qualifying activity in this many days.
    #[arg(long, default_value_t = 30)]
    horizon_days: u32,
    /// Event types that count as activity (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = ACTIVITY_DEFAULT.iter().map(|s| s.to_string()))]
    activity: Vec<String>,
    /// Only users active in this many days before a date are scored.
    #[arg(long, default_value_t = 30)]
    active_within_days: u32,
    /// Past snapshots to learn from; the latest validates.
    #[arg(long, default_value_t = TrainOptions::default().snapshots)]
    snapshots: u32,
    /// Days between snapshots.
    #[arg(long, default_value_t = TrainOptions::default().step_days)]
    step_days: u32,
    /// Register without making it the active churn model (compare first, promote later).
    #[arg(long)]
    no_promote: bool,
}

/// `finpulse churn score`.
#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    common: Common,
    /// Where to write the whole risk list (CSV): user_id, probability, reasons.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Users to print, highest risk first.
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// A registered version instead of the active one.
    #[arg(long)]
    version: Option<u32>,
}

/// `finpulse churn eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    common: Common,
    /// A registered version instead of the active one.
    #[arg(long)]
    version: Option<u32>,
}

/// Who the registry records as having acted: `cli:<login user>`, as the audit log names them.
pub(crate) fn who() -> String {
    finpulse_access::Principal::local_operator_actor()
}

fn open(config: &Config, common: &Common) -> Result<(StoreView, i64, ModelRegistry)> {
    let as_of_us = finpulse_core::time::parse_date_us(&common.as_of)
        .with_context(|| format!("--as-of '{}' is not a YYYY-MM-DD date", common.as_of))?;
    let view = finpulse_log::EventStore::read_view(&config.data_dir)
        .with_context(|| format!("reading data directory {}", config.data_dir.display()))?;
    let registry = ModelRegistry::in_data_dir(&config.data_dir)?;
    Ok((view, as_of_us, registry))
}

/// Trains, registers and (unless told not to) promotes a churn model.
pub fn train(config: &Config, args: &TrainArgs, runtime: &tokio::runtime::Runtime) -> Result<()> {
    let (view, as_of_us, registry) = open(config, &args.common)?;
    let spec = ChurnSpec { horizon_days: args.horizon_days, activity: args.activity.clone(), active_within_days: args.active_within_days };
    let options = TrainOptions { snapshots: args.snapshots, step_days: args.step_days, gbdt: GbdtParams::default() };
    let started = std::time::Instant::now();
    let (model, report) = runtime.block_on(finpulse_churn::train(&view, &spec, as_of_us, &options))?;
    let secs = started.elapsed().as_secs_f64();
    let metrics = serde_json::json!({ "validation": report.validation, "validation_precision_at": report.validation_precision_at, "train": model.train_evaluation });
    let registration =
        Registration { purpose: PURPOSE.into(), by: who(), training: report.training_record(), metrics, activate: !args.no_promote };
    let (entry, active) = crate::access::register_model(config, &registry, &model, registration)?;
    match args.common.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "version": entry.version, "active": active, "seconds": secs, "report": report })
            )?
        ),
        Format::Table | Format::Csv => {
            println!("churn model v{} trained as of {} in {secs:.1} s ({}-day horizon)", entry.version, report.as_of, spec.horizon_days);
            println!("{:<12} {:>8} {:>11}", "snapshot", "users", "churn rate");
            for s in &report.snapshots {
                println!(
                    "{:<12} {:>8} {:>10.1}%{}",
                    s.as_of,
                    s.users,
                    100.0 * s.churn_rate,
                    if s.validation { "  (validation)" } else { "" }
                );
            }
            let v = &report.validation;
            println!(
                "out-of-time validation: AUC {}, average precision {}, top-decile lift {:.2}, Brier {:.4}",
                v.auc.map_or("n/a".into(), |a| format!("{a:.4}")),
                v.average_precision.map_or("n/a".into(), |a| format!("{a:.4}")),
                v.top_decile_lift,
                v.brier
            );
            if active {
                println!("active churn model: v{}", entry.version);
            } else if args.no_promote {
                println!("registered, not active: `finpulse models promote churn {}` makes it so", entry.version);
            }
        }
    }
    Ok(())
}

/// A churn model from the registry (the active one, or `version`) with the churn definition it
/// was trained with.
pub(crate) fn model_and_spec(
    registry: &ModelRegistry,
    version: Option<u32>,
) -> Result<(u32, finpulse_models::tabular::TabularModel, ChurnSpec)> {
    let (entry, model) = match version {
        Some(v) => registry.get(PURPOSE, v)?,
        None => registry.active(PURPOSE)?,
    };
    let spec = ChurnSpec::from_training(&entry.meta.training)?;
    Ok((entry.version, model, spec))
}

fn reasons_text(row: &finpulse_churn::RiskRow) -> String {
    row.reasons.iter().map(|r| format!("{}={}", r.feature, r.value)).collect::<Vec<_>>().join("; ")
}

fn write_list(path: &PathBuf, list: &RiskList) -> Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?);
    writeln!(out, "user_id,probability,reasons")?;
    for row in &list.rows {
        writeln!(out, "{},{:.6},\"{}\"", row.user_id, row.probability, reasons_text(row).replace('"', "\"\""))?;
    }
    out.flush()?;
    Ok(())
}

/// Scores the active users as of a date: the daily risk list.
pub fn score(config: &Config, args: &ScoreArgs, runtime: &tokio::runtime::Runtime) -> Result<()> {
    let (view, as_of_us, registry) = open(config, &args.common)?;
    let (version, model, spec) = model_and_spec(&registry, args.version)?;
    let list = runtime.block_on(finpulse_churn::score(&view, &model, &spec, as_of_us))?;
    if let Some(path) = &args.out {
        write_list(path, &list)?;
        eprintln!("wrote {} users to {}", list.rows.len(), path.display());
    }
    match args.common.format {
        Format::Json => {
            let top = RiskList { rows: list.rows.iter().take(args.top).cloned().collect(), ..list.clone() };
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "model_version": version, "list": top }))?);
        }
        Format::Csv => {
            println!("user_id,probability,reasons");
            for row in list.rows.iter().take(args.top) {
                println!("{},{:.6},\"{}\"", row.user_id, row.probability, reasons_text(row));
            }
        }
        Format::Table => {
            println!(
                "churn risk as of {} (model v{version}, {}-day horizon): {} active users, expected churn {:.1}%",
                list.as_of,
                list.horizon_days,
                list.users_scored,
                100.0 * list.mean_probability
            );
            println!("{:<12} {:>11}  reasons", "user", "probability");
            for row in list.rows.iter().take(args.top) {
                println!("{:<12} {:>10.1}%  {}", row.user_id, 100.0 * row.probability, reasons_text(row));
            }
        }
    }
    Ok(())
}

/// Evaluates a churn model on a date whose horizon has passed.
pub fn eval(config: &Config, args: &EvalArgs, runtime: &tokio::runtime::Runtime) -> Result<()> {
    let (view, as_of_us, registry) = open(config, &args.common)?;
    let (version, model, spec) = model_and_spec(&registry, args.version)?;
    let e = runtime.block_on(finpulse_churn::evaluate(&view, &model, &spec, as_of_us))?;
    match args.common.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "model_version": version, "evaluation": e }))?),
        Format::Csv => {
            println!("from,to,users,predicted,observed");
            for b in &e.calibration {
                println!("{},{},{},{:.6},{:.6}", b.from, b.to, b.rows, b.predicted, b.observed);
            }
        }
        Format::Table => {
            let q = &e.evaluation;
            println!(
                "churn model v{version} on {} ({}-day horizon): {} users, {:.1}% churned",
                e.as_of,
                e.horizon_days,
                q.rows,
                100.0 * q.positive_rate
            );
            println!("AUC                {}", q.auc.map_or("n/a".into(), |a| format!("{a:.4}")));
            println!("average precision  {}", q.average_precision.map_or("n/a".into(), |a| format!("{a:.4}")));
            println!("top-decile lift    {:.2}", q.top_decile_lift);
            for (k, p) in &e.precision_at {
                println!("precision@{k:<8} {p:.4}");
            }
            println!("Brier score        {:.5}", q.brier);
            println!("log loss           {:.5}", q.log_loss);
            println!("calibration        predicted  observed  users");
            for b in &e.calibration {
                println!("  {:.1}–{:.1}          {:>7.3}  {:>8.3}  {:>5}", b.from, b.to, b.predicted, b.observed, b.rows);
            }
        }
    }
    Ok(())
}

/// Lists the churn features and what they mean.
pub fn features() {
    for (name, doc) in finpulse_churn::feature_docs() {
        println!("{name:<28} {doc}");
    }
}

/// `finpulse models list`.
pub fn models_list(config: &Config, format: Format) -> Result<()> {
    let registry = ModelRegistry::in_data_dir(&config.data_dir)?;
    let (entries, active) = registry.list()?;
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "models": entries, "active": active, "history": registry.history()? }))?
        ),
        Format::Table | Format::Csv => {
            if entries.is_empty() {
                println!("no models registered in {}", config.data_dir.display());
            }
            println!("{:<10} {:>7} {:>6} {:<9} {:<12} {:>8}  training", "purpose", "version", "active", "algo", "by", "AUC");
            for e in &entries {
                let auc = e.meta.metrics.pointer("/validation/auc").and_then(|a| a.as_f64()).map_or("".into(), |a| format!("{a:.4}"));
                let range = match (e.meta.training.get("from").and_then(|v| v.as_str()), e.meta.training.get("to").and_then(|v| v.as_str()))
                {
                    (Some(f), Some(t)) => format!("{f} .. {t}"),
                    _ => e.meta.training.get("data").and_then(|v| v.as_str()).unwrap_or("").to_string(),
                };
                let is_active = active.get(&e.name) == Some(&e.version);
                println!(
                    "{:<10} {:>7} {:>6} {:<9} {:<12} {:>8}  {range}",
                    e.name,
                    e.version,
                    if is_active { "yes" } else { "" },
                    e.meta.algo,
                    e.created_by,
                    auc
                );
            }
        }
    }
    Ok(())
}

/// `finpulse models promote` and `rollback`.
pub fn models_activate(config: &Config, purpose: &str, version: Option<u32>) -> Result<()> {
    let registry = ModelRegistry::in_data_dir(&config.data_dir)?;
    if config.access.needs_approval(ApprovalKind::Models) {
        let Some(v) = version else {
            let target = registry.rollback_target(purpose)?;
            return crate::access::request_approval(config, ApprovalKind::Models, purpose, target, Change::RollBack);
        };
        let (entries, _) = registry.list()?;
        if !entries.iter().any(|e| e.name == purpose && e.version == v) {
            bail!("no model {purpose} v{v} (finpulse models list shows them)");
        }
        return crate::access::request_approval(config, ApprovalKind::Models, purpose, v, Change::Activate);
    }
    let a = match version {
        Some(v) => registry.promote(purpose, v, &who())?,
        None => registry.rollback(purpose, &who())?,
    };
    let previous = a.previous.map_or("none".into(), |p| format!("v{p}"));
    println!("{purpose}: v{} is active (was {previous}; {} by {})", a.version, a.action, a.by);
    Ok(())
}
