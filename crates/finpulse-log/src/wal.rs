//! The segmented write-ahead log: the source of truth.
//!
//! A segment is `wal/<base_seq as 20 digits>.wal`: a 16-byte header (magic, base sequence
//! number) then frames of `[payload length u32 LE][CRC32C of payload u32 LE][payload]`. Records
//! are numbered by position. Appends are buffered and made durable together by
//! [`Wal::commit`] (write + fdatasync): group commit. On open, a torn or corrupt tail of the last
//! segment is truncated; a bad frame anywhere else is an error, never silently dropped.
//!
//! The segment being written is zero-filled ahead of its records: a commit then overwrites
//! blocks the file already has, so its fdatasync writes the data and flushes, without also
//! writing the inode for a new file size (on this machine's ext4, about 40% less time and a third
//! less CPU per commit at p50; the commit that finds the space used up adds more). A frame length
//! of 0 ends a segment's records, so records are never empty (the log never wrote an empty one,
//! so logs written before this read the same). A clean stop gives the zeroed space back, so a
//! segment then ends at its records, as it always did; after a crash, an earlier build reading
//! the zeros fails to decode an empty record and refuses to open, rather than cutting anything.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// The largest payload one frame may carry.
pub const RECORD_BYTES_MAX: usize = 1 << 20;
/// The default size at which a segment is closed and a new one started.
pub const SEGMENT_BYTES_MAX_DEFAULT: u64 = 256 << 20;
const MAGIC: &[u8; 8] = b"FPWAL001";
/// The default zeroed space kept ahead of the records of the segment being written. The commit
/// that adds it writes that much more: at 64 KiB its wall time stays inside a normal commit's
/// p99.9, where 1 MiB and 4 MiB made single commits of 2.5 and 8 ms (`finpulse-bench
/// wal-commit`).
pub const ZERO_AHEAD_BYTES_DEFAULT: u64 = 64 << 10;
/// Zeroed space is added in whole blocks of this size.
const ZERO_BLOCK_BYTES: u64 = 4096;
const HEADER_BYTES: usize = 16;
pub(crate) const FRAME_HEADER_BYTES: usize = 8;

/// One record framed for the log: `[len u32][crc32c u32][payload]`, built by [`put_frame`].
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a>(&'a [u8]);

impl<'a> Frame<'a> {
    /// The frame that starts at `bytes[0]` and fills `bytes`, as [`put_frame`] wrote it.
    pub fn from_put(bytes: &'a [u8]) -> Self {
        debug_assert!(bytes.len() >= FRAME_HEADER_BYTES);
        debug_assert_eq!(u32::from_le_bytes(bytes[..4].try_into().unwrap_or_default()) as usize, bytes.len() - FRAME_HEADER_BYTES);
        Self(bytes)
    }
}

/// Appends one frame to `out`: `write_payload` writes the payload, then its length and
/// checksum are filled in from the bytes written.
pub fn put_frame(out: &mut Vec<u8>, write_payload: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    write_payload(out);
    let payload = &out[start + FRAME_HEADER_BYTES..];
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c(payload).to_le_bytes();
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + 8].copy_from_slice(&crc);
}

/// Log errors.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An I/O error, with what was being done.
    #[error("{what} {path}: {source}")]
    Io {
        /// The operation.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A bad frame before the last segment's tail: data loss that must not be hidden.
    #[error("corrupt log segment {path} at byte {offset}: {problem}")]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// Byte offset of the bad frame.
        offset: u64,
        /// What is wrong.
        problem: String,
    },
    /// A payload over [`RECORD_BYTES_MAX`].
    #[error("record of {0} bytes is over the limit of {RECORD_BYTES_MAX}")]
    RecordTooLarge(usize),
    /// An empty payload (a frame length of 0 marks the end of a segment's records).
    #[error("a record must have at least one byte")]
    EmptyRecord,
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> WalError + 'a {
    move |source| WalError::Io { what, path: path.to_path_buf(), source }
}

/// Options that decide segment size and preallocation; durability is not optional.
#[derive(Debug, Clone, Copy)]
pub struct WalOptions {
    /// Size at which a segment is closed.
    pub segment_bytes_max: u64,
    /// Zeroed space kept ahead of the records (never past `segment_bytes_max`); 0 extends the
    /// file by each commit's bytes.
    pub zero_ahead_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self { segment_bytes_max: SEGMENT_BYTES_MAX_DEFAULT, zero_ahead_bytes: ZERO_AHEAD_BYTES_DEFAULT }
    }
}

