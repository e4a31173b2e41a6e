use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use lgsp_store::{CallFilter, CallRecord};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth::Operator;
use crate::{AdminPlane, ApiError};

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallQuery {
    consumer: Option<String>,
    api: Option<String>,
    /// `200`, or a class such as `4xx`.
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<i64>,
    /// The `next` cursor of the previous page.
    before: Option<i64>,
}

fn instant_us(field: &str, value: &str) -> Result<i64, ApiError> {
    let t = OffsetDateTime::parse(value, &Rfc3339).map_err(|_| {
        ApiError::invalid(format!(
            "{field}: must be an RFC 3339 time, e.g. 2026-01-31T08:00:00+07:00"
        ))
    })?;
    Ok((t.unix_timestamp_nanos() / 1000) as i64)
}

fn status_range(value: &str) -> Result<(i64, i64), ApiError> {
    let bad = || ApiError::invalid("status: must be a status such as 404 or a class such as 4xx");
    if let Some(class) = value.strip_suffix("xx") {
        let c: i64 = class.parse().map_err(|_| bad())?;
        if !(1..=5).contains(&c) {
            return Err(bad());
        }
        return Ok((c * 100, c * 100 + 99));
    }
    let s: i64 = value.parse().map_err(|_| bad())?;
    if !(100..=599).contains(&s) {
        return Err(bad());
    }
    Ok((s, s))
}

/// Renders a record with its time in RFC 3339.
pub fn view(record: &CallRecord) -> Value {
    let mut v = serde_json::to_value(record).unwrap_or_default();
    let time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(record.time_us) * 1000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok());
    v["time"] = json!(time);
    v
}

/// `GET /api/v1/calls` (operator): newest first, filtered, paged by cursor.
pub async fn list(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    query: Result<Query<CallQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit: must be 1 to {MAX_LIMIT}"
        )));
    }
    let filter = CallFilter {
        consumer: q.consumer,
        api: q.api,
        status: q.status.as_deref().map(status_range).transpose()?,
        since_us: q
            .since
            .as_deref()
            .map(|v| instant_us("since", v))
            .transpose()?,
        until_us: q
            .until
            .as_deref()
            .map(|v| instant_us("until", v))
            .transpose()?,
        before_seq: q.before,
        limit,
    };
    let page = plane.registry.store().calls(&filter).await?;
    let items: Vec<Value> = page.items.iter().map(view).collect();
    Ok(Json(json!({ "items": items, "next": page.next_before })))
}

/// `GET /api/v1/calls/{request_id}` (operator).
pub async fn show(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(request_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let record = plane
        .registry
        .store()
        .call_by_request_id(&request_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no call has request id {request_id}")))?;
    Ok(Json(view(&record)))
}
