//! Genealogy errors.

use tracery_runtime::error::{DomainError, ErrorKind, Violation};

/// Errors of the genealogy service.
#[derive(Debug, thiserror::Error)]
pub enum GenealogyError {
    /// A request field is invalid.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A storage failure.
    #[error("database: {0}")]
    Store(#[from] sea_orm::DbErr),
}

impl DomainError for GenealogyError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::InvalidArgument,
            Self::Store(err) => tracery_runtime::error::db_error_kind(err),
        }
    }

    fn violations(&self) -> Vec<Violation> {
        match self {
            Self::Invalid { field, reason } => vec![Violation::new(field.clone(), reason.clone())],
            Self::Store(_) => Vec::new(),
        }
    }
}

impl From<GenealogyError> for tonic::Status {
    fn from(error: GenealogyError) -> Self {
        tracery_runtime::error::to_status(&error)
    }
}
