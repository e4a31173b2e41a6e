//! API management in the admin API: lifecycle, specifications, catalogue,
//! data standards, plans, onboarding, holidays, network rules, API keys,
//! upstream state and feedback tickets. The operator acts on behalf of any
//! unit; every step is recorded with `operator` as who.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, Response, StatusCode, header};
use lgsp_registry::{
    Actor, ApiUpdate, NewNetwork, NewPlan, NewRequest, NewStandard, NewTicket, NewValidation,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Operator;
use crate::json::JsonBody;
use crate::{AdminPlane, ApiError};

type QueryResult<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

fn query<T>(q: QueryResult<T>) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::invalid(e.body_text()))
}

/// `PATCH /api/v1/apis/{id}`: description, tags, contact, upstreams, plan, …
pub async fn update_api(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
    JsonBody(update): JsonBody<ApiUpdate>,
) -> Result<Json<Value>, ApiError> {
    let api = plane
        .registry
        .update_api(&id, update, &Actor::Operator)
        .await?;
    Ok(Json(json!(api)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    retire_on: Option<String>,
}

/// `POST /api/v1/apis/{id}/{publish|deprecate|retire}`.
pub async fn transition(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let t: Transition = if body.iter().all(u8::is_ascii_whitespace) {
        Transition::default()
    } else if !lgsp_registry::validate::is_json_object(&body) {
        return Err(ApiError::invalid(
            "the body must be a JSON object of the documented fields",
        ));
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid(format!("malformed JSON: {e}")))?
    };
    let api = plane
        .registry
        .transition(&id, &action, t.retire_on.as_deref(), &Actor::Operator)
        .await?;
    tracing::info!(api = %format!("{}/{}", api.context, api.version), status = %api.status, "API lifecycle changed");
    Ok(Json(json!(api)))
}

/// `GET /api/v1/apis/{id}/history`.
pub async fn api_history(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    plane.registry.api(&id).await?;
    let events = plane.registry.store().api_events(&id).await?;
    Ok(Json(json!({ "items": events })))
}

/// `PUT /api/v1/apis/{id}/spec`: an OpenAPI (JSON or YAML) or WSDL document, as the body.
pub async fn put_spec(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let checked = plane
        .registry
        .put_spec(&id, &body, &Actor::Operator)
        .await?;
    Ok(Json(json!({
        "kind": checked.kind,
        "media_type": checked.media_type,
        "summary": checked.summary,
        "bytes": body.len(),
    })))
}

/// `GET /api/v1/apis/{id}/spec`: the document as uploaded.
pub async fn get_spec(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
) -> Result<Response<Body>, ApiError> {
    let (media_type, content) = plane
        .registry
        .store()
        .spec(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("API {id} has no specification")))?;
    let mut response = Response::new(Body::from(content));
    if let Ok(v) = HeaderValue::from_str(&media_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    Ok(response)
}

/// `GET /api/v1/apis/{id}/upstreams`: health and circuit breaker of each upstream.
pub async fn upstreams(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let snapshot = plane.registry.snapshot();
    let route = snapshot
        .routes()
        .find(|r| *r.api_id == *id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no routed API has id {id}")))?;
    drop(snapshot);
    Ok(Json(json!({
        "api": &*route.name,
        "health_path": route.health_path.as_deref(),
        "items": plane.upstreams.views(&route.upstream_urls),
    })))
}

/// `PUT /api/v1/apis/{id}/validations`: the operations whose request bodies must validate.
pub async fn set_validations(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
    JsonBody(rules): JsonBody<ValidationList>,
) -> Result<Json<Value>, ApiError> {
    let rules = plane
        .registry
        .set_validations(&id, rules.items, &Actor::Operator)
        .await?;
    Ok(Json(json!({ "items": rules })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationList {
    items: Vec<NewValidation>,
}

/// `GET /api/v1/apis/{id}/validations`.
pub async fn validations(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    plane.registry.api(&id).await?;
    let items: Vec<_> = plane
        .registry
        .store()
        .validations()
        .await?
        .into_iter()
        .filter(|v| v.api_id == id)
        .collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueQuery {
    #[serde(default)]
    q: String,
    /// Drafts and retired APIs too.
    #[serde(default)]
    all: bool,
}

/// `GET /api/v1/catalog?q=…&all=true`.
pub async fn catalogue(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    q: QueryResult<CatalogueQuery>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let items = plane.registry.catalogue(&q.q, q.all).await?;
    Ok(Json(json!({ "items": items })))
}

/// `POST /api/v1/standards`.
pub async fn add_standard(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    JsonBody(new): JsonBody<NewStandard>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let s = plane.registry.add_standard(new).await?;
    Ok((StatusCode::CREATED, Json(json!(s))))
}

/// `GET /api/v1/standards`.
pub async fn standards(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
) -> Result<Json<Value>, ApiError> {
    let items = plane.registry.store().standards().await?;
    Ok(Json(json!({ "items": items })))
}

/// `GET /api/v1/standards/{id}/{version}`.
pub async fn standard(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let s = plane
        .registry
        .store()
        .standard(&id, &version)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no data standard {id}/{version}")))?;
    Ok(Json(json!(s)))
}

/// `POST /api/v1/plans`.
pub async fn add_plan(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    JsonBody(new): JsonBody<NewPlan>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let plan = plane.registry.add_plan(new).await?;
    Ok((StatusCode::CREATED, Json(json!(plan))))
}

/// `GET /api/v1/plans`.
pub async fn plans(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "items": plane.registry.store().plans().await? }),
    ))
}

/// `PUT /api/v1/plans/{id}`: the whole plan again; applies from the next call.
pub async fn put_plan(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
    JsonBody(new): JsonBody<NewPlan>,
) -> Result<Json<Value>, ApiError> {
    let plan = plane.registry.update_plan(&id, new).await?;
    Ok(Json(json!(plan)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionPlan {
    /// Required, `null` included: a body without it must not clear the plan.
    #[serde(deserialize_with = "present")]
    plan: Option<String>,
}

/// Takes a field that must be written, even as `null` (serde's own
/// `Option` would take a missing field for `null`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

/// `PATCH /api/v1/subscriptions/{id}`: `{"plan": "…"}` or `{"plan": null}`.
pub async fn set_subscription_plan(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<SubscriptionPlan>,
) -> Result<Json<Value>, ApiError> {
    let sub = plane
        .registry
        .set_subscription_plan(&id, body.plan.as_deref())
        .await?;
    Ok(Json(json!(sub)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestsQuery {
    status: Option<String>,
    /// Only pending requests past their due time.
    #[serde(default)]
    overdue: bool,
    consumer_system: Option<String>,
    provider_system: Option<String>,
}

/// `GET /api/v1/subscription-requests?status=&overdue=true&consumer_system=&provider_system=`.
pub async fn requests(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    q: QueryResult<RequestsQuery>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    if let Some(s) = &q.status
        && !matches!(s.as_str(), "pending" | "approved" | "refused" | "withdrawn")
    {
        return Err(ApiError::invalid(
            "status: one of pending, approved, refused, withdrawn",
        ));
    }
    let mut items = if q.overdue {
        plane.registry.overdue_requests().await?
    } else {
        plane
            .registry
            .store()
            .requests(q.status.as_deref(), None, None)
            .await?
    };
    items.retain(|r| {
        q.consumer_system
            .as_ref()
            .is_none_or(|c| *c == r.consumer_system)
            && q.status.as_ref().is_none_or(|s| *s == r.status)
    });
    if let Some(provider) = &q.provider_system {
        let apis: Vec<String> = plane
            .registry
            .store()
            .apis()
            .await?
            .into_iter()
            .filter(|a| a.provider_system == *provider)
            .map(|a| a.id)
            .collect();
        items.retain(|r| apis.contains(&r.api_id));
    }
    let now = time::OffsetDateTime::now_utc();
    let items: Vec<Value> = items
        .into_iter()
        .map(|r| {
            let overdue = r.status == "pending"
                && time::OffsetDateTime::parse(
                    &r.due_at,
                    &time::format_description::well_known::Rfc3339,
                )
                .is_ok_and(|due| due < now);
            let mut v = json!(r);
            v["overdue"] = json!(overdue);
            v
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorRequest {
    consumer_system: String,
    #[serde(flatten)]
    request: NewRequestFields,
}

#[derive(Deserialize)]
pub struct NewRequestFields {
    api: String,
    purpose: String,
    legal_basis: String,
    plan: Option<String>,
}

/// `POST /api/v1/subscription-requests`: a request filed by the operator for a consumer.
pub async fn add_request(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    JsonBody(body): JsonBody<OperatorRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let r = body.request;
    let request = plane
        .registry
        .request_subscription(
            &body.consumer_system,
            NewRequest {
                api: r.api,
                purpose: r.purpose,
                legal_basis: r.legal_basis,
                plan: r.plan,
            },
            &Actor::Operator,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!(request))))
}

/// `GET /api/v1/subscription-requests/{id}`: the request and its history.
pub async fn request(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = plane.registry.store();
    let request = store
        .request(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no subscription request has id {id}")))?;
    let history = store.request_events(&id).await?;
    Ok(Json(json!({ "request": request, "history": history })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    plan: Option<String>,
    reason: Option<String>,
}

/// `POST /api/v1/subscription-requests/{id}/{approve|refuse|withdraw}`.
pub async fn decide(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let d: DecisionBody = if body.iter().all(u8::is_ascii_whitespace) {
        DecisionBody::default()
    } else if !lgsp_registry::validate::is_json_object(&body) {
        return Err(ApiError::invalid(
            "the body must be a JSON object of the documented fields",
        ));
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid(format!("malformed JSON: {e}")))?
    };
    let request = plane
        .registry
        .decide(
            &id,
            &action,
            d.plan.as_deref(),
            d.reason.as_deref(),
            &Actor::Operator,
        )
        .await?;
    Ok(Json(json!(request)))
}

/// `GET /api/v1/holidays`.
pub async fn holidays(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({
        "items": plane.registry.store().holidays().await?,
        "due_working_days": plane.registry.due_working_days(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolidayBody {
    name: String,
}

/// `PUT /api/v1/holidays/{day}`.
pub async fn put_holiday(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(day): Path<String>,
    JsonBody(body): JsonBody<HolidayBody>,
) -> Result<StatusCode, ApiError> {
    plane.registry.put_holiday(&day, &body.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/holidays/{day}`.
pub async fn delete_holiday(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(day): Path<String>,
) -> Result<StatusCode, ApiError> {
    plane.registry.store().delete_holiday(&day).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkList {
    items: Vec<NewNetwork>,
}

/// `PUT /api/v1/systems/{id}/networks`: the networks it may call from (empty: any).
pub async fn put_networks(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
    JsonBody(list): JsonBody<NetworkList>,
) -> Result<Json<Value>, ApiError> {
    plane.registry.set_networks(&id, list.items).await?;
    networks(Operator, State(plane), Path(id)).await
}

/// `GET /api/v1/systems/{id}/networks`.
pub async fn networks(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    plane.registry.system_exists(&id).await?;
    let items: Vec<_> = plane
        .registry
        .store()
        .networks()
        .await?
        .into_iter()
        .filter(|n| n.system_id == id)
        .collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// The system's own certificate, PEM.
    certificate: String,
}

/// `PUT /api/v1/systems/{id}/client-certificate`: binds the system to it.
pub async fn bind_certificate(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Certificate>,
) -> Result<Json<Value>, ApiError> {
    let cert = plane
        .registry
        .bind_certificate(&id, &body.certificate, &Actor::Operator)
        .await?;
    Ok(Json(json!(cert)))
}

/// `GET /api/v1/systems/{id}/client-certificate`.
pub async fn certificate(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(plane.registry.certificate(&id).await?)))
}

/// `DELETE /api/v1/systems/{id}/client-certificate`.
pub async fn unbind_certificate(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    plane.registry.unbind_certificate(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    name: String,
}

/// `POST /api/v1/systems/{id}/api-keys`: the key is in the answer, and nowhere else, ever.
pub async fn create_key(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NewKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (key, secret) = plane.registry.create_api_key(&id, &body.name).await?;
    let mut v = json!(key);
    v["key"] = json!(secret.expose());
    Ok((StatusCode::CREATED, Json(v)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysQuery {
    #[serde(default)]
    include_revoked: bool,
}

/// `GET /api/v1/systems/{id}/api-keys`.
pub async fn keys(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
    q: QueryResult<KeysQuery>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    plane.registry.system_exists(&id).await?;
    let items = plane
        .registry
        .store()
        .api_keys(Some(&id), q.include_revoked)
        .await?;
    Ok(Json(json!({ "items": items })))
}

/// `DELETE /api/v1/api-keys/{id}`: revoked from the next call on.
pub async fn revoke_key(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    plane.registry.revoke_api_key(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketsQuery {
    status: Option<String>,
}

/// `GET /api/v1/tickets?status=`.
pub async fn tickets(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    q: QueryResult<TicketsQuery>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let items = plane
        .registry
        .store()
        .tickets(None, None, q.status.as_deref())
        .await?;
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorTicket {
    consumer_system: String,
    api: String,
    kind: String,
    subject: String,
    body: String,
}

/// `POST /api/v1/tickets`: a ticket filed by the operator for a consumer.
pub async fn open_ticket(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    JsonBody(t): JsonBody<OperatorTicket>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let ticket = plane
        .registry
        .open_ticket(
            &t.consumer_system,
            NewTicket {
                api: t.api,
                kind: t.kind,
                subject: t.subject,
                body: t.body,
            },
            &Actor::Operator,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!(ticket))))
}

/// `GET /api/v1/tickets/{id}`.
pub async fn ticket(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = plane.registry.store();
    let ticket = store
        .ticket(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no ticket has id {id}")))?;
    let messages = store.ticket_messages(&id).await?;
    Ok(Json(json!({ "ticket": ticket, "messages": messages })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    body: String,
    #[serde(default)]
    close: bool,
}

/// `POST /api/v1/tickets/{id}/messages`: the operator answers.
pub async fn reply(
    _: Operator,
    State(plane): State<Arc<AdminPlane>>,
    Path(id): Path<String>,
    JsonBody(r): JsonBody<Reply>,
) -> Result<Json<Value>, ApiError> {
    let ticket = plane
        .registry
        .reply_ticket(&id, "operator", &r.body, r.close, &Actor::Operator)
        .await?;
    Ok(Json(json!(ticket)))
}
