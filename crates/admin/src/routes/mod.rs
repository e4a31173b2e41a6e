//! The admin API's routes; one module per resource, mirroring the URLs.

mod apis;
mod calls;
mod codelists;
mod health;
mod log;
mod manage;
mod subscriptions;
mod systems;
mod units;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post, put};

use crate::{AdminPlane, ApiError};

/// Admin request bodies larger than this are refused.
const MAX_BODY: usize = 1024 * 1024;

pub fn router() -> Router<Arc<AdminPlane>> {
    let api = Router::new()
        .route("/units", get(units::list).post(units::create))
        .route("/units/{code}", get(units::show))
        .route("/systems", get(systems::list).post(systems::create))
        .route("/systems/{id}", get(systems::show).patch(systems::update))
        .route("/systems/{id}/secret", post(systems::rotate_secret))
        .route("/systems/{id}/disable", post(systems::disable))
        .route("/systems/{id}/enable", post(systems::enable))
        .route("/apis", get(apis::list).post(apis::create))
        .route("/apis/{id}", get(apis::show).patch(manage::update_api))
        .route("/apis/{id}/history", get(manage::api_history))
        .route(
            "/apis/{id}/spec",
            put(manage::put_spec)
                .get(manage::get_spec)
                .layer(DefaultBodyLimit::max(lgsp_registry::spec::MAX_SPEC_BYTES)),
        )
        .route("/apis/{id}/upstreams", get(manage::upstreams))
        .route(
            "/apis/{id}/validations",
            get(manage::validations).put(manage::set_validations),
        )
        .route("/apis/{id}/{action}", post(manage::transition))
        .route("/catalog", get(manage::catalogue))
        .route(
            "/standards",
            get(manage::standards).post(manage::add_standard),
        )
        .route("/standards/{id}/{version}", get(manage::standard))
        .route("/plans", get(manage::plans).post(manage::add_plan))
        .route("/plans/{id}", put(manage::put_plan))
        .route(
            "/subscriptions",
            get(subscriptions::list).post(subscriptions::create),
        )
        .route(
            "/subscriptions/{id}",
            get(subscriptions::show)
                .delete(subscriptions::revoke)
                .patch(manage::set_subscription_plan),
        )
        .route(
            "/subscription-requests",
            get(manage::requests).post(manage::add_request),
        )
        .route("/subscription-requests/{id}", get(manage::request))
        .route("/subscription-requests/{id}/{action}", post(manage::decide))
        .route("/holidays", get(manage::holidays))
        .route(
            "/holidays/{day}",
            put(manage::put_holiday).delete(manage::delete_holiday),
        )
        .route(
            "/systems/{id}/networks",
            get(manage::networks).put(manage::put_networks),
        )
        .route(
            "/systems/{id}/client-certificate",
            get(manage::certificate)
                .put(manage::bind_certificate)
                .delete(manage::unbind_certificate),
        )
        .route(
            "/systems/{id}/api-keys",
            get(manage::keys).post(manage::create_key),
        )
        .route("/api-keys/{id}", axum::routing::delete(manage::revoke_key))
        .route("/tickets", get(manage::tickets).post(manage::open_ticket))
        .route("/tickets/{id}", get(manage::ticket))
        .route("/tickets/{id}/messages", post(manage::reply))
        .route("/calls", get(calls::list))
        .route("/calls/{request_id}", get(calls::show))
        .route("/calls/{request_id}/evidence", get(log::bundle))
        .route("/calls/{request_id}/bodies/{which}", get(log::body))
        .route("/log", get(log::state))
        .route("/log/rotate-key", post(log::rotate_key))
        .route("/log/tile/{*path}", get(log::tile))
        .route("/codelists", get(codelists::list).post(codelists::create))
        .route("/codelists/callbacks", get(codelists::callbacks))
        .route("/codelists/notices", get(codelists::notices))
        .route(
            "/codelists/{id}/versions",
            post(codelists::import)
                .layer(DefaultBodyLimit::max(lgsp_codes::import::MAX_IMPORT_BYTES)),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);

    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(health::alive))
        .route("/readyz", get(health::ready))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(plain_errors_as_json))
}

/// axum's own rejections (a path segment that is not UTF-8, a body over the
/// limit) answer in plain text; the admin API answers every error in JSON.
async fn plain_errors_as_json(response: axum::response::Response) -> axum::response::Response {
    use axum::response::IntoResponse;

    let status = response.status();
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/plain"));
    if !(status.is_client_error() && plain) {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "not_found",
        _ => "invalid_request",
    };
    ApiError::new(
        status,
        code,
        String::from_utf8_lossy(&text).trim().to_owned(),
    )
    .into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such resource; the admin API lives under /api/v1")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this resource does not take that method",
    )
}
