//! Integration errors and sync-run states.

use tracery_runtime::error::{DomainError, ErrorKind, Violation};

/// Errors of the integration service.
#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    /// A request field is invalid.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The plant configuration names no such connector.
    #[error("no connector named `{0}` is configured for this plant")]
    UnknownConnector(String),
    /// No such sync run.
    #[error("no sync run `{0}`")]
    RunNotFound(String),
    /// No such order, BOM or item.
    #[error("{0}")]
    NotFound(String),
    /// The plant configuration of a connector is unusable.
    #[error("connectors.{connector}: {reason}")]
    Config {
        /// The connector's name.
        connector: String,
        /// What is wrong.
        reason: String,
    },
    /// The connector failed (after its retries).
    #[error("{connector}: {source}")]
    Connector {
        /// The connector's name.
        connector: String,
        /// What went wrong.
        source: tracery_connector::ConnectorError,
    },
    /// The request does not fit the current state (a posting that is not dead-lettered).
    #[error("{0}")]
    Precondition(String),
    /// Capture did not take the master data a page gave; the page is applied again later.
    #[error("{connector}: master data not stored by capture: {reason}")]
    MasterData {
        /// The connector whose page it was.
        connector: String,
        /// Capture's answer.
        reason: String,
    },
    /// The service is stopping; the run resumes from its cursor at the next start.
    #[error("the service is shutting down")]
    ShuttingDown,
    /// Stored data that cannot be read back.
    #[error("corrupt integration data: {0}")]
    Corrupt(String),
    /// A storage failure.
    #[error("database: {0}")]
    Store(#[from] sea_orm::DbErr),
}

impl DomainError for IntegrationError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::InvalidArgument,
            Self::UnknownConnector(_) | Self::RunNotFound(_) | Self::NotFound(_) => {
                ErrorKind::NotFound
            }
            Self::Config { .. } | Self::Precondition(_) => ErrorKind::FailedPrecondition,
            Self::Connector { .. } | Self::MasterData { .. } | Self::ShuttingDown => {
                ErrorKind::Unavailable
            }
            Self::Corrupt(_) => ErrorKind::Internal,
            Self::Store(err) => tracery_runtime::error::db_error_kind(err),
        }
    }

    fn violations(&self) -> Vec<Violation> {
        match self {
            Self::Invalid { field, reason } => vec![Violation::new(field.clone(), reason.clone())],
            _ => Vec::new(),
        }
    }
}

impl From<IntegrationError> for tonic::Status {
    fn from(error: IntegrationError) -> Self {
        tracery_runtime::error::to_status(&error)
    }
}

/// The state of a sync run, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// In progress.
    Running,
    /// Finished without failures.
    Succeeded,
    /// Finished; some records failed.
    Partial,
    /// Stopped by an error.
    Failed,
}

impl RunState {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Partial => "partial",
            Self::Failed => "failed",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Running, Self::Succeeded, Self::Partial, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}
