//! The genealogy projection as a [`EventSink`]: each event from capture's `Subscribe` is
//! applied with the cursor in one transaction (see [`ProjectionStore::apply`]).

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

    async fn apply(&mut self, stored: pb::StoredEvent) -> anyhow::Result<bool> {
        let Some(proto_event) = stored.event else {
            return Ok(false);
        };
        let event = event_from_proto(&proto_event)?;
        Ok(self.store.apply(stored.sequence, &event).await?)
    }
}
