//! The event store: one data directory, owned by one process. It validates nothing (callers
//! hand it validated events); it deduplicates, makes events durable, keeps the not-yet-compacted
//! tail as Arrow batches for queries, and compacts the tail into Parquet.
//!
//! Layout of a data directory:
//! - `LOCK`: held (flock) by the owning process; `OWNER` says who that is.
//! - `schema.json`: custom event types, in registration order.
//! - `wal/`: the write-ahead log, the source of truth.
//! - `parquet/day=YYYY-MM-DD/part-<first>-<last>.parquet`: compacted segments, sorted by
//!   (type, user_id, ts), listed in `manifest.json` with the log position compacted through.
//!   Type first: most questions ask for a few event types (signups, tasks, revenue), and with
//!   each type's rows together the page index lets a scan skip the pages of every other type;
//!   within a type, each user's rows are together and in time order. Beside each text field
//!   a reader without a purpose sees masked, a file stores its masked form (`_masked_NAME`), so
//!   masked queries read a column instead of masking every value.

use crate::codec;
use crate::columns::{OpenBatch, SEQ_COLUMN, concat_wide, events_schema, events_to_batch, take_wide, widen, with_masked_forms, with_seq};
use crate::dedup::DedupIndex;
use crate::wal::{Frame, Recovery, Wal, WalError, WalOptions, put_frame, sync_dir};
use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::datatypes::{SchemaRef, TimestampMicrosecondType};
use finpulse_core::mask::MaskStyle;
use finpulse_core::registry::CustomTypeDef;
use finpulse_core::seal::FieldSealer;
use finpulse_core::time::{MICROS_PER_DAY, day_label};
use finpulse_core::{Event, Registry, RegistryError, TypeId};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Default number of tail events that triggers a compaction.
pub const TAIL_EVENTS_MAX_DEFAULT: usize = 1_000_000;
/// Tail batches smaller than this are merged with the next append, so single-event ingestion
/// does not leave thousands of one-row batches for queries to scan; small appends of events
/// grow one open batch that is sealed at this many rows.
pub const TAIL_BATCH_ROWS_MIN: usize = 8192;
/// Rows per Parquet row group.
pub const PARQUET_ROW_GROUP_ROWS: usize = 256 * 1024;
/// Most rows per Parquet data page: the page index can skip a page, so smaller pages let a
/// scan for a rare event type read little more than that type's rows.
pub const PARQUET_PAGE_ROWS_MAX: usize = 4096;

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The log failed.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// Another process owns the directory.
    #[error("data directory {dir} is in use by another finpulse process ({owner}); stop it, or send the request to it over HTTP")]
    Locked {
        /// The directory.
        dir: PathBuf,
        /// What its OWNER file says.
        owner: String,
    },
    /// File-system error outside the log.
    #[error("{what} {path}: {source}")]
    Io {
        /// The operation.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A metadata file that does not parse.
    #[error("{path} is not valid: {problem}")]
    BadMetadata {
        /// The file.
        path: PathBuf,
        /// Why.
        problem: String,
    },
    /// A log record that passed its checksum but does not decode: the registry and the log disagree.
    #[error("log record {seq} does not decode: {problem}")]
    BadRecord {
        /// Its sequence number.
        seq: u64,
        /// Why.
        problem: String,
    },
    /// A custom type was refused.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Parquet or Arrow failed during compaction.
    #[error("compaction: {0}")]
    Compaction(String),
    /// The directory's personal fields are sealed and this process has not opened its keys.
    #[error(
        "data directory {dir} seals personal fields (it has a key store, keys/), and this process was not given its master key: set FINPULSE_MASTER_KEY or protect.master_key_file"
    )]
    Protected {
        /// The directory.
        dir: PathBuf,
    },
    /// A field could not be sealed or opened.
    #[error(transparent)]
    Seal(#[from] finpulse_core::seal::SealError),
    /// An earlier durability failure: the store refuses writes until reopened.
    #[error("the store stopped accepting writes after a durability failure: {0}")]
    Poisoned(String),
    /// An event whose log record would be over the log's record limit; nothing was written.
    #[error("event {event_index} of a batch encodes to {bytes} bytes, over the log's record limit of {limit} bytes; nothing was stored", limit = crate::wal::RECORD_BYTES_MAX)]
    RecordTooLarge {
        /// Its index in its batch.
        event_index: usize,
        /// Its encoded size.
        bytes: usize,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { what, path: path.to_path_buf(), source }
}

/// Store options.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// Log segment options.
    pub wal: WalOptions,
    /// Tail size that triggers compaction.
    pub tail_events_max: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { wal: WalOptions::default(), tail_events_max: TAIL_EVENTS_MAX_DEFAULT }
    }
}

