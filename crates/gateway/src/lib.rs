//! The data plane: `POST /token`, `/jwks`, and the gateway that routes
//! `/{context}/{version}/{path…}` to the API's provider, deciding, forwarding
//! and recording every call.

mod body;
mod error;
mod handler;
pub mod limits;
mod log;
mod manage;
mod proxy;
mod strict;
mod token;

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::routing::{get, post};
use lgsp_auth::TokenService;
use lgsp_codes::CodeLists;
use lgsp_evidence::{CallLog, EvidenceLog};
use lgsp_registry::Registry;

pub use error::{ErrorCode, Lang};

/// The SHA-256 (lower-case hex) of the client certificate a TLS connection
/// was opened with; the listener puts it on each of that connection's requests.
#[derive(Clone, Debug)]
pub struct PeerCertificate(pub Arc<str>);
pub use proxy::{UpstreamClient, upstream_client};

/// Default limit of a request body the gateway forwards: 10 MiB.
pub const DEFAULT_MAX_BODY: u64 = 10 * 1024 * 1024;

/// Everything the data plane reads. Built once at start.
pub struct DataPlane {
    pub registry: Arc<Registry>,
    pub tokens: Arc<TokenService>,
    pub codes: Arc<ArcSwap<CodeLists>>,
    pub calls: CallLog,
    pub evidence: Arc<EvidenceLog>,
    /// Whether entry bundles (the records themselves) are served without a token.
    pub public_entries: bool,
    pub upstream: UpstreamClient,
    pub max_body: u64,
    /// How long the bodies of APIs that keep them are kept.
    pub body_retention: std::time::Duration,
    /// Whether code-list callbacks may point at loopback addresses.
    pub allow_loopback_callbacks: bool,
    /// Plans' rates and quotas as they are used.
    pub limits: Arc<limits::Limits>,
    /// Health and circuit breakers of the upstreams.
    pub upstreams: Arc<lgsp_registry::upstreams::UpstreamPool>,
}

pub fn router(plane: Arc<DataPlane>) -> Router {
    Router::new()
        .route("/token", post(token::issue))
        .route("/jwks", get(token::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            get(token::metadata),
        )
        .route("/log/checkpoint", get(log::checkpoint))
        .route("/log/keys", get(log::keys))
        .route("/log/tile/{*path}", get(log::tile))
        .route("/log/proof/inclusion", get(log::inclusion))
        .route("/log/proof/consistency", get(log::consistency))
        .route("/log/evidence/{request_id}", get(log::evidence))
        .route("/catalog", get(manage::catalogue))
        .route("/catalog/{context}/{version}/spec", get(manage::spec))
        .route(
            "/subscription-requests",
            get(manage::requests).post(manage::request_subscription),
        )
        .route("/subscription-requests/{id}", get(manage::request))
        .route("/subscription-requests/{id}/{action}", post(manage::decide))
        .route("/tickets", get(manage::tickets).post(manage::open_ticket))
        .route("/tickets/{id}", get(manage::ticket))
        .route("/tickets/{id}/messages", post(manage::reply))
        .fallback(handler::gateway)
        .method_not_allowed_fallback(token::method_not_allowed)
        .with_state(plane)
}

/// Checks every upstream of every API that has a health path, every
/// `interval`: a 2xx or 3xx answer within 2 s is healthy, anything else not.
/// Also lets idle rate-limit state go once a minute.
pub fn start_health_checks(
    registry: Arc<Registry>,
    pool: Arc<lgsp_registry::upstreams::UpstreamPool>,
    client: UpstreamClient,
    limits: Arc<limits::Limits>,
    interval: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_tidy = std::time::Instant::now();
        loop {
            tick.tick().await;
            if last_tidy.elapsed() >= std::time::Duration::from_secs(60) {
                limits.tidy();
                last_tidy = std::time::Instant::now();
            }
            let targets: Vec<(String, http::Uri)> = {
                let snapshot = registry.snapshot();
                snapshot
                    .routes()
                    .filter_map(|r| Some((r, r.health_path.as_deref()?)))
                    .flat_map(|(r, path)| {
                        r.upstream_urls
                            .iter()
                            .zip(&r.upstreams)
                            .filter_map(move |(url, base)| {
                                Some((url.clone(), proxy::upstream_uri(base, path, None)?))
                            })
                    })
                    .collect()
            };
            let checked: std::collections::HashSet<String> =
                targets.iter().map(|(url, _)| url.clone()).collect();
            pool.forget_health_except(&checked);
            let checks = targets.into_iter().map(|(url, uri)| {
                let client = client.clone();
                let pool = pool.clone();
                async move {
                    let mut req = http::Request::new(body::MeteredBody::empty());
                    *req.uri_mut() = uri;
                    let outcome = tokio::time::timeout(
                        std::time::Duration::from_secs(2),
                        client.request(req),
                    )
                    .await;
                    let (healthy, error) = match outcome {
                        Ok(Ok(r)) if r.status().is_success() || r.status().is_redirection() => {
                            (true, None)
                        }
                        Ok(Ok(r)) => (false, Some(format!("status {}", r.status().as_u16()))),
                        Ok(Err(e)) => (false, Some(format!("unreachable: {e}"))),
                        Err(_) => (false, Some("no answer within 2 s".to_owned())),
                    };
                    let upstream = pool.get(&url);
                    if upstream.view().healthy != Some(healthy) {
                        tracing::info!(upstream = %url, healthy, error = error.as_deref().unwrap_or(""), "upstream health changed");
                    }
                    upstream.set_health(healthy, lgsp_registry::now_rfc3339(), error);
                }
            });
            futures_util::future::join_all(checks).await;
        }
    })
}
