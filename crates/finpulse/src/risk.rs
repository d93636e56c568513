//! `finpulse fraud`: train, score and evaluate fraud models by the handbook's protocol;
//! `finpulse rules`: publish and backtest rulesets, list the features; `finpulse user`: a
//! user's live profile.

use crate::Format;
use crate::churn::who;
use crate::config::Config;
use anyhow::{Context, Result, bail};
use clap::Args;
use finpulse_access::approvals::{ApprovalKind, Change};
use finpulse_models::gbdt::GbdtParams;
use finpulse_models::registry::{ModelRegistry, Registration};
use finpulse_risk::engine::FraudModel;
use finpulse_risk::fraud::{self, CARD_PRECISION_K};
use finpulse_risk::ruleset::{Ruleset, RulesetStore};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A period of history.
#[derive(Args, Debug)]
pub struct Period {
    /// First day (YYYY-MM-DD, UTC midnight), included.
    #[arg(long)]
    from: String,
    /// The day after the last (YYYY-MM-DD, UTC midnight): excluded, so `--from 2026-03-01 --to
    /// 2026-03-08` covers 7 days; the output says which days were covered.
    #[arg(long)]
    to: String,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// The days a period covered, said in words: `--to` is excluded, and a user who means it as the
/// last day should see at once that it was not.
#[derive(serde::Serialize)]
struct Covered {
    /// The first day.
    first_day: String,
    /// The last day covered (the day before `--to`).
    last_day: String,
    /// Days covered.
    days: i64,
}

impl Covered {
    fn words(&self) -> String {
        let plural = if self.days == 1 { "" } else { "s" };
        format!("{} to {} inclusive, {} day{plural}", self.first_day, self.last_day, self.days)
    }
}

impl Covered {
    /// The days from `from` up to, not including, `to` (UTC microseconds, as `resolve` gives).
    fn between(from: i64, to: i64) -> Self {
        let (first, last) = (finpulse_core::time::day_of_us(from), finpulse_core::time::day_of_us(to - 1));
        Self { first_day: finpulse_core::time::day_label(first), last_day: finpulse_core::time::day_label(last), days: last - first + 1 }
    }
}

impl Period {
    fn resolve(&self) -> Result<(i64, i64)> {
        let day = |flag: &str, text: &str| {
            finpulse_core::time::parse_date_us(text).with_context(|| format!("{flag} '{text}' is not a YYYY-MM-DD date"))
        };
        let (from, to) = (day("--from", &self.from)?, day("--to", &self.to)?);
        if to <= from {
            bail!("--to ({}) must be after --from ({})", self.to, self.from);
        }
        Ok((from, to))
    }
}

/// `finpulse fraud train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    period: Period,
    /// Labels that arrive more than this many days after --to are unknown at training time.
    #[arg(long, default_value_t = 7)]
    delay_days: u32,
    /// Register without making it the active fraud model.
    #[arg(long)]
    no_promote: bool,
    /// Choose the GBDT's size, shrinkage and rounds by prequential validation on the weeks
    /// before the training period (the handbook's model selection): each setting is trained on
    /// earlier periods and judged by card precision@100 on the week after their delay.
    #[arg(long, conflicts_with_all = ["rounds", "learning_rate", "leaves"])]
    tune: bool,
    /// With --tune: how many validation weeks, going back from --to.
    #[arg(long, default_value_t = fraud::TUNE_FOLDS_DEFAULT, requires = "tune")]
    tune_folds: usize,
    /// GBDT: boosting rounds.
    #[arg(long, default_value_t = fraud::training_params().rounds_max)]
    rounds: usize,
    /// GBDT: shrinkage per tree.
    #[arg(long, default_value_t = fraud::training_params().learning_rate)]
    learning_rate: f64,
    /// GBDT: most leaves per tree.
    #[arg(long, default_value_t = fraud::training_params().leaves_max)]
    leaves: usize,
    /// GBDT: L2 penalty on leaf values.
    #[arg(long, default_value_t = fraud::training_params().l2)]
    l2: f64,
    /// GBDT: stop after this many rounds without a better loss on a held-out tenth of the
    /// payments (0: train every round on all of them).
    #[arg(long, default_value_t = fraud::training_params().early_stopping_rounds)]
    early_stopping: usize,
}

impl TrainArgs {
    fn params(&self) -> GbdtParams {
        GbdtParams {
            rounds_max: self.rounds,
            learning_rate: self.learning_rate,
            leaves_max: self.leaves,
            l2: self.l2,
            early_stopping_rounds: self.early_stopping,
            ..fraud::training_params()
        }
    }
}