/// What happened to one event of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendStatus {
    /// Stored, durably.
    Accepted,
    /// Its event_id was stored before (or earlier in the same append): acknowledged, not stored
    /// again. In a group [`PreparedEvents::following_the_first`], also every later event of a
    /// group whose first event is a duplicate.
    Duplicate,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Manifest {
    /// Log records below this sequence number are in Parquet.
    compacted_through_seq: u64,
    files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ManifestFile {
    path: String,
    day: String,
    rows: u64,
    /// Whether the file stores each masked field's masked form ([`crate::columns::masked_form_column`]);
    /// files compacted before they were stored lack it and are masked as they are read.
    #[serde(default)]
    masked_forms: bool,
}

/// What queries read: a consistent cut of Parquet files plus the tail after them.
#[derive(Clone)]
pub struct StoreView {
    /// The registry in force.
    pub registry: Arc<Registry>,
    /// The wide `events` schema of that registry.
    pub schema: SchemaRef,
    /// Compacted Parquet files (absolute paths).
    pub files: Vec<PathBuf>,
    /// For each of `files`, whether it stores the masked form of every masked field beside it
    /// ([`crate::columns::masked_fields`]); older files do not, and are masked as read.
    pub masked_forms: Vec<bool>,
    /// Durable events not yet compacted, as batches (older ones may have a narrower schema).
    pub tail: Vec<RecordBatch>,
    /// The log position of the tail's first row: the tail is the log from here on, one row per
    /// record in log order, so row `i` of the tail is record `tail_first_seq + i` ([`SEQ_COLUMN`]).
    pub tail_first_seq: u64,
    /// What opens the sealed fields the files and the tail hold, when the directory is protected
    /// ([`crate::protection`]).
    pub sealer: Option<Arc<dyn FieldSealer>>,
}

/// Counters for metrics and status.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreStats {
    /// Records in the log.
    pub log_records: u64,
    /// Bytes in the log.
    pub log_bytes: u64,
    /// Distinct event ids stored.
    pub events_stored: u64,
    /// Events in the tail.
    pub tail_events: u64,
    /// Parquet files.
    pub parquet_files: u64,
}

/// What a compaction did.
#[derive(Debug, Clone, Default)]
pub struct CompactionReport {
    /// Events written to Parquet.
    pub events: u64,
    /// Files written.
    pub files: u64,
}

/// The owner of a data directory.
pub struct EventStore {
    dir: PathBuf,
    opts: StoreOptions,
    _lock: File,
    wal: Wal,
    registry: Arc<Registry>,
    schema: SchemaRef,
    dedup: DedupIndex,
    manifest: Manifest,
    tail_rows: usize,
    shared: Arc<RwLock<Shared>>,
    poisoned: Option<String>,
    recovery: Recovery,
    /// The compaction running in the background, if any.
    compaction: Option<Compaction>,
    /// Where compactions are recorded as lineage runs, opened at the first compaction (opening
    /// reads every event, which a start need not wait for); `None` when it could not be opened.
    lineage: std::sync::OnceLock<Option<finpulse_lineage::LineageStore>>,
    /// Tail batches a running compaction covers: appends never merge into them.
    sealed_batches: usize,
    /// What seals personal fields, when the directory is protected.
    sealer: Option<Arc<dyn FieldSealer>>,
}

/// What the writer shares with readers: the view without its newest rows, and those rows,
/// still growing.
struct Shared {
    view: StoreView,
    /// Rows appended after the view's tail, as small appends of events bring them.
    open: OpenBatch,
}

impl Shared {
    /// Moves the open rows to the tail as a batch of their own.
    fn seal_open(&mut self, sealed_batches: usize) {
        if !self.open.is_empty() {
            let batch = self.open.finish();
            push_tail(&mut self.view, sealed_batches, batch);
        }
    }
}

/// Adds a batch to the tail. Small batches are merged like a binary counter (the last two
/// open ones whenever the older is no larger than the newer, until batches reach
/// [`TAIL_BATCH_ROWS_MIN`]): each row is copied O(log) times, not once per append, and readers
/// see at most a few dozen small batches. The first `sealed_batches` (a running compaction's)
/// are never merged into.
fn push_tail(view: &mut StoreView, sealed_batches: usize, batch: RecordBatch) {
    view.tail.push(batch);
    while view.tail.len() >= sealed_batches + 2 {
        let n = view.tail.len();
        let (older, newer) = (&view.tail[n - 2], &view.tail[n - 1]);
        if older.num_rows() >= TAIL_BATCH_ROWS_MIN || older.num_rows() > newer.num_rows() || older.schema() != newer.schema() {
            break;
        }
        // Both batches have the same schema, so concatenation cannot fail.
        let merged = concat_wide(&newer.schema(), &view.tail[n - 2..]).expect("same schema");
        view.tail.truncate(n - 2);
        view.tail.push(merged);
    }
}

/// A compaction running on its own thread over the first `batches` tail batches.
struct Compaction {
    handle: std::thread::JoinHandle<Result<Vec<ManifestFile>, StoreError>>,
    batches: usize,
    rows: usize,
    through_seq: u64,
    /// Its lineage run, ended when it is applied.
    run: finpulse_lineage::Run,
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    finpulse_core::durable::write_file(path, bytes).map_err(io_err("write durably", path))
}

fn read_json<T: for<'de> Deserialize<'de> + Default>(path: &Path) -> Result<T, StoreError> {
    match fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| StoreError::BadMetadata { path: path.to_path_buf(), problem: e.to_string() })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(StoreError::Io { what: "read", path: path.to_path_buf(), source: e }),
    }
}

/// The log's directory inside a data directory.
pub fn wal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("wal")
}

/// What the OWNER file of a data directory says, if anything.
pub fn owner_note(data_dir: &Path) -> Option<String> {
    fs::read_to_string(data_dir.join("OWNER")).ok().map(|s| s.trim().to_string())
}

impl EventStore {
    /// Opens (or creates) a data directory, taking its lock, recovering the log and rebuilding
    /// the idempotency index and the tail from it.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<Self, StoreError> {
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io_err("open", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    dir: dir.to_path_buf(),
                    owner: owner_note(dir).unwrap_or_else(|| "owner unknown".into()),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(StoreError::Io { what: "lock", path: lock_path, source: e }),
        }
        // A note left by an earlier owner would misname who holds the lock now; a server
        // replaces this one with its address (`set_owner_note`).
        write_atomically(&dir.join("OWNER"), format!("finpulse, pid {}", std::process::id()).as_bytes())?;
        let sealer = crate::protection::sealer_for(dir)?;
        let (registry, schema, manifest) = load_metadata(dir)?;
        remove_orphan_files(dir, &manifest)?;

