//! A hash map kept in [`SHARDS`] shards by key, so that it grows a shard at a time.
//!
//! A single `HashMap` doubles all at once: the insert that crosses its load limit moves every
//! entry. For the maps on the decision path that is a stall proportional to the whole map,
//! taken under the lock decisions wait for (`finpulse-bench map-growth`: 40.7 ms for the insert
//! that doubles a map of payments on its way to 1M, 0.24 ms in shards). In shards, each growth
//! moves one shard's entries, 1/[`SHARDS`] of the map, and the shards reach their limits at
//! different inserts.
//!
//! It serializes as one flat map, the same encoding as the `HashMap` it replaces, so
//! checkpoints written before stay readable.

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::HashMap;
use std::collections::hash_map::{Entry, RandomState};
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;

/// Shards per map (a power of two). An empty shard allocates nothing.
pub const SHARDS: usize = 256;

/// A key that names its shard.
pub trait ShardKey: Eq + Hash {
    /// The shard, in `0..SHARDS`.
    fn shard(&self) -> usize;
}

/// Keys that are hashes already (uniform bits). The shard comes from bits 32–39: the low bits
/// place an entry in its table and the top seven tag it, so a map that hashes keys by passing
/// them through still spreads them over its whole table.
impl ShardKey for u64 {
    fn shard(&self) -> usize {
        (*self >> 32) as usize % SHARDS
    }
}

/// 128-bit hashes: the shard comes from the high half, which a pass-through hasher of the low
/// half never sees.
impl ShardKey for u128 {
    fn shard(&self) -> usize {
        (*self >> 64) as usize % SHARDS
    }
}

/// A hash map in [`SHARDS`] shards by [`ShardKey::shard`].
pub struct ShardedMap<K, V, S = RandomState> {
    shards: Box<[HashMap<K, V, S>]>,
    len: usize,
}

impl<K: ShardKey, V, S: BuildHasher + Default> ShardedMap<K, V, S> {
    /// An empty map; no shard allocates until it holds a key.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// A map that holds about `entries` without growing.
    pub fn with_capacity(entries: usize) -> Self {
        // Shards fill unevenly: an eighth more room keeps all but the fullest from growing.
        let per_shard = if entries == 0 { 0 } else { entries / SHARDS + entries / SHARDS / 8 + 1 };
        Self { shards: (0..SHARDS).map(|_| HashMap::with_capacity_and_hasher(per_shard, S::default())).collect(), len: 0 }
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many entries the shards hold, together, before one of them must grow.
    pub fn capacity(&self) -> usize {
        self.shards.iter().map(|s| s.capacity()).sum()
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.shards[key.shard()].get(key)
    }

    /// The value of `key`, to change.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.shards[key.shard()].get_mut(key)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &K) -> bool {
        self.shards[key.shard()].contains_key(key)
    }

    /// Sets the value of `key`; returns the one it replaces.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let old = self.shards[key.shard()].insert(key, value);
        self.len += usize::from(old.is_none());
        old
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let old = self.shards[key.shard()].remove(key);
        self.len -= usize::from(old.is_some());
        old
    }

    /// The value of `key`, inserting `V::default()` first when it has none.
    pub fn get_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        match self.shards[key.shard()].entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                self.len += 1;
                e.insert(V::default())
            }
        }
    }
}

impl<K, V, S> ShardedMap<K, V, S> {
    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(|s| s.iter())
    }

    /// Every entry, moved out, in no particular order.
    pub fn into_entries(self) -> impl Iterator<Item = (K, V)> {
        self.shards.into_vec().into_iter().flatten()
    }
}

impl<K: ShardKey, V, S: BuildHasher + Default> Default for ShardedMap<K, V, S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone, V: Clone, S: Clone> Clone for ShardedMap<K, V, S> {
    fn clone(&self) -> Self {
        Self { shards: self.shards.clone(), len: self.len }
    }
}

/// Equal when the entries are (a key's shard is a function of the key).
impl<K: ShardKey, V: PartialEq, S: BuildHasher> PartialEq for ShardedMap<K, V, S> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.shards.iter().zip(other.shards.iter()).all(|(a, b)| a == b)
    }
}