/// The tuning table: each setting's card precision@100 per validation week and on average.
fn print_tuning(t: &fraud::TuneReport) {
    let weeks: Vec<String> = t.folds.iter().map(|f| format!("{} to {}", f.valid_from, f.valid_to)).collect();
    println!("tuning on {} validation week(s) before the training period: {}", t.folds.len(), weeks.join(", "));
    println!("{:>6} {:>6} {:>6} {:>10} {:>8} {:>8}  per week", "leaves", "lr", "rounds", "CP@100", "AP", "AUC");
    for (i, c) in t.candidates.iter().enumerate() {
        let per_week: Vec<String> = c.card_precision.iter().map(|p| format!("{p:.3}")).collect();
        println!(
            "{:>6} {:>6} {:>6} {:>10.4} {:>8.4} {:>8.4}  {}{}",
            c.params.leaves_max,
            c.params.learning_rate,
            c.params.rounds_max,
            c.card_precision_mean,
            c.average_precision_mean,
            c.auc_mean,
            per_week.join(" "),
            if i == t.chosen { "  <- chosen" } else { "" }
        );
    }
}

/// Which frauds make a card known compromised in an evaluation.
#[derive(Args, Debug)]
pub struct KnownSince {
    /// A card counts as known compromised (and its payments are left out of the evaluation) once
    /// a fraud label arrived on one of its payments made on or after this day (YYYY-MM-DD), or on
    /// any payment (`all`). Default: the first day the model was trained on, the handbook's
    /// protocol.
    #[arg(long, value_name = "DAY|all")]
    known_since: Option<String>,
}

impl KnownSince {
    /// The cut-off in microseconds (`i64::MIN` for every fraud).
    fn resolve(&self, config: &Config, model: &FraudModel) -> Result<i64> {
        match self.known_since.as_deref() {
            Some("all") => Ok(i64::MIN),
            Some(day) => finpulse_core::time::parse_date_us(day)
                .with_context(|| format!("--known-since '{day}' is neither a YYYY-MM-DD date nor `all`")),
            None => {
                let trained_from = match model.version {
                    Some(v) => fraud::training_start_us(&config.data_dir, v)?,
                    None => None,
                };
                Ok(trained_from.unwrap_or(i64::MIN))
            }
        }
    }
}

/// `finpulse fraud score`.
#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    period: Period,
    #[command(flatten)]
    known_since: KnownSince,
    /// Where to write event_id,user_id,ts,score,label,known_compromised (the card had a fraud
    /// label before the payment's day: the evaluation leaves it out).
    #[arg(long)]
    out: PathBuf,
    /// A registered version instead of the active one.
    #[arg(long)]
    version: Option<u32>,
    /// Also write every decision feature, as the model saw it (a training set to take elsewhere).
    #[arg(long)]
    with_features: bool,
}

/// `finpulse fraud eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    period: Period,
    #[command(flatten)]
    known_since: KnownSince,
    /// A registered version instead of the active one.
    #[arg(long)]
    version: Option<u32>,
}

/// The active fraud model (or a version), bound to the decision features.
pub(crate) fn fraud_model(data_dir: &Path, version: Option<u32>) -> Result<Option<FraudModel>> {
    Ok(fraud::registered_model(data_dir, version)?)
}

fn opt(x: Option<f64>) -> String {
    x.map_or("n/a".into(), |v| format!("{v:.4}"))
}

/// Trains on a period with the labels known after the delay; registers (and activates) it.
pub fn train(config: &Config, args: &TrainArgs) -> Result<()> {
    let (from, to) = args.period.resolve()?;
    let covered = Covered::between(from, to);
    let started = std::time::Instant::now();
    let mut params = args.params();
    let tuning = if args.tune {
        let t = fraud::tune(&config.data_dir, from, to, args.delay_days, args.tune_folds, &fraud::tuning_grid())?;
        params = t.candidates[t.chosen].params.clone();
        if !matches!(args.period.format, Format::Json) {
            print_tuning(&t);
        }
        Some(t)
    } else {
        None
    };
    let (model, report) = fraud::train(&config.data_dir, from, to, args.delay_days, &params)?;
    let secs = started.elapsed().as_secs_f64();
    let registry = ModelRegistry::in_data_dir(&config.data_dir)?;
    let training = serde_json::json!({
        "from": args.period.from, "to": args.period.to, "delay_days": args.delay_days,
        "payments": report.payments, "frauds_known": report.frauds_known,
        "rounds": params.rounds_max, "learning_rate": params.learning_rate, "leaves": params.leaves_max, "l2": params.l2,
        "tuned": args.tune,
    });
    let metrics = serde_json::json!({ "valid_auc": report.valid_auc, "train": model.train_evaluation });
    let registration = Registration { purpose: fraud::PURPOSE.into(), by: who(), training, metrics, activate: !args.no_promote };
    let (entry, active) = crate::access::register_model(config, &registry, &model, registration)?;
    match args.period.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "version": entry.version, "active": active, "seconds": secs, "covered": covered, "report": report, "tuning": tuning })
            )?
        ),
        Format::Table | Format::Csv => {
            println!("fraud model v{} trained on {} payments, {}, in {secs:.1} s", entry.version, report.payments, covered.words());
            println!(
                "frauds labelled by {} days after: {} ({} more arrived later and were trained on as genuine)",
                args.delay_days, report.frauds_known, report.frauds_unknown_at_training
            );
            match report.valid_auc {
                Some(auc) => println!("validation AUC {auc:.4} after {} rounds", report.rounds),
                None => println!("{} rounds on every payment (no early-stopping holdout)", report.rounds),
            }
            if active {
                println!("active fraud model: v{}", entry.version);
            } else if args.no_promote {
                println!("registered, not active: `finpulse models promote fraud {}` makes it so", entry.version);
            }
        }
    }
    Ok(())
}

