//! The call log as evidence: bundles that prove a call offline, a log that
//! independent transparency-log code can follow, tamper detection, key
//! rotation, archives, and kept bodies that expire without breaking proofs.

use std::path::Path;
use std::process::Command;

use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lgsp_evidence::tiles::TilePath;
use serde_json::{Value, json};

use crate::support::{Platform, World, fetch_token, start_upstream};

fn fast_checkpoints(a: &mut lgsp::config::ServeArgs) {
    a.log_checkpoint_interval_ms = Some(100);
}

/// Runs the binary; returns (exit code, stdout).
fn lgsp(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lgsp"))
        .args(args)
        .env_remove("LGSP_ADMIN_TOKEN")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn bundle_as(p: &Platform, token: Option<&str>, request_id: &str) -> (StatusCode, Value) {
    let mut req = p.http.get(format!("{}/log/evidence/{request_id}", p.data));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn request_id(resp: &reqwest::Response) -> String {
    resp.headers()["x-request-id"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_proves_a_call_offline_and_only_its_consumer_gets_it() {
    let w = World::with(fast_checkpoints).await;
    let p = &w.platform;
    let body = "{\"hoTen\":\"Nguyễn Văn An\"}";
    let resp = p
        .call(Method::POST, "/echo/1.0/khaisinh", &w.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let rid = request_id(&resp);
    let response_body = resp.bytes().await.unwrap();

    // The consumer gets its bundle with its token.
    let (status, bundle) = bundle_as(p, Some(&w.token), &rid).await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    assert_eq!(bundle["request_id"], rid.as_str());
    assert_eq!(bundle["record"]["method"], "POST");
    assert_eq!(bundle["record"]["consumer"], w.consumer.id.as_str());

    // Anyone can check it offline, with the bodies too.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.json");
    std::fs::write(&file, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let req_file = dir.path().join("req");
    let resp_file = dir.path().join("resp");
    std::fs::write(&req_file, body).unwrap();
    std::fs::write(&resp_file, &response_body).unwrap();
    let keys: Value = p
        .http
        .get(format!("{}/log/keys", p.data))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = keys["current"].as_str().unwrap();
    let f = file.to_str().unwrap();
    let (code, out) = lgsp(&[
        "verify",
        f,
        "--key",
        key,
        "--request-body",
        req_file.to_str().unwrap(),
        "--response-body",
        resp_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: call ") && out.contains(&rid), "{out}");
    assert_eq!(out.lines().count(), 1);

    // The wrong body, a forged record, another key: refused with a reason.
    let (code, out) = lgsp(&["verify", f, "--request-body", resp_file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("FAILED: ") && out.contains("not the request body"),
        "{out}"
    );
    let mut forged = bundle.clone();
    let leaf = forged["leaf"]
        .as_str()
        .unwrap()
        .replace("\"status\":200", "\"status\":404");
    forged["leaf"] = json!(leaf);
    forged["record"]["status"] = json!(404);
    std::fs::write(&file, serde_json::to_vec(&forged).unwrap()).unwrap();
    let (code, out) = lgsp(&["verify", f]);
    assert_eq!(code, 1);
    assert!(out.contains("inclusion proof"), "{out}");
    let mut shown = bundle.clone();
    shown["record"]["status"] = json!(500);
    std::fs::write(&file, serde_json::to_vec(&shown).unwrap()).unwrap();
    let (code, out) = lgsp(&["verify", f]);
    assert_eq!(code, 1);
    assert!(out.contains("differs from the leaf"), "{out}");
    std::fs::write(&file, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let other = "other.example/log+00000000+AWxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    let (code, _) = lgsp(&["verify", f, "--key", other]);
    assert_eq!(code, 1);
    std::fs::write(&file, b"{not json").unwrap();
    let (code, out) = lgsp(&["verify", f]);
    assert_eq!(code, 1);
    assert!(out.contains("is not an evidence bundle"), "{out}");

    // Another system, even the provider, is refused; so is a call without a token.
    let provider_token =
        fetch_token(&p.http, &p.data, &w.provider.client_id, &w.provider.secret).await;
    let (status, refusal) = bundle_as(p, Some(&provider_token), &rid).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{refusal}");
    assert_eq!(refusal["error"], "not_found");
    let (status, _) = bundle_as(p, None, &rid).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = bundle_as(p, Some("garbage"), &rid).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = bundle_as(p, Some(&w.token), &"x".repeat(5000)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A refused call is evidence too, and every answer names its request id.
    let refused = p
        .call(Method::GET, "/nosuch/1.0/x", &w.token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let refused_id = request_id(&refused);
    let (status, refused_bundle) = p
        .admin_get(&format!("/api/v1/calls/{refused_id}/evidence"))
        .await;
    assert_eq!(status, StatusCode::OK, "{refused_bundle}");
    assert_eq!(refused_bundle["record"]["status"], 404);

    // The operator gets any call's bundle; it is the same proof.
    let (status, admin_bundle) = p.admin_get(&format!("/api/v1/calls/{rid}/evidence")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(admin_bundle["leaf"], bundle["leaf"]);
    let (status, _) = p.admin_get("/api/v1/calls/nope/evidence").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A tile reader over the data plane's `/log/tile/…`, for the independent implementation.
struct HttpTiles {
    http: reqwest::Client,
    base: String,
}

impl tlog_tiles::TileReader for HttpTiles {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[tlog_tiles::Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                let mut out = Vec::new();
                for t in tiles {
                    let path = TilePath {
                        level: Some(t.level()),
                        index: t.level_index(),
                        width: t.width() as u64,
                    }
                    .to_path();
                    // The C2SP path is the Go one without the height.
                    assert_eq!(format!("tile/8/{path}"), t.path());
                    let resp = self
                        .http
                        .get(format!("{}/log/tile/{path}", self.base))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), StatusCode::OK, "tile {path}");
                    out.push(resp.bytes().await.unwrap().to_vec());
                }
                Ok(out)
            })
        })
    }

    fn save_tiles(&self, _: &[tlog_tiles::Tile], _: &[Vec<u8>]) {}
}

fn hash(b64: &Value) -> tlog_tiles::Hash {
    tlog_tiles::Hash(
        STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_transparency_log_code_follows_the_log() {
    let w = World::with(fast_checkpoints).await;
    let p = &w.platform;
    let first = p
        .call(Method::GET, "/echo/1.0/a", &w.token)
        .send()
        .await
        .unwrap();
    let first_id = request_id(&first);
    first.bytes().await.unwrap();
    // Enough calls for full tiles and a second level.
    for i in 0..600 {
        let resp = p
            .call(Method::GET, &format!("/echo/1.0/ho-so/{i}"), &w.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let (status, bundle) = bundle_as(p, Some(&w.token), &first_id).await;
    assert_eq!(status, StatusCode::OK);
    let mut note = String::new();
    for _ in 0..50 {
        note = p
            .http
            .get(format!("{}/log/checkpoint", p.data))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if note.lines().nth(1).unwrap().parse::<u64>().unwrap() >= 601 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The checkpoint is a C2SP signed note the reference code accepts.
    let keys: Value = p
        .http
        .get(format!("{}/log/keys", p.data))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let verifier = signed_note::StandardVerifier::new(keys["current"].as_str().unwrap()).unwrap();
    let parsed = signed_note::Note::from_bytes(note.as_bytes()).unwrap();
    parsed
        .verify(&signed_note::VerifierList::new(vec![Box::new(verifier)]))
        .expect("the checkpoint's signature verifies with independent code");
    let checkpoint = tlog_tiles::Checkpoint::from_bytes(parsed.text()).unwrap();
    let size = checkpoint.size();
    let root = *checkpoint.hash();
    assert!(size >= 601);

    // Its tiles rebuild the signed root, read through the reference tile reader.
    let tiles = HttpTiles {
        http: p.http.clone(),
        base: p.data.clone(),
    };
    let reader = tlog_tiles::TileHashReader::new(size, root, &tiles);
    assert_eq!(tlog_tiles::tree_hash(size, &reader).unwrap(), root);

    // Our inclusion proofs are the reference's, and check with it.
    for index in [0u64, 1, 255, 256, 511, 600, size - 1] {
        let ours: Value = p
            .http
            .get(format!(
                "{}/log/proof/inclusion?index={index}&size={size}",
                p.data
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ours: Vec<tlog_tiles::Hash> =
            ours["proof"].as_array().unwrap().iter().map(hash).collect();
        let reference = tlog_tiles::prove_record(size, index, &reader).unwrap();
        assert_eq!(ours, reference, "inclusion of {index} in {size}");
    }
    // The bundle's leaf is a record hash the reference accepts.
    let leaf_hash = tlog_tiles::record_hash(bundle["leaf"].as_str().unwrap().as_bytes());
    let proof: Vec<tlog_tiles::Hash> = bundle["inclusion_proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash)
        .collect();
    let bundle_size = bundle["tree_size"].as_u64().unwrap();
    let bundle_root = tlog_tiles::tree_hash(
        bundle_size,
        &tlog_tiles::TileHashReader::new(size, root, &tiles),
    )
    .unwrap();
    tlog_tiles::check_record(&proof, bundle_size, bundle_root, 0, leaf_hash).unwrap();

    // Consistency proofs between any two sizes check with the reference.
    for (from, to) in [
        (1, size),
        (7, 300),
        (256, 512),
        (300, size),
        (size - 1, size),
    ] {
        let ours: Value = p
            .http
            .get(format!(
                "{}/log/proof/consistency?from={from}&to={to}",
                p.data
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ours: Vec<tlog_tiles::Hash> =
            ours["proof"].as_array().unwrap().iter().map(hash).collect();
        let old = tlog_tiles::tree_hash(from, &reader).unwrap();
        let new = tlog_tiles::tree_hash(to, &reader).unwrap();
        tlog_tiles::check_tree(&ours, to, new, from, old).unwrap();
        assert_eq!(ours, tlog_tiles::prove_tree(to, from, &reader).unwrap());
    }

    // Entry bundles hold the records: not public, but the operator reads them.
    let resp = p
        .http
        .get(format!("{}/log/tile/entries/000", p.data))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = p
        .http
        .get(format!("{}/api/v1/log/tile/entries/000", p.admin))
        .bearer_auth(&p.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let entries = resp.bytes().await.unwrap();
    let level0 =
        tlog_tiles::TileReader::read_tiles(&tiles, &[tlog_tiles::Tile::new(8, 0, 0, 256, false)])
            .unwrap();
    let (mut at, mut i) = (0usize, 0usize);
    while at < entries.len() {
        let len = u16::from_be_bytes([entries[at], entries[at + 1]]) as usize;
        let leaf = &entries[at + 2..at + 2 + len];
        assert_eq!(
            tlog_tiles::record_hash(leaf).0,
            level0[0][i * 32..i * 32 + 32]
        );
        at += 2 + len;
        i += 1;
    }
    assert_eq!(i, 256);

    // Bad requests get precise errors.
    for (path, want) in [
        ("/log/tile/0/1", StatusCode::NOT_FOUND),
        ("/log/tile/0/x000/000", StatusCode::NOT_FOUND),
        ("/log/tile/9/000", StatusCode::NOT_FOUND),
        ("/log/tile/0/999", StatusCode::NOT_FOUND),
        ("/log/proof/inclusion?index=5", StatusCode::BAD_REQUEST),
        (
            "/log/proof/inclusion?index=5&size=-1",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/log/proof/inclusion?index=900000&size=900001",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/log/proof/inclusion?index=9&size=9",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/log/proof/consistency?from=9&to=3",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let resp = p
            .http
            .get(format!("{}{path}", p.data))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), want, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert!(body["message"].is_string(), "{path}: {body}");
    }
}

/// Copies a stopped platform's data directory, alters its store with `sql`,
/// and runs `lgsp log verify` on the copy.
fn verify_altered(data: &Path, sql: &str) -> (i32, String) {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(data).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
        }
    }
    let conn = rusqlite::Connection::open(copy.path().join("lgsp.db")).unwrap();
    conn.execute_batch(sql).unwrap();
    drop(conn);
    let out = lgsp(&["log", "verify", "--data-dir", copy.path().to_str().unwrap()]);
    drop(copy);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_verify_names_the_first_altered_deleted_inserted_or_moved_record() {
    let w = World::with(fast_checkpoints).await;
    for i in 0..300 {
        w.platform
            .call(Method::GET, &format!("/echo/1.0/{i}"), &w.token)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    // A hostile, very long method is recorded cut short, and every entry stays readable.
    let long = reqwest::Method::from_bytes("X".repeat(70_000).as_bytes()).unwrap();
    let resp = w
        .platform
        .http
        .request(long, format!("{}/echo/1.0/x", w.platform.data))
        .send()
        .await
        .unwrap();
    let rid = request_id(&resp);
    resp.bytes().await.unwrap();
    let record = w.platform.record(&rid).await;
    assert_eq!(record["method"].as_str().unwrap().len(), 32);
    let (status, _) = w
        .platform
        .admin_get("/api/v1/log/tile/entries/001.p/45")
        .await;
    assert_eq!(status, StatusCode::OK);
    // A checkpoint held outside the platform, as a witness or a consumer would.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let held = w
        .platform
        .http
        .get(format!("{}/log/checkpoint", w.platform.data))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let keys: Value = w
        .platform
        .http
        .get(format!("{}/log/keys", w.platform.data))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = keys["current"].as_str().unwrap().to_owned();
    let World { platform, .. } = w;
    let tempdir = platform.stop_keeping_dir().await;
    let held_file = tempdir.path().join("held.checkpoint");
    std::fs::write(&held_file, &held).unwrap();
    let held_file = held_file.to_str().unwrap().to_owned();
    let data = tempdir.path().to_path_buf();
    let dir = data.to_str().unwrap().to_owned();
    let (code, out) = lgsp(&["log", "verify", "--data-dir", &dir]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: 301 records"), "{out}");
    let (code, out) = lgsp(&[
        "log",
        "verify",
        "--data-dir",
        &dir,
        "--key",
        &key,
        "--checkpoint",
        &held_file,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("1 given checkpoint(s) checked with the given key(s)"),
        "{out}"
    );
    let stranger = "vn.lgsp/log+00000000+AQ3x5O1Njnc87eipDq+2ZXP9PY16Twb5lw6kvZFi66gH";
    let (code, _) = lgsp(&["log", "verify", "--data-dir", &dir, "--key", stranger]);
    assert_eq!(code, 1, "a key that is not the log's");

    let cases = [
        (
            "UPDATE calls SET status = 500 WHERE seq = 42",
            "first bad index 41",
        ),
        ("DELETE FROM calls WHERE seq = 100", "first bad index 99"),
        ("DELETE FROM calls WHERE seq = 301", "first bad index 300"),
        (
            "INSERT INTO calls SELECT 302, 'forged', time_us, consumer, api, method, path, status, latency_us, \
             request_bytes, response_bytes, request_sha256, response_sha256, client_addr, reason, NULL FROM calls WHERE seq = 5",
            "first bad index 301",
        ),
        (
            "UPDATE calls SET seq = -seq WHERE seq IN (7, 9); UPDATE calls SET seq = 9 WHERE seq = -7; \
             UPDATE calls SET seq = 7 WHERE seq = -9",
            "first bad index 6",
        ),
        (
            "UPDATE calls SET request_sha256 = response_sha256 WHERE seq = 257",
            "first bad index 256",
        ),
    ];
    for (sql, want) in cases {
        let (code, out) = verify_altered(&data, sql);
        assert_eq!(code, 1, "{sql}: {out}");
        assert!(
            out.starts_with("FAILED: ") && out.contains(want),
            "{sql}: {out}"
        );
    }

    // A record rewritten together with the tiles the platform would have
    // made for it: only the signed checkpoints can tell, and they do.
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(data.join("lgsp.db"), copy.path().join("lgsp.db")).unwrap();
    {
        let conn = rusqlite::Connection::open(copy.path().join("lgsp.db")).unwrap();
        conn.execute("UPDATE calls SET status = 201 WHERE seq = 150", [])
            .unwrap();
        // … and the checkpoints that would betray it are deleted.
        conn.execute("DELETE FROM log_checkpoints WHERE size >= 150", [])
            .unwrap();
        let mut edge = lgsp_evidence::tiles::Edge::default();
        let mut stmt = conn.prepare("SELECT * FROM calls ORDER BY seq").unwrap();
        let records: Vec<lgsp_evidence::CallRecord> = stmt
            .query_map([], |r| {
                Ok(lgsp_evidence::CallRecord {
                    seq: r.get("seq")?,
                    request_id: r.get("request_id")?,
                    time_us: r.get("time_us")?,
                    consumer: r.get("consumer")?,
                    api: r.get("api")?,
                    method: r.get("method")?,
                    path: r.get("path")?,
                    status: r.get("status")?,
                    latency_us: r.get("latency_us")?,
                    request_bytes: r.get("request_bytes")?,
                    response_bytes: r.get("response_bytes")?,
                    request_sha256: r.get("request_sha256")?,
                    response_sha256: r.get("response_sha256")?,
                    client_addr: r.get("client_addr")?,
                    reason: r.get("reason")?,
                })
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut changed = Vec::new();
        for r in &records {
            edge.push(
                lgsp_evidence::merkle::leaf_hash(&lgsp_evidence::leaf::encode(r)),
                &mut changed,
            );
        }
        let mut tiles: Vec<(u8, u64, Vec<u8>)> = edge
            .take_full()
            .into_iter()
            .map(|(id, h)| (id.level, id.index, h.concat()))
            .collect();
        for (id, h) in edge.partial_tiles() {
            tiles.push((id.level, id.index, h.concat()));
        }
        for (level, index, hashes) in tiles {
            conn.execute(
                "INSERT OR REPLACE INTO log_tiles (level, idx, hashes) VALUES (?1, ?2, ?3)",
                rusqlite::params![level, index as i64, hashes],
            )
            .unwrap();
        }
    }
    let copied = copy.path().to_str().unwrap();
    let (code, out) = lgsp(&[
        "log",
        "verify",
        "--data-dir",
        copied,
        "--checkpoint",
        &held_file,
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("given checkpoint 1 signed a different tree"),
        "{out}"
    );

    let (code, out) = lgsp(&["log", "verify", "--data-dir", "/nonexistent/dir"]);
    assert_eq!(code, 1);
    assert!(out.contains("holds no platform store"), "{out}");
    drop(tempdir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_keys_keep_old_evidence_valid_and_archives_restore_verified() {
    let w = World::with(fast_checkpoints).await;
    let p = &w.platform;
    let before = p
        .call(Method::GET, "/echo/1.0/truoc", &w.token)
        .send()
        .await
        .unwrap();
    let before_id = request_id(&before);
    before.bytes().await.unwrap();
    let (status, old_bundle) = bundle_as(p, Some(&w.token), &before_id).await;
    assert_eq!(status, StatusCode::OK, "{old_bundle}");

    // The operator rotates the key from the command line.
    let admin_cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lgsp"))
            .args(args)
            .env("LGSP_ADMIN_URL", &p.admin)
            .env("LGSP_DATA_DIR", p.dir.path())
            .env_remove("LGSP_ADMIN_TOKEN")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = tokio::task::block_in_place(|| admin_cli(&["log", "rotate-key"]));
    assert_eq!(code, 0, "{out}");
    let rotated: Value = serde_json::from_str(&out).unwrap();
    let after = p
        .call(Method::GET, "/echo/1.0/sau", &w.token)
        .send()
        .await
        .unwrap();
    let after_id = request_id(&after);
    after.bytes().await.unwrap();
    let (status, new_bundle) = bundle_as(p, Some(&w.token), &after_id).await;
    assert_eq!(status, StatusCode::OK, "{new_bundle}");
    assert_ne!(old_bundle["public_key"], new_bundle["public_key"]);
    assert_eq!(new_bundle["public_key"], rotated["current_key"]);
    let (_, state) = p.admin_get("/api/v1/log").await;
    assert_eq!(state["keys"].as_array().unwrap().len(), 2);

    let dir = tempfile::tempdir().unwrap();
    for (name, bundle) in [("old.json", &old_bundle), ("new.json", &new_bundle)] {
        let file = dir.path().join(name);
        std::fs::write(&file, serde_json::to_vec(bundle).unwrap()).unwrap();
        let key = bundle["public_key"].as_str().unwrap();
        let (code, out) = lgsp(&["verify", file.to_str().unwrap(), "--key", key]);
        assert_eq!(code, 0, "{out}");
    }
    // The operator downloads any call's bundle from the command line.
    let downloaded = dir.path().join("cli.json");
    let (code, out) = tokio::task::block_in_place(|| {
        admin_cli(&[
            "log",
            "bundle",
            &before_id,
            "--out",
            downloaded.to_str().unwrap(),
        ])
    });
    assert_eq!(code, 0, "{out}");
    let (code, out) = lgsp(&["verify", downloaded.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = tokio::task::block_in_place(|| admin_cli(&["log", "status"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"current_key\""), "{out}");
    // The private key file is 0600.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(p.dir.path().join("keys/log-ed25519.pk8"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let data = p.dir.path().to_str().unwrap().to_owned();
    let (code, out) = lgsp(&["log", "verify", "--data-dir", &data]);
    assert_eq!(code, 0, "{out}");

    // Export closed segments; a second export adds only what closed since.
    let archive = dir.path().join("archive");
    let a = archive.to_str().unwrap();
    let (code, out) = lgsp(&[
        "log",
        "export",
        "--data-dir",
        &data,
        "--out",
        a,
        "--min-records",
        "1",
    ]);
    assert_eq!(code, 0, "{out}");
    for i in 0..5 {
        p.call(Method::GET, &format!("/echo/1.0/them/{i}"), &w.token)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let (code, out) = lgsp(&[
        "log",
        "export",
        "--data-dir",
        &data,
        "--out",
        a,
        "--min-records",
        "1",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 new segment"), "{out}");

    let restored = dir.path().join("restored");
    let r = restored.to_str().unwrap();
    let (code, out) = lgsp(&["log", "restore", a, "--data-dir", r]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("restored 7 records"), "{out}");
    let (code, out) = lgsp(&["log", "verify", "--data-dir", r]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = lgsp(&["log", "restore", a, "--data-dir", r]);
    assert_eq!(code, 1, "a restore never writes over records: {out}");

    // An archive changed after export is refused, naming what changed.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(archive.join("manifest.json")).unwrap()).unwrap();
    let segment = archive.join(manifest["segments"][0]["file"].as_str().unwrap());
    let text = std::fs::read_to_string(&segment).unwrap();
    std::fs::write(&segment, text.replace("\"status\":200", "\"status\":500")).unwrap();
    let (code, out) = lgsp(&["log", "restore", a, "--check-only"]);
    assert_eq!(code, 1);
    assert!(out.contains("segment-000000.jsonl"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_bodies_expire_and_proofs_stay_valid() {
    let p = Platform::start_with(|a| {
        a.log_checkpoint_interval_ms = Some(100);
        a.body_retention_secs = Some(2);
    })
    .await;
    let upstream = start_upstream().await;
    p.unit("000.00.20.H41", "Sở Tư pháp").await;
    let provider = p.system("000.00.20.H41", "hotich").await;
    let consumer = p.system("000.00.20.H41", "motcua").await;
    let (status, api) = p
        .admin_post(
            "/api/v1/apis",
            json!({"provider_system": provider.id, "name": "Hộ tịch", "context": "hotich", "version": "1.0",
                   "upstream_url": format!("http://{upstream}/up"), "protocol": "rest", "keep_bodies": true, "status": "published"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{api}");
    assert_eq!(api["keep_bodies"], true);
    p.subscribe(&consumer, "hotich/1.0").await;
    let token = p.token(&consumer).await;
    let sent = "{\"soDinhDanh\":\"049099000123\"}";
    let resp = p
        .call(Method::POST, "/hotich/1.0/tra-cuu", &token)
        .body(sent)
        .send()
        .await
        .unwrap();
    let rid = request_id(&resp);
    let received = resp.bytes().await.unwrap();

    let body = |which: &'static str| {
        let p = &p;
        let rid = rid.clone();
        async move {
            let resp = p
                .http
                .get(format!("{}/api/v1/calls/{rid}/bodies/{which}", p.admin))
                .bearer_auth(&p.admin_token)
                .send()
                .await
                .unwrap();
            (resp.status(), resp.bytes().await.unwrap())
        }
    };
    let (status, kept) = body("request").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kept, sent.as_bytes());
    let (status, kept) = body("response").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kept, received);
    let (status, _) = body("other").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let (status, _) = body("request").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "expired bodies are deleted");
    let (status, bundle) = bundle_as(&p, Some(&token), &rid).await;
    assert_eq!(status, StatusCode::OK);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.json");
    std::fs::write(&file, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let req_file = dir.path().join("req");
    std::fs::write(&req_file, sent).unwrap();
    let (code, out) = lgsp(&[
        "verify",
        file.to_str().unwrap(),
        "--request-body",
        req_file.to_str().unwrap(),
    ]);
    assert_eq!(
        code, 0,
        "the kept copy is gone, the proof of its hash is not: {out}"
    );
    let (code, out) = lgsp(&[
        "log",
        "verify",
        "--data-dir",
        p.dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
}
