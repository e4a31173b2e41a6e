use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use lgsp_codes::import::{ImportRequest, SourceFormat};
use lgsp_codes::{ImportFailure, ListIndex};
use lgsp_registry::validate;
use lgsp_store::CodeListRow;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Operator;
use crate::json::JsonBody;
use crate::{AdminPlane, ApiError};

fn summary(l: &ListIndex) -> Value {
    json!({
        "id": l.meta.id,
        "name": l.meta.name,
        "name_en": l.meta.name_en,
        "owner_unit": l.meta.owner_unit,
        "versions": l.versions.iter().map(|v| json!({
            "version": v.row.version,
            "valid_from": v.row.valid_from,
            "valid_to": v.row.valid_to,
            "published_at": v.row.published_at,
            "items": v.items.len(),
        })).collect::<Vec<_>>(),
    })
}

/// `GET /api/v1/codelists` (operator): the lists and their versions.
pub async fn list(_: Operator, State(plane): State<Arc<AdminPlane>>) -> Json<Value> {
    let lists = plane.codes.load();
    let items: Vec<Value> = lists.lists.values().map(summary).collect();
    Json(json!({ "items": items }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewList {
    id: String,
    name: String,
    name_en: String,
    #[serde(default)]
    owner_unit: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    legal_basis: String,
}

/// `POST /api/v1/codelists` (operator): a new, empty list; versions come by import.
pub async fn create(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    JsonBody(new): JsonBody<NewList>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    validate::context("id", &new.id)?;
    let name = validate::name("name", &new.name)?;
    let name_en = validate::name("name_en", &new.name_en)?;
    if let Some(unit) = &new.owner_unit {
        validate::agency_code("owner_unit", unit)?;
        if plane.registry.store().unit(unit).await?.is_none() {
            return Err(ApiError::invalid(format!(
                "owner_unit: no unit has code {unit}"
            )));
        }
    }
    let store = plane.registry.store();
    if store.code_list_exists(&new.id).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("a code list {} already exists", new.id),
        ));
    }
    let row = CodeListRow {
        id: new.id,
        name,
        name_en,
        owner_unit: new.owner_unit,
        description: new.description,
        legal_basis: new.legal_basis,
        source: String::new(),
    };
    let _guard = plane.import_lock.lock().await;
    lgsp_codes::create_list(store, &plane.codes, &row).await?;
    tracing::info!(list = %row.id, "code list created");
    Ok((StatusCode::CREATED, Json(json!(row))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    version: String,
    valid_from: String,
    valid_to: Option<String>,
    /// `csv`, `json` or `xlsx`; by default from the Content-Type.
    format: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/v1/codelists/{id}/versions?version=&valid_from=[&valid_to=][&dry_run=true]`
/// (operator): the body is the file (CSV, JSON or Excel). Checked whole before
/// anything is written; a dry run answers the differences with the current version.
pub async fn import(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
    query: Result<Query<ImportQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| ct.split(';').next().unwrap_or("").trim().to_owned());
    let format = match (q.format.as_deref(), content_type.as_deref()) {
        (Some(f), _) => SourceFormat::parse(f),
        (None, Some(ct)) => SourceFormat::parse(ct),
        (None, None) => None,
    }
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file as text/csv, application/json or an .xlsx workbook, or name it with format=csv|json|xlsx",
        )
    })?;
    let request = ImportRequest {
        list_id: id,
        version: q.version,
        valid_from: q.valid_from,
        valid_to: q.valid_to,
        format,
    };

    let _guard = plane.import_lock.lock().await;
    let now = lgsp_registry::now_rfc3339();
    match lgsp_codes::import(
        plane.registry.store(),
        &plane.codes,
        &request,
        body,
        q.dry_run,
        &now,
    )
    .await
    {
        Ok(answer) => Ok((
            if q.dry_run {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            },
            Json(answer),
        )),
        Err(ImportFailure::NoList(list)) => {
            Err(ApiError::not_found(format!("there is no code list {list}")))
        }
        Err(ImportFailure::Rejected(rejected)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_import",
            format!(
                "the file was not imported: {} problem(s); nothing was written",
                rejected.error_count
            ),
        )
        .with_details(json!(rejected))),
        Err(ImportFailure::Store(e)) => Err(e.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeQuery {
    list: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/codelists/callbacks?list=` (operator): active callback registrations.
pub async fn callbacks(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    query: Result<Query<NoticeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let items = plane
        .registry
        .store()
        .code_callbacks(q.list.as_deref(), None)
        .await?;
    Ok(Json(json!({ "items": items })))
}

/// `GET /api/v1/codelists/notices?list=&limit=` (operator): change notices with
/// their delivery state, attempts and last error, newest first.
pub async fn notices(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    query: Result<Query<NoticeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit: must be 1 to 1000"));
    }
    let items = plane
        .registry
        .store()
        .code_notices(q.list.as_deref(), limit)
        .await?;
    Ok(Json(json!({ "items": items })))
}
