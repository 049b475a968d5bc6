//! SAP OData v2 records → the canonical model.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tracery_connector::{
    Bom, BomLine, ErpLocation, Fetched, LocationRole, Material, OrderStatus, ProductionOrder,
    Record, fields::Fields, model::per_unit, paging::Malformed,
};

use crate::ChangeTime;

/// SAP's "no end" validity date, 9999-12-31.
const OPEN_END_MS: i64 = 253_402_214_400_000;

/// `/Date(1740960000000)/` or `/Date(1740960000000+0000)/` as UTC.
fn odata_date(text: &str) -> Option<DateTime<Utc>> {
    let inner = text.strip_prefix("/Date(")?.strip_suffix(")/")?;
    let millis_end = inner[1..].find(['+', '-']).map_or(inner.len(), |i| i + 1);
    let millis: i64 = inner[..millis_end].parse().ok()?;
    DateTime::from_timestamp_millis(millis)
}

fn date(f: &Fields, field: &str) -> Result<Option<DateTime<Utc>>, Malformed> {
    match f.opt_text(field)? {
        None => Ok(None),
        Some(text) => odata_date(&text)
            .map(Some)
            .ok_or_else(|| f.malformed(field, format!("`{text}` is not an OData date"))),
    }
}

/// A record's `LastChangeDateTime` in the spelling its `$filter` takes.
pub fn change_time(row: &Value, format: ChangeTime) -> Option<String> {
    let text = row.get("LastChangeDateTime")?.as_str()?;
    match format {
        ChangeTime::Text => Some(text.to_owned()).filter(|t| !t.is_empty()),
        ChangeTime::DateTimeOffset => {
            odata_date(text).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        }
    }
}

/// An `A_Product` with its expanded `to_Description`.
pub fn material(row: &Value) -> Fetched {
    let f = Fields::new(row, "Product");
    let item_code = f.text("Product")?;
    let descriptions = row
        .pointer("/to_Description/results")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let description = descriptions
        .iter()
        .find(|d| d.get("Language").and_then(Value::as_str) == Some("EN"))
        .or_else(|| descriptions.first())
        .and_then(|d| d.get("ProductDescription").and_then(Value::as_str))
        .map_or_else(|| item_code.clone(), str::to_owned);
    Ok(Record::Material(Material {
        gtin: f.opt_text("ProductStandardID")?,
        description,
        unit: f.text("BaseUnit")?,
        revision: None,
        item_code,
    }))
}

/// An `A_ProductionOrder_2` header.
pub fn order(row: &Value) -> Fetched {
    let f = Fields::new(row, "ManufacturingOrder");
    let status = if f.flag("OrderIsMarkedForDeletion") {
        OrderStatus::Cancelled
    } else if f.flag("OrderIsClosed") {
        OrderStatus::Closed
    } else if f.flag("OrderIsTechnicallyCompleted")
        || f.flag("OrderIsDelivered")
        || f.flag("OrderIsConfirmed")
    {
        OrderStatus::Completed
    } else if f.flag("OrderIsPartiallyConfirmed") {
        OrderStatus::InProgress
    } else if f.flag("OrderIsReleased") {
        OrderStatus::Released
    } else {
        OrderStatus::Planned
    };
    Ok(Record::Order(ProductionOrder {
        number: f.text("ManufacturingOrder")?,
        item_code: f.text("Material")?,
        quantity: f.decimal("TotalQuantity")?,
        unit: f.text("ProductionUnit")?,
        status,
        planned_start: date(&f, "MfgOrderPlannedStartDate")?,
        planned_end: date(&f, "MfgOrderPlannedEndDate")?,
        actual_start: date(&f, "MfgOrderActualReleaseDate")?,
        actual_end: None,
        plant: f.opt_text("ProductionPlant")?,
        work_centre: None,
        bom_revision: None,
        locations: plant_and_storage(&f)?,
    }))
}

/// The order's production plant and the storage location its output goes to; a storage
/// location is named within its plant (`1010/FG01`), as SAP keys it.
fn plant_and_storage(f: &Fields) -> Result<Vec<ErpLocation>, Malformed> {
    let plant = f.opt_text("ProductionPlant")?;
    let storage = match (&plant, f.opt_text("StorageLocation")?) {
        (Some(plant), Some(storage)) if !storage.trim().is_empty() => {
            Some(format!("{plant}/{storage}"))
        }
        _ => None,
    };
    Ok(ErpLocation::of(plant, LocationRole::Plant)
        .into_iter()
        .chain(ErpLocation::of(storage, LocationRole::FinishedGoods))
        .collect())
}

/// A `MaterialBOM` with its expanded `to_BillOfMaterialItem`. The revision is the BOM
/// version where versions are active, else the engineering change number, else the
/// BOM number and alternative.
pub fn bom(row: &Value) -> Fetched {
    let f = Fields::new(row, "BillOfMaterial");
    let revision = match (
        f.opt_text("BillOfMaterialVersion")?,
        f.opt_text("EngineeringChangeDocument")?,
    ) {
        (Some(version), _) => version,
        (None, Some(change)) => change,
        (None, None) => format!(
            "{}/{}",
            f.text("BillOfMaterial")?,
            f.text("BillOfMaterialVariant")?
        ),
    };
    let base = f
        .decimal("BOMHeaderQuantityInBaseUnit")
        .unwrap_or(rust_decimal::Decimal::ONE);
    let Some(items) = row
        .pointer("/to_BillOfMaterialItem/results")
        .and_then(Value::as_array)
    else {
        return Err(f.malformed("to_BillOfMaterialItem", "items not expanded"));
    };
    let mut lines = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let l = Fields::new(item, "BillOfMaterialItemNumber");
        if l.flag("IsDeleted") {
            continue;
        }
        let at = |m: Malformed| {
            f.malformed(
                &format!("to_BillOfMaterialItem/{index}/{}", m.field),
                m.reason,
            )
        };
        lines.push(BomLine {
            component: l.text("BillOfMaterialComponent").map_err(at)?,
            quantity_per: per_unit(l.decimal("BillOfMaterialItemQuantity").map_err(at)?, base),
            unit: l.text("BillOfMaterialItemUnit").map_err(at)?,
            scrap_percent: l.decimal_or_zero("ComponentScrapInPercent").map_err(at)?,
            alternative_group: l.opt_text("AlternativeItemGroup").map_err(at)?,
        });
    }
    let valid_to =
        date(&f, "HeaderValidityEndDate")?.filter(|t| t.timestamp_millis() < OPEN_END_MS);
    Ok(Record::Bom(Bom {
        material: f.text("Material")?,
        revision,
        valid_from: date(&f, "HeaderValidityStartDate")?,
        valid_to,
        lines,
    }))
}

#[cfg(test)]
mod tests {
    use super::odata_date;

    #[test]
    fn odata_dates_with_and_without_offset() {
        let plain = odata_date("/Date(1740960000000)/").map(|t| t.to_rfc3339());
        assert_eq!(plain.as_deref(), Some("2025-03-03T00:00:00+00:00"));
        assert_eq!(
            odata_date("/Date(1740960000000+0000)/"),
            odata_date("/Date(1740960000000)/")
        );
        assert_eq!(odata_date("2025-03-03"), None);
    }
}
