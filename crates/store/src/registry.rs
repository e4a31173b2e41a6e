//! Registry rows: units, systems, APIs, subscriptions.

use crate::{Api, Store, StoreError, Subscription, System, Unit};

const SUBSCRIPTION_COLUMNS: &str = "s.id, s.consumer_system, s.api_id, \
     a.context || '/' || a.version AS api, s.created_at, s.revoked_at, s.plan_id";

impl Store {
    pub async fn insert_unit(&self, unit: &Unit) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO units (code, name, parent_code, created_at) VALUES (?, ?, ?, ?)")
            .bind(&unit.code)
            .bind(&unit.name)
            .bind(&unit.parent_code)
            .bind(&unit.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_unit_parent(&self, code: &str, parent: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE units SET parent_code = ? WHERE code = ?")
            .bind(parent)
            .bind(code)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn unit(&self, code: &str) -> Result<Option<Unit>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM units WHERE code = ?")
            .bind(code)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn units(&self) -> Result<Vec<Unit>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM units ORDER BY code")
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn insert_system(&self, system: &System) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO systems (id, unit_code, code, name, client_id, secret_hash, \
             secret_generation, enabled, builtin, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&system.id)
        .bind(&system.unit_code)
        .bind(&system.code)
        .bind(&system.name)
        .bind(&system.client_id)
        .bind(&system.secret_hash)
        .bind(system.secret_generation)
        .bind(system.enabled)
        .bind(system.builtin)
        .bind(&system.created_at)
        .bind(&system.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn system(&self, id: &str) -> Result<Option<System>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM systems WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn systems(&self) -> Result<Vec<System>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM systems ORDER BY unit_code, code")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Replaces a system's secret; the generation goes up so that tokens
    /// issued under the old secret stop working.
    pub async fn rotate_secret(
        &self,
        id: &str,
        secret_hash: &[u8],
        now: &str,
    ) -> Result<System, StoreError> {
        sqlx::query_as(
            "UPDATE systems SET secret_hash = ?, secret_generation = secret_generation + 1, \
             updated_at = ? WHERE id = ? RETURNING *",
        )
        .bind(secret_hash)
        .bind(now)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("system {id}")))
    }

    /// Renames, disables or enables. Disabling also moves the token
    /// generation on, so tokens issued before stay dead after re-enabling.
    pub async fn update_system(
        &self,
        id: &str,
        name: Option<&str>,
        enabled: Option<bool>,
        now: &str,
    ) -> Result<System, StoreError> {
        sqlx::query_as(
            "UPDATE systems SET name = COALESCE(?, name), enabled = COALESCE(?, enabled), \
             secret_generation = secret_generation + (CASE WHEN ? = 0 AND enabled = 1 THEN 1 ELSE 0 END), \
             updated_at = ? WHERE id = ? RETURNING *",
        )
        .bind(name)
        .bind(enabled)
        .bind(enabled)
        .bind(now)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("system {id}")))
    }

    pub async fn insert_api(&self, api: &Api) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO apis (id, provider_system, name, context, version, upstream_url, \
             protocol, timeout_ms, shared_by_default, keep_bodies, created_at, status, \
             description, tags, contact, extra_upstreams, health_path, default_plan, \
             updated_at, owner_unit) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
             (SELECT unit_code FROM systems WHERE id = ?))",
        )
        .bind(&api.id)
        .bind(&api.provider_system)
        .bind(&api.name)
        .bind(&api.context)
        .bind(&api.version)
        .bind(&api.upstream_url)
        .bind(&api.protocol)
        .bind(api.timeout_ms)
        .bind(api.shared_by_default)
        .bind(api.keep_bodies)
        .bind(&api.created_at)
        .bind(&api.status)
        .bind(&api.description)
        .bind(&api.tags)
        .bind(&api.contact)
        .bind(&api.extra_upstreams)
        .bind(&api.health_path)
        .bind(&api.default_plan)
        .bind(&api.updated_at)
        .bind(&api.provider_system)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn set_api_upstream(&self, id: &str, upstream_url: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE apis SET upstream_url = ? WHERE id = ?")
            .bind(upstream_url)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn api(&self, id: &str) -> Result<Option<Api>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM apis WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn api_by_name(
        &self,
        context: &str,
        version: &str,
    ) -> Result<Option<Api>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM apis WHERE context = ? AND version = ?")
                .bind(context)
                .bind(version)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn apis(&self) -> Result<Vec<Api>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM apis ORDER BY context, version")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn insert_subscription(
        &self,
        id: &str,
        consumer_system: &str,
        api_id: &str,
        plan_id: Option<&str>,
        now: &str,
    ) -> Result<Subscription, StoreError> {
        sqlx::query(
            "INSERT INTO subscriptions (id, consumer_system, api_id, created_at, plan_id) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(consumer_system)
        .bind(api_id)
        .bind(now)
        .bind(plan_id)
        .execute(&self.pool)
        .await?;
        self.subscription(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("subscription {id}")))
    }

    pub async fn subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        let sql = format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions s JOIN apis a ON a.id = s.api_id \
             WHERE s.id = ?"
        );
        Ok(sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The consumer's active subscription to an API, if it has one.
    pub async fn active_subscription(
        &self,
        consumer_system: &str,
        api_id: &str,
    ) -> Result<Option<Subscription>, StoreError> {
        let sql = format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions s JOIN apis a ON a.id = s.api_id \
             WHERE s.consumer_system = ? AND s.api_id = ? AND s.revoked_at IS NULL"
        );
        Ok(sqlx::query_as(&sql)
            .bind(consumer_system)
            .bind(api_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Active subscriptions only, unless `include_revoked`.
    pub async fn subscriptions(
        &self,
        include_revoked: bool,
    ) -> Result<Vec<Subscription>, StoreError> {
        let filter = if include_revoked {
            ""
        } else {
            "WHERE s.revoked_at IS NULL"
        };
        let sql = format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions s JOIN apis a ON a.id = s.api_id \
             {filter} ORDER BY s.created_at, s.id"
        );
        Ok(sqlx::query_as(&sql).fetch_all(&self.pool).await?)
    }

    /// Marks an active subscription revoked; revoking twice is a not-found.
    pub async fn revoke_subscription(&self, id: &str, now: &str) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE subscriptions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("active subscription {id}")));
        }
        Ok(())
    }
}
