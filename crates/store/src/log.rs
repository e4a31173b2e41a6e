//! The evidence tree's storage read from the async pool: tiles, signed
//! checkpoints and the keys that signed them, and kept bodies. Tiles are
//! written only by `CallAppender`, with the records they cover.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::{QueryBuilder, Sqlite};

use crate::{CallRecord, Store, StoreError};

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct CheckpointRow {
    pub id: i64,
    pub size: i64,
    pub time_us: i64,
    pub key_id: String,
    pub note: String,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct LogKeyRow {
    pub key_id: String,
    pub vkey: String,
    pub created_us: i64,
    pub retired_us: Option<i64>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct BodiesRow {
    pub request: Option<Vec<u8>>,
    pub response: Option<Vec<u8>>,
    pub expires_us: i64,
}

impl Store {
    /// The tiles asked for that exist, by (level, index).
    pub async fn log_tiles(
        &self,
        ids: &[(u8, u64)],
    ) -> Result<HashMap<(u8, u64), Vec<u8>>, StoreError> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(200) {
            let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(
                "SELECT level, idx, hashes FROM log_tiles WHERE (level, idx) IN (",
            );
            let mut list = query.separated(", ");
            for (level, index) in chunk {
                list.push("(")
                    .push_bind_unseparated(*level as i64)
                    .push_unseparated(", ")
                    .push_bind_unseparated(*index as i64)
                    .push_unseparated(")");
            }
            query.push(")");
            let rows: Vec<(i64, i64, Vec<u8>)> =
                query.build_query_as().fetch_all(&self.pool).await?;
            for (level, index, hashes) in rows {
                out.insert((level as u8, index as u64), hashes);
            }
        }
        // Level 0's last, incomplete tile lives in the records' leaf hashes.
        for &(level, index) in ids {
            let whole = out
                .get(&(level, index))
                .is_some_and(|h| h.len() == 256 * 32);
            if level != 0 || whole {
                continue;
            }
            let Some(first) = index.checked_mul(256).and_then(|f| i64::try_from(f).ok()) else {
                continue;
            };
            let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                "SELECT seq, leaf_hash FROM calls WHERE seq > ? AND seq <= ? + 256 \
                 AND leaf_hash IS NOT NULL ORDER BY seq",
            )
            .bind(first)
            .bind(first)
            .fetch_all(&self.pool)
            .await?;
            let mut hashes = Vec::new();
            for (n, (seq, hash)) in rows.iter().enumerate() {
                if *seq != first + 1 + n as i64 || hash.len() != 32 {
                    break;
                }
                hashes.extend_from_slice(hash);
            }
            if !hashes.is_empty() {
                out.insert((0, index), hashes);
            }
        }
        Ok(out)
    }

    /// Every tile of one level, in order, streamed to `each` (for re-checking a whole log).
    pub async fn for_each_tile(
        &self,
        level: u8,
        mut each: impl FnMut(u64, Vec<u8>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut rows = sqlx::query_as::<_, (i64, Vec<u8>)>(
            "SELECT idx, hashes FROM log_tiles WHERE level = ? ORDER BY idx",
        )
        .bind(level as i64)
        .fetch(&self.pool);
        while let Some((index, hashes)) = rows.try_next().await? {
            each(index as u64, hashes)?;
        }
        Ok(())
    }

    /// Every call record in `seq` order, streamed to `each`.
    pub async fn for_each_call(
        &self,
        from_seq: i64,
        mut each: impl FnMut(CallRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut rows =
            sqlx::query_as::<_, CallRecord>("SELECT * FROM calls WHERE seq >= ? ORDER BY seq")
                .bind(from_seq)
                .fetch(&self.pool);
        while let Some(record) = rows.try_next().await? {
            each(record)?;
        }
        Ok(())
    }

    /// Records with `seq` in `[from, to)`, in order.
    pub async fn calls_between(&self, from: i64, to: i64) -> Result<Vec<CallRecord>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM calls WHERE seq >= ? AND seq < ? ORDER BY seq")
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn insert_checkpoint(
        &self,
        size: u64,
        time_us: i64,
        key_id: &str,
        note: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO log_checkpoints (size, time_us, key_id, note) VALUES (?, ?, ?, ?)",
        )
        .bind(size as i64)
        .bind(time_us)
        .bind(key_id)
        .bind(note)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM log_checkpoints ORDER BY id DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// All checkpoints, oldest first.
    pub async fn checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM log_checkpoints ORDER BY id")
            .fetch_all(&self.pool)
            .await?)
    }

    /// The earliest checkpoint whose tree holds at least `size` leaves.
    pub async fn checkpoint_covering(
        &self,
        size: u64,
    ) -> Result<Option<CheckpointRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM log_checkpoints WHERE size >= ? ORDER BY size, id LIMIT 1",
        )
        .bind(size as i64)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn log_keys(&self) -> Result<Vec<LogKeyRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM log_keys ORDER BY created_us")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Records a signing key (once) and retires every other key still active.
    pub async fn activate_log_key(
        &self,
        key_id: &str,
        vkey: &str,
        now_us: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT OR IGNORE INTO log_keys (key_id, vkey, created_us) VALUES (?, ?, ?)")
            .bind(key_id)
            .bind(vkey)
            .bind(now_us)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE log_keys SET retired_us = NULL WHERE key_id = ?")
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE log_keys SET retired_us = ? WHERE key_id != ? AND retired_us IS NULL")
            .bind(now_us)
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn call_bodies(&self, seq: i64) -> Result<Option<BodiesRow>, StoreError> {
        Ok(
            sqlx::query_as("SELECT request, response, expires_us FROM call_bodies WHERE seq = ?")
                .bind(seq)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Deletes bodies whose retention has passed, a thousand at a time so the
    /// call log's writer never waits long for the write lock; returns how many
    /// records lost theirs.
    pub async fn expire_bodies(&self, now_us: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let deleted = sqlx::query(
                "DELETE FROM call_bodies WHERE seq IN \
                 (SELECT seq FROM call_bodies WHERE expires_us <= ? ORDER BY expires_us LIMIT 1000)",
            )
            .bind(now_us)
            .execute(&self.pool)
            .await?
            .rows_affected();
            total += deleted;
            if deleted < 1000 {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }
}
