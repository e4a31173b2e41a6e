//! The gateway's decision for one call: which API, who is calling, may they,
//! then forward (or answer from the platform's own service) and record.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use bytes::Bytes;
use lgsp_codes::Reply;
use lgsp_evidence::BodyDigest;
use lgsp_registry::{ApiStatus, Protocol, Route, SystemState};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;

use crate::body::{PendingCall, RecordedBody, RequestSide};
use crate::error::{ErrorCode, Lang, Refusal, SoapVersion, message};
use crate::proxy::{Forward, downstream_headers, upstream_request, upstream_uri};
use crate::{DataPlane, limits};

/// Largest body the platform's own services read.
const MAX_SERVICE_BODY: usize = 64 * 1024;
/// Longest request path written to the call log.
const MAX_LOGGED_PATH: usize = 2048;
const MAX_LOGGED_METHOD: usize = 32;
/// At most this many schema errors are listed in a refusal.
const MAX_SCHEMA_ERRORS: usize = 50;
/// The header existing provincial clients send their API key in.
pub(crate) const API_KEY_HEADER: &str = "apikey";

/// A system bound to a client certificate must have called with it.
pub(crate) fn bound_certificate(
    system: &SystemState,
    presented: Option<&crate::PeerCertificate>,
    lang: Lang,
) -> Result<(), (Refusal, &'static str)> {
    let Some(bound) = &system.client_cert else {
        return Ok(());
    };
    let id = &system.global_id;
    let (vi, en, reason) = match presented {
        Some(c) if *c.0 == **bound => return Ok(()),
        Some(_) => (
            format!("Chứng thư số của kết nối không phải chứng thư đã gắn với hệ thống {id}"),
            format!("The connection's client certificate is not the one system {id} is bound to"),
            "client_certificate_mismatch",
        ),
        None => (
            format!("Hệ thống {id} phải gọi qua TLS hai chiều bằng chứng thư số đã gắn với nó"),
            format!(
                "System {id} must call over mutual TLS with the client certificate it is bound to"
            ),
            "client_certificate_missing",
        ),
    };
    let refusal = Refusal::new(
        ErrorCode::ClientCertificateRequired,
        message(lang, &vi, &en),
    );
    Err((refusal, reason))
}

