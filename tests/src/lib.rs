//! Test harness: starts the real all-in-one suite on ephemeral loopback ports against a
//! fresh database and hands back connected gRPC clients.
//!
//! The database is a temporary SQLite file, or — when `TRACERY_TEST_DATABASE_URL` names a
//! PostgreSQL server — a new database created for the one test and dropped after it.

pub mod erp_postings;
pub mod erp_sites;
pub mod process;
pub mod tcp_switch;

use std::{net::SocketAddr, path::PathBuf};

use sea_orm::{ConnectionTrait, Database};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;
use tracery_proto::v1::{
    capture_service_client::CaptureServiceClient, genealogy_service_client::GenealogyServiceClient,
    identity_service_client::IdentityServiceClient,
    integration_service_client::IntegrationServiceClient,
};
use tracery_runtime::{Application, Config};

/// A database made for one test.
pub enum TestDatabase {
    /// A SQLite file in a temporary folder (removed on drop).
    Sqlite {
        /// The connection URL.
        url: String,
        /// Keeps the folder alive.
        _dir: tempfile::TempDir,
    },
    /// A PostgreSQL database created for this test.
    Postgres {
        /// The connection URL of the new database.
        url: String,
        /// The server's base URL, used to drop it.
        admin_url: String,
        /// The database name.
        name: String,
    },
}

impl TestDatabase {
    /// A fresh database on the backend chosen by `TRACERY_TEST_DATABASE_URL`.
    pub async fn create() -> anyhow::Result<Self> {
        match std::env::var("TRACERY_TEST_DATABASE_URL") {
            Ok(admin_url) if !admin_url.is_empty() => {
                let name = format!("tracery_test_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(&admin_url).await?;
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await?;
                admin.close().await?;
                Ok(Self::Postgres {
                    url: replace_database_name(&admin_url, &name)?,
                    admin_url,
                    name,
                })
            }
            _ => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}/tracery.db?mode=rwc", dir.path().display());
                Ok(Self::Sqlite { url, _dir: dir })
            }
        }
    }

    /// The connection URL.
    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url, .. } => url,
        }
    }

    /// Drops a PostgreSQL test database (SQLite files go with the temporary folder).
    pub async fn drop_database(self) -> anyhow::Result<()> {
        if let Self::Postgres {
            admin_url, name, ..
        } = self
        {
            let admin = Database::connect(&admin_url).await?;
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await?;
            admin.close().await?;
        }
        Ok(())
    }
}

fn replace_database_name(url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let (server, _) = base
        .rsplit_once('/')
        .filter(|(server, _)| server.contains("://"))
        .ok_or_else(|| anyhow::anyhow!("TRACERY_TEST_DATABASE_URL must end in /<database>"))?;
    Ok(match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    })
}

/// A running suite and clients connected to it.
pub struct TestApp {
    /// Bound gRPC address.
    pub grpc_addr: SocketAddr,
    /// Bound HTTP address.
    pub http_addr: SocketAddr,
    /// The plain-text health listener's bound address, when the config asked for one.
    pub health_addr: Option<SocketAddr>,
    /// Identity client.
    pub identity: IdentityServiceClient<Channel>,
    /// Capture client.
    pub capture: CaptureServiceClient<Channel>,
    /// Genealogy client.
    pub genealogy: GenealogyServiceClient<Channel>,
    /// Integration client.
    pub integration: IntegrationServiceClient<Channel>,
    /// grpc.health.v1 client.
    pub health: HealthClient<Channel>,
    /// A plain channel, for other clients (reflection).
    pub channel: Channel,
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
    /// The database this app owns (replicas share their primary's and own none).
    database: Option<TestDatabase>,
    database_url: String,
    /// The chain key and checkpoint file: replicas share them, as a deployment does.
    integrity: tracery_runtime::config::IntegritySettings,
    /// The suite's clock: a test shifts it to capture into months that have ended.
    pub clock: tracery_runtime::clock::Clock,
    /// What it was started with, to start it again.
    config: Config,
}

impl TestApp {
    /// Starts the suite on a fresh database.
    pub async fn spawn() -> anyhow::Result<Self> {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the suite on a fresh database with `configure` applied to the test config.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        let database = TestDatabase::create().await?;
        let mut config = Config::for_tests(database.url());
        configure(&mut config);
        Self::start(config, Some(database)).await
    }

