//! Checks an uploaded API specification: OpenAPI 3.0 or 3.1 (JSON or YAML)
//! or WSDL 1.1 / 2.0. A specification is accepted only when it parses, has
//! the parts its format requires, and every internal reference resolves.

use serde_json::Value;

/// Largest specification accepted.
pub const MAX_SPEC_BYTES: usize = 5 * 1024 * 1024;
/// At most this many problems are reported.
const MAX_PROBLEMS: usize = 50;

const WSDL11: &str = "http://schemas.xmlsoap.org/wsdl/";
const WSDL20: &str = "http://www.w3.org/ns/wsdl";
const HTTP_METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[derive(Debug, Clone)]
pub struct CheckedSpec {
    /// `openapi` or `wsdl`.
    pub kind: &'static str,
    /// Media type it is served with.
    pub media_type: &'static str,
    /// One line describing it (version, title, counts).
    pub summary: String,
}

/// Deepest nesting of `[` and `{` taken in a JSON or YAML description.
const MAX_FLOW_DEPTH: usize = 100;

/// How deep `[` and `{` nest, counted over the whole text (brackets inside
/// quoted strings count too: a bound, not a parse).
fn flow_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Checks `content`; on failure, every problem found (at most 50).
pub fn check(content: &[u8]) -> Result<CheckedSpec, Vec<String>> {
    if content.len() > MAX_SPEC_BYTES {
        return Err(vec![format!(
            "the specification is {} bytes; at most {MAX_SPEC_BYTES} are accepted",
            content.len()
        )]);
    }
    let Ok(text) = std::str::from_utf8(content) else {
        return Err(vec!["the specification is not UTF-8 text".to_owned()]);
    };
    let text = text.trim_start_matches('\u{feff}');
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(vec!["the specification is empty".to_owned()]);
    }
    if trimmed.starts_with('<') {
        return check_wsdl(text);
    }
    // The YAML parser's time grows with the square of flow nesting; no real
    // description nests this deep.
    if flow_depth(text) > MAX_FLOW_DEPTH {
        return Err(vec![format!(
            "the specification nests brackets deeper than {MAX_FLOW_DEPTH} levels"
        )]);
    }
    let (doc, media_type) = if trimmed.starts_with('{') {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| vec![format!("invalid JSON: {e}")])?;
        (doc, "application/json")
    } else {
        let yaml: serde_norway::Value =
            serde_norway::from_str(text).map_err(|e| vec![format!("invalid YAML: {e}")])?;
        (yaml_to_json(yaml)?, "application/yaml")
    };
    check_openapi(&doc).map(|summary| CheckedSpec {
        kind: "openapi",
        media_type,
        summary,
    })
}

/// YAML to JSON; mapping keys that are numbers or booleans (`200:`) become strings.
fn yaml_to_json(value: serde_norway::Value) -> Result<Value, Vec<String>> {
    use serde_norway::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            serde_json::to_value(&n).map_err(|e| vec![format!("invalid number: {e}")])?
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(yaml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => {
                        return Err(vec![format!(
                            "mapping keys must be scalars, found {other:?}"
                        )]);
                    }
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => yaml_to_json(tagged.value)?,
    })
}