/// What recovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Records found intact.
    pub records: u64,
    /// Bytes cut off a torn tail, up to the last non-zero one (zeroed space is not counted).
    pub truncated_bytes: u64,
}

/// An open log, positioned for appends.
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    /// The segment being written, written at offsets.
    active: File,
    active_path: PathBuf,
    /// Where its records end.
    active_bytes: u64,
    /// Its length: `active_bytes..zeroed_to` is zeroed space, durable.
    zeroed_to: u64,
    pending: Vec<u8>,
    pending_records: u64,
    next_seq: u64,
    segments: Vec<(u64, PathBuf)>,
}

fn segment_path(dir: &Path, base_seq: u64) -> PathBuf {
    dir.join(format!("{base_seq:020}.wal"))
}

/// fsyncs a directory so that file creations and renames in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("fsync directory", dir))
}

fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let path = entry.map_err(io_err("list", dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some(stem) = name.strip_suffix(".wal") else { continue };
        if let Ok(base) = stem.parse::<u64>() {
            segments.push((base, path));
        }
    }
    segments.sort();
    Ok(segments)
}

/// A callback given each record's sequence number and payload.
type OnRecord<'a> = dyn FnMut(u64, &[u8]) -> Result<(), WalError> + 'a;
/// How a segment scanned: its good records and where they end.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ScanOutcome {
    /// Good records.
    records: u64,
    /// The byte offset after the last good record.
    records_end: u64,
    /// Why the scan stopped early, at `records_end`, if it did.
    bad: Option<String>,
}

/// Bytes a segment is read in at a time. Reading a whole segment (up to 256 MB) at once made
/// the kernel fault in and zero that much fresh memory on every start: about a quarter of a
/// start's CPU time, and twice the peak memory.
pub const READ_CHUNK_BYTES: usize = 8 << 20;

/// Walks the frames of one segment file, read `chunk_bytes` at a time into `buf` (kept between
/// segments), calling `on_record(seq, payload)` for each good frame, until the end of the file
/// or a frame length of 0 (the end of the records). A frame cut short counts as torn only at the
/// end of the file. A header that is not ours is an error.
fn scan_segment(
    path: &Path,
    base_seq: u64,
    buf: &mut Vec<u8>,
    chunk_bytes: usize,
    on_record: &mut OnRecord<'_>,
) -> Result<ScanOutcome, WalError> {
    let mut file = File::open(path).map_err(io_err("open", path))?;
    buf.clear();
    let mut reader = SegmentReader { file: &mut file, path, buf, chunk_bytes, consumed: 0, at: 0, eof: false };
    let stop = |records: u64, records_end: u64, why: Option<String>| Ok(ScanOutcome { records, records_end, bad: why });
    // A header cut short or never written (zeros) is a crash while the segment was created.
    if !reader.fill(HEADER_BYTES)? || reader.buf[..HEADER_BYTES].iter().all(|b| *b == 0) {
        return stop(0, 0, Some("missing segment header".into()));
    }
    // Any other header that is not ours is an error, never cut: it may be a later format.
    let corrupt = |offset: u64, problem: String| Err(WalError::Corrupt { path: path.to_path_buf(), offset, problem });
    if &reader.buf[..8] != MAGIC {
        return corrupt(0, format!("segment header {:?} is not {:?}", String::from_utf8_lossy(&reader.buf[..8]), "FPWAL001"));
    }
    let header_base = u64::from_le_bytes(reader.buf[8..16].try_into().expect("8-byte slice"));
    if header_base != base_seq {
        return corrupt(8, format!("header says base {header_base}, name says {base_seq}"));
    }
    reader.at = HEADER_BYTES;
    let mut count = 0u64;
    loop {
        let frame_at = reader.offset();
        if !reader.fill(FRAME_HEADER_BYTES)? {
            return stop(count, frame_at, (reader.available() > 0).then(|| "torn frame header".into()));
        }
        let at = reader.at;
        let len = u32::from_le_bytes(reader.buf[at..at + 4].try_into().expect("4-byte slice")) as usize;
        let crc = u32::from_le_bytes(reader.buf[at + 4..at + 8].try_into().expect("4-byte slice"));
        if len > RECORD_BYTES_MAX {
            return stop(count, frame_at, Some(format!("frame length {len} over the limit")));
        }
        if len == 0 {
            return stop(count, frame_at, (crc != 0).then(|| "zero-length frame with a checksum".into()));
        }
        if !reader.fill(FRAME_HEADER_BYTES + len)? {
            return stop(count, frame_at, Some("torn frame payload".into()));
        }
        let start = reader.at + FRAME_HEADER_BYTES;
        let payload = &reader.buf[start..start + len];
        // Checksum checked right after the read, before anything uses the payload.
        if crc32c::crc32c(payload) != crc {
            return stop(count, frame_at, Some("checksum mismatch".into()));
        }
        on_record(base_seq + count, payload)?;
        count += 1;
        reader.at = start + len;
    }
}

