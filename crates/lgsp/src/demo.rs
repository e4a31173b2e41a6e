//! The demo province (`serve --demo`): units, systems, three sample APIs
//! served by small providers on loopback, subscriptions, and a tour to paste.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, RawQuery};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lgsp_auth::Secret;
use lgsp_registry::{NewApi, NewSystem, NewUnit, Registry};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Config;

const PROVINCE: &str = "000.00.00.H41";
const JUSTICE: &str = "000.00.20.H41";
const PLANNING: &str = "000.00.09.H41";
const COMMUNE: &str = "000.21.33.H41";

/// A demo system whose credentials go into the demo's env file.
struct DemoSystem {
    unit: &'static str,
    code: &'static str,
    name: &'static str,
    env: &'static str,
}

const SYSTEMS: [DemoSystem; 4] = [
    DemoSystem {
        unit: COMMUNE,
        code: "motcua",
        name: "Phần mềm một cửa điện tử phường Tân Thạnh",
        env: "MOTCUA",
    },
    DemoSystem {
        unit: JUSTICE,
        code: "hotich",
        name: "Phần mềm quản lý hộ tịch",
        env: "HOTICH",
    },
    DemoSystem {
        unit: PLANNING,
        code: "dkkd",
        name: "Hệ thống thông tin đăng ký doanh nghiệp",
        env: "DKKD",
    },
    DemoSystem {
        unit: "",
        code: "congdvc",
        name: "Cổng dịch vụ công tỉnh",
        env: "CONGDVC",
    },
];

pub fn env_path(data_dir: &Path) -> PathBuf {
    data_dir.join("demo-clients.env")
}

/// Loads the demo into an empty store (or finds it there), starts its
/// providers, and makes sure the credentials file exists.
pub async fn prepare(registry: &Registry, config: &Config) -> anyhow::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(config.demo_upstream_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (demo_upstream_listen)",
                config.demo_upstream_listen
            )
        })?;
    let upstream_addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, providers()).await {
            tracing::error!(error = %e, "demo providers stopped");
        }
    });

    let store = registry.store();
    let has_demo = store.unit(PROVINCE).await?.is_some();
    let other_units = store
        .units()
        .await?
        .iter()
        .any(|u| u.code != config.operator_unit_code);
    let env_file = env_path(&config.data_dir);
    if !has_demo && other_units {
        anyhow::bail!(
            "--demo loads the demo province into an empty store, but {} already holds units; \
             start without --demo or with a fresh --data-dir",
            config.data_dir.display()
        );
    }
    if !has_demo {
        load(registry, config, upstream_addr)
            .await
            .context("loading the demo data")?;
        tracing::info!("demo province loaded");
    } else {
        // Providers listen where they are told this time; point the APIs there.
        for (context, path) in [
            ("hotich", "hotich"),
            ("lylichtuphap", "lylich"),
            ("dkkd", "dkkd"),
        ] {
            if let Some(api) = store.api_by_name(context, "1.0").await? {
                store
                    .set_api_upstream(&api.id, &format!("http://{upstream_addr}/{path}"))
                    .await?;
            }
        }
        registry.reload().await?;
        if !env_file.exists() {
            // The secrets were shown once; without the file, new ones are made.
            let mut secrets = Vec::new();
            for s in &SYSTEMS {
                let unit = if s.unit.is_empty() {
                    config.operator_unit_code.as_str()
                } else {
                    s.unit
                };
                if let Some(sys) = store
                    .systems()
                    .await?
                    .into_iter()
                    .find(|x| x.unit_code == unit && x.code == s.code)
                {
                    let (sys, secret) = registry.rotate_secret(&sys.id).await?;
                    secrets.push((s.env, sys.id, sys.client_id, secret));
                }
            }
            write_env(&env_file, &secrets)?;
        }
    }
    Ok(task)
}

