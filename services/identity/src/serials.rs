//! Serial-number pools: which serial the n-th allocation slot stands for, and back.
//!
//! A pool hands out slot indices 0, 1, 2, ... from one database counter, so no serial is
//! ever stored to prevent duplicates: a slot maps to a serial by a bijection. Sequential
//! pools write the index in the pool's alphabet; randomised pools encrypt it with NIST FF1
//! format-preserving encryption (a keyed permutation of all serials of the pool's length),
//! so the next serial cannot be predicted from earlier ones and yet never repeats.

use aes::Aes256;
use fpe::ff1::{FF1, FlexibleNumeralString};
use tracery_gs1::{charset::with_check_digit, key::normalise_gtin};

use crate::domain::IdentityError;

/// Characters of alphanumeric serials, in numeral order.
const ALPHANUMERIC: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// The largest allocation one request may ask for.
pub const MAX_ALLOCATION: u64 = 10_000_000;

/// FF1 (NIST SP 800-38G rev. 1) requires at least a million possible values.
const MIN_RANDOMISED_DOMAIN: u128 = 1_000_000;

/// Serial characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialFormat {
    /// Digits.
    Numeric,
    /// Digits and upper-case letters.
    Alphanumeric,
}

impl SerialFormat {
    fn radix(self) -> u32 {
        match self {
            Self::Numeric => 10,
            Self::Alphanumeric => 36,
        }
    }
}

/// Order of allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialOrder {
    /// Slot n is serial n.
    Sequential,
    /// Slot n is FF1(key, n).
    Randomised,
}

/// What a pool numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolTarget {
    /// AI 21 serials of one GTIN.
    Gtin(String),
    /// SSCCs of one company prefix: the serial is extension digit + serial reference.
    Sscc {
        /// The GS1 company prefix (6..=12 digits).
        company_prefix: String,
    },
}

/// A pool's fixed settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    /// Unique name.
    pub name: String,
    /// GTIN or SSCC company prefix.
    pub target: PoolTarget,
    /// Serial characters.
    pub format: SerialFormat,
    /// Serial length.
    pub length: u8,
    /// Allocation order.
    pub order: SerialOrder,
}

impl PoolSpec {
    /// Checks a pool as requested by a client.
    pub fn new(
        name: &str,
        gtin: &str,
        company_prefix: &str,
        format: Option<SerialFormat>,
        length: i32,
        order: Option<SerialOrder>,
    ) -> Result<Self, IdentityError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(IdentityError::invalid(
                "pool/name",
                "required, at most 100 characters",
            ));
        }
        let order = order.ok_or_else(|| IdentityError::invalid("pool/order", "required"))?;
        let (target, format, length) = match (gtin.is_empty(), company_prefix.is_empty()) {
            (false, true) => {
                let gtin = normalise_gtin(gtin).map_err(IdentityError::gs1("pool/gtin"))?;
                let format =
                    format.ok_or_else(|| IdentityError::invalid("pool/format", "required"))?;
                let length = u8::try_from(length)
                    .ok()
                    .filter(|l| (1..=20).contains(l))
                    .ok_or_else(|| {
                        IdentityError::invalid("pool/length", "must be 1 to 20 (AI 21)")
                    })?;
                (PoolTarget::Gtin(gtin), format, length)
            }
            (true, false) => {
                if !(6..=12).contains(&company_prefix.len())
                    || !company_prefix.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(IdentityError::invalid(
                        "pool/company_prefix",
                        "must be 6 to 12 digits",
                    ));
                }
                if format == Some(SerialFormat::Alphanumeric) {
                    return Err(IdentityError::invalid(
                        "pool/format",
                        "SSCC serials are numeric",
                    ));
                }
                // Extension digit + serial reference fill the 17 digits before the check digit.
                let length = u8::try_from(17 - company_prefix.len()).unwrap_or_default();
                let target = PoolTarget::Sscc {
                    company_prefix: company_prefix.to_owned(),
                };
                (target, SerialFormat::Numeric, length)
            }
            _ => {
                return Err(IdentityError::invalid(
                    "pool/gtin",
                    "give either gtin (SGTIN serials) or company_prefix (SSCCs)",
                ));
            }
        };
        let spec = Self {
            name: name.to_owned(),
            target,
            format,
            length,
            order,
        };
        if order == SerialOrder::Randomised && spec.domain_size() < MIN_RANDOMISED_DOMAIN {
            return Err(IdentityError::invalid(
                "pool/length",
                "a randomised pool needs at least 10^6 possible serials (FF1); use a longer serial",
            ));
        }
        Ok(spec)
    }

    /// How many distinct serials of this format and length exist.
    pub fn domain_size(&self) -> u128 {
        u128::from(self.format.radix()).saturating_pow(u32::from(self.length))
    }

    /// The capacity as stored: the domain size, capped to what the counter column holds.
    pub fn capacity(&self) -> i64 {
        i64::try_from(self.domain_size()).unwrap_or(i64::MAX)
    }
}

