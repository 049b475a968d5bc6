//! BOM rules: whether a consumed component belongs to its production order's BOM (asked by
//! capture for every input of an event under a production order), and how two revisions
//! of a BOM differ.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;
use tracery_connector::{Bom, RecordKind};
use tracery_gs1::KeyKind;

use crate::{
    domain::IntegrationError,
    store::records::{self, BomSelector},
};

/// A GTIN in its 14-digit form, from any GTIN length or any GS1 syntax naming one.
pub fn normal_gtin(text: &str) -> Option<String> {
    if text.chars().all(|c| c.is_ascii_digit()) {
        return tracery_gs1::Identifier::new(KeyKind::Gtin, text, None, None)
            .ok()
            .map(|i| i.key);
    }
    let identifier = tracery_gs1::parse_any(text).ok()?.identifier?;
    (identifier.kind == KeyKind::Gtin).then_some(identifier.key)
}

/// The synced order record a reference names: its number as written, or the last `:` or
/// `/` segment of a bizTransaction URI (`urn:epcglobal:cbv:bt:4012345000009:1000123`).
pub async fn order_record(
    conn: &impl ConnectionTrait,
    reference: &str,
) -> Result<Option<records::record::Model>, IntegrationError> {
    let mut candidates = vec![reference.to_owned()];
    candidates.extend(reference.rsplit_once(':').map(|(_, last)| last.to_owned()));
    candidates.extend(reference.rsplit_once('/').map(|(_, last)| last.to_owned()));
    for candidate in candidates.into_iter().filter(|c| !c.is_empty()) {
        if let Some(row) = records::by_key(conn, RecordKind::Orders, &candidate).await? {
            return Ok(Some(row));
        }
    }
    Ok(None)
}

/// See [`order_record`].
async fn order(
    conn: &impl ConnectionTrait,
    reference: &str,
) -> Result<Option<tracery_connector::ProductionOrder>, IntegrationError> {
    order_record(conn, reference)
        .await?
        .map(|row| records::order_of(&row))
        .transpose()
}

/// `Ok(Ok(()))` when `component` (item code, GTIN, or a GS1 identifier of the material) is
/// on the BOM of order `reference`; `Ok(Err(reason))` when it is not, or cannot be told.
pub async fn check(
    conn: &impl ConnectionTrait,
    reference: &str,
    component: &str,
) -> Result<Result<(), String>, IntegrationError> {
    let Some(order) = order(conn, reference).await? else {
        return Ok(Err(format!(
            "production order `{reference}` has not been synced from the ERP"
        )));
    };
    let selector = match &order.bom_revision {
        Some(revision) => BomSelector::Revision(revision.clone()),
        None => BomSelector::EffectiveAt(order.planned_start.unwrap_or_else(chrono::Utc::now)),
    };
    let Some(row) = records::bom(conn, &order.item_code, &selector).await? else {
        return Ok(Err(format!(
            "no BOM of `{}` for order `{}` has been synced",
            order.item_code, order.number
        )));
    };
    let bom = records::bom_of(&row)?;
    let item_code = match normal_gtin(component) {
        Some(gtin) => match records::material(conn, Some(&gtin), None).await? {
            Some(row) => records::material_of(&row)?.item_code,
            None => {
                return Ok(Err(format!(
                    "GTIN {gtin} of `{component}` is not mapped to an ERP item"
                )));
            }
        },
        None => component.to_owned(),
    };
    if bom.lines.iter().any(|line| line.component == item_code) {
        Ok(Ok(()))
    } else {
        Ok(Err(format!(
            "`{item_code}` is not a component of BOM `{}` of `{}` (order `{}`)",
            bom.revision, bom.material, order.number
        )))
    }
}

/// How a component differs between two BOMs (codes as in `BomDifferenceKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DifferenceKind {
    Added = 1,
    Removed = 2,
    QuantityChanged = 3,
}

/// One component's difference: in the engineering (PLM) and manufacturing (ERP) BOM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub component: String,
    pub kind: DifferenceKind,
    pub plm: Option<Decimal>,
    pub erp: Option<Decimal>,
}

/// Components the ERP BOM adds, lacks or uses in another quantity than the PLM BOM, by
/// component; repeated lines of a component add up.
pub fn compare(plm: &Bom, erp: &Bom) -> Vec<Difference> {
    let totals = |bom: &Bom| {
        let mut totals: BTreeMap<String, Decimal> = BTreeMap::new();
        for line in &bom.lines {
            *totals.entry(line.component.clone()).or_default() += line.quantity_per;
        }
        totals
    };
    let (plm_lines, erp_lines) = (totals(plm), totals(erp));
    let mut components: Vec<&String> = plm_lines.keys().chain(erp_lines.keys()).collect();
    components.sort();
    components.dedup();
    components
        .into_iter()
        .filter_map(|component| {
            let (p, e) = (
                plm_lines.get(component).copied(),
                erp_lines.get(component).copied(),
            );
            let kind = match (p, e) {
                (None, Some(_)) => DifferenceKind::Added,
                (Some(_), None) => DifferenceKind::Removed,
                (Some(p), Some(e)) if p.normalize() != e.normalize() => {
                    DifferenceKind::QuantityChanged
                }
                _ => return None,
            };
            Some(Difference {
                component: component.clone(),
                kind,
                plm: p,
                erp: e,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use tracery_connector::BomLine;

    use super::*;

    fn bom(lines: &[(&str, i64)]) -> Bom {
        Bom {
            material: "PUMP-100".to_owned(),
            revision: "C".to_owned(),
            valid_from: None,
            valid_to: None,
            lines: lines
                .iter()
                .map(|(component, quantity)| BomLine {
                    component: (*component).to_owned(),
                    quantity_per: Decimal::from(*quantity),
                    unit: "PC".to_owned(),
                    scrap_percent: Decimal::ZERO,
                    alternative_group: None,
                })
                .collect(),
        }
    }

    #[test]
    fn engineering_and_manufacturing_boms_drift() {
        let plm = bom(&[("SHAFT-20", 1), ("SCREW-M6", 8), ("SEAL-A", 1)]);
        let erp = bom(&[
            ("SHAFT-20", 1),
            ("SCREW-M6", 6),
            ("SCREW-M6", 4),
            ("LABEL", 1),
        ]);
        let found: Vec<(String, DifferenceKind)> = compare(&plm, &erp)
            .into_iter()
            .map(|d| (d.component, d.kind))
            .collect();
        assert_eq!(
            found,
            [
                ("LABEL".to_owned(), DifferenceKind::Added),
                ("SCREW-M6".to_owned(), DifferenceKind::QuantityChanged),
                ("SEAL-A".to_owned(), DifferenceKind::Removed),
            ]
        );
    }

    #[test]
    fn gtins_are_normalised_from_any_spelling() {
        assert_eq!(
            normal_gtin("4012345111118").as_deref(),
            Some("04012345111118")
        );
        assert_eq!(
            normal_gtin("urn:epc:class:lgtin:4012345.011111.L1").as_deref(),
            Some("04012345111118")
        );
        assert_eq!(normal_gtin("SHAFT-20"), None);
    }
}
