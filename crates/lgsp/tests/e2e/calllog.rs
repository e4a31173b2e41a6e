//! The call log under concurrency: every call recorded exactly once.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};

use crate::support::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundreds_of_concurrent_calls_each_logged_once() {
    let w = World::new().await;
    let outsider = w.platform.system("000.00.20.H41", "ngoai").await;
    let outsider_token = w.platform.token(&outsider).await;

    let mut tasks = Vec::new();
    for i in 0..400 {
        let http = w.platform.http.clone();
        let url = format!("{}/echo/1.0/item/{i}", w.platform.data);
        // A quarter of the calls are refused: refusals are logged too.
        let token = if i % 4 == 0 {
            outsider_token.clone()
        } else {
            w.token.clone()
        };
        tasks.push(tokio::spawn(async move {
            let resp = http
                .request(Method::POST, url)
                .bearer_auth(token)
                .body(format!("body {i}"))
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
            resp.bytes().await.unwrap();
            (status, id)
        }));
    }
    let mut ids = HashSet::new();
    let mut refused = 0;
    for t in tasks {
        let (status, id) = t.await.unwrap();
        if status == StatusCode::FORBIDDEN {
            refused += 1;
        } else {
            assert_eq!(status, StatusCode::OK);
        }
        assert!(ids.insert(id), "request ids are unique");
    }
    assert_eq!(refused, 100);

    // Read the whole log back, page by page.
    let mut seen = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let path = match before {
            Some(b) => format!("/api/v1/calls?api=echo/1.0&limit=1000&before={b}"),
            None => "/api/v1/calls?api=echo/1.0&limit=1000".to_owned(),
        };
        let (_, page) = w.platform.admin_get(&path).await;
        for item in page["items"].as_array().unwrap() {
            seen.push(item["request_id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_i64() {
            Some(n) => before = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 400, "one record per call, no more");
    let seen: HashSet<String> = seen.into_iter().collect();
    assert_eq!(seen, ids);
    w.platform.stop().await;
}
