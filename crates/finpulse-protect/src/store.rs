//! The key store: one data key per user, kept wrapped in the key journal and unwrapped in memory,
//! and everything done with them — field encryption, blind indexes, crypto-shredding, master
//! key rotation.

use crate::algorithm::{Algorithm, KEY_BYTES};
use crate::blind::{self, BLIND_INDEX_BYTES, BlindIndexer};
use crate::envelope::{self, AAD_USER_BYTES_MAX, FIELD_PLAINTEXT_BYTES_MAX};
use crate::journal::{self, JOURNAL_FILE, MAGIC, Record, WRAPPED_KEY_BYTES_MAX};
use crate::master::{KeyProvider, MasterKeyError};
use parking_lot::{Mutex, RwLock};
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::hash::BuildHasher;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The longest user id, bytes: the event log's own limit, so every user it holds can have a key.
pub const USER_ID_BYTES_MAX: usize = finpulse_core::record::ID_BYTES_MAX;
/// The most users one `ensure_keys` call takes: the write path's largest group commit
/// (`finpulse-write`'s `GROUP_COMMIT_EVENTS_MAX`), so one commit's users fit one call.
pub const ENSURE_USERS_MAX: usize = 200_000;
/// The most users one `erase_all` call takes. Each call rewrites the journal once, so batching
/// a day's erasure requests costs one rewrite, not one per user.
pub const ERASE_USERS_MAX: usize = 100_000;
/// The file whose OS lock one process holds while it has the store open.
pub const LOCK_FILE: &str = "LOCK";
/// Shards of the in-memory key map: readers of different users rarely meet on one lock.
const KEY_SHARDS: usize = 64;
/// The version of every data key this store makes. Envelopes and journal records carry it so a
/// per-user re-key can be added without a new format; until then there is one key per user.
const DATA_KEY_VERSION: u32 = 1;
/// What a data key's wrap authenticates before its version and user id.
const DATA_KEY_CONTEXT: &[u8] = b"data key\0";
/// What the blind-index key's wrap authenticates.
const BLIND_KEY_CONTEXT: &[u8] = b"blind-index key\0";

const _: () = assert!(USER_ID_BYTES_MAX <= AAD_USER_BYTES_MAX);

/// Why a key-store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ProtectError {
    /// A file could not be read or written.
    #[error("key store {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Another process has the store open.
    #[error("key store {path} is open in another process (it holds the lock on {LOCK_FILE})")]
    Locked {
        /// The folder.
        path: PathBuf,
    },
    /// The journal is damaged somewhere other than a torn tail.
    #[error("key journal {path}, byte {offset}: {why}")]
    Corrupt {
        /// The journal.
        path: PathBuf,
        /// Where the damaged record starts.
        offset: u64,
        /// What is wrong.
        why: String,
    },
    /// A key in the journal does not unwrap: the master key is wrong or the record was changed.
    #[error("key journal {path}, byte {offset}, {what}: {source}")]
    Unwrap {
        /// The journal.
        path: PathBuf,
        /// Where its record starts.
        offset: u64,
        /// Which key, e.g. `the data key of user 'u1'`.
        what: String,
        /// Why.
        source: MasterKeyError,
    },
    /// The key provider failed.
    #[error(transparent)]
    Master(#[from] MasterKeyError),
    /// A user id is empty or too long.
    #[error("user id {0}")]
    BadUserId(String),
    /// An input is over its limit.
    #[error("{what} is {len}, more than the {max} allowed")]
    TooLarge {
        /// What.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The user has no data key yet.
    #[error("user '{user}' has no data key: call ensure_keys for them before encrypting")]
    NoKey {
        /// The user.
        user: String,
    },
    /// The user was erased: their data key is destroyed and nothing of theirs can be read again.
    #[error("user '{user}' was erased; their data key is destroyed")]
    Erased {
        /// The user.
        user: String,
    },
    /// Erasing a user who never had a key.
    #[error("user '{user}' has no data key to erase")]
    UnknownUser {
        /// The user.
        user: String,
    },
    /// Not an envelope this crate made.
    #[error("not a protected value: {0}")]
    NotEnvelope(String),
    /// The envelope does not authenticate for this user and field.
    #[error(
        "the protected value does not authenticate for user '{user}', field {field}: it was changed, or it belongs to another user or field"
    )]
    Decrypt {
        /// The user.
        user: String,
        /// The field.
        field: u16,
    },
    /// The envelope names a data-key version the store does not hold for the user.
    #[error("the protected value names data key version {version} of user '{user}'; the store holds version {held}")]
    KeyVersion {
        /// The user.
        user: String,
        /// The version in the envelope.
        version: u32,
        /// The version held.
        held: u32,
    },
    /// The decrypted value is not text.
    #[error("the decrypted value is not UTF-8 text")]
    NotText,
    /// The store was opened by a reader, which makes no keys and erases nobody.
    #[error("key store {path} is open read-only here: the data directory's owner makes keys and erases users")]
    ReadOnly {
        /// The folder.
        path: PathBuf,
    },
    /// A write to the journal failed earlier; its state on disk is unknown until it is read again.
    #[error("key journal {path} takes no more writes after a failure ({why}); reopen the store")]
    Failed {
        /// The journal.
        path: PathBuf,
        /// The first failure.
        why: String,
    },
}

