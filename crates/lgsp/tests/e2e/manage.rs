//! API management end to end: lifecycle, specifications, catalogue, data
//! standards, onboarding, plans and limits, network rules, API keys,
//! several upstreams, feedback, and changes applied under load.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::any;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Platform, World, start_upstream};

/// An upstream that counts the requests it receives and answers 200.
async fn counting_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route("/{*rest}", any(count))
        .route("/", any(count))
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hits)
}

async fn count(State(hits): State<Arc<AtomicUsize>>) -> &'static str {
    hits.fetch_add(1, Ordering::SeqCst);
    "{\"ok\":true}"
}

/// A port on which nothing listens.
async fn dead_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

async fn api_id(p: &Platform, name: &str) -> String {
    let (status, body) = p.admin_get("/api/v1/apis").await;
    assert_eq!(status, StatusCode::OK);
    let items = body["items"]
        .as_array()
        .or(body.as_array())
        .unwrap()
        .clone();
    items
        .iter()
        .find(|a| {
            format!(
                "{}/{}",
                a["context"].as_str().unwrap(),
                a["version"].as_str().unwrap()
            ) == name
        })
        .unwrap_or_else(|| panic!("no API {name} in {body}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn error_of(resp: reqwest::Response) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let status = resp.status();
    let headers = resp.headers().clone();
    let body: Value = resp.json().await.unwrap();
    (status, headers, body)
}

#[tokio::test]
async fn lifecycle_draft_published_deprecated_retired() {
    let w = World::new().await;
    let p = &w.platform;
    let upstream = start_upstream().await;
    let (status, body) = p
        .admin_post(
            "/api/v1/apis",
            json!({"provider_system": w.provider.id, "name": "Đăng ký kết hôn", "context": "kethon",
                   "version": "1.0", "upstream_url": format!("http://{upstream}/up"), "protocol": "rest"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "draft", "a new API starts as a draft");
    let id = body["id"].as_str().unwrap().to_owned();
    p.subscribe(&w.consumer, "kethon/1.0").await;

    // A draft takes no calls.
    let (status, _, body) = p.data(Method::GET, "/kethon/1.0/x", &w.token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "api_not_published");
    let record = p.record(body["request_id"].as_str().unwrap()).await;
    assert_eq!(record["reason"], "api_not_published");

    // Published: it does.
    let (status, body) = p
        .admin_post(&format!("/api/v1/apis/{id}/publish"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "published");
    let resp = p
        .call(Method::GET, "/kethon/1.0/x", &w.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().get("deprecation").is_none());

    // Deprecating needs a retirement day, in the future.
    let (status, body) = p
        .admin_post(&format!("/api/v1/apis/{id}/deprecate"), json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = p
        .admin_post(
            &format!("/api/v1/apis/{id}/deprecate"),
            json!({"retire_on": "2001-01-01"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = p
        .admin_post(
            &format!("/api/v1/apis/{id}/deprecate"),
            json!({"retire_on": "2099-12-31"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "deprecated");

    // Deprecated: still served, with Deprecation (RFC 9745) and Sunset (RFC 8594).
    let resp = p
        .call(Method::GET, "/kethon/1.0/x", &w.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let deprecation = resp.headers()["deprecation"].to_str().unwrap();
    assert!(deprecation.starts_with('@'), "{deprecation}");
    assert!(deprecation[1..].parse::<i64>().is_ok(), "{deprecation}");
    // Retired from the start of that day, Vietnam time (UTC+7).
    assert_eq!(resp.headers()["sunset"], "Wed, 30 Dec 2099 17:00:00 GMT");

    // Retired: refused, and it cannot come back.
    let (status, body) = p
        .admin_post(&format!("/api/v1/apis/{id}/retire"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = p.data(Method::GET, "/kethon/1.0/x", &w.token, None).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["error"], "api_retired");
    let (status, body) = p
        .admin_post(&format!("/api/v1/apis/{id}/publish"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = p
        .admin_post(&format!("/api/v1/apis/{id}/dance"), json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("dance"),
        "{body}"
    );

    // Every step is in the history, with who.
    let (status, body) = p.admin_get(&format!("/api/v1/apis/{id}/history")).await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.len() >= 3, "{body}");
    assert!(
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "operator" && e["at"].is_string())
    );
    w.platform.stop().await;
}

#[tokio::test]
async fn versions_live_side_by_side() {
    let w = World::new().await;
    let p = &w.platform;
    let upstream = start_upstream().await;
    let (status, body) = p
        .admin_post(
            "/api/v1/apis",
            json!({"provider_system": w.provider.id, "name": "API echo v2", "context": "echo",
                   "version": "2.0", "upstream_url": format!("http://{upstream}/up/v2"), "protocol": "rest",
                   "status": "published"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    p.subscribe(&w.consumer, "echo/2.0").await;
    let v1: Value = p
        .call(Method::GET, "/echo/1.0/a", &w.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let v2: Value = p
        .call(Method::GET, "/echo/2.0/a", &w.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v1["path"], "/up/a");
    assert_eq!(v2["path"], "/up/v2/a");
    w.platform.stop().await;
}

const OPENAPI_JSON: &str = r##"{
  "openapi": "3.0.3",
  "info": {"title": "Hộ tịch", "version": "1.0"},
  "paths": {"/khaisinh/{so}": {"get": {"parameters": [{"name": "so", "in": "path", "required": true,
     "schema": {"type": "string"}}], "responses": {"200": {"description": "ok",
     "content": {"application/json": {"schema": {"$ref": "#/components/schemas/KhaiSinh"}}}}}}}},
  "components": {"schemas": {"KhaiSinh": {"type": "object"}}}
}"##;

const OPENAPI_YAML: &str = "openapi: 3.1.0\ninfo:\n  title: Hộ tịch\n  version: '1.0'\npaths:\n  /khaisinh:\n    post:\n      responses:\n        '201':\n          description: tạo\n";

const WSDL: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
  xmlns:tns="urn:dkkd" targetNamespace="urn:dkkd" name="DangKyKinhDoanh">
  <message name="traCuuRequest"/>
  <message name="traCuuResponse"/>
  <portType name="DkkdPort"><operation name="traCuuDoanhNghiep"><input message="tns:traCuuRequest"/><output message="tns:traCuuResponse"/></operation></portType>
  <binding name="DkkdBinding" type="tns:DkkdPort"><soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="traCuuDoanhNghiep"/></binding>
  <service name="DkkdService"><port name="DkkdPort" binding="tns:DkkdBinding"><soap:address location="http://example.invalid/dkkd"/></port></service>
</definitions>"#;

async fn put_spec(p: &Platform, id: &str, body: &str) -> (StatusCode, Value) {
    let resp = p
        .http
        .put(format!("{}/api/v1/apis/{id}/spec", p.admin))
        .bearer_auth(&p.admin_token)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn specifications_are_validated_on_upload_and_served_to_subscribers() {
    let w = World::new().await;
    let p = &w.platform;
    let id = api_id(p, "echo/1.0").await;

    // Bad specifications: each refused with a reason, nothing stored.
    for (bad, why) in [
        ("openapi: [3.0\n  : : :", "invalid YAML"),
        ("{\"openapi\": \"3.0.0\"", "truncated JSON"),
        (
            "{\"openapi\": \"2.7\", \"info\": {\"title\": \"x\", \"version\": \"1\"}, \"paths\": {}}",
            "unknown version",
        ),
        ("{\"openapi\": \"3.0.0\", \"paths\": {}}", "no info"),
        ("<definitions", "not XML"),
        ("", "empty"),
        ("\u{0}\u{1}\u{2}binary", "binary"),
    ] {
        let (status, body) = put_spec(p, &id, bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{why}: {body}"
        );
    }
    let dangling = OPENAPI_JSON.replace(
        "#/components/schemas/KhaiSinh",
        "#/components/schemas/Missing",
    );
    let (status, body) = put_spec(p, &id, &dangling).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.to_string().contains("Missing"),
        "the dangling $ref is named: {body}"
    );
    let (status, _) = p.admin_get(&format!("/api/v1/apis/{id}/spec")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was stored");

    // A REST API takes OpenAPI, not WSDL.
    let (status, body) = put_spec(p, &id, WSDL).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Good ones, JSON and YAML.
    let (status, body) = put_spec(p, &id, OPENAPI_YAML).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kind"], "openapi");
    let (status, body) = put_spec(p, &id, OPENAPI_JSON).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Served to the subscriber as uploaded, refused to a system without a subscription.
    let resp = p
        .call(Method::GET, "/catalog/echo/1.0/spec", &w.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("json")
    );
    assert_eq!(resp.text().await.unwrap(), OPENAPI_JSON);
    let outsider = p.system("000.00.20.H41", "ngoai").await;
    let token = p.token(&outsider).await;
    assert_eq!(
        p.data(Method::GET, "/catalog/echo/1.0/spec", &token, None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let resp = p
        .http
        .get(format!("{}/catalog/echo/1.0/spec", p.data))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // A SOAP API takes WSDL.
    let upstream = start_upstream().await;
    let (status, body) = p
        .admin_post(
            "/api/v1/apis",
            json!({"provider_system": w.provider.id, "name": "Đăng ký kinh doanh", "context": "dkkd",
                   "version": "1.0", "upstream_url": format!("http://{upstream}/up"), "protocol": "soap"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let soap = body["id"].as_str().unwrap().to_owned();
    let (status, body) = put_spec(p, &soap, WSDL).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kind"], "wsdl");
    let (status, body) = put_spec(
        p,
        &soap,
        "<definitions xmlns=\"urn:x\"><oops></definitions>",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    w.platform.stop().await;
}

#[tokio::test]
async fn catalogue_search_ignores_case_and_diacritics() {
    let w = World::new().await;
    let p = &w.platform;
    let upstream = start_upstream().await;
    let (status, body) = p
        .admin_post(
            "/api/v1/apis",
            json!({"provider_system": w.provider.id, "name": "Tra cứu hộ tịch", "context": "hotich",
                   "version": "1.0", "upstream_url": format!("http://{upstream}/up"), "protocol": "rest",
                   "status": "published", "description": "Khai sinh, kết hôn, khai tử",
                   "tags": ["Hộ tịch", "công dân"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = p
        .admin_post(
            "/api/v1/standards",
            json!({"id": "giay-khai-sinh", "version": "1.0", "name": "Giấy khai sinh điện tử",
                   "owner_unit": "000.00.20.H41", "tags": ["hộ tịch"],
                   "schema": {"type": "object", "required": ["so"], "properties": {"so": {"type": "string"}}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let search = |q: &str| {
        let url = format!("{}/catalog", p.data);
        let q = q.to_owned();
        let token = w.token.clone();
        let http = p.http.clone();
        async move {
            let resp = http
                .get(url)
                .query(&[("q", q)])
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let body: Value = resp.json().await.unwrap();
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    format!(
                        "{}:{}",
                        i["kind"].as_str().unwrap(),
                        i["name"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let hits = search("HO TICH").await;
    assert!(hits.contains(&"api:hotich/1.0".to_owned()), "{hits:?}");
    assert!(
        hits.contains(&"standard:giay-khai-sinh/1.0".to_owned()),
        "{hits:?}"
    );
    assert_eq!(search("ket hon").await, vec!["api:hotich/1.0".to_owned()]);
    assert_eq!(
        search("cong dan").await,
        vec!["api:hotich/1.0".to_owned()],
        "by tag"
    );
    let by_unit = search("so tu phap").await;
    assert!(
        by_unit.contains(&"api:hotich/1.0".to_owned()),
        "by owner unit: {by_unit:?}"
    );
    assert!(search("đất đai").await.is_empty());
    assert!(search("khai sinh điện tử").await == vec!["standard:giay-khai-sinh/1.0".to_owned()]);
    w.platform.stop().await;
}

#[tokio::test]
async fn data_standards_refuse_bodies_that_do_not_follow_them() {
    let w = World::new().await;
    let p = &w.platform;
    let (addr, hits) = counting_upstream().await;
    let (status, body) = p
        .admin_post(
            "/api/v1/apis",
            json!({"provider_system": w.provider.id, "name": "Nộp hồ sơ", "context": "hoso",
                   "version": "1.0", "upstream_url": format!("http://{addr}/h"), "protocol": "rest",
                   "status": "published"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    p.subscribe(&w.consumer, "hoso/1.0").await;

    // Bad schemas and references are refused.
    let (status, body) = p
        .admin_post(
            "/api/v1/standards",
            json!({"id": "ho-so", "version": "1.0", "name": "Hồ sơ", "schema": {"type": "nonsense"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let schema = json!({
        "type": "object",
        "required": ["maHoSo", "ngayTiepNhan"],
        "properties": {
            "maHoSo": {"type": "string", "minLength": 3},
            "ngayTiepNhan": {"type": "string", "pattern": "^[0-9]{14}$"},
            "trangThai": {"type": "integer", "minimum": 1, "maximum": 10}
        }
    });
    let (status, body) = p
        .admin_post(
            "/api/v1/standards",
            json!({"id": "ho-so", "version": "1.0", "name": "Hồ sơ thủ tục hành chính", "schema": schema}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = p
        .admin_post(
            "/api/v1/standards",
            json!({"id": "ho-so", "version": "1.0", "name": "again", "schema": {}}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a standard's version never changes"
    );
    let (status, body) = p
        .admin_send(
            Method::PUT,
            &format!("/api/v1/apis/{id}/validations"),
            Some(json!({"items": [{"method": "POST", "path": "/hoso", "standard": "ho-so", "version": "9.9"}]})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "unknown standard version: {body}"
    );
    let (status, body) = p
        .admin_send(
            Method::PUT,
            &format!("/api/v1/apis/{id}/validations"),
            Some(json!({"items": [{"method": "POST", "path": "/hoso/{donvi}", "standard": "ho-so", "version": "1.0"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Conforming: forwarded.
    let good = json!({"maHoSo": "000.00.20.H41-250101-0001", "ngayTiepNhan": "20250101083000", "trangThai": 1});
    assert_eq!(
        p.data(
            Method::POST,
            "/hoso/1.0/hoso/000.00.20.H41",
            &w.token,
            Some(&good)
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Not conforming: 400 with each error's schema path, and the provider never sees it.
    let bad = json!({"maHoSo": "x", "ngayTiepNhan": "01/01/2025", "trangThai": 11});
    let (status, _, body) = p
        .data(
            Method::POST,
            "/hoso/1.0/hoso/000.00.20.H41",
            &w.token,
            Some(&bad),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "schema_violation");
    let errors = body["details"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3, "{body}");
    let paths: Vec<&str> = errors
        .iter()
        .map(|e| e["schema_path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"/properties/maHoSo/minLength"), "{paths:?}");
    assert!(
        paths.contains(&"/properties/ngayTiepNhan/pattern"),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"/properties/trangThai/maximum"),
        "{paths:?}"
    );
    let record = p.record(body["request_id"].as_str().unwrap()).await;
    assert_eq!(record["status"], 400);
    // Other spellings of the same operation are checked as well.
    for path in [
        "/hoso/1.0/hoso/000.00.20.H41/",
        "/hoso/1.0//hoso/000.00.20.H41",
        "/hoso/1.0/HoSo/000.00.20.H41",
        "/hoso/1.0/hoso;v=2/000.00.20.H41",
        "/hoso/1.0/hoso%2F000.00.20.H41",
    ] {
        let resp = p
            .call(Method::POST, path, &w.token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the provider saw none of them"
    );
    // A key given twice: the platform and the provider might each keep another.
    let resp = p
        .call(Method::POST, "/hoso/1.0/hoso/000.00.20.H41", &w.token)
        .header("content-type", "application/json")
        .body(r#"{"maHoSo": 1, "maHoSo": "000.00.20.H41-250101-0001", "ngayTiepNhan": "20250101083000", "trangThai": 1}"#)
        .send()
        .await
        .unwrap();
    let (status, _, body) = error_of(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_json", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("twice"),
        "{body}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    let missing = json!({"trangThai": 2});
    let (_, _, body) = p
        .data(Method::POST, "/hoso/1.0/hoso/X", &w.token, Some(&missing))
        .await;
    assert_eq!(body["details"]["errors"][0]["schema_path"], "/required");
    let resp = p
        .call(Method::POST, "/hoso/1.0/hoso/X", &w.token)
        .header("content-type", "application/json")
        .body("{\"maHoSo\": ")
        .send()
        .await
        .unwrap();
    let (status, _, body) = error_of(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_json");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "no refused body reached the provider"
    );

    // Other operations are not checked.
    let resp = p
        .call(Method::POST, "/hoso/1.0/khac", &w.token)
        .body("tự do")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    // The catalogue links the standard and the API.
    let (_, body) = p.admin_get("/api/v1/catalog?q=ho+so").await;
    let standard = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "standard")
        .unwrap();
    assert_eq!(standard["links"], json!(["hoso/1.0"]));
    w.platform.stop().await;
}

/// Files a subscription request from `consumer` on the data plane.
async fn request(p: &Platform, token: &str, api: &str) -> (StatusCode, Value) {
    let body = json!({"api": api, "purpose": "Liên thông hồ sơ khai sinh",
                      "legal_basis": "Nghị định 45/2020/NĐ-CP"});
    let (status, _, body) = p
        .data(Method::POST, "/subscription-requests", token, Some(&body))
        .await;
    (status, body)
}

#[tokio::test]
async fn onboarding_requests_are_approved_or_refused_by_the_provider() {
    let w = World::new().await;
    let p = &w.platform;
    let upstream = start_upstream().await;
    let (status, body) = p
        .admin_post(
            "/api/v1/apis",
            json!({"provider_system": w.provider.id, "name": "Khai sinh", "context": "khaisinh",
                   "version": "1.0", "upstream_url": format!("http://{upstream}/up"), "protocol": "rest",
                   "status": "published"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let provider_token = p.token(&w.provider).await;

    // Not subscribed yet, and the refusal says what to do.
    let (status, _, body) = p.data(Method::GET, "/khaisinh/1.0/a", &w.token, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("subscription-requests"),
        "{body}"
    );

    // Purpose and legal basis are required.
    assert_eq!(
        p.data(
            Method::POST,
            "/subscription-requests",
            &w.token,
            Some(&json!({"api": "khaisinh/1.0", "purpose": "", "legal_basis": "x"}))
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    let resp = p
        .call(Method::POST, "/subscription-requests", &w.token)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let (status, req) = request(p, &w.token, "khaisinh/1.0").await;
    assert_eq!(status, StatusCode::CREATED, "{req}");
    assert_eq!(req["status"], "pending");
    assert!(req["due_at"].is_string());
    let id = req["id"].as_str().unwrap().to_owned();
    let (status, _) = request(p, &w.token, "khaisinh/1.0").await;
    assert_eq!(status, StatusCode::CONFLICT, "one pending request per API");

    // The consumer cannot approve its own request; a third system cannot see it.
    assert_eq!(
        p.data(
            Method::POST,
            &format!("/subscription-requests/{id}/approve"),
            &w.token,
            Some(&json!({}))
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let outsider = p.system("000.21.33.H41", "khac").await;
    let outsider_token = p.token(&outsider).await;
    let resp = p
        .call(
            Method::GET,
            &format!("/subscription-requests/{id}"),
            &outsider_token,
        )
        .send()
        .await
        .unwrap();
    // Not even told the ticket exists.
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // The provider sees it in its queue; a refusal needs its reason.
    let resp = p
        .call(
            Method::GET,
            "/subscription-requests?role=provider&status=pending",
            &provider_token,
        )
        .send()
        .await
        .unwrap();
    let queue: Value = resp.json().await.unwrap();
    assert_eq!(queue["items"].as_array().unwrap().len(), 1, "{queue}");
    assert_eq!(
        p.data(
            Method::POST,
            &format!("/subscription-requests/{id}/refuse"),
            &provider_token,
            Some(&json!({}))
        )
        .await
        .0,
        StatusCode::BAD_REQUEST,
        "a refusal without a reason"
    );
    assert_eq!(
        p.data(
            Method::POST,
            &format!("/subscription-requests/{id}/refuse"),
            &provider_token,
            Some(&json!({"reason": "Thiếu văn bản đề nghị của Sở"}))
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        p.data(
            Method::POST,
            &format!("/subscription-requests/{id}/approve"),
            &provider_token,
            Some(&json!({}))
        )
        .await
        .0,
        StatusCode::CONFLICT,
        "a decided request stays decided"
    );

    // The consumer sees the reason; the call is still refused.
    let resp = p
        .call(
            Method::GET,
            &format!("/subscription-requests/{id}"),
            &w.token,
        )
        .send()
        .await
        .unwrap();
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(seen["request"]["status"], "refused", "{seen}");
    assert_eq!(seen["request"]["reason"], "Thiếu văn bản đề nghị của Sở");
    assert_eq!(
        p.data(Method::GET, "/khaisinh/1.0/a", &w.token, None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // Asked again and approved: the call goes through, at once.
    let (_, req) = request(p, &w.token, "khaisinh/1.0").await;
    let id = req["id"].as_str().unwrap().to_owned();
    assert_eq!(
        p.data(
            Method::POST,
            &format!("/subscription-requests/{id}/approve"),
            &provider_token,
            Some(&json!({}))
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        p.data(Method::GET, "/khaisinh/1.0/a", &w.token, None)
            .await
            .0,
        StatusCode::OK
    );

    // Every step, with who and when.
    let (status, body) = p
        .admin_get(&format!("/api/v1/subscription-requests/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let history = body["history"].as_array().unwrap();
    assert!(history.len() >= 2, "{body}");
    assert!(
        history
            .iter()
            .all(|e| e["actor"].is_string() && e["at"].is_string())
    );
    assert!(
        history
            .iter()
            .any(|e| e["actor"] == w.provider.global_id.as_str()),
        "{body}"
    );
    w.platform.stop().await;
}

#[tokio::test]
async fn overdue_requests_are_listed_and_shared_apis_need_no_approval() {
    let w = World::new().await;
    let p = &w.platform;
    let upstream = start_upstream().await;
    let (status, body) = p
        .admin_post(
            "/api/v1/apis",
            json!({"provider_system": w.provider.id, "name": "Mã bưu chính", "context": "buuchinh",
                   "version": "1.0", "upstream_url": format!("http://{upstream}/up"), "protocol": "rest",
                   "status": "published", "shared_by_default": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        p.data(Method::GET, "/buuchinh/1.0/x", &w.token, None)
            .await
            .0,
        StatusCode::OK,
        "a shared-by-default API needs no subscription"
    );
    // Asking for it is approved at once, on the API's default plan: a
    // consumer cannot pick itself a bigger one.
    let (status, _, body) = p.data(Method::POST, "/subscription-requests", &w.token, Some(&json!({"api": "buuchinh/1.0", "purpose": "Tra mã bưu chính", "legal_basis": "Quyết định 2475/QĐ-BTTTT", "plan": "coban"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("default plan"),
        "{body}"
    );
    let (status, body) = request(p, &w.token, "buuchinh/1.0").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "approved", "{body}");
    assert_eq!(body["plan_id"], Value::Null, "{body}");

    // Holidays: a bad day is refused, a good one listed.
    let (status, _) = p
        .admin_send(
            Method::PUT,
            "/api/v1/holidays/2026-02-30",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = p
        .admin_send(
            Method::PUT,
            "/api/v1/holidays/2026-09-02",
            Some(json!({"name": "Quốc khánh"})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (_, body) = p.admin_get("/api/v1/holidays").await;
    assert!(body.to_string().contains("Quốc khánh"), "{body}");

    // A request is due two working days after it was made.
    let (status, req) = request(p, &w.token, "echo/1.0").await;
    // echo/1.0 is already subscribed: asking again is a conflict, not a new request.
    assert_eq!(status, StatusCode::CONFLICT, "{req}");
    assert!(
        req["message"].as_str().unwrap().contains("echo/1.0"),
        "{req}"
    );
    let upstream2 = start_upstream().await;
    let (status, body) = p
        .admin_post(
            "/api/v1/apis",
            json!({"provider_system": w.provider.id, "name": "Khai tử", "context": "khaitu",
                   "version": "1.0", "upstream_url": format!("http://{upstream2}/up"), "protocol": "rest",
                   "status": "published"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, req) = request(p, &w.token, "khaitu/1.0").await;
    assert_eq!(status, StatusCode::CREATED, "{req}");
    let requested = time::OffsetDateTime::parse(
        req["requested_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let due = time::OffsetDateTime::parse(
        req["due_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let days = (due - requested).whole_days();
    assert!(
        (2..=6).contains(&days),
        "two working days, weekends skipped: {req}"
    );
    assert!(
        due.to_offset(time::UtcOffset::from_hms(7, 0, 0).unwrap())
            .weekday()
            != time::Weekday::Saturday
    );
    assert!(
        due.to_offset(time::UtcOffset::from_hms(7, 0, 0).unwrap())
            .weekday()
            != time::Weekday::Sunday
    );

    let (status, body) = p
        .admin_get("/api/v1/subscription-requests?overdue=true")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["items"].as_array().unwrap().is_empty(),
        "nothing is overdue yet: {body}"
    );
    let (_, body) = p
        .admin_get("/api/v1/subscription-requests?status=pending")
        .await;
    assert_eq!(body["items"][0]["overdue"], false);

    // Once its due time has passed, it is listed as overdue.
    let db = rusqlite::Connection::open(p.dir.path().join("lgsp.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.execute(
        "UPDATE subscription_requests SET due_at = '2020-01-02T10:00:00Z' WHERE id = ?1",
        [req["id"].as_str().unwrap()],
    )
    .unwrap();
    drop(db);
    let (_, body) = p
        .admin_get("/api/v1/subscription-requests?overdue=true")
        .await;
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{body}");
    assert_eq!(items[0]["overdue"], true);
    w.platform.stop().await;
}

async fn plan(p: &Platform, body: Value) {
    let (status, body) = p.admin_post("/api/v1/plans", body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn a_rate_limit_hit_by_many_clients_lets_no_more_through_than_the_plan() {
    let w = World::new().await;
    let p = &w.platform;
    let (addr, hits) = counting_upstream().await;

    // Bad plans are refused.
    let (status, _) = p
        .admin_post("/api/v1/plans", json!({"id": "x", "name": "x", "rate": 0}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = p
        .admin_post("/api/v1/plans", json!({"id": "x", "name": "x", "rate": -5}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = p
        .admin_post(
            "/api/v1/plans",
            json!({"id": "x", "name": "x", "rate": "fast"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // One request a second with a burst of 10, a quota of 30 a day.
    plan(
        p,
        json!({"id": "co-ban", "name": "Cơ bản", "rate": 1, "burst": 10, "per_day": 30}),
    )
    .await;
    let (status, body) = p
        .admin_post(
            "/api/v1/apis",
            json!({"provider_system": w.provider.id, "name": "Giới hạn", "context": "gioihan",
                   "version": "1.0", "upstream_url": format!("http://{addr}/g"), "protocol": "rest",
                   "status": "published"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = p
        .admin_post(
            "/api/v1/subscriptions",
            json!({"consumer_system": w.consumer.id, "api": "gioihan/1.0", "plan": "co-ban"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // 64 clients at once, 4 calls each: at most the burst (and one more per
    // second elapsed) gets through.
    let started = Instant::now();
    let calls = (0..64).map(|_| {
        let http = p.http.clone();
        let url = format!("{}/gioihan/1.0/x", p.data);
        let token = w.token.clone();
        async move {
            let mut out = Vec::new();
            for _ in 0..4 {
                let resp = http.get(&url).bearer_auth(&token).send().await.unwrap();
                out.push((resp.status(), resp.headers().clone()));
            }
            out
        }
    });
    let results: Vec<_> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .flatten()
        .collect();
    let elapsed = started.elapsed().as_secs() as usize;
    let allowed = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let refused: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(
        allowed + refused.len(),
        256,
        "every call either passes or gets 429"
    );
    assert!(allowed >= 10, "the burst passes: {allowed}");
    assert!(
        allowed <= 10 + elapsed + 1,
        "{allowed} let through in {elapsed} s"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        allowed,
        "the provider saw exactly the calls let through"
    );
    let (_, headers) = refused[0];
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let policy = headers["ratelimit-policy"].to_str().unwrap();
    assert!(policy.contains("q=1") && policy.contains("w=1"), "{policy}");
    assert!(policy.contains("\"day\";q=30;w=86400"), "{policy}");
    assert!(headers["ratelimit"].to_str().unwrap().contains("r=0"));
    let ok_headers = &results
        .iter()
        .find(|(s, _)| *s == StatusCode::OK)
        .unwrap()
        .1;
    assert!(ok_headers.contains_key("ratelimit-policy") && ok_headers.contains_key("ratelimit"));
    w.platform.stop().await;
}

#[tokio::test]
async fn quotas_run_out_and_say_so() {
    let w = World::new().await;
    let p = &w.platform;
    plan(
        p,
        json!({"id": "thu", "name": "Dùng thử", "rate": 1000, "per_day": 3}),
    )
    .await;
    let sub = w.platform.admin_get("/api/v1/subscriptions").await.1;
    let sub_id = sub["items"].as_array().or(sub.as_array()).unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = p
        .admin_send(
            Method::PATCH,
            &format!("/api/v1/subscriptions/{sub_id}"),
            Some(json!({"plan": "thu"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A body that does not name the plan leaves it alone.
    let (status, body) = p
        .admin_send(
            Method::PATCH,
            &format!("/api/v1/subscriptions/{sub_id}"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("plan"), "{body}");
    for _ in 0..3 {
        let resp = p
            .call(Method::GET, "/echo/1.0/q", &w.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let (status, headers, body) = p.data(Method::GET, "/echo/1.0/q", &w.token, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"], "quota_exceeded");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 86_400, "until midnight: {retry}");
    let record = p.record(body["request_id"].as_str().unwrap()).await;
    assert_eq!(record["status"], 429);

    // The quota survives a restart: it is read back from the call log.
    let kept = w.platform.stop_keeping_dir().await;
    let p = Platform::start_in(kept, |_| {}).await;
    // A new token: the issuer is the data plane's URL, and its port is new.
    let token = p.token(&w.consumer).await;
    assert_eq!(
        p.data(Method::GET, "/echo/1.0/q", &token, None).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );

    // A bigger plan applies from the next call, without a restart.
    let (status, body) = p
        .admin_send(
            Method::PUT,
            "/api/v1/plans/thu",
            Some(json!({"id": "thu", "name": "Dùng thử", "rate": 1000, "per_day": 10})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        p.data(Method::GET, "/echo/1.0/q", &token, None).await.0,
        StatusCode::OK
    );
    p.stop().await;
}

#[tokio::test]
async fn network_rules_refuse_calls_from_elsewhere() {
    let w = World::new().await;
    let p = &w.platform;
    let path = format!("/api/v1/systems/{}/networks", w.consumer.id);

    for bad in [
        "10.0.0.0/33",
        "10.0.0.300/8",
        "fe80::/129",
        "not a network",
        "",
    ] {
        let (status, body) = p
            .admin_send(Method::PUT, &path, Some(json!({"items": [{"cidr": bad}]})))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }

    // Only the province's network and an IPv6 range: loopback is refused.
    let (status, body) = p
        .admin_send(
            Method::PUT,
            &path,
            Some(json!({"items": [{"cidr": "10.10.0.0/16", "note": "mạng nội bộ"}, {"cidr": "2001:db8::/32"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = p.data(Method::GET, "/echo/1.0/x", &w.token, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "network_not_allowed");
    assert!(
        body["message"].as_str().unwrap().contains("127.0.0.1"),
        "{body}"
    );
    let record = p.record(body["request_id"].as_str().unwrap()).await;
    assert_eq!(record["reason"], "network_not_allowed");
    assert_eq!(record["consumer"], w.consumer.id.as_str());

    // Other systems are not affected.
    let other = p.system("000.21.33.H41", "khac").await;
    p.subscribe(&other, "echo/1.0").await;
    let token = p.token(&other).await;
    assert_eq!(
        p.data(Method::GET, "/echo/1.0/x", &token, None).await.0,
        StatusCode::OK
    );

    // Loopback allowed (IPv4 and its IPv6-mapped form): calls pass again.
    let (status, _) = p
        .admin_send(
            Method::PUT,
            &path,
            Some(json!({"items": [{"cidr": "127.0.0.0/8"}, {"cidr": "::1/128"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        p.data(Method::GET, "/echo/1.0/x", &w.token, None).await.0,
        StatusCode::OK
    );
    let (_, body) = p.admin_get(&path).await;
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    w.platform.stop().await;
}

#[tokio::test]
async fn api_keys_are_shown_once_scoped_to_one_system_and_revocable() {
    let w = World::new().await;
    let p = &w.platform;
    let (status, body) = p
        .admin_post(
            &format!("/api/v1/systems/{}/api-keys", w.consumer.id),
            json!({"name": "máy chủ cũ"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let key = body["key"].as_str().unwrap().to_owned();
    let key_id = body["id"].as_str().unwrap().to_owned();
    assert!(key.len() >= 32);

    // Listing never shows the key again.
    let (_, list) = p
        .admin_get(&format!("/api/v1/systems/{}/api-keys", w.consumer.id))
        .await;
    assert!(!list.to_string().contains(&key), "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // The key is the consumer: its subscriptions, its record.
    let resp = p
        .http
        .get(format!("{}/echo/1.0/k", p.data))
        .header("apikey", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let echo: Value = resp.json().await.unwrap();
    assert_eq!(
        echo["headers"]["x-consumer-id"],
        w.consumer.global_id.as_str()
    );
    assert!(
        echo["headers"].get("apikey").is_none(),
        "the key does not reach the provider"
    );
    let resp = p
        .http
        .get(format!("{}/echo/1.0/k", p.data))
        .header("apikey", "wrong-key")
        .send()
        .await
        .unwrap();
    let (status, _, body) = error_of(resp).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_api_key");

    // Revoked: refused from the next call on.
    let (status, _) = p
        .admin_send(Method::DELETE, &format!("/api/v1/api-keys/{key_id}"), None)
        .await;
    assert!(status.is_success());
    let resp = p
        .http
        .get(format!("{}/echo/1.0/k", p.data))
        .header("apikey", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = p
        .admin_post(
            &format!("/api/v1/systems/{}/api-keys", "no-such-system"),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    w.platform.stop().await;
}

#[tokio::test]
async fn idempotent_calls_are_retried_on_another_upstream_and_breakers_open() {
    let w = World::with(|a| a.health_check_interval_ms = Some(200)).await;
    let p = &w.platform;
    let (good, hits) = counting_upstream().await;
    let dead = dead_port().await;
    let (status, body) = p
        .admin_post(
            "/api/v1/apis",
            json!({"provider_system": w.provider.id, "name": "Hai máy chủ", "context": "haimay",
                   "version": "1.0", "upstream_url": format!("http://{dead}/a"),
                   "extra_upstreams": [format!("http://{good}/a")], "protocol": "rest",
                   "status": "published"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    p.subscribe(&w.consumer, "haimay/1.0").await;

    // GET: whichever upstream is picked, the call succeeds.
    for _ in 0..8 {
        let resp = p
            .call(Method::GET, "/haimay/1.0/x", &w.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 8);

    // The dead upstream's breaker is open after its failures; the admin API shows it.
    let (status, body) = p.admin_get(&format!("/api/v1/apis/{id}/upstreams")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().unwrap();
    let dead_view = items
        .iter()
        .find(|u| {
            u["url"]
                .as_str()
                .unwrap()
                .contains(&dead.port().to_string())
        })
        .unwrap();
    assert!(dead_view["failures"].as_u64().unwrap() >= 1, "{body}");

    // POST is not idempotent: never sent twice. With the dead upstream alone, it fails.
    let (status, body) = p
        .admin_send(
            Method::PATCH,
            &format!("/api/v1/apis/{id}"),
            Some(json!({"upstream_url": format!("http://{dead}/a"), "extra_upstreams": []})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let resp = p
        .call(Method::POST, "/haimay/1.0/x", &w.token)
        .body("một lần")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_server_error());
    let (_, body) = p.admin_get(&format!("/api/v1/apis/{id}/upstreams")).await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1);

    // Health checks: a health path marks the dead one unhealthy.
    let (status, _) = p
        .admin_send(
            Method::PATCH,
            &format!("/api/v1/apis/{id}"),
            Some(
                json!({"extra_upstreams": [format!("http://{good}/a")], "health_path": "/health"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, body) = p.admin_get(&format!("/api/v1/apis/{id}/upstreams")).await;
        let items = body["items"].as_array().unwrap().clone();
        let healthy: Vec<Option<bool>> = items.iter().map(|u| u["healthy"].as_bool()).collect();
        if healthy.contains(&Some(false)) && healthy.contains(&Some(true)) {
            break;
        }
        assert!(Instant::now() < deadline, "health checks never ran: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // With the dead one known unhealthy, even a POST reaches the good one.
    let before = hits.load(Ordering::SeqCst);
    for _ in 0..4 {
        let resp = p
            .call(Method::POST, "/haimay/1.0/x", &w.token)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    assert!(hits.load(Ordering::SeqCst) >= before + 4);
    w.platform.stop().await;
}

#[tokio::test]
async fn feedback_tickets_are_answered_by_the_provider() {
    let w = World::new().await;
    let p = &w.platform;
    let provider_token = p.token(&w.provider).await;
    let resp = p
        .call(Method::POST, "/tickets", &w.token)
        .json(
            &json!({"api": "echo/1.0", "kind": "problem", "subject": "Sai ngày sinh",
                      "body": "Trường ngaySinh trả về sai định dạng"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let ticket: Value = resp.json().await.unwrap();
    let id = ticket["id"].as_str().unwrap().to_owned();
    assert_eq!(ticket["status"], "open");
    assert_eq!(p.data(Method::POST, "/tickets", &w.token, Some(&json!({"api": "echo/1.0", "kind": "complaint-about-everything", "subject": "x", "body": "y"}))).await.0, StatusCode::BAD_REQUEST);

    // A third system cannot read or answer it.
    let outsider = p.system("000.21.33.H41", "khac").await;
    let outsider_token = p.token(&outsider).await;
    let resp = p
        .call(Method::GET, &format!("/tickets/{id}"), &outsider_token)
        .send()
        .await
        .unwrap();
    // Not even told the ticket exists.
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = p
        .call(
            Method::POST,
            &format!("/tickets/{id}/messages"),
            &outsider_token,
        )
        .json(&json!({"body": "chen ngang"}))
        .send()
        .await
        .unwrap();
    // Not even told the ticket exists.
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // The provider answers; both see the status and the history.
    assert_eq!(
        p.data(
            Method::POST,
            &format!("/tickets/{id}/messages"),
            &provider_token,
            Some(&json!({"body": "Đã sửa, định dạng yyyyMMdd"}))
        )
        .await
        .0,
        StatusCode::OK
    );
    for token in [&w.token, &provider_token] {
        let resp = p
            .call(Method::GET, &format!("/tickets/{id}"), token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let seen: Value = resp.json().await.unwrap();
        assert_eq!(seen["ticket"]["status"], "answered", "{seen}");
        let sides: Vec<&str> = seen["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["side"].as_str().unwrap())
            .collect();
        assert_eq!(sides, ["consumer", "provider"]);
    }
    assert_eq!(
        p.data(
            Method::POST,
            &format!("/tickets/{id}/messages"),
            &w.token,
            Some(&json!({"body": "Cảm ơn", "close": true}))
        )
        .await
        .0,
        StatusCode::OK
    );
    let (_, body) = p.admin_get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(body["ticket"]["status"], "closed");
    w.platform.stop().await;
}

#[tokio::test]
async fn changes_apply_live_under_load_without_failing_a_call() {
    let w = World::new().await;
    let p = Arc::new(w.platform);
    let id = api_id(&p, "echo/1.0").await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = (0..8).map(|_| {
        let p = p.clone();
        let token = w.token.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let resp = p
                    .call(Method::GET, "/echo/1.0/tai", &token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    resp.status(),
                    StatusCode::OK,
                    "a call failed during a reload"
                );
                n += 1;
            }
            n
        })
    });
    let load: Vec<_> = load.collect();

    // Twenty changes while the load runs; each visible within 1 s.
    for i in 0..20 {
        let description = format!("Lần sửa {i}");
        let started = Instant::now();
        let (status, body) = p
            .admin_send(
                Method::PATCH,
                &format!("/api/v1/apis/{id}"),
                Some(json!({"description": description, "timeout_ms": 2000 + i})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = p
            .admin_post(
                "/api/v1/plans",
                json!({"id": format!("p{i}"), "name": "x", "rate": 100000}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    let (status, _) = p
        .admin_send(
            Method::PATCH,
            &format!("/api/v1/apis/{id}"),
            Some(json!({"default_plan": "p0"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let resp = p
        .call(Method::GET, "/echo/1.0/tai", &w.token)
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers().contains_key("ratelimit-policy"),
        "the default plan applies at once"
    );

    stop.store(true, Ordering::SeqCst);
    let mut total = 0;
    for task in load {
        total += task.await.unwrap();
    }
    assert!(total > 20, "{total}");
    let p = Arc::try_unwrap(p).ok().unwrap();
    p.stop().await;
}

#[tokio::test]
async fn hostile_input_gets_precise_errors_and_changes_nothing() {
    let w = World::new().await;
    let p = &w.platform;
    let id = api_id(p, "echo/1.0").await;
    let before = p.admin_get(&format!("/api/v1/apis/{id}")).await.1;
    for bad in [
        json!({"upstream_url": "ftp://x"}),
        json!({"upstream_url": "http://user:pw@host/"}),
        json!({"tags": ["a".repeat(10_000)]}),
        json!({"tags": (0..500).map(|i| i.to_string()).collect::<Vec<_>>()}),
        json!({"description": "x".repeat(100_000)}),
        json!({"timeout_ms": -1}),
        json!({"default_plan": "no-such-plan"}),
        json!({"extra_upstreams": ["not a url"]}),
        json!({"health_path": "no-slash"}),
        json!({"unknown_field": 1}),
        json!([1, 2, 3]),
    ] {
        let (status, body) = p
            .admin_send(
                Method::PATCH,
                &format!("/api/v1/apis/{id}"),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    assert_eq!(
        p.admin_get(&format!("/api/v1/apis/{id}")).await.1,
        before,
        "nothing changed"
    );

    for path in [
        "/api/v1/subscription-requests/nope",
        "/api/v1/tickets/nope",
        "/api/v1/standards/nope/1.0",
    ] {
        let (status, _) = p.admin_get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let resp = p
        .http
        .get(format!("{}/catalog", p.data))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "the catalogue needs credentials"
    );
    let resp = p
        .call(Method::GET, "/catalog?q=%FF%FE", &w.token)
        .send()
        .await
        .unwrap();
    // Bytes that are not UTF-8 are read as replacement characters: no match.
    let (status, _, body) = error_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"], json!([]), "{body}");
    let huge = "a".repeat(6 * 1024 * 1024);
    let resp = p
        .http
        .put(format!("{}/api/v1/apis/{id}/spec", p.admin))
        .bearer_auth(&p.admin_token)
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    w.platform.stop().await;
}
