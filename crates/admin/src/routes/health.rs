use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AdminPlane;

/// `GET /healthz`: the process is alive.
pub async fn alive() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the store answers within a second.
pub async fn ready(State(plane): State<Arc<AdminPlane>>) -> (StatusCode, Json<Value>) {
    let store = tokio::time::timeout(Duration::from_secs(1), plane.registry.store().ping()).await;
    match store {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "store": "ok" })),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not_ready", "store": "unavailable" })),
        ),
    }
}
