//! Secure aggregation for horizontal learning (pairwise masks, after Bonawitz et al. 2017,
//! without its double masking): each client agrees an X25519 secret with every other client,
//! expands it with ChaCha20 into a mask vector, and uploads its update plus the masks of the
//! pairs where it has the smaller number minus those where it has the larger. In the sum every
//! mask appears once with each sign, so the coordinator learns the sum and nothing else of any
//! one update. When clients drop out after the masks were agreed, each survivor reveals its
//! pair secrets with the dropped clients only, and the coordinator removes those masks.
//!
//! Limitation (documented, not hidden): without Bonawitz's second, self mask, a client that was
//! declared dropped but whose upload arrives late could be unmasked by the coordinator; the
//! coordinator must discard uploads of clients it declared dropped.

use curve25519_dalek::montgomery::MontgomeryPoint;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

use crate::FederationError;

/// Clients in one aggregation, at most.
pub const CLIENTS_MAX: usize = 1024;

/// A client's key for one aggregation round.
pub struct ClientKey {
    id: u32,
    secret: [u8; 32],
    /// The public key to send to the others.
    pub public: [u8; 32],
}

impl ClientKey {
    /// A fresh X25519 key for client `id`.
    pub fn random(id: u32) -> Self {
        let mut secret = [0u8; 32];
        rand::rng().fill(&mut secret);
        Self { id, secret, public: MontgomeryPoint::mul_base_clamped(secret).to_bytes() }
    }

    /// The seed this client shares with `peer` (the same at both ends).
    pub fn pair_seed(&self, peer_public: &[u8; 32]) -> [u8; 32] {
        let shared = MontgomeryPoint(*peer_public).mul_clamped(self.secret);
        Sha256::new().chain_update(b"finpulse secagg pair seed v1\0").chain_update(shared.as_bytes()).finalize().into()
    }

    /// `update` (fixed-point integers, as ring elements modulo 2^64) plus this client's masks
    /// with every `(id, public key)` in `peers` (itself excluded).
    pub fn masked(&self, update: &[i64], peers: &[(u32, [u8; 32])]) -> Result<Vec<u64>, FederationError> {
        if peers.len() >= CLIENTS_MAX {
            return Err(FederationError::Protocol(format!("{} peers; at most {}", peers.len(), CLIENTS_MAX - 1)));
        }
        let mut out: Vec<u64> = update.iter().map(|&v| v as u64).collect();
        for &(peer, public) in peers.iter().filter(|(p, _)| *p != self.id) {
            apply_mask(&mut out, &self.pair_seed(&public), self.id < peer);
        }
        Ok(out)
    }
}

/// Adds (or subtracts) the ChaCha20 expansion of `seed`.
fn apply_mask(values: &mut [u64], seed: &[u8; 32], add: bool) {
    let mut stream = ChaCha20Rng::from_seed(*seed);
    for v in values.iter_mut() {
        let m: u64 = stream.random();
        *v = if add { v.wrapping_add(m) } else { v.wrapping_sub(m) };
    }
}

/// A survivor's disclosure for a client that dropped out: their pair seed.
pub struct Disclosure {
    /// The survivor.
    pub survivor: u32,
    /// The dropped client.
    pub dropped: u32,
    /// Their pair seed.
    pub seed: [u8; 32],
}

/// The coordinator's sum of the survivors' masked uploads, with the masks shared with dropped
/// clients removed using the survivors' disclosures. Returns the sum as signed integers.
pub fn aggregate(uploads: &[(u32, Vec<u64>)], disclosures: &[Disclosure]) -> Result<Vec<i64>, FederationError> {
    let len = uploads.first().map_or(0, |u| u.1.len());
    if uploads.iter().any(|u| u.1.len() != len) {
        return Err(FederationError::Protocol("uploads of different lengths".into()));
    }
    let mut sum = vec![0u64; len];
    for (_, upload) in uploads {
        for (s, v) in sum.iter_mut().zip(upload) {
            *s = s.wrapping_add(*v);
        }
    }
    for d in disclosures {
        if !uploads.iter().any(|u| u.0 == d.survivor) || uploads.iter().any(|u| u.0 == d.dropped) {
            return Err(FederationError::Protocol(format!("a disclosure from {} about {} who is not dropped", d.survivor, d.dropped)));
        }
        // The survivor added the mask when its number is smaller; take it back out.
        apply_mask(&mut sum, &d.seed, d.survivor > d.dropped);
    }
    Ok(sum.into_iter().map(|v| v as i64).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Peers = Vec<(u32, [u8; 32])>;

    fn round(n: u32) -> (Vec<ClientKey>, Peers, Vec<Vec<i64>>) {
        let keys: Vec<ClientKey> = (0..n).map(ClientKey::random).collect();
        let publics = keys.iter().map(|k| (k.id, k.public)).collect();
        let updates = (0..n as i64).map(|i| (0..50).map(|j| (i * 1000 - j * 37) << 20).collect()).collect();
        (keys, publics, updates)
    }

    #[test]
    fn the_coordinator_gets_the_sum_and_masked_uploads_only() {
        let (keys, publics, updates) = round(3);
        let uploads: Vec<(u32, Vec<u64>)> = keys.iter().zip(&updates).map(|(k, u)| (k.id, k.masked(u, &publics).unwrap())).collect();
        for ((_, up), plain) in uploads.iter().zip(&updates) {
            assert!(up.iter().zip(plain).all(|(a, &b)| *a != b as u64), "an upload hides its update");
        }
        let expected: Vec<i64> = (0..50).map(|j| updates.iter().map(|u| u[j]).sum()).collect();
        assert_eq!(aggregate(&uploads, &[]).unwrap(), expected);
    }

    #[test]
    fn a_client_dropping_out_after_masking_is_recovered_from_the_survivors_disclosures() {
        let (keys, publics, updates) = round(4);
        let dropped = 2u32;
        let uploads: Vec<(u32, Vec<u64>)> =
            keys.iter().zip(&updates).filter(|(k, _)| k.id != dropped).map(|(k, u)| (k.id, k.masked(u, &publics).unwrap())).collect();
        let without = aggregate(&uploads, &[]).unwrap();
        let expected: Vec<i64> =
            (0..50).map(|j| updates.iter().enumerate().filter(|(i, _)| *i as u32 != dropped).map(|(_, u)| u[j]).sum()).collect();
        assert_ne!(without, expected, "the dropped client's masks do not cancel by themselves");
        let disclosures: Vec<Disclosure> = keys
            .iter()
            .filter(|k| k.id != dropped)
            .map(|k| Disclosure { survivor: k.id, dropped, seed: k.pair_seed(&publics[dropped as usize].1) })
            .collect();
        assert_eq!(aggregate(&uploads, &disclosures).unwrap(), expected);
        let bad = [Disclosure { survivor: 0, dropped: 1, seed: [0; 32] }];
        assert!(aggregate(&uploads, &bad).is_err(), "a disclosure about a client that uploaded is refused");
    }
}
