//! Odoo records → the canonical model. Many2one values are `[id, "display name"]`, empty
//! ones `false`; item codes come from the referenced products' `default_code`.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use tracery_connector::{
    Bom, BomLine, ErpLocation, Fetched, LocationRole, Material, OrderStatus, ProductionOrder,
    Record, fields::Fields, model::per_unit, paging::Malformed,
};

/// `default_code` by product id and by template id.
#[derive(Default)]
pub struct Codes {
    pub products: HashMap<i64, Value>,
    pub templates: HashMap<i64, Value>,
}

/// The id of a many2one value.
pub fn many2one_id(value: &Value) -> Option<i64> {
    value.as_array()?.first()?.as_i64()
}

/// The display name of a many2one value.
fn many2one_name(f: &Fields, field: &str) -> Result<Option<String>, Malformed> {
    match f.value(field) {
        None => Ok(None),
        Some(Value::Array(pair)) => match pair.get(1).and_then(Value::as_str) {
            Some(name) => Ok(Some(name.to_owned())),
            None => Err(f.malformed(field, "many2one without a display name")),
        },
        Some(other) => Err(f.malformed(field, format!("expected [id, name], got {other}"))),
    }
}

/// The item code of the product a many2one `field` points at.
fn item_code(
    f: &Fields,
    field: &str,
    known: &HashMap<i64, Value>,
) -> Result<Option<String>, Malformed> {
    let Some(value) = f.value(field) else {
        return Ok(None);
    };
    let id = many2one_id(value)
        .ok_or_else(|| f.malformed(field, format!("expected [id, name], got {value}")))?;
    match known.get(&id).and_then(Value::as_str) {
        Some(code) if !code.is_empty() => Ok(Some(code.to_owned())),
        _ => Err(f.malformed(
            field,
            format!("product {id} has no internal reference (default_code)"),
        )),
    }
}

fn utc(f: &Fields, field: &str) -> Result<Option<DateTime<Utc>>, Malformed> {
    let Some(text) = f.opt_text(field)? else {
        return Ok(None);
    };
    NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S")
        .map(|t| Some(t.and_utc()))
        .map_err(|_| f.malformed(field, format!("`{text}` is not an Odoo date-time")))
}

/// A `product.product`.
pub fn material(row: &Value) -> Fetched {
    let f = Fields::new(row, "id");
    let item_code = f.text("default_code")?;
    Ok(Record::Material(Material {
        description: f.opt_text("name")?.unwrap_or_else(|| item_code.clone()),
        gtin: f.opt_text("barcode")?,
        unit: many2one_name(&f, "uom_id")?
            .ok_or_else(|| f.malformed("uom_id", "required but missing"))?,
        revision: None,
        item_code,
    }))
}

/// An `mrp.bom` with its lines among `lines`.
pub fn bom(row: &Value, lines: &[Value], codes: &Codes, revision_field: &str) -> Fetched {
    let f = Fields::new(row, "id");
    let id = row
        .get("id")
        .and_then(Value::as_i64)
        .ok_or_else(|| f.malformed("id", "required"))?;
    let material = match item_code(&f, "product_id", &codes.products)? {
        Some(code) => code,
        None => item_code(&f, "product_tmpl_id", &codes.templates)?
            .ok_or_else(|| f.malformed("product_tmpl_id", "required but missing"))?,
    };
    let base = f.decimal("product_qty")?;
    let mut bom_lines = Vec::new();
    for line in lines
        .iter()
        .filter(|l| l.get("bom_id").and_then(many2one_id) == Some(id))
    {
        let l = Fields::new(line, "id");
        let at =
            |m: Malformed| f.malformed(&format!("bom_line_ids/{}/{}", l.key(), m.field), m.reason);
        bom_lines.push(BomLine {
            component: item_code(&l, "product_id", &codes.products)
                .map_err(at)?
                .ok_or_else(|| at(l.malformed("product_id", "required but missing")))?,
            quantity_per: per_unit(l.decimal("product_qty").map_err(at)?, base),
            unit: many2one_name(&l, "product_uom_id")
                .map_err(at)?
                .unwrap_or_default(),
            scrap_percent: rust_decimal::Decimal::ZERO,
            alternative_group: None,
        });
    }
    Ok(Record::Bom(Bom {
        material,
        revision: f
            .opt_text(revision_field)?
            .unwrap_or_else(|| id.to_string()),
        valid_from: None,
        valid_to: None,
        lines: bom_lines,
    }))
}

/// An `mrp.production`.
pub fn order(
    row: &Value,
    codes: &Codes,
    revisions: &HashMap<i64, Value>,
    (start, end): (&str, &str),
) -> Fetched {
    let f = Fields::new(row, "name");
    let state = f.text("state")?;
    let status = match state.as_str() {
        "draft" => OrderStatus::Planned,
        "confirmed" => OrderStatus::Released,
        "progress" | "to_close" => OrderStatus::InProgress,
        "done" => OrderStatus::Completed,
        "cancel" => OrderStatus::Cancelled,
        other => {
            return Err(f.malformed(
                "state",
                format!("unknown manufacturing order state `{other}`"),
            ));
        }
    };
    let bom_revision = f
        .value("bom_id")
        .and_then(many2one_id)
        .and_then(|id| revisions.get(&id))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Record::Order(ProductionOrder {
        number: f.text("name")?,
        item_code: item_code(&f, "product_id", &codes.products)?
            .ok_or_else(|| f.malformed("product_id", "required but missing"))?,
        quantity: f.decimal("product_qty")?,
        unit: many2one_name(&f, "product_uom_id")?
            .ok_or_else(|| f.malformed("product_uom_id", "required but missing"))?,
        status,
        planned_start: utc(&f, start)?,
        planned_end: utc(&f, end)?,
        actual_start: None,
        actual_end: None,
        plant: many2one_name(&f, "company_id")?,
        work_centre: None,
        bom_revision,
        locations: [
            ("location_src_id", LocationRole::Components),
            ("location_dest_id", LocationRole::FinishedGoods),
        ]
        .into_iter()
        .map(|(field, role)| Ok(ErpLocation::of(many2one_name(&f, field)?, role)))
        .filter_map(Result::transpose)
        .collect::<Result<_, Malformed>>()?,
    }))
}
