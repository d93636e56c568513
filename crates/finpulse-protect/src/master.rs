//! Master keys: what wraps every data key. [`KeyProvider`] is the seam an HSM or a KMS plugs
//! into; [`MasterKeys`] is the provider that holds the keys itself, read from a key file or
//! from the `FINPULSE_MASTER_KEY` environment variable.
//!
//! The key file, one line per version, the highest version current; `#` starts a comment:
//!
//! ```text
//! # finpulse master keys
//! v1 4f1c…(64 hex characters)
//! v2 9ab0…
//! ```
//!
//! The environment variable holds either 64 hex characters (version 1) or versions separated
//! by commas, `v2:<hex>,v1:<hex>`; there too the highest version is current.

use crate::algorithm::{Algorithm, KEY_BYTES, NONCE_BYTES, TAG_BYTES};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The environment variable [`MasterKeys::from_env`] reads.
pub const MASTER_KEY_ENV: &str = "FINPULSE_MASTER_KEY";
/// The largest key file read: far more than any real number of versions, and a bound on what a
/// wrong path makes this read.
pub const MASTER_KEY_FILE_BYTES_MAX: u64 = 64 * 1024;
/// The most versions one provider holds.
pub const MASTER_KEY_VERSIONS_MAX: usize = 256;
/// Permission bits a key file must not have: any access by group or others.
const KEY_FILE_MODE_FORBIDDEN: u32 = 0o077;
/// What every local wrap authenticates besides the caller's context, so a blob wrapped here is
/// never mistaken for another use of the same key.
const WRAP_LABEL: &[u8] = b"finpulse-protect v1 wrap\0";
/// Bytes of a blob [`MasterKeys::wrap`] makes: algorithm, nonce, wrapped key, tag.
const LOCAL_WRAPPED_BYTES: usize = 1 + NONCE_BYTES + KEY_BYTES + TAG_BYTES;

/// Why a master key could not be had or used.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    /// The key file could not be read or written.
    #[error("master key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The key file may be read by others than its owner.
    #[error("master key file {path} is open to group or others (mode {mode:04o}); run `chmod 600 {path}`")]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A line of the key file is not `v<version> <64 hex>`.
    #[error("master key file {path}, line {line}: {why}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// The key file holds no key.
    #[error("master key file {path} holds no key")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// `generate` would overwrite a key file.
    #[error("master key file {path} exists already; it is never overwritten (data wrapped by it would be lost)")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The environment variable is not set.
    #[error("{MASTER_KEY_ENV} is not set")]
    EnvMissing,
    /// The environment variable is not a key list.
    #[error("{MASTER_KEY_ENV}, item {item}: {why}")]
    MalformedEnv {
        /// The comma-separated item, from 1.
        item: usize,
        /// What is wrong.
        why: String,
    },
    /// A version the provider does not hold.
    #[error("master key version {version} is not available (the provider holds {known})")]
    UnknownVersion {
        /// The version asked for.
        version: u32,
        /// The versions it holds, e.g. `v1, v2`.
        known: String,
    },
    /// A wrapped key did not authenticate under the master key of its version: the key is not
    /// the one it was wrapped with, or the wrapped bytes were changed.
    #[error(
        "it does not unwrap with master key version {version}: that key is not the one it was wrapped with, or the wrapped key was changed"
    )]
    Unwrap {
        /// The version tried.
        version: u32,
    },
    /// Keys given to [`MasterKeys::new`] (or too many versions) are not usable.
    #[error("master keys: {0}")]
    Invalid(String),
    /// An external provider (HSM, KMS) failed.
    #[error("key provider: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

/// Where master keys live. Data keys are handed to it to wrap and unwrap, rather than it
/// handing out master keys, so a provider backed by an HSM or a KMS never lets its keys out.
pub trait KeyProvider: Send + Sync {
    /// The version new data keys are wrapped under.
    fn current_version(&self) -> u32;

    /// Wraps `key` under master key `version` with `algorithm` where the provider can honour
    /// it, authenticating `context` (which is not stored: unwrap must be given it again).
    fn wrap(&self, version: u32, algorithm: Algorithm, context: &[u8], key: &[u8; KEY_BYTES]) -> Result<Vec<u8>, MasterKeyError>;

