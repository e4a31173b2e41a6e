//! The registry: units, their systems, the APIs they provide and the
//! subscriptions between them. Changes go to the store and are then
//! published as an immutable [`Snapshot`] that the gateway reads without locks.

mod error;
mod manage;
mod service;
mod snapshot;
pub mod spec;
pub mod upstreams;
pub mod validate;
pub mod workdays;

pub use error::RegistryError;
pub use manage::{
    Actor, ApiUpdate, CatalogueEntry, NewNetwork, NewPlan, NewRequest, NewStandard, NewTicket,
    NewValidation, fold,
};
pub use service::{NewApi, NewSystem, NewUnit, Registry, SystemUpdate, now_rfc3339};
pub use snapshot::{
    ApiStatus, OperationPath, PlanLimits, Protocol, Route, Snapshot, SystemState, ValidationRule,
    ambiguous_path,
};

/// The X-Road style class of every system this platform registers.
pub const MEMBER_CLASS: &str = "GOV";
