//! Registry operations: validate, write to the store, publish a new snapshot.

use std::sync::Arc;

use arc_swap::ArcSwap;
use lgsp_auth::{Secret, hash_secret, random_token};
use lgsp_store::{Api, Json, Store, Subscription, System, Unit};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::{RegistryError, Snapshot, validate};

pub const DEFAULT_TIMEOUT_MS: i64 = 30_000;
const MAX_TIMEOUT_MS: i64 = 300_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUnit {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub parent_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSystem {
    pub unit_code: String,
    pub code: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemUpdate {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApi {
    pub provider_system: String,
    pub name: String,
    pub context: String,
    pub version: String,
    pub upstream_url: String,
    pub protocol: String,
    #[serde(default)]
    pub timeout_ms: Option<i64>,
    #[serde(default)]
    pub shared_by_default: bool,
    /// Keep request and response bodies of this API's calls for the retention period.
    #[serde(default)]
    pub keep_bodies: bool,
    /// `draft` (the default: not yet taking calls) or `published`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub contact: String,
    /// Further upstream base URLs, balanced with `upstream_url`.
    #[serde(default)]
    pub extra_upstreams: Vec<String>,
    /// Path every upstream answers for the active health check.
    #[serde(default)]
    pub health_path: Option<String>,
    /// Plan of subscriptions that name none.
    #[serde(default)]
    pub default_plan: Option<String>,
}

pub struct Registry {
    store: Store,
    instance: String,
    snapshot: ArcSwap<Snapshot>,
    /// Working days a provider has to answer a subscription request.
    due_days: std::sync::atomic::AtomicU32,
    /// Compiled data standards; a standard's version never changes.
    validators: std::sync::Mutex<crate::snapshot::ValidatorCache>,
    /// One reload at a time, from its first read to its publication: a
    /// reload that read the rows before a change can never publish after the
    /// reload that saw it.
    reloading: tokio::sync::Mutex<()>,
}

impl Registry {
    pub async fn load(store: Store, instance: &str) -> Result<Registry, RegistryError> {
        let registry = Registry {
            store,
            instance: instance.to_owned(),
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            due_days: std::sync::atomic::AtomicU32::new(2),
            validators: std::sync::Mutex::default(),
            reloading: tokio::sync::Mutex::new(()),
        };
        registry.reload().await?;
        Ok(registry)
    }

    /// The current snapshot. Cheap: no lock, no copy.
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    /// Sets how many working days a provider has to answer a request.
    pub fn set_due_working_days(&self, days: u32) {
        self.due_days
            .store(days.clamp(1, 60), std::sync::atomic::Ordering::Relaxed);
    }

    pub fn due_working_days(&self) -> u32 {
        self.due_days.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Rebuilds the snapshot from the store and publishes it.
    pub async fn reload(&self) -> Result<(), RegistryError> {
        let _one_at_a_time = self.reloading.lock().await;
        let rows = crate::snapshot::Rows {
            systems: self.store.systems().await?,
            apis: self.store.apis().await?,
            subs: self.store.subscriptions(false).await?,
            plans: self.store.plans().await?,
            networks: self.store.networks().await?,
            keys: self.store.api_keys(None, false).await?,
            validations: self.store.validations().await?,
            standards: self.store.standards().await?,
            certificates: self.store.client_certificates().await?,
        };
        let snap = {
            let mut cache = self
                .validators
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Snapshot::build(&self.instance, &rows, &mut cache)
        };
        let systems = &rows.systems;
        tracing::debug!(
            routes = snap.route_count(),
            systems = systems.len(),
            "registry snapshot published"
        );
        self.snapshot.store(Arc::new(snap));
        Ok(())
    }

    pub async fn add_unit(&self, new: NewUnit) -> Result<Unit, RegistryError> {
        validate::agency_code("code", &new.code)?;
        let name = validate::name("name", &new.name)?;
        if let Some(parent) = &new.parent_code {
            validate::agency_code("parent_code", parent)?;
            if self.store.unit(parent).await?.is_none() {
                return Err(RegistryError::invalid(
                    "parent_code",
                    format!("no unit has code {parent}"),
                ));
            }
        }
        if self.store.unit(&new.code).await?.is_some() {
            return Err(RegistryError::Conflict(format!(
                "a unit with code {} already exists",
                new.code
            )));
        }
        let unit = Unit {
            code: new.code,
            name,
            parent_code: new.parent_code,
            created_at: now_rfc3339(),
        };
        self.store.insert_unit(&unit).await?;
        Ok(unit)
    }

    /// Creates a system and its client credentials; the secret is returned
    /// only here and stored hashed.
    pub async fn add_system(
        &self,
        new: NewSystem,
        builtin: bool,
    ) -> Result<(System, Secret), RegistryError> {
        validate::agency_code("unit_code", &new.unit_code)?;
        validate::system_code("code", &new.code)?;
        let name = validate::name("name", &new.name)?;
        if self.store.unit(&new.unit_code).await?.is_none() {
            return Err(RegistryError::invalid(
                "unit_code",
                format!("no unit has code {}", new.unit_code),
            ));
        }

        let secret = Secret::generate(32);
        let now = now_rfc3339();
        let system = System {
            id: Uuid::now_v7().to_string(),
            unit_code: new.unit_code,
            code: new.code,
            name,
            client_id: random_token(16),
            secret_hash: hash_secret(secret.expose()),
            secret_generation: 1,
            enabled: true,
            builtin,
            created_at: now.clone(),
            updated_at: now,
        };
        self.store
            .insert_system(&system)
            .await
            .map_err(|e| match RegistryError::from(e) {
                RegistryError::Conflict(_) => RegistryError::Conflict(format!(
                    "unit {} already has a system with code {}",
                    system.unit_code, system.code
                )),
                other => other,
            })?;
        self.reload().await?;
        Ok((system, secret))
    }

    pub async fn rotate_secret(&self, id: &str) -> Result<(System, Secret), RegistryError> {
        let secret = Secret::generate(32);
        let system = self
            .store
            .rotate_secret(id, &hash_secret(secret.expose()), &now_rfc3339())
            .await?;
        self.reload().await?;
        Ok((system, secret))
    }

    pub async fn update_system(
        &self,
        id: &str,
        update: SystemUpdate,
    ) -> Result<System, RegistryError> {
        let name = update
            .name
            .as_deref()
            .map(|n| validate::name("name", n))
            .transpose()?;
        let system = self
            .store
            .update_system(id, name.as_deref(), update.enabled, &now_rfc3339())
            .await?;
        self.reload().await?;
        Ok(system)
    }

    pub async fn add_api(&self, new: NewApi) -> Result<Api, RegistryError> {
        let name = validate::name("name", &new.name)?;
        validate::context("context", &new.context)?;
        validate::version("version", &new.version)?;
        validate::upstream_url("upstream_url", &new.upstream_url)?;
        if !matches!(new.protocol.as_str(), "rest" | "soap") {
            return Err(RegistryError::invalid(
                "protocol",
                "must be \"rest\" or \"soap\"",
            ));
        }
        let timeout_ms = new.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        check_timeout(timeout_ms)?;
        let status = match new.status.as_deref() {
            None | Some("draft") => "draft",
            Some("published") => "published",
            Some(other) => {
                return Err(RegistryError::invalid(
                    "status",
                    format!("a new API is \"draft\" or \"published\", not {other:?}"),
                ));
            }
        };
        let description = validate::text("description", &new.description, 4000)?;
        let contact = validate::text("contact", &new.contact, 255)?;
        let tags = crate::manage::check_tags(&new.tags)?;
        let extra = crate::manage::check_extra_upstreams(&new.extra_upstreams)?;
        if let Some(p) = &new.health_path {
            crate::manage::health_path(p)?;
        }
        if let Some(plan) = &new.default_plan
            && self.store.plan(plan).await?.is_none()
        {
            return Err(RegistryError::invalid(
                "default_plan",
                format!("no plan has id {plan}"),
            ));
        }
        if self.store.system(&new.provider_system).await?.is_none() {
            return Err(RegistryError::invalid(
                "provider_system",
                format!("no system has id {}", new.provider_system),
            ));
        }
        self.insert_api(
            Api {
                id: Uuid::now_v7().to_string(),
                provider_system: new.provider_system,
                name,
                context: new.context,
                version: new.version,
                upstream_url: new.upstream_url.trim_end_matches('/').to_owned(),
                protocol: new.protocol,
                timeout_ms,
                shared_by_default: new.shared_by_default,
                keep_bodies: new.keep_bodies,
                created_at: now_rfc3339(),
                status: status.to_owned(),
                description,
                tags: Json(tags),
                contact,
                deprecated_at: None,
                retire_on: None,
                extra_upstreams: Json(extra),
                health_path: new.health_path,
                default_plan: new.default_plan,
                updated_at: None,
                owner_unit: None,
            },
            "operator",
        )
        .await
    }

    /// Registers an API the platform serves itself (no validation of the
    /// upstream, which is internal).
    pub async fn add_builtin_api(
        &self,
        provider_system: &str,
        name: &str,
        context: &str,
        version: &str,
    ) -> Result<Api, RegistryError> {
        self.insert_api(
            Api {
                id: Uuid::now_v7().to_string(),
                provider_system: provider_system.to_owned(),
                name: name.to_owned(),
                context: context.to_owned(),
                version: version.to_owned(),
                upstream_url: format!("http://builtin.invalid/{context}/{version}"),
                protocol: "builtin".to_owned(),
                timeout_ms: DEFAULT_TIMEOUT_MS,
                shared_by_default: true,
                keep_bodies: false,
                created_at: now_rfc3339(),
                status: "published".to_owned(),
                description: String::new(),
                tags: Json(Vec::new()),
                contact: String::new(),
                deprecated_at: None,
                retire_on: None,
                extra_upstreams: Json(Vec::new()),
                health_path: None,
                default_plan: None,
                updated_at: None,
                owner_unit: None,
            },
            "platform",
        )
        .await
    }

    async fn insert_api(&self, api: Api, actor: &str) -> Result<Api, RegistryError> {
        if self
            .store
            .api_by_name(&api.context, &api.version)
            .await?
            .is_some()
        {
            return Err(RegistryError::Conflict(format!(
                "an API {}/{} already exists",
                api.context, api.version
            )));
        }
        self.store.insert_api(&api).await?;
        let detail = format!("{}/{} as {}", api.context, api.version, api.status);
        self.store
            .api_event(&api.id, actor, "created", &detail, &api.created_at)
            .await?;
        self.reload().await?;
        // Read back: some fields (the owner unit) come from the store.
        Ok(self.store.api(&api.id).await?.unwrap_or(api))
    }

    /// `api` is `{context}/{version}`.
    pub async fn subscribe(
        &self,
        consumer_system: &str,
        api: &str,
        plan: Option<&str>,
    ) -> Result<Subscription, RegistryError> {
        if let Some(p) = plan
            && self.store.plan(p).await?.is_none()
        {
            return Err(RegistryError::invalid(
                "plan",
                format!("no plan has id {p}"),
            ));
        }
        let Some((context, version)) = api.split_once('/') else {
            return Err(RegistryError::invalid(
                "api",
                "must be written {context}/{version}, e.g. hotich/1.0",
            ));
        };
        let Some(api_row) = self.store.api_by_name(context, version).await? else {
            return Err(RegistryError::invalid(
                "api",
                format!("no API {api} is registered"),
            ));
        };
        if self.store.system(consumer_system).await?.is_none() {
            return Err(RegistryError::invalid(
                "consumer_system",
                format!("no system has id {consumer_system}"),
            ));
        }
        let sub = self
            .store
            .insert_subscription(
                &Uuid::now_v7().to_string(),
                consumer_system,
                &api_row.id,
                plan,
                &now_rfc3339(),
            )
            .await
            .map_err(|e| match RegistryError::from(e) {
                RegistryError::Conflict(_) => RegistryError::Conflict(format!(
                    "system {consumer_system} is already subscribed to {api}"
                )),
                other => other,
            })?;
        self.reload().await?;
        Ok(sub)
    }

    pub async fn revoke_subscription(&self, id: &str) -> Result<(), RegistryError> {
        self.store.revoke_subscription(id, &now_rfc3339()).await?;
        self.reload().await
    }
}

pub(crate) fn check_timeout(timeout_ms: i64) -> Result<(), RegistryError> {
    if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
        return Err(RegistryError::invalid(
            "timeout_ms",
            format!("must be 1 to {MAX_TIMEOUT_MS}"),
        ));
    }
    Ok(())
}

pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .expect("formatting the current time")
}
