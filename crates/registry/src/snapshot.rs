//! The registry as the gateway sees it: immutable, in memory, rebuilt on change.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use lgsp_store::{
    Api, ApiKey, ClientCertificate, DataStandard, Network, Plan, Subscription, System, Validation,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::MEMBER_CLASS;

/// What a snapshot is built from.
pub struct Rows {
    pub systems: Vec<System>,
    pub apis: Vec<Api>,
    pub subs: Vec<Subscription>,
    pub plans: Vec<Plan>,
    pub networks: Vec<Network>,
    pub keys: Vec<ApiKey>,
    pub validations: Vec<Validation>,
    pub standards: Vec<DataStandard>,
    pub certificates: Vec<ClientCertificate>,
}

/// Compiled schemas by standard id and version.
pub type ValidatorCache = HashMap<(String, String), Arc<jsonschema::Validator>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiStatus {
    Draft,
    Published,
    Deprecated,
    Retired,
}

/// A plan as the gateway enforces it.
#[derive(Debug, PartialEq, Eq)]
pub struct PlanLimits {
    pub id: Arc<str>,
    /// Changes whenever the plan does, so counters restart on a new rate.
    pub revision: Arc<str>,
    pub rate: u32,
    pub burst: u32,
    pub per_day: Option<u64>,
    pub per_month: Option<u64>,
}

/// A request body that must validate before it reaches the provider.
#[derive(Debug)]
pub struct ValidationRule {
    /// `None`: any method that carries a body (POST, PUT, PATCH).
    pub method: Option<Method>,
    /// Path segments below the API, as [`segment_key`]s; `None` matches any
    /// one segment.
    pub segments: Vec<Option<Box<str>>>,
    /// `{id}/{version}` of the data standard.
    pub standard: Arc<str>,
    pub validator: Arc<jsonschema::Validator>,
}

/// The segments of a path below an API, read once per call and matched
/// against every rule of the API.
///
/// The rules err on the side of checking: they match every spelling a
/// provider might route to the same operation. The path is percent-decoded,
/// empty segments do not count (`/khaisinh/12/`, `//khaisinh/12`), and each
/// segment is compared by its [`segment_key`] (`/KhaiSinh/12`,
/// `/KHAİSINH%20/12`). The path is one that [`ambiguous_path`] let through.
#[derive(Debug)]
pub struct OperationPath(Vec<String>);

