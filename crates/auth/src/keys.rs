//! The Ed25519 key that signs access tokens, kept in the data directory.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

/// A signing key: its PKCS#8 document, its public half and its key id.
pub struct SigningKey {
    pub pkcs8: Vec<u8>,
    pub public: Vec<u8>,
    pub kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A public key as published at `/jwks` (RFC 8037 OKP key).
#[derive(Clone, Debug, Serialize)]
pub struct Jwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub x: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub alg: &'static str,
}

impl SigningKey {
    pub fn from_pkcs8(pkcs8: Vec<u8>) -> Result<SigningKey, String> {
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|e| e.to_string())?;
        let public = pair.public_key().as_ref().to_vec();
        let id = digest::digest(&digest::SHA256, &public);
        let kid = URL_SAFE_NO_PAD.encode(&id.as_ref()[..12]);
        Ok(SigningKey { pkcs8, public, kid })
    }

    pub fn generate() -> SigningKey {
        let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .expect("the system random generator failed");
        SigningKey::from_pkcs8(document.as_ref().to_vec()).expect("a fresh key parses")
    }

    pub fn jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP",
            crv: "Ed25519",
            x: URL_SAFE_NO_PAD.encode(&self.public),
            kid: self.kid.clone(),
            use_: "sig",
            alg: "EdDSA",
        }
    }
}

/// Reads the key at `path`, or creates it (mode 0600) if the file is missing.
pub fn load_or_create_signing_key(path: &Path) -> std::io::Result<SigningKey> {
    match fs::read(path) {
        Ok(bytes) => SigningKey::from_pkcs8(bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is not an Ed25519 PKCS#8 key: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate();
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
            file.write_all(&key.pkcs8)?;
            file.sync_all()?;
            Ok(key)
        }
        Err(e) => Err(e),
    }
}
