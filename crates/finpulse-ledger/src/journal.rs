//! Append-only journals of framed records, as the key journal frames its own:
//!
//! ```text
//! file    := magic record*
//! magic   := 8 bytes naming the journal and its format
//! record  := length:u32le crc:u32le payload            (crc = CRC32C of length and payload)
//! ```
//!
//! Appends are written and fsync'd (`fdatasync`) before they return. On open, a damaged last
//! record is a write cut by a crash (never acknowledged) and is cut off: one that runs past
//! the end of the file, one whose checksum fails and that ends exactly at the end, or zeros to
//! the end. Any other damage is an error naming its byte offset.

use crate::LedgerError;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// Bytes of a record's length and checksum.
const FRAME_HEADER_BYTES: usize = 8;
/// How much of a journal is read at once.
const READ_BUFFER_BYTES: usize = 256 * 1024;
/// The file whose OS lock one process holds while it has a journal's folder open.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// Appends `payload`, framed, to `out`.
pub(crate) fn frame_into(out: &mut Vec<u8>, payload: &[u8], record_bytes_max: usize) {
    assert!(!payload.is_empty() && payload.len() <= record_bytes_max, "record size checked before framing");
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), payload);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
}

/// A journal open for appends.
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    /// Why writes stopped, after a failed write or fsync.
    failed: Option<String>,
}

impl Journal {
    /// Opens (creating with `magic` if absent) the journal at `path`, handing every record's
    /// payload to `visit` with its offset, and cuts a torn tail so appends follow the last
    /// whole record.
    pub(crate) fn open(
        path: &Path,
        magic: &[u8; 8],
        record_bytes_max: usize,
        visit: impl FnMut(u64, &[u8]) -> Result<(), LedgerError>,
    ) -> Result<Self, LedgerError> {
        if !path.exists() {
            finpulse_core::durable::write_file(path, magic).map_err(LedgerError::io(path))?;
        }
        let scanned = scan(path, magic, record_bytes_max, visit)?;
        if scanned.valid_bytes < scanned.file_bytes {
            let file = OpenOptions::new().write(true).open(path).map_err(LedgerError::io(path))?;
            file.set_len(scanned.valid_bytes).and_then(|()| file.sync_all()).map_err(LedgerError::io(path))?;
            let cut_bytes = scanned.file_bytes - scanned.valid_bytes;
            tracing::warn!(path = %path.display(), cut_bytes, "cut a torn tail off a journal (a write a crash interrupted)");
        }
        let file = OpenOptions::new().append(true).open(path).map_err(LedgerError::io(path))?;
        Ok(Self { path: path.to_path_buf(), file, failed: None })
    }

    /// Appends framed records and fsyncs them. After a failure the tail on disk is unknown (a
    /// torn record at worst, cut at the next open): no more writes until then.
    pub(crate) fn append(&mut self, frames: &[u8]) -> Result<(), LedgerError> {
        if let Some(why) = &self.failed {
            return Err(LedgerError::Failed { path: self.path.clone(), why: why.clone() });
        }
        let result = self.file.write_all(frames).and_then(|()| self.file.sync_data());
        result.map_err(|source| {
            self.failed = Some(source.to_string());
            LedgerError::Io { path: self.path.clone(), source }
        })
    }

    /// Refuses writes from now on (the caller found its state no longer matches the file).
    pub(crate) fn poison(&mut self, why: String) {
        self.failed.get_or_insert(why);
    }
}

/// How far a scan got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scanned {
    /// Bytes of whole, valid records (and the magic) from the start.
    pub(crate) valid_bytes: u64,
    /// Bytes of the file; more than `valid_bytes` when a torn tail follows.
    pub(crate) file_bytes: u64,
}