        let mut dedup = DedupIndex::default();
        let mut tail_events: Vec<Event> = Vec::new();
        let mut tail: Vec<RecordBatch> = Vec::new();
        let mut tail_rows = 0;
        let watermark = manifest.compacted_through_seq;
        let (wal, recovery) = Wal::open(&wal_dir(dir), opts.wal, |seq, payload| {
            if seq < watermark {
                let id = codec::decode_event_id(payload).map_err(|e| bad_record(seq, e.to_string()))?;
                dedup.insert(id);
                return Ok(());
            }
            let event = codec::decode(payload).map_err(|e| bad_record(seq, e.to_string()))?;
            if registry.try_event_type(event.type_id).is_none() || event.fields.iter().any(|(f, _)| registry.try_field(*f).is_none()) {
                return Err(bad_record(seq, "it names a type or field the registry (schema.json) does not have".into()));
            }
            dedup.insert(&event.event_id);
            tail_events.push(event);
            if tail_events.len() >= TAIL_BATCH_ROWS_MIN * 8 {
                tail_rows += tail_events.len();
                tail.push(events_to_batch(&registry, &schema, tail_events.iter()));
                tail_events.clear();
            }
            Ok(())
        })
        .map_err(record_error)?;
        if !tail_events.is_empty() {
            tail_rows += tail_events.len();
            tail.push(events_to_batch(&registry, &schema, tail_events.iter()));
        }
        let (files, masked_forms) = manifest.files.iter().map(|f| (dir.join(&f.path), f.masked_forms)).unzip();
        let view = StoreView {
            registry: registry.clone(),
            schema: schema.clone(),
            files,
            masked_forms,
            tail,
            tail_first_seq: watermark,
            sealer: sealer.clone(),
        };
        let open = OpenBatch::with_capacity(&registry, schema.clone(), TAIL_BATCH_ROWS_MIN);
        Ok(Self {
            dir: dir.to_path_buf(),
            opts,
            _lock: lock,
            wal,
            registry,
            schema,
            dedup,
            manifest,
            tail_rows,
            shared: Arc::new(RwLock::new(Shared { view, open })),
            poisoned: None,
            recovery,
            compaction: None,
            lineage: std::sync::OnceLock::new(),
            sealed_batches: 0,
            sealer,
        })
    }

    /// The registry of a data directory (built-in types plus its custom ones), read without
    /// taking the lock.
    pub fn load_registry(dir: &Path) -> Result<Arc<Registry>, StoreError> {
        require_data(dir)?;
        Ok(load_metadata(dir)?.0)
    }

    /// Replays the log of a data directory in log order from `from_seq`, without taking its
    /// lock: `on_event(seq, event)` sees every committed event that `wanted(seq, type)` accepts
    /// (the others are not decoded).
    /// Returns the sequence number after the last record read. Live state is rebuilt this way.
    /// Sealed fields come opened (an erased user's are absent), so a protected directory needs
    /// its sealer installed ([`crate::protection`]).
    pub fn replay(
        dir: &Path,
        from_seq: u64,
        wanted: impl Fn(u64, TypeId) -> bool,
        mut on_event: impl FnMut(u64, Event),
    ) -> Result<u64, StoreError> {
        require_data(dir)?;
        let sealer = crate::protection::sealer_for(dir)?;
        let sealed = match &sealer {
            Some(_) => finpulse_core::seal::SealedFields::of(&load_metadata(dir)?.0),
            None => Default::default(),
        };
        let mut next = from_seq;
        let mut failed = None;
        Wal::read_from(&wal_dir(dir), from_seq, |seq, payload| {
            next = seq + 1;
            let type_id = codec::decode_type_id(payload).map_err(|e| bad_record(seq, e.to_string()))?;
            if wanted(seq, type_id) {
                let mut event = codec::decode(payload).map_err(|e| bad_record(seq, e.to_string()))?;
                if let Some(sealer) = &sealer
                    && let Err(e) = crate::protection::open_event(&**sealer, &sealed, &mut event)
                {
                    failed = Some(e);
                    return Err(bad_record(seq, "a sealed field does not open".into()));
                }
                on_event(seq, event);
            }
            Ok(())
        })
        .map_err(|e| failed.take().unwrap_or_else(|| record_error(e)))?;
        Ok(next)
    }

    /// A read-only view of a data directory without taking its lock or rebuilding the
    /// idempotency index: the manifest's Parquet files plus the log after them. Safe while
    /// another process writes, because the log is append-only, files are listed only once their
    /// manifest is durable, and a frame being written fails its checksum and ends the read.
    pub fn read_view(dir: &Path) -> Result<StoreView, StoreError> {
        require_data(dir)?;
        let sealer = crate::protection::sealer_for(dir)?;
        let (registry, schema, manifest) = load_metadata(dir)?;
        let mut events = Vec::new();
        let mut tail = Vec::new();
        Wal::read_from(&wal_dir(dir), manifest.compacted_through_seq, |seq, payload| {
            let event = codec::decode(payload).map_err(|e| bad_record(seq, e.to_string()))?;
            if registry.try_event_type(event.type_id).is_none() {
                return Err(bad_record(seq, "it names a type the registry (schema.json) does not have".into()));
            }
            events.push(event);
            if events.len() >= TAIL_BATCH_ROWS_MIN * 8 {
                tail.push(events_to_batch(&registry, &schema, events.iter()));
                events.clear();
            }
            Ok(())
        })
        .map_err(record_error)?;
        if !events.is_empty() {
            tail.push(events_to_batch(&registry, &schema, events.iter()));
        }
        let (files, masked_forms) = manifest.files.iter().map(|f| (dir.join(&f.path), f.masked_forms)).unzip();
        Ok(StoreView { registry, schema, files, masked_forms, tail, tail_first_seq: manifest.compacted_through_seq, sealer })
    }

    /// Records who owns the directory (e.g. "finpulse serve, pid 42, http://127.0.0.1:8080"),
    /// so a second process can say so in its error.
    pub fn set_owner_note(&self, note: &str) -> Result<(), StoreError> {
        write_atomically(&self.dir.join("OWNER"), note.as_bytes())
    }

    /// What recovery found when the store was opened.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The registry in force.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// A handle queries use to take consistent views while the store keeps writing.
    pub fn view_handle(&self) -> ViewHandle {
        ViewHandle(self.shared.clone())
    }

    /// Registers a custom event type and persists it before it can be used.
    pub fn register_type(&mut self, def: CustomTypeDef) -> Result<TypeId, StoreError> {
        let mut next = (*self.registry).clone();
        let id = next.register(def)?;
        let json = serde_json::to_vec_pretty(next.custom_defs()).map_err(|e| StoreError::Compaction(e.to_string()))?;
        write_atomically(&self.dir.join("schema.json"), &json)?;
        self.registry = Arc::new(next);
        self.schema = events_schema(&self.registry);
        let mut shared = self.shared.write().expect(VIEW_POISONED);
        // The open rows keep the schema they were built for.
        shared.seal_open(self.sealed_batches);
        shared.open = OpenBatch::with_capacity(&self.registry, self.schema.clone(), TAIL_BATCH_ROWS_MIN);
        shared.view.registry = self.registry.clone();
        shared.view.schema = self.schema.clone();
        Ok(id)
    }

    /// Appends groups of events with one fsync for all (group commit), preparing them on this
    /// thread; see [`EventStore::append_prepared`].
    pub fn append_groups(&mut self, groups: &[Vec<Event>]) -> Result<Vec<Vec<AppendStatus>>, StoreError> {
        let preparer = self.preparer();
        let prepared = groups.iter().map(|g| preparer.prepare(g)).collect::<Result<Vec<_>, _>>()?;
        self.append_prepared(&prepared)
    }

    /// Appends groups of prepared events with one fsync for all (group commit). Each event is
    /// either accepted (stored durably) or a duplicate of an id already stored, or earlier in
    /// the same append. When this returns Ok, every accepted event survives a crash.
    pub fn append_prepared(&mut self, groups: &[PreparedEvents]) -> Result<Vec<Vec<AppendStatus>>, StoreError> {
        if let Some(why) = &self.poisoned {
            return Err(StoreError::Poisoned(why.clone()));
        }
        // Refused before anything is buffered: a record the log cannot take is the caller's
        // error, not a durability failure, and must not stop the store.
        for group in groups {
            group.check_record_sizes()?;
        }
        let mut statuses = Vec::with_capacity(groups.len());
        let mut inserted: Vec<u128> = Vec::new();
        for group in groups {
            let mut s = Vec::with_capacity(group.len());
            for (i, &key) in group.keys.iter().enumerate() {
                let first_refused = group.follow_first && i > 0 && s[0] == AppendStatus::Duplicate;
                if first_refused || !self.dedup.insert_key(key) {
                    s.push(AppendStatus::Duplicate);
                    continue;
                }
                inserted.push(key);
                if let Err(e) = self.wal.append_frame(group.frame(i)) {
                    inserted.iter().for_each(|k| self.dedup.remove_key(*k));
                    return Err(self.poison(e));
                }
                s.push(AppendStatus::Accepted);
            }
            statuses.push(s);
        }
        if let Err(e) = self.wal.commit() {
            inserted.iter().for_each(|k| self.dedup.remove_key(*k));
            return Err(self.poison(e));
        }
        // Accepted events go to the tail in log order: small groups' events into the open
        // batch, a prepared batch after the open rows, sealed before it.
        let mut shared = self.shared.write().expect(VIEW_POISONED);
        for (group, s) in groups.iter().zip(&statuses) {
            let accepted = s.iter().filter(|s| **s == AppendStatus::Accepted).count();
            self.tail_rows += accepted;
            match &group.rows {
                Rows::Events(events) => {
                    for (e, _) in events.iter().zip(s).filter(|(_, s)| **s == AppendStatus::Accepted) {
                        shared.open.push(&self.registry, e);
                    }
                }
                Rows::Batch(batch) if accepted > 0 => {
                    shared.seal_open(self.sealed_batches);
                    let batch = if accepted == s.len() {
                        batch.clone()
                    } else {
                        let mask = arrow::array::BooleanArray::from_iter(s.iter().map(|s| Some(*s == AppendStatus::Accepted)));
                        // The mask has one entry per row of the batch, so filtering cannot fail.
                        arrow::compute::filter_record_batch(batch, &mask).expect("mask matches the batch")
                    };
                    push_tail(&mut shared.view, self.sealed_batches, batch);
                }
                Rows::Batch(_) => {}
            }
        }
        if shared.open.len() >= TAIL_BATCH_ROWS_MIN {
            shared.seal_open(self.sealed_batches);
        }
        drop(shared);
        self.compact_in_background();
        Ok(statuses)
    }

    /// What callers need to prepare events for this store on their own threads.
    pub fn preparer(&self) -> Preparer {
        Preparer::new(self.registry.clone(), self.schema.clone(), self.sealer.clone())
    }

    fn poison(&mut self, e: WalError) -> StoreError {
        // After a failed write or fsync the file's state is unknown (fsyncgate): stop writing
        // rather than acknowledge on top of it. Reopening recovers from what is on disk.
        let why = e.to_string();
        tracing::error!(error = %why, "log write failed; refusing further writes");
        self.poisoned = Some(why);
        StoreError::Wal(e)
    }

    /// Applies a finished background compaction, and starts one when the tail is over its
    /// limit. The tail may reach twice its limit while a compaction runs; past that, appends
    /// wait for it. Compaction errors are logged: the events are durable already and stay in
    /// the (queryable) tail, and the next trigger retries.
    fn compact_in_background(&mut self) {
        let max = self.opts.tail_events_max;
        let wait = self.tail_rows >= max.saturating_mul(2);
        if let Err(e) = self.finish_compaction(wait) {
            tracing::error!(error = %e, "compaction failed");
        }
        if self.tail_rows >= max && self.compaction.is_none() {
            self.start_compaction();
        }
    }

    /// Writes the whole tail to Parquet now (after any compaction already running), one file
    /// per UTC day touched, each sorted by (type, user_id, ts) with ties in log order, then records
    /// the new log position in the manifest.
    pub fn compact(&mut self) -> Result<CompactionReport, StoreError> {
        let earlier = self.finish_compaction(true)?.unwrap_or_default();
        self.start_compaction();
        let now = self.finish_compaction(true)?.unwrap_or_default();
        Ok(CompactionReport { events: earlier.events + now.events, files: earlier.files + now.files })
    }

    fn start_compaction(&mut self) {
        if self.compaction.is_some() {
            return;
        }
        let batches: Vec<RecordBatch> = {
            let mut shared = self.shared.write().expect(VIEW_POISONED);
            // Every committed row, the open ones included, goes into the compaction.
            shared.seal_open(self.sealed_batches);
            shared.view.tail.clone()
        };
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        if rows == 0 {
            return;
        }
        let count = batches.len();
        // Every tail batch is committed, so the tail is exactly the log from the manifest's
        // position to the log's end.
        let job = CompactionJob {
            dir: self.dir.clone(),
            schema: self.schema.clone(),
            masked: crate::columns::masked_fields(&self.registry),
            opener: self.sealer.clone().map(|s| (s, finpulse_core::seal::SealedFields::of(&self.registry), self.registry.clone())),
            batches,
            first_seq: self.manifest.compacted_through_seq,
            through_seq: self.wal.next_seq(),
        };
        let through_seq = job.through_seq;
        let output = crate::lineage::compacted_files(&self.dir, &self.schema, &self.registry, &job.masked);
        let (run, started) = finpulse_lineage::Run::start(
            crate::lineage::JOB_NAMESPACE,
            crate::lineage::COMPACTION_JOB,
            vec![crate::lineage::dataset(&self.dir, "wal")],
            vec![output],
        );
        let handle = std::thread::Builder::new().name("finpulse-compaction".into()).spawn(move || job.run());
        match handle {
            Ok(handle) => {
                crate::lineage::record(self.lineage_store(), started);
                self.sealed_batches = count;
                self.compaction = Some(Compaction { handle, batches: count, rows, through_seq, run });
            }
            Err(e) => tracing::error!(error = %e, "could not start a compaction thread"),
        }
    }

    /// Applies the running compaction once it has finished (waiting for it when `wait`):
    /// lists its files in the manifest, then drops the batches it covered from the tail.
    fn finish_compaction(&mut self, wait: bool) -> Result<Option<CompactionReport>, StoreError> {
        let Some(c) = self.compaction.take() else { return Ok(None) };
        if !wait && !c.handle.is_finished() {
            self.compaction = Some(c);
            return Ok(None);
        }
        let result = c.handle.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        self.sealed_batches = 0;
        // Files of a failed compaction are not in the manifest; the next open removes them.
        let listed = result.and_then(|new_files| {
            let mut manifest = self.manifest.clone();
            manifest.compacted_through_seq = c.through_seq;
            manifest.files.extend(new_files.iter().cloned());
            let json = serde_json::to_vec_pretty(&manifest).map_err(|e| StoreError::Compaction(e.to_string()))?;
            write_atomically(&self.dir.join("manifest.json"), &json)?;
            Ok((new_files, manifest))
        });
        let (new_files, manifest) = match listed {
            Ok(l) => l,
            Err(e) => {
                crate::lineage::record(self.lineage_store(), c.run.fail(&e.to_string()));
                return Err(e);
            }
        };
        self.manifest = manifest;
        let output =
            crate::lineage::compacted_files(&self.dir, &self.schema, &self.registry, &crate::columns::masked_fields(&self.registry));
        {
            let mut shared = self.shared.write().expect(VIEW_POISONED);
            shared.view.files.extend(new_files.iter().map(|f| self.dir.join(&f.path)));
            shared.view.masked_forms.extend(new_files.iter().map(|f| f.masked_forms));
            shared.view.tail.drain(..c.batches);
            shared.view.tail_first_seq = c.through_seq;
        }
        self.tail_rows -= c.rows;
        crate::lineage::record(self.lineage_store(), c.run.complete(vec![output]));
        Ok(Some(CompactionReport { events: c.rows as u64, files: new_files.len() as u64 }))
    }

    fn lineage_store(&self) -> Option<&finpulse_lineage::LineageStore> {
        self.lineage.get_or_init(|| crate::lineage::open(&self.dir)).as_ref()
    }

    /// Counters for metrics.
    pub fn stats(&self) -> StoreStats {
        let files = self.manifest.files.len() as u64;
        StoreStats {
            log_records: self.wal.next_seq(),
            log_bytes: self.wal.size_bytes(),
            events_stored: self.dedup.len() as u64,
            tail_events: self.tail_rows as u64,
            parquet_files: files,
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for EventStore {
    fn drop(&mut self) {
        // Lets a running compaction finish and be listed, rather than leave its files to be
        // removed and redone at the next open.
        if let Err(e) = self.finish_compaction(true) {
            tracing::error!(error = %e, "compaction failed");
        }
    }
}

/// The work of one compaction, owned by its thread.
struct CompactionJob {
    dir: PathBuf,
    schema: SchemaRef,
    /// The fields whose masked forms the files store, with their styles.
    masked: Vec<(String, MaskStyle)>,
    /// What opens sealed fields for their masked forms, when the directory is protected.
    opener: Option<(Arc<dyn FieldSealer>, finpulse_core::seal::SealedFields, Arc<Registry>)>,
    batches: Vec<RecordBatch>,
    first_seq: u64,
    through_seq: u64,
}

impl CompactionJob {
    /// Writes the batches as one sorted file per UTC day; returns the files for the manifest.
    fn run(self) -> Result<Vec<ManifestFile>, StoreError> {
        let tail: Vec<RecordBatch> = self.batches.iter().map(|b| widen(b, &self.schema)).collect();
        let all = concat_wide(&self.schema, &tail).map_err(|e| StoreError::Compaction(e.to_string()))?;
        drop(tail);
        drop(self.batches);
        // The tail is the log from `first_seq` in order: each row's log position goes with it
        // into the file, so ties in time keep the order events were accepted in.
        let all = with_seq(&all, self.first_seq).map_err(|e| StoreError::Compaction(e.to_string()))?;
        let sorted = sort_by_day_type_user_ts(&all)?;
        drop(all);
        let opened = match &self.opener {
            Some((sealer, sealed, registry)) => open_sealed_columns(&sorted, &**sealer, sealed, registry)?,
            None => sorted.clone(),
        };
        let sorted = with_masked_forms(&sorted, &opened, &self.masked).map_err(|e| StoreError::Compaction(e.to_string()))?;
        drop(opened);
        let ts = sorted.column(2).as_primitive::<TimestampMicrosecondType>();
        let mut new_files = Vec::new();
        let mut start = 0;
        while start < sorted.num_rows() {
            let day = ts.value(start).div_euclid(MICROS_PER_DAY);
            let mut end = start + 1;
            while end < sorted.num_rows() && ts.value(end).div_euclid(MICROS_PER_DAY) == day {
                end += 1;
            }
            let slice = sorted.slice(start, end - start);
            let label = day_label(day);
            let rel = format!("parquet/day={label}/part-{:020}-{:020}.parquet", self.first_seq, self.through_seq);
            write_parquet(&self.dir, &self.dir.join(&rel), &slice)?;
            new_files.push(ManifestFile { path: rel, day: label, rows: slice.num_rows() as u64, masked_forms: true });
            start = end;
        }
        Ok(new_files)
    }
}

/// `batch` with every sealed field opened (an erased user's values null), for the masked forms:
/// the forms are written from clear values, the files keep the sealed ones.
fn open_sealed_columns(
    batch: &RecordBatch,
    sealer: &dyn FieldSealer,
    sealed: &finpulse_core::seal::SealedFields,
    registry: &Registry,
) -> Result<RecordBatch, StoreError> {
    let users = batch.column(1).clone();
    let mut columns = batch.columns().to_vec();
    for &field in sealed.ids() {
        let name = &registry.field(field).name;
        let Ok(i) = batch.schema().index_of(name) else { continue };
        if columns[i].null_count() == columns[i].len() {
            continue;
        }
        columns[i] = crate::protection::open_column(sealer, field, &users, &columns[i])?;
    }
    RecordBatch::try_new(batch.schema(), columns).map_err(|e| StoreError::Compaction(e.to_string()))
}

fn write_parquet(dir: &Path, path: &Path, batch: &RecordBatch) -> Result<(), StoreError> {
    let parent = path.parent().unwrap_or(dir);
    fs::create_dir_all(parent).map_err(io_err("create", parent))?;
    let file = File::create(path).map_err(io_err("create", path))?;
    // Event ids are unique: a dictionary would only be built to be abandoned.
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(PARQUET_ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PARQUET_PAGE_ROWS_MAX)
        .set_column_dictionary_enabled(ColumnPath::from("event_id"), false)
        // Log positions are distinct and, within a user's run of one type, rising: deltas pack
        // them in a few bits each where a dictionary or plain encoding would take eight bytes.
        .set_column_dictionary_enabled(ColumnPath::from(SEQ_COLUMN), false)
        .set_column_encoding(ColumnPath::from(SEQ_COLUMN), parquet::basic::Encoding::DELTA_BINARY_PACKED)
        .build();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(|e| StoreError::Compaction(e.to_string()))?;
    writer.write(batch).map_err(|e| StoreError::Compaction(e.to_string()))?;
    let file = writer.into_inner().map_err(|e| StoreError::Compaction(e.to_string()))?;
    file.sync_all().map_err(io_err("fsync", path))?;
    sync_dir(parent)?;
    sync_dir(&dir.join("parquet"))?;
    Ok(())
}

/// Refuses a directory that holds no finpulse data, saying so.
fn require_data(dir: &Path) -> Result<(), StoreError> {
    if dir.join("wal").exists() {
        return Ok(());
    }
    Err(StoreError::Io {
        what: "open",
        path: dir.to_path_buf(),
        source: io::Error::new(io::ErrorKind::NotFound, "no finpulse data here (no wal/ directory)"),
    })
}

fn bad_record(seq: u64, problem: String) -> WalError {
    // Carried through the log's callback as a Corrupt error with an empty path; `open` maps it
    // back to StoreError::BadRecord.
    WalError::Corrupt { path: PathBuf::new(), offset: seq, problem }
}

/// The registry (built-ins plus `schema.json`), its `events` schema, and the manifest.
fn load_metadata(dir: &Path) -> Result<(Arc<Registry>, SchemaRef, Manifest), StoreError> {
    let defs: Vec<CustomTypeDef> = read_json(&dir.join("schema.json"))?;
    let registry = Arc::new(Registry::with_custom(&defs)?);
    let schema = events_schema(&registry);
    let manifest: Manifest = read_json(&dir.join("manifest.json"))?;
    Ok((registry, schema, manifest))
}

/// Turns the log error `bad_record` carried back into [`StoreError::BadRecord`].
fn record_error(e: WalError) -> StoreError {
    match e {
        WalError::Corrupt { path, offset, problem } if path.as_os_str().is_empty() => StoreError::BadRecord { seq: offset, problem },
        other => StoreError::Wal(other),
    }
}

fn remove_orphan_files(dir: &Path, manifest: &Manifest) -> Result<(), StoreError> {
    let root = dir.join("parquet");
    let Ok(days) = fs::read_dir(&root) else { return Ok(()) };
    let known: std::collections::HashSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    for day in days.flatten() {
        let Ok(files) = fs::read_dir(day.path()) else { continue };
        for file in files.flatten() {
            let path = file.path();
            let rel = path.strip_prefix(dir).ok().and_then(|p| p.to_str()).unwrap_or_default().to_string();
            if !known.contains(rel.as_str()) {
                // Written by a compaction that crashed before its manifest update: the events
                // are still in the log tail and will be compacted again.
                tracing::warn!(path = %path.display(), "removing Parquet file not in the manifest");
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
            }
        }
    }
    Ok(())
}

/// Sorts rows by (UTC day, type, user_id, ts), ties in their current (log) order (stable).
fn sort_by_day_type_user_ts(batch: &RecordBatch) -> Result<RecordBatch, StoreError> {
    let users = batch.column(1).as_string::<i32>();
    let ts = batch.column(2).as_primitive::<TimestampMicrosecondType>();
    let kinds = batch.column_by_name("type").ok_or_else(|| StoreError::Compaction("the events have no type column".into()))?;
    let kinds = kinds.as_string_opt::<i32>().ok_or_else(|| StoreError::Compaction("the type column is not text".into()))?;
    let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        let (ta, tb) = (ts.value(a), ts.value(b));
        ta.div_euclid(MICROS_PER_DAY)
            .cmp(&tb.div_euclid(MICROS_PER_DAY))
            .then_with(|| kinds.value(a).cmp(kinds.value(b)))
            .then_with(|| {
                let ua = (!users.is_null(a)).then(|| users.value(a));
                let ub = (!users.is_null(b)).then(|| users.value(b));
                ua.cmp(&ub)
            })
            .then(ta.cmp(&tb))
    });
    take_wide(batch, &UInt32Array::from(order)).map_err(|e| StoreError::Compaction(e.to_string()))
}

