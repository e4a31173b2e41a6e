//! The single writer that commits call records in groups.

use std::time::Duration;

use lgsp_store::{CallAppender, CallRecord, Store, StoreError};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

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
        Option<oneshot::Sender<Result<i64, CallLogError>>>,
    ),
    Close(oneshot::Sender<()>),
}

/// A handle on the call log. Cheap to clone.
#[derive(Clone)]
pub struct CallLog {
    tx: mpsc::Sender<Message>,
}

impl CallLog {
    /// Starts the writer, on a thread of its own with its own connection to `store`'s file.
    pub fn start(store: &Store) -> Result<(CallLog, JoinHandle<()>), StoreError> {
        let appender = CallAppender::open(store.path())?;
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let task = tokio::task::spawn_blocking(move || write_loop(appender, rx));
        Ok((CallLog { tx }, task))
    }

    /// Appends a record and waits until it is synced to disk. Returns its sequence number.
    pub async fn commit(&self, record: CallRecord) -> Result<i64, CallLogError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Message::Record(record, Some(done)))
            .await
            .map_err(|_| CallLogError::Closed)?;
        wait.await.map_err(|_| CallLogError::Closed)?
    }

    /// Appends a record without waiting (for calls whose consumer went away).
    pub fn submit(&self, record: CallRecord) {
        if let Err(e) = self.tx.try_send(Message::Record(record, None)) {
            let record = match e {
                mpsc::error::TrySendError::Full(Message::Record(r, _)) => r,
                mpsc::error::TrySendError::Closed(_) => {
                    tracing::error!("call log closed; a call record was lost");
                    return;
                }
                mpsc::error::TrySendError::Full(Message::Close(_)) => return,
            };
            let tx = self.tx.clone();
            tokio::spawn(async move {
                if tx.send(Message::Record(record, None)).await.is_err() {
                    tracing::error!("call log closed; a call record was lost");
                }
            });
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

fn write_loop(mut appender: CallAppender, mut rx: mpsc::Receiver<Message>) {
    let mut records = Vec::with_capacity(MAX_GROUP);
    let mut waiters = Vec::with_capacity(MAX_GROUP);
    let mut closing = None;

    while let Some(first) = rx.blocking_recv() {
        // Take what is already queued: one transaction, one disk sync for all of it.
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Record(record, waiter) => {
                    records.push(record);
                    waiters.push(waiter);
                }
                Message::Close(done) => {
                    closing = Some(done);
                    break;
                }
            }
            if records.len() < MAX_GROUP {
                next = rx.try_recv().ok();
            }
        }

        if !records.is_empty() {
            let outcome = append_with_retry(&mut appender, &records);
            for (i, waiter) in waiters.drain(..).enumerate() {
                let answer = match &outcome {
                    Ok(seqs) => Ok(seqs[i]),
                    Err(()) => Err(CallLogError::WriteFailed),
                };
                if let Some(waiter) = waiter {
                    let _ = waiter.send(answer);
                }
            }
            records.clear();
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
fn append_with_retry(appender: &mut CallAppender, records: &[CallRecord]) -> Result<Vec<i64>, ()> {
    let mut delay = Duration::from_millis(20);
    for attempt in 1..=3 {
        match appender.append(records) {
            Ok(seqs) => return Ok(seqs),
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
