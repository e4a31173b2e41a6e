//! Publishing an imported version: check, compare with the version it
//! follows, write atomically, then serve it from memory.

use arc_swap::ArcSwap;
use lgsp_store::{CodeListRow, Store, StoreError};
use serde_json::{Value, json};

use crate::import::{ImportRequest, Rejected, check};
use crate::index::{CodeLists, VersionIndex};

#[derive(Debug)]
pub enum ImportFailure {
    NoList(String),
    Rejected(Rejected),
    Store(StoreError),
}

impl From<StoreError> for ImportFailure {
    fn from(e: StoreError) -> Self {
        ImportFailure::Store(e)
    }
}

/// Checks `bytes` as a new version and, unless `dry_run`, publishes it.
/// Callers serialise imports (one at a time) so that two cannot both pass
/// the validity check.
pub async fn import(
    store: &Store,
    lists: &ArcSwap<CodeLists>,
    request: &ImportRequest,
    bytes: bytes::Bytes,
    dry_run: bool,
    now: &str,
) -> Result<Value, ImportFailure> {
    // Parsing and checking a large file is CPU work: keep it off the threads that serve calls.
    let current = lists.load_full();
    let (request_copy, snapshot) = (request.clone(), current.clone());
    let (checked, answer) =
        tokio::task::spawn_blocking(move || prepare(&snapshot, &request_copy, &bytes, dry_run))
            .await
            .map_err(|e| {
                ImportFailure::Store(StoreError::Appender(format!("import check failed: {e}")))
            })??;
    let mut checked = checked;
    checked.version.version.published_at = now.to_owned();
    if dry_run {
        return Ok(answer);
    }
    drop(current);
    publish(store, lists, request, checked, answer, now).await
}

/// Checks the file and computes the answer (with the changes for a dry run).
fn prepare(
    current: &CodeLists,
    request: &ImportRequest,
    bytes: &[u8],
    dry_run: bool,
) -> Result<(crate::import::Checked, Value), ImportFailure> {
    let Some(list) = current.list(&request.list_id) else {
        return Err(ImportFailure::NoList(request.list_id.clone()));
    };
    let checked = check(list, request, bytes).map_err(ImportFailure::Rejected)?;
    let new_index = VersionIndex::build(
        checked.version.version.clone(),
        checked.version.items.clone(),
    );
    let previous = checked
        .closes
        .as_deref()
        .and_then(|v| list.versions.iter().find(|x| x.row.version == v));
    let diff = previous.map(|old| {
        let mut d = list.diff(old, &new_index);
        // The new version's own mappings are not stored yet: add them.
        d.recoded.extend(
            checked
                .version
                .mappings
                .iter()
                .filter(|m| m.kind == "recoded"),
        );
        d
    });
    let summary = diff.as_ref().map(|d| {
        json!({
            "added": d.added.len(), "removed": d.removed.len(), "renamed": d.renamed.len(),
            "moved": d.moved.len(), "recoded": d.recoded.len(),
        })
    });
    let mut answer = json!({
        "list": request.list_id,
        "version": request.version,
        "valid_from": request.valid_from,
        "valid_to": request.valid_to,
        "items": checked.version.items.len(),
        "mappings": checked.version.mappings.len(),
        "follows": checked.closes,
        "normalised_to_nfc": checked.normalised_cells,
        "summary": summary,
        "dry_run": dry_run,
    });
    if dry_run {
        answer["changes"] = serde_json::to_value(&diff).unwrap_or(Value::Null);
    }
    drop(diff);
    Ok((checked, answer))
}

/// Writes a checked version and its notices in one transaction, then serves it.
async fn publish(
    store: &Store,
    lists: &ArcSwap<CodeLists>,
    request: &ImportRequest,
    checked: crate::import::Checked,
    answer: Value,
    now: &str,
) -> Result<Value, ImportFailure> {
    let summary = answer["summary"].clone();

    let notice = json!({
        "event": "codelist.version_published",
        "list": request.list_id,
        "version": request.version,
        "valid_from": request.valid_from,
        "valid_to": request.valid_to,
        "follows": checked.closes,
        "summary": summary,
        "published_at": now,
    })
    .to_string();
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    store
        .publish_code_version(
            &checked.version,
            checked.closes.as_deref(),
            Some((&notice, now, now_us)),
        )
        .await?;
    lists.store(std::sync::Arc::new(CodeLists::load(store).await?));
    tracing::info!(list = %request.list_id, version = %request.version, items = checked.version.items.len(), "code list version published");
    Ok(answer)
}

/// Registers a new, empty list (its versions come by import).
pub async fn create_list(
    store: &Store,
    lists: &ArcSwap<CodeLists>,
    list: &CodeListRow,
) -> Result<(), StoreError> {
    store.insert_code_list(list, &[]).await?;
    lists.store(std::sync::Arc::new(CodeLists::load(store).await?));
    Ok(())
}