/// Maps slot indices to serials and back for one pool.
pub struct SerialCodec {
    spec: PoolSpec,
    cipher: Option<FF1<Aes256>>,
}

impl SerialCodec {
    /// A codec for `spec`; randomised pools need their 32-byte key.
    pub fn new(spec: PoolSpec, key: &[u8]) -> Result<Self, IdentityError> {
        let cipher = match spec.order {
            SerialOrder::Sequential => None,
            SerialOrder::Randomised => {
                if key.len() != 32 {
                    return Err(IdentityError::Corrupt(format!(
                        "pool `{}` has no valid key",
                        spec.name
                    )));
                }
                Some(
                    FF1::<Aes256>::new(key, spec.format.radix())
                        .map_err(|e| IdentityError::Corrupt(format!("FF1: {e:?}")))?,
                )
            }
        };
        Ok(Self { spec, cipher })
    }

    /// The pool's settings.
    pub fn spec(&self) -> &PoolSpec {
        &self.spec
    }

    /// The serial (for SSCC pools the full 18-digit SSCC) of slot `index`.
    ///
    /// Fails only for a slot outside the pool or a corrupt pool row; never falls back to
    /// another serial, which could repeat one.
    pub fn serial(&self, index: u128) -> Result<String, IdentityError> {
        if index >= self.spec.domain_size() {
            return Err(IdentityError::Corrupt(format!(
                "slot {index} is outside pool `{}`",
                self.spec.name
            )));
        }
        let radix = u128::from(self.spec.format.radix());
        let mut numerals = vec![0u16; usize::from(self.spec.length)];
        let mut rest = index;
        for numeral in numerals.iter_mut().rev() {
            *numeral = u16::try_from(rest % radix).unwrap_or_default();
            rest /= radix;
        }
        if let Some(cipher) = &self.cipher {
            let input = FlexibleNumeralString::from(numerals);
            numerals = cipher
                .encrypt(self.spec.name.as_bytes(), &input)
                .map_err(|e| IdentityError::Corrupt(format!("FF1: {e:?}")))?
                .into();
        }
        let text: String = numerals
            .iter()
            .map(|&n| char::from(ALPHANUMERIC[usize::from(n)]))
            .collect();
        match &self.spec.target {
            PoolTarget::Gtin(_) => Ok(text),
            PoolTarget::Sscc { company_prefix } => {
                let (extension, reference) = text.split_at(1);
                Ok(
                    with_check_digit(&format!("{extension}{company_prefix}{reference}"))
                        .unwrap_or(text),
                )
            }
        }
    }

