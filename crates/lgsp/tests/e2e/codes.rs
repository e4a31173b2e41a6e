//! The built-in code-list service `danhmuc/1.0`, on the real shipped data.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::World;

async fn get(w: &World, path: &str) -> (StatusCode, Value) {
    let resp = w
        .platform
        .call(Method::GET, &format!("/danhmuc/1.0/{path}"), &w.token)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert!(resp.headers().contains_key("x-request-id"));
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn a_ward_code_means_what_it_meant_on_the_day() {
    let w = World::new().await;
    // No subscription needed: code lists are shared by default.
    let (status, before) = get(&w, "lists/dvhc/items/20335?at=2025-06-30").await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(before["version"], "legacy");
    assert_eq!(before["item"]["name"], "Phường Tân Thạnh");
    assert_eq!(before["item"]["parent_code"], "502");
    let path: Vec<&str> = before["ancestors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(path, ["Tỉnh Quảng Nam", "Thành phố Tam Kỳ"]);

    let (_, after) = get(&w, "lists/dvhc/items/20335?at=2025-07-01").await;
    assert_eq!(after["version"], "2025");
    assert_eq!(after["item"]["name"], "Phường Bàn Thạch");
    assert_eq!(after["item"]["parent_code"], "48");

    // The five island districts have no wards.
    let (_, islands) = get(&w, "lists/dvhc/items?at=2025-01-01&level=2&page_size=1000").await;
    assert_eq!(islands["total"], 696);
    let mut empty = Vec::new();
    for d in islands["items"].as_array().unwrap() {
        let code = d["code"].as_str().unwrap();
        let (_, wards) = get(
            &w,
            &format!("lists/dvhc/items?at=2025-01-01&parent={code}&page_size=1"),
        )
        .await;
        if wards["total"] == 0 {
            empty.push(d["name"].as_str().unwrap().to_owned());
        }
    }
    empty.sort();
    assert_eq!(
        empty,
        [
            "Huyện Bạch Long Vĩ",
            "Huyện Côn Đảo",
            "Huyện Cồn Cỏ",
            "Huyện Hoàng Sa",
            "Huyện Lý Sơn"
        ]
    );

    let (_, provinces) = get(&w, "lists/dvhc/items?at=2025-07-01&level=1").await;
    assert_eq!(provinces["total"], 34);
    let (_, wards) = get(
        &w,
        "lists/dvhc/items?at=2025-07-01&level=2&page=34&page_size=100",
    )
    .await;
    assert_eq!(wards["total"], 3321);
    assert_eq!(wards["items"].as_array().unwrap().len(), 21);
    w.platform.stop().await;
}

#[tokio::test]
async fn search_ignores_diacritics_and_ranks_best_first() {
    let w = World::new().await;
    let (_, plain) = get(&w, "lists/dvhc/search?q=hoa+huong&at=2025-06-30").await;
    let names: Vec<&str> = plain["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Phường Hòa Hương"), "{names:?}");
    let (_, marked) = get(
        &w,
        "lists/dvhc/search?q=H%C3%B2a%20H%C6%B0%C6%A1ng&at=2025-06-30",
    )
    .await;
    assert_eq!(marked["items"][0]["name"], "Phường Hòa Hương");
    let (_, exact) = get(&w, "lists/dvhc/search?q=quang+nam&at=2025-06-30&limit=1").await;
    assert_eq!(exact["items"][0]["name"], "Tỉnh Quảng Nam");
    let (_, ethnic) = get(&w, "lists/dantoc/search?q=hmong").await;
    assert_eq!(ethnic["items"][0]["code"], "08");
    let (_, vn) = get(&w, "lists/quocgia/search?q=viet+nam&limit=1").await;
    assert_eq!(vn["items"][0]["code"], "VN");
    assert_eq!(vn["items"][0]["name"], "Việt Nam");
    let (_, lao) = get(&w, "lists/quocgia/items/LA").await;
    assert_eq!(lao["item"]["attributes"]["alpha_3"], "LAO");
    let (_, sex) = get(&w, "lists/gioitinh/items").await;
    assert_eq!(sex["total"], 4);
    let (_, count) = get(&w, "lists/dantoc/items").await;
    assert_eq!(count["total"], 54);
    w.platform.stop().await;
}

#[tokio::test]
async fn bad_reads_are_precise() {
    let w = World::new().await;
    for (path, status) in [
        ("lists/nosuch/items", StatusCode::NOT_FOUND),
        ("lists/dvhc/items/99999", StatusCode::NOT_FOUND),
        ("lists/dvhc/items?at=2025-13-01", StatusCode::BAD_REQUEST),
        ("lists/dvhc/items?at=yesterday", StatusCode::BAD_REQUEST),
        ("lists/dvhc/items?page=0", StatusCode::BAD_REQUEST),
        ("lists/dvhc/items?page_size=100000", StatusCode::BAD_REQUEST),
        ("lists/dvhc/items?parent=nope", StatusCode::NOT_FOUND),
        ("lists/dvhc/search", StatusCode::BAD_REQUEST),
        ("lists/dvhc/search?q=%20", StatusCode::BAD_REQUEST),
        ("lists/dvhc/items?colour=red", StatusCode::BAD_REQUEST),
        ("elsewhere", StatusCode::NOT_FOUND),
    ] {
        let (got, body) = get(&w, path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(
            body["message"].is_string() && body["request_id"].is_string(),
            "{body}"
        );
    }
    let resp = w
        .platform
        .call(Method::POST, "/danhmuc/1.0/lists", &w.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let (_, lists) = get(&w, "lists").await;
    let ids: Vec<&str> = lists["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["dantoc", "dvhc", "gioitinh", "quocgia"]);
    w.platform.stop().await;
}

#[tokio::test]
async fn old_codes_lead_to_new_ones_and_back() {
    let w = World::new().await;
    let (_, next) = get(&w, "lists/dvhc/items/20335/successors?at=2025-06-30").await;
    assert_eq!(next["name"], "Phường Tân Thạnh");
    assert_eq!(next["successors"][0]["code"], "20335");
    assert_eq!(next["successors"][0]["name"], "Phường Bàn Thạch");
    assert_eq!(next["successors"][0]["valid_from"], "2025-07-01");

    let (_, back) = get(&w, "lists/dvhc/items/20335/predecessors?at=2025-07-01").await;
    let mut old: Vec<&str> = back["predecessors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["code"].as_str().unwrap())
        .collect();
    old.sort();
    assert_eq!(old, ["20335", "20362", "20375"]);

    // A divided ward: its default successor comes first.
    let (_, divided) = get(&w, "lists/dvhc/items/00007/successors?at=2025-06-30").await;
    let rows = divided["successors"].as_array().unwrap();
    assert!(rows.len() >= 2, "{divided}");
    assert_eq!(rows[0]["code"], "00008");
    assert_eq!(rows[0]["is_default"], true);
    assert_eq!(rows[0]["kind"], "divided");
    assert!(rows[1..].iter().all(|r| r["is_default"] == false));

    let (_, diff) = get(&w, "lists/dvhc/diff?from=2025-06-30&to=2025-07-01").await;
    assert_eq!(diff["from"]["version"], "legacy");
    assert_eq!(diff["to"]["version"], "2025");
    let summary = &diff["summary"];
    // Every district disappeared; province 49 (Quảng Nam) too.
    let removed = diff["changes"]["removed"].as_array().unwrap();
    assert_eq!(removed.iter().filter(|i| i["level"] == 2).count(), 696);
    assert!(removed.iter().any(|i| i["code"] == "49"));
    assert!(summary["renamed"].as_u64().unwrap() > 0 && summary["moved"].as_u64().unwrap() > 0);
    let renamed = diff["changes"]["renamed"].as_array().unwrap();
    let ward = renamed.iter().find(|c| c["code"] == "20335").unwrap();
    assert_eq!(
        (
            ward["before"]["name"].as_str(),
            ward["after"]["name"].as_str()
        ),
        (Some("Phường Tân Thạnh"), Some("Phường Bàn Thạch"))
    );

    let (status, _) = get(&w, "lists/dvhc/diff?from=2025-06-30").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    w.platform.stop().await;
}

#[tokio::test]
async fn xml_csv_and_conditional_reads() {
    let w = World::new().await;
    let p = &w.platform;
    let resp = p
        .call(
            Method::GET,
            "/danhmuc/1.0/lists/dvhc/items?at=2025-06-30&parent=502",
            &w.token,
        )
        .header("accept", "application/xml")
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    let xml = resp.text().await.unwrap();
    assert!(
        xml.contains(
            "<Item><ma>20335</ma><ten>Phường Tân Thạnh</ten><capId>3</capId><chaId>502</chaId>"
        ),
        "{xml}"
    );

    let csv = p
        .call(
            Method::GET,
            "/danhmuc/1.0/lists/dvhc/export?at=2025-06-30",
            &w.token,
        )
        .send()
        .await
        .unwrap();
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = csv.text().await.unwrap();
    let (_, all) = get(&w, "lists/dvhc/items?at=2025-06-30&page_size=1").await;
    assert_eq!(
        csv.lines().count() as u64,
        all["total"].as_u64().unwrap() + 1
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("20335,Phường Tân Thạnh,502,3,")),
        "CSV row of 20335"
    );
    let (status, _) = get(&w, "lists/dvhc/items?format=pdf").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Caching: the same answer twice gives the same ETag; If-None-Match gets 304.
    let url = "/danhmuc/1.0/lists/dantoc/items";
    let first = p.call(Method::GET, url, &w.token).send().await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(first.headers().contains_key("last-modified"));
    let again = p
        .call(Method::GET, url, &w.token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    let id = again.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(again.bytes().await.unwrap().is_empty());
    assert_eq!(p.record(&id).await["status"], 304);
    let other = p
        .call(Method::GET, url, &w.token)
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    w.platform.stop().await;
}
