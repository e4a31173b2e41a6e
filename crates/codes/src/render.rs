//! The three shapes a code-list answer takes: JSON (default), XML with the
//! row names existing provincial clients parse (`ma`, `ten`, `capId`,
//! `chaId`), and CSV.

use bytes::Bytes;
use serde_json::Value;

use crate::index::Item;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
    Csv,
}

impl Format {
    /// `format=` wins; otherwise the media type of `Accept` we serve with
    /// the highest quality (the first among equals); JSON when none is served.
    pub fn choose(param: Option<&str>, accept: Option<&str>) -> Result<Format, String> {
        if let Some(p) = param {
            return match p {
                "json" => Ok(Format::Json),
                "xml" => Ok(Format::Xml),
                "csv" => Ok(Format::Csv),
                _ => Err("query parameter `format`: must be json, xml or csv".to_owned()),
            };
        }
        let mut best: Option<(f32, Format)> = None;
        for entry in accept.unwrap_or("").split(',') {
            let mut parts = entry.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let format = match media.as_str() {
                "application/json" | "*/*" | "application/*" => Format::Json,
                "application/xml" | "text/xml" => Format::Xml,
                "text/csv" => Format::Csv,
                _ => continue,
            };
            if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, format));
            }
        }
        Ok(best.map_or(Format::Json, |(_, f)| f))
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json; charset=utf-8",
            Format::Xml => "application/xml; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// Header fields of a listing, written as attributes in XML and ignored in CSV.
pub struct Listing<'a> {
    pub list: &'a str,
    pub version: &'a str,
    pub at: &'a str,
    pub total: usize,
}

pub fn xml_items(head: &Listing<'_>, items: &[&Item]) -> Bytes {
    let mut out = String::with_capacity(128 + items.len() * 120);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<DanhMuc ma=\"{}\" phienBan=\"{}\" ngay=\"{}\" tong=\"{}\">\n",
        escape(head.list),
        escape(head.version),
        escape(head.at),
        head.total
    ));
    for item in items {
        out.push_str("  <Item><ma>");
        out.push_str(&escape(&item.code));
        out.push_str("</ma><ten>");
        out.push_str(&escape(&item.name));
        out.push_str("</ten><capId>");
        out.push_str(&item.level.to_string());
        out.push_str("</capId><chaId>");
        out.push_str(&escape(item.parent_code.as_deref().unwrap_or("")));
        out.push_str("</chaId>");
        if let Some(Value::String(kind)) = item.attributes.get("type") {
            out.push_str("<loai>");
            out.push_str(&escape(kind));
            out.push_str("</loai>");
        }
        out.push_str("</Item>\n");
    }
    out.push_str("</DanhMuc>\n");
    Bytes::from(out)
}

pub fn csv_items(items: &[&Item]) -> Bytes {
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(items.len() * 64));
    let _ = writer.write_record(["code", "name", "parent_code", "level", "attributes"]);
    for item in items {
        let attributes = if item.attributes.is_empty() {
            String::new()
        } else {
            Value::Object(item.attributes.clone()).to_string()
        };
        let _ = writer.write_record([
            item.code.as_str(),
            item.name.as_str(),
            item.parent_code.as_deref().unwrap_or(""),
            &item.level.to_string(),
            &attributes,
        ]);
    }
    Bytes::from(writer.into_inner().unwrap_or_default())
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Format;

    #[test]
    fn negotiation_follows_quality() {
        let pick = |a| Format::choose(None, Some(a)).unwrap();
        assert_eq!(pick("application/xml"), Format::Xml);
        assert_eq!(
            pick("text/html,application/xml;q=0.9,*/*;q=0.8"),
            Format::Xml
        );
        assert_eq!(
            pick("application/xml;q=0.5, application/json"),
            Format::Json
        );
        assert_eq!(pick("text/csv;q=0, text/xml"), Format::Xml);
        assert_eq!(pick("image/png"), Format::Json);
        assert_eq!(
            Format::choose(Some("csv"), Some("application/xml")).unwrap(),
            Format::Csv
        );
        assert!(Format::choose(Some("pdf"), None).is_err());
    }
}
