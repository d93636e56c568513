//! Who was active on which day, read straight from the store rather than through SQL.
//!
//! Lifecycle statuses, DAU/WAU/MAU and the goals' activity series all start from the distinct
//! (user, day) pairs of some event types. As a SQL `GROUP BY user_id, day` that is a hash
//! aggregation over every event keyed by text (about 0.8 s for 15M events on two cores). The
//! compacted files are one per day, sorted by (type, user_id, ts), so here each file is read for
//! three columns only and a user's run of rows of a type is one lookup; files are read on every
//! core, and kept per file (see [`ACTIVITY_CACHE_BYTES`]). The tail (not yet compacted, in log
//! order) is folded in the same way on every call.

use crate::QueryError;
use arrow::array::{Array, AsArray, DictionaryArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, TimestampMicrosecondType};
use finpulse_core::time::MICROS_PER_DAY;
use finpulse_log::StoreView;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use std::path::Path;
use std::sync::Arc;

/// Rows per batch read from a file.
const READ_BATCH_ROWS: usize = 64 * 1024;

/// One active day: the day number (since 1970-01-01, UTC) and the time of the day's last event
/// of the types (UTC µs).
pub type ActiveDay = (i64, i64);

/// Most bytes of per-file activity (and the user names it points at) kept in memory between
/// queries. Past it the whole cache is dropped and refilled by the queries that follow.
pub const ACTIVITY_CACHE_BYTES: usize = 1 << 30;

/// Per user, the sorted distinct days on which they did an event of one of `types`, each with
/// the time of that day's last such event — what `GROUP BY user_id, day` with `max(ts)` gives.
/// Events without a user (or with an empty one) are not activity.
///
/// A compacted file never changes, so what each file holds — per event type, its (user, day,
/// last time) runs — is kept in a process-wide cache ([`ACTIVITY_CACHE_BYTES`]): only files not
/// seen before are read, and the tail is folded in on every call.
pub fn user_day_last_times(view: &StoreView, types: &[String]) -> Result<Vec<(String, Vec<ActiveDay>)>, QueryError> {
    user_day_last_times_within(view, types, ACTIVITY_CACHE_BYTES)
}

/// [`user_day_last_times`] with the cache dropped whenever it holds more than
/// `cache_bytes_max` after a call (the same cache: every call sees the smallest budget asked).
pub fn user_day_last_times_within(
    view: &StoreView,
    types: &[String],
    cache_bytes_max: usize,
) -> Result<Vec<(String, Vec<ActiveDay>)>, QueryError> {
    let keys: Vec<FileKey> = view.files.iter().map(|f| FileKey::of(f)).collect::<Result<_, _>>()?;
    let mut tail = FileRuns::default();
    for batch in &view.tail {
        fold_batch(batch, &mut tail)?;
    }
    let tail = tail.finish();
    // A panic while the cache was being changed may have left it half-changed: start it anew.
    let lock = || {
        cache().lock().unwrap_or_else(|poisoned| {
            let mut fresh = poisoned.into_inner();
            *fresh = ActivityCache::default();
            cache().clear_poison();
            fresh
        })
    };
    for attempt in 0..CACHE_ATTEMPTS {
        // Files are read without the lock, unless other calls keep dropping the cache meanwhile.
        let guard = lock();
        let generation = guard.generation;
        let missing: Vec<&FileKey> = keys.iter().filter(|k| !guard.files.contains_key(*k)).collect();
        let held = if attempt + 1 == CACHE_ATTEMPTS {
            Some(guard)
        } else {
            drop(guard);
            None
        };
        let read = read_files(&missing)?;
        let mut cache = held.unwrap_or_else(lock);
        if cache.generation != generation {
            // Dropped since: the numbers of the files read before no longer hold.
            continue;
        }
        for (key, runs) in missing.into_iter().zip(read) {
            if cache.files.contains_key(key) {
                // Another call read it meanwhile.
                continue;
            }
            let interned = cache.intern(runs);
            cache.bytes += interned.bytes();
            cache.files.insert(key.clone(), Arc::new(interned));
        }
        let tail = cache.intern(tail);
        let files: Vec<&FileActivity> = keys.iter().filter_map(|k| cache.files.get(k)).map(Arc::as_ref).chain([&tail]).collect();
        let answer = cache.gather(files, types);
        if cache.bytes > cache_bytes_max {
            let generation = cache.generation + 1;
            *cache = ActivityCache { generation, ..ActivityCache::default() };
        }
        return Ok(answer);
    }
    unreachable!("the last attempt holds the lock throughout")
}

