//! SHA-256 of bodies as they stream past, and its text form.

use aws_lc_rs::digest::{Context, SHA256};

/// SHA-256 of the empty string, for calls without a body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Counts and hashes the bytes of a body chunk by chunk.
pub struct BodyDigest {
    context: Context,
    bytes: u64,
}

impl Default for BodyDigest {
    fn default() -> Self {
        BodyDigest {
            context: Context::new(&SHA256),
            bytes: 0,
        }
    }
}

impl BodyDigest {
    /// Hash and length of a body already in memory.
    pub fn of(body: &[u8]) -> (String, u64) {
        let mut digest = BodyDigest::default();
        digest.update(body);
        digest.finish()
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        self.context.update(chunk);
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Lower-case hex SHA-256 of everything seen, and the byte count.
    pub fn finish(self) -> (String, u64) {
        (hex(self.context.finish().as_ref()), self.bytes)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_chunks_equals_digest_of_whole() {
        let mut d = BodyDigest::default();
        d.update(b"hello ");
        d.update(b"world");
        let (hash, n) = d.finish();
        assert_eq!(n, 11);
        assert_eq!(
            hash,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(BodyDigest::default().finish().0, EMPTY_SHA256);
    }
}
