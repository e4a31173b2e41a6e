//! API management on top of the registry: lifecycle, specifications,
//! catalogue, data standards, plans, onboarding, network rules, API keys and
//! feedback. Every change is written to the store, then the gateway's
//! snapshot is rebuilt, so it applies from the next call on.

use std::collections::HashSet;

use lgsp_auth::{Secret, hash_secret, random_token};
use lgsp_store::{
    Api, ApiChange, ApiKey, ClientCertificate, DataStandard, Decision, Json, Plan, Subscription,
    SubscriptionRequest, Ticket, Validation,
};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::service::now_rfc3339;
use crate::{Registry, RegistryError, spec, validate, workdays};

/// Who does something: the operator (admin token) or a system (its token).
#[derive(Clone, Debug)]
pub enum Actor {
    Operator,
    /// A system acting for itself: its id and global identifier.
    System {
        id: String,
        global_id: String,
    },
}

impl Actor {
    pub fn name(&self) -> &str {
        match self {
            Actor::Operator => "operator",
            Actor::System { global_id, .. } => global_id,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
    pub contact: Option<String>,
    pub upstream_url: Option<String>,
    pub extra_upstreams: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub health_path: Option<Option<String>>,
    pub timeout_ms: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    pub default_plan: Option<Option<String>>,
    pub shared_by_default: Option<bool>,
    pub keep_bodies: Option<bool>,
}

/// `null` is kept apart from absent: `Some(None)` clears the field.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPlan {
    pub id: String,
    pub name: String,
    pub rate: i64,
    pub burst: Option<i64>,
    pub per_day: Option<i64>,
    pub per_month: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewStandard {
    pub id: String,
    pub version: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub owner_unit: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub schema: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewValidation {
    pub method: String,
    /// The operation's path below the API, `{name}` matching one segment.
    pub path: String,
    pub standard: String,
    pub version: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// `{context}/{version}`.
    pub api: String,
    pub purpose: String,
    pub legal_basis: String,
    pub plan: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    /// `{context}/{version}`.
    pub api: String,
    pub kind: String,
    pub subject: String,
    pub body: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNetwork {
    pub cidr: String,
    #[serde(default)]
    pub note: String,
}

/// One hit of a catalogue search.
#[derive(Debug, serde::Serialize)]
pub struct CatalogueEntry {
    /// `api` or `standard`.
    pub kind: &'static str,
    /// `{context}/{version}` of an API, `{id}/{version}` of a standard.
    pub name: String,
    pub title: String,
    pub description: String,
    pub owner_unit: Option<String>,
    pub owner_unit_name: Option<String>,
    pub tags: Vec<String>,
    /// An API's lifecycle status; `published` for a standard.
    pub status: String,
    pub shared_by_default: bool,
    pub has_spec: bool,
    /// Standards an API's operations require, or APIs that use a standard.
    pub links: Vec<String>,
}

const MAX_TEXT: usize = 4000;
const MAX_TAGS: usize = 20;

impl Registry {
    /// The API with that id, or a `404`.
    pub async fn api(&self, id: &str) -> Result<Api, RegistryError> {
        self.store()
            .api(id)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("no API has id {id}")))
    }

    pub async fn api_named(&self, name: &str) -> Result<Api, RegistryError> {
        let Some((context, version)) = name.split_once('/') else {
            return Err(RegistryError::invalid(
                "api",
                "must be written {context}/{version}, e.g. hotich/1.0",
            ));
        };
        self.store()
            .api_by_name(context, version)
            .await?
            .ok_or_else(|| RegistryError::invalid("api", format!("no API {name} is registered")))
    }

    pub async fn update_api(
        &self,
        id: &str,
        update: ApiUpdate,
        actor: &Actor,
    ) -> Result<Api, RegistryError> {
        let api = self.api(id).await?;
        if api.protocol == "builtin"
            && (update.upstream_url.is_some()
                || update.extra_upstreams.is_some()
                || update.health_path.is_some())
        {
            return Err(RegistryError::invalid(
                "upstream_url",
                "a built-in API is served by the platform and has no upstream",
            ));
        }
        let mut change = ApiChange {
            name: update
                .name
                .as_deref()
                .map(|n| validate::name("name", n))
                .transpose()?,
            description: update
                .description
                .as_deref()
                .map(|d| validate::text("description", d, MAX_TEXT))
                .transpose()?,
            tags: update.tags.as_deref().map(check_tags).transpose()?,
            contact: update
                .contact
                .as_deref()
                .map(|c| validate::text("contact", c, 255))
                .transpose()?,
            shared_by_default: update.shared_by_default,
            keep_bodies: update.keep_bodies,
            ..ApiChange::default()
        };
        if let Some(url) = &update.upstream_url {
            validate::upstream_url("upstream_url", url)?;
            change.upstream_url = Some(url.trim_end_matches('/').to_owned());
        }
        if let Some(urls) = &update.extra_upstreams {
            change.extra_upstreams = Some(check_extra_upstreams(urls)?);
        }
        if let Some(path) = &update.health_path {
            if let Some(p) = path {
                health_path(p)?;
            }
            change.health_path = Some(path.clone());
        }
        if let Some(ms) = update.timeout_ms {
            crate::service::check_timeout(ms)?;
            change.timeout_ms = Some(ms);
        }
        if let Some(plan) = &update.default_plan {
            if let Some(p) = plan {
                self.plan_exists("default_plan", p).await?;
            }
            change.default_plan = Some(plan.clone());
        }
        if change == ApiChange::default() {
            return Err(RegistryError::invalid(
                "body",
                "nothing to change: name at least one field",
            ));
        }
        let api = self
            .store()
            .update_api(id, &change, actor.name(), &now_rfc3339())
            .await?;
        self.reload().await?;
        Ok(api)
    }

    /// Moves an API through its lifecycle: `publish`, `deprecate` (with the
    /// day it will be retired), `retire`.
    pub async fn transition(
        &self,
        id: &str,
        action: &str,
        retire_on: Option<&str>,
        actor: &Actor,
    ) -> Result<Api, RegistryError> {
        let (from, to): (&[&str], &str) = match action {
            "publish" => (&["draft", "deprecated"], "published"),
            "deprecate" => (&["published"], "deprecated"),
            "retire" => (&["draft", "published", "deprecated"], "retired"),
            other => {
                return Err(RegistryError::invalid(
                    "action",
                    format!("unknown lifecycle action {other:?}; use publish, deprecate or retire"),
                ));
            }
        };
        let retire_on = match (to, retire_on) {
            ("deprecated", Some(day)) => {
                let parsed = parse_day("retire_on", day)?;
                let today = OffsetDateTime::now_utc()
                    .to_offset(workdays::VIETNAM)
                    .date();
                if parsed <= today {
                    return Err(RegistryError::invalid(
                        "retire_on",
                        "must be a day after today: consumers need notice; to stop calls now, retire the API",
                    ));
                }
                Some(day)
            }
            ("deprecated", None) => {
                return Err(RegistryError::invalid(
                    "retire_on",
                    "deprecating an API needs the day it will be retired (YYYY-MM-DD)",
                ));
            }
            (_, Some(_)) => {
                return Err(RegistryError::invalid(
                    "retire_on",
                    "only deprecation takes a retirement day",
                ));
            }
            (_, None) => None,
        };
        let current = self.api(id).await?;
        if to != "retired" && past_retirement(&current) {
            return Err(RegistryError::Conflict(format!(
                "the API was retired on {}; publish a new version instead",
                current.retire_on.as_deref().unwrap_or("")
            )));
        }
        if current.protocol == "builtin" && to != "published" {
            return Err(RegistryError::Conflict(
                "a built-in API of the platform cannot leave the published state".to_owned(),
            ));
        }
        match self
            .store()
            .set_api_status(id, from, to, retire_on, actor.name(), &now_rfc3339())
            .await?
        {
            Some(api) => {
                self.reload().await?;
                Ok(api)
            }
            None => Err(RegistryError::Conflict(format!(
                "the API is {}; it cannot be moved to {to} from there (draft -> published -> deprecated -> retired; a deprecated API can be published again)",
                current.status
            ))),
        }
    }

    /// Checks and stores an API's specification.
    pub async fn put_spec(
        &self,
        id: &str,
        content: &[u8],
        actor: &Actor,
    ) -> Result<spec::CheckedSpec, RegistryError> {
        let api = self.api(id).await?;
        let checked = spec::check(content).map_err(RegistryError::InvalidSpec)?;
        if (api.protocol == "soap") != (checked.kind == "wsdl") && api.protocol != "builtin" {
            return Err(RegistryError::InvalidSpec(vec![format!(
                "a {} API is described by {}, not {}",
                api.protocol,
                if api.protocol == "soap" {
                    "WSDL"
                } else {
                    "OpenAPI"
                },
                if checked.kind == "wsdl" {
                    "WSDL"
                } else {
                    "OpenAPI"
                }
            )]));
        }
        let sha = lgsp_auth::sha256_hex(content);
        self.store()
            .put_spec(
                id,
                lgsp_store::NewSpec {
                    kind: checked.kind,
                    media_type: checked.media_type,
                    content,
                    sha256: &sha,
                    summary: &checked.summary,
                },
                actor.name(),
                &now_rfc3339(),
            )
            .await?;
        Ok(checked)
    }

    // ---- Catalogue ----

    /// APIs (not drafts or retired ones) and data standards whose name,
    /// description, unit or tags contain every word of `query`, ignoring case
    /// and Vietnamese diacritics. An empty query lists everything.
    pub async fn catalogue(
        &self,
        query: &str,
        include_unlisted: bool,
    ) -> Result<Vec<CatalogueEntry>, RegistryError> {
        let store = self.store();
        let units: std::collections::HashMap<String, String> = store
            .units()
            .await?
            .into_iter()
            .map(|u| (u.code, u.name))
            .collect();
        let specs: HashSet<String> = store.specs().await?.into_iter().map(|s| s.api_id).collect();
        let validations = store.validations().await?;
        let apis = store.apis().await?;
        let words: Vec<String> = fold(query).split_whitespace().map(str::to_owned).collect();
        let mut out = Vec::new();
        for api in &apis {
            if !include_unlisted && matches!(api.status.as_str(), "draft" | "retired") {
                continue;
            }
            let links: Vec<String> = validations
                .iter()
                .filter(|v| v.api_id == api.id)
                .map(|v| format!("{}/{}", v.standard_id, v.standard_version))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let entry = CatalogueEntry {
                kind: "api",
                name: format!("{}/{}", api.context, api.version),
                title: api.name.clone(),
                description: api.description.clone(),
                owner_unit_name: api.owner_unit.as_ref().and_then(|u| units.get(u).cloned()),
                owner_unit: api.owner_unit.clone(),
                tags: api.tags.0.clone(),
                status: api.status.clone(),
                shared_by_default: api.shared_by_default,
                has_spec: specs.contains(&api.id),
                links,
            };
            if matches(&entry, &words) {
                out.push(entry);
            }
        }
        for s in store.standards().await? {
            let links: Vec<String> = validations
                .iter()
                .filter(|v| v.standard_id == s.id && v.standard_version == s.version)
                .filter_map(|v| apis.iter().find(|a| a.id == v.api_id))
                .map(|a| format!("{}/{}", a.context, a.version))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let entry = CatalogueEntry {
                kind: "standard",
                name: format!("{}/{}", s.id, s.version),
                title: s.name,
                description: s.description,
                owner_unit_name: s.owner_unit.as_ref().and_then(|u| units.get(u).cloned()),
                owner_unit: s.owner_unit,
                tags: s.tags.0,
                status: "published".to_owned(),
                shared_by_default: false,
                has_spec: true,
                links,
            };
            if matches(&entry, &words) {
                out.push(entry);
            }
        }
        Ok(out)
    }

    // ---- Data standards ----

    pub async fn add_standard(&self, new: NewStandard) -> Result<DataStandard, RegistryError> {
        validate::slug_id("id", &new.id)?;
        validate::version("version", &new.version)?;
        let name = validate::name("name", &new.name)?;
        let description = validate::text("description", &new.description, MAX_TEXT)?;
        if let Some(unit) = &new.owner_unit
            && self.store().unit(unit).await?.is_none()
        {
            return Err(RegistryError::invalid(
                "owner_unit",
                format!("no unit has code {unit}"),
            ));
        }
        if let Err(e) = jsonschema::meta::validate(&new.schema) {
            return Err(RegistryError::invalid(
                "schema",
                format!("not a valid JSON Schema: {e} (at {})", e.instance_path()),
            ));
        }
        if let Err(e) = jsonschema::validator_for(&new.schema) {
            return Err(RegistryError::invalid(
                "schema",
                format!("the schema cannot be used: {e}"),
            ));
        }
        if self
            .store()
            .standard(&new.id, &new.version)
            .await?
            .is_some()
        {
            return Err(RegistryError::Conflict(format!(
                "data standard {}/{} exists; a changed schema is a new version",
                new.id, new.version
            )));
        }
        let standard = DataStandard {
            id: new.id,
            version: new.version,
            name,
            description,
            owner_unit: new.owner_unit,
            tags: Json(check_tags(&new.tags)?),
            schema: Json(new.schema),
            created_at: now_rfc3339(),
        };
        self.store().insert_standard(&standard).await?;
        Ok(standard)
    }

    /// Replaces the operations of an API whose request bodies must validate.
    pub async fn set_validations(
        &self,
        api_id: &str,
        rules: Vec<NewValidation>,
        actor: &Actor,
    ) -> Result<Vec<Validation>, RegistryError> {
        let api = self.api(api_id).await?;
        if api.protocol != "rest" {
            return Err(RegistryError::invalid(
                "validations",
                "request bodies are validated against JSON Schema for REST APIs only",
            ));
        }
        if rules.len() > 200 {
            return Err(RegistryError::invalid(
                "validations",
                "at most 200 operations",
            ));
        }
        let mut out = Vec::with_capacity(rules.len());
        let mut seen = HashSet::new();
        for r in rules {
            let method = r.method.to_ascii_uppercase();
            if !matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE" | "*") {
                return Err(RegistryError::invalid(
                    "method",
                    format!(
                        "{:?}: bodies are validated for POST, PUT, PATCH, DELETE or * (any)",
                        r.method
                    ),
                ));
            }
            operation_path(&r.path)?;
            if self
                .store()
                .standard(&r.standard, &r.version)
                .await?
                .is_none()
            {
                return Err(RegistryError::invalid(
                    "standard",
                    format!(
                        "no data standard {}/{} is registered",
                        r.standard, r.version
                    ),
                ));
            }
            if !seen.insert((method.clone(), r.path.clone())) {
                return Err(RegistryError::invalid(
                    "path",
                    format!("{method} {} is listed twice", r.path),
                ));
            }
            out.push(Validation {
                api_id: api_id.to_owned(),
                method,
                path: r.path,
                standard_id: r.standard,
                standard_version: r.version,
            });
        }
        self.store()
            .set_validations(api_id, &out, actor.name(), &now_rfc3339())
            .await?;
        self.reload().await?;
        Ok(out)
    }

    // ---- Plans ----

    pub async fn add_plan(&self, new: NewPlan) -> Result<Plan, RegistryError> {
        validate::slug_id("id", &new.id)?;
        let plan = plan_from(new, now_rfc3339(), None)?;
        if self.store().plan(&plan.id).await?.is_some() {
            return Err(RegistryError::Conflict(format!(
                "a plan with id {} exists",
                plan.id
            )));
        }
        self.store().insert_plan(&plan).await?;
        Ok(plan)
    }

    pub async fn update_plan(&self, id: &str, new: NewPlan) -> Result<Plan, RegistryError> {
        if new.id != id {
            return Err(RegistryError::invalid("id", "a plan's id cannot change"));
        }
        let Some(old) = self.store().plan(id).await? else {
            return Err(RegistryError::NotFound(format!("no plan has id {id}")));
        };
        let plan = plan_from(new, old.created_at, Some(now_rfc3339()))?;
        self.store().update_plan(&plan).await?;
        self.reload().await?;
        Ok(plan)
    }

    async fn plan_exists(&self, field: &'static str, id: &str) -> Result<(), RegistryError> {
        if self.store().plan(id).await?.is_none() {
            return Err(RegistryError::invalid(
                field,
                format!("no plan has id {id}"),
            ));
        }
        Ok(())
    }

    pub async fn set_subscription_plan(
        &self,
        id: &str,
        plan: Option<&str>,
    ) -> Result<Subscription, RegistryError> {
        if let Some(p) = plan {
            self.plan_exists("plan", p).await?;
        }
        let sub = self.store().set_subscription_plan(id, plan).await?;
        self.reload().await?;
        Ok(sub)
    }

    // ---- Onboarding ----

    /// A consumer system asks for a subscription. An API shared by default
    /// needs no approval: the request is approved at once.
    pub async fn request_subscription(
        &self,
        consumer: &str,
        new: NewRequest,
        actor: &Actor,
    ) -> Result<SubscriptionRequest, RegistryError> {
        let api = self.api_named(&new.api).await?;
        let status = if past_retirement(&api) {
            "retired"
        } else {
            api.status.as_str()
        };
        if !matches!(status, "published" | "deprecated") {
            return Err(RegistryError::invalid(
                "api",
                format!(
                    "{} is {status}; only published APIs take subscriptions",
                    new.api
                ),
            ));
        }
        if self.store().system(consumer).await?.is_none() {
            return Err(RegistryError::invalid(
                "consumer_system",
                format!("no system has id {consumer}"),
            ));
        }
        if api.provider_system == consumer {
            return Err(RegistryError::invalid(
                "api",
                "a system does not subscribe to its own API",
            ));
        }
        if let Some(sub) = self.store().active_subscription(consumer, &api.id).await? {
            return Err(RegistryError::Conflict(format!(
                "this system already holds subscription {} to {}",
                sub.id, new.api
            )));
        }
        let purpose = required_text("purpose", &new.purpose)?;
        let legal_basis = required_text("legal_basis", &new.legal_basis)?;
        if let Some(p) = &new.plan {
            // Approved at once, nobody would have agreed to the plan asked for.
            if api.shared_by_default {
                return Err(RegistryError::invalid(
                    "plan",
                    format!(
                        "{} is shared by default: its subscriptions take the API's default plan; ask without a plan",
                        new.api
                    ),
                ));
            }
            self.plan_exists("plan", p).await?;
        }
        let now = OffsetDateTime::now_utc();
        let holidays = self.holiday_set().await?;
        let due = workdays::due_after(now, self.due_working_days(), &holidays);
        let request = SubscriptionRequest {
            id: Uuid::now_v7().to_string(),
            consumer_system: consumer.to_owned(),
            api_id: api.id.clone(),
            api: new.api.clone(),
            plan_id: new.plan,
            purpose,
            legal_basis,
            status: "pending".to_owned(),
            requested_by: actor.name().to_owned(),
            requested_at: format_time(now),
            due_at: format_time(due),
            decided_by: None,
            decided_at: None,
            reason: None,
            subscription_id: None,
        };
        self.store()
            .insert_request(&request, "")
            .await
            .map_err(|e| match RegistryError::from(e) {
                RegistryError::Conflict(_) => RegistryError::Conflict(format!(
                    "a request of this system for {} is already pending",
                    new.api
                )),
                other => other,
            })?;
        if api.shared_by_default {
            let platform = Actor::System {
                id: String::new(),
                global_id: "platform (shared by default)".to_owned(),
            };
            return self
                .decide(&request.id, "approve", None, None, &platform)
                .await;
        }
        Ok(request)
    }

    /// `approve` (optionally with a plan), `refuse` (with a reason) or `withdraw`.
    pub async fn decide(
        &self,
        id: &str,
        action: &str,
        plan: Option<&str>,
        reason: Option<&str>,
        actor: &Actor,
    ) -> Result<SubscriptionRequest, RegistryError> {
        let Some(request) = self.store().request(id).await? else {
            return Err(RegistryError::NotFound(format!(
                "no subscription request has id {id}"
            )));
        };
        let subscription_id = Uuid::now_v7().to_string();
        let reason_text;
        let decision = match action {
            "approve" => {
                if reason.is_some() {
                    return Err(RegistryError::invalid(
                        "reason",
                        "only a refusal takes a reason",
                    ));
                }
                if let Some(p) = plan {
                    self.plan_exists("plan", p).await?;
                }
                Decision::Approve {
                    plan,
                    subscription_id: &subscription_id,
                }
            }
            "refuse" => {
                if plan.is_some() {
                    return Err(RegistryError::invalid(
                        "plan",
                        "only an approval takes a plan",
                    ));
                }
                reason_text = required_text("reason", reason.unwrap_or(""))
                    .map_err(|_| RegistryError::invalid("reason", "a refusal must say why"))?;
                Decision::Refuse {
                    reason: &reason_text,
                }
            }
            "withdraw" if plan.is_some() || reason.is_some() => {
                return Err(RegistryError::invalid(
                    "withdraw",
                    "a withdrawal takes neither a plan nor a reason",
                ));
            }
            "withdraw" => Decision::Withdraw,
            other => {
                return Err(RegistryError::invalid(
                    "action",
                    format!("unknown action {other:?}; use approve, refuse or withdraw"),
                ));
            }
        };
        match self
            .store()
            .decide_request(id, decision, actor.name(), &now_rfc3339())
            .await?
        {
            Some(done) => {
                self.reload().await?;
                Ok(done)
            }
            None => Err(RegistryError::Conflict(format!(
                "the request is already {}",
                request.status
            ))),
        }
    }

    /// Pending requests whose answer is overdue.
    pub async fn overdue_requests(&self) -> Result<Vec<SubscriptionRequest>, RegistryError> {
        let now = OffsetDateTime::now_utc();
        Ok(self
            .store()
            .requests(Some("pending"), None, None)
            .await?
            .into_iter()
            .filter(|r| OffsetDateTime::parse(&r.due_at, &Rfc3339).is_ok_and(|due| due < now))
            .collect())
    }

    pub async fn holiday_set(&self) -> Result<HashSet<Date>, RegistryError> {
        Ok(self
            .store()
            .holidays()
            .await?
            .iter()
            .filter_map(|h| Date::parse(&h.day, DAY).ok())
            .collect())
    }

    pub async fn put_holiday(&self, day: &str, name: &str) -> Result<(), RegistryError> {
        parse_day("day", day)?;
        let name = validate::name("name", name)?;
        Ok(self.store().put_holiday(day, &name).await?)
    }

    // ---- Network rules and API keys ----

    /// `404` for a system id that names none.
    pub async fn system_exists(&self, id: &str) -> Result<(), RegistryError> {
        match self.store().system(id).await? {
            Some(_) => Ok(()),
            None => Err(RegistryError::NotFound(format!("no system has id {id}"))),
        }
    }

    pub async fn set_networks(
        &self,
        system_id: &str,
        networks: Vec<NewNetwork>,
    ) -> Result<(), RegistryError> {
        self.system_exists(system_id).await?;
        if networks.len() > 256 {
            return Err(RegistryError::invalid(
                "networks",
                "at most 256 networks per system",
            ));
        }
        let mut rows = Vec::with_capacity(networks.len());
        for n in networks {
            let net: ipnet::IpNet = n
                .cidr
                .trim()
                .parse()
                .or_else(|_| n.cidr.trim().parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    RegistryError::invalid(
                        "cidr",
                        format!("{:?} is not an IPv4 or IPv6 network (e.g. 10.20.0.0/16, 2001:db8::/48)", n.cidr),
                    )
                })?;
            let note = validate::text("note", &n.note, 255)?;
            rows.push((ipv4_if_mapped(net).trunc().to_string(), note));
        }
        // Repeats merge, keeping a note one of them had.
        rows.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        rows.dedup_by(|a, b| a.0 == b.0);
        self.store()
            .set_networks(system_id, &rows, &now_rfc3339())
            .await?;
        self.reload().await
    }

