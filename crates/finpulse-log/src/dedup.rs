//! The idempotency index: the 128-bit hashes of every stored event id.

use finpulse_core::sharded::ShardedMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Passes a 128-bit hash through as its low 64 bits: the keys are already uniformly random.
#[derive(Default)]
pub struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= (*b as u64) << (8 * i);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

/// The set of stored event ids, by 128-bit XXH3 hash (collision odds ~n²/2¹²⁹: nil at any
/// realistic volume). In shards, so that growing it pauses the writer for one shard's ids, not
/// all of them: every id of the log is here, tens of millions in time.
#[derive(Default)]
pub struct DedupIndex {
    ids: ShardedMap<u128, (), BuildHasherDefault<PassThroughHasher>>,
}

impl DedupIndex {
    /// The hash the index keys on.
    pub fn key(event_id: &str) -> u128 {
        xxhash_rust::xxh3::xxh3_128(event_id.as_bytes())
    }

    /// Inserts an id; false when it was already there.
    pub fn insert(&mut self, event_id: &str) -> bool {
        self.ids.insert(Self::key(event_id), ()).is_none()
    }

    /// Inserts an id by its [`DedupIndex::key`], computed elsewhere; false when it was there.
    pub fn insert_key(&mut self, key: u128) -> bool {
        self.ids.insert(key, ()).is_none()
    }

    /// Removes an id by its key.
    pub fn remove_key(&mut self, key: u128) {
        self.ids.remove(&key);
    }

    /// Whether an id is stored.
    pub fn contains(&self, event_id: &str) -> bool {
        self.ids.contains_key(&Self::key(event_id))
    }

    /// Removes an id (used to undo the inserts of a batch that could not be made durable).
    pub fn remove(&mut self, event_id: &str) {
        self.ids.remove(&Self::key(event_id));
    }

    /// How many ids are stored.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_accepted_once() {
        let mut d = DedupIndex::default();
        assert!(d.insert("e1"));
        assert!(!d.insert("e1"));
        assert!(d.insert("e2"));
        assert_eq!(d.len(), 2);
        d.remove("e1");
        assert!(!d.contains("e1"));
    }
}
