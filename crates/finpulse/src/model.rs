//! `finpulse model`: train a classifier on any labelled CSV, score another CSV with it, and
//! evaluate it.

use crate::Format;
use crate::config::Config;
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use finpulse_models::gbdt::GbdtParams;
use finpulse_models::logistic::LogisticParams;
use finpulse_models::metrics::Evaluation;
use finpulse_models::registry::{ModelRegistry, Registration};
use finpulse_models::table::{LabelSpec, ReadOptions};
use finpulse_models::tabular::{Algo, Learner, TabularModel};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The learners.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum AlgoArg {
    Gbdt,
    Logistic,
}

/// `finpulse model train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training table (CSV with a header).
    #[arg(long)]
    data: PathBuf,
    /// The binary label column: 1/0, true/false or yes/no (or see --positive).
    #[arg(long)]
    label: String,
    /// The label text that means the positive class, when it is not 1/true/yes.
    #[arg(long)]
    positive: Option<String>,
    /// An identifier column: not a feature, carried to predictions.
    #[arg(long)]
    id: Option<String>,
    /// Columns to leave out (comma-separated).
    #[arg(long, value_delimiter = ',')]
    ignore: Vec<String>,
    #[arg(long, value_enum, default_value = "gbdt")]
    algo: AlgoArg,
    /// Where to write the model (JSON).
    #[arg(long)]
    out: PathBuf,
    /// GBDT: most boosting rounds.
    #[arg(long, default_value_t = GbdtParams::default().rounds_max)]
    rounds: usize,
    /// GBDT: shrinkage per tree.
    #[arg(long, default_value_t = GbdtParams::default().learning_rate)]
    learning_rate: f64,
    /// GBDT: most leaves per tree.
    #[arg(long, default_value_t = GbdtParams::default().leaves_max)]
    leaves: usize,
    /// GBDT: fewest rows per leaf.
    #[arg(long, default_value_t = GbdtParams::default().leaf_rows_min)]
    min_leaf_rows: usize,
    /// GBDT: share of rows held out for early stopping.
    #[arg(long, default_value_t = GbdtParams::default().valid_fraction)]
    valid_fraction: f64,
    /// GBDT: rounds without improvement before stopping (0: never stop early).
    #[arg(long, default_value_t = GbdtParams::default().early_stopping_rounds)]
    early_stopping: usize,
    /// L2 penalty (GBDT leaves; logistic weights).
    #[arg(long)]
    l2: Option<f64>,
    /// Seed of the validation split.
    #[arg(long, default_value_t = GbdtParams::default().seed)]
    seed: u64,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Also store it in the data directory's model registry under this purpose (e.g. credit),
    /// as the purpose's next version, and make it active.
    #[arg(long)]
    register: Option<String>,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Trains and writes the model, then prints what training did.
pub fn train(config: &Config, args: &TrainArgs) -> Result<()> {
    let started = Instant::now();
    let bytes = read(&args.data)?;
    let options = ReadOptions {
        label: Some(LabelSpec { column: args.label.clone(), positive: args.positive.clone() }),
        id: args.id.clone(),
        ignore: args.ignore.clone(),
    };
    let algo = match args.algo {
        AlgoArg::Gbdt => Algo::Gbdt(GbdtParams {
            rounds_max: args.rounds,
            learning_rate: args.learning_rate,
            leaves_max: args.leaves,
            leaf_rows_min: args.min_leaf_rows,
            valid_fraction: args.valid_fraction,
            early_stopping_rounds: args.early_stopping,
            l2: args.l2.unwrap_or(GbdtParams::default().l2),
            seed: args.seed,
            ..GbdtParams::default()
        }),
        AlgoArg::Logistic => Algo::Logistic(LogisticParams { l2: args.l2.unwrap_or(LogisticParams::default().l2) }),
    };
    let model = TabularModel::train(&bytes, &options, &algo).with_context(|| format!("training on {}", args.data.display()))?;
    let trained = started.elapsed();
    finish(config, &model, trained.as_secs_f64(), &args.out, args.format, args.register.as_deref(), &args.data)
}

