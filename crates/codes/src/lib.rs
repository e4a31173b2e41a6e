//! Shared code lists (danh mục dùng chung): the lists shipped with the
//! platform, their in-memory index, and the `danhmuc/1.0` service that the
//! gateway serves like any other API.
//!
//! A list has versions, each valid over `[valid_from, valid_to)`; every read
//! names the date it is read at (today by default), because a code means
//! nothing without it: new ward codes of 2025 reuse old codes.

pub mod callbacks;
mod fold;
pub mod import;
mod index;
pub mod notices;
mod publish;
mod render;
mod seed;
mod service;

pub use fold::fold;
pub use index::{Change, CodeLists, Diff, Item, ListIndex, VersionIndex};
pub use publish::{ImportFailure, create_list, import};
pub use render::escape as xml_escape;
pub use seed::seed_builtin_lists;
pub use service::{Reply, handle};

/// Today's date in Vietnam (UTC+7), the default date of every read.
pub fn today() -> time::Date {
    let offset = time::UtcOffset::from_hms(7, 0, 0).expect("a valid offset");
    time::OffsetDateTime::now_utc().to_offset(offset).date()
}
