//! The `danhmuc/1.0` API: read-only, answered from memory.
//!
//! | path | answer |
//! | --- | --- |
//! | `lists` | every list with its versions |
//! | `lists/{id}` | one list with its versions |
//! | `lists/{id}/items?at=&parent=&level=&page=&page_size=` | items of the version valid at `at` |
//! | `lists/{id}/items/{code}?at=` | one item with its ancestors |
//! | `lists/{id}/search?q=&at=&limit=` | diacritic-insensitive search, best first |

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Serialize;
use serde_json::json;
use time::Date;

use crate::index::{CodeLists, Item, ListIndex, VersionIndex, format_date, parse_date};
use crate::today;

const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 1000;
const DEFAULT_SEARCH_LIMIT: usize = 20;
const MAX_SEARCH_LIMIT: usize = 200;

/// The answer of the service, before the gateway adds its headers.
#[derive(Debug)]
pub enum Reply {
    Json(Bytes),
    Error {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
}

impl Reply {
    fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> Reply {
        Reply::Error {
            status,
            code,
            message: message.into(),
        }
    }

    fn json(value: &impl Serialize) -> Reply {
        Reply::Json(Bytes::from(
            serde_json::to_vec(value).expect("serialising a reply"),
        ))
    }
}

#[derive(Default)]
struct Params {
    at: Option<Date>,
    parent: Option<String>,
    level: Option<i64>,
    page: Option<usize>,
    page_size: Option<usize>,
    q: Option<String>,
    limit: Option<usize>,
}

fn parse_params(query: Option<&str>) -> Result<Params, Reply> {
    let mut p = Params::default();
    let bad = |name: &str, what: &str| {
        Reply::error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("query parameter `{name}`: {what}"),
        )
    };
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "at" => {
                p.at =
                    Some(parse_date(&value).ok_or_else(|| bad("at", "must be a date YYYY-MM-DD"))?)
            }
            "parent" => p.parent = Some(value.into_owned()),
            "level" => {
                p.level = Some(
                    value
                        .parse()
                        .map_err(|_| bad("level", "must be a whole number"))?,
                )
            }
            "page" => {
                p.page = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|&n| n >= 1)
                        .ok_or_else(|| bad("page", "must be 1 or more"))?,
                )
            }
            "page_size" => {
                p.page_size = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                        .ok_or_else(|| bad("page_size", "must be 1 to 1000"))?,
                )
            }
            "q" => p.q = Some(value.into_owned()),
            "limit" => {
                p.limit = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_SEARCH_LIMIT).contains(n))
                        .ok_or_else(|| bad("limit", "must be 1 to 200"))?,
                )
            }
            other => return Err(bad(other, "is not known here")),
        }
    }
    Ok(p)
}

/// Answers one request; `path` is what follows `/danhmuc/1.0/`.
pub fn handle(lists: &CodeLists, method: &Method, path: &str, query: Option<&str>) -> Reply {
    if method != Method::GET && method != Method::HEAD {
        return Reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "code lists are read-only: use GET",
        );
    }
    let params = match parse_params(query) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] | ["lists"] => {
            let all: Vec<_> = lists.lists.values().map(list_summary).collect();
            Reply::json(&json!({ "lists": all }))
        }
        ["lists", id] => with_list(lists, id, |list| Reply::json(&list_summary(list))),
        ["lists", id, "items"] => with_version(lists, id, &params, |list, v, at| {
            items(list, v, at, &params)
        }),
        ["lists", id, "items", code] => {
            with_version(lists, id, &params, |list, v, at| match v.item(code) {
                Some(item) => Reply::json(&json!({
                    "list": list.meta.id,
                    "version": v.row.version,
                    "at": format_date(at),
                    "item": item,
                    "ancestors": v.ancestors(item),
                })),
                None => Reply::error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!(
                        "list {} has no code {code} on {}",
                        list.meta.id,
                        format_date(at)
                    ),
                ),
            })
        }
        ["lists", id, "search"] => with_version(lists, id, &params, |list, v, at| {
            let Some(q) = params.q.as_deref().filter(|q| !q.trim().is_empty()) else {
                return Reply::error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "query parameter `q` is required",
                );
            };
            if q.chars().count() > 200 {
                return Reply::error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "query parameter `q`: at most 200 characters",
                );
            }
            let hits = v.search(q, params.limit.unwrap_or(DEFAULT_SEARCH_LIMIT));
            Reply::json(&json!({
                "list": list.meta.id,
                "version": v.row.version,
                "at": format_date(at),
                "q": q,
                "items": hits,
            }))
        }),
        _ => Reply::error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("danhmuc/1.0 has no resource /{path}"),
        ),
    }
}

fn list_summary(list: &ListIndex) -> serde_json::Value {
    json!({
        "id": list.meta.id,
        "name": list.meta.name,
        "name_en": list.meta.name_en,
        "owner_unit": list.meta.owner_unit,
        "description": list.meta.description,
        "legal_basis": list.meta.legal_basis,
        "source": list.meta.source,
        "versions": list.versions.iter().map(|v| json!({
            "version": v.row.version,
            "valid_from": v.row.valid_from,
            "valid_to": v.row.valid_to,
            "items": v.items.len(),
        })).collect::<Vec<_>>(),
    })
}

fn with_list(lists: &CodeLists, id: &str, then: impl FnOnce(&ListIndex) -> Reply) -> Reply {
    match lists.list(id) {
        Some(list) => then(list),
        None => Reply::error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no code list {id}"),
        ),
    }
}

fn with_version(
    lists: &CodeLists,
    id: &str,
    params: &Params,
    then: impl FnOnce(&ListIndex, &VersionIndex, Date) -> Reply,
) -> Reply {
    with_list(lists, id, |list| {
        let at = params.at.unwrap_or_else(today);
        match list.version_at(at) {
            Some(v) => then(list, v, at),
            None => Reply::error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("list {id} has no version valid on {}", format_date(at)),
            ),
        }
    })
}

fn items(list: &ListIndex, v: &VersionIndex, at: Date, params: &Params) -> Reply {
    let page = params.page.unwrap_or(1);
    let size = params.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    let selected: Vec<&Item> = match params.parent.as_deref() {
        Some(parent) if v.item(parent).is_none() => {
            return Reply::error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "list {} has no code {parent} on {}",
                    list.meta.id,
                    format_date(at)
                ),
            );
        }
        Some(parent) => v
            .children(Some(parent))
            .filter(|i| params.level.is_none_or(|l| i.level == l))
            .collect(),
        None => v
            .items
            .iter()
            .filter(|i| params.level.is_none_or(|l| i.level == l))
            .collect(),
    };
    let total = selected.len();
    let page_items: Vec<&Item> = selected
        .into_iter()
        .skip((page - 1).saturating_mul(size))
        .take(size)
        .collect();
    Reply::json(&json!({
        "list": list.meta.id,
        "version": v.row.version,
        "at": format_date(at),
        "total": total,
        "page": page,
        "page_size": size,
        "items": page_items,
    }))
}