/// Tries at reading files outside the cache's lock before one holds it while reading.
const CACHE_ATTEMPTS: usize = 3;

/// Identifies one compacted file's content: files are written once under a new name, and the
/// length and modification time guard against a path reused for other data.
#[derive(Clone, PartialEq, Eq, Hash)]
struct FileKey {
    path: std::path::PathBuf,
    len_bytes: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileKey {
    fn of(path: &Path) -> Result<Self, QueryError> {
        let meta = std::fs::metadata(path).map_err(|e| QueryError::Sql(format!("reading {}: {e}", path.display())))?;
        Ok(Self { path: path.to_path_buf(), len_bytes: meta.len(), modified: meta.modified().ok() })
    }
}

/// One (user, day) with activity of a type: the user's number, the day number and the day's
/// last time of that type.
#[derive(Clone, Copy)]
struct Run {
    user: u32,
    day: i32,
    last_us: i64,
}

/// What one file (or the tail) holds, per event type and for all types together, with users
/// numbered within it.
#[derive(Default)]
struct FileRuns {
    users: Vec<String>,
    user_numbers: foldhash::HashMap<String, u32>,
    by_type: foldhash::HashMap<String, Vec<Run>>,
    all: Vec<Run>,
}

impl FileRuns {
    /// Fills `all`: each (user, day) once, with the latest time of any type.
    fn finish(mut self) -> Self {
        let mut all: Vec<Run> = self.by_type.values().flatten().copied().collect();
        all.sort_unstable_by_key(|r| (r.user, r.day));
        all.dedup_by(|later, earlier| {
            let same = later.user == earlier.user && later.day == earlier.day;
            if same {
                earlier.last_us = earlier.last_us.max(later.last_us);
            }
            same
        });
        self.all = all;
        self
    }

    fn number(&mut self, user: &str) -> u32 {
        if let Some(&n) = self.user_numbers.get(user) {
            return n;
        }
        let n = self.users.len() as u32;
        self.users.push(user.to_string());
        self.user_numbers.insert(user.to_string(), n);
        n
    }
}

/// A file's runs, with users numbered as in the cache.
struct FileActivity {
    by_type: foldhash::HashMap<String, Vec<Run>>,
    /// The runs of every type together (what `any` asks for: a third as many at 100k users).
    all: Vec<Run>,
    /// The earliest day in the file: files are gathered in day order, so each user's days
    /// mostly arrive sorted.
    first_day: i32,
}

impl FileActivity {
    fn bytes(&self) -> usize {
        let runs: usize = self.by_type.values().map(Vec::len).sum::<usize>() + self.all.len();
        self.by_type.keys().map(String::len).sum::<usize>() + runs * std::mem::size_of::<Run>()
    }

    /// The runs of `types` here: all of them at once when `types` covers every type the file has.
    fn runs_of<'a>(&'a self, types: &foldhash::HashSet<&str>) -> Vec<&'a [Run]> {
        if self.by_type.keys().all(|t| types.contains(t.as_str())) {
            vec![&self.all]
        } else {
            self.by_type.iter().filter(|(t, _)| types.contains(t.as_str())).map(|(_, r)| r.as_slice()).collect()
        }
    }
}

