//! Importing new versions of code lists: CSV, JSON, Excel; every malformed
//! file refused with its row and column, and the stored lists unchanged.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Platform, World};

async fn import(
    p: &Platform,
    list: &str,
    query: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let resp = p
        .http
        .post(format!(
            "{}/api/v1/codelists/{list}/versions?{query}",
            p.admin
        ))
        .bearer_auth(&p.admin_token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

/// Query, content type, body, and the row, column and words of the expected error.
type Case = (
    &'static str,
    &'static str,
    Vec<u8>,
    usize,
    &'static str,
    &'static str,
);

async fn read(w: &World, path: &str) -> Value {
    let r = w
        .platform
        .call(Method::GET, path, &w.token)
        .send()
        .await
        .unwrap();
    r.json::<Value>().await.unwrap()
}

async fn create_religions(p: &Platform) {
    let (status, body) = p
        .admin_post(
            "/api/v1/codelists",
            json!({"id": "tongiao", "name": "Danh mục tôn giáo", "name_en": "Religions", "legal_basis": "Luật Tín ngưỡng, tôn giáo 2016"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

const V1: &str = "ma,ten,chaId,ghi_chu\r\n01,Phật giáo,,\r\n02,Công giáo,,\r\n03,Tin lành,,\r\n0301,Hội thánh Tin lành Việt Nam (miền Bắc),03,\r\n";

#[tokio::test]
async fn versions_from_csv_and_json_are_read_at_their_dates() {
    let w = World::new().await;
    let p = &w.platform;
    create_religions(p).await;

    // NFD text in the file is stored as NFC.
    let nfd = V1.replace("Phật", "Pha\u{0323}\u{0302}t");
    let (status, body) = import(
        p,
        "tongiao",
        "version=2020&valid_from=2020-01-01",
        "text/csv",
        nfd.into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["items"], 4);
    assert_eq!(body["normalised_to_nfc"], 1);

    let v2 = json!({
        "items": [
            {"code": "01", "name": "Phật giáo"},
            {"code": "02", "name": "Công giáo"},
            {"code": "03", "name": "Tin Lành"},
            {"code": "0302", "name": "Hội thánh Tin lành Việt Nam (miền Nam)", "parent_code": "03", "attributes": {"nam_cong_nhan": "2001"}},
            {"code": "04", "name": "Cao Đài"}
        ],
        "mappings": [{"old_code": "0301", "new_code": "0302", "kind": "recoded", "is_default": true}]
    });
    let dry = import(
        p,
        "tongiao",
        "version=2026&valid_from=2026-01-01&dry_run=true",
        "application/json",
        v2.to_string().into_bytes(),
    )
    .await;
    assert_eq!(dry.0, StatusCode::OK, "{}", dry.1);
    assert_eq!(
        dry.1["summary"],
        json!({"added": 2, "removed": 1, "renamed": 1, "moved": 0, "recoded": 1})
    );
    let (_, lists) = p.admin_get("/api/v1/codelists").await;
    let religions = lists["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == "tongiao")
        .unwrap()
        .clone();
    assert_eq!(
        religions["versions"].as_array().unwrap().len(),
        1,
        "a dry run writes nothing"
    );

    let (status, body) = import(
        p,
        "tongiao",
        "version=2026&valid_from=2026-01-01",
        "application/json",
        v2.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["follows"], "2020");

    let old = read(&w, "/danhmuc/1.0/lists/tongiao/items/0301?at=2025-12-31").await;
    assert_eq!(old["version"], "2020");
    let next = read(
        &w,
        "/danhmuc/1.0/lists/tongiao/items/0301/successors?at=2025-12-31",
    )
    .await;
    assert_eq!(next["successors"][0]["code"], "0302");
    let new = read(&w, "/danhmuc/1.0/lists/tongiao/items?at=2026-01-01").await;
    assert_eq!(new["total"], 5);
    let meta = read(&w, "/danhmuc/1.0/lists/tongiao").await;
    assert_eq!(meta["versions"][0]["valid_to"], "2026-01-01");
    let child = read(&w, "/danhmuc/1.0/lists/tongiao/items/0302?at=2026-02-01").await;
    assert_eq!(child["item"]["level"], 2);
    assert_eq!(child["item"]["attributes"]["nam_cong_nhan"], "2001");
    w.platform.stop().await;
}

#[tokio::test]
async fn excel_workbooks_import() {
    let p = Platform::start().await;
    create_religions(&p).await;
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (col, head) in ["Ma", "Ten", "ChaId", "Cap"].iter().enumerate() {
        sheet.write_string(0, col as u16, *head).unwrap();
    }
    sheet.write_string(1, 0, "01").unwrap();
    sheet.write_string(1, 1, "Phật giáo").unwrap();
    sheet.write_number(1, 3, 1.0).unwrap();
    // A code typed as a number, as spreadsheets do.
    sheet.write_number(2, 0, 2.0).unwrap();
    sheet.write_string(2, 1, "Hồi giáo").unwrap();
    sheet.write_number(3, 0, 21.0).unwrap();
    sheet.write_string(3, 1, "Hồi giáo Bà-ni").unwrap();
    sheet.write_number(3, 2, 2.0).unwrap();
    let bytes = book.save_to_buffer().unwrap();

    let xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    let (status, body) = import(
        &p,
        "tongiao",
        "version=2024&valid_from=2024-01-01",
        xlsx,
        bytes,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["items"], 3);

    let (status, body) = import(
        &p,
        "tongiao",
        "version=2025&valid_from=2025-01-01",
        xlsx,
        b"not a zip".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["details"]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("xlsx"),
        "{body}"
    );
    p.stop().await;
}

#[tokio::test]
async fn malformed_imports_are_refused_precisely_and_change_nothing() {
    let p = Platform::start().await;
    create_religions(&p).await;
    let (status, _) = import(
        &p,
        "tongiao",
        "version=2020&valid_from=2020-01-01",
        "text/csv",
        V1.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, before) = p.admin_get("/api/v1/codelists").await;

    let q = "version=2027&valid_from=2027-01-01";
    let cases: Vec<Case> = vec![
        (q, "text/csv", b"ma,ten\r\n01,A\r\n01,B\r\n".to_vec(), 3, "code", "duplicate code 01 (first on row 2)"),
        (q, "text/csv", b"ma,ten,chaId\r\n01,A,\r\n02,B,99\r\n".to_vec(), 3, "parent_code", "unknown parent 99"),
        (q, "text/csv", b"ma,ten,chaId\r\n01,A,02\r\n02,B,01\r\n".to_vec(), 2, "parent_code", "cycle"),
        (q, "text/csv", b"ma,ten\r\n01,\r\n".to_vec(), 2, "name", "is empty"),
        (q, "text/csv", b"ma,ten\r\n01,A\x00B\r\n".to_vec(), 2, "name", "control"),
        (q, "text/csv", "ma,ten\r\n01,A\u{202E}B\r\n".as_bytes().to_vec(), 2, "name", "invisible"),
        (q, "text/csv", b"ma,ten,cap\r\n01,A,x\r\n".to_vec(), 2, "level", "not a level"),
        (q, "text/csv", b"ma,ten,cap,chaId\r\n01,A,2,\r\n02,B,1,01\r\n".to_vec(), 3, "level", "not below its parent"),
        (q, "text/csv", b"code;name\r\n01;A\r\n".to_vec(), 1, "", "must name a `code`"),
        (q, "text/csv", b"ma,ten\r\n01,A,extra\r\n".to_vec(), 2, "", "unreadable row"),
        // "Phật giáo" in Windows-1258, as old provincial software writes it.
        (q, "text/csv", b"ma,ten\r\n01,Ph\xe2\xf2t gi\xe1o\r\n".to_vec(), 2, "", "not UTF-8"),
        (q, "application/json", b"{\"items\": [{\"code\": \"01\"}]}".to_vec(), 1, "", "missing field `name`"),
        (q, "application/json", b"{\"rows\": []}".to_vec(), 0, "", "not a JSON array"),
        (q, "application/json", b"[{\"code\": ".to_vec(), 1, "", "malformed JSON"),
        (q, "application/json", b"[]".to_vec(), 0, "", "no items"),
        ("version=2019&valid_from=2019-01-01", "text/csv", b"ma,ten\r\n01,A\r\n".to_vec(), 0, "valid_from", "never overlap"),
        ("version=2020&valid_from=2028-01-01", "text/csv", b"ma,ten\r\n01,A\r\n".to_vec(), 0, "version", "already has a version 2020"),
        ("version=2028&valid_from=2028-02-30", "text/csv", b"ma,ten\r\n01,A\r\n".to_vec(), 0, "valid_from", "not a date"),
        ("version=2028&valid_from=2028-01-01&valid_to=2027-01-01", "text/csv", b"ma,ten\r\n01,A\r\n".to_vec(), 0, "valid_to", "after valid_from"),
        ("version=a%2Fb&valid_from=2028-01-01", "text/csv", b"ma,ten\r\n01,A\r\n".to_vec(), 0, "version", "letters"),
        (
            q,
            "application/json",
            json!({"items": [{"code": "01", "name": "A"}], "mappings": [{"old_code": "77", "new_code": "01", "kind": "merged"}]}).to_string().into_bytes(),
            1,
            "mappings.old_code",
            "not a code of version 2020",
        ),
    ];
    for (query, content_type, body, row, column, needle) in cases {
        let (status, answer) = import(&p, "tongiao", query, content_type, body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{needle}: {answer}"
        );
        assert_eq!(answer["error"], "invalid_import");
        let errors = answer["details"]["errors"].as_array().unwrap();
        assert!(
            errors.iter().any(|e| e["row"] == row
                && e["column"] == column
                && e["message"].as_str().unwrap().contains(needle)),
            "expected row {row} column {column:?} «{needle}» in {answer}"
        );
    }

    let (status, _) = import(&p, "nosuch", q, "text/csv", b"ma,ten\r\n01,A\r\n".to_vec()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = import(&p, "tongiao", q, "application/pdf", b"%PDF".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _) = import(
        &p,
        "tongiao",
        "valid_from=2027-01-01",
        "text/csv",
        b"ma,ten\r\n01,A\r\n".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (_, after) = p.admin_get("/api/v1/codelists").await;
    assert_eq!(
        before, after,
        "refused imports leave the lists as they were"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_imports_a_file() {
    let p = Platform::start().await;
    create_religions(&p).await;
    let file = p.dir.path().join("tongiao.csv");
    std::fs::write(&file, V1).unwrap();
    let bad = p.dir.path().join("bad.csv");
    std::fs::write(&bad, "ma,ten\r\n01,A\r\n01,B\r\n").unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_lgsp"))
            .args(args)
            .env("LGSP_ADMIN_URL", &p.admin)
            .env("LGSP_DATA_DIR", p.dir.path())
            .output()
            .unwrap()
    };
    let f = file.to_str().unwrap();
    let out = tokio::task::block_in_place(|| {
        run(&[
            "codelist",
            "import",
            "--list",
            "tongiao",
            "--version",
            "2020",
            "--valid-from",
            "2020-01-01",
            "--dry-run",
            f,
        ])
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dry: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(dry["dry_run"], true);
    let out = tokio::task::block_in_place(|| {
        run(&[
            "codelist",
            "import",
            "--list",
            "tongiao",
            "--version",
            "2020",
            "--valid-from",
            "2020-01-01",
            f,
        ])
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tokio::task::block_in_place(|| {
        run(&[
            "codelist",
            "import",
            "--list",
            "tongiao",
            "--version",
            "2021",
            "--valid-from",
            "2021-01-01",
            bad.to_str().unwrap(),
        ])
    });
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("row 3, column code: duplicate code 01"),
        "{err}"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_notices_are_retried_until_acknowledged() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    // A consumer endpoint that fails twice, then acknowledges.
    let hits = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let app = {
        let (hits, received) = (hits.clone(), received.clone());
        axum::Router::new().route(
            "/notices",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let (hits, received) = (hits.clone(), received.clone());
                async move {
                    received.lock().unwrap().push(body);
                    if hits.fetch_add(1, Ordering::SeqCst) < 2 {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let w = World::with(|a| {
        a.notice_retry_base_ms = Some(100);
        a.allow_loopback_callbacks = true;
    })
    .await;
    let p = &w.platform;
    create_religions(p).await;
    import(
        p,
        "tongiao",
        "version=2020&valid_from=2020-01-01",
        "text/csv",
        V1.as_bytes().to_vec(),
    )
    .await;

    let callbacks = "/danhmuc/1.0/lists/tongiao/callbacks";
    let url = format!("http://{receiver}/notices");
    let resp = p
        .call(Method::POST, callbacks, &w.token)
        .json(&json!({"callback_url": url}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let registration: Value = resp.json().await.unwrap();
    assert_eq!(registration["system_id"], w.consumer.id.as_str());
    let again = p
        .call(Method::POST, callbacks, &w.token)
        .json(&json!({"callback_url": url}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    for bad in [
        json!({"callback_url": "ftp://x"}),
        json!({"url": "http://x"}),
        json!("x"),
    ] {
        let resp = p
            .call(Method::POST, callbacks, &w.token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let mine: Value = p
        .call(Method::GET, callbacks, &w.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    // Another system cannot remove it.
    let other = p.system("000.00.20.H41", "khac").await;
    let other_token = p.token(&other).await;
    let id = registration["id"].as_str().unwrap();
    let resp = p
        .call(Method::DELETE, &format!("{callbacks}/{id}"), &other_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let v2 = "ma,ten\r\n01,Phật giáo\r\n02,Công giáo\r\n";
    let (status, _) = import(
        p,
        "tongiao",
        "version=2026&valid_from=2026-01-01",
        "text/csv",
        v2.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let mut delivered = Value::Null;
    for _ in 0..100 {
        let (_, notices) = p.admin_get("/api/v1/codelists/notices?list=tongiao").await;
        if notices["items"][0]["state"] == "delivered" {
            delivered = notices["items"][0].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(delivered["attempts"], 3, "{delivered}");
    assert_eq!(delivered["last_status"], 204);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    let first = received.lock().unwrap()[0].clone();
    assert_eq!(first["event"], "codelist.version_published");
    assert_eq!(first["version"], "2026");
    assert_eq!(first["valid_from"], "2026-01-01");
    assert_eq!(first["summary"]["removed"], 2);

    // Once removed, no more notices.
    let resp = p
        .call(Method::DELETE, &format!("{callbacks}/{id}"), &w.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (_, registered) = p.admin_get("/api/v1/codelists/callbacks").await;
    assert!(registered["items"].as_array().unwrap().is_empty());
    w.platform.stop().await;
}
