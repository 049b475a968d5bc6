//! The one configuration loader.
//!
//! Layers, lowest first: built-in defaults → TOML file (`--config`) → `TRACERY_*`
//! environment variables → command-line flags. Every bad value fails at start with a
//! message that names the setting.

use std::{
    collections::BTreeMap, fmt, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration,
};

use serde::Deserialize;
pub use tracery_secret::{Secret, SecretError, SecretSource};

/// One of the four Tracery services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKey {
    /// GS1 identifiers, serial pools, labels.
    Identity,
    /// EPCIS event capture.
    Capture,
    /// Trace queries.
    Genealogy,
    /// ERP/PLM sync and post-back.
    Integration,
}

impl ServiceKey {
    /// All services, in start order.
    pub const ALL: [ServiceKey; 4] = [
        ServiceKey::Identity,
        ServiceKey::Capture,
        ServiceKey::Genealogy,
        ServiceKey::Integration,
    ];

    /// The short name used in configuration (`capture`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Capture => "capture",
            Self::Genealogy => "genealogy",
            Self::Integration => "integration",
        }
    }

    /// The fully qualified gRPC service name (`tracery.v1.CaptureService`).
    pub fn grpc_name(self) -> &'static str {
        use tracery_proto::service_names as names;
        match self {
            Self::Identity => names::IDENTITY,
            Self::Capture => names::CAPTURE,
            Self::Genealogy => names::GENEALOGY,
            Self::Integration => names::INTEGRATION,
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceKey {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ServiceKey::ALL
            .into_iter()
            .find(|key| key.as_str() == text)
            .ok_or_else(|| {
                format!("`{text}` is not a service (identity, capture, genealogy, integration)")
            })
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Flags of `tracery serve`; each also reads its `TRACERY_*` environment variable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file; flags and environment variables override it.
    #[arg(long, env = "TRACERY_CONFIG")]
    pub config: Option<PathBuf>,
    /// gRPC listen address.
    #[arg(long, env = "TRACERY_LISTEN")]
    pub listen: Option<String>,
    /// HTTP listen address (EPCIS REST, metrics, dashboard, /healthz).
    #[arg(long, env = "TRACERY_HTTP_LISTEN")]
    pub http_listen: Option<String>,
    /// Apply pending migrations at start-up (the default); `false` waits for
    /// `tracery migrate` to apply them instead (one Job, not every replica).
    #[arg(long, env = "TRACERY_MIGRATE_ON_START")]
    pub migrate_on_start: Option<bool>,
    /// A plain-text listener serving only `grpc.health.v1`, for probes that cannot speak
    /// TLS (Kubernetes gRPC probes); off when absent.
    #[arg(long, env = "TRACERY_HEALTH_LISTEN")]
    pub health_listen: Option<String>,
    /// Database URL: `sqlite://path?mode=rwc` or `postgres://user@host/db`.
    #[arg(long, env = "TRACERY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Services to run in this process (comma-separated); default all four.
    #[arg(long = "service", env = "TRACERY_SERVICES", value_delimiter = ',')]
    pub services: Vec<String>,
    /// gRPC endpoint of the identity service when it runs elsewhere.
    #[arg(long, env = "TRACERY_IDENTITY_ENDPOINT")]
    pub identity_endpoint: Option<String>,
    /// gRPC endpoint of the capture service when it runs elsewhere.
    #[arg(long, env = "TRACERY_CAPTURE_ENDPOINT")]
    pub capture_endpoint: Option<String>,
    /// gRPC endpoint of the genealogy service when it runs elsewhere.
    #[arg(long, env = "TRACERY_GENEALOGY_ENDPOINT")]
    pub genealogy_endpoint: Option<String>,
    /// gRPC endpoint of the integration service when it runs elsewhere.
    #[arg(long, env = "TRACERY_INTEGRATION_ENDPOINT")]
    pub integration_endpoint: Option<String>,
    /// Log format.
    #[arg(long, env = "TRACERY_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Seconds to drain in-flight requests on SIGTERM before closing.
    #[arg(long, env = "TRACERY_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// Maximum database connections in the pool.
    #[arg(long, env = "TRACERY_DB_MAX_CONNECTIONS")]
    pub db_max_connections: Option<u32>,
}

/// The configuration file; the same settings as [`ServeArgs`], in snake_case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    http_listen: Option<String>,
    health_listen: Option<String>,
    migrate_on_start: Option<bool>,
    database_url: Option<String>,
    services: Option<Vec<String>>,
    identity_endpoint: Option<String>,
    capture_endpoint: Option<String>,
    genealogy_endpoint: Option<String>,
    integration_endpoint: Option<String>,
    log_format: Option<LogFormat>,
    shutdown_grace_secs: Option<u64>,
    db_max_connections: Option<u32>,
    capture_rules: Option<BTreeMap<String, RuleAction>>,
    capture_mqtt: Option<MqttSettings>,
    connectors: Option<BTreeMap<String, toml::Table>>,
    auth: Option<crate::auth::AuthSettings>,
    limits: Option<Limits>,
    subscriptions: Option<SubscriptionSettings>,
    alerts: Option<AlertSettings>,
    rfid: Option<RfidSettings>,
    tls: Option<crate::tls::TlsSettings>,
    integrity: Option<IntegrityFile>,
}

