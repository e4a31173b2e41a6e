//! `lgsp verify` and `lgsp log …`: checking evidence offline, archiving the
//! log, and the log's admin actions.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use lgsp_evidence::bundle::Bundle;
use lgsp_evidence::note::NoteVerifier;
use lgsp_evidence::{BodyDigest, archive, audit};
use lgsp_store::{CallAppender, LogReader, Store};
use reqwest::Method;

use crate::cli::{ClientArgs, call, print_json, segment};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The evidence bundle (JSON) to check.
    pub bundle: PathBuf,
    /// The platform's published key (`NAME+KEYID+KEY`, from /log/keys) that must
    /// have signed the checkpoint; without it the bundle's own key is used.
    #[arg(long)]
    pub key: Option<String>,
    /// The request body as sent, to check against the record's SHA-256.
    #[arg(long)]
    pub request_body: Option<PathBuf>,
    /// The response body as received, to check against the record's SHA-256.
    #[arg(long)]
    pub response_body: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DataDirArg {
    /// The data directory of the platform.
    #[arg(long, env = "LGSP_DATA_DIR", default_value = "./lgsp-data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Re-check a whole data directory offline: every record against the tree,
    /// the tree against every signed checkpoint. Names the first bad index.
    Verify {
        #[command(flatten)]
        dir: DataDirArg,
        /// A published key of the log (`NAME+KEYID+KEY`, from /log/keys); repeat
        /// for past keys. Without it the keys recorded in the store are used.
        #[arg(long)]
        key: Vec<String>,
        /// A signed checkpoint kept outside the platform (from a witness, a
        /// bundle, an archive); the log must still hold the tree it signed. Repeatable.
        #[arg(long)]
        checkpoint: Vec<PathBuf>,
    },
    /// Write the log's closed segments, with their signed checkpoints, to a
    /// directory for archival; run again to add the segments closed since.
    Export {
        #[command(flatten)]
        dir: DataDirArg,
        /// The archive directory.
        #[arg(long)]
        out: PathBuf,
        /// Least records in a segment (a segment ends at a signed checkpoint).
        #[arg(long, default_value_t = 65_536)]
        min_records: u64,
    },
    /// Re-verify an archive and load it into an empty data directory.
    Restore {
        /// The archive directory written by `lgsp log export`.
        archive: PathBuf,
        #[command(flatten)]
        dir: DataDirArg,
        /// The published key the archive's checkpoints must be signed with.
        #[arg(long)]
        key: Option<String>,
        /// Only verify the archive; write nothing.
        #[arg(long)]
        check_only: bool,
    },
    /// The log's size, latest checkpoint and keys (admin API).
    Status {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Replace the checkpoint signing key; old keys stay valid for verification (admin API).
    RotateKey {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Download the evidence bundle of any call (admin API).
    Bundle {
        #[command(flatten)]
        client: ClientArgs,
        /// The call's request id (its X-Request-Id).
        request_id: String,
        /// Where to write it [default: standard output].
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `lgsp verify BUNDLE`: one line, exit 0 if the bundle proves its call, 1 if not.
pub fn verify(args: VerifyArgs) -> ExitCode {
    match check_bundle(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            println!("FAILED: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn check_bundle(args: &VerifyArgs) -> Result<String, String> {
    let text = std::fs::read(&args.bundle)
        .map_err(|e| format!("cannot read {}: {e}", args.bundle.display()))?;
    let bundle: Bundle = serde_json::from_slice(&text)
        .map_err(|e| format!("{} is not an evidence bundle: {e}", args.bundle.display()))?;
    let trusted = args
        .key
        .as_deref()
        .map(NoteVerifier::parse)
        .transpose()
        .map_err(|e| format!("--key: {e}"))?;
    let verified = bundle.verify(trusted.as_ref())?;
    let leaf = &verified.leaf;
    for (file, want, what) in [
        (&args.request_body, &leaf.request_sha256, "request"),
        (&args.response_body, &leaf.response_sha256, "response"),
    ] {
        if let Some(path) = file {
            let bytes =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let (got, _) = BodyDigest::of(&bytes);
            if got != *want {
                return Err(format!(
                    "{} is not the {what} body of this call (SHA-256 {got}, recorded {want})",
                    path.display()
                ));
            }
        }
    }
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(leaf.time_us as i128 * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| leaf.time_us.to_string());
    let pinned = if trusted.is_some() {
        "the trusted key"
    } else {
        "the bundle's own key (compare it with the platform's /log/keys, or pass --key)"
    };
    Ok(format!(
        "ok: call {} ({} {} -> {} at {time}) is record {} of {} in the tree of {} records whose checkpoint is signed by {} ({})",
        leaf.request_id,
        leaf.method,
        leaf.path,
        leaf.status,
        leaf.index,
        verified.checkpoint.origin,
        verified.checkpoint.size,
        verified.key.to_vkey(),
        pinned
    ))
}

pub fn run(command: LogCommand) -> ExitCode {
    let outcome = match command {
        LogCommand::Verify {
            dir,
            key,
            checkpoint,
        } => log_verify(&dir.data_dir, &key, &checkpoint),
        LogCommand::Export {
            dir,
            out,
            min_records,
        } => log_export(&dir.data_dir, &out, min_records),
        LogCommand::Restore {
            archive,
            dir,
            key,
            check_only,
        } => log_restore(&archive, &dir.data_dir, key.as_deref(), check_only),
        LogCommand::Status { client } => admin(&client, Method::GET, "/api/v1/log", None),
        LogCommand::RotateKey { client } => {
            admin(&client, Method::POST, "/api/v1/log/rotate-key", None)
        }
        LogCommand::Bundle {
            client,
            request_id,
            out,
        } => {
            let path = format!("/api/v1/calls/{}/evidence", segment(&request_id));
            match out {
                None => admin(&client, Method::GET, &path, None),
                Some(out) => fetch_to_file(&client, &path, &out),
            }
        }
    };
    match outcome {
        Ok(line) => {
            if !line.is_empty() {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(reason) => {
            println!("FAILED: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn open_reader(data_dir: &Path) -> Result<LogReader, String> {
    let path = data_dir.join("lgsp.db");
    if !path.exists() {
        return Err(format!(
            "{} holds no platform store (lgsp.db)",
            data_dir.display()
        ));
    }
    LogReader::open(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn log_verify(data_dir: &Path, keys: &[String], anchors: &[PathBuf]) -> Result<String, String> {
    let keys = keys
        .iter()
        .map(|k| NoteVerifier::parse(k).map_err(|e| format!("--key {k:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let anchors = anchors
        .iter()
        .map(|p| {
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let reader = open_reader(data_dir)?;
    let options = audit::AuditOptions {
        keys,
        anchors,
        now_us: time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1000,
        unsigned_grace_us: 60_000_000,
    };
    let report = audit::audit(&reader, &options).map_err(|f| f.to_string())?;
    use base64::Engine;
    let trust = if report.keys_pinned {
        "with the given key(s)"
    } else {
        "with the keys recorded in the store (pass --key with the published keys to pin them)"
    };
    Ok(format!(
        "ok: {} records, root {}, {} signed checkpoint(s) and {} given checkpoint(s) checked {trust}{}",
        report.records,
        base64::engine::general_purpose::STANDARD.encode(report.root),
        report.checkpoints,
        report.anchors,
        if report.unsigned_tail > 0 {
            format!(
                "; the last {} records await their checkpoint",
                report.unsigned_tail
            )
        } else {
            String::new()
        }
    ))
}

fn log_export(data_dir: &Path, out: &Path, min_records: u64) -> Result<String, String> {
    let reader = open_reader(data_dir)?;
    let report = archive::export(&reader, out, min_records)?;
    Ok(format!(
        "ok: {} new segment(s); {} holds {} segment(s), {} records",
        report.new_segments,
        out.display(),
        report.segments,
        report.records
    ))
}

fn log_restore(
    archive_dir: &Path,
    data_dir: &Path,
    key: Option<&str>,
    check_only: bool,
) -> Result<String, String> {
    let trusted = key
        .map(NoteVerifier::parse)
        .transpose()
        .map_err(|e| format!("--key: {e}"))?;
    if check_only {
        let verified = archive::verify(archive_dir, trusted.as_ref())?;
        return Ok(format!(
            "ok: {} records in {} segment(s), each matching its signed checkpoint",
            verified.records,
            verified.manifest.segments.len()
        ));
    }
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let target = data_dir.join("lgsp.db");
    if target.exists() {
        return Err(format!(
            "{} already holds a platform store; restore into a new data directory",
            data_dir.display()
        ));
    }
    // Written aside and renamed at the end: a failed restore leaves no store behind.
    let db = data_dir.join("lgsp.db.restoring");
    let remove = |db: &Path| {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    };
    remove(&db);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // Creating the store applies the schema; the appender then writes into it.
    runtime
        .block_on(async {
            let store = Store::open(&db).await?;
            store.close().await;
            Ok::<_, lgsp_store::StoreError>(())
        })
        .map_err(|e| format!("cannot open {}: {e}", db.display()))?;
    let mut appender = CallAppender::open(&db).map_err(|e| e.to_string())?;
    let verified = match archive::restore(archive_dir, trusted.as_ref(), &mut appender) {
        Ok(v) => v,
        Err(e) => {
            drop(appender);
            remove(&db);
            return Err(e);
        }
    };
    // Closing the last connection folds the journal into the file.
    drop(appender);
    if Path::new(&format!("{}-wal", db.display())).exists() {
        return Err(format!(
            "{} was not closed cleanly; restore again",
            db.display()
        ));
    }
    std::fs::rename(&db, &target)
        .map_err(|e| format!("cannot move the restored store into place: {e}"))?;
    Ok(format!(
        "ok: restored {} records in {} segment(s) into {}, each segment verified against its signed checkpoint",
        verified.records,
        verified.manifest.segments.len(),
        data_dir.display()
    ))
}

fn admin(
    client: &ClientArgs,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<String, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let value = runtime
        .block_on(call(client, method, path, body))
        .map_err(|e| format!("{e:#}"))?;
    print_json(&value);
    Ok(String::new())
}

fn fetch_to_file(client: &ClientArgs, path: &str, out: &Path) -> Result<String, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let value = runtime
        .block_on(call(client, Method::GET, path, None))
        .map_err(|e| format!("{e:#}"))?;
    let text = serde_json::to_vec_pretty(&value).expect("JSON");
    std::fs::write(out, text).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(format!("ok: evidence bundle written to {}", out.display()))
}
