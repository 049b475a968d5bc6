//! Following the capture service's `Subscribe` stream from a persisted cursor: the one
//! loop every downstream projection (genealogy, identity lifecycle, integration post-back)
//! runs, with reconnection and backoff.
//!
//! The sink owns the cursor: it applies each event together with the cursor in one
//! transaction, so a restart resumes exactly and a replayed event changes nothing.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use tokio_util::sync::CancellationToken;
use tracery_proto::v1::{
    self as pb, SubscribeRequest, capture_service_client::CaptureServiceClient,
};

use crate::peers::PeerChannel;

/// Where followed events go.
#[async_trait::async_trait]
pub trait EventSink: Send {
    /// The sequence of the last applied event (0 before the first).
    async fn applied_sequence(&self) -> anyhow::Result<i64>;

    /// Applies one stored event with its cursor; returns whether it was new.
    async fn apply(&mut self, event: pb::StoredEvent) -> anyhow::Result<bool>;
}

/// Counters a follower's owner may report.
#[derive(Debug, Default)]
pub struct FollowStats {
    /// Events applied since this process started.
    pub applied_since_start: AtomicI64,
}

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Follows `capture` into `sink` until `shutdown`, reconnecting with backoff when the stream
/// breaks. `name` labels the log lines.
pub async fn follow_capture(
    name: &'static str,
    capture: PeerChannel,
    mut sink: impl EventSink,
    stats: Arc<FollowStats>,
    shutdown: CancellationToken,
) {
    let mut client = CaptureServiceClient::new(capture);
    let mut backoff = Duration::from_millis(100);
    loop {
        let outcome = tokio::select! {
            () = shutdown.cancelled() => return,
            outcome = follow_once(&mut client, &mut sink, &stats) => outcome,
        };
        if let Err(err) = outcome {
            tracing::warn!(follower = name, error = %err, ?backoff, "capture stream broke; reconnecting");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn follow_once(
    client: &mut CaptureServiceClient<PeerChannel>,
    sink: &mut impl EventSink,
    stats: &FollowStats,
) -> anyhow::Result<()> {
    let after_sequence = sink.applied_sequence().await?;
    let mut stream = client
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
        if sink.apply(stored).await? {
            stats.applied_since_start.fetch_add(1, Ordering::Relaxed);
        }
    }
    anyhow::bail!("capture closed the stream")
}
