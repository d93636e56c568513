//! The tamper-evident audit log: one JSON line per entry, each line a leaf of an RFC 6962
//! Merkle tree, and an Ed25519-signed tree head written after every append, so changing,
//! removing or inserting any byte of any entry is found by [`verify`].
//!
//! Files in the audit directory: `entries.jsonl` (the leaves, exactly as hashed),
//! `heads.jsonl` (signed tree heads), `signing.key` (the Ed25519 seed, owner-only) and
//! `signing.pub` (the key `verify` checks heads with; keep a copy elsewhere). An OS lock on
//! `LOCK` is held across each append, so the server and a CLI command append in turn.
//!
//! The log cannot by itself notice its own last entries and heads being cut off together, or
//! being re-signed by someone holding `signing.key`: tree heads copied out of the machine
//! (`finpulse audit head`) are what a later check is held against (`--trusted-head`).

use crate::merkle::{self, Frontier, Hash, Tree};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The entries file's name.
pub const ENTRIES_FILE: &str = "entries.jsonl";
/// The signed tree heads file's name.
pub const HEADS_FILE: &str = "heads.jsonl";
/// The signing key's file name.
pub const SIGNING_KEY_FILE: &str = "signing.key";
/// The verifying (public) key's file name.
pub const VERIFYING_KEY_FILE: &str = "signing.pub";
const LOCK_FILE: &str = "LOCK";
/// What a tree head's signature covers, before the size, time and root.
const HEAD_CONTEXT: &[u8] = b"finpulse audit tree head v1\n";
/// Longest text kept in one field of an entry; longer text is cut (and says so).
pub const ENTRY_TEXT_BYTES_MAX: usize = 2048;

/// What happened, as the caller reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Who: `key:<id>`, `user:<name>`, `cli:<os user>`, or `anonymous`.
    pub actor: String,
    /// Their role, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Their tenant.
    pub tenant: String,
    /// What was done, e.g. `POST /v1/rules`, `sign_in`, `keys.create`, `sql.read_clear`.
    pub action: String,
    /// What it was done to (a key id, a path with its parameters, a user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The purpose stated for a read in clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Where from: the peer address, or `cli`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `started` (a change about to be made), `ok`, `denied`, `refused` or `failed`.
    pub outcome: String,
    /// The HTTP status answered, for requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// SHA-256 of the request body (hex), for requests that carry one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_sha256: Option<String>,
    /// Why it was denied or failed, or what it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The outcome of a change's first entry, written before the change is made; a second entry
/// with the same action and target gives its outcome. A crash between the two leaves the
/// intent on record: never a change without a trace.
pub const OUTCOME_STARTED: &str = "started";

/// One entry as stored: its place, its time and the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Zero-based index; also the leaf index in the tree.
    pub seq: u64,
    /// When, microseconds since the epoch (UTC).
    pub at_us: i64,
    /// The record.
    #[serde(flatten)]
    pub record: Record,
}

/// A signed tree head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeHead {
    /// Entries the tree covers.
    pub tree_size: u64,
    /// When it was signed, microseconds since the epoch.
    pub at_us: i64,
    /// The tree's root hash (hex).
    pub root: String,
    /// Ed25519 signature (hex) over the context, size, time and root.
    pub signature: String,
}

impl TreeHead {
    fn message(tree_size: u64, at_us: i64, root: &Hash) -> Vec<u8> {
        let mut m = HEAD_CONTEXT.to_vec();
        m.extend_from_slice(&tree_size.to_be_bytes());
        m.extend_from_slice(&at_us.to_be_bytes());
        m.extend_from_slice(root);
        m
    }

    /// Its root as bytes; `None` when the hex is not 32 bytes.
    pub fn root_hash(&self) -> Option<Hash> {
        hex::decode(&self.root).ok()?.try_into().ok()
    }

    /// Whether `key` signed this head.
    pub fn signed_by(&self, key: &VerifyingKey) -> bool {
        let (Some(root), Ok(sig)) = (self.root_hash(), hex::decode(&self.signature)) else {
            return false;
        };
        let Ok(sig) = Signature::from_slice(&sig) else {
            return false;
        };
        key.verify(&Self::message(self.tree_size, self.at_us, &root), &sig).is_ok()
    }
}

