//! The data plane: `POST /token`, `/jwks`, and the gateway that routes
//! `/{context}/{version}/{path…}` to the API's provider, deciding, forwarding
//! and recording every call.

mod body;
mod error;
mod handler;
mod proxy;
mod token;

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::routing::{get, post};
use lgsp_auth::TokenService;
use lgsp_codes::CodeLists;
use lgsp_evidence::CallLog;
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
    pub upstream: UpstreamClient,
    pub max_body: u64,
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
        .fallback(handler::gateway)
        .method_not_allowed_fallback(token::method_not_allowed)
        .with_state(plane)
}
