//! Follows the capture service's `Subscribe` stream from the persisted cursor. Each event
//! is applied with the cursor in one transaction, so a restart resumes exactly and a
//! replayed event changes nothing.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use tokio_util::sync::CancellationToken;
use tracery_epcis::proto::event_from_proto;
use tracery_proto::v1::{SubscribeRequest, capture_service_client::CaptureServiceClient};
use tracery_runtime::peers::PeerChannel;

use crate::store::ProjectionStore;

/// Counters the gRPC API reports.
#[derive(Debug, Default)]
pub struct ProjectionStats {
    /// Events applied since this process started.
    pub applied_since_start: AtomicI64,
}

/// The projection worker.
pub struct Projection {
    store: ProjectionStore,
    capture: CaptureServiceClient<PeerChannel>,
    stats: Arc<ProjectionStats>,
}

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Projection {
    /// A worker that reads from `capture` and writes to `store`.
    pub fn new(store: ProjectionStore, capture: PeerChannel) -> Self {
        Self {
            store,
            capture: CaptureServiceClient::new(capture),
            stats: Arc::new(ProjectionStats::default()),
        }
    }

    /// Shared counters.
    pub fn stats(&self) -> Arc<ProjectionStats> {
        Arc::clone(&self.stats)
    }

    /// Runs until `shutdown`, reconnecting with backoff when the stream breaks.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let outcome = tokio::select! {
                () = shutdown.cancelled() => return,
                outcome = self.follow() => outcome,
            };
            if let Err(err) = outcome {
                tracing::warn!(error = %err, ?backoff, "genealogy projection: stream broke; reconnecting");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn follow(&mut self) -> anyhow::Result<()> {
        let after_sequence = self.store.applied_sequence().await?;
        let mut stream = self
            .capture
            .subscribe(SubscribeRequest {
                after_sequence,
                filter: None,
            })
            .await?
            .into_inner();
        while let Some(message) = stream.message().await? {
            let Some(stored) = message.event else {
                continue;
            };
            let Some(proto_event) = stored.event else {
                continue;
            };
            let event = event_from_proto(&proto_event)?;
            if self.store.apply(stored.sequence, &event).await? {
                self.stats
                    .applied_since_start
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        anyhow::bail!("capture closed the stream")
    }
}
