//! RFC 6962 / RFC 9162 Merkle trees over SHA-256: leaf and node hashes with 0x00/0x01 domain
//! separation, tree heads, inclusion proofs and consistency proofs, and their verification.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The hash of a leaf: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an inner node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves with root `root` (RFC 9162
/// §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a prefix of the tree of
/// `new_size` leaves with root `new_root` (RFC 9162 §2.1.4.2). An old size of 0 is refused
/// unless the new one is 0 too, as the reference verifiers do.
pub fn verify_consistency(old_size: u64, new_size: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        // Nothing to prove about an empty tree; RFC 9162 defines proofs for old sizes > 0.
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *old_root && sr == *new_root && s == 0
}

/// A tree built leaf by leaf that knows its root at every size without keeping the leaves: the
/// perfect subtrees along its right edge (RFC 9162's "compact range" of the whole tree).
#[derive(Debug, Clone, Default)]
pub struct Frontier {
    /// (hash, leaves) of each perfect subtree, largest first.
    subtrees: Vec<(Hash, u64)>,
    size: u64,
}

impl Frontier {
    /// Adds the next leaf (by its leaf hash).
    pub fn push(&mut self, leaf: Hash) {
        self.subtrees.push((leaf, 1));
        self.size += 1;
        while let [.., (left, a), (right, b)] = self.subtrees.as_slice()
            && a == b
        {
            let merged = (node_hash(left, right), a * 2);
            self.subtrees.truncate(self.subtrees.len() - 2);
            self.subtrees.push(merged);
        }
    }

    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The tree head now.
    pub fn root(&self) -> Hash {
        let mut iter = self.subtrees.iter().rev();
        let Some((last, _)) = iter.next() else {
            return empty_root();
        };
        iter.fold(*last, |right, (left, _)| node_hash(left, &right))
    }
}

