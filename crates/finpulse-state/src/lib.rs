//! Live state: every user's profile and behaviour baseline, and every terminal's and merchant's
//! recent risk, updated on every event in log order.
//!
//! - [`LiveState::apply`] is deterministic: the same events in the same order give the same
//!   state, so a restart rebuilds it from a checkpoint plus the log after it ([`rebuild`]).
//! - [`LiveState::features`] gives a transaction's named features ([`features::NUMERIC`],
//!   [`features::TEXTUAL`]) against the state before it: what rules read and models learn from.
//! - Fraud labels arrive late, as `fraud_label` events; a terminal's fraud rate counts only the
//!   labels applied so far, so features never know more than the moment they describe.

pub mod features;
mod live;
pub mod view;
pub mod window;

pub use live::{
    BUSINESS_UTC_OFFSET_SECS, Baseline, CreditReport, Kind, LABEL_MATCH_DAYS, LiveState, Moments, OWN_BASELINE_TX_MIN, Profile,
    TERMINAL_LABEL_LAG_DAYS, UserState, Vocabulary, business_day, key,
};

use finpulse_log::{EventStore, StoreError};
use std::path::{Path, PathBuf};

/// Why state could not be saved, loaded or rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading the log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A checkpoint was written by an earlier version of live state.
    #[error("checkpoint {path}: format {found:?}, expected {CHECKPOINT_FORMAT:?}")]
    CheckpointFormat {
        /// The file.
        path: PathBuf,
        /// The format it declares.
        found: String,
    },
    /// A checkpoint file could not be read or written.
    #[error("checkpoint {path}: {detail}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
}

/// User partitions of a server's live state. Each partition's map grows on its own, so the
/// pause of growing one (under the state's lock, with decisions waiting) is a 64th of what one
/// map of every user would take.
pub const LIVE_STATE_PARTITIONS: usize = 64;

/// Where a data directory keeps its live-state checkpoint.
pub fn checkpoint_path(data_dir: &Path) -> PathBuf {
    data_dir.join("state").join("checkpoint.bin")
}

/// The file name of checkpoints up to `finpulse-live-state/2` (JSON, about three times the
/// size): set aside at start, removed once a checkpoint in the current format is written.
pub const LEGACY_CHECKPOINT_FILE: &str = "checkpoint.json";

/// The checkpoint format; changes whenever [`LiveState`]'s layout does. A checkpoint file is
/// this name and a line end; the next log record to apply (8 bytes, little-endian); the state
/// in postcard's encoding; then the state's length in bytes (8) and its CRC32C (4), so a torn or
/// damaged file is found before anything uses it.
pub const CHECKPOINT_FORMAT: &str = "finpulse-live-state/5";
/// The earlier binary format still read (and migrated on load: see `LiveState::decode_v3`).
pub const CHECKPOINT_FORMAT_V3: &str = "finpulse-live-state/3";

/// The trailer after the state: its length and checksum.
const TRAILER_BYTES: usize = 12;

/// Bytes a checkpoint's state is encoded into before each write to the file.
const CHECKPOINT_CHUNK_BYTES: usize = 1 << 20;

/// postcard's output, streamed to a file in chunks, counting the bytes and their CRC32C. The
/// first write error is kept for the caller (postcard's own errors carry no I/O detail).
struct Streamed<'a, W: std::io::Write> {
    out: &'a mut W,
    chunk: Vec<u8>,
    bytes: u64,
    crc: u32,
    failed: &'a mut Option<std::io::Error>,
}

impl<W: std::io::Write> Streamed<'_, W> {
    fn drain(&mut self) -> postcard::Result<()> {
        if let Err(e) = self.out.write_all(&self.chunk) {
            *self.failed = Some(e);
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.bytes += self.chunk.len() as u64;
        self.crc = crc32c::crc32c_append(self.crc, &self.chunk);
        self.chunk.clear();
        Ok(())
    }
}