/// Prepares events for [`EventStore::append_prepared`] under one registry.
#[derive(Clone)]
pub struct Preparer {
    registry: Arc<Registry>,
    schema: SchemaRef,
    /// What seals personal fields, and which fields, when the directory is protected.
    sealer: Option<(Arc<dyn FieldSealer>, Arc<finpulse_core::seal::SealedFields>)>,
}

impl Preparer {
    fn new(registry: Arc<Registry>, schema: SchemaRef, sealer: Option<Arc<dyn FieldSealer>>) -> Self {
        let sealer = sealer.map(|s| (s, Arc::new(finpulse_core::seal::SealedFields::of(&registry))));
        Self { registry, schema, sealer }
    }

    /// Whether `user` was erased: their events are refused ([`finpulse_core::seal::SealError::Erased`]).
    pub fn is_erased(&self, user: &str) -> bool {
        self.sealer.as_ref().is_some_and(|(s, _)| s.is_erased(user))
    }

    /// The events as the log takes them: sealed fields sealed when the directory is protected.
    fn sealed<'a>(&self, events: &'a [Event]) -> Result<std::borrow::Cow<'a, [Event]>, StoreError> {
        match &self.sealer {
            Some((sealer, sealed)) if !sealed.is_empty() => Ok(match crate::protection::seal_events(&**sealer, sealed, events)? {
                Some(events) => std::borrow::Cow::Owned(events),
                None => std::borrow::Cow::Borrowed(events),
            }),
            _ => Ok(std::borrow::Cow::Borrowed(events)),
        }
    }

    /// The registry events are prepared under.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Encodes events for the log, computes their idempotency keys and builds their tail
    /// batch: the costly part of an append, done by the caller so the single writer only
    /// deduplicates, writes and fsyncs.
    /// Sealed fields are sealed first when the directory is protected (keys for new users made
    /// durable before); an erased user's event is [`finpulse_core::seal::SealError::Erased`].
    pub fn prepare(&self, events: &[Event]) -> Result<PreparedEvents, StoreError> {
        let events = self.sealed(events)?;
        let batch = events_to_batch(&self.registry, &self.schema, events.iter());
        Ok(self.encode(&events, Rows::Batch(batch)))
    }

    /// Like [`Preparer::prepare`], but a group of at most [`WRITER_BUILT_GROUP_EVENTS_MAX`]
    /// events is kept as events: the writer builds one batch for every such group of a commit,
    /// where a batch per group would cost some seventy columns for a decision's two events.
    pub fn prepare_shared(&self, events: Arc<Vec<Event>>) -> Result<PreparedEvents, StoreError> {
        if events.len() > WRITER_BUILT_GROUP_EVENTS_MAX {
            return self.prepare(&events);
        }
        let events = match self.sealed(&events)? {
            std::borrow::Cow::Owned(sealed) => Arc::new(sealed),
            std::borrow::Cow::Borrowed(_) => events,
        };
        let rows = Rows::Events(events.clone());
        Ok(self.encode(&events, rows))
    }

    fn encode(&self, events: &[Event], rows: Rows) -> PreparedEvents {
        let mut encoded = Vec::with_capacity(events.len() * ENCODED_BYTES_GUESS);
        let mut ends = Vec::with_capacity(events.len());
        let mut keys = Vec::with_capacity(events.len());
        let mut largest = (0, 0);
        for (i, event) in events.iter().enumerate() {
            let start = encoded.len();
            put_frame(&mut encoded, |out| codec::encode(event, out));
            if encoded.len() - start > largest.1 {
                largest = (i, encoded.len() - start);
            }
            ends.push(encoded.len());
            keys.push(DedupIndex::key(&event.event_id));
        }
        PreparedEvents { keys, encoded, ends, rows, follow_first: false, largest }
    }

    /// Prepares events as `parts` groups in input order, one thread each.
    pub fn prepare_in_parts(&self, events: &[Event], parts: usize) -> Result<Vec<PreparedEvents>, StoreError> {
        if parts <= 1 || events.len() < 2 {
            return Ok(vec![self.prepare(events)?]);
        }
        let per = events.len().div_ceil(parts);
        std::thread::scope(|s| {
            let handles: Vec<_> = events.chunks(per).map(|part| s.spawn(move || self.prepare(part))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect::<Result<Vec<_>, _>>()
        })
    }
}

