//! The encodings of tamper evidence (docs/integrity.md): RFC 8785 canonical JSON, base64, and
//! RFC 9162 (Certificate Transparency 2.0) Merkle trees, §2.1: the tree hash, inclusion proofs
//! and consistency proofs, each with its verification algorithm exactly as the RFC gives it, so
//! any RFC 9162 verifier accepts what this module produces.
//!
//! `MTH({}) = SHA-256()`, `MTH({d0}) = SHA-256(0x00 || d0)`, and for n > 1 with k the largest
//! power of two below n: `MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))`. Callers pass
//! leaf hashes (`leaf_hash(d)`), not leaf data.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

/// Standard base64 with padding: every hash, key, salt and signature in the integrity formats.
pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

pub fn unb64(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    B64.decode(s)
}

/// RFC 8785 (JCS) canonical JSON of a value: what leaves and seal statements hash and sign.
pub fn canonical(v: &serde_json::Value) -> Vec<u8> {
    serde_jcs::to_vec(v).expect("a JSON value canonicalises")
}

pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)`: the hash of one leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly below `n` (n > 1).
fn split(n: usize) -> usize {
    debug_assert!(n > 1);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The tree hash of leaf hashes `leaves` (RFC 9162 MTH), without recursion: perfect subtrees are
/// merged left to right as in a binary counter, then the right edge is folded.
pub fn root(leaves: &[Hash]) -> Hash {
    let mut f = Frontier::default();
    for l in leaves {
        f.push(*l);
    }
    f.root()
}

/// The right edge of a growing tree: the roots of its perfect subtrees, largest first. Appending
/// a leaf and reading the root cost O(log n); a log of seals keeps one instead of re-reading
/// every earlier leaf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (height, hash), heights strictly decreasing.
    nodes: Vec<(u32, Hash)>,
}

impl Frontier {
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn push(&mut self, leaf: Hash) {
        let mut node = (0u32, leaf);
        while let Some(&(h, left)) = self.nodes.last() {
            if h != node.0 {
                break;
            }
            self.nodes.pop();
            node = (h + 1, node_hash(&left, &node.1));
        }
        self.nodes.push(node);
        self.size += 1;
    }

    /// The perfect subtrees' roots, largest first (what a seal keeps to extend the log).
    pub fn hashes(&self) -> Vec<Hash> {
        self.nodes.iter().map(|n| n.1).collect()
    }

    /// A frontier from its size and `hashes()`; `None` if they do not fit together.
    pub fn from_parts(size: u64, hashes: &[Hash]) -> Option<Self> {
        let heights: Vec<u32> = (0..64u32).rev().filter(|h| size & (1 << h) != 0).collect();
        (heights.len() == hashes.len())
            .then(|| Self { size, nodes: heights.into_iter().zip(hashes.iter().copied()).collect() })
    }

    /// The tree hash of every leaf pushed so far.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(&(_, mut acc)) = it.next() else {
            return Sha256::digest([]).into();
        };
        for (_, left) in it {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// The inclusion proof (audit path) of leaf `index` in the tree of `leaves` (RFC 9162 §2.1.3.1),
/// bottom to top.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Vec<Hash> {
    assert!(index < leaves.len(), "leaf index {index} outside a tree of {}", leaves.len());
    let mut path = Vec::new();
    path_into(leaves, index, &mut path);
    path
}

fn path_into(d: &[Hash], m: usize, out: &mut Vec<Hash>) {
    let n = d.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path_into(&d[..k], m, out);
        out.push(root(&d[k..]));
    } else {
        path_into(&d[k..], m - k, out);
        out.push(root(&d[..k]));
    }
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, path: &[Hash], expected_root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *expected_root
}

/// The consistency proof between the tree of the first `old_size` leaves and the tree of all of
/// `leaves` (RFC 9162 §2.1.4.1).
pub fn consistency_proof(leaves: &[Hash], old_size: usize) -> Vec<Hash> {
    assert!(old_size <= leaves.len());
    let mut out = Vec::new();
    if old_size > 0 && old_size < leaves.len() {
        subproof(old_size, leaves, true, &mut out);
    }
    out
}

fn subproof(m: usize, d: &[Hash], b: bool, out: &mut Vec<Hash>) {
    let n = d.len();
    if m == n {
        if !b {
            out.push(root(d));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &d[..k], b, out);
        out.push(root(&d[k..]));
    } else {
        subproof(m - k, &d[k..], false, out);
        out.push(root(&d[..k]));
    }
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2).
pub fn verify_consistency(old_size: u64, new_size: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if old_size.is_power_of_two() {
        path.insert(0, *old_root);
    }
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let Some((first, rest)) = path.split_first() else { return false };
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && fr == *old_root && sr == *new_root
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn canonical_json_is_rfc_8785() {
        // Keys sorted by UTF-16 code units, no whitespace, ECMAScript numbers (RFC 8785 §3.2.3).
        let v = json!({"b": [1e21, 0.5, -0.0, 100], "a": "€\u{1}", "\u{e9}": true, "Z": null});
        assert_eq!(
            String::from_utf8(canonical(&v)).unwrap(),
            "{\"Z\":null,\"a\":\"€\\u0001\",\"b\":[1e+21,0.5,0,100],\"é\":true}"
        );
    }

    /// The RFC's recursive definition, as written, to check the iterative one against.
    fn mth(d: &[Hash]) -> Hash {
        match d.len() {
            0 => Sha256::digest([]).into(),
            1 => d[0],
            n => {
                let k = split(n);
                node_hash(&mth(&d[..k]), &mth(&d[k..]))
            }
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("leaf {i}").as_bytes())).collect()
    }

    #[test]
    fn the_root_is_rfc_9162s_tree_hash_for_every_size_up_to_70() {
        for n in 0..70 {
            let d = leaves(n);
            assert_eq!(root(&d), mth(&d), "n = {n}");
        }
        // The empty tree and a one-leaf tree, as the RFC defines them.
        assert_eq!(root(&[]), <[u8; 32]>::from(Sha256::digest([])));
        assert_eq!(root(&leaves(1)), leaf_hash(b"leaf 0"));
    }

    #[test]
    fn every_inclusion_proof_verifies_and_a_wrong_leaf_index_size_or_path_does_not() {
        for n in 1..40 {
            let d = leaves(n);
            let r = root(&d);
            for m in 0..n {
                let p = inclusion_proof(&d, m);
                assert!(verify_inclusion(&d[m], m as u64, n as u64, &p, &r), "n {n} m {m}");
                assert!(!verify_inclusion(&leaf_hash(b"other"), m as u64, n as u64, &p, &r));
                if n > 1 {
                    assert!(!verify_inclusion(&d[m], ((m + 1) % n) as u64, n as u64, &p, &r), "n {n} m {m}");
                    let mut bad = p.clone();
                    bad[0][0] ^= 1;
                    assert!(!verify_inclusion(&d[m], m as u64, n as u64, &bad, &r));
                    assert!(!verify_inclusion(&d[m], m as u64, n as u64, &p[..p.len() - 1], &r));
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_a_rewritten_history_does_not() {
        for n in 1..34 {
            let d = leaves(n);
            let new_root = root(&d);
            for m in 1..=n {
                let old_root = root(&d[..m]);
                let p = consistency_proof(&d, m);
                assert!(verify_consistency(m as u64, n as u64, &old_root, &new_root, &p), "{m} → {n}");
                if m < n {
                    // A different old tree (one leaf rewritten) is not consistent with the new one.
                    let mut other = d[..m].to_vec();
                    other[m - 1] = leaf_hash(b"rewritten");
                    assert!(!verify_consistency(m as u64, n as u64, &root(&other), &new_root, &p), "{m} → {n}");
                }
            }
        }
    }

    #[test]
    fn a_frontier_gives_the_root_of_every_prefix() {
        let d = leaves(100);
        let mut f = Frontier::default();
        for (i, l) in d.iter().enumerate() {
            f.push(*l);
            assert_eq!(f.root(), mth(&d[..=i]));
            assert_eq!(f.size(), i as u64 + 1);
            assert_eq!(Frontier::from_parts(f.size(), &f.hashes()), Some(f.clone()));
        }
    }
}