async fn load(registry: &Registry, config: &Config, upstream: SocketAddr) -> anyhow::Result<()> {
    let store = registry.store();
    let unit = |code: &str, name: &str, parent: Option<&str>| NewUnit {
        code: code.to_owned(),
        name: name.to_owned(),
        parent_code: parent.map(str::to_owned),
    };
    registry
        .add_unit(unit(PROVINCE, "Ủy ban nhân dân tỉnh Quảng Nam", None))
        .await?;
    store
        .set_unit_parent(&config.operator_unit_code, PROVINCE)
        .await?;
    registry
        .add_unit(unit(JUSTICE, "Sở Tư pháp", Some(PROVINCE)))
        .await?;
    registry
        .add_unit(unit(PLANNING, "Sở Kế hoạch và Đầu tư", Some(PROVINCE)))
        .await?;
    registry
        .add_unit(unit(
            COMMUNE,
            "Ủy ban nhân dân phường Tân Thạnh",
            Some(PROVINCE),
        ))
        .await?;

    let mut secrets: Vec<(&str, String, String, Secret)> = Vec::new();
    for s in &SYSTEMS {
        let unit_code = if s.unit.is_empty() {
            config.operator_unit_code.clone()
        } else {
            s.unit.to_owned()
        };
        let (system, secret) = registry
            .add_system(
                NewSystem {
                    unit_code,
                    code: s.code.to_owned(),
                    name: s.name.to_owned(),
                },
                false,
            )
            .await?;
        secrets.push((s.env, system.id, system.client_id, secret));
    }
    let id = |env: &str| {
        secrets
            .iter()
            .find(|s| s.0 == env)
            .map(|s| s.1.clone())
            .unwrap_or_default()
    };

    for (day, name) in HOLIDAYS {
        registry.put_holiday(day, name).await?;
    }
    registry
        .add_plan(lgsp_registry::NewPlan {
            id: "coban".to_owned(),
            name: "Cơ bản".to_owned(),
            rate: 20,
            burst: Some(40),
            per_day: Some(20_000),
            per_month: Some(500_000),
        })
        .await?;
    let api = |provider: &str, name: &str, context: &str, path: &str, protocol: &str| NewApi {
        provider_system: provider.to_owned(),
        name: name.to_owned(),
        context: context.to_owned(),
        version: "1.0".to_owned(),
        upstream_url: format!("http://{upstream}/{path}"),
        protocol: protocol.to_owned(),
        timeout_ms: Some(10_000),
        shared_by_default: false,
        keep_bodies: false,
        status: Some("published".to_owned()),
        description: format!("{name}: dữ liệu dùng chung của tỉnh, cung cấp qua LGSP"),
        tags: vec![context.to_owned()],
        contact: "lgsp@quangnam.gov.vn".to_owned(),
        extra_upstreams: Vec::new(),
        health_path: None,
        default_plan: Some("coban".to_owned()),
    };
    registry
        .add_api(api(
            &id("HOTICH"),
            "Tra cứu khai sinh",
            "hotich",
            "hotich",
            "rest",
        ))
        .await?;
    registry
        .add_api(api(
            &id("HOTICH"),
            "Lý lịch tư pháp",
            "lylichtuphap",
            "lylich",
            "rest",
        ))
        .await?;
    registry
        .add_api(api(
            &id("DKKD"),
            "Tra cứu doanh nghiệp (SOAP)",
            "dkkd",
            "dkkd",
            "soap",
        ))
        .await?;

    registry
        .subscribe(&id("MOTCUA"), "hotich/1.0", None)
        .await?;
    registry.subscribe(&id("MOTCUA"), "dkkd/1.0", None).await?;
    registry
        .subscribe(&id("CONGDVC"), "hotich/1.0", None)
        .await?;
    registry
        .subscribe(&id("CONGDVC"), "lylichtuphap/1.0", None)
        .await?;

    write_env(&env_path(&config.data_dir), &secrets)
}

fn write_env(path: &Path, secrets: &[(&str, String, String, Secret)]) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(
        file,
        "# Credentials of the demo systems (shown once; keep this file private)."
    )?;
    for (env, id, client_id, secret) in secrets {
        writeln!(file, "{env}_SYSTEM_ID={id}")?;
        writeln!(file, "{env}_CLIENT_ID={client_id}")?;
        writeln!(file, "{env}_CLIENT_SECRET={}", secret.expose())?;
    }
    file.sync_all()?;
    Ok(())
}