    /// Binds a system to one client certificate (PEM): from then on its calls
    /// are taken only over mutual TLS with exactly that certificate.
    pub async fn bind_certificate(
        &self,
        system_id: &str,
        pem: &str,
        actor: &Actor,
    ) -> Result<ClientCertificate, RegistryError> {
        self.system_exists(system_id).await?;
        let checked = check_certificate(pem)?;
        let cert = ClientCertificate {
            system_id: system_id.to_owned(),
            sha256: checked.sha256,
            subject: checked.subject,
            issuer: checked.issuer,
            not_after: checked.not_after,
            pem: pem.trim().to_owned(),
            bound_by: actor.name().to_owned(),
            bound_at: now_rfc3339(),
        };
        self.store().set_client_certificate(&cert).await?;
        self.reload().await?;
        Ok(cert)
    }

    pub async fn certificate(&self, system_id: &str) -> Result<ClientCertificate, RegistryError> {
        self.store()
            .client_certificate(system_id)
            .await?
            .ok_or_else(|| {
                RegistryError::NotFound(format!(
                    "system {system_id} is not bound to a client certificate"
                ))
            })
    }

    /// Lifts the binding: the system's calls are taken without a certificate again.
    pub async fn unbind_certificate(&self, system_id: &str) -> Result<(), RegistryError> {
        self.store().delete_client_certificate(system_id).await?;
        self.reload().await
    }

