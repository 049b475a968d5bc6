//! ERPNext documents → the canonical model.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

use crate::SiteZone;
use tracery_connector::{
    Bom, BomLine, ErpLocation, Fetched, LocationRole, Material, OrderStatus, ProductionOrder,
    Record, fields::Fields, model::per_unit, paging::Malformed,
};

/// An `Item`.
pub fn material(row: &Value, gtin_field: Option<&str>) -> Fetched {
    let f = Fields::new(row, "name");
    let item_code = match f.opt_text("item_code")? {
        Some(code) => code,
        None => f.text("name")?,
    };
    Ok(Record::Material(Material {
        description: f
            .opt_text("item_name")?
            .unwrap_or_else(|| item_code.clone()),
        item_code,
        gtin: gtin_field
            .map(|field| f.opt_text(field))
            .transpose()?
            .flatten(),
        unit: f.text("stock_uom")?,
        revision: None,
    }))
}

/// A `Work Order`.
pub fn order(row: &Value, zone: SiteZone) -> Fetched {
    let f = Fields::new(row, "name");
    let time = |field: &str| local_time(&f, field, zone);
    Ok(Record::Order(ProductionOrder {
        number: f.text("name")?,
        item_code: f.text("production_item")?,
        quantity: f.decimal("qty")?,
        unit: f.text("stock_uom")?,
        status: status(&f)?,
        planned_start: time("planned_start_date")?,
        planned_end: time("planned_end_date")?,
        actual_start: time("actual_start_date")?,
        actual_end: time("actual_end_date")?,
        plant: f.opt_text("company")?,
        work_centre: f.opt_text("wip_warehouse")?,
        bom_revision: f.opt_text("bom_no")?,
        locations: warehouses(&f)?,
    }))
}

/// The warehouses a work order names, by their document names (which ERPNext shows).
fn warehouses(f: &Fields) -> Result<Vec<ErpLocation>, Malformed> {
    let mut found = Vec::new();
    for (field, role) in [
        ("source_warehouse", LocationRole::Components),
        ("wip_warehouse", LocationRole::WorkInProgress),
        ("fg_warehouse", LocationRole::FinishedGoods),
    ] {
        found.extend(ErpLocation::of(f.opt_text(field)?, role));
    }
    Ok(found)
}

fn status(f: &Fields) -> Result<OrderStatus, Malformed> {
    let text = f.text("status")?;
    Ok(match text.as_str() {
        "Draft" => OrderStatus::Planned,
        "Submitted" | "Not Started" => OrderStatus::Released,
        "In Process" => OrderStatus::InProgress,
        "Completed" => OrderStatus::Completed,
        "Stopped" | "Closed" => OrderStatus::Closed,
        "Cancelled" => OrderStatus::Cancelled,
        other => return Err(f.malformed("status", format!("unknown work order status `{other}`"))),
    })
}

/// A `BOM` document with its `items`.
pub fn bom(document: &Value) -> Fetched {
    let f = Fields::new(document, "name");
    let base = f.decimal("quantity")?;
    let lines = match document.get("items") {
        Some(Value::Array(items)) => items,
        _ => return Err(f.malformed("items", "a BOM document carries its `items`")),
    };
    let mut bom_lines = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        let l = Fields::new(line, "item_code");
        let at = |m: Malformed| f.malformed(&format!("items/{index}/{}", m.field), m.reason);
        let quantity = match l.value("stock_qty") {
            Some(_) => l.decimal("stock_qty").map_err(at)?,
            None => l.decimal("qty").map_err(at)?,
        };
        let unit = match l.opt_text("stock_uom").map_err(at)? {
            Some(unit) => unit,
            None => l.text("uom").map_err(at)?,
        };
        bom_lines.push(BomLine {
            component: l.text("item_code").map_err(at)?,
            quantity_per: per_unit(quantity, base),
            unit,
            scrap_percent: rust_decimal::Decimal::ZERO,
            alternative_group: None,
        });
    }
    Ok(Record::Bom(Bom {
        material: f.text("item")?,
        revision: f.text("name")?,
        valid_from: None,
        valid_to: None,
        lines: bom_lines,
    }))
}

/// A Frappe date or datetime (naive, site time) as UTC.
fn local_time(f: &Fields, field: &str, zone: SiteZone) -> Result<Option<DateTime<Utc>>, Malformed> {
    let Some(text) = f.opt_text(field)? else {
        return Ok(None);
    };
    let naive = NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| {
            NaiveDate::parse_from_str(&text, "%Y-%m-%d").map(|d| d.and_time(Default::default()))
        })
        .map_err(|_| f.malformed(field, format!("`{text}` is not a Frappe date-time")))?;
    zone.to_utc(naive)
        .map(Some)
        .ok_or_else(|| f.malformed(field, format!("`{text}` is not a valid local time")))
}
