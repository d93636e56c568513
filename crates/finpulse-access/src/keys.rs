//! API keys: prefixed so they are recognisable in a leak scan (`fpk_<id>_<secret>`), shown once,
//! stored only as a keyed hash (HMAC-SHA256 under a secret kept beside them: fast, because a
//! key has 160 bits of entropy and needs no password hashing), scoped to a role and a tenant,
//! expiring, rotatable with an overlap, revocable at once.

use crate::Principal;
use crate::list_file::ListFile;
use crate::role::Role;
use hmac::{Hmac, Mac};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use subtle::ConstantTimeEq;

/// What every key starts with.
pub const KEY_PREFIX: &str = "fpk_";
/// Hex characters of a key's public id.
pub const KEY_ID_HEX_LEN: usize = 12;
/// Bytes of a key's secret part (shown as hex).
pub const KEY_SECRET_BYTES: usize = 20;
/// How long a rotated key keeps working beside its successor unless told otherwise.
pub const ROTATION_OVERLAP_SECS_DEFAULT: i64 = 24 * 3600;
/// The keys file.
pub const KEYS_FILE: &str = "keys.json";
/// The secret key hashes are keyed with.
pub const KEY_HASH_SECRET_FILE: &str = "key-hash.secret";
/// The tenant a key or user belongs to when none is named.
pub const TENANT_DEFAULT: &str = "default";

/// Limits on one key's use; `None` is no limit beyond the server's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyLimits {
    /// Requests per second, sustained (a token bucket holding one second's worth).
    pub requests_per_sec: Option<u32>,
    /// Queries (SQL, insights) this key may run at once.
    pub queries_concurrent_max: Option<u32>,
    /// The longest one of its queries may run, seconds.
    pub query_secs_max: Option<u32>,
    /// Requests per UTC day.
    pub daily_requests_max: Option<u64>,
}

/// A stored key: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Its public id (the part after `fpk_`).
    pub id: String,
    /// What it is for.
    #[serde(default)]
    pub label: String,
    /// Its role.
    pub role: Role,
    /// Its tenant.
    pub tenant: String,
    /// HMAC-SHA256 of the whole key (hex).
    pub hash: String,
    /// When it was made, µs since the epoch.
    pub created_at_us: i64,
    /// Who made it.
    pub created_by: String,
    /// When it stops working, µs since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_us: Option<i64>,
    /// When it was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at_us: Option<i64>,
    /// The key this one replaced by rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_from: Option<String>,
    /// Its limits.
    #[serde(default)]
    pub limits: KeyLimits,
}

impl KeyRecord {
    /// How it is shown in lists: the prefix and id, never the secret.
    pub fn shown(&self) -> String {
        format!("{KEY_PREFIX}{}_…", self.id)
    }

    /// Whether it works at `now_us`.
    pub fn state_at(&self, now_us: i64) -> KeyState {
        if self.revoked_at_us.is_some() {
            KeyState::Revoked
        } else if self.expires_at_us.is_some_and(|e| e <= now_us) {
            KeyState::Expired
        } else {
            KeyState::Active
        }
    }
}

/// Whether a key works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// It works.
    Active,
    /// Past its expiry.
    Expired,
    /// Revoked.
    Revoked,
}

/// A new key's settings.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    /// What it is for.
    pub label: String,
    /// Its role.
    pub role: Option<Role>,
    /// Its tenant (`default` when empty).
    pub tenant: String,
    /// When it stops working.
    pub expires_at_us: Option<i64>,
    /// Its limits.
    pub limits: KeyLimits,
}

/// Why a presented key was refused. The messages say what is wrong with the key, never whether
/// another key exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    /// Not shaped like a finpulse key.
    #[error("the bearer token is not a finpulse key (fpk_<id>_<secret>)")]
    Malformed,
    /// No such key, or the secret does not match.
    #[error("the key is not valid")]
    Unknown,
    /// Revoked.
    #[error("the key {0} was revoked")]
    Revoked(String),
    /// Expired.
    #[error("the key {0} has expired")]
    Expired(String),
}

