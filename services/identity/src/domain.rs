//! Identity domain types and the service's error type; no I/O.

use tracery_gs1::{Gs1Error, key::normalise_gtin};
use tracery_runtime::error::{DomainError, ErrorKind, Violation};

/// Errors of the identity service.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A field of the request is invalid.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field path.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A field holds a malformed GS1 identifier.
    #[error("{field}: {error}")]
    Gs1 {
        /// The field path.
        field: String,
        /// What the GS1 parser found.
        error: Gs1Error,
    },
    /// No such product.
    #[error("no product with {0}")]
    ProductNotFound(String),
    /// The item code is already used by another GTIN.
    #[error("item code `{item_code}` already belongs to GTIN {gtin}")]
    ItemCodeTaken {
        /// The item code.
        item_code: String,
        /// The GTIN holding it.
        gtin: String,
    },
    /// No such serial pool.
    #[error("no serial pool named `{0}`")]
    PoolNotFound(String),
    /// A pool with this name exists with different settings.
    #[error("serial pool `{0}` already exists with different settings")]
    PoolExists(String),
    /// The pool cannot serve the request.
    #[error("serial pool `{pool}` has {remaining} serials left; {requested} were requested")]
    PoolExhausted {
        /// The pool.
        pool: String,
        /// Serials still available.
        remaining: u128,
        /// Serials asked for.
        requested: u64,
    },
    /// The request id was used before for a different allocation.
    #[error("request_id `{request_id}` was already used for {count} serials from pool `{pool}`")]
    RequestIdReused {
        /// The request id.
        request_id: String,
        /// The pool of the earlier request.
        pool: String,
        /// The count of the earlier request.
        count: u64,
    },
    /// A lifecycle transition that the identifier's current state does not allow.
    #[error("{epc}: cannot go from {from} to {to}")]
    InvalidTransition {
        /// The identifier.
        epc: String,
        /// Its current state.
        from: &'static str,
        /// The state asked for.
        to: &'static str,
    },
    /// A label could not be drawn (data too long for the symbol).
    #[error("label: {0}")]
    Label(String),
    /// Stored data that cannot be right (a pool without its key, say).
    #[error("corrupt identity data: {0}")]
    Corrupt(String),
    /// A storage failure.
    #[error("database: {0}")]
    Store(#[from] sea_orm::DbErr),
}

impl IdentityError {
    /// An [`IdentityError::Invalid`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// An [`IdentityError::Gs1`] for `field`.
    pub fn gs1(field: impl Into<String>) -> impl FnOnce(Gs1Error) -> Self {
        let field = field.into();
        move |error| Self::Gs1 { field, error }
    }
}

impl DomainError for IdentityError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } | Self::Gs1 { .. } | Self::RequestIdReused { .. } => {
                ErrorKind::InvalidArgument
            }
            Self::ProductNotFound(_) | Self::PoolNotFound(_) => ErrorKind::NotFound,
            Self::ItemCodeTaken { .. } | Self::PoolExists(_) => ErrorKind::AlreadyExists,
            Self::PoolExhausted { .. } => ErrorKind::ResourceExhausted,
            Self::InvalidTransition { .. } | Self::Label(_) => ErrorKind::FailedPrecondition,
            Self::Corrupt(_) => ErrorKind::Internal,
            Self::Store(err) => tracery_runtime::error::db_error_kind(err),
        }
    }

    fn violations(&self) -> Vec<Violation> {
        match self {
            Self::Invalid { field, reason } => vec![Violation::new(field.clone(), reason.clone())],
            Self::Gs1 { field, error } => {
                vec![
                    Violation::new(field.clone(), error.to_string()).with_reason(error.kind.code()),
                ]
            }
            Self::RequestIdReused { .. } => {
                vec![
                    Violation::new("request_id", self.to_string()).with_reason("REQUEST_ID_REUSED"),
                ]
            }
            _ => Vec::new(),
        }
    }
}

impl From<IdentityError> for tonic::Status {
    fn from(error: IdentityError) -> Self {
        tracery_runtime::error::to_status(&error)
    }
}

/// A product in the product master.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    /// 14-digit GTIN.
    pub gtin: String,
    /// ERP item code.
    pub item_code: String,
    /// Description.
    pub description: String,
    /// GS1 company prefix length (6..=12).
    pub company_prefix_length: u8,
    /// Unit of measure code.
    pub unit_of_measure: String,
}

impl Product {
    /// Checks and normalises a product as registered by a client.
    pub fn new(
        gtin: &str,
        item_code: &str,
        description: &str,
        company_prefix_length: i32,
        unit_of_measure: &str,
    ) -> Result<Self, IdentityError> {
        let gtin = normalise_gtin(gtin).map_err(IdentityError::gs1("product/gtin"))?;
        let item_code = item_code.trim();
        if item_code.is_empty() {
            return Err(IdentityError::invalid("product/item_code", "required"));
        }
        let company_prefix_length = u8::try_from(company_prefix_length)
            .ok()
            .filter(|len| (6..=12).contains(len))
            .ok_or_else(|| {
                IdentityError::invalid("product/company_prefix_length", "must be between 6 and 12")
            })?;
        let unit_of_measure = match unit_of_measure.trim() {
            "" => "EA".to_owned(),
            uom => uom.to_owned(),
        };
        Ok(Self {
            gtin,
            item_code: item_code.to_owned(),
            description: description.trim().to_owned(),
            company_prefix_length,
            unit_of_measure,
        })
    }
}
