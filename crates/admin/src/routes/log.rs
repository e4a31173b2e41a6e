//! The evidence log for the operator: any call's bundle, the log's state,
//! entry bundles (the records themselves), kept bodies, and key rotation.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lgsp_evidence::EvidenceError;
use lgsp_evidence::tiles::TilePath;
use serde_json::{Value, json};

use crate::auth::Operator;
use crate::{AdminPlane, ApiError};

fn evidence_error(e: EvidenceError) -> ApiError {
    match e {
        EvidenceError::NotYetCheckpointed => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "evidence_pending",
            "the call is not yet in a signed checkpoint; retry in a second",
        ),
        EvidenceError::Store(e) => ApiError::internal(&e),
        other => ApiError::internal(&other),
    }
}

/// `GET /api/v1/calls/{request_id}/evidence`: the bundle of any call.
pub async fn bundle(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(request_id): Path<String>,
) -> Result<Response, ApiError> {
    let record = plane
        .registry
        .store()
        .call_by_request_id(&request_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no call has request id {request_id}")))?;
    let bundle = plane
        .evidence
        .bundle(&record)
        .await
        .map_err(evidence_error)?;
    let mut response = Json(bundle).into_response();
    let disposition = format!("attachment; filename=\"{request_id}.evidence.json\"");
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// `GET /api/v1/calls/{request_id}/bodies/{which}`: a kept request or response body.
pub async fn body(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path((request_id, which)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let store = plane.registry.store();
    let record = store
        .call_by_request_id(&request_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no call has request id {request_id}")))?;
    let bodies = store.call_bodies(record.seq).await?.ok_or_else(|| {
        ApiError::not_found(
            "this call's bodies were not kept (its API does not keep bodies) or their retention has passed",
        )
    })?;
    let (bytes, sha256) = match which.as_str() {
        "request" => (bodies.request, record.request_sha256),
        "response" => (bodies.response, record.response_sha256),
        _ => return Err(ApiError::not_found("bodies are `request` or `response`")),
    };
    let bytes =
        bytes.ok_or_else(|| ApiError::not_found(format!("the {which} body was not kept")))?;
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&sha256) {
        headers.insert("x-content-sha256", v);
    }
    Ok(response)
}

/// `GET /api/v1/log`: size, latest checkpoint and keys.
pub async fn state(_: Operator, State(plane): State<Arc<AdminPlane>>) -> Json<Value> {
    let log = &plane.evidence;
    let head = log.head();
    Json(json!({
        "origin": log.origin(),
        "records": log.tree_size(),
        "checkpoint": head.as_ref().map(|h| json!({
            "size": h.checkpoint.size,
            "signed_at_us": h.time_us,
            "note": h.note,
        })),
        "current_key": log.current_key().to_vkey(),
        "keys": log.keys().iter().map(|k| k.to_vkey()).collect::<Vec<_>>(),
    }))
}

/// `POST /api/v1/log/rotate-key`: a new signing key; the old one stays for verification.
pub async fn rotate_key(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
) -> Result<Json<Value>, ApiError> {
    let key = plane.evidence.rotate_key().await.map_err(evidence_error)?;
    tracing::info!(key_id = %key.key_id_hex(), "evidence log signing key rotated");
    Ok(Json(
        json!({ "current_key": key.to_vkey(), "key_id": key.key_id_hex() }),
    ))
}

/// `GET /api/v1/log/tile/{path}`: hash tiles and entry bundles.
pub async fn tile(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let tile =
        TilePath::parse(&path).map_err(|e| ApiError::not_found(format!("not a tile path: {e}")))?;
    let found = match tile.level {
        Some(level) => {
            plane
                .evidence
                .hash_tile(level, tile.index, tile.width)
                .await
        }
        None => plane.evidence.entry_bundle(tile.index, tile.width).await,
    }
    .map_err(evidence_error)?
    .ok_or_else(|| ApiError::not_found(format!("tile {path} does not exist yet")))?;
    let mut response = Response::new(Body::from(found));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}
