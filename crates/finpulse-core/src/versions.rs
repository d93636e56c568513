//! One versioned, locked store for the artefacts people change while finpulse runs: models,
//! rulesets, segments and goals. Each artefact has a name and numbered versions, never
//! overwritten; one version per name is active; every publication, promotion, roll-back and
//! removal is recorded with who did it and when.
//!
//! On disk, in the store's directory: one file per version (`NAME-vN.EXT`) and `index.json`
//! (the versions with their metadata, the active version per name, the history). A writer holds
//! the directory's `LOCK` (an OS file lock) across read–modify–write of the index, so a CLI
//! writing beside a running server never loses the other's change; files are written durably
//! (fsync'd, then renamed into place), the version file before the index that names it.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// The index file's name.
pub const INDEX_FILE: &str = "index.json";
/// The writers' lock file's name.
pub const LOCK_FILE: &str = "LOCK";
/// Longest artefact name, bytes.
pub const NAME_BYTES_MAX: usize = 64;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VersionsError {
    /// File I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The index is not one this build reads.
    #[error("{path}: not a readable index ({detail})")]
    Format {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// A name that is empty, too long, or has characters other than letters, digits, `_`, `-`.
    #[error("{kind} name '{name}' must be 1 to {NAME_BYTES_MAX} ASCII letters, digits, '_' or '-'")]
    Name {
        /// What is named (`model purpose`, `segment`, …).
        kind: &'static str,
        /// The name given.
        name: String,
    },
    /// No such version.
    #[error("no version {version} of {kind} '{name}'; stored: {stored}")]
    NoVersion {
        /// What is named.
        kind: &'static str,
        /// The name.
        name: String,
        /// The version asked for.
        version: u32,
        /// Versions that exist.
        stored: String,
    },
    /// Nothing is active under the name.
    #[error("no active {kind} '{name}'{hint}")]
    NoActive {
        /// What is named.
        kind: &'static str,
        /// The name.
        name: String,
        /// What to do about it, for this kind (may be empty).
        hint: &'static str,
    },
    /// A roll-back with no earlier active version to return to.
    #[error("{kind} '{name}' has no earlier version to roll back to")]
    NothingToRollBack {
        /// What is named.
        kind: &'static str,
        /// The name.
        name: String,
    },
}

/// One stored version; `meta` is what the kind of artefact records beside it (a model's
/// algorithm and metrics, a ruleset's rule count).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Version<M> {
    /// The artefact's name (a model's purpose, a segment's name).
    #[serde(alias = "purpose")]
    pub name: String,
    /// 1, 2, … per name.
    pub version: u32,
    /// Seconds since the Unix epoch when it was stored.
    pub created_unix_secs: u64,
    /// Who stored it.
    pub created_by: String,
    /// Its file, relative to the store's directory.
    pub file: String,
    /// What its kind records beside it.
    #[serde(flatten)]
    pub meta: M,
}

/// A stored version with its content.
pub type Stored<M> = (Version<M>, Vec<u8>);

/// Every stored version, oldest first, and the active version per name.
pub type Listing<M> = (Vec<Version<M>>, BTreeMap<String, u32>);

/// What changed the active version.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A new version was stored and made active.
    Publish,
    /// A stored version was made active.
    Promote,
    /// The version active before the current one was made active again.
    Rollback,
    /// The name was removed: nothing is active under it (its versions stay).
    Remove,
}

impl Action {
    /// As written in the index and shown (`publish`, `promote`, `rollback`, `remove`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Promote => "promote",
            Self::Rollback => "rollback",
            Self::Remove => "remove",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One change of the active version.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Activation {
    /// The artefact's name.
    #[serde(alias = "purpose")]
    pub name: String,
    /// The version made active (for a removal: the version that was active).
    pub version: u32,
    /// The version active before.
    pub previous: Option<u32>,
    /// What happened.
    pub action: Action,
    /// Who did it.
    pub by: String,
    /// When, in seconds since the Unix epoch.
    pub at_unix_secs: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(bound(deserialize = "M: DeserializeOwned"))]
struct Index<M> {
    format: String,
    entries: Vec<Version<M>>,
    active: BTreeMap<String, u32>,
    history: Vec<Activation>,
}

/// A kind of artefact: where its store lives and how its files are named.
#[derive(Clone, Copy, Debug)]
pub struct Kind {
    /// What a name names, for messages (`model purpose`, `segment`, `goal`, `ruleset`).
    pub noun: &'static str,
    /// The index's format tag.
    pub format: &'static str,
    /// Earlier format tags this build still reads (the index is rewritten in `format` on the
    /// next change).
    pub reads_also: &'static [&'static str],
    /// Appended to "no active …", saying how to get one (`: train one`), or empty.
    pub no_active_hint: &'static str,
    /// The version files' extension (`json`, `toml`).
    pub ext: &'static str,
}

