//! Rules for the identifiers and fields of the registry.

use unicode_normalization::UnicodeNormalization;

use crate::RegistryError;

/// Data-plane paths of the platform itself; no API may take them as its context.
const RESERVED_CONTEXTS: &[&str] = &[
    "token",
    "jwks",
    "log",
    "oauth2",
    "oidc",
    "login",
    "logout",
    "authorize",
    "userinfo",
    "introspect",
    "revoke",
    "healthz",
    "readyz",
    "metrics",
    "api",
    "portal",
    "static",
    "catalog",
    "subscription-requests",
    "tickets",
    "well-known",
];

/// Whether a request body is a JSON object (first byte after white space):
/// serde would otherwise take an array for a struct, its fields by position.
pub fn is_json_object(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// An electronic agency code: dot-separated groups of upper-case letters and
/// digits, at most 35 characters (e.g. `000.00.00.H41`).
pub fn agency_code(field: &'static str, code: &str) -> Result<(), RegistryError> {
    if code.is_empty() || code.len() > 35 {
        return Err(RegistryError::invalid(field, "must be 1 to 35 characters"));
    }
    for group in code.split('.') {
        if group.is_empty() {
            return Err(RegistryError::invalid(
                field,
                "groups are separated by single dots, with no dot at either end",
            ));
        }
        if !group
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(RegistryError::invalid(
                field,
                "only upper-case letters A-Z, digits and dots are allowed (e.g. 000.00.00.H41)",
            ));
        }
    }
    Ok(())
}