/// The `[integrity]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntegrityFile {
    key: Option<SecretSource>,
    #[serde(default)]
    previous_keys: Vec<SecretSource>,
    checkpoint_file: Option<PathBuf>,
    checkpoint_interval_secs: Option<u64>,
}

/// Where the key of the hash chains comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainKeySource {
    /// A secret the operator provides (`[integrity] key`): shared by every replica.
    Secret(SecretSource),
    /// A file created with a random key on first start, for a single all-in-one process.
    Generated(PathBuf),
}

/// Tamper evidence that holds against a database writer: the hash chains of stored events
/// and of the audit trail are keyed (HMAC-SHA-256) with a key that lives outside the
/// database, and their heads are checkpointed, signed, outside it too (see
/// [`crate::integrity`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegritySettings {
    /// The key new links are made with.
    pub key: ChainKeySource,
    /// Keys of earlier rotations: rows and checkpoints they signed still verify.
    pub previous_keys: Vec<SecretSource>,
    /// The append-only file of signed chain heads.
    pub checkpoint_file: PathBuf,
    /// How often the heads are checkpointed (when they moved).
    pub checkpoint_interval: Duration,
}

impl IntegritySettings {
    /// The defaults beside the default SQLite database.
    fn in_directory(dir: &std::path::Path) -> Self {
        Self {
            key: ChainKeySource::Generated(dir.join("integrity.key")),
            previous_keys: Vec::new(),
            checkpoint_file: dir.join("checkpoints.jsonl"),
            checkpoint_interval: Duration::from_secs(60),
        }
    }

    fn resolve(file: Option<IntegrityFile>) -> Result<Self, ConfigError> {
        let defaults = Self::in_directory(std::path::Path::new(DEFAULT_DATA_DIR));
        let Some(file) = file else {
            return Ok(defaults);
        };
        let interval = file.checkpoint_interval_secs.unwrap_or(60);
        if interval == 0 {
            return Err(ConfigError::new(
                "integrity.checkpoint_interval_secs",
                "must be at least 1",
            ));
        }
        Ok(Self {
            key: file.key.map_or(defaults.key, ChainKeySource::Secret),
            previous_keys: file.previous_keys,
            checkpoint_file: file.checkpoint_file.unwrap_or(defaults.checkpoint_file),
            checkpoint_interval: Duration::from_secs(interval),
        })
    }
}

/// The `[limits]` table: what one request may ask of the suite.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Events in one capture request, stream batch or EPCIS document.
    pub max_events_per_batch: usize,
    /// Longest a gRPC or REST request may run before it is cancelled (streams: until
    /// their response starts).
    pub request_timeout_secs: u64,
    /// Largest REST body.
    pub max_body_bytes: usize,
    /// Deepest nesting of a JSON or XML document (REST bodies, MQTT messages), checked
    /// while it is read; `max_json_depth`, its earlier name, is read too.
    #[serde(alias = "max_json_depth")]
    pub max_nesting_depth: usize,
    /// Requests per second each principal may make (0: no limit), and the burst above it.
    pub requests_per_second: u32,
    pub burst: u32,
    /// Capture requests waiting for the store's group commit; past it a request is refused
    /// at once with `RESOURCE_EXHAUSTED` (REST 429) and a time to retry, so what is accepted
    /// waits at most a few group commits. MQTT waits instead (the broker holds the rest).
    pub capture_queue: usize,
    /// Most events on one page of a REST query (`perPage`); a client asking for more is
    /// refused with the maximum named.
    pub max_page_size: u64,
    /// How long a REST query's `nextPageToken` stays good (`GS1-Next-Page-Token-Expires`).
    pub page_token_lifetime_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_events_per_batch: 10_000,
            request_timeout_secs: 120,
            max_body_bytes: 32 << 20,
            max_nesting_depth: 32,
            requests_per_second: 0,
            burst: 200,
            capture_queue: 1024,
            max_page_size: 1000,
            page_token_lifetime_secs: 600,
        }
    }
}

