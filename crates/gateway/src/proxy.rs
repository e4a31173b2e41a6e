//! Forwarding to a provider: the upstream request and response, with
//! hop-by-hop headers removed and the platform's headers added.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, Uri, header};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::{MeteredBody, RequestMeter};

/// The keep-alive connection pool to providers, over HTTP or HTTPS.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, MeteredBody>;

pub fn upstream_client() -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    let builder = HttpsConnectorBuilder::new();
    let connector = match builder.with_native_roots() {
        Ok(b) => b.https_or_http().enable_http1().wrap_connector(http),
        Err(e) => {
            tracing::warn!(error = %e, "no system CA certificates; HTTPS upstreams will fail verification");
            HttpsConnectorBuilder::new()
                .with_tls_config(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                )
                .https_or_http()
                .enable_http1()
                .wrap_connector(http)
        }
    };
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector)
}

/// Headers that describe one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named by `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    headers.remove("proxy-connection");
}

/// The provider's URL for `rest` (what follows `/{context}/{version}`) and the query.
pub fn upstream_uri(base: &Uri, rest: &str, query: Option<&str>) -> Option<Uri> {
    let base_path = base.path().trim_end_matches('/');
    let mut path_and_query = String::with_capacity(base_path.len() + rest.len() + 16);
    path_and_query.push_str(base_path);
    path_and_query.push_str(rest);
    if path_and_query.is_empty() {
        path_and_query.push('/');
    }
    if let Some(q) = query {
        path_and_query.push('?');
        path_and_query.push_str(q);
    }
    Uri::builder()
        .scheme(base.scheme()?.clone())
        .authority(base.authority()?.clone())
        .path_and_query(path_and_query)
        .build()
        .ok()
}

pub struct Forward<'a> {
    pub uri: Uri,
    pub request_id: &'a str,
    pub consumer_id: &'a str,
    pub client_ip: &'a str,
    pub limit: u64,
    /// Keep a copy of the body (its API keeps bodies).
    pub keep: bool,
}

/// Builds the upstream request from the consumer's.
pub fn upstream_request(
    req: Request<Body>,
    fwd: Forward<'_>,
) -> (Request<MeteredBody>, Arc<RequestMeter>) {
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    // The consumer's credentials are the platform's business, never the provider's.
    parts.headers.remove(header::AUTHORIZATION);
    parts.headers.remove(crate::handler::API_KEY_HEADER);
    parts.headers.remove(header::HOST);
    parts.headers.remove("x-consumer-id");

    let mut forwarded_for = fwd.client_ip.to_owned();
    if let Some(previous) = parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        forwarded_for = format!("{previous}, {forwarded_for}");
    }
    set(&mut parts.headers, "x-forwarded-for", &forwarded_for);
    set(&mut parts.headers, "x-request-id", fwd.request_id);
    set(&mut parts.headers, "x-consumer-id", fwd.consumer_id);

    parts.uri = fwd.uri;
    parts.version = http::Version::HTTP_11;
    let meter = Arc::new(RequestMeter::new(fwd.keep));
    let body = MeteredBody::new(body, meter.clone(), fwd.limit);
    (Request::from_parts(parts, body), meter)
}

/// Cleans the provider's response headers before they go to the consumer.
pub fn downstream_headers(response: &mut Response<Incoming>, request_id: &str) {
    strip_hop_by_hop(response.headers_mut());
    set(response.headers_mut(), "x-request-id", request_id);
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_uris() {
        let base: Uri = "http://10.0.0.1:8080/api/hotich".parse().unwrap();
        assert_eq!(
            upstream_uri(&base, "/khaisinh/1", Some("a=1&b=%C4%91"))
                .unwrap()
                .to_string(),
            "http://10.0.0.1:8080/api/hotich/khaisinh/1?a=1&b=%C4%91"
        );
        assert_eq!(
            upstream_uri(&base, "", None).unwrap().to_string(),
            "http://10.0.0.1:8080/api/hotich"
        );
        let root: Uri = "http://up:81".parse().unwrap();
        assert_eq!(
            upstream_uri(&root, "", None).unwrap().to_string(),
            "http://up:81/"
        );
    }

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            "keep-alive, x-secret-hop".parse().unwrap(),
        );
        h.insert("x-secret-hop", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }
}