impl<W: std::io::Write> postcard::ser_flavors::Flavor for Streamed<'_, W> {
    /// The state's length in bytes and its CRC32C.
    type Output = (u64, u32);

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.try_extend(&[byte])
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.chunk.extend_from_slice(data);
        if self.chunk.len() >= CHECKPOINT_CHUNK_BYTES { self.drain() } else { Ok(()) }
    }

    fn finalize(mut self) -> postcard::Result<(u64, u32)> {
        self.drain()?;
        Ok((self.bytes, self.crc))
    }
}

/// Writes a checkpoint of `state`, which has applied every record before `next_seq`, streamed
/// to disk (durably: temporary file, fsync, rename, folder fsync); then removes a checkpoint of
/// the earlier JSON format, if one is left.
pub fn save_checkpoint(path: &Path, state: &LiveState, next_seq: u64) -> Result<(), StateError> {
    use std::io::Write;
    let err = |detail: String| StateError::Checkpoint { path: path.to_path_buf(), detail };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    }
    finpulse_core::durable::write_with(path, |out| {
        out.write_all(CHECKPOINT_FORMAT.as_bytes())?;
        out.write_all(b"\n")?;
        out.write_all(&next_seq.to_le_bytes())?;
        let mut failed = None;
        let streamed =
            Streamed { out: &mut *out, chunk: Vec::with_capacity(CHECKPOINT_CHUNK_BYTES), bytes: 0, crc: 0, failed: &mut failed };
        let (bytes, crc) = match postcard::serialize_with_flavor(state, streamed) {
            Ok(summed) => summed,
            Err(e) => return Err(failed.unwrap_or_else(|| std::io::Error::other(e))),
        };
        out.write_all(&bytes.to_le_bytes())?;
        out.write_all(&crc.to_le_bytes())
    })
    .map_err(|e| err(e.to_string()))?;
    if let Some(legacy) = path.parent().map(|d| d.join(LEGACY_CHECKPOINT_FILE))
        && legacy.exists()
    {
        std::fs::remove_file(&legacy).map_err(|e| StateError::Checkpoint { path: legacy.clone(), detail: e.to_string() })?;
        tracing::info!(path = %legacy.display(), "removed the checkpoint of the earlier format");
    }
    Ok(())
}

/// Reads a checkpoint: the state and the next log record to apply (one of format 3 is migrated
/// to today's layout). A file that names another `finpulse-live-state/` format, or an earlier JSON one, is [`StateError::CheckpointFormat`];
/// anything else that does not check out (torn, damaged, not a checkpoint) is an error naming
/// the file.
pub fn load_checkpoint(path: &Path) -> Result<(LiveState, u64), StateError> {
    let err = |detail: String| StateError::Checkpoint { path: path.to_path_buf(), detail };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let line = bytes.iter().take(CHECKPOINT_FORMAT.len() + 1).position(|&b| b == b'\n').map(|end| &bytes[..end]);
    let v3 = line == Some(CHECKPOINT_FORMAT_V3.as_bytes());
    if line != Some(CHECKPOINT_FORMAT.as_bytes()) && !v3 {
        let start: String = String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).chars().take_while(|c| *c != '\n').collect();
        if start.starts_with("finpulse-live-state/") || start.starts_with('{') {
            return Err(StateError::CheckpointFormat { path: path.to_path_buf(), found: start });
        }
        return Err(err(format!("not a live-state checkpoint: it starts {start:?}")));
    }
    let body = &bytes[line.map_or(0, <[u8]>::len) + 1..];
    if body.len() < 8 + TRAILER_BYTES {
        return Err(err(format!("torn: {} bytes after the format line", body.len())));
    }
    let next_seq = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
    let (payload, trailer) = body[8..].split_at(body.len() - 8 - TRAILER_BYTES);
    let length = u64::from_le_bytes(trailer[..8].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(trailer[8..].try_into().expect("4 bytes"));
    if length != payload.len() as u64 {
        return Err(err(format!("torn: the state is {} bytes, its trailer says {length}", payload.len())));
    }
    if crc32c::crc32c(payload) != crc {
        return Err(err("checksum mismatch: the file is damaged".into()));
    }
    let decoded = if v3 { LiveState::decode_v3(payload) } else { postcard::from_bytes(payload) };
    let state = decoded.map_err(|e| err(format!("the state does not decode: {e}")))?;
    Ok((state, next_seq))
}

