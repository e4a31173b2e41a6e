//! Import of a new version of a code list from CSV, JSON or Excel (`.xlsx`).
//!
//! Everything is checked before anything is written, and every problem is
//! reported with its row and column: missing or duplicate codes, unknown
//! parents, cycles, bad levels, bad dates, overlapping validity, files that
//! are not UTF-8. Vietnamese text is normalised to NFC.

use std::collections::{HashMap, HashSet};
use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use lgsp_store::{CodeItemRow, CodeMappingRow, CodeVersionRow, NewCodeVersion};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::Date;
use unicode_normalization::{UnicodeNormalization, is_nfc};

use crate::index::{ListIndex, format_date, parse_date};

/// Files larger than this are refused.
pub const MAX_IMPORT_BYTES: usize = 50 * 1024 * 1024;
/// A version holds at most this many items.
pub const MAX_ITEMS: usize = 200_000;
/// A table has at most this many columns (code, name, parent, level and attributes).
const MAX_COLUMNS: usize = 64;
/// Longest attribute value.
const MAX_ATTRIBUTE_CHARS: usize = 2000;
/// At most this many errors are listed; the count says how many there were.
const MAX_LISTED_ERRORS: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceFormat {
    Csv,
    Json,
    Xlsx,
}

impl SourceFormat {
    pub fn parse(name: &str) -> Option<SourceFormat> {
        match name.to_ascii_lowercase().as_str() {
            "csv" | "text/csv" => Some(SourceFormat::Csv),
            "json" | "application/json" => Some(SourceFormat::Json),
            "xlsx" | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => {
                Some(SourceFormat::Xlsx)
            }
            _ => None,
        }
    }
}

/// What the operator asks for.
#[derive(Clone, Debug)]
pub struct ImportRequest {
    pub list_id: String,
    pub version: String,
    pub valid_from: String,
    pub valid_to: Option<String>,
    pub format: SourceFormat,
}

/// One problem in the input. Rows count from 1 at the header line (CSV,
/// Excel) or from 1 at the first item (JSON); `row` 0 is about the whole file.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ImportError {
    pub row: usize,
    pub column: String,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct Rejected {
    pub errors: Vec<ImportError>,
    pub error_count: usize,
}

/// A checked version, ready to be written in one transaction.
#[derive(Debug)]
pub struct Checked {
    pub version: NewCodeVersion,
    /// The version whose `valid_to` becomes this version's `valid_from`.
    pub closes: Option<String>,
    /// Cells that were rewritten from NFD (or other forms) to NFC.
    pub normalised_cells: usize,
}

