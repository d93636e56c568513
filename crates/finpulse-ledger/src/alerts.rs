//! Stored guardrail alerts: `<data-dir>/ledger/alerts/alerts.fpl`, a journal framed like the
//! ledger's (JSON alerts, CRC32C, fsync'd before `record` returns). An alert is stored once per
//! id (period, subject, bound, status), so assessing again raises nothing twice; a delivery
//! step (webhooks) reads what `record` says is new.

use crate::LedgerError;
use crate::journal::{self, Journal};
use crate::profit::Alert;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The alerts' folder inside the ledger folder.
pub const ALERTS_DIR: &str = "alerts";
/// The journal's file name.
pub const ALERTS_FILE: &str = "alerts.fpl";
const MAGIC: &[u8; 8] = b"FPALRT\x00\x01";
/// The longest encoded alert.
pub const ALERT_BYTES_MAX: usize = 4096;

/// Alerts raised so far, in the order raised.
pub struct AlertStore {
    inner: Mutex<Inner>,
    _lock: File,
}

struct Inner {
    journal: Journal,
    alerts: Vec<Alert>,
    ids: HashSet<String>,
}

impl AlertStore {
    /// Opens the store in `dir` (creating it), reading back every alert.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, LedgerError> {
        let dir: PathBuf = dir.into();
        std::fs::create_dir_all(&dir).map_err(LedgerError::io(&dir))?;
        let lock = journal::lock_dir(&dir)?;
        let path = dir.join(ALERTS_FILE);
        let (mut alerts, mut ids) = (Vec::new(), HashSet::new());
        let journal = Journal::open(&path, MAGIC, ALERT_BYTES_MAX, |offset, payload| {
            let alert: Alert = serde_json::from_slice(payload).map_err(|e| LedgerError::Corrupt {
                path: path.clone(),
                offset,
                why: format!("not an alert: {e}"),
            })?;
            ids.insert(alert.id.clone());
            alerts.push(alert);
            Ok(())
        })?;
        Ok(Self { inner: Mutex::new(Inner { journal, alerts, ids }), _lock: lock })
    }

    /// The store of a ledger folder.
    pub fn of_ledger(ledger_dir: &Path) -> Result<Self, LedgerError> {
        Self::open(ledger_dir.join(ALERTS_DIR))
    }

    /// Stores the alerts not stored before (by id) with one fsync; returns those.
    pub fn record(&self, alerts: &[Alert]) -> Result<Vec<Alert>, LedgerError> {
        let mut inner = self.inner.lock();
        let mut fresh: Vec<Alert> = Vec::new();
        let mut frames = Vec::new();
        for a in alerts {
            if inner.ids.contains(&a.id) || fresh.iter().any(|f| f.id == a.id) {
                continue;
            }
            let payload = serde_json::to_vec(a).map_err(|e| LedgerError::invalid("alert", e.to_string()))?;
            if payload.len() > ALERT_BYTES_MAX {
                return Err(LedgerError::invalid("alert", format!("{} bytes encoded, over {ALERT_BYTES_MAX}", payload.len())));
            }
            journal::frame_into(&mut frames, &payload, ALERT_BYTES_MAX);
            fresh.push(a.clone());
        }
        if !frames.is_empty() {
            inner.journal.append(&frames)?;
        }
        for a in &fresh {
            inner.ids.insert(a.id.clone());
            inner.alerts.push(a.clone());
        }
        Ok(fresh)
    }

    /// Every alert stored, oldest first.
    pub fn list(&self) -> Vec<Alert> {
        self.inner.lock().alerts.clone()
    }
}
