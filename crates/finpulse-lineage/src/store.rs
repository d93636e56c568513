//! The lineage store: run events appended as NDJSON (one event per line, exactly the spec's
//! JSON, so the file can be handed to any OpenLineage tool) to `events.ndjson`, fsync'd before
//! an append returns.
//!
//! An OS lock on `LOCK` (not on the events file, which retention replaces by rename) is held
//! across each append and each rewrite, so the server and a CLI command take turns. A last
//! line without its newline is an append cut by a crash, never acknowledged: it is removed on
//! open and before each append. Any other line that is not an event stops reads with its line
//! number: a damaged store is reported, not skipped over.
//!
//! Lineage keeps its own retention ([`LineageStore::prune_older_than`]), apart from the event
//! log's: it describes derived data, which can outlive the events it came from.

use crate::LineageError;
use crate::event::{DatasetId, RunEvent};
use crate::graph::{Graph, LineageIndex};
use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The events file's name.
pub const EVENTS_FILE: &str = "events.ndjson";
const LOCK_FILE: &str = "LOCK";
/// Longest event, as one line of JSON without its newline. Far above a real derivation's
/// event (tens of datasets, hundreds of columns), low enough that a read never holds much.
pub const EVENT_LINE_BYTES_MAX: usize = 1 << 20;
/// Most events one append takes (one write, one fsync).
pub const APPEND_EVENTS_MAX: usize = 1024;
/// How far back from the end a torn tail is looked for, in bytes per read.
const TAIL_CHUNK_BYTES: u64 = 64 * 1024;

/// Where derivations send their events: the store, or in tests anything that keeps them.
pub trait LineageSink: Send + Sync {
    /// Records `events` durably, all or none, before returning.
    fn record(&self, events: &[RunEvent]) -> Result<(), LineageError>;
}

/// What [`LineageStore::prune_older_than`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Events kept.
    pub kept: u64,
    /// Events removed.
    pub removed: u64,
}

/// The lineage store in one directory.
pub struct LineageStore {
    dir: PathBuf,
    /// Held across appends and rewrites, so this process's threads take turns before the OS
    /// lock makes processes do so.
    writing: Mutex<()>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LineageError + '_ {
    move |source| LineageError::Io { path: path.to_path_buf(), source }
}

impl LineageStore {
    /// Opens (creating when absent) the store in `dir`, cuts an append torn by a crash, and
    /// reads every event once, so a damaged store is found now and not at the first question.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, LineageError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let store = Self { dir, writing: Mutex::new(()) };
        {
            let _writing = store.writing.lock();
            let _lock = store.lock()?;
            store.create_if_absent()?;
            store.cut_torn_tail()?;
        }
        store.scan(|_| {})?;
        Ok(store)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The events file.
    pub fn events_path(&self) -> PathBuf {
        self.dir.join(EVENTS_FILE)
    }

