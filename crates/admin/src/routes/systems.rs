use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lgsp_auth::Secret;
use lgsp_registry::{MEMBER_CLASS, NewSystem, SystemUpdate};
use lgsp_store::System;
use serde_json::{Value, json};

use crate::auth::Operator;
use crate::json::JsonBody;
use crate::{AdminPlane, ApiError};

fn view(plane: &AdminPlane, system: &System) -> Value {
    let mut v = serde_json::to_value(system).unwrap_or_default();
    v["global_id"] = json!(format!(
        "{}:{MEMBER_CLASS}:{}:{}",
        plane.registry.instance(),
        system.unit_code,
        system.code
    ));
    v
}

fn with_secret(plane: &AdminPlane, system: &System, secret: &Secret) -> Value {
    let mut v = view(plane, system);
    v["client_secret"] = json!(secret.expose());
    v
}

/// `POST /api/v1/systems` (operator). The secret is in this answer only.
pub async fn create(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    JsonBody(new): JsonBody<NewSystem>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (system, secret) = plane.registry.add_system(new, false).await?;
    tracing::info!(system = %system.id, unit = %system.unit_code, "system created");
    Ok((
        StatusCode::CREATED,
        Json(with_secret(&plane, &system, &secret)),
    ))
}

/// `GET /api/v1/systems` (operator).
pub async fn list(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
) -> Result<Json<Value>, ApiError> {
    let systems = plane.registry.store().systems().await?;
    let items: Vec<Value> = systems.iter().map(|s| view(&plane, s)).collect();
    Ok(Json(json!({ "items": items })))
}

/// `GET /api/v1/systems/{id}` (operator).
pub async fn show(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let system = plane
        .registry
        .store()
        .system(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no system has id {id}")))?;
    Ok(Json(view(&plane, &system)))
}

/// `PATCH /api/v1/systems/{id}` (operator): rename, disable or enable.
pub async fn update(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
    JsonBody(update): JsonBody<SystemUpdate>,
) -> Result<Json<Value>, ApiError> {
    let system = plane.registry.update_system(&id, update).await?;
    tracing::info!(system = %system.id, enabled = system.enabled, "system updated");
    Ok(Json(view(&plane, &system)))
}

/// `POST /api/v1/systems/{id}/secret` (operator): a new secret; tokens issued
/// under the old one stop working.
pub async fn rotate_secret(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (system, secret) = plane.registry.rotate_secret(&id).await?;
    tracing::info!(system = %system.id, generation = system.secret_generation, "client secret rotated");
    Ok(Json(with_secret(&plane, &system, &secret)))
}

/// `POST /api/v1/systems/{id}/disable` (operator): no new tokens; its tokens stop working.
pub async fn disable(
    operator: Operator,
    state: State<Arc<AdminPlane>>,
    id: Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_enabled(operator, state, id, false).await
}

/// `POST /api/v1/systems/{id}/enable` (operator).
pub async fn enable(
    operator: Operator,
    state: State<Arc<AdminPlane>>,
    id: Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_enabled(operator, state, id, true).await
}

async fn set_enabled(
    operator: Operator,
    state: State<Arc<AdminPlane>>,
    id: Path<String>,
    enabled: bool,
) -> Result<Json<Value>, ApiError> {
    let update = SystemUpdate {
        name: None,
        enabled: Some(enabled),
    };
    self::update(operator, state, id, JsonBody(update)).await
}
