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
    ConnectorError, Fetched,
    fields::Fields,
    http::{self, Http, Repeat},
    parts::{self, BomFields, PartCatalogue, PartListing, PartUse},
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

impl Windchill {
    /// A connector for `settings`, sending through `http`.
    pub fn new(mut settings: Settings, http: Http) -> Result<Self, ConnectorError> {
        settings.base_url =
            tracery_connector::settings::site(&settings.base_url, settings.page_size)?;
        Ok(Self {
            settings,
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

/// An enumerated property's `Value`, or a plain string; `field` is a name or a JSON
/// pointer.
fn enumerated(
    f: &Fields,
    field: &str,
) -> Result<Option<String>, tracery_connector::paging::Malformed> {
    match f.value(field) {
        Some(Value::Object(_)) => {
            let pointer = if field.starts_with('/') {
                format!("{field}/Value")
            } else {
                format!("/{field}/Value")
            };
            f.opt_text(&pointer)
        }
        _ => f.opt_text(field),
    }
}

fn material(part: &Value) -> Fetched {
    let f = Fields::new(part, "Number");
    let unit = enumerated(&f, "DefaultUnit")?.unwrap_or_else(|| "ea".to_owned());
    parts::material_record(
        f.text("Number")?,
        f.opt_text("Name")?,
        unit,
        f.opt_text("Version")?,
    )
}

fn bom(part: &Fields, components: &[Value]) -> Fetched {
    let fields = BomFields {
        number: "Number",
        revision: "Version",
        lines: "Components",
        line_key: "/Part/Number",
    };
    parts::bom_record(part, fields, components, |component| {
        Ok(PartUse {
            component: component.text("/Part/Number")?,
            quantity_per: component.decimal("/PartUse/Quantity")?,
            unit: enumerated(component, "/PartUse/Unit")?.unwrap_or_else(|| "ea".to_owned()),
        })
    })
}

#[async_trait::async_trait]
impl PartCatalogue for Windchill {
    fn system(&self) -> &'static str {
        "windchill"
    }

    fn listing(&self) -> PartListing {
        PartListing {
            url: self.odata("ProdMgmt/Parts"),
            select: None,
            number_field: "Number",
            id_field: "ID",
            changed_field: "LastModified",
            order_by: "LastModified,ID",
            page_size: self.settings.page_size,
        }
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

    fn material(&self, part: &Value) -> Fetched {
        material(part)
    }

    /// The first level of the part's structure, through the `GetPartStructure` action.
    async fn bom_lines(&self, id: &str) -> Result<Vec<Value>, ConnectorError> {
        let url = self.odata(&format!(
            "ProdMgmt/Parts('{id}')/PTC.ProdMgmt.GetPartStructure"
        ));
        let query = [(
            "$expand",
            "Components($expand=Part,PartUse,Occurrence)".to_owned(),
        )];
        let body = self.post_action(&url, &query, &json!({})).await?;
        Ok(body
            .pointer("/value/0/Components")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    fn bom(&self, part: &Fields, lines: &[Value]) -> Fetched {
        bom(part, lines)
    }
}
