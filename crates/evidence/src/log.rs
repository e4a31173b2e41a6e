//! The evidence log as a service: signs checkpoints as the tree grows,
//! builds proofs and bundles from the stored tiles, serves tiles, and
//! rotates the signing key.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::Ed25519KeyPair;
use lgsp_store::{CallRecord, CheckpointWrite, Store, StoreError};

use crate::CallLog;
use thiserror::Error;
use tokio::sync::watch;

use crate::bundle::Bundle;
use crate::leaf::{Leaf, MAX_LEAF_BYTES};
use crate::merkle::{Hash, NodeSource, ProofError, consistency_proof, inclusion_proof, tree_root};
use crate::note::{Checkpoint, NoteSigner, NoteVerifier, open};
use crate::tiles::{TILE_WIDTH, TileId, TileSet, TileWants, split_hashes};

/// The file, under the keys directory, holding the checkpoint signing key.
pub const KEY_FILE: &str = "log-ed25519.pk8";
/// Full tiles never change; this many are kept in memory.
const TILE_CACHE: usize = 4096;

#[derive(Debug, Error)]
pub enum EvidenceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Proof(#[from] ProofError),
    #[error("the record is not yet covered by a signed checkpoint; retry in a second")]
    NotYetCheckpointed,
    #[error("tree size {size} is beyond the log's {current} records")]
    BeyondTree { size: u64, current: u64 },
    #[error("the stored log is damaged: {0}")]
    Damaged(String),
    #[error("signing key: {0}")]
    Key(String),
}

/// A signed checkpoint as published.
#[derive(Debug, Clone)]
pub struct SignedHead {
    pub checkpoint: Checkpoint,
    pub note: String,
    pub time_us: i64,
}

pub struct EvidenceLog {
    store: Store,
    origin: String,
    key_path: PathBuf,
    signer: ArcSwap<NoteSigner>,
    verifiers: ArcSwap<Vec<NoteVerifier>>,
    head: watch::Sender<Option<Arc<SignedHead>>>,
    size: watch::Receiver<u64>,
    interval: Duration,
    /// Serialises signing, so checkpoints are stored in size order.
    signing: tokio::sync::Mutex<()>,
    full_tiles: Mutex<HashMap<TileId, Arc<Vec<Hash>>>>,
    /// Tiles missing from the cache are read here, off the async threads.
    tiles: Arc<lgsp_store::TileReader>,
    /// Where checkpoints are written: the call log's writer, when there is one.
    writer: Option<CallLog>,
}

