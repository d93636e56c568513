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
    BUSINESS_UTC_OFFSET_SECS, Baseline, CreditReport, Kind, LABEL_MATCH_DAYS, LiveState, Moments, OWN_BASELINE_TX_MIN, Profile, UserState,
    Vocabulary, business_day, key,
};

use finpulse_log::{EventStore, StoreError};
use serde::{Deserialize, Serialize};
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
    data_dir.join("state").join("checkpoint.json")
}

/// A checkpoint: the state after every log record before `next_seq`.
#[derive(Serialize, Deserialize)]
struct Checkpoint {
    format: String,
    next_seq: u64,
    state: LiveState,
}

/// The checkpoint format; changes whenever [`LiveState`]'s layout does.
pub const CHECKPOINT_FORMAT: &str = "finpulse-live-state/2";

/// Writes a checkpoint of `state`, which has applied every record before `next_seq`
/// (durably: temporary file, fsync, rename, folder fsync).
pub fn save_checkpoint(path: &Path, state: &LiveState, next_seq: u64) -> Result<(), StateError> {
    let err = |detail: String| StateError::Checkpoint { path: path.to_path_buf(), detail };
    #[derive(Serialize)]
    struct Out<'a> {
        format: &'a str,
        next_seq: u64,
        state: &'a LiveState,
    }
    let bytes = serde_json::to_vec(&Out { format: CHECKPOINT_FORMAT, next_seq, state }).map_err(|e| err(e.to_string()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    }
    finpulse_models::durable::write_file(path, &bytes).map_err(|e| err(e.to_string()))
}

/// Reads a checkpoint: the state and the next log record to apply.
pub fn load_checkpoint(path: &Path) -> Result<(LiveState, u64), StateError> {
    let err = |detail: String| StateError::Checkpoint { path: path.to_path_buf(), detail };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    #[derive(Deserialize)]
    struct Header {
        format: String,
    }
    let header: Header = serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))?;
    if header.format != CHECKPOINT_FORMAT {
        return Err(StateError::CheckpointFormat { path: path.to_path_buf(), found: header.format });
    }
    let c: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))?;
    Ok((c.state, c.next_seq))
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
    let (mut state, from) = match path.exists().then(|| load_checkpoint(&path)) {
        None => (LiveState::new(partitions), 0),
        Some(Ok(loaded)) => loaded,
        Some(Err(e @ StateError::CheckpointFormat { .. })) => {
            tracing::warn!(error = %e, "rebuilding live state from the whole log");
            (LiveState::new(partitions), 0)
        }
        Some(Err(e)) => return Err(e),
    };
    let next = EventStore::replay(
        data_dir,
        from,
        |_| true,
        |seq, e| {
            if seq < upto_seq {
                state.apply(&vocab, &e);
            }
        },
    )?;
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