pub async fn gateway(
    State(plane): State<Arc<DataPlane>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request<Body>,
) -> Response<Body> {
    let started = Instant::now();
    let request_id = Uuid::now_v7().to_string();
    let lang = Lang::from_headers(req.headers());
    // Before the API is known, a request that looks like SOAP gets a SOAP fault.
    let soap_guess = SoapVersion::guess(req.headers());
    let path = req.uri().path();

    let mut call = PendingCall {
        request_id: request_id.clone(),
        time_us: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0),
        started,
        consumer: None,
        api: None,
        // Extension methods may be long; the record keeps a bounded name.
        method: truncate(req.method().as_str(), MAX_LOGGED_METHOD),
        // The request target as sent: the path and its query.
        path: truncate(
            req.uri().path_and_query().map_or(path, |pq| pq.as_str()),
            MAX_LOGGED_PATH,
        ),
        status: 0,
        client_addr: peer.ip().to_string(),
        request: RequestSide::Unread,
        reason: None,
        keep_until_us: None,
    };

    // 1. Which API does the path name?
    let Some((context, version, rest)) = split_api_path(path) else {
        let refusal = Refusal::new(
            ErrorCode::UnknownApi,
            message(
                lang,
                "Đường dẫn phải có dạng /{context}/{version}/…",
                "The path must be /{context}/{version}/…",
            ),
        );
        return refuse(&plane, call, refusal, soap_guess, "no_api_in_path").await;
    };
    call.api = Some(format!("{context}/{version}"));
    if has_dot_segment(rest) {
        let refusal = Refusal::new(
            ErrorCode::InvalidRequest,
            message(
                lang,
                "Đường dẫn không được chứa đoạn '.' hoặc '..'",
                "The path must not contain '.' or '..' segments",
            ),
        );
        return refuse(&plane, call, refusal, soap_guess, "dot_segment").await;
    }
    let snapshot = plane.registry.snapshot();
    let Some(route) = snapshot.route(context, version).cloned() else {
        let refusal = Refusal::new(
            ErrorCode::UnknownApi,
            message(
                lang,
                &format!("Không có API {context}/{version} trên nền tảng"),
                &format!("There is no API {context}/{version} on this platform"),
            ),
        );
        return refuse(&plane, call, refusal, soap_guess, "unknown_api").await;
    };
    let soap = (route.protocol == Protocol::Soap).then(|| SoapVersion::of(req.headers()));

    // Only published and deprecated APIs take calls, until their retirement day.
    let now_secs = call.time_us / 1_000_000;
    if route.status == ApiStatus::Draft {
        let refusal = Refusal::new(
            ErrorCode::ApiNotPublished,
            message(
                lang,
                &format!(
                    "API {} chưa được công bố (đang ở trạng thái nháp)",
                    route.name
                ),
                &format!("{} is not published yet (it is a draft)", route.name),
            ),
        );
        return refuse(&plane, call, refusal, soap, "api_not_published").await;
    }
    if route.retired_at(now_secs) {
        let refusal = Refusal::new(
            ErrorCode::ApiRetired,
            message(
                lang,
                &format!("API {} đã ngừng cung cấp", route.name),
                &format!("{} has been retired", route.name),
            ),
        );
        return refuse(&plane, call, refusal, soap, "api_retired").await;
    }

    // 2. Who is calling?
    let system = match identify(&plane, &snapshot, req.headers(), lang) {
        Ok(system) => system,
        Err((refusal, reason, consumer)) => {
            call.consumer = consumer;
            return refuse(&plane, call, refusal, soap, reason).await;
        }
    };
    call.consumer = Some(system.id.to_string());

    // 3. May it call this API, from there, now?
    if let Err((refusal, reason)) = bound_certificate(
        &system,
        req.extensions().get::<crate::PeerCertificate>(),
        lang,
    ) {
        return refuse(&plane, call, refusal, soap, reason).await;
    }
    if !system.allows(peer.ip()) {
        let refusal = Refusal::new(
            ErrorCode::NetworkNotAllowed,
            message(
                lang,
                &format!(
                    "Hệ thống {} không được phép gọi từ địa chỉ {}",
                    system.global_id,
                    peer.ip()
                ),
                &format!(
                    "System {} may not call from address {}",
                    system.global_id,
                    peer.ip()
                ),
            ),
        );
        return refuse(&plane, call, refusal, soap, "network_not_allowed").await;
    }
    let plan = match snapshot.subscription_plan(&system.id, &route.api_id) {
        Some(plan) => plan.cloned().or_else(|| route.default_plan.clone()),
        None if route.shared_by_default => route.default_plan.clone(),
        None => {
            let refusal = Refusal::new(
                ErrorCode::NotSubscribed,
                message(
                    lang,
                    &format!(
                        "Hệ thống chưa đăng ký sử dụng API {}; gửi yêu cầu qua POST /subscription-requests",
                        route.name
                    ),
                    &format!(
                        "The calling system has no subscription to {}; ask for one with POST /subscription-requests",
                        route.name
                    ),
                ),
            );
            return refuse(&plane, call, refusal, soap, "not_subscribed").await;
        }
    };
    drop(snapshot);
    let mut extra_headers: Vec<(&'static str, String)> = Vec::new();
    if let Some(plan) = &plan {
        let verdict = plane.limits.check(plan, &system.id, &route.name);
        if let Some((why, wait)) = verdict.refused {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let (code, reason, vi, en) = match why {
                limits::Refusal::Rate => (
                    ErrorCode::RateLimited,
                    "rate_limited",
                    format!(
                        "Vượt quá tốc độ {} yêu cầu/giây của gói {}; thử lại sau {secs} giây",
                        plan.rate, plan.id
                    ),
                    format!(
                        "Over the rate of {} requests per second of plan {}; retry in {secs} s",
                        plan.rate, plan.id
                    ),
                ),
                limits::Refusal::Day => (
                    ErrorCode::QuotaExceeded,
                    "quota_day",
                    format!(
                        "Đã dùng hết hạn mức {} yêu cầu/ngày của gói {}; hạn mức mới từ 0 giờ (giờ Việt Nam)",
                        plan.per_day.unwrap_or(0),
                        plan.id
                    ),
                    format!(
                        "The daily quota of {} calls of plan {} is used up; it renews at midnight, Vietnam time",
                        plan.per_day.unwrap_or(0),
                        plan.id
                    ),
                ),
                limits::Refusal::Month => (
                    ErrorCode::QuotaExceeded,
                    "quota_month",
                    format!(
                        "Đã dùng hết hạn mức {} yêu cầu/tháng của gói {}; hạn mức mới từ ngày 1 tháng sau",
                        plan.per_month.unwrap_or(0),
                        plan.id
                    ),
                    format!(
                        "The monthly quota of {} calls of plan {} is used up; it renews on the 1st of next month",
                        plan.per_month.unwrap_or(0),
                        plan.id
                    ),
                ),
            };
            let refusal = Refusal::new(code, message(lang, &vi, &en))
                .with_header("retry-after", secs.max(1).to_string())
                .with_header("ratelimit-policy", verdict.policy)
                .with_header("ratelimit", verdict.state);
            return refuse(&plane, call, refusal, soap, reason).await;
        }
        extra_headers.push(("ratelimit-policy", verdict.policy));
        extra_headers.push(("ratelimit", verdict.state));
    }
    if route.status == ApiStatus::Deprecated {
        if let Some(at) = route.deprecated_at {
            extra_headers.push(("deprecation", format!("@{at}")));
        }
        if let Some(at) = route.retire_at
            && let Ok(t) = OffsetDateTime::from_unix_timestamp(at)
            && let Ok(date) = t.format(HTTP_DATE)
        {
            extra_headers.push(("sunset", date));
        }
    }
    tracing::debug!(request_id = %call.request_id, consumer = %system.global_id, api = %route.name, "call allowed");

    // 4. Serve it.
    let rest = rest.to_owned();
    let mut response = if route.protocol == Protocol::Builtin {
        builtin(&plane, call, &route, req, &rest).await
    } else {
        forward(
            &plane,
            call,
            &route,
            req,
            &rest,
            &system.global_id,
            soap,
            lang,
        )
        .await
    };
    for (name, value) in extra_headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

/// The calling system, from its bearer token or its API key; or the
/// refusal, its reason and the system it names, if any.
#[allow(clippy::result_large_err)]
pub(crate) fn identify(
    plane: &DataPlane,
    snapshot: &lgsp_registry::Snapshot,
    headers: &http::HeaderMap,
    lang: Lang,
) -> Result<Arc<SystemState>, (Refusal, &'static str, Option<String>)> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(lgsp_auth::bearer_token);
    let (system, generation) = match (bearer, headers.get(API_KEY_HEADER)) {
        (Some(bearer), _) => {
            let verified = plane.tokens.verify(bearer).map_err(|e| {
                let refusal = Refusal::new(
                    ErrorCode::InvalidToken,
                    message(
                        lang,
                        &format!("Access token không hợp lệ: {}", token_error_vi(&e)),
                        &format!("Invalid access token: {e}"),
                    ),
                );
                (refusal, "invalid_token", None)
            })?;
            let Some(system) = snapshot.system(&verified.system_id) else {
                let refusal = Refusal::new(
                    ErrorCode::InvalidToken,
                    message(
                        lang,
                        "Token thuộc về một hệ thống không còn tồn tại",
                        "The token belongs to a system that no longer exists",
                    ),
                );
                return Err((refusal, "unknown_system", None));
            };
            (system.clone(), Some(verified.generation))
        }
        (None, Some(key)) => {
            let hash = lgsp_auth::hash_secret(key.to_str().unwrap_or(""));
            let Some(system) = snapshot.api_key(&hash) else {
                let refusal = Refusal::new(
                    ErrorCode::InvalidApiKey,
                    message(
                        lang,
                        "API key không hợp lệ hoặc đã bị thu hồi",
                        "The API key is not valid or has been revoked",
                    ),
                );
                return Err((refusal, "invalid_api_key", None));
            };
            (system.clone(), None)
        }
        (None, None) => {
            let refusal = Refusal::new(
                ErrorCode::InvalidToken,
                message(
                    lang,
                    "Thiếu thông tin xác thực: gửi tiêu đề Authorization: Bearer <token> lấy từ POST /token, hoặc tiêu đề apikey",
                    "Missing credentials: send Authorization: Bearer <token> obtained from POST /token, or an apikey header",
                ),
            );
            return Err((refusal, "missing_token", None));
        }
    };
    if !system.enabled {
        let refusal = Refusal::new(
            ErrorCode::InvalidToken,
            message(
                lang,
                "Hệ thống gọi đã bị vô hiệu hóa",
                "The calling system is disabled",
            ),
        );
        return Err((refusal, "system_disabled", Some(system.id.to_string())));
    }
    if generation.is_some_and(|g| g != system.generation) {
        let refusal = Refusal::new(
            ErrorCode::InvalidToken,
            message(
                lang,
                "Token được cấp trước khi thông tin xác thực của hệ thống thay đổi (đổi secret hoặc vô hiệu hóa); hãy lấy token mới",
                "The token predates a change of the system's credentials (secret rotated or system disabled); get a new token",
            ),
        );
        return Err((refusal, "secret_rotated", Some(system.id.to_string())));
    }
    Ok(system)
}

#[allow(clippy::too_many_arguments)]
async fn forward(
    plane: &DataPlane,
    mut call: PendingCall,
    route: &Route,
    req: Request<Body>,
    rest: &str,
    consumer_id: &str,
    soap: Option<SoapVersion>,
    lang: Lang,
) -> Response<Body> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > plane.max_body) {
        return refuse(
            plane,
            call,
            too_large(lang, plane.max_body),
            soap,
            "body_too_large",
        )
        .await;
    }
    let (parts, body) = req.into_parts();
    let idempotent = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    );
    // Asked of the body itself: an HTTP/2 request may carry a body with
    // neither Content-Length nor Transfer-Encoding.
    let no_body = declared == Some(0) || http_body::Body::is_end_stream(&body);

    // A body that must follow a data standard is read whole and checked first;
    // a path that providers could split differently is not guessed at.
    // APIs without rules pay for none of this.
    let rule = if route.validations.is_empty() {
        None
    } else if lgsp_registry::ambiguous_path(rest) {
        let refusal = Refusal::new(
            ErrorCode::InvalidRequest,
            message(
                lang,
                "Đường dẫn có ký tự dễ gây hiểu lầm (\\, ;, /, ký tự điều khiển viết mã hóa); API này kiểm tra dữ liệu theo chuẩn nên không nhận đường dẫn như vậy",
                "The path holds characters providers read differently (\\, ;, an escaped / or control character); this API checks bodies against a data standard and takes no such path",
            ),
        );
        return refuse(plane, call, refusal, soap, "ambiguous_path").await;
    } else {
        let path = lgsp_registry::OperationPath::of(rest);
        route
            .validations
            .iter()
            .find(|r| r.matches(&parts.method, &path))
    };
    let mut body = Some(body);
    let mut replay: Option<Bytes> = (idempotent && no_body).then(Bytes::new);
    if let Some(rule) = rule {
        let bytes =
            match axum::body::to_bytes(body.take().unwrap_or_default(), plane.max_body as usize)
                .await
            {
                Ok(b) => b,
                Err(_) => {
                    return refuse(
                        plane,
                        call,
                        too_large(lang, plane.max_body),
                        soap,
                        "body_too_large",
                    )
                    .await;
                }
            };
        let (hash, size) = BodyDigest::of(&bytes);
        if let Some(refusal) = check_body(&bytes, rule, lang) {
            call.request = RequestSide::Read(hash, size);
            let reason = refusal.code;
            return refuse(plane, call, refusal, soap, reason).await;
        }
        replay = idempotent.then(|| bytes.clone());
        body = Some(Body::from(bytes));
    }

    let request_id = call.request_id.clone();
    let head_request = parts.method == Method::HEAD;
    // Idempotent calls whose body can be sent again are retried on another
    // upstream (or the same one, if there is only one) after a failure.
    let attempts = if replay.is_some() {
        route.upstream_urls.len().clamp(2, 3)
    } else {
        1
    };
    let mut tried: Vec<String> = Vec::new();
    let mut last_failure: Option<(&'static str, Refusal)> = None;
    for attempt_no in 0..attempts {
        let exclude: &[String] = if tried.len() >= route.upstream_urls.len() {
            &[]
        } else {
            &tried
        };
        let Some(attempt) = plane
            .upstreams
            .pick(&route.api_id, &route.upstream_urls, exclude)
        else {
            break;
        };
        let index = route
            .upstream_urls
            .iter()
            .position(|u| *u == attempt.upstream.url)
            .unwrap_or(0);
        tried.push(attempt.upstream.url.clone());
        let Some(uri) = upstream_uri(&route.upstreams[index], rest, parts.uri.query()) else {
            let refusal = Refusal::new(
                ErrorCode::InvalidRequest,
                message(lang, "Đường dẫn không hợp lệ", "Invalid path"),
            );
            return refuse(plane, call, refusal, soap, "bad_upstream_uri").await;
        };
        let this_body = match (body.take(), &replay) {
            (Some(b), _) => b,
            (None, Some(bytes)) => Body::from(bytes.clone()),
            (None, None) => break,
        };
        let mut builder = Request::builder()
            .method(parts.method.clone())
            .uri(parts.uri.clone())
            .version(parts.version);
        if let Some(h) = builder.headers_mut() {
            *h = parts.headers.clone();
        }
        let Ok(req) = builder.body(this_body) else {
            break;
        };
        let (upstream_req, meter) = upstream_request(
            req,
            Forward {
                uri,
                request_id: &request_id,
                consumer_id,
                client_ip: &call.client_addr,
                limit: plane.max_body,
                keep: route.keep_bodies,
            },
        );
        call.request = RequestSide::Metered(meter.clone());
        if route.keep_bodies {
            call.keep_until_us = Some(call.time_us + plane.body_retention.as_micros() as i64);
        }
        let more = attempt_no + 1 < attempts;
        let outcome =
            tokio::time::timeout(route.timeout, plane.upstream.request(upstream_req)).await;
        let mut response = match outcome {
            Ok(Ok(response)) => response,
            Ok(Err(e)) if meter.exceeded() => {
                // The consumer's body was too big: nothing learnt of the upstream.
                drop(attempt);
                tracing::debug!(error = ?e, "request body over the limit");
                return refuse(
                    plane,
                    call,
                    too_large(lang, plane.max_body),
                    soap,
                    "body_too_large",
                )
                .await;
            }
            Ok(Err(e)) => {
                tracing::warn!(request_id = %request_id, api = %route.name, upstream = %attempt.upstream.url, error = ?e, "upstream unreachable");
                attempt.failed("unreachable");
                let refusal = Refusal::new(
                    ErrorCode::BadGateway,
                    message(
                        lang,
                        &format!(
                            "Không kết nối được hệ thống cung cấp API {} (mã yêu cầu {request_id})",
                            route.name
                        ),
                        &format!(
                            "The provider of {} could not be reached (request id {request_id})",
                            route.name
                        ),
                    ),
                );
                last_failure = Some(("upstream_unreachable", refusal));
                continue;
            }
            Err(_) => {
                tracing::warn!(request_id = %request_id, api = %route.name, upstream = %attempt.upstream.url, timeout_ms = route.timeout.as_millis() as u64, "upstream timed out");
                attempt.failed("timeout");
                let refusal = Refusal::new(
                    ErrorCode::GatewayTimeout,
                    message(
                        lang,
                        &format!(
                            "Hệ thống cung cấp API {} không trả lời trong {} ms (mã yêu cầu {request_id})",
                            route.name,
                            route.timeout.as_millis()
                        ),
                        &format!(
                            "The provider of {} did not answer within {} ms (request id {request_id})",
                            route.name,
                            route.timeout.as_millis()
                        ),
                    ),
                );
                last_failure = Some(("upstream_timeout", refusal));
                continue;
            }
        };
        let status = response.status().as_u16();
        if matches!(status, 502..=504) {
            attempt.failed(&format!("status {status}"));
            if more {
                tracing::info!(request_id = %request_id, upstream = %tried.last().map_or("", |u| u.as_str()), status, "retrying on another upstream");
                // Should no other upstream take the retry, the consumer
                // learns what this one answered.
                let code = match status {
                    503 => ErrorCode::UpstreamUnavailable,
                    504 => ErrorCode::GatewayTimeout,
                    _ => ErrorCode::BadGateway,
                };
                let refusal = Refusal::new(
                    code,
                    message(
                        lang,
                        &format!(
                            "Hệ thống cung cấp API {} trả lời lỗi {status} (mã yêu cầu {request_id})",
                            route.name
                        ),
                        &format!(
                            "The provider of {} answered {status} (request id {request_id})",
                            route.name
                        ),
                    ),
                );
                last_failure = Some(("upstream_error_status", refusal));
                continue;
            }
        } else {
            attempt.succeeded();
        }

        call.status = status;
        downstream_headers(&mut response, &request_id);
        let (parts, body) = response.into_parts();

        // Answers that carry no body are not streamed (the server never polls
        // their body), so their record is made durable before the head goes out.
        if head_request || matches!(call.status, 204 | 304) || (100..200).contains(&call.status) {
            drop(body);
            let (hash, bytes) = BodyDigest::of(b"");
            let (record, kept) = call.finish_kept(hash, bytes, Some(Vec::new()));
            if let Err(e) = plane.calls.commit_with(record, kept).await {
                return log_unavailable(&request_id, e);
            }
            return Response::from_parts(parts, Body::empty());
        }
        return Response::from_parts(
            parts,
            Body::new(RecordedBody::new(
                body,
                call,
                plane.calls.clone(),
                plane.max_body,
            )),
        );
    }
    if let Some((reason, refusal)) = last_failure {
        return refuse(plane, call, refusal, soap, reason).await;
    }
    let refusal = Refusal::new(
        ErrorCode::UpstreamUnavailable,
        message(
            lang,
            &format!("Mọi hệ thống cung cấp API {} đang tạm ngừng (kiểm tra sức khỏe thất bại hoặc lỗi liên tiếp); thử lại sau", route.name),
            &format!("Every upstream of {} is out of service (failed health checks or repeated failures); retry later", route.name),
        ),
    )
    .with_header("retry-after", "30".to_owned());
    refuse(plane, call, refusal, soap, "upstream_unavailable").await
}

