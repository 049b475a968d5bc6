//! Tracery connector for SAP S/4HANA (Cloud or on-premise) over its OData v2 APIs.
//!
//! - Production orders from `API_PRODUCTION_ORDER_2_SRV/A_ProductionOrder_2`, material
//!   BOMs (production usage) with their items from `API_BILL_OF_MATERIAL_SRV;v=0002`,
//!   products from `API_PRODUCT_SRV/A_Product`.
//! - Incremental by `LastChangeDateTime`, which some releases declare as a 14-character
//!   string and others as `Edm.DateTimeOffset`: the plant configuration says which.
//!   Paged with `$top`/`$skip`, following the server's `__next` link verbatim when it
//!   caps a page.
//! - Basic auth (communication user) or OAuth 2.0 client credentials, the token fetched
//!   again once when refused. Writes fetch a CSRF token from the service root (trailing
//!   slash) and send it with the session cookies; a `403 x-csrf-token: Required` fetches
//!   a new one and retries once.
//! - Production goes back as order confirmations with goods movements
//!   (`API_PROD_ORDER_CONFIRMATION_2_SRV`, see [`postback`]).

mod map;
pub mod postback;

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;
use tracery_connector::secret::SecretSource;
use tracery_connector::{
    Connector, ConnectorError, Cursor, Page, Position, RecordKind,
    http::{self, Http, Repeat},
};

/// How `LastChangeDateTime` is declared in the tenant's `$metadata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeTime {
    /// `YYYYMMDDhhmmss` text: `LastChangeDateTime ge '20250301000000'`.
    #[default]
    Text,
    /// `Edm.DateTimeOffset`: `LastChangeDateTime ge datetimeoffset'2025-03-01T00:00:00Z'`.
    DateTimeOffset,
}

/// `[connectors.<name>]` settings of an SAP S/4HANA connector (besides the common ones).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// API host, e.g. `https://my123456-api.s4hana.cloud.sap`.
    pub base_url: String,
    /// Communication user (basic auth) …
    pub user: Option<String>,
    pub password: Option<SecretSource>,
    /// … or OAuth 2.0 client credentials.
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretSource>,
    /// On-premise client (`sap-client`), if any.
    pub sap_client: Option<String>,
    /// Only this plant's orders and BOMs.
    pub plant: Option<String>,
    /// Rows per page (`$top`).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    #[serde(default)]
    pub change_time: ChangeTime,
    /// Service paths, for tenants on other API versions.
    #[serde(default = "default_order_service")]
    pub order_service: String,
    #[serde(default = "default_bom_service")]
    pub bom_service: String,
    #[serde(default = "default_product_service")]
    pub product_service: String,
    #[serde(default = "default_confirmation_service")]
    pub confirmation_service: String,
    /// The operation confirmations are posted against.
    #[serde(default = "default_confirmation_operation")]
    pub confirmation_operation: String,
    /// Storage location of the goods movements, when the plant does not default one.
    pub storage_location: Option<String>,
}

fn default_confirmation_service() -> String {
    "API_PROD_ORDER_CONFIRMATION_2_SRV".to_owned()
}
fn default_confirmation_operation() -> String {
    "0010".to_owned()
}

fn default_page_size() -> u32 {
    200
}
fn default_order_service() -> String {
    "API_PRODUCTION_ORDER_2_SRV".to_owned()
}
fn default_bom_service() -> String {
    "API_BILL_OF_MATERIAL_SRV;v=0002".to_owned()
}
fn default_product_service() -> String {
    "API_PRODUCT_SRV".to_owned()
}

#[derive(Debug)]
enum Auth {
    Basic {
        user: String,
        password: SecretSource,
    },
    OAuth {
        token_url: String,
        client_id: String,
        client_secret: SecretSource,
    },
}

/// Credentials for one request.
enum Authorization {
    Basic {
        user: String,
        password: tracery_connector::secret::Secret,
    },
    Bearer(String),
}

/// Adds [`Authorization`] to a request.
trait Authorize {
    fn apply(self, authorization: &Authorization) -> Self;
}

impl Authorize for reqwest::RequestBuilder {
    fn apply(self, authorization: &Authorization) -> Self {
        match authorization {
            Authorization::Basic { user, password } => {
                self.basic_auth(user, Some(password.expose()))
            }
            Authorization::Bearer(token) => self.bearer_auth(token),
        }
    }
}

/// An SAP S/4HANA tenant.
pub struct SapS4 {
    settings: Settings,
    auth: Auth,
    http: Http,
    /// The OAuth access token, fetched once and again when refused.
    token: Mutex<Option<String>>,
    /// The CSRF token per service root, for writes.
    csrf: Mutex<Option<(String, String)>>,
}

const KINDS: &[RecordKind] = &[RecordKind::Materials, RecordKind::Boms, RecordKind::Orders];

fn config(reason: &str) -> ConnectorError {
    ConnectorError::Config(reason.to_owned())
}

