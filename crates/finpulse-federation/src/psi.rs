//! Private set intersection of user ids by Diffie–Hellman on ristretto255.
//!
//! Each party hashes its ids to the curve (SHA-512, `RistrettoPoint::from_hash`) and raises
//! them to its own secret scalar. The guest sends `H(x)^a`, the host sends `H(y)^b` and returns
//! the guest's points raised again, `H(x)^ab`; the guest raises the host's to `H(y)^ba` and
//! compares. Equal points mean equal ids; everything else is a random-looking group element
//! (DDH). With [`PsiReveal::Intersection`] the host returns the doubled points in the guest's
//! order and the guest tells the host which of its positions matched, in the guest's order —
//! the order both parties then use for the common rows. With [`PsiReveal::SizeOnly`] the host
//! shuffles the doubled points first, so the guest can count matches but not place them, and
//! nothing goes back to the host.

use std::collections::HashMap;

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use rand::Rng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use sha2::{Digest, Sha512};

use crate::FederationError;
use crate::job::PsiReveal;
use crate::message::Message;
use crate::transport::Endpoint;

/// Ids one party may bring to an intersection, at most.
pub const PSI_IDS_MAX: usize = 100_000_000;

/// Domain separation for hashing ids to the curve.
const HASH_DOMAIN: &[u8] = b"finpulse psi ristretto255 v1\0";

/// A compressed ristretto255 point as it travels.
pub type Point = [u8; 32];

/// What one party learns from an intersection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsiOutcome {
    /// Positions in this party's id list of the common ids, in the order both parties share
    /// (the guest's); `None` when the job reveals only the size.
    pub common_rows: Option<Vec<usize>>,
    /// How many ids are common; `None` for the host of a size-only job.
    pub size: Option<usize>,
}

/// A party's secret exponent for one intersection.
pub struct PsiKey(Scalar);

impl PsiKey {
    /// A fresh random key.
    pub fn random() -> Self {
        let mut wide = [0u8; 64];
        rand::rng().fill(&mut wide[..]);
        Self(Scalar::from_bytes_mod_order_wide(&wide))
    }

    /// `H(id)^k` for every id, on all cores.
    pub fn blind_ids<I: AsRef<[u8]> + Sync>(&self, ids: &[I]) -> Vec<Point> {
        ids.par_iter().map(|id| (hash_to_curve(id.as_ref()) * self.0).compress().to_bytes()).collect()
    }

    /// `P^k` for every point another party blinded; a byte string that is no point is an error
    /// naming its position.
    pub fn reblind(&self, points: &[Point]) -> Result<Vec<Point>, FederationError> {
        points
            .par_iter()
            .enumerate()
            .map(|(i, p)| {
                let point = CompressedRistretto(*p)
                    .decompress()
                    .ok_or_else(|| FederationError::Protocol(format!("PSI point {i} is not a ristretto255 encoding")))?;
                Ok((point * self.0).compress().to_bytes())
            })
            .collect()
    }
}

fn hash_to_curve(id: &[u8]) -> RistrettoPoint {
    RistrettoPoint::from_hash(Sha512::new().chain_update(HASH_DOMAIN).chain_update(id))
}

fn check_count(n: usize) -> Result<(), FederationError> {
    if n > PSI_IDS_MAX {
        return Err(FederationError::Protocol(format!("{n} ids in an intersection; at most {PSI_IDS_MAX}")));
    }
    Ok(())
}

fn expect_points(message: Message, what: &str) -> Result<Vec<Point>, FederationError> {
    match message {
        Message::PsiBlinded { points } | Message::PsiDoubled { points } => {
            check_count(points.len())?;
            Ok(points)
        }
        other => Err(FederationError::Protocol(format!("expected {what}, got {}", other.kind()))),
    }
}

/// The guest's side: returns which of `ids` are common (or how many).
pub fn psi_guest<I: AsRef<[u8]> + Sync>(ep: &Endpoint, host: &str, ids: &[I], reveal: PsiReveal) -> Result<PsiOutcome, FederationError> {
    check_count(ids.len())?;
    let key = PsiKey::random();
    ep.send(host, Message::PsiBlinded { points: key.blind_ids(ids) })?;
    let host_points = expect_points(ep.recv(host)?, "the host's blinded ids")?;
    let doubled_mine = expect_points(ep.recv(host)?, "the guest's ids blinded twice")?;
    if doubled_mine.len() != ids.len() {
        return Err(FederationError::Protocol(format!("the host returned {} points for {} ids", doubled_mine.len(), ids.len())));
    }
    let doubled_host: HashMap<Point, u32> = key.reblind(&host_points)?.into_iter().enumerate().map(|(j, p)| (p, j as u32)).collect();
    match reveal {
        PsiReveal::SizeOnly => {
            let size = doubled_mine.iter().filter(|p| doubled_host.contains_key(*p)).count();
            Ok(PsiOutcome { common_rows: None, size: Some(size) })
        }
        PsiReveal::Intersection => {
            let (mine, theirs): (Vec<usize>, Vec<u32>) =
                doubled_mine.iter().enumerate().filter_map(|(i, p)| doubled_host.get(p).map(|&j| (i, j))).unzip();
            ep.send(host, Message::PsiMatches { positions: theirs })?;
            Ok(PsiOutcome { size: Some(mine.len()), common_rows: Some(mine) })
        }
    }
}

