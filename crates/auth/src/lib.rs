//! Authentication for machines: client secrets, the token signing keys and
//! the access tokens of the OAuth2 client-credentials grant.

mod keys;
mod secret;
mod token;

pub use keys::{Jwk, SigningKey, load_or_create_signing_key};
pub use secret::{Secret, hash_secret, random_token, verify_secret};
pub use token::{AccessToken, TokenError, TokenService, Verified};