/// Writes the model, prints its summary and registers it when asked.
#[allow(clippy::too_many_arguments)]
fn finish(
    config: &Config,
    model: &TabularModel,
    seconds: f64,
    out: &Path,
    format: Format,
    register: Option<&str>,
    data: &Path,
) -> Result<()> {
    model.save(out)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&summary_json(model, seconds))?),
        Format::Table | Format::Csv => print_summary(model, seconds),
    }
    eprintln!("wrote {}", out.display());
    if let Some(purpose) = register {
        let registry = ModelRegistry::in_data_dir(&config.data_dir)?;
        let validation = match &model.learner {
            Learner::Gbdt { report, .. } => {
                serde_json::json!({ "auc": report.valid_auc, "log_loss": report.valid_log_loss, "rows": report.valid_rows })
            }
            Learner::Logistic { .. } | Learner::Imported { .. } => serde_json::Value::Null,
        };
        let training = serde_json::json!({ "data": data.display().to_string(), "rows": model.rows, "label": model.label });
        let metrics = serde_json::json!({ "train": model.train_evaluation, "validation": validation });
        let registration = Registration { purpose: purpose.to_string(), by: crate::churn::who(), training, metrics, activate: true };
        let (entry, active) = crate::access::register_model(config, &registry, model, registration)?;
        let state = if active { "active" } else { "not active until approved" };
        eprintln!("registered as {purpose} v{} ({state}) in {}", entry.version, config.data_dir.display());
    }
    Ok(())
}

/// Where an imported model comes from.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ImportFormat {
    /// A LightGBM text model (`Booster.save_model`).
    Lightgbm,
    /// An XGBoost JSON model (`Booster.save_model("model.json")`).
    Xgboost,
}

/// `finpulse model import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The library that wrote the file.
    #[arg(long = "from", value_enum)]
    source: ImportFormat,
    /// The model file.
    #[arg(long)]
    file: PathBuf,
    /// A labelled CSV to check it on before it is stored (it must hold every feature).
    #[arg(long)]
    data: PathBuf,
    /// The label column of --data.
    #[arg(long)]
    label: String,
    /// The label text that means the positive class, when it is not 1/true/yes.
    #[arg(long)]
    positive: Option<String>,
    /// Where to write the finpulse model file.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Also store it in the data directory's model registry under this purpose (e.g. fraud),
    /// as the purpose's next version, and make it active.
    #[arg(long)]
    register: Option<String>,
}

