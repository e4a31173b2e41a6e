use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use lgsp_store::Subscription;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Operator;
use crate::json::JsonBody;
use crate::{AdminPlane, ApiError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    consumer_system: String,
    /// `{context}/{version}`.
    api: String,
    /// The plan whose limits apply (else the API's default plan).
    #[serde(default)]
    plan: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    include_revoked: bool,
}

/// `POST /api/v1/subscriptions` (operator).
pub async fn create(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    JsonBody(new): JsonBody<NewSubscription>,
) -> Result<(StatusCode, Json<Subscription>), ApiError> {
    let sub = plane
        .registry
        .subscribe(&new.consumer_system, &new.api, new.plan.as_deref())
        .await?;
    tracing::info!(subscription = %sub.id, consumer = %sub.consumer_system, api = %sub.api, "subscription created");
    Ok((StatusCode::CREATED, Json(sub)))
}

/// `GET /api/v1/subscriptions` (operator).
pub async fn list(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let subs = plane
        .registry
        .store()
        .subscriptions(query.include_revoked)
        .await?;
    Ok(Json(json!({ "items": subs })))
}

/// `GET /api/v1/subscriptions/{id}` (operator).
pub async fn show(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
) -> Result<Json<Subscription>, ApiError> {
    let sub = plane
        .registry
        .store()
        .subscription(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no subscription has id {id}")))?;
    Ok(Json(sub))
}

/// `DELETE /api/v1/subscriptions/{id}` (operator): revokes; the consumer is
/// refused from its next call on.
pub async fn revoke(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    plane.registry.revoke_subscription(&id).await?;
    tracing::info!(subscription = %id, "subscription revoked");
    Ok(StatusCode::NO_CONTENT)
}