fn required_model(config: &Config, version: Option<u32>) -> Result<FraudModel> {
    fraud_model(&config.data_dir, version)?.context("no active fraud model: run `finpulse fraud train` first")
}

/// Scores every payment of a period to a CSV.
pub fn score(config: &Config, args: &ScoreArgs) -> Result<()> {
    let (from, to) = args.period.resolve()?;
    let covered = Covered::between(from, to);
    let model = required_model(config, args.version)?;
    let data = fraud::payments(&config.data_dir, from, to)?;
    let scored = fraud::score(&data, &model, args.known_since.resolve(config, &model)?);
    let file = std::fs::File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let features: &[(&str, Vec<f64>)] = if args.with_features { &data.columns } else { &[] };
    write!(out, "event_id,user_id,ts,score,label,known_compromised")?;
    for (name, _) in features {
        write!(out, ",{name}")?;
    }
    writeln!(out)?;
    for (i, s) in scored.iter().enumerate() {
        let ts = finpulse_core::time::format_us(s.ts_us);
        write!(out, "{},{},{ts},{:.6},{},{}", s.event_id, s.user_id, s.score, u8::from(s.label), u8::from(s.known_compromised))?;
        for (_, col) in features {
            if col[i].is_nan() { write!(out, ",")? } else { write!(out, ",{}", col[i])? }
        }
        writeln!(out)?;
    }
    out.flush()?;
    eprintln!("wrote {} payments, {}, to {} (model v{})", scored.len(), covered.words(), args.out.display(), model.version.unwrap_or(0));
    Ok(())
}

/// AUC, average precision and card precision@100 per day over a period.
pub fn eval(config: &Config, args: &EvalArgs) -> Result<()> {
    let (from, to) = args.period.resolve()?;
    let covered = Covered::between(from, to);
    let model = required_model(config, args.version)?;
    let since = args.known_since.resolve(config, &model)?;
    let since_label =
        if since == i64::MIN { "all".to_string() } else { finpulse_core::time::day_label(finpulse_core::time::day_of_us(since)) };
    let scored = fraud::score(&fraud::payments(&config.data_dir, from, to)?, &model, since);
    let e = fraud::evaluate(&scored, CARD_PRECISION_K);
    match args.period.format {
        Format::Json => {
            let answer =
                serde_json::json!({ "model_version": model.version, "covered": covered, "known_since": since_label, "evaluation": e });
            println!("{}", serde_json::to_string_pretty(&answer)?)
        }
        Format::Csv => {
            eprintln!("{}", covered.words());
            println!("day,payments,compromised_cards,card_precision_at_{}", e.k);
            for d in &e.days {
                println!("{},{},{},{:.4}", d.day, d.payments, d.compromised_cards, d.card_precision);
            }
        }
        Format::Table => {
            println!(
                "fraud model v{} on {} payments, {} ({} frauds; {} payments of cards already known compromised removed, by frauds since {since_label})",
                model.version.unwrap_or(0),
                e.payments,
                covered.words(),
                e.frauds,
                e.removed_known_compromised
            );
            println!(
                "AUC ROC {}   average precision {}   card precision@{} {:.4}",
                opt(e.auc),
                opt(e.average_precision),
                e.k,
                e.card_precision_at_k
            );
            println!("{:<12} {:>9} {:>18} {:>8}", "day", "payments", "compromised cards", "CP@k");
            for d in &e.days {
                println!("{:<12} {:>9} {:>18} {:>8.3}", d.day, d.payments, d.compromised_cards, d.card_precision);
            }
        }
    }
    Ok(())
}

