//! Rows of the registry and the call log, as the store hands them out.

use serde::Serialize;
use sqlx::types::Json;

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Unit {
    pub code: String,
    pub name: String,
    pub parent_code: Option<String>,
    pub created_at: String,
}

/// An information system of a unit. The secret hash never leaves the store
/// through the API: it is skipped when serialised.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct System {
    pub id: String,
    pub unit_code: String,
    pub code: String,
    pub name: String,
    pub client_id: String,
    #[serde(skip)]
    pub secret_hash: Vec<u8>,
    pub secret_generation: i64,
    pub enabled: bool,
    pub builtin: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Api {
    pub id: String,
    pub provider_system: String,
    pub name: String,
    pub context: String,
    pub version: String,
    pub upstream_url: String,
    pub protocol: String,
    pub timeout_ms: i64,
    pub shared_by_default: bool,
    /// Whether the gateway keeps this API's request and response bodies
    /// (for the retention period) beside the call log.
    pub keep_bodies: bool,
    pub created_at: String,
    /// `draft`, `published`, `deprecated` or `retired`.
    pub status: String,
    pub description: String,
    pub tags: Json<Vec<String>>,
    pub contact: String,
    pub deprecated_at: Option<String>,
    /// Day (YYYY-MM-DD, Vietnam time) from which a deprecated API is retired.
    pub retire_on: Option<String>,
    /// Further upstream base URLs, balanced with `upstream_url`.
    pub extra_upstreams: Json<Vec<String>>,
    pub health_path: Option<String>,
    pub default_plan: Option<String>,
    pub updated_at: Option<String>,
    pub owner_unit: Option<String>,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Subscription {
    pub id: String,
    pub consumer_system: String,
    pub api_id: String,
    pub api: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    pub plan_id: Option<String>,
}

/// One data-plane request that named an API, allowed or refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct CallRecord {
    /// Position in the log, assigned at commit; 0 before that.
    pub seq: i64,
    pub request_id: String,
    /// Microseconds since the Unix epoch (UTC).
    pub time_us: i64,
    pub consumer: Option<String>,
    pub api: Option<String>,
    pub method: String,
    pub path: String,
    pub status: i64,
    pub latency_us: i64,
    pub request_bytes: i64,
    pub response_bytes: i64,
    pub request_sha256: String,
    pub response_sha256: String,
    pub client_addr: String,
    pub reason: Option<String>,
}