    /// A new API key for a system; the key itself is returned only here.
    pub async fn create_api_key(
        &self,
        system_id: &str,
        name: &str,
    ) -> Result<(ApiKey, Secret), RegistryError> {
        self.system_exists(system_id).await?;
        let name = validate::name("name", name)?;
        let key = Secret::new(format!("lgsp_{}", random_token(32)));
        let row = ApiKey {
            id: Uuid::now_v7().to_string(),
            system_id: system_id.to_owned(),
            name,
            prefix: key.expose()[..12].to_owned(),
            key_hash: hash_secret(key.expose()),
            created_at: now_rfc3339(),
            revoked_at: None,
        };
        self.store().insert_api_key(&row).await?;
        self.reload().await?;
        Ok((row, key))
    }

    pub async fn revoke_api_key(&self, id: &str) -> Result<(), RegistryError> {
        self.store().revoke_api_key(id, &now_rfc3339()).await?;
        self.reload().await
    }

    // ---- Feedback ----

    pub async fn open_ticket(
        &self,
        consumer: &str,
        new: NewTicket,
        actor: &Actor,
    ) -> Result<Ticket, RegistryError> {
        let api = self.api_named(&new.api).await?;
        if self.store().system(consumer).await?.is_none() {
            return Err(RegistryError::invalid(
                "consumer_system",
                format!("no system has id {consumer}"),
            ));
        }
        if api.status == "draft" {
            // Drafts are not in the catalogue: not even their existence is told.
            return Err(RegistryError::invalid(
                "api",
                format!("no published API is named {}", new.api),
            ));
        }
        if api.provider_system == consumer {
            return Err(RegistryError::invalid(
                "api",
                "a system does not open tickets on its own API",
            ));
        }
        if !matches!(new.kind.as_str(), "problem" | "question" | "request") {
            return Err(RegistryError::invalid(
                "kind",
                "must be \"problem\", \"question\" or \"request\"",
            ));
        }
        let subject = validate::name("subject", &new.subject)?;
        let body = required_text("body", &new.body)?;
        let now = now_rfc3339();
        let ticket = Ticket {
            id: Uuid::now_v7().to_string(),
            api_id: api.id,
            api: new.api,
            consumer_system: consumer.to_owned(),
            kind: new.kind,
            subject,
            status: "open".to_owned(),
            created_at: now.clone(),
            updated_at: now,
        };
        self.store()
            .insert_ticket(&ticket, actor.name(), &body, MAX_OPEN_TICKETS)
            .await?;
        Ok(ticket)
    }

