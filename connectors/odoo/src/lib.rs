//! Tracery connector for Odoo: manufacturing orders (`mrp.production`), BOMs (`mrp.bom`
//! with `mrp.bom.line`) and products (`product.product`).
//!
//! - Two transports: the external JSON-RPC API (`/jsonrpc`, `execute_kw`, Odoo 16–18) and
//!   the JSON-2 API (`/json/2/<model>/<method>`, Odoo 19+), chosen per plant.
//! - Incremental by `write_date` (UTC) with `>=`, ordered `write_date asc, id asc`, paged
//!   with `offset`/`limit`; archived records included (`active_test: false`), since an old
//!   BOM revision is archived, not deleted.
//! - Odoo answers an empty field with `false` and a many2one with `[id, "name"]`; item
//!   codes (`default_code`) of referenced products are read in one call per page.
//! - JSON-RPC re-authenticates once on `AccessDenied` / `SessionExpired`; JSON-2 reads its
//!   API key again once on 401, so a rotated key in a mounted secret is picked up.
//! - Production goes back by completing the manufacturing order (see [`postback`]).

mod map;
pub mod postback;
mod transport;

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;
use serde_json::{Value, json};
use tracery_connector::secret::SecretSource;
use tracery_connector::{
    Connector, ConnectorError, Cursor, Page, Position, RecordKind, http::Http,
};

pub use transport::Protocol;

/// `[connectors.<name>]` settings of an Odoo connector (besides the common ones).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Server root, e.g. `https://acme.odoo.com`.
    pub base_url: String,
    /// Database name.
    pub database: String,
    #[serde(default)]
    pub protocol: Protocol,
    /// Login (JSON-RPC only).
    pub login: Option<String>,
    /// API key (or password, JSON-RPC only).
    pub api_key: SecretSource,
    /// Server major version: 16 names the MO dates `date_planned_start/finished`.
    #[serde(default = "default_version")]
    pub version: u8,
    /// Records per page.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// The `mrp.bom` field naming the revision (`code`; `version` with the PLM app).
    #[serde(default = "default_revision_field")]
    pub bom_revision_field: String,
}

fn default_version() -> u8 {
    17
}
fn default_page_size() -> u32 {
    200
}
fn default_revision_field() -> String {
    "code".to_owned()
}

/// An Odoo database.
pub struct Odoo {
    settings: Settings,
    transport: transport::Transport,
}

const KINDS: &[RecordKind] = &[RecordKind::Materials, RecordKind::Boms, RecordKind::Orders];

impl Odoo {
    /// A connector for `settings`, sending through `http`.
    pub fn new(mut settings: Settings, http: Http) -> Result<Self, ConnectorError> {
        settings.base_url =
            tracery_connector::settings::site(&settings.base_url, settings.page_size)?;
        let transport = transport::Transport::new(&settings, http)?;
        Ok(Self {
            settings,
            transport,
        })
    }

    /// One page of `model` records changed since `cursor.since`.
    async fn search_read(
        &self,
        model: &str,
        fields: &[&str],
        cursor: &Cursor,
    ) -> Result<(Vec<Value>, u64), ConnectorError> {
        let offset = match &cursor.position {
            Position::Start => 0,
            Position::Offset(offset) => *offset,
            Position::Next(link) => {
                return Err(ConnectorError::Config(format!(
                    "Odoo pages by offset, not by link `{link}`"
                )));
            }
        };
        let domain = match &cursor.since {
            Some(since) => json!([["write_date", ">=", since]]),
            None => json!([]),
        };
        let kwargs = json!({
            "domain": domain,
            "fields": fields,
            "offset": offset,
            "limit": self.settings.page_size,
            "order": "write_date asc, id asc",
            "context": {"active_test": false},
        });
        let rows = self.transport.call(model, "search_read", kwargs).await?;
        let rows = rows.as_array().cloned().ok_or_else(|| {
            ConnectorError::malformed(
                "result",
                format!("{model}.search_read did not return a list"),
            )
        })?;
        Ok((rows, offset))
    }

