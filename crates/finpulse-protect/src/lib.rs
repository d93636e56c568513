//! Field encryption at rest, for PIPL: C2 and C3 fields are sealed field by field before they
//! reach the event log, each user's under a data key of their own, so erasing a user is
//! destroying one key (crypto-shredding) rather than rewriting every event that mentions them.
//!
//! # What it owns
//!
//! - [`KeyProvider`] and [`MasterKeys`]: the master keys that wrap data keys, by version, from
//!   an owner-only key file or the `FINPULSE_MASTER_KEY` variable; an HSM or KMS plugs in as
//!   another `KeyProvider` (it is handed data keys to wrap, never asked for its own keys).
//! - [`KeyStore`]: one random 256-bit data key per user, stored only wrapped, unwrapped in a
//!   sharded in-memory map for fast sealing. [`KeyStore::ensure_keys`] makes missing keys
//!   durable before the events that use them are written; [`KeyStore::encrypt`] and
//!   [`KeyStore::decrypt`] (and their `_text` forms) seal one field; [`KeyStore::blind_index`]
//!   gives the keyed digest joins and block lists match on; [`KeyStore::erase`] crypto-shreds a
//!   user; [`KeyStore::rotate_master`] re-wraps every data key under a new master key version
//!   without touching an event.
//! - [`Algorithm`]: AES-256-GCM by default, SM4-GCM for deployments held to the national
//!   algorithms. Every envelope names its algorithm, so changing the default later leaves old
//!   fields readable.
//!
//! # What it never does
//!
//! It knows no HTTP, no event store and no data classes: callers decide which fields to seal.
//! Its only I/O is its own files in the folder it is given. It never writes a key unwrapped,
//! never logs one, and never makes a key for an erased user.
//!
//! # On disk
//!
//! The store's folder (created `0700`) holds:
//!
//! - `keys.journal`, owner-only: a header (`FPKEYJ`, 0, format 1) then framed records (a u32
//!   length, a CRC32C, the payload): the blind-index key, each user's data key (wrapped, with
//!   the master key version that wrapped it) and each erased user's tombstone. See the
//!   `journal` module for the layout and how a torn tail is told from damage.
//! - `LOCK`: the OS lock the owning process holds.
//!
//! The master key file is the operator's, kept elsewhere: `v<version> <64 hex>` a line,
//! owner-only (see [`master`]).
//!
//! A sealed field (see [`envelope`]): format byte, algorithm byte, data-key version (u32 BE),
//! 96-bit random nonce, ciphertext, 128-bit tag; 34 bytes over the plaintext. The associated
//! data binds the user id, field id, algorithm and key version. As text: `enc1:` + base64url.
//! A blind index: the first 128 bits of HMAC-SHA256 under a per-field key; as text `bi1:` +
//! base64url.

pub mod algorithm;
mod blind;
pub mod envelope;
mod journal;
pub mod master;
mod sealer;
mod store;

pub use algorithm::{Algorithm, KEY_BYTES, UnknownAlgorithm};
pub use blind::{BLIND_INDEX_BYTES, BLIND_INDEX_TEXT_PREFIX};
pub use envelope::{ENVELOPE_OVERHEAD_BYTES, ENVELOPE_TEXT_BYTES_MAX, ENVELOPE_TEXT_PREFIX, FIELD_PLAINTEXT_BYTES_MAX, is_envelope};
pub use journal::{JOURNAL_FILE, RECORD_BYTES_MAX, WRAPPED_KEY_BYTES_MAX};
pub use master::{KeyProvider, MASTER_KEY_ENV, MasterKeyError, MasterKeys};
pub use store::{ENSURE_USERS_MAX, ERASE_USERS_MAX, ErasureReceipt, KeyState, KeyStore, LOCK_FILE, ProtectError, USER_ID_BYTES_MAX};