    /// Adds a message; `close` closes the ticket, a provider's or the
    /// operator's message otherwise marks it answered, a consumer's reopens it.
    pub async fn reply_ticket(
        &self,
        id: &str,
        side: &str,
        body: &str,
        close: bool,
        actor: &Actor,
    ) -> Result<Ticket, RegistryError> {
        let Some(ticket) = self.store().ticket(id).await? else {
            return Err(RegistryError::NotFound(format!("no ticket has id {id}")));
        };
        let body = required_text("body", body)?;
        let status = match (close, side) {
            (true, _) => "closed",
            (false, "consumer") => "open",
            (false, _) => "answered",
        };
        if ticket.status == "closed" && !close && side != "consumer" {
            return Err(RegistryError::Conflict(
                "the ticket is closed; the consumer may reopen it by writing".to_owned(),
            ));
        }
        self.store()
            .add_ticket_message(id, actor.name(), side, &body, status, &now_rfc3339())
            .await?;
        self.store()
            .ticket(id)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("no ticket has id {id}")))
    }
}

const DAY: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) is the IPv4 network it
/// maps, as the gateway sees such callers as IPv4.
fn ipv4_if_mapped(net: ipnet::IpNet) -> ipnet::IpNet {
    match net {
        ipnet::IpNet::V6(v6) if v6.prefix_len() >= 96 => v6
            .addr()
            .to_ipv4_mapped()
            .and_then(|v4| ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).ok())
            .map_or(net, ipnet::IpNet::V4),
        other => other,
    }
}

