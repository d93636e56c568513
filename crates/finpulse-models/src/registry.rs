//! The model registry: every trained model is kept with its purpose (e.g. `churn`), version,
//! training range, features, parameters and metrics; one version per purpose is active, and
//! promotions and roll-backs are recorded with who made them and when.
//!
//! On disk, under one directory: `index.json` (entries, the active version per purpose, the
//! history of activations) and one model file per version, `<purpose>-v<version>.json`. Every
//! write goes to a temporary file that is fsync'd, renamed into place, and the directory
//! fsync'd; writers take an exclusive lock on `LOCK`, so the CLI and a server can share it.

use crate::tabular::{ModelError, TabularModel};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Longest purpose name.
pub const PURPOSE_BYTES_MAX: usize = 64;
/// The registry's folder inside a data directory.
pub const REGISTRY_DIR: &str = "models";
/// The index file's format.
pub const INDEX_FORMAT: &str = "finpulse-model-registry/1";

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// File I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The index is not readable.
    #[error("{path}: not a model registry index ({detail})")]
    Format {
        /// The file.
        path: String,
        /// Why.
        detail: String,
    },
    /// A purpose name that is empty, too long, or has characters other than a-z, 0-9, `_`, `-`.
    #[error("purpose '{0}' must be 1 to {PURPOSE_BYTES_MAX} characters of a-z, 0-9, '_' or '-'")]
    Purpose(String),
    /// No such version.
    #[error("no version {version} of purpose '{purpose}'; registered: {registered}")]
    NoVersion {
        /// The purpose.
        purpose: String,
        /// The version asked for.
        version: u32,
        /// Versions that exist.
        registered: String,
    },
    /// Nothing is registered, or active, for the purpose.
    #[error("no active model for purpose '{0}': train one, or promote a registered version")]
    NoActive(String),
    /// A roll-back with no earlier active version to return to.
    #[error("purpose '{0}' has no earlier active version to roll back to")]
    NothingToRollBack(String),
    /// A stored model file.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// One registered model version.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelEntry {
    /// What the model is for (`churn`, `fraud`, `credit`, …).
    pub purpose: String,
    /// 1, 2, … per purpose.
    pub version: u32,
    /// Seconds since the Unix epoch when it was registered.
    pub created_unix_secs: u64,
    /// Who registered it.
    pub created_by: String,
    /// `gbdt` or `logistic`.
    pub algo: String,
    /// The model file, relative to the registry directory.
    pub file: String,
    /// What it was trained on: data range, as-of dates, label definition.
    pub training: serde_json::Value,
    /// Feature names, in model order.
    pub features: Vec<String>,
    /// Training settings.
    pub params: serde_json::Value,
    /// Quality measured at training time (validation and in-sample).
    pub metrics: serde_json::Value,
}

/// A change of the active version.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Activation {
    /// The purpose.
    pub purpose: String,
    /// The version made active.
    pub version: u32,
    /// The version it replaced.
    pub previous: Option<u32>,
    /// `promote` or `rollback`.
    pub action: String,
    /// Who did it.
    pub by: String,
    /// When, in seconds since the Unix epoch.
    pub at_unix_secs: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
struct Index {
    format: String,
    entries: Vec<ModelEntry>,
    active: BTreeMap<String, u32>,
    history: Vec<Activation>,
}

/// What to record with a model when it is registered.
#[derive(Clone, Debug)]
pub struct Registration {
    /// What the model is for.
    pub purpose: String,
    /// Who registers it.
    pub by: String,
    /// What it was trained on.
    pub training: serde_json::Value,
    /// Quality measured at training time.
    pub metrics: serde_json::Value,
    /// Make it the active version at once.
    pub activate: bool,
}