/// A versioned store of one kind of artefact in a directory.
pub struct VersionedStore<M> {
    dir: PathBuf,
    kind: Kind,
    meta: PhantomData<M>,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl<M: Serialize + DeserializeOwned + Clone> VersionedStore<M> {
    /// The store in `dir` (created on the first write).
    pub fn new(dir: impl Into<PathBuf>, kind: Kind) -> Self {
        Self { dir: dir.into(), kind, meta: PhantomData }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io(&self, name: &str) -> impl Fn(std::io::Error) -> VersionsError + '_ {
        let path = self.dir.join(name);
        move |source| VersionsError::Io { path: path.clone(), source }
    }

    /// Checks a name: 1 to [`NAME_BYTES_MAX`] ASCII letters, digits, `_` or `-` (it names files).
    pub fn check_name(&self, name: &str) -> Result<(), VersionsError> {
        let ok =
            !name.is_empty() && name.len() <= NAME_BYTES_MAX && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok { Ok(()) } else { Err(VersionsError::Name { kind: self.kind.noun, name: name.to_string() }) }
    }

    /// Holds the writers' lock until dropped.
    fn lock(&self) -> Result<File, VersionsError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| VersionsError::Io { path: self.dir.clone(), source })?;
        let file = File::options().create(true).truncate(false).write(true).open(self.dir.join(LOCK_FILE)).map_err(self.io(LOCK_FILE))?;
        file.lock().map_err(self.io(LOCK_FILE))?;
        Ok(file)
    }

    fn read_index(&self) -> Result<Index<M>, VersionsError> {
        let path = self.dir.join(INDEX_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Index { format: self.kind.format.into(), entries: Vec::new(), active: BTreeMap::new(), history: Vec::new() });
            }
            Err(e) => return Err(self.io(INDEX_FILE)(e)),
        };
        let index: Index<M> =
            serde_json::from_slice(&bytes).map_err(|e| VersionsError::Format { path: path.clone(), detail: e.to_string() })?;
        if index.format != self.kind.format && !self.kind.reads_also.contains(&index.format.as_str()) {
            return Err(VersionsError::Format {
                path,
                detail: format!("format '{}', this build reads '{}'", index.format, self.kind.format),
            });
        }
        Ok(index)
    }

    fn write_index(&self, index: &mut Index<M>) -> Result<(), VersionsError> {
        index.format = self.kind.format.into();
        let json = serde_json::to_vec_pretty(&index).map_err(|e| self.io(INDEX_FILE)(std::io::Error::other(e)))?;
        crate::durable::write_file(&self.dir.join(INDEX_FILE), &json).map_err(self.io(INDEX_FILE))
    }

    fn stored(index: &Index<M>, name: &str) -> String {
        let versions: Vec<String> = index.entries.iter().filter(|e| e.name == name).map(|e| e.version.to_string()).collect();
        if versions.is_empty() { "none".into() } else { versions.join(", ") }
    }

    fn record(index: &mut Index<M>, name: &str, version: u32, action: Action, by: &str) -> Activation {
        let previous = match action {
            Action::Remove => index.active.remove(name),
            _ => index.active.insert(name.to_string(), version),
        };
        let a = Activation { name: name.to_string(), version, previous, action, by: by.to_string(), at_unix_secs: now_secs() };
        index.history.push(a.clone());
        a
    }

    /// Stores `content` as the next version of `name`, with `meta`, and makes it active when
    /// `activate` is set.
    pub fn publish(&self, name: &str, content: &[u8], meta: M, by: &str, activate: bool) -> Result<Version<M>, VersionsError> {
        self.check_name(name)?;
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let version = index.entries.iter().filter(|e| e.name == name).map(|e| e.version).max().unwrap_or(0) + 1;
        let file = format!("{name}-v{version}.{}", self.kind.ext);
        crate::durable::write_file(&self.dir.join(&file), content).map_err(self.io(&file))?;
        let entry = Version { name: name.to_string(), version, created_unix_secs: now_secs(), created_by: by.to_string(), file, meta };
        index.entries.push(entry.clone());
        if activate {
            Self::record(&mut index, name, version, Action::Publish, by);
        }
        self.write_index(&mut index)?;
        Ok(entry)
    }

    /// Makes a stored version of `name` the active one.
    pub fn promote(&self, name: &str, version: u32, by: &str) -> Result<Activation, VersionsError> {
        self.check_name(name)?;
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        if !index.entries.iter().any(|e| e.name == name && e.version == version) {
            return Err(VersionsError::NoVersion { kind: self.kind.noun, name: name.into(), version, stored: Self::stored(&index, name) });
        }
        let a = Self::record(&mut index, name, version, Action::Promote, by);
        self.write_index(&mut index)?;
        Ok(a)
    }

    /// Returns `name` to what was active before the current version: the version before it,
    /// or — after a removal — the version removed.
    pub fn rollback(&self, name: &str, by: &str) -> Result<Activation, VersionsError> {
        self.check_name(name)?;
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let previous = self.rollback_target_in(&index, name)?;
        let a = Self::record(&mut index, name, previous, Action::Rollback, by);
        self.write_index(&mut index)?;
        Ok(a)
    }

    /// The version a roll-back of `name` would make active now.
    pub fn rollback_target(&self, name: &str) -> Result<u32, VersionsError> {
        self.check_name(name)?;
        self.rollback_target_in(&self.read_index()?, name)
    }

    fn rollback_target_in(&self, index: &Index<M>, name: &str) -> Result<u32, VersionsError> {
        // Replay the history as a stack: publish and promote push a version, remove pushes
        // nothing-active, a roll-back pops; so repeated roll-backs walk back through earlier
        // states instead of toggling between two.
        let mut stack: Vec<Option<u32>> = Vec::new();
        for a in index.history.iter().filter(|a| a.name == name) {
            match a.action {
                Action::Rollback => {
                    stack.pop();
                }
                Action::Remove => stack.push(None),
                Action::Publish | Action::Promote => stack.push(Some(a.version)),
            }
        }
        stack.pop();
        match stack.last().copied() {
            Some(Some(previous)) => Ok(previous),
            _ => Err(VersionsError::NothingToRollBack { kind: self.kind.noun, name: name.into() }),
        }
    }

    /// Makes nothing active under `name`; its versions stay, and a roll-back brings the last
    /// one back. False when nothing was active.
    pub fn remove(&self, name: &str, by: &str) -> Result<bool, VersionsError> {
        self.check_name(name)?;
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let Some(&version) = index.active.get(name) else { return Ok(false) };
        Self::record(&mut index, name, version, Action::Remove, by);
        self.write_index(&mut index)?;
        Ok(true)
    }

    /// Every stored version, oldest first, and the active version per name.
    pub fn list(&self) -> Result<Listing<M>, VersionsError> {
        let index = self.read_index()?;
        Ok((index.entries, index.active))
    }

    /// Every change of the active versions, oldest first.
    pub fn history(&self) -> Result<Vec<Activation>, VersionsError> {
        Ok(self.read_index()?.history)
    }

    /// The active version of every name, with its content.
    pub fn active_all(&self) -> Result<Vec<Stored<M>>, VersionsError> {
        let index = self.read_index()?;
        index.active.iter().map(|(name, &v)| self.load(&index, name, v)).collect()
    }

    /// The active version of `name`, with its content.
    pub fn active(&self, name: &str) -> Result<Stored<M>, VersionsError> {
        let index = self.read_index()?;
        let version = *index.active.get(name).ok_or_else(|| VersionsError::NoActive {
            kind: self.kind.noun,
            name: name.into(),
            hint: self.kind.no_active_hint,
        })?;
        self.load(&index, name, version)
    }

    /// One stored version of `name`, with its content.
    pub fn get(&self, name: &str, version: u32) -> Result<Stored<M>, VersionsError> {
        self.load(&self.read_index()?, name, version)
    }

    fn load(&self, index: &Index<M>, name: &str, version: u32) -> Result<Stored<M>, VersionsError> {
        let entry = index.entries.iter().find(|e| e.name == name && e.version == version).cloned().ok_or_else(|| {
            VersionsError::NoVersion { kind: self.kind.noun, name: name.into(), version, stored: Self::stored(index, name) }
        })?;
        let bytes = std::fs::read(self.dir.join(&entry.file)).map_err(self.io(&entry.file))?;
        Ok((entry, bytes))
    }

    /// When the index last changed, to notice a change made by another process.
    pub fn stamp(&self) -> Option<std::time::SystemTime> {
        std::fs::metadata(self.dir.join(INDEX_FILE)).and_then(|m| m.modified()).ok()
    }

    /// Adopts files written before this store existed, once: `import` lists, oldest first,
    /// each earlier artefact (name, content, meta, who, when, whether active). Runs only when
    /// the store has no index yet; the earlier files are left where they were.
    pub fn adopt(&self, import: impl FnOnce() -> Result<Vec<Adopted<M>>, VersionsError>) -> Result<(), VersionsError> {
        if self.dir.join(INDEX_FILE).exists() {
            return Ok(());
        }
        let _lock = self.lock()?;
        if self.dir.join(INDEX_FILE).exists() {
            return Ok(());
        }
        let mut index = self.read_index()?;
        for a in import()? {
            self.check_name(&a.name)?;
            let version = index.entries.iter().filter(|e| e.name == a.name).map(|e| e.version).max().unwrap_or(0) + 1;
            let file = format!("{}-v{version}.{}", a.name, self.kind.ext);
            crate::durable::write_file(&self.dir.join(&file), &a.content).map_err(self.io(&file))?;
            index.entries.push(Version {
                name: a.name.clone(),
                version,
                created_unix_secs: a.at_unix_secs,
                created_by: a.by.clone(),
                file,
                meta: a.meta,
            });
            if a.active {
                let previous = index.active.insert(a.name.clone(), version);
                index.history.push(Activation {
                    name: a.name,
                    version,
                    previous,
                    action: Action::Publish,
                    by: a.by,
                    at_unix_secs: a.at_unix_secs,
                });
            }
        }
        self.write_index(&mut index)
    }
}

