use lgsp_store::StoreError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RegistryError {
    /// A field of the request is not acceptable; the message says why.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    /// An uploaded specification was refused; every problem found.
    #[error("the specification was refused: {}", .0.join("; "))]
    InvalidSpec(Vec<String>),
    #[error("{0}")]
    NotFound(String),
    #[error("storage failed")]
    Store(#[source] StoreError),
}

impl RegistryError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> RegistryError {
        RegistryError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<StoreError> for RegistryError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(m) => RegistryError::Conflict(m),
            StoreError::NotFound(m) => RegistryError::NotFound(m),
            other => RegistryError::Store(other),
        }
    }
}