/// A body that must follow a data standard: `None` if it does.
fn check_body(bytes: &[u8], rule: &lgsp_registry::ValidationRule, lang: Lang) -> Option<Refusal> {
    let value = match serde_json::from_slice::<crate::strict::StrictJson>(bytes) {
        Ok(v) => v.0,
        Err(e) => {
            return Some(Refusal::new(
                ErrorCode::InvalidJson,
                message(
                    lang,
                    &format!(
                        "Nội dung yêu cầu phải là JSON theo chuẩn dữ liệu {}: {e}",
                        rule.standard
                    ),
                    &format!(
                        "The request body must be JSON following data standard {}: {e}",
                        rule.standard
                    ),
                ),
            ));
        }
    };
    let errors: Vec<serde_json::Value> = rule
        .validator
        .iter_errors(&value)
        .take(MAX_SCHEMA_ERRORS)
        .map(|e| {
            serde_json::json!({
                "instance_path": e.instance_path().to_string(),
                "schema_path": e.schema_path().to_string(),
                "message": e.to_string(),
            })
        })
        .collect();
    if errors.is_empty() {
        return None;
    }
    Some(
        Refusal::new(
            ErrorCode::SchemaViolation,
            message(
                lang,
                &format!(
                    "Nội dung yêu cầu không đúng chuẩn dữ liệu {} ({} lỗi)",
                    rule.standard,
                    errors.len()
                ),
                &format!(
                    "The request body does not follow data standard {} ({} errors)",
                    rule.standard,
                    errors.len()
                ),
            ),
        )
        .with_details(serde_json::json!({ "standard": &*rule.standard, "errors": errors })),
    )
}