/// The `[subscriptions]` table: how the REST binding's webhook subscriptions deliver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubscriptionSettings {
    /// Whether a destination may be plain `http://` (a plant network without TLS); when
    /// not, only `https://` destinations are accepted.
    pub allow_plain_http: bool,
    /// Most events in one delivery (one `EPCISQueryDocument`).
    pub batch_events: u64,
    /// Longest wait for a receiver to answer a delivery.
    pub timeout_secs: u64,
    /// Longest wait between attempts at a failing receiver: the wait starts at one second
    /// and doubles up to this.
    pub max_retry_secs: u64,
    /// The time zone of scheduled subscriptions' `schedule` (an IANA zone, `Europe/Berlin`).
    pub schedule_zone: String,
}

impl Default for SubscriptionSettings {
    fn default() -> Self {
        Self {
            allow_plain_http: false,
            batch_events: 100,
            timeout_secs: 10,
            max_retry_secs: 300,
            schedule_zone: "UTC".to_owned(),
        }
    }
}

/// The `[alerts]` table: alert rules over the captured events, and where their alerts
/// go (besides the dashboard).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// Every alert change is POSTed here, signed like webhook subscriptions.
    pub webhook: Option<AlertWebhook>,
    /// Every alert change is published on `<topic>/<rule>` of this broker (QoS 1).
    pub mqtt: Option<MqttSettings>,
    /// The rules, `[[alerts.rules]]` tables each with a `name`; the capture service reads
    /// them with the same reader as rules made over gRPC.
    pub rules: Vec<toml::Table>,
}

/// The `[rfid]` table: fixed RFID readers whose tag reads capture turns into events.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RfidSettings {
    /// The broker the readers publish on, and the topic filter capture subscribes to
    /// (`[rfid.mqtt]`, as `[capture_mqtt]`; its `readers` are not used here).
    pub mqtt: Option<MqttSettings>,
    /// The readers by name, `[rfid.readers.<name>]`; the capture service reads them
    /// (`capture::rfid::reader`), naming the field of any mistake.
    pub readers: BTreeMap<String, toml::Table>,
}

/// `[alerts.webhook]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertWebhook {
    /// `https://…` (or `http://` where `[subscriptions] allow_plain_http`).
    pub url: String,
    /// The key of the `GS1-Signature` HMAC: `{ env = "VAR" }` or `{ file = "…" }`.
    pub signature_token: Option<SecretSource>,
}

/// The `[capture_mqtt]` table: capture subscribes to scanner messages on an MQTT broker.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSettings {
    /// Broker, `mqtt://host:port` (plain TCP) or `mqtts://host:port` (TLS, see `tls`).
    pub broker: String,
    /// Broker user name, when the broker asks for one.
    pub username: Option<String>,
    /// Its password: `{ env = "VAR" }` or `{ file = "/run/secrets/x" }`.
    pub password: Option<SecretSource>,
    /// TLS to the broker (with `mqtts://`): the CA that signed the broker's certificate
    /// and, for brokers that want one, this client's certificate.
    pub tls: Option<MqttTls>,
    /// Topic filter, e.g. `plant-1/scans/#`.
    pub topic: String,
    /// MQTT client id; the broker keeps this client's session (and unacknowledged
    /// messages) across reconnects.
    #[serde(default = "default_mqtt_client_id")]
    pub client_id: String,
    /// Fixed readers by id: where a compact scan message from each one happened.
    #[serde(default)]
    pub readers: BTreeMap<String, ReaderSettings>,
}

