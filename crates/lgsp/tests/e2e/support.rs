//! A real platform on random ports with its own data directory, a real
//! upstream provider, and helpers to drive both over HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use lgsp::config::{Config, ServeArgs};
use lgsp::server::Running;
use lgsp_evidence::BodyDigest;
use reqwest::Client;
use serde_json::{Value, json};
use tempfile::TempDir;

pub struct Platform {
    running: Option<Running>,
    pub data: String,
    pub admin: String,
    pub admin_token: String,
    pub dir: TempDir,
    pub http: Client,
}

/// A system's credentials as the admin API returned them at creation.
#[derive(Clone, Debug)]
pub struct Creds {
    pub id: String,
    pub client_id: String,
    pub secret: String,
    pub global_id: String,
}

pub fn args(dir: &std::path::Path) -> ServeArgs {
    ServeArgs {
        data_dir: Some(dir.to_path_buf()),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        demo_upstream_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..Default::default()
    }
}

impl Platform {
    pub async fn start() -> Platform {
        Platform::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut ServeArgs)) -> Platform {
        Platform::start_in(tempfile::tempdir().unwrap(), tune).await
    }

    /// Starts on a data directory that may already hold a platform's data.
    pub async fn start_in(dir: TempDir, tune: impl FnOnce(&mut ServeArgs)) -> Platform {
        let mut a = args(dir.path());
        tune(&mut a);
        let config = Config::resolve(&a).unwrap();
        let running = lgsp::server::start(config).await.unwrap();
        let admin_token = std::fs::read_to_string(dir.path().join("admin-token"))
            .unwrap()
            .trim()
            .to_owned();
        Platform {
            data: format!("http://{}", running.data_addr),
            admin: format!("http://{}", running.admin_addr),
            running: Some(running),
            admin_token,
            dir,
            http: Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    pub async fn stop(mut self) {
        self.running.take().unwrap().shutdown().await;
    }

    /// Stops the platform and hands over its data directory.
    pub async fn stop_keeping_dir(mut self) -> TempDir {
        self.running.take().unwrap().shutdown().await;
        self.dir
    }

    pub async fn admin_send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.admin))
            .bearer_auth(&self.admin_token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.admin_send(Method::POST, path, Some(body)).await
    }

    pub async fn admin_get(&self, path: &str) -> (StatusCode, Value) {
        self.admin_send(Method::GET, path, None).await
    }

    pub async fn unit(&self, code: &str, name: &str) {
        let (status, body) = self
            .admin_post("/api/v1/units", json!({"code": code, "name": name}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    pub async fn system(&self, unit: &str, code: &str) -> Creds {
        let (status, body) = self
            .admin_post(
                "/api/v1/systems",
                json!({"unit_code": unit, "code": code, "name": format!("Hệ thống {code}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Creds {
            id: body["id"].as_str().unwrap().to_owned(),
            client_id: body["client_id"].as_str().unwrap().to_owned(),
            secret: body["client_secret"].as_str().unwrap().to_owned(),
            global_id: body["global_id"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn api(
        &self,
        provider: &Creds,
        context: &str,
        upstream: &str,
        protocol: &str,
        timeout_ms: Option<i64>,
    ) {
        let (status, body) = self
            .admin_post(
                "/api/v1/apis",
                json!({"provider_system": provider.id, "name": format!("API {context}"), "context": context,
                       "version": "1.0", "upstream_url": upstream, "protocol": protocol, "timeout_ms": timeout_ms, "status": "published"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    pub async fn subscribe(&self, consumer: &Creds, api: &str) -> String {
        let (status, body) = self
            .admin_post(
                "/api/v1/subscriptions",
                json!({"consumer_system": consumer.id, "api": api}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    pub async fn token(&self, creds: &Creds) -> String {
        fetch_token(&self.http, &self.data, &creds.client_id, &creds.secret).await
    }

    /// Calls the gateway with a bearer token.
    pub fn call(&self, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.data))
            .bearer_auth(token)
    }

    /// A data-plane call with a bearer token and an optional JSON body: its
    /// status, headers, and body as JSON (as a string when it is not JSON).
    pub async fn data(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = self.call(method, path, token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let text = resp.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// The call-log record of a request id.
    pub async fn record(&self, request_id: &str) -> Value {
        let (status, body) = self.admin_get(&format!("/api/v1/calls/{request_id}")).await;
        assert_eq!(status, StatusCode::OK, "no record for {request_id}: {body}");
        body
    }
}

/// A token by the client-credentials grant, with HTTP Basic; the grant must succeed.
pub async fn fetch_token(http: &Client, data: &str, client_id: &str, secret: &str) -> String {
    let resp = http
        .post(format!("{data}/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// A provider with one consumer subscribed to its REST API `echo/1.0`.
pub struct World {
    pub platform: Platform,
    pub provider: Creds,
    pub consumer: Creds,
    pub token: String,
}

impl World {
    pub async fn new() -> World {
        World::with(|_| {}).await
    }

    pub async fn with(tune: impl FnOnce(&mut ServeArgs)) -> World {
        let platform = Platform::start_with(tune).await;
        let upstream = start_upstream().await;
        platform.unit("000.00.20.H41", "Sở Tư pháp").await;
        platform
            .unit("000.21.33.H41", "Ủy ban nhân dân phường Tân Thạnh")
            .await;
        let provider = platform.system("000.00.20.H41", "hotich").await;
        let consumer = platform.system("000.21.33.H41", "motcua").await;
        platform
            .api(
                &provider,
                "echo",
                &format!("http://{upstream}/up"),
                "rest",
                Some(1000),
            )
            .await;
        platform.subscribe(&consumer, "echo/1.0").await;
        let token = platform.token(&consumer).await;
        World {
            platform,
            provider,
            consumer,
            token,
        }
    }
}

/// The upstream provider used by the tests:
/// - `/up/slow`: answers after 3 s;
/// - `/up/big`: a 3 MiB body in chunks;
/// - anything else under `/up`: echoes what it received as JSON.
pub async fn start_upstream() -> SocketAddr {
    let app = Router::new()
        .route("/up/slow", get(slow))
        .route("/up/big", get(big))
        .route("/up", any(echo_root))
        .route("/up/{*rest}", any(echo));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(3)).await;
    "late"
}

async fn big() -> Response {
    let chunks = (0..48)
        .map(|i| Ok::<_, std::io::Error>(Bytes::from(vec![b'a' + (i % 26) as u8; 64 * 1024])));
    Body::from_stream(futures_util::stream::iter(chunks)).into_response()
}

async fn echo_root(req: Request) -> Json<Value> {
    echo(Path(String::new()), req).await
}

async fn echo(Path(rest): Path<String>, req: Request) -> Json<Value> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let (sha, len) = BodyDigest::of(&bytes);
    Json(json!({
        "method": parts.method.as_str(),
        "rest": rest,
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers_json(&parts.headers),
        "body_sha256": sha,
        "body_len": len,
    }))
}

fn headers_json(headers: &HeaderMap) -> Value {
    let mut map = serde_json::Map::new();
    for (name, value) in headers {
        map.insert(
            name.as_str().to_owned(),
            json!(value.to_str().unwrap_or("<binary>")),
        );
    }
    Value::Object(map)
}