/// A human name: trimmed, NFC, 1 to 255 characters, no control characters.
pub fn name(field: &'static str, value: &str) -> Result<String, RegistryError> {
    let value: String = value.trim().nfc().collect();
    if value.is_empty() {
        return Err(RegistryError::invalid(field, "must not be empty"));
    }
    if value.chars().count() > 255 {
        return Err(RegistryError::invalid(
            field,
            "must be at most 255 characters",
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(RegistryError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    if let Some(c) = value.chars().find(|&c| invisible(c)) {
        return Err(RegistryError::invalid(
            field,
            format!(
                "must not contain invisible or direction characters (U+{:04X}): a name must read as it is",
                c as u32
            ),
        ));
    }
    Ok(value)
}

/// Characters that change how text shows without showing themselves:
/// direction marks, embeddings, overrides and isolates, zero-width
/// characters, the byte-order mark, line and paragraph separators.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{061C}')
}

/// A system's short code, unique within its unit: letters, digits, `-` and `_`.
pub fn system_code(field: &'static str, code: &str) -> Result<(), RegistryError> {
    slug(field, code, 64, |b| {
        b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
    })
}

/// An API context: one lower-case path segment, not one of the platform's own.
pub fn context(field: &'static str, value: &str) -> Result<(), RegistryError> {
    slug(field, value, 64, |b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
    })?;
    if RESERVED_CONTEXTS.contains(&value) {
        return Err(RegistryError::invalid(
            field,
            format!("`{value}` is reserved by the platform"),
        ));
    }
    Ok(())
}

/// An identifier of a plan or a data standard: lower-case letters, digits, `-`, `_`.
pub fn slug_id(field: &'static str, value: &str) -> Result<(), RegistryError> {
    slug(field, value, 64, |b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
    })
}

/// Free text: trimmed, NFC, at most `max` characters; line breaks and tabs
/// allowed, other control characters not.
pub fn text(field: &'static str, value: &str, max: usize) -> Result<String, RegistryError> {
    let value: String = value.trim().nfc().collect();
    if value.chars().count() > max {
        return Err(RegistryError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(RegistryError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    // Text may break lines, but not turn itself around.
    if let Some(c) = value
        .chars()
        .find(|&c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
    {
        return Err(RegistryError::invalid(
            field,
            format!("must not contain direction overrides (U+{:04X})", c as u32),
        ));
    }
    Ok(value)
}

/// An API version: one path segment such as `1.0` or `v2`.
pub fn version(field: &'static str, value: &str) -> Result<(), RegistryError> {
    slug(field, value, 32, |b| {
        b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_'
    })?;
    if value.starts_with('.') {
        return Err(RegistryError::invalid(field, "must not start with a dot"));
    }
    Ok(())
}

fn slug(
    field: &'static str,
    value: &str,
    max: usize,
    allowed: impl Fn(u8) -> bool,
) -> Result<(), RegistryError> {
    if value.is_empty() || value.len() > max {
        return Err(RegistryError::invalid(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    if !value.bytes().all(allowed) {
        return Err(RegistryError::invalid(
            field,
            "contains a character that is not allowed",
        ));
    }
    Ok(())
}

/// An upstream base URL: absolute `http` or `https` with a host, no query or fragment.
pub fn upstream_url(field: &'static str, value: &str) -> Result<http::Uri, RegistryError> {
    let uri: http::Uri = value
        .parse()
        .map_err(|_| RegistryError::invalid(field, "is not a valid URL"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => {
            return Err(RegistryError::invalid(
                field,
                "must start with http:// or https://",
            ));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(RegistryError::invalid(field, "must name a host"));
    }
    // `http` drops a port it cannot read (`:99999`) rather than refuse it.
    if uri.authority().is_some_and(|a| {
        a.as_str()
            .rsplit(']')
            .next()
            .is_some_and(|tail| tail.contains(':'))
            && a.port_u16().is_none()
    }) {
        return Err(RegistryError::invalid(field, "the port must be 1 to 65535"));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(RegistryError::invalid(
            field,
            "must not carry a user name or password",
        ));
    }
    if uri.query().is_some() || value.contains('#') {
        return Err(RegistryError::invalid(
            field,
            "must not carry a query or a fragment",
        ));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_as_they_are() {
        assert_eq!(name("name", "  Hộ tịch ").unwrap(), "Hộ tịch");
        // NFD input is stored NFC.
        assert_eq!(
            name("name", "Ho\u{0302}\u{0323} ti\u{0323}ch").unwrap(),
            "Hộ tịch"
        );
        for bad in [
            "Hộ\u{202E}hcịt",
            "Hộ\u{200B}tịch",
            "\u{FEFF}Hộ tịch",
            "Hộ\u{2028}tịch",
            "a\u{2066}b",
        ] {
            let err = name("name", bad).unwrap_err().to_string();
            assert!(err.contains("invisible"), "{bad:?}: {err}");
        }
        assert!(text("description", "dòng 1\ndòng 2", 100).is_ok());
        assert!(text("description", "abc\u{202E}cba", 100).is_err());
    }

    #[test]
    fn agency_codes() {
        for ok in ["000.00.00.H41", "H41", "000.00.13.H41", "G01.01"] {
            assert!(agency_code("code", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "000.00.00.h41",
            ".000",
            "000.",
            "000..00",
            "000 00",
            "000-00",
            "0000000000.0000000000.0000000000.000",
            "Ủ.01",
        ] {
            assert!(agency_code("code", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_nfc_and_trimmed() {
        let nfd = "Sở Tư pha\u{0301}p ";
        assert_eq!(name("name", nfd).unwrap(), "Sở Tư pháp");
        assert!(name("name", "  ").is_err());
        assert!(name("name", "a\u{0007}b").is_err());
    }

    #[test]
    fn contexts_and_urls() {
        assert!(context("context", "hotich").is_ok());
        assert!(context("context", "token").is_err());
        assert!(context("context", "Ho Tich").is_err());
        assert!(context("context", "..").is_err());
        assert!(version("version", "1.0").is_ok());
        assert!(version("version", "..").is_err());
        assert!(upstream_url("u", "http://127.0.0.1:9000/base").is_ok());
        assert!(upstream_url("u", "ftp://x").is_err());
        assert!(upstream_url("u", "http://127.0.0.1:99999/x").is_err());
        assert!(upstream_url("u", "http://[::1]:8080/x").is_ok());
        assert!(upstream_url("u", "http://[::1]/x").is_ok());
        assert!(upstream_url("u", "http://x/?a=1").is_err());
        assert!(upstream_url("u", "not a url").is_err());
        assert!(upstream_url("u", "http://svc:pw@10.0.0.1/api").is_err());
    }
}