/// Whether a user has a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// No key yet.
    Absent,
    /// A usable key.
    Live,
    /// Erased: the key is destroyed.
    Erased,
}

/// What [`KeyStore::erase`] did for one user; for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureReceipt {
    /// The user.
    pub user: String,
    /// When the key was destroyed, µs since the epoch (the first erasure's time when repeated).
    pub erased_at_us: i64,
    /// Whether the user had been erased before this call (nothing was done).
    pub already_erased: bool,
}

/// A user's key as held in memory.
enum Slot {
    Live { version: u32, key: Zeroizing<[u8; KEY_BYTES]> },
    Erased { at_us: i64 },
}

type Shard = RwLock<HashMap<Box<str>, Slot>>;

/// The journal's writing side. Held across every change, so changes are serial.
struct Writer {
    /// The journal, open for appending.
    file: File,
    /// The master key version new wraps use.
    master_version: u32,
    /// Why writes stopped, after a failed write or fsync.
    failed: Option<String>,
    /// Opened by a reader ([`KeyStore::open_reader`]): it never writes.
    read_only: bool,
}

/// Per-user data keys and everything done with them. `&self` throughout; `Send + Sync`.
///
/// Opening takes an OS lock on the folder for the store's lifetime: one process owns the keys,
/// so no other can erase a user while this one still holds their key in memory.
pub struct KeyStore {
    dir: PathBuf,
    journal: PathBuf,
    provider: Arc<dyn KeyProvider>,
    algorithm: Algorithm,
    shards: Box<[Shard]>,
    shard_of: RandomState,
    blind_key: Zeroizing<[u8; KEY_BYTES]>,
    blind: BlindIndexer,
    writer: Mutex<Writer>,
    /// Users erased, counted so readers can skip erasure checks while there are none.
    erased: std::sync::atomic::AtomicUsize,
    /// The folder's lock; a reader holds none.
    _lock: Option<File>,
}

/// What a scan of the journal loads.
#[derive(Default)]
struct Loaded {
    users: HashMap<Box<str>, Slot>,
    blind_key: Option<Zeroizing<[u8; KEY_BYTES]>>,
}

impl KeyStore {
    /// Opens the store in `dir` (creating it, owner-only, with a new blind-index key on first
    /// use), unwrapping every key with `provider`: a wrong master key fails here, naming the
    /// first key that does not unwrap. New fields are sealed with `algorithm`; fields sealed
    /// with the other one still open.
    pub fn open(dir: impl Into<PathBuf>, provider: Arc<dyn KeyProvider>, algorithm: Algorithm) -> Result<Self, ProtectError> {
        let dir = dir.into();
        create_private_dir(&dir)?;
        let lock = lock_dir(&dir)?;
        let path = dir.join(JOURNAL_FILE);
        remove_stale_copy(&path)?;
        if !path.exists() {
            create_journal(&path, &*provider, algorithm)?;
        }
        Self::load(dir, path, provider, algorithm, Some(lock))
    }

    /// Opens an existing store to read it while its owner (another process) may be writing:
    /// no lock, nothing created or cut. It opens fields and gives blind indexes as of the moment
    /// it was opened; it makes no keys and erases nobody ([`ProtectError::ReadOnly`]).
    pub fn open_reader(dir: impl Into<PathBuf>, provider: Arc<dyn KeyProvider>, algorithm: Algorithm) -> Result<Self, ProtectError> {
        let dir = dir.into();
        let path = dir.join(JOURNAL_FILE);
        Self::load(dir, path, provider, algorithm, None)
    }

