//! `lgsp serve` settings. Each key can come from the TOML file given by
//! `--config`, from an environment variable, or from a flag; a flag wins over
//! the environment, which wins over the file.
//!
//! | key | flag | environment | default |
//! | --- | --- | --- | --- |
//! | `data_dir` | `--data-dir` | `LGSP_DATA_DIR` | `./lgsp-data` |
//! | `listen` | `--listen` | `LGSP_LISTEN` | `127.0.0.1:8080` (data plane) |
//! | `admin_listen` | `--admin-listen` | `LGSP_ADMIN_LISTEN` | `127.0.0.1:8081` (control plane) |
//! | `tls_cert` | `--tls-cert` | `LGSP_TLS_CERT` | none: plain HTTP |
//! | `tls_key` | `--tls-key` | `LGSP_TLS_KEY` | none |
//! | `tls_client_ca` | `--tls-client-ca` | `LGSP_TLS_CLIENT_CA` | none: the data plane asks for no client certificate (systems cannot be bound to one) |
//! | `instance` | `--instance` | `LGSP_INSTANCE` | `VN` (first part of system ids) |
//! | `public_url` | `--public-url` | `LGSP_PUBLIC_URL` | `http(s)://{listen}` (token issuer) |
//! | `token_ttl_secs` | `--token-ttl-secs` | `LGSP_TOKEN_TTL_SECS` | `3600` |
//! | `max_body_bytes` | `--max-body-bytes` | `LGSP_MAX_BODY_BYTES` | `10485760` (10 MiB) |
//! | `workers` | `--workers` | `LGSP_WORKERS` | one per CPU core |
//! | `operator_unit_code` | `--operator-unit-code` | `LGSP_OPERATOR_UNIT_CODE` | `000.00.13.H41` |
//! | `operator_unit_name` | `--operator-unit-name` | `LGSP_OPERATOR_UNIT_NAME` | `Sở Thông tin và Truyền thông` |
//! | `demo_upstream_listen` | `--demo-upstream-listen` | `LGSP_DEMO_UPSTREAM_LISTEN` | `127.0.0.1:8090` |
//! | `allow_loopback_callbacks` | `--allow-loopback-callbacks` | `LGSP_ALLOW_LOOPBACK_CALLBACKS` | `false` (code-list callbacks may not point at this host) |
//! | `log_origin` | `--log-origin` | `LGSP_LOG_ORIGIN` | public URL's host and path + `/log`, else `{instance}.lgsp/log` (first line of every checkpoint; set it once) |
//! | `log_checkpoint_interval_ms` | `--log-checkpoint-interval-ms` | `LGSP_LOG_CHECKPOINT_INTERVAL_MS` | `1000` (a signed checkpoint every interval while the log grows) |
//! | `log_public_entries` | `--log-public-entries` | `LGSP_LOG_PUBLIC_ENTRIES` | `false` (entry bundles, which hold the records, only through the admin API) |
//! | `body_retention_secs` | `--body-retention-secs` | `LGSP_BODY_RETENTION_SECS` | `2592000` (30 days: how long bodies of APIs that keep them are kept) |
//! | `onboarding_due_days` | `--onboarding-due-days` | `LGSP_ONBOARDING_DUE_DAYS` | `2` (working days a provider has to answer a subscription request) |
//! | `health_check_interval_ms` | `--health-check-interval-ms` | `LGSP_HEALTH_CHECK_INTERVAL_MS` | `5000` (how often upstreams with a `health_path` are checked) |
//! | `notice_retry_base_ms` | `--notice-retry-base-ms` | `LGSP_NOTICE_RETRY_BASE_MS` | `5000` (first retry of a code-list notice; doubles up to 1 h) |

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