    /// Appends `events` with one write and one fsync (group commit: a batch costs the disk one
    /// flush, not one per event). On an error the part of the batch already written is cut
    /// back off (as far as the failing disk allows), so a retry does not record it twice.
    pub fn append(&self, events: &[RunEvent]) -> Result<(), LineageError> {
        if events.len() > APPEND_EVENTS_MAX {
            return Err(LineageError::TooManyEvents { count: events.len(), max: APPEND_EVENTS_MAX });
        }
        let mut bytes = Vec::new();
        for event in events {
            bytes.extend_from_slice(&encode(event)?);
            bytes.push(b'\n');
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let _writing = self.writing.lock();
        let _lock = self.lock()?;
        // Another process may have crashed mid-append since: glued to its torn line, ours
        // would be unreadable too.
        let len_before = self.cut_torn_tail()?;
        let path = self.events_path();
        let mut file = OpenOptions::new().append(true).open(&path).map_err(io(&path))?;
        if let Err(e) = file.write_all(&bytes).and_then(|()| file.sync_data()) {
            // Take back what part of the batch reached the file, so a retry does not repeat it.
            let _ = file.set_len(len_before).and_then(|()| file.sync_data());
            return Err(io(&path)(e));
        }
        Ok(())
    }

    /// Every stored event with `eventTime` at or after `since_us` (UTC microseconds; all events
    /// when `None`), in the order they were appended.
    pub fn events_since(&self, since_us: Option<i64>) -> Result<Vec<RunEvent>, LineageError> {
        let mut events = Vec::new();
        self.scan(|event| {
            if since_us.is_none_or(|since| event.event_time_us >= since) {
                events.push(event);
            }
        })?;
        Ok(events)
    }

    /// The datasets and jobs up to `depth` jobs upstream and downstream of `root`, from the
    /// stored COMPLETE events. See [`LineageIndex::graph`].
    pub fn graph(&self, root: &DatasetId, depth: usize) -> Result<Graph, LineageError> {
        crate::graph::check_depth(depth)?;
        let mut index = LineageIndex::new();
        self.scan(|event| index.add(&event))?;
        index.graph(root, depth)
    }

    /// Removes every event whose `eventTime` is before `cutoff_us` (UTC microseconds) by
    /// rewriting the file durably (a crash leaves the old file or the new, never a mix). Each
    /// event is judged by its own time: a run's START may go before its COMPLETE.
    pub fn prune_older_than(&self, cutoff_us: i64) -> Result<Pruned, LineageError> {
        let _writing = self.writing.lock();
        let _lock = self.lock()?;
        self.cut_torn_tail()?;
        let path = self.events_path();
        let mut keep = Vec::new();
        let mut lines = Lines::open(&path)?;
        while let Some((number, line)) = lines.next()? {
            keep.push(parse(&path, number, line)?.event_time_us >= cutoff_us);
        }
        let kept = keep.iter().filter(|k| **k).count() as u64;
        let pruned = Pruned { kept, removed: keep.len() as u64 - kept };
        if pruned.removed == 0 {
            return Ok(pruned);
        }
        finpulse_core::durable::write_with(&path, |out| {
            let mut lines = Lines::open(&path).map_err(std::io::Error::other)?;
            let mut keep = keep.iter();
            while let Some((_, line)) = lines.next().map_err(std::io::Error::other)? {
                // The file cannot change under the lock: the second reading meets the same lines.
                if *keep.next().expect("the same lines as the first reading") {
                    out.write_all(line)?;
                    out.write_all(b"\n")?;
                }
            }
            Ok(())
        })
        .map_err(io(&path))?;
        Ok(pruned)
    }

    /// Reads every complete event, in file order, without taking the lock: a rewrite replaces
    /// the file whole, and an append in progress is an unterminated last line, not yet read.
    fn scan(&self, mut visit: impl FnMut(RunEvent)) -> Result<(), LineageError> {
        let path = self.events_path();
        let mut lines = Lines::open(&path)?;
        while let Some((number, line)) = lines.next()? {
            visit(parse(&path, number, line)?);
        }
        Ok(())
    }

    fn lock(&self) -> Result<File, LineageError> {
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io(&path))?;
        file.lock().map_err(io(&path))?;
        Ok(file)
    }

    /// Creates the empty events file, and makes its name durable with the folder's fsync.
    fn create_if_absent(&self) -> Result<(), LineageError> {
        let path = self.events_path();
        match std::fs::metadata(&path) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path)(e)),
        }
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io(&self.dir))
    }

    /// Removes an unterminated last line (an append cut by a crash) and answers the length of
    /// the complete lines. Called under the OS lock.
    fn cut_torn_tail(&self) -> Result<u64, LineageError> {
        let path = self.events_path();
        let mut file = OpenOptions::new().read(true).write(true).open(&path).map_err(io(&path))?;
        let len = file.metadata().map_err(io(&path))?.len();
        let complete = complete_length(&mut file, len).map_err(io(&path))?;
        if complete == len {
            return Ok(len);
        }
        // Appends write whole lines of at most the limit: a longer tail is damage, not a tear.
        if len - complete > EVENT_LINE_BYTES_MAX as u64 {
            let line = count_lines(&path)? + 1;
            let why = format!("{} bytes without a newline at the end of the file: not an append cut by a crash", len - complete);
            return Err(LineageError::BadLine { path, line, why });
        }
        tracing::warn!(path = %path.display(), bytes = len - complete, "cutting a lineage event torn by a crash");
        file.set_len(complete).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))?;
        Ok(complete)
    }
}

