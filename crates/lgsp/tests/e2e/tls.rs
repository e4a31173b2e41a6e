//! Both planes over HTTPS when given a certificate and key.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::Platform;

#[tokio::test]
async fn both_planes_speak_https() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();

    let (c, k) = (cert.clone(), key.clone());
    let p = Platform::start_with(move |a| {
        a.tls_cert = Some(c);
        a.tls_key = Some(k);
    })
    .await;
    let https = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let admin = p.admin.replace("http://", "https://");
    let data = p.data.replace("http://", "https://");

    let resp = https
        .get(format!("{admin}/api/v1/units"))
        .bearer_auth(&p.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let jwks: Value = https
        .get(format!("{data}/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(jwks["keys"].is_array());
    // Plain HTTP to a TLS port gets no answer.
    assert!(
        p.http
            .get(format!("{}/healthz", p.admin))
            .send()
            .await
            .is_err()
    );
    p.stop().await;
}
