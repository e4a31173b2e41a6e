use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AdminPlane;
use crate::auth::Operator;

/// `GET /api/v1/codelists` (operator): the lists and their versions.
pub async fn list(_: Operator, State(plane): State<Arc<AdminPlane>>) -> Json<Value> {
    let lists = plane.codes.load();
    let items: Vec<Value> = lists
        .lists
        .values()
        .map(|l| {
            json!({
                "id": l.meta.id,
                "name": l.meta.name,
                "name_en": l.meta.name_en,
                "versions": l.versions.iter().map(|v| json!({
                    "version": v.row.version,
                    "valid_from": v.row.valid_from,
                    "valid_to": v.row.valid_to,
                    "items": v.items.len(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({ "items": items }))
}
