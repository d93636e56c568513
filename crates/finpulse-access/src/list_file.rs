//! A JSON list in one file of the access directory — keys, users, approval requests — read
//! whole and rewritten durably, under the directory's one OS lock so the server and CLI
//! commands change it in turn.

use crate::keys::{KeysError, io_err};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// The access directory's lock file, shared by every list in it.
const LOCK_FILE: &str = "LOCK";

/// One list file.
pub(crate) struct ListFile {
    dir: PathBuf,
    name: &'static str,
}

impl ListFile {
    /// The list `name` in `dir`.
    pub(crate) fn new(dir: &Path, name: &'static str) -> Self {
        Self { dir: dir.to_path_buf(), name }
    }

    /// Its path.
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join(self.name)
    }

    /// Holds the directory's lock until dropped.
    pub(crate) fn lock(&self) -> Result<File, KeysError> {
        std::fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io_err(&path))?;
        file.lock().map_err(io_err(&path))?;
        Ok(file)
    }

    /// The list; empty when the file does not exist yet.
    pub(crate) fn read<T: DeserializeOwned>(&self) -> Result<Vec<T>, KeysError> {
        let path = self.path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| KeysError::Damaged { path, why: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Replaces the list, durably (call it holding [`ListFile::lock`]).
    pub(crate) fn write<T: Serialize>(&self, items: &[T]) -> Result<(), KeysError> {
        let path = self.path();
        let json = serde_json::to_vec_pretty(items).expect("access records serialise");
        finpulse_core::durable::write_file(&path, &json).map_err(io_err(&path))
    }
}
