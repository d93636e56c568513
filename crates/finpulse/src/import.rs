//! `finpulse import`: files into the store through the write path, chunk by chunk, each chunk
//! durable before the next.

use crate::config::Config;
use crate::open_store;
use anyhow::{Context, Result, bail};
use finpulse_core::ValidationLimits;
use finpulse_log::AppendStatus;
use finpulse_write::{Submission, Writer, WriterOptions};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::mpsc;

/// Rejections printed per file; the rest are counted.
pub const ERRORS_PRINTED_MAX: usize = 20;
/// Decoded chunks waiting for validation and the log.
pub const IMPORT_QUEUE_CHUNKS: usize = 4;

/// Imports every file. Exit status: Ok when every record was stored or was a duplicate; an
/// error when any was rejected (the valid ones are stored all the same) or a file is unreadable.
pub fn run(config: &Config, files: &[PathBuf]) -> Result<()> {
    let store =
        open_store(config, |url| format!("import through the server instead: curl -X POST {url}/v1/events --data-binary @FILE.ndjson"))?;
    let (writer, writer_thread) = Writer::start(store, WriterOptions::default(), Vec::new());
    let mut total_rejected = 0;
    for path in files {
        let started = std::time::Instant::now();
        let mut reader = finpulse_ingest::open_file(path).with_context(|| format!("opening {}", path.display()))?;
        let bar = ProgressBar::new(reader.total);
        bar.set_style(ProgressStyle::with_template("{msg} [{bar:30}] {percent}% {elapsed} ({per_sec})").expect("valid template"));
        bar.set_message(path.display().to_string());
        // Three stages on their own threads: read and split into cells; validate and prepare
        // (encode, key, build columns) on every core; append and fsync through the writer, in
        // file order.
        let (read_tx, read_rx) = mpsc::sync_channel(IMPORT_QUEUE_CHUNKS);
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<Submission>>(IMPORT_QUEUE_CHUNKS);
        let preparer = writer.preparer();
        let keep_events = writer.has_consumers();
        let limits = ValidationLimits {
            field_bytes_max: config.limits.field_bytes_max,
            ts_future_skew_secs: config.limits.ts_future_skew_secs,
            ..ValidationLimits::default()
        };
        let (accepted, duplicates, rejected) = std::thread::scope(|s| -> Result<(u64, u64, u64)> {
            let bar2 = bar.clone();
            s.spawn(move || {
                while let Some(chunk) = reader.next_chunk() {
                    bar2.set_position(reader.done);
                    if read_tx.send(chunk).is_err() {
                        break;
                    }
                }
            });
            let preparer = &preparer;
            s.spawn(move || {
                for chunk in read_rx {
                    let ready = chunk
                        .map_err(anyhow::Error::from)
                        .and_then(|chunk| Ok(Submission::chunk(preparer, chunk, &limits, finpulse_core::cores(), keep_events)?));
                    if ready_tx.send(ready).is_err() {
                        break;
                    }
                }
            });
            let (mut accepted, mut duplicates, mut rejected) = (0u64, 0u64, 0u64);
            for ready in ready_rx {
                let ready = ready.with_context(|| format!("reading {}", path.display()))?;
                for r in &ready.rejected {
                    if (rejected as usize) < ERRORS_PRINTED_MAX {
                        bar.suspend(|| eprintln!("{}: {}: {}", path.display(), r.position, r.message));
                    }
                    rejected += 1;
                }
                for s in writer.append_blocking(ready.batch)? {
                    match s {
                        AppendStatus::Accepted => accepted += 1,
                        AppendStatus::Duplicate => duplicates += 1,
                    }
                }
            }
            Ok((accepted, duplicates, rejected))
        })?;
        bar.finish_and_clear();
        let secs = started.elapsed().as_secs_f64();
        let n = accepted + duplicates + rejected;
        println!(
            "{}: {accepted} accepted, {duplicates} duplicates, {rejected} rejected in {secs:.2} s ({:.0} records/s)",
            path.display(),
            n as f64 / secs.max(1e-9)
        );
        if rejected as usize > ERRORS_PRINTED_MAX {
            eprintln!("{}: {} more rejections not shown", path.display(), rejected as usize - ERRORS_PRINTED_MAX);
        }
        total_rejected += rejected;
    }
    let r = writer.compact_blocking()?;
    drop(writer);
    writer_thread.join()?;
    if r.events > 0 {
        println!("compacted {} events into {} Parquet files", r.events, r.files);
    }
    if total_rejected > 0 {
        bail!("{total_rejected} records were rejected (the valid records are stored)");
    }
    Ok(())
}
