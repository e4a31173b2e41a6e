//! Code lists in memory: every read is answered from here.

use std::collections::{BTreeMap, HashMap};

use lgsp_store::{CodeItemRow, CodeListRow, CodeMappingRow, CodeVersionRow, Store, StoreError};
use serde::Serialize;
use time::Date;

use crate::fold::fold;

#[derive(Clone, Debug, Serialize)]
pub struct Item {
    pub code: String,
    pub name: String,
    pub parent_code: Option<String>,
    pub level: i64,
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// One version of a list with its lookups.
#[derive(Debug)]
pub struct VersionIndex {
    pub row: CodeVersionRow,
    pub valid_from: Option<Date>,
    pub valid_to: Option<Date>,
    pub items: Vec<Item>,
    by_code: HashMap<String, usize>,
    children: HashMap<String, Vec<usize>>,
    roots: Vec<usize>,
    /// Search keys of each item, prepared once when the version is loaded.
    keys: Vec<SearchKeys>,
    /// Every word of every folded name, sorted, with its item: a query looks
    /// only at items with a word that starts like one of its own words.
    words: Vec<(Box<str>, u32)>,
}

#[derive(Debug)]
pub struct ListIndex {
    pub meta: CodeListRow,
    /// Sorted by start of validity.
    pub versions: Vec<VersionIndex>,
    pub mappings: Vec<CodeMappingRow>,
    /// `(from_version, old_code)` → mappings, and `(to_version, new_code)` → mappings.
    forward: HashMap<(String, String), Vec<usize>>,
    backward: HashMap<(String, String), Vec<usize>>,
    /// The latest publication time of any version (RFC 3339).
    pub published_at: String,
}

/// What changed between two versions of a list.
#[derive(Debug, Serialize)]
pub struct Diff<'a> {
    pub added: Vec<&'a Item>,
    pub removed: Vec<&'a Item>,
    pub renamed: Vec<Change<'a>>,
    pub moved: Vec<Change<'a>>,
    pub recoded: Vec<&'a CodeMappingRow>,
}

#[derive(Debug, Serialize)]
pub struct Change<'a> {
    pub code: &'a str,
    pub before: &'a Item,
    pub after: &'a Item,
}

/// All lists, keyed by id.
#[derive(Debug, Default)]
pub struct CodeLists {
    pub lists: BTreeMap<String, ListIndex>,
}

impl CodeLists {
    pub async fn load(store: &Store) -> Result<CodeLists, StoreError> {
        let mut lists = BTreeMap::new();
        let versions = store.code_versions().await?;
        for meta in store.code_lists().await? {
            let mappings = store.code_mappings(&meta.id).await?;
            let mut built = Vec::new();
            for row in versions.iter().filter(|v| v.list_id == meta.id) {
                let items = store.code_items(&row.list_id, &row.version).await?;
                built.push(VersionIndex::build(row.clone(), items));
            }
            let list = ListIndex::new(meta, built, mappings);
            lists.insert(list.meta.id.clone(), list);
        }
        Ok(CodeLists { lists })
    }

    pub fn list(&self, id: &str) -> Option<&ListIndex> {
        self.lists.get(id)
    }
}

impl ListIndex {
    pub fn new(
        meta: CodeListRow,
        mut versions: Vec<VersionIndex>,
        mappings: Vec<CodeMappingRow>,
    ) -> ListIndex {
        versions.sort_by_key(|v| v.valid_from);
        let mut forward: HashMap<(String, String), Vec<usize>> = HashMap::new();
        let mut backward: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (i, m) in mappings.iter().enumerate() {
            forward
                .entry((m.from_version.clone(), m.old_code.clone()))
                .or_default()
                .push(i);
            backward
                .entry((m.to_version.clone(), m.new_code.clone()))
                .or_default()
                .push(i);
        }
        let published_at = versions
            .iter()
            .map(|v| v.row.published_at.clone())
            .max()
            .unwrap_or_default();
        ListIndex {
            meta,
            versions,
            mappings,
            forward,
            backward,
            published_at,
        }
    }

    /// Where `code` of `version` went in later versions.
    pub fn successors(&self, version: &str, code: &str) -> Vec<&CodeMappingRow> {
        self.lookup(&self.forward, version, code)
    }

