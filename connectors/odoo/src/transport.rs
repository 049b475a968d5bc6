//! The two ways to call an Odoo model method: external JSON-RPC (`execute_kw`, stateless,
//! credentials on every call) and JSON-2 (bearer API key, bare results, real HTTP errors).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tracery_connector::secret::SecretSource;
use tracery_connector::{
    ConnectorError,
    error::vendor_message,
    http::{self, Http, Repeat},
};

use crate::Settings;

/// Which API the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// `/jsonrpc` with `execute_kw` (Odoo 16–18; deprecated in 19).
    #[default]
    JsonRpc,
    /// `/json/2/<model>/<method>` (Odoo 19+).
    Json2,
}

/// One model method call.
struct Call<'a> {
    model: &'a str,
    method: &'a str,
    ids: Option<&'a [i64]>,
    kwargs: &'a Value,
    repeat: Repeat,
}

/// Calls model methods.
pub struct Transport {
    protocol: Protocol,
    base_url: String,
    database: String,
    login: String,
    api_key: SecretSource,
    http: Http,
    /// The JSON-RPC user id, once authenticated.
    uid: Mutex<Option<i64>>,
    request_id: AtomicU64,
}

impl Transport {
    pub fn new(settings: &Settings, http: Http) -> Result<Self, ConnectorError> {
        let login = match (settings.protocol, &settings.login) {
            (Protocol::JsonRpc, None) => {
                return Err(ConnectorError::Config("JSON-RPC needs a login".to_owned()));
            }
            (_, login) => login.clone().unwrap_or_default(),
        };
        Ok(Self {
            protocol: settings.protocol,
            base_url: tracery_connector::settings::site_root(&settings.base_url),
            database: settings.database.clone(),
            login,
            api_key: settings.api_key.clone(),
            http,
            uid: Mutex::new(None),
            request_id: AtomicU64::new(1),
        })
    }

    fn key(&self) -> Result<String, ConnectorError> {
        self.api_key
            .read("api_key")
            .map(|s| s.expose().to_owned())
            .map_err(|err| ConnectorError::Config(err.to_string()))
    }

    /// `model.method(**kwargs)`, a read: retried after transient failures.
    pub async fn call(
        &self,
        model: &str,
        method: &str,
        kwargs: Value,
    ) -> Result<Value, ConnectorError> {
        self.call_on(model, method, None, kwargs, Repeat::Safe)
            .await
    }

    /// `model.browse(ids).method(**kwargs)` (a model method when `ids` is `None`); a
    /// refused login is retried once (nothing happened then), other failures as `repeat`
    /// says.
    pub async fn call_on(
        &self,
        model: &str,
        method: &str,
        ids: Option<&[i64]>,
        kwargs: Value,
        repeat: Repeat,
    ) -> Result<Value, ConnectorError> {
        let call = Call {
            model,
            method,
            ids,
            kwargs: &kwargs,
            repeat,
        };
        match self.protocol {
            Protocol::Json2 => match self.json2(&call).await {
                Err(ConnectorError::Auth(reason)) => {
                    tracing::info!(%reason, "Odoo refused the API key; reading it again");
                    self.json2(&call).await
                }
                other => other,
            },
            Protocol::JsonRpc => match self.execute_kw(&call, false).await {
                Err(ConnectorError::Auth(reason)) => {
                    tracing::info!(%reason, "Odoo refused the session; authenticating again");
                    self.execute_kw(&call, true).await
                }
                other => other,
            },
        }
    }

    async fn json2(&self, call: &Call<'_>) -> Result<Value, ConnectorError> {
        let key = self.key()?;
        let url = format!("{}/json/2/{}/{}", self.base_url, call.model, call.method);
        let mut body = call.kwargs.clone();
        if let (Some(ids), Some(fields)) = (call.ids, body.as_object_mut()) {
            fields.insert("ids".to_owned(), json!(ids));
        }
        let response = self
            .http
            .send(call.repeat, || {
                self.http
                    .client()
                    .post(&url)
                    .bearer_auth(&key)
                    .header("X-Odoo-Database", &self.database)
                    .json(&body)
            })
            .await?;
        http::json(response).await
    }

    /// The user id, authenticating when there is none or `again` is set.
    async fn uid(&self, again: bool) -> Result<i64, ConnectorError> {
        let mut uid = self.uid.lock().await;
        if let (Some(uid), false) = (*uid, again) {
            return Ok(uid);
        }
        let args = json!([self.database, self.login, self.key()?, {}]);
        let result = self
            .rpc("common", "authenticate", args, Repeat::Safe)
            .await?;
        let id = result.as_i64().ok_or_else(|| {
            ConnectorError::Auth(format!(
                "Odoo refused login `{}` on database `{}`",
                self.login, self.database
            ))
        })?;
        *uid = Some(id);
        Ok(id)
    }

    async fn execute_kw(&self, call: &Call<'_>, again: bool) -> Result<Value, ConnectorError> {
        let uid = self.uid(again).await?;
        let positional = match call.ids {
            Some(ids) => json!([ids]),
            None => json!([]),
        };
        let args = json!([
            self.database,
            uid,
            self.key()?,
            call.model,
            call.method,
            positional,
            call.kwargs
        ]);
        self.rpc("object", "execute_kw", args, call.repeat).await
    }

    /// One JSON-RPC call; Odoo reports errors inside an HTTP 200 envelope.
    async fn rpc(
        &self,
        service: &str,
        method: &str,
        args: Value,
        repeat: Repeat,
    ) -> Result<Value, ConnectorError> {
        let body = json!({
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"service": service, "method": method, "args": args},
            "id": self.request_id.fetch_add(1, Ordering::Relaxed),
        });
        let url = format!("{}/jsonrpc", self.base_url);
        let response = self
            .http
            .send(repeat, || self.http.client().post(&url).json(&body))
            .await?;
        let mut envelope = http::json(response).await?;
        if let Some(error) = envelope.get("error") {
            let name = error
                .pointer("/data/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let message = vendor_message(&envelope.to_string());
            let session_expired = error.get("code").and_then(Value::as_i64) == Some(100);
            return Err(
                if session_expired
                    || name.ends_with("AccessDenied")
                    || name.ends_with("SessionExpiredException")
                {
                    ConnectorError::Auth(message)
                } else if name.ends_with("AccessError") {
                    ConnectorError::Forbidden(message)
                } else {
                    ConnectorError::Status {
                        status: 200,
                        message: format!("{name}: {message}"),
                    }
                },
            );
        }
        envelope.get_mut("result").map(Value::take).ok_or_else(|| {
            ConnectorError::malformed("result", "JSON-RPC answer without result or error")
        })
    }
}