    fn load(
        dir: PathBuf,
        path: PathBuf,
        provider: Arc<dyn KeyProvider>,
        algorithm: Algorithm,
        lock: Option<File>,
    ) -> Result<Self, ProtectError> {
        let read_only = lock.is_none();
        let mut loaded = Loaded::default();
        let scanned = journal::scan(&path, |offset, record| loaded.apply(offset, record, &*provider, &path))?;
        if !read_only && scanned.valid_bytes < scanned.file_bytes {
            cut_torn_tail(&path, scanned.valid_bytes, scanned.file_bytes)?;
        }
        let blind_key = loaded.blind_key.ok_or_else(|| ProtectError::Corrupt {
            path: path.clone(),
            offset: MAGIC.len() as u64,
            why: "the journal holds no blind-index key".into(),
        })?;
        let file = if read_only { File::open(&path) } else { OpenOptions::new().append(true).open(&path) }.map_err(io(&path))?;
        let master_version = provider.current_version();
        let erased = loaded.users.values().filter(|s| matches!(s, Slot::Erased { .. })).count();
        let shard_of = RandomState::new();
        let mut shards: Vec<HashMap<Box<str>, Slot>> = (0..KEY_SHARDS).map(|_| HashMap::new()).collect();
        for (user, slot) in loaded.users {
            shards[shard_of.hash_one(&*user) as usize % KEY_SHARDS].insert(user, slot);
        }
        Ok(Self {
            dir,
            journal: path,
            provider,
            algorithm,
            shards: shards.into_iter().map(RwLock::new).collect(),
            shard_of,
            blind: BlindIndexer::new(&*blind_key),
            blind_key,
            writer: Mutex::new(Writer { file, master_version, failed: None, read_only }),
            erased: erased.into(),
            _lock: lock,
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The algorithm new fields are sealed with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The master key version new data keys are wrapped under.
    pub fn master_version(&self) -> u32 {
        self.writer.lock().master_version
    }

    fn shard(&self, user: &str) -> &Shard {
        &self.shards[self.shard_of.hash_one(user) as usize % KEY_SHARDS]
    }

    /// How many users are erased.
    pub fn erased_count(&self) -> usize {
        self.erased.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether `user` has a key.
    pub fn key_state(&self, user: &str) -> KeyState {
        match self.shard(user).read().get(user) {
            None => KeyState::Absent,
            Some(Slot::Live { .. }) => KeyState::Live,
            Some(Slot::Erased { .. }) => KeyState::Erased,
        }
    }

    /// Makes a data key for each of `users` that has none, durably (one write and one fsync for
    /// the batch) before returning: call it before the events that will carry their encrypted
    /// fields are written, so no ciphertext can outlive a key lost in a crash. Returns how many
    /// keys were made. An erased user among them is [`ProtectError::Erased`] and no key is made
    /// for anyone: whether to drop that user's events is the caller's decision.
    pub fn ensure_keys<S: AsRef<str>>(&self, users: &[S]) -> Result<usize, ProtectError> {
        if users.len() > ENSURE_USERS_MAX {
            return Err(ProtectError::TooLarge { what: "the number of users", len: users.len(), max: ENSURE_USERS_MAX });
        }
        for user in users {
            check_user(user.as_ref())?;
        }
        if self.missing(users)?.is_empty() {
            return Ok(0);
        }
        let mut writer = self.writer.lock();
        writer.usable(&self.journal)?;
        // Again under the writer: another thread may have made some of them meanwhile.
        let missing = self.missing(users)?;
        let mut frames = Vec::with_capacity(missing.len() * 128);
        let mut made = Vec::with_capacity(missing.len());
        for user in missing {
            let key = random_key();
            let wrapped = self.wrap(writer.master_version, &data_key_context(user, DATA_KEY_VERSION), &key)?;
            Record::DataKey { user: user.to_string(), key_version: DATA_KEY_VERSION, master_version: writer.master_version, wrapped }
                .frame_into(&mut frames);
            made.push((user, key));
        }
        writer.append(&self.journal, &frames)?;
        let count = made.len();
        for (user, key) in made {
            self.shard(user).write().insert(user.into(), Slot::Live { version: DATA_KEY_VERSION, key });
        }
        Ok(count)
    }

    /// The users among `users` without a key, each once; an error at the first erased one.
    fn missing<'a, S: AsRef<str>>(&self, users: &'a [S]) -> Result<Vec<&'a str>, ProtectError> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for user in users.iter().map(AsRef::as_ref) {
            match self.key_state(user) {
                KeyState::Live => {}
                KeyState::Erased => return Err(ProtectError::Erased { user: user.to_string() }),
                KeyState::Absent => {
                    if seen.insert(user) {
                        out.push(user);
                    }
                }
            }
        }
        Ok(out)
    }

    fn wrap(&self, master_version: u32, context: &[u8], key: &[u8; KEY_BYTES]) -> Result<Vec<u8>, ProtectError> {
        let wrapped = self.provider.wrap(master_version, self.algorithm, context, key)?;
        if wrapped.len() > WRAPPED_KEY_BYTES_MAX {
            let why = format!("the provider wrapped a key into {} bytes, more than {WRAPPED_KEY_BYTES_MAX}", wrapped.len());
            return Err(MasterKeyError::Backend(why.into()).into());
        }
        Ok(wrapped)
    }

    /// Seals `plaintext` as `user`'s field `field` (the envelope in the `envelope` module docs).
    /// The user must have a key ([`KeyStore::ensure_keys`]).
    pub fn encrypt(&self, user: &str, field: u16, plaintext: &[u8]) -> Result<Vec<u8>, ProtectError> {
        if plaintext.len() > FIELD_PLAINTEXT_BYTES_MAX {
            return Err(ProtectError::TooLarge { what: "the field's plaintext", len: plaintext.len(), max: FIELD_PLAINTEXT_BYTES_MAX });
        }
        // The key is used under the shard's read lock, never copied out: an erase (which takes
        // the write lock) waits for encryptions in progress and every later one sees it.
        let shard = self.shard(user).read();
        let (version, key) = live_key(&shard, user)?;
        Ok(envelope::seal(self.algorithm, version, key, user, field, plaintext))
    }

    /// Opens an envelope made by [`KeyStore::encrypt`] for the same user and field;
    /// [`ProtectError::Erased`] once the user is erased.
    pub fn decrypt(&self, user: &str, field: u16, sealed: &[u8]) -> Result<Vec<u8>, ProtectError> {
        let parsed = envelope::parse(sealed).map_err(ProtectError::NotEnvelope)?;
        let shard = self.shard(user).read();
        let (version, key) = live_key(&shard, user)?;
        if parsed.key_version != version {
            return Err(ProtectError::KeyVersion { user: user.to_string(), version: parsed.key_version, held: version });
        }
        envelope::open(&parsed, key, user, field).map_err(|_| ProtectError::Decrypt { user: user.to_string(), field })
    }

    /// [`KeyStore::encrypt`] for text columns: `enc1:` and the envelope in base64url.
    pub fn encrypt_text(&self, user: &str, field: u16, plaintext: &str) -> Result<String, ProtectError> {
        Ok(envelope::to_text(&self.encrypt(user, field, plaintext.as_bytes())?))
    }

    /// Opens what [`KeyStore::encrypt_text`] made.
    pub fn decrypt_text(&self, user: &str, field: u16, text: &str) -> Result<String, ProtectError> {
        let sealed = envelope::from_text(text).map_err(ProtectError::NotEnvelope)?;
        String::from_utf8(self.decrypt(user, field, &sealed)?).map_err(|_| ProtectError::NotText)
    }

    /// The blind index of a normalised value in `field` (see the `blind` module): the same for
    /// every user and across restarts and master key rotations.
    pub fn blind_index(&self, field: u16, normalised: &[u8]) -> [u8; BLIND_INDEX_BYTES] {
        self.blind.index(field, normalised)
    }

    /// [`KeyStore::blind_index`] as text: `bi1:` and base64url (26 characters).
    pub fn blind_index_text(&self, field: u16, normalised: &[u8]) -> String {
        blind::to_text(&self.blind_index(field, normalised))
    }

    /// Crypto-shreds `user`: destroys their data key, so every field ever sealed for them is
    /// unreadable at once, wherever it is stored. See [`KeyStore::erase_all`].
    pub fn erase(&self, user: &str) -> Result<ErasureReceipt, ProtectError> {
        let mut receipts = self.erase_all(&[user])?;
        Ok(receipts.pop().expect("one receipt per user"))
    }

    /// Crypto-shreds each of `users` (one journal rewrite for the lot), returning a receipt
    /// each. The journal is rewritten without their wrapped keys, durably, before their keys
    /// leave memory; a tombstone stays so [`KeyStore::ensure_keys`] refuses them rather than
    /// make a fresh key. Erasing an erased user again does nothing and says so; a user who never
    /// had a key is [`ProtectError::UnknownUser`], and then nobody is erased.
    ///
    /// Only this file is rewritten: copies of the old journal in backups, file-system snapshots
    /// or freed disk blocks still hold the wrapped key. They are unreadable once the master key
    /// version that wrapped it is destroyed: rotate the master key ([`KeyStore::rotate_master`])
    /// and delete the old version within the backup retention period.
    pub fn erase_all<S: AsRef<str>>(&self, users: &[S]) -> Result<Vec<ErasureReceipt>, ProtectError> {
        if users.len() > ERASE_USERS_MAX {
            return Err(ProtectError::TooLarge { what: "the number of users", len: users.len(), max: ERASE_USERS_MAX });
        }
        let mut writer = self.writer.lock();
        writer.usable(&self.journal)?;
        let at_us = finpulse_core::time::now_us();
        let mut receipts = Vec::with_capacity(users.len());
        let mut erasing = HashSet::new();
        for user in users.iter().map(AsRef::as_ref) {
            check_user(user)?;
            let (erased_at_us, already_erased) = match self.shard(user).read().get(user) {
                None => return Err(ProtectError::UnknownUser { user: user.to_string() }),
                Some(Slot::Erased { at_us }) => (*at_us, true),
                Some(Slot::Live { .. }) => (at_us, !erasing.insert(user)),
            };
            receipts.push(ErasureReceipt { user: user.to_string(), erased_at_us, already_erased });
        }
        if erasing.is_empty() {
            return Ok(receipts);
        }
        let master_version = writer.master_version;
        self.rewrite(&mut writer, master_version, &erasing, at_us)?;
        for user in erasing {
            // Replacing the slot drops the key, which zeroes it.
            self.shard(user).write().insert(user.into(), Slot::Erased { at_us });
            self.erased.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(receipts)
    }

    /// Re-wraps every data key and the blind-index key under master key `new_version`, in one
    /// durable rewrite of the journal, and wraps new keys under it from now on. No envelope
    /// changes: data keys stay as they are. Afterwards only `new_version` is needed to open the
    /// store, and older versions can be destroyed. Returns how many data keys were re-wrapped.
    pub fn rotate_master(&self, new_version: u32) -> Result<usize, ProtectError> {
        let mut writer = self.writer.lock();
        writer.usable(&self.journal)?;
        let rewrapped = self.rewrite(&mut writer, new_version, &HashSet::new(), 0)?;
        writer.master_version = new_version;
        Ok(rewrapped)
    }

    /// Writes the whole journal anew from memory, every key wrapped under `master_version`,
    /// the users in `erasing` as tombstones at `at_us`; then appends go to the new file.
    /// Returns how many data keys it holds.
    fn rewrite(&self, writer: &mut Writer, master_version: u32, erasing: &HashSet<&str>, at_us: i64) -> Result<usize, ProtectError> {
        let mut bytes = MAGIC.to_vec();
        let wrapped = self.wrap(master_version, BLIND_KEY_CONTEXT, &self.blind_key)?;
        Record::BlindKey { master_version, wrapped }.frame_into(&mut bytes);
        let mut data_keys = 0;
        for shard in self.shards.iter() {
            for (user, slot) in shard.read().iter() {
                let record = match slot {
                    _ if erasing.contains(&**user) => Record::Erased { user: user.to_string(), at_us },
                    Slot::Erased { at_us } => Record::Erased { user: user.to_string(), at_us: *at_us },
                    Slot::Live { version, key } => {
                        data_keys += 1;
                        let wrapped = self.wrap(master_version, &data_key_context(user, *version), key)?;
                        Record::DataKey { user: user.to_string(), key_version: *version, master_version, wrapped }
                    }
                };
                record.frame_into(&mut bytes);
            }
        }
        // A failure here leaves the old journal or the new one in place, and which is not known
        // for certain (the folder's fsync may be what failed): writes stop until a reopen reads
        // the file again.
        let result = crate::master::write_owner_only(&self.journal, &bytes)
            .and_then(|()| OpenOptions::new().append(true).open(&self.journal))
            .map_err(io(&self.journal));
        match result {
            Ok(file) => writer.file = file,
            Err(e) => {
                writer.failed = Some(e.to_string());
                return Err(e);
            }
        }
        Ok(data_keys)
    }
}

impl Writer {
    fn usable(&self, path: &Path) -> Result<(), ProtectError> {
        if self.read_only {
            return Err(ProtectError::ReadOnly { path: path.to_path_buf() });
        }
        match &self.failed {
            None => Ok(()),
            Some(why) => Err(ProtectError::Failed { path: path.to_path_buf(), why: why.clone() }),
        }
    }

    /// Appends framed records and fsyncs them. After a failure the tail on disk is unknown
    /// (a torn record at worst, cut at the next open): no more writes until then.
    fn append(&mut self, path: &Path, frames: &[u8]) -> Result<(), ProtectError> {
        let result = self.file.write_all(frames).and_then(|()| self.file.sync_data());
        result.map_err(|source| {
            self.failed = Some(source.to_string());
            ProtectError::Io { path: path.to_path_buf(), source }
        })
    }
}

impl Loaded {
    /// Takes in one journal record, unwrapping its key.
    fn apply(&mut self, offset: u64, record: Record, provider: &dyn KeyProvider, path: &Path) -> Result<(), ProtectError> {
        let corrupt = |why: String| ProtectError::Corrupt { path: path.to_path_buf(), offset, why };
        let unwrap = |what: String, source| ProtectError::Unwrap { path: path.to_path_buf(), offset, what, source };
        match record {
            Record::DataKey { user, key_version, master_version, wrapped } => {
                let context = data_key_context(&user, key_version);
                let key =
                    provider.unwrap(master_version, &context, &wrapped).map_err(|e| unwrap(format!("the data key of user '{user}'"), e))?;
                self.insert(user, Slot::Live { version: key_version, key }).map_err(corrupt)
            }
            Record::Erased { user, at_us } => self.insert(user, Slot::Erased { at_us }).map_err(corrupt),
            Record::BlindKey { master_version, wrapped } => {
                if self.blind_key.is_some() {
                    return Err(corrupt("a second blind-index key".into()));
                }
                let key =
                    provider.unwrap(master_version, BLIND_KEY_CONTEXT, &wrapped).map_err(|e| unwrap("the blind-index key".into(), e))?;
                self.blind_key = Some(key);
                Ok(())
            }
        }
    }

    /// Every user has one record: the store appends only for users without one and rewrites
    /// the whole file for everything else.
    fn insert(&mut self, user: String, slot: Slot) -> Result<(), String> {
        match self.users.entry(user.into_boxed_str()) {
            std::collections::hash_map::Entry::Occupied(e) => Err(format!("a second record for user '{}'", e.key())),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(slot);
                Ok(())
            }
        }
    }
}

/// The key of a user with a live one, or why there is none.
fn live_key<'a>(shard: &'a HashMap<Box<str>, Slot>, user: &str) -> Result<(u32, &'a [u8; KEY_BYTES]), ProtectError> {
    match shard.get(user) {
        Some(Slot::Live { version, key }) => Ok((*version, key)),
        Some(Slot::Erased { .. }) => Err(ProtectError::Erased { user: user.to_string() }),
        None => Err(ProtectError::NoKey { user: user.to_string() }),
    }
}

