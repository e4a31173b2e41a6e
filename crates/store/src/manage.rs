//! API management rows: lifecycle and specifications, data standards, plans,
//! onboarding requests, holidays, network rules, API keys, feedback tickets.

use serde::Serialize;
use sqlx::types::Json;

use crate::{Api, Store, StoreError, Subscription};

/// Longest list of subscription requests or tickets one query answers.
pub const MAX_LISTED: usize = 1000;

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Plan {
    pub id: String,
    pub name: String,
    /// Requests per second, sustained.
    pub rate: i64,
    /// Requests that may come at once above the rate.
    pub burst: i64,
    pub per_day: Option<i64>,
    pub per_month: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

/// One step in the history of an API, a request or a ticket.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Event {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

/// An API's specification without its content.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct SpecInfo {
    pub api_id: String,
    pub kind: String,
    pub media_type: String,
    pub sha256: String,
    pub summary: String,
    pub uploaded_at: String,
    pub bytes: i64,
}

/// A specification to store, as uploaded and checked.
pub struct NewSpec<'a> {
    pub kind: &'a str,
    pub media_type: &'a str,
    pub content: &'a [u8],
    pub sha256: &'a str,
    pub summary: &'a str,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct DataStandard {
    pub id: String,
    pub version: String,
    pub name: String,
    pub description: String,
    pub owner_unit: Option<String>,
    pub tags: Json<Vec<String>>,
    pub schema: Json<serde_json::Value>,
    pub created_at: String,
}