    /// Waits (up to 15 s) until the genealogy projection has applied capture sequence
    /// `sequence`: it follows capture asynchronously.
    pub async fn await_genealogy(&self, sequence: i64) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let status = self
                .genealogy
                .clone()
                .get_projection_status(tracery_proto::v1::GetProjectionStatusRequest {})
                .await
                .expect("projection status")
                .into_inner();
            if status.applied_sequence >= sequence {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "genealogy projection stuck at {status:?}, waiting for {sequence}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Starts the suite for the GS1 example documents: they are independent illustrations
    /// and several commission the same serial, so a second commissioning only warns.
    pub async fn spawn_for_examples() -> anyhow::Result<Self> {
        Self::spawn_with(|config| {
            config.capture_rules.insert(
                "recommissioning".to_owned(),
                tracery_runtime::config::RuleAction::Warn,
            );
        })
        .await
    }

    /// The suite's database, for tests that reach behind the services (tampering).
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// Starts a second instance of the suite on this app's database, as another replica
    /// would run in a deployment.
    pub async fn spawn_replica(&self) -> anyhow::Result<Self> {
        self.spawn_replica_with(|_| {}).await
    }

    /// [`Self::spawn_replica`] with `configure` applied to its config.
    pub async fn spawn_replica_with(
        &self,
        configure: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let mut config = Config::for_tests(&self.database_url);
        config.integrity = self.integrity.clone();
        configure(&mut config);
        Self::start(config, None).await
    }

    /// The chain key and checkpoint file of this suite, for tests that act as an attacker
    /// or as an auditor.
    pub fn integrity(&self) -> &tracery_runtime::config::IntegritySettings {
        &self.integrity
    }

    async fn start(config: Config, database: Option<TestDatabase>) -> anyhow::Result<Self> {
        let started_with = config.clone();
        let clock = config.clock.clone();
        let database_url = config.database_url.expose().to_owned();
        let integrity = config.integrity.clone();
        let config_has_tls = config.tls.is_some();
        // As `tracery serve` runs it: the four services and the dashboard.
        let app = Application::build(config, tracery::all_modules())
            .await?
            .with_pages(std::sync::Arc::new(tracery::dashboard::Dashboard));
        let grpc_addr = app.grpc_addr();
        let http_addr = app.http_addr();
        let health_addr = app.health_addr();
        let shutdown = app.shutdown_token();
        let tls = config_has_tls;
        let server = tokio::spawn(app.run());
        let endpoint = Channel::from_shared(format!("http://{grpc_addr}"))?;
        // A suite serving TLS takes no plain connection: its tests dial their own.
        let connected = if tls {
            Ok(endpoint.connect_lazy())
        } else {
            endpoint.connect().await
        };
        let channel = match connected {
            Ok(channel) => channel,
            // A suite that failed to start says why better than the refused connection.
            Err(refused) => {
                return match tokio::time::timeout(std::time::Duration::from_secs(5), server).await {
                    Ok(Ok(Err(why))) => Err(why.context("the suite stopped while starting")),
                    _ => Err(refused.into()),
                };
            }
        };
        Ok(Self {
            grpc_addr,
            http_addr,
            health_addr,
            identity: IdentityServiceClient::new(channel.clone()),
            capture: CaptureServiceClient::new(channel.clone()),
            genealogy: GenealogyServiceClient::new(channel.clone()),
            integration: IntegrationServiceClient::new(channel.clone()),
            health: HealthClient::new(channel.clone()),
            channel,
            shutdown,
            server,
            database,
            database_url,
            integrity,
            clock,
            config: started_with,
        })
    }

    /// The audit trail as `(subject, action, source, request_id)`, oldest first, read
    /// straight from the database.
    pub async fn audit_log(&self) -> anyhow::Result<Vec<(String, String, String, String)>> {
        let db = Database::connect(&self.database_url).await?;
        let rows = db
            .query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT subject, action, source, request_id FROM audit_log ORDER BY id",
            ))
            .await?;
        db.close().await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("", "subject")?,
                    row.try_get("", "action")?,
                    row.try_get("", "source")?,
                    row.try_get("", "request_id")?,
                ))
            })
            .collect::<Result<_, sea_orm::DbErr>>()
            .map_err(Into::into)
    }

    /// Captures `events` in one call and returns each one's result, in order.
    pub async fn capture_events(
        &self,
        events: Vec<tracery_proto::v1::EpcisEvent>,
    ) -> Vec<tracery_proto::v1::EventResult> {
        self.capture
            .clone()
            .capture(tracery_proto::v1::CaptureRequest { events })
            .await
            .expect("captures")
            .into_inner()
            .results
    }

    /// The identity service's status of one identifier, as scanned.
    pub async fn identifier_status(&self, epc: &str) -> tracery_proto::v1::IdentifierStatus {
        self.identity
            .clone()
            .get_identifier_state(tracery_proto::v1::GetIdentifierStateRequest {
                epc: epc.to_owned(),
            })
            .await
            .expect("an identifier state")
            .into_inner()
            .status
            .expect("a status")
    }

    /// The identity service's statuses of `epcs`, in order.
    pub async fn identifier_statuses(
        &self,
        epcs: Vec<String>,
    ) -> Vec<tracery_proto::v1::IdentifierStatus> {
        self.identity
            .clone()
            .batch_get_identifier_states(tracery_proto::v1::BatchGetIdentifierStatesRequest {
                epcs,
            })
            .await
            .expect("identifier states")
            .into_inner()
            .statuses
    }

    /// What `VerifyIntegrity` reports of the store now.
    pub async fn verify_integrity(&self) -> tracery_proto::v1::VerifyIntegrityResponse {
        self.capture
            .clone()
            .verify_integrity(tracery_proto::v1::VerifyIntegrityRequest {})
            .await
            .expect("verified")
            .into_inner()
    }

    /// The Prometheus text of `/metrics` (one registry per process: other tests' counts
    /// are in it too).
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.http_addr))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// The `(sequence, eventID)` of every stored event, in sequence order.
    pub async fn stored_events(&self) -> Vec<(i64, String)> {
        self.capture
            .clone()
            .query_events(tracery_proto::v1::QueryEventsRequest::default())
            .await
            .map(|r| r.into_inner().events)
            .unwrap_or_default()
            .into_iter()
            .map(|stored| {
                (
                    stored.sequence,
                    stored.event.map(|e| e.event_id).unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Stops the suite gracefully and starts it again on the same database and
    /// configuration (on new ports), as an operator's restart does.
    pub async fn restart(mut self) -> anyhow::Result<Self> {
        self.shutdown.cancel();
        self.server.await??;
        Self::start(self.config, self.database.take()).await
    }

    /// The quarantine, once it holds `count` entries or `within` has passed (for intakes
    /// that quarantine in the background).
    pub async fn quarantined(
        &self,
        count: usize,
        within: std::time::Duration,
    ) -> Vec<tracery_proto::v1::QuarantinedEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let entries = self
                .capture
                .clone()
                .list_quarantine(tracery_proto::v1::ListQuarantineRequest::default())
                .await
                .expect("lists")
                .into_inner()
                .entries;
            if entries.len() >= count || tokio::time::Instant::now() > deadline {
                return entries;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Stops the suite gracefully and drops the test database.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.server.await??;
        match self.database {
            Some(database) => database.drop_database().await,
            None => Ok(()),
        }
    }
}

/// The shared fixtures folder (`../shared` beside the repository), or `None` with a loud
/// message when it is absent. With `TRACERY_REQUIRE_FIXTURES=1` (CI) absence is a failure.
pub fn shared_fixtures() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("TRACERY_REQUIRE_FIXTURES").as_deref() != Ok("1"),
        "TRACERY_REQUIRE_FIXTURES=1 but the fixtures folder {} is missing",
        dir.display()
    );
    eprintln!(
        "\n*** SKIPPED: fixtures folder {} is missing; this test did not run ***\n",
        dir.display()
    );
    None
}

/// The MQTT broker on 127.0.0.1:1883, or `None` with a loud message when nothing listens
/// there (a developer machine without Mosquitto). With `TRACERY_REQUIRE_FIXTURES=1` (CI,
/// which starts Mosquitto) absence is a failure.
pub fn mqtt_broker() -> Option<std::net::SocketAddr> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 1883));
    if std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1)).is_ok() {
        return Some(addr);
    }
    assert!(
        std::env::var("TRACERY_REQUIRE_FIXTURES").as_deref() != Ok("1"),
        "TRACERY_REQUIRE_FIXTURES=1 but no MQTT broker listens on {addr}"
    );
    eprintln!(
        "\n*** SKIPPED: no MQTT broker on {addr} (start Mosquitto); this test did not run ***\n"
    );
    None
}

