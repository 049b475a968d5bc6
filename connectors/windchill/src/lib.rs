//! Tracery connector for PTC Windchill REST Services (ProdMgmt domain, OData v4): parts and
//! their single-level BOM structure, one BOM record per part version.
//!
//! - Basic auth; the session cookie (`JSESSIONID`) is kept by the client's cookie store.
//! - Parts changed since the cursor (`LastModified gt …`), `$top`/`$skip`, following
//!   `@odata.nextLink`. Enumerated properties arrive as `{Value, Display}` objects.
//! - BOMs through the `GetPartStructure` action, a POST that needs the CSRF nonce from
//!   `PTC/GetCSRFToken()` in the same session; a refused nonce is fetched again once.

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tracery_connector::secret::{Secret, SecretSource};
use tracery_connector::{
    Bom, BomLine, Connector, ConnectorError, Cursor, Fetched, Material, Page, Position, Record,
    RecordKind,
    fields::Fields,
    http::{self, Http, Repeat},
    paging::{ODataRequest, odata4_page, odata4_request},
    parts::{self, PartCatalogue},
};

/// `[connectors.<name>]` settings of a Windchill connector (besides the common ones).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Windchill root, e.g. `https://plm.example.com/Windchill`.
    pub base_url: String,
    pub user: String,
    pub password: SecretSource,
    #[serde(default = "default_page_size")]
    pub page_size: u32,
}

fn default_page_size() -> u32 {
    100
}

/// A Windchill server.
pub struct Windchill {
    settings: Settings,
    http: Http,
    nonce: Mutex<Option<String>>,
}

const KINDS: &[RecordKind] = &[RecordKind::Materials, RecordKind::Boms];

impl Windchill {
    /// A connector for `settings`, sending through `http`.
    pub fn new(settings: Settings, http: Http) -> Result<Self, ConnectorError> {
        if settings.page_size == 0 {
            return Err(ConnectorError::Config(
                "page_size must be at least 1".to_owned(),
            ));
        }
        Ok(Self {
            settings: Settings {
                base_url: settings.base_url.trim_end_matches('/').to_owned(),
                ..settings
            },
            http,
            nonce: Mutex::new(None),
        })
    }

    fn password(&self) -> Result<Secret, ConnectorError> {
        self.settings
            .password
            .read("password")
            .map_err(|err| ConnectorError::Config(err.to_string()))
    }

    fn odata(&self, path: &str) -> String {
        format!("{}/servlet/odata/{path}", self.settings.base_url)
    }

    async fn get(&self, url: &str, query: &[(&str, String)]) -> Result<Value, ConnectorError> {
        let password = self.password()?;
        let response = self
            .http
            .send(Repeat::Safe, || {
                self.http
                    .client()
                    .get(url)
                    .basic_auth(&self.settings.user, Some(password.expose()))
                    .header(reqwest::header::ACCEPT, "application/json")
                    .query(query)
            })
            .await?;
        http::json(response).await
    }

    /// The CSRF nonce of this session, fetched when there is none or `renew` is set.
    async fn nonce(&self, renew: bool) -> Result<String, ConnectorError> {
        let mut nonce = self.nonce.lock().await;
        if let (Some(nonce), false) = (nonce.as_ref(), renew) {
            return Ok(nonce.clone());
        }
        let body = self.get(&self.odata("PTC/GetCSRFToken()"), &[]).await?;
        let value = body
            .get("NonceValue")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ConnectorError::malformed("NonceValue", "missing from GetCSRFToken()")
            })?;
        *nonce = Some(value.to_owned());
        Ok(value.to_owned())
    }

    /// POSTs an action with the session's CSRF nonce, fetching a new nonce once if refused.
    /// Bound actions such as `GetPartStructure` only read, so they are retried like reads.
    async fn post_action(
        &self,
        url: &str,
        query: &[(&str, String)],
        body: &Value,
    ) -> Result<Value, ConnectorError> {
        let password = self.password()?;
        for attempt in 0..2 {
            let nonce = self.nonce(attempt > 0).await?;
            let result = self
                .http
                .send(Repeat::Safe, || {
                    self.http
                        .client()
                        .post(url)
                        .basic_auth(&self.settings.user, Some(password.expose()))
                        .header(reqwest::header::ACCEPT, "application/json")
                        .header("CSRF_NONCE", &nonce)
                        .query(query)
                        .json(body)
                })
                .await;
            match result {
                // Windchill refuses a stale nonce as forbidden (or as a CSRF failure).
                Err(ConnectorError::Forbidden(reason) | ConnectorError::Csrf(reason))
                    if attempt == 0 =>
                {
                    tracing::info!(%reason, "Windchill refused the CSRF nonce; fetching a new one");
                }
                other => return http::json(other?).await,
            }
        }
        Err(ConnectorError::Csrf("nonce refused twice".to_owned()))
    }
}