/// Bytes per event an encoding buffer is first sized for.
const ENCODED_BYTES_GUESS: usize = 96;

/// Groups of at most this many events may be handed to the writer as events, for it to build
/// into the tail batch of their commit ([`Preparer::prepare_shared`]).
pub const WRITER_BUILT_GROUP_EVENTS_MAX: usize = 64;

/// Events ready for the log: their keys, log frames and tail rows, in input order. A batch
/// prepared before a custom type was registered is narrower than the store's schema; the tail
/// and compaction widen it.
pub struct PreparedEvents {
    keys: Vec<u128>,
    encoded: Vec<u8>,
    ends: Vec<usize>,
    rows: Rows,
    /// The events after the first are stored only if the first is (a record about it).
    follow_first: bool,
    /// The index and framed size of the largest record, so its fit in the log is checked once.
    largest: (usize, usize),
}

/// The tail rows of prepared events: built, or left for the writer to build.
enum Rows {
    Batch(RecordBatch),
    Events(Arc<Vec<Event>>),
}

impl PreparedEvents {
    /// Events in the group.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the group is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Stores the events after the first only if the first is new (not a duplicate): records
    /// about the first, such as a decision on a transaction, never outlive it.
    pub fn following_the_first(mut self) -> Self {
        self.follow_first = true;
        self
    }

