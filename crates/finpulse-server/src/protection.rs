//! Opening a data directory's key store: where the master key comes from, who may write, and
//! the handle erasure needs. The engine crates see the store only as a
//! [`finpulse_core::seal::FieldSealer`] installed for the directory
//! ([`finpulse_log::protection`]).

use finpulse_protect::{Algorithm, KeyStore, MASTER_KEY_ENV, MasterKeys, ProtectError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// How personal fields are protected at rest (`[protect]` in `finpulse.toml`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ProtectOptions {
    /// The master key file (`v<version> <64 hex>` a line, owner-only). When unset, the
    /// `FINPULSE_MASTER_KEY` variable, else `<data-dir>.master-key` beside the data directory
    /// if it exists.
    pub master_key_file: Option<PathBuf>,
    /// `aes-256-gcm` (the default) or `sm4-gcm`, for fields sealed from now on.
    pub algorithm: String,
}

impl Default for ProtectOptions {
    fn default() -> Self {
        Self { master_key_file: None, algorithm: Algorithm::Aes256Gcm.name().to_string() }
    }
}

/// Why a key store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ProtectionError {
    /// The algorithm is not one we have.
    #[error("protect.algorithm '{0}' is not aes-256-gcm or sm4-gcm")]
    Algorithm(String),
    /// The master key could not be read.
    #[error("master key: {0}")]
    Master(#[from] finpulse_protect::MasterKeyError),
    /// The key store could not be opened.
    #[error(transparent)]
    Store(#[from] ProtectError),
    /// The directory is protected and no master key was given.
    #[error(
        "data directory {dir} seals personal fields (it has a key store, keys/) and no master key was given: set {MASTER_KEY_ENV}, protect.master_key_file, or put the key file at {default}"
    )]
    NoMasterKey {
        /// The data directory.
        dir: PathBuf,
        /// Where the key file is looked for by default.
        default: String,
    },
}

/// Who opens the key store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    /// The data directory's owner (the server, an import, the demo): it makes keys and erases,
    /// and holds the store's lock.
    Owner,
    /// A reader beside the owner (the CLI's `sql`, `subject export`): opens fields only.
    Reader,
}

/// The key file looked for beside a deployment's data directory: `<data-dir>.master-key`.
pub fn default_master_key_file(root: &Path) -> PathBuf {
    let mut name = root.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "finpulse-data".into());
    name.push(".master-key");
    root.with_file_name(name)
}

impl ProtectOptions {
    fn algorithm(&self) -> Result<Algorithm, ProtectionError> {
        match self.algorithm.as_str() {
            "" | "aes-256-gcm" => Ok(Algorithm::Aes256Gcm),
            "sm4-gcm" => Ok(Algorithm::Sm4Gcm),
            other => Err(ProtectionError::Algorithm(other.to_string())),
        }
    }

    /// Whether a master key is given explicitly (the variable or a configured file), not
    /// looked for beside the data directory.
    pub fn key_given(&self) -> bool {
        std::env::var_os(MASTER_KEY_ENV).is_some() || self.master_key_file.is_some()
    }

    /// The master keys, from the variable, the configured file or the default file, in that
    /// order; `None` when none is given.
    fn master_keys(&self, root: &Path) -> Result<Option<MasterKeys>, ProtectionError> {
        if std::env::var_os(MASTER_KEY_ENV).is_some() {
            return Ok(Some(MasterKeys::from_env()?));
        }
        if let Some(file) = &self.master_key_file {
            return Ok(Some(MasterKeys::from_file(file)?));
        }
        let default = default_master_key_file(root);
        if default.exists() {
            return Ok(Some(MasterKeys::from_file(&default)?));
        }
        Ok(None)
    }

    /// Checks the options without opening anything.
    pub fn check(&self) -> Result<(), ProtectionError> {
        self.algorithm().map(|_| ())
    }
}

type Stores = Mutex<HashMap<PathBuf, Arc<KeyStore>>>;

fn stores() -> &'static Stores {
    static STORES: OnceLock<Stores> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

fn key(dir: &Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// Opens `data_dir`'s key store and installs it as the directory's sealer, when the directory
/// is protected or a master key is given (an owner then protects a directory that was not;
/// fields already stored stay readable as they are). `root` is the deployment's data directory,
/// beside which the default key file sits. `None`: the directory is not protected and no key
/// was given, so personal fields are stored in clear (and a warning says so).
pub fn open(data_dir: &Path, root: &Path, options: &ProtectOptions, opener: Opener) -> Result<Option<Arc<KeyStore>>, ProtectionError> {
    if let Some(store) = stores().lock().expect("key store map poisoned").get(&key(data_dir)) {
        return Ok(Some(store.clone()));
    }
    let protected = finpulse_log::protection::is_protected(data_dir);
    let Some(master) = options.master_keys(root)? else {
        if protected {
            return Err(ProtectionError::NoMasterKey {
                dir: data_dir.to_path_buf(),
                default: default_master_key_file(root).display().to_string(),
            });
        }
        if opener == Opener::Owner {
            tracing::warn!(
                dir = %data_dir.display(),
                "no master key is configured: resident ids, mobiles, card numbers and names are stored in clear ({MASTER_KEY_ENV} or protect.master_key_file turns sealing on)"
            );
        }
        return Ok(None);
    };
    let keys_dir = finpulse_log::protection::keys_dir(data_dir);
    let algorithm = options.algorithm()?;
    let store = match opener {
        Opener::Owner => KeyStore::open(&keys_dir, Arc::new(master), algorithm)?,
        Opener::Reader if protected => KeyStore::open_reader(&keys_dir, Arc::new(master), algorithm)?,
        Opener::Reader => return Ok(None),
    };
    let store = Arc::new(store);
    finpulse_log::protection::install(data_dir, store.clone());
    if opener == Opener::Owner {
        stores().lock().expect("key store map poisoned").insert(key(data_dir), store.clone());
    }
    Ok(Some(store))
}

/// The key store this process owns for `data_dir`, if it opened one as its owner.
pub fn owned(data_dir: &Path) -> Option<Arc<KeyStore>> {
    stores().lock().expect("key store map poisoned").get(&key(data_dir)).cloned()
}

/// Closes what [`open`] opened for `data_dir` (when its owner stops), releasing the store's lock
/// once the last handle is gone.
pub fn close(data_dir: &Path) {
    stores().lock().expect("key store map poisoned").remove(&key(data_dir));
    finpulse_log::protection::uninstall(data_dir);
}
