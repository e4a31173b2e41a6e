//! The `danhmuc/1.0` API: read-only, answered from memory. Every read takes
//! `at` (a date; today in Viet Nam by default) and answers from the version
//! valid on that date.
//!
//! | path | answer |
//! | --- | --- |
//! | `lists` | every list with its versions |
//! | `lists/{id}` | one list with its versions |
//! | `lists/{id}/items?at=&parent=&level=&page=&page_size=` | items (JSON, XML or CSV) |
//! | `lists/{id}/items/{code}?at=` | one item with its ancestors |
//! | `lists/{id}/items/{code}/children?at=` | the item's direct children |
//! | `lists/{id}/items/{code}/successors?at=` | what the code became in the next version(s) |
//! | `lists/{id}/items/{code}/predecessors?at=` | which earlier codes became it |
//! | `lists/{id}/search?q=&at=&limit=` | diacritic-insensitive search, best first |
//! | `lists/{id}/diff?from=&to=` | added, removed, renamed, moved, recoded |
//! | `lists/{id}/export?at=` | the whole version (CSV by default) |

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Serialize;
use serde_json::json;
use time::Date;

use crate::index::{CodeLists, Item, ListIndex, VersionIndex, format_date, parse_date};
use crate::render::{Format, Listing, csv_items, xml_items};
use crate::today;

const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 1000;
const DEFAULT_SEARCH_LIMIT: usize = 20;
const MAX_SEARCH_LIMIT: usize = 200;

/// The answer of the service, before the gateway adds its headers.
#[derive(Debug)]
pub enum Reply {
    Ok {
        body: Bytes,
        content_type: &'static str,
        /// When the list last changed (RFC 3339), for `Last-Modified`.
        last_modified: Option<String>,
    },
    /// A JSON answer with its own status (the callbacks resource).
    Status { status: StatusCode, body: Bytes },
    Error {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
}

impl Reply {
    pub(crate) fn json_status(status: StatusCode, value: &impl Serialize) -> Reply {
        let body = if status == StatusCode::NO_CONTENT {
            Bytes::new()
        } else {
            Bytes::from(serde_json::to_vec(value).expect("serialising a reply"))
        };
        Reply::Status { status, body }
    }