    /// Which codes of earlier versions became `code` of `version`.
    pub fn predecessors(&self, version: &str, code: &str) -> Vec<&CodeMappingRow> {
        self.lookup(&self.backward, version, code)
    }

    fn lookup(
        &self,
        map: &HashMap<(String, String), Vec<usize>>,
        version: &str,
        code: &str,
    ) -> Vec<&CodeMappingRow> {
        let mut rows: Vec<&CodeMappingRow> = map
            .get(&(version.to_owned(), code.to_owned()))
            .map(|ix| ix.iter().map(|&i| &self.mappings[i]).collect())
            .unwrap_or_default();
        // The default successor first.
        rows.sort_by_key(|m| !m.is_default);
        rows
    }

    /// What changed from `old` to `new`: codes added and removed, names and
    /// parents changed under the same code, and codes recoded by a mapping.
    pub fn diff<'a>(&'a self, old: &'a VersionIndex, new: &'a VersionIndex) -> Diff<'a> {
        let mut diff = Diff {
            added: Vec::new(),
            removed: Vec::new(),
            renamed: Vec::new(),
            moved: Vec::new(),
            recoded: Vec::new(),
        };
        for item in &new.items {
            match old.item(&item.code) {
                None => diff.added.push(item),
                Some(before) => {
                    if before.name != item.name {
                        diff.renamed.push(Change {
                            code: &item.code,
                            before,
                            after: item,
                        });
                    }
                    if before.parent_code != item.parent_code {
                        diff.moved.push(Change {
                            code: &item.code,
                            before,
                            after: item,
                        });
                    }
                }
            }
        }
        diff.removed = old
            .items
            .iter()
            .filter(|i| new.item(&i.code).is_none())
            .collect();
        diff.recoded = self
            .mappings
            .iter()
            .filter(|m| {
                m.kind == "recoded"
                    && m.from_version == old.row.version
                    && m.to_version == new.row.version
            })
            .collect();
        diff
    }

    /// The version valid on `date`, if any.
    pub fn version_at(&self, date: Date) -> Option<&VersionIndex> {
        self.versions.iter().find(|v| {
            v.valid_from.is_none_or(|from| from <= date) && v.valid_to.is_none_or(|to| date < to)
        })
    }
}

impl VersionIndex {
    pub fn build(row: CodeVersionRow, rows: Vec<CodeItemRow>) -> VersionIndex {
        let parse = |d: &Option<String>| d.as_deref().and_then(|d| Date::parse(d, DATE).ok());
        let mut index = VersionIndex {
            valid_from: parse(&row.valid_from),
            valid_to: parse(&row.valid_to),
            row,
            items: Vec::with_capacity(rows.len()),
            by_code: HashMap::with_capacity(rows.len()),
            children: HashMap::new(),
            roots: Vec::new(),
            keys: Vec::with_capacity(rows.len()),
            words: Vec::new(),
        };
        for r in rows {
            let attributes = match serde_json::from_str(&r.attributes) {
                Ok(serde_json::Value::Object(map)) => map,
                _ => serde_json::Map::new(),
            };
            let keys = SearchKeys::new(&r.name, &attributes);
            let i = index.items.len();
            index.by_code.insert(r.code.clone(), i);
            match &r.parent_code {
                Some(p) => index.children.entry(p.clone()).or_default().push(i),
                None => index.roots.push(i),
            }
            for (name, _) in &keys.names {
                for word in name.split(' ').filter(|w| !w.is_empty()) {
                    index.words.push((word.into(), i as u32));
                }
            }
            index.keys.push(keys);
            index.items.push(Item {
                code: r.code,
                name: r.name,
                parent_code: r.parent_code,
                level: r.level,
                attributes,
            });
        }
        index.words.sort_unstable();
        index.words.dedup();
        index
    }

    pub fn item(&self, code: &str) -> Option<&Item> {
        self.by_code.get(code).map(|&i| &self.items[i])
    }

    /// Items under `parent` (`None` = the top level), in code order.
    pub fn children(&self, parent: Option<&str>) -> impl Iterator<Item = &Item> {
        let indexes = match parent {
            Some(p) => self.children.get(p).map(Vec::as_slice).unwrap_or_default(),
            None => &self.roots,
        };
        indexes.iter().map(|&i| &self.items[i])
    }

