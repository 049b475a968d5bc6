//! Identifiers as clients write them → canonical EPC URNs, with what the product master and
//! the serial pools know (company prefix lengths, allocated serials).

use std::collections::HashMap;

use tracery_gs1::{Identifier, KeyKind, Parsed};

use crate::{
    domain::IdentityError,
    serials::SerialCodec,
    store::{PoolStore, ProductStore, pools},
};

/// Resolves identifiers against the product master and the serial pools.
#[derive(Clone)]
pub struct Resolver {
    products: ProductStore,
    pools: PoolStore,
}

impl Resolver {
    /// A resolver over the two stores.
    pub fn new(products: ProductStore, pools: PoolStore) -> Self {
        Self { products, pools }
    }

    /// The company prefix length for `identifier`: the explicit one, the one the input
    /// showed, the product master's (GTIN) or that of a matching SSCC pool.
    pub async fn company_prefix_length(
        &self,
        parsed: &Parsed,
        explicit: i32,
    ) -> Result<Option<usize>, IdentityError> {
        if explicit != 0 {
            return usize::try_from(explicit)
                .ok()
                .filter(|l| (6..=12).contains(l))
                .map(Some)
                .ok_or_else(|| {
                    IdentityError::invalid("company_prefix_length", "must be between 6 and 12")
                });
        }
        if parsed.company_prefix_length.is_some() {
            return Ok(parsed.company_prefix_length);
        }
        let Some(identifier) = &parsed.identifier else {
            return Ok(None);
        };
        match identifier.kind {
            KeyKind::Gtin => match self.products.by_gtin(&identifier.key).await {
                Ok(product) => Ok(usize::try_from(product.company_prefix_length).ok()),
                Err(IdentityError::ProductNotFound(_)) => Ok(None),
                Err(err) => Err(err),
            },
            KeyKind::Sscc => Ok(self
                .pools
                .sscc_pools()
                .await?
                .into_iter()
                .filter_map(|p| p.company_prefix)
                .find(|prefix| identifier.key[1..].starts_with(prefix.as_str()))
                .map(|prefix| prefix.len())),
            _ => Ok(None),
        }
    }

    /// Parses `text` (any syntax) and works out its canonical EPC URN.
    pub async fn resolve(
        &self,
        field: &str,
        text: &str,
        explicit_prefix_length: i32,
    ) -> Result<(Parsed, Option<String>), IdentityError> {
        let parsed = tracery_gs1::parse_any(text.trim()).map_err(IdentityError::gs1(field))?;
        let prefix_length = self
            .company_prefix_length(&parsed, explicit_prefix_length)
            .await?;
        let epc = match (&parsed.identifier, prefix_length) {
            (Some(identifier), Some(length)) => Some(
                identifier
                    .to_epc_urn(length)
                    .map_err(IdentityError::gs1(field))?,
            ),
            _ => None,
        };
        Ok((parsed, epc))
    }

    /// The canonical EPC URN of one instance identifier, or a field error saying why not.
    pub async fn instance_epc(
        &self,
        field: &str,
        text: &str,
    ) -> Result<(Identifier, String), IdentityError> {
        let (parsed, epc) = self.resolve(field, text, 0).await?;
        let identifier = parsed
            .identifier
            .filter(Identifier::is_instance)
            .ok_or_else(|| {
                IdentityError::invalid(field, "not an instance identifier (SGTIN, SSCC, ...)")
            })?;
        let epc = epc.ok_or_else(|| {
            IdentityError::invalid(
                field,
                "company prefix length unknown: register the product or write the EPC URN",
            )
        })?;
        Ok((identifier, epc))
    }

    /// A check of "did a pool hand this out", reading each pool once however many
    /// identifiers it is asked about.
    pub fn allocation_check(&self) -> AllocationCheck<'_> {
        AllocationCheck {
            pools: &self.pools,
            by_gtin: HashMap::new(),
            sscc: None,
        }
    }
}

/// Pools as codecs with their counters.
type Loaded = Vec<(SerialCodec, u128)>;

/// See [`Resolver::allocation_check`].
pub struct AllocationCheck<'a> {
    pools: &'a PoolStore,
    by_gtin: HashMap<String, Loaded>,
    sscc: Option<Loaded>,
}

fn load(rows: Vec<pools::PoolRow>) -> Result<Loaded, IdentityError> {
    rows.iter()
        .map(|row| {
            Ok((
                pools::codec(row)?,
                u128::try_from(row.next_index).unwrap_or_default(),
            ))
        })
        .collect()
}

impl AllocationCheck<'_> {
    /// Whether a serial pool handed out `identifier`.
    pub async fn was_allocated(&mut self, identifier: &Identifier) -> Result<bool, IdentityError> {
        let (candidates, serial) = match (identifier.kind, &identifier.serial) {
            (KeyKind::Gtin, Some(serial)) => {
                if !self.by_gtin.contains_key(&identifier.key) {
                    let loaded = load(self.pools.for_gtin(&identifier.key).await?)?;
                    self.by_gtin.insert(identifier.key.clone(), loaded);
                }
                (self.by_gtin.get(&identifier.key), serial.as_str())
            }
            (KeyKind::Sscc, _) => {
                if self.sscc.is_none() {
                    self.sscc = Some(load(self.pools.sscc_pools().await?)?);
                }
                (self.sscc.as_ref(), identifier.key.as_str())
            }
            _ => return Ok(false),
        };
        Ok(candidates
            .into_iter()
            .flatten()
            .any(|(codec, next)| codec.index(serial).is_some_and(|index| index < *next)))
    }
}