impl OperationPath {
    pub fn of(rest: &str) -> OperationPath {
        OperationPath(
            percent_encoding::percent_decode_str(rest)
                .decode_utf8_lossy()
                .split('/')
                .map(segment_key)
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }
}

/// A path segment as rules compare it: without surrounding white space, case
/// or diacritics, the dotless ı read as i.
pub fn segment_key(segment: &str) -> String {
    crate::manage::fold(segment.trim()).replace('ı', "i")
}

impl ValidationRule {
    /// Methods compare without regard to case (`post`).
    pub fn matches(&self, method: &Method, path: &OperationPath) -> bool {
        let name = method.as_str();
        let method_ok = match &self.method {
            Some(m) => m.as_str().eq_ignore_ascii_case(name),
            None => ["POST", "PUT", "PATCH"]
                .iter()
                .any(|m| m.eq_ignore_ascii_case(name)),
        };
        method_ok
            && path.0.len() == self.segments.len()
            && self
                .segments
                .iter()
                .zip(&path.0)
                .all(|(want, got)| want.as_deref().is_none_or(|lit| lit == got))
    }
}

/// Whether a path below an API is spelt so that providers may disagree on
/// its segments: an escaped or raw `\`, an escaped `/` or `;`, a `;`
/// parameter, or a control character, raw or escaped. An API that checks
/// bodies against data standards refuses such paths rather than guess.
pub fn ambiguous_path(rest: &str) -> bool {
    if rest.contains(['\\', ';']) || rest.chars().any(char::is_control) {
        return true;
    }
    let bytes = rest.as_bytes();
    bytes.windows(3).any(|w| {
        w[0] == b'%'
            && (w[1] as char)
                .to_digit(16)
                .zip((w[2] as char).to_digit(16))
                .is_some_and(|(h, l)| {
                    let b = (h * 16 + l) as u8;
                    matches!(b, b'/' | b'\\' | b';') || b < 0x20 || b == 0x7f
                })
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Rest,
    Soap,
    /// Served by the platform itself (the code-list service).
    Builtin,
}

impl Protocol {
    pub fn parse(value: &str) -> Option<Protocol> {
        match value {
            "rest" => Some(Protocol::Rest),
            "soap" => Some(Protocol::Soap),
            "builtin" => Some(Protocol::Builtin),
            _ => None,
        }
    }
}

/// One API as the gateway routes it.
#[derive(Debug)]
pub struct Route {
    pub api_id: Box<str>,
    /// `{context}/{version}`, as written in the call log.
    pub name: Arc<str>,
    pub context: Box<str>,
    pub version: Box<str>,
    pub upstream: http::Uri,
    pub protocol: Protocol,
    pub timeout: Duration,
    pub shared_by_default: bool,
    pub keep_bodies: bool,
    pub provider_system: Box<str>,
    pub status: ApiStatus,
    /// Deprecation time (Unix seconds), for the `Deprecation` header.
    pub deprecated_at: Option<i64>,
    /// Retirement: Unix seconds of the start of `retire_on` in Vietnam.
    pub retire_at: Option<i64>,
    /// Every upstream base URL; the first is `upstream`.
    pub upstreams: Vec<http::Uri>,
    /// The same, as written (the keys of the upstream pool).
    pub upstream_urls: Vec<String>,
    pub health_path: Option<Box<str>>,
    pub default_plan: Option<Arc<PlanLimits>>,
    pub validations: Vec<ValidationRule>,
}

impl Route {
    /// Whether the API takes calls at `now` (Unix seconds): published, or
    /// deprecated and not yet past its retirement day.
    pub fn retired_at(&self, now: i64) -> bool {
        self.status == ApiStatus::Retired
            || self.status == ApiStatus::Deprecated && self.retire_at.is_some_and(|t| now >= t)
    }
}

/// What the data plane needs to know of a system.
#[derive(Debug)]
pub struct SystemState {
    pub id: Arc<str>,
    /// `{instance}:GOV:{unit}:{code}`.
    pub global_id: Arc<str>,
    pub client_id: Box<str>,
    pub secret_hash: Vec<u8>,
    pub generation: i64,
    pub enabled: bool,
    /// Networks the system may call from; empty: any.
    pub networks: Vec<ipnet::IpNet>,
    /// SHA-256 (hex) of the client certificate its calls must come with, if bound.
    pub client_cert: Option<Box<str>>,
}

impl SystemState {
    pub fn allows(&self, addr: std::net::IpAddr) -> bool {
        let addr = match addr {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, std::net::IpAddr::V4),
            v4 => v4,
        };
        self.networks.is_empty() || self.networks.iter().any(|n| n.contains(&addr))
    }
}

/// API id -> the subscription's plan, if it has one.
type Subscribed = HashMap<Box<str>, Option<Arc<PlanLimits>>>;

#[derive(Debug, Default)]
pub struct Snapshot {
    routes: HashMap<Box<str>, HashMap<Box<str>, Arc<Route>>>,
    systems: HashMap<Arc<str>, Arc<SystemState>>,
    clients: HashMap<Box<str>, Arc<SystemState>>,
    /// Consumer -> API id -> the subscription's plan, if it has one.
    subscriptions: HashMap<Arc<str>, Subscribed>,
    /// SHA-256 of an API key -> its system.
    api_keys: HashMap<Vec<u8>, Arc<SystemState>>,
}

impl Snapshot {
    pub fn build(instance: &str, rows: &Rows, cache: &mut ValidatorCache) -> Snapshot {
        let mut snap = Snapshot::default();

        let mut networks: HashMap<&str, Vec<ipnet::IpNet>> = HashMap::new();
        for n in &rows.networks {
            match n.cidr.parse() {
                Ok(net) => networks.entry(n.system_id.as_str()).or_default().push(net),
                Err(_) => {
                    tracing::warn!(system = %n.system_id, cidr = %n.cidr, "stored network does not parse; skipped")
                }
            }
        }
        let mut certificates: HashMap<&str, Box<str>> = rows
            .certificates
            .iter()
            .map(|c| (c.system_id.as_str(), c.sha256.as_str().into()))
            .collect();
        for s in &rows.systems {
            let state = Arc::new(SystemState {
                id: s.id.as_str().into(),
                global_id: format!("{instance}:{MEMBER_CLASS}:{}:{}", s.unit_code, s.code).into(),
                client_id: s.client_id.as_str().into(),
                secret_hash: s.secret_hash.clone(),
                generation: s.secret_generation,
                enabled: s.enabled,
                networks: networks.remove(s.id.as_str()).unwrap_or_default(),
                client_cert: certificates.remove(s.id.as_str()),
            });
            snap.clients
                .insert(s.client_id.as_str().into(), state.clone());
            snap.systems.insert(state.id.clone(), state);
        }
        for k in &rows.keys {
            if let Some(system) = snap.systems.get(k.system_id.as_str()) {
                snap.api_keys.insert(k.key_hash.clone(), system.clone());
            }
        }

        let plans: HashMap<&str, Arc<PlanLimits>> = rows
            .plans
            .iter()
            .map(|p| {
                let limits = PlanLimits {
                    id: p.id.as_str().into(),
                    revision: format!("{}@{}", p.id, p.updated_at).into(),
                    rate: u32::try_from(p.rate).unwrap_or(u32::MAX).max(1),
                    burst: u32::try_from(p.burst).unwrap_or(u32::MAX).max(1),
                    per_day: p.per_day.map(|v| v.max(0) as u64),
                    per_month: p.per_month.map(|v| v.max(0) as u64),
                };
                (p.id.as_str(), Arc::new(limits))
            })
            .collect();

        for (key, _) in cache.clone() {
            if !rows
                .standards
                .iter()
                .any(|s| s.id == key.0 && s.version == key.1)
            {
                cache.remove(&key);
            }
        }
        let mut compiled = |id: &str, version: &str| -> Option<Arc<jsonschema::Validator>> {
            let key = (id.to_owned(), version.to_owned());
            if let Some(v) = cache.get(&key) {
                return Some(v.clone());
            }
            let standard = rows
                .standards
                .iter()
                .find(|s| s.id == id && s.version == version)?;
            match jsonschema::validator_for(&standard.schema.0) {
                Ok(v) => {
                    let v = Arc::new(v);
                    cache.insert(key, v.clone());
                    Some(v)
                }
                Err(e) => {
                    tracing::warn!(standard = %id, version, error = %e, "stored data standard does not compile");
                    None
                }
            }
        };

        for a in &rows.apis {
            // Rows were validated on the way in; one that no longer parses is skipped, not fatal.
            let (Ok(upstream), Some(protocol)) = (
                a.upstream_url.parse::<http::Uri>(),
                Protocol::parse(&a.protocol),
            ) else {
                tracing::warn!(api.id = %a.id, "stored API has an unusable upstream or protocol; not routed");
                continue;
            };
            let mut upstreams = vec![upstream.clone()];
            let mut upstream_urls = vec![a.upstream_url.clone()];
            for u in &a.extra_upstreams.0 {
                if let Ok(uri) = u.parse() {
                    upstreams.push(uri);
                    upstream_urls.push(u.clone());
                }
            }
            let status = match a.status.as_str() {
                "draft" => ApiStatus::Draft,
                "deprecated" => ApiStatus::Deprecated,
                "retired" => ApiStatus::Retired,
                _ => ApiStatus::Published,
            };
            let validations = rows
                .validations
                .iter()
                .filter(|v| v.api_id == a.id)
                .filter_map(|v| {
                    let validator = compiled(&v.standard_id, &v.standard_version)?;
                    Some(ValidationRule {
                        method: (v.method != "*").then(|| v.method.parse().ok()).flatten(),
                        segments: v
                            .path
                            .split('/')
                            .filter(|seg| !seg.is_empty())
                            .map(|seg| {
                                (!(seg.starts_with('{') && seg.ends_with('}')))
                                    .then(|| segment_key(seg).into())
                            })
                            .collect(),
                        standard: format!("{}/{}", v.standard_id, v.standard_version).into(),
                        validator,
                    })
                })
                .collect();
            let route = Arc::new(Route {
                api_id: a.id.as_str().into(),
                name: format!("{}/{}", a.context, a.version).into(),
                context: a.context.as_str().into(),
                version: a.version.as_str().into(),
                upstream,
                protocol,
                timeout: Duration::from_millis(a.timeout_ms.max(1) as u64),
                shared_by_default: a.shared_by_default,
                keep_bodies: a.keep_bodies,
                provider_system: a.provider_system.as_str().into(),
                status,
                deprecated_at: a
                    .deprecated_at
                    .as_deref()
                    .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
                    .map(OffsetDateTime::unix_timestamp),
                retire_at: a.retire_on.as_deref().and_then(retire_instant),
                upstreams,
                upstream_urls,
                health_path: a.health_path.as_deref().map(Into::into),
                default_plan: a
                    .default_plan
                    .as_deref()
                    .and_then(|p| plans.get(p).cloned()),
                validations,
            });
            snap.routes
                .entry(a.context.as_str().into())
                .or_default()
                .insert(a.version.as_str().into(), route);
        }

        for sub in rows.subs.iter().filter(|s| s.revoked_at.is_none()) {
            snap.subscriptions
                .entry(sub.consumer_system.as_str().into())
                .or_default()
                .insert(
                    sub.api_id.as_str().into(),
                    sub.plan_id.as_deref().and_then(|p| plans.get(p).cloned()),
                );
        }
        snap
    }

    pub fn route(&self, context: &str, version: &str) -> Option<&Arc<Route>> {
        self.routes.get(context)?.get(version)
    }

    pub fn system(&self, id: &str) -> Option<&Arc<SystemState>> {
        self.systems.get(id)
    }

    pub fn client(&self, client_id: &str) -> Option<&Arc<SystemState>> {
        self.clients.get(client_id)
    }

    pub fn is_subscribed(&self, system_id: &str, api_id: &str) -> bool {
        self.subscriptions
            .get(system_id)
            .is_some_and(|apis| apis.contains_key(api_id))
    }

    /// The plan of a system's subscription to an API: `None` if it has no
    /// subscription, `Some(None)` if the subscription names no plan.
    pub fn subscription_plan(
        &self,
        system_id: &str,
        api_id: &str,
    ) -> Option<Option<&Arc<PlanLimits>>> {
        self.subscriptions
            .get(system_id)?
            .get(api_id)
            .map(Option::as_ref)
    }

    /// The system whose active API key hashes to `hash`.
    pub fn api_key(&self, hash: &[u8]) -> Option<&Arc<SystemState>> {
        self.api_keys.get(hash)
    }

    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.routes.values().flat_map(HashMap::values)
    }

    pub fn route_count(&self) -> usize {
        self.routes.values().map(HashMap::len).sum()
    }
}

/// Start of a `YYYY-MM-DD` day in Vietnam, in Unix seconds.
/// The start of a retirement day, Vietnam time, in Unix seconds.
pub(crate) fn retire_instant(day: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(day, format).ok()?;
    Some(
        date.midnight()
            .assume_offset(crate::workdays::VIETNAM)
            .unix_timestamp(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(rule: &ValidationRule, method: &Method, path: &str) -> bool {
        rule.matches(method, &OperationPath::of(path))
    }

    fn rule(method: Option<Method>, path: &str) -> ValidationRule {
        ValidationRule {
            method,
            segments: path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| (!s.starts_with('{')).then(|| segment_key(s).into()))
                .collect(),
            standard: "x/1".into(),
            validator: Arc::new(jsonschema::validator_for(&serde_json::json!({})).unwrap()),
        }
    }

    #[test]
    fn a_rule_cannot_be_dodged_with_slashes_or_encoding() {
        let r = rule(Some(Method::POST), "/hoso/{ma}");
        for path in [
            "/hoso/1",
            "/hoso/1/",
            "//hoso/1",
            "/hoso//1",
            "/h%6Fso/1",
            "/HoSo/1",
            "/hoso%20/1",
            "/ho%CC%A3so/1",
            "/HOSO/1",
        ] {
            assert!(hits(&r, &Method::POST, path), "{path}");
        }
        assert!(hits(&r, &Method::from_bytes(b"post").unwrap(), "/hoso/1"));
        let k = rule(Some(Method::POST), "/khaisinh");
        for path in ["/KHAİSINH", "/khaisınh", "/khaisinh%09"] {
            assert!(hits(&k, &Method::POST, path), "{path}");
        }
        for path in [
            "/hoso;v=2/1",
            "/hoso%2F1",
            "/hoso/%2f",
            "/hoso/%3B",
            "/hoso\\1",
            "/hoso%00",
            "/hoso%5c1",
        ] {
            assert!(ambiguous_path(path), "{path}");
        }
        for path in ["/hoso/1", "/hoso/%20x", "/h%6Fso/1", "/hoso/Khai%20sinh"] {
            assert!(!ambiguous_path(path), "{path}");
        }
        for path in ["/hoso", "/hoso/1/2", "/khac/1", ""] {
            assert!(!hits(&r, &Method::POST, path), "{path}");
        }
        assert!(!hits(&r, &Method::PUT, "/hoso/1"));
    }

    #[test]
    fn any_method_means_the_methods_that_carry_a_body() {
        let r = rule(None, "/hoso");
        for m in [Method::POST, Method::PUT, Method::PATCH] {
            assert!(hits(&r, &m, "/hoso"), "{m}");
        }
        for m in [Method::GET, Method::HEAD, Method::DELETE, Method::OPTIONS] {
            assert!(!hits(&r, &m, "/hoso"), "{m}");
        }
    }
}
