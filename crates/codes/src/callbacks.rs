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
    allow_loopback: bool,
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
            let checked = match check_url(&new.callback_url, allow_loopback) {
                Ok(()) => resolves_outside(&new.callback_url, allow_loopback).await,
                Err(e) => Err(e),
            };
            if let Err(message) = checked {
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

/// An absolute http(s) URL without credentials, not aimed at the platform's
/// own host (loopback, unless allowed) nor at link-local or unspecified
/// addresses (cloud metadata services live there).
fn check_url(url: &str, allow_loopback: bool) -> Result<(), &'static str> {
    if url.len() > 2048 {
        return Err("at most 2048 characters");
    }
    let uri: http::Uri = url.parse().map_err(|_| "not a valid URL")?;
    let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
        return Err("must be an absolute http:// or https:// URL");
    };
    if !matches!(uri.scheme_str(), Some("http") | Some("https")) {
        return Err("must be an absolute http:// or https:// URL");
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err("must not carry a user name or password");
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback_name = host.eq_ignore_ascii_case("localhost") && !allow_loopback;
    let bad_ip = host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| !address_allowed(ip, allow_loopback));
    if loopback_name || bad_ip {
        return Err(
            "must not point at the platform's own host, a link-local or an unspecified address",
        );
    }
    Ok(())
}

/// Whether an address may receive notices: never unspecified, link-local or
/// broadcast; loopback only when allowed. IPv4-mapped IPv6 counts as IPv4.
fn address_allowed(ip: std::net::IpAddr, allow_loopback: bool) -> bool {
    let ip = ip.to_canonical();
    let forbidden = ip.is_unspecified()
        || match ip {
            std::net::IpAddr::V4(v4) => v4.is_link_local() || v4.is_broadcast(),
            std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        };
    !forbidden && (allow_loopback || !ip.is_loopback())
}

/// Resolves the URL's host as the delivery will, so that other spellings of
/// a refused address (`2130706433`, `[::ffff:127.0.0.1]`, a name) are refused too.
// LIMITATION: the name is resolved at registration only; a name that later
// resolves elsewhere (DNS rebinding) is not checked again at delivery.
async fn resolves_outside(url: &str, allow_loopback: bool) -> Result<(), &'static str> {
    let uri: http::Uri = url.parse().map_err(|_| "not a valid URL")?;
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let addrs: Vec<std::net::SocketAddr> = match tokio::net::lookup_host((host, port)).await {
        Ok(a) => a.collect(),
        Err(_) => return Err("the host cannot be resolved"),
    };
    if addrs.is_empty()
        || addrs
            .iter()
            .any(|a| !address_allowed(a.ip(), allow_loopback))
    {
        return Err(
            "must not point at the platform's own host, a link-local or an unspecified address",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn callback_urls() {
        assert!(check_url("https://motcua.quangnam.gov.vn/hooks/danhmuc", false).is_ok());
        assert!(check_url("http://10.10.1.5:8080/notify", false).is_ok());
        for bad in [
            "ftp://x/y",
            "/relative",
            "http://127.0.0.1:8081/api",
            "http://localhost/x",
            "http://[::1]/x",
            "http://169.254.169.254/latest/meta-data",
            "http://0.0.0.0/x",
            "http://user:pw@10.0.0.1/x",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:9000/x", true).is_ok());
    }

    #[tokio::test]
    async fn other_spellings_of_refused_addresses_are_refused() {
        use super::resolves_outside;
        for bad in [
            "http://[::ffff:127.0.0.1]:8081/",
            "http://2130706433:8081/",
            "http://localhost:8081/",
            "http://[::ffff:169.254.169.254]/",
        ] {
            assert!(resolves_outside(bad, false).await.is_err(), "{bad}");
        }
        assert!(
            resolves_outside("http://10.10.1.5:8080/notify", false)
                .await
                .is_ok()
        );
        assert!(
            resolves_outside("http://127.0.0.1:9000/x", true)
                .await
                .is_ok()
        );
    }
}