/// A window of a segment file: `buf[at..]` are the bytes at file offset `consumed + at`.
struct SegmentReader<'a> {
    file: &'a mut File,
    path: &'a Path,
    buf: &'a mut Vec<u8>,
    chunk_bytes: usize,
    /// File offset of `buf[0]`.
    consumed: u64,
    /// Where the scan stands in `buf`.
    at: usize,
    eof: bool,
}

impl SegmentReader<'_> {
    fn offset(&self) -> u64 {
        self.consumed + self.at as u64
    }

    fn available(&self) -> usize {
        self.buf.len() - self.at
    }

    /// Makes `n` bytes from `at` available, reading on; false when the file ends first.
    fn fill(&mut self, n: usize) -> Result<bool, WalError> {
        use std::io::Read;
        while self.available() < n && !self.eof {
            if self.at > 0 {
                // Keep only what is not scanned yet (less than a frame).
                self.buf.drain(..self.at);
                self.consumed += self.at as u64;
                self.at = 0;
            }
            let want = self.chunk_bytes.max(n - self.buf.len());
            let read = (&mut *self.file).take(want as u64).read_to_end(self.buf).map_err(io_err("read", self.path))?;
            self.eof = read == 0;
        }
        Ok(self.available() >= n)
    }
}

impl Wal {
    /// Opens (or creates) the log in `dir`, recovering it, and calls `on_record(seq, payload)`
    /// for every intact record in order, so callers rebuild derived state in the same pass.
    pub fn open(
        dir: &Path,
        opts: WalOptions,
        mut on_record: impl FnMut(u64, &[u8]) -> Result<(), WalError>,
    ) -> Result<(Self, Recovery), WalError> {
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        let mut segments = list_segments(dir)?;
        let mut recovery = Recovery::default();
        let mut next_seq = 0;
        let last_index = segments.len().checked_sub(1);
        let mut buf = Vec::new();
        for (i, (base, path)) in segments.iter().enumerate() {
            if *base != next_seq && i > 0 {
                return Err(WalError::Corrupt {
                    path: path.clone(),
                    offset: 0,
                    problem: format!("segment starts at record {base}, expected {next_seq}"),
                });
            }
            let scan = scan_segment(path, *base, &mut buf, READ_CHUNK_BYTES, &mut on_record)?;
            if let Some(problem) = &scan.bad
                && Some(i) != last_index
            {
                return Err(WalError::Corrupt { path: path.clone(), offset: scan.records_end, problem: problem.clone() });
            }
            if Some(i) == last_index {
                recovery.truncated_bytes = cut_after_records(path, *base, &scan, &mut buf)?;
            }
            next_seq = base + scan.records;
            recovery.records += scan.records;
        }
        if segments.is_empty() {
            let path = segment_path(dir, 0);
            create_segment(&path, 0)?;
            sync_dir(dir)?;
            segments.push((0, path));
        }
        let (_, active_path) = segments.last().cloned().expect("at least one segment exists");
        let active = OpenOptions::new().write(true).open(&active_path).map_err(io_err("open", &active_path))?;
        // Open cut the segment after its records, so there is no zeroed space yet.
        let active_bytes = active.metadata().map_err(io_err("stat", &active_path))?.len();
        let wal = Self {
            dir: dir.to_path_buf(),
            opts,
            active,
            active_path,
            active_bytes,
            zeroed_to: active_bytes,
            pending: Vec::new(),
            pending_records: 0,
            next_seq,
            segments,
        };
        Ok((wal, recovery))
    }