/// A registry directory.
pub struct ModelRegistry {
    dir: PathBuf,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn check_purpose(purpose: &str) -> Result<(), RegistryError> {
    let ok = !purpose.is_empty()
        && purpose.len() <= PURPOSE_BYTES_MAX
        && purpose.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok { Ok(()) } else { Err(RegistryError::Purpose(purpose.to_string())) }
}

impl ModelRegistry {
    /// Opens (creating if needed) the registry in `dir`.
    pub fn open(dir: &Path) -> Result<Self, RegistryError> {
        std::fs::create_dir_all(dir).map_err(|source| RegistryError::Io { path: dir.display().to_string(), source })?;
        Ok(Self { dir: dir.to_path_buf() })
    }

    /// Opens the registry of a data directory (its [`REGISTRY_DIR`] folder).
    pub fn in_data_dir(data_dir: &Path) -> Result<Self, RegistryError> {
        Self::open(&data_dir.join(REGISTRY_DIR))
    }

    fn io(&self, name: &str) -> impl Fn(std::io::Error) -> RegistryError + '_ {
        let path = self.dir.join(name).display().to_string();
        move |source| RegistryError::Io { path: path.clone(), source }
    }

    /// Holds the writers' lock until dropped.
    fn lock(&self) -> Result<File, RegistryError> {
        let file = File::options().create(true).truncate(false).write(true).open(self.dir.join("LOCK")).map_err(self.io("LOCK"))?;
        file.lock().map_err(self.io("LOCK"))?;
        Ok(file)
    }

    fn read_index(&self) -> Result<Index, RegistryError> {
        let path = self.dir.join("index.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Index { format: INDEX_FORMAT.into(), ..Index::default() }),
            Err(e) => return Err(self.io("index.json")(e)),
        };
        let index: Index = serde_json::from_slice(&bytes)
            .map_err(|e| RegistryError::Format { path: path.display().to_string(), detail: e.to_string() })?;
        if index.format != INDEX_FORMAT {
            return Err(RegistryError::Format {
                path: path.display().to_string(),
                detail: format!("format '{}', this build reads '{INDEX_FORMAT}'", index.format),
            });
        }
        Ok(index)
    }

    fn write_durably(&self, name: &str, bytes: &[u8]) -> Result<(), RegistryError> {
        finpulse_core::durable::write_file(&self.dir.join(name), bytes).map_err(self.io(name))
    }

    fn write_index(&self, index: &Index) -> Result<(), RegistryError> {
        let json = serde_json::to_vec_pretty(index).map_err(|e| self.io("index.json")(std::io::Error::other(e)))?;
        self.write_durably("index.json", &json)
    }

    /// Stores `model` as the next version of `reg.purpose`, and activates it if asked.
    pub fn register(&self, model: &TabularModel, reg: &Registration) -> Result<ModelEntry, RegistryError> {
        check_purpose(&reg.purpose)?;
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let version = index.entries.iter().filter(|e| e.purpose == reg.purpose).map(|e| e.version).max().unwrap_or(0) + 1;
        let file = format!("{}-v{version}.json", reg.purpose);
        let json = serde_json::to_vec(model).map_err(|e| self.io(&file)(std::io::Error::other(e)))?;
        self.write_durably(&file, &json)?;
        let (algo, params) = model.learner_summary();
        let entry = ModelEntry {
            purpose: reg.purpose.clone(),
            version,
            created_unix_secs: now_secs(),
            created_by: reg.by.clone(),
            algo,
            file,
            training: reg.training.clone(),
            features: model.features.iter().map(|f| f.name.clone()).collect(),
            params,
            metrics: reg.metrics.clone(),
        };
        index.entries.push(entry.clone());
        if reg.activate {
            Self::activate(&mut index, &reg.purpose, version, "promote", &reg.by);
        }
        self.write_index(&index)?;
        Ok(entry)
    }

    fn activate(index: &mut Index, purpose: &str, version: u32, action: &str, by: &str) {
        let previous = index.active.insert(purpose.to_string(), version);
        index.history.push(Activation {
            purpose: purpose.to_string(),
            version,
            previous,
            action: action.into(),
            by: by.into(),
            at_unix_secs: now_secs(),
        });
    }