    pub(crate) fn error(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> Reply {
        Reply::Error {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Reply {
        Reply::error(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    fn json(value: &impl Serialize, list: Option<&ListIndex>) -> Reply {
        Reply::Ok {
            body: Bytes::from(serde_json::to_vec(value).expect("serialising a reply")),
            content_type: Format::Json.content_type(),
            last_modified: list.map(|l| l.published_at.clone()),
        }
    }
}

#[derive(Default)]
struct Params {
    at: Option<Date>,
    from: Option<Date>,
    to: Option<Date>,
    parent: Option<String>,
    level: Option<i64>,
    page: Option<usize>,
    page_size: Option<usize>,
    q: Option<String>,
    limit: Option<usize>,
    format: Option<String>,
}

fn number<T: std::str::FromStr + PartialOrd>(
    name: &str,
    value: &str,
    low: T,
    high: T,
) -> Result<T, Reply> {
    value
        .parse::<T>()
        .ok()
        .filter(|n| *n >= low && *n <= high)
        .ok_or_else(|| {
            Reply::bad(format!(
                "query parameter `{name}`: must be a whole number in its range"
            ))
        })
}

fn date(name: &str, value: &str) -> Result<Date, Reply> {
    parse_date(value).ok_or_else(|| {
        Reply::bad(format!(
            "query parameter `{name}`: must be a date YYYY-MM-DD"
        ))
    })
}

fn parse_params(query: Option<&str>) -> Result<Params, Reply> {
    let mut p = Params::default();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "at" => p.at = Some(date("at", &value)?),
            "from" => p.from = Some(date("from", &value)?),
            "to" => p.to = Some(date("to", &value)?),
            "parent" => p.parent = Some(value.into_owned()),
            "level" => p.level = Some(number("level", &value, 0, 99)?),
            "page" => p.page = Some(number("page", &value, 1, usize::MAX)?),
            "page_size" => p.page_size = Some(number("page_size", &value, 1, MAX_PAGE_SIZE)?),
            "q" => p.q = Some(value.into_owned()),
            "limit" => p.limit = Some(number("limit", &value, 1, MAX_SEARCH_LIMIT)?),
            "format" => p.format = Some(value.into_owned()),
            other => {
                return Err(Reply::bad(format!(
                    "query parameter `{other}` is not known here"
                )));
            }
        }
    }
    Ok(p)
}

/// Answers one request; `path` is what follows `/danhmuc/1.0/`.
pub fn handle(
    lists: &CodeLists,
    method: &Method,
    path: &str,
    query: Option<&str>,
    accept: Option<&str>,
) -> Reply {
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
    let format = match Format::choose(params.format.as_deref(), accept) {
        Ok(f) => f,
        Err(message) => return Reply::bad(message),
    };
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] | ["lists"] => {
            let all: Vec<_> = lists.lists.values().map(list_summary).collect();
            Reply::json(&json!({ "lists": all }), None)
        }
        ["lists", id] => with_list(lists, id, |list| {
            Reply::json(&list_summary(list), Some(list))
        }),
        ["lists", id, "items"] => with_version(lists, id, &params, |list, v, at| {
            items(list, v, at, &params, format)
        }),
        ["lists", id, "export"] => with_version(lists, id, &params, |list, v, at| {
            let all: Vec<&Item> = v.items.iter().collect();
            let format = if params.format.is_none()
                && accept.is_none_or(|a| !a.contains("json") && !a.contains("xml"))
            {
                Format::Csv
            } else {
                format
            };
            render(list, v, at, all.len(), &all, format, || json!({}))
        }),
        ["lists", id, "items", code] => with_version(lists, id, &params, |list, v, at| {
            let Some(item) = v.item(code) else {
                return no_code(list, code, at);
            };
            let ancestors = v.ancestors(item);
            if format != Format::Json {
                return render(list, v, at, 1, &[item], format, || json!({}));
            }
            Reply::json(
                &json!({"list": list.meta.id, "version": v.row.version, "at": format_date(at), "item": item, "ancestors": ancestors}),
                Some(list),
            )
        }),
        ["lists", id, "items", code, "children"] => {
            with_version(lists, id, &params, |list, v, at| {
                if v.item(code).is_none() {
                    return no_code(list, code, at);
                }
                let children: Vec<&Item> = v.children(Some(code)).collect();
                render(
                    list,
                    v,
                    at,
                    children.len(),
                    &children,
                    format,
                    || json!({ "parent": code }),
                )
            })
        }
        [
            "lists",
            id,
            "items",
            code,
            direction @ ("successors" | "predecessors"),
        ] => with_version(lists, id, &params, |list, v, at| {
            if v.item(code).is_none() {
                return no_code(list, code, at);
            }
            let forward = *direction == "successors";
            let rows = if forward {
                list.successors(&v.row.version, code)
            } else {
                list.predecessors(&v.row.version, code)
            };
            let mapped: Vec<_> = rows
                .iter()
                .map(|m| {
                    let (other_version, other_code) = if forward {
                        (&m.to_version, &m.new_code)
                    } else {
                        (&m.from_version, &m.old_code)
                    };
                    let other = list
                        .versions
                        .iter()
                        .find(|x| &x.row.version == other_version);
                    json!({
                        "code": other_code,
                        "name": other.and_then(|o| o.item(other_code)).map(|i| i.name.as_str()),
                        "version": other_version,
                        "valid_from": other.and_then(|o| o.row.valid_from.as_deref()),
                        "valid_to": other.and_then(|o| o.row.valid_to.as_deref()),
                        "kind": m.kind,
                        "is_default": m.is_default,
                    })
                })
                .collect();
            Reply::json(
                &json!({
                    "list": list.meta.id, "version": v.row.version, "at": format_date(at),
                    "code": code, "name": v.item(code).map(|i| i.name.as_str()), *direction: mapped,
                }),
                Some(list),
            )
        }),
        ["lists", id, "search"] => with_version(lists, id, &params, |list, v, at| {
            let Some(q) = params.q.as_deref().filter(|q| !q.trim().is_empty()) else {
                return Reply::bad("query parameter `q` is required");
            };
            if q.chars().count() > 200 {
                return Reply::bad("query parameter `q`: at most 200 characters");
            }
            let hits = v.search(q, params.limit.unwrap_or(DEFAULT_SEARCH_LIMIT));
            render(list, v, at, hits.len(), &hits, format, || json!({ "q": q }))
        }),
        ["lists", id, "diff"] => with_list(lists, id, |list| {
            let (Some(from), Some(to)) = (params.from, params.to) else {
                return Reply::bad(
                    "query parameters `from` and `to` (dates YYYY-MM-DD) are required",
                );
            };
            let (Some(old), Some(new)) = (list.version_at(from), list.version_at(to)) else {
                return Reply::error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("list {id} has no version valid on one of those dates"),
                );
            };
            let diff = list.diff(old, new);
            Reply::json(
                &json!({
                    "list": list.meta.id,
                    "from": {"date": format_date(from), "version": old.row.version},
                    "to": {"date": format_date(to), "version": new.row.version},
                    "summary": {
                        "added": diff.added.len(), "removed": diff.removed.len(), "renamed": diff.renamed.len(),
                        "moved": diff.moved.len(), "recoded": diff.recoded.len(),
                    },
                    "changes": diff,
                }),
                Some(list),
            )
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
            "published_at": v.row.published_at,
            "items": v.items.len(),
        })).collect::<Vec<_>>(),
    })
}