impl std::fmt::Debug for EvidenceLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvidenceLog")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl EvidenceLog {
    /// Loads (or creates, mode 0600) the signing key in `keys_dir` and the latest checkpoint.
    ///
    /// A log keeps its name: once a checkpoint is signed, the stored origin
    /// wins over `origin` unless `origin_set` (the operator named it), and
    /// then a different name is refused.
    pub async fn open(
        store: Store,
        keys_dir: &Path,
        origin: &str,
        origin_set: bool,
        interval: Duration,
        size: watch::Receiver<u64>,
    ) -> Result<EvidenceLog, EvidenceError> {
        let stored = store
            .latest_checkpoint()
            .await?
            .and_then(|row| row.note.lines().next().map(str::to_owned));
        let origin = match stored {
            Some(stored) if stored != origin && origin_set => {
                return Err(EvidenceError::Key(format!(
                    "log_origin is {origin:?} but this log is named {stored:?}; a log keeps its name (set log_origin = {stored:?})"
                )));
            }
            Some(stored) => stored,
            None => origin.to_owned(),
        };
        let origin = origin.as_str();
        let key_path = keys_dir.join(KEY_FILE);
        let pkcs8 = load_or_create_key(&key_path)?;
        let signer = NoteSigner::new(origin, &pkcs8).map_err(EvidenceError::Key)?;
        let own = signer.verifier();
        store
            .activate_log_key(&own.key_id_hex(), &own.to_vkey(), now_us())
            .await?;
        let log = EvidenceLog {
            tiles: Arc::new(lgsp_store::TileReader::open(store.path())?),
            store,
            origin: origin.to_owned(),
            key_path,
            signer: ArcSwap::from_pointee(signer),
            verifiers: ArcSwap::from_pointee(Vec::new()),
            head: watch::Sender::new(None),
            size,
            interval,
            signing: tokio::sync::Mutex::new(()),
            full_tiles: Mutex::new(HashMap::new()),
            writer: None,
        };
        log.reload_verifiers().await?;
        if let Some(row) = log.store.latest_checkpoint().await? {
            let keys = log.verifiers.load();
            let (text, _) = open(&row.note, &keys)
                .map_err(|e| EvidenceError::Damaged(format!("latest checkpoint: {e}")))?;
            let checkpoint = Checkpoint::parse(text).map_err(EvidenceError::Damaged)?;
            log.head.send_replace(Some(Arc::new(SignedHead {
                checkpoint,
                note: row.note,
                time_us: row.time_us,
            })));
        }
        Ok(log)
    }

    /// Stores checkpoints through the call log's writer, which holds the
    /// write lock, instead of competing with it for the lock.
    pub fn writing_through(mut self, calls: CallLog) -> EvidenceLog {
        self.writer = Some(calls);
        self
    }

    async fn reload_verifiers(&self) -> Result<(), EvidenceError> {
        let mut keys = Vec::new();
        for row in self.store.log_keys().await? {
            keys.push(NoteVerifier::parse(&row.vkey).map_err(EvidenceError::Damaged)?);
        }
        self.verifiers.store(Arc::new(keys));
        Ok(())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The key signing checkpoints now.
    pub fn current_key(&self) -> NoteVerifier {
        self.signer.load().verifier()
    }

    /// Every key that has signed checkpoints of this log, current one included.
    pub fn keys(&self) -> Arc<Vec<NoteVerifier>> {
        self.verifiers.load_full()
    }

    pub fn head(&self) -> Option<Arc<SignedHead>> {
        self.head.borrow().clone()
    }

    /// The number of records on disk now (the tree may be ahead of the latest checkpoint).
    pub fn tree_size(&self) -> u64 {
        *self.size.borrow()
    }

    /// Signs a checkpoint now if the tree grew since the last one (or `force`).
    pub async fn checkpoint(&self, force: bool) -> Result<Option<Arc<SignedHead>>, EvidenceError> {
        let _guard = self.signing.lock().await;
        let size = self.tree_size();
        let current = self.head();
        if !force && current.as_ref().is_some_and(|h| h.checkpoint.size >= size) {
            return Ok(current);
        }
        let root = self.with_tiles(|src| tree_root(src, size)).await?;
        let checkpoint = Checkpoint {
            origin: self.origin.clone(),
            size,
            root,
        };
        let signer = self.signer.load();
        let note = signer.sign(&checkpoint.text());
        let time_us = now_us();
        let key_id = signer.verifier().key_id_hex();
        match &self.writer {
            Some(calls) => calls
                .store_checkpoint(CheckpointWrite {
                    size,
                    time_us,
                    key_id,
                    note: note.clone(),
                })
                .await
                .map_err(|e| EvidenceError::Damaged(format!("storing a checkpoint: {e}")))?,
            None => {
                self.store
                    .insert_checkpoint(size, time_us, &key_id, &note)
                    .await?
            }
        }
        let head = Arc::new(SignedHead {
            checkpoint,
            note,
            time_us,
        });
        self.head.send_replace(Some(head.clone()));
        Ok(Some(head))
    }

    /// Signs checkpoints while the tree grows, so that no record waits more
    /// than one interval for a checkpoint covering it, and checkpoints come
    /// about one interval apart, until `stop` turns true; then signs a last
    /// one covering everything.
    ///
    /// The interval starts when growth is first seen after a checkpoint; the
    /// signing starts early by a tenth of the interval, or twice what recent
    /// signings took if that is more, so that it is published within the interval.
    pub async fn run_checkpointer(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut size = self.size.clone();
        let mut cost = Duration::from_millis(5);
        loop {
            let grown = {
                let now = *size.borrow_and_update();
                self.head().is_none_or(|h| h.checkpoint.size < now)
            };
            if grown {
                let margin = (cost * 2).max(self.interval / 10).min(self.interval / 2);
                tokio::select! {
                    _ = tokio::time::sleep(self.interval - margin) => {}
                    _ = stop.changed() => {}
                }
                let started = Instant::now();
                if let Err(e) = self.checkpoint(false).await {
                    tracing::error!(error = %e, "signing a checkpoint failed");
                }
                // A slow signing counts at once; a fast one lowers the estimate gently.
                cost = cost.max(started.elapsed()).mul_f64(0.8) + started.elapsed().mul_f64(0.2);
            } else {
                tokio::select! {
                    changed = size.changed() => if changed.is_err() { break },
                    _ = stop.changed() => {}
                }
            }
            if *stop.borrow() {
                break;
            }
        }
        if let Err(e) = self.checkpoint(false).await {
            tracing::error!(error = %e, "signing the last checkpoint failed");
        }
    }

    /// Waits (up to two intervals) for a checkpoint whose tree holds `size` leaves.
    pub async fn head_covering(&self, size: u64) -> Result<Arc<SignedHead>, EvidenceError> {
        let mut rx = self.head.subscribe();
        let wait = self.interval * 2 + Duration::from_millis(500);
        let found = tokio::time::timeout(
            wait,
            rx.wait_for(|h| h.as_ref().is_some_and(|h| h.checkpoint.size >= size)),
        )
        .await;
        match found {
            Ok(Ok(head)) => Ok(head.clone().expect("waited for a head")),
            _ => Err(EvidenceError::NotYetCheckpointed),
        }
    }

    /// The evidence bundle of a committed record, against the latest checkpoint.
    pub async fn bundle(&self, record: &CallRecord) -> Result<Bundle, EvidenceError> {
        let index = (record.seq - 1) as u64;
        let head = self.head_covering(index + 1).await?;
        let size = head.checkpoint.size;
        let proof = self
            .with_tiles(|src| inclusion_proof(src, index, size))
            .await?;
        let keys = self.verifiers.load();
        let (_, key) = open(&head.note, &keys)
            .map_err(|e| EvidenceError::Damaged(format!("checkpoint {size}: {e}")))?;
        Ok(Bundle::new(
            &Leaf::of(record),
            size,
            &proof,
            &head.note,
            key,
        ))
    }

    pub async fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>, EvidenceError> {
        self.check_size(size)?;
        self.with_tiles(|src| inclusion_proof(src, index, size))
            .await
    }

    pub async fn consistency(&self, from: u64, to: u64) -> Result<Vec<Hash>, EvidenceError> {
        self.check_size(to)?;
        self.with_tiles(|src| consistency_proof(src, from, to))
            .await
    }

    pub async fn root(&self, size: u64) -> Result<Hash, EvidenceError> {
        self.check_size(size)?;
        self.with_tiles(|src| tree_root(src, size)).await
    }

    fn check_size(&self, size: u64) -> Result<(), EvidenceError> {
        let current = self.tree_size();
        if size > current {
            return Err(EvidenceError::BeyondTree { size, current });
        }
        Ok(())
    }

    /// A hash tile's bytes, the first `width` hashes of tile `index` at `level`.
    pub async fn hash_tile(
        &self,
        level: u8,
        index: u64,
        width: u64,
    ) -> Result<Option<Vec<u8>>, EvidenceError> {
        let tiles = self.store.log_tiles(&[(level, index)]).await?;
        Ok(tiles
            .get(&(level, index))
            .filter(|bytes| bytes.len() as u64 >= width * 32)
            .map(|bytes| bytes[..(width * 32) as usize].to_vec()))
    }

    /// An entry bundle: the leaves `[index·256, index·256 + width)`, each
    /// prefixed by its length as a big-endian 16-bit number.
    pub async fn entry_bundle(
        &self,
        index: u64,
        width: u64,
    ) -> Result<Option<Vec<u8>>, EvidenceError> {
        let Some(first) = index.checked_mul(TILE_WIDTH) else {
            return Ok(None);
        };
        if first.saturating_add(width) > self.tree_size() {
            return Ok(None);
        }
        let records = self
            .store
            .calls_between(first as i64 + 1, (first + width) as i64 + 1)
            .await?;
        if records.len() as u64 != width {
            return Err(EvidenceError::Damaged(format!(
                "records {} to {} are not all present",
                first + 1,
                first + width
            )));
        }
        let mut out = Vec::new();
        for r in &records {
            let leaf = crate::leaf::encode(r);
            if leaf.len() > MAX_LEAF_BYTES {
                return Err(EvidenceError::Damaged(format!(
                    "record {} is too long for a bundle",
                    r.seq
                )));
            }
            out.extend_from_slice(&(leaf.len() as u16).to_be_bytes());
            out.extend_from_slice(&leaf);
        }
        Ok(Some(out))
    }

    /// Replaces the signing key; the old public key stays known for
    /// verification. A checkpoint signed by the new key follows at once.
    pub async fn rotate_key(&self) -> Result<NoteVerifier, EvidenceError> {
        let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| EvidenceError::Key("the system random generator failed".into()))?;
        let signer =
            NoteSigner::new(&self.origin, document.as_ref()).map_err(EvidenceError::Key)?;
        let verifier = signer.verifier();
        {
            let _guard = self.signing.lock().await;
            write_key_file(&self.key_path, document.as_ref())?;
            self.store
                .activate_log_key(&verifier.key_id_hex(), &verifier.to_vkey(), now_us())
                .await?;
            // Known before it signs anything, so every head it signs can be opened.
            self.reload_verifiers().await?;
            self.signer.store(Arc::new(signer));
        }
        self.checkpoint(true).await?;
        Ok(verifier)
    }

    /// Runs `prove` once to learn which tiles it reads, fetches them, runs it again.
    async fn with_tiles<T>(
        &self,
        prove: impl Fn(&dyn NodeSource) -> Result<T, ProofError>,
    ) -> Result<T, EvidenceError> {
        let wants = TileWants::default();
        prove(&wants)?;
        let wanted = wants.into_tiles();
        let mut set = TileSet::default();
        let mut fetch = Vec::new();
        {
            let cache = self.full_tiles.lock().unwrap_or_else(|e| e.into_inner());
            for id in wanted {
                match cache.get(&id) {
                    Some(hashes) => {
                        set.tiles.insert(id, hashes.as_ref().clone());
                    }
                    None => fetch.push((id.level, id.index)),
                }
            }
        }
        if !fetch.is_empty() {
            // A few point reads, nearly always from the page cache: cheaper
            // done here than sent to another thread, but the other tasks of
            // this worker are handed on while they run.
            let read = || self.tiles.tiles(&fetch);
            let fetched = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                    tokio::task::block_in_place(read)?
                }
                _ => read()?,
            };
            let mut cache = self.full_tiles.lock().unwrap_or_else(|e| e.into_inner());
            for ((level, index), bytes) in fetched {
                let hashes = split_hashes(&bytes).ok_or_else(|| {
                    EvidenceError::Damaged(format!("tile {level}/{index} is not whole hashes"))
                })?;
                let id = TileId { level, index };
                if hashes.len() as u64 == TILE_WIDTH {
                    if cache.len() >= TILE_CACHE {
                        cache.clear();
                    }
                    cache.insert(id, Arc::new(hashes.clone()));
                }
                set.tiles.insert(id, hashes);
            }
        }
        Ok(prove(&set)?)
    }
}

fn load_or_create_key(path: &Path) -> Result<Vec<u8>, EvidenceError> {
    match fs::read(path) {
        Ok(bytes) => {
            Ed25519KeyPair::from_pkcs8(&bytes).map_err(|e| {
                EvidenceError::Key(format!(
                    "{} is not an Ed25519 PKCS#8 key: {e}",
                    path.display()
                ))
            })?;
            Ok(bytes)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| EvidenceError::Key("the system random generator failed".into()))?;
            write_key_file(path, document.as_ref())?;
            Ok(document.as_ref().to_vec())
        }
        Err(e) => Err(EvidenceError::Key(format!(
            "reading {}: {e}",
            path.display()
        ))),
    }
}

/// Writes a key file (mode 0600) atomically: a new file, synced, renamed over the old.
fn write_key_file(path: &Path, pkcs8: &[u8]) -> Result<(), EvidenceError> {
    let fail = |e: std::io::Error| EvidenceError::Key(format!("writing {}: {e}", path.display()));
    let temp = path.with_extension("new");
    let _ = fs::remove_file(&temp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .map_err(fail)?;
    file.write_all(pkcs8).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    fs::rename(&temp, path).map_err(fail)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(fail)?;
    }
    Ok(())
}

fn now_us() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1000
}