fn read_ruleset(file: &Path) -> Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
}

/// Publishes a ruleset: compiled first; a failure leaves the active one in place.
pub fn publish(config: &Config, file: &Path) -> Result<()> {
    let src = read_ruleset(file)?;
    let store = RulesetStore::in_data_dir(&config.data_dir);
    if config.access.needs_approval(ApprovalKind::Rules) {
        let r = store.propose(&src, &file.display().to_string(), &who())?;
        println!("stored ruleset {:?} as v{} ({} rules), not active", r.name, r.version, r.rules.len());
        return crate::access::request_approval(config, ApprovalKind::Rules, RulesetStore::slot(), r.version, Change::Activate);
    }
    let r = store.publish(&src, &file.display().to_string(), &who()).map_err(|e| {
        let active = store.active().ok().flatten().map_or("none".to_string(), |r| format!("v{}", r.version));
        anyhow::anyhow!("{e}\nnot published; the active ruleset is still {active}")
    })?;
    println!(
        "published ruleset {:?} as v{} ({} rules, {} shadow); a running server picks it up within a second",
        r.name,
        r.version,
        r.rules.len(),
        r.rules.iter().filter(|x| x.shadow).count()
    );
    Ok(())
}

/// Prints the active ruleset's history.
pub fn rules_history(config: &Config) -> Result<()> {
    let store = RulesetStore::in_data_dir(&config.data_dir);
    let history = store.history()?;
    if history.is_empty() {
        println!("no ruleset published");
    }
    for p in history {
        println!(
            "v{}  {:<8}  {:<20}  {} rules  by {} at {}",
            p.version,
            p.action,
            p.name,
            p.rules,
            p.by,
            finpulse_core::time::format_us(p.at_secs as i64 * 1_000_000)
        );
    }
    Ok(())
}

/// Makes the ruleset active before the current one active again (after a second person's
/// approval, where publishing needs one).
pub fn rules_rollback(config: &Config) -> Result<()> {
    let store = RulesetStore::in_data_dir(&config.data_dir);
    if config.access.needs_approval(ApprovalKind::Rules) {
        let target = store.rollback_target()?;
        return crate::access::request_approval(config, ApprovalKind::Rules, RulesetStore::slot(), target, Change::RollBack);
    }
    let r = store.rollback(&who())?;
    println!("ruleset {:?} v{} is active again; a running server picks it up within a second", r.name, r.version);
    Ok(())
}

/// Replays a period with a ruleset file and the active model.
pub fn backtest(config: &Config, file: &Path, period: &Period) -> Result<()> {
    let (from, to) = period.resolve()?;
    let covered = Covered::between(from, to);
    let src = read_ruleset(file)?;
    let ruleset = Ruleset::compile(&src, &file.display().to_string())?;
    let model = fraud_model(&config.data_dir, None)?.map(Arc::new);
    let b = finpulse_risk::backtest::backtest(&config.data_dir, ruleset, model, from, to)?;
    match period.format {
        Format::Json => {
            let mut answer = serde_json::to_value(&b)?;
            if let Some(fields) = answer.as_object_mut() {
                fields.insert("covered".into(), serde_json::to_value(&covered)?);
            }
            println!("{}", serde_json::to_string_pretty(&answer)?)
        }
        Format::Csv => {
            eprintln!("{}", covered.words());
            println!("day,transactions,reviews,blocks");
            for d in &b.days {
                println!("{},{},{},{}", d.day, d.transactions, d.reviews, d.blocks);
            }
        }
        Format::Table => {
            let c = &b.confusion;
            println!(
                "ruleset {:?}{} over {} transactions, {} ({} fraud by the labels known now)",
                b.ruleset,
                b.model_version.map_or(String::new(), |v| format!(" with fraud model v{v}")),
                b.transactions,
                covered.words(),
                b.frauds
            );
            println!(
                "alerts (review or block): {}   precision {}   recall {}",
                c.true_positives + c.false_positives,
                opt(b.precision),
                opt(b.recall)
            );
            println!("{:>18} {:>10} {:>10}", "", "fraud", "genuine");
            println!("{:>18} {:>10} {:>10}", "flagged", c.true_positives, c.false_positives);
            println!("{:>18} {:>10} {:>10}", "allowed", c.false_negatives, c.true_negatives);
            println!("{:<32} {:>7} {:>8} {:>11} {:>10}", "rule", "shadow", "hits", "fraud hits", "precision");
            for r in &b.rules {
                println!(
                    "{:<32} {:>7} {:>8} {:>11} {:>10}",
                    r.name,
                    if r.shadow { "yes" } else { "" },
                    r.hits,
                    r.fraud_hits,
                    opt(r.precision)
                );
            }
            println!("{:<12} {:>12} {:>8} {:>8}", "day", "transactions", "reviews", "blocks");
            for d in &b.days {
                println!("{:<12} {:>12} {:>8} {:>8}", d.day, d.transactions, d.reviews, d.blocks);
            }
        }
    }
    Ok(())
}

