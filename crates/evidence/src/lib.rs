//! The call log: every data-plane call becomes a record that is durable on
//! disk before the consumer receives the end of its response. Records are
//! committed in groups by a single writer, so durability costs one disk sync
//! per group, not per call.

mod digest;
mod writer;

pub use digest::{BodyDigest, EMPTY_SHA256, hex};
pub use lgsp_store::CallRecord;
pub use writer::{CallLog, CallLogError};
