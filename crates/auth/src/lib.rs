//! Authentication for machines: client secrets, the token signing keys and
//! the access tokens of the OAuth2 client-credentials grant.

mod keys;
mod secret;
mod token;

pub use keys::{Jwk, SigningKey, load_or_create_signing_key};
pub use secret::{Secret, hash_secret, random_token, sha256_hex, verify_secret};
pub use token::{AccessToken, TokenError, TokenService, Verified};

/// The token of an `Authorization: Bearer …` header value; the scheme is
/// case-insensitive (RFC 9110 §11.1).
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