#[derive(Debug, Clone, Args, Default)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (flags and environment win over it).
    #[arg(long, env = "LGSP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the database, keys and admin token live [default: ./lgsp-data].
    #[arg(long, env = "LGSP_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Data-plane address (tokens, gateway) [default: 127.0.0.1:8080].
    #[arg(long, env = "LGSP_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Control-plane address (admin API, health) [default: 127.0.0.1:8081].
    #[arg(long, env = "LGSP_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// PEM certificate chain; with --tls-key, both planes speak HTTPS.
    #[arg(long, env = "LGSP_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "LGSP_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates whose client certificates the data plane accepts
    /// (mutual TLS for systems bound to a certificate); needs --tls-cert.
    #[arg(long, env = "LGSP_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Instance name, the first part of every system's global id [default: VN].
    #[arg(long, env = "LGSP_INSTANCE")]
    pub instance: Option<String>,
    /// Public base URL of the data plane, used as the token issuer.
    #[arg(long, env = "LGSP_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Lifetime of access tokens in seconds [default: 3600].
    #[arg(long, env = "LGSP_TOKEN_TTL_SECS")]
    pub token_ttl_secs: Option<i64>,
    /// Largest request body the gateway forwards [default: 10485760].
    #[arg(long, env = "LGSP_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<u64>,
    /// Worker threads [default: one per CPU core].
    #[arg(long, env = "LGSP_WORKERS")]
    pub workers: Option<usize>,
    /// Agency code of the unit that operates the platform (created at first start).
    #[arg(long, env = "LGSP_OPERATOR_UNIT_CODE")]
    pub operator_unit_code: Option<String>,
    /// Name of the operator unit.
    #[arg(long, env = "LGSP_OPERATOR_UNIT_NAME")]
    pub operator_unit_name: Option<String>,
    /// Load the demo province into an empty store and start its sample providers.
    #[arg(long, env = "LGSP_DEMO")]
    pub demo: bool,
    /// Where the demo's sample providers listen [default: 127.0.0.1:8090].
    #[arg(long, env = "LGSP_DEMO_UPSTREAM_LISTEN")]
    pub demo_upstream_listen: Option<SocketAddr>,
    /// Wait before the first retry of an unacknowledged code-list notice, in ms;
    /// it doubles at each retry, up to an hour [default: 5000].
    #[arg(long, env = "LGSP_NOTICE_RETRY_BASE_MS")]
    pub notice_retry_base_ms: Option<u64>,
    /// Let systems register code-list callbacks on loopback addresses (tests, single-host set-ups).
    #[arg(long, env = "LGSP_ALLOW_LOOPBACK_CALLBACKS")]
    pub allow_loopback_callbacks: bool,
    /// Name of the evidence log, the first line of every checkpoint; set it once
    /// [default: the public URL's host and path + /log, else {instance}.lgsp/log].
    #[arg(long, env = "LGSP_LOG_ORIGIN")]
    pub log_origin: Option<String>,
    /// While the log grows, a signed checkpoint every interval; no record waits
    /// longer for one covering it, in ms [default: 1000].
    #[arg(long, env = "LGSP_LOG_CHECKPOINT_INTERVAL_MS")]
    pub log_checkpoint_interval_ms: Option<u64>,
    /// Serve entry bundles (the call records) on the data plane without a token.
    #[arg(long, env = "LGSP_LOG_PUBLIC_ENTRIES")]
    pub log_public_entries: bool,
    /// How long the bodies of APIs that keep them are kept, in seconds [default: 2592000].
    #[arg(long, env = "LGSP_BODY_RETENTION_SECS")]
    pub body_retention_secs: Option<u64>,
    /// Working days a provider has to answer a subscription request [default: 2].
    #[arg(long, env = "LGSP_ONBOARDING_DUE_DAYS")]
    pub onboarding_due_days: Option<u32>,
    /// How often upstreams with a health path are checked, in ms [default: 5000].
    #[arg(long, env = "LGSP_HEALTH_CHECK_INTERVAL_MS")]
    pub health_check_interval_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    admin_listen: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    instance: Option<String>,
    public_url: Option<String>,
    token_ttl_secs: Option<i64>,
    max_body_bytes: Option<u64>,
    workers: Option<usize>,
    operator_unit_code: Option<String>,
    operator_unit_name: Option<String>,
    demo: Option<bool>,
    demo_upstream_listen: Option<SocketAddr>,
    notice_retry_base_ms: Option<u64>,
    allow_loopback_callbacks: Option<bool>,
    log_origin: Option<String>,
    log_checkpoint_interval_ms: Option<u64>,
    log_public_entries: Option<bool>,
    body_retention_secs: Option<u64>,
    onboarding_due_days: Option<u32>,
    health_check_interval_ms: Option<u64>,
}

