//! Legal holds: records a law requires kept (AML customer records for 10 years after the
//! relationship ends, records under investigation) block the erasure of the users they cover,
//! and the refusal says which hold and until when. With one data key per user, a hold covers a
//! user whole: erasing part of what a key seals is not possible.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a data directory keeps its holds.
pub const HOLDS_FILE: &str = "subjects/legal-holds.json";
/// The most holds a data directory keeps.
pub const HOLDS_MAX: usize = 1_000_000;
/// The longest reason taken, in bytes.
pub const HOLD_REASON_BYTES_MAX: usize = 500;

/// One hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalHold {
    /// The user it covers.
    pub user_id: String,
    /// Why (the law or the case), shown in every refusal.
    pub reason: String,
    /// The last day it holds, `YYYY-MM-DD` (UTC), inclusive.
    pub until: String,
    /// Who placed it.
    pub placed_by: String,
    /// When, RFC 3339.
    pub placed_at: String,
}

/// Why holds could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// The file could not be read or written.
    #[error("legal holds {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file does not parse.
    #[error("legal holds {path}: {why}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// A value given is not acceptable.
    #[error("{field}: {why}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        why: String,
    },
}

/// The holds file of a data directory.
pub fn holds_path(data_dir: &Path) -> PathBuf {
    data_dir.join(HOLDS_FILE)
}

/// Every hold, in the order they were placed.
pub fn load(data_dir: &Path) -> Result<Vec<LegalHold>, HoldError> {
    let path = holds_path(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| HoldError::Bad { path, why: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(HoldError::Io { path, source }),
    }
}

fn save(data_dir: &Path, holds: &[LegalHold]) -> Result<(), HoldError> {
    let path = holds_path(data_dir);
    let parent = path.parent().expect("the holds file is in a folder");
    std::fs::create_dir_all(parent).map_err(|source| HoldError::Io { path: parent.to_path_buf(), source })?;
    let bytes = serde_json::to_vec_pretty(holds).expect("holds serialise");
    finpulse_core::durable::write_file(&path, &bytes).map_err(|source| HoldError::Io { path, source })
}

/// Places (or replaces) the hold on `hold.user_id`, checking its fields.
pub fn place(data_dir: &Path, hold: LegalHold) -> Result<(), HoldError> {
    crate::check_user_id(&hold.user_id).map_err(|e| HoldError::Invalid { field: "user", why: e.to_string() })?;
    let reason = hold.reason.trim();
    if reason.is_empty() || reason.len() > HOLD_REASON_BYTES_MAX {
        let why = format!("a reason of 1 to {HOLD_REASON_BYTES_MAX} bytes is needed (the law or case that requires the records)");
        return Err(HoldError::Invalid { field: "reason", why });
    }
    finpulse_core::time::parse_date_us(&hold.until)
        .ok_or_else(|| HoldError::Invalid { field: "until", why: format!("'{}' is not a YYYY-MM-DD day", hold.until) })?;
    let mut holds = load(data_dir)?;
    holds.retain(|h| h.user_id != hold.user_id);
    if holds.len() >= HOLDS_MAX {
        return Err(HoldError::Invalid { field: "user", why: format!("a data directory keeps at most {HOLDS_MAX} holds") });
    }
    holds.push(hold);
    save(data_dir, &holds)
}

/// Lifts the hold on `user`; whether there was one.
pub fn release(data_dir: &Path, user: &str) -> Result<bool, HoldError> {
    let mut holds = load(data_dir)?;
    let before = holds.len();
    holds.retain(|h| h.user_id != user);
    if holds.len() == before {
        return Ok(false);
    }
    save(data_dir, &holds)?;
    Ok(true)
}

/// The hold covering `user` at `now_us`, if any (a hold ends after its `until` day).
pub fn covering(data_dir: &Path, user: &str, now_us: i64) -> Result<Option<LegalHold>, HoldError> {
    let today = finpulse_core::time::day_of_us(now_us);
    Ok(load(data_dir)?.into_iter().find(|h| {
        h.user_id == user
            && finpulse_core::time::parse_date_us(&h.until).is_some_and(|until| finpulse_core::time::day_of_us(until) >= today)
    }))
}

impl std::fmt::Display for LegalHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "user '{}' is under a legal hold until {} ({}), placed by {}", self.user_id, self.until, self.reason, self.placed_by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(user: &str, until: &str) -> LegalHold {
        LegalHold {
            user_id: user.into(),
            reason: "AML: customer records kept 10 years".into(),
            until: until.into(),
            placed_by: "cli:compliance".into(),
            placed_at: "2026-12-08T00:00:00Z".into(),
        }
    }

    #[test]
    fn a_hold_covers_its_user_through_its_last_day_and_not_after_or_once_released() {
        let dir = tempfile::tempdir().unwrap();
        place(dir.path(), hold("u1", "2030-01-31")).unwrap();
        let day = |d: &str| finpulse_core::time::parse_date_us(d).unwrap();
        assert!(covering(dir.path(), "u1", day("2030-01-31") + 3_600_000_000).unwrap().is_some());
        assert!(covering(dir.path(), "u1", day("2030-02-01")).unwrap().is_none());
        assert!(covering(dir.path(), "u2", day("2026-01-01")).unwrap().is_none());
        place(dir.path(), hold("u1", "2036-12-31")).unwrap();
        assert_eq!(load(dir.path()).unwrap().len(), 1, "placing again replaces");
        assert!(release(dir.path(), "u1").unwrap());
        assert!(!release(dir.path(), "u1").unwrap());
        assert!(covering(dir.path(), "u1", day("2026-12-08")).unwrap().is_none());
    }

    #[test]
    fn a_hold_without_a_reason_or_with_a_bad_day_is_refused_by_field() {
        let dir = tempfile::tempdir().unwrap();
        let e = place(dir.path(), LegalHold { reason: " ".into(), ..hold("u1", "2030-01-01") }).unwrap_err();
        assert!(e.to_string().starts_with("reason:"), "{e}");
        let e = place(dir.path(), hold("u1", "2030-13-01")).unwrap_err();
        assert!(e.to_string().starts_with("until:"), "{e}");
        assert!(load(dir.path()).unwrap().is_empty());
    }
}
