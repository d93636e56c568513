//! The Certificate Transparency reference vectors for RFC 6962 trees: the 8 reference leaves,
//! the roots of every size, audit paths and consistency proofs.
//!
//! Source: google/certificate-transparency `cpp/merkletree/merkle_tree_test.cc` (commit
//! 0e901cacd1388fa16f78b184612f6cd16e5ceec1; its tables number leaves from 1) and
//! transparency-dev/merkle `testdata/{inclusion,consistency}/*/happy-path.json` (0-based,
//! which adds the (6, 7) consistency pair). Indexes below are 0-based.

use finpulse_access::merkle::{self, Hash};

const LEAVES: [&str; 8] = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];

const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf index, tree size, audit path).
const INCLUSION: &[(usize, usize, &[&str])] = &[
    (0, 1, &[]),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (old size, new size, proof).
const CONSISTENCY: &[(usize, usize, &[&str])] = &[
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn h(hex_text: &str) -> Hash {
    hex::decode(hex_text).unwrap().try_into().unwrap()
}

fn leaf_hashes() -> Vec<Hash> {
    LEAVES.iter().map(|l| merkle::leaf_hash(&hex::decode(l).unwrap())).collect()
}

#[test]
fn roots_of_every_size_match_the_reference() {
    let leaves = leaf_hashes();
    let tree = merkle::Tree::new(leaves.clone());
    let mut frontier = merkle::Frontier::default();
    assert_eq!(tree.root(0), Some(h(ROOTS[0])));
    for n in 1..=8 {
        frontier.push(leaves[n - 1]);
        assert_eq!(tree.root(n), Some(h(ROOTS[n])), "size {n}");
        assert_eq!(frontier.root(), h(ROOTS[n]), "frontier at size {n}");
    }
}

#[test]
fn audit_paths_match_the_reference_and_verify() {
    let leaves = leaf_hashes();
    let tree = merkle::Tree::new(leaves.clone());
    for &(index, size, path) in INCLUSION {
        let expected: Vec<Hash> = path.iter().map(|p| h(p)).collect();
        assert_eq!(tree.inclusion_proof(index, size).unwrap(), expected, "leaf {index} of {size}");
        assert!(merkle::verify_inclusion(&leaves[index], index as u64, size as u64, &expected, &h(ROOTS[size])));
        let mut broken = expected.clone();
        if let Some(first) = broken.first_mut() {
            first[0] ^= 1;
            assert!(!merkle::verify_inclusion(&leaves[index], index as u64, size as u64, &broken, &h(ROOTS[size])));
        }
    }
}

#[test]
fn consistency_proofs_match_the_reference_and_verify() {
    let leaves = leaf_hashes();
    let tree = merkle::Tree::new(leaves.clone());
    for &(old, new, proof) in CONSISTENCY {
        let expected: Vec<Hash> = proof.iter().map(|p| h(p)).collect();
        assert_eq!(tree.consistency_proof(old, new).unwrap(), expected, "{old} -> {new}");
        assert!(merkle::verify_consistency(old as u64, new as u64, &h(ROOTS[old]), &h(ROOTS[new]), &expected), "{old} -> {new}");
        if old < new {
            assert!(!merkle::verify_consistency(old as u64, new as u64, &h(ROOTS[old]), &h(ROOTS[new - 1]), &expected));
        }
    }
    // An empty tree has nothing to be consistent with, and equal sizes need an empty proof.
    assert!(!merkle::verify_consistency(0, 1, &h(ROOTS[0]), &h(ROOTS[1]), &[]));
    assert!(!merkle::verify_consistency(1, 2, &h(ROOTS[1]), &h(ROOTS[2]), &[]));
}
