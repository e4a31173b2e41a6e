//! The admin API: authentication, validation, and bad input of every kind.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::Platform;

#[tokio::test]
async fn requires_the_admin_token() {
    let p = Platform::start().await;
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic abc"),
        Some("Bearer "),
    ] {
        let mut req = p.http.get(format!("{}/api/v1/units", p.admin));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
    }
    // Health needs no token.
    assert_eq!(
        p.http
            .get(format!("{}/healthz", p.admin))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        p.http
            .get(format!("{}/readyz", p.admin))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // The token file is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(p.dir.path().join("admin-token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    p.stop().await;
}

#[tokio::test]
async fn bad_input_gets_precise_errors_and_changes_nothing() {
    let p = Platform::start().await;
    p.unit("000.00.20.H41", "Sở Tư pháp").await;
    let (_, before) = p.admin_get("/api/v1/units").await;

    let raw = |body: &'static str, content_type: &'static str| {
        p.http
            .post(format!("{}/api/v1/units", p.admin))
            .bearer_auth(&p.admin_token)
            .header("content-type", content_type)
            .body(body)
    };
    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str, &str)> = vec![
        (
            raw("{\"code\": ", "application/json"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "malformed JSON",
        ),
        (
            raw("{\"code\": 12, \"name\": \"x\"}", "application/json"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "invalid type",
        ),
        (
            raw(
                "{\"code\": \"000.00.21.H41\", \"name\": \"x\", \"extra\": 1}",
                "application/json",
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unknown field `extra`",
        ),
        (
            raw("{\"name\": \"x\"}", "application/json"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "missing field `code`",
        ),
        (
            raw("code=1", "application/x-www-form-urlencoded"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "application/json",
        ),
        (
            raw("[]", "application/json"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "must be a JSON object",
        ),
        // Not taken for the object, its fields by position.
        (
            raw("[\"000.00.21.H41\", \"Sở Y tế\"]", "application/json"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "must be a JSON object",
        ),
    ];
    for (req, status, error, needle) in cases {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), status, "{needle}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], error, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains(needle),
            "{needle}: {body}"
        );
        assert!(body["request_id"].is_string());
    }

    for code in [
        "",
        "000.00.20.h41",
        "000..20.H41",
        ".H41",
        "H41.",
        "000 00",
        "Ủ.H41",
        &"1".repeat(36),
        "000/../x",
    ] {
        let (status, body) = p
            .admin_post("/api/v1/units", json!({"code": code, "name": "Đơn vị"}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{code:?}: {body}");
        assert!(
            body["message"].as_str().unwrap().starts_with("code:"),
            "{body}"
        );
    }
    let (status, body) = p
        .admin_post(
            "/api/v1/units",
            json!({"code": "000.00.20.H41", "name": "Again"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = p
        .admin_post(
            "/api/v1/units",
            json!({"code": "000.00.30.H41", "name": "X", "parent_code": "999.99.99.H99"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = p
        .admin_post(
            "/api/v1/units",
            json!({"code": "000.00.31.H41", "name": "   "}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let big = "x".repeat(2 * 1024 * 1024);
    let (status, body) = p
        .admin_post(
            "/api/v1/units",
            json!({"code": "000.00.32.H41", "name": big}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");

    let (_, after) = p.admin_get("/api/v1/units").await;
    assert_eq!(
        before, after,
        "refused requests must not change the registry"
    );
    p.stop().await;
}

#[tokio::test]
async fn systems_apis_and_subscriptions_validate_their_references() {
    let p = Platform::start().await;
    p.unit("000.00.20.H41", "Sở Tư pháp").await;
    let s = p.system("000.00.20.H41", "hotich").await;
    assert_eq!(s.secret.len(), 43);

    // The secret is never listed again.
    let (_, listed) = p.admin_get("/api/v1/systems").await;
    assert!(!listed.to_string().contains(&s.secret));
    assert!(!listed.to_string().contains("secret_hash"));

    let cases = [
        (
            "/api/v1/systems",
            json!({"unit_code": "000.00.99.H41", "code": "x", "name": "x"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/systems",
            json!({"unit_code": "000.00.20.H41", "code": "hotich", "name": "x"}),
            StatusCode::CONFLICT,
        ),
        (
            "/api/v1/systems",
            json!({"unit_code": "000.00.20.H41", "code": "có dấu", "name": "x"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/apis",
            json!({"provider_system": "nope", "name": "a", "context": "a", "version": "1.0", "upstream_url": "http://127.0.0.1:1", "protocol": "rest"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/apis",
            json!({"provider_system": s.id, "name": "a", "context": "token", "version": "1.0", "upstream_url": "http://127.0.0.1:1", "protocol": "rest"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/apis",
            json!({"provider_system": s.id, "name": "a", "context": "a", "version": "..", "upstream_url": "http://127.0.0.1:1", "protocol": "rest"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/apis",
            json!({"provider_system": s.id, "name": "a", "context": "a", "version": "1.0", "upstream_url": "file:///etc/passwd", "protocol": "rest"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/apis",
            json!({"provider_system": s.id, "name": "a", "context": "a", "version": "1.0", "upstream_url": "http://127.0.0.1:1", "protocol": "grpc"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/apis",
            json!({"provider_system": s.id, "name": "a", "context": "a", "version": "1.0", "upstream_url": "http://127.0.0.1:1", "protocol": "rest", "timeout_ms": 0}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/apis",
            json!({"provider_system": s.id, "name": "a", "context": "danhmuc", "version": "1.0", "upstream_url": "http://127.0.0.1:1", "protocol": "rest"}),
            StatusCode::CONFLICT,
        ),
        (
            "/api/v1/subscriptions",
            json!({"consumer_system": s.id, "api": "nosuch/1.0"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/subscriptions",
            json!({"consumer_system": s.id, "api": "no-slash"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/subscriptions",
            json!({"consumer_system": "nope", "api": "danhmuc/1.0"}),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (path, body, status) in cases {
        let (got, answer) = p.admin_post(path, body.clone()).await;
        assert_eq!(got, status, "{path} {body}: {answer}");
    }
    let (status, _) = p
        .admin_post(
            "/api/v1/subscriptions",
            json!({"consumer_system": s.id, "api": "danhmuc/1.0"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = p
        .admin_post(
            "/api/v1/subscriptions",
            json!({"consumer_system": s.id, "api": "danhmuc/1.0"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, body) = p
        .admin_post(&format!("/api/v1/systems/{}/disable", s.id), json!({}))
        .await;
    assert_eq!(
        (status, &body["enabled"]),
        (StatusCode::OK, &json!(false)),
        "{body}"
    );
    let (status, body) = p
        .admin_post(&format!("/api/v1/systems/{}/enable", s.id), json!({}))
        .await;
    assert_eq!(
        (status, &body["enabled"]),
        (StatusCode::OK, &json!(true)),
        "{body}"
    );

    let (status, _) = p.admin_get("/api/v1/systems/does-not-exist").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = p
        .admin_send(
            Method::PATCH,
            "/api/v1/systems/does-not-exist",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = p.admin_send(Method::PUT, "/api/v1/units", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    // A path segment that is not UTF-8 still gets the JSON error body.
    let (status, body) = p.admin_get("/api/v1/systems/%ff%fe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request", "{body}");
    let (status, body) = p.admin_get("/api/v1/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    p.stop().await;
}

#[tokio::test]
async fn call_listing_filters_and_pages() {
    let w = crate::support::World::new().await;
    let p = &w.platform;
    for i in 0..5 {
        p.call(Method::GET, &format!("/echo/1.0/{i}"), &w.token)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    p.call(Method::GET, "/echo/1.0/x", "bad")
        .send()
        .await
        .unwrap();
    let (_, all) = p.admin_get("/api/v1/calls?limit=2").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let next = all["next"].as_i64().unwrap();
    let (_, page2) = p
        .admin_get(&format!("/api/v1/calls?limit=2&before={next}"))
        .await;
    assert!(page2["items"][0]["seq"].as_i64().unwrap() < next);

    let (_, ok) = p
        .admin_get(&format!(
            "/api/v1/calls?status=2xx&consumer={}",
            w.consumer.id
        ))
        .await;
    assert_eq!(ok["items"].as_array().unwrap().len(), 5);
    let (_, refused) = p.admin_get("/api/v1/calls?status=401&api=echo/1.0").await;
    assert_eq!(refused["items"].as_array().unwrap().len(), 1);
    let (_, none) = p
        .admin_get("/api/v1/calls?since=2099-01-01T00:00:00Z")
        .await;
    assert!(none["items"].as_array().unwrap().is_empty());

    for bad in [
        "status=abc",
        "status=9xx",
        "since=yesterday",
        "limit=0",
        "limit=100000",
        "before=x",
        "colour=red",
    ] {
        let (status, body) = p.admin_get(&format!("/api/v1/calls?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"], "invalid_request");
    }
    w.platform.stop().await;
}
