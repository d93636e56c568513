//! The key journal, `keys.journal`: every data key (wrapped), every erased user's tombstone and
//! the blind-index key (wrapped), in framed records.
//!
//! ```text
//! file    := magic record*
//! magic   := "FPKEYJ" 0x00 0x01                        (8 bytes; the last is the format)
//! record  := length:u32le crc:u32le payload            (crc = CRC32C of length and payload)
//! payload := 0x01 user_len:u8 user key_version:u32le master_version:u32le wrapped_len:u16le wrapped
//!          | 0x02 user_len:u8 user erased_at_us:i64le
//!          | 0x03 master_version:u32le wrapped_len:u16le wrapped
//! ```
//!
//! New keys are appended and fsync'd; erasure and rotation rewrite the whole file durably. On
//! open, a damaged last record is a write cut by a crash (its keys were never acknowledged, so
//! nothing was encrypted under them) and is cut off: one that runs past the end of the file, one
//! whose checksum fails and that ends exactly at the end, or zeros to the end (space the file
//! system allotted but the crash left unwritten). Any other damage is an error naming its byte
//! offset: a key lost silently would make data unreadable just as silently.

use crate::store::ProtectError;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// The journal's file name.
pub const JOURNAL_FILE: &str = "keys.journal";
/// The first bytes of every journal.
pub(crate) const MAGIC: &[u8; 8] = b"FPKEYJ\x00\x01";
/// Bytes of a record's length and checksum.
const FRAME_HEADER_BYTES: usize = 8;
/// The longest record payload: the largest record (a data key of the longest user id wrapped
/// in the largest blob a provider may return) is 1,164 bytes.
pub const RECORD_BYTES_MAX: usize = 2048;
/// The largest wrapped key a provider may return (the local provider's are 61 bytes; an HSM's
/// may carry more).
pub const WRAPPED_KEY_BYTES_MAX: usize = 1024;
/// How much of the journal is read at once.
const READ_BUFFER_BYTES: usize = 256 * 1024;

const KIND_DATA_KEY: u8 = 1;
const KIND_ERASED: u8 = 2;
const KIND_BLIND_KEY: u8 = 3;

const _: () = assert!(1 + 1 + crate::store::USER_ID_BYTES_MAX + 4 + 4 + 2 + WRAPPED_KEY_BYTES_MAX <= RECORD_BYTES_MAX);

/// One journal record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    /// A user's data key, wrapped under a master key version.
    DataKey { user: String, key_version: u32, master_version: u32, wrapped: Vec<u8> },
    /// A user whose data key was destroyed.
    Erased { user: String, at_us: i64 },
    /// The blind-index key, wrapped under a master key version.
    BlindKey { master_version: u32, wrapped: Vec<u8> },
}

impl Record {
    /// Appends this record, framed, to `out`. User ids and wrapped keys are checked against
    /// their limits before a record is made, so the frame always fits [`RECORD_BYTES_MAX`].
    pub(crate) fn frame_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
        match self {
            Self::DataKey { user, key_version, master_version, wrapped } => {
                out.push(KIND_DATA_KEY);
                push_user(out, user);
                out.extend_from_slice(&key_version.to_le_bytes());
                out.extend_from_slice(&master_version.to_le_bytes());
                push_wrapped(out, wrapped);
            }
            Self::Erased { user, at_us } => {
                out.push(KIND_ERASED);
                push_user(out, user);
                out.extend_from_slice(&at_us.to_le_bytes());
            }
            Self::BlindKey { master_version, wrapped } => {
                out.push(KIND_BLIND_KEY);
                out.extend_from_slice(&master_version.to_le_bytes());
                push_wrapped(out, wrapped);
            }
        }
        let len = out.len() - start - FRAME_HEADER_BYTES;
        assert!(len <= RECORD_BYTES_MAX, "a journal record of {len} bytes");
        let len = (len as u32).to_le_bytes();
        out[start..start + 4].copy_from_slice(&len);
        let crc = crc32c::crc32c_append(crc32c::crc32c(&len), &out[start + FRAME_HEADER_BYTES..]);
        out[start + 4..start + FRAME_HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
    }

    fn decode(payload: &[u8]) -> Result<Self, String> {
        let mut r = Cursor { bytes: payload, at: 0 };
        let record = match r.u8()? {
            KIND_DATA_KEY => Self::DataKey { user: r.user()?, key_version: r.u32()?, master_version: r.u32()?, wrapped: r.wrapped()? },
            KIND_ERASED => Self::Erased { user: r.user()?, at_us: i64::from_le_bytes(r.array()?) },
            KIND_BLIND_KEY => Self::BlindKey { master_version: r.u32()?, wrapped: r.wrapped()? },
            kind => return Err(format!("unknown record kind {kind}")),
        };
        if r.at != payload.len() {
            return Err(format!("{} bytes left over after the record", payload.len() - r.at));
        }
        Ok(record)
    }
}

fn push_user(out: &mut Vec<u8>, user: &str) {
    assert!(user.len() <= crate::store::USER_ID_BYTES_MAX, "user id checked before a record is made");
    out.push(user.len() as u8);
    out.extend_from_slice(user.as_bytes());
}

fn push_wrapped(out: &mut Vec<u8>, wrapped: &[u8]) {
    assert!(wrapped.len() <= WRAPPED_KEY_BYTES_MAX, "wrapped key length checked before a record is made");
    out.extend_from_slice(&(wrapped.len() as u16).to_le_bytes());
    out.extend_from_slice(wrapped);
}