/// The platform's own services, behind the same checks and call log.
async fn builtin(
    plane: &DataPlane,
    call: PendingCall,
    route: &Route,
    req: Request<Body>,
    rest: &str,
) -> Response<Body> {
    let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();
    let head = req.method() == Method::HEAD;
    let reply = match &*route.context {
        "danhmuc" if lgsp_codes::callbacks::route(rest).is_some() => {
            let (list_id, callback_id) = lgsp_codes::callbacks::route(rest).unwrap_or_default();
            let method = req.method().clone();
            let consumer = call.consumer.clone().unwrap_or_default();
            match axum::body::to_bytes(req.into_body(), MAX_SERVICE_BODY).await {
                Ok(body) => {
                    let lists = plane.codes.load_full();
                    let now = lgsp_registry::now_rfc3339();
                    let store = plane.registry.store();
                    lgsp_codes::callbacks::handle(
                        plane.allow_loopback_callbacks,
                        store,
                        &lists,
                        &consumer,
                        &method,
                        list_id,
                        callback_id,
                        body,
                        &now,
                    )
                    .await
                }
                Err(_) => {
                    return refuse(
                        plane,
                        call,
                        too_large(Lang::Vi, MAX_SERVICE_BODY as u64),
                        None,
                        "body_too_large",
                    )
                    .await;
                }
            }
        }
        "danhmuc" => {
            let lists = plane.codes.load();
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok());
            lgsp_codes::handle(
                &lists,
                req.method(),
                rest.trim_start_matches('/'),
                req.uri().query(),
                accept,
            )
        }
        _ => Reply::Error {
            status: StatusCode::NOT_FOUND,
            code: "unknown_api",
            message: format!("{} has no built-in service", route.name),
        },
    };
    match reply {
        Reply::Ok {
            body,
            content_type,
            last_modified,
        } => {
            // One hash serves both the ETag and the call record.
            let digest = BodyDigest::of(&body);
            let cache = Validators::new(&digest.0, last_modified.as_deref());
            let not_modified = if_none_match
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .is_some_and(|tags| cache.matches(tags));
            let (status, body, digest) = if not_modified {
                (StatusCode::NOT_MODIFIED, Bytes::new(), BodyDigest::of(b""))
            } else {
                (StatusCode::OK, body, digest)
            };
            let mut response = respond(plane, call, status, content_type, body, digest, head).await;
            if response.status() == status {
                cache.apply(response.headers_mut());
            }
            response
        }
        Reply::Status { status, body } => {
            let digest = BodyDigest::of(&body);
            let json = "application/json; charset=utf-8";
            respond(plane, call, status, json, body, digest, false).await
        }
        Reply::Error {
            status,
            code,
            message: text,
        } => {
            let refusal = Refusal {
                code,
                status,
                message: text,
                details: None,
                headers: Vec::new(),
            };
            refuse(plane, call, refusal, None, code).await
        }
    }
}

