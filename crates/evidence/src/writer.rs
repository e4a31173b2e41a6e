//! The single writer that commits call records in groups, and integrates
//! them into the evidence tree in the same transaction: a record is a leaf
//! of the tree the moment it is on disk.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lgsp_store::{
    CallAppender, CallRecord, CheckpointWrite, Group, KeptBodies, Store, StoreError, TileWrite,
};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::leaf;
use crate::merkle::leaf_hash;
use crate::tiles::{Edge, TileId, join_hashes, split_hashes};

/// Records waiting for the writer beyond this make callers wait (back-pressure).
const QUEUE_CAPACITY: usize = 65_536;
/// The most records committed in one transaction.
const MAX_GROUP: usize = 4_096;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CallLogError {
    #[error("the call log is closed")]
    Closed,
    #[error("the call log could not be written to disk")]
    WriteFailed,
}

// Records travel inline: boxing them would cost an allocation per call.
#[allow(clippy::large_enum_variant)]
enum Message {
    Record(
        CallRecord,
        Option<KeptBodies>,
        Option<oneshot::Sender<Result<i64, CallLogError>>>,
    ),
    /// A signed checkpoint to store, in the writer's next transaction.
    Checkpoint(CheckpointWrite, oneshot::Sender<Result<(), CallLogError>>),
    /// Answered once everything sent before it is on disk.
    Flush(oneshot::Sender<()>),
    Close(oneshot::Sender<()>),
}

/// A handle on the call log. Cheap to clone.
#[derive(Clone)]
pub struct CallLog {
    tx: mpsc::Sender<Message>,
    size: watch::Receiver<u64>,
    groups: Arc<AtomicU64>,
}

impl CallLog {
    /// Starts the writer, on a thread of its own with its own connection to
    /// `store`'s file. Records the tree does not cover yet (a log written
    /// before the tree existed) are integrated first.
    pub fn start(store: &Store) -> Result<(CallLog, JoinHandle<()>), StoreError> {
        let mut appender = CallAppender::open(store.path())?;
        let edge = catch_up(&mut appender)?;
        let (size_tx, size) = watch::channel(edge.size());
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let groups = Arc::new(AtomicU64::new(0));
        let counter = groups.clone();
        let task =
            tokio::task::spawn_blocking(move || write_loop(appender, edge, size_tx, counter, rx));
        Ok((CallLog { tx, size, groups }, task))
    }

    /// Groups committed since start: one transaction and one disk sync each.
    pub fn groups_committed(&self) -> u64 {
        self.groups.load(Ordering::Relaxed)
    }

    /// The number of records on disk (and leaves in the tree), as it changes.
    pub fn tree_size(&self) -> watch::Receiver<u64> {
        self.size.clone()
    }

    /// Appends a record and waits until it is synced to disk. Returns its sequence number.
    pub async fn commit(&self, record: CallRecord) -> Result<i64, CallLogError> {
        self.commit_with(record, None).await
    }