impl<K: fmt::Debug, V: fmt::Debug, S> fmt::Debug for ShardedMap<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Serialize, V: Serialize, S> Serialize for ShardedMap<K, V, S> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let mut map = serializer.serialize_map(Some(self.len))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de, K, V, S> Deserialize<'de> for ShardedMap<K, V, S>
where
    K: ShardKey + Deserialize<'de>,
    V: Deserialize<'de>,
    S: BuildHasher + Default,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries<K, V, S>(PhantomData<(K, V, S)>);
        impl<'de, K, V, S> Visitor<'de> for Entries<K, V, S>
        where
            K: ShardKey + Deserialize<'de>,
            V: Deserialize<'de>,
            S: BuildHasher + Default,
        {
            type Value = ShardedMap<K, V, S>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut map = ShardedMap::with_capacity(access.size_hint().unwrap_or(0));
                while let Some((k, v)) = access.next_entry()? {
                    map.insert(k, v);
                }
                Ok(map)
            }
        }
        deserializer.deserialize_map(Entries(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A xorshift generator: keys that are uniform like the hashes the maps hold.
    fn keys(seed: u64) -> impl Iterator<Item = u64> {
        let mut x = seed;
        std::iter::repeat_with(move || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        })
    }

    #[test]
    fn inserts_removals_and_defaults_agree_with_a_hash_map() {
        let mut sharded: ShardedMap<u64, u32> = ShardedMap::new();
        let mut plain: HashMap<u64, u32> = HashMap::new();
        // Keys from a small range, so inserts replace and removals hit.
        for (i, k) in keys(7).take(20_000).enumerate() {
            let key = ((k % 3_000) << 32) | (k % 97);
            match k % 5 {
                0 => assert_eq!(sharded.remove(&key), plain.remove(&key)),
                1 => {
                    *sharded.get_or_default(key) += 1;
                    *plain.entry(key).or_default() += 1;
                }
                _ => assert_eq!(sharded.insert(key, i as u32), plain.insert(key, i as u32)),
            }
            assert_eq!(sharded.len(), plain.len());
        }
        assert_eq!(sharded.iter().count(), plain.len());
        for (k, v) in &plain {
            assert_eq!(sharded.get(k), Some(v));
            assert!(sharded.contains_key(k));
        }
        assert!(sharded.get(&u64::MAX).is_none());
        if let Some(v) = sharded.get_mut(plain.keys().next().unwrap()) {
            *v = u32::MAX;
        }
        assert!(sharded.iter().any(|(_, v)| *v == u32::MAX));
    }

    #[test]
    fn hashed_keys_spread_over_every_shard() {
        let mut map: ShardedMap<u64, ()> = ShardedMap::with_capacity(SHARDS * 64);
        for k in keys(11).take(SHARDS * 64) {
            map.insert(k, ());
        }
        let sizes: Vec<usize> = map.shards.iter().map(|s| s.len()).collect();
        // 64 expected per shard; a shard with under a third or over twice that is not uniform.
        assert!(sizes.iter().all(|n| (21..=128).contains(n)), "{sizes:?}");
        let mut halves: ShardedMap<u128, ()> = ShardedMap::new();
        for k in keys(13).take(SHARDS * 64) {
            // The low half is the same for every key: only the high half may pick the shard.
            halves.insert((u128::from(k) << 64) | 5, ());
        }
        assert!(halves.shards.iter().all(|s| !s.is_empty()));
    }

    #[test]
    fn a_map_sized_ahead_does_not_grow_while_filled_to_that_size() {
        let mut map: ShardedMap<u64, u64> = ShardedMap::with_capacity(100_000);
        let room: Vec<usize> = map.shards.iter().map(|s| s.capacity()).collect();
        for k in keys(17).take(100_000) {
            map.insert(k, k);
        }
        let grown = map.shards.iter().zip(&room).filter(|(s, r)| s.capacity() > **r).count();
        assert_eq!(grown, 0, "shards grew although sized for the entries");
    }

    #[test]
    fn maps_with_the_same_entries_are_equal_whatever_the_insert_order() {
        let mut a: ShardedMap<u64, u8> = ShardedMap::new();
        let mut b: ShardedMap<u64, u8> = ShardedMap::with_capacity(1_000);
        let ks: Vec<u64> = keys(19).take(1_000).collect();
        for k in &ks {
            a.insert(*k, 1);
        }
        for k in ks.iter().rev() {
            b.insert(*k, 1);
        }
        assert_eq!(a, b);
        b.insert(ks[0], 2);
        assert_ne!(a, b);
        b.remove(&ks[0]);
        assert_ne!(a, b);
        assert_eq!(format!("{:?}", ShardedMap::<u64, u8>::new()), "{}");
    }
}
