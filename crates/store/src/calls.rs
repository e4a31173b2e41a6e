//! The call log's rows: appended in groups by one writer, read back with filters.

use sqlx::{QueryBuilder, Sqlite};

use crate::{CallRecord, Store, StoreError};

/// SQLite allows 32,766 bound parameters in one statement; a record takes 14.
const MAX_ROWS_PER_INSERT: usize = 2000;

/// Which calls to list. Every field narrows the result; `None` means any.
#[derive(Clone, Debug, Default)]
pub struct CallFilter {
    pub consumer: Option<String>,
    pub api: Option<String>,
    /// Inclusive range of HTTP statuses.
    pub status: Option<(i64, i64)>,
    pub since_us: Option<i64>,
    pub until_us: Option<i64>,
    /// Only records with `seq` below this (the cursor of the previous page).
    pub before_seq: Option<i64>,
    pub limit: i64,
}

#[derive(Clone, Debug)]
pub struct CallPage {
    pub items: Vec<CallRecord>,
    /// Cursor for the next (older) page, if there may be one.
    pub next_before: Option<i64>,
}

impl Store {
    /// Appends records in one transaction, synced to disk when it returns.
    /// Returns the `seq` given to each record, in order.
    pub async fn append_calls(&self, records: &[CallRecord]) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut seqs = Vec::with_capacity(records.len());
        for chunk in records.chunks(MAX_ROWS_PER_INSERT) {
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO calls (request_id, time_us, consumer, api, method, path, status, \
                 latency_us, request_bytes, response_bytes, request_sha256, response_sha256, \
                 client_addr, reason) ",
            );
            insert.push_values(chunk, |mut row, r| {
                row.push_bind(&r.request_id)
                    .push_bind(r.time_us)
                    .push_bind(&r.consumer)
                    .push_bind(&r.api)
                    .push_bind(&r.method)
                    .push_bind(&r.path)
                    .push_bind(r.status)
                    .push_bind(r.latency_us)
                    .push_bind(r.request_bytes)
                    .push_bind(r.response_bytes)
                    .push_bind(&r.request_sha256)
                    .push_bind(&r.response_sha256)
                    .push_bind(&r.client_addr)
                    .push_bind(&r.reason);
            });
            insert.push(" RETURNING seq");
            let rows: Vec<(i64,)> = insert.build_query_as().fetch_all(&mut *tx).await?;
            // Rows get increasing rowids in VALUES order, but RETURNING may
            // list them in any order: sort to pair each record with its seq.
            let mut chunk_seqs: Vec<i64> = rows.into_iter().map(|(seq,)| seq).collect();
            chunk_seqs.sort_unstable();
            seqs.extend(chunk_seqs);
        }
        tx.commit().await?;
        Ok(seqs)
    }

    /// Newest first.
    pub async fn calls(&self, filter: &CallFilter) -> Result<CallPage, StoreError> {
        let mut query: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT * FROM calls WHERE 1 = 1");
        if let Some(consumer) = &filter.consumer {
            query.push(" AND consumer = ").push_bind(consumer);
        }
        if let Some(api) = &filter.api {
            query.push(" AND api = ").push_bind(api);
        }
        if let Some((low, high)) = filter.status {
            query
                .push(" AND status BETWEEN ")
                .push_bind(low)
                .push(" AND ")
                .push_bind(high);
        }
        if let Some(since) = filter.since_us {
            query.push(" AND time_us >= ").push_bind(since);
        }
        if let Some(until) = filter.until_us {
            query.push(" AND time_us < ").push_bind(until);
        }
        if let Some(before) = filter.before_seq {
            query.push(" AND seq < ").push_bind(before);
        }
        query
            .push(" ORDER BY seq DESC LIMIT ")
            .push_bind(filter.limit + 1);

        let mut items: Vec<CallRecord> = query.build_query_as().fetch_all(&self.pool).await?;
        let more = items.len() as i64 > filter.limit;
        items.truncate(filter.limit as usize);
        let next_before = if more {
            items.last().map(|r| r.seq)
        } else {
            None
        };
        Ok(CallPage { items, next_before })
    }

    pub async fn call_by_request_id(
        &self,
        request_id: &str,
    ) -> Result<Option<CallRecord>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM calls WHERE request_id = ?")
            .bind(request_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn call_count(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM calls")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }
}