    /// As `commit`, keeping the call's bodies until `bodies.expires_us`.
    pub async fn commit_with(
        &self,
        record: CallRecord,
        bodies: Option<KeptBodies>,
    ) -> Result<i64, CallLogError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Message::Record(record, bodies, Some(done)))
            .await
            .map_err(|_| CallLogError::Closed)?;
        wait.await.map_err(|_| CallLogError::Closed)?
    }

    /// Appends a record without waiting (for calls whose consumer went away).
    pub fn submit(&self, record: CallRecord, bodies: Option<KeptBodies>) {
        if let Err(e) = self.tx.try_send(Message::Record(record, bodies, None)) {
            let (record, bodies) = match e {
                mpsc::error::TrySendError::Full(Message::Record(r, b, _)) => (r, b),
                mpsc::error::TrySendError::Closed(_) => {
                    tracing::error!("call log closed; a call record was lost");
                    return;
                }
                mpsc::error::TrySendError::Full(_) => return,
            };
            let tx = self.tx.clone();
            tokio::spawn(async move {
                if tx
                    .send(Message::Record(record, bodies, None))
                    .await
                    .is_err()
                {
                    tracing::error!("call log closed; a call record was lost");
                }
            });
        }
    }

    /// Stores a signed checkpoint. It goes through the writer, which holds the
    /// database's write lock, so it never waits behind a stream of call records.
    pub async fn store_checkpoint(&self, checkpoint: CheckpointWrite) -> Result<(), CallLogError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Message::Checkpoint(checkpoint, done))
            .await
            .map_err(|_| CallLogError::Closed)?;
        wait.await.map_err(|_| CallLogError::Closed)?
    }

    /// Waits until every record sent before this call is on disk.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Commits everything sent before this call, then stops the writer.
    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Close(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Loads the tree's edge and integrates any record the tree does not cover.
fn catch_up(appender: &mut CallAppender) -> Result<Edge, StoreError> {
    let size = appender.tree_size()?;
    let mut tiles = HashMap::new();
    for id in Edge::tiles_needed(size) {
        let bytes = appender.tile(id.level, id.index)?.unwrap_or_default();
        let hashes = split_hashes(&bytes).ok_or_else(|| {
            StoreError::Appender(format!("tile {}/{} is damaged", id.level, id.index))
        })?;
        tiles.insert(id, hashes);
    }
    let mut edge = Edge::load(size, &tiles).map_err(StoreError::Appender)?;
    let last = appender.last_seq()?;
    if (last as u64) < size {
        tracing::error!(
            records = last,
            tree = size,
            "the call log holds fewer records than its evidence tree; run `lgsp log verify`"
        );
    }
    let mut next = size as i64 + 1;
    while next <= last {
        let records = appender.records_from(next, 8192)?;
        if records.is_empty() {
            break;
        }
        let mut changed = Vec::new();
        let mut late = Vec::with_capacity(records.len());
        for r in &records {
            if r.seq != next {
                return Err(StoreError::Appender(format!(
                    "call record {next} is missing; the tree cannot be extended past it (run `lgsp log verify`)"
                )));
            }
            let hash = leaf_hash(&leaf::encode(r));
            edge.push(hash, &mut changed);
            late.push((r.seq, hash));
            next += 1;
        }
        let tiles = tile_writes(&mut edge, &changed);
        appender.append(Group {
            tiles: &tiles,
            late_leaves: &late,
            ..Group::default()
        })?;
        tracing::info!(
            size = edge.size(),
            "call records integrated into the evidence tree"
        );
    }
    Ok(edge)
}

/// The tiles to store after `changed` were touched: the ones completed, and
/// the edge's above level 0 (level 0's edge is the records' own leaf hashes).
fn tile_writes(edge: &mut Edge, changed: &[TileId]) -> Vec<TileWrite> {
    let mut out: Vec<TileWrite> = edge
        .take_full()
        .into_iter()
        .map(|(id, hashes)| (id.level, id.index, join_hashes(&hashes)))
        .collect();
    for id in changed.iter().filter(|id| id.level > 0) {
        if let Some(hashes) = edge.partial(*id) {
            out.push((id.level, id.index, join_hashes(hashes)));
        }
    }
    out
}

fn write_loop(
    mut appender: CallAppender,
    mut edge: Edge,
    size: watch::Sender<u64>,
    groups: Arc<AtomicU64>,
    mut rx: mpsc::Receiver<Message>,
) {
    let mut records = Vec::with_capacity(MAX_GROUP);
    let mut bodies = Vec::new();
    let mut waiters = Vec::with_capacity(MAX_GROUP);
    let mut leaves = Vec::with_capacity(MAX_GROUP);
    let mut checkpoints = Vec::new();
    let mut checkpoint_waiters = Vec::new();
    let mut flushed = Vec::new();
    let mut closing = None;

    while let Some(first) = rx.blocking_recv() {
        // Take what is already queued: one transaction, one disk sync for all of it.
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Record(mut record, kept, waiter) => {
                    record.seq = (edge.size() + records.len() as u64 + 1) as i64;
                    if let Some(kept) = kept {
                        bodies.push((record.seq, kept));
                    }
                    records.push(record);
                    waiters.push(waiter);
                }
                Message::Checkpoint(checkpoint, done) => {
                    checkpoints.push(checkpoint);
                    checkpoint_waiters.push(done);
                }
                Message::Flush(done) => flushed.push(done),
                Message::Close(done) => {
                    closing = Some(done);
                    break;
                }
            }
            if records.len() < MAX_GROUP {
                next = rx.try_recv().ok();
            }
        }

        if !records.is_empty() || !checkpoints.is_empty() {
            // The tree grows on a copy, kept only if the group reaches the disk.
            let mut grown = edge.clone();
            let mut changed = Vec::new();
            leaves.clear();
            for r in &records {
                let hash = leaf_hash(&leaf::encode(r));
                grown.push(hash, &mut changed);
                leaves.push(hash);
            }
            let tiles = tile_writes(&mut grown, &changed);
            let group = Group {
                records: &records,
                leaves: &leaves,
                bodies: &bodies,
                tiles: &tiles,
                checkpoints: &checkpoints,
                late_leaves: &[],
            };
            let outcome = append_with_retry(&mut appender, group);
            if outcome.is_ok() {
                edge = grown;
                size.send_replace(edge.size());
                groups.fetch_add(1, Ordering::Relaxed);
            }
            for (record, waiter) in records.iter().zip(waiters.drain(..)) {
                let answer = match &outcome {
                    Ok(()) => Ok(record.seq),
                    Err(()) => Err(CallLogError::WriteFailed),
                };
                if let Some(waiter) = waiter {
                    let _ = waiter.send(answer);
                }
            }
            for done in checkpoint_waiters.drain(..) {
                let _ = done.send(outcome.map_err(|()| CallLogError::WriteFailed));
            }
            records.clear();
            bodies.clear();
            checkpoints.clear();
        }
        for done in flushed.drain(..) {
            let _ = done.send(());
        }

        if let Some(done) = closing.take() {
            rx.close();
            // Whatever slipped in before the close is refused to its sender by dropping.
            let _ = done.send(());
            tracing::info!("call log flushed and closed");
            return;
        }
    }
}

