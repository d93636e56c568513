//! The segmented write-ahead log: the source of truth.
//!
//! A segment is `wal/<base_seq as 20 digits>.wal`: a 16-byte header (magic, base sequence
//! number) then frames of `[payload length u32 LE][CRC32C of payload u32 LE][payload]`. Records
//! are numbered by position. Appends are buffered and made durable together by
//! [`Wal::commit`] (write + fdatasync): group commit. On open, a torn or corrupt tail of the last
//! segment is truncated; a bad frame anywhere else is an error, never silently dropped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The largest payload one frame may carry.
pub const RECORD_BYTES_MAX: usize = 1 << 20;
/// The default size at which a segment is closed and a new one started.
pub const SEGMENT_BYTES_MAX_DEFAULT: u64 = 256 << 20;
const MAGIC: &[u8; 8] = b"FPWAL001";
const HEADER_BYTES: usize = 16;
const FRAME_HEADER_BYTES: usize = 8;

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
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> WalError + 'a {
    move |source| WalError::Io { what, path: path.to_path_buf(), source }
}

/// Options that decide segment size; durability is not optional.
#[derive(Debug, Clone, Copy)]
pub struct WalOptions {
    /// Size at which a segment is closed.
    pub segment_bytes_max: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self { segment_bytes_max: SEGMENT_BYTES_MAX_DEFAULT }
    }
}

/// What recovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Records found intact.
    pub records: u64,
    /// Bytes cut off a torn tail.
    pub truncated_bytes: u64,
}

/// An open log, positioned for appends.
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    active: File,
    active_path: PathBuf,
    active_bytes: u64,
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
/// Good records in a segment, and where and why the scan stopped early, if it did.
type ScanOutcome = (u64, Option<(u64, String)>);

/// Bytes a segment is read in at a time. Reading a whole segment (up to 256 MB) at once made
/// the kernel fault in and zero that much fresh memory on every start: about a quarter of a
/// start's CPU time, and twice the peak memory.
pub const READ_CHUNK_BYTES: usize = 8 << 20;

