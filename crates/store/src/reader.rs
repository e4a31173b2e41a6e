//! A consistent, read-only view of the call log and its evidence tree, for
//! re-checking or exporting a whole log while the platform may be running:
//! everything read through one `LogReader` comes from one snapshot.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, params};

use crate::appender::row_to_record;
use crate::{CallRecord, CheckpointRow, LogKeyRow, StoreError};

pub struct LogReader {
    conn: Connection,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogReader")
    }
}

impl LogReader {
    /// Opens `path` read-only and starts the snapshot.
    pub fn open(path: &Path) -> Result<LogReader, StoreError> {
        if !path.exists() {
            return Err(StoreError::Appender(format!(
                "{} does not exist",
                path.display()
            )));
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch("BEGIN DEFERRED")?;
        // The snapshot starts with the first read.
        conn.query_row("SELECT COUNT(*) FROM log_keys", [], |r| r.get::<_, i64>(0))?;
        Ok(LogReader { conn })
    }

    /// Every call record in `seq` order; `each` returns false to stop early.
    pub fn for_each_call(
        &self,
        mut each: impl FnMut(CallRecord) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, request_id, time_us, consumer, api, method, path, status, latency_us, \
             request_bytes, response_bytes, request_sha256, response_sha256, client_addr, reason \
             FROM calls ORDER BY seq",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            if !each(row_to_record(row)?)? {
                break;
            }
        }
        Ok(())
    }

    /// One tile's hashes (level 0's last tile from the records' leaf hashes).
    pub fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        crate::appender::tile(&self.conn, level, index)
    }

    /// Leaves the tree holds on disk.
    pub fn tree_size(&self) -> Result<u64, StoreError> {
        crate::appender::tree_size(&self.conn)
    }

    /// Every stored tile level above 0 with its tiles' indexes, for completeness checks.
    pub fn tile_count(&self, level: u8) -> Result<u64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM log_tiles WHERE level = ?1",
            params![level],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Checkpoints, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, size, time_us, key_id, note FROM log_checkpoints ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(CheckpointRow {
                id: r.get(0)?,
                size: r.get(1)?,
                time_us: r.get(2)?,
                key_id: r.get(3)?,
                note: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn keys(&self) -> Result<Vec<LogKeyRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT key_id, vkey, created_us, retired_us FROM log_keys ORDER BY created_us",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(LogKeyRow {
                key_id: r.get(0)?,
                vkey: r.get(1)?,
                created_us: r.get(2)?,
                retired_us: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Point reads of tree tiles on a read-only connection of their own: a proof
/// needs a few small reads, and the pool's round trips would cost more than
/// the reads. Each read sees the latest commit.
pub struct TileReader {
    conn: std::sync::Mutex<Connection>,
}

impl std::fmt::Debug for TileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TileReader")
    }
}

impl TileReader {
    pub fn open(path: &Path) -> Result<TileReader, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(TileReader {
            conn: std::sync::Mutex::new(conn),
        })
    }

    /// The tiles found among `ids` (level 0's last tile from the records' leaf hashes).
    pub fn tiles(
        &self,
        ids: &[(u8, u64)],
    ) -> Result<std::collections::HashMap<(u8, u64), Vec<u8>>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = std::collections::HashMap::with_capacity(ids.len());
        for &(level, index) in ids {
            if let Some(hashes) = crate::appender::tile(&conn, level, index)? {
                out.insert((level, index), hashes);
            }
        }
        Ok(out)
    }
}
