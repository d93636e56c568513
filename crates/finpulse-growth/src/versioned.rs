//! Definitions kept as JSON in the versioned store ([`finpulse_core::versions`]): segments and
//! goals, each a value of its own type under its name.

use crate::InsightError;
use finpulse_core::versions::{Activation, Adopted, Kind, NoMeta, VersionedStore, VersionsError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::PathBuf;

/// Values of type `T` by name, versioned.
pub(crate) struct JsonVersions<T> {
    store: VersionedStore<NoMeta>,
    value: PhantomData<T>,
}

impl From<VersionsError> for InsightError {
    fn from(e: VersionsError) -> Self {
        match e {
            VersionsError::Name { .. }
            | VersionsError::NoVersion { .. }
            | VersionsError::NoActive { .. }
            | VersionsError::NothingToRollBack { .. } => InsightError::param("name", e.to_string()),
            VersionsError::Io { ref path, .. } | VersionsError::Format { ref path, .. } => InsightError::file(&path.clone(), e),
        }
    }
}

impl<T: Serialize + DeserializeOwned> JsonVersions<T> {
    /// The store in `dir`.
    pub(crate) fn new(dir: impl Into<PathBuf>, kind: Kind) -> Self {
        Self { store: VersionedStore::new(dir, kind), value: PhantomData }
    }

    /// Adopts `(name, value)` pairs written before the store existed, once, each active.
    pub(crate) fn adopt(&self, earlier: impl FnOnce() -> Result<Vec<(String, Vec<u8>)>, VersionsError>) -> Result<(), InsightError> {
        let by = "adopted";
        self.store.adopt(|| {
            Ok(earlier()?
                .into_iter()
                .map(|(name, content)| Adopted { name, content, meta: NoMeta {}, by: by.into(), at_unix_secs: 0, active: true })
                .collect())
        })?;
        Ok(())
    }

    fn read(&self, file: &str, bytes: &[u8]) -> Result<T, InsightError> {
        serde_json::from_slice(bytes).map_err(|e| InsightError::file(&self.store.dir().join(file), e))
    }

    /// The active value of every name.
    pub(crate) fn active(&self) -> Result<BTreeMap<String, T>, InsightError> {
        self.store.active_all()?.into_iter().map(|(v, bytes)| Ok((v.name.clone(), self.read(&v.file, &bytes)?))).collect()
    }

    /// Stores `value` as the next version of `name` and makes it active.
    pub(crate) fn put(&self, name: &str, value: &T, by: &str) -> Result<(), InsightError> {
        let bytes = serde_json::to_vec_pretty(value).expect("a definition serialises");
        self.store.publish(name, &bytes, NoMeta {}, by, true)?;
        Ok(())
    }

    /// Makes nothing active under `name`; false when nothing was.
    pub(crate) fn remove(&self, name: &str, by: &str) -> Result<bool, InsightError> {
        Ok(self.store.remove(name, by)?)
    }

    /// Returns `name` to what was active before, with that value.
    pub(crate) fn rollback(&self, name: &str, by: &str) -> Result<(Activation, T), InsightError> {
        let a = self.store.rollback(name, by)?;
        let (version, bytes) = self.store.get(name, a.version)?;
        let value = self.read(&version.file, &bytes)?;
        Ok((a, value))
    }

    /// Every change, oldest first.
    pub(crate) fn history(&self) -> Result<Vec<Activation>, InsightError> {
        Ok(self.store.history()?)
    }
}
