//! Keeps identifier lifecycle states in step with what capture stores: a
//! [`EventSink`] that follows capture's `Subscribe` and records commissioning,
//! decommissioning and destruction with the cursor.

use tokio::sync::watch;
use tracery_epcis::proto::event_from_proto;
use tracery_proto::v1 as pb;
use tracery_runtime::follow::EventSink;

use crate::{
    lifecycle::{LifecycleState, Transition},
    resolve::Resolver,
    store::{CapturedChange, Reversal, StateStore},
};

/// Applies captured events to identifier states.
pub struct LifecycleSink {
    resolver: Resolver,
    states: StateStore,
    /// Told each position applied, for callers waiting to read their own hand-set state.
    applied: watch::Sender<i64>,
}

impl LifecycleSink {
    /// A sink resolving identifiers with `resolver` and writing to `states`, telling
    /// `applied` how far it got.
    pub fn new(resolver: Resolver, states: StateStore, applied: watch::Sender<i64>) -> Self {
        Self {
            resolver,
            states,
            applied,
        }
    }
}

#[async_trait::async_trait]
impl EventSink for LifecycleSink {
    async fn applied_sequence(&self) -> anyhow::Result<i64> {
        Ok(self.states.applied_sequence().await?)
    }

    async fn apply(&mut self, events: Vec<pb::StoredEvent>) -> anyhow::Result<usize> {
        let mut changes = Vec::with_capacity(events.len());
        let last = events.iter().map(|stored| stored.sequence).max();
        for stored in events {
            let Some(proto_event) = stored.event else {
                continue;
            };
            let event = event_from_proto(&proto_event)?;
            changes.push((stored.sequence, self.change(&event).await));
        }
        let applied = self.states.apply_captured(&changes).await?;
        if let Some(last) = last {
            self.applied.send_if_modified(|at| {
                let advanced = last > *at;
                *at = (*at).max(last);
                advanced
            });
        }
        Ok(applied)
    }
}

impl LifecycleSink {
    /// What `event` does to identifier states.
    async fn change(&self, event: &tracery_epcis::Event) -> CapturedChange {
        let event_id = event.event_id.clone().unwrap_or_default();
        let mut effects = Vec::new();
        for change in event.effects().lifecycle {
            let written = change.identifier.written.as_str();
            // Identifiers identity cannot canonicalise (a Digital Link of an unregistered
            // GTIN, a non-GS1 URI) have no lifecycle here; the event itself is stored anyway.
            match self.resolver.instance_epc("epc", written).await {
                Ok((_, epc)) => effects.push((epc, LifecycleState::from(change.effect))),
                Err(err) => {
                    tracing::debug!(identifier = written, error = %err, "no lifecycle for identifier")
                }
            }
        }
        // An error declaration repeats the erroneous event: what that event did is undone.
        if event.error_declaration.is_some() {
            CapturedChange::Reversals(
                effects
                    .into_iter()
                    .map(|(epc, undone)| Reversal {
                        epc,
                        undone,
                        event_id: event_id.clone(),
                    })
                    .collect(),
            )
        } else {
            CapturedChange::Transitions(
                effects
                    .into_iter()
                    .map(|(epc, to)| Transition {
                        epc,
                        to,
                        event_id: event_id.clone(),
                        at: event.event_time.to_utc(),
                    })
                    .collect(),
            )
        }
    }
}