/// Per-file activity of compacted files, and the user names its numbers stand for.
#[derive(Default)]
struct ActivityCache {
    files: foldhash::HashMap<FileKey, Arc<FileActivity>>,
    users: Vec<String>,
    user_numbers: foldhash::HashMap<String, u32>,
    bytes: usize,
    /// Counts the times the cache was dropped: user numbers from before a drop mean nothing.
    generation: u64,
}

fn cache() -> &'static std::sync::Mutex<ActivityCache> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<ActivityCache>> = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Bytes a cached user name costs beyond its text (two copies, map slot, vector slot).
const USER_NAME_OVERHEAD_BYTES: usize = 64;

impl ActivityCache {
    /// Renumbers a file's users into the cache's numbering.
    fn intern(&mut self, runs: FileRuns) -> FileActivity {
        let global: Vec<u32> = runs
            .users
            .into_iter()
            .map(|user| match self.user_numbers.get(&user) {
                Some(&n) => n,
                None => {
                    let n = self.users.len() as u32;
                    self.bytes += 2 * user.len() + USER_NAME_OVERHEAD_BYTES;
                    self.user_numbers.insert(user.clone(), n);
                    self.users.push(user);
                    n
                }
            })
            .collect();
        let (mut by_type, mut all) = (runs.by_type, runs.all);
        for r in by_type.values_mut().flatten().chain(&mut all) {
            r.user = global[r.user as usize];
        }
        let first_day = all.iter().map(|r| r.day).min().unwrap_or(i32::MAX);
        FileActivity { by_type, all, first_day }
    }

    /// The runs of `types` in `files`, per user, sorted by day with one time per day.
    fn gather(&self, mut files: Vec<&FileActivity>, types: &[String]) -> Vec<(String, Vec<ActiveDay>)> {
        let types: foldhash::HashSet<&str> = types.iter().map(String::as_str).collect();
        // Stable: the tail (last) stays after the files of its first day.
        files.sort_by_key(|f| f.first_day);
        let runs: Vec<&[Run]> = files.iter().flat_map(|f| f.runs_of(&types)).collect();
        // A counting sort by user: how many runs each has, then each user's runs side by side,
        // in file order.
        let mut start = vec![0usize; self.users.len() + 1];
        for r in runs.iter().copied().flatten() {
            start[r.user as usize + 1] += 1;
        }
        for i in 1..start.len() {
            start[i] += start[i - 1];
        }
        let mut next = start.clone();
        let mut days: Vec<ActiveDay> = vec![(0, 0); start[self.users.len()]];
        for r in runs.iter().copied().flatten() {
            let slot = &mut next[r.user as usize];
            days[*slot] = (i64::from(r.day), r.last_us);
            *slot += 1;
        }
        let mut out = Vec::new();
        for (user, name) in self.users.iter().enumerate() {
            let d = &mut days[start[user]..start[user + 1]];
            if d.is_empty() {
                continue;
            }
            // Late events and the tail can put a day out of order.
            if !d.is_sorted_by_key(|a| a.0) {
                d.sort_unstable_by_key(|a| a.0);
            }
            // Several types, files (and the tail) may hold the same day: keep its latest time.
            let mut merged: Vec<ActiveDay> = Vec::with_capacity(d.len());
            for &(day, at) in d.iter() {
                match merged.last_mut() {
                    Some(last) if last.0 == day => last.1 = last.1.max(at),
                    _ => merged.push((day, at)),
                }
            }
            out.push((name.clone(), merged));
        }
        out
    }
}