/// The copy-paste tour printed at start.
pub fn tour(data_dir: &Path, data: &str, admin: &str) -> String {
    let env = env_path(data_dir);
    let token_file = crate::platform::admin_token_path(data_dir);
    let grab = "sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/'";
    format!(
        "\
Demo ready. Paste these lines into a shell:

  . {env}
  # 1. The ward's one-stop-shop system gets a token (OAuth2 client credentials)
  TOKEN=$(curl -s -u \"$MOTCUA_CLIENT_ID:$MOTCUA_CLIENT_SECRET\" -d grant_type=client_credentials {data}/token | {grab})
  # 2. It reads the shared code list: what was ward 20335 on 30 June 2025, and what is it now?
  curl -s -H \"Authorization: Bearer $TOKEN\" '{data}/danhmuc/1.0/lists/dvhc/items/20335?at=2025-06-30'
  curl -s -H \"Authorization: Bearer $TOKEN\" '{data}/danhmuc/1.0/lists/dvhc/items/20335?at=2025-07-01'
  #    search without diacritics: \"hoa huong\" finds \"Phường Hòa Hương\"
  curl -s -H \"Authorization: Bearer $TOKEN\" '{data}/danhmuc/1.0/lists/dvhc/search?q=hoa+huong&at=2025-06-30'
  # 3. It calls the civil-status API of the Department of Justice (REST) and the business register (SOAP)
  curl -s -i -H \"Authorization: Bearer $TOKEN\" {data}/hotich/1.0/khaisinh/KS-2025-000123
  curl -s -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: text/xml; charset=utf-8' \\
       --data '<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><traCuuDoanhNghiep><maSoDoanhNghiep>4000123456</maSoDoanhNghiep></traCuuDoanhNghiep></soap:Body></soap:Envelope>' \\
       {data}/dkkd/1.0
  # 4. It is refused an API it has no subscription to (403)
  curl -s -H \"Authorization: Bearer $TOKEN\" {data}/lylichtuphap/1.0/phieu/049099000123
  # 5. The operator sees every call in the log
  curl -s -H \"Authorization: Bearer $(cat {token})\" '{admin}/api/v1/calls?limit=5'
  # 6. Every call is evidence: the ward gets its call's bundle and anyone checks it offline
  RID=$(curl -s -o /dev/null -D - -H \"Authorization: Bearer $TOKEN\" {data}/hotich/1.0/khaisinh/KS-2025-000123 | tr -d '\\r' | sed -n 's/^x-request-id: //Ip')
  curl -s -H \"Authorization: Bearer $TOKEN\" {data}/log/evidence/$RID > evidence.json
  {exe} verify evidence.json
  curl -s {data}/log/checkpoint
",
        env = env.display(),
        token = token_file.display(),
        exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "lgsp".to_owned()),
    )
}

/// The sample providers: civil status and judicial records (REST) and the
/// business register (SOAP).
fn providers() -> Router {
    Router::new()
        .route("/hotich/khaisinh/{so}", get(birth_record))
        .route("/hotich/khaisinh", post(register_birth))
        .route("/lylich/phieu/{cccd}", get(judicial_record))
        .route("/dkkd", get(dkkd_wsdl).post(dkkd_soap))
        .route("/dkkd/", get(dkkd_wsdl).post(dkkd_soap))
}

async fn birth_record(UrlPath(so): UrlPath<String>) -> Response {
    if so.len() > 64 {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "not_found", "message": "Không có giấy khai sinh này"})),
        )
            .into_response();
    }
    Json(json!({
        "so": so,
        "ho_ten": "Nguyễn Thị Hòa",
        "gioi_tinh": "Nữ",
        "ngay_sinh": "2025-03-14",
        "dan_toc": {"ma": "01", "ten": "Kinh"},
        "noi_sinh": {"ma_xa": "20335", "ten": "Phường Tân Thạnh"},
        "co_quan_dang_ky": "Ủy ban nhân dân phường Tân Thạnh",
    }))
    .into_response()
}

async fn register_birth(body: Bytes) -> Response {
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) => (
            StatusCode::CREATED,
            Json(json!({"trang_thai": "da_tiep_nhan", "ho_so": v})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_json", "message": e.to_string()})),
        )
            .into_response(),
    }
}

async fn judicial_record(UrlPath(cccd): UrlPath<String>) -> Json<Value> {
    Json(json!({"so_cccd": cccd, "an_tich": "Không có án tích"}))
}

async fn dkkd_wsdl(RawQuery(query): RawQuery) -> Response {
    if query
        .as_deref()
        .is_some_and(|q| q.eq_ignore_ascii_case("wsdl"))
    {
        let wsdl = include_str!("demo/dkkd.wsdl");
        return ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], wsdl).into_response();
    }
    (
        StatusCode::METHOD_NOT_ALLOWED,
        "POST a SOAP envelope, or GET ?wsdl",
    )
        .into_response()
}

async fn dkkd_soap(body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    let code = between(&text, "<maSoDoanhNghiep>", "</maSoDoanhNghiep>").filter(|c| {
        !c.is_empty() && c.len() <= 14 && c.bytes().all(|b| b.is_ascii_digit() || b == b'-')
    });
    let (status, inner) = match code {
        Some(code) => (
            StatusCode::OK,
            format!(
                "<traCuuDoanhNghiepResponse xmlns=\"urn:lgsp:demo:dkkd\"><maSoDoanhNghiep>{code}</maSoDoanhNghiep>\
                 <tenDoanhNghiep>Công ty TNHH Thương mại Tam Kỳ</tenDoanhNghiep>\
                 <tinhTrang>Đang hoạt động</tinhTrang></traCuuDoanhNghiepResponse>"
            ),
        ),
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "<soap:Fault><faultcode>soap:Client</faultcode>\
             <faultstring>Thiếu hoặc sai maSoDoanhNghiep</faultstring></soap:Fault>"
                .to_owned(),
        ),
    };
    let envelope = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope \
         xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>{inner}</soap:Body></soap:Envelope>"
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        envelope,
    )
        .into_response()
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = start + text[start..].find(close)?;
    Some(text[start..end].trim())
}

/// Public holidays with a fixed date (Labour Code, art. 112); the lunar ones
/// (Tết, the Hùng Kings' day) change every year and are added by the operator.
const HOLIDAYS: &[(&str, &str)] = &[
    ("2026-01-01", "Tết Dương lịch"),
    ("2026-04-30", "Ngày Chiến thắng"),
    ("2026-05-01", "Ngày Quốc tế Lao động"),
    ("2026-09-01", "Quốc khánh (nghỉ kèm)"),
    ("2026-09-02", "Quốc khánh"),
    ("2027-01-01", "Tết Dương lịch"),
    ("2027-04-30", "Ngày Chiến thắng"),
    ("2027-05-01", "Ngày Quốc tế Lao động"),
    ("2027-09-02", "Quốc khánh"),
    ("2027-09-03", "Quốc khánh (nghỉ kèm)"),
];