/// The host's side: answers the guest and, when the job reveals it, learns which of `ids` are
/// common, in the guest's order.
pub fn psi_host<I: AsRef<[u8]> + Sync>(ep: &Endpoint, guest: &str, ids: &[I], reveal: PsiReveal) -> Result<PsiOutcome, FederationError> {
    check_count(ids.len())?;
    let key = PsiKey::random();
    let guest_points = expect_points(ep.recv(guest)?, "the guest's blinded ids")?;
    ep.send(guest, Message::PsiBlinded { points: key.blind_ids(ids) })?;
    let mut doubled = key.reblind(&guest_points)?;
    if reveal == PsiReveal::SizeOnly {
        doubled.shuffle(&mut rand::rng());
    }
    ep.send(guest, Message::PsiDoubled { points: doubled })?;
    if reveal == PsiReveal::SizeOnly {
        return Ok(PsiOutcome { common_rows: None, size: None });
    }
    let positions = match ep.recv(guest)? {
        Message::PsiMatches { positions } => positions,
        other => return Err(FederationError::Protocol(format!("expected the matched positions, got {}", other.kind()))),
    };
    let rows = positions
        .iter()
        .map(|&j| {
            if (j as usize) < ids.len() {
                Ok(j as usize)
            } else {
                Err(FederationError::Protocol(format!("matched position {j} is beyond the host's {} ids", ids.len())))
            }
        })
        .collect::<Result<Vec<usize>, _>>()?;
    Ok(PsiOutcome { size: Some(rows.len()), common_rows: Some(rows) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::LocalTransport;
    use std::collections::HashSet;
    use std::time::Duration;

    fn run(guest_ids: Vec<String>, host_ids: Vec<String>, reveal: PsiReveal) -> (PsiOutcome, PsiOutcome) {
        let transport = LocalTransport::new(&["g", "h"]);
        std::thread::scope(|s| {
            let host = s.spawn(|| psi_host(&Endpoint::new(&transport, "j", "h", Duration::from_secs(30)), "g", &host_ids, reveal).unwrap());
            let guest = psi_guest(&Endpoint::new(&transport, "j", "g", Duration::from_secs(30)), "h", &guest_ids, reveal).unwrap();
            (guest, host.join().unwrap())
        })
    }

    fn ids(range: std::ops::Range<u32>, step: u32) -> Vec<String> {
        range.step_by(step as usize).map(|i| format!("user-{i}")).collect()
    }

    #[test]
    fn the_intersection_equals_the_plaintext_intersection_in_one_order() {
        let guest_ids = ids(0..3000, 3);
        let host_ids = ids(0..3000, 2);
        let (guest, host) = run(guest_ids.clone(), host_ids.clone(), PsiReveal::Intersection);
        let plain: HashSet<&String> = guest_ids.iter().filter(|id| host_ids.contains(id)).collect();
        let guest_rows = guest.common_rows.unwrap();
        let host_rows = host.common_rows.unwrap();
        assert_eq!(guest_rows.len(), plain.len());
        assert_eq!(guest.size, Some(500));
        for (&g, &h) in guest_rows.iter().zip(&host_rows) {
            assert_eq!(guest_ids[g], host_ids[h], "both parties put the same id at the same position");
            assert!(plain.contains(&guest_ids[g]));
        }
    }

    #[test]
    fn size_only_reveals_the_count_and_no_rows() {
        let (guest, host) = run(ids(0..1000, 1), ids(500..1700, 1), PsiReveal::SizeOnly);
        assert_eq!(guest, PsiOutcome { common_rows: None, size: Some(500) });
        assert_eq!(host, PsiOutcome { common_rows: None, size: None });
    }

    #[test]
    fn a_byte_string_that_is_no_point_is_refused_with_its_position() {
        let key = PsiKey::random();
        let mut points = key.blind_ids(&["a", "b"]);
        points[1] = [0xff; 32];
        let err = key.reblind(&points).unwrap_err().to_string();
        assert!(err.contains("point 1"), "{err}");
    }
}
