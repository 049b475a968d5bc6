//! GS1 keys with their qualifiers: the identity of one lot, item, container, location or asset.

use std::fmt;

use crate::{
    charset::{Charset, with_check_digit},
    element_string::{Element, ElementString},
    error::{Gs1Error, Gs1ErrorKind, Result},
};

/// The GS1 key types Tracery tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// Global Trade Item Number (AI 01), 14 digits.
    Gtin,
    /// Serial Shipping Container Code (AI 00), 18 digits.
    Sscc,
    /// Global Location Number (AI 414), 13 digits, extension in AI 254.
    Gln,
    /// Global Returnable Asset Identifier (AI 8003): 13 digits plus optional serial.
    Grai,
    /// Global Individual Asset Identifier (AI 8004).
    Giai,
    /// Global Service Relation Number, recipient (AI 8018), 18 digits.
    Gsrn,
    /// Global Document Type Identifier (AI 253): 13 digits plus optional serial.
    Gdti,
}

impl KeyKind {
    /// The AI that carries this key.
    pub fn ai(self) -> &'static str {
        match self {
            Self::Gtin => "01",
            Self::Sscc => "00",
            Self::Gln => "414",
            Self::Grai => "8003",
            Self::Giai => "8004",
            Self::Gsrn => "8018",
            Self::Gdti => "253",
        }
    }

    /// All kinds, in the order keys are looked for in an element string.
    pub const ALL: [Self; 7] = [
        Self::Sscc,
        Self::Gtin,
        Self::Gln,
        Self::Grai,
        Self::Giai,
        Self::Gsrn,
        Self::Gdti,
    ];
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Gtin => "GTIN",
            Self::Sscc => "SSCC",
            Self::Gln => "GLN",
            Self::Grai => "GRAI",
            Self::Giai => "GIAI",
            Self::Gsrn => "GSRN",
            Self::Gdti => "GDTI",
        })
    }
}

/// A GS1 key and its qualifiers, normalised.
///
/// `serial` is AI 21 for a GTIN, the serial component for GRAI and GDTI, and the GLN
/// extension (AI 254) for a GLN. `lot` is AI 10 and only exists for a GTIN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identifier {
    /// The key type.
    pub kind: KeyKind,
    /// The key: digits (with check digit) or, for GIAI, set-82 characters.
    pub key: String,
    /// Batch/lot (AI 10).
    pub lot: Option<String>,
    /// Serial, asset/document serial or GLN extension.
    pub serial: Option<String>,
}

impl Identifier {
    /// A checked identifier; a GTIN-8/12/13 is normalised to 14 digits.
    pub fn new(kind: KeyKind, key: &str, lot: Option<&str>, serial: Option<&str>) -> Result<Self> {
        let key = match kind {
            KeyKind::Gtin => normalise_gtin(key)?,
            _ => key.to_owned(),
        };
        let identifier = Self {
            kind,
            key,
            lot: lot.map(str::to_owned),
            serial: serial.map(str::to_owned),
        };
        if identifier.lot.is_some() && kind != KeyKind::Gtin {
            return Err(Gs1Error::new(
                Gs1ErrorKind::InvalidCombination,
                format!("a {kind} has no lot"),
            )
            .in_ai("10"));
        }
        identifier.to_element_string()?;
        Ok(identifier)
    }

    /// A GTIN with optional lot and serial.
    pub fn gtin(gtin: &str, lot: Option<&str>, serial: Option<&str>) -> Result<Self> {
        Self::new(KeyKind::Gtin, gtin, lot, serial)
    }

    /// The key and qualifiers found in an element string (the first key in
    /// [`KeyKind::ALL`] order).
    pub fn from_element_string(string: &ElementString) -> Result<Self> {
        let kind = KeyKind::ALL
            .into_iter()
            .find(|kind| string.contains(kind.ai()))
            .ok_or_else(|| {
                Gs1Error::new(
                    Gs1ErrorKind::MissingAssociation,
                    "no GS1 key (00, 01, 414, 8003, 8004, 8018 or 253) in the element string",
                )
            })?;
        let value = string.get(kind.ai()).unwrap_or_default();
        let (key, serial) = match kind {
            KeyKind::Gtin => (value, string.serial()),
            KeyKind::Gln => (value, string.get("254")),
            KeyKind::Grai => (&value[1..14], Some(&value[14..]).filter(|s| !s.is_empty())),
            KeyKind::Gdti => (&value[..13], Some(&value[13..]).filter(|s| !s.is_empty())),
            _ => (value, None),
        };
        let lot = if kind == KeyKind::Gtin {
            string.lot()
        } else {
            None
        };
        Ok(Self {
            kind,
            key: key.to_owned(),
            lot: lot.map(str::to_owned),
            serial: serial.map(str::to_owned),
        })
    }