/// Why a key change failed.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The keys file is damaged.
    #[error("{path}: {why}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// No key with this id.
    #[error("no key with id '{0}' (finpulse keys list shows them)")]
    NoSuchKey(String),
    /// No role given.
    #[error("a key needs a role")]
    NoRole,
    /// A bad tenant name.
    #[error("tenant '{0}' must be 1 to 63 lower-case letters, digits, '_' or '-'")]
    BadTenant(String),
    /// Revoked already.
    #[error("key {0} is revoked and cannot be rotated")]
    Revoked(String),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeysError + '_ {
    move |source| KeysError::Io { path: path.to_path_buf(), source }
}

/// Whether `name` is a valid tenant name.
pub fn valid_tenant(name: &str) -> bool {
    (1..=63).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The keys of one access directory.
pub struct Keys {
    file: ListFile,
    secret: [u8; 32],
    cache: RwLock<Cache>,
}

#[derive(Default)]
struct Cache {
    /// The keys file's modification time and length when read.
    stamp: Option<(SystemTime, u64)>,
    by_id: HashMap<String, Known>,
}

/// A key as a request meets it: shared, with its hash as bytes and the principal it stands
/// for worked out once, so checking a key allocates nothing.
struct Known {
    record: Arc<KeyRecord>,
    hash: Option<[u8; 32]>,
    principal: Arc<Principal>,
}

impl Cache {
    fn of(stamp: Option<(SystemTime, u64)>, records: Vec<KeyRecord>) -> Self {
        let by_id = records
            .into_iter()
            .map(|r| {
                let hash = hex::decode(&r.hash).ok().and_then(|b| b.try_into().ok());
                let principal = Arc::new(Principal::of_key(&r));
                (r.id.clone(), Known { record: Arc::new(r), hash, principal })
            })
            .collect();
        Self { stamp, by_id }
    }
}

impl Keys {
    /// Opens the keys in `dir` (creating the directory and the hash secret on first use).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, KeysError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let secret = load_or_create_secret(&dir.join(KEY_HASH_SECRET_FILE))?;
        let keys = Self { file: ListFile::new(&dir, KEYS_FILE), secret, cache: RwLock::default() };
        keys.refresh()?;
        Ok(keys)
    }

    fn hash_bytes(&self, key_text: &str) -> [u8; 32] {
        self.keyed_hash(key_text.as_bytes())
    }

    /// HMAC-SHA256 of `bytes` under the key-hash secret: a digest nobody without the secret can
    /// test guesses against (for requests whose bodies carry a password).
    pub fn keyed_hash(&self, bytes: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(bytes);
        mac.finalize().into_bytes().into()
    }

    fn hash(&self, key_text: &str) -> String {
        hex::encode(self.hash_bytes(key_text))
    }

    /// Re-reads the keys file when another process changed it.
    fn refresh(&self) -> Result<(), KeysError> {
        let path = self.file.path();
        let stamp = match std::fs::metadata(&path) {
            Ok(m) => Some((m.modified().map_err(io_err(&path))?, m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&path)(e)),
        };
        if self.cache.read().stamp == stamp && stamp.is_some() {
            return Ok(());
        }
        let records = self.file.read()?;
        *self.cache.write() = Cache::of(stamp, records);
        Ok(())
    }

    /// Reads, changes and writes the keys file under the lock.
    fn change<T>(&self, f: impl FnOnce(&mut Vec<KeyRecord>) -> Result<T, KeysError>) -> Result<T, KeysError> {
        let _lock = self.file.lock()?;
        let mut records = self.file.read()?;
        let out = f(&mut records)?;
        self.file.write(&records)?;
        // Seen at once by this process, whatever the file's time resolution.
        let stamp = std::fs::metadata(self.file.path()).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
        *self.cache.write() = Cache::of(stamp, records);
        Ok(out)
    }

    /// Makes a key; the text returned is the only time its secret exists outside the caller.
    pub fn create(&self, new: NewKey, by: &str) -> Result<(KeyRecord, String), KeysError> {
        let role = new.role.ok_or(KeysError::NoRole)?;
        let tenant = if new.tenant.is_empty() { TENANT_DEFAULT.to_string() } else { new.tenant };
        if !valid_tenant(&tenant) {
            return Err(KeysError::BadTenant(tenant));
        }
        self.change(|records| {
            let (id, text) = loop {
                let mut id = [0u8; KEY_ID_HEX_LEN / 2];
                let mut secret = [0u8; KEY_SECRET_BYTES];
                rand::fill(&mut id);
                rand::fill(&mut secret);
                let id = hex::encode(id);
                if !records.iter().any(|r| r.id == id) {
                    let text = format!("{KEY_PREFIX}{id}_{}", hex::encode(secret));
                    break (id, text);
                }
            };
            let record = KeyRecord {
                id,
                label: new.label,
                role,
                tenant,
                hash: self.hash(&text),
                created_at_us: finpulse_core::time::now_us(),
                created_by: by.to_string(),
                expires_at_us: new.expires_at_us,
                revoked_at_us: None,
                rotated_from: None,
                limits: new.limits,
            };
            records.push(record.clone());
            Ok((record, text))
        })
    }

    /// Revokes a key: it stops working at once, in every process that reads this directory.
    pub fn revoke(&self, id: &str) -> Result<KeyRecord, KeysError> {
        self.change(|records| {
            let r = records.iter_mut().find(|r| r.id == id).ok_or_else(|| KeysError::NoSuchKey(id.to_string()))?;
            if r.revoked_at_us.is_none() {
                r.revoked_at_us = Some(finpulse_core::time::now_us());
            }
            Ok(r.clone())
        })
    }

    /// Makes a successor with the same role, tenant and limits; the old key keeps working for
    /// `overlap_secs` (or until its own expiry, if sooner) so clients can switch without a gap.
    pub fn rotate(&self, id: &str, overlap_secs: i64, by: &str) -> Result<(KeyRecord, String), KeysError> {
        let old = self.list()?.into_iter().find(|r| r.id == id).ok_or_else(|| KeysError::NoSuchKey(id.to_string()))?;
        if old.revoked_at_us.is_some() {
            return Err(KeysError::Revoked(id.to_string()));
        }
        let new = NewKey {
            label: old.label.clone(),
            role: Some(old.role),
            tenant: old.tenant.clone(),
            expires_at_us: old.expires_at_us,
            limits: old.limits,
        };
        let (mut record, text) = self.create(new, by)?;
        let until = finpulse_core::time::now_us() + overlap_secs.max(0) * 1_000_000;
        self.change(|records| {
            if let Some(r) = records.iter_mut().find(|r| r.id == id) {
                r.expires_at_us = Some(r.expires_at_us.map_or(until, |e| e.min(until)));
            }
            if let Some(r) = records.iter_mut().find(|r| r.id == record.id) {
                r.rotated_from = Some(id.to_string());
                record = r.clone();
            }
            Ok(())
        })?;
        Ok((record, text))
    }

    /// Every key, newest last.
    pub fn list(&self) -> Result<Vec<KeyRecord>, KeysError> {
        self.file.read()
    }

    /// Whether any key exists.
    pub fn any(&self) -> Result<bool, KeysError> {
        self.refresh()?;
        Ok(!self.cache.read().by_id.is_empty())
    }

    /// The principal the key `text` stands for, if it is a key that works at `now_us`.
    pub fn principal(&self, text: &str, now_us: i64) -> Result<Arc<Principal>, KeyRefusal> {
        let id = parse(text).ok_or(KeyRefusal::Malformed)?;
        if let Err(e) = self.refresh() {
            // A damaged or unreadable keys file refuses every key rather than trusting old state
            // for ever; the cause is logged for the operator.
            tracing_warn(&e);
            return Err(KeyRefusal::Unknown);
        }
        let cache = self.cache.read();
        let known = cache.by_id.get(id).ok_or(KeyRefusal::Unknown)?;
        let stored = known.hash.ok_or(KeyRefusal::Unknown)?;
        if !bool::from(self.hash_bytes(text).ct_eq(&stored)) {
            return Err(KeyRefusal::Unknown);
        }
        match known.record.state_at(now_us) {
            KeyState::Active => Ok(known.principal.clone()),
            KeyState::Expired => Err(KeyRefusal::Expired(known.record.shown())),
            KeyState::Revoked => Err(KeyRefusal::Revoked(known.record.shown())),
        }
    }
}

