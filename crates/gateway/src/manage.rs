//! What a system does for itself on the data plane, with its own token or
//! API key: browse the catalogue and read specifications, ask for a
//! subscription (or, as a provider, approve or refuse one), and open and
//! answer feedback tickets.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use lgsp_registry::{Actor, NewRequest, NewTicket, RegistryError, SystemState};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::{ErrorCode, Lang, Refusal, message};
use crate::{DataPlane, PeerCertificate};

/// The answer of a self-service endpoint.
pub struct Answer(Result<Response<Body>, Refusal>);

impl IntoResponse for Answer {
    fn into_response(self) -> axum::response::Response {
        match self.0 {
            Ok(r) => r,
            Err(refusal) => {
                let request_id = Uuid::now_v7().to_string();
                let mut r = refusal.into_response(&request_id, None);
                if let Ok(v) = HeaderValue::from_str(&request_id) {
                    r.headers_mut().insert("x-request-id", v);
                }
                r
            }
        }
    }
}

fn ok(status: StatusCode, body: Value) -> Answer {
    Answer(Ok((status, Json(body)).into_response()))
}

/// The caller, checked as the gateway checks it (credentials, client
/// certificate, network).
fn caller(
    plane: &DataPlane,
    headers: &HeaderMap,
    peer: SocketAddr,
    cert: Option<Extension<PeerCertificate>>,
) -> Result<(Arc<SystemState>, Lang), Refusal> {
    let lang = Lang::from_headers(headers);
    let snapshot = plane.registry.snapshot();
    let system = crate::handler::identify(plane, &snapshot, headers, lang).map_err(|e| e.0)?;
    crate::handler::bound_certificate(&system, cert.as_ref().map(|c| &c.0), lang)
        .map_err(|e| e.0)?;
    if !system.allows(peer.ip()) {
        return Err(Refusal::new(
            ErrorCode::NetworkNotAllowed,
            message(
                lang,
                &format!("Hệ thống không được phép gọi từ địa chỉ {}", peer.ip()),
                &format!("The system may not call from address {}", peer.ip()),
            ),
        ));
    }
    Ok((system, lang))
}

fn actor(system: &SystemState) -> Actor {
    Actor::System {
        id: system.id.to_string(),
        global_id: system.global_id.to_string(),
    }
}