/// Reads every record of the journal at `path`, in order (see the module docs).
pub(crate) fn scan(
    path: &Path,
    magic: &[u8; 8],
    record_bytes_max: usize,
    mut visit: impl FnMut(u64, &[u8]) -> Result<(), LedgerError>,
) -> Result<Scanned, LedgerError> {
    let io = LedgerError::io;
    let corrupt = |offset: u64, why: String| LedgerError::Corrupt { path: path.to_path_buf(), offset, why };
    let file = File::open(path).map_err(io(path))?;
    let file_bytes = file.metadata().map_err(io(path))?.len();
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, file);
    let mut head = [0u8; 8];
    if file_bytes < 8 || reader.read_exact(&mut head).is_err() || &head != magic {
        return Err(corrupt(0, format!("not a journal of this kind (its first bytes are not {:?})", String::from_utf8_lossy(magic))));
    }
    let mut offset = 8u64;
    let mut payload = Vec::new();
    while offset < file_bytes {
        let torn = Ok(Scanned { valid_bytes: offset, file_bytes });
        if file_bytes - offset < FRAME_HEADER_BYTES as u64 {
            return torn;
        }
        let mut header = [0u8; FRAME_HEADER_BYTES];
        reader.read_exact(&mut header).map_err(io(path))?;
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as u64;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        let end = offset + FRAME_HEADER_BYTES as u64 + len;
        if end > file_bytes {
            return torn;
        }
        if len == 0 || len > record_bytes_max as u64 {
            if header == [0; FRAME_HEADER_BYTES] && rest_is_zero(&mut reader).map_err(io(path))? {
                return torn;
            }
            return Err(corrupt(offset, format!("a record length of {len} bytes (1 to {record_bytes_max} expected)")));
        }
        payload.resize(len as usize, 0);
        reader.read_exact(&mut payload).map_err(io(path))?;
        if crc32c::crc32c_append(crc32c::crc32c(&header[..4]), &payload) != crc {
            if end == file_bytes {
                return torn;
            }
            return Err(corrupt(offset, "the record's checksum does not match (the file was damaged)".into()));
        }
        visit(offset, &payload)?;
        offset = end;
    }
    Ok(Scanned { valid_bytes: offset, file_bytes })
}

fn rest_is_zero(reader: &mut impl Read) -> std::io::Result<bool> {
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf)? {
            0 => return Ok(true),
            n if buf[..n].iter().any(|b| *b != 0) => return Ok(false),
            _ => {}
        }
    }
}

/// Takes `dir`'s OS lock for as long as the returned file is open (one process per folder).
pub(crate) fn lock_dir(dir: &Path) -> Result<File, LedgerError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(LedgerError::io(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(LedgerError::Locked { path: dir.to_path_buf() }),
        Err(std::fs::TryLockError::Error(source)) => Err(LedgerError::Io { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGIC: &[u8; 8] = b"FPTEST\x00\x01";

    fn file_of(payloads: &[&[u8]]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        for p in payloads {
            frame_into(&mut bytes, p, 64);
        }
        bytes
    }

    fn read(path: &Path) -> Result<(Vec<Vec<u8>>, Scanned), LedgerError> {
        let mut out = Vec::new();
        let s = scan(path, MAGIC, 64, |_, p| {
            out.push(p.to_vec());
            Ok(())
        })?;
        Ok((out, s))
    }

    #[test]
    fn a_torn_last_record_ends_the_scan_and_damage_before_it_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let whole = file_of(&[b"one", b"two"]);
        let mut torn = whole.clone();
        torn.truncate(whole.len() - 1);
        std::fs::write(&path, &torn).unwrap();
        let (records, s) = read(&path).unwrap();
        assert_eq!(records, vec![b"one".to_vec()]);
        assert_eq!(s.valid_bytes, (8 + 8 + 3) as u64);
        let mut damaged = whole.clone();
        damaged[8 + 8] ^= 1;
        std::fs::write(&path, &damaged).unwrap();
        assert!(matches!(read(&path).unwrap_err(), LedgerError::Corrupt { offset: 8, .. }));
        let mut zeros = whole.clone();
        zeros.extend_from_slice(&[0; 100]);
        std::fs::write(&path, &zeros).unwrap();
        assert_eq!(read(&path).unwrap().0.len(), 2);
    }

    #[test]
    fn another_kind_of_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        std::fs::write(&path, b"FPKEYJ\x00\x01").unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("not a journal of this kind"));
    }

    #[test]
    fn a_second_lock_on_a_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _held = lock_dir(dir.path()).unwrap();
        assert!(matches!(lock_dir(dir.path()).unwrap_err(), LedgerError::Locked { .. }));
    }
}