impl SapS4 {
    /// A connector for `settings`, sending through `http`.
    pub fn new(mut settings: Settings, http: Http) -> Result<Self, ConnectorError> {
        let auth = match (&settings.user, &settings.password, &settings.token_url) {
            (Some(user), Some(password), None) => Auth::Basic {
                user: user.clone(),
                password: password.clone(),
            },
            (None, None, Some(token_url)) => Auth::OAuth {
                token_url: token_url.clone(),
                client_id: settings
                    .client_id
                    .clone()
                    .ok_or_else(|| config("OAuth needs client_id"))?,
                client_secret: settings
                    .client_secret
                    .clone()
                    .ok_or_else(|| config("OAuth needs client_secret"))?,
            },
            _ => {
                return Err(config(
                    "set either user and password, or token_url with client_id and client_secret",
                ));
            }
        };
        settings.base_url =
            tracery_connector::settings::site(&settings.base_url, settings.page_size)?;
        Ok(Self {
            settings,
            auth,
            http,
            token: Mutex::new(None),
            csrf: Mutex::new(None),
        })
    }

    fn service_url(&self, service: &str) -> String {
        format!("{}/sap/opu/odata/sap/{service}", self.settings.base_url)
    }

    /// The `Authorization` header; OAuth fetches a token when none is cached.
    async fn authorization(&self, renew: bool) -> Result<Authorization, ConnectorError> {
        let read = |source: &SecretSource, setting: &str| {
            source
                .read(setting)
                .map_err(|err| ConnectorError::Config(err.to_string()))
        };
        match &self.auth {
            Auth::Basic { user, password } => Ok(Authorization::Basic {
                user: user.clone(),
                password: read(password, "password")?,
            }),
            Auth::OAuth {
                token_url,
                client_id,
                client_secret,
            } => {
                let mut token = self.token.lock().await;
                if renew || token.is_none() {
                    let secret = read(client_secret, "client_secret")?;
                    let form = [
                        ("grant_type", "client_credentials"),
                        ("client_id", client_id.as_str()),
                        ("client_secret", secret.expose()),
                    ];
                    let response = self
                        .http
                        .send(Repeat::Safe, || {
                            self.http.client().post(token_url).form(&form)
                        })
                        .await?;
                    let body = http::json(response).await?;
                    *token = Some(http::access_token(&body)?);
                }
                Ok(Authorization::Bearer(token.clone().unwrap_or_default()))
            }
        }
    }

    /// GETs `url` with `query` as JSON, renewing an OAuth token once when refused.
    async fn get(&self, url: &str, query: &[(&str, String)]) -> Result<Value, ConnectorError> {
        let request = |authorization: &Authorization| {
            let request = self
                .http
                .client()
                .get(url)
                .header(reqwest::header::ACCEPT, "application/json")
                .apply(authorization)
                .query(query);
            match &self.settings.sap_client {
                Some(client) if !url.contains("sap-client=") => {
                    request.query(&[("sap-client", client)])
                }
                _ => request,
            }
        };
        let renewable = matches!(self.auth, Auth::OAuth { .. });
        self.http
            .get_renewing(
                "sap_s4",
                renewable,
                |renew| self.authorization(renew),
                request,
            )
            .await
    }

    /// POSTs `body` to `path` under `service` with a CSRF token, fetching a new token
    /// once when SAP answers `x-csrf-token: Required`. Not retried after sending: a write
    /// whose answer was lost must be checked before it is sent again.
    pub async fn post(
        &self,
        service: &str,
        path: &str,
        body: &Value,
    ) -> Result<Value, ConnectorError> {
        let root = format!("{}/", self.service_url(service));
        let url = format!("{}{path}", self.service_url(service));
        for attempt in 0..2 {
            let token = self.csrf_token(&root, attempt > 0).await?;
            let authorization = self.authorization(false).await?;
            let result = self
                .http
                .send(Repeat::Once, || {
                    self.http
                        .client()
                        .post(&url)
                        .header(reqwest::header::ACCEPT, "application/json")
                        .apply(&authorization)
                        .header("x-csrf-token", &token)
                        .json(body)
                })
                .await;
            match result {
                Err(ConnectorError::Csrf(reason)) if attempt == 0 => {
                    tracing::info!(%reason, "SAP refused the CSRF token; fetching a new one");
                }
                other => return http::json(other?).await,
            }
        }
        Err(ConnectorError::Csrf("refused twice".to_owned()))
    }

