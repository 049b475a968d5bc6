//! Following the capture service's `Subscribe` stream from a persisted cursor: the one
//! loop every downstream projection (genealogy, identity lifecycle, integration post-back)
//! runs, with reconnection and backoff.
//!
//! The sink owns the cursor: it applies each batch of events together with the cursor in
//! one transaction, so a restart resumes exactly and a replayed event changes nothing.
//! Events already waiting on the stream are applied together (up to [`MAX_BATCH`]), so a
//! follower that fell behind catches up at database speed, not one commit per event.

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
    /// The highest capture sequence applied so far (0 when none).
    async fn applied_sequence(&self) -> anyhow::Result<i64>;

    /// Applies `events` (in sequence order) and moves the cursor to the last one, in one
    /// transaction; events at or below the cursor are skipped. Returns how many were
    /// applied now.
    async fn apply(&mut self, events: Vec<pb::StoredEvent>) -> anyhow::Result<usize>;
}

/// Counters a follower's owner may report.
#[derive(Debug, Default)]
pub struct FollowStats {
    /// Events applied since this process started.
    pub applied_since_start: AtomicI64,
}

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The most events one sink transaction takes. Larger batches (1,000 was tried) hold
/// SQLite's single writer longer and halved capture's throughput all in one.
pub const MAX_BATCH: usize = 200;

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
            outcome = follow_once(name, &mut client, &mut sink, &stats) => outcome,
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
    name: &'static str,
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
        let mut batch: Vec<pb::StoredEvent> = message.event.into_iter().collect();
        // Take what is already waiting, without waiting for more.
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout(Duration::ZERO, stream.message()).await {
                Ok(Ok(Some(next))) => batch.extend(next.event),
                Ok(Ok(None)) | Err(_) => break,
                Ok(Err(status)) => return Err(status.into()),
            }
        }
        if batch.is_empty() {
            continue;
        }
        let traced: Vec<&str> = batch
            .iter()
            .map(|stored| stored.trace_parent.as_str())
            .filter(|parent| !parent.is_empty())
            .collect();
        let span = crate::telemetry::consumer_span(name, &traced);
        let last = batch.last().map_or(0, |stored| stored.sequence);
        let applied = tracing::Instrument::instrument(sink.apply(batch), span).await?;
        follower_position().with_label_values(&[name]).set(last);
        stats
            .applied_since_start
            .fetch_add(applied as i64, Ordering::Relaxed);
    }
    anyhow::bail!("capture closed the stream")
}

/// The capture sequence each follower has applied up to (its lag is capture's
/// `tracery_capture_last_sequence` minus this).
fn follower_position() -> &'static prometheus::IntGaugeVec {
    static GAUGE: std::sync::OnceLock<prometheus::IntGaugeVec> = std::sync::OnceLock::new();
    GAUGE.get_or_init(|| {
        crate::metrics::gauge_vec(
            "tracery_follower_applied_sequence",
            "The capture sequence a follower has applied up to",
            &["follower"],
        )
    })
}
