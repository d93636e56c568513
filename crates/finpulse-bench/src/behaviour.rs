//! Behaviour functions over one Parquet file: a query through a finpulse session (best of N),
//! and, for funnels, the per-user state machine alone on rows already in memory.

use anyhow::{Context, Result};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use finpulse_query::behaviour::{Funnel, FunnelMode, RowStore};
use std::path::Path;
use std::time::Instant;

/// What `--machine-steps` asks for: the funnel's steps (values of `event`) and its window.
pub struct Machine {
    pub steps: Vec<String>,
    pub window: i64,
}

pub fn run(parquet: &Path, repeat: usize, query: &str, machine: Option<Machine>) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(cores));
    finpulse_query::behaviour::register(&ctx)?;
    let path = parquet.to_str().context("parquet path is not UTF-8")?;
    rt.block_on(ctx.register_parquet("events", path, ParquetReadOptions::default()))?;
    let mut best = f64::INFINITY;
    let mut rows: Vec<Vec<i64>> = Vec::new();
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        let batches = rt.block_on(async { ctx.sql(query).await?.collect().await })?;
        best = best.min(started.elapsed().as_secs_f64());
        rows.clear();
        for b in &batches {
            let columns = b.columns().iter().map(|c| arrow::compute::cast(c, &DataType::Int64)).collect::<Result<Vec<_>, _>>()?;
            for r in 0..b.num_rows() {
                rows.push(columns.iter().map(|c| c.as_primitive::<Int64Type>().value(r)).collect());
            }
        }
    }
    let mut out = serde_json::json!({ "engine": "finpulse", "best_secs": best, "rows": rows });
    if let Some(machine) = machine {
        out["machine_events_per_sec"] = serde_json::json!(rt.block_on(state_machine(&ctx, &machine))?);
    }
    println!("{out}");
    Ok(())
}

/// Events per second through the funnel's own work on one core: per event, its condition mask
/// and keeping it for its user; then bucketing per user and every user's level. Reading Parquet
/// and finding each event's user (the query engine's part) happen before the clock starts.
async fn state_machine(ctx: &SessionContext, machine: &Machine) -> Result<f64> {
    let batches = ctx.sql("SELECT user_id, ts, event FROM events").await?.collect().await?;
    let mut users = std::collections::HashMap::<i64, usize>::new();
    let (mut group, mut times, mut masks) = (Vec::new(), Vec::new(), Vec::new());
    for b in &batches {
        let user = arrow::compute::cast(b.column(0), &DataType::Int64)?;
        let user = user.as_primitive::<Int64Type>();
        let ts = arrow::compute::cast(b.column(1), &DataType::Int64)?;
        let ts = ts.as_primitive::<Int64Type>();
        let event = arrow::compute::cast(b.column(2), &DataType::Utf8)?;
        let event = event.as_string::<i32>();
        for r in 0..b.num_rows() {
            let mask = machine
                .steps
                .iter()
                .enumerate()
                .filter(|(_, s)| event.is_valid(r) && event.value(r) == s.as_str())
                .fold(0u32, |m, (i, _)| m | 1 << i);
            let next = users.len();
            group.push(*users.entry(user.value(r)).or_insert(next));
            times.push(ts.value(r));
            masks.push(mask);
        }
    }
    let groups = users.len();
    let funnel = Funnel::new(machine.window, FunnelMode::default(), machine.steps.len())?;
    let mut scratch = Vec::new();
    let started = Instant::now();
    let mut store = RowStore::default();
    for ((&g, &t), &m) in group.iter().zip(&times).zip(&masks) {
        if m != 0 {
            store.push(g, t, m, 0);
        }
    }
    let bucketed = store.take_first(groups);
    let mut reached = 0u64;
    for g in 0..groups {
        reached += u64::from(funnel.level(bucketed.rows(g), &mut scratch));
    }
    let secs = started.elapsed().as_secs_f64();
    std::hint::black_box(reached);
    Ok(group.len() as f64 / secs)
}