/// The settings in force, after file, environment and flags are merged.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub tls_client_ca: Option<PathBuf>,
    pub instance: String,
    pub public_url: Option<String>,
    pub token_ttl_secs: i64,
    pub max_body_bytes: u64,
    pub workers: Option<usize>,
    pub operator_unit_code: String,
    pub operator_unit_name: String,
    pub demo: bool,
    pub demo_upstream_listen: SocketAddr,
    pub notice_retry_base_ms: u64,
    pub allow_loopback_callbacks: bool,
    pub log_origin: String,
    /// Whether the operator named the log (else `log_origin` is derived).
    pub log_origin_set: bool,
    pub log_checkpoint_interval_ms: u64,
    pub log_public_entries: bool,
    pub body_retention_secs: u64,
    pub onboarding_due_days: u32,
    pub health_check_interval_ms: u64,
}

impl Config {
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let tls = match (
            args.tls_cert.clone().or(file.tls_cert),
            args.tls_key.clone().or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => bail!(
                "tls_cert and tls_key go together: give both (--tls-cert, --tls-key) or neither"
            ),
        };
        let tls_client_ca = args.tls_client_ca.clone().or(file.tls_client_ca);
        if tls_client_ca.is_some() && tls.is_none() {
            bail!("tls_client_ca needs tls_cert and tls_key: mutual TLS is TLS first");
        }
        let token_ttl_secs = args.token_ttl_secs.or(file.token_ttl_secs).unwrap_or(3600);
        if !(60..=86_400).contains(&token_ttl_secs) {
            bail!("token_ttl_secs must be 60 to 86400 seconds, not {token_ttl_secs}");
        }
        let max_body_bytes = args
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(lgsp_gateway::DEFAULT_MAX_BODY);
        if max_body_bytes == 0 {
            bail!("max_body_bytes must be above 0");
        }
        let workers = args.workers.or(file.workers);
        if workers == Some(0) {
            bail!("workers must be 1 or more");
        }
        let operator_unit_code = args
            .operator_unit_code
            .clone()
            .or(file.operator_unit_code)
            .unwrap_or_else(|| "000.00.13.H41".to_owned());
        lgsp_registry::validate::agency_code("operator_unit_code", &operator_unit_code)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let instance = args
            .instance
            .clone()
            .or(file.instance)
            .unwrap_or_else(|| "VN".to_owned());
        if instance.is_empty() || instance.contains(':') || instance.contains(char::is_whitespace) {
            bail!("instance must be a non-empty name without ':' or spaces, not {instance:?}");
        }
        let public_url = args.public_url.clone().or(file.public_url);
        if let Some(url) = &public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("public_url must start with http:// or https://, not {url:?}");
        }
        let notice_retry_base_ms = args
            .notice_retry_base_ms
            .or(file.notice_retry_base_ms)
            .unwrap_or(5000);
        if !(10..=3_600_000).contains(&notice_retry_base_ms) {
            bail!("notice_retry_base_ms must be 10 to 3600000, not {notice_retry_base_ms}");
        }
        let log_origin_set = args.log_origin.is_some() || file.log_origin.is_some();
        let log_origin = match args.log_origin.clone().or(file.log_origin) {
            Some(origin) => origin,
            None => match &public_url {
                Some(url) => {
                    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
                    format!("{}/log", rest.trim_end_matches('/'))
                }
                None => format!("{}.lgsp/log", instance.to_lowercase()),
            },
        };
        if log_origin.is_empty()
            || log_origin.contains('+')
            || log_origin
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            bail!("log_origin must be a non-empty name without spaces or '+', not {log_origin:?}");
        }
        let log_checkpoint_interval_ms = args
            .log_checkpoint_interval_ms
            .or(file.log_checkpoint_interval_ms)
            .unwrap_or(1000);
        if !(50..=3_600_000).contains(&log_checkpoint_interval_ms) {
            bail!(
                "log_checkpoint_interval_ms must be 50 to 3600000, not {log_checkpoint_interval_ms}"
            );
        }
        let body_retention_secs = args
            .body_retention_secs
            .or(file.body_retention_secs)
            .unwrap_or(30 * 86_400);
        if !(1..=100 * 365 * 86_400).contains(&body_retention_secs) {
            bail!("body_retention_secs must be 1 to 3153600000, not {body_retention_secs}");
        }
        let onboarding_due_days = args
            .onboarding_due_days
            .or(file.onboarding_due_days)
            .unwrap_or(2);
        if !(1..=60).contains(&onboarding_due_days) {
            bail!("onboarding_due_days must be 1 to 60, not {onboarding_due_days}");
        }
        let health_check_interval_ms = args
            .health_check_interval_ms
            .or(file.health_check_interval_ms)
            .unwrap_or(5000);
        if !(100..=3_600_000).contains(&health_check_interval_ms) {
            bail!(
                "health_check_interval_ms must be 100 to 3600000, not {health_check_interval_ms}"
            );
        }
        Ok(Config {
            onboarding_due_days,
            health_check_interval_ms,
            log_origin,
            log_origin_set,
            log_checkpoint_interval_ms,
            log_public_entries: args.log_public_entries || file.log_public_entries.unwrap_or(false),
            body_retention_secs,
            notice_retry_base_ms,
            allow_loopback_callbacks: args.allow_loopback_callbacks
                || file.allow_loopback_callbacks.unwrap_or(false),
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./lgsp-data")),
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or(([127, 0, 0, 1], 8080).into()),
            admin_listen: args
                .admin_listen
                .or(file.admin_listen)
                .unwrap_or(([127, 0, 0, 1], 8081).into()),
            tls,
            tls_client_ca,
            instance,
            public_url,
            token_ttl_secs,
            max_body_bytes,
            workers,
            operator_unit_code,
            operator_unit_name: args
                .operator_unit_name
                .clone()
                .or(file.operator_unit_name)
                .unwrap_or_else(|| "Sở Thông tin và Truyền thông".to_owned()),
            demo: args.demo || file.demo.unwrap_or(false),
            demo_upstream_listen: args
                .demo_upstream_listen
                .or(file.demo_upstream_listen)
                .unwrap_or(([127, 0, 0, 1], 8090).into()),
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lgsp.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nadmin_listen = \"127.0.0.1:9001\"\ninstance = \"QNA\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            ..Default::default()
        };
        let c = Config::resolve(&args).unwrap();
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.admin_listen.port(), 9001);
        assert_eq!(c.instance, "QNA");
        assert_eq!(c.data_dir, PathBuf::from("./lgsp-data"));
    }

    #[test]
    fn bad_files_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lgsp.toml");
        std::fs::write(&path, "listn = \"127.0.0.1:9000\"\n").unwrap();
        let err = Config::resolve(&ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("listn"), "{err}");
        std::fs::write(&path, "listen = \"nowhere\"\n").unwrap();
        let err = Config::resolve(&ServeArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
        let only_cert = ServeArgs {
            tls_cert: Some("c.pem".into()),
            ..Default::default()
        };
        assert!(Config::resolve(&only_cert).is_err());
    }
}