    /// The sequence number the next appended record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq + self.pending_records
    }

    /// Total bytes in all segments, including uncommitted appends.
    pub fn size_bytes(&self) -> u64 {
        let closed: u64 = self.segments[..self.segments.len() - 1].iter().filter_map(|(_, p)| fs::metadata(p).ok()).map(|m| m.len()).sum();
        closed + self.active_bytes + self.pending.len() as u64
    }

    /// Buffers one record (at least one byte); it is durable only after [`Wal::commit`].
    /// Returns its sequence number.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, WalError> {
        let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
        put_frame(&mut frame, |out| out.extend_from_slice(payload));
        self.append_frame(Frame(&frame))
    }

    /// Buffers one record already framed by [`put_frame`] (so its checksum was computed by the
    /// caller, off the writer's thread). Returns its sequence number.
    pub fn append_frame(&mut self, frame: Frame<'_>) -> Result<u64, WalError> {
        let payload_bytes = frame.0.len() - FRAME_HEADER_BYTES;
        if payload_bytes > RECORD_BYTES_MAX {
            return Err(WalError::RecordTooLarge(payload_bytes));
        }
        if payload_bytes == 0 {
            return Err(WalError::EmptyRecord);
        }
        // Checksummed on the producer's thread; checked again right before it is written, so a
        // frame damaged in memory on its way here is never made durable (a panic on the
        // writer stops the process).
        let crc = u32::from_le_bytes([frame.0[4], frame.0[5], frame.0[6], frame.0[7]]);
        assert_eq!(
            crc32c::crc32c(&frame.0[FRAME_HEADER_BYTES..]),
            crc,
            "a log frame's checksum does not match its payload before writing: memory was damaged or the frame was built wrong"
        );
        let frame_bytes = frame.0.len() as u64;
        let has_records = self.active_bytes > HEADER_BYTES as u64 || self.pending_records > 0;
        if has_records && self.active_bytes + self.pending.len() as u64 + frame_bytes > self.opts.segment_bytes_max {
            self.roll()?;
        }
        let seq = self.next_seq();
        self.pending.extend_from_slice(frame.0);
        self.pending_records += 1;
        Ok(seq)
    }

    /// Writes buffered records and fdatasyncs: when this returns Ok, they survive a crash.
    /// Records go into the zeroed space; when they reach past it, the same write adds
    /// [`WalOptions::zero_ahead_bytes`] more after them.
    pub fn commit(&mut self) -> Result<(), WalError> {
        use std::os::unix::fs::FileExt;
        if self.pending.is_empty() {
            return Ok(());
        }
        let records_bytes = self.pending.len();
        let end = self.active_bytes + records_bytes as u64;
        if end > self.zeroed_to && self.opts.zero_ahead_bytes > 0 {
            let ceiling = self.opts.segment_bytes_max.max(end);
            let ahead = (end + self.opts.zero_ahead_bytes).div_ceil(ZERO_BLOCK_BYTES) * ZERO_BLOCK_BYTES;
            self.pending.resize(records_bytes + (ahead.min(ceiling) - end) as usize, 0);
        }
        let written = self.active.write_all_at(&self.pending, self.active_bytes).map_err(io_err("write", &self.active_path));
        let synced = written.and_then(|()| self.active.sync_data().map_err(io_err("fdatasync", &self.active_path)));
        let file_end = self.active_bytes + self.pending.len() as u64;
        self.pending.truncate(records_bytes);
        synced?;
        self.zeroed_to = self.zeroed_to.max(file_end);
        self.active_bytes = end;
        self.next_seq += self.pending_records;
        self.pending.clear();
        self.pending_records = 0;
        Ok(())
    }

    fn roll(&mut self) -> Result<(), WalError> {
        self.commit()?;
        // The closed segment's zeroed space is given back; if this is lost in a crash, the
        // zeros still read as the end of its records.
        self.active.set_len(self.active_bytes).map_err(io_err("truncate", &self.active_path))?;
        let base = self.next_seq;
        let path = segment_path(&self.dir, base);
        create_segment(&path, base)?;
        sync_dir(&self.dir)?;
        self.active = OpenOptions::new().write(true).open(&path).map_err(io_err("open", &path))?;
        self.active_path = path.clone();
        self.active_bytes = HEADER_BYTES as u64;
        self.zeroed_to = self.active_bytes;
        self.segments.push((base, path));
        Ok(())
    }

    /// Calls `on_record(seq, payload)` for every committed record with `seq >= from_seq`.
    pub fn read_from(dir: &Path, from_seq: u64, mut on_record: impl FnMut(u64, &[u8]) -> Result<(), WalError>) -> Result<(), WalError> {
        let segments = list_segments(dir)?;
        let mut buf = Vec::new();
        for (i, (base, path)) in segments.iter().enumerate() {
            let next_base = segments.get(i + 1).map(|(b, _)| *b).unwrap_or(u64::MAX);
            if next_base <= from_seq {
                continue;
            }
            let mut filtered = |seq: u64, payload: &[u8]| if seq >= from_seq { on_record(seq, payload) } else { Ok(()) };
            scan_segment(path, *base, &mut buf, READ_CHUNK_BYTES, &mut filtered)?;
        }
        Ok(())
    }
}

