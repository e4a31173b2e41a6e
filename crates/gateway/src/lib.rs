//! The data plane: `POST /token`, `/jwks`, and the gateway that routes
//! `/{context}/{version}/{path…}` to the API's provider, deciding, forwarding
//! and recording every call.

mod body;
mod error;
mod handler;
mod log;
mod proxy;
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
        .fallback(handler::gateway)
        .method_not_allowed_fallback(token::method_not_allowed)
        .with_state(plane)
}
