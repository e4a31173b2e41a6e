//! Persistence for the platform: one SQLite database in the data directory,
//! created and migrated at start. Every other component reaches storage only
//! through this crate.

mod appender;
mod calls;
mod codes;
mod error;
mod log;
mod manage;
mod model;
mod notices;
mod reader;
mod registry;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use appender::{CallAppender, CheckpointWrite, Group, KeptBodies, TileWrite};
pub use calls::{CallFilter, CallPage};
pub use codes::{CodeItemRow, CodeListRow, CodeMappingRow, CodeVersionRow, NewCodeVersion};
pub use error::StoreError;
pub use log::{BodiesRow, CheckpointRow, LogKeyRow};
pub use manage::{
    ApiChange, ApiKey, ClientCertificate, DataStandard, Decision, Event, Holiday, Network, NewSpec,
    Plan, SpecInfo, SubscriptionRequest, Ticket, TicketMessage, Validation,
};
pub use model::{Api, CallRecord, Subscription, System, Unit};
pub use notices::{CodeCallback, CodeNotice, DueNotice};
pub use reader::{LogReader, TileReader};
pub use sqlx::types::Json;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The platform's store. Cheap to clone: it is a handle on a connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: std::path::PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    ///
    /// The journal is in WAL mode with `synchronous = FULL`: a committed
    /// transaction has been synced to disk, so it survives a power cut.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let url = format!("sqlite://{}", path.display());
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // A connection to a local file does not go stale: no ping before
        // each use, which would double the cost of every short query.
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Store {
            pool,
            path: path.to_path_buf(),
        })
    }

    /// A transaction that takes the write lock at its start.
    ///
    /// Reading first and writing later inside a deferred transaction fails at
    /// once (`SQLITE_BUSY_SNAPSHOT`) when another connection, such as the
    /// call log's writer, commits in between; taking the lock first makes it
    /// wait its turn under the busy timeout instead.
    pub(crate) async fn write_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Quick liveness probe of the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The file behind the store, for the call log's own connection.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