    /// Whether every record fits the log ([`crate::wal::RECORD_BYTES_MAX`]); the error names
    /// the first that does not.
    pub fn check_record_sizes(&self) -> Result<(), StoreError> {
        let (event_index, framed) = self.largest;
        let bytes = framed.saturating_sub(crate::wal::FRAME_HEADER_BYTES);
        if bytes > crate::wal::RECORD_BYTES_MAX {
            return Err(StoreError::RecordTooLarge { event_index, bytes });
        }
        Ok(())
    }

    fn frame(&self, i: usize) -> Frame<'_> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Frame::from_put(&self.encoded[start..self.ends[i]])
    }
}

/// A panic while the view was being changed leaves it matching no prefix of the log; readers
/// must not go on from it (the server's writer stops the process first; a start rebuilds it).
const VIEW_POISONED: &str = "the store's view is half-changed: a thread panicked while changing it";

/// A shared handle to the store's current view.
#[derive(Clone)]
pub struct ViewHandle(Arc<RwLock<Shared>>);

impl ViewHandle {
    /// The registry in force, without copying the rest of the view.
    pub fn registry(&self) -> Arc<Registry> {
        self.0.read().expect(VIEW_POISONED).view.registry.clone()
    }

    /// A preparer for the registry in force.
    pub fn preparer(&self) -> Preparer {
        let shared = self.0.read().expect(VIEW_POISONED);
        Preparer::new(shared.view.registry.clone(), shared.view.schema.clone(), shared.view.sealer.clone())
    }

    /// A consistent cut: files and tail taken under one lock (the open rows copied).
    pub fn snapshot(&self) -> StoreView {
        let shared = self.0.read().expect(VIEW_POISONED);
        let mut view = shared.view.clone();
        view.tail.extend(shared.open.snapshot());
        view
    }
}