    /// The element string that carries this identifier (key first, then lot, then serial).
    pub fn to_element_string(&self) -> Result<ElementString> {
        let serial = self.serial.as_deref();
        let mut elements = Vec::new();
        match self.kind {
            KeyKind::Grai => {
                elements.push(Element::new(
                    "8003",
                    format!("0{}{}", self.key, serial.unwrap_or_default()),
                )?);
            }
            KeyKind::Gdti => {
                elements.push(Element::new(
                    "253",
                    format!("{}{}", self.key, serial.unwrap_or_default()),
                )?);
            }
            kind => {
                elements.push(Element::new(kind.ai(), self.key.clone())?);
                if let Some(lot) = &self.lot {
                    elements.push(Element::new("10", lot.clone())?);
                }
                match (kind, serial) {
                    (KeyKind::Gtin, Some(serial)) => elements.push(Element::new("21", serial)?),
                    (KeyKind::Gln, Some(extension)) => {
                        elements.push(Element::new("254", extension)?)
                    }
                    (_, Some(_)) => {
                        return Err(Gs1Error::new(
                            Gs1ErrorKind::InvalidCombination,
                            format!("a {kind} has no serial"),
                        ));
                    }
                    (_, None) => {}
                }
            }
        }
        ElementString::new(elements)
    }

    /// Whether this names one physical instance (a serialised item, container, asset...).
    pub fn is_instance(&self) -> bool {
        match self.kind {
            KeyKind::Gtin | KeyKind::Grai | KeyKind::Gdti => self.serial.is_some(),
            _ => true,
        }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_element_string() {
            Ok(string) => f.write_str(&string.to_bracketed()),
            Err(_) => write!(f, "{} {}", self.kind, self.key),
        }
    }
}

/// Checks a GTIN-8/12/13/14 and returns it as 14 digits.
pub fn normalise_gtin(gtin: &str) -> Result<String> {
    Charset::Numeric.check(gtin).map_err(|e| e.in_ai("01"))?;
    if ![8, 12, 13, 14].contains(&gtin.len()) {
        return Err(Gs1Error::new(
            Gs1ErrorKind::WrongLength,
            format!("a GTIN has 8, 12, 13 or 14 digits, not {}", gtin.len()),
        )
        .in_ai("01"));
    }
    let padded = format!("{gtin:0>14}");
    crate::charset::verify_check_digit(&padded).map_err(|e| {
        Gs1Error {
            position: e.position.map(|p| p + gtin.len() - 14),
            ..e
        }
        .in_ai("01")
    })?;
    Ok(padded)
}

/// Appends the check digit to `digits` (a convenience for building keys in tests and pools).
pub fn complete_key(digits: &str) -> Result<String> {
    with_check_digit(digits)
        .ok_or_else(|| Gs1Error::new(Gs1ErrorKind::IllegalCharacter, "digits only"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtin_normalisation() {
        assert_eq!(
            normalise_gtin("4006381333931").ok().as_deref(),
            Some("04006381333931")
        );
        assert_eq!(
            normalise_gtin("96385074").ok().as_deref(),
            Some("00000096385074")
        );
        let err = normalise_gtin("4006381333932").expect_err("bad check digit");
        assert_eq!(
            (err.kind, err.position),
            (Gs1ErrorKind::BadCheckDigit, Some(12))
        );
        assert_eq!(
            normalise_gtin("123").expect_err("short").kind,
            Gs1ErrorKind::WrongLength
        );
    }

    #[test]
    fn keys_from_element_strings() {
        let s = ElementString::parse("(8003)00614141000017ABC(21)X").err();
        assert!(s.is_some(), "21 without 01 is not allowed");
        let s = ElementString::parse("(8003)006141410000121234").expect("GRAI");
        let id = Identifier::from_element_string(&s).expect("key");
        assert_eq!(
            (id.kind, id.key.as_str(), id.serial.as_deref()),
            (KeyKind::Grai, "0614141000012", Some("1234"))
        );
        assert_eq!(id.to_element_string().expect("build"), s);
        let gln = Identifier::new(KeyKind::Gln, "0614141123452", None, Some("12")).expect("GLN");
        assert_eq!(gln.to_string(), "(414)0614141123452(254)12");
    }
}
