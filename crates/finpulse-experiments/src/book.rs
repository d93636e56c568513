//! The experiments of a data directory, kept in the one versioned store
//! ([`finpulse_core::versions`], in `<data-dir>/experiments`): every definition, start and
//! stop is a new version of the experiment's record, made under the store's lock and recorded
//! with who and when.
//!
//! Once an experiment has started, its split (variations and weights, traffic share, layer
//! slice) is fixed: assignment is a hash of the key and the user, so a fixed split keeps every
//! user in the same variation through a stop and a restart without storing assignments.
//! Experiments in one layer that are not stopped may not share a slice of it.

use crate::BookError;
use crate::definition::{Experiment, ExperimentDef, Phase, Status};
use finpulse_core::registry::Registry;
use finpulse_core::versions::{Activation, Kind, NoMeta, VersionedStore, VersionsError};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Where experiments are versioned inside a data directory.
pub const EXPERIMENTS_DIR: &str = "experiments";
/// The lock held across a whole change (read the book, check, write), beside the store's own
/// lock on its index: a layer's slices are checked against the experiments as they are when
/// the change is written.
const CHANGE_LOCK_FILE: &str = "CHANGE.LOCK";

const EXPERIMENTS: Kind =
    Kind { noun: "experiment", format: "finpulse-experiments/1", reads_also: &[], no_active_hint: ": define it first", ext: "json" };

impl From<VersionsError> for BookError {
    fn from(e: VersionsError) -> Self {
        match e {
            VersionsError::Name { .. } => BookError::field("key", e.to_string()),
            VersionsError::NoActive { name, .. } | VersionsError::NoVersion { name, .. } => BookError::NotFound(name),
            VersionsError::NothingToRollBack { .. } => BookError::State(e.to_string()),
            VersionsError::Io { .. } | VersionsError::Format { .. } => BookError::Store(e.to_string()),
        }
    }
}

/// The experiments of one data directory.
#[derive(Debug, Clone)]
pub struct ExperimentBook {
    dir: PathBuf,
    experiments: BTreeMap<String, Experiment>,
}

impl ExperimentBook {
    fn store(&self) -> VersionedStore<NoMeta> {
        VersionedStore::new(&self.dir, EXPERIMENTS)
    }

    /// The experiments stored under `data_dir` (none when there are none).
    pub fn load(data_dir: &Path) -> Result<Self, BookError> {
        let dir = data_dir.join(EXPERIMENTS_DIR);
        let store: VersionedStore<NoMeta> = VersionedStore::new(&dir, EXPERIMENTS);
        let mut experiments = BTreeMap::new();
        for (version, bytes) in store.active_all()? {
            let e: Experiment =
                serde_json::from_slice(&bytes).map_err(|e| BookError::Store(format!("{}: {e}", dir.join(&version.file).display())))?;
            experiments.insert(version.name, e);
        }
        Ok(Self { dir, experiments })
    }

    /// When the store last changed (its index's modification time), for caches of it.
    pub fn stamp(data_dir: &Path) -> Option<std::time::SystemTime> {
        VersionedStore::<NoMeta>::new(data_dir.join(EXPERIMENTS_DIR), EXPERIMENTS).stamp()
    }

    /// Every experiment by key.
    pub fn experiments(&self) -> &BTreeMap<String, Experiment> {
        &self.experiments
    }

    /// One experiment.
    pub fn get(&self, key: &str) -> Result<&Experiment, BookError> {
        self.experiments.get(key).ok_or_else(|| BookError::NotFound(key.to_string()))
    }

    /// Holds the change lock until dropped.
    fn change_lock(&self) -> Result<File, BookError> {
        let io = |e: std::io::Error| BookError::Store(format!("{}: {e}", self.dir.join(CHANGE_LOCK_FILE).display()));
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let file = File::options().create(true).truncate(false).write(true).open(self.dir.join(CHANGE_LOCK_FILE)).map_err(io)?;
        file.lock().map_err(io)?;
        Ok(file)
    }

