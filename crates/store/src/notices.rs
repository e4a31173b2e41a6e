//! Change notices of code lists: callback registrations and the outbox of
//! notices, delivered (and retried) after the version is published.

use serde::Serialize;

use crate::{Store, StoreError};

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct CodeCallback {
    pub id: String,
    pub list_id: String,
    pub system_id: String,
    pub callback_url: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct CodeNotice {
    pub id: String,
    pub callback_id: String,
    pub list_id: String,
    pub version: String,
    #[serde(skip)]
    pub payload: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_us: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

/// A due notice with where it goes.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DueNotice {
    pub id: String,
    pub callback_url: String,
    pub payload: String,
    pub attempts: i64,
}

impl Store {
    pub async fn insert_code_callback(&self, cb: &CodeCallback) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO code_list_callbacks (id, list_id, system_id, callback_url, created_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&cb.id)
        .bind(&cb.list_id)
        .bind(&cb.system_id)
        .bind(&cb.callback_url)
        .bind(&cb.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Active callbacks, of one system if `system_id` is given.
    pub async fn code_callbacks(
        &self,
        list_id: Option<&str>,
        system_id: Option<&str>,
    ) -> Result<Vec<CodeCallback>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM code_list_callbacks WHERE revoked_at IS NULL \
             AND (? IS NULL OR list_id = ?) AND (? IS NULL OR system_id = ?) ORDER BY created_at, id",
        )
        .bind(list_id)
        .bind(list_id)
        .bind(system_id)
        .bind(system_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Revokes a system's own callback; another system's is not found.
    pub async fn revoke_code_callback(
        &self,
        id: &str,
        system_id: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE code_list_callbacks SET revoked_at = ? WHERE id = ? AND system_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .bind(system_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("callback {id}")));
        }
        Ok(())
    }

    /// Notices due now (at most `limit`), oldest first.
    pub async fn due_code_notices(
        &self,
        now_us: i64,
        limit: i64,
    ) -> Result<Vec<DueNotice>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT n.id, c.callback_url, n.payload, n.attempts FROM code_notices n \
             JOIN code_list_callbacks c ON c.id = n.callback_id \
             WHERE n.state = 'pending' AND n.next_attempt_us <= ? ORDER BY n.next_attempt_us LIMIT ?",
        )
        .bind(now_us)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn code_notice_delivered(
        &self,
        id: &str,
        status: i64,
        now: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE code_notices SET state = 'delivered', attempts = attempts + 1, last_status = ?, \
             last_error = NULL, delivered_at = ? WHERE id = ?",
        )
        .bind(status)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn code_notice_failed(
        &self,
        id: &str,
        status: Option<i64>,
        error: &str,
        next_attempt_us: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE code_notices SET attempts = attempts + 1, last_status = ?, last_error = ?, \
             next_attempt_us = ? WHERE id = ?",
        )
        .bind(status)
        .bind(error)
        .bind(next_attempt_us)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every notice, newest first (for the operator).
    pub async fn code_notices(
        &self,
        list_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<CodeNotice>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM code_notices WHERE (? IS NULL OR list_id = ?) ORDER BY created_at DESC, id DESC LIMIT ?",
        )
        .bind(list_id)
        .bind(list_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}
