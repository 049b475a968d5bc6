//! Tracery connector for Aras Innovator 12+ (REST / OData v4): parts and their
//! engineering BOMs (`Part BOM` relationships), one BOM record per part revision.
//!
//! - Token from the Aras OAuth server (`grant_type=password`, the password sent as its MD5
//!   hex digest, as Aras expects), fetched again once when a call is refused.
//! - Parts changed since the cursor (`modified_on gt …`), `$top`/`$skip`, following
//!   `@odata.nextLink` when the server sends one. A new generation is a new `id`, so a
//!   part is keyed by item number and revision (`major_rev`); older revisions stay stored.
//! - Each changed part's `Part BOM` is read with the related parts expanded; parts without
//!   BOM lines give no BOM.

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;
use tracery_connector::secret::SecretSource;
use tracery_connector::{
    ConnectorError, Fetched,
    fields::Fields,
    http::{self, Http, Repeat},
    parts::{self, BomFields, PartCatalogue, PartListing, PartUse},
};

/// `[connectors.<name>]` settings of an Aras connector (besides the common ones).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Innovator server root, e.g. `https://plm.example.com/InnovatorServer`.
    pub base_url: String,
    pub database: String,
    pub username: String,
    pub password: SecretSource,
    /// OAuth client id.
    #[serde(default = "default_client_id")]
    pub client_id: String,
    #[serde(default = "default_page_size")]
    pub page_size: u32,
}

fn default_client_id() -> String {
    "IOMApp".to_owned()
}
fn default_page_size() -> u32 {
    100
}

/// An Aras Innovator database.
pub struct Aras {
    settings: Settings,
    http: Http,
    token: Mutex<Option<String>>,
}

const PART_FIELDS: &str =
    "id,config_id,item_number,name,major_rev,generation,is_current,state,unit,modified_on";

impl Aras {
    /// A connector for `settings`, sending through `http`.
    pub fn new(mut settings: Settings, http: Http) -> Result<Self, ConnectorError> {
        settings.base_url =
            tracery_connector::settings::site(&settings.base_url, settings.page_size)?;
        Ok(Self {
            settings,
            http,
            token: Mutex::new(None),
        })
    }

    async fn token(&self, renew: bool) -> Result<String, ConnectorError> {
        use md5::{Digest, Md5};
        let mut token = self.token.lock().await;
        if let (Some(token), false) = (token.as_ref(), renew) {
            return Ok(token.clone());
        }
        let password = self
            .settings
            .password
            .read("password")
            .map_err(|err| ConnectorError::Config(err.to_string()))?;
        let digest: String = Md5::digest(password.expose().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let form = [
            ("grant_type", "password"),
            ("scope", "Innovator"),
            ("client_id", self.settings.client_id.as_str()),
            ("username", self.settings.username.as_str()),
            ("password", digest.as_str()),
            ("database", self.settings.database.as_str()),
        ];
        let url = format!("{}/OAuthServer/connect/token", self.settings.base_url);
        let response = self
            .http
            .send(Repeat::Safe, || self.http.client().post(&url).form(&form))
            .await?;
        let body = http::json(response).await?;
        let access = http::access_token(&body)?;
        *token = Some(access.clone());
        Ok(access)
    }

    fn odata(&self, path: &str) -> String {
        format!("{}/server/odata/{path}", self.settings.base_url)
    }
}

fn material(part: &Value) -> Fetched {
    let f = Fields::new(part, "item_number");
    let unit = f.opt_text("unit")?.unwrap_or_else(|| "EA".to_owned());
    let (name, revision) = (f.opt_text("name")?, f.opt_text("major_rev")?);
    parts::material_record(f.text("item_number")?, name, unit, revision)
}

fn bom(part: &Fields, lines: &[Value]) -> Fetched {
    let fields = BomFields {
        number: "item_number",
        revision: "major_rev",
        lines: "Part BOM",
        line_key: "id",
    };
    parts::bom_record(part, fields, lines, |line| {
        Ok(PartUse {
            component: line.text("/related_id/item_number")?,
            quantity_per: line.decimal("quantity")?,
            unit: line
                .opt_text("/related_id/unit")?
                .unwrap_or_else(|| "EA".to_owned()),
        })
    })
}

#[async_trait::async_trait]
impl PartCatalogue for Aras {
    fn system(&self) -> &'static str {
        "aras"
    }

    fn listing(&self) -> PartListing {
        PartListing {
            url: self.odata("Part"),
            select: Some(PART_FIELDS),
            number_field: "item_number",
            id_field: "id",
            changed_field: "modified_on",
            order_by: "modified_on,id",
            page_size: self.settings.page_size,
        }
    }

    /// GETs `url`, fetching a new token once when the current one is refused.
    async fn get(&self, url: &str, query: &[(&str, String)]) -> Result<Value, ConnectorError> {
        let request = |token: &String| self.http.client().get(url).bearer_auth(token).query(query);
        self.http
            .get_renewing("aras", true, |renew| self.token(renew), request)
            .await
    }

    fn material(&self, part: &Value) -> Fetched {
        material(part)
    }

    /// The part's `Part BOM` relationships, with the related parts expanded.
    async fn bom_lines(&self, id: &str) -> Result<Vec<Value>, ConnectorError> {
        let url = self.odata(&format!("Part('{id}')/Part%20BOM"));
        let query = [(
            "$expand",
            "related_id($select=item_number,name,major_rev,unit)".to_owned(),
        )];
        let body = self.get(&url, &query).await?;
        Ok(body
            .get("value")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    fn bom(&self, part: &Fields, lines: &[Value]) -> Fetched {
        bom(part, lines)
    }
}