/// Every file under `dir` whose name ends in `suffix`, sorted.
pub fn files_with_suffix(dir: &std::path::Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Starts a per-service `binary` with no peer endpoints in a scratch folder and asserts that
/// `grpc.health.v1` reports `service` SERVING — the per-service deployment's first check.
pub async fn assert_serves_alone(binary: &str, service: &str) {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };

    let dir = tempfile::tempdir().expect("working directory");
    let mut command = std::process::Command::new(binary);
    command.current_dir(dir.path()).env("RUST_LOG", "error");
    let mut server = process::ServerProcess::start(command);
    let mut status = None;
    for _ in 0..200 {
        let endpoint = Channel::from_shared(server.grpc_url()).expect("valid URI");
        if let Ok(channel) = endpoint.connect().await {
            let request = HealthCheckRequest {
                service: service.to_owned(),
            };
            // NOT_SERVING while it starts; wait for SERVING.
            if let Ok(response) = HealthClient::new(channel).check(request).await {
                status = Some(response.into_inner().status);
                if status == Some(ServingStatus::Serving as i32) {
                    break;
                }
            }
        }
        if let Ok(Some(exit)) = server.child.try_wait() {
            panic!("{binary} exited: {exit}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop(server);
    assert_eq!(status, Some(ServingStatus::Serving as i32), "{binary}");
}

/// `text` percent-encoded for a URL path segment or query value (RFC 3986 unreserved
/// characters left as they are).
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            replace_database_name("postgres://postgres@127.0.0.1:5432/test", "x").expect("valid"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database_name("postgres://u@h/test?sslmode=disable", "x").expect("valid"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert!(replace_database_name("postgres://", "x").is_err());
    }
}