/// A whole tree kept as its levels of perfect subtrees, so any tree head, audit path or
/// consistency proof over a prefix costs O(log² n) hashes instead of O(n).
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// levels[j][i]: the perfect subtree of 2^j leaves starting at leaf i·2^j.
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// The tree over `leaves` (leaf hashes).
    pub fn new(leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().expect("at least one level");
            let up: Vec<Hash> = below.chunks_exact(2).map(|p| node_hash(&p[0], &p[1])).collect();
            levels.push(up);
        }
        Self { levels }
    }

    /// Leaves in the tree.
    pub fn size(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// The leaf hash at `index`.
    pub fn leaf(&self, index: usize) -> Option<Hash> {
        self.levels.first().and_then(|l| l.get(index).copied())
    }

    /// The root of leaves `start..start + len` (len ≥ 1), as RFC 6962 splits it.
    fn range_root(&self, start: usize, len: usize) -> Hash {
        if len.is_power_of_two() && start.is_multiple_of(len) {
            return self.levels[len.trailing_zeros() as usize][start / len];
        }
        let k = split(len);
        node_hash(&self.range_root(start, k), &self.range_root(start + k, len - k))
    }

    /// The tree head of the first `size` leaves; `None` past the tree.
    pub fn root(&self, size: usize) -> Option<Hash> {
        match size {
            0 => Some(empty_root()),
            s if s <= self.size() => Some(self.range_root(0, s)),
            _ => None,
        }
    }

    /// The audit path of leaf `index` in the tree of the first `size` leaves.
    pub fn inclusion_proof(&self, index: usize, size: usize) -> Option<Vec<Hash>> {
        if index >= size || size > self.size() {
            return None;
        }
        let mut out = Vec::new();
        self.path(index, 0, size, &mut out);
        Some(out)
    }

    fn path(&self, m: usize, start: usize, n: usize, out: &mut Vec<Hash>) {
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, start, k, out);
            out.push(self.range_root(start + k, n - k));
        } else {
            self.path(m - k, start + k, n - k, out);
            out.push(self.range_root(start, k));
        }
    }

    /// The proof that the first `old_size` leaves' tree is a prefix of the first `new_size`'s.
    pub fn consistency_proof(&self, old_size: usize, new_size: usize) -> Option<Vec<Hash>> {
        if old_size > new_size || new_size > self.size() {
            return None;
        }
        let mut out = Vec::new();
        if old_size > 0 && old_size < new_size {
            self.subproof(old_size, 0, new_size, true, &mut out);
        }
        Some(out)
    }

    fn subproof(&self, m: usize, start: usize, n: usize, whole: bool, out: &mut Vec<Hash>) {
        if m == n {
            if !whole {
                out.push(self.range_root(start, n));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, k, whole, out);
            out.push(self.range_root(start + k, n - k));
        } else {
            self.subproof(m - k, start + k, n - k, false, out);
            out.push(self.range_root(start, k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6962 §2.1 as written, recursion over slices: the oracle the tree and the frontier are
    // held against.
    // The tree head (MTH) over leaf hashes.
    fn root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n);
                node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
            }
        }
    }

    // The audit path of leaf `index` in the tree over `leaves` (RFC 9162 §2.1.3.1); `None` when
    // `index` is outside the tree.
    fn inclusion_proof(index: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
        if index >= leaves.len() {
            return None;
        }
        let mut proof = Vec::new();
        path(index, leaves, &mut proof);
        Some(proof)
    }

    fn path(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
        let n = leaves.len();
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            path(m, &leaves[..k], out);
            out.push(root(&leaves[k..]));
        } else {
            path(m - k, &leaves[k..], out);
            out.push(root(&leaves[..k]));
        }
    }

    // The proof that the tree of the first `old_size` leaves is a prefix of the tree over `leaves`
    // (RFC 9162 §2.1.4.1); `None` when `old_size` is over the tree's size.
    fn consistency_proof(old_size: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
        if old_size > leaves.len() {
            return None;
        }
        let mut proof = Vec::new();
        if old_size > 0 && old_size < leaves.len() {
            subproof(old_size, leaves, true, &mut proof);
        }
        Some(proof)
    }

    fn subproof(m: usize, leaves: &[Hash], whole: bool, out: &mut Vec<Hash>) {
        let n = leaves.len();
        if m == n {
            if !whole {
                out.push(root(leaves));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            subproof(m, &leaves[..k], whole, out);
            out.push(root(&leaves[k..]));
        } else {
            subproof(m - k, &leaves[k..], false, out);
            out.push(root(&leaves[..k]));
        }
    }

    #[test]
    fn the_frontier_root_equals_the_recursive_root_at_every_size() {
        let leaves: Vec<Hash> = (0..70u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut f = Frontier::default();
        assert_eq!(f.root(), root(&[]));
        for (i, l) in leaves.iter().enumerate() {
            f.push(*l);
            assert_eq!(f.root(), root(&leaves[..=i]), "size {}", i + 1);
        }
    }

    #[test]
    fn every_inclusion_and_consistency_proof_verifies_and_a_wrong_one_does_not() {
        let leaves: Vec<Hash> = (0..33u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in 1..=leaves.len() {
            let tree = &leaves[..n];
            let r = root(tree);
            for i in 0..n {
                let p = inclusion_proof(i, tree).unwrap();
                assert!(verify_inclusion(&tree[i], i as u64, n as u64, &p, &r), "leaf {i} of {n}");
                let other = (i + 1) % n;
                if other != i {
                    assert!(!verify_inclusion(&tree[other], i as u64, n as u64, &p, &r), "wrong leaf {other} as {i} of {n}");
                }
            }
            let whole = Tree::new(leaves.clone());
            assert_eq!(whole.root(n), Some(r));
            for i in 0..n {
                assert_eq!(whole.inclusion_proof(i, n), inclusion_proof(i, tree), "tree path {i} of {n}");
            }
            for m in 1..=n {
                assert_eq!(whole.consistency_proof(m, n), consistency_proof(m, tree), "tree proof {m} -> {n}");
                let p = consistency_proof(m, tree).unwrap();
                assert!(verify_consistency(m as u64, n as u64, &root(&leaves[..m]), &r, &p), "{m} -> {n}");
                if m < n {
                    let forged = leaf_hash(b"forged");
                    assert!(!verify_consistency(m as u64, n as u64, &forged, &r, &p), "forged old root {m} -> {n}");
                }
            }
        }
    }

    #[test]
    fn proofs_outside_the_tree_are_refused() {
        let leaves = [leaf_hash(b"a"), leaf_hash(b"b")];
        assert!(inclusion_proof(2, &leaves).is_none());
        assert!(consistency_proof(3, &leaves).is_none());
        assert!(!verify_inclusion(&leaves[0], 2, 2, &[], &root(&leaves)));
    }
}