/// TLS towards the MQTT broker.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttTls {
    /// PEM CA certificate(s) the broker's certificate must chain to.
    pub ca_file: PathBuf,
    /// PEM client certificate, for brokers that authenticate clients by certificate.
    pub cert_file: Option<PathBuf>,
    /// Its PEM private key.
    pub key_file: Option<PathBuf>,
}

/// Where and why a fixed reader scans, and who it is: with `[auth]` a message speaks with
/// the rights of the reader whose `topic` it arrived on, and nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaderSettings {
    /// The exact topic this reader publishes on (the broker's ACL should let only this
    /// reader write it). Required with `[auth]`.
    pub topic: Option<String>,
    /// Its roles, as a token would carry them (`operator` for a scanner).
    #[serde(default = "default_reader_roles")]
    pub roles: Vec<String>,
    /// The plant it belongs to; `[auth].plant` when absent.
    pub plant: Option<String>,
    /// readPoint id, e.g. `urn:epc:id:sgln:4012345.00001.0`.
    pub read_point: String,
    /// bizStep of its scans, e.g. `receiving`.
    pub biz_step: Option<String>,
    /// bizLocation id.
    pub biz_location: Option<String>,
    /// disposition of its scans.
    pub disposition: Option<String>,
    /// Quarantine scans without `time` rather than stamp them with the time they
    /// arrived (for readers whose clock is trusted and always sent).
    #[serde(default)]
    pub require_time: bool,
}

fn default_reader_roles() -> Vec<String> {
    vec!["operator".to_owned()]
}

fn default_mqtt_client_id() -> String {
    "tracery-capture".to_owned()
}

impl MqttSettings {
    /// Whether the broker is reached over TLS (`mqtts://`).
    pub fn uses_tls(&self) -> bool {
        self.broker.starts_with("mqtts://") || self.broker.starts_with("ssl://")
    }

    /// `(host, port)` of the broker.
    pub fn broker_address(&self) -> Result<(String, u16), ConfigError> {
        let bad = || {
            ConfigError::new(
                "capture_mqtt.broker",
                format!(
                    "`{}` is not like mqtt://host:1883 or mqtts://host:8883",
                    self.broker
                ),
            )
        };
        let (rest, default_port) = match self.broker.split_once("://") {
            Some(("mqtt" | "tcp", rest)) => (rest, "1883"),
            Some(("mqtts" | "ssl", rest)) => (rest, "8883"),
            _ => return Err(bad()),
        };
        let (host, port) = rest
            .trim_end_matches('/')
            .rsplit_once(':')
            .unwrap_or((rest, default_port));
        let port = port.parse().map_err(|_| bad())?;
        if host.is_empty() {
            return Err(bad());
        }
        Ok((host.to_owned(), port))
    }