    /// The chain from the top level down to the item's parent.
    pub fn ancestors(&self, item: &Item) -> Vec<&Item> {
        let mut chain = Vec::new();
        let mut next = item.parent_code.as_deref();
        while let Some(code) = next {
            let Some(parent) = self.item(code) else { break };
            if chain.len() > 16 {
                break;
            }
            chain.push(parent);
            next = parent.parent_code.as_deref();
        }
        chain.reverse();
        chain
    }

    /// Diacritic-insensitive search, best matches first: whole name, then
    /// name start, then a word start, then anywhere; every word of the query
    /// must start a word of the name. Among equals, a match with the same diacritics as the
    /// query wins, then the shorter name.
    pub fn search(&self, query: &str, limit: usize) -> Vec<&Item> {
        let q = fold(query);
        if q.is_empty() {
            return Vec::new();
        }
        let words: Vec<&str> = q.split(' ').collect();
        let exact_lower = query.trim().to_lowercase();
        let word_start = format!(" {q}");

        // Candidates: items with a word starting like the query's longest word.
        let longest = words
            .iter()
            .copied()
            .max_by_key(|w| w.len())
            .unwrap_or_default();
        let start = self.words.partition_point(|(w, _)| &**w < longest);
        let mut candidates: Vec<usize> = self.words[start..]
            .iter()
            .take_while(|(w, _)| w.starts_with(longest))
            .map(|&(_, i)| i as usize)
            .collect();
        candidates.sort_unstable();
        candidates.dedup();

        let mut hits: Vec<(u8, bool, usize, usize)> = Vec::new();
        for i in candidates {
            let keys = &self.keys[i];
            let best = keys
                .names
                .iter()
                .filter_map(|(name, core)| rank(name, &name[*core..], &q, &word_start, &words))
                .min();
            if let Some(score) = best {
                let same_marks = keys.lower.contains(&exact_lower);
                hits.push((score, !same_marks, keys.chars, i));
            }
        }
        hits.sort_unstable();
        hits.into_iter()
            .take(limit)
            .map(|(.., i)| &self.items[i])
            .collect()
    }
}

/// What search compares, computed when a version is loaded rather than per query.
#[derive(Debug)]
struct SearchKeys {
    /// Folded name and other spellings, each with where the name proper
    /// starts once the unit type ("phuong", "xa", …) is left out.
    names: Vec<(String, usize)>,
    /// The name in lower case, diacritics kept.
    lower: String,
    chars: usize,
}

impl SearchKeys {
    fn new(name: &str, attributes: &serde_json::Map<String, serde_json::Value>) -> SearchKeys {
        let kind = attributes.get("type").and_then(|t| t.as_str()).map(fold);
        let mut spellings = vec![fold(name)];
        if let Some(serde_json::Value::Array(others)) = attributes.get("other_spellings") {
            spellings.extend(others.iter().filter_map(|v| v.as_str()).map(fold));
        }
        let names = spellings
            .into_iter()
            .map(|folded| {
                let core = kind
                    .as_deref()
                    .filter(|k| {
                        folded.len() > k.len()
                            && folded.starts_with(k)
                            && folded.as_bytes()[k.len()] == b' '
                    })
                    .map_or(0, |k| k.len() + 1);
                (folded, core)
            })
            .collect();
        SearchKeys {
            names,
            lower: name.to_lowercase(),
            chars: name.chars().count(),
        }
    }
}

fn rank(name: &str, core: &str, q: &str, word_start: &str, words: &[&str]) -> Option<u8> {
    if core == q || name == q {
        Some(0)
    } else if core.starts_with(q) || name.starts_with(q) {
        Some(1)
    } else if name.contains(word_start) {
        Some(2)
    } else if name.contains(q) {
        Some(3)
    } else if words
        .iter()
        .all(|w| name.split(' ').any(|n| n.starts_with(w)))
    {
        Some(4)
    } else {
        None
    }
}

const DATE: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// Parses an ISO date (`2025-07-01`).
pub fn parse_date(value: &str) -> Option<Date> {
    Date::parse(value, DATE).ok()
}

pub fn format_date(date: Date) -> String {
    date.format(DATE).expect("formatting a date")
}
