//! GS1 rules and the identity domain types.

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
}

impl DomainError for IdentityError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::InvalidArgument,
            Self::ProductNotFound(_) => ErrorKind::NotFound,
            Self::ItemCodeTaken { .. } => ErrorKind::AlreadyExists,
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

impl From<IdentityError> for tonic::Status {
    fn from(error: IdentityError) -> Self {
        tracery_runtime::error::to_status(&error)
    }
}

/// The GS1 mod-10 check digit of `digits` (all digits but the check digit).
pub fn gs1_check_digit(digits: &str) -> Option<u32> {
    let mut sum = 0;
    // Weights alternate 3, 1, ... starting from the rightmost digit.
    for (position, ch) in digits.chars().rev().enumerate() {
        let digit = ch.to_digit(10)?;
        sum += if position % 2 == 0 { digit * 3 } else { digit };
    }
    Some((10 - sum % 10) % 10)
}

/// Validates a GTIN-8/12/13/14 and returns it as 14 digits.
pub fn normalise_gtin(field: &str, text: &str) -> Result<String, IdentityError> {
    if !text.chars().all(|c| c.is_ascii_digit()) {
        return Err(IdentityError::invalid(
            field,
            format!("`{text}` must be digits only"),
        ));
    }
    if ![8, 12, 13, 14].contains(&text.len()) {
        return Err(IdentityError::invalid(
            field,
            format!(
                "`{text}` has {} digits; a GTIN has 8, 12, 13 or 14",
                text.len()
            ),
        ));
    }
    let padded = format!("{text:0>14}");
    let (body, check) = padded.split_at(13);
    let expected = gs1_check_digit(body).unwrap_or(0);
    if check.parse::<u32>().ok() != Some(expected) {
        return Err(IdentityError::invalid(
            field,
            format!("`{text}` has check digit {check}; expected {expected}"),
        ));
    }
    Ok(padded)
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
        let gtin = normalise_gtin("product/gtin", gtin)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtin_check_digits() {
        assert_eq!(
            normalise_gtin("g", "09506000134352").expect("valid"),
            "09506000134352"
        );
        assert_eq!(
            normalise_gtin("g", "4006381333931").expect("valid"),
            "04006381333931"
        );
        assert_eq!(
            normalise_gtin("g", "96385074").expect("valid"),
            "00000096385074"
        );
        let err = normalise_gtin("g", "09506000134353").expect_err("bad check digit");
        assert!(err.to_string().contains("expected 2"), "{err}");
        assert!(normalise_gtin("g", "0950600013435A").is_err());
        assert!(normalise_gtin("g", "123").is_err());
    }
}