    /// The CSRF token for the service at `root`, fetched (with its session cookies, kept
    /// by the client's cookie store) when there is none or `renew` is set.
    async fn csrf_token(&self, root: &str, renew: bool) -> Result<String, ConnectorError> {
        let mut cached = self.csrf.lock().await;
        if !renew
            && let Some((for_root, token)) = cached.as_ref()
            && for_root == root
        {
            return Ok(token.clone());
        }
        let authorization = self.authorization(false).await?;
        let response = self
            .http
            .send(Repeat::Safe, || {
                self.http
                    .client()
                    .get(root)
                    .apply(&authorization)
                    .header("x-csrf-token", "Fetch")
            })
            .await?;
        let token = response
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("required"))
            .ok_or_else(|| {
                ConnectorError::Csrf("the service root sent no x-csrf-token".to_owned())
            })?
            .to_owned();
        *cached = Some((root.to_owned(), token.clone()));
        Ok(token)
    }

    /// The `$filter` on change time since `since`, and on the plant.
    fn filter(
        &self,
        plant_field: Option<&str>,
        fixed: &[&str],
        since: Option<&str>,
    ) -> Option<String> {
        let mut terms: Vec<String> = fixed.iter().map(|t| (*t).to_owned()).collect();
        if let (Some(field), Some(plant)) = (plant_field, &self.settings.plant) {
            terms.push(format!("{field} eq '{}'", plant.replace('\'', "''")));
        }
        if let Some(since) = since {
            terms.push(match self.settings.change_time {
                ChangeTime::Text => format!("LastChangeDateTime ge '{since}'"),
                ChangeTime::DateTimeOffset => {
                    format!("LastChangeDateTime ge datetimeoffset'{since}'")
                }
            });
        }
        (!terms.is_empty()).then(|| terms.join(" and "))
    }

    /// One page of `entity_set` under `service`.
    async fn page(
        &self,
        service: &str,
        entity_set: &str,
        filter: Option<String>,
        key_field: &str,
        expand: Option<&str>,
        cursor: &Cursor,
    ) -> Result<(Vec<Value>, Option<Position>), ConnectorError> {
        let top = self.settings.page_size;
        let (body, skip) = match &cursor.position {
            Position::Next(link) => (self.get(link, &[]).await?, None),
            position => {
                let skip = match position {
                    Position::Offset(skip) => *skip,
                    _ => 0,
                };
                let mut query = vec![
                    ("$format", "json".to_owned()),
                    (
                        "$orderby",
                        format!("LastChangeDateTime asc,{key_field} asc"),
                    ),
                    ("$top", top.to_string()),
                    ("$skip", skip.to_string()),
                ];
                if let Some(filter) = filter {
                    query.push(("$filter", filter));
                }
                if let Some(expand) = expand {
                    query.push(("$expand", expand.to_owned()));
                }
                let url = format!("{}/{entity_set}", self.service_url(service));
                (self.get(&url, &query).await?, Some(skip))
            }
        };
        let rows = body
            .pointer("/d/results")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| ConnectorError::malformed("d/results", "not an OData v2 collection"))?;
        let next_link = body.pointer("/d/__next").and_then(Value::as_str);
        let next = tracery_connector::paging::next_position(next_link, skip, rows.len(), top);
        Ok((rows, next))
    }
}

#[async_trait::async_trait]
impl Connector for SapS4 {
    fn system(&self) -> &'static str {
        "sap_s4"
    }

    fn kinds(&self) -> &'static [RecordKind] {
        KINDS
    }

    #[tracing::instrument(skip(self), fields(system = "sap_s4"))]
    async fn fetch(&self, kind: RecordKind, cursor: &Cursor) -> Result<Page, ConnectorError> {
        let since = cursor.since.as_deref();
        let change_time = self.settings.change_time;
        let (rows, next, records) = match kind {
            RecordKind::Orders => {
                let filter = self.filter(Some("ProductionPlant"), &[], since);
                let (rows, next) = self
                    .page(
                        &self.settings.order_service,
                        "A_ProductionOrder_2",
                        filter,
                        "ManufacturingOrder",
                        None,
                        cursor,
                    )
                    .await?;
                let records = rows.iter().map(map::order).collect();
                (rows, next, records)
            }
            RecordKind::Boms => {
                let filter =
                    self.filter(Some("Plant"), &["BillOfMaterialVariantUsage eq '1'"], since);
                let (rows, next) = self
                    .page(
                        &self.settings.bom_service,
                        "MaterialBOM",
                        filter,
                        "BillOfMaterial",
                        Some("to_BillOfMaterialItem"),
                        cursor,
                    )
                    .await?;
                let records = rows.iter().map(map::bom).collect();
                (rows, next, records)
            }
            RecordKind::Materials => {
                let filter = self.filter(None, &[], since);
                let (rows, next) = self
                    .page(
                        &self.settings.product_service,
                        "A_Product",
                        filter,
                        "Product",
                        Some("to_Description"),
                        cursor,
                    )
                    .await?;
                let records = rows.iter().map(map::material).collect();
                (rows, next, records)
            }
        };
        let high_water = rows
            .iter()
            .filter_map(|row| map::change_time(row, change_time))
            .max();
        Ok(Page {
            records,
            high_water,
            next,
        })
    }

    fn post_back(&self) -> Option<&dyn tracery_connector::PostBack> {
        Some(self)
    }
}
