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
