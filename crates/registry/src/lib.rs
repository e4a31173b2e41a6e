//! The registry: units, their systems, the APIs they provide and the
//! subscriptions between them. Changes go to the store and are then
//! published as an immutable [`Snapshot`] that the gateway reads without locks.

mod error;
mod service;
mod snapshot;
pub mod validate;

pub use error::RegistryError;
pub use service::{NewApi, NewSystem, NewUnit, Registry, SystemUpdate, now_rfc3339};
pub use snapshot::{Protocol, Route, Snapshot, SystemState};

/// The X-Road style class of every system this platform registers.
pub const MEMBER_CLASS: &str = "GOV";
