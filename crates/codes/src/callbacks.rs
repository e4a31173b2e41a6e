//! Change notices, the consumer's side: a system registers a callback URL
//! for a list (through the gateway, with its own token) and is sent a notice
//! whenever a new version of the list is published.
//!
//! | method and path (under `danhmuc/1.0/`) | answer |
//! | --- | --- |
//! | `GET lists/{id}/callbacks` | the calling system's callbacks on the list |
//! | `POST lists/{id}/callbacks` `{"callback_url": "https://…"}` | `201` with the registration |
//! | `DELETE lists/{id}/callbacks/{callback_id}` | `204` |

use bytes::Bytes;
use http::{Method, StatusCode};
use lgsp_store::{CodeCallback, Store, StoreError};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::index::CodeLists;
use crate::service::Reply;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCallback {
    callback_url: String,
}

/// `(list_id, callback_id)` if `path` is a callbacks path.
pub fn route(path: &str) -> Option<(&str, Option<&str>)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["lists", id, "callbacks"] => Some((id, None)),
        ["lists", id, "callbacks", cb] => Some((id, Some(cb))),
        _ => None,
    }
}

fn failed(e: StoreError) -> Reply {
    match e {
        StoreError::Conflict(_) => Reply::error(
            StatusCode::CONFLICT,
            "conflict",
            "this callback URL is already registered for the list",
        ),
        StoreError::NotFound(m) => Reply::error(StatusCode::NOT_FOUND, "not_found", m),
        other => {
            tracing::error!(error = ?other, "code-list callbacks: storage failed");
            Reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal error; see the server log",
            )
        }
    }
}

/// Answers a callbacks request of `system_id`.
#[allow(clippy::too_many_arguments)]
pub async fn handle(
    store: &Store,
    lists: &CodeLists,
    system_id: &str,
    method: &Method,
    list_id: &str,
    callback_id: Option<&str>,
    body: Bytes,
    now: &str,
) -> Reply {
    if lists.list(list_id).is_none() {
        return Reply::error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no code list {list_id}"),
        );
    }
    match (method.as_str(), callback_id) {
        ("GET", None) => match store.code_callbacks(Some(list_id), Some(system_id)).await {
            Ok(items) => Reply::json_status(StatusCode::OK, &json!({ "items": items })),
            Err(e) => failed(e),
        },
        ("POST", None) => {
            let new: NewCallback = match serde_json::from_slice(&body) {
                Ok(n) => n,
                Err(e) => {
                    return Reply::error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        format!("body must be {{\"callback_url\": \"…\"}}: {e}"),
                    );
                }
            };
            if let Err(message) = check_url(&new.callback_url) {
                return Reply::error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    format!("callback_url: {message}"),
                );
            }
            let cb = CodeCallback {
                id: Uuid::now_v7().to_string(),
                list_id: list_id.to_owned(),
                system_id: system_id.to_owned(),
                callback_url: new.callback_url,
                created_at: now.to_owned(),
                revoked_at: None,
            };
            match store.insert_code_callback(&cb).await {
                Ok(()) => Reply::json_status(StatusCode::CREATED, &cb),
                Err(e) => failed(e),
            }
        }
        ("DELETE", Some(id)) => match store.revoke_code_callback(id, system_id, now).await {
            Ok(()) => Reply::json_status(StatusCode::NO_CONTENT, &json!(null)),
            Err(e) => failed(e),
        },
        _ => Reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use GET or POST on …/callbacks, DELETE on …/callbacks/{id}",
        ),
    }
}

fn check_url(url: &str) -> Result<(), &'static str> {
    if url.len() > 2048 {
        return Err("at most 2048 characters");
    }
    let uri: http::Uri = url.parse().map_err(|_| "not a valid URL")?;
    if !matches!(uri.scheme_str(), Some("http") | Some("https"))
        || uri.host().is_none_or(str::is_empty)
    {
        return Err("must be an absolute http:// or https:// URL");
    }
    Ok(())
}
