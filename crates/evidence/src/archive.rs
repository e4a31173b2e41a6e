//! Archives of the evidence log (R23): closed segments, each ending at a
//! signed checkpoint, written to a directory that can be copied anywhere and
//! restored later, re-verified record by record.
//!
//! ```text
//! manifest.json                 origin, keys, and one entry per segment
//! segment-000000.jsonl          the segment's leaves, one canonical leaf per line
//! segment-000000.checkpoint     the signed checkpoint of the tree at the segment's end
//! ```
//!
//! A segment closes at the first signed checkpoint at least `min_records`
//! past the previous segment's end. Exporting again appends the segments
//! closed since, leaving the earlier files as they are.

use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use lgsp_store::{CallRecord, LogReader};
use serde::{Deserialize, Serialize};

use crate::digest::BodyDigest;
use crate::leaf::{self, Leaf};
use crate::merkle::leaf_hash;
use crate::note::{Checkpoint, NoteVerifier, open};
use crate::tiles::Edge;

pub const FORMAT: &str = "lgsp-log-archive/1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub origin: String,
    /// Every key that signed the log's checkpoints, as note verifier keys.
    pub keys: Vec<String>,
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Segment {
    pub file: String,
    pub checkpoint_file: String,
    pub first_index: u64,
    pub records: u64,
    /// SHA-256 of the segment file, hex.
    pub sha256: String,
    /// When the segment's checkpoint was signed (µs since the epoch).
    #[serde(default)]
    pub checkpoint_time_us: Option<i64>,
}

#[derive(Debug)]
pub struct ExportReport {
    pub new_segments: usize,
    pub segments: usize,
    pub records: u64,
}

/// Writes the segments closed since the last export into `out`.
pub fn export(reader: &LogReader, out: &Path, min_records: u64) -> Result<ExportReport, String> {
    fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let manifest_path = out.join("manifest.json");
    let keys: Vec<String> = reader
        .keys()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|k| k.vkey)
        .collect();
    let verifiers: Vec<NoteVerifier> = keys
        .iter()
        .map(|k| NoteVerifier::parse(k))
        .collect::<Result<_, _>>()?;
    let mut checkpoints = Vec::new();
    for row in reader.checkpoints().map_err(|e| e.to_string())? {
        let (text, _) =
            open(&row.note, &verifiers).map_err(|e| format!("checkpoint #{}: {e}", row.id))?;
        checkpoints.push((Checkpoint::parse(text)?, row.note, row.time_us));
    }
    let origin = match checkpoints.last() {
        Some((cp, _, _)) => cp.origin.clone(),
        None => return Err("the log has no signed checkpoint yet".into()),
    };
    let mut manifest = match fs::read(&manifest_path) {
        Ok(bytes) => {
            let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
                format!(
                    "{} is not an archive manifest: {e}",
                    manifest_path.display()
                )
            })?;
            if m.origin != origin {
                return Err(format!(
                    "{} archives log {:?}, not {origin:?}",
                    out.display(),
                    m.origin
                ));
            }
            m
        }
        Err(_) => Manifest {
            format: FORMAT.to_owned(),
            origin: origin.clone(),
            keys: Vec::new(),
            segments: Vec::new(),
        },
    };
    for k in &keys {
        if !manifest.keys.contains(k) {
            manifest.keys.push(k.clone());
        }
    }
    let mut end = manifest
        .segments
        .last()
        .map_or(0, |s| s.first_index + s.records);
    // The ends of the new segments: checkpoints far enough apart.
    let mut cuts: Vec<(u64, String, i64)> = Vec::new();
    checkpoints.sort_by_key(|(cp, _, _)| cp.size);
    for (cp, note, time_us) in &checkpoints {
        let last = cuts.last().map_or(end, |(size, _, _)| *size);
        if cp.size > last && cp.size - last >= min_records.max(1) {
            cuts.push((cp.size, note.clone(), *time_us));
        }
    }
    let new_segments = cuts.len();
    if cuts.is_empty() {
        write_manifest(&manifest_path, &manifest)?;
        return Ok(ExportReport {
            new_segments: 0,
            segments: manifest.segments.len(),
            records: end,
        });
    }
    let mut cut = cuts.into_iter().peekable();
    let mut writer: Option<(BufWriter<fs::File>, BodyDigest, String, u64)> = None;
    let mut failure = None;
    reader
        .for_each_call(|record: CallRecord| {
            let index = (record.seq - 1) as u64;
            if index < end {
                return Ok(true);
            }
            let Some((cut_size, note, time_us)) = cut.peek() else {
                return Ok(false);
            };
            if index != end {
                failure = Some(format!(
                    "record {} is missing; run `lgsp log verify`",
                    end + 1
                ));
                return Ok(false);
            }
            if writer.is_none() {
                let n = manifest.segments.len();
                let name = format!("segment-{n:06}");
                let path = out.join(format!("{name}.jsonl"));
                match fs::File::create(&path) {
                    Ok(f) => writer = Some((BufWriter::new(f), BodyDigest::default(), name, end)),
                    Err(e) => {
                        failure = Some(format!("cannot write {}: {e}", path.display()));
                        return Ok(false);
                    }
                }
            }
            let (file, digest, name, _) = writer.as_mut().expect("opened above");
            let mut line = leaf::encode(&record);
            line.push(b'\n');
            digest.update(&line);
            if let Err(e) = file.write_all(&line) {
                failure = Some(format!("writing {name}: {e}"));
                return Ok(false);
            }
            end += 1;
            if end == *cut_size {
                let (mut file, digest, name, first) = writer.take().expect("open");
                let checkpoint_file = format!("{name}.checkpoint");
                let done = file
                    .flush()
                    .and_then(|_| file.get_ref().sync_all())
                    .and_then(|_| fs::write(out.join(&checkpoint_file), note.as_bytes()));
                if let Err(e) = done {
                    failure = Some(format!("writing {name}: {e}"));
                    return Ok(false);
                }
                let (sha256, _) = digest.finish();
                manifest.segments.push(Segment {
                    file: format!("{name}.jsonl"),
                    checkpoint_file,
                    first_index: first,
                    records: end - first,
                    sha256,
                    checkpoint_time_us: Some(*time_us),
                });
                cut.next();
            }
            Ok(true)
        })
        .map_err(|e| e.to_string())?;
    if let Some(f) = failure {
        return Err(f);
    }
    if cut.peek().is_some() {
        return Err(format!(
            "the log ends at {end} records, before its signed checkpoints; run `lgsp log verify`"
        ));
    }
    write_manifest(&manifest_path, &manifest)?;
    Ok(ExportReport {
        new_segments,
        segments: manifest.segments.len(),
        records: end,
    })
}