    /// Makes `version` the active model of `purpose`.
    pub fn promote(&self, purpose: &str, version: u32, by: &str) -> Result<Activation, RegistryError> {
        check_purpose(purpose)?;
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        if !index.entries.iter().any(|e| e.purpose == purpose && e.version == version) {
            let registered =
                index.entries.iter().filter(|e| e.purpose == purpose).map(|e| e.version.to_string()).collect::<Vec<_>>().join(", ");
            return Err(RegistryError::NoVersion {
                purpose: purpose.into(),
                version,
                registered: if registered.is_empty() { "none".into() } else { registered },
            });
        }
        Self::activate(&mut index, purpose, version, "promote", by);
        self.write_index(&index)?;
        Ok(index.history.last().cloned().expect("activate just pushed an entry"))
    }

    /// Returns `purpose` to the version that was active before the current one.
    pub fn rollback(&self, purpose: &str, by: &str) -> Result<Activation, RegistryError> {
        check_purpose(purpose)?;
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let current = *index.active.get(purpose).ok_or_else(|| RegistryError::NoActive(purpose.into()))?;
        // Replay the history as a stack: a promotion pushes, a roll-back pops; so repeated
        // roll-backs walk back through earlier promotions instead of toggling between two.
        let mut stack: Vec<u32> = Vec::new();
        for a in index.history.iter().filter(|a| a.purpose == purpose) {
            if a.action == "rollback" {
                stack.pop();
            } else {
                stack.push(a.version);
            }
        }
        debug_assert_eq!(stack.last(), Some(&current), "the history ends at the active version");
        stack.pop();
        let Some(&previous) = stack.last() else {
            return Err(RegistryError::NothingToRollBack(purpose.into()));
        };
        Self::activate(&mut index, purpose, previous, "rollback", by);
        self.write_index(&index)?;
        Ok(index.history.last().cloned().expect("activate just pushed an entry"))
    }

    /// Every registered version, oldest first, with the active version per purpose.
    pub fn list(&self) -> Result<(Vec<ModelEntry>, BTreeMap<String, u32>), RegistryError> {
        let index = self.read_index()?;
        Ok((index.entries, index.active))
    }

    /// Every promotion and roll-back, oldest first.
    pub fn history(&self) -> Result<Vec<Activation>, RegistryError> {
        Ok(self.read_index()?.history)
    }

    /// The active model of `purpose`, loaded.
    pub fn active(&self, purpose: &str) -> Result<(ModelEntry, TabularModel), RegistryError> {
        let index = self.read_index()?;
        let version = *index.active.get(purpose).ok_or_else(|| RegistryError::NoActive(purpose.into()))?;
        self.load(&index, purpose, version)
    }

    /// One version of `purpose`, loaded.
    pub fn get(&self, purpose: &str, version: u32) -> Result<(ModelEntry, TabularModel), RegistryError> {
        self.load(&self.read_index()?, purpose, version)
    }