/// A row as read from any format, before checking.
struct RawRow {
    row: usize,
    code: String,
    name: String,
    parent: Option<String>,
    level: Option<String>,
    attributes: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonItem {
    code: Value,
    name: String,
    #[serde(default, alias = "parent")]
    parent_code: Option<Value>,
    #[serde(default)]
    level: Option<i64>,
    #[serde(default)]
    attributes: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonMapping {
    old_code: String,
    new_code: String,
    kind: String,
    #[serde(default)]
    is_default: bool,
}

/// Column names accepted for each field (English and the names provincial files use).
const CODE_COLUMNS: &[&str] = &["code", "ma"];
const NAME_COLUMNS: &[&str] = &["name", "ten"];
const PARENT_COLUMNS: &[&str] = &["parent_code", "parent", "chaid", "ma_cha"];
const LEVEL_COLUMNS: &[&str] = &["level", "capid", "cap"];

struct Errors {
    list: Vec<ImportError>,
    count: usize,
}

impl Errors {
    fn push(&mut self, row: usize, column: &str, message: impl Into<String>) {
        self.count += 1;
        if self.list.len() < MAX_LISTED_ERRORS {
            self.list.push(ImportError {
                row,
                column: column.to_owned(),
                message: message.into(),
            });
        }
    }
}

/// Parses and checks `bytes` as a new version of `list`.
pub fn check(list: &ListIndex, request: &ImportRequest, bytes: &[u8]) -> Result<Checked, Rejected> {
    let mut errors = Errors {
        list: Vec::new(),
        count: 0,
    };
    let mut normalised = 0;

    // 1. The version's identity and validity.
    let from = parse_date(&request.valid_from);
    if from.is_none() {
        errors.push(
            0,
            "valid_from",
            format!("`{}` is not a date YYYY-MM-DD", request.valid_from),
        );
    }
    let to = match request.valid_to.as_deref() {
        None => None,
        Some(t) => match parse_date(t) {
            Some(d) => Some(d),
            None => {
                errors.push(0, "valid_to", format!("`{t}` is not a date YYYY-MM-DD"));
                None
            }
        },
    };
    if let (Some(f), Some(t)) = (from, to)
        && t <= f
    {
        errors.push(0, "valid_to", "must be after valid_from");
    }
    if request.version.is_empty()
        || request.version.len() > 32
        || !request
            .version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        errors.push(
            0,
            "version",
            "must be 1 to 32 letters, digits, '.', '-' or '_'",
        );
    }
    if list
        .versions
        .iter()
        .any(|v| v.row.version == request.version)
    {
        errors.push(
            0,
            "version",
            format!(
                "list {} already has a version {}",
                list.meta.id, request.version
            ),
        );
    }
    let closes = from.and_then(|f| validity_conflicts(list, f, to, &mut errors));

    // 2. Rows, in whatever format they came.
    let (rows, mappings) = match read(request.format, bytes, &mut errors) {
        Some(r) => r,
        None => {
            return Err(Rejected {
                error_count: errors.count,
                errors: errors.list,
            });
        }
    };

    if rows.len() > MAX_ITEMS {
        errors.push(
            0,
            "",
            format!(
                "the file has {} items; a version holds at most {MAX_ITEMS}",
                rows.len()
            ),
        );
        return Err(Rejected {
            error_count: errors.count,
            errors: errors.list,
        });
    }

    // 3. Each row on its own, then the tree they form.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut items: Vec<CodeItemRow> = Vec::with_capacity(rows.len());
    let mut levels: Vec<Option<i64>> = Vec::with_capacity(rows.len());
    let mut row_of: Vec<usize> = Vec::with_capacity(rows.len());
    for raw in rows {
        let mut fix = |text: String| -> String {
            if is_nfc(&text) {
                text
            } else {
                normalised += 1;
                text.nfc().collect()
            }
        };
        let code = fix(raw.code.trim().to_owned());
        let name = fix(raw.name.trim().to_owned());
        let parent = raw
            .parent
            .map(|p| fix(p.trim().to_owned()))
            .filter(|p| !p.is_empty());
        if code.is_empty() {
            errors.push(raw.row, "code", "is empty");
            continue;
        }
        if code.len() > 64
            || code
                .chars()
                .any(|c| c.is_control() || c == '/' || c.is_whitespace())
        {
            errors.push(
                raw.row,
                "code",
                format!("`{code}` must be at most 64 characters, without spaces or '/'"),
            );
        }
        if name.is_empty() {
            errors.push(raw.row, "name", "is empty");
        } else if name.chars().count() > 255 {
            errors.push(raw.row, "name", "is longer than 255 characters");
        } else if name.chars().any(forbidden_char) {
            errors.push(
                raw.row,
                "name",
                "contains a control or invisible formatting character",
            );
        }
        for (key, value) in &raw.attributes {
            let text = scalar(value);
            if text.chars().count() > MAX_ATTRIBUTE_CHARS || text.chars().any(forbidden_char) {
                errors.push(
                    raw.row,
                    key,
                    format!("must be at most {MAX_ATTRIBUTE_CHARS} characters, without control characters"),
                );
            }
        }
        if let Some(first) = seen.get(&code) {
            errors.push(
                raw.row,
                "code",
                format!("duplicate code {code} (first on row {first})"),
            );
            continue;
        }
        let level = match raw
            .level
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            None => None,
            Some(l) => match l.parse::<i64>() {
                Ok(n) if (1..=99).contains(&n) => Some(n),
                _ => {
                    errors.push(
                        raw.row,
                        "level",
                        format!("`{l}` is not a level from 1 to 99"),
                    );
                    None
                }
            },
        };
        seen.insert(code.clone(), raw.row);
        row_of.push(raw.row);
        levels.push(level);
        items.push(CodeItemRow {
            list_id: request.list_id.clone(),
            version: request.version.clone(),
            code,
            name,
            parent_code: parent,
            level: 0,
            attributes: Value::Object(raw.attributes).to_string(),
        });
    }
    if items.is_empty() && errors.count == 0 {
        errors.push(0, "", "the file has no items");
    }