fn write_manifest(path: &Path, manifest: &Manifest) -> Result<(), String> {
    let temp = path.with_extension("json.new");
    let text = serde_json::to_vec_pretty(manifest).expect("a manifest is JSON");
    fs::write(&temp, text)
        .and_then(|_| fs::rename(&temp, path))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// What a verified archive holds, to be written into a store.
pub struct VerifiedArchive {
    pub manifest: Manifest,
    pub records: u64,
    /// Per segment: tree size, id of the key that signed, the signed note, when it was signed.
    pub checkpoints: Vec<(u64, String, String, Option<i64>)>,
}

/// Checks an archive completely: file hashes, canonical leaves in order,
/// and at each segment's end the rebuilt root against its signed checkpoint.
pub fn verify(dir: &Path, trusted: Option<&NoteVerifier>) -> Result<VerifiedArchive, String> {
    walk(dir, trusted, |_| Ok(()))
}

fn walk(
    dir: &Path,
    trusted: Option<&NoteVerifier>,
    mut each: impl FnMut(&[CallRecord]) -> Result<(), String>,
) -> Result<VerifiedArchive, String> {
    let manifest_path = dir.join("manifest.json");
    let bytes = fs::read(&manifest_path)
        .map_err(|e| format!("cannot read {}: {e}", manifest_path.display()))?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{} is not an archive manifest: {e}",
            manifest_path.display()
        )
    })?;
    if manifest.format != FORMAT {
        return Err(format!(
            "archive format {:?} is not {FORMAT}",
            manifest.format
        ));
    }
    let mut keys: Vec<NoteVerifier> = manifest
        .keys
        .iter()
        .map(|k| NoteVerifier::parse(k))
        .collect::<Result<_, _>>()?;
    if let Some(t) = trusted {
        keys.retain(|k| k == t);
        if keys.is_empty() {
            return Err(format!(
                "the archive's keys do not include the trusted key {}",
                t.key_id_hex()
            ));
        }
    }
    let mut edge = Edge::default();
    let mut checkpoints = Vec::new();
    let mut batch: Vec<CallRecord> = Vec::with_capacity(4096);
    let mut changed = Vec::new();
    for (n, segment) in manifest.segments.iter().enumerate() {
        if segment.first_index.checked_add(segment.records).is_none() {
            return Err(format!("segment {n}: its record count is out of range"));
        }
        if segment.first_index != edge.size() {
            return Err(format!(
                "segment {n} starts at index {}, the previous ended at {}",
                segment.first_index,
                edge.size()
            ));
        }
        let path = dir.join(safe_name(&segment.file)?);
        let file =
            fs::File::open(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut digest = BodyDigest::default();
        for (line_no, line) in BufReader::new(file).split(b'\n').enumerate() {
            let line = line.map_err(|e| format!("reading {}: {e}", path.display()))?;
            digest.update(&line);
            digest.update(b"\n");
            let at = edge.size();
            let leaf = Leaf::decode(&line).map_err(|e| {
                format!(
                    "first bad index {at}: {} line {}: {e}",
                    segment.file,
                    line_no + 1
                )
            })?;
            if leaf.index != at {
                return Err(format!(
                    "first bad index {at}: {} line {} holds index {}",
                    segment.file,
                    line_no + 1,
                    leaf.index
                ));
            }
            changed.clear();
            edge.push(leaf_hash(&line), &mut changed);
            edge.take_full();
            batch.push(leaf.record());
            if batch.len() == batch.capacity() {
                each(&batch)?;
                batch.clear();
            }
        }
        let (sha256, _) = digest.finish();
        if sha256 != segment.sha256 {
            return Err(format!(
                "{} has changed since export (SHA-256 {sha256}, manifest {})",
                segment.file, segment.sha256
            ));
        }
        if edge.size() != segment.first_index + segment.records {
            return Err(format!(
                "{} holds {} records, the manifest says {}",
                segment.file,
                edge.size() - segment.first_index,
                segment.records
            ));
        }
        let cp_path = dir.join(safe_name(&segment.checkpoint_file)?);
        let note = fs::read_to_string(&cp_path)
            .map_err(|e| format!("cannot read {}: {e}", cp_path.display()))?;
        let (text, key) =
            open(&note, &keys).map_err(|e| format!("{}: {e}", segment.checkpoint_file))?;
        let cp = Checkpoint::parse(text)?;
        if cp.origin != manifest.origin {
            return Err(format!(
                "{} is a checkpoint of {:?}, not {:?}",
                segment.checkpoint_file, cp.origin, manifest.origin
            ));
        }
        if cp.size != edge.size() || cp.root != edge.root() {
            return Err(format!(
                "{}: the records do not rebuild the signed tree of {} records (a record between index {} and {} differs)",
                segment.file,
                cp.size,
                segment.first_index,
                edge.size().saturating_sub(1)
            ));
        }
        checkpoints.push((cp.size, key.key_id_hex(), note, segment.checkpoint_time_us));
    }
    if !batch.is_empty() {
        each(&batch)?;
    }
    Ok(VerifiedArchive {
        records: edge.size(),
        manifest,
        checkpoints,
    })
}

