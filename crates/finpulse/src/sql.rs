//! `finpulse sql` and `finpulse schema`.

use crate::Format;
use crate::config::Config;
use anyhow::{Context, Result};
use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use finpulse_core::Registry;
use finpulse_log::EventStore;
use std::sync::Arc;

/// Runs a query on the data directory. It reads without taking the directory's lock, so it
/// works beside a running server and never blocks or disturbs it.
/// Personal data is masked by its class unless `purpose` is given: the read in clear is then
/// written to the audit log, with the purpose, before anything is printed.
pub async fn run(config: &Config, query: &str, purpose: Option<&str>, format: Format) -> Result<()> {
    let purpose = purpose.map(finpulse_access::check_purpose).transpose().context("--purpose")?;
    let exposure = finpulse_access::Principal::local_operator(config.tenant()).exposure(purpose);
    let view = EventStore::read_view(&config.data_dir).with_context(|| format!("reading data directory {}", config.data_dir.display()))?;
    let opts = finpulse_query::QueryOptions { exposure, ..finpulse_query::QueryOptions::default() };
    let result = finpulse_query::run_sql(&view, query, opts).await;
    if exposure == finpulse_query::Exposure::Clear {
        let outcome = result.as_ref().map(|_| ()).map_err(|e| anyhow::anyhow!("{e}"));
        let target = Some(format!("sql sha256 {}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(query.as_bytes()))));
        crate::access::record(config, "sql (read in clear)", target, purpose.map(str::to_string), &outcome)?;
    }
    let result = result?;
    print(&result.schema, &result.batches, format)
}

fn print(schema: &Arc<Schema>, batches: &[RecordBatch], format: Format) -> Result<()> {
    match format {
        Format::Table => println!("{}", arrow::util::pretty::pretty_format_batches(batches)?),
        Format::Csv => {
            // Written cell by cell so every type has a form: lists, structs and maps as their JSON.
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            w.write_record(schema.fields().iter().map(|f| f.name().as_str()))?;
            for b in batches {
                for row in 0..b.num_rows() {
                    w.write_record(b.columns().iter().map(|c| finpulse_server::json::text(c.as_ref(), row)))?;
                }
            }
            w.flush()?;
        }
        Format::Json => {
            let (rows, _) = finpulse_server::json::rows(batches, usize::MAX);
            let out = serde_json::json!({"columns": finpulse_server::json::columns(schema), "rows": rows});
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(())
}

/// Prints the schema registry.
pub fn schema(config: &Config, format: Format) -> Result<()> {
    // A directory with no data yet has the built-in catalogue.
    let registry: Arc<Registry> = if config.data_dir.join("wal").exists() {
        EventStore::read_view(&config.data_dir).with_context(|| format!("reading data directory {}", config.data_dir.display()))?.registry
    } else {
        Arc::new(Registry::builtin())
    };
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&finpulse_server::schema_json(&registry))?),
        Format::Table | Format::Csv => {
            let sep = if matches!(format, Format::Csv) { "," } else { "  " };
            if matches!(format, Format::Csv) {
                println!("type,field,field_type,required,category,level");
            }
            for t in registry.event_types() {
                if matches!(format, Format::Table) {
                    println!("{} ({:?}{}) — {}", t.name, t.scope, if t.builtin { "" } else { ", custom" }, t.doc);
                }
                for tf in &t.fields {
                    let f = registry.field(tf.field);
                    let req = if tf.required { "required" } else { "optional" };
                    if matches!(format, Format::Csv) {
                        println!("{},{},{},{},{:?},{}", t.name, f.name, f.ty.name(), tf.required, f.class.category, f.class.level);
                    } else {
                        println!(
                            "    {:<20}{sep}{:<10}{sep}{:<9}{sep}{:?} / level {}",
                            f.name,
                            f.ty.name(),
                            req,
                            f.class.category,
                            f.class.level
                        );
                    }
                }
            }
        }
    }
    Ok(())
}
