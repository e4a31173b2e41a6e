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

/// A CA, and certificates it issued, as a province's PKI would hand them out.
struct Pki {
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        Pki {
            ca: rcgen::CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    /// An end-entity certificate and its key, as one PEM (certificate first).
    fn issue(&self, name: &str, usage: rcgen::ExtendedKeyUsagePurpose) -> (String, String) {
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

#[tokio::test]
async fn a_system_bound_to_a_client_certificate_calls_only_with_it() {
    use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    let pki = Pki::new("CA tỉnh");
    let outside = Pki::new("CA khác");
    let (server_cert, server_key) = pki.issue("127.0.0.1", ServerAuth);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let cert = write("cert.pem", &server_cert);
    let key = write("key.pem", &server_key);
    let ca = write("client-ca.pem", &pki.ca.pem());
    let (c, k, a) = (cert.clone(), key.clone(), ca.clone());
    let p = Platform::start_with(move |s| {
        s.tls_cert = Some(c);
        s.tls_key = Some(k);
        s.tls_client_ca = Some(a);
    })
    .await;
    let client = |identity: Option<(&str, &str)>| {
        let mut b = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(pki.ca.pem().as_bytes()).unwrap());
        if let Some((cert, key)) = identity {
            b = b.identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
        }
        b.build().unwrap()
    };
    let anonymous = client(None);
    let admin = p.admin.replace("http://", "https://");
    let data = p.data.replace("http://", "https://");
    let admin_call = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut req = anonymous
            .request(method, format!("{admin}{path}"))
            .bearer_auth(&p.admin_token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // A provider, a consumer, an API and a subscription, through HTTPS.
    let (status, body) = admin_call(
        reqwest::Method::POST,
        "/api/v1/units",
        Some(serde_json::json!({"code": "000.00.15.H41", "name": "Sở Tư pháp"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut ids = Vec::new();
    for code in ["hotich", "motcua"] {
        let (status, body) = admin_call(
            reqwest::Method::POST,
            "/api/v1/systems",
            Some(serde_json::json!({"unit_code": "000.00.15.H41", "code": code, "name": code})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body);
    }
    let upstream = crate::support::start_upstream().await;
    let (status, body) = admin_call(
        reqwest::Method::POST,
        "/api/v1/apis",
        Some(serde_json::json!({"provider_system": ids[0]["id"], "name": "Hộ tịch", "context": "hotich",
            "version": "1.0", "upstream_url": format!("http://{upstream}/up"), "protocol": "rest",
            "status": "published"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let consumer = &ids[1];
    let (status, body) = admin_call(
        reqwest::Method::POST,
        "/api/v1/subscriptions",
        Some(serde_json::json!({"consumer_system": consumer["id"], "api": "hotich/1.0"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let system = consumer["id"].as_str().unwrap();
    let binding = format!("/api/v1/systems/{system}/client-certificate");

    // What is not one valid end-entity certificate is refused, nothing bound.
    let (own_cert, own_key) = pki.issue("motcua.quangnam.gov.vn", ClientAuth);
    let (other_cert, other_key) = pki.issue("khac.quangnam.gov.vn", ClientAuth);
    for (bad, why) in [
        ("not a certificate".to_owned(), "garbage"),
        (own_key.clone(), "a private key"),
        (format!("{own_cert}{other_cert}"), "two certificates"),
        (pki.ca.pem(), "a CA certificate"),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_owned(),
            "bad DER",
        ),
    ] {
        let (status, body) = admin_call(
            reqwest::Method::PUT,
            &binding,
            Some(serde_json::json!({ "certificate": bad })),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("certificate"),
            "{why}: {body}"
        );
    }
    let (status, _) = admin_call(reqwest::Method::GET, &binding, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Unbound, the consumer calls without a certificate.
    let token = crate::support::fetch_token(
        &anonymous,
        &data,
        consumer["client_id"].as_str().unwrap(),
        consumer["client_secret"].as_str().unwrap(),
    )
    .await;
    let call = |http: &reqwest::Client| {
        http.get(format!("{data}/hotich/1.0/khaisinh"))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(call(&anonymous).await.unwrap().status(), StatusCode::OK);

    // Bound: only a connection with that very certificate gets through.
    let (status, body) = admin_call(
        reqwest::Method::PUT,
        &binding,
        Some(serde_json::json!({ "certificate": own_cert })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["subject"]
            .as_str()
            .unwrap()
            .contains("motcua.quangnam.gov.vn"),
        "{body}"
    );
    assert_eq!(body["sha256"].as_str().unwrap().len(), 64);
    let resp = call(&anonymous).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let refusal: Value = resp.json().await.unwrap();
    assert_eq!(refusal["error"], "client_certificate_required");
    let (_, record) = admin_call(
        reqwest::Method::GET,
        &format!("/api/v1/calls/{}", refusal["request_id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(record["reason"], "client_certificate_missing", "{record}");
    let with_other = client(Some((&other_cert, &other_key)));
    let resp = call(&with_other).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let refusal: Value = resp.json().await.unwrap();
    let (_, record) = admin_call(
        reqwest::Method::GET,
        &format!("/api/v1/calls/{}", refusal["request_id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(record["reason"], "client_certificate_mismatch", "{record}");
    let with_own = client(Some((&own_cert, &own_key)));
    let resp = call(&with_own).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // The self-service routes hold the system to its certificate too.
    let catalogue = |http: &reqwest::Client| {
        http.get(format!("{data}/catalog"))
            .bearer_auth(&token)
            .send()
    };
    let resp = catalogue(&anonymous).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "client_certificate_required"
    );
    assert_eq!(catalogue(&with_own).await.unwrap().status(), StatusCode::OK);

    // A certificate from a CA the platform does not trust fails the handshake.
    let (stranger_cert, stranger_key) = outside.issue("la.example", ClientAuth);
    assert!(
        call(&client(Some((&stranger_cert, &stranger_key))))
            .await
            .is_err()
    );

    // Unbound again: no certificate needed.
    let (status, _) = admin_call(reqwest::Method::DELETE, &binding, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(call(&anonymous).await.unwrap().status(), StatusCode::OK);
    let (status, _) = admin_call(reqwest::Method::DELETE, &binding, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    p.stop().await;
}

#[test]
fn a_client_ca_needs_tls() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = crate::support::args(dir.path());
    a.tls_client_ca = Some(dir.path().join("ca.pem"));
    let err = lgsp::config::Config::resolve(&a).unwrap_err().to_string();
    assert!(err.contains("tls_client_ca"), "{err}");
}