    /// The slot index of `serial`, if it is a serial of this pool's format.
    pub fn index(&self, serial: &str) -> Option<u128> {
        let text = match &self.spec.target {
            PoolTarget::Gtin(_) => serial.to_owned(),
            PoolTarget::Sscc { company_prefix } => {
                let body = serial.get(..17)?;
                (with_check_digit(body)? == serial
                    && body[1..].starts_with(company_prefix.as_str()))
                .then(|| format!("{}{}", &body[..1], &body[1 + company_prefix.len()..]))?
            }
        };
        if text.len() != usize::from(self.spec.length) {
            return None;
        }
        let radix = self.spec.format.radix();
        let mut numerals = text
            .bytes()
            .map(|b| {
                let n = ALPHANUMERIC.iter().position(|&c| c == b)?;
                (u32::try_from(n).ok()? < radix)
                    .then(|| u16::try_from(n).ok())
                    .flatten()
            })
            .collect::<Option<Vec<u16>>>()?;
        if let Some(cipher) = &self.cipher {
            let decrypted = cipher
                .decrypt(
                    self.spec.name.as_bytes(),
                    &FlexibleNumeralString::from(numerals),
                )
                .ok()?;
            numerals = decrypted.into();
        }
        Some(
            numerals
                .iter()
                .fold(0u128, |acc, &n| acc * u128::from(radix) + u128::from(n)),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn pool(order: SerialOrder, format: SerialFormat, length: i32) -> PoolSpec {
        PoolSpec::new("p", "09506000134352", "", Some(format), length, Some(order)).expect("valid")
    }

    #[test]
    fn sequential_serials_count_up() {
        let codec = SerialCodec::new(pool(SerialOrder::Sequential, SerialFormat::Numeric, 6), &[])
            .expect("codec");
        assert_eq!(codec.serial(0).expect("slot"), "000000");
        assert_eq!(codec.serial(41).expect("slot"), "000041");
        assert_eq!(codec.index("000041"), Some(41));
        let alpha = SerialCodec::new(
            pool(SerialOrder::Sequential, SerialFormat::Alphanumeric, 4),
            &[],
        )
        .expect("codec");
        assert_eq!(alpha.serial(36 * 36 + 35).expect("slot"), "010Z");
    }

    #[test]
    fn randomised_serials_are_a_permutation() {
        let codec = SerialCodec::new(
            pool(SerialOrder::Randomised, SerialFormat::Numeric, 6),
            &[7; 32],
        )
        .expect("codec");
        let serials: Vec<String> = (0..20_000)
            .map(|i| codec.serial(i).expect("slot"))
            .collect();
        assert_eq!(serials.iter().collect::<HashSet<_>>().len(), serials.len());
        assert!(
            serials
                .iter()
                .all(|s| s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()))
        );
        // Unpredictable: consecutive slots are far apart, not counting up.
        let sequential_steps = serials.windows(2).filter(|w| w[1] > w[0]).count();
        assert!(
            (8_000..12_000).contains(&sequential_steps),
            "{sequential_steps}"
        );
        for (i, serial) in serials.iter().enumerate().take(500) {
            assert_eq!(codec.index(serial), Some(i as u128));
        }
    }

    #[test]
    fn sscc_pools_produce_valid_ssccs() {
        let spec = PoolSpec::new("s", "", "0614141", None, 0, Some(SerialOrder::Sequential))
            .expect("spec");
        let codec = SerialCodec::new(spec, &[]).expect("codec");
        let sscc = codec.serial(12).expect("slot");
        assert_eq!(sscc, "006141410000000128");
        assert!(tracery_gs1::charset::verify_check_digit(&sscc).is_ok());
        assert_eq!(codec.index(&sscc), Some(12));
    }

    #[test]
    fn small_randomised_pools_are_refused() {
        let err = PoolSpec::new(
            "p",
            "09506000134352",
            "",
            Some(SerialFormat::Numeric),
            5,
            Some(SerialOrder::Randomised),
        )
        .expect_err("too small");
        assert!(err.to_string().contains("10^6"));
    }
}
