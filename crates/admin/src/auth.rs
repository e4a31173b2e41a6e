//! The operator's credential: the admin token from `<data-dir>/admin-token`.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::{AdminPlane, ApiError};

/// Proof that the request carries the operator's admin token. Taking it as
/// a handler argument is the handler's permission check.
pub struct Operator;

impl FromRequestParts<Arc<AdminPlane>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        plane: &Arc<AdminPlane>,
    ) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(lgsp_auth::bearer_token);
        match token {
            Some(t) if lgsp_auth::verify_secret(t, &plane.admin_token_hash) => Ok(Operator),
            Some(_) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the admin token is not valid",
            )),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send Authorization: Bearer <admin token>; the token is in <data-dir>/admin-token",
            )),
        }
    }
}