fn safe_name(name: &str) -> Result<&str, String> {
    if name.is_empty() || name.contains('/') || name.contains('\\') || name.starts_with('.') {
        return Err(format!("{name:?} is not a file name of this archive"));
    }
    Ok(name)
}

/// Verifies `dir` completely, then writes its records, tiles, keys and
/// checkpoints into the empty store `appender` writes to.
pub fn restore(
    dir: &Path,
    trusted: Option<&NoteVerifier>,
    appender: &mut lgsp_store::CallAppender,
) -> Result<VerifiedArchive, String> {
    verify(dir, trusted)?;
    if appender.last_seq().map_err(|e| e.to_string())? != 0
        || appender.tree_size().map_err(|e| e.to_string())? != 0
    {
        return Err(
            "the target store already holds call records; restore into an empty data directory"
                .into(),
        );
    }
    let mut edge = Edge::default();
    let verified = walk(dir, trusted, |records| {
        let mut changed = Vec::new();
        let mut leaves = Vec::with_capacity(records.len());
        for r in records {
            let hash = leaf_hash(&leaf::encode(r));
            edge.push(hash, &mut changed);
            leaves.push(hash);
        }
        let mut tiles: Vec<lgsp_store::TileWrite> = edge
            .take_full()
            .into_iter()
            .map(|(id, h)| (id.level, id.index, crate::tiles::join_hashes(&h)))
            .collect();
        changed.dedup();
        for id in changed.into_iter().filter(|id| id.level > 0) {
            if let Some(h) = edge.partial(id) {
                tiles.push((id.level, id.index, crate::tiles::join_hashes(h)));
            }
        }
        appender
            .append(lgsp_store::Group {
                records,
                leaves: &leaves,
                tiles: &tiles,
                ..lgsp_store::Group::default()
            })
            .map_err(|e| e.to_string())
    })?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1000;
    // Only the keys that signed a checkpoint of this archive are kept.
    let keys: Vec<(String, String, i64)> = verified
        .manifest
        .keys
        .iter()
        .filter_map(|k| {
            NoteVerifier::parse(k)
                .ok()
                .map(|v| (v.key_id_hex(), k.clone(), now))
        })
        .filter(|(id, _, _)| verified.checkpoints.iter().any(|c| c.1 == *id))
        .collect();
    let checkpoints: Vec<(u64, i64, String, String)> = verified
        .checkpoints
        .iter()
        .map(|(size, key_id, note, time)| {
            (*size, time.unwrap_or(now), key_id.clone(), note.clone())
        })
        .collect();
    appender
        .put_log_meta(&keys, &checkpoints)
        .map_err(|e| e.to_string())?;
    Ok(verified)
}