/// Why the audit log could not be used or did not verify.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file could not be read or written.
    #[error("audit log {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A key file is damaged.
    #[error("audit log {path}: {what}")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: &'static str,
    },
    /// An entry is not what was appended.
    #[error("audit entry {seq} (line {line} of {ENTRIES_FILE}) is bad: {why}")]
    BadEntry {
        /// The first bad entry.
        seq: u64,
        /// Its line.
        line: u64,
        /// What is wrong.
        why: String,
    },
    /// A tree head does not check out.
    #[error("audit tree head {index} (line {line} of {HEADS_FILE}, size {tree_size}) is bad: {why}")]
    BadHead {
        /// Its index in the heads file.
        index: usize,
        /// Its line.
        line: usize,
        /// The size it claims.
        tree_size: u64,
        /// What is wrong.
        why: String,
    },
}

impl AuditError {
    /// The same failure, for each caller of a batch it stopped.
    fn duplicate(&self) -> Self {
        match self {
            AuditError::Io { path, source } => {
                AuditError::Io { path: path.clone(), source: std::io::Error::new(source.kind(), source.to_string()) }
            }
            AuditError::BadKey { path, what } => AuditError::BadKey { path: path.clone(), what },
            AuditError::BadEntry { seq, line, why } => AuditError::BadEntry { seq: *seq, line: *line, why: why.clone() },
            AuditError::BadHead { index, line, tree_size, why } => {
                AuditError::BadHead { index: *index, line: *line, tree_size: *tree_size, why: why.clone() }
            }
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io { path: path.to_path_buf(), source }
}

/// A record waiting to be written, and where its entry (or the failure) goes.
type Waiting = (Record, std::sync::mpsc::SyncSender<Result<Entry, AuditError>>);

/// The appending side of the audit log.
pub struct AuditLog {
    dir: PathBuf,
    key: SigningKey,
    state: Mutex<State>,
    /// Records waiting to be written, each with where its entry (or the failure) goes.
    pending: Mutex<Vec<Waiting>>,
}

#[derive(Default)]
struct State {
    frontier: Frontier,
    /// Bytes of the entries file this process has read or written.
    entries_bytes: u64,
}

impl AuditLog {
    /// Opens (creating when absent) the audit log in `dir`, with a new signing key on first use.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, AuditError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let key = load_or_create_key(&dir)?;
        let log = Self { dir, key, state: Mutex::new(State::default()), pending: Mutex::default() };
        {
            let _lock = log.lock()?;
            let mut state = log.state.lock();
            log.catch_up(&mut state)?;
            // Entries written just before a crash, before their head was: sign them now.
            let heads = read_heads(&log.dir)?;
            if heads.last().is_none_or(|h| h.tree_size < state.frontier.size()) && state.frontier.size() > 0 {
                log.write_head(&state)?;
            }
        }
        Ok(log)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key tree heads are checked with.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The deployment's Ed25519 signature of `message`, which must begin with a domain of its
    /// own (a subject export's manifest does). `None` for a message that begins as a tree
    /// head's signed text does, so no signature made here can pass for a head.
    pub fn sign(&self, message: &[u8]) -> Option<[u8; 64]> {
        if message.starts_with(HEAD_CONTEXT) {
            return None;
        }
        Some(self.key.sign(message).to_bytes())
    }

    fn lock(&self) -> Result<File, AuditError> {
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io(&path))?;
        file.lock().map_err(io(&path))?;
        Ok(file)
    }

    /// Reads entries other processes appended since this one last looked. A last line without
    /// its newline is a write cut by a crash (never acknowledged, never under a head): it is
    /// removed.
    fn catch_up(&self, state: &mut State) -> Result<(), AuditError> {
        let path = self.dir.join(ENTRIES_FILE);
        let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(&path)(e)),
        };
        let len = file.metadata().map_err(io(&path))?.len();
        if len <= state.entries_bytes {
            return Ok(());
        }
        file.seek(SeekFrom::Start(state.entries_bytes)).map_err(io(&path))?;
        let mut new = Vec::with_capacity((len - state.entries_bytes) as usize);
        file.read_to_end(&mut new).map_err(io(&path))?;
        let complete = new.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        for line in new[..complete].split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            state.frontier.push(merkle::leaf_hash(line));
        }
        state.entries_bytes += complete as u64;
        if complete < new.len() {
            file.set_len(state.entries_bytes).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
        }
        Ok(())
    }

    /// Appends `record` and a signed head covering it; both are on disk (fsync'd) when this
    /// returns, so the audited action may then be acknowledged. Records appended at the same
    /// time share one write, one fsync and one head (group commit): a flood of refused requests
    /// costs the disk two fsyncs per batch, not per request.
    pub fn append(&self, record: Record) -> Result<Entry, AuditError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.pending.lock().push((record, tx));
        loop {
            if let Ok(done) = rx.try_recv() {
                return done;
            }
            // Whoever holds the state writes everything pending, ours included if it is there
            // in time; otherwise we take the next turn.
            if let Some(mut state) = self.state.try_lock() {
                let batch = std::mem::take(&mut *self.pending.lock());
                if !batch.is_empty() {
                    self.write_batch(&mut state, batch);
                }
                continue;
            }
            if let Ok(done) = rx.recv_timeout(std::time::Duration::from_millis(1)) {
                return done;
            }
        }
    }

    /// Writes a batch under the OS lock and answers each of its callers.
    fn write_batch(&self, state: &mut State, batch: Vec<Waiting>) {
        let (records, replies): (Vec<Record>, Vec<_>) = batch.into_iter().unzip();
        match self.write_records(state, records) {
            Ok(entries) => {
                for (entry, reply) in entries.into_iter().zip(replies) {
                    let _ = reply.send(Ok(entry));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.duplicate()));
                }
            }
        }
    }

    fn write_records(&self, state: &mut State, records: Vec<Record>) -> Result<Vec<Entry>, AuditError> {
        let _lock = self.lock()?;
        self.catch_up(state)?;
        let at_us = finpulse_core::time::now_us();
        let mut bytes = Vec::new();
        let mut entries = Vec::with_capacity(records.len());
        let mut leaves = Vec::with_capacity(records.len());
        for (i, record) in records.into_iter().enumerate() {
            let entry = Entry { seq: state.frontier.size() + i as u64, at_us, record: bounded(record) };
            let line = serde_json::to_vec(&entry).expect("an audit entry serialises");
            leaves.push(merkle::leaf_hash(&line));
            bytes.extend_from_slice(&line);
            bytes.push(b'\n');
            entries.push(entry);
        }
        let path = self.dir.join(ENTRIES_FILE);
        let mut file = OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
        file.write_all(&bytes).map_err(io(&path))?;
        file.sync_data().map_err(io(&path))?;
        state.entries_bytes += bytes.len() as u64;
        for leaf in leaves {
            state.frontier.push(leaf);
        }
        self.write_head(state)?;
        Ok(entries)
    }

    fn write_head(&self, state: &State) -> Result<TreeHead, AuditError> {
        let (size, root, at_us) = (state.frontier.size(), state.frontier.root(), finpulse_core::time::now_us());
        let signature = self.key.sign(&TreeHead::message(size, at_us, &root));
        let head = TreeHead { tree_size: size, at_us, root: hex::encode(root), signature: hex::encode(signature.to_bytes()) };
        let mut line = serde_json::to_vec(&head).expect("a tree head serialises");
        line.push(b'\n');
        let path = self.dir.join(HEADS_FILE);
        let mut file = OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
        file.write_all(&line).map_err(io(&path))?;
        file.sync_data().map_err(io(&path))?;
        Ok(head)
    }
}

