//! JSON request bodies with precise errors in the platform's error body.

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
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::MissingJsonContentType(_) => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "the body must be JSON with Content-Type: application/json",
                ),
                JsonRejection::JsonSyntaxError(e) => {
                    ApiError::invalid(format!("malformed JSON: {}", source_text(&e)))
                }
                JsonRejection::JsonDataError(e) => ApiError::invalid(source_text(&e)),
                JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "the body is larger than 1 MiB",
                    )
                }
                other => ApiError::invalid(other.body_text()),
            }),
        }
    }
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
