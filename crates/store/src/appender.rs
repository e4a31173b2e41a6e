//! The call log's write path: one connection of its own, on a thread of its
//! own, appending groups of records with a prepared statement. Kept apart
//! from the async pool because it is on every call's path: no statement is
//! re-prepared, no page cache is shared with other writers, and one disk
//! sync covers a whole group.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::{CallRecord, StoreError};

const INSERT: &str = "INSERT INTO calls (seq, request_id, time_us, consumer, api, method, path, status, \
     latency_us, request_bytes, response_bytes, request_sha256, response_sha256, client_addr, reason, \
     leaf_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
const PUT_TILE: &str = "INSERT OR REPLACE INTO log_tiles (level, idx, hashes) VALUES (?1, ?2, ?3)";
const PUT_BODY: &str =
    "INSERT INTO call_bodies (seq, request, response, expires_us) VALUES (?1, ?2, ?3, ?4)";

/// A tile of the evidence tree to store: level, index, concatenated hashes.
pub type TileWrite = (u8, u64, Vec<u8>);

/// A signed checkpoint to store: tree size, time (µs), key id, signed note.
#[derive(Clone, Debug)]
pub struct CheckpointWrite {
    pub size: u64,
    pub time_us: i64,
    pub key_id: String,
    pub note: String,
}

/// What one transaction of the call log writes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Group<'a> {
    /// Records with their `seq` assigned.
    pub records: &'a [CallRecord],
    /// The leaf hash of each record, in the same order (or none at all:
    /// records outside any tree, as in a benchmark's baseline).
    pub leaves: &'a [[u8; 32]],
    pub bodies: &'a [(i64, KeptBodies)],
    pub tiles: &'a [TileWrite],
    pub checkpoints: &'a [CheckpointWrite],
    /// Leaf hashes of records written before the tree existed: (seq, hash).
    pub late_leaves: &'a [(i64, [u8; 32])],
}