/// `ETag` (from the body's SHA-256) and `Last-Modified` of a built-in answer.
struct Validators {
    etag: String,
    last_modified: Option<String>,
}

impl Validators {
    /// `hash` is the body's SHA-256 in hex.
    fn new(hash: &str, last_modified: Option<&str>) -> Validators {
        let last_modified = last_modified
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            .and_then(|t| t.to_offset(UtcOffset::UTC).format(HTTP_DATE).ok());
        Validators {
            etag: format!("\"{}\"", &hash[..32]),
            last_modified,
        }
    }

    /// RFC 9110 §13.1.2: weak comparison, `*` matches anything.
    fn matches(&self, if_none_match: &str) -> bool {
        if_none_match
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.trim_start_matches("W/") == self.etag)
    }

    fn apply(&self, headers: &mut http::HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(&self.etag) {
            headers.insert(header::ETAG, v);
        }
        if let Some(v) = self
            .last_modified
            .as_deref()
            .and_then(|t| HeaderValue::from_str(t).ok())
        {
            headers.insert(header::LAST_MODIFIED, v);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
}

const HTTP_DATE: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// Records a complete answer (`digest`: its body's hash and size), then releases it.
#[allow(clippy::too_many_arguments)]
async fn respond(
    plane: &DataPlane,
    mut call: PendingCall,
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
    digest: (String, u64),
    head_only: bool,
) -> Response<Body> {
    call.status = status.as_u16();
    let (hash, bytes) = digest;
    let request_id = call.request_id.clone();
    if let Err(e) = plane.calls.commit(call.finish(hash, bytes)).await {
        return log_unavailable(&request_id, e);
    }
    let mut response = Response::new(if head_only {
        Body::empty()
    } else {
        Body::from(body)
    });
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if status != StatusCode::NOT_MODIFIED {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    insert_request_id(headers, &request_id);
    response
}

/// Records a refusal, then answers it.
async fn refuse(
    plane: &DataPlane,
    mut call: PendingCall,
    refusal: Refusal,
    soap: Option<SoapVersion>,
    reason: &str,
) -> Response<Body> {
    tracing::info!(
        request_id = %call.request_id,
        consumer = call.consumer.as_deref().unwrap_or("-"),
        api = call.api.as_deref().unwrap_or("-"),
        status = refusal.status.as_u16(),
        reason,
        "call refused"
    );
    call.status = refusal.status.as_u16();
    call.reason = Some(reason.to_owned());
    let request_id = call.request_id.clone();
    let (mut head, body) = refusal.into_parts(&request_id, soap);
    let (hash, bytes) = BodyDigest::of(&body);
    if let Err(e) = plane.calls.commit(call.finish(hash, bytes)).await {
        return log_unavailable(&request_id, e);
    }
    insert_request_id(head.headers_mut(), &request_id);
    head.map(|()| Body::from(body))
}

fn log_unavailable(request_id: &str, error: lgsp_evidence::CallLogError) -> Response<Body> {
    tracing::error!(request_id, error = %error, "call log unavailable; call refused");
    let refusal = Refusal::new(
        ErrorCode::CallLogUnavailable,
        "Nhật ký cuộc gọi tạm thời không ghi được; vui lòng thử lại sau / The call log cannot be written; try again later"
            .to_owned(),
    );
    let mut response = refusal.into_response(request_id, None);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

fn too_large(lang: Lang, limit: u64) -> Refusal {
    Refusal::new(
        ErrorCode::PayloadTooLarge,
        message(
            lang,
            &format!("Nội dung yêu cầu vượt quá giới hạn {limit} byte"),
            &format!("The request body exceeds the limit of {limit} bytes"),
        ),
    )
}

fn insert_request_id(headers: &mut http::HeaderMap, request_id: &str) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", v);
    }
}

fn token_error_vi(e: &lgsp_auth::TokenError) -> &'static str {
    use lgsp_auth::TokenError::*;
    match e {
        Malformed => "không đúng định dạng JWT",
        UnknownKey => "được ký bằng khóa không do nền tảng cấp",
        BadSignature => "chữ ký không hợp lệ",
        Expired => "đã hết hạn",
        WrongIssuer => "do bên khác phát hành",
    }
}