/// An operation whose request body must validate against a data standard.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Validation {
    pub api_id: String,
    pub method: String,
    pub path: String,
    /// Answered as `standard` and `version`, the names a rule is given by.
    #[serde(rename = "standard")]
    pub standard_id: String,
    #[serde(rename = "version")]
    pub standard_version: String,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct SubscriptionRequest {
    pub id: String,
    pub consumer_system: String,
    pub api_id: String,
    /// `{context}/{version}`.
    pub api: String,
    pub plan_id: Option<String>,
    pub purpose: String,
    pub legal_basis: String,
    /// `pending`, `approved`, `refused` or `withdrawn`.
    pub status: String,
    pub requested_by: String,
    pub requested_at: String,
    pub due_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub reason: Option<String>,
    pub subscription_id: Option<String>,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Holiday {
    pub day: String,
    pub name: String,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Network {
    pub system_id: String,
    pub cidr: String,
    pub note: String,
    pub created_at: String,
}

/// The client certificate a system is bound to.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct ClientCertificate {
    pub system_id: String,
    /// Lower-case hex SHA-256 of the certificate's DER encoding.
    pub sha256: String,
    pub subject: String,
    pub issuer: String,
    /// RFC 3339.
    pub not_after: String,
    pub pem: String,
    pub bound_by: String,
    pub bound_at: String,
}

/// An API key without its secret part.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct ApiKey {
    pub id: String,
    pub system_id: String,
    pub name: String,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    #[serde(skip)]
    pub key_hash: Vec<u8>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Ticket {
    pub id: String,
    pub api_id: String,
    pub api: String,
    pub consumer_system: String,
    pub kind: String,
    pub subject: String,
    /// `open`, `answered` or `closed`.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct TicketMessage {
    pub at: String,
    pub author: String,
    /// `consumer`, `provider` or `operator`.
    pub side: String,
    pub body: String,
    /// The ticket's status after this message.
    pub status: String,
}

const REQUEST_COLUMNS: &str = "r.id, r.consumer_system, r.api_id, a.context || '/' || a.version AS api, \
     r.plan_id, r.purpose, r.legal_basis, r.status, r.requested_by, r.requested_at, r.due_at, \
     r.decided_by, r.decided_at, r.reason, r.subscription_id";

const TICKET_COLUMNS: &str = "t.id, t.api_id, a.context || '/' || a.version AS api, t.consumer_system, \
     t.kind, t.subject, t.status, t.created_at, t.updated_at";

/// What a change of an API's description and routing sets; `None` keeps the value.
#[derive(Debug, Default, PartialEq)]
pub struct ApiChange {
    pub name: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
    pub contact: Option<String>,
    pub upstream_url: Option<String>,
    pub extra_upstreams: Option<Vec<String>>,
    /// `Some(None)` removes the health check.
    pub health_path: Option<Option<String>>,
    pub timeout_ms: Option<i64>,
    /// `Some(None)` removes the default plan.
    pub default_plan: Option<Option<String>>,
    pub shared_by_default: Option<bool>,
    pub keep_bodies: Option<bool>,
}

impl Store {
    // ---- APIs: description, lifecycle, specification ----

    pub async fn update_api(
        &self,
        id: &str,
        change: &ApiChange,
        actor: &str,
        now: &str,
    ) -> Result<Api, StoreError> {
        let mut tx = self.write_tx().await?;
        let api: Api = sqlx::query_as(
            "UPDATE apis SET name = COALESCE(?, name), description = COALESCE(?, description), \
             tags = COALESCE(?, tags), contact = COALESCE(?, contact), \
             upstream_url = COALESCE(?, upstream_url), extra_upstreams = COALESCE(?, extra_upstreams), \
             health_path = CASE WHEN ? THEN ? ELSE health_path END, \
             timeout_ms = COALESCE(?, timeout_ms), \
             default_plan = CASE WHEN ? THEN ? ELSE default_plan END, \
             shared_by_default = COALESCE(?, shared_by_default), keep_bodies = COALESCE(?, keep_bodies), \
             updated_at = ? WHERE id = ? RETURNING *",
        )
        .bind(&change.name)
        .bind(&change.description)
        .bind(change.tags.as_ref().map(Json))
        .bind(&change.contact)
        .bind(&change.upstream_url)
        .bind(change.extra_upstreams.as_ref().map(Json))
        .bind(change.health_path.is_some())
        .bind(change.health_path.clone().flatten())
        .bind(change.timeout_ms)
        .bind(change.default_plan.is_some())
        .bind(change.default_plan.clone().flatten())
        .bind(change.shared_by_default)
        .bind(change.keep_bodies)
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("API {id}")))?;
        insert_api_event(&mut tx, id, now, actor, "updated", "").await?;
        tx.commit().await?;
        Ok(api)
    }

    /// Moves an API to `status` if it is in one of `from`; records who and when.
    pub async fn set_api_status(
        &self,
        id: &str,
        from: &[&str],
        status: &str,
        retire_on: Option<&str>,
        actor: &str,
        now: &str,
    ) -> Result<Option<Api>, StoreError> {
        let mut tx = self.write_tx().await?;
        let current: Option<String> = sqlx::query_scalar("SELECT status FROM apis WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(current) = current else {
            return Err(StoreError::NotFound(format!("API {id}")));
        };
        if !from.contains(&current.as_str()) {
            return Ok(None);
        }
        let api: Api = sqlx::query_as(
            "UPDATE apis SET status = ?, retire_on = ?, \
             deprecated_at = CASE WHEN ? = 'deprecated' THEN ? ELSE deprecated_at END, \
             updated_at = ? WHERE id = ? RETURNING *",
        )
        .bind(status)
        .bind(retire_on)
        .bind(status)
        .bind(now)
        .bind(now)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let detail = match retire_on {
            Some(day) => format!("{current} -> {status}, retired on {day}"),
            None => format!("{current} -> {status}"),
        };
        insert_api_event(&mut tx, id, now, actor, status, &detail).await?;
        tx.commit().await?;
        Ok(Some(api))
    }

    pub async fn api_event(
        &self,
        id: &str,
        actor: &str,
        action: &str,
        detail: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        insert_api_event(&mut tx, id, now, actor, action, detail).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn api_events(&self, id: &str) -> Result<Vec<Event>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT at, actor, action, detail FROM api_events WHERE api_id = ? ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn put_spec(
        &self,
        api_id: &str,
        spec: NewSpec<'_>,
        actor: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO api_specs (api_id, kind, media_type, content, sha256, summary, uploaded_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (api_id) DO UPDATE SET kind = excluded.kind, \
             media_type = excluded.media_type, content = excluded.content, sha256 = excluded.sha256, \
             summary = excluded.summary, uploaded_at = excluded.uploaded_at",
        )
        .bind(api_id)
        .bind(spec.kind)
        .bind(spec.media_type)
        .bind(spec.content)
        .bind(spec.sha256)
        .bind(spec.summary)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        insert_api_event(&mut tx, api_id, now, actor, "specification", spec.summary).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn spec_info(&self, api_id: &str) -> Result<Option<SpecInfo>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT api_id, kind, media_type, sha256, summary, uploaded_at, length(content) AS bytes \
             FROM api_specs WHERE api_id = ?",
        )
        .bind(api_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The specification as uploaded: its media type and content.
    pub async fn spec(&self, api_id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT media_type, content FROM api_specs WHERE api_id = ?")
                .bind(api_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn specs(&self) -> Result<Vec<SpecInfo>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT api_id, kind, media_type, sha256, summary, uploaded_at, length(content) AS bytes \
             FROM api_specs",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    // ---- Data standards and the operations that require them ----

    pub async fn insert_standard(&self, s: &DataStandard) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO data_standards (id, version, name, description, owner_unit, tags, schema, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id)
        .bind(&s.version)
        .bind(&s.name)
        .bind(&s.description)
        .bind(&s.owner_unit)
        .bind(&s.tags)
        .bind(&s.schema)
        .bind(&s.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn standard(
        &self,
        id: &str,
        version: &str,
    ) -> Result<Option<DataStandard>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM data_standards WHERE id = ? AND version = ?")
                .bind(id)
                .bind(version)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn standards(&self) -> Result<Vec<DataStandard>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM data_standards ORDER BY id, created_at")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn validations(&self) -> Result<Vec<Validation>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM api_validations ORDER BY api_id, path, method")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Replaces the validated operations of one API.
    pub async fn set_validations(
        &self,
        api_id: &str,
        rules: &[Validation],
        actor: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM api_validations WHERE api_id = ?")
            .bind(api_id)
            .execute(&mut *tx)
            .await?;
        for r in rules {
            sqlx::query(
                "INSERT INTO api_validations (api_id, method, path, standard_id, standard_version) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(api_id)
            .bind(&r.method)
            .bind(&r.path)
            .bind(&r.standard_id)
            .bind(&r.standard_version)
            .execute(&mut *tx)
            .await?;
        }
        let detail = format!("{} validated operation(s)", rules.len());
        insert_api_event(&mut tx, api_id, now, actor, "validations", &detail).await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- Plans ----

    pub async fn insert_plan(&self, plan: &Plan) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO plans (id, name, rate, burst, per_day, per_month, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&plan.id)
        .bind(&plan.name)
        .bind(plan.rate)
        .bind(plan.burst)
        .bind(plan.per_day)
        .bind(plan.per_month)
        .bind(&plan.created_at)
        .bind(&plan.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn update_plan(&self, plan: &Plan) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE plans SET name = ?, rate = ?, burst = ?, per_day = ?, per_month = ?, updated_at = ? \
             WHERE id = ?",
        )
        .bind(&plan.name)
        .bind(plan.rate)
        .bind(plan.burst)
        .bind(plan.per_day)
        .bind(plan.per_month)
        .bind(&plan.updated_at)
        .bind(&plan.id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("plan {}", plan.id)));
        }
        Ok(())
    }

    pub async fn plan(&self, id: &str) -> Result<Option<Plan>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM plans WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn plans(&self) -> Result<Vec<Plan>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM plans ORDER BY id")
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn set_subscription_plan(
        &self,
        id: &str,
        plan_id: Option<&str>,
    ) -> Result<Subscription, StoreError> {
        let done =
            sqlx::query("UPDATE subscriptions SET plan_id = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(plan_id)
                .bind(id)
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("active subscription {id}")));
        }
        self.subscription(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("subscription {id}")))
    }

    /// Calls let through per consumer and API since `month_start_us`, and
    /// of those since `day_start_us`: the quotas' starting counts. A call
    /// counts once it passed the limits, as the gateway counts it, even if it
    /// was refused later (its body broke a data standard, the provider was
    /// down): only the refusals made before the limits are left out.
    pub async fn admitted_calls(
        &self,
        month_start_us: i64,
        day_start_us: i64,
    ) -> Result<Vec<(String, String, i64, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT consumer, api, SUM(time_us >= ?), COUNT(*) FROM calls \
             WHERE time_us >= ? AND consumer IS NOT NULL AND api IS NOT NULL \
             AND (reason IS NULL OR reason NOT IN ('no_api_in_path', 'dot_segment', \
             'unknown_api', 'api_not_published', 'api_retired', 'missing_token', \
             'invalid_token', 'invalid_api_key', 'unknown_system', 'system_disabled', \
             'secret_rotated', 'client_certificate_missing', 'client_certificate_mismatch', \
             'network_not_allowed', 'not_subscribed', 'rate_limited', 'quota_day', 'quota_month')) \
             GROUP BY consumer, api",
        )
        .bind(day_start_us)
        .bind(month_start_us)
        .fetch_all(&self.pool)
        .await?)
    }

    // ---- Onboarding ----

    pub async fn insert_request(
        &self,
        r: &SubscriptionRequest,
        event_detail: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO subscription_requests (id, consumer_system, api_id, plan_id, purpose, \
             legal_basis, status, requested_by, requested_at, due_at) \
             VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
        )
        .bind(&r.id)
        .bind(&r.consumer_system)
        .bind(&r.api_id)
        .bind(&r.plan_id)
        .bind(&r.purpose)
        .bind(&r.legal_basis)
        .bind(&r.requested_by)
        .bind(&r.requested_at)
        .bind(&r.due_at)
        .execute(&mut *tx)
        .await?;
        insert_request_event(
            &mut tx,
            &r.id,
            &r.requested_at,
            &r.requested_by,
            "requested",
            event_detail,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn request(&self, id: &str) -> Result<Option<SubscriptionRequest>, StoreError> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM subscription_requests r JOIN apis a ON a.id = r.api_id \
             WHERE r.id = ?"
        );
        Ok(sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Requests, newest first; filtered by status, consumer and the API's provider.
    /// Newest first, at most [`MAX_LISTED`].
    pub async fn requests(
        &self,
        status: Option<&str>,
        consumer: Option<&str>,
        provider: Option<&str>,
    ) -> Result<Vec<SubscriptionRequest>, StoreError> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM subscription_requests r JOIN apis a ON a.id = r.api_id \
             WHERE (?1 IS NULL OR r.status = ?1) AND (?2 IS NULL OR r.consumer_system = ?2) \
             AND (?3 IS NULL OR a.provider_system = ?3) ORDER BY r.requested_at DESC, r.id DESC \
             LIMIT {MAX_LISTED}"
        );
        Ok(sqlx::query_as(&sql)
            .bind(status)
            .bind(consumer)
            .bind(provider)
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn request_events(&self, id: &str) -> Result<Vec<Event>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT at, actor, action, detail FROM subscription_request_events \
             WHERE request_id = ? ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Decides a pending request. Approval creates the subscription (or
    /// keeps an active one) in the same transaction. `None` if the request
    /// was no longer pending.
    pub async fn decide_request(
        &self,
        id: &str,
        decision: Decision<'_>,
        actor: &str,
        now: &str,
    ) -> Result<Option<SubscriptionRequest>, StoreError> {
        let mut tx = self.write_tx().await?;
        let row: Option<(String, String, Option<String>, String)> = sqlx::query_as(
            "SELECT consumer_system, api_id, plan_id, status FROM subscription_requests WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((consumer, api_id, requested_plan, status)) = row else {
            return Err(StoreError::NotFound(format!("subscription request {id}")));
        };
        if status != "pending" {
            return Ok(None);
        }
        let (new_status, reason, subscription, detail) = match decision {
            Decision::Approve {
                plan,
                subscription_id,
            } => {
                let plan = plan.map(str::to_owned).or(requested_plan);
                let existing: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM subscriptions WHERE consumer_system = ? AND api_id = ? AND revoked_at IS NULL",
                )
                .bind(&consumer)
                .bind(&api_id)
                .fetch_optional(&mut *tx)
                .await?;
                let sub = match existing {
                    Some(sub) => {
                        sqlx::query(
                            "UPDATE subscriptions SET plan_id = COALESCE(?, plan_id) WHERE id = ?",
                        )
                        .bind(&plan)
                        .bind(&sub)
                        .execute(&mut *tx)
                        .await?;
                        sub
                    }
                    None => {
                        sqlx::query(
                            "INSERT INTO subscriptions (id, consumer_system, api_id, created_at, plan_id) \
                             VALUES (?, ?, ?, ?, ?)",
                        )
                        .bind(subscription_id)
                        .bind(&consumer)
                        .bind(&api_id)
                        .bind(now)
                        .bind(&plan)
                        .execute(&mut *tx)
                        .await?;
                        subscription_id.to_owned()
                    }
                };
                let detail = match &plan {
                    Some(p) => format!("subscription {sub}, plan {p}"),
                    None => format!("subscription {sub}"),
                };
                ("approved", None, Some(sub), detail)
            }
            Decision::Refuse { reason } => {
                ("refused", Some(reason.to_owned()), None, reason.to_owned())
            }
            Decision::Withdraw => ("withdrawn", None, None, String::new()),
        };
        sqlx::query(
            "UPDATE subscription_requests SET status = ?, decided_by = ?, decided_at = ?, reason = ?, \
             subscription_id = ? WHERE id = ?",
        )
        .bind(new_status)
        .bind(actor)
        .bind(now)
        .bind(&reason)
        .bind(&subscription)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        insert_request_event(&mut tx, id, now, actor, new_status, &detail).await?;
        tx.commit().await?;
        self.request(id).await
    }

    pub async fn holidays(&self) -> Result<Vec<Holiday>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM holidays ORDER BY day")
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn put_holiday(&self, day: &str, name: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO holidays (day, name) VALUES (?, ?) ON CONFLICT (day) DO UPDATE SET name = excluded.name",
        )
        .bind(day)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_holiday(&self, day: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM holidays WHERE day = ?")
            .bind(day)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("holiday {day}")));
        }
        Ok(())
    }

    // ---- Network rules and API keys ----

    pub async fn networks(&self) -> Result<Vec<Network>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM system_networks ORDER BY system_id, cidr")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Replaces a system's networks.
    pub async fn set_networks(
        &self,
        system_id: &str,
        networks: &[(String, String)],
        now: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM system_networks WHERE system_id = ?")
            .bind(system_id)
            .execute(&mut *tx)
            .await?;
        for (cidr, note) in networks {
            sqlx::query(
                "INSERT INTO system_networks (system_id, cidr, note, created_at) VALUES (?, ?, ?, ?)",
            )
            .bind(system_id)
            .bind(cidr)
            .bind(note)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- Client certificates ----

    pub async fn client_certificates(&self) -> Result<Vec<ClientCertificate>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM system_certificates ORDER BY system_id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn client_certificate(
        &self,
        system_id: &str,
    ) -> Result<Option<ClientCertificate>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM system_certificates WHERE system_id = ?")
                .bind(system_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Binds a system to a certificate, replacing any earlier binding.
    pub async fn set_client_certificate(&self, cert: &ClientCertificate) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO system_certificates \
             (system_id, sha256, subject, issuer, not_after, pem, bound_by, bound_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (system_id) DO UPDATE SET sha256 = excluded.sha256, \
             subject = excluded.subject, issuer = excluded.issuer, \
             not_after = excluded.not_after, pem = excluded.pem, \
             bound_by = excluded.bound_by, bound_at = excluded.bound_at",
        )
        .bind(&cert.system_id)
        .bind(&cert.sha256)
        .bind(&cert.subject)
        .bind(&cert.issuer)
        .bind(&cert.not_after)
        .bind(&cert.pem)
        .bind(&cert.bound_by)
        .bind(&cert.bound_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes a system's binding; a system without one is a not-found.
    pub async fn delete_client_certificate(&self, system_id: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM system_certificates WHERE system_id = ?")
            .bind(system_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "client certificate of system {system_id}"
            )));
        }
        Ok(())
    }

    pub async fn insert_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_keys (id, system_id, name, prefix, key_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.id)
        .bind(&key.system_id)
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(&key.key_hash)
        .bind(&key.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every key, or one system's; revoked ones too when `include_revoked`.
    pub async fn api_keys(
        &self,
        system_id: Option<&str>,
        include_revoked: bool,
    ) -> Result<Vec<ApiKey>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM api_keys WHERE (?1 IS NULL OR system_id = ?1) \
             AND (?2 OR revoked_at IS NULL) ORDER BY created_at, id",
        )
        .bind(system_id)
        .bind(include_revoked)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn revoke_api_key(&self, id: &str, now: &str) -> Result<(), StoreError> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("active API key {id}")));
        }
        Ok(())
    }

    // ---- Feedback tickets ----

    /// Opens a ticket unless its consumer already has `max_open` open ones;
    /// counted and written under one write lock, so concurrent openings
    /// cannot pass the bound together.
    pub async fn insert_ticket(
        &self,
        t: &Ticket,
        author: &str,
        body: &str,
        max_open: usize,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM tickets WHERE consumer_system = ? AND status = 'open'",
        )
        .bind(&t.consumer_system)
        .fetch_one(&mut *tx)
        .await?;
        if open as usize >= max_open {
            return Err(StoreError::Conflict(format!(
                "this system already has {open} open tickets; close some before opening more"
            )));
        }
        sqlx::query(
            "INSERT INTO tickets (id, api_id, consumer_system, kind, subject, status, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, 'open', ?, ?)",
        )
        .bind(&t.id)
        .bind(&t.api_id)
        .bind(&t.consumer_system)
        .bind(&t.kind)
        .bind(&t.subject)
        .bind(&t.created_at)
        .bind(&t.created_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO ticket_messages (ticket_id, at, author, side, body, status) VALUES (?, ?, ?, 'consumer', ?, 'open')",
        )
        .bind(&t.id)
        .bind(&t.created_at)
        .bind(author)
        .bind(body)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn ticket(&self, id: &str) -> Result<Option<Ticket>, StoreError> {
        let sql = format!(
            "SELECT {TICKET_COLUMNS} FROM tickets t JOIN apis a ON a.id = t.api_id WHERE t.id = ?"
        );
        Ok(sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Tickets, newest activity first: a consumer's, or those on a provider's APIs, or all.
    /// Most recently changed first, at most [`MAX_LISTED`].
    pub async fn tickets(
        &self,
        consumer: Option<&str>,
        provider: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<Ticket>, StoreError> {
        let sql = format!(
            "SELECT {TICKET_COLUMNS} FROM tickets t JOIN apis a ON a.id = t.api_id \
             WHERE (?1 IS NULL OR t.consumer_system = ?1 OR a.provider_system = ?2) \
             AND (?2 IS NULL OR a.provider_system = ?2 OR t.consumer_system = ?1) \
             AND (?3 IS NULL OR t.status = ?3) ORDER BY t.updated_at DESC, t.id DESC \
             LIMIT {MAX_LISTED}"
        );
        Ok(sqlx::query_as(&sql)
            .bind(consumer)
            .bind(provider)
            .bind(status)
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn ticket_messages(&self, id: &str) -> Result<Vec<TicketMessage>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT at, author, side, body, status FROM ticket_messages WHERE ticket_id = ? ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn add_ticket_message(
        &self,
        id: &str,
        author: &str,
        side: &str,
        body: &str,
        status: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE tickets SET status = ?, updated_at = ? WHERE id = ?")
            .bind(status)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("ticket {id}")));
        }
        sqlx::query(
            "INSERT INTO ticket_messages (ticket_id, at, author, side, body, status) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(now)
        .bind(author)
        .bind(side)
        .bind(body)
        .bind(status)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// How a pending subscription request ends.
pub enum Decision<'a> {
    Approve {
        plan: Option<&'a str>,
        /// Id of the subscription created if none is active.
        subscription_id: &'a str,
    },
    Refuse {
        reason: &'a str,
    },
    Withdraw,
}

async fn insert_api_event(
    tx: &mut sqlx::SqliteConnection,
    api_id: &str,
    at: &str,
    actor: &str,
    action: &str,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_events (api_id, at, actor, action, detail) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(api_id)
    .bind(at)
    .bind(actor)
    .bind(action)
    .bind(detail)
    .execute(tx)
    .await?;
    Ok(())
}

async fn insert_request_event(
    tx: &mut sqlx::SqliteConnection,
    request_id: &str,
    at: &str,
    actor: &str,
    action: &str,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO subscription_request_events (request_id, at, actor, action, detail) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(request_id)
    .bind(at)
    .bind(actor)
    .bind(action)
    .bind(detail)
    .execute(tx)
    .await?;
    Ok(())
}
