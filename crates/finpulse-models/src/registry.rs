//! The model registry: every trained model is kept with its purpose (e.g. `churn`), version,
//! training range, features, parameters and metrics; one version per purpose is active, and
//! promotions and roll-backs are recorded with who made them and when. It is the models' kind
//! of [`finpulse_core::versions::VersionedStore`]: `index.json` and one model file per version,
//! `<purpose>-v<version>.json`, written durably under the store's lock, so the CLI and a server
//! can share it.

use crate::tabular::{ModelError, TabularModel};
use finpulse_core::versions::{Kind, Version, VersionedStore, VersionsError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub use finpulse_core::versions::Activation;

/// The registry's folder inside a data directory.
pub const REGISTRY_DIR: &str = "models";
/// The index file's format.
pub const INDEX_FORMAT: &str = "finpulse-model-registry/2";

/// Models in the versioned store; the first format's index (keys `purpose`, actions as text)
/// is still read.
const MODELS: Kind = Kind {
    noun: "model purpose",
    format: INDEX_FORMAT,
    reads_also: &["finpulse-model-registry/1"],
    no_active_hint: ": train one, or promote a registered version",
    ext: "json",
};

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The versioned store: I/O, its index, a purpose name, a version, a roll-back.
    #[error(transparent)]
    Store(#[from] VersionsError),
    /// A stored model file.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// What the registry records beside each model version.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelMeta {
    /// `gbdt` or `logistic`.
    pub algo: String,
    /// What it was trained on: data range, as-of dates, label definition.
    pub training: serde_json::Value,
    /// Feature names, in model order.
    pub features: Vec<String>,
    /// Training settings.
    pub params: serde_json::Value,
    /// Quality measured at training time (validation and in-sample).
    pub metrics: serde_json::Value,
}

/// One registered model version (its `name` is the purpose).
pub type ModelEntry = Version<ModelMeta>;

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
    store: VersionedStore<ModelMeta>,
}

impl ModelRegistry {
    /// The registry in `dir` (created on the first registration).
    pub fn open(dir: &Path) -> Result<Self, RegistryError> {
        Ok(Self { store: VersionedStore::new(dir, MODELS) })
    }

    /// The registry of a data directory (its [`REGISTRY_DIR`] folder).
    pub fn in_data_dir(data_dir: &Path) -> Result<Self, RegistryError> {
        Self::open(&data_dir.join(REGISTRY_DIR))
    }

    /// Stores `model` as the next version of `reg.purpose`, and activates it if asked.
    pub fn register(&self, model: &TabularModel, reg: &Registration) -> Result<ModelEntry, RegistryError> {
        self.store.check_name(&reg.purpose)?;
        let json = serde_json::to_vec(model).map_err(|e| ModelError::Format { path: reg.purpose.clone(), detail: e.to_string() })?;
        let (algo, params) = model.learner_summary();
        let meta = ModelMeta {
            algo,
            training: reg.training.clone(),
            features: model.features.iter().map(|f| f.name.clone()).collect(),
            params,
            metrics: reg.metrics.clone(),
        };
        Ok(self.store.publish(&reg.purpose, &json, meta, &reg.by, reg.activate)?)
    }

    /// Makes `version` the active model of `purpose`.
    pub fn promote(&self, purpose: &str, version: u32, by: &str) -> Result<Activation, RegistryError> {
        Ok(self.store.promote(purpose, version, by)?)
    }

    /// Returns `purpose` to the version that was active before the current one.
    pub fn rollback(&self, purpose: &str, by: &str) -> Result<Activation, RegistryError> {
        Ok(self.store.rollback(purpose, by)?)
    }

    /// The version a roll-back of `purpose` would make active now.
    pub fn rollback_target(&self, purpose: &str) -> Result<u32, RegistryError> {
        Ok(self.store.rollback_target(purpose)?)
    }

    /// Every registered version, oldest first, with the active version per purpose.
    pub fn list(&self) -> Result<(Vec<ModelEntry>, BTreeMap<String, u32>), RegistryError> {
        Ok(self.store.list()?)
    }

    /// Every promotion and roll-back, oldest first.
    pub fn history(&self) -> Result<Vec<Activation>, RegistryError> {
        Ok(self.store.history()?)
    }

