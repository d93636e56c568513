//! `finpulse`: the command line. It parses arguments and calls the libraries.

mod access;
mod churn;
mod config;
mod demo;
mod experiment;
mod import;
mod insight;
mod lineage;
mod ltv;
mod model;
mod pricing;
mod risk;

use finpulse_risk::cases::CaseAction;
mod sql;
mod subject;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use config::Config;
use finpulse_log::{EventStore, StoreError};
use std::net::SocketAddr;
use std::path::PathBuf;

/// mimalloc keeps freed pages for reuse; with the system allocator, large Arrow buffers built and
/// dropped on every ingest batch were handed back to the kernel and faulted in again (a quarter
/// of import time went to zeroing fresh pages). Built without transparent huge pages: zeroing a
/// fresh 2 MB page inside the writer's tail merges cost decisions 5–30 ms pauses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "finpulse", version, about = "The operations engine of a fintech product")]
struct Cli {
    /// Config file (TOML); defaults to ./finpulse.toml when it exists.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// The data directory (events, log, Parquet, models, rules, segments, goals); overrides
    /// the configuration's `data_dir`. Accepted before or after the command.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// The tenant to work on: its data, and the keys and users made (default: `access.tenant`).
    #[arg(long, global = true)]
    tenant: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate a fintech app, ingest it, and serve the API.
    Demo {
        /// Users who sign up over the period.
        #[arg(long, default_value_t = 20_000)]
        users: u32,
        /// Days to simulate.
        #[arg(long, default_value_t = 90)]
        days: u32,
        /// Random seed; the same seed gives the same data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// First simulated day (YYYY-MM-DD).
        #[arg(long, default_value = "2026-01-01")]
        start: String,
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Generate and ingest, then exit.
        #[arg(long)]
        no_serve: bool,
        /// Also run an A/B experiment with a known effect on the simulated users
        /// (`onboarding-next-day`; see `finpulse experiment report`).
        #[arg(long)]
        experiment: bool,
    },
    /// Serve the HTTP API over a data directory.
    Serve {
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Import CSV, NDJSON or Parquet files of events.
    Import {
        /// Files to import (.csv, .ndjson/.jsonl, .parquet).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run SQL over `events` and the per-type views. Personal data is masked by its class
    /// unless a purpose is stated (the read is then audited with it).
    Sql {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Why C2 fields are needed in clear (logged in the audit log); without it they are masked.
        #[arg(long)]
        purpose: Option<String>,
        /// One read-only SQL statement.
        query: String,
    },
    /// KPI goals: growth, value and compliance targets with a projection and a status.
    #[command(subcommand)]
    Goals(insight::GoalsCommand),
    /// Segments: save, list, members (CSV export), materialise.
    #[command(subcommand)]
    Segment(insight::SegmentCommand),
    /// A/B experiments: define, start, stop, report, assign, power.
    #[command(subcommand)]
    Experiment(experiment::ExperimentCommand),
    /// Lifecycle insights: acquisition, activation, funnel, retention, lifecycle, trends.
    Insight {
        #[command(flatten)]
        args: Box<insight::InsightArgs>,
    },
    /// Show every event type and field with its type and data class.
    Schema {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Compact the log tail into Parquet now.
    Compact {},
    /// Customer lifetime value: BG/NBD, MBG/NBD, Pareto/NBD and Gamma-Gamma models.
    #[command(subcommand)]
    Ltv(LtvCommand),
    /// Classifiers for any table: gradient-boosted trees or logistic regression.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Churn early warning: who will stop using the product in the next 30 days, and why.
    #[command(subcommand)]
    Churn(ChurnCommand),
    /// The model registry: versions per purpose, the active one, promotions and roll-backs.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// LTV-based pricing: offers by value tier and churn risk, within guardrails.
    #[command(subcommand)]
    Pricing(PricingCommand),
    /// Fraud models by the handbook's protocol: train, score, evaluate.
    #[command(subcommand)]
    Fraud(FraudCommand),
    /// Risk rules: publish, backtest, and the features they read.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Risk cases: alerts (review and block decisions) gathered per user, assigned, commented
    /// and resolved with a verdict that becomes fraud labels.
    #[command(subcommand)]
    Cases(CasesCommand),
    /// API keys: create (shown once), list, revoke, rotate.
    #[command(subcommand)]
    Keys(access::KeysCommand),
    /// Console users: create (password on standard input), list.
    #[command(subcommand)]
    Users(access::UsersCommand),
    /// The tamper-evident audit log: verify, head, list.
    #[command(subcommand)]
    Audit(access::AuditCommand),
    /// Data-subject requests (PIPL Art. 44–47): a user's data exported as a signed zip.
    #[command(subcommand)]
    Subject(subject::SubjectCommand),
    /// Data lineage: every derivation's OpenLineage run events, and the graph around a dataset.
    #[command(subcommand)]
    Lineage(lineage::LineageCommand),
    /// Maker–checker: rule publications, model promotions and roll-backs waiting for a second person
    /// (`access.approval_required`).
    #[command(subcommand)]
    Approvals(access::ApprovalsCommand),
    /// A user's live profile and behaviour baseline.
    User {
        /// The user id.
        id: String,
    },
}

#[derive(Subcommand)]
enum FraudCommand {
    /// Train on payments of a period with the labels known after a delay; register and activate.
    Train(risk::TrainArgs),
    /// Score every payment of a period: event_id,user_id,ts,score,label,known_compromised.
    Score(risk::ScoreArgs),
    /// AUC ROC, average precision and card precision@100 per day, the handbook's way.
    Eval(risk::EvalArgs),
}

#[derive(Subcommand)]
enum CasesCommand {
    /// Cases, newest first.
    List {
        /// open or resolved.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        assignee: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// One case with its alerts and history.
    Show { id: String },
    /// Give a case to an analyst.
    Assign {
        id: String,
        assignee: String,
        /// Who is acting.
        #[arg(long)]
        by: String,
    },
    /// Comment on a case.
    Comment {
        id: String,
        text: String,
        #[arg(long)]
        by: String,
    },
    /// Close a case with a verdict; every transaction of it gets a fraud label.
    Resolve {
        id: String,
        /// fraud or genuine.
        #[arg(long, value_parser = ["fraud", "genuine"])]
        label: String,
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        by: String,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Compile and publish a ruleset file; on any error the active one stays.
    Publish { file: PathBuf },
    /// Decide a period of history with a ruleset file (and the active model): alert volume,
    /// precision, recall, confusion matrix, per-rule hits.
    Backtest {
        file: PathBuf,
        #[command(flatten)]
        period: risk::Period,
    },
    /// The features rules and models read, with what they mean.
    Features,
    /// Every publication and roll-back of the active ruleset, oldest first.
    History,
    /// Make the ruleset active before the current one active again; a running server picks it
    /// up within a second.
    Rollback,
}

#[derive(Subcommand)]
enum PricingCommand {
    /// Price every user from their CLV and churn risk; store the offers for the API.
    Compute(pricing::ComputeArgs),
}

#[derive(Subcommand)]
enum ChurnCommand {
    /// Train on past snapshots whose labels are known by --as-of; register and activate it.
    Train(churn::TrainArgs),
    /// The risk list as of a date: every active user's churn probability with reasons.
    Score(churn::ScoreArgs),
    /// AUC, lift, precision@k, Brier score and calibration on a date whose horizon has passed.
    Eval(churn::EvalArgs),
    /// The features and what they mean.
    Features,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Every registered version, with the active one per purpose.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Make a registered version the active one.
    Promote {
        /// e.g. churn
        purpose: String,
        version: u32,
    },
    /// Return to the version that was active before the current one.
    Rollback { purpose: String },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Train on a labelled CSV and write the model file.
    Train(model::TrainArgs),
    /// Score a CSV with a model: one score per row, in input order.
    Predict(model::PredictArgs),
    /// Import a LightGBM text or XGBoost JSON model, check it on a labelled CSV, and store it.
    Import(model::ImportArgs),
    /// AUC, average precision, log loss, Brier score and lift on a labelled CSV.
    Eval {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Subcommand)]
enum LtvCommand {
    /// Fit a model by maximum likelihood: parameters, standard errors, log-likelihood.
    Fit {
        #[arg(long, value_enum)]
        model: ltv::ModelArg,
        #[command(flatten)]
        source: ltv::Source,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Fit, then write P(alive), expected purchases, expected spend and CLV per customer.
    Predict {
        #[command(flatten)]
        source: ltv::Source,
        #[command(flatten)]
        args: ltv::PredictArgs,
    },
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env(config::LOG_FILTER_ENV).unwrap_or_else(|_| "info,tower_http=warn".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Opens the store for writing. When another process holds the directory, the error says who
/// and `hint(url)` says what to do instead.
pub(crate) fn open_store(config: &Config, hint: impl Fn(&str) -> String) -> Result<EventStore> {
    let started = std::time::Instant::now();
    let opener = finpulse_server::protection::Opener::Owner;
    finpulse_server::protection::open(&config.data_dir, config.access_root(), &config.protect, opener).map_err(|e| match e {
        finpulse_server::protection::ProtectionError::Store(finpulse_protect::ProtectError::Locked { .. }) => {
            anyhow::anyhow!("{e}\n{}", hint("the server's address"))
        }
        e => anyhow::Error::from(e).context(format!("opening the key store of {}", config.data_dir.display())),
    })?;
    match EventStore::open(&config.data_dir, config.store.options()) {
        Ok(store) => {
            tracing::info!(log_records = store.recovery().records, secs = started.elapsed().as_secs_f64(), "data directory opened");
            Ok(store)
        }
        Err(e) => {
            if let StoreError::Locked { owner, .. } = &e {
                let url = owner.split_whitespace().find(|w| w.starts_with("http://")).unwrap_or("its address");
                bail!("{e}\n{}", hint(url));
            }
            Err(e).with_context(|| format!("opening data directory {}", config.data_dir.display()))
        }
    }
}

pub(crate) async fn serve_store(store: EventStore, listen: SocketAddr, config: &Config) -> Result<()> {
    let dir = store.dir().to_path_buf();
    let server = finpulse_server::Server::start(
        store_with_owner(store, listen)?,
        config.store.options(),
        listen,
        config.limits,
        config.access.clone(),
    )
    .await
    .with_context(|| format!("listening on {listen}"))?;
    let addr = server.addr;
    tracing::info!(%addr, data_dir = %dir.display(), "serving");
    eprintln!("finpulse is serving {} on http://{addr} (Ctrl-C to stop)", dir.display());
    tokio::select! {
        r = tokio::signal::ctrl_c() => { r.context("waiting for Ctrl-C")?; }
        _ = terminate() => {}
    }
    eprintln!("stopping: finishing requests in flight");
    server.stop().await.context("stopping the server")?;
    Ok(())
}

fn store_with_owner(store: EventStore, listen: SocketAddr) -> Result<EventStore> {
    store.set_owner_note(&format!("finpulse serve, pid {}, http://{listen}", std::process::id()))?;
    Ok(store)
}

async fn terminate() {
    #[cfg(unix)]
    {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await
}

/// Output piped into `head` or a closed pager ends the process quietly, as other command-line
/// tools do, instead of panicking on the next print.
fn exit_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The change a command makes, as the audit log names it (with what it changes); `None` for
/// reads and for commands that audit themselves (keys, users, SQL read in clear).
fn change_of(command: &Command) -> Option<(&'static str, Option<String>)> {
    use insight::{GoalsCommand as G, SegmentCommand as S};
    let named = |action, target: &str| Some((action, Some(target.to_string())));
    match command {
        Command::Rules(RulesCommand::Publish { file }) => named("rules.publish", &file.display().to_string()),
        Command::Rules(RulesCommand::Rollback) => Some(("rules.rollback", None)),
        Command::Models(ModelsCommand::Promote { purpose, version }) => named("models.promote", &format!("{purpose} v{version}")),
        Command::Models(ModelsCommand::Rollback { purpose }) => named("models.rollback", purpose),
        Command::Churn(ChurnCommand::Train(_)) => named("models.register", "churn"),
        Command::Fraud(FraudCommand::Train(_)) => named("models.register", "fraud"),
        Command::Model(ModelCommand::Import(_)) => Some(("models.import", None)),
        Command::Cases(CasesCommand::Assign { id, .. }) => named("cases.assign", id),
        Command::Cases(CasesCommand::Comment { id, .. }) => named("cases.comment", id),
        Command::Cases(CasesCommand::Resolve { id, .. }) => named("cases.resolve", id),
        Command::Segment(S::Save { name, .. }) => named("segments.save", name),
        Command::Segment(S::Remove { name }) => named("segments.remove", name),
        Command::Segment(S::Rollback { name }) => named("segments.rollback", name),
        Command::Goals(G::Set { name, .. }) => named("goals.set", name),
        Command::Goals(G::Remove { name }) => named("goals.remove", name),
        Command::Goals(G::Rollback { name }) => named("goals.rollback", name),
        Command::Experiment(experiment::ExperimentCommand::Define { file }) => named("experiments.define", &file.display().to_string()),
        Command::Experiment(experiment::ExperimentCommand::Start { key }) => named("experiments.start", key),
        Command::Experiment(experiment::ExperimentCommand::Stop { key }) => named("experiments.stop", key),
        Command::Pricing(PricingCommand::Compute(_)) => Some(("pricing.compute", None)),
        Command::Compact {} => Some(("compact", None)),
        Command::Subject(subject::SubjectCommand::Hold { user, .. }) => named("subject.hold", user),
        Command::Subject(subject::SubjectCommand::Release { user }) => named("subject.release", user),
        _ => None,
    }
}

fn main() -> Result<()> {
    exit_quietly_on_closed_pipe();
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref(), std::env::vars())?;
    init_logging(&config);
    // Every query this process runs (SQL, insights, churn features, LTV input) keeps to it.
    finpulse_query::set_query_memory_bytes_max(config.limits.query_memory_bytes_max);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    if cli.tenant.is_some() && matches!(cli.command, Command::Serve { .. } | Command::Demo { .. }) {
        bail!("--tenant does not apply to serve or demo: a server serves every tenant, each principal its own");
    }
    config.choose_tenant(cli.tenant)?;
    open_keys_to_read(&config);
    let change = change_of(&cli.command);
    // A change's intent is in the audit log before it is made (where there is a data directory
    // to change): when that cannot be written, nothing is done.
    if let Some((action, target)) = &change
        && config.access_root().exists()
    {
        access::record_started(&config, action, target.clone()).context("nothing was changed")?;
    }
    let result = run(cli.command, &mut config, &runtime);
    // A change is written to the audit log whether it worked or not; the log's own failure is
    // reported after the command's.
    // A data directory that does not exist was not changed (the command failed before making
    // it): there is no trail to write, and none is made for it.
    if let Some((action, target)) = change
        && config.access_root().exists()
    {
        access::record(&config, action, target, None, &result)?;
    }
    result
}

/// Opens the data directory's key store for reading, so commands that read sealed fields see
/// them opened; a command that owns the directory opens it again as its owner
/// ([`open_store`]). A failure is not an error here: commands that need no data still run, and
/// those that read sealed fields say what is missing.
fn open_keys_to_read(config: &Config) {
    let opener = finpulse_server::protection::Opener::Reader;
    if let Err(e) = finpulse_server::protection::open(&config.data_dir, config.access_root(), &config.protect, opener) {
        tracing::debug!(error = %e, "the key store was not opened for reading");
    }
}

fn run(command: Command, config: &mut Config, runtime: &tokio::runtime::Runtime) -> Result<()> {
    match command {
        Command::Demo { users, days, seed, start, listen, no_serve, experiment } => {
            if let Some(l) = listen {
                config.listen = l;
            }
            let start_us =
                finpulse_core::time::parse_date_us(&start).with_context(|| format!("--start '{start}' is not a YYYY-MM-DD date"))?;
            let sim = finpulse_sim::SimConfig { users, days, seed, start_day: finpulse_core::time::day_of_us(start_us) };
            let store = demo::run(config, sim, experiment)?;
            if no_serve {
                return Ok(());
            }
            let credentials = access::demo_credentials(config)?;
            demo::print_tour(config.listen, &config.data_dir, &sim, &credentials);
            runtime.block_on(serve_store(store, config.listen, config))
        }
        Command::Serve { listen } => {
            if let Some(l) = listen {
                config.listen = l;
            }
            let store = open_store(config, |url| format!("a server already serves it at {url}"))?;
            runtime.block_on(serve_store(store, config.listen, config))
        }
        Command::Import { files } => import::run(config, &files),
        Command::Sql { format, purpose, query } => runtime.block_on(sql::run(config, &query, purpose.as_deref(), format)),
        Command::Keys(command) => access::keys(config, command),
        Command::Users(command) => access::users(config, command),
        Command::Audit(command) => access::audit(config, command),
        Command::Subject(command) => subject::run(config, command, runtime),
        Command::Lineage(command) => lineage::run(config, command),
        Command::Approvals(command) => access::approvals(config, command),
        Command::Goals(command) => runtime.block_on(insight::goals(config, command)),
        Command::Segment(command) => runtime.block_on(insight::segment(config, command)),
        Command::Experiment(command) => runtime.block_on(experiment::run(config, command)),
        Command::Insight { args } => runtime.block_on(insight::run(config, &args)),
        Command::Schema { format } => sql::schema(config, format),
        Command::Compact {} => {
            let mut store = open_store(config, |url| format!("ask the server instead: curl -X POST {url}/v1/admin/compact"))?;
            let r = store.compact()?;
            println!("compacted {} events into {} Parquet files", r.events, r.files);
            Ok(())
        }
        Command::Ltv(LtvCommand::Fit { model, source, format }) => ltv::fit_command(config, model, &source, format, runtime),
        Command::Ltv(LtvCommand::Predict { source, args }) => ltv::predict_command(config, &source, &args, runtime),
        Command::Model(ModelCommand::Train(args)) => model::train(config, &args),
        Command::Model(ModelCommand::Predict(args)) => model::predict(&args),
        Command::Model(ModelCommand::Import(args)) => model::import(config, &args),
        Command::Model(ModelCommand::Eval { model, data, format }) => model::eval(&model, &data, format),
        Command::Churn(ChurnCommand::Train(args)) => churn::train(config, &args, runtime),
        Command::Churn(ChurnCommand::Score(args)) => churn::score(config, &args, runtime),
        Command::Churn(ChurnCommand::Eval(args)) => churn::eval(config, &args, runtime),
        Command::Churn(ChurnCommand::Features) => {
            churn::features();
            Ok(())
        }
        Command::Pricing(PricingCommand::Compute(args)) => pricing::compute(config, &args, runtime),
        Command::Models(ModelsCommand::List { format }) => churn::models_list(config, format),
        Command::Models(ModelsCommand::Promote { purpose, version }) => churn::models_activate(config, &purpose, Some(version)),
        Command::Models(ModelsCommand::Rollback { purpose }) => churn::models_activate(config, &purpose, None),
        Command::Fraud(FraudCommand::Train(args)) => risk::train(config, &args),
        Command::Fraud(FraudCommand::Score(args)) => risk::score(config, &args),
        Command::Fraud(FraudCommand::Eval(args)) => risk::eval(config, &args),
        Command::Rules(RulesCommand::Publish { file }) => risk::publish(config, &file),
        Command::Rules(RulesCommand::Backtest { file, period }) => risk::backtest(config, &file, &period),
        Command::Rules(RulesCommand::History) => risk::rules_history(config),
        Command::Rules(RulesCommand::Rollback) => risk::rules_rollback(config),
        Command::Rules(RulesCommand::Features) => {
            risk::features();
            Ok(())
        }
        Command::User { id } => risk::user(config, &id),
        Command::Cases(CasesCommand::List { status, assignee, format }) => risk::cases_list(config, status, assignee, format),
        Command::Cases(CasesCommand::Show { id }) => risk::cases_show(config, &id),
        Command::Cases(CasesCommand::Assign { id, assignee, by }) => risk::cases_change(config, &id, CaseAction::Assign { assignee }, &by),
        Command::Cases(CasesCommand::Comment { id, text, by }) => risk::cases_change(config, &id, CaseAction::Comment { text }, &by),
        Command::Cases(CasesCommand::Resolve { id, label, note, by }) => {
            risk::cases_change(config, &id, CaseAction::Resolve { fraud: label == "fraud", note }, &by)
        }
    }
}