fn registry_refusal(e: RegistryError) -> Refusal {
    match e {
        RegistryError::Invalid { .. } => Refusal::new(ErrorCode::InvalidRequest, e.to_string()),
        RegistryError::InvalidSpec(problems) => Refusal::new(
            ErrorCode::InvalidRequest,
            "invalid specification".to_owned(),
        )
        .with_details(json!(problems)),
        RegistryError::Conflict(m) => Refusal::new(ErrorCode::Conflict, m),
        RegistryError::NotFound(m) => Refusal::new(ErrorCode::NotFound, m),
        RegistryError::Store(e) => {
            tracing::error!(error = %e, "store failed");
            Refusal::new(
                ErrorCode::Internal,
                "the store failed; try again".to_owned(),
            )
        }
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Refusal> {
    if !lgsp_registry::validate::is_json_object(body) {
        return Err(Refusal::new(
            ErrorCode::InvalidRequest,
            "the body must be a JSON object of the documented fields".to_owned(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        Refusal::new(
            ErrorCode::InvalidRequest,
            format!("the body must be a JSON object of the documented fields: {e}"),
        )
    })
}

macro_rules! attempt {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(refusal) => return Answer(Err(refusal)),
        }
    };
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueQuery {
    #[serde(default)]
    q: String,
}

/// `GET /catalog?q=…`: published APIs and data standards.
pub async fn catalogue(
    State(plane): State<Arc<DataPlane>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    cert: Option<Extension<PeerCertificate>>,
    headers: HeaderMap,
    query: Result<Query<CatalogueQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    attempt!(caller(&plane, &headers, peer, cert));
    let Query(query) =
        attempt!(query.map_err(|e| Refusal::new(ErrorCode::InvalidRequest, e.body_text())));
    let items = attempt!(
        plane
            .registry
            .catalogue(&query.q, false)
            .await
            .map_err(registry_refusal)
    );
    ok(StatusCode::OK, json!({ "items": items }))
}

/// `GET /catalog/{context}/{version}/spec`: the specification, for the
/// provider, subscribers, and everyone when the API is shared by default.
pub async fn spec(
    State(plane): State<Arc<DataPlane>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    cert: Option<Extension<PeerCertificate>>,
    headers: HeaderMap,
    Path((context, version)): Path<(String, String)>,
) -> Answer {
    let (system, lang) = attempt!(caller(&plane, &headers, peer, cert));
    let snapshot = plane.registry.snapshot();
    let not_found = || {
        Refusal::new(
            ErrorCode::NotFound,
            message(
                lang,
                &format!("Không có đặc tả cho API {context}/{version}"),
                &format!("There is no specification of {context}/{version}"),
            ),
        )
    };
    let Some(route) = snapshot.route(&context, &version).cloned() else {
        return Answer(Err(not_found()));
    };
    // A draft is its provider's business alone.
    if route.status == lgsp_registry::ApiStatus::Draft && *route.provider_system != *system.id {
        return Answer(Err(not_found()));
    }
    let allowed = route.shared_by_default
        || *route.provider_system == *system.id
        || snapshot.is_subscribed(&system.id, &route.api_id);
    drop(snapshot);
    if !allowed {
        return Answer(Err(Refusal::new(
            ErrorCode::NotSubscribed,
            message(
                lang,
                &format!("Đặc tả của {context}/{version} chỉ dành cho hệ thống đã đăng ký sử dụng"),
                &format!("The specification of {context}/{version} is for its subscribers"),
            ),
        )));
    }
    let spec = attempt!(
        plane
            .registry
            .store()
            .spec(&route.api_id)
            .await
            .map_err(|e| registry_refusal(e.into()))
    );
    let Some((media_type, content)) = spec else {
        return Answer(Err(not_found()));
    };
    let mut response = Response::new(Body::from(content));
    if let Ok(v) = HeaderValue::from_str(&media_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    Answer(Ok(response))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestQuery {
    /// `consumer` (the caller's own requests) or `provider` (requests for its APIs).
    role: Option<String>,
    status: Option<String>,
}

/// `POST /subscription-requests`.
pub async fn request_subscription(
    State(plane): State<Arc<DataPlane>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    cert: Option<Extension<PeerCertificate>>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let (system, _) = attempt!(caller(&plane, &headers, peer, cert));
    let new: NewRequest = attempt!(parse_json(&body));
    let request = attempt!(
        plane
            .registry
            .request_subscription(&system.id, new, &actor(&system))
            .await
            .map_err(registry_refusal)
    );
    ok(StatusCode::CREATED, json!(request))
}

/// `GET /subscription-requests?role=consumer|provider&status=…`.
pub async fn requests(
    State(plane): State<Arc<DataPlane>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    cert: Option<Extension<PeerCertificate>>,
    headers: HeaderMap,
    query: Result<Query<RequestQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let (system, _) = attempt!(caller(&plane, &headers, peer, cert));
    let Query(query) =
        attempt!(query.map_err(|e| Refusal::new(ErrorCode::InvalidRequest, e.body_text())));
    let (consumer, provider) = match query.role.as_deref() {
        None | Some("consumer") => (Some(&*system.id), None),
        Some("provider") => (None, Some(&*system.id)),
        Some(other) => {
            return Answer(Err(Refusal::new(
                ErrorCode::InvalidRequest,
                format!("role: {other:?} is neither \"consumer\" nor \"provider\""),
            )));
        }
    };
    let items = attempt!(
        plane
            .registry
            .store()
            .requests(query.status.as_deref(), consumer, provider)
            .await
            .map_err(|e| registry_refusal(e.into()))
    );
    ok(StatusCode::OK, json!({ "items": items }))
}

/// The request if the caller is its consumer or the API's provider.
async fn visible_request(
    plane: &DataPlane,
    system: &SystemState,
    id: &str,
) -> Result<(lgsp_store::SubscriptionRequest, bool, bool), Refusal> {
    let store = plane.registry.store();
    let not_found = || {
        Refusal::new(
            ErrorCode::NotFound,
            format!("no subscription request has id {id}"),
        )
    };
    let request = store
        .request(id)
        .await
        .map_err(|e| registry_refusal(e.into()))?
        .ok_or_else(not_found)?;
    let provider = store
        .api(&request.api_id)
        .await
        .map_err(|e| registry_refusal(e.into()))?
        .is_some_and(|a| a.provider_system == *system.id);
    let consumer = request.consumer_system == *system.id;
    if !provider && !consumer {
        return Err(not_found());
    }
    Ok((request, consumer, provider))
}

/// `GET /subscription-requests/{id}`: the request and its history.
pub async fn request(
    State(plane): State<Arc<DataPlane>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    cert: Option<Extension<PeerCertificate>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let (system, _) = attempt!(caller(&plane, &headers, peer, cert));
    let (request, _, _) = attempt!(visible_request(&plane, &system, &id).await);
    let events = attempt!(
        plane
            .registry
            .store()
            .request_events(&id)
            .await
            .map_err(|e| registry_refusal(e.into()))
    );
    ok(
        StatusCode::OK,
        json!({ "request": request, "history": events }),
    )
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    plan: Option<String>,
    reason: Option<String>,
}

/// `POST /subscription-requests/{id}/{approve|refuse|withdraw}`.
pub async fn decide(
    State(plane): State<Arc<DataPlane>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    cert: Option<Extension<PeerCertificate>>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let (system, lang) = attempt!(caller(&plane, &headers, peer, cert));
    let decision: DecisionBody = if body.is_empty() {
        DecisionBody::default()
    } else {
        attempt!(parse_json(&body))
    };
    let (_, consumer, provider) = attempt!(visible_request(&plane, &system, &id).await);
    let allowed = match action.as_str() {
        "approve" | "refuse" => provider,
        "withdraw" => consumer,
        _ => true, // the registry names the unknown action
    };
    if !allowed {
        return Answer(Err(Refusal::new(
            ErrorCode::Forbidden,
            message(
                lang,
                "Chỉ hệ thống cung cấp API được duyệt hoặc từ chối; chỉ hệ thống yêu cầu được rút yêu cầu",
                "Only the API's provider approves or refuses; only the requesting system withdraws",
            ),
        )));
    }
    let request = attempt!(
        plane
            .registry
            .decide(
                &id,
                &action,
                decision.plan.as_deref(),
                decision.reason.as_deref(),
                &actor(&system),
            )
            .await
            .map_err(registry_refusal)
    );
    ok(StatusCode::OK, json!(request))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketQuery {
    status: Option<String>,
}

/// `POST /tickets`: a consumer's ticket on an API.
pub async fn open_ticket(
    State(plane): State<Arc<DataPlane>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    cert: Option<Extension<PeerCertificate>>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let (system, _) = attempt!(caller(&plane, &headers, peer, cert));
    let new: NewTicket = attempt!(parse_json(&body));
    let ticket = attempt!(
        plane
            .registry
            .open_ticket(&system.id, new, &actor(&system))
            .await
            .map_err(registry_refusal)
    );
    ok(StatusCode::CREATED, json!(ticket))
}

/// `GET /tickets`: the caller's tickets and those on its APIs.
pub async fn tickets(
    State(plane): State<Arc<DataPlane>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    cert: Option<Extension<PeerCertificate>>,
    headers: HeaderMap,
    query: Result<Query<TicketQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let (system, _) = attempt!(caller(&plane, &headers, peer, cert));
    let Query(query) =
        attempt!(query.map_err(|e| Refusal::new(ErrorCode::InvalidRequest, e.body_text())));
    let items = attempt!(
        plane
            .registry
            .store()
            .tickets(Some(&system.id), Some(&system.id), query.status.as_deref())
            .await
            .map_err(|e| registry_refusal(e.into()))
    );
    ok(StatusCode::OK, json!({ "items": items }))
}

/// The side the caller is on for a ticket, if any.
async fn ticket_side(
    plane: &DataPlane,
    system: &SystemState,
    id: &str,
) -> Result<(lgsp_store::Ticket, &'static str), Refusal> {
    let store = plane.registry.store();
    let not_found = || Refusal::new(ErrorCode::NotFound, format!("no ticket has id {id}"));
    let ticket = store
        .ticket(id)
        .await
        .map_err(|e| registry_refusal(e.into()))?
        .ok_or_else(not_found)?;
    if ticket.consumer_system == *system.id {
        return Ok((ticket, "consumer"));
    }
    let provider = store
        .api(&ticket.api_id)
        .await
        .map_err(|e| registry_refusal(e.into()))?
        .is_some_and(|a| a.provider_system == *system.id);
    if provider {
        return Ok((ticket, "provider"));
    }
    Err(not_found())
}

/// `GET /tickets/{id}`: the ticket and its messages.
pub async fn ticket(
    State(plane): State<Arc<DataPlane>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    cert: Option<Extension<PeerCertificate>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let (system, _) = attempt!(caller(&plane, &headers, peer, cert));
    let (ticket, _) = attempt!(ticket_side(&plane, &system, &id).await);
    let messages = attempt!(
        plane
            .registry
            .store()
            .ticket_messages(&id)
            .await
            .map_err(|e| registry_refusal(e.into()))
    );
    ok(
        StatusCode::OK,
        json!({ "ticket": ticket, "messages": messages }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    body: String,
    #[serde(default)]
    close: bool,
}

/// `POST /tickets/{id}/messages`: an answer (provider) or a follow-up (consumer).
pub async fn reply(
    State(plane): State<Arc<DataPlane>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    cert: Option<Extension<PeerCertificate>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let (system, _) = attempt!(caller(&plane, &headers, peer, cert));
    let reply: Reply = attempt!(parse_json(&body));
    let (_, side) = attempt!(ticket_side(&plane, &system, &id).await);
    let ticket = attempt!(
        plane
            .registry
            .reply_ticket(&id, side, &reply.body, reply.close, &actor(&system))
            .await
            .map_err(registry_refusal)
    );
    ok(StatusCode::OK, json!(ticket))
}