/// Imports a LightGBM or XGBoost model, checks it on a labelled CSV, writes (and registers) it.
pub fn import(config: &Config, args: &ImportArgs) -> Result<()> {
    let started = Instant::now();
    let text = String::from_utf8(read(&args.file)?).with_context(|| format!("{} is not text", args.file.display()))?;
    let trees = match args.source {
        ImportFormat::Lightgbm => finpulse_models::import::ImportedTrees::from_lightgbm(&text),
        ImportFormat::Xgboost => finpulse_models::import::ImportedTrees::from_xgboost(&text),
    }
    .with_context(|| format!("importing {}", args.file.display()))?;
    let label = LabelSpec { column: args.label.clone(), positive: args.positive.clone() };
    let model = TabularModel::import(trees, &read(&args.data)?, label).with_context(|| format!("checking on {}", args.data.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    finish(config, &model, seconds, &args.out, args.format, args.register.as_deref(), &args.data)
}

fn summary_json(model: &TabularModel, seconds: f64) -> serde_json::Value {
    let (algo, extra) = match &model.learner {
        Learner::Gbdt { report, params, .. } => ("gbdt", serde_json::json!({"report": report, "params": params})),
        Learner::Logistic { model: m, params } => ("logistic", serde_json::json!({"iterations": m.iterations, "params": params})),
        Learner::Imported { model: m } => ("imported", serde_json::json!({"source": m.source, "trees": m.trees.len()})),
    };
    serde_json::json!({
        "algo": algo,
        "rows": model.rows,
        "features": model.features.iter().map(|f| &f.name).collect::<Vec<_>>(),
        "dropped": model.dropped,
        "train": model.train_evaluation,
        "seconds": seconds,
        "details": extra,
    })
}

fn print_summary(model: &TabularModel, seconds: f64) {
    let e = &model.train_evaluation;
    println!("trained on {} rows, {} features in {seconds:.2} s", model.rows, model.features.len());
    for (column, why) in &model.dropped {
        println!("  left out '{column}': {why}");
    }
    match &model.learner {
        Learner::Gbdt { report, .. } => {
            println!(
                "gbdt: {} rounds kept of {} run; {} rows held out for early stopping",
                report.rounds_kept, report.rounds_run, report.valid_rows
            );
            if let (Some(loss), Some(auc)) = (report.valid_log_loss, report.valid_auc) {
                println!("validation: log loss {loss:.5}, AUC {auc:.4}");
            }
            let mut by_gain: Vec<(&str, f64)> =
                model.features.iter().map(|f| f.name.as_str()).zip(report.gain_by_feature.iter().copied()).collect();
            by_gain.sort_by(|a, b| b.1.total_cmp(&a.1));
            let total: f64 = by_gain.iter().map(|g| g.1).sum::<f64>().max(f64::MIN_POSITIVE);
            println!("features by gain:");
            for (name, gain) in by_gain.iter().take(10) {
                println!("  {name:<24} {:>6.1}%", 100.0 * gain / total);
            }
        }
        Learner::Logistic { model: m, .. } => println!("logistic: converged in {} Newton steps, {} terms", m.iterations, m.terms.len()),
        Learner::Imported { model: m } => println!("imported from {:?}: {} trees", m.source, m.trees.len()),
    }
    println!("in-sample: AUC {}, log loss {:.5}, Brier {:.5}", fmt_opt(e.auc), e.log_loss, e.brier);
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".into(), |v| format!("{v:.4}"))
}

/// `finpulse model predict`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A model written by `finpulse model train`.
    #[arg(long)]
    model: PathBuf,
    /// The table to score (CSV; columns matched by name).
    #[arg(long)]
    data: PathBuf,
    /// Where to write one score per input row, in input order.
    #[arg(long)]
    out: PathBuf,
    /// Add each row's top reasons (the features that raised its score most).
    #[arg(long)]
    reasons: bool,
}

/// Scores a CSV and writes `[id,]score[,reasons]` in input order.
pub fn predict(args: &PredictArgs) -> Result<()> {
    let model = TabularModel::load(&args.model)?;
    let bytes = read(&args.data)?;
    let started = Instant::now();
    let scored = model.score(&bytes, args.reasons).with_context(|| format!("scoring {}", args.data.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let file = std::fs::File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    let mut header = Vec::new();
    if scored.ids.is_some() {
        header.push(model.id.clone().unwrap_or_default());
    }
    header.push("score".into());
    if args.reasons {
        header.push("reasons".into());
    }
    w.write_record(&header)?;
    for (row, score) in scored.scores.iter().enumerate() {
        let mut record = Vec::with_capacity(3);
        if let Some(ids) = &scored.ids {
            record.push(ids[row].clone());
        }
        record.push(format!("{score}"));
        if args.reasons {
            record.push(scored.reasons[row].iter().map(|(f, c)| format!("{f}:+{c:.3}")).collect::<Vec<_>>().join(" "));
        }
        w.write_record(&record)?;
    }
    let mut inner = w.into_inner().map_err(|e| anyhow::anyhow!("writing {}: {e}", args.out.display()))?;
    inner.flush()?;
    eprintln!(
        "scored {} rows in {seconds:.3} s ({:.0} rows/s); wrote {}",
        scored.scores.len(),
        scored.scores.len() as f64 / seconds.max(1e-9),
        args.out.display()
    );
    if let Some(labels) = &scored.labels {
        let e = finpulse_models::metrics::evaluate(&scored.scores, labels);
        eprintln!("the file carries the label '{}': AUC {}, log loss {:.5}", model.label.column, fmt_opt(e.auc), e.log_loss);
    }
    Ok(())
}

/// Evaluates a model on a labelled CSV.
pub fn eval(model: &Path, data: &Path, format: Format) -> Result<()> {
    let model = TabularModel::load(model)?;
    let bytes = read(data)?;
    let e: Evaluation = model.evaluate(&bytes).with_context(|| format!("evaluating on {}", data.display()))?;
    if e.rows == 0 {
        bail!("{} has no rows to evaluate", data.display());
    }
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&e)?),
        Format::Csv => {
            println!("rows,positive_rate,auc,average_precision,log_loss,brier,top_decile_lift");
            println!(
                "{},{},{},{},{},{},{}",
                e.rows,
                e.positive_rate,
                fmt_opt(e.auc),
                fmt_opt(e.average_precision),
                e.log_loss,
                e.brier,
                e.top_decile_lift
            );
        }
        Format::Table => {
            println!("rows               {}", e.rows);
            println!("positive rate      {:.4}", e.positive_rate);
            println!("AUC                {}", fmt_opt(e.auc));
            println!("average precision  {}", fmt_opt(e.average_precision));
            println!("log loss           {:.5}", e.log_loss);
            println!("Brier score        {:.5}", e.brier);
            println!("top-decile lift    {:.2}", e.top_decile_lift);
        }
    }
    Ok(())
}
