//! The plant's connectors, from the `[connectors.<name>]` tables of the configuration file:
//!
//! ```toml
//! [connectors.erp]
//! system = "erpnext"              # erpnext | odoo | sap_s4 | aras | windchill
//! base_url = "https://acme.frappe.cloud"
//! api_key = { env = "ERPNEXT_API_KEY" }
//! api_secret = { file = "/run/secrets/erpnext-secret" }
//! every_secs = 900                # sync schedule; absent = on request only
//! timeout_secs = 30               # per request
//! retry_attempts = 5
//! post_back = true                # post production events of its orders back
//! post_attempts = 5               # tries before a posting is dead-lettered
//!
//! [connectors.erp.locations]      # ERP warehouse/plant codes → SGLNs (master data)
//! "Finished Goods - AC" = "urn:epc:id:sgln:4012345.00001.0"
//! ```
//!
//! `system`, the schedule and the HTTP settings are common; the rest is the system's own
//! (see each connector crate's `Settings`); unknown keys are errors.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use serde::Deserialize;
use tracery_connector::{
    Connector,
    http::{Http, RetryPolicy},
};

use crate::{domain::IntegrationError, erp_master_data::LocationMap};

/// One configured connector.
pub struct PlantConnector {
    /// Its name in the configuration.
    pub name: String,
    /// How often to sync it, if on a schedule.
    pub every: Option<Duration>,
    pub connector: Arc<dyn Connector>,
    /// Whether production events of its orders are posted back to it.
    pub post_back: bool,
    /// Attempts at a posting before it is dead-lettered.
    pub post_attempts: u32,
    /// The longest one request to it may take.
    pub timeout: Duration,
    /// Its warehouse and plant codes mapped to SGLNs (see [`crate::erp_master_data`]).
    pub locations: LocationMap,
}

/// The settings every connector has.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Common {
    system: String,
    every_secs: Option<u64>,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    #[serde(default = "default_attempts")]
    retry_attempts: u32,
    #[serde(default = "default_base_ms")]
    retry_base_ms: u64,
    #[serde(default = "default_max_secs")]
    retry_max_secs: u64,
    #[serde(default)]
    post_back: bool,
    #[serde(default = "default_attempts")]
    post_attempts: u32,
    #[serde(default)]
    locations: BTreeMap<String, toml::Value>,
}

fn default_timeout() -> u64 {
    30
}
fn default_attempts() -> u32 {
    5
}
fn default_base_ms() -> u64 {
    500
}
fn default_max_secs() -> u64 {
    60
}

const COMMON_KEYS: [&str; 9] = [
    "system",
    "every_secs",
    "timeout_secs",
    "retry_attempts",
    "retry_base_ms",
    "retry_max_secs",
    "post_back",
    "post_attempts",
    "locations",
];

/// Builds the plant's connectors; any unusable setting is an error naming it.
pub fn connectors(
    tables: &BTreeMap<String, toml::Table>,
) -> Result<Vec<PlantConnector>, IntegrationError> {
    tables
        .iter()
        .map(|(name, table)| connector(name, table))
        .collect()
}

