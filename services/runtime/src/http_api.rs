//! The HTTP listener's own routes (`/healthz`, `/metrics`) and the health state shared
//! with gRPC.

use std::{collections::BTreeMap, sync::Arc};

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use sea_orm::DatabaseConnection;
use serde_json::json;
use tokio::sync::RwLock;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::ServiceKey;

/// The `grpc.health.v1` service name that is SERVING for as long as the process runs.
pub const LIVENESS: &str = "liveness";

/// Per-service health, reported both to `grpc.health.v1.Health` and to `/healthz`.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
    serving: Arc<RwLock<BTreeMap<ServiceKey, bool>>>,
}

impl Health {
    /// Health for `services`, all NOT_SERVING until [`set`](Self::set), reported through
    /// `reporter` (from `tonic_health::server::health_reporter`).
    pub async fn new(reporter: HealthReporter, services: &[ServiceKey]) -> Self {
        let health = Self {
            reporter,
            serving: Arc::new(RwLock::new(BTreeMap::new())),
        };
        for key in services {
            health.set(*key, false).await;
        }
        // For liveness probes: the process answers, whatever its dependencies do (a
        // database outage must not restart every replica).
        health
            .reporter
            .set_service_status(LIVENESS, ServingStatus::Serving)
            .await;
        health
    }

    /// Marks one service serving or not.
    pub async fn set(&self, key: ServiceKey, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter
            .set_service_status(key.grpc_name(), status)
            .await;
        let mut map = self.serving.write().await;
        map.insert(key, serving);
        let all = map.values().all(|s| *s);
        drop(map);
        // The empty service name is the whole server, as grpc.health.v1 specifies.
        let overall = if all {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status("", overall).await;
    }
}

/// Routes served on the HTTP listener.
pub fn router(health: Health, db: DatabaseConnection) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state((health, db))
}

/// Every metric of the process, in the Prometheus text format.
async fn metrics() -> (
    StatusCode,
    [(axum::http::header::HeaderName, &'static str); 1],
    String,
) {
    use prometheus::Encoder as _;
    let encoder = prometheus::TextEncoder::new();
    let mut text = Vec::new();
    match encoder.encode(&crate::metrics::registry().gather(), &mut text) {
        Ok(()) => (
            StatusCode::OK,
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4",
            )],
            String::from_utf8_lossy(&text).into_owned(),
        ),
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(axum::http::header::CONTENT_TYPE, "text/plain")],
            err.to_string(),
        ),
    }
}

async fn healthz(
    State((health, db)): State<(Health, DatabaseConnection)>,
) -> (StatusCode, Json<serde_json::Value>) {
    let services: BTreeMap<&str, &str> = health
        .serving
        .read()
        .await
        .iter()
        .map(|(key, serving)| {
            (
                key.as_str(),
                if *serving { "SERVING" } else { "NOT_SERVING" },
            )
        })
        .collect();
    let database_ok = db.ping().await.is_ok();
    let ok = database_ok && services.values().all(|s| *s == "SERVING");
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ok { "SERVING" } else { "NOT_SERVING" },
            "database": if database_ok { "ok" } else { "unreachable" },
            "services": services,
        })),
    )
}