    /// `field` of the `model` records with `ids`, by id (one call).
    async fn read_field(
        &self,
        model: &str,
        ids: BTreeSet<i64>,
        field: &str,
    ) -> Result<HashMap<i64, Value>, ConnectorError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let kwargs = json!({
            "domain": [["id", "in", ids.iter().collect::<Vec<_>>()]],
            "fields": [field],
            "context": {"active_test": false},
        });
        let rows = self.transport.call(model, "search_read", kwargs).await?;
        Ok(rows
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|row| Some((row.get("id")?.as_i64()?, row.get(field)?.clone())))
            .collect())
    }

    /// Item codes (`default_code`) of the products and templates `rows` reference.
    async fn codes(
        &self,
        rows: &[Value],
        product_fields: &[&str],
        template_field: Option<&str>,
    ) -> Result<map::Codes, ConnectorError> {
        let ids = |field: &str| -> BTreeSet<i64> {
            rows.iter()
                .filter_map(|r| map::many2one_id(r.get(field)?))
                .collect()
        };
        let mut products = BTreeSet::new();
        for field in product_fields {
            products.extend(ids(field));
        }
        let templates = template_field.map(ids).unwrap_or_default();
        Ok(map::Codes {
            products: self
                .read_field("product.product", products, "default_code")
                .await?,
            templates: self
                .read_field("product.template", templates, "default_code")
                .await?,
        })
    }

    fn page(&self, rows: &[Value], offset: u64, records: Vec<tracery_connector::Fetched>) -> Page {
        let high_water = rows
            .iter()
            .filter_map(|r| {
                r.get("write_date")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .max();
        let next = (rows.len() as u64 >= u64::from(self.settings.page_size))
            .then(|| Position::Offset(offset + rows.len() as u64));
        Page {
            records,
            high_water,
            next,
        }
    }
}

#[async_trait::async_trait]
impl Connector for Odoo {
    fn system(&self) -> &'static str {
        "odoo"
    }

    fn kinds(&self) -> &'static [RecordKind] {
        KINDS
    }

    #[tracing::instrument(skip(self), fields(system = "odoo"))]
    async fn fetch(&self, kind: RecordKind, cursor: &Cursor) -> Result<Page, ConnectorError> {
        match kind {
            RecordKind::Materials => {
                let fields = [
                    "id",
                    "default_code",
                    "name",
                    "barcode",
                    "uom_id",
                    "active",
                    "write_date",
                ];
                let (rows, offset) = self.search_read("product.product", &fields, cursor).await?;
                let records = rows.iter().map(map::material).collect();
                Ok(self.page(&rows, offset, records))
            }
            RecordKind::Boms => {
                let revision = self.settings.bom_revision_field.as_str();
                let fields = [
                    "id",
                    revision,
                    "type",
                    "active",
                    "product_tmpl_id",
                    "product_id",
                    "product_qty",
                    "product_uom_id",
                    "bom_line_ids",
                    "write_date",
                ];
                let (rows, offset) = self.search_read("mrp.bom", &fields, cursor).await?;
                let bom_ids: Vec<i64> = rows.iter().filter_map(|r| r.get("id")?.as_i64()).collect();
                let lines = if bom_ids.is_empty() {
                    Vec::new()
                } else {
                    let kwargs = json!({
                        "domain": [["bom_id", "in", bom_ids]],
                        "fields": ["id", "bom_id", "product_id", "product_qty", "product_uom_id", "sequence"],
                        "order": "sequence asc, id asc",
                    });
                    let lines = self
                        .transport
                        .call("mrp.bom.line", "search_read", kwargs)
                        .await?;
                    lines.as_array().cloned().unwrap_or_default()
                };
                let mut referencing = rows.clone();
                referencing.extend(lines.iter().cloned());
                let codes = self
                    .codes(&referencing, &["product_id"], Some("product_tmpl_id"))
                    .await?;
                let records = rows
                    .iter()
                    .map(|row| map::bom(row, &lines, &codes, revision))
                    .collect();
                Ok(self.page(&rows, offset, records))
            }
            RecordKind::Orders => {
                let (start, end) = if self.settings.version <= 16 {
                    ("date_planned_start", "date_planned_finished")
                } else {
                    ("date_start", "date_finished")
                };
                let fields = [
                    "id",
                    "name",
                    "state",
                    "product_id",
                    "product_qty",
                    "product_uom_id",
                    start,
                    end,
                    "bom_id",
                    "company_id",
                    "location_src_id",
                    "location_dest_id",
                    "write_date",
                ];
                let (rows, offset) = self.search_read("mrp.production", &fields, cursor).await?;
                let codes = self.codes(&rows, &["product_id"], None).await?;
                let bom_ids: BTreeSet<i64> = rows
                    .iter()
                    .filter_map(|r| map::many2one_id(r.get("bom_id")?))
                    .collect();
                let revisions = self
                    .read_field("mrp.bom", bom_ids, &self.settings.bom_revision_field)
                    .await?;
                let records = rows
                    .iter()
                    .map(|row| map::order(row, &codes, &revisions, (start, end)))
                    .collect();
                Ok(self.page(&rows, offset, records))
            }
        }
    }

    fn post_back(&self) -> Option<&dyn tracery_connector::PostBack> {
        Some(self)
    }
}
