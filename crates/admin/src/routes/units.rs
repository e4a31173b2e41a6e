use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lgsp_registry::NewUnit;
use lgsp_store::Unit;
use serde_json::{Value, json};

use crate::auth::Operator;
use crate::json::JsonBody;
use crate::{AdminPlane, ApiError};

/// `POST /api/v1/units` (operator).
pub async fn create(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    JsonBody(new): JsonBody<NewUnit>,
) -> Result<(StatusCode, Json<Unit>), ApiError> {
    let unit = plane.registry.add_unit(new).await?;
    tracing::info!(unit = %unit.code, "unit created");
    Ok((StatusCode::CREATED, Json(unit)))
}

/// `GET /api/v1/units` (operator).
pub async fn list(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
) -> Result<Json<Value>, ApiError> {
    let units = plane.registry.store().units().await?;
    Ok(Json(json!({ "items": units })))
}

/// `GET /api/v1/units/{code}` (operator): the unit and its direct children.
pub async fn show(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(code): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = plane.registry.store();
    let unit = store
        .unit(&code)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no unit has code {code}")))?;
    let children: Vec<String> = store
        .units()
        .await?
        .into_iter()
        .filter(|u| u.parent_code.as_deref() == Some(code.as_str()))
        .map(|u| u.code)
        .collect();
    let mut body = serde_json::to_value(unit).map_err(|e| ApiError::internal(&e))?;
    body["children"] = json!(children);
    Ok(Json(body))
}
