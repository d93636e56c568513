//! `finpulse experiment define|list|start|stop|report|assign|power|history`.

use crate::Format;
use crate::config::Config;
use anyhow::{Context, Result, bail};
use finpulse_core::Registry;
use finpulse_experiments::definition::{AnalysisSettings, ExperimentDef, MetricDef, MetricKind, Targeting, VariationDef};
use finpulse_experiments::power::{PowerInput, minimum_detectable_effect, users_needed};
use finpulse_experiments::report::Report;
use finpulse_experiments::{Assigner, ExperimentBook, Members, Status};
use finpulse_growth::segments::SegmentBook;
use finpulse_growth::{Cell, Table};
use finpulse_log::EventStore;
use finpulse_server::experiments::ReportBody;
use finpulse_sim::{SimConfig, SimExperiment};
use std::path::PathBuf;

/// The experiment `finpulse demo --experiment` runs on the simulated users.
pub const DEMO_EXPERIMENT_KEY: &str = "onboarding-next-day";
/// Its true effect: one more session the day after signup for this share of the treatment.
pub const DEMO_EXTRA_SESSION_P: f64 = 0.3;

fn demo_metric(name: &str, kind: MetricKind, event: &str, field: Option<&str>, window_days: u32) -> MetricDef {
    MetricDef {
        name: name.into(),
        kind,
        event: event.into(),
        field: field.map(str::to_string),
        denominator: None,
        window_days,
        pre_window_days: None,
        inverse: false,
        guardrail: false,
    }
}

/// Defines and starts the demo's experiment (at the first simulated day) in the data
/// directory's book, and compiles the assigner the simulated signups are assigned with.
pub fn start_demo_experiment(config: &Config, registry: &Registry, sim: &SimConfig) -> Result<Assigner> {
    let complaints = MetricDef { inverse: true, guardrail: true, ..demo_metric("complaints_7d", MetricKind::Count, "feedback", None, 7) };
    let def = ExperimentDef {
        key: DEMO_EXPERIMENT_KEY.into(),
        description: "a reminder the day after signup".into(),
        variations: vec![VariationDef { key: "control".into(), weight: 0.5 }, VariationDef { key: "reminder".into(), weight: 0.5 }],
        traffic_share: 1.0,
        targeting: Targeting::default(),
        layer: None,
        metrics: vec![
            demo_metric("sessions_7d", MetricKind::Count, "app_session", None, 7),
            demo_metric("deposited_7d", MetricKind::Conversion, "deposit", None, 7),
            complaints,
        ],
        analysis: AnalysisSettings::default(),
    };
    let mut book = ExperimentBook::load(&config.data_dir)?;
    book.define(def, registry, &[], "demo")?;
    if book.get(DEMO_EXPERIMENT_KEY)?.status != Status::Running {
        book.start(DEMO_EXPERIMENT_KEY, sim.start_day * finpulse_core::time::MICROS_PER_DAY, "demo")?;
    }
    eprintln!(
        "A/B experiment {DEMO_EXPERIMENT_KEY}: the reminder brings {DEMO_EXTRA_SESSION_P} more sessions per user in the week after signup \
         (the true effect); `finpulse experiment report {DEMO_EXPERIMENT_KEY}` measures it"
    );
    Ok(Assigner::new(&book, registry, |_| None)?)
}

/// The demo's experiment on the simulator, assigning with `assigner`.
pub fn demo_experiment(assigner: &Assigner) -> SimExperiment<impl Fn(&str) -> Option<usize> + '_> {
    SimExperiment {
        key: DEMO_EXPERIMENT_KEY.into(),
        variations: vec!["control".into(), "reminder".into()],
        extra_session_p: DEMO_EXTRA_SESSION_P,
        seed: 42,
        assign: move |user: &str| {
            let mut out = Vec::with_capacity(assigner.len());
            assigner.assign(user, &[], &mut out);
            out.iter().find(|a| a.experiment == DEMO_EXPERIMENT_KEY).map(|a| a.variation_index)
        },
    }
}

