//! Code-list rows. A whole version (items and mappings) is written in one
//! transaction, so a version lands whole or not at all.

use serde::Serialize;
use sqlx::{QueryBuilder, Sqlite};

use crate::{Store, StoreError};

/// Rows per INSERT: 7 parameters each, well under SQLite's 32,766.
const ROWS_PER_INSERT: usize = 2000;

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct CodeListRow {
    pub id: String,
    pub name: String,
    pub name_en: String,
    pub owner_unit: Option<String>,
    pub description: String,
    pub legal_basis: String,
    pub source: String,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct CodeVersionRow {
    pub list_id: String,
    pub version: String,
    /// ISO date, inclusive; `None` = since always.
    pub valid_from: Option<String>,
    /// ISO date, exclusive; `None` = still valid.
    pub valid_to: Option<String>,
    pub published_at: String,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct CodeItemRow {
    pub list_id: String,
    pub version: String,
    pub code: String,
    pub name: String,
    pub parent_code: Option<String>,
    pub level: i64,
    /// A JSON object of extra attributes.
    pub attributes: String,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct CodeMappingRow {
    pub list_id: String,
    pub from_version: String,
    pub to_version: String,
    pub old_code: String,
    pub new_code: String,
    pub kind: String,
    pub is_default: bool,
}

/// Everything that makes one version of a list.
#[derive(Clone, Debug)]
pub struct NewCodeVersion {
    pub version: CodeVersionRow,
    pub items: Vec<CodeItemRow>,
    /// Mappings from an earlier version into this one.
    pub mappings: Vec<CodeMappingRow>,
}

impl Store {
    pub async fn code_list_exists(&self, id: &str) -> Result<bool, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT id FROM code_lists WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Writes a list with its versions in one transaction.
    pub async fn insert_code_list(
        &self,
        list: &CodeListRow,
        versions: &[NewCodeVersion],
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO code_lists (id, name, name_en, owner_unit, description, legal_basis, source) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&list.id)
        .bind(&list.name)
        .bind(&list.name_en)
        .bind(&list.owner_unit)
        .bind(&list.description)
        .bind(&list.legal_basis)
        .bind(&list.source)
        .execute(&mut *tx)
        .await?;

        for new in versions {
            insert_version(&mut tx, new).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Publishes a new version in one transaction: the version, its items,
    /// its mappings, and the end of validity of the version it follows.
    ///
    /// `notice` (a JSON payload) is queued, in the same transaction, for
    /// every system with an active callback on the list.
    pub async fn publish_code_version(
        &self,
        new: &NewCodeVersion,
        closes: Option<&str>,
        notice: Option<(&str, &str, i64)>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        if let Some(previous) = closes {
            sqlx::query(
                "UPDATE code_list_versions SET valid_to = ? \
                 WHERE list_id = ? AND version = ? AND (valid_to IS NULL OR valid_to > ?)",
            )
            .bind(&new.version.valid_from)
            .bind(&new.version.list_id)
            .bind(previous)
            .bind(&new.version.valid_from)
            .execute(&mut *tx)
            .await?;
        }
        insert_version(&mut tx, new).await?;
        if let Some((payload, now, now_us)) = notice {
            // One notice per callback; its id is derived from the callback and version.
            sqlx::query(
                "INSERT INTO code_notices (id, callback_id, list_id, version, payload, state, next_attempt_us, created_at) \
                 SELECT id || ':' || ?, id, list_id, ?, ?, 'pending', ?, ? FROM code_list_callbacks \
                 WHERE list_id = ? AND revoked_at IS NULL",
            )
            .bind(&new.version.version)
            .bind(&new.version.version)
            .bind(payload)
            .bind(now_us)
            .bind(now)
            .bind(&new.version.list_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn code_lists(&self) -> Result<Vec<CodeListRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM code_lists ORDER BY id")
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn code_versions(&self) -> Result<Vec<CodeVersionRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM code_list_versions ORDER BY list_id, COALESCE(valid_from, '')",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn code_items(
        &self,
        list_id: &str,
        version: &str,
    ) -> Result<Vec<CodeItemRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM code_items WHERE list_id = ? AND version = ? ORDER BY level, code",
        )
        .bind(list_id)
        .bind(version)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn code_mappings(&self, list_id: &str) -> Result<Vec<CodeMappingRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM code_mappings WHERE list_id = ? ORDER BY old_code, new_code",
        )
        .bind(list_id)
        .fetch_all(&self.pool)
        .await?)
    }
}

async fn insert_version(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    new: &NewCodeVersion,
) -> Result<(), StoreError> {
    let v = &new.version;
    sqlx::query(
        "INSERT INTO code_list_versions (list_id, version, valid_from, valid_to, published_at) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&v.list_id)
    .bind(&v.version)
    .bind(&v.valid_from)
    .bind(&v.valid_to)
    .bind(&v.published_at)
    .execute(&mut **tx)
    .await?;
    // Many rows per statement: a 10,000-item version is a few statements, not 10,000.
    for chunk in new.items.chunks(ROWS_PER_INSERT) {
        let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO code_items (list_id, version, code, name, parent_code, level, attributes) ",
        );
        insert.push_values(chunk, |mut row, item| {
            row.push_bind(&item.list_id)
                .push_bind(&item.version)
                .push_bind(&item.code)
                .push_bind(&item.name)
                .push_bind(&item.parent_code)
                .push_bind(item.level)
                .push_bind(&item.attributes);
        });
        insert.build().execute(&mut **tx).await?;
    }
    for chunk in new.mappings.chunks(ROWS_PER_INSERT) {
        let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO code_mappings (list_id, from_version, to_version, old_code, new_code, kind, is_default) ",
        );
        insert.push_values(chunk, |mut row, m| {
            row.push_bind(&m.list_id)
                .push_bind(&m.from_version)
                .push_bind(&m.to_version)
                .push_bind(&m.old_code)
                .push_bind(&m.new_code)
                .push_bind(&m.kind)
                .push_bind(m.is_default);
        });
        insert.build().execute(&mut **tx).await?;
    }
    Ok(())
}