    /// Checks what can be checked before connecting: the address, TLS settings that fit
    /// the scheme, and (with `[auth]`: `identities`) an identity per reader.
    fn check(&self, identities: bool) -> Result<(), ConfigError> {
        self.broker_address()?;
        if self.tls.is_some() != self.uses_tls() {
            return Err(ConfigError::new(
                "capture_mqtt.tls",
                "give [capture_mqtt.tls] exactly when the broker is mqtts://",
            ));
        }
        if let Some(tls) = &self.tls
            && tls.cert_file.is_some() != tls.key_file.is_some()
        {
            return Err(ConfigError::new(
                "capture_mqtt.tls",
                "cert_file and key_file go together",
            ));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(ConfigError::new(
                "capture_mqtt.password",
                "a password needs a username",
            ));
        }
        if !identities {
            return Ok(());
        }
        for (name, reader) in &self.readers {
            let setting = format!("capture_mqtt.readers.{name}");
            if reader.topic.is_none() {
                return Err(ConfigError::new(
                    &format!("{setting}.topic"),
                    "with [auth] each reader needs the topic it publishes on: it is who speaks",
                ));
            }
            if let Some(role) = reader
                .roles
                .iter()
                .find(|role| crate::auth::Role::parse(role).is_none())
            {
                return Err(ConfigError::new(
                    &format!("{setting}.roles"),
                    format!(
                        "`{role}` is not a role (operator, quality, planner, integration, admin)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// What a validation rule does with an event that breaks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    /// The rule is not checked.
    Off,
    /// The event is stored and the finding returned as a warning.
    Warn,
    /// The event is quarantined.
    Reject,
}

/// A setting that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {setting}: {reason}")]
pub struct ConfigError {
    /// The setting's name, as in the file (and `--flag` / `TRACERY_*` alike).
    pub setting: String,
    /// What is wrong.
    pub reason: String,
}

impl From<SecretError> for ConfigError {
    fn from(err: SecretError) -> Self {
        Self {
            setting: err.setting,
            reason: err.reason,
        }
    }
}

impl ConfigError {
    fn new(setting: &str, reason: impl Into<String>) -> Self {
        Self {
            setting: setting.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Default gRPC address of the all-in-one server.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// Default HTTP address of the all-in-one server.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8080";
/// Where the all-in-one server keeps its files by default.
pub const DEFAULT_DATA_DIR: &str = "tracery-data";
/// Default database: SQLite under `./tracery-data/`, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://tracery-data/tracery.db?mode=rwc";

/// Where to reach each peer service; `None` means "in this process".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerEndpoints {
    /// Identity service endpoint.
    pub identity: Option<String>,
    /// Capture service endpoint.
    pub capture: Option<String>,
    /// Genealogy service endpoint.
    pub genealogy: Option<String>,
    /// Integration service endpoint.
    pub integration: Option<String>,
}

impl PeerEndpoints {
    /// The configured endpoint of one service.
    pub fn get(&self, key: ServiceKey) -> Option<&str> {
        match key {
            ServiceKey::Identity => self.identity.as_deref(),
            ServiceKey::Capture => self.capture.as_deref(),
            ServiceKey::Genealogy => self.genealogy.as_deref(),
            ServiceKey::Integration => self.integration.as_deref(),
        }
    }
}

/// The resolved configuration of one process.
#[derive(Debug, Clone)]
pub struct Config {
    /// gRPC listen address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// HTTP listen address.
    pub http_listen: SocketAddr,
    /// Plain-text `grpc.health.v1` listen address, if any.
    pub health_listen: Option<SocketAddr>,
    /// Whether start-up applies migrations or waits for them.
    pub migrate_on_start: bool,
    /// Database URL.
    pub database_url: Secret,
    /// Services run by this process.
    pub services: Vec<ServiceKey>,
    /// Peer endpoints for services not run here.
    pub peers: PeerEndpoints,
    /// Log format.
    pub log_format: LogFormat,
    /// How long to drain in-flight requests on shutdown.
    pub shutdown_grace: Duration,
    /// Database pool size.
    pub db_max_connections: u32,
    /// Capture validation rules set in the file's `[capture_rules]` table, by rule name;
    /// the capture service checks the names and applies its defaults to the rest.
    pub capture_rules: BTreeMap<String, RuleAction>,
    /// MQTT intake for capture, when the file has a `[capture_mqtt]` table.
    pub capture_mqtt: Option<MqttSettings>,
    /// The plant's ERP/PLM connectors, `[connectors.<name>]` tables by name; the
    /// integration service reads each by its `system`.
    pub connectors: BTreeMap<String, toml::Table>,
    /// Authentication and the plant principals must be scoped to; `None` is dev mode
    /// (loopback only).
    pub auth: Option<crate::auth::AuthSettings>,
    /// Request limits.
    pub limits: Limits,
    /// Webhook deliveries of query subscriptions.
    pub subscriptions: SubscriptionSettings,
    /// Alert rules and their channels.
    pub alerts: AlertSettings,
    /// RFID readers and their broker.
    pub rfid: RfidSettings,
    /// TLS on both listeners, when the file has a `[tls]` table.
    pub tls: Option<crate::tls::TlsSettings>,
    /// Keys and checkpoints of the hash chains (`[integrity]`).
    pub integrity: IntegritySettings,
    /// The clock record times are taken from (the system's; not a setting).
    pub clock: crate::clock::Clock,
}

impl Config {
    /// Resolves flags/environment over the optional file over defaults.
    pub fn load(args: &ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|err| {
                    ConfigError::new("config", format!("cannot read {}: {err}", path.display()))
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|err| {
                    ConfigError::new("config", format!("{}: {}", path.display(), err.message()))
                })?
            }
            None => FileConfig::default(),
        };
        Self::resolve(args, file)
    }

    fn resolve(args: &ServeArgs, file: FileConfig) -> Result<Self, ConfigError> {
        let (listen, http_listen, health_listen) = listeners(args, &file)?;
        let peers = PeerEndpoints::resolve(args, &file)?;
        if file.auth.is_none() {
            refuse_open_network(listen, http_listen)?;
        }
        let database_url = args
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        check_database_url(&database_url)?;
        let db_max_connections = args
            .db_max_connections
            .or(file.db_max_connections)
            .unwrap_or(10);
        if db_max_connections == 0 {
            return Err(ConfigError::new("db_max_connections", "must be at least 1"));
        }
        let capture_mqtt = match file.capture_mqtt {
            Some(mqtt) => {
                mqtt.check(file.auth.is_some())?;
                Some(mqtt)
            }
            None => None,
        };
        Ok(Self {
            listen,
            http_listen,
            health_listen,
            migrate_on_start: args
                .migrate_on_start
                .or(file.migrate_on_start)
                .unwrap_or(true),
            database_url: Secret::new(database_url),
            services: services(args, file.services.unwrap_or_default())?,
            peers,
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            shutdown_grace: Duration::from_secs(
                args.shutdown_grace_secs
                    .or(file.shutdown_grace_secs)
                    .unwrap_or(30),
            ),
            db_max_connections,
            capture_rules: file.capture_rules.unwrap_or_default(),
            capture_mqtt,
            connectors: file.connectors.unwrap_or_default(),
            auth: file.auth,
            tls: file.tls,
            integrity: IntegritySettings::resolve(file.integrity)?,
            limits: Limits::checked(file.limits.unwrap_or_default())?,
            subscriptions: file.subscriptions.unwrap_or_default(),
            alerts: file.alerts.unwrap_or_default(),
            rfid: file.rfid.unwrap_or_default(),
            clock: crate::clock::Clock::default(),
        })
    }

    /// A configuration for tests: ephemeral loopback ports, the given database, all services.
    pub fn for_tests(database_url: &str) -> Self {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            listen: loopback,
            http_listen: loopback,
            health_listen: None,
            migrate_on_start: true,
            database_url: Secret::new(database_url),
            services: ServiceKey::ALL.to_vec(),
            peers: PeerEndpoints::default(),
            log_format: LogFormat::Text,
            shutdown_grace: Duration::from_secs(5),
            db_max_connections: 5,
            capture_rules: BTreeMap::new(),
            capture_mqtt: None,
            connectors: BTreeMap::new(),
            auth: None,
            limits: Limits::default(),
            subscriptions: SubscriptionSettings::default(),
            alerts: AlertSettings::default(),
            rfid: RfidSettings::default(),
            tls: None,
            // Each test process keeps its own key and checkpoints, away from the tree.
            integrity: IntegritySettings::in_directory(
                &std::env::temp_dir().join(format!("tracery-test-{}", uuid::Uuid::new_v4())),
            ),
            clock: crate::clock::Clock::default(),
        }
    }
}

/// The gRPC, HTTP and health listen addresses.
fn listeners(
    args: &ServeArgs,
    file: &FileConfig,
) -> Result<(SocketAddr, SocketAddr, Option<SocketAddr>), ConfigError> {
    let address = |setting: &str, arg: &Option<String>, file: &Option<String>, default: &str| {
        let text = arg.clone().or(file.clone());
        socket_addr(setting, text.as_deref().unwrap_or(default))
    };
    let listen = address("listen", &args.listen, &file.listen, DEFAULT_LISTEN)?;
    let http_listen = address(
        "http_listen",
        &args.http_listen,
        &file.http_listen,
        DEFAULT_HTTP_LISTEN,
    )?;
    let health_listen = args
        .health_listen
        .clone()
        .or(file.health_listen.clone())
        .map(|text| socket_addr("health_listen", &text))
        .transpose()?;
    Ok((listen, http_listen, health_listen))
}

/// Without authentication the suite is a development server: it must not be reachable
/// from the network.
fn refuse_open_network(listen: SocketAddr, http_listen: SocketAddr) -> Result<(), ConfigError> {
    let open = [("listen", listen), ("http_listen", http_listen)]
        .into_iter()
        .find(|(_, addr)| !addr.ip().is_loopback());
    match open {
        Some((setting, addr)) => Err(ConfigError::new(
            "auth",
            format!(
                "{setting} = {addr} is not a loopback address: configure [auth] \
                 (issuer, audience, jwks_file or jwks_url, plant) before serving the network"
            ),
        )),
        None => Ok(()),
    }
}

/// The services to run, sorted and once each; all of them when none is named. Flags
/// replace the file's list.
fn services(args: &ServeArgs, in_file: Vec<String>) -> Result<Vec<ServiceKey>, ConfigError> {
    let names = if args.services.is_empty() {
        in_file
    } else {
        args.services.clone()
    };
    let mut services = names
        .iter()
        .map(|name| {
            name.trim()
                .parse()
                .map_err(|reason| ConfigError::new("services", reason))
        })
        .collect::<Result<Vec<ServiceKey>, _>>()?;
    if services.is_empty() {
        services = ServiceKey::ALL.to_vec();
    }
    services.sort();
    services.dedup();
    Ok(services)
}

impl PeerEndpoints {
    fn resolve(args: &ServeArgs, file: &FileConfig) -> Result<Self, ConfigError> {
        let peer = |setting: &str, arg: &Option<String>, file: &Option<String>| {
            endpoint(setting, arg.clone().or(file.clone()))
        };
        Ok(Self {
            identity: peer(
                "identity_endpoint",
                &args.identity_endpoint,
                &file.identity_endpoint,
            )?,
            capture: peer(
                "capture_endpoint",
                &args.capture_endpoint,
                &file.capture_endpoint,
            )?,
            genealogy: peer(
                "genealogy_endpoint",
                &args.genealogy_endpoint,
                &file.genealogy_endpoint,
            )?,
            integration: peer(
                "integration_endpoint",
                &args.integration_endpoint,
                &file.integration_endpoint,
            )?,
        })
    }
}

impl Limits {
    /// `limits`, refused where a limit of zero would refuse everything.
    fn checked(limits: Limits) -> Result<Limits, ConfigError> {
        if limits.max_events_per_batch == 0
            || limits.request_timeout_secs == 0
            || limits.max_body_bytes == 0
            || limits.max_nesting_depth == 0
            || limits.max_page_size == 0
        {
            return Err(ConfigError::new(
                "limits",
                "max_events_per_batch, request_timeout_secs, max_body_bytes, \
                 max_nesting_depth and max_page_size must be at least 1",
            ));
        }
        Ok(limits)
    }
}

fn socket_addr(setting: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|_| {
        ConfigError::new(
            setting,
            format!("`{text}` is not an address like 127.0.0.1:50051"),
        )
    })
}

fn check_database_url(url: &str) -> Result<(), ConfigError> {
    let supported = ["sqlite:", "postgres://", "postgresql://"];
    if supported.iter().any(|prefix| url.starts_with(prefix)) {
        Ok(())
    } else {
        Err(ConfigError::new(
            "database_url",
            "must start with sqlite:, postgres:// or postgresql://",
        ))
    }
}

fn endpoint(setting: &str, value: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match value.parse::<http::Uri>() {
        Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {
            Ok(Some(value))
        }
        _ => Err(ConfigError::new(
            setting,
            format!("`{value}` is not an endpoint like http://capture:50051"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> FileConfig {
        toml::from_str(text).expect("test TOML parses")
    }

    #[test]
    fn defaults_run_all_services_on_loopback_with_sqlite() {
        let config = Config::resolve(&ServeArgs::default(), FileConfig::default()).expect("valid");
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.http_listen.to_string(), DEFAULT_HTTP_LISTEN);
        assert_eq!(config.database_url.expose(), DEFAULT_DATABASE_URL);
        assert_eq!(config.services, ServiceKey::ALL.to_vec());
    }

    #[test]
    fn flags_override_file() {
        let args = ServeArgs {
            listen: Some("127.0.0.2:6000".into()),
            ..ServeArgs::default()
        };
        let config = Config::resolve(
            &args,
            file("listen = \"127.0.0.1:7000\"\nhttp_listen = \"127.0.0.1:7001\"\nservices = [\"capture\"]"),
        )
        .expect("valid");
        assert_eq!(config.listen.to_string(), "127.0.0.2:6000");
        assert_eq!(config.http_listen.to_string(), "127.0.0.1:7001");
        assert_eq!(config.services, vec![ServiceKey::Capture]);
    }

    #[test]
    fn without_auth_the_suite_serves_loopback_only() {
        let public = ServeArgs {
            listen: Some("0.0.0.0:50051".into()),
            ..ServeArgs::default()
        };
        let err = Config::resolve(&public, FileConfig::default()).expect_err("refused");
        assert_eq!(err.setting, "auth");
        assert!(err.to_string().contains("0.0.0.0:50051"), "{err}");
        let with_auth = file(
            "[auth]\nplant = \"plant-1\"\nissuer = \"https://idp\"\naudience = \"tracery\"\njwks_file = \"/etc/jwks.json\"",
        );
        let config = Config::resolve(&public, with_auth).expect("auth configured");
        assert_eq!(config.auth.map(|a| a.plant), Some("plant-1".to_owned()));
    }

    #[test]
    fn bad_values_name_the_setting() {
        let bad_listen = ServeArgs {
            listen: Some("nowhere".into()),
            ..ServeArgs::default()
        };
        let err = Config::resolve(&bad_listen, FileConfig::default()).expect_err("invalid");
        assert_eq!(err.setting, "listen");

        let err = Config::resolve(&ServeArgs::default(), file("database_url = \"mysql://x\""))
            .expect_err("invalid");
        assert_eq!(err.setting, "database_url");

        let err = Config::resolve(&ServeArgs::default(), file("services = [\"billing\"]"))
            .expect_err("invalid");
        assert_eq!(err.setting, "services");
        assert!(err.to_string().contains("billing"), "{err}");

        let err = Config::resolve(
            &ServeArgs::default(),
            file("capture_endpoint = \"capture:50051\""),
        )
        .expect_err("invalid");
        assert_eq!(err.setting, "capture_endpoint");
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tracery.toml");
        std::fs::write(&path, "listne = \"127.0.0.1:1\"\n").expect("write");
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let err = Config::load(&args).expect_err("typo must fail");
        assert_eq!(err.setting, "config");
        assert!(err.reason.contains("listne"), "{err}");
    }

    #[test]
    fn capture_rules_come_from_the_file() {
        let config = Config::resolve(
            &ServeArgs::default(),
            file("[capture_rules]\nunknown_identifier = \"reject\"\ncustom_vocabulary = \"warn\""),
        )
        .expect("valid");
        assert_eq!(
            config.capture_rules.get("unknown_identifier"),
            Some(&RuleAction::Reject)
        );
        assert_eq!(
            config.capture_rules.get("custom_vocabulary"),
            Some(&RuleAction::Warn)
        );
        let err = toml::from_str::<FileConfig>("[capture_rules]\nvocabulary = \"sometimes\"")
            .expect_err("not an action");
        assert!(err.to_string().contains("sometimes"), "{err}");
    }

    #[test]
    fn mqtt_settings_come_from_the_file() {
        let config = Config::resolve(
            &ServeArgs::default(),
            file("[capture_mqtt]\nbroker = \"mqtt://127.0.0.1:1883\"\ntopic = \"p1/scans/#\"\n[capture_mqtt.readers.dock-1]\nread_point = \"urn:epc:id:sgln:4012345.00001.0\"\nbiz_step = \"receiving\""),
        )
        .expect("valid");
        let mqtt = config.capture_mqtt.expect("mqtt");
        assert_eq!(
            mqtt.broker_address().expect("address"),
            ("127.0.0.1".to_owned(), 1883)
        );
        assert_eq!(mqtt.client_id, "tracery-capture");
        assert_eq!(
            mqtt.readers["dock-1"].biz_step.as_deref(),
            Some("receiving")
        );
        let err = Config::resolve(
            &ServeArgs::default(),
            file("[capture_mqtt]\nbroker = \"http://x\"\ntopic = \"t\""),
        )
        .expect_err("not mqtt");
        assert_eq!(err.setting, "capture_mqtt.broker");
    }

    #[test]
    fn secrets_do_not_print() {
        let config = Config::for_tests("postgres://user:hunter2@db/tracery");
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