    /// Re-reads the book under the change lock, so a change is checked against what is
    /// stored now, not what this copy loaded.
    fn reload(&mut self) -> Result<(), BookError> {
        let dir = self.dir.parent().map(Path::to_path_buf).unwrap_or_default();
        *self = Self::load(&dir)?;
        Ok(())
    }

    /// Checks and stores a definition, new or replacing a draft's. A started experiment keeps
    /// its status and phases, and its split may not change (the field is named).
    pub fn define(&mut self, def: ExperimentDef, registry: &Registry, segments: &[&str], by: &str) -> Result<&Experiment, BookError> {
        def.check(registry, segments)?;
        let _lock = self.change_lock()?;
        self.reload()?;
        let experiment = match self.experiments.get(&def.key) {
            Some(earlier) if earlier.has_started() => {
                if let Some(field) = def.split_change(&earlier.definition) {
                    return Err(BookError::field(
                        field,
                        format!(
                            "experiment '{}' has started: its split is fixed so users keep their variations (define a new experiment to change it)",
                            def.key
                        ),
                    ));
                }
                Experiment { definition: def, status: earlier.status, phases: earlier.phases.clone() }
            }
            _ => Experiment { definition: def, status: Status::Draft, phases: Vec::new() },
        };
        if experiment.status != Status::Stopped {
            self.check_layer(&experiment)?;
        }
        self.put(experiment, by)
    }

    /// Starts (or restarts) an experiment at `now_us`.
    pub fn start(&mut self, key: &str, now_us: i64, by: &str) -> Result<&Experiment, BookError> {
        let _lock = self.change_lock()?;
        self.reload()?;
        let mut experiment = self.get(key)?.clone();
        if experiment.status == Status::Running {
            return Err(BookError::State(format!("experiment '{key}' is already running")));
        }
        self.check_layer(&experiment)?;
        experiment.status = Status::Running;
        experiment.phases.push(Phase { start_us: now_us, stop_us: None });
        self.put(experiment, by)
    }

    /// Stops a running experiment at `now_us`: no user is assigned until it restarts.
    pub fn stop(&mut self, key: &str, now_us: i64, by: &str) -> Result<&Experiment, BookError> {
        let _lock = self.change_lock()?;
        self.reload()?;
        let mut experiment = self.get(key)?.clone();
        if experiment.status != Status::Running {
            return Err(BookError::State(format!("experiment '{key}' is {}, not running", experiment.status.name())));
        }
        experiment.status = Status::Stopped;
        if let Some(phase) = experiment.phases.last_mut() {
            phase.stop_us = Some(now_us);
        }
        self.put(experiment, by)
    }

    /// Every change of the experiments, oldest first.
    pub fn history(&self) -> Result<Vec<Activation>, BookError> {
        Ok(self.store().history()?)
    }

    /// Refuses `experiment` when its layer slice overlaps that of another experiment of the
    /// layer that is not stopped.
    fn check_layer(&self, experiment: &Experiment) -> Result<(), BookError> {
        let Some(slice) = &experiment.definition.layer else { return Ok(()) };
        let clash = self.experiments.values().find(|other| {
            other.definition.key != experiment.definition.key
                && other.status != Status::Stopped
                && other.definition.layer.as_ref().is_some_and(|o| o.overlaps(slice))
        });
        match clash {
            Some(other) => {
                let o = other.definition.layer.as_ref().expect("found by its layer");
                Err(BookError::LayerOverlap {
                    layer: slice.name.clone(),
                    first: experiment.definition.key.clone(),
                    first_range: format!("[{}, {})", slice.start, slice.end),
                    second: other.definition.key.clone(),
                    second_range: format!("[{}, {})", o.start, o.end),
                })
            }
            None => Ok(()),
        }
    }