    /// Unwraps what [`KeyProvider::wrap`] made under `version` with the same `context`;
    /// [`MasterKeyError::Unwrap`] when it does not authenticate.
    fn unwrap(&self, version: u32, context: &[u8], wrapped: &[u8]) -> Result<Zeroizing<[u8; KEY_BYTES]>, MasterKeyError>;
}

/// Master keys held in this process, by version. Wraps with the AEAD the caller names
/// (AES-256-GCM or SM4-GCM) rather than RFC 3394 key wrap: the wrap then authenticates the
/// user and key version it belongs to (so a wrapped key copied to another user's record does
/// not unwrap), a wrong master key is told apart from damage by the same tag check every
/// envelope uses, and SM4 deployments get SM4 all the way down. Random 96-bit nonces are safe
/// here: one wrap per data key per rotation stays far below GCM's 2^32 messages per key.
pub struct MasterKeys {
    keys: BTreeMap<u32, Zeroizing<[u8; KEY_BYTES]>>,
}

impl std::fmt::Debug for MasterKeys {
    /// The versions only: never a key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKeys").field("versions", &self.known()).finish()
    }
}

impl MasterKeys {
    /// Keys given directly, e.g. by a secret manager; an error when there are none or more than
    /// [`MASTER_KEY_VERSIONS_MAX`], or a version is 0 or given twice.
    pub fn new(keys: impl IntoIterator<Item = (u32, [u8; KEY_BYTES])>) -> Result<Self, MasterKeyError> {
        let mut out = BTreeMap::new();
        for (version, key) in keys {
            if version == 0 {
                return Err(MasterKeyError::Invalid("versions start at 1".into()));
            }
            if out.insert(version, Zeroizing::new(key)).is_some() {
                return Err(MasterKeyError::Invalid(format!("version v{version} is given twice")));
            }
        }
        Self::checked(out)
    }

    fn checked(keys: BTreeMap<u32, Zeroizing<[u8; KEY_BYTES]>>) -> Result<Self, MasterKeyError> {
        if keys.is_empty() {
            return Err(MasterKeyError::Invalid("no key".into()));
        }
        if keys.len() > MASTER_KEY_VERSIONS_MAX {
            return Err(MasterKeyError::Invalid(format!("{} versions, at most {MASTER_KEY_VERSIONS_MAX}", keys.len())));
        }
        Ok(Self { keys })
    }

