//! GS1 character sets and the mod-10 check digit.

use crate::error::{Gs1Error, Gs1ErrorKind, Result};

/// The character sets GS1 AIs draw from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// Digits only.
    Numeric,
    /// GS1 AI encodable character set 82 (serials, lots, most text AIs).
    Cset82,
    /// GS1 AI encodable character set 39 (CPID, AI 8010).
    Cset39,
    /// GS1 AI encodable character set 64, base64url with padding (digital signature, AI 8030).
    Cset64,
}

impl Charset {
    /// Whether `c` belongs to this set.
    pub fn contains(self, c: char) -> bool {
        match self {
            Self::Numeric => c.is_ascii_digit(),
            Self::Cset82 => c.is_ascii_alphanumeric() || "!\"%&'()*+,-./:;<=>?_".contains(c),
            Self::Cset39 => c.is_ascii_uppercase() || c.is_ascii_digit() || "#-/".contains(c),
            Self::Cset64 => c.is_ascii_alphanumeric() || "-_=".contains(c),
        }
    }

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Numeric => "digits",
            Self::Cset82 => "GS1 character set 82",
            Self::Cset39 => "GS1 character set 39",
            Self::Cset64 => "GS1 character set 64",
        }
    }

    /// Checks every character of `value`; the error position is the bad character's offset.
    pub fn check(self, value: &str) -> Result<()> {
        match value.char_indices().find(|&(_, c)| !self.contains(c)) {
            None => Ok(()),
            Some((position, c)) => Err(Gs1Error::new(
                Gs1ErrorKind::IllegalCharacter,
                format!("character {c:?} is not allowed here (only {})", self.name()),
            )
            .at(position)),
        }
    }
}

/// The GS1 mod-10 check digit of `digits` (everything but the check digit itself).
///
/// Returns `None` when `digits` holds a non-digit.
pub fn check_digit(digits: &str) -> Option<u8> {
    let mut sum = 0u32;
    // Weights alternate 3, 1, 3, ... starting from the digit next to the check digit.
    for (position, ch) in digits.chars().rev().enumerate() {
        let digit = ch.to_digit(10)?;
        sum += if position % 2 == 0 { digit * 3 } else { digit };
    }
    u8::try_from((10 - sum % 10) % 10).ok()
}

/// `digits` followed by their check digit.
pub fn with_check_digit(digits: &str) -> Option<String> {
    check_digit(digits).map(|check| format!("{digits}{check}"))
}

/// Verifies the last digit of `value` as the check digit of the others.
pub fn verify_check_digit(value: &str) -> Result<()> {
    Charset::Numeric.check(value)?;
    let Some((body, last)) = value.len().checked_sub(1).map(|n| value.split_at(n)) else {
        return Err(Gs1Error::new(Gs1ErrorKind::WrongLength, "empty value"));
    };
    let expected = check_digit(body).unwrap_or_default();
    if last != expected.to_string() {
        return Err(Gs1Error::new(
            Gs1ErrorKind::BadCheckDigit,
            format!("check digit is {last}, expected {expected} for {body}"),
        )
        .at(body.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_check_digits() {
        assert_eq!(check_digit("0950600013435"), Some(2));
        assert_eq!(check_digit("10614141234567890"), Some(8)); // SSCC 106141412345678908
        assert_eq!(check_digit("061414112345"), Some(2)); // GLN 0614141123452
        assert!(verify_check_digit("09506000134352").is_ok());
        let err = verify_check_digit("09506000134353").expect_err("bad check digit");
        assert_eq!(err.kind, Gs1ErrorKind::BadCheckDigit);
        assert_eq!(err.position, Some(13));
    }

    #[test]
    fn cset82_excludes_space_hash_and_non_ascii() {
        assert!(Charset::Cset82.check("AB-12/x_%").is_ok());
        for bad in ["A B", "A#B", "Aé", "A^B"] {
            let err = Charset::Cset82.check(bad).expect_err(bad);
            assert_eq!(
                (err.kind, err.position),
                (Gs1ErrorKind::IllegalCharacter, Some(1))
            );
        }
    }
}
