//! Checkpoints (C2SP `tlog-checkpoint`) signed as C2SP signed notes with Ed25519.
//!
//! A checkpoint's text is three lines: the log's origin, the tree size in
//! decimal, the root hash in standard base64. The signed note adds an empty
//! line and one line per signature: `— NAME BASE64(KEYID || SIGNATURE)`,
//! where KEYID is the first four bytes of SHA-256(NAME || "\n" || 0x01 ||
//! PUBLIC KEY) and the signature covers the text, final newline included.
//! A verifier key is written `NAME+KEYID(hex)+BASE64(0x01 || PUBLIC KEY)`.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::merkle::Hash;

const ED25519_ALG: u8 = 0x01;
const DASH: &str = "\u{2014} ";

/// A tree head: what a checkpoint states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Parses a checkpoint's text (extension lines after the third are allowed and ignored).
    pub fn parse(text: &str) -> Result<Checkpoint, String> {
        let mut lines = text.split_inclusive('\n');
        let mut line = |what: &str| {
            lines
                .next()
                .and_then(|l| l.strip_suffix('\n'))
                .ok_or_else(|| format!("the checkpoint has no {what} line"))
        };
        let origin = line("origin")?;
        if origin.is_empty() {
            return Err("the checkpoint's origin is empty".into());
        }
        let size_text = line("size")?;
        if size_text.is_empty()
            || !size_text.bytes().all(|b| b.is_ascii_digit())
            || (size_text.len() > 1 && size_text.starts_with('0'))
        {
            return Err(format!(
                "the checkpoint's size {size_text:?} is not a decimal number"
            ));
        }
        let size = size_text
            .parse()
            .map_err(|_| format!("the checkpoint's size {size_text:?} is too large"))?;
        let root = STANDARD
            .decode(line("root hash")?)
            .ok()
            .and_then(|b| <Hash>::try_from(b).ok())
            .ok_or("the checkpoint's root hash is not 32 bytes of base64")?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// The key that signs checkpoints, with the name the signatures carry.
pub struct NoteSigner {
    name: String,
    pair: Ed25519KeyPair,
    key_id: [u8; 4],
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &hex4(&self.key_id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    pub fn new(name: &str, pkcs8: &[u8]) -> Result<NoteSigner, String> {
        check_name(name)?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| e.to_string())?;
        let key_id = key_id(name, pair.public_key().as_ref());
        Ok(NoteSigner {
            name: name.to_owned(),
            pair,
            key_id,
        })
    }

    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            public: self.pair.public_key().as_ref().to_vec(),
        }
    }

    /// Signs `text` (which must end with a newline) into a signed note.
    pub fn sign(&self, text: &str) -> String {
        debug_assert!(text.ends_with('\n'));
        let signature = self.pair.sign(text.as_bytes());
        let mut blob = self.key_id.to_vec();
        blob.extend_from_slice(signature.as_ref());
        format!("{text}\n{DASH}{} {}\n", self.name, STANDARD.encode(blob))
    }
}

/// A public key that checks signed notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    pub name: String,
    pub key_id: [u8; 4],
    pub public: Vec<u8>,
}

impl NoteVerifier {
    /// Parses `NAME+KEYID+BASE64KEY`.
    pub fn parse(vkey: &str) -> Result<NoteVerifier, String> {
        // The name holds no '+'; the base64 key may.
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err("a verifier key is NAME+KEYID+KEY".into());
        };
        check_name(name)?;
        let blob = STANDARD
            .decode(key)
            .map_err(|_| "the verifier key's key is not base64".to_owned())?;
        if blob.len() != 33 || blob[0] != ED25519_ALG {
            return Err("the verifier key is not an Ed25519 key".into());
        }
        let public = blob[1..].to_vec();
        let key_id = key_id(name, &public);
        if hex4(&key_id) != id {
            return Err("the verifier key's id does not match its name and key".into());
        }
        Ok(NoteVerifier {
            name: name.to_owned(),
            key_id,
            public,
        })
    }

    pub fn to_vkey(&self) -> String {
        let mut blob = vec![ED25519_ALG];
        blob.extend_from_slice(&self.public);
        format!(
            "{}+{}+{}",
            self.name,
            hex4(&self.key_id),
            STANDARD.encode(blob)
        )
    }

    pub fn key_id_hex(&self) -> String {
        hex4(&self.key_id)
    }
}