fn no_code(list: &ListIndex, code: &str, at: Date) -> Reply {
    Reply::error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "list {} has no code {code} on {}",
            list.meta.id,
            format_date(at)
        ),
    )
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

/// A set of items in the asked format; `extra` adds fields to the JSON form.
fn render(
    list: &ListIndex,
    v: &VersionIndex,
    at: Date,
    total: usize,
    items: &[&Item],
    format: Format,
    extra: impl FnOnce() -> serde_json::Value,
) -> Reply {
    let at_text = format_date(at);
    let body = match format {
        Format::Json => {
            let mut value = json!({"list": list.meta.id, "version": v.row.version, "at": at_text, "total": total, "items": items});
            if let (Some(target), serde_json::Value::Object(more)) =
                (value.as_object_mut(), extra())
            {
                target.extend(more);
            }
            return Reply::json(&value, Some(list));
        }
        Format::Xml => xml_items(
            &Listing {
                list: &list.meta.id,
                version: &v.row.version,
                at: &at_text,
                total,
            },
            items,
        ),
        Format::Csv => csv_items(items),
    };
    Reply::Ok {
        body,
        content_type: format.content_type(),
        last_modified: Some(list.published_at.clone()),
    }
}

fn items(list: &ListIndex, v: &VersionIndex, at: Date, params: &Params, format: Format) -> Reply {
    let page = params.page.unwrap_or(1);
    let size = params.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    let level_ok = |i: &&Item| params.level.is_none_or(|l| i.level == l);
    let selected: Vec<&Item> = match params.parent.as_deref() {
        Some(parent) if v.item(parent).is_none() => return no_code(list, parent, at),
        Some(parent) => v.children(Some(parent)).filter(level_ok).collect(),
        None => v.items.iter().filter(level_ok).collect(),
    };
    let total = selected.len();
    let page_items: Vec<&Item> = selected
        .into_iter()
        .skip((page - 1).saturating_mul(size))
        .take(size)
        .collect();
    render(
        list,
        v,
        at,
        total,
        &page_items,
        format,
        || json!({ "page": page, "page_size": size }),
    )
}
