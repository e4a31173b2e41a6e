//! Random secrets and their hashes.
//!
//! Machine secrets are 256 random bits, so a fast hash (SHA-256) is enough to
//! store them: there is nothing to guess. Token issuance stays fast.

use std::fmt;

use aws_lc_rs::{constant_time, digest, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A secret value that prints as `****` in logs and debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// A fresh secret of `bytes` random bytes, base64url-encoded.
    pub fn generate(bytes: usize) -> Secret {
        Secret(random_token(bytes))
    }

    /// The value itself: call only where it is handed to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// `bytes` random bytes from the system's CSPRNG, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf).expect("the system random generator failed");
    URL_SAFE_NO_PAD.encode(buf)
}

pub fn hash_secret(secret: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, secret.as_bytes())
        .as_ref()
        .to_vec()
}

/// Compares in constant time, so the answer's timing tells nothing.
pub fn verify_secret(secret: &str, hash: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(&hash_secret(secret), hash).is_ok()
}

/// SHA-256 of `bytes`, in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    digest::digest(&digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_redact_themselves() {
        let secret = Secret::new("s3cr3t-value".into());
        assert_eq!(format!("{secret}"), "****");
        assert_eq!(format!("{secret:?}"), "Secret(****)");
        assert!(!format!("{:?}", Some(&secret)).contains("s3cr3t"));
    }

    #[test]
    fn hash_round_trip() {
        let secret = Secret::generate(32);
        let hash = hash_secret(secret.expose());
        assert!(verify_secret(secret.expose(), &hash));
        assert!(!verify_secret("wrong", &hash));
        assert_eq!(secret.expose().len(), 43);
    }
}