/// Splits a signed note into its text and checks it carries a valid
/// signature by one of `keys`. Returns the text and the key that signed.
pub fn open<'a>(
    note: &'a str,
    keys: &'a [NoteVerifier],
) -> Result<(&'a str, &'a NoteVerifier), String> {
    let split = note
        .rfind("\n\n")
        .ok_or("the note has no signature block (an empty line, then signatures)")?;
    let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
    if signatures.is_empty() || !signatures.ends_with('\n') {
        return Err("the note's signature block must end with a newline".into());
    }
    for line in signatures.lines() {
        let rest = line
            .strip_prefix(DASH)
            .ok_or("a signature line must start with an em dash and a space")?;
        let (name, blob) = rest
            .split_once(' ')
            .ok_or("a signature line is '— NAME SIGNATURE'")?;
        let blob = STANDARD
            .decode(blob)
            .map_err(|_| "a signature is not base64".to_owned())?;
        if blob.len() < 4 {
            return Err("a signature is too short".into());
        }
        for key in keys {
            if key.name == name && blob[..4] == key.key_id {
                UnparsedPublicKey::new(&ED25519, &key.public)
                    .verify(text.as_bytes(), &blob[4..])
                    .map_err(|_| {
                        format!(
                            "the signature by {name} ({}) is not valid",
                            key.key_id_hex()
                        )
                    })?;
                return Ok((text, key));
            }
        }
    }
    Err("the note is not signed by any known key".into())
}

fn key_id(name: &str, public: &[u8]) -> [u8; 4] {
    let mut input = name.as_bytes().to_vec();
    input.push(b'\n');
    input.push(ED25519_ALG);
    input.extend_from_slice(public);
    let d = digest(&SHA256, &input);
    d.as_ref()[..4].try_into().expect("four bytes")
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.contains('+')
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "{name:?} cannot name a note key: it must be non-empty, without spaces or '+'"
        ));
    }
    Ok(())
}

fn hex4(id: &[u8; 4]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;

    fn signer(name: &str) -> NoteSigner {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        NoteSigner::new(name, doc.as_ref()).unwrap()
    }

    #[test]
    fn signed_checkpoints_open_with_their_key_only() {
        let s = signer("lgsp.example/log");
        let cp = Checkpoint {
            origin: "lgsp.example/log".into(),
            size: 42,
            root: [7; 32],
        };
        let note = s.sign(&cp.text());
        let keys = [s.verifier()];
        let (text, key) = open(&note, &keys).unwrap();
        assert_eq!(Checkpoint::parse(text).unwrap(), cp);
        assert_eq!(key.name, "lgsp.example/log");
        assert_eq!(NoteVerifier::parse(&keys[0].to_vkey()).unwrap(), keys[0]);

        let other = [signer("lgsp.example/log").verifier()];
        assert!(open(&note, &other).is_err());
        let forged = note.replace("\n42\n", "\n43\n");
        assert!(open(&forged, &keys).unwrap_err().contains("not valid"));
    }

    #[test]
    fn bad_checkpoints_are_refused() {
        for bad in [
            "",
            "o\n",
            "o\n01\nAAAA\n",
            "o\nx\nAAAA\n",
            "o\n1\nAAAA\n",
            "\n1\n",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
        for bad in ["x", "a+b", "a+00000000+AAAA", "a b+00+AA"] {
            assert!(NoteVerifier::parse(bad).is_err(), "{bad:?}");
        }
    }
}
