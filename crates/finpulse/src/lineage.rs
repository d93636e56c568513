//! `finpulse lineage`: the data directory's OpenLineage run events and the lineage graph.

use crate::config::Config;
use anyhow::{Context, Result};
use clap::Subcommand;
use finpulse_lineage::{DatasetId, LineageStore};

#[derive(Subcommand, Debug)]
pub enum LineageCommand {
    /// The stored OpenLineage 2-0-2 run events, one JSON object per line (NDJSON), oldest first.
    Events {
        /// Only events at or after this time (RFC 3339, or a YYYY-MM-DD day in UTC).
        #[arg(long)]
        since: Option<String>,
    },
    /// The datasets and jobs upstream and downstream of a dataset, as JSON.
    Graph {
        /// The dataset's name (for files, its path).
        #[arg(long)]
        dataset: String,
        /// The dataset's namespace.
        #[arg(long, default_value = finpulse_log::lineage::FILE_NAMESPACE)]
        namespace: String,
        /// How many jobs away to follow.
        #[arg(long, default_value_t = 4)]
        depth: usize,
    },
}

pub fn run(config: &Config, command: LineageCommand) -> Result<()> {
    let dir = config.data_dir.join(finpulse_log::lineage::LINEAGE_DIR);
    if !config.data_dir.exists() {
        anyhow::bail!("no data directory at {}", config.data_dir.display());
    }
    let store = LineageStore::open(&dir).with_context(|| format!("opening the lineage store in {}", dir.display()))?;
    match command {
        LineageCommand::Events { since } => {
            let since_us = since
                .as_deref()
                .map(|t| {
                    finpulse_core::time::parse_date_us(t)
                        .map_or_else(|| finpulse_core::time::parse_rfc3339_us(t).ok(), Some)
                        .with_context(|| format!("--since '{t}': use an RFC 3339 time or a YYYY-MM-DD day"))
                })
                .transpose()?;
            let mut out = std::io::stdout().lock();
            for event in store.events_since(since_us)? {
                serde_json::to_writer(&mut out, &event)?;
                std::io::Write::write_all(&mut out, b"\n")?;
            }
        }
        LineageCommand::Graph { dataset, namespace, depth } => {
            let graph = store.graph(&DatasetId::new(namespace, dataset), depth)?;
            println!("{}", serde_json::to_string_pretty(&graph.to_json())?);
        }
    }
    Ok(())
}