/// A busy or briefly failing disk gets three tries before the group is refused.
fn append_with_retry(appender: &mut CallAppender, group: Group<'_>) -> Result<(), ()> {
    let mut delay = Duration::from_millis(20);
    let records = group.records;
    for attempt in 1..=3 {
        match appender.append(group) {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::error!(error = ?e, attempt, records = records.len(), "writing call records failed");
                if attempt < 3 {
                    std::thread::sleep(delay);
                    delay *= 4;
                }
            }
        }
    }
    Err(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditOptions, audit};
    use lgsp_store::LogReader;

    fn record(seq: i64) -> CallRecord {
        CallRecord {
            seq,
            request_id: format!("r{seq}"),
            time_us: 1_796_000_000_000_000 + seq,
            consumer: None,
            api: Some("hotich/1.0".into()),
            method: "GET".into(),
            path: format!("/hotich/1.0/{seq}"),
            status: 200,
            latency_us: 5,
            request_bytes: 0,
            response_bytes: 0,
            request_sha256: crate::EMPTY_SHA256.into(),
            response_sha256: crate::EMPTY_SHA256.into(),
            client_addr: "10.0.0.1".into(),
            reason: None,
        }
    }

    /// A call log written before the tree existed becomes the tree's first
    /// leaves at the next start, and new records follow them.
    #[tokio::test]
    async fn records_older_than_the_tree_are_integrated_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("lgsp.db")).await.unwrap();
        let old: Vec<CallRecord> = (1..=300).map(record).collect();
        CallAppender::open(store.path())
            .unwrap()
            .append(Group {
                records: &old,
                ..Group::default()
            })
            .unwrap();

        let (calls, writer) = CallLog::start(&store).unwrap();
        assert_eq!(*calls.tree_size().borrow(), 300);
        let seq = calls.commit(record(0)).await.unwrap();
        assert_eq!(seq, 301);
        calls.close().await;
        writer.await.unwrap();

        let reader = LogReader::open(store.path()).unwrap();
        let options = AuditOptions {
            now_us: 1_796_000_000_000_000,
            unsigned_grace_us: i64::MAX / 2,
            ..AuditOptions::default()
        };
        let report = audit(&reader, &options).unwrap();
        assert_eq!(report.records, 301);
        assert_eq!(reader.tree_size().unwrap(), 301);
    }
}
