//! Access tokens: EdDSA-signed JWTs with a key id, verified once and then
//! remembered until they expire, so the gateway's hot path does no crypto.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::keys::{Jwk, SigningKey};
use crate::secret::random_token;

/// Remembered verifications beyond this count are pruned.
const CACHE_LIMIT: usize = 200_000;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    client_id: String,
    /// The system's secret generation when the token was issued.
    gen_: i64,
    iat: i64,
    exp: i64,
    jti: String,
}

/// What a valid token says about its bearer.
#[derive(Clone, Debug)]
pub struct Verified {
    pub system_id: Arc<str>,
    pub client_id: Arc<str>,
    pub generation: i64,
    pub expires_at: i64,
}

/// A freshly issued token.
#[derive(Debug)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: i64,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token was signed by a key this platform does not know")]
    UnknownKey,
    #[error("the token's signature is not valid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
}

pub struct TokenService {
    issuer: String,
    ttl_secs: i64,
    header: Header,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    jwks: Vec<Jwk>,
    validation: Validation,
    cache: DashMap<Box<str>, Verified>,
}

impl TokenService {
    /// `key` signs new tokens; `retired` keys still verify tokens they signed.
    pub fn new(
        issuer: &str,
        ttl_secs: i64,
        key: &SigningKey,
        retired: &[SigningKey],
    ) -> TokenService {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());

        let mut decoding = HashMap::new();
        let mut jwks = Vec::new();
        for k in std::iter::once(key).chain(retired) {
            let jwk = k.jwk();
            let decoder = DecodingKey::from_ed_components(&jwk.x).expect("an Ed25519 public key");
            decoding.insert(k.kid.clone(), decoder);
            jwks.push(jwk);
        }

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 0;
        validation.validate_aud = false;

        TokenService {
            issuer: issuer.to_owned(),
            ttl_secs,
            header,
            encoding: EncodingKey::from_ed_der(&key.pkcs8),
            decoding,
            jwks,
            validation,
            cache: DashMap::new(),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn jwks(&self) -> &[Jwk] {
        &self.jwks
    }

    pub fn issue(&self, system_id: &str, client_id: &str, generation: i64) -> AccessToken {
        let now = unix_now();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: system_id.to_owned(),
            client_id: client_id.to_owned(),
            gen_: generation,
            iat: now,
            exp: now + self.ttl_secs,
            jti: random_token(12),
        };
        let token = jsonwebtoken::encode(&self.header, &claims, &self.encoding)
            .expect("signing with a loaded Ed25519 key");
        AccessToken {
            token,
            expires_in: self.ttl_secs,
        }
    }

    /// Checks signature, key, issuer and expiry; a token already seen is
    /// answered from memory until it expires.
    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        let now = unix_now();
        if let Some(hit) = self.cache.get(token) {
            if hit.expires_at > now {
                return Ok(hit.clone());
            }
            drop(hit);
            self.cache.remove(token);
            return Err(TokenError::Expired);
        }

        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.decoding.get(kid))
            .ok_or(TokenError::UnknownKey)?;
        let data =
            jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                    ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                        TokenError::BadSignature
                    }
                    _ => TokenError::Malformed,
                }
            })?;
        let claims = data.claims;
        // RFC 7519: not accepted on or after `exp` (the library still takes
        // the second of `exp` itself; the cache above does not).
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        let verified = Verified {
            system_id: claims.sub.into(),
            client_id: claims.client_id.into(),
            generation: claims.gen_,
            expires_at: claims.exp,
        };

        if self.cache.len() >= CACHE_LIMIT {
            self.cache.retain(|_, v| v.expires_at > now);
            if self.cache.len() >= CACHE_LIMIT {
                self.cache.clear();
            }
        }
        self.cache.insert(token.into(), verified.clone());
        Ok(verified)
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(issuer: &str, ttl: i64) -> (TokenService, SigningKey) {
        let key = SigningKey::generate();
        (TokenService::new(issuer, ttl, &key, &[]), key)
    }

    #[test]
    fn issued_tokens_verify() {
        let (svc, _) = service("https://lgsp.example", 60);
        let token = svc.issue("sys-1", "client-1", 3);
        let v = svc.verify(&token.token).unwrap();
        assert_eq!(&*v.system_id, "sys-1");
        assert_eq!(v.generation, 3);
        // Second time from the cache, same answer.
        assert_eq!(&*svc.verify(&token.token).unwrap().client_id, "client-1");
    }

    #[test]
    fn refusals() {
        let (svc, _) = service("https://lgsp.example", 60);
        let (other, _) = service("https://lgsp.example", 60);
        let (other_issuer, key) = service("https://elsewhere", 60);
        let foreign = other.issue("sys", "c", 1).token;
        assert_eq!(svc.verify(&foreign).err(), Some(TokenError::UnknownKey));
        assert_eq!(svc.verify("garbage").err(), Some(TokenError::Malformed));

        let expired = service("https://lgsp.example", -10).0;
        let token = expired.issue("sys", "c", 1).token;
        assert_eq!(expired.verify(&token).err(), Some(TokenError::Expired));

        // Same key, other issuer.
        let svc2 = TokenService::new("https://lgsp.example", 60, &key, &[]);
        let token = other_issuer.issue("sys", "c", 1).token;
        assert_eq!(svc2.verify(&token).err(), Some(TokenError::WrongIssuer));

        // A tampered payload with a valid header and key id.
        let good = svc.issue("sys", "c", 1).token;
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged_payload = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"iss":"https://lgsp.example","sub":"admin","client_id":"c","gen_":1,"iat":1,"exp":99999999999,"jti":"x"}"#,
        );
        parts[1] = &forged_payload;
        assert_eq!(
            svc.verify(&parts.join(".")).err(),
            Some(TokenError::BadSignature)
        );
    }
}
