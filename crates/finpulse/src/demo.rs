//! `finpulse demo`: simulate a fintech app, ingest it, then serve it.

use crate::config::Config;
use crate::open_store;
use anyhow::Result;
use finpulse_log::{AppendStatus, EventStore};
use finpulse_sim::{SimConfig, Simulator};
use finpulse_write::{Batch, Writer, WriterOptions};
use indicatif::{ProgressBar, ProgressStyle};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Instant;

/// Simulated days buffered between the simulator thread and the log.
pub const DEMO_QUEUE_DAYS: usize = 2;

/// Generates and ingests the demo data; returns the open store.
pub fn run(config: &Config, sim: SimConfig, experiment: bool) -> Result<EventStore> {
    ensure_master_key(config)?;
    let store = open_store(config, |url| format!("a server already holds it at {url}: stop it first, or use another --data-dir"))?;
    let registry = store.registry();
    let assigner = if experiment { Some(crate::experiment::start_demo_experiment(config, &registry, &sim)?) } else { None };
    let (writer, writer_thread) = Writer::start(store, WriterOptions::default(), Vec::new());
    eprintln!(
        "simulating {} users over {} days from {} (seed {}) into {}",
        sim.users,
        sim.days,
        finpulse_core::time::day_label(sim.start_day),
        sim.seed,
        config.data_dir.display()
    );
    let started = Instant::now();
    let bar = ProgressBar::new(sim.days as u64);
    bar.set_style(ProgressStyle::with_template("day {pos}/{len} [{bar:30}] {elapsed} {msg}").expect("valid template"));
    let (tx, rx) = mpsc::sync_channel(DEMO_QUEUE_DAYS);
    let preparer = writer.preparer();
    let keep_events = writer.has_consumers();
    let (accepted, duplicates, stats) = std::thread::scope(|s| -> Result<_> {
        // The simulator's thread also prepares each day for the log (encoding, keys, columns),
        // while the writer commits the day before.
        let generator = s.spawn(move || {
            let mut simulator = Simulator::new(sim, &registry);
            let experiment = assigner.as_ref().map(crate::experiment::demo_experiment);
            while let Some(mut day) = simulator.next_day() {
                if let Some(e) = &experiment {
                    e.apply(&registry, &mut day);
                }
                if tx.send(Batch::in_parts(&preparer, day, 1, keep_events)).is_err() {
                    break;
                }
            }
            simulator.stats().clone()
        });
        let (mut accepted, mut duplicates) = (0u64, 0u64);
        for day in rx {
            for s in writer.append_blocking(day?)? {
                match s {
                    AppendStatus::Accepted => accepted += 1,
                    AppendStatus::Duplicate => duplicates += 1,
                }
            }
            bar.inc(1);
            bar.set_message(format!("{} events", accepted + duplicates));
        }
        let stats = generator.join().map_err(|_| anyhow::anyhow!("the simulator panicked"))?;
        Ok((accepted, duplicates, stats))
    })?;
    let compaction = writer.compact_blocking()?;
    drop(writer);
    let store = writer_thread.join()?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "ingested {} events ({accepted} new, {duplicates} already stored) in {secs:.1} s ({:.0} events/s), compacted {} into {} Parquet files",
        stats.events,
        stats.events as f64 / secs.max(1e-9),
        compaction.events,
        compaction.files
    );
    eprintln!(
        "  {} signups, {} card payments ({} fraud, {:.2}%), {} loans, {} users churning within the period",
        stats.signups,
        stats.payments,
        stats.fraud_payments,
        100.0 * stats.fraud_payments as f64 / stats.payments.max(1) as f64,
        stats.loans,
        stats.churners
    );
    Ok(store)
}