fn tracing_warn(e: &KeysError) {
    tracing::error!(error = %e, "reading API keys failed; every key is refused until it is fixed");
}

/// The id of a well-formed key text.
fn parse(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex_of = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    (hex_of(id, KEY_ID_HEX_LEN) && hex_of(secret, KEY_SECRET_BYTES * 2)).then_some(id)
}

fn load_or_create_secret(path: &Path) -> Result<[u8; 32], KeysError> {
    match std::fs::read_to_string(path) {
        Ok(text) => hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| KeysError::Damaged { path: path.to_path_buf(), why: "not 32 bytes of hex".into() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            rand::fill(&mut secret);
            crate::secret_file::write(path, hex::encode(secret).as_bytes()).map_err(io_err(path))?;
            Ok(secret)
        }
        Err(e) => Err(io_err(path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_key(role: Role) -> NewKey {
        NewKey { role: Some(role), ..NewKey::default() }
    }

    #[test]
    fn a_key_works_until_revoked_and_is_stored_only_as_a_hash() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::open(dir.path()).unwrap();
        let (record, text) = keys.create(new_key(Role::RiskAnalyst), "test").unwrap();
        assert!(text.starts_with("fpk_"));
        let stored = std::fs::read_to_string(dir.path().join(KEYS_FILE)).unwrap();
        assert!(!stored.contains(&text[KEY_PREFIX.len() + KEY_ID_HEX_LEN + 1..]), "the secret is on disk");
        let now = finpulse_core::time::now_us();
        assert_eq!(keys.principal(&text, now).unwrap().role, Role::RiskAnalyst);
        // Another process revokes it: this one sees it at once.
        Keys::open(dir.path()).unwrap().revoke(&record.id).unwrap();
        assert!(matches!(keys.principal(&text, now), Err(KeyRefusal::Revoked(_))));
    }

    #[test]
    fn malformed_wrong_and_expired_keys_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::open(dir.path()).unwrap();
        let now = finpulse_core::time::now_us();
        let (_, text) = keys.create(NewKey { expires_at_us: Some(now + 1_000_000), ..new_key(Role::Auditor) }, "test").unwrap();
        assert_eq!(keys.principal("Bearer nonsense", now), Err(KeyRefusal::Malformed));
        let mut wrong = text.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == '0' { '1' } else { '0' });
        assert_eq!(keys.principal(&wrong, now), Err(KeyRefusal::Unknown));
        assert!(keys.principal(&text, now).is_ok());
        assert!(matches!(keys.principal(&text, now + 2_000_000), Err(KeyRefusal::Expired(_))));
    }

    #[test]
    fn a_rotated_key_overlaps_its_successor_then_stops() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::open(dir.path()).unwrap();
        let (old, old_text) = keys.create(new_key(Role::PartnerApp), "test").unwrap();
        let (new, new_text) = keys.rotate(&old.id, 60, "test").unwrap();
        assert_eq!(new.rotated_from.as_deref(), Some(old.id.as_str()));
        let now = finpulse_core::time::now_us();
        assert!(keys.principal(&old_text, now).is_ok());
        assert!(keys.principal(&new_text, now).is_ok());
        assert!(matches!(keys.principal(&old_text, now + 61_000_000), Err(KeyRefusal::Expired(_))));
        assert!(keys.principal(&new_text, now + 61_000_000).is_ok());
    }

    #[test]
    fn bad_tenants_and_unknown_ids_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::open(dir.path()).unwrap();
        let err = keys.create(NewKey { tenant: "Bank A".into(), ..new_key(Role::Admin) }, "t").unwrap_err();
        assert!(err.to_string().contains("tenant 'Bank A'"), "{err}");
        assert!(keys.revoke("nope").unwrap_err().to_string().contains("no key with id 'nope'"));
    }
}
