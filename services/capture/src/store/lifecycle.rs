//! Each identifier's lifecycle as the stored events leave it: one row per identifier an
//! event commissioned, decommissioned or destroyed, kept current in the transaction that
//! appends those events (the effects are [`Event::effects`], the one definition identity
//! applies too).
//!
//! It is what the lifecycle rules read *inside* the append transaction, under the append
//! lock: two requests commissioning the same serial at the same moment are decided one
//! after the other, and the second is quarantined naming the first — whatever identity,
//! which learns of events only by following them, knew when each request arrived.
//!
//! The table is derived: replaying the stored events in sequence order gives it back. An
//! error declaration undoes the declared event, so the identifiers it named are replayed
//! from their own events without it.

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
};
use tracery_epcis::{
    Event,
    effects::{Effects, LifecycleEffect},
};

use super::{Projection, StoredEvent, bulk, decode_payload, event, keys, placements};
use crate::{
    domain::CaptureError,
    state_rules::{Known, KnownState},
};

/// The `capture_lifecycle` table.
pub mod state_row {
    use sea_orm::entity::prelude::*;

    /// An identifier's state and the event that set it.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_lifecycle")]
    pub struct Model {
        /// The identifier, canonical.
        #[sea_orm(primary_key, auto_increment = false)]
        pub identifier: String,
        /// [`super::state_code`].
        pub state: i16,
        /// The eventID of the event that set it.
        pub event_id: String,
        /// That event's store sequence.
        pub sequence: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Rows per lookup or upsert statement: well inside SQLite's bound-parameter limit.
const CHUNK: usize = 1_000;

/// The stored code of a state.
fn state_code(effect: LifecycleEffect) -> i16 {
    match effect {
        LifecycleEffect::Commissioned => 1,
        LifecycleEffect::Decommissioned => 2,
        LifecycleEffect::Destroyed => 3,
    }
}

fn known_state(code: i16) -> KnownState {
    match code {
        1 => KnownState::Commissioned,
        2 => KnownState::Decommissioned,
        3 => KnownState::Destroyed,
        _ => KnownState::NotCommissioned,
    }
}

/// The stored states of `identifiers` as written, for the lifecycle rules: each GS1 key
/// mapped to its canonical spelling, and `NotCommissioned` where no event set a state.
pub async fn states_of(
    conn: &impl ConnectionTrait,
    identifiers: &[String],
) -> Result<Vec<(String, Known)>, DbErr> {
    // Only GS1 keys have a lifecycle the rules can judge; other URIs (places, assets of
    // other schemes) are left alone.
    let canonical: Vec<(String, String)> = identifiers
        .iter()
        .filter_map(|written| {
            tracery_gs1::canonical_uri(written).map(|canonical| (written.clone(), canonical))
        })
        .collect();
    let mut wanted: Vec<String> = canonical.iter().map(|(_, c)| c.clone()).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found: HashMap<String, (i16, String)> = HashMap::new();
    for chunk in wanted.chunks(CHUNK) {
        let rows = state_row::Entity::find()
            .filter(state_row::Column::Identifier.is_in(chunk.iter().cloned()))
            .all(conn)
            .await?;
        found.extend(
            rows.into_iter()
                .map(|row| (row.identifier, (row.state, row.event_id))),
        );
    }
    Ok(canonical
        .into_iter()
        .map(|(written, epc)| {
            let (state, event_id) = found.get(&epc).map_or(
                (KnownState::NotCommissioned, String::new()),
                |(code, by)| (known_state(*code), by.clone()),
            );
            (
                written,
                Known {
                    epc,
                    state,
                    event_id,
                },
            )
        })
        .collect())
}

/// States as a replay of events leaves them; `None` where no event set one.
#[derive(Debug, Default)]
pub(super) struct Replay {
    states: HashMap<String, Option<(i16, String, i64)>>,
}

impl Replay {
    fn apply(&mut self, sequence: i64, event: &Event) {
        self.apply_effects(sequence, event, &event.effects());
    }
}

impl Projection for Replay {
    fn apply_effects(&mut self, sequence: i64, event: &Event, effects: &Effects) {
        let event_id = event.event_id.clone().unwrap_or_default();
        for change in &effects.lifecycle {
            self.states.insert(
                change.identifier.node.clone(),
                Some((state_code(change.effect), event_id.clone(), sequence)),
            );
        }
    }