    fn put(&mut self, experiment: Experiment, by: &str) -> Result<&Experiment, BookError> {
        let bytes = serde_json::to_vec_pretty(&experiment).map_err(|e| BookError::Store(e.to_string()))?;
        let key = experiment.definition.key.clone();
        self.store().publish(&key, &bytes, NoMeta {}, by, true)?;
        self.experiments.insert(key.clone(), experiment);
        Ok(&self.experiments[&key])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::{AnalysisSettings, LayerSlot, Targeting, VariationDef};

    fn def(key: &str, layer: Option<(f64, f64)>) -> ExperimentDef {
        ExperimentDef {
            key: key.into(),
            description: String::new(),
            variations: vec![VariationDef { key: "control".into(), weight: 0.5 }, VariationDef { key: "treatment".into(), weight: 0.5 }],
            traffic_share: 1.0,
            targeting: Targeting::default(),
            layer: layer.map(|(start, end)| LayerSlot { name: "home".into(), start, end }),
            metrics: Vec::new(),
            analysis: AnalysisSettings::default(),
        }
    }

    #[test]
    fn definitions_starts_and_stops_are_versions_with_who_did_them() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::builtin();
        let mut book = ExperimentBook::load(dir.path()).unwrap();
        book.define(def("e1", None), &registry, &[], "ana").unwrap();
        book.start("e1", 1_000, "ana").unwrap();
        book.stop("e1", 2_000, "bo").unwrap();
        book.start("e1", 3_000, "bo").unwrap();
        let reread = ExperimentBook::load(dir.path()).unwrap();
        let e = reread.get("e1").unwrap();
        assert_eq!(e.status, Status::Running);
        assert_eq!(e.phases, [Phase { start_us: 1_000, stop_us: Some(2_000) }, Phase { start_us: 3_000, stop_us: None }]);
        let history = reread.history().unwrap();
        assert_eq!(history.iter().map(|a| (a.version, a.by.as_str())).collect::<Vec<_>>(), [(1, "ana"), (2, "ana"), (3, "bo"), (4, "bo")]);
        assert!(matches!(book.start("e1", 4_000, "bo"), Err(BookError::State(_))));
        assert!(matches!(book.stop("nope", 4_000, "bo"), Err(BookError::NotFound(_))));
    }

    #[test]
    fn a_started_experiments_split_is_fixed() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::builtin();
        let mut book = ExperimentBook::load(dir.path()).unwrap();
        book.define(def("e1", None), &registry, &[], "ana").unwrap();
        let mut changed = def("e1", None);
        changed.variations[0].weight = 0.3;
        changed.variations[1].weight = 0.7;
        // A draft may change.
        book.define(changed.clone(), &registry, &[], "ana").unwrap();
        book.start("e1", 1, "ana").unwrap();
        let err = book.define(def("e1", None), &registry, &[], "ana").unwrap_err().to_string();
        assert!(err.starts_with("variations: experiment 'e1' has started"), "{err}");
        changed.description = "a note".into();
        assert_eq!(book.define(changed, &registry, &[], "ana").unwrap().status, Status::Running);
    }

    #[test]
    fn overlapping_slices_of_a_layer_are_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::builtin();
        let mut book = ExperimentBook::load(dir.path()).unwrap();
        book.define(def("a", Some((0.0, 0.5))), &registry, &[], "ana").unwrap();
        book.define(def("b", Some((0.5, 1.0))), &registry, &[], "ana").unwrap();
        let err = book.define(def("c", Some((0.4, 0.6))), &registry, &[], "ana").unwrap_err().to_string();
        assert_eq!(err, "layer 'home': c [0.4, 0.6) overlaps a [0, 0.5)");
        // A stopped experiment gives its slice back; restarting it then clashes.
        book.start("a", 1, "ana").unwrap();
        book.stop("a", 2, "ana").unwrap();
        book.define(def("c", Some((0.0, 0.5))), &registry, &[], "ana").unwrap();
        let err = book.start("a", 3, "ana").unwrap_err().to_string();
        assert_eq!(err, "layer 'home': a [0, 0.5) overlaps c [0, 0.5)");
    }
}