/// Bodies kept with a record: request, response, expiry (µs since the epoch).
#[derive(Clone, Debug, Default)]
pub struct KeptBodies {
    pub request: Option<Vec<u8>>,
    pub response: Option<Vec<u8>>,
    pub expires_us: i64,
}

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

    /// Writes a group in one transaction: records with their leaf hashes,
    /// the evidence tiles completed by them, kept bodies, checkpoints. The
    /// tree never lags or leads the records on disk.
    pub fn append(&mut self, group: Group<'_>) -> Result<(), StoreError> {
        let Group {
            records,
            leaves,
            bodies,
            tiles,
            checkpoints,
            late_leaves,
        } = group;
        if !leaves.is_empty() && leaves.len() != records.len() {
            return Err(StoreError::Appender(format!(
                "{} records with {} leaf hashes",
                records.len(),
                leaves.len()
            )));
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(INSERT)?;
            for (i, r) in records.iter().enumerate() {
                let leaf = leaves.get(i).map(|l| &l[..]);
                insert.execute(params![
                    r.seq,
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
                    leaf,
                ])?;
            }
            for (seq, leaf) in late_leaves {
                tx.execute(
                    "UPDATE calls SET leaf_hash = ?1 WHERE seq = ?2",
                    params![&leaf[..], seq],
                )?;
            }
            let mut put = tx.prepare_cached(PUT_TILE)?;
            for (level, index, hashes) in tiles {
                put.execute(params![level, *index as i64, hashes])?;
            }
            for c in checkpoints {
                tx.execute(
                    "INSERT INTO log_checkpoints (size, time_us, key_id, note) VALUES (?1, ?2, ?3, ?4)",
                    params![c.size as i64, c.time_us, c.key_id, c.note],
                )?;
            }
            if !bodies.is_empty() {
                let mut put = tx.prepare_cached(PUT_BODY)?;
                for (seq, b) in bodies {
                    put.execute(params![seq, b.request, b.response, b.expires_us])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Size of the evidence tree on disk: the leaves of its full level-0
    /// tiles and the leaf hashes written since.
    pub fn tree_size(&self) -> Result<u64, StoreError> {
        tree_size(&self.conn)
    }

    /// The highest `seq` in the call log.
    pub fn last_seq(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM calls", [], |r| r.get(0))?)
    }

    /// One tile's hashes, if present (level 0's last tile from the records' leaf hashes).
    pub fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        tile(&self.conn, level, index)
    }

    /// Records with `seq` in `[from, from + limit)`, in order (to catch the tree up).
    pub fn records_from(&self, from: i64, limit: i64) -> Result<Vec<CallRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, request_id, time_us, consumer, api, method, path, status, latency_us, \
             request_bytes, response_bytes, request_sha256, response_sha256, client_addr, reason \
             FROM calls WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![from, limit], row_to_record)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stores the keys and checkpoints of a restored archive.
    pub fn put_log_meta(
        &mut self,
        keys: &[(String, String, i64)],
        checkpoints: &[(u64, i64, String, String)],
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for (key_id, vkey, created_us) in keys {
            tx.execute(
                "INSERT OR IGNORE INTO log_keys (key_id, vkey, created_us, retired_us) VALUES (?1, ?2, ?3, ?3)",
                params![key_id, vkey, created_us],
            )?;
        }
        for (size, time_us, key_id, note) in checkpoints {
            tx.execute(
                "INSERT INTO log_checkpoints (size, time_us, key_id, note) VALUES (?1, ?2, ?3, ?4)",
                params![*size as i64, time_us, key_id, note],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Writes tiles outside a call group.
    pub fn put_tiles(&mut self, tiles: &[TileWrite]) -> Result<(), StoreError> {
        self.append(Group {
            tiles,
            ..Group::default()
        })
    }
}

const FULL_TILE_BYTES: i64 = 256 * 32;

/// See `CallAppender::tree_size`; shared with `LogReader`.
pub(crate) fn tree_size(conn: &Connection) -> Result<u64, StoreError> {
    let full: Option<i64> = conn.query_row(
        "SELECT MAX(idx) FROM log_tiles WHERE level = 0 AND length(hashes) = ?1",
        params![FULL_TILE_BYTES],
        |r| r.get(0),
    )?;
    let full = full.map_or(0, |idx| {
        (idx.max(0) as u64).saturating_add(1).saturating_mul(256)
    });
    let last: Option<i64> = conn.query_row(
        "SELECT MAX(seq) FROM calls WHERE seq > ?1 AND leaf_hash IS NOT NULL",
        params![full as i64],
        |r| r.get(0),
    )?;
    Ok(last.map_or(full, |seq| seq.max(0) as u64))
}

/// A stored tile; a level-0 tile not stored whole is gathered from the
/// records' leaf hashes, as far as they run without a gap.
pub(crate) fn tile(
    conn: &Connection,
    level: u8,
    index: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let stored: Option<Vec<u8>> = conn
        .prepare_cached("SELECT hashes FROM log_tiles WHERE level = ?1 AND idx = ?2")?
        .query_row(params![level, index as i64], |r| r.get(0))
        .optional()?;
    if level != 0
        || stored
            .as_ref()
            .is_some_and(|h| h.len() as i64 == FULL_TILE_BYTES)
    {
        return Ok(stored);
    }
    let Some(first) = index.checked_mul(256).and_then(|f| i64::try_from(f).ok()) else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT seq, leaf_hash FROM calls WHERE seq > ?1 AND seq <= ?1 + 256 AND leaf_hash IS NOT NULL ORDER BY seq",
    )?;
    let mut rows = stmt.query(params![first])?;
    let mut out = Vec::new();
    let mut expected = first + 1;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let hash: Vec<u8> = row.get(1)?;
        if seq != expected || hash.len() != 32 {
            break;
        }
        out.extend_from_slice(&hash);
        expected += 1;
    }
    Ok((!out.is_empty()).then_some(out).or(stored))
}

pub(crate) fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<CallRecord> {
    Ok(CallRecord {
        seq: r.get(0)?,
        request_id: r.get(1)?,
        time_us: r.get(2)?,
        consumer: r.get(3)?,
        api: r.get(4)?,
        method: r.get(5)?,
        path: r.get(6)?,
        status: r.get(7)?,
        latency_us: r.get(8)?,
        request_bytes: r.get(9)?,
        response_bytes: r.get(10)?,
        request_sha256: r.get(11)?,
        response_sha256: r.get(12)?,
        client_addr: r.get(13)?,
        reason: r.get(14)?,
    })
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
        let records: Vec<CallRecord> = (0..5)
            .map(|i| CallRecord {
                seq: i + 1,
                ..record(i)
            })
            .collect();
        let leaves: Vec<[u8; 32]> = (0..5).map(|i| [i as u8; 32]).collect();
        appender
            .append(Group {
                records: &records,
                leaves: &leaves,
                ..Group::default()
            })
            .unwrap();
        assert_eq!(appender.last_seq().unwrap(), 5);
        assert_eq!(appender.tree_size().unwrap(), 5);
        assert_eq!(appender.tile(0, 0).unwrap().unwrap(), leaves.concat());
        assert_eq!(appender.records_from(2, 2).unwrap(), records[1..3]);
        let third = store.call_by_request_id("r2").await.unwrap().unwrap();
        assert_eq!(third.seq, 3);
        assert_eq!(store.call_count().await.unwrap(), 5);
    }
}