/// `finpulse experiment …`.
#[derive(clap::Subcommand, Debug)]
pub enum ExperimentCommand {
    /// Define an experiment (or change a draft) from a JSON file: key, variations with
    /// weights, traffic_share, targeting, layer, metrics, analysis (see docs/experiments.md).
    Define {
        /// The definition, as JSON.
        file: PathBuf,
    },
    /// Every experiment with its status and variations.
    List {},
    /// Start an experiment, or restart a stopped one (users keep their variations).
    Start { key: String },
    /// Stop a running experiment.
    Stop { key: String },
    /// The experiment's analysis: users per variation, sample-ratio check, and per metric the
    /// effect against control with intervals, p-values, chance to win and risk.
    Report {
        key: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// The running experiments a user is in, and their variation.
    Assign {
        user: String,
        /// A user property for targeting filters, `NAME=VALUE` (repeatable).
        #[arg(long = "property")]
        properties: Vec<String>,
    },
    /// Minimum detectable effect for a number of users, and users needed for an effect.
    Power {
        /// The control's conversion rate, in (0, 1); or give --mean and --stddev.
        #[arg(long)]
        conversion_rate: Option<f64>,
        /// The control's mean.
        #[arg(long, allow_negative_numbers = true)]
        mean: Option<f64>,
        /// The per-user standard deviation.
        #[arg(long)]
        stddev: Option<f64>,
        /// Users in each variation: prints the minimum detectable effect.
        #[arg(long)]
        users_per_variation: Option<u64>,
        /// A relative effect (0.05 for +5%): prints the users needed per variation.
        #[arg(long, allow_negative_numbers = true)]
        relative_effect: Option<f64>,
        #[arg(long, default_value_t = 0.05)]
        alpha: f64,
        #[arg(long, default_value_t = 0.8)]
        power: f64,
    },
    /// Every definition, start and stop, oldest first.
    History {},
}

/// Runs an experiment command.
pub async fn run(config: &Config, command: ExperimentCommand) -> Result<()> {
    let dir = &config.data_dir;
    match command {
        ExperimentCommand::Define { file } => {
            let text = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let def: ExperimentDef =
                serde_json::from_slice(&text).with_context(|| format!("{}: not an experiment definition", file.display()))?;
            let view = EventStore::read_view(dir).with_context(|| format!("reading data directory {}", dir.display()))?;
            let segments = SegmentBook::load(dir)?;
            let names: Vec<&str> = segments.defs().keys().map(String::as_str).collect();
            let mut book = ExperimentBook::load(dir)?;
            let e = book.define(def, &view.registry, &names, &crate::churn::who())?;
            println!("experiment {} defined ({})", e.definition.key, e.status.name());
        }
        ExperimentCommand::List {} => list(&ExperimentBook::load(dir)?),
        ExperimentCommand::Start { key } => {
            let e = ExperimentBook::load(dir)?.start(&key, finpulse_core::time::now_us(), &crate::churn::who())?.clone();
            println!("experiment {key} running (phase {})", e.phases.len());
        }
        ExperimentCommand::Stop { key } => {
            ExperimentBook::load(dir)?.stop(&key, finpulse_core::time::now_us(), &crate::churn::who())?;
            println!("experiment {key} stopped; `finpulse experiment start {key}` restarts it with the same assignments");
        }
        ExperimentCommand::Report { key, format } => {
            let book = ExperimentBook::load(dir)?;
            let view = EventStore::read_view(dir).with_context(|| format!("reading data directory {}", dir.display()))?;
            let report = finpulse_experiments::report(&view, book.get(&key)?).await?;
            print_report(&report, format)?;
        }
        ExperimentCommand::Assign { user, properties } => assign(config, &user, &properties)?,
        ExperimentCommand::Power { conversion_rate, mean, stddev, users_per_variation, relative_effect, alpha, power } => {
            let input = match (conversion_rate, mean, stddev) {
                (Some(rate), None, None) => PowerInput::conversion(rate, alpha, power)?,
                (None, Some(mean), Some(stddev)) => PowerInput { mean, stddev, alpha, power },
                _ => bail!("--conversion-rate: give --conversion-rate, or --mean and --stddev"),
            };
            if users_per_variation.is_none() && relative_effect.is_none() {
                bail!("--users-per-variation: give --users-per-variation, --relative-effect or both");
            }
            if let Some(n) = users_per_variation {
                let mde = minimum_detectable_effect(&input, n)?;
                println!(
                    "minimum detectable effect with {n} users per variation: {:.6} absolute, {:.4}% relative",
                    mde.absolute,
                    mde.relative * 100.0
                );
            }
            if let Some(effect) = relative_effect {
                println!("users needed per variation for {:+.4}%: {}", effect * 100.0, users_needed(&input, effect)?);
            }
        }
        ExperimentCommand::History {} => print_history(&ExperimentBook::load(dir)?.history()?),
    }
    Ok(())
}

fn print_history(history: &[finpulse_core::versions::Activation]) {
    if history.is_empty() {
        println!("no changes");
    }
    for a in history {
        let when = finpulse_core::time::format_us(i64::try_from(a.at_unix_secs).unwrap_or(0) * 1_000_000);
        println!("{}  v{}  by {} at {}", a.name, a.version, a.by, when);
    }
}

fn list(book: &ExperimentBook) {
    if book.experiments().is_empty() {
        println!("no experiments");
    }
    for e in book.experiments().values() {
        let d = &e.definition;
        let variations: Vec<String> = d.variations.iter().map(|v| format!("{} {}", v.key, v.weight)).collect();
        let layer = d.layer.as_ref().map_or(String::new(), |l| format!(", layer {} [{}, {})", l.name, l.start, l.end));
        println!(
            "{}: {} — {}; traffic {}{layer}; {} metrics",
            d.key,
            e.status.name(),
            variations.join(", "),
            d.traffic_share,
            d.metrics.len()
        );
    }
}

fn assign(config: &Config, user: &str, properties: &[String]) -> Result<()> {
    let dir = &config.data_dir;
    let view = EventStore::read_view(dir).with_context(|| format!("reading data directory {}", dir.display()))?;
    let segments = SegmentBook::load(dir)?;
    let assigner =
        Assigner::new(&ExperimentBook::load(dir)?, &view.registry, |name| segments.materialised_members(name).map(Members::new))?;
    let mut attributes = Vec::with_capacity(properties.len());
    for p in properties {
        let (name, value) = p.split_once('=').with_context(|| format!("--property '{p}': give NAME=VALUE"))?;
        attributes.push((name, value));
    }
    let mut out = Vec::new();
    assigner.assign(user, &attributes, &mut out);
    if out.is_empty() {
        println!("{user} is in no running experiment");
    }
    for a in &out {
        println!("{}: {}", a.experiment, a.variation);
    }
    Ok(())
}

fn guardrail_name(g: finpulse_experiments::GuardrailStatus) -> &'static str {
    use finpulse_experiments::GuardrailStatus as G;
    match g {
        G::NotEnoughData => "not enough data",
        G::Ok => "ok",
        G::Warning => "warning",
        G::Danger => "danger",
    }
}