/// Cuts over-long text so one entry stays small whatever a request carried.
fn bounded(mut r: Record) -> Record {
    let cut = |s: &mut String| {
        if s.len() > ENTRY_TEXT_BYTES_MAX {
            let mut end = ENTRY_TEXT_BYTES_MAX;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            s.push_str("…(cut)");
        }
    };
    for s in [&mut r.actor, &mut r.tenant, &mut r.action, &mut r.outcome] {
        cut(s);
    }
    for s in [&mut r.role, &mut r.target, &mut r.purpose, &mut r.from, &mut r.request_sha256, &mut r.detail].into_iter().flatten() {
        cut(s);
    }
    r
}

fn load_or_create_key(dir: &Path) -> Result<SigningKey, AuditError> {
    let path = dir.join(SIGNING_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let seed: [u8; 32] = hex::decode(text.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or(AuditError::BadKey { path: path.clone(), what: "not 32 bytes of hex" })?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            rand::fill(&mut seed);
            let key = SigningKey::from_bytes(&seed);
            crate::secret_file::write(&path, hex::encode(seed).as_bytes()).map_err(io(&path))?;
            let public = dir.join(VERIFYING_KEY_FILE);
            finpulse_core::durable::write_file(&public, hex::encode(key.verifying_key().to_bytes()).as_bytes()).map_err(io(&public))?;
            Ok(key)
        }
        Err(e) => Err(io(&path)(e)),
    }
}

/// Reads the verifying key from `dir`.
pub fn read_verifying_key(dir: &Path) -> Result<VerifyingKey, AuditError> {
    let path = dir.join(VERIFYING_KEY_FILE);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(AuditError::BadKey { path: path.clone(), what: "not 32 bytes of hex" })?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| AuditError::BadKey { path, what: "not an Ed25519 public key" })
}