/// An artefact written before the store existed, to adopt as a version.
#[derive(Clone, Debug)]
pub struct Adopted<M> {
    /// Its name.
    pub name: String,
    /// Its content.
    pub content: Vec<u8>,
    /// What its kind records beside it.
    pub meta: M,
    /// Who wrote it (when unknown: `adopted`).
    pub by: String,
    /// When (seconds since the Unix epoch).
    pub at_unix_secs: u64,
    /// Whether it is the active version of its name.
    pub active: bool,
}

/// No metadata beside a version.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct NoMeta {}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: Kind =
        Kind { noun: "segment", format: "test-versions/2", reads_also: &["test-versions/1"], no_active_hint: "", ext: "json" };

    fn store(dir: &Path) -> VersionedStore<NoMeta> {
        VersionedStore::new(dir.join("s"), KIND)
    }

    fn content(s: &VersionedStore<NoMeta>, name: &str) -> String {
        String::from_utf8(s.active(name).unwrap().1).unwrap()
    }

    #[test]
    fn versions_publish_promote_roll_back_and_remove_with_a_history() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        for text in ["one", "two", "three"] {
            s.publish("a", text.as_bytes(), NoMeta {}, "ops", true).unwrap();
        }
        s.publish("b", b"other", NoMeta {}, "ops", false).unwrap();
        assert_eq!(content(&s, "a"), "three");
        assert!(matches!(s.active("b"), Err(VersionsError::NoActive { .. })), "stored without activating");
        // Roll-backs walk back: three → two → one, then there is nothing before one.
        assert_eq!(s.rollback("a", "ops").unwrap().version, 2);
        assert_eq!(s.rollback("a", "ops").unwrap().version, 1);
        assert!(matches!(s.rollback("a", "ops"), Err(VersionsError::NothingToRollBack { .. })));
        s.promote("a", 3, "lead").unwrap();
        assert_eq!(content(&s, "a"), "three");
        // A removal keeps the versions; a roll-back brings the removed one back.
        assert!(s.remove("a", "ops").unwrap());
        assert!(!s.remove("a", "ops").unwrap(), "nothing active any more");
        assert!(s.active_all().unwrap().is_empty());
        assert_eq!(s.rollback("a", "ops").unwrap().version, 3);
        assert_eq!(content(&s, "a"), "three");
        assert_eq!(String::from_utf8(s.get("a", 1).unwrap().1).unwrap(), "one");
        let actions: Vec<(Action, u32)> = s.history().unwrap().iter().map(|a| (a.action, a.version)).collect();
        use Action::*;
        assert_eq!(
            actions,
            [(Publish, 1), (Publish, 2), (Publish, 3), (Rollback, 2), (Rollback, 1), (Promote, 3), (Remove, 3), (Rollback, 3)]
        );
    }

    #[test]
    fn bad_names_unknown_versions_and_foreign_indexes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        assert!(matches!(s.publish("Bad Name", b"x", NoMeta {}, "ops", true), Err(VersionsError::Name { .. })));
        assert!(matches!(s.publish(&"x".repeat(NAME_BYTES_MAX + 1), b"x", NoMeta {}, "ops", true), Err(VersionsError::Name { .. })));
        s.publish("a", b"x", NoMeta {}, "ops", true).unwrap();
        let e = s.promote("a", 7, "ops").unwrap_err().to_string();
        assert_eq!(e, "no version 7 of segment 'a'; stored: 1");
        std::fs::write(s.dir().join(INDEX_FILE), r#"{"format": "other/1", "entries": [], "active": {}, "history": []}"#).unwrap();
        assert!(s.list().unwrap_err().to_string().contains("format 'other/1'"));
        // An earlier format this build still reads, with its older key names.
        std::fs::write(
            s.dir().join(INDEX_FILE),
            r#"{"format": "test-versions/1", "entries": [{"purpose": "a", "version": 1, "created_unix_secs": 5, "created_by": "ops", "file": "a-v1.json"}],
                "active": {"a": 1}, "history": [{"purpose": "a", "version": 1, "previous": null, "action": "promote", "by": "ops", "at_unix_secs": 5}]}"#,
        )
        .unwrap();
        assert_eq!(content(&s, "a"), "x");
        s.publish("a", b"y", NoMeta {}, "ops", true).unwrap();
        let index = std::fs::read_to_string(s.dir().join(INDEX_FILE)).unwrap();
        assert!(index.contains("\"format\": \"test-versions/2\"") && index.contains("\"name\": \"a\""), "{index}");
    }

    #[test]
    fn writers_in_two_threads_lose_no_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let s = store(&path);
                    for i in 0..10 {
                        s.publish(&format!("n{}", i % 3), format!("{w}-{i}").as_bytes(), NoMeta {}, "ops", true).unwrap();
                    }
                })
            })
            .collect();
        writers.into_iter().for_each(|w| w.join().unwrap());
        let (entries, active) = store(&path).list().unwrap();
        assert_eq!(entries.len(), 40, "every publication kept");
        assert_eq!(active.len(), 3);
        for name in ["n0", "n1", "n2"] {
            let mut versions: Vec<u32> = entries.iter().filter(|e| e.name == name).map(|e| e.version).collect();
            versions.sort_unstable();
            assert_eq!(versions, (1..=versions.len() as u32).collect::<Vec<_>>(), "{name}: numbered without gaps or repeats");
        }
    }

    #[test]
    fn earlier_files_are_adopted_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let adopted = |name: &str, active: bool| Adopted {
            name: name.into(),
            content: name.as_bytes().to_vec(),
            meta: NoMeta {},
            by: "adopted".into(),
            at_unix_secs: 1,
            active,
        };
        s.adopt(|| Ok(vec![adopted("a", true), adopted("b", false)])).unwrap();
        s.adopt(|| panic!("adopted twice")).unwrap();
        assert_eq!(content(&s, "a"), "a");
        assert_eq!(s.list().unwrap().0.len(), 2);
    }
}