/// Open tickets one consumer system may have at a time.
const MAX_OPEN_TICKETS: usize = 100;

/// A deprecated API whose retirement day has begun (Vietnam time) is retired,
/// whatever its stored status says.
fn past_retirement(api: &Api) -> bool {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    api.retire_on
        .as_deref()
        .and_then(crate::snapshot::retire_instant)
        .is_some_and(|t| now >= t)
}

fn parse_day(field: &'static str, day: &str) -> Result<Date, RegistryError> {
    // `time` also takes a signed year (`+2026-12-31`); a day here is written plainly.
    if day.len() != 10 || !day.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return Err(RegistryError::invalid(
            field,
            format!("{day:?} is not a calendar day written YYYY-MM-DD"),
        ));
    }
    Date::parse(day, DAY).map_err(|_| {
        RegistryError::invalid(
            field,
            format!("{day:?} is not a calendar day written YYYY-MM-DD"),
        )
    })
}

fn format_time(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn required_text(field: &'static str, value: &str) -> Result<String, RegistryError> {
    let text = validate::text(field, value, MAX_TEXT)?;
    if text.is_empty() {
        return Err(RegistryError::invalid(field, "must not be empty"));
    }
    Ok(text)
}

pub(crate) fn check_tags(values: &[String]) -> Result<Vec<String>, RegistryError> {
    if values.len() > MAX_TAGS {
        return Err(RegistryError::invalid(
            "tags",
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    let mut out = Vec::with_capacity(values.len());
    for t in values {
        let tag = validate::name("tags", t)?;
        if tag.chars().count() > 64 {
            return Err(RegistryError::invalid(
                "tags",
                "a tag has at most 64 characters",
            ));
        }
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(out)
}

pub(crate) fn check_extra_upstreams(urls: &[String]) -> Result<Vec<String>, RegistryError> {
    if urls.len() > 16 {
        return Err(RegistryError::invalid(
            "extra_upstreams",
            "at most 16 further upstreams",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(urls.len());
    for u in urls {
        validate::upstream_url("extra_upstreams", u)?;
        let u = u.trim_end_matches('/').to_owned();
        if !out.contains(&u) {
            out.push(u);
        }
    }
    Ok(out)
}

pub(crate) fn health_path(path: &str) -> Result<(), RegistryError> {
    if !path.starts_with('/')
        || path.len() > 512
        || path.chars().any(|c| c.is_control() || c == ' ')
    {
        return Err(RegistryError::invalid(
            "health_path",
            "must be a path starting with '/', without spaces, at most 512 characters",
        ));
    }
    Ok(())
}

fn operation_path(path: &str) -> Result<(), RegistryError> {
    if !path.starts_with('/') || path.len() > 512 || path.contains("//") {
        return Err(RegistryError::invalid(
            "path",
            format!("{path:?}: an operation path starts with '/' (e.g. /khaisinh or /hoso/{{id}})"),
        ));
    }
    for segment in path.split('/').skip(1) {
        let param = segment.len() > 2
            && segment.starts_with('{')
            && segment.ends_with('}')
            && !segment[1..segment.len() - 1].contains(['{', '}']);
        // A literal is written as a request spells it after decoding: no
        // escapes, parameters, dot segments or white space, which no
        // request path would match.
        if !param
            && (segment.contains(['{', '}', '?', '#', '%', ';', '\\'])
                || segment == "."
                || segment == ".."
                || segment.chars().any(|c| c.is_control() || c.is_whitespace()))
        {
            return Err(RegistryError::invalid(
                "path",
                format!("{path:?}: segment {segment:?} is neither literal nor a whole {{name}}"),
            ));
        }
    }
    Ok(())
}

fn plan_from(
    new: NewPlan,
    created_at: String,
    updated: Option<String>,
) -> Result<Plan, RegistryError> {
    let name = validate::name("name", &new.name)?;
    if !(1..=1_000_000).contains(&new.rate) {
        return Err(RegistryError::invalid(
            "rate",
            "requests per second: 1 to 1000000",
        ));
    }
    let burst = new.burst.unwrap_or(new.rate);
    if !(1..=1_000_000).contains(&burst) {
        return Err(RegistryError::invalid("burst", "1 to 1000000"));
    }
    for (field, value) in [("per_day", new.per_day), ("per_month", new.per_month)] {
        if value.is_some_and(|v| !(1..=i64::from(u32::MAX)).contains(&v)) {
            return Err(RegistryError::invalid(
                field,
                "a quota is 1 to 4294967295 calls, or absent",
            ));
        }
    }
    if let (Some(day), Some(month)) = (new.per_day, new.per_month)
        && day > month
    {
        return Err(RegistryError::invalid(
            "per_day",
            "the daily quota exceeds the monthly one",
        ));
    }
    let updated_at = updated.unwrap_or_else(|| created_at.clone());
    Ok(Plan {
        id: new.id,
        name,
        rate: new.rate,
        burst,
        per_day: new.per_day,
        per_month: new.per_month,
        created_at,
        updated_at,
    })
}

/// Lower case, no diacritics (đ as d), NFC-insensitive.
pub fn fold(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    text.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .map(|c| match c {
            'đ' | 'Đ' => 'd',
            c => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

fn matches(entry: &CatalogueEntry, words: &[String]) -> bool {
    if words.is_empty() {
        return true;
    }
    let haystack = fold(&format!(
        "{} {} {} {} {} {}",
        entry.name,
        entry.title,
        entry.description,
        entry.owner_unit.as_deref().unwrap_or(""),
        entry.owner_unit_name.as_deref().unwrap_or(""),
        entry.tags.join(" ")
    ));
    words.iter().all(|w| haystack.contains(w.as_str()))
}

/// What the platform keeps of a client certificate it was given.
struct CheckedCertificate {
    sha256: String,
    subject: String,
    issuer: String,
    not_after: String,
}

/// Largest PEM text taken for one client certificate.
const MAX_CERTIFICATE_PEM: usize = 64 * 1024;

/// One end-entity X.509 certificate in PEM, still valid.
fn check_certificate(pem: &str) -> Result<CheckedCertificate, RegistryError> {
    let bad = |why: String| RegistryError::invalid("certificate", why);
    if pem.len() > MAX_CERTIFICATE_PEM {
        return Err(bad(format!(
            "at most {MAX_CERTIFICATE_PEM} bytes of PEM are taken"
        )));
    }
    let (rest, block) = x509_parser::pem::parse_x509_pem(pem.trim().as_bytes())
        .map_err(|e| bad(format!("is not a PEM certificate: {e}")))?;
    if block.label != "CERTIFICATE" {
        return Err(bad(format!(
            "the PEM block is {:?}, not CERTIFICATE (give the certificate, never a private key)",
            block.label
        )));
    }
    if !rest.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(
            "give exactly one certificate: the system's own, without its chain".to_owned(),
        ));
    }
    let cert = block
        .parse_x509()
        .map_err(|e| bad(format!("is not a valid X.509 certificate: {e}")))?;
    if cert.is_ca() {
        return Err(bad(
            "is a CA certificate; bind the system's own (end-entity) certificate".to_owned(),
        ));
    }
    let not_after = cert.validity().not_after.timestamp();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let fmt = |t: i64| {
        OffsetDateTime::from_unix_timestamp(t)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| t.to_string())
    };
    if not_after <= now {
        return Err(bad(format!("expired at {}", fmt(not_after))));
    }
    Ok(CheckedCertificate {
        sha256: lgsp_auth::sha256_hex(&block.contents),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_after: fmt(not_after),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_ignores_diacritics_and_case() {
        assert_eq!(fold("Đăng ký Khai sinh"), "dang ky khai sinh");
        // Decomposed input folds the same as composed.
        assert_eq!(fold("Ho\u{323}\u{302} ti\u{323}ch"), fold("Hộ tịch"));
    }

    #[test]
    fn operation_paths() {
        assert!(operation_path("/khaisinh").is_ok());
        assert!(operation_path("/hoso/{id}/tepdinhkem").is_ok());
        assert!(operation_path("khaisinh").is_err());
        assert!(operation_path("/a/{id").is_err());
        assert!(operation_path("/a//b").is_err());
        assert_eq!(
            ipv4_if_mapped("::ffff:127.0.0.1/128".parse().unwrap()).to_string(),
            "127.0.0.1/32"
        );
        assert_eq!(
            ipv4_if_mapped("::ffff:0.0.0.0/96".parse().unwrap()).to_string(),
            "0.0.0.0/0"
        );
        assert_eq!(
            ipv4_if_mapped("2001:db8::/48".parse().unwrap()).to_string(),
            "2001:db8::/48"
        );
        for never in [
            "/x%2Fy",
            "/a;v=1",
            "/../d",
            "/b/{a}{b}",
            "/a b",
            "/a\\b",
            "/./a",
        ] {
            assert!(operation_path(never).is_err(), "{never}");
        }
    }
}
