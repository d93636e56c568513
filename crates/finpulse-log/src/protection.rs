//! Sealed fields on their way into and out of a data directory.
//!
//! A data directory with a key store (`keys/`) is protected: every sealed field
//! ([`finpulse_core::seal::SealedFields`]) of a user's event is sealed before the event is
//! framed for the log, so the log, the tail, the Parquet files and everything copied from them
//! hold only envelopes. The process that holds the keys installs its [`FieldSealer`] for the
//! directory ([`install`]); every path that reads or writes the directory asks for it
//! ([`sealer_for`]), and a protected directory without one is an error, never a silent read of
//! envelopes or a write in clear.
//!
//! Opening happens where a clear value is needed: replaying the log for live state and models
//! ([`crate::EventStore::replay`]), compaction (to write the masked forms), and queries of
//! readers allowed to see the clear value. An erased user's fields open to nothing.

use crate::store::StoreError;
use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::datatypes::DataType;
use finpulse_core::seal::{FieldSealer, SealedFields};
use finpulse_core::{Event, FieldId, Value};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

/// The key store's folder inside a data directory; its presence makes the directory protected.
pub const KEYS_DIR: &str = "keys";

type Sealers = RwLock<HashMap<PathBuf, Arc<dyn FieldSealer>>>;

fn sealers() -> &'static Sealers {
    static SEALERS: OnceLock<Sealers> = OnceLock::new();
    SEALERS.get_or_init(Default::default)
}

fn key(data_dir: &Path) -> PathBuf {
    std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf())
}

/// The key store folder of a data directory.
pub fn keys_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(KEYS_DIR)
}

/// Whether a data directory's personal fields are sealed (it has a key store).
pub fn is_protected(data_dir: &Path) -> bool {
    keys_dir(data_dir).is_dir()
}

/// Makes `sealer` this process's sealer for `data_dir`, replacing any earlier one.
pub fn install(data_dir: &Path, sealer: Arc<dyn FieldSealer>) {
    sealers().write().expect("sealer map poisoned").insert(key(data_dir), sealer);
}

/// Forgets this process's sealer for `data_dir` (when its owner stops).
pub fn uninstall(data_dir: &Path) {
    sealers().write().expect("sealer map poisoned").remove(&key(data_dir));
}

/// This process's sealer for `data_dir`: `None` when the directory is not protected; an error
/// when it is and no sealer was installed (its master key was not given).
pub fn sealer_for(data_dir: &Path) -> Result<Option<Arc<dyn FieldSealer>>, StoreError> {
    if let Some(s) = sealers().read().expect("sealer map poisoned").get(&key(data_dir)) {
        return Ok(Some(s.clone()));
    }
    if is_protected(data_dir) {
        return Err(StoreError::Protected { dir: data_dir.to_path_buf() });
    }
    Ok(None)
}

/// Seals the sealed fields of every user's event, making keys for users who have none first
/// (one durable write for all); `None` when no event carries a sealed value, so the events go
/// to the log as they are, uncopied. Business events (no user) keep their fields, as no user's
/// key could erase them.
pub fn seal_events(sealer: &dyn FieldSealer, sealed: &SealedFields, events: &[Event]) -> Result<Option<Vec<Event>>, StoreError> {
    let carries = |e: &Event| e.user_id.is_some() && e.fields.iter().any(|(f, v)| matches!(v, Value::Str(_)) && sealed.contains(*f));
    if !events.iter().any(carries) {
        return Ok(None);
    }
    let mut users: Vec<&str> = Vec::new();
    let mut seen = HashSet::new();
    for e in events.iter().filter(|e| carries(e)) {
        let user = e.user_id.as_deref().expect("carries() checked the user");
        if seen.insert(user) {
            users.push(user);
        }
    }
    if !users.is_empty() {
        sealer.ensure_users(&users)?;
    }
    events
        .iter()
        .map(|e| {
            if !carries(e) {
                return Ok(e.clone());
            }
            let user = e.user_id.as_deref().expect("carries() checked the user");
            let mut out = e.clone();
            for (field, value) in &mut out.fields {
                if let Value::Str(text) = value
                    && sealed.contains(*field)
                {
                    *text = sealer.seal(user, *field, text)?;
                }
            }
            Ok(out)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Opens an event's sealed fields in place; an erased user's sealed fields are removed.
pub fn open_event(sealer: &dyn FieldSealer, sealed: &SealedFields, event: &mut Event) -> Result<(), StoreError> {
    let Some(user) = event.user_id.as_deref() else { return Ok(()) };
    let mut erased = false;
    for (field, value) in &mut event.fields {
        if let Value::Str(text) = value
            && sealed.contains(*field)
        {
            match sealer.open(user, *field, text)? {
                Some(clear) => *text = clear,
                None => erased = true,
            }
        }
    }
    if erased {
        event.fields.retain(|(f, v)| !(matches!(v, Value::Str(_)) && sealed.contains(*f)));
    }
    Ok(())
}

/// A text column of sealed values opened row by row with each row's user (`users`, a text
/// column of the same length): plain strings, null where the value is null or its user erased.
pub fn open_column(sealer: &dyn FieldSealer, field: FieldId, users: &ArrayRef, values: &ArrayRef) -> Result<ArrayRef, StoreError> {
    let as_text = |a: &ArrayRef| match a.data_type() {
        DataType::Utf8 => Ok(a.clone()),
        _ => arrow::compute::cast(a, &DataType::Utf8).map_err(|e| StoreError::Compaction(format!("opening sealed values: {e}"))),
    };
    let (users, values) = (as_text(users)?, as_text(values)?);
    let (users, values) = (users.as_string::<i32>(), values.as_string::<i32>());
    let mut out = StringBuilder::with_capacity(values.len(), values.value_data().len());
    for i in 0..values.len() {
        if values.is_null(i) {
            out.append_null();
        } else if users.is_null(i) {
            out.append_value(values.value(i));
        } else {
            out.append_option(sealer.open(users.value(i), field, values.value(i))?);
        }
    }
    Ok(Arc::new(out.finish()))
}