    /// Reads a key file, refusing one that group or others may access.
    pub fn from_file(path: &Path) -> Result<Self, MasterKeyError> {
        let text = read_key_file(path)?;
        let mut keys = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let bad = |why: String| MasterKeyError::Malformed { path: path.to_path_buf(), line: line_no, why };
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(version), Some(key), None) = (words.next(), words.next(), words.next()) else {
                return Err(bad("expected `v<version> <64 hex characters>`".into()));
            };
            let version = parse_version(version).map_err(&bad)?;
            let key = parse_key(key).map_err(&bad)?;
            if keys.insert(version, key).is_some() {
                return Err(bad(format!("version v{version} is given twice")));
            }
            if keys.len() > MASTER_KEY_VERSIONS_MAX {
                return Err(bad(format!("more than {MASTER_KEY_VERSIONS_MAX} versions")));
            }
        }
        if keys.is_empty() {
            return Err(MasterKeyError::Empty { path: path.to_path_buf() });
        }
        Ok(Self { keys })
    }

    /// Reads `FINPULSE_MASTER_KEY`.
    pub fn from_env() -> Result<Self, MasterKeyError> {
        let value = Zeroizing::new(std::env::var(MASTER_KEY_ENV).map_err(|_| MasterKeyError::EnvMissing)?);
        Self::from_env_value(&value)
    }

    /// Parses a value as `FINPULSE_MASTER_KEY` holds it: `<64 hex>` (version 1) or
    /// `v2:<hex>,v1:<hex>`.
    pub fn from_env_value(value: &str) -> Result<Self, MasterKeyError> {
        let value = value.trim();
        let mut keys = BTreeMap::new();
        if !value.contains(':') {
            let key = parse_key(value).map_err(|why| MasterKeyError::MalformedEnv { item: 1, why })?;
            keys.insert(1, key);
            return Self::checked(keys);
        }
        for (i, item) in value.split(',').enumerate() {
            let bad = |why: String| MasterKeyError::MalformedEnv { item: i + 1, why };
            let (version, key) = item.trim().split_once(':').ok_or_else(|| bad("expected `v<version>:<64 hex characters>`".into()))?;
            let version = parse_version(version.trim()).map_err(&bad)?;
            if keys.insert(version, parse_key(key.trim()).map_err(&bad)?).is_some() {
                return Err(bad(format!("version v{version} is given twice")));
            }
        }
        Self::checked(keys)
    }

    /// Makes a new key file at `path` holding one random version-1 key, owner-only and durable.
    /// Refuses to overwrite an existing file.
    pub fn generate(path: &Path) -> Result<Self, MasterKeyError> {
        if path.exists() {
            return Err(MasterKeyError::Exists { path: path.to_path_buf() });
        }
        let mut keys = BTreeMap::new();
        keys.insert(1, random_key());
        let keys = Self { keys };
        keys.write_file(path)?;
        Ok(keys)
    }

    /// Adds a random key as the next version to the key file at `path` and returns that
    /// version, which becomes current: the first step of a rotation (then
    /// `KeyStore::rotate_master`, then remove the old line). The file is written anew: comments
    /// in it are replaced by the standard header.
    pub fn generate_next(path: &Path) -> Result<u32, MasterKeyError> {
        let mut keys = Self::from_file(path)?;
        let next = keys.current_version().checked_add(1).ok_or_else(|| MasterKeyError::Malformed {
            path: path.to_path_buf(),
            line: 0,
            why: "the highest version is u32::MAX".into(),
        })?;
        keys.keys.insert(next, random_key());
        keys.write_file(path)?;
        Ok(next)
    }

    fn write_file(&self, path: &Path) -> Result<(), MasterKeyError> {
        let mut text = Zeroizing::new(String::from(
            "# finpulse master keys: one line per version, the highest is current.\n\
             # Keep a copy offline: without these keys no protected field can be read.\n",
        ));
        for (version, key) in &self.keys {
            let mut key_hex = Zeroizing::new([0u8; KEY_BYTES * 2]);
            hex::encode_to_slice(&key[..], &mut key_hex[..]).expect("64 hex characters for 32 bytes");
            text.push_str(&format!("v{version} "));
            text.push_str(std::str::from_utf8(&key_hex[..]).expect("hex is ASCII"));
            text.push('\n');
        }
        write_owner_only(path, text.as_bytes()).map_err(|source| MasterKeyError::Io { path: path.to_path_buf(), source })
    }

    /// The versions held, e.g. `v1, v2`.
    fn known(&self) -> String {
        self.keys.keys().map(|v| format!("v{v}")).collect::<Vec<_>>().join(", ")
    }

    fn key(&self, version: u32) -> Result<&[u8; KEY_BYTES], MasterKeyError> {
        self.keys.get(&version).map(|k| &**k).ok_or_else(|| MasterKeyError::UnknownVersion { version, known: self.known() })
    }
}

impl KeyProvider for MasterKeys {
    fn current_version(&self) -> u32 {
        // Never empty: every constructor refuses an empty set.
        *self.keys.keys().next_back().expect("a provider holds at least one key")
    }

