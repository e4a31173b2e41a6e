//! The command-line client of the admin API: `lgsp unit add …`, `lgsp calls …`.
//! It talks to a running `lgsp serve` over HTTP(S), like any other client.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Where the admin API is and how to authenticate to it.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Base URL of the control plane.
    #[arg(
        long,
        env = "LGSP_ADMIN_URL",
        default_value = "http://127.0.0.1:8081",
        global = true
    )]
    pub admin_url: String,
    /// The operator admin token [default: read from <data-dir>/admin-token].
    #[arg(long, env = "LGSP_ADMIN_TOKEN", global = true, hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Data directory whose admin-token file to read when no token is given.
    #[arg(
        long,
        env = "LGSP_DATA_DIR",
        default_value = "./lgsp-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// PEM certificate to trust for an HTTPS control plane (e.g. a self-signed one).
    #[arg(long, env = "LGSP_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Units (agencies), named by their electronic agency code.
    #[command(subcommand)]
    Unit(UnitCommand),
    /// Information systems of units, with their client credentials.
    #[command(subcommand)]
    System(SystemCommand),
    /// APIs that systems provide through the gateway.
    #[command(subcommand)]
    Api(ApiCommand),
    /// Which consumer system may call which API.
    #[command(subcommand)]
    Subscription(SubscriptionCommand),
    /// The call log, newest first.
    Calls(CallsArgs),
    /// Shared code lists: list them, create one, import a new version.
    #[command(subcommand)]
    Codelist(CodelistCommand),
    #[command(flatten)]
    Manage(crate::managecli::ManageCommand),
}

