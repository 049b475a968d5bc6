//! The one error-code table: every failure a caller sees has an [`ErrorKind`], and each
//! kind is mapped once to a gRPC code, an HTTP status, an EPCIS exception type and a CLI
//! exit code ([`ErrorKind::row`]). gRPC, the REST bindings, the dashboard and the CLI all
//! read it, so the same failure says the same thing on every channel.
//!
//! Each service crate has its own error enum and implements [`DomainError`] for it; the
//! conversion to a gRPC status happens here only.

use http::StatusCode;
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
    /// The service is busy; the caller should retry after the time it is given.
    TooManyRequests,
    /// The caller did not say who it is, or its credentials are not valid.
    Unauthenticated,
    /// The caller is known but its role does not allow this.
    Forbidden,
    /// A dependency did not answer in time; retrying may help.
    Timeout,
    /// A dependency (database, peer service) is unreachable; retrying may help.
    Unavailable,
    /// A bug or an unexpected failure; details are logged, not returned.
    Internal,
}

/// How one [`ErrorKind`] is said on each channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCodes {
    /// The gRPC status code.
    pub grpc: Code,
    /// The HTTP status code (REST, dashboard).
    pub http: StatusCode,
    /// The `epcisException:` type of an EPCIS REST problem response.
    pub epcis_exception: &'static str,
    /// The `tracery` CLI's exit code.
    pub exit: u8,
}

impl ErrorKind {
    /// Every kind, for tables and tests.
    pub const ALL: [ErrorKind; 11] = [
        Self::InvalidArgument,
        Self::NotFound,
        Self::AlreadyExists,
        Self::FailedPrecondition,
        Self::ResourceExhausted,
        Self::TooManyRequests,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::Timeout,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The table: this kind on every channel.
    pub const fn row(self) -> ErrorCodes {
        const fn codes(
            grpc: Code,
            http: StatusCode,
            epcis_exception: &'static str,
            exit: u8,
        ) -> ErrorCodes {
            ErrorCodes {
                grpc,
                http,
                epcis_exception,
                exit,
            }
        }
        use StatusCode as H;
        match self {
            Self::InvalidArgument => codes(
                Code::InvalidArgument,
                H::BAD_REQUEST,
                "ValidationException",
                4,
            ),
            Self::NotFound => codes(Code::NotFound, H::NOT_FOUND, "NoSuchNameException", 3),
            Self::AlreadyExists => codes(
                Code::AlreadyExists,
                H::CONFLICT,
                "ResourceAlreadyExistsException",
                4,
            ),
            Self::FailedPrecondition => codes(
                Code::FailedPrecondition,
                H::CONFLICT,
                "ImplementationException",
                4,
            ),
            Self::ResourceExhausted => codes(
                Code::ResourceExhausted,
                H::TOO_MANY_REQUESTS,
                "ImplementationException",
                1,
            ),
            Self::TooManyRequests => codes(
                Code::ResourceExhausted,
                H::TOO_MANY_REQUESTS,
                "ImplementationException",
                5,
            ),
            Self::Unauthenticated => codes(
                Code::Unauthenticated,
                H::UNAUTHORIZED,
                "SecurityException",
                6,
            ),
            Self::Forbidden => codes(Code::PermissionDenied, H::FORBIDDEN, "SecurityException", 6),
            Self::Timeout => codes(
                Code::DeadlineExceeded,
                H::GATEWAY_TIMEOUT,
                "ServiceUnavailableException",
                5,
            ),
            Self::Unavailable => codes(
                Code::Unavailable,
                H::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
                5,
            ),
            Self::Internal => codes(
                Code::Internal,
                H::INTERNAL_SERVER_ERROR,
                "ImplementationException",
                1,
            ),
        }
    }

    /// The gRPC code.
    pub fn code(self) -> Code {
        self.row().grpc
    }

    /// The HTTP status code, for the REST bindings and the dashboard.
    pub fn http_status(self) -> StatusCode {
        self.row().http
    }

    /// The `epcisException:` type of a REST problem response.
    pub fn epcis_exception(self) -> &'static str {
        self.row().epcis_exception
    }

    /// The CLI's exit code.
    pub fn exit_code(self) -> u8 {
        self.row().exit
    }

    /// The kind of a peer's answer, for a gateway that passes it on (dashboard, CLI).
    /// Codes the table does not use are read as the nearest kind; a busy answer
    /// (`RESOURCE_EXHAUSTED` with `RetryInfo`) is told from a used-up pool by its detail.
    pub fn of_status(status: &Status) -> Self {
        match status.code() {
            Code::ResourceExhausted if status.get_details_retry_info().is_some() => {
                Self::TooManyRequests
            }
            Code::OutOfRange => Self::InvalidArgument,
            Code::Aborted => Self::FailedPrecondition,
            Code::Cancelled => Self::Unavailable,
            code => Self::ALL
                .into_iter()
                .find(|kind| kind.code() == code)
                .unwrap_or(Self::Internal),
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
    fn every_grpc_code_of_the_table_reads_back_as_its_kind() {
        for kind in ErrorKind::ALL {
            let mut status = Status::new(kind.code(), "x");
            if kind == ErrorKind::TooManyRequests {
                status = Status::with_error_details(
                    kind.code(),
                    "x",
                    ErrorDetails::with_retry_info(Some(std::time::Duration::from_secs(1))),
                );
            }
            assert_eq!(ErrorKind::of_status(&status), kind);
        }
    }

    #[test]
    fn a_refused_role_is_forbidden_everywhere() {
        let kind = ErrorKind::of_status(&Status::permission_denied("operator"));
        assert_eq!(kind.http_status(), StatusCode::FORBIDDEN);
        assert_eq!(kind.epcis_exception(), "SecurityException");
        assert_eq!(kind.exit_code(), 6);
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