fn check_openapi(doc: &Value) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    let Some(root) = doc.as_object() else {
        return Err(vec!["the document must be an object".to_owned()]);
    };
    if root.contains_key("swagger") {
        return Err(vec![
            "Swagger 2.0 is not accepted; convert it to OpenAPI 3.0 or 3.1".to_owned(),
        ]);
    }
    let version = match root.get("openapi").and_then(Value::as_str) {
        Some(v) if is_openapi_3(v) => v.to_owned(),
        Some(v) => {
            problems.push(format!(
                "/openapi: version {v} is not supported; 3.0.x or 3.1.x is"
            ));
            String::new()
        }
        None => {
            problems.push("/openapi: required (e.g. \"3.0.3\"), as a string".to_owned());
            String::new()
        }
    };
    let three_one = version.starts_with("3.1");
    let (mut title, mut api_version) = (String::new(), String::new());
    match root.get("info").and_then(Value::as_object) {
        None => problems.push("/info: required object".to_owned()),
        Some(info) => {
            match info.get("title").and_then(Value::as_str) {
                Some(t) => title = t.to_owned(),
                None => problems.push("/info/title: required string".to_owned()),
            }
            match info.get("version").and_then(Value::as_str) {
                Some(v) => api_version = v.to_owned(),
                None => problems.push("/info/version: required string".to_owned()),
            }
        }
    }
    let mut operations = 0;
    let mut paths_count = 0;
    match root.get("paths") {
        None if three_one && (root.contains_key("components") || root.contains_key("webhooks")) => {
        }
        None => problems.push("/paths: required object".to_owned()),
        Some(Value::Object(paths)) => {
            paths_count = paths.len();
            for (path, item) in paths {
                let at = format!("/paths/{}", pointer_escape(path));
                if !path.starts_with('/') {
                    problems.push(format!("{at}: a path must start with '/'"));
                }
                let Some(item) = item.as_object() else {
                    problems.push(format!("{at}: must be an object"));
                    continue;
                };
                for method in HTTP_METHODS {
                    let Some(op) = item.get(*method) else {
                        continue;
                    };
                    operations += 1;
                    match op.as_object() {
                        None => problems.push(format!("{at}/{method}: must be an object")),
                        Some(op) if !three_one && !op.contains_key("responses") => {
                            problems.push(format!("{at}/{method}/responses: required"))
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        Some(_) => problems.push("/paths: must be an object".to_owned()),
    }
    check_refs(doc, doc, &mut String::new(), &mut problems);
    if !problems.is_empty() {
        problems.truncate(MAX_PROBLEMS);
        return Err(problems);
    }
    Ok(format!(
        "OpenAPI {version}: {title} {api_version}, {paths_count} paths, {operations} operations"
    ))
}

fn is_openapi_3(v: &str) -> bool {
    let mut parts = v.split('.');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("3"), Some("0" | "1"), Some(patch), None)
            if !patch.is_empty() && patch.bytes().all(|b| b.is_ascii_digit())
    )
}

/// Every `$ref` must point inside the document (`#/…`) and resolve.
fn check_refs(root: &Value, node: &Value, at: &mut String, problems: &mut Vec<String>) {
    if problems.len() >= MAX_PROBLEMS {
        return;
    }
    match node {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                match target.strip_prefix('#') {
                    Some(pointer) => {
                        let decoded = percent_encoding::percent_decode_str(pointer).decode_utf8_lossy();
                        if root.pointer(&decoded).is_none() {
                            problems.push(format!(
                                "{}/$ref: '{target}' points at nothing in the document",
                                display_at(at)
                            ));
                        }
                    }
                    None => problems.push(format!(
                        "{}/$ref: '{target}' points outside the document; the specification must be self-contained",
                        display_at(at)
                    )),
                }
            }
            for (k, v) in map {
                let len = at.len();
                at.push('/');
                at.push_str(&pointer_escape(k));
                check_refs(root, v, at, problems);
                at.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let len = at.len();
                at.push('/');
                at.push_str(&i.to_string());
                check_refs(root, v, at, problems);
                at.truncate(len);
            }
        }
        _ => {}
    }
}

fn display_at(at: &str) -> &str {
    if at.is_empty() { "" } else { at }
}

fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn check_wsdl(text: &str) -> Result<CheckedSpec, Vec<String>> {
    let doc =
        roxmltree::Document::parse(text).map_err(|e| vec![format!("not well-formed XML: {e}")])?;
    let root = doc.root_element();
    let ns = root.tag_name().namespace().unwrap_or("");
    let name = root.tag_name().name();
    let mut problems = Vec::new();
    let summary = match (ns, name) {
        (WSDL11, "definitions") => {
            let named = |kind: &str| -> Vec<String> {
                root.children()
                    .filter(|n| n.has_tag_name((WSDL11, kind)))
                    .filter_map(|n| n.attribute("name").map(str::to_owned))
                    .collect()
            };
            let messages = named("message");
            let port_types = named("portType");
            let bindings = named("binding");
            let services = named("service");
            if port_types.is_empty() {
                problems.push("a WSDL 1.1 document needs at least one portType".to_owned());
            }
            if bindings.is_empty() {
                problems.push("a WSDL 1.1 document needs at least one binding".to_owned());
            }
            let mut operations = 0;
            for node in root.descendants() {
                let (attr, known, what) = if node.has_tag_name((WSDL11, "input"))
                    || node.has_tag_name((WSDL11, "output"))
                    || node.has_tag_name((WSDL11, "fault"))
                {
                    // Only the portType's operations name messages.
                    let in_port_type = node
                        .ancestors()
                        .any(|a| a.has_tag_name((WSDL11, "portType")));
                    if !in_port_type {
                        continue;
                    }
                    ("message", &messages, "message")
                } else if node.has_tag_name((WSDL11, "binding")) {
                    ("type", &port_types, "portType")
                } else if node.has_tag_name((WSDL11, "port")) {
                    ("binding", &bindings, "binding")
                } else {
                    if node.has_tag_name((WSDL11, "operation"))
                        && node
                            .parent()
                            .is_some_and(|p| p.has_tag_name((WSDL11, "portType")))
                    {
                        operations += 1;
                    }
                    continue;
                };
                match node.attribute(attr) {
                    Some(qname) => {
                        let local = qname.rsplit(':').next().unwrap_or(qname);
                        if !known.iter().any(|k| k == local) {
                            let pos = doc.text_pos_at(node.range().start);
                            problems.push(format!(
                                "line {}: <{}> {attr}=\"{qname}\" names no {what} of this document",
                                pos.row,
                                node.tag_name().name()
                            ));
                        }
                    }
                    None => {
                        let pos = doc.text_pos_at(node.range().start);
                        problems.push(format!(
                            "line {}: <{}> has no {attr} attribute",
                            pos.row,
                            node.tag_name().name()
                        ));
                    }
                }
            }
            format!(
                "WSDL 1.1: service {}, {operations} operations",
                services.first().map_or("(none)", String::as_str)
            )
        }
        (WSDL20, "description") => {
            let interfaces = root
                .children()
                .filter(|n| n.has_tag_name((WSDL20, "interface")))
                .count();
            if interfaces == 0 {
                problems.push("a WSDL 2.0 document needs at least one interface".to_owned());
            }
            let operations = root
                .descendants()
                .filter(|n| {
                    n.has_tag_name((WSDL20, "operation"))
                        && n.parent()
                            .is_some_and(|p| p.has_tag_name((WSDL20, "interface")))
                })
                .count();
            format!("WSDL 2.0: {interfaces} interfaces, {operations} operations")
        }
        _ => {
            return Err(vec![format!(
                "an XML specification must be WSDL: a <definitions> element in {WSDL11} or a <description> in {WSDL20}, not <{name}>{}",
                if ns.is_empty() {
                    String::new()
                } else {
                    format!(" in {ns}")
                }
            )]);
        }
    };
    if !problems.is_empty() {
        problems.truncate(MAX_PROBLEMS);
        return Err(problems);
    }
    Ok(CheckedSpec {
        kind: "wsdl",
        media_type: "application/wsdl+xml",
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("x: {}{}", "[".repeat(100_000), "]".repeat(100_000));
        let problems = check(deep.as_bytes()).unwrap_err();
        assert!(problems[0].contains("deeper than 100"), "{problems:?}");
        assert_eq!(flow_depth("{\"a\": [1, {\"b\": []}]}"), 4);
    }

    const GOOD_YAML: &str = "openapi: 3.0.3
info: {title: Hộ tịch, version: '1.0'}
paths:
  /khaisinh/{id}:
    get:
      parameters: [{$ref: '#/components/parameters/Id'}]
      responses:
        200:
          description: ok
          content:
            application/json:
              schema: {$ref: '#/components/schemas/KhaiSinh'}
components:
  parameters:
    Id: {name: id, in: path, required: true, schema: {type: string}}
  schemas:
    KhaiSinh: {type: object}
";

    #[test]
    fn openapi_yaml_with_numeric_response_codes() {
        let spec = check(GOOD_YAML.as_bytes()).unwrap();
        assert_eq!(spec.kind, "openapi");
        assert_eq!(spec.media_type, "application/yaml");
        assert!(
            spec.summary.contains("1 paths, 1 operations"),
            "{}",
            spec.summary
        );
    }

    #[test]
    fn dangling_ref_is_named() {
        let bad = GOOD_YAML.replace(
            "#/components/schemas/KhaiSinh",
            "#/components/schemas/Missing",
        );
        let problems = check(bad.as_bytes()).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("#/components/schemas/Missing"));
        assert!(problems[0].starts_with("/paths/~1khaisinh~1{id}/get/responses/200"));
    }

    #[test]
    fn bad_documents() {
        assert!(check(b"openapi: [3.0").unwrap_err()[0].starts_with("invalid YAML"));
        assert!(check(b"{\"openapi\": \"3.0.0\"").unwrap_err()[0].starts_with("invalid JSON"));
        assert!(check(b"swagger: '2.0'").unwrap_err()[0].contains("Swagger 2.0"));
        let p = check(b"openapi: 4.0.0\ninfo: {title: x}").unwrap_err();
        assert!(p.iter().any(|m| m.contains("4.0.0")));
        assert!(p.iter().any(|m| m.starts_with("/info/version")));
        assert!(p.iter().any(|m| m.starts_with("/paths")));
        assert!(check(b"<definitions").unwrap_err()[0].starts_with("not well-formed XML"));
        assert!(check(b"<html/>").unwrap_err()[0].contains("must be WSDL"));
        assert!(check(b"").is_err());
        assert!(check(&[0xff, 0xfe]).is_err());
        let external = "{\"openapi\":\"3.1.0\",\"info\":{\"title\":\"x\",\"version\":\"1\"},\"paths\":{\"/a\":{\"$ref\":\"other.yaml#/x\"}}}";
        assert!(check(external.as_bytes()).unwrap_err()[0].contains("outside the document"));
    }

    #[test]
    fn entity_expansion_is_refused() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]><definitions xmlns="http://schemas.xmlsoap.org/wsdl/">&a;</definitions>"#;
        assert!(check(bomb.as_bytes()).is_err());
    }

    #[test]
    fn wsdl_references_resolve() {
        let wsdl = r#"<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:tns="urn:x" targetNamespace="urn:x">
  <message name="Req"/><message name="Res"/>
  <portType name="HoTich"><operation name="Tra"><input message="tns:Req"/><output message="tns:Res"/></operation></portType>
  <binding name="HoTichSoap" type="tns:HoTich"/>
  <service name="HoTichService"><port name="p" binding="tns:HoTichSoap"/></service>
</definitions>"#;
        let spec = check(wsdl.as_bytes()).unwrap();
        assert_eq!(
            spec.summary,
            "WSDL 1.1: service HoTichService, 1 operations"
        );
        let broken = wsdl.replace("tns:Res\"", "tns:Nope\"");
        let problems = check(broken.as_bytes()).unwrap_err();
        assert!(problems[0].contains("tns:Nope"), "{problems:?}");
    }
}