    fn wrap(&self, version: u32, algorithm: Algorithm, context: &[u8], key: &[u8; KEY_BYTES]) -> Result<Vec<u8>, MasterKeyError> {
        let master = self.key(version)?;
        let mut nonce = [0u8; NONCE_BYTES];
        rand::fill(&mut nonce);
        let mut out = Vec::with_capacity(LOCAL_WRAPPED_BYTES);
        out.push(algorithm.code());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(key);
        let tag = algorithm.seal(master, &nonce, &wrap_aad(version, context), &mut out[1 + NONCE_BYTES..]);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    fn unwrap(&self, version: u32, context: &[u8], wrapped: &[u8]) -> Result<Zeroizing<[u8; KEY_BYTES]>, MasterKeyError> {
        let master = self.key(version)?;
        if wrapped.len() != LOCAL_WRAPPED_BYTES {
            return Err(MasterKeyError::Unwrap { version });
        }
        let algorithm = Algorithm::from_code(wrapped[0]).ok_or(MasterKeyError::Unwrap { version })?;
        let nonce: &[u8; NONCE_BYTES] = wrapped[1..1 + NONCE_BYTES].try_into().expect("length checked");
        let tag: &[u8; TAG_BYTES] = wrapped[LOCAL_WRAPPED_BYTES - TAG_BYTES..].try_into().expect("length checked");
        let mut key = Zeroizing::new([0u8; KEY_BYTES]);
        key.copy_from_slice(&wrapped[1 + NONCE_BYTES..LOCAL_WRAPPED_BYTES - TAG_BYTES]);
        algorithm.open(master, nonce, &wrap_aad(version, context), &mut *key, tag).map_err(|_| MasterKeyError::Unwrap { version })?;
        Ok(key)
    }
}

fn wrap_aad(version: u32, context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(WRAP_LABEL.len() + 4 + context.len());
    aad.extend_from_slice(WRAP_LABEL);
    aad.extend_from_slice(&version.to_be_bytes());
    aad.extend_from_slice(context);
    aad
}

fn random_key() -> Zeroizing<[u8; KEY_BYTES]> {
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    // The thread-local CSPRNG finpulse-access draws its secrets from (ChaCha12, seeded and
    // periodically reseeded from the OS).
    rand::fill(&mut *key);
    key
}

/// `v<digits>`, from 1.
fn parse_version(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix('v').ok_or_else(|| format!("version '{text}' must look like v1"))?;
    match digits.parse::<u32>() {
        Ok(0) => Err("versions start at v1".into()),
        Ok(v) if digits.bytes().all(|b| b.is_ascii_digit()) => Ok(v),
        _ => Err(format!("version '{text}' must look like v1")),
    }
}

/// 64 hex characters.
fn parse_key(text: &str) -> Result<Zeroizing<[u8; KEY_BYTES]>, String> {
    if text.len() != KEY_BYTES * 2 {
        return Err(format!("the key is {} characters long, expected {} hex characters (32 bytes)", text.len(), KEY_BYTES * 2));
    }
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    hex::decode_to_slice(text, &mut *key).map_err(|_| "the key is not hex".to_string())?;
    Ok(key)
}

/// The key file's text, after checking that only its owner may access it.
fn read_key_file(path: &Path) -> Result<Zeroizing<String>, MasterKeyError> {
    let io = |source| MasterKeyError::Io { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & KEY_FILE_MODE_FORBIDDEN != 0 {
        return Err(MasterKeyError::TooOpen { path: path.to_path_buf(), mode });
    }
    if meta.len() > MASTER_KEY_FILE_BYTES_MAX {
        return Err(MasterKeyError::Malformed {
            path: path.to_path_buf(),
            line: 0,
            why: format!("the file is {} bytes, more than a key file ever holds ({MASTER_KEY_FILE_BYTES_MAX})", meta.len()),
        });
    }
    let mut text = Zeroizing::new(String::new());
    std::io::Read::read_to_string(&mut std::io::Read::take(file, MASTER_KEY_FILE_BYTES_MAX), &mut text).map_err(io)?;
    Ok(text)
}

/// Writes `bytes` durably (`finpulse_core::durable`) readable by the owner only: the temporary
/// file is narrowed to 0600 before a byte is written to it.
pub(crate) fn write_owner_only(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    finpulse_core::durable::write_with(path, |out| {
        out.get_ref().set_permissions(std::fs::Permissions::from_mode(0o600))?;
        std::io::Write::write_all(out, bytes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const K2: &str = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";

    fn write_mode(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_key_file_gives_its_highest_version_as_current() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.keys");
        write_mode(&path, &format!("# comment\n\nv1 {K1}\nv2 {K2} # the new one\n"), 0o600);
        let keys = MasterKeys::from_file(&path).unwrap();
        assert_eq!(keys.current_version(), 2);
        assert_eq!(keys.key(1).unwrap(), &<[u8; 32]>::try_from(hex::decode(K1).unwrap()).unwrap());
        assert!(!format!("{keys:?}").contains(&K1[..16]), "Debug shows a key");
    }

    #[test]
    fn a_key_file_open_to_group_or_others_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.keys");
        for mode in [0o644, 0o640, 0o604, 0o620] {
            write_mode(&path, &format!("v1 {K1}\n"), mode);
            let err = MasterKeys::from_file(&path).unwrap_err();
            assert!(matches!(err, MasterKeyError::TooOpen { .. }), "{mode:o}: {err}");
            assert!(err.to_string().contains(&path.display().to_string()), "{err}");
        }
        write_mode(&path, &format!("v1 {K1}\n"), 0o400);
        assert!(MasterKeys::from_file(&path).is_ok());
    }

    #[test]
    fn malformed_key_files_are_refused_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.keys");
        let cases = [
            (format!("v1 {K1}\nv2 {}\n", &K2[..62]), 2, "62 characters long"),
            (format!("# c\nv1 {}zz\n", &K1[..62]), 2, "not hex"),
            (format!("1 {K1}\n"), 1, "must look like v1"),
            (format!("v0 {K1}\n"), 1, "start at v1"),
            (format!("v1 {K1}\nv1 {K2}\n"), 2, "twice"),
            (format!("v1 {K1} extra\n"), 1, "expected `v<version>"),
        ];
        for (text, line, why) in cases {
            write_mode(&path, &text, 0o600);
            match MasterKeys::from_file(&path).unwrap_err() {
                MasterKeyError::Malformed { line: l, why: w, .. } => {
                    assert_eq!(l, line, "{text}");
                    assert!(w.contains(why), "{w}");
                }
                other => panic!("{other}"),
            }
        }
        write_mode(&path, "# nothing\n", 0o600);
        assert!(matches!(MasterKeys::from_file(&path), Err(MasterKeyError::Empty { .. })));
        let missing = dir.path().join("absent.keys");
        let err = MasterKeys::from_file(&missing).unwrap_err();
        assert!(matches!(&err, MasterKeyError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound));
        assert!(err.to_string().contains("absent.keys"), "{err}");
    }

    #[test]
    fn the_environment_value_takes_a_bare_key_or_a_version_list() {
        assert_eq!(MasterKeys::from_env_value(K1).unwrap().current_version(), 1);
        let keys = MasterKeys::from_env_value(&format!("v2:{K2}, v1:{K1}")).unwrap();
        assert_eq!(keys.current_version(), 2);
        assert_eq!(keys.key(2).unwrap()[0], 0x1f);
        let err = MasterKeys::from_env_value(&format!("v2:{K2},v1:{}", &K1[..10])).unwrap_err();
        assert!(matches!(&err, MasterKeyError::MalformedEnv { item: 2, .. }), "{err}");
        assert!(MasterKeys::from_env_value("").is_err());
        assert!(matches!(MasterKeys::from_env_value(&format!("v2:{K2},v2:{K1}")), Err(MasterKeyError::MalformedEnv { item: 2, .. })));
    }

    #[test]
    fn generate_writes_an_owner_only_file_never_over_an_existing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.keys");
        let made = MasterKeys::generate(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let read = MasterKeys::from_file(&path).unwrap();
        assert_eq!(read.key(1).unwrap(), made.key(1).unwrap());
        assert!(matches!(MasterKeys::generate(&path), Err(MasterKeyError::Exists { .. })));
        assert_eq!(MasterKeys::generate_next(&path).unwrap(), 2);
        let read = MasterKeys::from_file(&path).unwrap();
        assert_eq!((read.current_version(), read.key(1).unwrap()), (2, made.key(1).unwrap()));
        assert_ne!(read.key(2).unwrap(), read.key(1).unwrap());
    }

    #[test]
    fn a_wrapped_key_opens_only_with_its_master_key_version_and_context() {
        let keys = MasterKeys::from_env_value(&format!("v2:{K2},v1:{K1}")).unwrap();
        let data_key = [42u8; KEY_BYTES];
        for algorithm in [Algorithm::Aes256Gcm, Algorithm::Sm4Gcm] {
            let wrapped = keys.wrap(1, algorithm, b"user u1", &data_key).unwrap();
            assert_eq!(*keys.unwrap(1, b"user u1", &wrapped).unwrap(), data_key);
            assert!(matches!(keys.unwrap(2, b"user u1", &wrapped), Err(MasterKeyError::Unwrap { version: 2 })));
            assert!(matches!(keys.unwrap(1, b"user u2", &wrapped), Err(MasterKeyError::Unwrap { .. })));
            let mut changed = wrapped.clone();
            changed[20] ^= 1;
            assert!(matches!(keys.unwrap(1, b"user u1", &changed), Err(MasterKeyError::Unwrap { .. })));
        }
        let err = keys.wrap(3, Algorithm::Aes256Gcm, b"", &data_key).unwrap_err();
        assert!(err.to_string().contains("version 3 is not available (the provider holds v1, v2)"), "{err}");
    }
}
