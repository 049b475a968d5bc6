//! Tracery connector for ERPNext / Frappe (REST v1, `/api/resource/<DocType>`, v13–v16).
//!
//! - Items from `Item`, BOMs from `BOM` (each BOM document is one revision: ERPNext has no
//!   revision field and names changed BOMs `…-001`, `…-002`), work orders from
//!   `Work Order`; submitted documents only for BOMs.
//! - Incremental by `modified` (naive, in the site's time zone) with `>=`, ordered by
//!   `modified, name`, paged with `limit_start` / `limit_page_length` until a short page
//!   (Frappe silently caps unpaged lists at 20 rows).
//! - Auth: `Authorization: token key:secret`, or a password session (`/api/method/login`,
//!   `sid` cookie) that is opened again once when it expires.
//! - Production goes back as a submitted `Stock Entry` of type Manufacture carrying our
//!   reference in a custom field (see [`postback`]).

mod map;
pub mod postback;
pub mod zone;

use serde::Deserialize;
use tokio::sync::Mutex;
use tracery_connector::secret::{Secret, SecretSource};
use tracery_connector::{
    Connector, ConnectorError, Cursor, Page, Position, RecordKind,
    http::{self, Http, Repeat},
};
pub use zone::SiteZone;

/// `[connectors.<name>]` settings of an ERPNext connector (besides the common ones).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Site root, e.g. `https://acme.frappe.cloud`.
    pub base_url: String,
    /// API key and secret (token auth) …
    pub api_key: Option<SecretSource>,
    pub api_secret: Option<SecretSource>,
    /// … or a user and password (session auth).
    pub user: Option<String>,
    pub password: Option<SecretSource>,
    /// Rows per page.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// The site's time zone (IANA, e.g. `Europe/Berlin`): Frappe sends naive local times,
    /// and this converts them with the daylight saving time of their date.
    pub time_zone: Option<String>,
    /// A fixed UTC offset instead (`+01:00`), for a site without daylight saving time;
    /// UTC when neither is set.
    pub utc_offset: Option<String>,
    /// An Item field holding the GTIN (ERPNext keeps barcodes in a child table that
    /// lists do not return; plants usually add a custom field).
    pub gtin_field: Option<String>,
    /// The custom Stock Entry field holding our posting reference (Frappe has no
    /// idempotency key).
    #[serde(default = "default_reference_field")]
    pub reference_field: String,
    /// Warehouses of posted stock entries: components are issued from `wip_warehouse`,
    /// the finished item received into `fg_warehouse` (ERPNext takes the work order's own
    /// when they are absent).
    pub wip_warehouse: Option<String>,
    pub fg_warehouse: Option<String>,
}

fn default_reference_field() -> String {
    "custom_mes_event_id".to_owned()
}

fn default_page_size() -> u32 {
    100
}

/// How requests are authenticated.
#[derive(Debug)]
enum Auth {
    Token {
        key: SecretSource,
        secret: SecretSource,
    },
    Session {
        user: String,
        password: SecretSource,
    },
}

/// An ERPNext site.
pub struct ErpNext {
    base_url: String,
    auth: Auth,
    page_size: u32,
    zone: SiteZone,
    gtin_field: Option<String>,
    reference_field: String,
    wip_warehouse: Option<String>,
    fg_warehouse: Option<String>,
    http: Http,
    /// Held while a session login runs, so concurrent callers log in once.
    login: Mutex<bool>,
}

const KINDS: &[RecordKind] = &[RecordKind::Materials, RecordKind::Boms, RecordKind::Orders];

impl ErpNext {
    /// A connector for `settings`, sending through `http`.
    pub fn new(settings: Settings, http: Http) -> Result<Self, ConnectorError> {
        let auth = match settings {
            Settings {
                api_key: Some(key),
                api_secret: Some(secret),
                user: None,
                password: None,
                ..
            } => Auth::Token { key, secret },
            Settings {
                api_key: None,
                api_secret: None,
                user: Some(ref user),
                password: Some(ref password),
                ..
            } => Auth::Session {
                user: user.clone(),
                password: password.clone(),
            },
            _ => {
                return Err(ConnectorError::Config(
                    "set either api_key and api_secret, or user and password".to_owned(),
                ));
            }
        };
        let zone = SiteZone::from_settings(
            settings.time_zone.as_deref(),
            settings.utc_offset.as_deref(),
        )
        .map_err(ConnectorError::Config)?;
        Ok(Self {
            base_url: tracery_connector::settings::site(&settings.base_url, settings.page_size)?,
            auth,
            page_size: settings.page_size,
            zone,
            gtin_field: settings.gtin_field,
            reference_field: settings.reference_field,
            wip_warehouse: settings.wip_warehouse,
            fg_warehouse: settings.fg_warehouse,
            http,
            login: Mutex::new(false),
        })
    }

    fn secret(source: &SecretSource, setting: &str) -> Result<Secret, ConnectorError> {
        source
            .read(setting)
            .map_err(|err| ConnectorError::Config(err.to_string()))
    }

    /// The `Authorization` header, for token auth.
    fn token(&self) -> Result<Option<String>, ConnectorError> {
        match &self.auth {
            Auth::Token { key, secret } => Ok(Some(format!(
                "token {}:{}",
                Self::secret(key, "api_key")?.expose(),
                Self::secret(secret, "api_secret")?.expose()
            ))),
            Auth::Session { .. } => Ok(None),
        }
    }