/// Reads a payload field by field.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len()).ok_or("the record ends early")?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().expect("N bytes taken"))
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn user(&mut self) -> Result<String, String> {
        let len = self.u8()? as usize;
        let bytes = self.take(len)?;
        crate::store::check_user(std::str::from_utf8(bytes).map_err(|_| "the user id is not UTF-8")?).map_err(|e| e.to_string())?;
        Ok(String::from_utf8(bytes.to_vec()).expect("checked UTF-8"))
    }

    fn wrapped(&mut self) -> Result<Vec<u8>, String> {
        let len = u16::from_le_bytes(self.array()?) as usize;
        if len > WRAPPED_KEY_BYTES_MAX {
            return Err(format!("a wrapped key of {len} bytes, more than {WRAPPED_KEY_BYTES_MAX}"));
        }
        Ok(self.take(len)?.to_vec())
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

/// Reads every record of the journal at `path`, in order, handing each to `visit` with its
/// byte offset. A torn tail ends the scan (see the module docs); other damage is an error.
pub(crate) fn scan(path: &Path, mut visit: impl FnMut(u64, Record) -> Result<(), ProtectError>) -> Result<Scanned, ProtectError> {
    let io = |source| ProtectError::Io { path: path.to_path_buf(), source };
    let corrupt = |offset: u64, why: String| ProtectError::Corrupt { path: path.to_path_buf(), offset, why };
    let file = File::open(path).map_err(io)?;
    let file_bytes = file.metadata().map_err(io)?.len();
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, file);
    if file_bytes < MAGIC.len() as u64 {
        return Err(corrupt(0, format!("{file_bytes} bytes, shorter than the journal header")));
    }
    let mut magic = [0u8; MAGIC.len()];
    reader.read_exact(&mut magic).map_err(io)?;
    if &magic != MAGIC {
        return Err(corrupt(0, "not a finpulse key journal (unknown header)".into()));
    }
    let mut offset = MAGIC.len() as u64;
    let mut payload = Vec::with_capacity(RECORD_BYTES_MAX);
    while offset < file_bytes {
        let torn = Ok(Scanned { valid_bytes: offset, file_bytes });
        if file_bytes - offset < FRAME_HEADER_BYTES as u64 {
            return torn;
        }
        let mut header = [0u8; FRAME_HEADER_BYTES];
        reader.read_exact(&mut header).map_err(io)?;
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as u64;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        let end = offset + FRAME_HEADER_BYTES as u64 + len;
        if end > file_bytes {
            return torn;
        }
        if len == 0 || len > RECORD_BYTES_MAX as u64 {
            return if header == [0; FRAME_HEADER_BYTES] && rest_is_zero(&mut reader).map_err(io)? {
                torn
            } else {
                Err(corrupt(offset, format!("a record length of {len} bytes (1 to {RECORD_BYTES_MAX} expected)")))
            };
        }
        payload.resize(len as usize, 0);
        reader.read_exact(&mut payload).map_err(io)?;
        if crc32c::crc32c_append(crc32c::crc32c(&header[..4]), &payload) != crc {
            if end == file_bytes {
                return torn;
            }
            return Err(corrupt(offset, "the record's checksum does not match (the file was damaged)".into()));
        }
        let record = Record::decode(&payload).map_err(|why| corrupt(offset, why))?;
        visit(offset, record)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<Record> {
        vec![
            Record::BlindKey { master_version: 1, wrapped: vec![1; 61] },
            Record::DataKey { user: "u1".into(), key_version: 1, master_version: 1, wrapped: vec![2; 61] },
            Record::Erased { user: "用户2".into(), at_us: 1_700_000_000_000_000 },
        ]
    }

    fn file_of(records: &[Record]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        for r in records {
            r.frame_into(&mut bytes);
        }
        bytes
    }

    fn read_all(path: &Path) -> Result<(Vec<(u64, Record)>, Scanned), ProtectError> {
        let mut out = Vec::new();
        let scanned = scan(path, |offset, r| {
            out.push((offset, r));
            Ok(())
        })?;
        Ok((out, scanned))
    }

    #[test]
    fn records_read_back_as_written_with_their_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let bytes = file_of(&records());
        std::fs::write(&path, &bytes).unwrap();
        let (read, scanned) = read_all(&path).unwrap();
        assert_eq!(read.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(), records());
        assert_eq!(read[0].0, MAGIC.len() as u64);
        assert_eq!(scanned, Scanned { valid_bytes: bytes.len() as u64, file_bytes: bytes.len() as u64 });
    }

    #[test]
    fn zeros_after_the_last_record_are_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut bytes = file_of(&records());
        let valid = bytes.len() as u64;
        bytes.extend_from_slice(&[0; 4096]);
        std::fs::write(&path, &bytes).unwrap();
        let (read, scanned) = read_all(&path).unwrap();
        assert_eq!((read.len(), scanned.valid_bytes), (3, valid));
        // Not all zeros: damage, named by its offset.
        *bytes.last_mut().unwrap() = 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = read_all(&path).unwrap_err();
        assert!(matches!(err, ProtectError::Corrupt { offset, .. } if offset == valid), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        std::fs::write(&path, b"{\"keys\": []}").unwrap();
        assert!(read_all(&path).unwrap_err().to_string().contains("not a finpulse key journal"));
    }
}