impl Drop for Wal {
    /// Gives the zeroed space back, so a clean stop leaves the segment ending at its records
    /// (if this fails or never runs, the next open cuts it).
    fn drop(&mut self) {
        if self.zeroed_to > self.active_bytes {
            let _ = self.active.set_len(self.active_bytes);
        }
    }
}

/// Cuts the last segment after its last good record: a torn tail (the crash came before its
/// fsync finished, so it was never acknowledged) and any zeroed space, so that nothing left from
/// before a crash can be read after the records written next. The cut is durable. Returns the
/// bytes cut, up to the last non-zero one.
fn cut_after_records(path: &Path, base_seq: u64, scan: &ScanOutcome, buf: &mut Vec<u8>) -> Result<u64, WalError> {
    use std::io::{Read, Seek};
    let mut f = OpenOptions::new().read(true).write(true).open(path).map_err(io_err("open", path))?;
    let len = f.metadata().map_err(io_err("stat", path))?.len();
    let records_end = scan.records_end;
    let keep = records_end.max(HEADER_BYTES as u64);
    let header_lost = records_end < HEADER_BYTES as u64;
    if len == keep && !header_lost {
        return Ok(0);
    }
    // The bytes cut, up to the last non-zero one: zeroed space alone is not a torn tail.
    f.seek(io::SeekFrom::Start(records_end)).map_err(io_err("seek", path))?;
    let mut nonzero_end = records_end;
    let mut at = records_end;
    buf.resize(READ_CHUNK_BYTES, 0);
    loop {
        let n = f.read(buf).map_err(io_err("read", path))?;
        if n == 0 {
            break;
        }
        if let Some(p) = buf[..n].iter().rposition(|b| *b != 0) {
            nonzero_end = at + p as u64 + 1;
        }
        at += n as u64;
    }
    let torn = nonzero_end - records_end;
    if torn > 0 {
        let problem = scan.bad.as_deref().unwrap_or("bytes after the records' end");
        tracing::warn!(path = %path.display(), offset = records_end, torn_bytes = torn, problem, "truncating torn log tail");
    }
    if header_lost {
        write_header(&f, base_seq, path)?;
    }
    f.set_len(keep).map_err(io_err("truncate", path))?;
    f.sync_all().map_err(io_err("fsync", path))?;
    Ok(torn)
}

fn write_header(f: &File, base_seq: u64, path: &Path) -> Result<(), WalError> {
    use std::os::unix::fs::FileExt;
    let mut header = [0u8; HEADER_BYTES];
    header[..8].copy_from_slice(MAGIC);
    header[8..].copy_from_slice(&base_seq.to_le_bytes());
    f.write_all_at(&header, 0).map_err(io_err("write header", path))
}