fn connector(name: &str, table: &toml::Table) -> Result<PlantConnector, IntegrationError> {
    let bad = |reason: String| IntegrationError::Config {
        connector: name.to_owned(),
        reason,
    };
    let (common, own): (toml::Table, toml::Table) = table
        .clone()
        .into_iter()
        .partition(|(key, _)| COMMON_KEYS.contains(&key.as_str()));
    let common: Common = toml::Value::Table(common)
        .try_into()
        .map_err(|err: toml::de::Error| bad(err.message().to_owned()))?;
    if common.retry_attempts == 0 || common.timeout_secs == 0 || common.post_attempts == 0 {
        return Err(bad(
            "timeout_secs, retry_attempts and post_attempts must be at least 1".to_owned(),
        ));
    }
    let http = Http::new(
        Duration::from_secs(common.timeout_secs),
        RetryPolicy {
            attempts: common.retry_attempts,
            base_delay: Duration::from_millis(common.retry_base_ms),
            max_delay: Duration::from_secs(common.retry_max_secs),
        },
    )
    .map_err(|err| bad(err.to_string()))?;
    let own = toml::Value::Table(own);
    let settings_error = |err: toml::de::Error| bad(err.message().to_owned());
    let built: Arc<dyn Connector> = match common.system.as_str() {
        "erpnext" => Arc::new(
            tracery_connector_erpnext::ErpNext::new(own.try_into().map_err(settings_error)?, http)
                .map_err(|err| bad(err.to_string()))?,
        ),
        "odoo" => Arc::new(
            tracery_connector_odoo::Odoo::new(own.try_into().map_err(settings_error)?, http)
                .map_err(|err| bad(err.to_string()))?,
        ),
        "sap_s4" => Arc::new(
            tracery_connector_sap_s4::SapS4::new(own.try_into().map_err(settings_error)?, http)
                .map_err(|err| bad(err.to_string()))?,
        ),
        "aras" => Arc::new(
            tracery_connector_aras::Aras::new(own.try_into().map_err(settings_error)?, http)
                .map_err(|err| bad(err.to_string()))?,
        ),
        "windchill" => Arc::new(
            tracery_connector_windchill::Windchill::new(
                own.try_into().map_err(settings_error)?,
                http,
            )
            .map_err(|err| bad(err.to_string()))?,
        ),
        other => {
            return Err(bad(format!(
                "unknown system `{other}`; the systems are erpnext, odoo, sap_s4, aras, windchill"
            )));
        }
    };
    let locations = LocationMap::from_table(common.locations).map_err(bad)?;
    if common.post_back && built.post_back().is_none() {
        return Err(bad(format!(
            "post_back: Tracery cannot post production back to {}",
            common.system
        )));
    }
    Ok(PlantConnector {
        name: name.to_owned(),
        every: common
            .every_secs
            .filter(|s| *s > 0)
            .map(Duration::from_secs),
        post_back: common.post_back,
        post_attempts: common.post_attempts,
        timeout: Duration::from_secs(common.timeout_secs),
        connector: built,
        locations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<PlantConnector>, IntegrationError> {
        let tables: BTreeMap<String, toml::Table> = toml::from_str(text).expect("toml");
        connectors(&tables)
    }

    #[test]
    fn a_plant_names_its_connectors_and_their_schedules() {
        let plant = parse(
            r#"
            [erp]
            system = "erpnext"
            base_url = "https://acme.frappe.cloud"
            api_key = { env = "ERPNEXT_API_KEY" }
            api_secret = { file = "/run/secrets/erpnext" }
            every_secs = 900
            [sap]
            system = "sap_s4"
            base_url = "https://my123456-api.s4hana.cloud.sap"
            user = "COMM_USER"
            password = { env = "SAP_PASSWORD" }
            change_time = "date_time_offset"
            "#,
        )
        .expect("valid");
        let named: Vec<(&str, &str, Option<Duration>)> = plant
            .iter()
            .map(|c| (c.name.as_str(), c.connector.system(), c.every))
            .collect();
        assert_eq!(
            named,
            [
                ("erp", "erpnext", Some(Duration::from_secs(900))),
                ("sap", "sap_s4", None)
            ]
        );
    }

    #[test]
    fn secrets_in_the_file_unknown_keys_and_systems_are_refused_by_name() {
        let error = |text: &str| match parse(text) {
            Err(err) => err.to_string(),
            Ok(_) => panic!("accepted: {text}"),
        };
        let literal = error(
            "[erp]\nsystem = \"erpnext\"\nbase_url = \"http://x\"\napi_key = \"abc\"\napi_secret = { env = \"S\" }",
        );
        assert!(
            literal.starts_with("connectors.erp:")
                && literal.contains("never written in the configuration file"),
            "{literal}"
        );
        let unknown = error(
            "[erp]\nsystem = \"erpnext\"\nbase_url = \"http://x\"\napi_key = { env = \"K\" }\napi_secret = { env = \"S\" }\npage_sise = 5",
        );
        assert!(unknown.contains("page_sise"), "{unknown}");
        let system = error("[plm]\nsystem = \"sap_r3\"");
        assert!(system.contains("unknown system `sap_r3`"), "{system}");
    }
}
