//! Accepting connections for one plane: plain TCP or TLS, HTTP/1.1 and
//! HTTP/2, and a graceful stop that lets calls in flight finish.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use lgsp_gateway::PeerCertificate;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::Service;

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long calls in flight get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A TLS acceptor for one plane. With `client_ca`, clients may present a
/// certificate issued by one of its CAs (a connection without one is still
/// taken; the gateway decides per system whether it needs one), and a
/// certificate from any other issuer fails the handshake.
pub fn tls_acceptor(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> anyhow::Result<TlsAcceptor> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert)
            .with_context(|| format!("cannot open tls_cert {}", cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("tls_cert {} is not PEM", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("tls_cert {} holds no certificate", cert.display());
    }
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key)
            .with_context(|| format!("cannot open tls_key {}", key.display()))?,
    ))
    .with_context(|| format!("tls_key {} is not PEM", key.display()))?
    .with_context(|| format!("tls_key {} holds no private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let cas = rustls_pemfile::certs(&mut std::io::BufReader::new(
                std::fs::File::open(path)
                    .with_context(|| format!("cannot open tls_client_ca {}", path.display()))?,
            ))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("tls_client_ca {} is not PEM", path.display()))?;
            if cas.is_empty() {
                anyhow::bail!("tls_client_ca {} holds no certificate", path.display());
            }
            for ca in cas {
                roots.add(ca).with_context(|| {
                    format!(
                        "tls_client_ca {} holds an unusable certificate",
                        path.display()
                    )
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .allow_unauthenticated()
            .build()
            .context("tls_client_ca cannot verify client certificates")?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .context("tls_cert and tls_key do not make a usable pair")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves one accepted connection; every request learns the peer's address
/// and, over mutual TLS, the fingerprint of its certificate.
async fn serve_one<I>(
    builder: auto::Builder<TokioExecutor>,
    io: I,
    router: Router,
    peer: SocketAddr,
    cert: Option<PeerCertificate>,
    watcher: hyper_util::server::graceful::Watcher,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
        if let Some(cert) = &cert {
            req.extensions_mut().insert(cert.clone());
        }
        let mut router = router.clone();
        async move { router.call(req).await }
    });
    let conn = builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .into_owned();
    watcher.watch(conn).await
}

/// Serves `router` on `listener` until `stop` turns true, then drains.
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client gets 30 s to send a request's headers; without a timer hyper
    // would wait for ever on a slow or silent client.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(60)));

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(plane = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);

        let router = router.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let result = match tls {
                None => serve_one(builder, stream, router, peer, None, watcher).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => {
                            let cert = tls_stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|chain| chain.first())
                                .map(|c| PeerCertificate(lgsp_auth::sha256_hex(c.as_ref()).into()));
                            serve_one(builder, tls_stream, router, peer, cert, watcher).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(plane = name, peer = %peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(plane = name, peer = %peer, error = %e, "connection ended with an error");
            }
        });
    }

    drop(listener);
    tracing::info!(
        plane = name,
        connections = graceful.count(),
        "stopped accepting; finishing calls in flight"
    );
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            plane = name,
            "calls still in flight after the drain timeout were cut"
        );
    }
}
