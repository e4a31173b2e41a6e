//! The call log's write path: one connection of its own, on a thread of its
//! own, appending groups of records with a prepared statement. Kept apart
//! from the async pool because it is on every call's path: no statement is
//! re-prepared, no page cache is shared with other writers, and one disk
//! sync covers a whole group.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, params};

use crate::{CallRecord, StoreError};

const INSERT: &str = "INSERT INTO calls (request_id, time_us, consumer, api, method, path, status, \
     latency_us, request_bytes, response_bytes, request_sha256, response_sha256, client_addr, reason) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

pub struct CallAppender {
    conn: Connection,
}

impl std::fmt::Debug for CallAppender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallAppender")
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::Appender(err.to_string())
    }
}

impl CallAppender {
    /// Opens the database the store created (the schema must exist).
    pub fn open(path: &Path) -> Result<CallAppender, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // WAL with FULL sync: a committed group is on disk, power cut or not.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.prepare_cached(INSERT)?;
        Ok(CallAppender { conn })
    }

    /// Appends `records` in one transaction; returns each record's `seq`.
    pub fn append(&mut self, records: &[CallRecord]) -> Result<Vec<i64>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut seqs = Vec::with_capacity(records.len());
        {
            let mut insert = tx.prepare_cached(INSERT)?;
            for r in records {
                insert.execute(params![
                    r.request_id,
                    r.time_us,
                    r.consumer,
                    r.api,
                    r.method,
                    r.path,
                    r.status,
                    r.latency_us,
                    r.request_bytes,
                    r.response_bytes,
                    r.request_sha256,
                    r.response_sha256,
                    r.client_addr,
                    r.reason,
                ])?;
                seqs.push(tx.last_insert_rowid());
            }
        }
        tx.commit()?;
        Ok(seqs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    /// A `kill -9` test proves records survive the process; surviving a power
    /// cut rests on these settings of the call log's own connection.
    #[tokio::test]
    async fn commits_are_synced_and_numbered_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("lgsp.db")).await.unwrap();
        let mut appender = CallAppender::open(store.path()).unwrap();
        let synchronous: i64 = appender
            .conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        let journal: String = appender
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(
            (synchronous, journal.as_str()),
            (2, "wal"),
            "FULL sync in WAL mode"
        );

        let record = |i: i64| CallRecord {
            seq: 0,
            request_id: format!("r{i}"),
            time_us: i,
            consumer: None,
            api: Some("a/1".into()),
            method: "GET".into(),
            path: "/a/1".into(),
            status: 200,
            latency_us: 1,
            request_bytes: 0,
            response_bytes: 0,
            request_sha256: String::new(),
            response_sha256: String::new(),
            client_addr: "127.0.0.1".into(),
            reason: None,
        };
        let seqs = appender
            .append(&(0..5).map(record).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        let third = store.call_by_request_id("r2").await.unwrap().unwrap();
        assert_eq!(third.seq, 3);
        assert_eq!(store.call_count().await.unwrap(), 5);
    }
}
