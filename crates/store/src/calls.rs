//! The call log's rows, read back with filters (they are written by `CallAppender`).

use sqlx::{QueryBuilder, Sqlite};

use crate::{CallRecord, Store, StoreError};

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