impl LineageSink for LineageStore {
    fn record(&self, events: &[RunEvent]) -> Result<(), LineageError> {
        self.append(events)
    }
}

/// An event as one line of JSON (without its newline), within [`EVENT_LINE_BYTES_MAX`].
pub(crate) fn encode(event: &RunEvent) -> Result<Vec<u8>, LineageError> {
    let line = serde_json::to_vec(event).map_err(|e| LineageError::Unwritable { why: e.to_string() })?;
    // serde_json writes a newline inside a string as `\n`: a line is always one event.
    assert!(!line.contains(&b'\n'));
    if line.len() > EVENT_LINE_BYTES_MAX {
        return Err(LineageError::EventTooLarge { bytes: line.len(), max: EVENT_LINE_BYTES_MAX });
    }
    Ok(line)
}

fn parse(path: &Path, line: u64, bytes: &[u8]) -> Result<RunEvent, LineageError> {
    serde_json::from_slice(bytes).map_err(|e| LineageError::BadLine {
        path: path.to_path_buf(),
        line,
        why: format!("not an OpenLineage run event: {e}"),
    })
}

/// The length of `file` up to and including its last newline, looking back no further than
/// one line's limit past it (answering where the look stopped when no newline is that close).
fn complete_length(file: &mut File, len: u64) -> std::io::Result<u64> {
    let floor = len.saturating_sub(EVENT_LINE_BYTES_MAX as u64 + 1);
    let mut end = len;
    let mut buf = vec![0u8; TAIL_CHUNK_BYTES as usize];
    while end > floor {
        let start = end.saturating_sub(TAIL_CHUNK_BYTES).max(floor);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(floor)
}

/// Newlines in the file: the number of its complete lines.
fn count_lines(path: &Path) -> Result<u64, LineageError> {
    let mut reader = BufReader::new(File::open(path).map_err(io(path))?);
    let mut count = 0u64;
    loop {
        let buf = reader.fill_buf().map_err(io(path))?;
        if buf.is_empty() {
            return Ok(count);
        }
        count += buf.iter().filter(|b| **b == b'\n').count() as u64;
        let n = buf.len();
        reader.consume(n);
    }
}

/// The events file's complete lines, one at a time, each at most [`EVENT_LINE_BYTES_MAX`].
struct Lines {
    path: PathBuf,
    reader: Option<BufReader<File>>,
    number: u64,
    buf: Vec<u8>,
}

impl Lines {
    /// The lines of `path`; none when the file is absent.
    fn open(path: &Path) -> Result<Self, LineageError> {
        let reader = match File::open(path) {
            Ok(f) => Some(BufReader::new(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(path)(e)),
        };
        Ok(Self { path: path.to_path_buf(), reader, number: 0, buf: Vec::new() })
    }

    /// The next complete line's number (from 1) and bytes without the newline.
    fn next(&mut self) -> Result<Option<(u64, &[u8])>, LineageError> {
        let Some(reader) = self.reader.as_mut() else { return Ok(None) };
        self.buf.clear();
        let limit = EVENT_LINE_BYTES_MAX as u64 + 1;
        let n = reader.by_ref().take(limit).read_until(b'\n', &mut self.buf).map_err(io(&self.path))?;
        if n == 0 {
            return Ok(None);
        }
        self.number += 1;
        if self.buf.last() != Some(&b'\n') {
            if n as u64 == limit {
                let why = format!("longer than the limit of {EVENT_LINE_BYTES_MAX} bytes");
                return Err(LineageError::BadLine { path: self.path.clone(), line: self.number, why });
            }
            // The unterminated end of the file: an append in progress, or one cut by a crash
            // that the next open or append removes. Not an event yet.
            return Ok(None);
        }
        self.buf.pop();
        Ok(Some((self.number, &self.buf)))
    }
}
