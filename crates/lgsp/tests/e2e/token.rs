//! `POST /token` and `/jwks`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::World;

#[tokio::test]
async fn client_credentials_by_basic_and_by_form() {
    let w = World::new().await;
    let p = &w.platform;

    let by_form: Value = p
        .http
        .post(format!("{}/token", p.data))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &w.consumer.client_id),
            ("client_secret", &w.consumer.secret),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_form["token_type"], "Bearer");
    assert_eq!(by_form["expires_in"], 3600);
    let token = by_form["access_token"].as_str().unwrap();

    // A JWT signed with EdDSA whose key id is published at /jwks.
    let header = jsonwebtoken_header(token);
    assert_eq!(header["alg"], "EdDSA");
    let jwks: Value = p
        .http
        .get(format!("{}/jwks", p.data))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == header["kid"] && k["crv"] == "Ed25519")
    );

    // Both ways give a working token.
    for t in [token.to_owned(), w.token.clone()] {
        let r = p
            .call(reqwest::Method::GET, "/echo/1.0/x", &t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    w.platform.stop().await;
}

fn jsonwebtoken_header(token: &str) -> Value {
    use base64::Engine;
    let head = token.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(head)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn refusals_follow_rfc_6749() {
    let w = World::new().await;
    let p = &w.platform;
    let url = format!("{}/token", p.data);
    let id = w.consumer.client_id.as_str();

    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            p.http
                .post(&url)
                .basic_auth(id, Some("wrong"))
                .form(&[("grant_type", "client_credentials")]),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            p.http
                .post(&url)
                .basic_auth("nobody", Some("x"))
                .form(&[("grant_type", "client_credentials")]),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            p.http
                .post(&url)
                .form(&[("grant_type", "client_credentials")]),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            p.http
                .post(&url)
                .header("authorization", "Basic %%%")
                .form(&[("grant_type", "client_credentials")]),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            p.http
                .post(&url)
                .basic_auth(id, Some(&w.consumer.secret))
                .form(&[("scope", "x")]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            p.http
                .post(&url)
                .basic_auth(id, Some(&w.consumer.secret))
                .form(&[("grant_type", "password")]),
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            p.http
                .post(&url)
                .basic_auth(id, Some(&w.consumer.secret))
                .json(&serde_json::json!({"grant_type": "client_credentials"})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            p.http
                .post(&url)
                .basic_auth(id, Some(&w.consumer.secret))
                .form(&[("grant_type", "client_credentials"), ("client_id", id)]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            p.http
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .basic_auth(id, Some(&w.consumer.secret))
                .body("grant_type=client_credentials&grant_type=client_credentials"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (i, (req, status, error)) in cases.into_iter().enumerate() {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), status, "case {i}");
        if status == StatusCode::UNAUTHORIZED {
            assert!(resp.headers().contains_key("www-authenticate"), "case {i}");
        }
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], error, "case {i}: {body}");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }

    // An oversized request is refused, not read into a token.
    let huge = format!(
        "grant_type=client_credentials&pad={}",
        "x".repeat(64 * 1024)
    );
    let resp = p
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .basic_auth(id, Some(&w.consumer.secret))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    w.platform.stop().await;
}