/// Reads files on every core.
fn read_files(files: &[&FileKey]) -> Result<Vec<FileRuns>, QueryError> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let parts = finpulse_core::cores().min(files.len()).max(1);
    let per = files.len().div_ceil(parts).max(1);
    let partial: Vec<Result<Vec<FileRuns>, QueryError>> = std::thread::scope(|s| {
        let handles: Vec<_> = files.chunks(per).map(|chunk| s.spawn(move || chunk.iter().map(|k| read_file(&k.path)).collect())).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    let mut all = Vec::with_capacity(files.len());
    for p in partial {
        all.extend(p?);
    }
    Ok(all)
}

fn read_file(path: &Path) -> Result<FileRuns, QueryError> {
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
    let mut runs = FileRuns::default();
    for batch in reader {
        fold_batch(&batch.map_err(|e| fail(&e))?, &mut runs)?;
    }
    Ok(runs.finish())
}

/// A text column as dictionary keys into distinct values (a plain column is dictionary-encoded
/// first: the tail's columns are plain strings).
fn dictionary(batch: &RecordBatch, name: &str) -> Result<DictionaryArray<Int32Type>, QueryError> {
    let column = batch.column_by_name(name).ok_or_else(|| QueryError::Sql(format!("activity: the events have no '{name}' column")))?;
    let as_dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let cast = arrow::compute::cast(column, &as_dictionary).map_err(|e| QueryError::Sql(format!("activity: {name}: {e}")))?;
    Ok(cast.as_dictionary::<Int32Type>().clone())
}

/// Adds a batch's (user, day) runs per event type. A file holds each type's rows together,
/// sorted by user and time, so a type's rows of one user and day are consecutive: each row
/// extends or starts one run. (The tail is in log order: its runs repeat, and are merged later.)
fn fold_batch(batch: &RecordBatch, runs: &mut FileRuns) -> Result<(), QueryError> {
    let (users, kinds) = (dictionary(batch, "user_id")?, dictionary(batch, "type")?);
    let ts = batch.column_by_name("ts").ok_or_else(|| QueryError::Sql("activity: the events have no 'ts' column".into()))?;
    let ts = ts
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or_else(|| QueryError::Sql(format!("activity: ts is {}, not a timestamp", ts.data_type())))?;
    let (user_values, kind_values) = (users.values().as_string::<i32>(), kinds.values().as_string::<i32>());
    // Each distinct type's runs, taken out of the file's map once per batch; `slot` maps a
    // dictionary value to them (a dictionary may repeat a value).
    let mut kind_runs: Vec<(String, Vec<Run>)> = Vec::new();
    let slot: Vec<Option<usize>> = (0..kind_values.len())
        .map(|i| {
            let name = kind_values.is_valid(i).then(|| kind_values.value(i))?;
            Some(kind_runs.iter().position(|(k, _)| k == name).unwrap_or_else(|| {
                kind_runs.push((name.to_string(), runs.by_type.remove(name).unwrap_or_default()));
                kind_runs.len() - 1
            }))
        })
        .collect();
    // The batch's user keys as numbers within the file, found once per run of rows.
    let mut user_number: Vec<Option<Option<u32>>> = vec![None; user_values.len()];
    let (user_keys, kind_keys) = (users.keys(), kinds.keys());
    let mut current: Option<(i32, Option<u32>)> = None;
    for row in 0..batch.num_rows() {
        if users.is_null(row) || kinds.is_null(row) || ts.is_null(row) {
            continue;
        }
        let Some(kind) = slot[kind_keys.value(row) as usize] else { continue };
        let key = user_keys.value(row);
        let user = match current {
            Some((k, n)) if k == key => n,
            _ => {
                let n = *user_number[key as usize].get_or_insert_with(|| {
                    let name = user_values.value(key as usize);
                    (!name.is_empty()).then(|| runs.number(name))
                });
                current = Some((key, n));
                n
            }
        };
        // Events without a user are not activity.
        let Some(user) = user else { continue };
        let at = ts.value(row);
        let day = at.div_euclid(MICROS_PER_DAY) as i32;
        match kind_runs[kind].1.last_mut() {
            Some(r) if r.user == user && r.day == day => r.last_us = r.last_us.max(at),
            _ => kind_runs[kind].1.push(Run { user, day, last_us: at }),
        }
    }
    runs.by_type.extend(kind_runs);
    Ok(())
}
