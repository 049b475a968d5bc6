//! Readiness that means ready: each service of the process reports SERVING only while
//! the database answers and every peer it cannot work without (in another process)
//! reports SERVING itself. Checked at start-up and then every few seconds; changes are
//! logged with the reason.

use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{ServiceKey, http_api::Health, peers::PeerChannel};

/// How often readiness is checked.
const PERIOD: Duration = Duration::from_secs(2);
/// How long one check (a ping, a peer's health) may take before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One service of this process and the remote peers it needs.
pub struct Needs {
    pub service: ServiceKey,
    pub peers: Vec<(ServiceKey, PeerChannel)>,
}

/// Why a service is not ready, or `None` when it is.
async fn unready_because(needs: &Needs, database_ok: bool) -> Option<String> {
    if !database_ok {
        return Some("the database does not answer".to_owned());
    }
    for (peer, channel) in &needs.peers {
        let request = HealthCheckRequest {
            service: peer.grpc_name().to_owned(),
        };
        let answer = tokio::time::timeout(
            CHECK_TIMEOUT,
            HealthClient::new(channel.clone()).check(request),
        )
        .await;
        let serving = matches!(
            answer,
            Ok(Ok(response)) if response.get_ref().status == ServingStatus::Serving as i32
        );
        if !serving {
            return Some(format!("the {peer} service it needs is not serving"));
        }
    }
    None
}

/// Checks every service's needs once and reports changes to `health`; `last` holds what
/// each service was found to be in the previous round.
async fn check(
    health: &Health,
    db: &DatabaseConnection,
    services: &[Needs],
    last: &mut [Option<bool>],
    shutdown: &CancellationToken,
) {
    let database_ok = matches!(
        tokio::time::timeout(CHECK_TIMEOUT, db.ping()).await,
        Ok(Ok(()))
    );
    for (index, needs) in services.iter().enumerate() {
        let reason = unready_because(needs, database_ok).await;
        let ready = reason.is_none();
        // Shutting down reports NOT_SERVING itself; a late check must not undo it.
        if shutdown.is_cancelled() {
            return;
        }
        if last.get(index).copied().flatten() != Some(ready) {
            match &reason {
                None => tracing::info!(service = %needs.service, "ready: SERVING"),
                Some(reason) => {
                    tracing::warn!(service = %needs.service, %reason, "not ready: NOT_SERVING");
                }
            }
            health.set(needs.service, ready).await;
        }
        if let Some(slot) = last.get_mut(index) {
            *slot = Some(ready);
        }
    }
}

/// Reports readiness now, then every [`PERIOD`] until `shutdown`.
pub async fn start(
    health: Health,
    db: DatabaseConnection,
    services: Vec<Needs>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let mut last = vec![None; services.len()];
    check(&health, &db, &services, &mut last, &shutdown).await;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(PERIOD) => {}
            }
            check(&health, &db, &services, &mut last, &shutdown).await;
        }
    })
}
