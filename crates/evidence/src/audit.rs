//! Re-checking a whole log from its store, trusting nothing in it but the
//! signatures: every record is re-encoded and re-hashed, the tree rebuilt,
//! and compared with the stored tiles and with every signed checkpoint.
//! The first record that does not fit is named by its index.

use lgsp_store::{LogReader, StoreError};

use crate::leaf;
use crate::merkle::{EMPTY_ROOT, Hash, leaf_hash};
use crate::note::{Checkpoint, NoteVerifier, open};
use crate::tiles::{Edge, TILE_WIDTH, split_hashes};

#[derive(Debug, Clone)]
pub struct AuditReport {
    pub records: u64,
    pub root: Hash,
    pub checkpoints: usize,
    pub keys: usize,
    /// Checkpoints held outside the store that were checked.
    pub anchors: usize,
    /// Whether the keys came from the caller rather than from the store.
    pub keys_pinned: bool,
    /// Records after the last checkpoint, too recent to have one yet.
    pub unsigned_tail: u64,
}

/// What to trust beyond the store.
#[derive(Debug, Clone, Default)]
pub struct AuditOptions {
    /// The published keys; when given, only checkpoints they signed count.
    pub keys: Vec<NoteVerifier>,
    /// Signed checkpoints kept outside the store (from a witness, a bundle, an
    /// archive): the log must hold the tree each one signed.
    pub anchors: Vec<String>,
    /// Now, in µs since the epoch.
    pub now_us: i64,
    /// Records older than this without a checkpoint are a failure.
    pub unsigned_grace_us: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFailure {
    /// The first leaf index found wrong, where one can be named.
    pub index: Option<u64>,
    pub reason: String,
}

impl std::fmt::Display for AuditFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "first bad index {i}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

fn fail(index: Option<u64>, reason: impl Into<String>) -> AuditFailure {
    AuditFailure {
        index,
        reason: reason.into(),
    }
}

fn store_failure(e: StoreError) -> AuditFailure {
    fail(None, format!("the store cannot be read: {e}"))
}

pub fn audit(reader: &LogReader, options: &AuditOptions) -> Result<AuditReport, AuditFailure> {
    let keys_pinned = !options.keys.is_empty();
    let keys: Vec<NoteVerifier> = if keys_pinned {
        options.keys.clone()
    } else {
        reader
            .keys()
            .map_err(store_failure)?
            .iter()
            .map(|k| {
                NoteVerifier::parse(&k.vkey)
                    .map_err(|e| fail(None, format!("key {}: {e}", k.key_id)))
            })
            .collect::<Result<_, _>>()?
    };
    let mut checkpoints: Vec<(i64, Checkpoint)> = Vec::new();
    // Checkpoints from outside are numbered below zero.
    for (n, note) in options.anchors.iter().enumerate() {
        let (text, _) = open(note, &keys)
            .map_err(|e| fail(None, format!("given checkpoint {}: {e}", n + 1)))?;
        let cp = Checkpoint::parse(text)
            .map_err(|e| fail(None, format!("given checkpoint {}: {e}", n + 1)))?;
        checkpoints.push((-(n as i64) - 1, cp));
    }
    for row in reader.checkpoints().map_err(store_failure)? {
        let (text, _) = open(&row.note, &keys).map_err(|e| {
            fail(
                None,
                format!("checkpoint #{} (size {}): {e}", row.id, row.size),
            )
        })?;
        let cp = Checkpoint::parse(text)
            .map_err(|e| fail(None, format!("checkpoint #{}: {e}", row.id)))?;
        if cp.size as i64 != row.size {
            return Err(fail(
                None,
                format!(
                    "checkpoint #{} is filed under size {} but signs size {}",
                    row.id, row.size, cp.size
                ),
            ));
        }
        checkpoints.push((row.id, cp));
    }
    // Checked in size order; the latest one seen bounds what a bad record can hide behind.
    checkpoints.sort_by_key(|(id, cp)| (cp.size, *id));
    let mut pending = checkpoints.iter().peekable();
    let mut last_good_size = 0u64;
    let check_at = |size: u64,
                    root: &Hash,
                    cp: &Checkpoint,
                    id: i64,
                    last_good: u64|
     -> Result<(), AuditFailure> {
        if cp.root != *root {
            let index = if size == last_good + 1 {
                Some(last_good)
            } else {
                None
            };
            return Err(fail(
                index,
                format!(
                    "{} signed a different tree of {size} records: a record between index {last_good} and {} was rewritten together with the tiles",
                    label(id),
                    size - 1
                ),
            ));
        }
        Ok(())
    };
    while let Some((id, cp)) = pending.next_if(|(_, cp)| cp.size == 0) {
        check_at(0, &EMPTY_ROOT, cp, *id, 0)?;
    }

    let signed_size = checkpoints.iter().map(|(_, cp)| cp.size).max().unwrap_or(0);
    let mut first_unsigned_time: Option<i64> = None;
    let stored_size = reader.tree_size().map_err(store_failure)?;
    let mut edge = Edge::default();
    let mut stored_leaves: Vec<Hash> = Vec::new();
    let mut outcome: Result<(), AuditFailure> = Ok(());
    let mut changed = Vec::new();
    reader
        .for_each_call(|record| {
            let index = edge.size();
            if record.seq != index as i64 + 1 {
                outcome = Err(fail(
                    Some(index),
                    format!("record {} is missing (deleted, or the records were renumbered)", index + 1),
                ));
                return Ok(false);
            }
            if index >= stored_size {
                outcome = Err(fail(
                    Some(index),
                    format!("record {} is not in the evidence tree (inserted after the fact)", index + 1),
                ));
                return Ok(false);
            }
            if index % TILE_WIDTH == 0 {
                let bytes = reader.tile(0, index / TILE_WIDTH)?.unwrap_or_default();
                stored_leaves = split_hashes(&bytes).unwrap_or_default();
            }
            if index == signed_size {
                first_unsigned_time = Some(record.time_us);
            }
            let hash = leaf_hash(&leaf::encode(&record));
            if stored_leaves.get((index % TILE_WIDTH) as usize) != Some(&hash) {
                outcome = Err(fail(
                    Some(index),
                    format!(
                        "record {} is not the record the evidence tree holds at this index (altered or moved)",
                        index + 1
                    ),
                ));
                return Ok(false);
            }
            changed.clear();
            edge.push(hash, &mut changed);
            for (id, hashes) in edge.take_full() {
                if id.level > 0 {
                    let stored = reader.tile(id.level, id.index)?.unwrap_or_default();
                    if let Some(e) = tile_mismatch(id, &stored, &hashes) {
                        outcome = Err(e);
                        return Ok(false);
                    }
                }
            }
            let size = edge.size();
            if pending.peek().is_some_and(|(_, cp)| cp.size == size) {
                let root = edge.root();
                while let Some((id, cp)) = pending.next_if(|(_, cp)| cp.size == size) {
                    if let Err(e) = check_at(size, &root, cp, *id, last_good_size) {
                        outcome = Err(e);
                        return Ok(false);
                    }
                }
                last_good_size = size;
            }
            Ok(true)
        })
        .map_err(store_failure)?;
    outcome?;

    let records = edge.size();
    if stored_size > records {
        return Err(fail(
            Some(records),
            format!(
                "the evidence tree holds {stored_size} records but only {records} remain: records from {} on were deleted",
                records + 1
            ),
        ));
    }
    if let Some((id, cp)) = pending.next() {
        return Err(fail(
            Some(records),
            format!(
                "{} signed {} records but only {records} remain: records from {} on were deleted",
                label(*id),
                cp.size,
                records + 1
            ),
        ));
    }
    if let Some(time_us) = first_unsigned_time
        && time_us < options.now_us - options.unsigned_grace_us
    {
        return Err(fail(
            Some(signed_size),
            format!(
                "records from {} on are not covered by any signed checkpoint, the first of them {} s old: checkpoints were deleted, or the platform stopped before signing (starting it signs them)",
                signed_size + 1,
                (options.now_us - time_us) / 1_000_000
            ),
        ));
    }
    for (id, hashes) in edge.partial_tiles() {
        let stored = reader
            .tile(id.level, id.index)
            .map_err(store_failure)?
            .unwrap_or_default();
        if let Some(e) = tile_mismatch(id, &stored, hashes) {
            return Err(e);
        }
    }
    Ok(AuditReport {
        records,
        root: edge.root(),
        checkpoints: checkpoints.len() - options.anchors.len(),
        keys: keys.len(),
        anchors: options.anchors.len(),
        keys_pinned,
        unsigned_tail: records.saturating_sub(signed_size),
    })
}

fn label(id: i64) -> String {
    if id < 0 {
        format!("given checkpoint {}", -id)
    } else {
        format!("checkpoint #{id}")
    }
}

/// Where a stored tile differs from the one the records build: the first
/// differing hash, named by the first leaf below it.
fn tile_mismatch(id: crate::tiles::TileId, stored: &[u8], built: &[Hash]) -> Option<AuditFailure> {
    let stored = split_hashes(stored).unwrap_or_default();
    let j = (0..built.len()).find(|&j| stored.get(j) != Some(&built[j]))?;
    let first = (id.index * TILE_WIDTH + j as u64) << (8 * id.level as u32);
    Some(fail(
        Some(first),
        format!(
            "hash {j} of tile {}/{} does not match the records below it (leaves from index {first} on)",
            id.level, id.index
        ),
    ))
}