    let index: HashMap<String, usize> = items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.code.clone(), i))
        .collect();
    let mut depth: Vec<Option<i64>> = vec![None; items.len()];
    for i in 0..items.len() {
        if let Some(parent) = &items[i].parent_code
            && !index.contains_key(parent)
        {
            errors.push(row_of[i], "parent_code", format!("unknown parent {parent}"));
            continue;
        }
        // Walk up to the root; a walk that comes back on itself is a cycle.
        let mut path = HashSet::new();
        let mut at = i;
        let mut d = 1;
        let mut broken = false;
        while let Some(p) = items[at].parent_code.as_deref().and_then(|p| index.get(p)) {
            if !path.insert(at) || d > 99 {
                errors.push(
                    row_of[i],
                    "parent_code",
                    format!("code {} is part of a cycle of parents", items[i].code),
                );
                broken = true;
                break;
            }
            at = *p;
            d += 1;
        }
        if !broken
            && items[at]
                .parent_code
                .as_deref()
                .is_none_or(|p| index.contains_key(p))
        {
            depth[i] = Some(d);
        }
    }
    for i in 0..items.len() {
        items[i].level = match (levels[i], depth[i]) {
            (Some(given), _) => given,
            (None, Some(d)) => d,
            (None, None) => 0,
        };
        let parent = items[i].parent_code.as_deref().and_then(|p| index.get(p));
        if let (Some(given), Some(parent)) = (levels[i], parent)
            && let Some(parent_level) = levels[*parent].or(depth[*parent])
            && given <= parent_level
        {
            errors.push(
                row_of[i],
                "level",
                format!("level {given} is not below its parent's level {parent_level}"),
            );
        }
    }

    // 4. Mappings from the version this one follows.
    let mut mapping_rows = Vec::new();
    if !mappings.is_empty() {
        match &closes {
            None => errors.push(
                0,
                "mappings",
                "mappings need an earlier version to map from",
            ),
            Some(previous) => {
                let old = list.versions.iter().find(|v| &v.row.version == previous);
                for (n, m) in mappings.into_iter().enumerate() {
                    let row = n + 1;
                    if !matches!(
                        m.kind.as_str(),
                        "merged" | "divided" | "renamed" | "recoded"
                    ) {
                        errors.push(
                            row,
                            "mappings.kind",
                            "must be merged, divided, renamed or recoded",
                        );
                    }
                    if old.is_some_and(|o| o.item(&m.old_code).is_none()) {
                        errors.push(
                            row,
                            "mappings.old_code",
                            format!("{} is not a code of version {previous}", m.old_code),
                        );
                    }
                    if !index.contains_key(&m.new_code) {
                        errors.push(
                            row,
                            "mappings.new_code",
                            format!("{} is not a code of this version", m.new_code),
                        );
                    }
                    mapping_rows.push(CodeMappingRow {
                        list_id: request.list_id.clone(),
                        from_version: previous.clone(),
                        to_version: request.version.clone(),
                        old_code: m.old_code,
                        new_code: m.new_code,
                        kind: m.kind,
                        is_default: m.is_default,
                    });
                }
            }
        }
    }

    if errors.count > 0 {
        return Err(Rejected {
            error_count: errors.count,
            errors: errors.list,
        });
    }
    Ok(Checked {
        version: NewCodeVersion {
            version: CodeVersionRow {
                list_id: request.list_id.clone(),
                version: request.version.clone(),
                valid_from: Some(request.valid_from.clone()),
                valid_to: request.valid_to.clone(),
                published_at: String::new(),
            },
            items,
            mappings: mapping_rows,
        },
        closes,
        normalised_cells: normalised,
    })
}

/// A new version must start after every existing one; the latest existing
/// version is closed at the new start. Returns the version to close.
fn validity_conflicts(
    list: &ListIndex,
    from: Date,
    to: Option<Date>,
    errors: &mut Errors,
) -> Option<String> {
    let latest = list.versions.last()?;
    if list
        .versions
        .iter()
        .any(|v| v.valid_from.is_some_and(|f| f >= from))
    {
        errors.push(
            0,
            "valid_from",
            format!(
                "{} is not after the start of version {} ({}): versions of a list never overlap",
                format_date(from),
                latest.row.version,
                latest.row.valid_from.as_deref().unwrap_or("-")
            ),
        );
        return None;
    }
    if latest.valid_to.is_some_and(|t| t > from)
        && to.is_some_and(|t| t <= latest.valid_to.unwrap_or(t))
    {
        errors.push(
            0,
            "valid_to",
            "the new version would end inside the previous one",
        );
    }
    Some(latest.row.version.clone())
}