/// Checks a user id: 1 to [`USER_ID_BYTES_MAX`] bytes.
pub(crate) fn check_user(user: &str) -> Result<(), ProtectError> {
    if user.is_empty() {
        return Err(ProtectError::BadUserId("is empty".into()));
    }
    if user.len() > USER_ID_BYTES_MAX {
        return Err(ProtectError::BadUserId(format!("is {} bytes, more than {USER_ID_BYTES_MAX}", user.len())));
    }
    Ok(())
}

/// What a data key's wrap authenticates: its use, version and user, so a wrapped key copied
/// into another user's record does not unwrap.
fn data_key_context(user: &str, version: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(DATA_KEY_CONTEXT.len() + 4 + user.len());
    out.extend_from_slice(DATA_KEY_CONTEXT);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(user.as_bytes());
    out
}

fn random_key() -> Zeroizing<[u8; KEY_BYTES]> {
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    // The thread-local CSPRNG, seeded from the OS (as finpulse-access draws its secrets).
    rand::fill(&mut *key);
    key
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProtectError + '_ {
    move |source| ProtectError::Io { path: path.to_path_buf(), source }
}

fn create_private_dir(dir: &Path) -> Result<(), ProtectError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io(dir))
}

/// Takes the folder's OS lock for as long as the returned file is open.
fn lock_dir(dir: &Path) -> Result<File, ProtectError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(ProtectError::Locked { path: dir.to_path_buf() }),
        Err(std::fs::TryLockError::Error(source)) => Err(ProtectError::Io { path, source }),
    }
}