    /// Opens a password session (the cookie store keeps `sid`); no-op for token auth.
    async fn log_in(&self, again: bool) -> Result<(), ConnectorError> {
        let Auth::Session { user, password } = &self.auth else {
            return Ok(());
        };
        let mut logged_in = self.login.lock().await;
        if *logged_in && !again {
            return Ok(());
        }
        let password = Self::secret(password, "password")?;
        let url = format!("{}/api/method/login", self.base_url);
        let body = serde_json::json!({"usr": user, "pwd": password.expose()});
        self.http
            .send(Repeat::Safe, || self.http.client().post(&url).json(&body))
            .await?;
        *logged_in = true;
        Ok(())
    }

    /// GETs `path` (already encoded) with `query`; see [`Self::call`].
    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<serde_json::Value, ConnectorError> {
        self.call(Repeat::Safe, reqwest::Method::GET, path, query, None)
            .await
    }

    /// Sends one request to `path` (already encoded), logging in again once if the
    /// credentials or the session were refused (a refused request changed nothing).
    async fn call(
        &self,
        repeat: Repeat,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, ConnectorError> {
        self.log_in(false).await?;
        let url = format!("{}{path}", self.base_url);
        let send = || async {
            let token = self.token()?;
            let response = self
                .http
                .send(repeat, || {
                    let mut request = self
                        .http
                        .client()
                        .request(method.clone(), &url)
                        .query(query);
                    if let Some(body) = body {
                        request = request.json(body);
                    }
                    match &token {
                        Some(token) => request.header(reqwest::header::AUTHORIZATION, token),
                        None => request,
                    }
                })
                .await?;
            http::json(response).await
        };
        match send().await {
            Err(ConnectorError::Auth(_) | ConnectorError::Forbidden(_))
                if matches!(self.auth, Auth::Session { .. }) =>
            {
                tracing::info!("ERPNext session refused; logging in again");
                self.log_in(true).await?;
                send().await
            }
            other => other,
        }
    }

    /// One page of `doctype` names and fields changed since `cursor.since`.
    async fn list(
        &self,
        doctype: &str,
        fields: &str,
        extra_filters: &[serde_json::Value],
        cursor: &Cursor,
    ) -> Result<(Vec<serde_json::Value>, u64), ConnectorError> {
        let offset = match &cursor.position {
            Position::Start => 0,
            Position::Offset(offset) => *offset,
            Position::Next(link) => {
                return Err(ConnectorError::Config(format!(
                    "ERPNext pages by offset, not by link `{link}`"
                )));
            }
        };
        let mut filters: Vec<serde_json::Value> = extra_filters.to_vec();
        if let Some(since) = &cursor.since {
            filters.push(serde_json::json!(["modified", ">=", since]));
        }
        let query = [
            ("fields", fields.to_owned()),
            ("filters", serde_json::Value::from(filters).to_string()),
            ("order_by", "modified asc, name asc".to_owned()),
            ("limit_start", offset.to_string()),
            ("limit_page_length", self.page_size.to_string()),
        ];
        let body = self.get(&resource_path(doctype, None), &query).await?;
        let rows = body
            .get("data")
            .and_then(|d| d.as_array())
            .cloned()
            .ok_or_else(|| ConnectorError::malformed("data", "the list has no `data` array"))?;
        Ok((rows, offset))
    }

    /// The page outcome: next offset unless the page was short.
    fn page(&self, rows: &[serde_json::Value], offset: u64) -> (Option<String>, Option<Position>) {
        let high_water = rows
            .iter()
            .filter_map(|r| {
                r.get("modified")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
            })
            .max();
        let next = (rows.len() as u64 >= u64::from(self.page_size))
            .then(|| Position::Offset(offset + rows.len() as u64));
        (high_water, next)
    }
}

/// What a path segment must not hold literally: names may contain `/`, spaces and `#`.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// `/api/resource/<DocType>[/<name>]`, each segment percent-encoded.
fn resource_path(doctype: &str, name: Option<&str>) -> String {
    use percent_encoding::utf8_percent_encode;
    let mut path = format!("/api/resource/{}", utf8_percent_encode(doctype, SEGMENT));
    if let Some(name) = name {
        path.push('/');
        path.extend(utf8_percent_encode(name, SEGMENT));
    }
    path
}

#[async_trait::async_trait]
impl Connector for ErpNext {
    fn system(&self) -> &'static str {
        "erpnext"
    }

    fn kinds(&self) -> &'static [RecordKind] {
        KINDS
    }

    #[tracing::instrument(skip(self), fields(system = "erpnext"))]
    async fn fetch(&self, kind: RecordKind, cursor: &Cursor) -> Result<Page, ConnectorError> {
        let (rows, offset, records) = match kind {
            RecordKind::Materials => {
                let (rows, offset) = self.list("Item", r#"["*"]"#, &[], cursor).await?;
                let records = rows
                    .iter()
                    .map(|row| map::material(row, self.gtin_field.as_deref()))
                    .collect();
                (rows, offset, records)
            }
            RecordKind::Orders => {
                let (rows, offset) = self.list("Work Order", r#"["*"]"#, &[], cursor).await?;
                let records = rows.iter().map(|row| map::order(row, self.zone)).collect();
                (rows, offset, records)
            }
            RecordKind::Boms => {
                let submitted = [serde_json::json!(["docstatus", "=", 1])];
                let (rows, offset) = self
                    .list("BOM", r#"["name","modified"]"#, &submitted, cursor)
                    .await?;
                // Lines come only with the whole document.
                let mut records = Vec::with_capacity(rows.len());
                for row in &rows {
                    let Some(name) = row.get("name").and_then(|n| n.as_str()) else {
                        records.push(Err(tracery_connector::fields::Fields::new(row, "name")
                            .malformed("name", "required but missing or empty")));
                        continue;
                    };
                    let document = self.get(&resource_path("BOM", Some(name)), &[]).await?;
                    records.push(map::bom(document.get("data").unwrap_or(&document)));
                }
                (rows, offset, records)
            }
        };
        let (high_water, next) = self.page(&rows, offset);
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
