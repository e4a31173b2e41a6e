//! JSON request bodies with precise errors in the platform's error body.

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// Like `axum::Json`, but a rejection says exactly what is wrong, in our error body.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the body is larger than 1 MiB",
                )
            } else {
                ApiError::invalid(e.body_text())
            }
        })?;
        if !lgsp_registry::validate::is_json_object(&bytes) {
            return Err(ApiError::invalid(
                "the body must be a JSON object of the documented fields",
            ));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonSyntaxError(e) => {
                    ApiError::invalid(format!("malformed JSON: {}", source_text(&e)))
                }
                JsonRejection::JsonDataError(e) => ApiError::invalid(source_text(&e)),
                other => ApiError::invalid(other.body_text()),
            }),
        }
    }
}

/// `application/json`, or an `application/…+json` type, as axum's `Json` takes.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// serde's own message (field path, line and column), without axum's prefix.
fn source_text(error: &dyn std::error::Error) -> String {
    let mut inner = error.source();
    let mut text = error.to_string();
    while let Some(e) = inner {
        text = e.to_string();
        inner = e.source();
    }
    text
}