fn read(
    format: SourceFormat,
    bytes: &[u8],
    errors: &mut Errors,
) -> Option<(Vec<RawRow>, Vec<JsonMapping>)> {
    if bytes.len() > MAX_IMPORT_BYTES {
        errors.push(
            0,
            "",
            format!(
                "the file is larger than {} MiB",
                MAX_IMPORT_BYTES / 1024 / 1024
            ),
        );
        return None;
    }
    match format {
        SourceFormat::Csv => {
            let text = utf8(bytes, errors)?;
            let mut reader = csv::ReaderBuilder::new()
                .flexible(false)
                .from_reader(text.as_bytes());
            let header: Vec<String> = match reader.headers() {
                Ok(h) => h.iter().map(|c| c.trim().to_owned()).collect(),
                Err(e) => {
                    errors.push(1, "", format!("unreadable header: {e}"));
                    return None;
                }
            };
            let mut cells = Vec::new();
            for (i, record) in reader.records().enumerate() {
                match record {
                    Ok(r) => cells.push((i + 2, r.iter().map(str::to_owned).collect::<Vec<_>>())),
                    Err(e) => errors.push(i + 2, "", format!("unreadable row: {e}")),
                }
            }
            Some((table(header, cells, errors)?, Vec::new()))
        }
        SourceFormat::Json => {
            let text = utf8(bytes, errors)?;
            let doc: Value = match serde_json::from_str(text) {
                Ok(d) => d,
                Err(e) => {
                    errors.push(e.line(), "", format!("malformed JSON: {e}"));
                    return None;
                }
            };
            let (items, mappings) = match doc {
                Value::Array(items) => (items, Value::Null),
                Value::Object(mut o)
                    if o.contains_key("items")
                        && o.keys().all(|k| k == "items" || k == "mappings") =>
                {
                    (
                        match o.remove("items") {
                            Some(Value::Array(a)) => a,
                            _ => Vec::new(),
                        },
                        o.remove("mappings").unwrap_or(Value::Null),
                    )
                }
                _ => {
                    errors.push(0, "", "not a JSON array of items nor an object {\"items\": […], \"mappings\": […]}");
                    return None;
                }
            };
            // Item by item, so that each error names its row.
            let mut rows = Vec::with_capacity(items.len());
            for (i, value) in items.into_iter().enumerate() {
                match serde_json::from_value::<JsonItem>(value) {
                    Ok(it) if !matches!(it.code, Value::String(_) | Value::Number(_)) => {
                        errors.push(i + 1, "code", "must be a string or a number")
                    }
                    Ok(it) => rows.push(RawRow {
                        row: i + 1,
                        code: scalar(&it.code),
                        name: it.name,
                        parent: it
                            .parent_code
                            .as_ref()
                            .map(scalar)
                            .filter(|p| !p.is_empty()),
                        level: it.level.map(|l| l.to_string()),
                        attributes: it.attributes,
                    }),
                    Err(e) => errors.push(
                        i + 1,
                        "",
                        format!(
                            "not an item {{code, name, parent_code?, level?, attributes?}}: {e}"
                        ),
                    ),
                }
            }
            let mappings = match mappings {
                Value::Null => Vec::new(),
                other => match serde_json::from_value::<Vec<JsonMapping>>(other) {
                    Ok(m) => m,
                    Err(e) => {
                        errors.push(
                            0,
                            "mappings",
                            format!("not a list of {{old_code, new_code, kind, is_default}}: {e}"),
                        );
                        Vec::new()
                    }
                },
            };
            Some((rows, mappings))
        }
        SourceFormat::Xlsx => {
            let cells = xlsx_cells(bytes, errors)?;
            let mut rows = cells.into_iter();
            let header = rows.next().map(|(_, r)| r).unwrap_or_default();
            let body: Vec<(usize, Vec<String>)> = rows
                .filter(|(_, r)| r.iter().any(|c| !c.trim().is_empty()))
                .collect();
            Some((table(header, body, errors)?, Vec::new()))
        }
    }
}