    fn load(&self, index: &Index, purpose: &str, version: u32) -> Result<(ModelEntry, TabularModel), RegistryError> {
        let entry = index.entries.iter().find(|e| e.purpose == purpose && e.version == version).cloned().ok_or_else(|| {
            RegistryError::NoVersion {
                purpose: purpose.into(),
                version,
                registered: index
                    .entries
                    .iter()
                    .filter(|e| e.purpose == purpose)
                    .map(|e| e.version.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })?;
        let model = TabularModel::load(&self.dir.join(&entry.file))?;
        Ok((entry, model))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gbdt::GbdtParams;
    use crate::table::{LabelSpec, ReadOptions};
    use crate::tabular::{Algo, Learner};

    fn model() -> TabularModel {
        let mut csv = String::from("x,y\n");
        for i in 0..200 {
            csv.push_str(&format!("{i},{}\n", u8::from(i % 3 == 0)));
        }
        let options = ReadOptions { label: Some(LabelSpec { column: "y".into(), positive: None }), ..Default::default() };
        TabularModel::train(
            csv.as_bytes(),
            &options,
            &Algo::Gbdt(GbdtParams { rounds_max: 5, early_stopping_rounds: 0, ..Default::default() }),
        )
        .unwrap()
    }

    fn reg(activate: bool) -> Registration {
        Registration {
            purpose: "churn".into(),
            by: "analyst".into(),
            training: serde_json::json!({"as_of": "2026-03-01"}),
            metrics: serde_json::json!({"auc": 0.8}),
            activate,
        }
    }

    #[test]
    fn versions_promote_and_roll_back_with_a_recorded_history() {
        let dir = tempfile::tempdir().unwrap();
        let registry = ModelRegistry::open(dir.path()).unwrap();
        let m = model();
        assert!(matches!(registry.active("churn"), Err(RegistryError::NoActive(_))));
        assert_eq!(registry.register(&m, &reg(true)).unwrap().version, 1);
        assert_eq!(registry.register(&m, &reg(false)).unwrap().version, 2, "a shadow version");
        assert_eq!(registry.active("churn").unwrap().0.version, 1, "registering without activation changes nothing");
        registry.promote("churn", 2, "lead").unwrap();
        assert_eq!(registry.active("churn").unwrap().0.version, 2);
        let back = registry.rollback("churn", "lead").unwrap();
        assert_eq!((back.version, back.previous, back.action.as_str()), (1, Some(2), "rollback"));
        assert_eq!(registry.active("churn").unwrap().0.version, 1);
        // Back at the first version there is nothing earlier; a third version promoted twice
        // over rolls back step by step.
        assert!(matches!(registry.rollback("churn", "lead"), Err(RegistryError::NothingToRollBack(_))));
        registry.register(&m, &reg(true)).unwrap();
        registry.promote("churn", 2, "lead").unwrap();
        assert_eq!(registry.rollback("churn", "lead").unwrap().version, 3);
        assert_eq!(registry.rollback("churn", "lead").unwrap().version, 1);
        registry.promote("churn", 1, "lead").unwrap();
        registry.rollback("churn", "lead").unwrap();
        // Reopened from disk, everything is still there, and the loaded model scores as before.
        let reopened = ModelRegistry::open(dir.path()).unwrap();
        let (entries, active) = reopened.list().unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(active["churn"], 1);
        assert_eq!(reopened.history().unwrap().len(), 9);
        match (&reopened.get("churn", 2).unwrap().1.learner, &m.learner) {
            (Learner::Gbdt { model: a, .. }, Learner::Gbdt { model: b, .. }) => assert_eq!(a, b, "the trees load bit-for-bit"),
            _ => panic!("the learner kind changed"),
        }
    }

    #[test]
    fn bad_purposes_versions_and_rollbacks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let registry = ModelRegistry::open(dir.path()).unwrap();
        let m = model();
        let err = registry.register(&m, &Registration { purpose: "Churn Model".into(), ..reg(true) }).unwrap_err();
        assert!(matches!(err, RegistryError::Purpose(_)), "{err}");
        registry.register(&m, &reg(true)).unwrap();
        assert_eq!(registry.promote("churn", 7, "x").unwrap_err().to_string(), "no version 7 of purpose 'churn'; registered: 1");
        assert!(matches!(registry.rollback("churn", "x"), Err(RegistryError::NothingToRollBack(_))));
        assert!(matches!(registry.rollback("fraud", "x"), Err(RegistryError::NoActive(_))));
        std::fs::write(dir.path().join("index.json"), b"{").unwrap();
        assert!(matches!(registry.list(), Err(RegistryError::Format { .. })));
    }
}