/// A new journal holding a new blind-index key, written whole and durably.
fn create_journal(path: &Path, provider: &dyn KeyProvider, algorithm: Algorithm) -> Result<(), ProtectError> {
    let version = provider.current_version();
    let wrapped = provider.wrap(version, algorithm, BLIND_KEY_CONTEXT, &random_key())?;
    if wrapped.len() > WRAPPED_KEY_BYTES_MAX {
        let why = format!("the provider wrapped a key into {} bytes, more than {WRAPPED_KEY_BYTES_MAX}", wrapped.len());
        return Err(MasterKeyError::Backend(why.into()).into());
    }
    let mut bytes = MAGIC.to_vec();
    Record::BlindKey { master_version: version, wrapped }.frame_into(&mut bytes);
    crate::master::write_owner_only(path, &bytes).map_err(io(path))
}

/// Removes the temporary copy a rewrite interrupted by a crash left beside the journal (the
/// journal itself is whole: the copy replaces it only by a rename).
fn remove_stale_copy(journal: &Path) -> Result<(), ProtectError> {
    let mut name = journal.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let copy = journal.with_file_name(name);
    match std::fs::remove_file(&copy) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ProtectError::Io { path: copy, source: e }),
        _ => Ok(()),
    }
}

/// Cuts a torn tail (see the `journal` module) so appends follow the last whole record.
fn cut_torn_tail(path: &Path, valid_bytes: u64, file_bytes: u64) -> Result<(), ProtectError> {
    let file = OpenOptions::new().write(true).open(path).map_err(io(path))?;
    file.set_len(valid_bytes).and_then(|()| file.sync_all()).map_err(io(path))?;
    tracing::warn!(path = %path.display(), cut_bytes = file_bytes - valid_bytes, "cut a torn tail off the key journal (a write a crash interrupted)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::MasterKeys;

    fn records(path: &Path) -> Vec<Record> {
        let mut out = Vec::new();
        journal::scan(path, |_, r| {
            out.push(r);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn erasure_leaves_no_wrapped_key_of_the_user_in_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path(), Arc::new(MasterKeys::new([(1, [1; 32])]).unwrap()), Algorithm::Aes256Gcm).unwrap();
        store.ensure_keys(&["u1", "u2"]).unwrap();
        let wrapped = records(&store.journal)
            .into_iter()
            .find_map(|r| match r {
                Record::DataKey { user, wrapped, .. } if user == "u1" => Some(wrapped),
                _ => None,
            })
            .unwrap();
        store.erase("u1").unwrap();
        let bytes = std::fs::read(&store.journal).unwrap();
        assert!(!bytes.windows(wrapped.len()).any(|w| w == wrapped), "the erased user's wrapped key is still in the journal");
        let after = records(&store.journal);
        assert!(after.iter().any(|r| matches!(r, Record::Erased { user, .. } if user == "u1")));
        assert!(after.iter().any(|r| matches!(r, Record::DataKey { user, .. } if user == "u2")));
        assert!(!after.iter().any(|r| matches!(r, Record::DataKey { user, .. } if user == "u1")));
        let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, [LOCK_FILE, JOURNAL_FILE], "no temporary copy is left behind");
    }

    #[test]
    fn a_failed_write_stops_further_writes_until_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path(), Arc::new(MasterKeys::new([(1, [1; 32])]).unwrap()), Algorithm::Aes256Gcm).unwrap();
        // A journal handle that refuses writes stands in for a disk that failed.
        store.writer.lock().file = File::open(&store.journal).unwrap();
        assert!(matches!(store.ensure_keys(&["u1"]), Err(ProtectError::Io { .. })));
        let err = store.ensure_keys(&["u1"]).unwrap_err();
        assert!(matches!(err, ProtectError::Failed { .. }), "{err}");
        assert!(err.to_string().contains("reopen the store"), "{err}");
        assert_eq!(store.key_state("u1"), KeyState::Absent);
    }
}