/// Walks the frames of one segment file, read `chunk_bytes` at a time into `buf` (kept between
/// segments), calling `on_record(seq, payload)` for each good frame. Returns the number of good
/// records and, if it stopped at a bad frame, its offset and why. A frame cut short counts as
/// torn only at the end of the file.
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
    if !reader.fill(HEADER_BYTES)? || &reader.buf[..8] != MAGIC {
        return Ok((0, Some((0, "missing or bad segment header".into()))));
    }
    let header_base = u64::from_le_bytes(reader.buf[8..16].try_into().expect("8-byte slice"));
    if header_base != base_seq {
        return Ok((0, Some((8, format!("header says base {header_base}, name says {base_seq}")))));
    }
    reader.at = HEADER_BYTES;
    let mut count = 0u64;
    loop {
        let frame_at = reader.offset();
        if !reader.fill(FRAME_HEADER_BYTES)? {
            return Ok((count, (reader.available() > 0).then(|| (frame_at, "torn frame header".into()))));
        }
        let at = reader.at;
        let len = u32::from_le_bytes(reader.buf[at..at + 4].try_into().expect("4-byte slice")) as usize;
        let crc = u32::from_le_bytes(reader.buf[at + 4..at + 8].try_into().expect("4-byte slice"));
        if len > RECORD_BYTES_MAX {
            return Ok((count, Some((frame_at, format!("frame length {len} over the limit")))));
        }
        if !reader.fill(FRAME_HEADER_BYTES + len)? {
            return Ok((count, Some((frame_at, "torn frame payload".into()))));
        }
        let start = reader.at + FRAME_HEADER_BYTES;
        let payload = &reader.buf[start..start + len];
        // Checksum checked right after the read, before anything uses the payload.
        if crc32c::crc32c(payload) != crc {
            return Ok((count, Some((frame_at, "checksum mismatch".into()))));
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
            let (count, bad) = scan_segment(path, *base, &mut buf, READ_CHUNK_BYTES, &mut on_record)?;
            if let Some((offset, problem)) = bad {
                if Some(i) != last_index {
                    return Err(WalError::Corrupt { path: path.clone(), offset, problem });
                }
                // A torn tail: the crash came before this frame's fsync finished, so it was
                // never acknowledged. Cut it off and make the cut durable.
                let keep = offset.max(HEADER_BYTES as u64);
                let len = fs::metadata(path).map_err(io_err("stat", path))?.len();
                recovery.truncated_bytes = len - keep;
                tracing::warn!(path = %path.display(), offset, problem, "truncating torn log tail");
                let f = OpenOptions::new().write(true).open(path).map_err(io_err("open", path))?;
                if offset < HEADER_BYTES as u64 {
                    write_header(&f, *base, path)?;
                }
                f.set_len(keep).map_err(io_err("truncate", path))?;
                f.sync_all().map_err(io_err("fsync", path))?;
            }
            next_seq = base + count;
            recovery.records += count;
        }
        if segments.is_empty() {
            let path = segment_path(dir, 0);
            create_segment(&path, 0)?;
            sync_dir(dir)?;
            segments.push((0, path));
        }
        let (_, active_path) = segments.last().cloned().expect("at least one segment exists");
        let active = OpenOptions::new().append(true).open(&active_path).map_err(io_err("open", &active_path))?;
        let active_bytes = active.metadata().map_err(io_err("stat", &active_path))?.len();
        Ok((
            Self {
                dir: dir.to_path_buf(),
                opts,
                active,
                active_path,
                active_bytes,
                pending: Vec::new(),
                pending_records: 0,
                next_seq,
                segments,
            },
            recovery,
        ))
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

    /// Buffers one record; it is durable only after [`Wal::commit`]. Returns its sequence number.
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
    pub fn commit(&mut self) -> Result<(), WalError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.active.write_all(&self.pending).map_err(io_err("write", &self.active_path))?;
        self.active.sync_data().map_err(io_err("fdatasync", &self.active_path))?;
        self.active_bytes += self.pending.len() as u64;
        self.next_seq += self.pending_records;
        self.pending.clear();
        self.pending_records = 0;
        Ok(())
    }

    fn roll(&mut self) -> Result<(), WalError> {
        self.commit()?;
        let base = self.next_seq;
        let path = segment_path(&self.dir, base);
        create_segment(&path, base)?;
        sync_dir(&self.dir)?;
        self.active = OpenOptions::new().append(true).open(&path).map_err(io_err("open", &path))?;
        self.active_path = path.clone();
        self.active_bytes = HEADER_BYTES as u64;
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

fn write_header(mut f: &File, base_seq: u64, path: &Path) -> Result<(), WalError> {
    let mut header = [0u8; HEADER_BYTES];
    header[..8].copy_from_slice(MAGIC);
    header[8..].copy_from_slice(&base_seq.to_le_bytes());
    use std::io::Seek;
    f.seek(io::SeekFrom::Start(0)).map_err(io_err("seek", path))?;
    f.write_all(&header).map_err(io_err("write header", path))
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

    #[test]
    fn committed_records_survive_reopen_in_order_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions { segment_bytes_max: 200 };
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
            assert_eq!(rec.truncated_bytes, (cut - last_frame_start) as u64);
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
        let opts = WalOptions { segment_bytes_max: 100 };
        let (mut wal, _, _) = collect(dir.path(), opts);
        for i in 0..10u8 {
            wal.append(&[i; 40]).unwrap();
            wal.commit().unwrap();
        }
        drop(wal);
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
        assert_eq!((whole.0.0, whole.0.1.is_none(), whole.1.len()), (40, true, 40));
        // Chunks smaller than a frame header, than a frame, and of odd sizes.
        for chunk_bytes in [1, 3, 8, 50, 257] {
            assert_eq!(scan(chunk_bytes), whole, "chunks of {chunk_bytes} bytes");
        }
        // Cut inside the last frame: torn at the same offset whatever the chunk size.
        fs::write(&path, &full[..full.len() - 5]).unwrap();
        let torn = scan(full.len());
        assert_eq!((torn.0.0, torn.0.1.as_ref().map(|(_, why)| why.as_str())), (39, Some("torn frame payload")));
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
            assert_eq!(bad.0.0, 10);
            let (offset, problem) = bad.0.1.clone().unwrap();
            assert_eq!(offset, tenth as u64);
            assert!(problem.starts_with(why), "{problem}");
            for chunk_bytes in [1, 3, 8, 50, 257] {
                assert_eq!(scan(chunk_bytes), bad, "chunks of {chunk_bytes} bytes");
            }
        }
    }

    #[test]
    fn oversized_records_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _, _) = collect(dir.path(), WalOptions::default());
        assert!(matches!(wal.append(&vec![0; RECORD_BYTES_MAX + 1]), Err(WalError::RecordTooLarge(_))));
    }
}
