//! The genealogy projection as a [`EventSink`]: events from capture's `Subscribe` are
//! applied in batches with the cursor in one transaction (see [`ProjectionStore::apply_batch`]).

use tracery_epcis::proto::event_from_proto;
use tracery_proto::v1 as pb;
use tracery_runtime::follow::EventSink;

use crate::store::ProjectionStore;

/// Feeds followed events into the genealogy tables.
pub struct GenealogySink {
    store: ProjectionStore,
}

impl GenealogySink {
    /// A sink writing to `store`.
    pub fn new(store: ProjectionStore) -> Self {
        Self { store }
    }
}

#[async_trait::async_trait]
impl EventSink for GenealogySink {
    async fn applied_sequence(&self) -> anyhow::Result<i64> {
        Ok(self.store.applied_sequence().await?)
    }

    async fn apply(&mut self, events: Vec<pb::StoredEvent>) -> anyhow::Result<usize> {
        let mut decoded = Vec::with_capacity(events.len());
        for stored in events {
            if let Some(event) = &stored.event {
                decoded.push((stored.sequence, event_from_proto(event)?));
            }
        }
        Ok(self.store.apply_batch(&decoded).await?)
    }
}
