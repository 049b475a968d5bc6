//! PLM systems read part by part (Aras, Windchill): a page of changed parts gives the
//! materials, and each part that has BOM lines one BOM revision.

use serde_json::Value;

use crate::{ConnectorError, Cursor, Fetched, Page, Position, RecordKind};

/// A system whose records are parts and their BOM structures.
#[async_trait::async_trait]
pub trait PartCatalogue: Send + Sync {
    /// The part field holding its change time, the scan's high-water mark.
    fn changed_field(&self) -> &'static str;

    /// One page of parts changed since `cursor.since`, and the next page.
    async fn parts(
        &self,
        cursor: &Cursor,
    ) -> Result<(Vec<Value>, Option<Position>), ConnectorError>;

    /// `part` as a material.
    fn material(&self, part: &Value) -> Fetched;

    /// `part`'s BOM, if it has lines.
    async fn bom(&self, part: &Value) -> Result<Option<Fetched>, ConnectorError>;
}

/// One page of `kind` records: materials or BOMs of the changed parts (no orders).
pub async fn fetch(
    catalogue: &impl PartCatalogue,
    kind: RecordKind,
    cursor: &Cursor,
) -> Result<Page, ConnectorError> {
    let (parts, next) = catalogue.parts(cursor).await?;
    let records = match kind {
        RecordKind::Materials => parts.iter().map(|p| catalogue.material(p)).collect(),
        RecordKind::Boms => {
            let mut records = Vec::new();
            for part in &parts {
                records.extend(catalogue.bom(part).await?);
            }
            records
        }
        RecordKind::Orders => Vec::new(),
    };
    let changed = catalogue.changed_field();
    let high_water = parts
        .iter()
        .filter_map(|p| p.get(changed).and_then(Value::as_str).map(str::to_owned))
        .max();
    Ok(Page {
        records,
        high_water,
        next,
    })
}