    /// The active model of `purpose`, loaded.
    pub fn active(&self, purpose: &str) -> Result<(ModelEntry, TabularModel), RegistryError> {
        let (entry, bytes) = self.store.active(purpose)?;
        let model = TabularModel::from_json(&bytes, &entry.file)?;
        Ok((entry, model))
    }

    /// One version of `purpose`, loaded.
    pub fn get(&self, purpose: &str, version: u32) -> Result<(ModelEntry, TabularModel), RegistryError> {
        let (entry, bytes) = self.store.get(purpose, version)?;
        let model = TabularModel::from_json(&bytes, &entry.file)?;
        Ok((entry, model))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gbdt::GbdtParams;
    use crate::table::{LabelSpec, ReadOptions};
    use crate::tabular::{Algo, Learner};
    use finpulse_core::versions::VersionsError;

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
        assert!(matches!(registry.active("churn"), Err(RegistryError::Store(VersionsError::NoActive { .. }))));
        assert_eq!(registry.register(&m, &reg(true)).unwrap().version, 1);
        assert_eq!(registry.register(&m, &reg(false)).unwrap().version, 2, "a shadow version");
        assert_eq!(registry.active("churn").unwrap().0.version, 1, "registering without activation changes nothing");
        registry.promote("churn", 2, "lead").unwrap();
        assert_eq!(registry.active("churn").unwrap().0.version, 2);
        let back = registry.rollback("churn", "lead").unwrap();
        assert_eq!((back.version, back.previous, back.action), (1, Some(2), finpulse_core::versions::Action::Rollback));
        assert_eq!(registry.active("churn").unwrap().0.version, 1);
        // Back at the first version there is nothing earlier; a third version promoted twice
        // over rolls back step by step.
        assert!(matches!(registry.rollback("churn", "lead"), Err(RegistryError::Store(VersionsError::NothingToRollBack { .. }))));
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
        assert!(matches!(err, RegistryError::Store(VersionsError::Name { .. })), "{err}");
        registry.register(&m, &reg(true)).unwrap();
        assert_eq!(registry.promote("churn", 7, "x").unwrap_err().to_string(), "no version 7 of model purpose 'churn'; stored: 1");
        assert!(matches!(registry.rollback("churn", "x"), Err(RegistryError::Store(VersionsError::NothingToRollBack { .. }))));
        assert!(matches!(registry.rollback("fraud", "x"), Err(RegistryError::Store(VersionsError::NothingToRollBack { .. }))));
        std::fs::write(dir.path().join("index.json"), b"{").unwrap();
        assert!(matches!(registry.list(), Err(RegistryError::Store(VersionsError::Format { .. }))));
    }

    #[test]
    fn a_registry_written_in_the_first_index_format_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let m = model();
        std::fs::write(dir.path().join("churn-v1.json"), serde_json::to_vec(&m).unwrap()).unwrap();
        std::fs::write(
            dir.path().join("index.json"),
            r#"{"format": "finpulse-model-registry/1",
                "entries": [{"purpose": "churn", "version": 1, "created_unix_secs": 7, "created_by": "analyst", "algo": "gbdt",
                             "file": "churn-v1.json", "training": {}, "features": ["x"], "params": {}, "metrics": {"auc": 0.8}}],
                "active": {"churn": 1},
                "history": [{"purpose": "churn", "version": 1, "previous": null, "action": "promote", "by": "analyst", "at_unix_secs": 7}]}"#,
        )
        .unwrap();
        let registry = ModelRegistry::open(dir.path()).unwrap();
        let (entry, loaded) = registry.active("churn").unwrap();
        assert_eq!((entry.name.as_str(), entry.meta.algo.as_str(), entry.meta.metrics["auc"].as_f64()), ("churn", "gbdt", Some(0.8)));
        assert_eq!(loaded.features.len(), m.features.len());
        assert_eq!(registry.history().unwrap()[0].action, finpulse_core::versions::Action::Promote);
        assert_eq!(registry.register(&m, &reg(true)).unwrap().version, 2, "registering goes on from the adopted versions");
        let index = std::fs::read_to_string(dir.path().join("index.json")).unwrap();
        assert!(index.contains(INDEX_FORMAT), "rewritten in the current format");
    }
}