/// Prints the features rules and models can use.
pub fn features() {
    use finpulse_state::features::{NUMERIC, TEXTUAL};
    println!("{:<28} {:<7} meaning", "feature", "type");
    for d in NUMERIC {
        println!("{:<28} {:<7} {}", d.name, "number", d.doc);
    }
    for d in TEXTUAL {
        println!("{:<28} {:<7} {}", d.name, "text", d.doc);
    }
    println!("(payment., transfer. and withdrawal. are aliases of txn.)");
}

/// A user's live profile, rebuilt from the checkpoint and the log (a running server answers
/// the same from memory at GET /v1/users/{id}).
pub fn user(config: &Config, id: &str) -> Result<()> {
    let (state, _, _) = finpulse_state::rebuild(&config.data_dir, finpulse_state::LIVE_STATE_PARTITIONS)?;
    let view = finpulse_state::view::user_view(&state, id).with_context(|| format!("no user {id:?} in {}", config.data_dir.display()))?;
    println!("{}", serde_json::to_string_pretty(&view)?);
    Ok(())
}

/// Reads every case of a data directory from its log.
fn case_book(data_dir: &Path) -> Result<finpulse_risk::cases::CaseBook> {
    Ok(finpulse_risk::cases::CaseBook::rebuild(data_dir)?)
}

/// Lists cases, newest first.
pub fn cases_list(config: &Config, status: Option<String>, assignee: Option<String>, format: Format) -> Result<()> {
    let status = match status.as_deref() {
        Some(s) => Some(finpulse_risk::cases::CaseStatus::parse(s).with_context(|| format!("--status {s:?}: use open or resolved"))?),
        None => None,
    };
    let book = case_book(&config.data_dir)?;
    let cases: Vec<_> = book.list(status, assignee.as_deref()).collect();
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&cases)?),
        Format::Table | Format::Csv => {
            println!("{:<12} {:<12} {:<9} {:>6} {:<14} opened", "case", "user", "status", "alerts", "assignee");
            for c in cases {
                println!(
                    "{:<12} {:<12} {:<9} {:>6} {:<14} {}",
                    c.case_id,
                    c.user_id,
                    c.status,
                    c.alerts.len(),
                    c.assignee.as_deref().unwrap_or("-"),
                    finpulse_core::time::format_us(c.opened_us)
                );
            }
        }
    }
    Ok(())
}

/// Shows one case with its alerts and history.
pub fn cases_show(config: &Config, id: &str) -> Result<()> {
    let book = case_book(&config.data_dir)?;
    let case = book.case(id).with_context(|| format!("no case {id:?} in {}", config.data_dir.display()))?;
    println!("{}", serde_json::to_string_pretty(case)?);
    Ok(())
}

/// Assigns, comments on or resolves a case (stores the change; a resolution also stores a
/// fraud label per transaction of the case).
pub fn cases_change(config: &Config, id: &str, action: finpulse_risk::cases::CaseAction, by: &str) -> Result<()> {
    let name = match &action {
        finpulse_risk::cases::CaseAction::Assign { .. } => "assign",
        finpulse_risk::cases::CaseAction::Comment { .. } => "comment",
        finpulse_risk::cases::CaseAction::Resolve { .. } => "resolve",
    };
    let store =
        crate::open_store(config, |url| format!("ask the server instead: curl -X POST {url}/v1/cases/{id}/{name} -d '{{\"by\": ...}}'"))?;
    let book = case_book(&config.data_dir)?;
    let events = book.plan(id, &action, by, finpulse_core::time::now_us())?;
    let labels = events.len() - 1;
    let (writer, writer_thread) = finpulse_write::Writer::start(store, finpulse_write::WriterOptions::default(), Vec::new());
    writer.append_blocking(finpulse_write::Batch::in_parts(&writer.preparer(), events, 1, writer.has_consumers())?)?;
    drop(writer);
    writer_thread.join()?;
    println!("case {id}: {name} by {by} stored{}", if labels > 0 { format!(", with {labels} fraud labels") } else { String::new() });
    Ok(())
}
