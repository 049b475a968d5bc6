//! Readiness means ready: a service reports NOT_SERVING while its database or a peer it
//! needs (in another process) is gone, and SERVING again once it is back. The outages are
//! made with a TCP switch between the suite and the server it loses.

use std::time::Duration;

use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tracery_e2e::{TestApp, tcp_switch::TcpSwitch};
use tracery_runtime::{ServiceKey, config::Secret};

/// Waits (up to 20 s) until `service` reports `wanted`.
async fn await_status(app: &TestApp, service: &str, wanted: ServingStatus) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = app
            .health
            .clone()
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .map(|r| r.into_inner().status);
        if status.as_ref().is_ok_and(|s| *s == wanted as i32) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "`{service}` still {status:?}, waiting for {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_service_is_ready_only_while_the_peer_it_follows_is() {
    let capture = TestApp::spawn_with(|config| {
        config.services = vec![ServiceKey::Capture, ServiceKey::Identity];
    })
    .await
    .expect("capture process starts");
    let switch = TcpSwitch::start(capture.grpc_addr).await.expect("switch");
    let genealogy = TestApp::spawn_with(|config| {
        config.services = vec![ServiceKey::Genealogy];
        config.peers.capture = Some(format!("http://{}", switch.addr()));
    })
    .await
    .expect("genealogy process starts");
    let name = "tracery.v1.GenealogyService";
    await_status(&genealogy, name, ServingStatus::Serving).await;
    switch.off();
    await_status(&genealogy, name, ServingStatus::NotServing).await;
    await_status(&genealogy, "", ServingStatus::NotServing).await;
    switch.on();
    await_status(&genealogy, name, ServingStatus::Serving).await;
    genealogy.stop().await.expect("genealogy stops");
    capture.stop().await.expect("capture stops");
}

#[tokio::test]
async fn every_service_is_not_serving_while_the_database_is_gone() {
    let Ok(server) = std::env::var("TRACERY_TEST_DATABASE_URL") else {
        eprintln!(
            "SKIPPED: an embedded SQLite database cannot go away; this test runs with \
             TRACERY_TEST_DATABASE_URL (PostgreSQL)"
        );
        return;
    };
    // The database goes away behind a TCP switch; a URL naming the server's Unix socket
    // directory reaches the same server on its loopback port.
    let server_addr =
        host_port(&server).unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 5432)));
    let switch = TcpSwitch::start(server_addr).await.expect("switch");
    let proxied = switch.addr();
    let app = TestApp::spawn_with(|config| {
        let url = with_host(config.database_url.expose(), &proxied.to_string());
        config.database_url = Secret::new(url);
    })
    .await
    .expect("suite starts through the switch");
    await_status(&app, "", ServingStatus::Serving).await;
    switch.off();
    for service in [
        "tracery.v1.CaptureService",
        "tracery.v1.IdentityService",
        "",
    ] {
        await_status(&app, service, ServingStatus::NotServing).await;
    }
    switch.on();
    await_status(&app, "", ServingStatus::Serving).await;
    app.stop().await.expect("stops");
}

/// `url` with its host (a `host:port` or a percent-encoded socket directory) replaced by
/// `host`.
fn with_host(url: &str, host: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let user = authority
        .rsplit_once('@')
        .map_or(String::new(), |(user, _)| format!("{user}@"));
    format!("{scheme}://{user}{host}{path}")
}

/// The `host:port` of a database URL, resolved; `None` for a Unix socket directory.
fn host_port(url: &str) -> Option<std::net::SocketAddr> {
    use std::net::ToSocketAddrs as _;
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host_port = authority.rsplit('@').next()?;
    let with_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    with_port.to_socket_addrs().ok()?.next()
}

/// `tracery_migrations_pending`, as this process's `/metrics` reports it.
fn pending_migrations() -> f64 {
    tracery_runtime::metrics::registry()
        .gather()
        .iter()
        .find(|family| family.name() == "tracery_migrations_pending")
        .and_then(|family| {
            family
                .get_metric()
                .first()
                .map(|m| m.get_gauge().get_value())
        })
        .unwrap_or(0.0)
}

#[tokio::test]
async fn replicas_wait_for_the_migration_job_instead_of_racing_it() {
    let database = tracery_e2e::TestDatabase::create().await.expect("database");
    let url = database.url().to_owned();
    let replica = {
        let url = url.clone();
        tokio::spawn(async move {
            let mut config = tracery_runtime::Config::for_tests(&url);
            config.migrate_on_start = false;
            tracery_runtime::Application::build(config, tracery::all_modules()).await
        })
    };
    // The replica says in its metrics that it waits; until then it must not have started.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while pending_migrations() < 1.0 {
        assert!(
            !replica.is_finished(),
            "a replica must not start on an unmigrated database"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replica never waited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!replica.is_finished(), "it waits rather than starts");
    // What `tracery migrate` (the Job) does.
    let db = sea_orm::Database::connect(&url).await.expect("connect");
    tracery_runtime::server::apply_migrations(&db, &tracery::all_modules())
        .await
        .expect("migrated");
    db.close().await.expect("closed");
    let app = tokio::time::timeout(Duration::from_secs(10), replica)
        .await
        .expect("the replica starts once migrated")
        .expect("joined")
        .expect("built");
    drop(app);
    database.drop_database().await.expect("dropped");
}
