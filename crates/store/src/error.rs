use thiserror::Error;

/// What can go wrong in the store, classified so callers can answer precisely.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (duplicate code, second active subscription, …).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A referenced row does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// The call log's own connection failed.
    #[error("call log storage failed: {0}")]
    Appender(String),
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation => {
                    return StoreError::Conflict(db.message().to_owned());
                }
                sqlx::error::ErrorKind::ForeignKeyViolation => {
                    return StoreError::NotFound(db.message().to_owned());
                }
                _ => {}
            }
        }
        StoreError::Database(err)
    }
}
