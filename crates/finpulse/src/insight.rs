//! `finpulse insight KIND`: the lifecycle insights from the command line. Flags become the same
//! options the API's requests do, so both check parameters the same way. Also `finpulse segment`.

use crate::Format;
use crate::config::Config;
use anyhow::{Context, Result};
use finpulse_growth::segments::{self, SegmentBook, SegmentDef};
use finpulse_growth::{InsightKind, InsightOptions, Table};
use finpulse_log::EventStore;
use finpulse_server::wire::TableBody;

/// Options of every insight kind; each kind accepts its own and rejects the others by name.
#[derive(clap::Args, Debug)]
pub struct InsightArgs {
    /// acquisition, activation, funnel, retention, lifecycle or trends.
    pub kind: String,
    /// First day, YYYY-MM-DD (UTC), inclusive.
    #[arg(long)]
    pub from: Option<String>,
    /// Last day, YYYY-MM-DD (UTC), inclusive.
    #[arg(long)]
    pub to: Option<String>,
    /// A filter `PROPERTY OP VALUE` (repeatable): `user.channel=douyin`, `amount_fen>=100000`.
    #[arg(long = "filter")]
    pub filters: Vec<String>,
    /// Break results down by a property (`user.channel`, `user.campaign`, an event field).
    #[arg(long)]
    pub breakdown: Option<String>,
    /// funnel: steps in order, comma-separated, each TYPE or TYPE:FIELD=VALUE.
    #[arg(long, value_delimiter = ',')]
    pub steps: Vec<String>,
    /// funnel, activation, acquisition: window (3600, 30m, 24h, 7d).
    #[arg(long)]
    pub window: Option<String>,
    /// funnel: strict_order, strict_deduplication, strict_increase, strict_once, allow_reentry (comma-separated).
    #[arg(long)]
    pub mode: Option<String>,
    /// funnel: list the users who reached the step before this one but not this one.
    #[arg(long)]
    pub dropped_at: Option<usize>,
    /// Most users listed.
    #[arg(long)]
    pub limit: Option<usize>,
    /// retention: what puts a user in a cohort (default user_signup).
    #[arg(long)]
    pub cohort_event: Option<String>,
    /// retention: what counts as coming back (default any).
    #[arg(long)]
    pub return_event: Option<String>,
    /// retention, acquisition: day, week, month or quarter.
    #[arg(long)]
    pub period: Option<String>,
    /// retention: periods to show.
    #[arg(long)]
    pub periods: Option<usize>,
    /// retention: on-or-after retention.
    #[arg(long)]
    pub unbounded: bool,
    /// retention: counts instead of shares.
    #[arg(long)]
    pub counts: bool,
    /// retention: with --period-index, list the users behind a cell (the cohort's first day).
    #[arg(long)]
    pub cohort: Option<String>,
    /// retention: with --cohort, the period after the cohort's.
    #[arg(long)]
    pub period_index: Option<usize>,
    /// trends, lifecycle: the event (TYPE, TYPE:FIELD=VALUE or any).
    #[arg(long)]
    pub event: Option<String>,
    /// trends: count, users, sum:FIELD or avg:FIELD.
    #[arg(long)]
    pub measure: Option<String>,
    /// trends, lifecycle: day, week, month (trends also quarter).
    #[arg(long)]
    pub interval: Option<String>,
    /// lifecycle: periods without activity after which a user has churned.
    #[arg(long)]
    pub churn_after: Option<u32>,
    /// acquisition: how long after signup LTV counts, in whole days (default 365d).
    #[arg(long)]
    pub ltv_horizon: Option<String>,
    /// activation, acquisition: new-user tasks, comma-separated, each TYPE or TYPE:FIELD=VALUE.
    #[arg(long, value_delimiter = ',')]
    pub tasks: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

impl InsightArgs {
    /// The options as the insights engine takes them; it refuses, by name, those the kind does
    /// not take, as the API does.
    pub fn options(&self) -> InsightOptions {
        InsightOptions {
            from: self.from.clone(),
            to: self.to.clone(),
            filters: self.filters.clone(),
            breakdown: self.breakdown.clone(),
            steps: self.steps.clone(),
            window: self.window.clone(),
            mode: self.mode.clone(),
            dropped_at: self.dropped_at,
            limit: self.limit,
            cohort_event: self.cohort_event.clone(),
            return_event: self.return_event.clone(),
            period: self.period.clone(),
            periods: self.periods,
            unbounded: self.unbounded.then_some(true),
            counts: self.counts.then_some(true),
            cohort: self.cohort.clone(),
            period_index: self.period_index,
            event: self.event.clone(),
            measure: self.measure.clone(),
            interval: self.interval.clone(),
            churn_after: self.churn_after,
            tasks: self.tasks.clone(),
            ltv_horizon: self.ltv_horizon.clone(),
        }
    }
}

/// Runs an insight over the data directory (read-only, beside a running server).
pub async fn run(config: &Config, args: &InsightArgs) -> Result<()> {
    let view = EventStore::read_view(&config.data_dir).with_context(|| format!("reading data directory {}", config.data_dir.display()))?;
    let book = SegmentBook::load(&config.data_dir)?;
    let kind: InsightKind = args.kind.parse()?;
    let insight = args.options().into_insight(kind).with_context(|| format!("insight {kind}"))?;
    let table = finpulse_growth::run(&view, &book, &insight).await.with_context(|| format!("insight {kind}"))?;
    print_table(&table, args.format)
}

/// Prints an insight's table as asked; JSON is what the API answers.
fn print_table(table: &Table, format: Format) -> Result<()> {
    match format {
        Format::Table => print!("{}", table.to_text()),
        Format::Csv => {
            print!("{}", table.to_csv());
            // CSV has no place for notes: they go beside it, where a terminal still shows them.
            for n in &table.notes {
                eprintln!("note: {n}");
            }
        }
        Format::Json => println!("{}", serde_json::to_string_pretty(&TableBody::from(table))?),
    }
    Ok(())
}

/// Prints changes of versioned definitions, oldest first.
fn print_history(history: &[finpulse_core::versions::Activation]) {
    if history.is_empty() {
        println!("no changes");
    }
    for a in history {
        let when = finpulse_core::time::format_us(i64::try_from(a.at_unix_secs).unwrap_or(0) * 1_000_000);
        println!("{}  v{}  {:<8}  by {} at {}", a.name, a.version, a.action, a.by, when);
    }
}

/// `finpulse segment …`.
#[derive(clap::Subcommand, Debug)]
pub enum SegmentCommand {
    /// Save (or replace) a segment; every rule must hold.
    Save {
        /// Letters, digits, '_' or '-'.
        name: String,
        /// `did EVENT [>= N] [in Nd]`, `not EVENT [in Nd]` or `user.FIELD OP VALUE` (repeatable).
        #[arg(long = "rule", required = true)]
        rules: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Saved segments with their last materialisation.
    List {},
    /// A segment's members, evaluated now (as of the end of the data, or --as-of DATE).
    Members {
        name: String,
        /// YYYY-MM-DD (UTC): membership at the start of that day.
        #[arg(long)]
        as_of: Option<String>,
        /// Only say whether this user is a member.
        #[arg(long)]
        user: Option<String>,
        /// Write the members as CSV here instead of printing them.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Evaluate every saved segment and write its members (what a server does on a schedule).
    Materialise {},
    /// Remove a segment; its versions stay and `rollback` brings it back.
    Remove { name: String },
    /// Return a segment to its definition before the current one (or bring back a removed one).
    Rollback { name: String },
    /// Every save, removal and roll-back of the segments, oldest first.
    History {},
}

/// Runs a segment command.
pub async fn segment(config: &Config, command: SegmentCommand) -> Result<()> {
    let view = EventStore::read_view(&config.data_dir).with_context(|| format!("reading data directory {}", config.data_dir.display()))?;
    let mut book = SegmentBook::load(&config.data_dir)?;
    match command {
        SegmentCommand::Save { name, rules, description, .. } => {
            let segment = book.save(SegmentDef { name, description, rules }, &view.registry, &crate::churn::who())?;
            println!("saved segment {} ({} rules)", segment.def.name, segment.def.rules.len());
        }
        SegmentCommand::List { .. } => {
            for def in book.defs().values() {
                let state =
                    book.state(&def.name).map_or("not materialised".to_string(), |s| format!("{} members as of {}", s.members, s.as_of));
                println!(
                    "{}: {} — {}{}",
                    def.name,
                    def.rules.join(" and "),
                    state,
                    if def.description.is_empty() { String::new() } else { format!(" ({})", def.description) }
                );
            }
        }
        SegmentCommand::Members { name, as_of, user, out, .. } => {
            let segment = book.get(&name, &view.registry)?;
            let ctx = finpulse_growth::session(&view).await?;
            let as_of_us = match as_of {
                Some(d) => finpulse_core::time::parse_date_us(&d).with_context(|| format!("--as-of: '{d}' is not a YYYY-MM-DD date"))?,
                None => segments::default_as_of_us(&ctx).await?,
            };
            let members = segments::members(&ctx, &segment, as_of_us).await?;
            if let Some(user) = user {
                println!("{user} is {}a member of {name}", if members.binary_search(&user).is_ok() { "" } else { "not " });
            } else if let Some(out) = out {
                let mut csv = String::from("user_id\n");
                members.iter().for_each(|m| csv.push_str(&format!("{m}\n")));
                std::fs::write(&out, csv).with_context(|| format!("writing {}", out.display()))?;
                eprintln!("{} members written to {}", members.len(), out.display());
            } else {
                members.iter().for_each(|m| println!("{m}"));
                eprintln!("{} members", members.len());
            }
        }
        SegmentCommand::Materialise { .. } => {
            for (name, state) in segments::materialise_all(&view, &book).await? {
                println!("{name}: {} members as of {}", state.members, state.as_of);
            }
        }
        SegmentCommand::Remove { name } => {
            if !book.remove(&name, &crate::churn::who())? {
                anyhow::bail!("no segment '{name}'");
            }
            println!("segment {name} removed; `finpulse segment rollback {name}` brings it back");
        }
        SegmentCommand::Rollback { name } => {
            let a = book.rollback(&name, &crate::churn::who())?;
            println!("segment {name} is at version {} again", a.version);
        }
        SegmentCommand::History { .. } => print_history(&book.history()?),
    }
    Ok(())
}

/// `finpulse goals …`.
#[derive(clap::Subcommand, Debug)]
pub enum GoalsCommand {
    /// Every goal with its current value, projection and status.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Add or replace a goal.
    Set {
        name: String,
        /// retention_90d, retention_30d, mau, new_users_7d (growth); aum_fen, revenue_roi (value); risk_incident_rate (compliance).
        #[arg(long)]
        metric: String,
        /// Shares as fractions: 0.85 for 85%.
        #[arg(long, allow_negative_numbers = true)]
        target: f64,
        /// YYYY-MM-DD.
        #[arg(long)]
        deadline: String,
    },
    /// Remove a goal; its versions stay and `rollback` brings it back.
    Remove { name: String },
    /// Return a goal to its version before the current one (or bring back a removed one).
    Rollback { name: String },
    /// Every change of the goals, oldest first.
    History {},
}

/// Runs a goals command.
pub async fn goals(config: &Config, command: GoalsCommand) -> Result<()> {
    let mut book = finpulse_growth::goals::GoalBook::load(&config.data_dir)?;
    match command {
        GoalsCommand::Set { name, metric, target, deadline, .. } => {
            book.set(finpulse_growth::goals::Goal { name: name.clone(), metric, target, deadline }, &crate::churn::who())?;
            println!("goal {name} saved");
        }
        GoalsCommand::Remove { name, .. } => {
            if !book.remove(&name, &crate::churn::who())? {
                anyhow::bail!("no goal '{name}'");
            }
            println!("goal {name} removed; `finpulse goals rollback {name}` brings it back");
        }
        GoalsCommand::Rollback { name } => {
            let a = book.rollback(&name, &crate::churn::who())?;
            println!("goal {name} is at version {} again", a.version);
        }
        GoalsCommand::History { .. } => print_history(&book.history()?),
        GoalsCommand::List { format, .. } => {
            let view =
                EventStore::read_view(&config.data_dir).with_context(|| format!("reading data directory {}", config.data_dir.display()))?;
            let ctx = finpulse_growth::session(&view).await?;
            let table = finpulse_growth::goals::evaluate(&ctx, &view.registry, &book).await?;
            print_table(&table, format)?;
        }
    }
    Ok(())
}
