//! The evidence log on the data plane, read-only.
//!
//! Public (no token): `/log/checkpoint`, `/log/keys`, the hash tiles under
//! `/log/tile/…` (C2SP tlog-tiles), and inclusion and consistency proofs.
//! Hashes reveal nothing of the calls. Entry bundles (`/log/tile/entries/…`)
//! hold the records themselves, so they are public only where the operator
//! says so; auditors read them through the admin API. A consumer system
//! fetches the evidence bundle of its own calls with its token.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lgsp_evidence::EvidenceError;
use lgsp_evidence::tiles::TilePath;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::DataPlane;
use crate::error::{ErrorCode, Lang, Refusal, message};

fn refuse(code: ErrorCode, text: String) -> Response {
    let request_id = Uuid::now_v7().to_string();
    let mut response = Refusal::new(code, text).into_response(&request_id, None);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    if code == ErrorCode::EvidencePending {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response.into_response()
}

fn evidence_error(lang: Lang, e: EvidenceError) -> Response {
    match e {
        EvidenceError::NotYetCheckpointed => refuse(
            ErrorCode::EvidencePending,
            message(
                lang,
                "Cuộc gọi chưa nằm trong checkpoint đã ký; thử lại sau một giây",
                "The call is not yet in a signed checkpoint; retry in a second",
            ),
        ),
        EvidenceError::BeyondTree { size, current } => refuse(
            ErrorCode::InvalidRequest,
            message(
                lang,
                &format!("Kích thước cây {size} vượt quá số bản ghi hiện có ({current})"),
                &format!("Tree size {size} is beyond the log's {current} records"),
            ),
        ),
        EvidenceError::Proof(p) => refuse(
            ErrorCode::InvalidRequest,
            message(
                lang,
                &format!("Không lập được bằng chứng: {p}"),
                &p.to_string(),
            ),
        ),
        other => {
            tracing::error!(error = %other, "evidence log read failed");
            refuse(
                ErrorCode::CallLogUnavailable,
                message(
                    lang,
                    "Không đọc được nhật ký bằng chứng",
                    "The evidence log cannot be read",
                ),
            )
        }
    }
}

fn plain(
    status: StatusCode,
    content_type: &'static str,
    cache: &'static str,
    body: impl Into<Body>,
) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// `GET /log/checkpoint`: the latest signed checkpoint.
pub async fn checkpoint(State(plane): State<Arc<DataPlane>>, headers: HeaderMap) -> Response {
    match plane.evidence.head() {
        Some(head) => plain(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "no-cache",
            head.note.clone(),
        ),
        None => refuse(
            ErrorCode::EvidencePending,
            message(
                Lang::from_headers(&headers),
                "Chưa có checkpoint nào được ký",
                "No checkpoint has been signed yet",
            ),
        ),
    }
}

/// `GET /log/keys`: the log's origin and every key that has signed its checkpoints.
pub async fn keys(State(plane): State<Arc<DataPlane>>) -> Response {
    let current = plane.evidence.current_key().to_vkey();
    let keys: Vec<String> = plane.evidence.keys().iter().map(|k| k.to_vkey()).collect();
    Json(json!({ "origin": plane.evidence.origin(), "current": current, "keys": keys }))
        .into_response()
}

/// `GET /log/tile/{path}`: a hash tile or (where public) an entry bundle.
pub async fn tile(
    State(plane): State<Arc<DataPlane>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let Ok(Path(path)) = path else {
        return bad_path(lang);
    };
    let tile = match TilePath::parse(&path) {
        Ok(t) => t,
        Err(e) => {
            return refuse(
                ErrorCode::NotFound,
                message(
                    lang,
                    &format!("Đường dẫn tile không hợp lệ: {e}"),
                    &format!("Not a tile path: {e}"),
                ),
            );
        }
    };
    let found = match tile.level {
        Some(level) => {
            plane
                .evidence
                .hash_tile(level, tile.index, tile.width)
                .await
        }
        None if plane.public_entries => plane.evidence.entry_bundle(tile.index, tile.width).await,
        None => {
            return refuse(
                ErrorCode::Forbidden,
                message(
                    lang,
                    "Nội dung bản ghi không công khai trên nền tảng này; kiểm toán viên đọc qua API quản trị (/api/v1/log/tile/entries/…)",
                    "Log entries are not public on this platform; auditors read them through the admin API (/api/v1/log/tile/entries/…)",
                ),
            );
        }
    };
    match found {
        Ok(Some(bytes)) => plain(
            StatusCode::OK,
            "application/octet-stream",
            "public, max-age=31536000, immutable",
            bytes,
        ),
        Ok(None) => refuse(
            ErrorCode::NotFound,
            message(
                lang,
                &format!("Tile {path} chưa tồn tại"),
                &format!("Tile {path} does not exist yet"),
            ),
        ),
        Err(e) => evidence_error(lang, e),
    }
}

#[derive(Deserialize)]
pub struct InclusionQuery {
    index: u64,
    size: u64,
}

#[derive(Deserialize)]
pub struct ConsistencyQuery {
    from: u64,
    to: u64,
}

fn bad_path(lang: Lang) -> Response {
    refuse(
        ErrorCode::NotFound,
        message(
            lang,
            "Đường dẫn không hợp lệ (không phải UTF-8)",
            "Invalid path (not UTF-8)",
        ),
    )
}

fn bad_query(lang: Lang, e: QueryRejection) -> Response {
    refuse(
        ErrorCode::InvalidRequest,
        message(
            lang,
            &format!("Tham số truy vấn không hợp lệ: {}", e.body_text()),
            &format!("Bad query parameters: {}", e.body_text()),
        ),
    )
}

fn encode(proof: &[[u8; 32]]) -> Vec<String> {
    proof.iter().map(|h| STANDARD.encode(h)).collect()
}

/// `GET /log/proof/inclusion?index=I&size=N`.
pub async fn inclusion(
    State(plane): State<Arc<DataPlane>>,
    headers: HeaderMap,
    query: Result<Query<InclusionQuery>, QueryRejection>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return bad_query(lang, e),
    };
    match plane.evidence.inclusion(q.index, q.size).await {
        Ok(proof) => Json(json!({ "index": q.index, "size": q.size, "proof": encode(&proof) }))
            .into_response(),
        Err(e) => evidence_error(lang, e),
    }
}

