//! The one error body of the admin API: `{error, message, request_id}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lgsp_registry::RegistryError;
use lgsp_store::StoreError;
use serde_json::json;
use uuid::Uuid;

/// Every error code of the admin API with its status:
///
/// | code | status |
/// | --- | --- |
/// | `invalid_request` | 400 (malformed JSON, wrong type, unknown or missing field, bad value) |
/// | `unauthorized` | 401 (no or wrong admin token) |
/// | `not_found` | 404 |
/// | `method_not_allowed` | 405 |
/// | `conflict` | 409 (duplicate code, second subscription) |
/// | `invalid_spec` | 422 (an API specification that does not parse or whose references do not resolve; `details` lists each problem) |
/// | `invalid_import` | 422 (a code-list file with errors; `details` lists them by row and column) |
/// | `payload_too_large` | 413 |
/// | `unsupported_media_type` | 415 (body is not `application/json`) |
/// | `internal_error` | 500 (details only in the server's log) |
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Itemised problems (e.g. every bad row of an import), sent as `details`.
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> ApiError {
        self.details = Some(details);
        self
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn internal(error: &dyn std::error::Error) -> ApiError {
        let mut chain = error.to_string();
        let mut source = error.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %chain, "admin request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error; see the server log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = Uuid::now_v7().to_string();
        let mut body =
            json!({ "error": self.code, "message": self.message, "request_id": request_id });
        if let Some(details) = self.details {
            body["details"] = details;
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", v);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"lgsp-admin\""),
            );
        }
        response
    }
}

impl From<RegistryError> for ApiError {
    fn from(err: RegistryError) -> Self {
        match err {
            RegistryError::Invalid { .. } => ApiError::invalid(err.to_string()),
            RegistryError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            RegistryError::NotFound(m) => ApiError::not_found(m),
            RegistryError::InvalidSpec(problems) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_spec",
                format!(
                    "the specification was refused: {}",
                    problems.first().map_or("", String::as_str)
                ),
            )
            .with_details(serde_json::json!(problems)),
            RegistryError::Store(e) => ApiError::internal(&e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        RegistryError::from(err).into()
    }
}
