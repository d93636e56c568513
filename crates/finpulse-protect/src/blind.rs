//! Blind indexes: a keyed, deterministic digest of a protected value, so equal values can be
//! joined and looked up (a blocked card list against payments) without decrypting anything.
//!
//! `HMAC-SHA256(K_field, value)` cut to 128 bits, where `K_field` is HKDF-SHA256 of the
//! store's blind-index key with the field id in its label: the same card number in two fields
//! gives unrelated indexes, and the index of one field says nothing about another's.
//!
//! The blind-index key is a random key of its own, kept in the key journal wrapped by the master
//! key like a data key, rather than derived from a master key version: rotating the master key
//! then re-wraps it and every index already stored stays valid, where a derived key would
//! change with the master key and every stored index would have to be recomputed from values
//! nobody may decrypt in bulk. It belongs to no user, so erasing a user leaves it.
//!
//! What an index reveals by design: which rows hold equal values, and how often a value occurs.
//! Normalise values before indexing (`13800138000`, not `138 0013 8000`); this module does not
//! know the fields' formats.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use parking_lot::RwLock;
use sha2::Sha256;
use std::collections::HashMap;
use zeroize::Zeroizing;

/// Bytes of a blind index: 128 bits, so equal indexes of unequal values (a false join) are
/// expected only after about 2^64 distinct values.
pub const BLIND_INDEX_BYTES: usize = 16;
/// What the text form of a blind index starts with.
pub const BLIND_INDEX_TEXT_PREFIX: &str = "bi1:";
/// The HKDF label of a field's index key; the field id (u16, big-endian) follows it.
const FIELD_KEY_LABEL: &[u8] = b"finpulse-protect v1 blind index field ";

/// Computes blind indexes under one blind-index key.
pub(crate) struct BlindIndexer {
    hkdf: Hkdf<Sha256>,
    /// Each field's keyed HMAC, made on first use and cloned per index (cloning skips hashing
    /// the key again). At most one per field id, so bounded by `u16::MAX + 1`.
    per_field: RwLock<HashMap<u16, Hmac<Sha256>>>,
}

impl BlindIndexer {
    /// An indexer under `key`.
    pub(crate) fn new(key: &[u8]) -> Self {
        Self { hkdf: Hkdf::new(None, key), per_field: RwLock::default() }
    }

    /// The blind index of `value` in `field`.
    pub(crate) fn index(&self, field: u16, value: &[u8]) -> [u8; BLIND_INDEX_BYTES] {
        let cached = self.per_field.read().get(&field).cloned();
        let mut mac = match cached {
            Some(mac) => mac,
            None => {
                let mac = self.field_mac(field);
                self.per_field.write().entry(field).or_insert(mac).clone()
            }
        };
        mac.update(value);
        let digest = mac.finalize().into_bytes();
        let mut out = [0u8; BLIND_INDEX_BYTES];
        out.copy_from_slice(&digest[..BLIND_INDEX_BYTES]);
        out
    }

    fn field_mac(&self, field: u16) -> Hmac<Sha256> {
        let mut key = Zeroizing::new([0u8; 32]);
        self.hkdf.expand_multi_info(&[FIELD_KEY_LABEL, &field.to_be_bytes()], &mut *key).expect("32 bytes is within HKDF-SHA256's limit");
        Hmac::<Sha256>::new_from_slice(&*key).expect("HMAC takes any key length")
    }
}

/// The text form of a blind index: `bi1:` and base64url without padding (22 characters).
pub(crate) fn to_text(index: &[u8; BLIND_INDEX_BYTES]) -> String {
    let mut out = String::from(BLIND_INDEX_TEXT_PREFIX);
    URL_SAFE_NO_PAD.encode_string(index, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_is_deterministic_per_key_and_field() {
        let a = BlindIndexer::new(&[1; 32]);
        let again = BlindIndexer::new(&[1; 32]);
        let other_key = BlindIndexer::new(&[2; 32]);
        let card = b"6222020200112233445";
        assert_eq!(a.index(7, card), again.index(7, card));
        assert_eq!(a.index(7, card), a.index(7, card), "the cached field key gives the same index");
        assert_ne!(a.index(7, card), a.index(8, card));
        assert_ne!(a.index(7, card), other_key.index(7, card));
        assert_ne!(a.index(7, card), a.index(7, b"6222020200112233446"));
    }

    /// An answer computed independently (Python: HKDF-SHA256 with no salt, then HMAC-SHA256),
    /// so the construction is the one the module documents.
    #[test]
    fn an_index_matches_the_documented_construction() {
        let indexer = BlindIndexer::new(&[0x11; 32]);
        let index = indexer.index(0x0102, b"6222020200112233445");
        assert_eq!(hex::encode(index), "f684874ea0a00196bcfaf616fb324634");
        assert_eq!(to_text(&index).len(), BLIND_INDEX_TEXT_PREFIX.len() + 22);
    }
}