/// Every tree head in `dir`, in order.
pub fn read_heads(dir: &Path) -> Result<Vec<TreeHead>, AuditError> {
    let path = dir.join(HEADS_FILE);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(&path)(e)),
    };
    let mut heads = Vec::new();
    for (i, line) in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).enumerate() {
        let head: TreeHead = serde_json::from_slice(line).map_err(|e| AuditError::BadHead {
            index: i,
            line: i + 1,
            tree_size: 0,
            why: format!("not a tree head: {e}"),
        })?;
        heads.push(head);
    }
    Ok(heads)
}

/// The whole log read back: entries exactly as stored, and their tree.
pub struct Snapshot {
    /// The entries, parsed.
    pub entries: Vec<Entry>,
    /// The tree over the stored lines.
    pub tree: Tree,
    /// The signed heads.
    pub heads: Vec<TreeHead>,
}

/// Reads every entry, checking each parses and is numbered in order.
pub fn read(dir: &Path) -> Result<Snapshot, AuditError> {
    let path = dir.join(ENTRIES_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io(&path)(e)),
    };
    let (mut entries, mut leaves) = (Vec::new(), Vec::new());
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    for (i, line) in lines.into_iter().enumerate() {
        let bad = |why: String| AuditError::BadEntry { seq: i as u64, line: i as u64 + 1, why };
        let entry: Entry = serde_json::from_slice(line).map_err(|e| bad(format!("not an audit entry: {e}")))?;
        if entry.seq != i as u64 {
            return Err(bad(format!("it says it is entry {}", entry.seq)));
        }
        leaves.push(merkle::leaf_hash(line));
        entries.push(entry);
    }
    Ok(Snapshot { entries, tree: Tree::new(leaves), heads: read_heads(dir)? })
}

/// Proof that one entry is in the log: the entry as stored, the latest signed head, and the
/// RFC 6962 audit path from the entry's leaf to that head's root. Anyone with the deployment's
/// verifying key checks it without the rest of the log ([`Inclusion::verify`]); an erasure's is
/// its certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inclusion {
    /// The entry's line in `entries.jsonl`, exactly as stored (its leaf is SHA-256 of 0x00 and
    /// these bytes).
    pub entry: String,
    /// The entry's index, which is its leaf's.
    pub leaf_index: u64,
    /// The latest signed head.
    pub tree_head: TreeHead,
    /// The audit path, leaf to root (hex).
    pub proof: Vec<String>,
    /// The key that signs heads (hex Ed25519).
    pub verifying_key: String,
}

impl Inclusion {
    /// Whether the head is signed by `key` and the entry's leaf is in its tree.
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        let (Some(root), true) = (self.tree_head.root_hash(), self.tree_head.signed_by(key)) else {
            return false;
        };
        let proof: Option<Vec<Hash>> = self.proof.iter().map(|h| hex::decode(h).ok()?.try_into().ok()).collect();
        let Some(proof) = proof else { return false };
        let leaf = merkle::leaf_hash(self.entry.as_bytes());
        merkle::verify_inclusion(&leaf, self.leaf_index, self.tree_head.tree_size, &proof, &root)
    }
}

/// The inclusion proof of entry `seq` under the latest signed head; `None` when there is no
/// such entry or no head covers it yet.
pub fn inclusion(dir: &Path, seq: u64) -> Result<Option<Inclusion>, AuditError> {
    let snapshot = read(dir)?;
    let Some(head) = snapshot.heads.last().filter(|h| h.tree_size > seq).cloned() else { return Ok(None) };
    let Some(proof) = snapshot.tree.inclusion_proof(seq as usize, head.tree_size as usize) else { return Ok(None) };
    let path = dir.join(ENTRIES_FILE);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let Some(line) = bytes.split(|b| *b == b'\n').nth(seq as usize) else { return Ok(None) };
    Ok(Some(Inclusion {
        entry: String::from_utf8_lossy(line).into_owned(),
        leaf_index: seq,
        tree_head: head,
        proof: proof.iter().map(hex::encode).collect(),
        verifying_key: hex::encode(read_verifying_key(dir)?.to_bytes()),
    }))
}

/// What [`verify`] checked.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    /// Entries checked.
    pub entries: u64,
    /// Signed heads checked (signature, and root against the entries).
    pub heads: usize,
    /// The latest head.
    pub latest: Option<TreeHead>,
    /// Consistency proofs checked between heads.
    pub consistency_proofs: usize,
    /// Inclusion proofs checked against the latest head.
    pub inclusion_proofs: usize,
}