/// The first sheet's used cells, row by row (row numbers as Excel shows
/// them). Cells are streamed, never laid out as a full grid, so a stray
/// cell far away (say at XFD1048576) costs nothing and is refused.
fn xlsx_cells(bytes: &[u8], errors: &mut Errors) -> Option<Vec<(usize, Vec<String>)>> {
    let mut workbook = match Xlsx::new(Cursor::new(bytes)) {
        Ok(w) => w,
        Err(e) => {
            errors.push(0, "", format!("not an Excel .xlsx workbook: {e}"));
            return None;
        }
    };
    let Some(first) = workbook.sheet_names().into_iter().next() else {
        errors.push(0, "", "the workbook has no sheet");
        return None;
    };
    let mut reader = match workbook.worksheet_cells_reader(&first) {
        Ok(r) => r,
        Err(e) => {
            errors.push(0, "", format!("the first sheet cannot be read: {e}"));
            return None;
        }
    };
    let mut rows: std::collections::BTreeMap<u32, Vec<String>> = std::collections::BTreeMap::new();
    loop {
        let cell = match reader.next_cell() {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                errors.push(0, "", format!("the first sheet cannot be read: {e}"));
                return None;
            }
        };
        let (row, col) = cell.get_position();
        let value = cell_text(&Data::from(cell.get_value().clone()));
        if value.trim().is_empty() {
            continue;
        }
        if col as usize >= MAX_COLUMNS || row as usize > MAX_ITEMS {
            errors.push(
                row as usize + 1,
                "",
                format!(
                    "a cell lies outside the table (at most {MAX_COLUMNS} columns and {MAX_ITEMS} rows); delete stray cells"
                ),
            );
            return None;
        }
        let cells = rows.entry(row).or_default();
        if cells.len() <= col as usize {
            cells.resize(col as usize + 1, String::new());
        }
        cells[col as usize] = value;
    }
    Some(
        rows.into_iter()
            .map(|(r, cells)| (r as usize + 1, cells))
            .collect(),
    )
}

/// Text of a file; a BOM is dropped, anything but UTF-8 is refused.
fn utf8<'a>(bytes: &'a [u8], errors: &mut Errors) -> Option<&'a str> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(t) => Some(t),
        Err(e) => {
            let offset = e.valid_up_to();
            let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
            errors.push(
                line,
                "",
                format!("the file is not UTF-8 (invalid byte at offset {offset}); save it as UTF-8 (Excel: \"CSV UTF-8\")"),
            );
            None
        }
    }
}

/// Rows of a header + cells table (CSV, Excel) as raw rows.
fn table(
    header: Vec<String>,
    cells: Vec<(usize, Vec<String>)>,
    errors: &mut Errors,
) -> Option<Vec<RawRow>> {
    let find = |names: &[&str]| {
        header
            .iter()
            .position(|h| names.contains(&h.to_lowercase().as_str()))
    };
    let (Some(code), Some(name)) = (find(CODE_COLUMNS), find(NAME_COLUMNS)) else {
        errors.push(
            1,
            "",
            "the header must name a `code` (or `ma`) column and a `name` (or `ten`) column",
        );
        return None;
    };
    let parent = find(PARENT_COLUMNS);
    let level = find(LEVEL_COLUMNS);
    let known = [Some(code), Some(name), parent, level];
    let rows = cells
        .into_iter()
        .map(|(row, r)| {
            let get = |i: usize| r.get(i).cloned().unwrap_or_default();
            let mut attributes = serde_json::Map::new();
            for (i, h) in header.iter().enumerate() {
                if !known.contains(&Some(i)) && !h.is_empty() {
                    let v = get(i);
                    if !v.trim().is_empty() {
                        attributes
                            .insert(h.nfc().collect(), Value::String(v.trim().nfc().collect()));
                    }
                }
            }
            RawRow {
                row,
                code: get(code),
                name: get(name),
                parent: parent.map(get),
                level: level.map(get),
                attributes,
            }
        })
        .collect();
    Some(rows)
}

/// Characters that have no place in a code-list text: controls (they break
/// XML) and invisible formatting marks (bidirectional overrides, zero-width).
fn forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// An Excel cell as text; whole numbers lose their `.0`.
// LIMITATION: a code typed as a number in Excel has already lost its leading
// zeros ("01" became 1); it is imported as "1". Officials must type codes as
// text; the docs say so.
fn cell_text(c: &Data) -> String {
    match c {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Int(i) => i.to_string(),
        other => other.to_string(),
    }
}
