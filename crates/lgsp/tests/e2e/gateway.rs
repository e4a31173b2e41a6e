//! The gateway: forwarding, and every way a call is refused.

use std::io::{Read, Write};

use lgsp_auth::{SigningKey, TokenService};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{World, start_upstream};

#[tokio::test]
async fn forwards_method_path_query_headers_and_body() {
    let w = World::new().await;
    let p = &w.platform;
    let body = vec![7u8; 1024 * 1024 + 3];
    let resp = p
        .call(
            Method::PUT,
            "/echo/1.0/khaisinh/KS%2001?ho_ten=Nguy%E1%BB%85n&x=1&x=2",
            &w.token,
        )
        .header("x-custom", "giữ nguyên".as_bytes())
        .header("connection", "x-hop")
        .header("x-hop", "drop me")
        .header("x-consumer-id", "forged")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let echo: Value = resp.json().await.unwrap();

    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["path"], "/up/khaisinh/KS%2001");
    assert_eq!(echo["query"], "ho_ten=Nguy%E1%BB%85n&x=1&x=2");
    let headers = &echo["headers"];
    assert!(
        headers.get("authorization").is_none(),
        "the consumer's token must not reach the provider"
    );
    assert!(
        headers.get("x-hop").is_none(),
        "headers named by Connection are hop-by-hop"
    );
    assert_eq!(headers["x-request-id"], request_id.as_str());
    assert_eq!(headers["x-consumer-id"], w.consumer.global_id.as_str());
    assert_eq!(w.consumer.global_id, "VN:GOV:000.21.33.H41:motcua");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(echo["body_len"], body.len());

    // The record binds both bodies by hash.
    let record = p.record(&request_id).await;
    assert_eq!(record["status"], 200);
    assert_eq!(record["consumer"], w.consumer.id.as_str());
    assert_eq!(record["api"], "echo/1.0");
    assert_eq!(record["method"], "PUT");
    assert_eq!(record["request_bytes"], body.len());
    assert_eq!(record["request_sha256"], echo["body_sha256"]);
    assert!(record["reason"].is_null());
    w.platform.stop().await;
}

