//! `lgsp serve`: start-up in phases, both planes, and a clean stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use arc_swap::ArcSwap;
use lgsp_admin::AdminPlane;
use lgsp_auth::{TokenService, hash_secret, load_or_create_signing_key};
use lgsp_codes::CodeLists;
use lgsp_evidence::{CallLog, EvidenceLog};
use lgsp_gateway::DataPlane;
use lgsp_registry::Registry;
use lgsp_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::{demo, listener, platform};

/// A started platform: its bound addresses and the means to stop it.
pub struct Running {
    pub data_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub admin_token_path: std::path::PathBuf,
    /// Filled when `--demo` is on: what to paste to try the platform.
    pub demo_tour: Option<String>,
    stop: watch::Sender<bool>,
    planes: Vec<JoinHandle<()>>,
    extra: Vec<JoinHandle<()>>,
    calls: CallLog,
    call_writer: JoinHandle<()>,
    evidence: Arc<EvidenceLog>,
    checkpointer: JoinHandle<()>,
    checkpointer_stop: watch::Sender<bool>,
    store: Store,
}

pub async fn start(config: Config) -> anyhow::Result<Running> {
    let started = Instant::now();

    // 1. Storage and the platform's own records.
    platform::prepare_data_dir(&config.data_dir)?;
    let store = Store::open(&config.data_dir.join("lgsp.db"))
        .await
        .context("opening the store")?;
    let registry = Arc::new(Registry::load(store.clone(), &config.instance).await?);
    registry.set_due_working_days(config.onboarding_due_days);
    platform::seed(&store, &registry, &config).await?;

    // 2. Credentials.
    let token_path = platform::admin_token_path(&config.data_dir);
    let (admin_token, created) = platform::load_or_create_admin_token(&token_path)?;
    if created {
        tracing::info!(path = %token_path.display(), "operator admin token created");
    }
    let keys_dir = config.data_dir.join("keys");
    if !keys_dir.exists() {
        std::fs::create_dir_all(&keys_dir)?;
        std::fs::set_permissions(
            &keys_dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
    }
    let signing_key = load_or_create_signing_key(&keys_dir.join("token-ed25519.pk8"))
        .context("loading the token signing key")?;

    // 3. The demo province, if asked for (before the listeners, so its
    //    providers are up when the first call comes).
    let mut extra = Vec::new();
    if config.demo {
        extra.push(demo::prepare(&registry, &config).await?);
    }

    // 4. In-memory state of the data plane.
    let codes = Arc::new(ArcSwap::from_pointee(CodeLists::load(&store).await?));
    let (calls, call_writer) = CallLog::start(&store).context("opening the call log")?;
    let evidence = Arc::new(
        EvidenceLog::open(
            store.clone(),
            &keys_dir,
            &config.log_origin,
            config.log_origin_set,
            std::time::Duration::from_millis(config.log_checkpoint_interval_ms),
            calls.tree_size(),
        )
        .await
        .context("opening the evidence log")?
        .writing_through(calls.clone()),
    );
    if evidence.head().is_none() {
        evidence
            .checkpoint(true)
            .await
            .context("signing the first checkpoint")?;
    }
    extra.push(expire_bodies(store.clone(), config.body_retention_secs));
    let (checkpointer_stop, checkpointer_stopped) = watch::channel(false);
    let checkpointer = tokio::spawn(evidence.clone().run_checkpointer(checkpointer_stopped));
    extra.push(lgsp_codes::notices::start_deliveries(
        store.clone(),
        std::time::Duration::from_millis(config.notice_retry_base_ms),
        lgsp_registry::now_rfc3339,
    ));

    // 5. Listeners.
    // Client certificates are asked for on the data plane only.
    let (data_tls, tls) = match &config.tls {
        Some((cert, key)) => (
            Some(listener::tls_acceptor(
                cert,
                key,
                config.tls_client_ca.as_deref(),
            )?),
            Some(listener::tls_acceptor(cert, key, None)?),
        ),
        None => (None, None),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let data_listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (listen)", config.listen))?;
    let admin_listener = TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {} (admin_listen)", config.admin_listen))?;
    let data_addr = data_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    let demo_tour = config.demo.then(|| {
        demo::tour(
            &config.data_dir,
            &format!("{scheme}://{data_addr}"),
            &format!("{scheme}://{admin_addr}"),
        )
    });
    let issuer = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{data_addr}"));

    let limits = Arc::new(lgsp_gateway::limits::Limits::default());
    limits
        .seed(&store)
        .await
        .context("reading this month's calls back for the quotas")?;
    let upstreams = Arc::new(lgsp_registry::upstreams::UpstreamPool::default());
    let upstream_client = lgsp_gateway::upstream_client();
    extra.push(lgsp_gateway::start_health_checks(
        registry.clone(),
        upstreams.clone(),
        upstream_client.clone(),
        limits.clone(),
        std::time::Duration::from_millis(config.health_check_interval_ms),
    ));
    let data_plane = Arc::new(DataPlane {
        registry: registry.clone(),
        tokens: Arc::new(TokenService::new(
            &issuer,
            config.token_ttl_secs,
            &signing_key,
            &[],
        )),
        codes: codes.clone(),
        calls: calls.clone(),
        evidence: evidence.clone(),
        public_entries: config.log_public_entries,
        upstream: upstream_client,
        limits,
        upstreams: upstreams.clone(),
        max_body: config.max_body_bytes,
        body_retention: std::time::Duration::from_secs(config.body_retention_secs),
        allow_loopback_callbacks: config.allow_loopback_callbacks,
    });
    let admin_plane = Arc::new(AdminPlane {
        registry: registry.clone(),
        codes,
        admin_token_hash: hash_secret(admin_token.expose()),
        import_lock: tokio::sync::Mutex::new(()),
        evidence: evidence.clone(),
        upstreams,
    });

    let (stop, stopped) = watch::channel(false);
    let planes = vec![
        tokio::spawn(listener::serve(
            "data",
            data_listener,
            lgsp_gateway::router(data_plane),
            data_tls,
            stopped.clone(),
        )),
        tokio::spawn(listener::serve(
            "admin",
            admin_listener,
            lgsp_admin::router(admin_plane),
            tls,
            stopped,
        )),
    ];

    tracing::info!(
        data = %format!("{scheme}://{data_addr}"),
        admin = %format!("{scheme}://{admin_addr}"),
        routes = registry.snapshot().route_count(),
        ready_ms = started.elapsed().as_millis() as u64,
        "lgsp ready"
    );
    Ok(Running {
        data_addr,
        admin_addr,
        admin_token_path: token_path,
        demo_tour,
        stop,
        planes,
        extra,
        calls,
        call_writer,
        evidence,
        checkpointer,
        checkpointer_stop,
        store,
    })
}

impl Running {
    /// Stops accepting, lets calls in flight finish, flushes the call log.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for plane in self.planes {
            let _ = plane.await;
        }
        // The last checkpoint covers every record written.
        self.calls.flush().await;
        let _ = self.checkpointer_stop.send(true);
        let _ = self.checkpointer.await;
        drop(self.evidence);
        self.calls.close().await;
        let _ = self.call_writer.await;
        for task in self.extra {
            task.abort();
        }
        self.store.close().await;
        tracing::info!("lgsp stopped");
    }
}

/// Deletes kept bodies once their retention has passed. The evidence tree
/// holds only their hashes, so no proof depends on them.
fn expire_bodies(store: Store, retention_secs: u64) -> JoinHandle<()> {
    let every = std::time::Duration::from_millis((retention_secs * 250).clamp(500, 60_000));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1000;
            match store.expire_bodies(now).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(calls = n, "kept bodies past their retention deleted"),
                Err(e) => tracing::warn!(error = %e, "deleting expired bodies failed"),
            }
        }
    })
}
