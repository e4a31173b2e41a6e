//! Command-line client of API management: lifecycle and specifications,
//! catalogue, data standards, plans, onboarding requests, holidays, network
//! rules, API keys and tickets. Each command is one admin API call.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{ClientArgs, call, segment, send};

/// API commands beyond `add` and `list`.
#[derive(Debug, Subcommand)]
pub enum ApiManage {
    /// Show one API.
    Show {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
    /// Change an API's description, upstreams, timeout or default plan.
    Update {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// A tag; repeat for several (replaces the tags).
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long)]
        contact: Option<String>,
        #[arg(long)]
        upstream: Option<String>,
        /// A further upstream; repeat for several (replaces them).
        #[arg(long = "extra-upstream")]
        extra_upstreams: Vec<String>,
        /// Remove every further upstream.
        #[arg(long, conflicts_with = "extra_upstreams")]
        no_extra_upstreams: bool,
        /// Path of the active health check, e.g. /health.
        #[arg(long)]
        health_path: Option<String>,
        #[arg(long)]
        timeout_ms: Option<i64>,
        #[arg(long)]
        default_plan: Option<String>,
    },
    /// Publish a draft (or a deprecated API again): it takes calls.
    Publish {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
    /// Deprecate: calls still work, with Deprecation and Sunset headers, until the retirement day.
    Deprecate {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
        /// First day it no longer takes calls (YYYY-MM-DD, Vietnam time).
        #[arg(long)]
        retire_on: String,
    },
    /// Retire: no more calls (410 Gone).
    Retire {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
    /// Who changed the API, and when.
    History {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
    /// Upload its specification: OpenAPI 3.0/3.1 (.json, .yaml, .yml) or WSDL (.wsdl, .xml).
    Spec {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
        file: PathBuf,
    },
    /// Health and circuit breaker of each upstream.
    Upstreams {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
    /// Require request bodies to follow data standards; without --rule, show the rules.
    Validations {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
        /// "METHOD PATH STANDARD/VERSION", e.g. "POST /khaisinh khaisinh/1.0"; repeat for several.
        #[arg(long = "rule")]
        rules: Vec<String>,
        /// Remove every rule.
        #[arg(long, conflicts_with = "rules")]
        clear: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ManageCommand {
    /// Search published APIs and data standards (diacritics and case ignored).
    Catalog {
        #[command(flatten)]
        client: ClientArgs,
        /// Words to look for in names, descriptions, units and tags.
        #[arg(default_value = "")]
        query: String,
        /// Drafts and retired APIs too.
        #[arg(long)]
        all: bool,
    },
    /// Data standards: JSON Schema documents with versions.
    #[command(subcommand)]
    Standard(StandardCommand),
    /// Plans: a rate with burst, and daily and monthly quotas.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Subscription requests, their approval or refusal.
    #[command(subcommand)]
    Request(RequestCommand),
    /// Public holidays, which do not count as working days for request deadlines.
    #[command(subcommand)]
    Holiday(HolidayCommand),
    /// Networks a system may call from.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Client certificates: a system bound to one calls only over mutual TLS with it.
    #[command(subcommand)]
    Cert(CertCommand),
    /// API keys: a second credential of a system, sent in the `apikey` header.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Feedback tickets on APIs.
    #[command(subcommand)]
    Ticket(TicketCommand),
}

#[derive(Debug, Subcommand)]
pub enum StandardCommand {
    /// Register a version of a data standard from a JSON Schema file.
    Add {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        id: String,
        #[arg(long)]
        version: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        owner_unit: Option<String>,
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// The JSON Schema document.
        #[arg(long)]
        schema: PathBuf,
    },
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    Show {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
        version: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Create a plan.
    Add {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        plan: PlanArgs,
    },
    /// Replace a plan's limits; they apply from the next call.
    Update {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        plan: PlanArgs,
    },
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[arg(long)]
    id: String,
    #[arg(long)]
    name: String,
    /// Requests per second.
    #[arg(long)]
    rate: i64,
    /// Requests allowed at once above the rate [default: the rate].
    #[arg(long)]
    burst: Option<i64>,
    #[arg(long)]
    per_day: Option<i64>,
    #[arg(long)]
    per_month: Option<i64>,
}

#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// File a request for a consumer system.
    Add {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        consumer: String,
        /// {context}/{version}
        #[arg(long)]
        api: String,
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        legal_basis: String,
        #[arg(long)]
        plan: Option<String>,
    },
    /// List requests, newest first.
    List {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long, value_parser = ["pending", "approved", "refused", "withdrawn"])]
        status: Option<String>,
        /// Only pending requests past their due time.
        #[arg(long)]
        overdue: bool,
        #[arg(long)]
        consumer: Option<String>,
        #[arg(long)]
        provider: Option<String>,
    },
    /// A request and its history.
    Show {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
    /// Approve: the subscription exists from now on.
    Approve {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
        #[arg(long)]
        plan: Option<String>,
    },
    /// Refuse, saying why.
    Refuse {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum HolidayCommand {
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    Add {
        #[command(flatten)]
        client: ClientArgs,
        /// YYYY-MM-DD
        day: String,
        #[arg(long)]
        name: String,
    },
    Remove {
        #[command(flatten)]
        client: ClientArgs,
        day: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Replace a system's networks (IPv4 or IPv6 CIDR); none: it may call from anywhere.
    Set {
        #[command(flatten)]
        client: ClientArgs,
        system: String,
        cidrs: Vec<String>,
    },
    List {
        #[command(flatten)]
        client: ClientArgs,
        system: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Bind a system to its certificate (a PEM file holding that one certificate).
    Bind {
        #[command(flatten)]
        client: ClientArgs,
        system: String,
        file: std::path::PathBuf,
    },
    /// Show the certificate a system is bound to.
    Show {
        #[command(flatten)]
        client: ClientArgs,
        system: String,
    },
    /// Lift the binding: the system calls without a certificate again.
    Unbind {
        #[command(flatten)]
        client: ClientArgs,
        system: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApikeyCommand {
    /// Create a key; it is printed once and never again.
    Create {
        #[command(flatten)]
        client: ClientArgs,
        system: String,
        #[arg(long)]
        name: String,
    },
    List {
        #[command(flatten)]
        client: ClientArgs,
        system: String,
        #[arg(long)]
        all: bool,
    },
    /// Revoke a key by its id: refused from the next call on.
    Revoke {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TicketCommand {
    List {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long, value_parser = ["open", "answered", "closed"])]
        status: Option<String>,
    },
    Show {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
    /// Answer as the operator.
    Reply {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
        #[arg(long)]
        body: String,
        #[arg(long)]
        close: bool,
    },
}

fn api_path(id: &str, rest: &str) -> String {
    format!("/api/v1/apis/{}{rest}", segment(id))
}

pub async fn api(command: ApiManage) -> anyhow::Result<Value> {
    match command {
        ApiManage::Show { client, id } => {
            call(&client, Method::GET, &api_path(&id, ""), None).await
        }
        ApiManage::Update {
            client,
            id,
            name,
            description,
            tags,
            contact,
            upstream,
            extra_upstreams,
            no_extra_upstreams,
            health_path,
            timeout_ms,
            default_plan,
        } => {
            let mut body = serde_json::Map::new();
            let mut put = |k: &str, v: Value| {
                body.insert(k.to_owned(), v);
            };
            if let Some(v) = name {
                put("name", json!(v));
            }
            if let Some(v) = description {
                put("description", json!(v));
            }
            if !tags.is_empty() {
                put("tags", json!(tags));
            }
            if let Some(v) = contact {
                put("contact", json!(v));
            }
            if let Some(v) = upstream {
                put("upstream_url", json!(v));
            }
            if !extra_upstreams.is_empty() || no_extra_upstreams {
                put("extra_upstreams", json!(extra_upstreams));
            }
            if let Some(v) = health_path {
                put(
                    "health_path",
                    if v.is_empty() { Value::Null } else { json!(v) },
                );
            }
            if let Some(v) = timeout_ms {
                put("timeout_ms", json!(v));
            }
            if let Some(v) = default_plan {
                put(
                    "default_plan",
                    if v.is_empty() { Value::Null } else { json!(v) },
                );
            }
            call(
                &client,
                Method::PATCH,
                &api_path(&id, ""),
                Some(Value::Object(body)),
            )
            .await
        }
        ApiManage::Publish { client, id } => {
            call(&client, Method::POST, &api_path(&id, "/publish"), None).await
        }
        ApiManage::Deprecate {
            client,
            id,
            retire_on,
        } => {
            call(
                &client,
                Method::POST,
                &api_path(&id, "/deprecate"),
                Some(json!({ "retire_on": retire_on })),
            )
            .await
        }
        ApiManage::Retire { client, id } => {
            call(&client, Method::POST, &api_path(&id, "/retire"), None).await
        }
        ApiManage::History { client, id } => {
            call(&client, Method::GET, &api_path(&id, "/history"), None).await
        }
        ApiManage::Upstreams { client, id } => {
            call(&client, Method::GET, &api_path(&id, "/upstreams"), None).await
        }
        ApiManage::Spec { client, id, file } => {
            let content_type = match file
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("json") => "application/json",
                Some("yaml" | "yml") => "application/yaml",
                Some("wsdl" | "xml") => "application/wsdl+xml",
                _ => anyhow::bail!(
                    "{}: a specification ends in .json, .yaml, .yml, .wsdl or .xml",
                    file.display()
                ),
            };
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            send(&client, Method::PUT, &api_path(&id, "/spec"), |req| {
                req.header(reqwest::header::CONTENT_TYPE, content_type)
                    .body(bytes)
            })
            .await
        }
        ApiManage::Validations {
            client,
            id,
            rules,
            clear,
        } => {
            if rules.is_empty() && !clear {
                return call(&client, Method::GET, &api_path(&id, "/validations"), None).await;
            }
            let mut items = Vec::new();
            for rule in &rules {
                let parts: Vec<&str> = rule.split_whitespace().collect();
                let [method, path, standard] = parts[..] else {
                    anyhow::bail!("--rule {rule:?}: write \"METHOD PATH STANDARD/VERSION\"");
                };
                let Some((standard, version)) = standard.split_once('/') else {
                    anyhow::bail!("--rule {rule:?}: the standard is written ID/VERSION");
                };
                items.push(json!({"method": method, "path": path, "standard": standard, "version": version}));
            }
            call(
                &client,
                Method::PUT,
                &api_path(&id, "/validations"),
                Some(json!({ "items": items })),
            )
            .await
        }
    }
}

pub async fn manage(command: ManageCommand) -> anyhow::Result<Value> {
    match command {
        ManageCommand::Catalog { client, query, all } => {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("q", &query);
            if all {
                q.append_pair("all", "true");
            }
            call(
                &client,
                Method::GET,
                &format!("/api/v1/catalog?{}", q.finish()),
                None,
            )
            .await
        }
        ManageCommand::Standard(StandardCommand::Add {
            client,
            id,
            version,
            name,
            description,
            owner_unit,
            tags,
            schema,
        }) => {
            let text = std::fs::read_to_string(&schema)
                .with_context(|| format!("cannot read {}", schema.display()))?;
            let schema: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", schema.display()))?;
            let body = json!({"id": id, "version": version, "name": name, "description": description,
                              "owner_unit": owner_unit, "tags": tags, "schema": schema});
            call(&client, Method::POST, "/api/v1/standards", Some(body)).await
        }
        ManageCommand::Standard(StandardCommand::List { client }) => {
            call(&client, Method::GET, "/api/v1/standards", None).await
        }
        ManageCommand::Standard(StandardCommand::Show {
            client,
            id,
            version,
        }) => {
            let path = format!("/api/v1/standards/{}/{}", segment(&id), segment(&version));
            call(&client, Method::GET, &path, None).await
        }
        ManageCommand::Plan(PlanCommand::Add { client, plan }) => {
            call(
                &client,
                Method::POST,
                "/api/v1/plans",
                Some(plan_body(&plan)),
            )
            .await
        }
        ManageCommand::Plan(PlanCommand::Update { client, plan }) => {
            let path = format!("/api/v1/plans/{}", segment(&plan.id));
            call(&client, Method::PUT, &path, Some(plan_body(&plan))).await
        }
        ManageCommand::Plan(PlanCommand::List { client }) => {
            call(&client, Method::GET, "/api/v1/plans", None).await
        }
        ManageCommand::Request(RequestCommand::Add {
            client,
            consumer,
            api,
            purpose,
            legal_basis,
            plan,
        }) => {
            let body = json!({"consumer_system": consumer, "api": api, "purpose": purpose,
                              "legal_basis": legal_basis, "plan": plan});
            call(
                &client,
                Method::POST,
                "/api/v1/subscription-requests",
                Some(body),
            )
            .await
        }
        ManageCommand::Request(RequestCommand::List {
            client,
            status,
            overdue,
            consumer,
            provider,
        }) => {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in [
                ("status", status),
                ("consumer_system", consumer),
                ("provider_system", provider),
            ] {
                if let Some(v) = v {
                    q.append_pair(k, &v);
                }
            }
            if overdue {
                q.append_pair("overdue", "true");
            }
            let path = format!("/api/v1/subscription-requests?{}", q.finish());
            call(&client, Method::GET, &path, None).await
        }
        ManageCommand::Request(RequestCommand::Show { client, id }) => {
            let path = format!("/api/v1/subscription-requests/{}", segment(&id));
            call(&client, Method::GET, &path, None).await
        }
        ManageCommand::Request(RequestCommand::Approve { client, id, plan }) => {
            let path = format!("/api/v1/subscription-requests/{}/approve", segment(&id));
            call(&client, Method::POST, &path, Some(json!({ "plan": plan }))).await
        }
        ManageCommand::Request(RequestCommand::Refuse { client, id, reason }) => {
            let path = format!("/api/v1/subscription-requests/{}/refuse", segment(&id));
            call(
                &client,
                Method::POST,
                &path,
                Some(json!({ "reason": reason })),
            )
            .await
        }
        ManageCommand::Holiday(HolidayCommand::List { client }) => {
            call(&client, Method::GET, "/api/v1/holidays", None).await
        }
        ManageCommand::Holiday(HolidayCommand::Add { client, day, name }) => {
            let path = format!("/api/v1/holidays/{}", segment(&day));
            call(&client, Method::PUT, &path, Some(json!({ "name": name }))).await
        }
        ManageCommand::Holiday(HolidayCommand::Remove { client, day }) => {
            let path = format!("/api/v1/holidays/{}", segment(&day));
            call(&client, Method::DELETE, &path, None).await
        }
        ManageCommand::Network(NetworkCommand::Set {
            client,
            system,
            cidrs,
        }) => {
            let items: Vec<Value> = cidrs.iter().map(|c| json!({ "cidr": c })).collect();
            let path = format!("/api/v1/systems/{}/networks", segment(&system));
            call(&client, Method::PUT, &path, Some(json!({ "items": items }))).await
        }
        ManageCommand::Network(NetworkCommand::List { client, system }) => {
            let path = format!("/api/v1/systems/{}/networks", segment(&system));
            call(&client, Method::GET, &path, None).await
        }
        ManageCommand::Cert(CertCommand::Bind {
            client,
            system,
            file,
        }) => {
            let pem = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let path = format!("/api/v1/systems/{}/client-certificate", segment(&system));
            call(
                &client,
                Method::PUT,
                &path,
                Some(json!({ "certificate": pem })),
            )
            .await
        }
        ManageCommand::Cert(CertCommand::Show { client, system }) => {
            let path = format!("/api/v1/systems/{}/client-certificate", segment(&system));
            call(&client, Method::GET, &path, None).await
        }
        ManageCommand::Cert(CertCommand::Unbind { client, system }) => {
            let path = format!("/api/v1/systems/{}/client-certificate", segment(&system));
            call(&client, Method::DELETE, &path, None).await
        }
        ManageCommand::Apikey(ApikeyCommand::Create {
            client,
            system,
            name,
        }) => {
            let path = format!("/api/v1/systems/{}/api-keys", segment(&system));
            call(&client, Method::POST, &path, Some(json!({ "name": name }))).await
        }
        ManageCommand::Apikey(ApikeyCommand::List {
            client,
            system,
            all,
        }) => {
            let path = format!(
                "/api/v1/systems/{}/api-keys{}",
                segment(&system),
                if all { "?include_revoked=true" } else { "" }
            );
            call(&client, Method::GET, &path, None).await
        }
        ManageCommand::Apikey(ApikeyCommand::Revoke { client, id }) => {
            let path = format!("/api/v1/api-keys/{}", segment(&id));
            call(&client, Method::DELETE, &path, None).await
        }
        ManageCommand::Ticket(TicketCommand::List { client, status }) => {
            let path = match status {
                Some(s) => format!("/api/v1/tickets?status={}", segment(&s)),
                None => "/api/v1/tickets".to_owned(),
            };
            call(&client, Method::GET, &path, None).await
        }
        ManageCommand::Ticket(TicketCommand::Show { client, id }) => {
            let path = format!("/api/v1/tickets/{}", segment(&id));
            call(&client, Method::GET, &path, None).await
        }
        ManageCommand::Ticket(TicketCommand::Reply {
            client,
            id,
            body,
            close,
        }) => {
            let path = format!("/api/v1/tickets/{}/messages", segment(&id));
            call(
                &client,
                Method::POST,
                &path,
                Some(json!({ "body": body, "close": close })),
            )
            .await
        }
    }
}

fn plan_body(p: &PlanArgs) -> Value {
    json!({"id": p.id, "name": p.name, "rate": p.rate, "burst": p.burst,
           "per_day": p.per_day, "per_month": p.per_month})
}
