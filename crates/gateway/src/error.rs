//! The errors a consumer can see, each with its HTTP status and its text in
//! Vietnamese and English. REST APIs answer with a JSON body, SOAP APIs with
//! a SOAP fault.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use bytes::Bytes;
use lgsp_codes::xml_escape;
use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Vi,
    En,
}

impl Lang {
    /// Vietnamese unless the consumer prefers English.
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        match headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
        {
            Some(v) if v.trim_start().to_ascii_lowercase().starts_with("en") => Lang::En,
            _ => Lang::Vi,
        }
    }
}

/// Every error code of the data plane, listed once with its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidToken,
    NotSubscribed,
    UnknownApi,
    PayloadTooLarge,
    BadGateway,
    GatewayTimeout,
    CallLogUnavailable,
    NotFound,
    Forbidden,
    EvidencePending,
    InvalidApiKey,
    ApiNotPublished,
    ApiRetired,
    NetworkNotAllowed,
    ClientCertificateRequired,
    RateLimited,
    QuotaExceeded,
    InvalidJson,
    SchemaViolation,
    UpstreamUnavailable,
    Conflict,
    Internal,
}

impl ErrorCode {
    pub fn code(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::NotSubscribed => "not_subscribed",
            ErrorCode::UnknownApi => "unknown_api",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::BadGateway => "bad_gateway",
            ErrorCode::GatewayTimeout => "gateway_timeout",
            ErrorCode::CallLogUnavailable => "call_log_unavailable",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::EvidencePending => "evidence_pending",
            ErrorCode::InvalidApiKey => "invalid_api_key",
            ErrorCode::ApiNotPublished => "api_not_published",
            ErrorCode::ApiRetired => "api_retired",
            ErrorCode::NetworkNotAllowed => "network_not_allowed",
            ErrorCode::ClientCertificateRequired => "client_certificate_required",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::SchemaViolation => "schema_violation",
            ErrorCode::UpstreamUnavailable => "upstream_unavailable",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Internal => "internal_error",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::NotSubscribed => StatusCode::FORBIDDEN,
            ErrorCode::UnknownApi => StatusCode::NOT_FOUND,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BadGateway => StatusCode::BAD_GATEWAY,
            ErrorCode::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::CallLogUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::EvidencePending => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::InvalidApiKey => StatusCode::UNAUTHORIZED,
            ErrorCode::ApiNotPublished => StatusCode::NOT_FOUND,
            ErrorCode::ApiRetired => StatusCode::GONE,
            ErrorCode::NetworkNotAllowed | ErrorCode::ClientCertificateRequired => {
                StatusCode::FORBIDDEN
            }
            ErrorCode::RateLimited | ErrorCode::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::InvalidJson | ErrorCode::SchemaViolation => StatusCode::BAD_REQUEST,
            ErrorCode::UpstreamUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error on its way to the consumer: code, status and a message in its language.
#[derive(Debug)]
pub struct Refusal {
    pub code: &'static str,
    pub status: StatusCode,
    pub message: String,
    /// Itemised problems (each schema error), sent as `details`.
    pub details: Option<serde_json::Value>,
    /// Headers the answer carries (`Retry-After`, `RateLimit`, …).
    pub headers: Vec<(&'static str, String)>,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: String) -> Refusal {
        Refusal {
            code: code.code(),
            status: code.status(),
            message,
            details: None,
            headers: Vec::new(),
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Refusal {
        self.details = Some(details);
        self
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Refusal {
        self.headers.push((name, value));
        self
    }

    pub fn into_response(self, request_id: &str, soap: Option<SoapVersion>) -> Response<Body> {
        let (head, body) = self.into_parts(request_id, soap);
        head.map(|()| Body::from(body))
    }

    /// The response head and its body, apart, so the body can be hashed first.
    pub fn into_parts(self, request_id: &str, soap: Option<SoapVersion>) -> (Response<()>, Bytes) {
        let (content_type, body) = match soap {
            None => {
                let mut body = json!({ "error": self.code, "message": self.message, "request_id": request_id });
                if let Some(details) = &self.details {
                    body["details"] = details.clone();
                }
                ("application/json; charset=utf-8", body.to_string())
            }
            Some(version) => soap_fault(version, &self, request_id),
        };
        let mut response = Response::new(());
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        *response.status_mut() = self.status;
        for (name, value) in &self.headers {
            if let Ok(v) = HeaderValue::from_str(value) {
                response.headers_mut().append(*name, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED && self.code != "invalid_api_key" {
            let challenge = format!("Bearer error=\"{}\"", self.code);
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        (response, Bytes::from(body))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoapVersion {
    V11,
    V12,
}

impl SoapVersion {
    /// SOAP if the request says so: `application/soap+xml`, or `text/xml` with a `SOAPAction`.
    pub fn guess(headers: &HeaderMap) -> Option<SoapVersion> {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())?
            .to_ascii_lowercase();
        if ct.starts_with("application/soap+xml") {
            Some(SoapVersion::V12)
        } else if ct.starts_with("text/xml") && headers.contains_key("soapaction") {
            Some(SoapVersion::V11)
        } else {
            None
        }
    }

    /// SOAP 1.2 requests come as `application/soap+xml`; anything else gets a 1.1 fault.
    pub fn of(headers: &HeaderMap) -> SoapVersion {
        match headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        {
            Some(ct) if ct.to_ascii_lowercase().starts_with("application/soap+xml") => {
                SoapVersion::V12
            }
            _ => SoapVersion::V11,
        }
    }
}

// LIMITATION: faults keep the refusal's HTTP status (401, 403, 404, …) rather
// than the 500 that WS-I Basic Profile asks for; toolkits that read a fault
// only on 500 report these as transport errors, with the status still exact.
// The SOAP 1.2 reason is tagged `vi` even when the English text was asked for.
fn soap_fault(version: SoapVersion, refusal: &Refusal, request_id: &str) -> (&'static str, String) {
    let sender = refusal.status.is_client_error();
    let message = xml_escape(&refusal.message);
    let detail = format!(
        "<lgsp:error xmlns:lgsp=\"urn:lgsp:error\"><lgsp:code>{}</lgsp:code>\
         <lgsp:requestId>{}</lgsp:requestId></lgsp:error>",
        refusal.code,
        xml_escape(request_id)
    );
    let (body, content_type) = match version {
        SoapVersion::V11 => (
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                 <soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>\
                 <soap:Fault><faultcode>soap:{}</faultcode><faultstring>{message}</faultstring>\
                 <detail>{detail}</detail></soap:Fault></soap:Body></soap:Envelope>",
                if sender { "Client" } else { "Server" }
            ),
            "text/xml; charset=utf-8",
        ),
        SoapVersion::V12 => (
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                 <env:Envelope xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\"><env:Body>\
                 <env:Fault><env:Code><env:Value>env:{}</env:Value></env:Code>\
                 <env:Reason><env:Text xml:lang=\"vi\">{message}</env:Text></env:Reason>\
                 <env:Detail>{detail}</env:Detail></env:Fault></env:Body></env:Envelope>",
                if sender { "Sender" } else { "Receiver" }
            ),
            "application/soap+xml; charset=utf-8",
        ),
    };
    (content_type, body)
}

/// The message of each refusal, in the consumer's language.
pub fn message(lang: Lang, vi: &str, en: &str) -> String {
    match lang {
        Lang::Vi => vi.to_owned(),
        Lang::En => en.to_owned(),
    }
}
