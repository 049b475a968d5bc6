//! Capture errors, outcomes and what the intake pipeline decides about one event.

use tracery_epcis::{EpcisError, Event};
use tracery_runtime::error::{DomainError, ErrorKind, Violation};

/// Errors of the capture service.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
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
    /// The event was archived and dropped from the store.
    #[error(
        "event `{event_id}` is archived in {file}, dropped from the store; `tracery archive import` restores its month"
    )]
    Archived {
        /// The eventID asked for.
        event_id: String,
        /// The archive file holding it.
        file: String,
    },
    /// An archive drop or import that would not keep the store's events whole.
    #[error("{0}")]
    ArchiveRefused(String),
    /// No quarantine entry with that id.
    #[error("no quarantined event `{0}`")]
    QuarantineNotFound(String),
    /// No named query of that name.
    #[error("no named query `{0}`")]
    QueryNotFound(String),
    /// No alert rule, or no alert, with that name or id.
    #[error("no {what} `{id}`")]
    AlertNotFound {
        /// `alert rule` or `alert`.
        what: &'static str,
        /// What was asked for.
        id: String,
    },
    /// A change to an alert rule that is not this caller's to make (a rule of the
    /// configuration file changed over the API).
    #[error("{0}")]
    Conflict(String),
    /// The quarantine entry was resubmitted or discarded already.
    #[error("quarantined event `{id}` is {status} already")]
    QuarantineClosed {
        /// The entry.
        id: String,
        /// `resubmitted` or `discarded`.
        status: &'static str,
    },
    /// A stored event no longer parses: a bug or a tampered row.
    #[error("stored event at sequence {sequence} is unreadable: {reason}")]
    CorruptEvent {
        /// Its sequence.
        sequence: i64,
        /// Why.
        reason: String,
    },
    /// The identity service is needed for the lifecycle rules and did not answer.
    #[error("identity service unavailable: {0}")]
    IdentityUnavailable(String),
    /// A storage failure.
    #[error("database: {0}")]
    Store(#[from] sea_orm::DbErr),
    /// The store's commit queue is full: the suite is past capacity. Nothing was stored.
    #[error(
        "capture is over capacity ({0} requests waiting to commit); nothing was stored, retry shortly"
    )]
    Overloaded(usize),
}

/// How long an overloaded caller should wait: about one group commit.
pub const RETRY_AFTER_OVERLOAD: std::time::Duration = std::time::Duration::from_millis(50);

impl CaptureError {
    /// An event conversion error, with the field path inside the event.
    pub fn event_violation(error: &EpcisError) -> Violation {
        let field = error.field().unwrap_or_default().to_owned();
        let description = match error {
            EpcisError::InvalidField { reason, .. } => reason.clone(),
            other => other.to_string(),
        };
        Violation::new(field, description).with_reason("MALFORMED_EVENT")
    }
}

impl DomainError for CaptureError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::InvalidArgument,
            Self::EventNotFound(_)
            | Self::QuarantineNotFound(_)
            | Self::QueryNotFound(_)
            | Self::AlertNotFound { .. }
            | Self::Archived { .. } => ErrorKind::NotFound,
            Self::Conflict(_) => ErrorKind::FailedPrecondition,
            Self::ArchiveRefused(_) => ErrorKind::FailedPrecondition,
            Self::QuarantineClosed { .. } => ErrorKind::FailedPrecondition,
            Self::IdentityUnavailable(_) => ErrorKind::Unavailable,
            Self::CorruptEvent { .. } => ErrorKind::Internal,
            Self::Store(err) => tracery_runtime::error::db_error_kind(err),
            Self::Overloaded(_) => ErrorKind::TooManyRequests,
        }
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        matches!(self, Self::Overloaded(_)).then_some(RETRY_AFTER_OVERLOAD)
    }

    fn violations(&self) -> Vec<Violation> {
        match self {
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

/// How an event arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// gRPC Capture / CaptureStream.
    Grpc,
    /// The EPCIS REST binding.
    Rest,
    /// MQTT from scanners.
    Mqtt,
    /// Tag reads of RFID readers.
    Rfid,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 4] = [Self::Grpc, Self::Rest, Self::Mqtt, Self::Rfid];

    /// The channel stored as `name` (gRPC for a name no channel has).
    pub fn named(name: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|channel| channel.as_str() == name)
            .unwrap_or(Self::Grpc)
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::Rest => "rest",
            Self::Mqtt => "mqtt",
            Self::Rfid => "rfid",
        }
    }
}

/// What a batch asks for when some of its events are refused: EPCIS
/// `GS1-Capture-Error-Behaviour` (REST header; gRPC metadata of the same name).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ErrorBehaviour {
    /// Store the events that pass, quarantine the others.
    #[default]
    Proceed,
    /// All or nothing: when one event is refused, every event of the batch is quarantined.
    Rollback,
}

impl ErrorBehaviour {
    /// The header and metadata name.
    pub const HEADER: &str = "gs1-capture-error-behaviour";

    /// From the header's value (`rollback` or `proceed`, any case).
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "rollback" => Some(Self::Rollback),
            "proceed" => Some(Self::Proceed),
            _ => None,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proceed => "proceed",
            Self::Rollback => "rollback",
        }
    }
}

/// An event the pipeline refused, kept with everything needed to correct and resubmit it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// The event as JSON-LD text, when it could be read as EPCIS.
    pub payload: Option<String>,
    /// The protobuf bytes as received, when it could not.
    pub payload_protobuf: Option<Vec<u8>>,
    /// Every reason.
    pub violations: Vec<Violation>,
    /// How it arrived.
    pub channel: Channel,
}

/// The pipeline's decision about one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Valid: store it, and return the warnings with the result.
    Accept {
        /// The event, with its eventID assigned.
        event: Box<Event>,
        /// Findings that do not stop the event.
        warnings: Vec<Violation>,
    },
    /// Invalid: quarantine it.
    Reject(Rejected),
}

impl Admission {
    /// What an accepted event of a rolled-back batch becomes: quarantined with the reason
    /// that another event of its batch was refused, keeping its warnings.
    pub fn rolled_back(self, channel: Channel) -> Self {
        match self {
            Self::Accept { event, warnings } => Self::Reject(Rejected {
                payload: Some(tracery_epcis::json::event_to_json(&event).to_string()),
                payload_protobuf: None,
                // Why it was not stored comes first; its own warnings follow.
                violations: std::iter::once(
                    Violation::new(
                        "",
                        "another event of the same batch was refused (GS1-Capture-Error-Behaviour: rollback)",
                    )
                    .with_reason("CAPTURE_JOB_ROLLED_BACK"),
                )
                .chain(warnings)
                .collect(),
                channel,
            }),
            rejected => rejected,
        }
    }
}
