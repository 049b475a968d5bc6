//! PLM systems read part by part over OData v4 (Aras, Windchill): a page of changed parts
//! gives the materials, and each part that has BOM lines one BOM revision.
//!
//! A system describes where its parts are and how its records read ([`PartCatalogue`]);
//! paging, the change cursor and the per-part BOM walk are done here once, and every
//! catalogue is a [`Connector`].

use serde_json::Value;

use crate::{
    Connector, ConnectorError, Cursor, Fetched, Page, RecordKind,
    fields::Fields,
    paging::{ODataRequest, odata4_page, odata4_request},
};

/// Where a system lists its parts, and the fields the scan reads.
#[derive(Debug, Clone)]
pub struct PartListing {
    /// The part collection's URL.
    pub url: String,
    /// `$select`, when the system returns too much without one.
    pub select: Option<&'static str>,
    /// The part's number, naming it in errors.
    pub number_field: &'static str,
    /// The part's id, for its BOM.
    pub id_field: &'static str,
    /// The change time: the `$filter` since the cursor, and the scan's high-water mark.
    pub changed_field: &'static str,
    /// `$orderby`: the change time, then something unique.
    pub order_by: &'static str,
    /// Parts per page.
    pub page_size: u32,
}

/// A PLM system whose records are parts and their BOM structures.
#[async_trait::async_trait]
pub trait PartCatalogue: Send + Sync {
    /// The system's name, e.g. `aras`.
    fn system(&self) -> &'static str;

    /// Where the parts are listed.
    fn listing(&self) -> PartListing;

    /// GETs `url` with `query`, authenticated.
    async fn get(&self, url: &str, query: &[(&str, String)]) -> Result<Value, ConnectorError>;

    /// `part` as a material.
    fn material(&self, part: &Value) -> Fetched;

    /// The BOM lines of the part with id `id`, as the system sends them.
    async fn bom_lines(&self, id: &str) -> Result<Vec<Value>, ConnectorError>;

    /// The BOM record of `part` from its (non-empty) `lines`.
    fn bom(&self, part: &Fields, lines: &[Value]) -> Fetched;
}

const KINDS: &[RecordKind] = &[RecordKind::Materials, RecordKind::Boms];

#[async_trait::async_trait]
impl<C: PartCatalogue> Connector for C {
    fn system(&self) -> &'static str {
        PartCatalogue::system(self)
    }

    fn kinds(&self) -> &'static [RecordKind] {
        KINDS
    }

    /// One page of `kind` records: materials or BOMs of the changed parts (no orders).
    async fn fetch(&self, kind: RecordKind, cursor: &Cursor) -> Result<Page, ConnectorError> {
        use tracing::Instrument as _;
        let span = tracing::info_span!("fetch", system = PartCatalogue::system(self), ?kind);
        fetch_parts(self, kind, cursor).instrument(span).await
    }
}

async fn fetch_parts(
    catalogue: &impl PartCatalogue,
    kind: RecordKind,
    cursor: &Cursor,
) -> Result<Page, ConnectorError> {
    let listing = catalogue.listing();
    let (parts, next) = parts_page(catalogue, &listing, cursor).await?;
    let records = match kind {
        RecordKind::Materials => parts.iter().map(|p| catalogue.material(p)).collect(),
        RecordKind::Boms => {
            let mut records = Vec::new();
            for part in &parts {
                records.extend(part_bom(catalogue, &listing, part).await?);
            }
            records
        }
        RecordKind::Orders => Vec::new(),
    };
    let high_water = parts
        .iter()
        .filter_map(|p| p.get(listing.changed_field)?.as_str().map(str::to_owned))
        .max();
    Ok(Page {
        records,
        high_water,
        next,
    })
}

/// One page of parts changed since `cursor.since`, and where the next one starts.
async fn parts_page(
    catalogue: &impl PartCatalogue,
    listing: &PartListing,
    cursor: &Cursor,
) -> Result<(Vec<Value>, Option<crate::Position>), ConnectorError> {
    let top = listing.page_size;
    let request = odata4_request(cursor, top, listing.order_by, listing.changed_field);
    let (body, skip) = match request {
        ODataRequest::Link(link) => (catalogue.get(&link, &[]).await?, None),
        ODataRequest::Query(mut query, skip) => {
            if let Some(select) = listing.select {
                query.insert(0, ("$select", select.to_owned()));
            }
            (catalogue.get(&listing.url, &query).await?, Some(skip))
        }
    };
    odata4_page(&body, skip, top)
}

/// The BOM of `part` (a row of the part list), if it has lines; a part without an id is
/// reported as malformed.
async fn part_bom(
    catalogue: &impl PartCatalogue,
    listing: &PartListing,
    part: &Value,
) -> Result<Option<Fetched>, ConnectorError> {
    let f = Fields::new(part, listing.number_field);
    let id = match f.text(listing.id_field) {
        Ok(id) => id,
        Err(malformed) => return Ok(Some(Err(malformed))),
    };
    let lines = catalogue.bom_lines(&id).await?;
    if lines.is_empty() {
        return Ok(None);
    }
    Ok(Some(catalogue.bom(&f, &lines)))
}

/// One line of a PLM's single-level BOM.
#[derive(Debug, Clone, PartialEq)]
pub struct PartUse {
    /// The component's part number.
    pub component: String,
    /// How many per unit of the parent.
    pub quantity_per: rust_decimal::Decimal,
    /// The unit of `quantity_per`.
    pub unit: String,
}

/// How a system names a part's revision and its BOM lines.
#[derive(Debug, Clone, Copy)]
pub struct BomFields {
    /// The part number.
    pub number: &'static str,
    /// The revision (version) the BOM belongs to.
    pub revision: &'static str,
    /// The name of the line list, for errors (`Part BOM/3/quantity`).
    pub lines: &'static str,
    /// Each line's key, for errors.
    pub line_key: &'static str,
}

/// The BOM record of `part`, its `lines` read by `read`; a bad line makes the whole BOM
/// malformed, named by its index. PLM BOMs carry no scrap, alternatives or validity.
pub fn bom_record(
    part: &Fields,
    fields: BomFields,
    lines: &[Value],
    read: impl Fn(&Fields) -> Result<PartUse, crate::paging::Malformed>,
) -> Fetched {
    let mut bom_lines = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        let use_ = read(&Fields::new(line, fields.line_key)).map_err(|m| {
            part.malformed(&format!("{}/{index}/{}", fields.lines, m.field), m.reason)
        })?;
        bom_lines.push(crate::BomLine {
            component: use_.component,
            quantity_per: use_.quantity_per,
            unit: use_.unit,
            scrap_percent: rust_decimal::Decimal::ZERO,
            alternative_group: None,
        });
    }
    Ok(crate::Record::Bom(crate::Bom {
        material: part.text(fields.number)?,
        revision: part.text(fields.revision)?,
        valid_from: None,
        valid_to: None,
        lines: bom_lines,
    }))
}

/// A part as a material: PLM parts carry no GTIN; a part without a name is described by
/// its number.
pub fn material_record(
    number: String,
    name: Option<String>,
    unit: String,
    revision: Option<String>,
) -> Fetched {
    Ok(crate::Record::Material(crate::Material {
        description: name.unwrap_or_else(|| number.clone()),
        gtin: None,
        unit,
        revision,
        item_code: number,
    }))
}