#[derive(Debug, Subcommand)]
pub enum CodelistCommand {
    /// List code lists and their versions.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Create an empty code list; its versions come by import.
    Create {
        #[command(flatten)]
        client: ClientArgs,
        /// Identifier, one lower-case word (e.g. tongiao).
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        name_en: String,
        /// Agency code of the owning unit.
        #[arg(long)]
        owner_unit: Option<String>,
        #[arg(long, default_value = "")]
        legal_basis: String,
    },
    /// Import a new version from a CSV, JSON or Excel (.xlsx) file.
    Import {
        #[command(flatten)]
        client: ClientArgs,
        /// The list's identifier (e.g. dvhc).
        #[arg(long)]
        list: String,
        /// The new version's name (e.g. 2026).
        #[arg(long)]
        version: String,
        /// First day of validity (YYYY-MM-DD); the previous version ends the day before.
        #[arg(long)]
        valid_from: String,
        /// First day it is no longer valid (YYYY-MM-DD), if known.
        #[arg(long)]
        valid_to: Option<String>,
        /// Only check the file and show the differences with the current version.
        #[arg(long)]
        dry_run: bool,
        /// The file; its format comes from its extension (.csv, .json, .xlsx).
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum UnitCommand {
    /// Register a unit.
    Add {
        #[command(flatten)]
        client: ClientArgs,
        /// Agency code, e.g. 000.00.20.H41.
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        /// Agency code of the parent unit.
        #[arg(long)]
        parent: Option<String>,
    },
    /// List units.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Register a system; prints its client_id and client_secret (shown only once).
    Add {
        #[command(flatten)]
        client: ClientArgs,
        /// Agency code of the owning unit.
        #[arg(long)]
        unit: String,
        /// Short code, unique within the unit (e.g. motcua).
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
    },
    /// List systems.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Replace a system's client secret; tokens issued before stop working.
    RotateSecret {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
    /// Disable a system: no new tokens, its tokens stop working.
    Disable {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
    /// Enable a disabled system.
    Enable {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Register an API served by a provider system.
    Add {
        #[command(flatten)]
        client: ClientArgs,
        /// Id of the provider system.
        #[arg(long)]
        provider: String,
        #[arg(long)]
        name: String,
        /// First path segment on the gateway, e.g. hotich.
        #[arg(long)]
        context: String,
        /// Second path segment, e.g. 1.0.
        #[arg(long)]
        version: String,
        /// Base URL of the provider, e.g. http://10.0.0.5:8080/api.
        #[arg(long)]
        upstream: String,
        #[arg(long, value_parser = ["rest", "soap"], default_value = "rest")]
        protocol: String,
        /// Upstream timeout in milliseconds [default: 30000].
        #[arg(long)]
        timeout_ms: Option<i64>,
        /// Keep request and response bodies of its calls for the retention period.
        #[arg(long)]
        keep_bodies: bool,
        /// Publish at once (otherwise it is a draft that takes no calls).
        #[arg(long)]
        publish: bool,
        #[arg(long, default_value = "")]
        description: String,
        /// A tag; repeat for several.
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long, default_value = "")]
        contact: String,
        /// A further upstream, balanced with --upstream; repeat for several.
        #[arg(long = "extra-upstream")]
        extra_upstreams: Vec<String>,
        /// Path of the active health check of every upstream, e.g. /health.
        #[arg(long)]
        health_path: Option<String>,
        /// Plan of subscriptions that name none.
        #[arg(long)]
        default_plan: Option<String>,
        /// Needs no subscription (e.g. a code list).
        #[arg(long)]
        shared_by_default: bool,
    },
    /// List APIs.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    #[command(flatten)]
    Manage(crate::managecli::ApiManage),
}

#[derive(Debug, Subcommand)]
pub enum SubscriptionCommand {
    /// Allow a consumer system to call an API.
    Add {
        #[command(flatten)]
        client: ClientArgs,
        /// Id of the consumer system.
        #[arg(long)]
        consumer: String,
        /// The API as {context}/{version}, e.g. hotich/1.0.
        #[arg(long)]
        api: String,
        /// Plan whose limits apply [default: the API's default plan].
        #[arg(long)]
        plan: Option<String>,
    },
    /// Set or remove the plan of a subscription.
    Plan {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
        /// The plan's id; omit to remove the plan.
        #[arg(long)]
        plan: Option<String>,
    },
    /// List active subscriptions.
    List {
        #[command(flatten)]
        client: ClientArgs,
        /// Include revoked subscriptions.
        #[arg(long)]
        all: bool,
    },
    /// Revoke a subscription.
    Revoke {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct CallsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Consumer system id.
    #[arg(long)]
    consumer: Option<String>,
    /// API as {context}/{version}.
    #[arg(long)]
    api: Option<String>,
    /// A status (404) or a class (4xx).
    #[arg(long)]
    status: Option<String>,
    /// RFC 3339 time, inclusive.
    #[arg(long)]
    since: Option<String>,
    /// RFC 3339 time, exclusive.
    #[arg(long)]
    until: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: i64,
    /// The `next` cursor printed by the previous page.
    #[arg(long)]
    before: Option<i64>,
}

/// Runs one client command; prints the JSON answer, or the error and exits non-zero.
pub fn run(command: Command) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match runtime.block_on(execute(command)) {
        Ok(value) => {
            print_json(&value);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lgsp: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn print_json(value: &Value) {
    if !value.is_null() {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    }
}

async fn execute(command: Command) -> anyhow::Result<Value> {
    match command {
        Command::Unit(UnitCommand::Add {
            client,
            code,
            name,
            parent,
        }) => {
            let body = json!({ "code": code, "name": name, "parent_code": parent });
            call(&client, Method::POST, "/api/v1/units", Some(body)).await
        }
        Command::Unit(UnitCommand::List { client }) => {
            call(&client, Method::GET, "/api/v1/units", None).await
        }
        Command::System(SystemCommand::Add {
            client,
            unit,
            code,
            name,
        }) => {
            let body = json!({ "unit_code": unit, "code": code, "name": name });
            call(&client, Method::POST, "/api/v1/systems", Some(body)).await
        }
        Command::System(SystemCommand::List { client }) => {
            call(&client, Method::GET, "/api/v1/systems", None).await
        }
        Command::System(SystemCommand::RotateSecret { client, id }) => {
            call(
                &client,
                Method::POST,
                &format!("/api/v1/systems/{}/secret", segment(&id)),
                None,
            )
            .await
        }
        Command::System(SystemCommand::Disable { client, id }) => {
            call(
                &client,
                Method::PATCH,
                &format!("/api/v1/systems/{}", segment(&id)),
                Some(json!({"enabled": false})),
            )
            .await
        }
        Command::System(SystemCommand::Enable { client, id }) => {
            call(
                &client,
                Method::PATCH,
                &format!("/api/v1/systems/{}", segment(&id)),
                Some(json!({"enabled": true})),
            )
            .await
        }
        Command::Api(ApiCommand::Add {
            client,
            provider,
            name,
            context,
            version,
            upstream,
            protocol,
            timeout_ms,
            keep_bodies,
            publish,
            description,
            tags,
            contact,
            extra_upstreams,
            health_path,
            default_plan,
            shared_by_default,
        }) => {
            let body = json!({
                "provider_system": provider, "name": name, "context": context, "version": version,
                "upstream_url": upstream, "protocol": protocol, "timeout_ms": timeout_ms,
                "keep_bodies": keep_bodies, "status": if publish { "published" } else { "draft" },
                "description": description, "tags": tags, "contact": contact,
                "extra_upstreams": extra_upstreams, "health_path": health_path,
                "default_plan": default_plan, "shared_by_default": shared_by_default,
            });
            call(&client, Method::POST, "/api/v1/apis", Some(body)).await
        }
        Command::Api(ApiCommand::List { client }) => {
            call(&client, Method::GET, "/api/v1/apis", None).await
        }
        Command::Api(ApiCommand::Manage(m)) => crate::managecli::api(m).await,
        Command::Manage(m) => crate::managecli::manage(m).await,
        Command::Subscription(SubscriptionCommand::Add {
            client,
            consumer,
            api,
            plan,
        }) => {
            let body = json!({ "consumer_system": consumer, "api": api, "plan": plan });
            call(&client, Method::POST, "/api/v1/subscriptions", Some(body)).await
        }
        Command::Subscription(SubscriptionCommand::Plan { client, id, plan }) => {
            call(
                &client,
                Method::PATCH,
                &format!("/api/v1/subscriptions/{}", segment(&id)),
                Some(json!({ "plan": plan })),
            )
            .await
        }
        Command::Subscription(SubscriptionCommand::List { client, all }) => {
            let path = if all {
                "/api/v1/subscriptions?include_revoked=true"
            } else {
                "/api/v1/subscriptions"
            };
            call(&client, Method::GET, path, None).await
        }
        Command::Subscription(SubscriptionCommand::Revoke { client, id }) => {
            call(
                &client,
                Method::DELETE,
                &format!("/api/v1/subscriptions/{}", segment(&id)),
                None,
            )
            .await
        }
        Command::Codelist(CodelistCommand::List { client }) => {
            call(&client, Method::GET, "/api/v1/codelists", None).await
        }
        Command::Codelist(CodelistCommand::Create {
            client,
            id,
            name,
            name_en,
            owner_unit,
            legal_basis,
        }) => {
            let body = json!({"id": id, "name": name, "name_en": name_en, "owner_unit": owner_unit, "legal_basis": legal_basis});
            call(&client, Method::POST, "/api/v1/codelists", Some(body)).await
        }
        Command::Codelist(CodelistCommand::Import {
            client,
            list,
            version,
            valid_from,
            valid_to,
            dry_run,
            file,
        }) => {
            let mut query = form_query();
            query
                .append_pair("version", &version)
                .append_pair("valid_from", &valid_from);
            if let Some(t) = &valid_to {
                query.append_pair("valid_to", t);
            }
            if dry_run {
                query.append_pair("dry_run", "true");
            }
            let path = format!(
                "/api/v1/codelists/{}/versions?{}",
                segment(&list),
                query.finish()
            );
            upload(&client, &path, &file).await
        }
        Command::Calls(args) => {
            let mut query = form_query();
            for (key, value) in [
                ("consumer", args.consumer),
                ("api", args.api),
                ("status", args.status),
                ("since", args.since),
                ("until", args.until),
                ("before", args.before.map(|b| b.to_string())),
                ("limit", Some(args.limit.to_string())),
            ] {
                if let Some(v) = value {
                    query.append_pair(key, &v);
                }
            }
            call(
                &args.client,
                Method::GET,
                &format!("/api/v1/calls?{}", query.finish()),
                None,
            )
            .await
        }
    }
}

fn form_query() -> form_urlencoded::Serializer<'static, String> {
    form_urlencoded::Serializer::new(String::new())
}

pub(crate) fn segment(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Sends a file to the admin API with a progress bar, then waits for the verdict.
async fn upload(client: &ClientArgs, path: &str, file: &std::path::Path) -> anyhow::Result<Value> {
    let content_type = match file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") => "text/csv",
        Some("json") => "application/json",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => anyhow::bail!(
            "{}: the file must end in .csv, .json or .xlsx",
            file.display()
        ),
    };
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let bar = indicatif::ProgressBar::new(bytes.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("sending");
    let total = bytes.len();
    let chunks: Vec<Vec<u8>> = bytes.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
    let progress = bar.clone();
    let stream = futures_util::stream::iter(chunks.into_iter().map(move |chunk| {
        progress.inc(chunk.len() as u64);
        if progress.position() >= progress.length().unwrap_or(0) {
            progress.set_message("checking");
        }
        Ok::<_, std::io::Error>(chunk)
    }));
    let body = reqwest::Body::wrap_stream(stream);
    let result = send(client, Method::POST, path, |req| {
        req.header(reqwest::header::CONTENT_TYPE, content_type)
            .header(reqwest::header::CONTENT_LENGTH, total)
            .body(body)
    })
    .await;
    bar.finish_and_clear();
    result
}

pub(crate) async fn call(
    client: &ClientArgs,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    send(client, method, path, |req| match body {
        Some(b) => req.json(&b),
        None => req,
    })
    .await
}

pub(crate) async fn send(
    client: &ClientArgs,
    method: Method,
    path: &str,
    with_body: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> anyhow::Result<Value> {
    let token = match &client.admin_token {
        Some(t) => t.clone(),
        None => {
            let path = client.data_dir.join("admin-token");
            std::fs::read_to_string(&path)
                .with_context(|| {
                    format!("no admin token: give --admin-token or LGSP_ADMIN_TOKEN, or make {} readable", path.display())
                })?
                .trim()
                .to_owned()
        }
    };
    let mut builder = reqwest::Client::builder();
    if let Some(ca) = &client.ca_cert {
        let pem =
            std::fs::read(ca).with_context(|| format!("cannot read --ca-cert {}", ca.display()))?;
        builder = builder.add_root_certificate(
            reqwest::Certificate::from_pem(&pem).context("--ca-cert is not a PEM certificate")?,
        );
    }
    let http = builder.build()?;
    let url = format!("{}{path}", client.admin_url.trim_end_matches('/'));
    let request = with_body(http.request(method, &url).bearer_auth(token));
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach the admin API at {}", client.admin_url))?;
    let status = response.status();
    if status == StatusCode::NO_CONTENT {
        return Ok(json!({ "status": "done" }));
    }
    let value: Value = response
        .json()
        .await
        .with_context(|| format!("the admin API answered {status} without JSON"))?;
    if !status.is_success() {
        let code = value["error"].as_str().unwrap_or("error");
        let message = value["message"].as_str().unwrap_or("no message");
        // Itemised problems (e.g. the bad rows of an import), one per line.
        for e in value["details"]["errors"].as_array().into_iter().flatten() {
            eprintln!(
                "  row {}, column {}: {}",
                e["row"],
                e["column"]
                    .as_str()
                    .filter(|c| !c.is_empty())
                    .unwrap_or("-"),
                e["message"].as_str().unwrap_or("")
            );
        }
        anyhow::bail!("{message} ({code}, HTTP {})", status.as_u16());
    }
    Ok(value)
}
