//! The evidence bundle: one call's proof, checkable offline by anyone.
//!
//! It holds the record (the exact leaf bytes, and the same fields spelled
//! out for reading), its index, the inclusion proof into a signed
//! checkpoint's tree, the checkpoint, and the public key that signed it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::leaf::Leaf;
use crate::merkle::{Hash, leaf_hash, verify_inclusion};
use crate::note::{Checkpoint, NoteVerifier, open};

pub const FORMAT: &str = "lgsp-evidence/1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bundle {
    pub format: String,
    pub request_id: String,
    /// The record's fields, for reading; must equal what `leaf` encodes.
    pub record: serde_json::Value,
    /// The leaf exactly as hashed into the tree (canonical JSON text).
    pub leaf: String,
    pub leaf_index: u64,
    pub tree_size: u64,
    /// Base64 hashes, from the leaf's sibling up to the root's child.
    pub inclusion_proof: Vec<String>,
    /// The signed checkpoint (C2SP signed note) of a tree of `tree_size` leaves.
    pub checkpoint: String,
    /// The key that signed the checkpoint, as a note verifier key.
    pub public_key: String,
}

/// What a bundle proves, once checked.
#[derive(Debug, Clone)]
pub struct Verified {
    pub leaf: Leaf,
    pub checkpoint: Checkpoint,
    pub key: NoteVerifier,
}

impl Bundle {
    pub fn new(
        leaf: &Leaf,
        tree_size: u64,
        proof: &[Hash],
        checkpoint: &str,
        key: &NoteVerifier,
    ) -> Bundle {
        let text = String::from_utf8(leaf.encode()).expect("JSON is UTF-8");
        Bundle {
            format: FORMAT.to_owned(),
            request_id: leaf.request_id.clone(),
            record: serde_json::to_value(leaf).expect("a leaf is JSON"),
            leaf: text,
            leaf_index: leaf.index,
            tree_size,
            inclusion_proof: proof.iter().map(|h| STANDARD.encode(h)).collect(),
            checkpoint: checkpoint.to_owned(),
            public_key: key.to_vkey(),
        }
    }

    /// Checks everything the bundle claims. `trusted`, when given, is the key
    /// the checkpoint must be signed with (the platform's published key);
    /// without it the bundle's own key is used and the caller must compare it.
    pub fn verify(&self, trusted: Option<&NoteVerifier>) -> Result<Verified, String> {
        if self.format != FORMAT {
            return Err(format!("format {:?} is not {FORMAT}", self.format));
        }
        let leaf = Leaf::decode(self.leaf.as_bytes())?;
        let spelled: Leaf = serde_json::from_value(self.record.clone())
            .map_err(|e| format!("the record is not a call record: {e}"))?;
        if spelled != leaf {
            return Err("the record shown differs from the leaf that was hashed".into());
        }
        if leaf.request_id != self.request_id {
            return Err("the bundle's request id is not the record's".into());
        }
        if leaf.index != self.leaf_index {
            return Err(format!(
                "the record says index {}, the bundle {}",
                leaf.index, self.leaf_index
            ));
        }
        let own = NoteVerifier::parse(&self.public_key)?;
        let key = match trusted {
            Some(t) if *t != own => {
                return Err(format!(
                    "the bundle's key {} is not the trusted key {}",
                    own.key_id_hex(),
                    t.key_id_hex()
                ));
            }
            Some(t) => t.clone(),
            None => own,
        };
        let keys = [key];
        let (text, key) =
            open(&self.checkpoint, &keys).map_err(|e| format!("checkpoint signature: {e}"))?;
        let checkpoint = Checkpoint::parse(text)?;
        if checkpoint.origin != key.name {
            return Err(format!(
                "the checkpoint is of log {:?} but signed by key {:?}",
                checkpoint.origin, key.name
            ));
        }
        if checkpoint.size != self.tree_size {
            return Err(format!(
                "the checkpoint is of {} leaves, the proof of {}",
                checkpoint.size, self.tree_size
            ));
        }
        let proof = self
            .inclusion_proof
            .iter()
            .map(|h| {
                STANDARD
                    .decode(h)
                    .ok()
                    .and_then(|b| Hash::try_from(b).ok())
                    .ok_or_else(|| format!("proof hash {h:?} is not 32 bytes of base64"))
            })
            .collect::<Result<Vec<Hash>, String>>()?;
        verify_inclusion(
            leaf.index,
            checkpoint.size,
            &leaf_hash(self.leaf.as_bytes()),
            &proof,
            &checkpoint.root,
        )
        .map_err(|e| format!("inclusion proof: {e}"))?;
        Ok(Verified {
            leaf,
            checkpoint,
            key: key.clone(),
        })
    }
}