fn print_report(report: &Report, format: Format) -> Result<()> {
    if let Format::Json = format {
        println!("{}", serde_json::to_string_pretty(&ReportBody::from(report))?);
        return Ok(());
    }
    let users: Vec<String> = report.variations.iter().map(|v| format!("{} {} (weight {})", v.key, v.users, v.weight)).collect();
    println!("{} ({}): {}", report.key, report.status.name(), users.join(", "));
    let srm = if report.srm.mismatch { "MISMATCH — the split is not the one intended" } else { "ok" };
    println!("sample ratio: p = {:.4} {srm}", report.srm.p_value);
    if report.multiple_variation_users + report.unknown_variation_users > 0 {
        println!(
            "left out: {} users exposed to several variations, {} to an unknown one",
            report.multiple_variation_users, report.unknown_variation_users
        );
    }
    let mut t = Table::new(&[
        "metric",
        "variation",
        "users",
        "mean",
        "abs_effect",
        "rel_effect",
        "rel_ci_low",
        "rel_ci_high",
        "p_value",
        "adj_p_value",
        "chance_to_win",
        "verdict",
    ]);
    for m in &report.metrics {
        for v in &m.variations {
            let c = v.comparison.as_ref();
            let verdict = c.map_or(String::new(), |c| match (c.guard, c.guardrail) {
                (Some(g), _) => g.message().to_string(),
                (None, Some(g)) => format!("guardrail: {}", guardrail_name(g)),
                (None, None) if c.significant => "significant".into(),
                _ => String::new(),
            });
            t.rows.push(vec![
                Cell::from(m.metric.name.as_str()),
                Cell::from(v.key.as_str()),
                Cell::Int(v.users as i64),
                Cell::from(v.adjusted_mean),
                Cell::from(c.map(|c| c.absolute.estimate)),
                Cell::from(c.map(|c| c.relative.estimate)),
                Cell::from(c.map(|c| c.relative.lower)),
                Cell::from(c.map(|c| c.relative.upper)),
                Cell::from(c.map(|c| c.p_value)),
                Cell::from(c.and_then(|c| c.adjusted_p_value)),
                Cell::from(c.map(|c| c.chance_to_win)),
                Cell::from(verdict),
            ]);
        }
    }
    print!("{}", t.to_text());
    Ok(())
}
