//! The RFC 6962 / RFC 9162 Merkle tree over the call log: hashes, proofs
//! built from perfect subtrees, and their verification.
//!
//! A leaf is hashed as `SHA-256(0x00 || leaf)`, an interior node as
//! `SHA-256(0x01 || left || right)`. A tree of `n` leaves splits at the
//! largest power of two below `n`. Proofs are assembled from hashes of
//! *perfect* subtrees (2^h leaves starting at a multiple of 2^h): once its
//! leaves exist such a hash never changes, which is what lets them be stored
//! in tiles and served to anyone.

use aws_lc_rs::digest::{Context, SHA256};
use thiserror::Error;

pub type Hash = [u8; 32];

/// Root of the empty tree: SHA-256 of nothing.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut c = Context::new(&SHA256);
    c.update(&[0]);
    c.update(leaf);
    c.finish().as_ref().try_into().expect("SHA-256 is 32 bytes")
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut c = Context::new(&SHA256);
    c.update(&[1]);
    c.update(left);
    c.update(right);
    c.finish().as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// Hashes a run of 2^h consecutive hashes of one height into the hash 'h' levels above.
pub fn fold(hashes: &[Hash]) -> Hash {
    debug_assert!(hashes.len().is_power_of_two());
    let mut level = hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks_exact(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    level[0]
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProofError {
    #[error("index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {from} cannot be proven consistent with tree size {to}")]
    BadSizes { from: u64, to: u64 },
    #[error("the proof has {got} hashes where {want} are expected")]
    WrongLength { got: usize, want: usize },
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
    #[error("the hash of the subtree at height {height}, index {index} is not available")]
    Missing { height: u32, index: u64 },
}

/// Where proofs get perfect-subtree hashes from: node `index` at `height`
/// covers leaves `[index << height, (index + 1) << height)`.
pub trait NodeSource {
    fn node(&self, height: u32, index: u64) -> Result<Hash, ProofError>;
}

/// Largest power of two strictly below `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Root of the leaves `[lo, hi)`, built from perfect subtrees.
pub fn subtree_root<S: NodeSource + ?Sized>(src: &S, lo: u64, hi: u64) -> Result<Hash, ProofError> {
    let n = hi - lo;
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        let height = n.trailing_zeros();
        return src.node(height, lo >> height);
    }
    let k = split(n);
    let left = subtree_root(src, lo, lo + k)?;
    let right = subtree_root(src, lo + k, hi)?;
    Ok(node_hash(&left, &right))
}

/// Root of a tree of `size` leaves.
pub fn tree_root<S: NodeSource + ?Sized>(src: &S, size: u64) -> Result<Hash, ProofError> {
    if size == 0 {
        return Ok(EMPTY_ROOT);
    }
    subtree_root(src, 0, size)
}

/// The audit path of leaf `index` in the tree of `size` leaves (RFC 9162 §2.1.3.1).
pub fn inclusion_proof<S: NodeSource + ?Sized>(
    src: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::new();
    path(src, index, 0, size, &mut proof)?;
    Ok(proof)
}

fn path<S: NodeSource + ?Sized>(
    src: &S,
    m: u64,
    lo: u64,
    hi: u64,
    out: &mut Vec<Hash>,
) -> Result<(), ProofError> {
    let n = hi - lo;
    if n == 1 {
        return Ok(());
    }
    let k = split(n);
    if m < lo + k {
        path(src, m, lo, lo + k, out)?;
        out.push(subtree_root(src, lo + k, hi)?);
    } else {
        path(src, m, lo + k, hi, out)?;
        out.push(subtree_root(src, lo, lo + k)?);
    }
    Ok(())
}

/// The proof that the tree of `to` leaves extends the tree of `from` leaves
/// (RFC 9162 §2.1.4.1). Empty when the sizes are equal or `from` is 0.
pub fn consistency_proof<S: NodeSource + ?Sized>(
    src: &S,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>, ProofError> {
    if from > to {
        return Err(ProofError::BadSizes { from, to });
    }
    let mut proof = Vec::new();
    if from == 0 || from == to {
        return Ok(proof);
    }
    subproof(src, from, 0, to, true, &mut proof)?;
    Ok(proof)
}

fn subproof<S: NodeSource + ?Sized>(
    src: &S,
    m: u64,
    lo: u64,
    hi: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), ProofError> {
    let n = hi - lo;
    if m == n {
        if !whole {
            out.push(subtree_root(src, lo, hi)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(src, m, lo, lo + k, whole, out)?;
        out.push(subtree_root(src, lo + k, hi)?);
    } else {
        subproof(src, m - k, lo + k, hi, false, out)?;
        out.push(subtree_root(src, lo, lo + k)?);
    }
    Ok(())
}

/// Checks that `leaf` sits at `index` in the tree of `size` leaves with `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let want = inclusion_length(index, size);
    if proof.len() != want {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            want,
        });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::RootMismatch);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 || r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Number of hashes in the audit path of `index` in a tree of `size`.
fn inclusion_length(index: u64, size: u64) -> usize {
    let (mut f, mut s, mut len) = (index, size - 1, 0);
    while s != 0 {
        if f & 1 == 0 && f == s {
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        }
        len += 1;
        f >>= 1;
        s >>= 1;
    }
    len
}

/// Checks that the tree (`to`, `to_root`) extends (`from`, `from_root`)
/// (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    from: u64,
    to: u64,
    from_root: &Hash,
    to_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if from > to {
        return Err(ProofError::BadSizes { from, to });
    }
    if from == to {
        return if proof.is_empty() && from_root == to_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if from == 0 {
        return if proof.is_empty() && *from_root == EMPTY_ROOT {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength { got: 0, want: 1 });
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if from.is_power_of_two() {
        path.push(*from_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (from - 1, to - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let mut fr = path[0];
    let mut sr = path[0];
    for c in &path[1..] {
        if s == 0 {
            return Err(ProofError::RootMismatch);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 || fr != *from_root || sr != *to_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Perfect-subtree hashes held in memory, for tests and for re-checking a
/// whole log: `levels[h][i]` is node `i` at height `h`.
#[derive(Debug, Default, Clone)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    pub fn push(&mut self, leaf: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let mut h = 0;
        while self.levels[h].len().is_multiple_of(2) {
            let row = &self.levels[h];
            let parent = node_hash(&row[row.len() - 2], &row[row.len() - 1]);
            if self.levels.len() == h + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[h + 1].push(parent);
            h += 1;
        }
    }

    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    pub fn root(&self) -> Hash {
        tree_root(self, self.size()).expect("every node of a memory tree is present")
    }
}

impl NodeSource for MemoryTree {
    fn node(&self, height: u32, index: u64) -> Result<Hash, ProofError> {
        self.levels
            .get(height as usize)
            .and_then(|l| l.get(index as usize))
            .copied()
            .ok_or(ProofError::Missing { height, index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(s: &str) -> Hash {
        let bytes: Vec<u8> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect();
        bytes.try_into().unwrap()
    }

    /// The eight leaves of the RFC 6962 test vectors used by Certificate
    /// Transparency implementations.
    fn ct_leaves() -> Vec<Vec<u8>> {
        vec![
            vec![],
            vec![0x00],
            vec![0x10],
            vec![0x20, 0x21],
            vec![0x30, 0x31],
            vec![0x40, 0x41, 0x42, 0x43],
            vec![0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            (0x60..=0x6f).collect(),
        ]
    }

    fn ct_tree(n: usize) -> MemoryTree {
        let mut t = MemoryTree::default();
        for leaf in &ct_leaves()[..n] {
            t.push(leaf_hash(leaf));
        }
        t
    }

    #[test]
    fn empty_tree_root() {
        assert_eq!(
            hex(&EMPTY_ROOT),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(MemoryTree::default().root(), EMPTY_ROOT);
    }

    #[test]
    fn roots_match_the_published_vectors() {
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        for (i, want) in roots.iter().enumerate() {
            assert_eq!(
                hex(&ct_tree(i + 1).root()),
                *want,
                "root of {} leaves",
                i + 1
            );
        }
    }

    #[test]
    fn inclusion_proofs_match_the_published_vectors() {
        let tree = ct_tree(8);
        // (leaf index, tree size, path)
        let vectors: [(u64, u64, &[&str]); 5] = [
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
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
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
        for (index, size, want) in vectors {
            let proof = inclusion_proof(&tree, index, size).unwrap();
            let got: Vec<String> = proof.iter().map(hex).collect();
            assert_eq!(got, want, "path of {index} in {size}");
            let leaf = leaf_hash(&ct_leaves()[index as usize]);
            let root = ct_tree(size as usize).root();
            verify_inclusion(index, size, &leaf, &proof, &root).unwrap();
        }
    }

    #[test]
    fn consistency_proofs_match_the_published_vectors() {
        let tree = ct_tree(8);
        let vectors: [(u64, u64, &[&str]); 3] = [
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
        ];
        for (from, to, want) in vectors {
            let proof = consistency_proof(&tree, from, to).unwrap();
            let got: Vec<String> = proof.iter().map(hex).collect();
            assert_eq!(got, want, "consistency {from} → {to}");
            let a = ct_tree(from as usize).root();
            let b = ct_tree(to as usize).root();
            verify_consistency(from, to, &a, &b, &proof).unwrap();
        }
    }

    #[test]
    fn every_proof_of_a_small_tree_verifies_and_a_changed_one_does_not() {
        let mut tree = MemoryTree::default();
        for i in 0..70u32 {
            tree.push(leaf_hash(&i.to_be_bytes()));
        }
        let roots: Vec<Hash> = (0..=70).map(|n| tree_root(&tree, n).unwrap()).collect();
        for size in 1..=70u64 {
            for index in 0..size {
                let leaf = leaf_hash(&(index as u32).to_be_bytes());
                let proof = inclusion_proof(&tree, index, size).unwrap();
                verify_inclusion(index, size, &leaf, &proof, &roots[size as usize]).unwrap();
                let other = leaf_hash(b"other");
                assert!(
                    verify_inclusion(index, size, &other, &proof, &roots[size as usize]).is_err()
                );
                if size > 1 {
                    assert!(
                        verify_inclusion(
                            (index + 1) % size,
                            size,
                            &leaf,
                            &proof,
                            &roots[size as usize]
                        )
                        .is_err()
                    );
                }
            }
            for from in 0..=size {
                let proof = consistency_proof(&tree, from, size).unwrap();
                let (a, b) = (&roots[from as usize], &roots[size as usize]);
                verify_consistency(from, size, a, b, &proof).unwrap();
                if from > 0 && from < size {
                    let mut bad = proof.clone();
                    bad[0][0] ^= 1;
                    assert!(verify_consistency(from, size, a, b, &bad).is_err());
                    assert!(verify_consistency(from, size, b, a, &proof).is_err());
                }
            }
        }
    }

    #[test]
    fn unhex_roundtrips() {
        let h = leaf_hash(b"x");
        assert_eq!(unhex(&hex(&h)), h);
    }
}
