//! Errors of the EPCIS model.

/// A document or event that does not fit the EPCIS 2.0 model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EpcisError {
    /// A field is missing, malformed or not allowed where it stands.
    #[error("{field}: {reason}")]
    InvalidField {
        /// JSON-pointer-like path of the field, e.g. `eventList/0/eventTime`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The input is not JSON of the expected shape.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// The input is not well-formed XML.
    #[error("malformed XML: {0}")]
    MalformedXml(String),
    /// The input is deeper or wider than the configured bounds allow.
    #[error("{0}")]
    OverLimit(String),
}

impl EpcisError {
    /// An [`EpcisError::InvalidField`] for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error with `prefix/` put before its field path.
    pub fn under(self, prefix: &str) -> Self {
        match self {
            Self::InvalidField { field, reason } => Self::InvalidField {
                field: format!("{prefix}/{field}"),
                reason,
            },
            other => other,
        }
    }

    /// The offending field, when the error names one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidField { field, .. } => Some(field),
            Self::MalformedJson(_) | Self::MalformedXml(_) | Self::OverLimit(_) => None,
        }
    }
}
