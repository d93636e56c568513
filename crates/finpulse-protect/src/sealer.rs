//! The key store as the storage crates see it: [`finpulse_core::seal::FieldSealer`].

use crate::envelope::is_envelope;
use crate::store::{KeyState, KeyStore, ProtectError};
use finpulse_core::FieldId;
use finpulse_core::seal::{FieldSealer, SealError};

fn seal_error(e: ProtectError) -> SealError {
    match e {
        ProtectError::Erased { user } => SealError::Erased { user },
        ProtectError::ReadOnly { .. } => SealError::ReadOnly,
        other => SealError::Keys(other.to_string()),
    }
}

impl FieldSealer for KeyStore {
    fn ensure_users(&self, users: &[&str]) -> Result<(), SealError> {
        for chunk in users.chunks(crate::store::ENSURE_USERS_MAX) {
            self.ensure_keys(chunk).map_err(seal_error)?;
        }
        Ok(())
    }

    fn is_erased(&self, user: &str) -> bool {
        self.key_state(user) == KeyState::Erased
    }

    fn erased_count(&self) -> usize {
        KeyStore::erased_count(self)
    }

    fn seal(&self, user: &str, field: FieldId, clear: &str) -> Result<String, SealError> {
        self.encrypt_text(user, field.0, clear).map_err(seal_error)
    }

    fn open(&self, user: &str, field: FieldId, value: &str) -> Result<Option<String>, SealError> {
        if !is_envelope(value) {
            return Ok(Some(value.to_string()));
        }
        match self.decrypt_text(user, field.0, value) {
            Ok(clear) => Ok(Some(clear)),
            Err(ProtectError::Erased { .. }) => Ok(None),
            Err(e) => Err(seal_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Algorithm, MasterKeys};
    use std::sync::Arc;

    fn store(dir: &std::path::Path) -> KeyStore {
        let master = Arc::new(MasterKeys::new([(1, [7u8; 32])]).unwrap());
        KeyStore::open(dir, master, Algorithm::Aes256Gcm).unwrap()
    }

    #[test]
    fn a_sealed_field_opens_until_its_user_is_erased_then_opens_to_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let keys = store(dir.path());
        keys.ensure_users(&["u1"]).unwrap();
        let sealed = keys.seal("u1", FieldId(12), "110101199003077777").unwrap();
        assert!(sealed.starts_with("enc1:") && !sealed.contains("1101011990"));
        assert_eq!(keys.open("u1", FieldId(12), &sealed).unwrap().as_deref(), Some("110101199003077777"));
        assert!(keys.open("u2", FieldId(12), &sealed).is_err(), "another user's key does not open it");
        assert!(keys.open("u1", FieldId(13), &sealed).is_err(), "another field does not open it");
        assert_eq!(
            keys.open("u1", FieldId(12), "plain").unwrap().as_deref(),
            Some("plain"),
            "values from before protection read as they are"
        );
        keys.erase("u1").unwrap();
        assert_eq!(keys.open("u1", FieldId(12), &sealed).unwrap(), None);
        assert!(matches!(keys.ensure_users(&["u1"]), Err(SealError::Erased { .. })));
        assert_eq!(FieldSealer::erased_count(&keys), 1);
    }

    #[test]
    fn a_reader_opens_fields_without_the_lock_but_makes_no_keys() {
        let dir = tempfile::tempdir().unwrap();
        let owner = store(dir.path());
        owner.ensure_users(&["u1"]).unwrap();
        let sealed = owner.seal("u1", FieldId(3), "6222020200112233445").unwrap();
        let master = Arc::new(MasterKeys::new([(1, [7u8; 32])]).unwrap());
        let reader = KeyStore::open_reader(dir.path(), master, Algorithm::Aes256Gcm).unwrap();
        assert_eq!(reader.open("u1", FieldId(3), &sealed).unwrap().as_deref(), Some("6222020200112233445"));
        assert!(matches!(reader.ensure_users(&["u9"]), Err(SealError::ReadOnly)));
    }
}
