//! Follows capture's `Subscribe` into the post-back outbox.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::sync::Notify;
use tracery_epcis::proto::event_from_proto;
use tracery_proto::v1 as pb;
use tracery_runtime::follow::EventSink;

use crate::store::postings::{self, NewPosting};

/// Records production events as postings, with the capture cursor.
pub struct PostingSink {
    db: DatabaseConnection,
    /// Wakes the worker when something new is waiting.
    recorded: Arc<Notify>,
    /// When this process turned post-back on: events recorded before it, the first time
    /// post-back runs, are history. Taken at start-up rather than at the follower's
    /// first database call, which a busy pool can delay past the first captures.
    turned_on: chrono::DateTime<chrono::Utc>,
}

impl PostingSink {
    /// A sink writing to `db` and waking `recorded`'s waiter.
    pub fn new(db: DatabaseConnection, recorded: Arc<Notify>) -> Self {
        Self {
            db,
            recorded,
            turned_on: chrono::Utc::now(),
        }
    }
}

#[async_trait::async_trait]
impl EventSink for PostingSink {
    async fn applied_sequence(&self) -> anyhow::Result<i64> {
        Ok(postings::follow_cursor(&self.db, self.turned_on).await?.0)
    }

    async fn apply(&mut self, events: Vec<pb::StoredEvent>) -> anyhow::Result<usize> {
        // Events captured before post-back was turned on are history, not posted.
        let (applied, started_at) = postings::follow_cursor(&self.db, self.turned_on).await?;
        let Some(last) = events.iter().map(|e| e.sequence).max() else {
            return Ok(0);
        };
        let mut new = Vec::new();
        let mut count = 0;
        for stored in events.into_iter().filter(|e| e.sequence > applied) {
            count += 1;
            let Some(proto_event) = stored.event else {
                continue;
            };
            let event = event_from_proto(&proto_event)?;
            if event
                .record_time
                .is_some_and(|recorded| recorded.to_utc() < started_at)
            {
                continue;
            }
            let Some((order_reference, facts)) = super::facts_of(&event) else {
                continue;
            };
            let event_id = event
                .event_id
                .clone()
                .unwrap_or_else(|| format!("capture-sequence-{}", stored.sequence));
            new.push(NewPosting {
                reference: super::reference(&event_id),
                event_id,
                sequence: stored.sequence,
                order_reference,
                facts: serde_json::to_string(&facts)?,
            });
        }
        if last <= applied {
            return Ok(0);
        }
        if postings::record(&self.db, new, last).await? > 0 {
            self.recorded.notify_one();
        }
        Ok(count)
    }
}