#[tokio::test]
async fn streams_large_responses_and_records_their_hash() {
    let w = World::new().await;
    let resp = w
        .platform
        .call(Method::GET, "/echo/1.0/big", &w.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(bytes.len(), 48 * 64 * 1024);
    let record = w.platform.record(&request_id).await;
    assert_eq!(record["response_bytes"], bytes.len());
    assert_eq!(
        record["response_sha256"],
        lgsp_evidence::BodyDigest::of(&bytes).0.as_str()
    );
    w.platform.stop().await;
}

#[tokio::test]
async fn answers_without_body_are_recorded_before_release() {
    let w = World::new().await;
    let resp = w
        .platform
        .call(Method::HEAD, "/echo/1.0/x", &w.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(resp.bytes().await.unwrap().is_empty());
    let record = w.platform.record(&id).await;
    assert_eq!(record["method"], "HEAD");
    assert_eq!(record["status"], 200);
    assert!(record["reason"].is_null(), "{record}");

    let resp = w
        .platform
        .http
        .get(format!("{}/token", w.platform.data))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
    w.platform.stop().await;
}

async fn assert_refused(
    w: &World,
    resp: reqwest::Response,
    status: StatusCode,
    error: &str,
) -> String {
    assert_eq!(resp.status(), status);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["request_id"], request_id.as_str());
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    let record = w.platform.record(&request_id).await;
    assert_eq!(record["status"], status.as_u16());
    assert!(record["reason"].is_string());
    request_id
}

#[tokio::test]
async fn bad_tokens_are_refused_and_recorded() {
    let w = World::new().await;
    let p = &w.platform;

    // The server's own key, to make tokens it would otherwise accept.
    let key =
        SigningKey::from_pkcs8(std::fs::read(p.dir.path().join("keys/token-ed25519.pk8")).unwrap())
            .unwrap();
    let expired = TokenService::new(&p.data, -120, &key, &[])
        .issue(&w.consumer.id, &w.consumer.client_id, 1)
        .token;
    let other_issuer = TokenService::new("https://evil.example", 60, &key, &[])
        .issue(&w.consumer.id, "x", 1)
        .token;
    let other_key = TokenService::new(&p.data, 60, &SigningKey::generate(), &[])
        .issue(&w.consumer.id, "x", 1)
        .token;
    let mut tampered = w.token.clone();
    tampered.pop();
    tampered.push(if w.token.ends_with('A') { 'B' } else { 'A' });

    for token in [
        "garbage",
        "a.b.c",
        expired.as_str(),
        other_issuer.as_str(),
        other_key.as_str(),
        tampered.as_str(),
    ] {
        let resp = p
            .call(Method::GET, "/echo/1.0/x", token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
        assert_refused(&w, resp, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    let resp = p
        .http
        .get(format!("{}/echo/1.0/x", p.data))
        .send()
        .await
        .unwrap();
    assert_refused(&w, resp, StatusCode::UNAUTHORIZED, "invalid_token").await;

    // English on request.
    let resp = p
        .call(Method::GET, "/echo/1.0/x", "garbage")
        .header("accept-language", "en-US")
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid access token"),
        "{body}"
    );
    w.platform.stop().await;
}

#[tokio::test]
async fn subscriptions_disabling_and_rotation_decide_access() {
    let w = World::new().await;
    let p = &w.platform;
    let outsider = p.system("000.00.20.H41", "khac").await;
    let outsider_token = p.token(&outsider).await;

    let resp = p
        .call(Method::GET, "/echo/1.0/x", &outsider_token)
        .send()
        .await
        .unwrap();
    assert_refused(&w, resp, StatusCode::FORBIDDEN, "not_subscribed").await;
    let resp = p
        .call(Method::GET, "/nosuch/1.0/x", &w.token)
        .send()
        .await
        .unwrap();
    assert_refused(&w, resp, StatusCode::NOT_FOUND, "unknown_api").await;

    // Revoking a subscription takes effect on the next call.
    let sub = p.subscribe(&outsider, "echo/1.0").await;
    assert_eq!(
        p.call(Method::GET, "/echo/1.0/x", &outsider_token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let (status, _) = p
        .admin_send(
            Method::DELETE,
            &format!("/api/v1/subscriptions/{sub}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let resp = p
        .call(Method::GET, "/echo/1.0/x", &outsider_token)
        .send()
        .await
        .unwrap();
    assert_refused(&w, resp, StatusCode::FORBIDDEN, "not_subscribed").await;
    let (status, _) = p
        .admin_send(
            Method::DELETE,
            &format!("/api/v1/subscriptions/{sub}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A disabled system's tokens stop working, and it gets no new ones.
    let (status, body) = p
        .admin_send(
            Method::PATCH,
            &format!("/api/v1/systems/{}", w.consumer.id),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let resp = p
        .call(Method::GET, "/echo/1.0/x", &w.token)
        .send()
        .await
        .unwrap();
    assert_refused(&w, resp, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let resp = p
        .http
        .post(format!("{}/token", p.data))
        .basic_auth(&w.consumer.client_id, Some(&w.consumer.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    p.admin_send(
        Method::PATCH,
        &format!("/api/v1/systems/{}", w.consumer.id),
        Some(json!({"enabled": true})),
    )
    .await;
    // Re-enabled, it needs a new token: the old one stays dead.
    let resp = p
        .call(Method::GET, "/echo/1.0/x", &w.token)
        .send()
        .await
        .unwrap();
    assert_refused(&w, resp, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let token = p.token(&w.consumer).await;
    // The scheme is case-insensitive.
    let resp = p
        .http
        .get(format!("{}/echo/1.0/x", p.data))
        .header("authorization", format!("BEARER {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // Rotating the secret: old secret and old tokens stop, the new secret works.
    let (status, body) = p
        .admin_post(
            &format!("/api/v1/systems/{}/secret", w.consumer.id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut rotated = w.consumer.clone();
    rotated.secret = body["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(rotated.secret, w.consumer.secret);
    let resp = p
        .call(Method::GET, "/echo/1.0/x", &token)
        .send()
        .await
        .unwrap();
    assert_refused(&w, resp, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let old = p
        .http
        .post(format!("{}/token", p.data))
        .basic_auth(&w.consumer.client_id, Some(&w.consumer.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let fresh = p.token(&rotated).await;
    assert_eq!(
        p.call(Method::GET, "/echo/1.0/x", &fresh)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    w.platform.stop().await;
}

#[tokio::test]
async fn unreachable_and_slow_upstreams() {
    let w = World::new().await;
    let p = &w.platform;
    // A port that was just free: nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    p.api(
        &w.provider,
        "down",
        &format!("http://{closed}"),
        "rest",
        None,
    )
    .await;
    p.subscribe(&w.consumer, "down/1.0").await;
    let resp = p
        .call(Method::GET, "/down/1.0/x", &w.token)
        .send()
        .await
        .unwrap();
    let id = assert_refused(&w, resp, StatusCode::BAD_GATEWAY, "bad_gateway").await;
    assert_eq!(p.record(&id).await["reason"], "upstream_unreachable");

    // The echo API has a 1000 ms timeout; /slow answers after 3 s.
    let started = std::time::Instant::now();
    let resp = p
        .call(Method::GET, "/echo/1.0/slow", &w.token)
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_millis(2500));
    let id = assert_refused(&w, resp, StatusCode::GATEWAY_TIMEOUT, "gateway_timeout").await;
    let body = p.record(&id).await;
    assert_eq!(body["reason"], "upstream_timeout");
    w.platform.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_without_buffering() {
    let w = World::with(|a| a.max_body_bytes = Some(64 * 1024)).await;
    let p = &w.platform;

    // Declared too large: refused before any byte is read.
    let resp = p
        .call(Method::POST, "/echo/1.0/x", &w.token)
        .body(vec![0u8; 64 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_refused(&w, resp, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    // Chunked, no length: cut off when it passes the limit.
    let chunks = (0..40).map(|_| Ok::<_, std::io::Error>(vec![1u8; 8 * 1024]));
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let resp = p
        .call(Method::POST, "/echo/1.0/x", &w.token)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_refused(&w, resp, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    // Exactly at the limit passes.
    let resp = p
        .call(Method::POST, "/echo/1.0/x", &w.token)
        .body(vec![0u8; 64 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    w.platform.stop().await;
}

#[tokio::test]
async fn dot_segments_are_refused() {
    let w = World::new().await;
    let addr = w.platform.data.trim_start_matches("http://").to_owned();
    let token = w.token.clone();
    // A raw request: HTTP clients would normalise the path before sending it.
    let answers = tokio::task::spawn_blocking(move || {
        ["/echo/1.0/../../admin", "/echo/1.0/a/%2e%2e/b", "/echo/1.0/./x"]
            .iter()
            .map(|path| {
                let mut s = std::net::TcpStream::connect(&addr).unwrap();
                write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).unwrap();
                out
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for answer in answers {
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("invalid_request"));
    }
    w.platform.stop().await;
}

#[tokio::test]
async fn soap_apis_answer_with_soap_faults() {
    let w = World::new().await;
    let p = &w.platform;
    let upstream = start_upstream().await;
    p.api(
        &w.provider,
        "dkkd",
        &format!("http://{upstream}/up"),
        "soap",
        None,
    )
    .await;

    let resp = p
        .call(Method::POST, "/dkkd/1.0/", &w.token)
        .header("content-type", "text/xml; charset=utf-8")
        .body("<soap:Envelope/>")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/xml")
    );
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("<faultcode>soap:Client</faultcode>"),
        "{text}"
    );
    assert!(
        text.contains("<lgsp:code>not_subscribed</lgsp:code>"),
        "{text}"
    );

    let resp = p
        .http
        .post(format!("{}/dkkd/1.0/", p.data))
        .header("content-type", "application/soap+xml; charset=utf-8")
        .body("<env:Envelope/>")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("http://www.w3.org/2003/05/soap-envelope") && text.contains("env:Sender"),
        "{text}"
    );

    // An API that does not exist, asked in SOAP, answers in SOAP.
    let resp = p
        .call(Method::POST, "/nosuch/1.0", &w.token)
        .header("content-type", "text/xml; charset=utf-8")
        .header("soapaction", "\"urn:x\"")
        .body("<soap:Envelope/>")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("<lgsp:code>unknown_api</lgsp:code>")
    );

    // Subscribed, the envelope goes through untouched.
    p.subscribe(&w.consumer, "dkkd/1.0").await;
    let resp = p
        .call(Method::POST, "/dkkd/1.0", &w.token)
        .header("content-type", "text/xml; charset=utf-8")
        .header("soapaction", "\"urn:tra-cuu\"")
        .body("<soap:Envelope/>")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let echo: Value = resp.json().await.unwrap();
    assert_eq!(echo["headers"]["soapaction"], "\"urn:tra-cuu\"");
    assert_eq!(echo["body_len"], 16);
    w.platform.stop().await;
}
