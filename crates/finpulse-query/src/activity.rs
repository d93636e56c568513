//! Who was active on which day, read straight from the store rather than through SQL.
//!
//! Lifecycle statuses, DAU/WAU/MAU and the goals' activity series all start from the distinct
//! (user, day) pairs of some event types. As a SQL `GROUP BY user_id, day` that is a hash
//! aggregation over every event keyed by text (about 0.8 s for 15M events on two cores). The
//! compacted files are already sorted by (user_id, ts), one file per day, so here each file is
//! read for three columns only and a user's run of rows in it is one lookup; files are read on
//! every core. The tail (not yet compacted, in log order) is folded in the same way.

use crate::QueryError;
use arrow::array::{Array, AsArray, DictionaryArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, TimestampMicrosecondType};
use finpulse_log::StoreView;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use std::path::Path;
use std::sync::Arc;

/// Microseconds in a day.
const DAY_US: i64 = 86_400_000_000;
/// Rows per batch read from a file.
const READ_BATCH_ROWS: usize = 64 * 1024;

/// One active day: the day number (since 1970-01-01, UTC) and the time of the day's last event
/// of the types (UTC µs).
pub type ActiveDay = (i64, i64);

/// Per user, the sorted distinct days on which they did an event of one of `types`, each with
/// the time of that day's last such event — what `GROUP BY user_id, day` with `max(ts)` gives.
/// Events without a user (or with an empty one) are not activity.
pub fn user_day_last_times(view: &StoreView, types: &[String]) -> Result<Vec<(String, Vec<ActiveDay>)>, QueryError> {
    let parts = finpulse_core::cores().min(view.files.len()).max(1);
    let per = view.files.len().div_ceil(parts).max(1);
    let partial: Vec<Result<Days, QueryError>> = std::thread::scope(|s| {
        let handles: Vec<_> = view
            .files
            .chunks(per)
            .map(|files| {
                s.spawn(move || {
                    let mut days = Days::default();
                    for f in files {
                        read_file(f, types, &mut days)?;
                    }
                    Ok(days)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    let mut all = Days::default();
    for days in partial {
        all.absorb(days?);
    }
    for batch in &view.tail {
        fold_batch(batch, types, &mut all)?;
    }
    Ok(all
        .by_user
        .into_iter()
        .map(|(user, mut d)| {
            // Several files (and the tail) may hold the same day: keep its latest time.
            d.sort_unstable();
            d.dedup_by(|later, earlier| {
                let same = later.0 == earlier.0;
                if same {
                    earlier.1 = earlier.1.max(later.1);
                }
                same
            });
            (user, d)
        })
        .collect())
}

/// Active days per user, as gathered (unsorted, possibly repeated across files).
#[derive(Default)]
struct Days {
    by_user: foldhash::HashMap<String, Vec<ActiveDay>>,
}

impl Days {
    fn absorb(&mut self, other: Days) {
        if self.by_user.is_empty() {
            *self = other;
            return;
        }
        for (user, d) in other.by_user {
            self.by_user.entry(user).or_default().extend(d);
        }
    }
}

fn read_file(path: &Path, types: &[String], days: &mut Days) -> Result<(), QueryError> {
    let fail = |e: &dyn std::fmt::Display| QueryError::Sql(format!("reading {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| fail(&e))?;
    // Text columns are dictionary-encoded in the files: read `user_id` and `type` as
    // dictionaries, so neither is expanded into strings row by row. The footer is read once.
    let plain = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(|e| fail(&e))?;
    let hinted: Vec<Field> = plain
        .schema()
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "user_id" | "type" => {
                Field::new(f.name(), DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), f.is_nullable())
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    let options = ArrowReaderOptions::new().with_schema(Arc::new(Schema::new_with_metadata(hinted, plain.schema().metadata().clone())));
    let hinted = ArrowReaderMetadata::try_new(plain.metadata().clone(), options).map_err(|e| fail(&e))?;
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, hinted);
    let wanted: Vec<usize> =
        ["user_id", "type", "ts"].iter().map(|name| builder.schema().index_of(name).map_err(|e| fail(&e))).collect::<Result<_, _>>()?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), wanted);
    let reader = builder.with_projection(mask).with_batch_size(READ_BATCH_ROWS).build().map_err(|e| fail(&e))?;
    for batch in reader {
        fold_batch(&batch.map_err(|e| fail(&e))?, types, days)?;
    }
    Ok(())
}

/// A text column as dictionary keys into distinct values (a plain column is dictionary-encoded
/// first: the tail's columns are plain strings).
fn dictionary(batch: &RecordBatch, name: &str) -> Result<DictionaryArray<Int32Type>, QueryError> {
    let column = batch.column_by_name(name).ok_or_else(|| QueryError::Sql(format!("activity: the events have no '{name}' column")))?;
    let as_dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let cast = arrow::compute::cast(column, &as_dictionary).map_err(|e| QueryError::Sql(format!("activity: {name}: {e}")))?;
    Ok(cast.as_dictionary::<Int32Type>().clone())
}

/// Adds a batch's (user, day) pairs for `types`. Rows sorted by user cost one lookup per run.
fn fold_batch(batch: &RecordBatch, types: &[String], days: &mut Days) -> Result<(), QueryError> {
    let (users, kinds) = (dictionary(batch, "user_id")?, dictionary(batch, "type")?);
    let ts = batch.column_by_name("ts").ok_or_else(|| QueryError::Sql("activity: the events have no 'ts' column".into()))?;
    let ts = ts
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or_else(|| QueryError::Sql(format!("activity: ts is {}, not a timestamp", ts.data_type())))?;
    let (user_values, kind_values) = (users.values().as_string::<i32>(), kinds.values().as_string::<i32>());
    // Whether each distinct type is wanted, decided once per dictionary value.
    let wanted_kind: Vec<bool> =
        (0..kind_values.len()).map(|i| kind_values.is_valid(i) && types.iter().any(|t| t == kind_values.value(i))).collect();
    let (user_keys, kind_keys) = (users.keys(), kinds.keys());
    // The batch's distinct consecutive (user key, day) runs with their latest time, then one
    // map lookup per user run.
    let mut runs: Vec<(i32, ActiveDay)> = Vec::new();
    for row in 0..batch.num_rows() {
        if users.is_null(row) || kinds.is_null(row) || ts.is_null(row) || !wanted_kind[kind_keys.value(row) as usize] {
            continue;
        }
        let (key, at) = (user_keys.value(row), ts.value(row));
        let day = at.div_euclid(DAY_US);
        match runs.last_mut() {
            Some((k, (d, last))) if *k == key && *d == day => *last = (*last).max(at),
            _ => runs.push((key, (day, at))),
        }
    }
    for run in runs.chunk_by(|a, b| a.0 == b.0) {
        let user = user_values.value(run[0].0 as usize);
        if user.is_empty() {
            continue;
        }
        if let Some(d) = days.by_user.get_mut(user) {
            d.extend(run.iter().map(|r| r.1));
        } else {
            days.by_user.insert(user.to_string(), run.iter().map(|r| r.1).collect());
        }
    }
    Ok(())
}
