//! Capture errors and outcomes.

use tracery_epcis::EpcisError;
use tracery_runtime::error::{DomainError, ErrorKind, Violation};

/// Errors of the capture service.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Events in a request do not fit the EPCIS model; one violation per bad field.
    #[error("{} invalid field(s): {}", .0.len(), .0.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; "))]
    InvalidEvents(Vec<Violation>),
    /// A request field is invalid.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// No event with that ID.
    #[error("no event with eventID `{0}`")]
    EventNotFound(String),
    /// A stored event no longer parses: a bug or a tampered row.
    #[error("stored event at sequence {sequence} is unreadable: {reason}")]
    CorruptEvent {
        /// Its sequence.
        sequence: i64,
        /// Why.
        reason: String,
    },
    /// A storage failure.
    #[error("database: {0}")]
    Store(#[from] sea_orm::DbErr),
}

impl CaptureError {
    /// An event conversion error at `events/{index}`.
    pub fn event_violation(index: usize, error: &EpcisError) -> Violation {
        let field = match error.field() {
            Some(field) => format!("events/{index}/{field}"),
            None => format!("events/{index}"),
        };
        let description = match error {
            EpcisError::InvalidField { reason, .. } => reason.clone(),
            other => other.to_string(),
        };
        Violation::new(field, description)
    }
}

impl DomainError for CaptureError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidEvents(_) | Self::Invalid { .. } => ErrorKind::InvalidArgument,
            Self::EventNotFound(_) => ErrorKind::NotFound,
            Self::CorruptEvent { .. } => ErrorKind::Internal,
            Self::Store(err) => tracery_runtime::error::db_error_kind(err),
        }
    }

    fn violations(&self) -> Vec<Violation> {
        match self {
            Self::InvalidEvents(violations) => violations.clone(),
            Self::Invalid { field, reason } => vec![Violation::new(field.clone(), reason.clone())],
            _ => Vec::new(),
        }
    }
}

impl From<CaptureError> for tonic::Status {
    fn from(error: CaptureError) -> Self {
        tracery_runtime::error::to_status(&error)
    }
}

/// What happened to one captured event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored by this request.
    Accepted,
    /// Stored before; nothing new stored.
    Duplicate,
}
