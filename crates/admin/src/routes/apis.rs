use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lgsp_registry::NewApi;
use lgsp_store::Api;
use serde_json::{Value, json};

use crate::auth::Operator;
use crate::json::JsonBody;
use crate::{AdminPlane, ApiError};

/// `POST /api/v1/apis` (operator).
pub async fn create(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    JsonBody(new): JsonBody<NewApi>,
) -> Result<(StatusCode, Json<Api>), ApiError> {
    let api = plane.registry.add_api(new).await?;
    tracing::info!(api = %format!("{}/{}", api.context, api.version), "API registered");
    Ok((StatusCode::CREATED, Json(api)))
}

/// `GET /api/v1/apis` (operator).
pub async fn list(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
) -> Result<Json<Value>, ApiError> {
    let apis = plane.registry.store().apis().await?;
    Ok(Json(json!({ "items": apis })))
}

/// `GET /api/v1/apis/{id}` (operator).
pub async fn show(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
) -> Result<Json<Api>, ApiError> {
    let api = plane
        .registry
        .store()
        .api(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no API has id {id}")))?;
    Ok(Json(api))
}