/// What to try once the demo serves.
pub fn print_tour(listen: SocketAddr, data_dir: &std::path::Path, sim: &SimConfig, who: &crate::access::DemoCredentials) {
    let url = format!("http://{listen}");
    let password = who.password.as_deref().map_or_else(|| "(made by an earlier demo run; unchanged)".to_string(), str::to_string);
    let key = &who.key;
    let auth = r#"-H "Authorization: Bearer $FINPULSE_KEY""#;
    let dir = data_dir.display();
    // Churn labels need 30 days after the training date, inside the simulated period.
    let day = |d: i64| finpulse_core::time::day_label(sim.start_day + d);
    let (train_as_of, today) = (day(i64::from(sim.days).saturating_sub(30)), day(i64::from(sim.days)));
    // Fraud: train a week, wait the one-week label delay, test the week after (the handbook's split).
    let last = i64::from(sim.days);
    let (fraud_from, fraud_to, test_from, test_to) = (day(last - 28), day(last - 21), day(last - 14), day(last - 7));
    eprintln!(
        r#"
The web console (中文 / English): {url}/
  console user: {user}   password: {password}

Sign in (every request but /healthz and /metrics needs a key or a console session):
  an admin API key, shown once:
  export FINPULSE_KEY={key}

Try it:
  curl {url}/healthz
  curl {auth} {url}/v1/schema
  curl -s -X POST {url}/v1/sql {auth} -H 'content-type: application/json' \
       -d '{{"query": "SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY n DESC"}}'
  curl -s -X POST {url}/v1/sql {auth} -H 'content-type: application/json' \
       -d '{{"query": "SELECT channel, sum(amount_fen)/100 AS spend_yuan FROM marketing_spend GROUP BY channel"}}'
  curl -s -X POST {url}/v1/sql {auth} -H 'X-Purpose: KYC review ticket 1' -H 'content-type: application/json' \
       -d '{{"query": "SELECT user_id, real_name, id_number FROM identity_verified LIMIT 3"}}'    # clear, audited; masked without X-Purpose
  curl -s -X POST {url}/v1/events {auth} -H 'content-type: application/json' \
       -d '[{{"user_id": "u0000001", "ts": "2026-03-31T12:00:00+08:00", "type": "payment", "amount_fen": 1999, "currency": "CNY", "terminal_id": "t00042"}}]'
  curl {url}/metrics
  curl {auth} {url}/v1/audit?limit=5      # who did what; finpulse audit verify --data-dir {dir}
  OpenAPI: curl {auth} {url}/openapi.json

Lifecycle insights (also GET|POST {url}/v1/insights/KIND):
  finpulse insight funnel --data-dir {dir} --steps user_signup,task_completed:task=bind_card,deposit --breakdown user.channel
  finpulse insight retention --data-dir {dir} --period week --periods 8
  finpulse insight acquisition --data-dir {dir} --period month
  curl {auth} '{url}/v1/insights/lifecycle?interval=week'

Churn early warning and LTV-based offers (in another terminal, beside the server):
  finpulse churn train --data-dir {dir} --as-of {train_as_of}
  curl {auth} '{url}/v1/churn/risk?limit=10'
  finpulse pricing compute --data-dir {dir} --calibration-end {train_as_of} --purchase-event revenue --unit day
  curl {auth} '{url}/v1/pricing/offers?price_tier=retention&limit=10'

Fraud decisions (the server picks up models and rules within a second):
  finpulse fraud train --data-dir {dir} --from {fraud_from} --to {fraud_to} --delay-days 7
  finpulse fraud eval  --data-dir {dir} --from {test_from} --to {test_to}
  curl -s -X POST {url}/v1/decisions {auth} -H 'content-type: application/json' \
       -d '{{"event_id": "try-1", "user_id": "u0000042", "ts": "{today}T10:00:00+08:00", "type": "payment", "amount_fen": 99000, "currency": "CNY", "terminal_id": "t00042"}}'
  curl {auth} {url}/v1/users/u0000042
  finpulse rules features      # what rules can read; publish a ruleset with `finpulse rules publish FILE`
  (today in the simulated app is {today})
"#,
        user = who.user,
    );
}

/// The demo seals personal fields: with no master key given (`FINPULSE_MASTER_KEY`,
/// `protect.master_key_file`), a new one is made beside the data directory
/// (`<data-dir>.master-key`, owner-only) and named, so it can be kept apart from backups.
fn ensure_master_key(config: &Config) -> Result<()> {
    use anyhow::Context;
    if config.protect.key_given() {
        return Ok(());
    }
    let file = finpulse_server::protection::default_master_key_file(config.access_root());
    if file.exists() || (config.data_dir.join("wal").exists() && !finpulse_log::protection::is_protected(&config.data_dir)) {
        return Ok(());
    }
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    finpulse_protect::MasterKeys::generate(&file).with_context(|| format!("making the master key {}", file.display()))?;
    eprintln!("personal fields are sealed under the master key in {} (keep it apart from the data directory's backups)", file.display());
    Ok(())
}