/// Rebuilds live state for a data directory: from its checkpoint when there is one, then every
/// log record after it. A checkpoint that does not load is reported, not silently ignored; one
/// in an earlier version's format is set aside with a warning and the state is rebuilt from the
/// whole log, which is the source of truth. Returns the state, the vocabulary and the next
/// sequence number.
pub fn rebuild(data_dir: &Path, partitions: usize) -> Result<(LiveState, Vocabulary, u64), StateError> {
    let r = rebuild_through(data_dir, partitions, u64::MAX)?;
    Ok((r.state, r.vocab, r.next_seq))
}

/// Live state rebuilt from a checkpoint and the log.
pub struct Rebuilt {
    /// The state.
    pub state: LiveState,
    /// The event types it knows.
    pub vocab: Vocabulary,
    /// The next log record to apply.
    pub next_seq: u64,
    /// Where the checkpoint it started from stood (0 without one).
    pub checkpoint_seq: u64,
}

/// [`rebuild`], applying log records before `upto_seq` only (`u64::MAX`: all of them).
pub fn rebuild_through(data_dir: &Path, partitions: usize, upto_seq: u64) -> Result<Rebuilt, StateError> {
    let registry = EventStore::load_registry(data_dir)?;
    let vocab = Vocabulary::new(&registry);
    let path = checkpoint_path(data_dir);
    let legacy = path.with_file_name(LEGACY_CHECKPOINT_FILE);
    if !path.exists() && legacy.exists() {
        tracing::warn!(path = %legacy.display(), "a checkpoint of an earlier format is set aside; rebuilding live state from the whole log");
    }
    let (mut state, from) = match path.exists().then(|| load_checkpoint(&path)) {
        None => (LiveState::new(partitions), 0),
        Some(Ok(loaded)) => loaded,
        Some(Err(e @ StateError::CheckpointFormat { .. })) => {
            tracing::warn!(error = %e, "rebuilding live state from the whole log");
            (LiveState::new(partitions), 0)
        }
        Some(Err(e)) => return Err(e),
    };
    // Records from `upto_seq` on are read past but not decoded.
    let next = EventStore::replay(data_dir, from, |seq, _| seq < upto_seq, |_, e| state.apply(&vocab, &e))?;
    Ok(Rebuilt { state, vocab, next_seq: next.min(upto_seq.max(from)), checkpoint_seq: from })
}

/// Moves a data directory's checkpoint up to log record `upto_seq` (exclusive): the state is
/// rebuilt from the current checkpoint and the log in this process's own memory, then saved.
/// A running server does this in the background, so the next start replays little of the log
/// while its live state stays unlocked. `upto_seq` must be durable in the log (a server passes
/// what it has applied, which it applies only after the fsync). Returns the new checkpoint's
/// sequence number, or `None` when the checkpoint already stands at or past `upto_seq`.
pub fn advance_checkpoint(data_dir: &Path, partitions: usize, upto_seq: u64) -> Result<Option<u64>, StateError> {
    let r = rebuild_through(data_dir, partitions, upto_seq)?;
    if r.checkpoint_seq >= upto_seq || r.next_seq < upto_seq {
        // Already there, or the log ends before `upto_seq` (it was not durable): keep what is.
        return Ok(None);
    }
    save_checkpoint(&checkpoint_path(data_dir), &r.state, r.next_seq)?;
    Ok(Some(r.next_seq))
}