/// `GET /log/proof/consistency?from=M&to=N`.
pub async fn consistency(
    State(plane): State<Arc<DataPlane>>,
    headers: HeaderMap,
    query: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return bad_query(lang, e),
    };
    match plane.evidence.consistency(q.from, q.to).await {
        Ok(proof) => {
            Json(json!({ "from": q.from, "to": q.to, "proof": encode(&proof) })).into_response()
        }
        Err(e) => evidence_error(lang, e),
    }
}

/// `GET /log/evidence/{request_id}`: the bundle of one of the caller's own calls.
pub async fn evidence(
    State(plane): State<Arc<DataPlane>>,
    request_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let Ok(Path(request_id)) = request_id else {
        return bad_path(lang);
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(lgsp_auth::bearer_token);
    let Some(bearer) = bearer else {
        return refuse(
            ErrorCode::InvalidToken,
            message(
                lang,
                "Thiếu access token: gửi tiêu đề Authorization: Bearer <token> lấy từ POST /token",
                "Missing access token: send Authorization: Bearer <token> obtained from POST /token",
            ),
        );
    };
    let system_id = match plane.tokens.verify(bearer) {
        Ok(v) => {
            let snapshot = plane.registry.snapshot();
            match snapshot.system(&v.system_id) {
                Some(s) if s.enabled && s.generation == v.generation => s.id.to_string(),
                _ => {
                    return refuse(
                        ErrorCode::InvalidToken,
                        message(
                            lang,
                            "Token không còn hiệu lực cho hệ thống này; hãy lấy token mới",
                            "The token is no longer valid for its system; get a new token",
                        ),
                    );
                }
            }
        }
        Err(e) => {
            return refuse(
                ErrorCode::InvalidToken,
                message(
                    lang,
                    "Access token không hợp lệ",
                    &format!("Invalid access token: {e}"),
                ),
            );
        }
    };
    let not_found = || {
        refuse(
            ErrorCode::NotFound,
            message(
                lang,
                &format!("Hệ thống của bạn không có cuộc gọi nào mang request id {request_id}"),
                &format!("Your system made no call with request id {request_id}"),
            ),
        )
    };
    if request_id.len() > 128 {
        return not_found();
    }
    let record = match plane.evidence.store().call_by_request_id(&request_id).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(),
        Err(e) => return evidence_error(lang, EvidenceError::Store(e)),
    };
    // Another system's call is answered exactly as a call that does not exist.
    if record.consumer.as_deref() != Some(system_id.as_str()) {
        return not_found();
    }
    match plane.evidence.bundle(&record).await {
        Ok(bundle) => {
            let mut response = Json(bundle).into_response();
            let disposition = format!("attachment; filename=\"{request_id}.evidence.json\"");
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_DISPOSITION, v);
            }
            response
        }
        Err(e) => evidence_error(lang, e),
    }
}
