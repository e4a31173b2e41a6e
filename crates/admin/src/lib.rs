//! The control plane: the admin REST API under `/api/v1`, and the health
//! endpoints. Every `/api/v1` route requires the operator's admin token.

mod auth;
mod error;
mod json;
mod routes;

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use lgsp_codes::CodeLists;
use lgsp_registry::Registry;

pub use error::ApiError;

pub struct AdminPlane {
    pub registry: Arc<Registry>,
    pub codes: Arc<ArcSwap<CodeLists>>,
    /// SHA-256 of the operator's admin token.
    pub admin_token_hash: Vec<u8>,
    /// Code-list imports run one at a time.
    pub import_lock: tokio::sync::Mutex<()>,
    pub evidence: Arc<lgsp_evidence::EvidenceLog>,
    /// Health and circuit breakers of the upstreams (shared with the gateway).
    pub upstreams: Arc<lgsp_registry::upstreams::UpstreamPool>,
}

pub fn router(plane: Arc<AdminPlane>) -> Router {
    routes::router().with_state(plane)
}