/// An enumerated property's `Value`, or a plain string.
fn enumerated(
    f: &Fields,
    field: &str,
) -> Result<Option<String>, tracery_connector::paging::Malformed> {
    match f.value(field) {
        Some(Value::Object(_)) => f.opt_text(&format!("/{field}/Value")),
        _ => f.opt_text(field),
    }
}

fn material(part: &Value) -> Fetched {
    let f = Fields::new(part, "Number");
    let item_code = f.text("Number")?;
    Ok(Record::Material(Material {
        description: f.opt_text("Name")?.unwrap_or_else(|| item_code.clone()),
        gtin: None,
        unit: enumerated(&f, "DefaultUnit")?.unwrap_or_else(|| "ea".to_owned()),
        revision: f.opt_text("Version")?,
        item_code,
    }))
}

fn bom(part: &Fields, components: &[Value]) -> Fetched {
    let mut lines = Vec::with_capacity(components.len());
    for (index, component) in components.iter().enumerate() {
        let c = Fields::new(component, "/Part/Number");
        let at = |m: tracery_connector::paging::Malformed| {
            part.malformed(&format!("Components/{index}/{}", m.field), m.reason)
        };
        let unit = match c.value("/PartUse/Unit") {
            Some(Value::Object(_)) => c.opt_text("/PartUse/Unit/Value").map_err(at)?,
            _ => c.opt_text("/PartUse/Unit").map_err(at)?,
        };
        lines.push(BomLine {
            component: c.text("/Part/Number").map_err(at)?,
            quantity_per: c.decimal("/PartUse/Quantity").map_err(at)?,
            unit: unit.unwrap_or_else(|| "ea".to_owned()),
            scrap_percent: rust_decimal::Decimal::ZERO,
            alternative_group: None,
        });
    }
    Ok(Record::Bom(Bom {
        material: part.text("Number")?,
        revision: part.text("Version")?,
        valid_from: None,
        valid_to: None,
        lines,
    }))
}

#[async_trait::async_trait]
impl Connector for Windchill {
    fn system(&self) -> &'static str {
        "windchill"
    }

    fn kinds(&self) -> &'static [RecordKind] {
        KINDS
    }

    #[tracing::instrument(skip(self), fields(system = "windchill"))]
    async fn fetch(&self, kind: RecordKind, cursor: &Cursor) -> Result<Page, ConnectorError> {
        parts::fetch(self, kind, cursor).await
    }
}

#[async_trait::async_trait]
impl PartCatalogue for Windchill {
    fn changed_field(&self) -> &'static str {
        "LastModified"
    }

    /// One page of parts changed since `cursor.since`.
    async fn parts(
        &self,
        cursor: &Cursor,
    ) -> Result<(Vec<Value>, Option<Position>), ConnectorError> {
        let top = self.settings.page_size;
        let (body, skip) = match odata4_request(cursor, top, "LastModified,ID", "LastModified") {
            ODataRequest::Link(link) => (self.get(&link, &[]).await?, None),
            ODataRequest::Query(query, skip) => (
                self.get(&self.odata("ProdMgmt/Parts"), &query).await?,
                Some(skip),
            ),
        };
        odata4_page(&body, skip, top)
    }

    fn material(&self, part: &Value) -> Fetched {
        material(part)
    }

    async fn bom(&self, part: &Value) -> Result<Option<Fetched>, ConnectorError> {
        let f = Fields::new(part, "Number");
        let id = match f.text("ID") {
            Ok(id) => id,
            Err(malformed) => return Ok(Some(Err(malformed))),
        };
        let url = self.odata(&format!(
            "ProdMgmt/Parts('{id}')/PTC.ProdMgmt.GetPartStructure"
        ));
        let query = [(
            "$expand",
            "Components($expand=Part,PartUse,Occurrence)".to_owned(),
        )];
        let body = self.post_action(&url, &query, &json!({})).await?;
        let components = body
            .pointer("/value/0/Components")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if components.is_empty() {
            return Ok(None);
        }
        Ok(Some(bom(&f, &components)))
    }
}
