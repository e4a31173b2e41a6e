//! The leaf of the evidence tree: a call record in a canonical encoding.
//!
//! Version 1 is one line of JSON, UTF-8, no spaces, keys in this order:
//!
//! ```text
//! {"v":1,"index":0,"request_id":"…","time_us":1764790000000000,
//!  "consumer":"VN:…"|null,"api":"…"|null,"method":"GET","path":"/…",
//!  "status":200,"latency_us":812,"request_bytes":0,
//!  "request_sha256":"e3b0…","response_bytes":17,"response_sha256":"…",
//!  "client":"10.0.0.7","reason":null}
//! ```
//!
//! Strings are escaped as JSON requires and nothing more (`"`, `\`, control
//! characters; everything else as UTF-8). `index` is the leaf's position in
//! the tree (the record's `seq` minus one). The leaf carries the SHA-256 of
//! both bodies, so the tree binds the exact content without holding it.

use serde::{Deserialize, Serialize};

use crate::CallRecord;

/// Entry bundles prefix each leaf with a 16-bit length.
pub const MAX_LEAF_BYTES: usize = u16::MAX as usize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leaf {
    pub v: u32,
    pub index: u64,
    pub request_id: String,
    pub time_us: i64,
    pub consumer: Option<String>,
    pub api: Option<String>,
    pub method: String,
    pub path: String,
    pub status: i64,
    pub latency_us: i64,
    pub request_bytes: i64,
    pub request_sha256: String,
    pub response_bytes: i64,
    pub response_sha256: String,
    pub client: String,
    pub reason: Option<String>,
}

impl Leaf {
    pub fn of(record: &CallRecord) -> Leaf {
        Leaf {
            v: 1,
            index: (record.seq - 1) as u64,
            request_id: record.request_id.clone(),
            time_us: record.time_us,
            consumer: record.consumer.clone(),
            api: record.api.clone(),
            method: record.method.clone(),
            path: record.path.clone(),
            status: record.status,
            latency_us: record.latency_us,
            request_bytes: record.request_bytes,
            request_sha256: record.request_sha256.clone(),
            response_bytes: record.response_bytes,
            response_sha256: record.response_sha256.clone(),
            client: record.client_addr.clone(),
            reason: record.reason.clone(),
        }
    }

    pub fn record(&self) -> CallRecord {
        CallRecord {
            seq: self.index as i64 + 1,
            request_id: self.request_id.clone(),
            time_us: self.time_us,
            consumer: self.consumer.clone(),
            api: self.api.clone(),
            method: self.method.clone(),
            path: self.path.clone(),
            status: self.status,
            latency_us: self.latency_us,
            request_bytes: self.request_bytes,
            response_bytes: self.response_bytes,
            request_sha256: self.request_sha256.clone(),
            response_sha256: self.response_sha256.clone(),
            client_addr: self.client.clone(),
            reason: self.reason.clone(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a leaf always serialises")
    }

    /// Parses leaf bytes, accepting only the canonical encoding.
    pub fn decode(bytes: &[u8]) -> Result<Leaf, String> {
        let leaf: Leaf = serde_json::from_slice(bytes)
            .map_err(|e| format!("the leaf is not a call record: {e}"))?;
        if leaf.v != 1 {
            return Err(format!("leaf version {} is not known", leaf.v));
        }
        if leaf.encode() != bytes {
            return Err("the leaf is not in canonical form".into());
        }
        Ok(leaf)
    }
}

/// The canonical bytes of a committed record.
pub fn encode(record: &CallRecord) -> Vec<u8> {
    Leaf::of(record).encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_fixed() {
        let record = CallRecord {
            seq: 3,
            request_id: "r-1".into(),
            time_us: 1_764_790_000_000_000,
            consumer: Some("VN:GOV:000.00.13.H41:motcua".into()),
            api: None,
            method: "GET".into(),
            path: "/danhmuc/1.0/dantoc?q=Kinh \"x\"\n".into(),
            status: 200,
            latency_us: 812,
            request_bytes: 0,
            response_bytes: 17,
            request_sha256: "e3".into(),
            response_sha256: "ab".into(),
            client_addr: "10.0.0.7".into(),
            reason: None,
        };
        let bytes = encode(&record);
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"v":1,"index":2,"request_id":"r-1","time_us":1764790000000000,"consumer":"VN:GOV:000.00.13.H41:motcua","api":null,"method":"GET","path":"/danhmuc/1.0/dantoc?q=Kinh \"x\"\n","status":200,"latency_us":812,"request_bytes":0,"request_sha256":"e3","response_bytes":17,"response_sha256":"ab","client":"10.0.0.7","reason":null}"#
        );
        let back = Leaf::decode(&bytes).unwrap();
        assert_eq!(back.record(), record);
        let spaced = String::from_utf8(bytes)
            .unwrap()
            .replace(",\"api\"", ", \"api\"");
        assert!(Leaf::decode(spaced.as_bytes()).is_err());
    }
}
