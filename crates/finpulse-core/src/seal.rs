//! Sealed fields: which fields are encrypted at rest, and the interface the storage crates seal
//! and open them through. The keys and ciphers live in `finpulse-protect`; this is what the log,
//! the query engine and the write path need to know of them, so none of those depends on it.

use crate::class::{DataClass, JrCategory};
use crate::registry::{FieldSpec, FieldType, Registry};

/// The lowest JR/T 0197 level of a C2 field sealed at rest. C2 fields below it (amounts,
/// device ids, cities) stay clear at rest so insights, sums and features work on them directly;
/// they are masked by class on every exit.
pub const SEALED_C2_LEVEL_MIN: u8 = 3;

/// Whether values of a field of this class are sealed at rest: every C3 field, and C2 fields of
/// level [`SEALED_C2_LEVEL_MIN`] or more (resident ids, mobiles, card numbers, names).
pub fn class_is_sealed(class: DataClass) -> bool {
    match class.category {
        JrCategory::C3 => true,
        JrCategory::C2 => class.level >= SEALED_C2_LEVEL_MIN,
        JrCategory::C1 => false,
    }
}

/// Whether a field's values are sealed at rest: text fields of a sealed class. (Numbers of a
/// sealed class, such as a bureau score, are withheld from readers without clear access but not
/// encrypted: models and insights compute on them.)
pub fn field_is_sealed(field: &FieldSpec) -> bool {
    field.ty == FieldType::String && class_is_sealed(field.class)
}

/// The sealed fields of a registry, indexed by `FieldId`: `sealed[id]` says whether that field is
/// sealed (custom fields after the built-ins, by their offset).
#[derive(Debug, Clone, Default)]
pub struct SealedFields {
    ids: Vec<crate::FieldId>,
}

impl SealedFields {
    /// The sealed fields of `registry`.
    pub fn of(registry: &Registry) -> Self {
        Self { ids: registry.fields().filter(|f| field_is_sealed(f)).map(|f| f.id).collect() }
    }

    /// Whether `field` is sealed.
    pub fn contains(&self, field: crate::FieldId) -> bool {
        self.ids.contains(&field)
    }

    /// The sealed fields' ids.
    pub fn ids(&self) -> &[crate::FieldId] {
        &self.ids
    }

    /// Whether no field is sealed.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Why a field could not be sealed or opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SealError {
    /// The user was erased: nothing of theirs is written or read again.
    #[error("user '{user}' was erased (PIPL Art. 47): their data key is destroyed, so events for them are refused")]
    Erased {
        /// The user.
        user: String,
    },
    /// The keys could not be made, read or used.
    #[error("key store: {0}")]
    Keys(String),
    /// The process may read but not seal (a reader opened the key store without its lock).
    #[error("this process opened the key store read-only; only the data directory's owner seals new fields")]
    ReadOnly,
}

/// What seals and opens fields for one data directory. Implemented by the key store; the event
/// store calls it on the caller's threads (sealing before events are framed for the log) and
/// readers call it to open what they may see in clear.
pub trait FieldSealer: Send + Sync {
    /// Makes sure each of `users` has a data key, durably, before their fields are sealed. An
    /// erased user among them is [`SealError::Erased`] and no key is made.
    fn ensure_users(&self, users: &[&str]) -> Result<(), SealError>;

    /// Whether `user` was erased.
    fn is_erased(&self, user: &str) -> bool;

    /// How many users have been erased (readers skip erasure checks while it is 0).
    fn erased_count(&self) -> usize;

    /// Seals one text value of `user`'s `field`, as text (`enc1:…`).
    fn seal(&self, user: &str, field: crate::FieldId, clear: &str) -> Result<String, SealError>;

    /// Opens a value [`FieldSealer::seal`] made: `Ok(None)` when the user was erased. A value
    /// that is not sealed (written before the directory was protected) is returned as it is.
    fn open(&self, user: &str, field: crate::FieldId, value: &str) -> Result<Option<String>, SealError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_of_level_three_and_secrets_are_sealed_but_amounts_are_not() {
        let registry = Registry::builtin();
        let sealed = SealedFields::of(&registry);
        for name in ["id_number", "mobile", "card_number", "real_name"] {
            assert!(sealed.contains(registry.field_id(name).unwrap()), "{name}");
        }
        for name in ["amount_fen", "device_id", "city", "channel", "bureau_score"] {
            assert!(!sealed.contains(registry.field_id(name).unwrap()), "{name}");
        }
        assert!(class_is_sealed(DataClass::AUTHENTICATION));
        assert!(!class_is_sealed(DataClass::PERSONAL));
    }
}
