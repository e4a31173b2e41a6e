//! The registry as the gateway sees it: immutable, in memory, rebuilt on change.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use lgsp_store::{Api, Subscription, System};

use crate::MEMBER_CLASS;

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
}

#[derive(Debug, Default)]
pub struct Snapshot {
    routes: HashMap<Box<str>, HashMap<Box<str>, Arc<Route>>>,
    systems: HashMap<Arc<str>, Arc<SystemState>>,
    clients: HashMap<Box<str>, Arc<SystemState>>,
    subscriptions: HashMap<Arc<str>, HashSet<Box<str>>>,
}

impl Snapshot {
    pub fn build(
        instance: &str,
        systems: &[System],
        apis: &[Api],
        subs: &[Subscription],
    ) -> Snapshot {
        let mut snap = Snapshot::default();

        for s in systems {
            let state = Arc::new(SystemState {
                id: s.id.as_str().into(),
                global_id: format!("{instance}:{MEMBER_CLASS}:{}:{}", s.unit_code, s.code).into(),
                client_id: s.client_id.as_str().into(),
                secret_hash: s.secret_hash.clone(),
                generation: s.secret_generation,
                enabled: s.enabled,
            });
            snap.clients
                .insert(s.client_id.as_str().into(), state.clone());
            snap.systems.insert(state.id.clone(), state);
        }

        for a in apis {
            // Rows were validated on the way in; one that no longer parses is skipped, not fatal.
            let (Ok(upstream), Some(protocol)) =
                (a.upstream_url.parse(), Protocol::parse(&a.protocol))
            else {
                tracing::warn!(api.id = %a.id, "stored API has an unusable upstream or protocol; not routed");
                continue;
            };
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
            });
            snap.routes
                .entry(a.context.as_str().into())
                .or_default()
                .insert(a.version.as_str().into(), route);
        }

        for sub in subs.iter().filter(|s| s.revoked_at.is_none()) {
            snap.subscriptions
                .entry(sub.consumer_system.as_str().into())
                .or_default()
                .insert(sub.api_id.as_str().into());
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
            .is_some_and(|apis| apis.contains(api_id))
    }

    pub fn route_count(&self) -> usize {
        self.routes.values().map(HashMap::len).sum()
    }
}
