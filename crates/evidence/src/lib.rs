//! The call log: every data-plane call becomes a record that is durable on
//! disk before the consumer receives the end of its response. Records are
//! committed in groups by a single writer, so durability costs one disk sync
//! per group, not per call.

pub mod archive;
pub mod audit;
pub mod bundle;
mod digest;
pub mod leaf;
mod log;
pub mod merkle;
pub mod note;
pub mod tiles;
mod writer;

pub use digest::{BodyDigest, EMPTY_SHA256, hex};
pub use lgsp_store::{CallRecord, KeptBodies};
pub use log::{EvidenceError, EvidenceLog, KEY_FILE, SignedHead};
pub use writer::{CallLog, CallLogError};
