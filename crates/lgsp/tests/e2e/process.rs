//! The real binary as a process: a `kill -9` loses no record of an answered
//! call, SIGTERM lets calls in flight finish, and the demo starts.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Creds, fetch_token, start_upstream};

struct Proc {
    child: Child,
    data: String,
    admin: String,
    token: String,
    stdout: Vec<String>,
}

/// A failing test must not leave a server behind.
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &std::path::Path, extra: &[&str]) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lgsp"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = Vec::new();
    let (mut data, mut admin) = (None, None);
    loop {
        let line = lines.next().expect("lgsp printed its addresses").unwrap();
        let last = line.starts_with("lgsp: data directory");
        if let Some(url) = line.strip_prefix("lgsp: data plane listening on ") {
            data = Some(url.to_owned());
        }
        if let Some(url) = line.strip_prefix("lgsp: control plane listening on ") {
            admin = Some(url.to_owned());
        }
        stdout.push(line);
        if last {
            break;
        }
    }
    // Keep reading so the process never blocks on a full pipe.
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    std::mem::forget(rest);
    let token = std::fs::read_to_string(dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    Proc {
        child,
        data: data.unwrap(),
        admin: admin.unwrap(),
        token,
        stdout,
    }
}

async fn setup(
    p: &Proc,
    http: &reqwest::Client,
    upstream: std::net::SocketAddr,
    timeout_ms: i64,
) -> String {
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{}{path}", p.admin))
            .bearer_auth(&p.token)
            .json(&body)
            .send()
    };
    post(
        "/api/v1/units",
        json!({"code": "000.00.20.H41", "name": "Sở Tư pháp"}),
    )
    .await
    .unwrap();
    let sys: serde_json::Value = post(
        "/api/v1/systems",
        json!({"unit_code": "000.00.20.H41", "code": "a", "name": "A"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let creds = Creds {
        id: sys["id"].as_str().unwrap().into(),
        client_id: sys["client_id"].as_str().unwrap().into(),
        secret: sys["client_secret"].as_str().unwrap().into(),
        global_id: String::new(),
    };
    let api = json!({"provider_system": creds.id, "name": "e", "context": "echo", "version": "1.0",
                     "upstream_url": format!("http://{upstream}/up"), "protocol": "rest", "timeout_ms": timeout_ms, "status": "published"});
    assert_eq!(
        post("/api/v1/apis", api).await.unwrap().status(),
        StatusCode::CREATED
    );
    post(
        "/api/v1/subscriptions",
        json!({"consumer_system": creds.id, "api": "echo/1.0"}),
    )
    .await
    .unwrap();
    fetch_token(http, &p.data, &creds.client_id, &creds.secret).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_after_responses_loses_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = start_upstream().await;
    let mut p = spawn(dir.path(), &[]);
    let http = reqwest::Client::new();
    let token = setup(&p, &http, upstream, 5000).await;

    // Answered calls, sequential and concurrent, then SIGKILL at once.
    let mut ids = Vec::new();
    for i in 0..30 {
        let resp = http
            .get(format!("{}/echo/1.0/s/{i}", p.data))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        ids.push(resp.headers()["x-request-id"].to_str().unwrap().to_owned());
        resp.bytes().await.unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..120 {
        let (http, url, token) = (
            http.clone(),
            format!("{}/echo/1.0/c/{i}", p.data),
            token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let resp = http.get(url).bearer_auth(token).send().await.unwrap();
            let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
            resp.bytes().await.unwrap();
            id
        }));
    }
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    p.child.kill().unwrap(); // SIGKILL
    p.child.wait().unwrap();

    let store = lgsp_store::Store::open(&dir.path().join("lgsp.db"))
        .await
        .unwrap();
    for id in &ids {
        let record = store.call_by_request_id(id).await.unwrap();
        assert!(
            record.is_some_and(|r| r.status == 200),
            "record of answered call {id} lost"
        );
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_finishes_calls_in_flight_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = start_upstream().await;
    let mut p = spawn(dir.path(), &[]);
    let http = reqwest::Client::new();
    let token = setup(&p, &http, upstream, 10_000).await;

    // /slow answers after 3 s; the stop signal comes while it is in flight.
    let url = format!("{}/echo/1.0/slow", p.data);
    let in_flight = tokio::spawn({
        let (http, token) = (http.clone(), token.clone());
        async move {
            let resp = http.get(url).bearer_auth(token).send().await.unwrap();
            let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
            (resp.status(), id, resp.text().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = p.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );

    let (status, id, body) = in_flight.await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "late"));
    let exit = tokio::task::spawn_blocking(move || {
        let proc = &mut p;
        proc.child.wait().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(exit.code(), Some(0));

    let store = lgsp_store::Store::open(&dir.path().join("lgsp.db"))
        .await
        .unwrap();
    assert!(store.call_by_request_id(&id).await.unwrap().is_some());
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_starts_and_its_tour_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = spawn(
        dir.path(),
        &["--demo", "--demo-upstream-listen", "127.0.0.1:0"],
    );
    let printed = p.stdout.join("\n");
    assert!(printed.contains("admin-token"), "{printed}");
    assert!(
        !printed.contains(&p.token),
        "the admin token itself is never printed"
    );

    let env = std::fs::read_to_string(dir.path().join("demo-clients.env")).unwrap();
    let var = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_owned()
    };
    let http = reqwest::Client::new();
    let token = fetch_token(
        &http,
        &p.data,
        &var("MOTCUA_CLIENT_ID"),
        &var("MOTCUA_CLIENT_SECRET"),
    )
    .await;
    let token = token.as_str();
    let get = |path: &str| {
        http.get(format!("{}{path}", p.data))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        get("/hotich/1.0/khaisinh/KS-1").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        get("/lylichtuphap/1.0/phieu/1").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get("/danhmuc/1.0/lists/dvhc/items/49?at=2025-06-30")
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let soap = http
        .post(format!("{}/dkkd/1.0/", p.data))
        .bearer_auth(token)
        .header("content-type", "text/xml; charset=utf-8")
        .body("<Envelope><Body><traCuuDoanhNghiep><maSoDoanhNghiep>4000123456</maSoDoanhNghiep></traCuuDoanhNghiep></Body></Envelope>")
        .send()
        .await
        .unwrap();
    assert_eq!(soap.status(), StatusCode::OK);
    assert!(
        soap.text()
            .await
            .unwrap()
            .contains("<maSoDoanhNghiep>4000123456</maSoDoanhNghiep>")
    );
    p.child.kill().unwrap();
    p.child.wait().unwrap();

    // A second start with --demo finds the demo and keeps its credentials.
    let mut again = spawn(
        dir.path(),
        &["--demo", "--demo-upstream-listen", "127.0.0.1:0"],
    );
    let token = fetch_token(
        &http,
        &again.data,
        &var("MOTCUA_CLIENT_ID"),
        &var("MOTCUA_CLIENT_SECRET"),
    )
    .await;
    let token = token.as_str();
    let resp = http
        .get(format!("{}/hotich/1.0/khaisinh/KS-1", again.data))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    again.child.kill().unwrap();
    again.child.wait().unwrap();
}