    /// Writes the outcome over the table.
    async fn write(self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        let (set, unset): (Vec<_>, Vec<_>) = self
            .states
            .into_iter()
            .partition(|(_, state)| state.is_some());
        let unset: Vec<String> = unset
            .into_iter()
            .map(|(identifier, _)| identifier)
            .collect();
        bulk::delete_where_in::<state_row::Entity>(conn, state_row::Column::Identifier, &unset)
            .await?;
        let rows: Vec<state_row::ActiveModel> = set
            .into_iter()
            .filter_map(|(identifier, state)| {
                state.map(|(state, event_id, sequence)| state_row::ActiveModel {
                    identifier: Set(identifier),
                    state: Set(state),
                    event_id: Set(event_id),
                    sequence: Set(sequence),
                })
            })
            .collect();
        bulk::upsert(
            conn,
            rows,
            state_row::Column::Identifier,
            &[
                state_row::Column::State,
                state_row::Column::EventId,
                state_row::Column::Sequence,
            ],
        )
        .await
    }

    /// The identifiers whose state a declared event set are replayed from their own
    /// events.
    async fn redo_declared(
        conn: &impl ConnectionTrait,
        declarations: &[&Event],
    ) -> Result<(), CaptureError> {
        let identifiers = declarations
            .iter()
            .flat_map(|declaration| declaration.effects().lifecycle)
            .map(|change| change.identifier.node)
            .collect();
        replay_identifiers(conn, identifiers).await
    }
}

/// Replays `identifiers` from their own events, without declared events and the
/// declarations, and writes where they end up.
async fn replay_identifiers(
    conn: &impl ConnectionTrait,
    identifiers: Vec<String>,
) -> Result<(), CaptureError> {
    // Where an event may name an instance with a lifecycle of its own.
    let roles = [keys::Role::Epc, keys::Role::Parent, keys::Role::OutputEpc];
    let sequences = placements::sequences_naming(conn, &roles, &identifiers).await?;
    let mut events = placements::events_at(conn, &sequences).await?;
    let mut replay = replay_without_declared(&mut events);
    let asked: HashSet<&String> = identifiers.iter().collect();
    replay
        .states
        .retain(|identifier, _| asked.contains(identifier));
    for identifier in identifiers {
        replay.states.entry(identifier).or_insert(None);
    }
    replay.write(conn).await?;
    Ok(())
}

/// Replays `events` (any order) without the declared ones and the declarations.
fn replay_without_declared(events: &mut [StoredEvent]) -> Replay {
    let mut replay = Replay::default();
    for stored in super::undeclared(events) {
        replay.apply(stored.sequence, &stored.event);
    }
    replay
}

/// Fills the table from every stored event (the migration that introduced it), a chunk
/// of events at a time: later chunks overwrite what earlier ones set.
pub async fn rebuild(conn: &impl ConnectionTrait) -> Result<(), CaptureError> {
    let declared: HashSet<String> = event::Entity::find()
        .select_only()
        .column(event::Column::Declares)
        .filter(event::Column::Declares.is_not_null())
        .into_tuple::<Option<String>>()
        .all(conn)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let payloads = super::payloads::Payloads::default();
    let mut after = 0;
    loop {
        let rows = super::payloads_after(conn, after, CHUNK as u64).await?;
        let Some(last) = rows.last().map(|r| r.0) else {
            return Ok(());
        };
        let mut replay = Replay::default();
        for (sequence, payload) in rows {
            let stored = decode_payload(conn, &payloads, sequence, &payload).await?;
            let id = stored.event.event_id.as_deref().unwrap_or_default();
            if stored.event.error_declaration.is_none() && !declared.contains(id) {
                replay.apply(sequence, &stored.event);
            }
        }
        replay.write(conn).await?;
        after = last;
    }
}
