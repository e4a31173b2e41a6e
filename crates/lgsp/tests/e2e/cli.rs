//! The CLI is a client of the admin API.

use std::process::Command;

use serde_json::Value;

use crate::support::Platform;

fn lgsp(p: &Platform, args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lgsp"))
        .args(args)
        .env("LGSP_ADMIN_URL", &p.admin)
        .env("LGSP_DATA_DIR", p.dir.path())
        .env_remove("LGSP_ADMIN_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.success(),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_from_the_command_line() {
    let p = Platform::start().await;
    let run = |args: Vec<String>| {
        let p = &p;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        lgsp(p, &args)
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();

    let (ok, unit, _) = tokio::task::block_in_place(|| {
        run(s(&[
            "unit",
            "add",
            "--code",
            "000.00.20.H41",
            "--name",
            "Sở Tư pháp",
        ]))
    });
    assert!(ok);
    assert_eq!(unit["name"], "Sở Tư pháp");
    let (ok, _, err) = tokio::task::block_in_place(|| {
        run(s(&["unit", "add", "--code", "bad code", "--name", "x"]))
    });
    assert!(!ok);
    assert!(
        err.contains("code:") && err.contains("invalid_request"),
        "{err}"
    );

    let (ok, sys, _) = tokio::task::block_in_place(|| {
        run(s(&[
            "system",
            "add",
            "--unit",
            "000.00.20.H41",
            "--code",
            "hotich",
            "--name",
            "Hộ tịch",
        ]))
    });
    assert!(ok);
    let id = sys["id"].as_str().unwrap().to_owned();
    assert!(sys["client_secret"].is_string());
    let (ok, api, err) = tokio::task::block_in_place(|| {
        run(s(&[
            "api",
            "add",
            "--provider",
            &id,
            "--name",
            "Hộ tịch",
            "--context",
            "hotich",
            "--version",
            "1.0",
            "--upstream",
            "http://127.0.0.1:9",
        ]))
    });
    assert!(ok, "{err}");
    assert_eq!(api["protocol"], "rest");
    let (ok, sub, _) = tokio::task::block_in_place(|| {
        run(s(&[
            "subscription",
            "add",
            "--consumer",
            &id,
            "--api",
            "hotich/1.0",
        ]))
    });
    assert!(ok);
    let (ok, _, _) = tokio::task::block_in_place(|| {
        run(s(&["subscription", "revoke", sub["id"].as_str().unwrap()]))
    });
    assert!(ok);
    let (ok, disabled, _) = tokio::task::block_in_place(|| run(s(&["system", "disable", &id])));
    assert!(ok);
    assert_eq!(disabled["enabled"], false);
    let (ok, rotated, _) =
        tokio::task::block_in_place(|| run(s(&["system", "rotate-secret", &id])));
    assert!(ok);
    // Disabling moved the token generation on once, rotating once more.
    assert_eq!(rotated["secret_generation"], 3);
    let (ok, calls, _) =
        tokio::task::block_in_place(|| run(s(&["calls", "--status", "4xx", "--limit", "5"])));
    assert!(ok);
    assert!(calls["items"].is_array());
    let (ok, units, _) = tokio::task::block_in_place(|| run(s(&["unit", "list"])));
    assert!(ok);
    assert_eq!(units["items"].as_array().unwrap().len(), 2);

    // A wrong token is a clear failure.
    let out = Command::new(env!("CARGO_BIN_EXE_lgsp"))
        .args([
            "unit",
            "list",
            "--admin-url",
            &p.admin,
            "--admin-token",
            "wrong",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unauthorized"));
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_management_from_the_command_line() {
    let p = Platform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let run = |args: &[&str]| tokio::task::block_in_place(|| lgsp(&p, args));
    let ok = |args: &[&str]| {
        let (ok, v, err) = run(args);
        assert!(ok, "lgsp {args:?}: {err}");
        v
    };

    p.unit("000.00.20.H41", "Sở Tư pháp").await;
    let provider = p.system("000.00.20.H41", "hotich").await;
    let consumer = p.system("000.00.20.H41", "motcua").await;
    let upstream = crate::support::start_upstream().await;
    let plan = ok(&[
        "plan",
        "add",
        "--id",
        "coban",
        "--name",
        "Cơ bản",
        "--rate",
        "50",
        "--per-day",
        "10000",
    ]);
    assert_eq!(plan["rate"], 50);
    let api = ok(&[
        "api",
        "add",
        "--provider",
        &provider.id,
        "--name",
        "Tra cứu hộ tịch",
        "--context",
        "hotich",
        "--version",
        "1.0",
        "--upstream",
        &format!("http://{upstream}/up"),
        "--tag",
        "Hộ tịch",
        "--default-plan",
        "coban",
    ]);
    assert_eq!(api["status"], "draft");
    let id = api["id"].as_str().unwrap().to_owned();
    assert_eq!(ok(&["api", "publish", &id])["status"], "published");

    // A bad specification is refused with its reason; a good one is kept.
    let (done, _, err) = run(&[
        "api",
        "spec",
        &id,
        &file("bad.yaml", "openapi: [3.0\n  : :"),
    ]);
    assert!(!done);
    assert!(err.contains("invalid_spec"), "{err}");
    let spec = "openapi: 3.1.0\ninfo:\n  title: Hộ tịch\n  version: '1.0'\npaths: {}\n";
    assert_eq!(
        ok(&["api", "spec", &id, &file("ok.yaml", spec)])["kind"],
        "openapi"
    );

    // A data standard, required of POST bodies.
    let schema =
        r#"{"type": "object", "required": ["so"], "properties": {"so": {"type": "string"}}}"#;
    ok(&[
        "standard",
        "add",
        "--id",
        "khaisinh",
        "--version",
        "1.0",
        "--name",
        "Khai sinh",
        "--schema",
        &file("khaisinh.json", schema),
    ]);
    let rules = ok(&[
        "api",
        "validations",
        &id,
        "--rule",
        "POST /khaisinh khaisinh/1.0",
    ]);
    assert_eq!(rules["items"][0]["standard"], "khaisinh", "{rules}");
    let (done, _, err) = run(&["api", "validations", &id, "--rule", "POST /khaisinh"]);
    assert!(!done);
    assert!(err.contains("METHOD PATH STANDARD/VERSION"), "{err}");

    // The catalogue finds it without diacritics.
    let found = ok(&["catalog", "ho tich"]);
    assert!(found.to_string().contains("hotich/1.0"), "{found}");

    // Onboarding: asked for the consumer, approved with a plan.
    let request = ok(&[
        "request",
        "add",
        "--consumer",
        &consumer.id,
        "--api",
        "hotich/1.0",
        "--purpose",
        "Liên thông một cửa",
        "--legal-basis",
        "Nghị định 45/2020/NĐ-CP",
    ]);
    assert_eq!(request["status"], "pending");
    let listed = ok(&["request", "list", "--status", "pending"]);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    let (done, _, err) = run(&[
        "request",
        "refuse",
        request["id"].as_str().unwrap(),
        "--reason",
        " ",
    ]);
    assert!(!done, "a refusal needs a reason");
    assert!(err.contains("reason"), "{err}");
    let approved = ok(&[
        "request",
        "approve",
        request["id"].as_str().unwrap(),
        "--plan",
        "coban",
    ]);
    assert_eq!(approved["status"], "approved");

    // Network rules, API keys and client certificates of the consumer.
    let nets = ok(&["network", "set", &consumer.id, "127.0.0.0/8", "::1"]);
    assert_eq!(nets["items"].as_array().unwrap().len(), 2, "{nets}");
    let key = ok(&[
        "apikey",
        "create",
        &consumer.id,
        "--name",
        "máy chủ một cửa",
    ]);
    let secret = key["key"].as_str().unwrap().to_owned();
    let resp = p
        .http
        .post(format!("{}/hotich/1.0/khaisinh", p.data))
        .header("apikey", &secret)
        .json(&serde_json::json!({"so": "KS-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = p
        .http
        .post(format!("{}/hotich/1.0/khaisinh", p.data))
        .header("apikey", &secret)
        .json(&serde_json::json!({"so": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "the standard applies");
    let listed = ok(&["apikey", "list", &consumer.id]);
    assert_eq!(listed["items"][0]["id"], key["id"], "{listed}");
    assert!(!listed.to_string().contains(&secret), "a key is shown once");
    let (done, _, err) = run(&[
        "cert",
        "bind",
        &consumer.id,
        &file("not.pem", "không phải PEM"),
    ]);
    assert!(!done);
    assert!(err.contains("certificate"), "{err}");
    let (done, _, err) = run(&["cert", "show", &consumer.id]);
    assert!(!done);
    assert!(err.contains("not_found"), "{err}");

    // Holidays and lifecycle.
    ok(&["holiday", "add", "2026-09-02", "--name", "Quốc khánh"]);
    let (done, _, err) = run(&["holiday", "add", "2026-02-30", "--name", "x"]);
    assert!(!done);
    assert!(err.contains("invalid_request"), "{err}");
    let deprecated = ok(&["api", "deprecate", &id, "--retire-on", "2099-12-31"]);
    assert_eq!(deprecated["status"], "deprecated");
    let history = ok(&["api", "history", &id]);
    assert!(history["items"].as_array().unwrap().len() >= 3, "{history}");
    p.stop().await;
}