/// `/{context}/{version}{rest}`; `rest` is empty or starts with `/`.
fn split_api_path(path: &str) -> Option<(&str, &str, &str)> {
    let path = path.strip_prefix('/')?;
    let (context, after) = path.split_once('/')?;
    let (version, rest) = match after.find('/') {
        Some(i) => (&after[..i], &after[i..]),
        None => (after, ""),
    };
    (!context.is_empty() && !version.is_empty()).then_some((context, version, rest))
}

/// True if a segment is `.` or `..`, also when percent-encoded.
fn has_dot_segment(rest: &str) -> bool {
    rest.split('/').any(|segment| {
        let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
        decoded == "."
            || decoded == ".."
            || decoded.contains('/') && decoded.split('/').any(|s| s == "..")
    })
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths() {
        assert_eq!(
            split_api_path("/hotich/1.0/khaisinh/1"),
            Some(("hotich", "1.0", "/khaisinh/1"))
        );
        assert_eq!(split_api_path("/hotich/1.0"), Some(("hotich", "1.0", "")));
        assert_eq!(split_api_path("/hotich/1.0/"), Some(("hotich", "1.0", "/")));
        assert_eq!(split_api_path("/hotich"), None);
        assert_eq!(split_api_path("//1.0/x"), None);
    }

    #[test]
    fn dot_segments() {
        assert!(has_dot_segment("/a/../b"));
        assert!(has_dot_segment("/a/%2e%2E/b"));
        assert!(has_dot_segment("/./b"));
        assert!(has_dot_segment("/a%2f..%2fb"));
        assert!(!has_dot_segment("/a/..b/c.d"));
    }
}
