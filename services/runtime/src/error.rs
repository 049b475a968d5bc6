//! The one mapping from domain errors to `tonic::Status` (and HTTP status codes).
//!
//! Each service crate has its own error enum and implements [`DomainError`] for it; the
//! conversion to a gRPC status happens here only, so codes stay consistent across services.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The kinds of failure a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is wrong; the violations say where.
    InvalidArgument,
    /// The thing asked for does not exist.
    NotFound,
    /// The thing to create exists already.
    AlreadyExists,
    /// The system is not in a state that allows this.
    FailedPrecondition,
    /// A quota or pool is used up.
    ResourceExhausted,
    /// A dependency (database, peer service) is unreachable; retrying may help.
    Unavailable,
    /// A bug or an unexpected failure; details are logged, not returned.
    Internal,
}

impl ErrorKind {
    /// The gRPC code.
    pub fn code(self) -> Code {
        match self {
            Self::InvalidArgument => Code::InvalidArgument,
            Self::NotFound => Code::NotFound,
            Self::AlreadyExists => Code::AlreadyExists,
            Self::FailedPrecondition => Code::FailedPrecondition,
            Self::ResourceExhausted => Code::ResourceExhausted,
            Self::Unavailable => Code::Unavailable,
            Self::Internal => Code::Internal,
        }
    }

    /// The kind of a peer's answer, for a gateway that passes it on over HTTP.
    pub fn of_code(code: Code) -> Self {
        match code {
            Code::InvalidArgument | Code::OutOfRange => Self::InvalidArgument,
            Code::NotFound => Self::NotFound,
            Code::AlreadyExists => Self::AlreadyExists,
            Code::FailedPrecondition | Code::Aborted => Self::FailedPrecondition,
            Code::ResourceExhausted => Self::ResourceExhausted,
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => Self::Unavailable,
            _ => Self::Internal,
        }
    }

    /// The HTTP status code, for the REST bindings.
    pub fn http_status(self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Self::InvalidArgument => S::BAD_REQUEST,
            Self::NotFound => S::NOT_FOUND,
            Self::AlreadyExists => S::CONFLICT,
            Self::FailedPrecondition => S::CONFLICT,
            Self::ResourceExhausted => S::TOO_MANY_REQUESTS,
            Self::Unavailable => S::SERVICE_UNAVAILABLE,
            Self::Internal => S::INTERNAL_SERVER_ERROR,
        }
    }
}

/// One invalid field: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Field path, e.g. `product/gtin`.
    pub field: String,
    /// What is wrong with it.
    pub description: String,
    /// Machine-readable reason (`BAD_CHECK_DIGIT`, ...); empty when there is none.
    pub reason: String,
}

impl Violation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
            reason: String::new(),
        }
    }

    /// The same violation with a machine-readable reason.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }
}

/// Implemented by each service crate's error enum.
pub trait DomainError: std::error::Error {
    /// What kind of failure this is.
    fn kind(&self) -> ErrorKind;

    /// Field-level detail for [`ErrorKind::InvalidArgument`].
    fn violations(&self) -> Vec<Violation> {
        Vec::new()
    }

    /// For [`ErrorKind::ResourceExhausted`]: when trying again may succeed (gRPC
    /// `RetryInfo`, HTTP `Retry-After`).
    fn retry_after(&self) -> Option<std::time::Duration> {
        None
    }
}

/// Converts a domain error to a gRPC status, with `google.rpc.BadRequest` field violations
/// for invalid arguments. Internal errors are logged here and returned without detail.
pub fn to_status<E: DomainError + ?Sized>(error: &E) -> Status {
    let kind = error.kind();
    match kind {
        ErrorKind::Internal => {
            tracing::error!(error = %error, "internal error");
            Status::internal("internal error; see the server log")
        }
        ErrorKind::InvalidArgument => {
            let violations = error.violations();
            let details = ErrorDetails::with_bad_request(
                violations
                    .iter()
                    .map(|v| tonic_types::FieldViolation {
                        field: v.field.clone(),
                        description: v.description.clone(),
                        reason: v.reason.clone(),
                        localized_message: None,
                    })
                    .collect::<Vec<_>>(),
            );
            Status::with_error_details(kind.code(), error.to_string(), details)
        }
        _ => match error.retry_after() {
            Some(wait) => Status::with_error_details(
                kind.code(),
                error.to_string(),
                ErrorDetails::with_retry_info(Some(wait)),
            ),
            None => Status::new(kind.code(), error.to_string()),
        },
    }
}

/// Classifies a database error: connection trouble is retryable, the rest is a bug.
pub fn db_error_kind(error: &sea_orm::DbErr) -> ErrorKind {
    use sea_orm::DbErr;
    match error {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => ErrorKind::Unavailable,
        // SQLite's write lock was held past the busy timeout: contention, not a fault;
        // the client may try again (nothing was written).
        DbErr::Query(_) | DbErr::Exec(_) if error.to_string().contains("database is locked") => {
            ErrorKind::Unavailable
        }
        _ => ErrorKind::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("gtin: bad check digit")]
    struct BadGtin;

    impl DomainError for BadGtin {
        fn kind(&self) -> ErrorKind {
            ErrorKind::InvalidArgument
        }
        fn violations(&self) -> Vec<Violation> {
            vec![Violation::new("gtin", "bad check digit")]
        }
    }

    #[test]
    fn invalid_argument_carries_field_violations() {
        let status = to_status(&BadGtin);
        assert_eq!(status.code(), Code::InvalidArgument);
        let bad_request = status.get_details_bad_request().expect("BadRequest detail");
        assert_eq!(bad_request.field_violations[0].field, "gtin");
        assert_eq!(
            bad_request.field_violations[0].description,
            "bad check digit"
        );
    }
}
