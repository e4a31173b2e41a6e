//! `POST /token`: the OAuth2 client-credentials grant (RFC 6749 §4.4), and
//! the public keys that verify the tokens it issues.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lgsp_auth::verify_secret;
use serde_json::json;
use uuid::Uuid;

use crate::DataPlane;
use crate::error::{Lang, message};

/// Larger token requests are refused after reading at most this much.
const MAX_TOKEN_REQUEST: usize = 16 * 1024;

/// An OAuth2 error answer (RFC 6749 §5.2), with the platform's own fields beside.
fn oauth_error(status: StatusCode, error: &str, description: String, basic: bool) -> Response {
    let request_id = Uuid::now_v7().to_string();
    let body = json!({
        "error": error,
        "error_description": description,
        "message": description,
        "request_id": request_id,
    });
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        let challenge = if basic {
            "Basic realm=\"lgsp\", charset=\"UTF-8\""
        } else {
            "Basic realm=\"lgsp\""
        };
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", v);
    }
    response
}

pub async fn issue(
    State(plane): State<Arc<DataPlane>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let invalid = |vi: &str, en: &str| {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            message(lang, vi, en),
            false,
        )
    };

    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form_type {
        return invalid(
            "Yêu cầu phải có Content-Type: application/x-www-form-urlencoded",
            "The request must have Content-Type: application/x-www-form-urlencoded",
        );
    }
    // Read no more than the limit, whatever the client sends.
    let body: Bytes = match axum::body::to_bytes(body, MAX_TOKEN_REQUEST).await {
        Ok(b) => b,
        Err(_) => return invalid("Yêu cầu quá lớn", "The request is too large"),
    };

    // Parameters must not repeat (RFC 6749 §3.2).
    let mut grant_type = None;
    let mut form_id = None;
    let mut form_secret = None;
    for (key, value) in form_urlencoded::parse(&body) {
        let slot = match key.as_ref() {
            "grant_type" => &mut grant_type,
            "client_id" => &mut form_id,
            "client_secret" => &mut form_secret,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return invalid(
                &format!("Tham số {key} bị lặp"),
                &format!("Parameter {key} is repeated"),
            );
        }
    }

    match grant_type.as_deref() {
        None => return invalid("Thiếu tham số grant_type", "Missing parameter grant_type"),
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                message(
                    lang,
                    "Chỉ hỗ trợ grant_type=client_credentials",
                    "Only grant_type=client_credentials is supported",
                ),
                false,
            );
        }
    }

    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => match parse_basic(value) {
            Some(pair) => Some(pair),
            None => {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    message(
                        lang,
                        "Tiêu đề Authorization không phải HTTP Basic hợp lệ",
                        "The Authorization header is not valid HTTP Basic",
                    ),
                    true,
                );
            }
        },
    };
    let used_basic = basic.is_some();
    let (client_id, secret) = match (basic, form_id, form_secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return invalid(
                "Chỉ dùng một cách xác thực: HTTP Basic hoặc client_id/client_secret trong form",
                "Use one way of authenticating: HTTP Basic or client_id/client_secret in the form",
            );
        }
        (Some(pair), None, None) => pair,
        (None, Some(id), Some(secret)) => (id, secret),
        _ => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                message(
                    lang,
                    "Thiếu thông tin xác thực của hệ thống (client_id, client_secret)",
                    "Missing client credentials (client_id, client_secret)",
                ),
                used_basic,
            );
        }
    };

    let snapshot = plane.registry.snapshot();
    let system = snapshot
        .client(&client_id)
        .filter(|s| s.enabled && verify_secret(&secret, &s.secret_hash));
    let Some(system) = system else {
        tracing::info!(client_id = %client_id, "token refused: invalid client");
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            message(
                lang,
                "Sai client_id hoặc client_secret, hoặc hệ thống đã bị vô hiệu hóa",
                "Wrong client_id or client_secret, or the system is disabled",
            ),
            used_basic,
        );
    };

    let token = plane
        .tokens
        .issue(&system.id, &system.client_id, system.generation);
    tracing::info!(consumer = %system.global_id, "token issued");
    let mut response = Json(json!({
        "access_token": token.token,
        "token_type": "Bearer",
        "expires_in": token.expires_in,
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `Basic base64(id:secret)`, each part form-urlencoded (RFC 6749 §2.3.1).
fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

pub async fn jwks(State(plane): State<Arc<DataPlane>>) -> Response {
    let mut response = Json(json!({ "keys": plane.tokens.jwks() })).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// Authorization server metadata (RFC 8414).
pub async fn metadata(State(plane): State<Arc<DataPlane>>) -> Response {
    let issuer = plane.tokens.issuer().trim_end_matches('/');
    Json(json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }))
    .into_response()
}

/// `/token`, `/jwks` and the metadata take only the methods they document.
pub async fn method_not_allowed() -> Response {
    let request_id = Uuid::now_v7().to_string();
    let body = json!({
        "error": "method_not_allowed",
        "message": "Phương thức không được hỗ trợ ở đường dẫn này / Method not allowed here",
        "request_id": request_id,
    });
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}