fn create_segment(path: &Path, base_seq: u64) -> Result<(), WalError> {
    let f = OpenOptions::new().write(true).create_new(true).open(path).map_err(io_err("create", path))?;
    write_header(&f, base_seq, path)?;
    f.sync_all().map_err(io_err("fsync", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(dir: &Path, opts: WalOptions) -> (Wal, Recovery, Vec<(u64, Vec<u8>)>) {
        let mut seen = Vec::new();
        let (wal, rec) = Wal::open(dir, opts, |s, p| {
            seen.push((s, p.to_vec()));
            Ok(())
        })
        .unwrap();
        (wal, rec, seen)
    }

    /// A log in `dir` with one commit per payload, still open.
    fn committed_one_by_one(dir: &Path, opts: WalOptions, payloads: impl IntoIterator<Item = Vec<u8>>) -> Wal {
        let (mut wal, _, _) = collect(dir, opts);
        for p in payloads {
            wal.append(&p).unwrap();
            wal.commit().unwrap();
        }
        wal
    }

    #[test]
    fn committed_records_survive_reopen_in_order_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions { segment_bytes_max: 200, ..WalOptions::default() };
        let (mut wal, _, _) = collect(dir.path(), opts);
        for i in 0..50u32 {
            assert_eq!(wal.append(&i.to_le_bytes().repeat(5)).unwrap(), i as u64);
            if i % 7 == 0 {
                wal.commit().unwrap();
            }
        }
        wal.commit().unwrap();
        drop(wal);
        assert!(list_segments(dir.path()).unwrap().len() > 5);
        let (wal, rec, seen) = collect(dir.path(), opts);
        assert_eq!(rec, Recovery { records: 50, truncated_bytes: 0 });
        assert_eq!(wal.next_seq(), 50);
        for (i, (seq, payload)) in seen.iter().enumerate() {
            assert_eq!(*seq, i as u64);
            assert_eq!(payload, &(i as u32).to_le_bytes().repeat(5));
        }
        let mut tail = Vec::new();
        Wal::read_from(dir.path(), 45, |s, _| {
            tail.push(s);
            Ok(())
        })
        .unwrap();
        assert_eq!(tail, vec![45, 46, 47, 48, 49]);
    }

    #[test]
    fn a_torn_tail_is_truncated_and_no_whole_record_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _, _) = collect(dir.path(), WalOptions::default());
        for i in 0..10u8 {
            wal.append(&[i; 33]).unwrap();
        }
        wal.commit().unwrap();
        drop(wal);
        let path = segment_path(dir.path(), 0);
        let full = fs::read(&path).unwrap();
        // Every cut inside the last frame leaves exactly the first nine records.
        let last_frame_start = full.len() - (FRAME_HEADER_BYTES + 33);
        for cut in last_frame_start..full.len() {
            fs::write(&path, &full[..cut]).unwrap();
            let (mut wal, rec, seen) = collect(dir.path(), WalOptions::default());
            assert_eq!(seen.len(), 9, "cut at {cut}");
            // Counted up to the last non-zero byte (trailing zeros read as zeroed space).
            let torn = full[last_frame_start..cut].iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
            assert_eq!(rec.truncated_bytes, torn as u64);
            // The log continues cleanly after the cut.
            wal.append(&[99; 5]).unwrap();
            wal.commit().unwrap();
            drop(wal);
            let (_, _, seen) = collect(dir.path(), WalOptions::default());
            assert_eq!(seen.len(), 10);
            assert_eq!(seen[9].1, vec![99; 5]);
        }
    }

    #[test]
    fn a_flipped_bit_in_the_tail_is_cut_but_in_an_earlier_segment_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions { segment_bytes_max: 100, ..WalOptions::default() };
        drop(committed_one_by_one(dir.path(), opts, (0..10u8).map(|i| vec![i; 40])));
        let segments = list_segments(dir.path()).unwrap();
        let first = &segments[0].1;
        let mut bytes = fs::read(first).unwrap();
        let n = bytes.len();
        bytes[n - 3] ^= 0x10;
        fs::write(first, &bytes).unwrap();
        let err = Wal::open(dir.path(), opts, |_, _| Ok(())).err().expect("corruption must be reported");
        assert!(matches!(err, WalError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn reading_in_small_chunks_finds_the_same_records_and_the_same_torn_frame() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _, _) = collect(dir.path(), WalOptions::default());
        for i in 0..40u8 {
            wal.append(&vec![i; 1 + usize::from(i) * 7]).unwrap();
        }
        wal.commit().unwrap();
        drop(wal);
        let path = segment_path(dir.path(), 0);
        let full = fs::read(&path).unwrap();
        let scan = |chunk_bytes: usize| {
            let mut seen = Vec::new();
            let outcome = scan_segment(&path, 0, &mut Vec::new(), chunk_bytes, &mut |seq, p: &[u8]| {
                seen.push((seq, p.to_vec()));
                Ok(())
            })
            .unwrap();
            (outcome, seen)
        };
        let whole = scan(full.len());
        assert_eq!((whole.0.records, whole.0.records_end, whole.0.bad.is_none(), whole.1.len()), (40, full.len() as u64, true, 40));
        // Chunks smaller than a frame header, than a frame, and of odd sizes.
        for chunk_bytes in [1, 3, 8, 50, 257] {
            assert_eq!(scan(chunk_bytes), whole, "chunks of {chunk_bytes} bytes");
        }
        // Cut inside the last frame: torn at the same offset whatever the chunk size.
        fs::write(&path, &full[..full.len() - 5]).unwrap();
        let torn = scan(full.len());
        assert_eq!((torn.0.records, torn.0.bad.as_deref()), (39, Some("torn frame payload")));
        for chunk_bytes in [1, 3, 8, 50, 257] {
            assert_eq!(scan(chunk_bytes), torn, "chunks of {chunk_bytes} bytes");
        }
        // A damaged payload and a length over the limit in the middle stop the scan at the same
        // frame, with the same reason, whatever the chunk size.
        let tenth = HEADER_BYTES + (0..10).map(|i| FRAME_HEADER_BYTES + 1 + i * 7).sum::<usize>();
        for (damage, why) in [(FRAME_HEADER_BYTES, "checksum mismatch"), (3, "frame length")] {
            let mut bytes = full.clone();
            bytes[tenth + damage] ^= 0x40;
            fs::write(&path, &bytes).unwrap();
            let bad = scan(full.len());
            assert_eq!((bad.0.records, bad.0.records_end), (10, tenth as u64));
            let problem = bad.0.bad.clone().unwrap();
            assert!(problem.starts_with(why), "{problem}");
            for chunk_bytes in [1, 3, 8, 50, 257] {
                assert_eq!(scan(chunk_bytes), bad, "chunks of {chunk_bytes} bytes");
            }
        }
    }

    #[test]
    fn oversized_and_empty_records_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _, _) = collect(dir.path(), WalOptions::default());
        assert!(matches!(wal.append(&vec![0; RECORD_BYTES_MAX + 1]), Err(WalError::RecordTooLarge(_))));
        assert!(matches!(wal.append(&[]), Err(WalError::EmptyRecord)));
        assert_eq!(wal.next_seq(), 0);
    }

    fn file_len(path: &Path) -> u64 {
        fs::metadata(path).unwrap().len()
    }

    #[test]
    fn commits_write_into_zeroed_space_that_a_clean_stop_gives_back() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions { segment_bytes_max: 1 << 20, zero_ahead_bytes: 10_000 };
        let (mut wal, _, _) = collect(dir.path(), opts);
        let path = segment_path(dir.path(), 0);
        wal.append(&[7; 100]).unwrap();
        wal.commit().unwrap();
        let records_end = (HEADER_BYTES + FRAME_HEADER_BYTES + 100) as u64;
        // Zeroed space after the records, in whole blocks.
        let zeroed_len = file_len(&path);
        assert_eq!(zeroed_len, (records_end + 10_000).div_ceil(ZERO_BLOCK_BYTES) * ZERO_BLOCK_BYTES);
        assert!(fs::read(&path).unwrap()[records_end as usize..].iter().all(|b| *b == 0));
        // Later commits that fit leave the file's length alone.
        for i in 0..50u8 {
            wal.append(&[i; 100]).unwrap();
            wal.commit().unwrap();
        }
        assert_eq!(file_len(&path), zeroed_len);
        assert_eq!(wal.size_bytes(), records_end * 51 - HEADER_BYTES as u64 * 50);
        drop(wal);
        assert_eq!(file_len(&path), records_end * 51 - HEADER_BYTES as u64 * 50);
        let (_, rec, seen) = collect(dir.path(), opts);
        assert_eq!(rec, Recovery { records: 51, truncated_bytes: 0 });
        assert_eq!(seen[50].1, vec![49; 100]);
    }

    #[test]
    fn after_a_crash_the_zeroed_space_and_anything_torn_after_the_records_is_cut() {
        let opts = WalOptions { segment_bytes_max: 1 << 20, zero_ahead_bytes: 4096 };
        // The records a crashed writer left behind it, unacknowledged: a frame of the same
        // size as the one written next (so that one would end exactly where the stale record
        // starts), then an intact stale record. The first stale frame is torn one of two ways:
        // a damaged payload, or a header never written (zeros).
        for header_lost in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let (mut wal, _, _) = collect(dir.path(), opts);
            for i in 0..5u8 {
                wal.append(&[i + 1; 20]).unwrap();
            }
            wal.commit().unwrap();
            let records_end = wal.active_bytes as usize;
            std::mem::forget(wal); // a crash: the zeroed space stays
            let path = segment_path(dir.path(), 0);
            let mut bytes = fs::read(&path).unwrap();
            assert!(bytes.len() > records_end);
            let mut stale = Vec::new();
            put_frame(&mut stale, |o| o.extend_from_slice(&[0xEE; 30]));
            put_frame(&mut stale, |o| o.extend_from_slice(&[0xDD; 30]));
            if header_lost {
                stale[..FRAME_HEADER_BYTES].fill(0);
            } else {
                stale[FRAME_HEADER_BYTES + 3] ^= 0x01;
            }
            bytes[records_end..records_end + stale.len()].copy_from_slice(&stale);
            fs::write(&path, &bytes).unwrap();

            let (mut wal, rec, seen) = collect(dir.path(), opts);
            assert_eq!(seen.len(), 5, "header lost: {header_lost}");
            let nonzero = stale.iter().rposition(|b| *b != 0).unwrap() + 1;
            assert_eq!(rec.truncated_bytes, nonzero as u64, "header lost: {header_lost}");
            assert_eq!(file_len(&path), records_end as u64, "cut back to the records");
            // The next record has the size of the torn one; the stale one is not read after it.
            wal.append(&[0xAA; 30]).unwrap();
            wal.commit().unwrap();
            std::mem::forget(wal);
            let (_, rec, seen) = collect(dir.path(), opts);
            assert_eq!(rec, Recovery { records: 6, truncated_bytes: 0 });
            assert_eq!(seen[5].1, vec![0xAA; 30]);
        }
    }

    #[test]
    fn zeroed_space_left_in_a_closed_segment_reads_as_the_end_of_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions { segment_bytes_max: 300, zero_ahead_bytes: 4096 };
        drop(committed_one_by_one(dir.path(), opts, (0..20u8).map(|i| vec![i + 1; 40])));
        let segments = list_segments(dir.path()).unwrap();
        assert!(segments.len() > 2);
        // Closed segments were cut to their records, and zeroed space never passes the
        // segment size.
        for (_, p) in &segments {
            assert!(file_len(p) <= 300, "{}", p.display());
        }
        // As if the crash came between starting the next segment and cutting this one.
        let first = &segments[0].1;
        let mut bytes = fs::read(first).unwrap();
        bytes.resize(bytes.len() + 100, 0);
        fs::write(first, &bytes).unwrap();
        let (_, rec, seen) = collect(dir.path(), opts);
        assert_eq!(rec.records, 20);
        assert!(seen.iter().enumerate().all(|(i, (seq, p))| *seq == i as u64 && p == &vec![i as u8 + 1; 40]));
    }

    #[test]
    fn a_log_written_without_zeroed_space_is_read_and_continued_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let before = WalOptions { zero_ahead_bytes: 0, ..WalOptions::default() };
        // Even a crash (no drop) leaves nothing after the records.
        std::mem::forget(committed_one_by_one(dir.path(), before, (0..3u8).map(|i| vec![i + 1; 10])));
        let path = segment_path(dir.path(), 0);
        let records_end = (HEADER_BYTES + 3 * (FRAME_HEADER_BYTES + 10)) as u64;
        assert_eq!(file_len(&path), records_end);
        let (mut wal, rec, _) = collect(dir.path(), WalOptions::default());
        assert_eq!(rec, Recovery { records: 3, truncated_bytes: 0 });
        wal.append(&[4; 10]).unwrap();
        wal.commit().unwrap();
        assert!(file_len(&path) > records_end + FRAME_HEADER_BYTES as u64 + 10, "zeroed space follows");
        drop(wal);
        let (_, _, seen) = collect(dir.path(), WalOptions::default());
        assert_eq!(seen.iter().map(|(_, p)| p[0]).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    }

    #[test]
    fn a_header_that_is_not_ours_is_an_error_but_one_never_written_is_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _, _) = collect(dir.path(), WalOptions::default());
        wal.append(b"kept").unwrap();
        wal.commit().unwrap();
        drop(wal);
        let path = segment_path(dir.path(), 0);
        let good = fs::read(&path).unwrap();
        // A later format, or a header for another base: refused, and the file is left alone.
        for (at, byte) in [(7, b'9'), (8, 1)] {
            let mut bytes = good.clone();
            bytes[at] = byte;
            fs::write(&path, &bytes).unwrap();
            let err = Wal::open(dir.path(), WalOptions::default(), |_, _| Ok(())).err().expect("a foreign header must be refused");
            assert!(matches!(err, WalError::Corrupt { .. }), "{err}");
            assert_eq!(fs::read(&path).unwrap(), bytes, "nothing was cut");
        }
        // A crash while the segment was created: no header yet (zeros, or cut short).
        for torn in [vec![0u8; 16], vec![b'F', b'P']] {
            fs::write(&path, &torn).unwrap();
            let (mut wal, rec, seen) = collect(dir.path(), WalOptions::default());
            assert_eq!((rec.records, seen.len()), (0, 0));
            wal.append(b"again").unwrap();
            wal.commit().unwrap();
            drop(wal);
            assert_eq!(collect(dir.path(), WalOptions::default()).2, vec![(0, b"again".to_vec())]);
        }
    }

    #[test]
    #[should_panic(expected = "checksum does not match its payload before writing")]
    fn a_frame_damaged_after_its_checksum_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _, _) = collect(dir.path(), WalOptions::default());
        let mut frame = Vec::new();
        put_frame(&mut frame, |out| out.extend_from_slice(b"payment"));
        frame[FRAME_HEADER_BYTES] ^= 1;
        let _ = wal.append_frame(Frame::from_put(&frame));
    }
}