/// Heads and entries whose proofs `verify` checks besides recomputing every root: evenly spread,
/// so a long log verifies in O(n) hashing.
pub const PROOFS_SAMPLED_MAX: usize = 256;

/// Checks the whole log in `dir`: every entry parses and is in order; every head is signed by
/// the verifying key, grows, and its root is the root of the entries it claims; the last head
/// covers every entry; a sample of consistency proofs (between heads) and inclusion proofs
/// (entries in the latest head) verify. Names the first bad entry or head.
pub fn verify(dir: &Path, key: &VerifyingKey) -> Result<Verified, AuditError> {
    // The signing key must still be the one heads are checked with.
    let secret = dir.join(SIGNING_KEY_FILE);
    if secret.exists() && load_or_create_key(dir)?.verifying_key() != *key {
        return Err(AuditError::BadKey { path: secret, what: "its public half is not signing.pub" });
    }
    let snap = read(dir)?;
    let n = snap.tree.size() as u64;
    let mut previous: Option<(usize, u64)> = None;
    for (i, head) in snap.heads.iter().enumerate() {
        let bad = |why: String| AuditError::BadHead { index: i, line: i + 1, tree_size: head.tree_size, why };
        if !head.signed_by(key) {
            return Err(bad("its signature does not verify with signing.pub".into()));
        }
        if let Some((_, prev)) = previous
            && head.tree_size < prev
        {
            return Err(bad(format!("it is smaller than the head before it ({prev})")));
        }
        if head.tree_size > n {
            return Err(bad(format!("it covers {} entries but the log holds {n}: entries were removed", head.tree_size)));
        }
        let root = snap.tree.root(head.tree_size as usize).expect("size checked");
        if Some(root) != head.root_hash() {
            // The entries from the last good head up to this one hold the change.
            let from = previous.map_or(0, |(_, s)| s);
            let first_bad =
                if from + 1 == head.tree_size { format!("entry {from}") } else { format!("one of entries {from}..{}", head.tree_size - 1) };
            return Err(AuditError::BadEntry {
                seq: from,
                line: from + 1,
                why: format!(
                    "the entries no longer hash to the root signed in head {i} (size {}): {first_bad} was changed",
                    head.tree_size
                ),
            });
        }
        previous = Some((i, head.tree_size));
    }
    let latest = snap.heads.last().cloned();
    let covered = latest.as_ref().map_or(0, |h| h.tree_size);
    if covered < n {
        return Err(AuditError::BadEntry {
            seq: covered,
            line: covered + 1,
            why: format!("no signed tree head covers it (the latest covers {covered} of {n} entries): it was added afterwards"),
        });
    }
    let (mut consistency_proofs, mut inclusion_proofs) = (0, 0);
    if let Some(last) = latest.as_ref().filter(|_| n > 0) {
        let last_root = last.root_hash().expect("checked above");
        let step = snap.heads.len().div_ceil(PROOFS_SAMPLED_MAX).max(1);
        for (i, head) in snap.heads.iter().enumerate().step_by(step) {
            let proof = snap.tree.consistency_proof(head.tree_size as usize, last.tree_size as usize).expect("sizes checked");
            let old_root = head.root_hash().expect("checked above");
            if !merkle::verify_consistency(head.tree_size, last.tree_size, &old_root, &last_root, &proof) {
                return Err(AuditError::BadHead {
                    index: i,
                    line: i + 1,
                    tree_size: head.tree_size,
                    why: "its consistency proof to the latest head does not verify".into(),
                });
            }
            consistency_proofs += 1;
        }
        let step = (n as usize).div_ceil(PROOFS_SAMPLED_MAX).max(1);
        let last = n as usize - 1;
        let sampled = (0..n as usize).step_by(step);
        let with_last = sampled.clone().chain((!sampled.clone().any(|i| i == last)).then_some(last));
        for seq in with_last {
            let proof = snap.tree.inclusion_proof(seq, n as usize).expect("index checked");
            let leaf = snap.tree.leaf(seq).expect("index checked");
            if !merkle::verify_inclusion(&leaf, seq as u64, n, &proof, &last_root) {
                return Err(AuditError::BadEntry {
                    seq: seq as u64,
                    line: seq as u64 + 1,
                    why: "its inclusion proof does not verify".into(),
                });
            }
            inclusion_proofs += 1;
        }
    }
    Ok(Verified { entries: n, heads: snap.heads.len(), latest, consistency_proofs, inclusion_proofs })
}
