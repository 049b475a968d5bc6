//! Identifier lifecycle states, one row per identifier that left the "allocated" state.

use chrono::{DateTime, Utc};
use std::collections::HashMap;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, sea_query::OnConflict,
};

use crate::{
    domain::IdentityError,
    lifecycle::{LifecycleState, Transition},
};

/// The PostgreSQL advisory lock key of the capture follower ("identity").
const FOLLOW_LOCK: i64 = 0x6964_656e_7469_7479;

/// The `identity_identifier_states` table.
pub mod identifier_state {
    use sea_orm::entity::prelude::*;

    /// The last known state of one identifier.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "identity_identifier_states")]
    pub struct Model {
        /// Canonical EPC URN.
        #[sea_orm(primary_key, auto_increment = false)]
        pub epc: String,
        /// [`crate::lifecycle::LifecycleState`] code.
        pub state: i16,
        /// The event that caused the last transition.
        pub event_id: String,
        /// Event time of the last transition.
        pub updated_at: ChronoDateTimeUtc,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `identity_capture_cursor` table: how far the lifecycle projection has followed
/// capture (one row).
pub mod capture_cursor {
    use sea_orm::entity::prelude::*;

    /// The cursor.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "identity_capture_cursor")]
    pub struct Model {
        /// Always [`super::CURSOR_ID`].
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i16,
        /// Last applied capture sequence.
        pub applied_sequence: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `identity_state_history` table: every captured lifecycle change, so an error
/// declaration is undone by replaying what is left, as capture does — not by guessing the
/// state before.
pub mod state_history {
    use sea_orm::entity::prelude::*;

    /// One captured change of one identifier.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "identity_state_history")]
    pub struct Model {
        /// Canonical EPC URN.
        #[sea_orm(primary_key, auto_increment = false)]
        pub epc: String,
        /// The capture sequence of the event.
        #[sea_orm(primary_key, auto_increment = false)]
        pub sequence: i64,
        /// [`crate::lifecycle::LifecycleState`] code.
        pub state: i16,
        /// The event.
        pub event_id: String,
        /// Its event time.
        pub at: ChronoDateTimeUtc,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

const CURSOR_ID: i16 = 1;

/// Rows per multi-row statement: within SQLite's bound-parameter limit.
const CHUNK: usize = 400;

/// A stored state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredState {
    /// The state.
    pub state: LifecycleState,
    /// The event that set it.
    pub event_id: String,
    /// When.
    pub updated_at: DateTime<Utc>,
}

/// Lifecycle state queries.
#[derive(Clone)]
pub struct StateStore {
    db: DatabaseConnection,
}

impl StateStore {
    /// A store over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The stored states of `epcs` (identifiers without a row are left out).
    pub async fn get_many(
        &self,
        epcs: &[String],
    ) -> Result<Vec<(String, StoredState)>, IdentityError> {
        let mut found = Vec::new();
        // Bounded IN lists keep both SQLite and PostgreSQL within their parameter limits.
        for chunk in epcs.chunks(500) {
            let rows = identifier_state::Entity::find()
                .filter(identifier_state::Column::Epc.is_in(chunk.iter().cloned()))
                .all(&self.db)
                .await?;
            found.extend(rows.into_iter().map(|row| {
                (
                    row.epc,
                    StoredState {
                        state: LifecycleState::from_code(row.state),
                        event_id: row.event_id,
                        updated_at: row.updated_at,
                    },
                )
            }));
        }
        Ok(found)
    }

    /// Applies `transitions` in one transaction, after `check` approved each against the
    /// state it read inside that transaction.
    pub async fn apply(
        &self,
        transitions: &[Transition],
        check: impl Fn(&Transition, Option<&StoredState>) -> Result<bool, IdentityError>,
    ) -> Result<(), IdentityError> {
        let txn = tracery_runtime::db::begin_write(&self.db).await?;
        write_transitions(&txn, transitions, check).await?;
        txn.commit().await?;
        Ok(())
    }

    /// The capture sequence the lifecycle projection has applied.
    pub async fn applied_sequence(&self) -> Result<i64, IdentityError> {
        Ok(capture_cursor::Entity::find_by_id(CURSOR_ID)
            .one(&self.db)
            .await?
            .map_or(0, |c| c.applied_sequence))
    }

    /// Records what captured event `sequence` did to identifiers, with the cursor, in one
    /// transaction. Capture has validated the event already, so the facts are recorded as
    /// they are; a replay (sequence at or below the cursor) changes nothing.
    pub async fn apply_captured(
        &self,
        changes: &[(i64, CapturedChange)],
    ) -> Result<usize, IdentityError> {
        let txn = tracery_runtime::db::begin_write(&self.db).await?;
        // Replicas follow the same stream: one applies a batch, the others then skip it.
        tracery_runtime::db::serialize(&txn, FOLLOW_LOCK).await?;
        let mut applied = capture_cursor::Entity::find_by_id(CURSOR_ID)
            .one(&txn)
            .await?
            .map_or(0, |c| c.applied_sequence);
        let mut count = 0;
        // Changes are written a run at a time: consecutive transitions in one statement
        // per table, each reversal on its own (it reads what is left).
        let mut run: Vec<(i64, &Transition)> = Vec::new();
        for (sequence, change) in changes {
            if *sequence <= applied {
                continue;
            }
            match change {
                CapturedChange::Transitions(transitions) => {
                    run.extend(transitions.iter().map(|t| (*sequence, t)));
                }
                CapturedChange::Reversals(reversals) => {
                    record_run(&txn, std::mem::take(&mut run)).await?;
                    revert(&txn, reversals).await?;
                }
            }
            applied = *sequence;
            count += 1;
        }
        record_run(&txn, run).await?;
        if count == 0 {
            return Ok(0);
        }
        capture_cursor::Entity::insert(capture_cursor::ActiveModel {
            id: Set(CURSOR_ID),
            applied_sequence: Set(applied),
        })
        .on_conflict(
            OnConflict::column(capture_cursor::Column::Id)
                .update_column(capture_cursor::Column::AppliedSequence)
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        Ok(count)
    }
}

/// What one captured event does to identifier states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapturedChange {
    /// A new fact: the event's lifecycle effects.
    Transitions(Vec<Transition>),
    /// An error declaration: the declared event's effects are undone.
    Reversals(Vec<Reversal>),
}

/// Undoing what an event declared erroneous did to one identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reversal {
    /// Canonical EPC URN.
    pub epc: String,
    /// The state the erroneous event set.
    pub undone: LifecycleState,
    /// The erroneous event.
    pub event_id: String,
}

/// Undoes reversals whose identifier is still in the state the erroneous event set; a
/// later event has the last word otherwise. Commissioning undone returns the identifier
/// to allocated or unknown (no row); a retirement undone returns it to commissioned.
/// Records captured transitions in order: their history rows, and each identifier's last
/// state, one multi-row statement per table.
async fn record_run(
    txn: &impl ConnectionTrait,
    run: Vec<(i64, &Transition)>,
) -> Result<(), IdentityError> {
    if run.is_empty() {
        return Ok(());
    }
    let history: Vec<state_history::ActiveModel> = run
        .iter()
        .map(|(sequence, t)| state_history::ActiveModel {
            epc: Set(t.epc.clone()),
            sequence: Set(*sequence),
            state: Set(t.to.code()),
            event_id: Set(t.event_id.clone()),
            at: Set(t.at),
        })
        .collect();
    for chunk in history.chunks(CHUNK) {
        state_history::Entity::insert_many(chunk.to_vec())
            .on_conflict_do_nothing_on([
                state_history::Column::Epc,
                state_history::Column::Sequence,
            ])
            .exec_without_returning(txn)
            .await?;
    }
    let mut last: HashMap<&str, &Transition> = HashMap::new();
    for (_, transition) in &run {
        last.insert(&transition.epc, transition);
    }
    let states: Vec<Transition> = last.into_values().cloned().collect();
    for chunk in states.chunks(CHUNK) {
        upsert_states(txn, chunk).await?;
    }
    Ok(())
}

/// Writes each transition as its identifier's current state.
async fn upsert_states(
    txn: &impl ConnectionTrait,
    transitions: &[Transition],
) -> Result<(), IdentityError> {
    if transitions.is_empty() {
        return Ok(());
    }
    identifier_state::Entity::insert_many(transitions.iter().map(|t| {
        identifier_state::ActiveModel {
            epc: Set(t.epc.clone()),
            state: Set(t.to.code()),
            event_id: Set(t.event_id.clone()),
            updated_at: Set(t.at),
        }
    }))
    .on_conflict(
        OnConflict::column(identifier_state::Column::Epc)
            .update_columns([
                identifier_state::Column::State,
                identifier_state::Column::EventId,
                identifier_state::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Undoes a declared event: its history rows go, and each identifier takes the state its
/// remaining history ends in (none: the row goes). An identifier whose history predates
/// the history table is undone as before: back to commissioned, or gone.
async fn revert(txn: &impl ConnectionTrait, reversals: &[Reversal]) -> Result<(), IdentityError> {
    for reversal in reversals {
        let removed = state_history::Entity::delete_many()
            .filter(state_history::Column::Epc.eq(reversal.epc.as_str()))
            .filter(state_history::Column::EventId.eq(reversal.event_id.as_str()))
            .exec(txn)
            .await?
            .rows_affected;
        if removed == 0 {
            revert_without_history(txn, reversal).await?;
            continue;
        }
        let remaining = state_history::Entity::find()
            .filter(state_history::Column::Epc.eq(reversal.epc.as_str()))
            .order_by_desc(state_history::Column::Sequence)
            .one(txn)
            .await?;
        match remaining {
            Some(row) => {
                let to = Transition {
                    epc: row.epc,
                    to: LifecycleState::from_code(row.state),
                    event_id: row.event_id,
                    at: row.at,
                };
                upsert_states(txn, &[to]).await?;
            }
            None => {
                identifier_state::Entity::delete_by_id(reversal.epc.clone())
                    .exec(txn)
                    .await?;
            }
        }
    }
    Ok(())
}

async fn revert_without_history(
    txn: &impl ConnectionTrait,
    reversal: &Reversal,
) -> Result<(), IdentityError> {
    let Some(row) = identifier_state::Entity::find_by_id(reversal.epc.clone())
        .one(txn)
        .await?
    else {
        return Ok(());
    };
    if row.event_id != reversal.event_id || LifecycleState::from_code(row.state) != reversal.undone
    {
        return Ok(());
    }
    if reversal.undone == LifecycleState::Commissioned {
        identifier_state::Entity::delete_by_id(reversal.epc.clone())
            .exec(txn)
            .await?;
    } else {
        let mut active: identifier_state::ActiveModel = row.into();
        active.state = Set(LifecycleState::Commissioned.code());
        sea_orm::ActiveModelTrait::update(active, txn).await?;
    }
    Ok(())
}

async fn write_transitions(
    txn: &impl ConnectionTrait,
    transitions: &[Transition],
    check: impl Fn(&Transition, Option<&StoredState>) -> Result<bool, IdentityError>,
) -> Result<(), IdentityError> {
    for transition in transitions {
        let stored = identifier_state::Entity::find_by_id(transition.epc.clone())
            .one(txn)
            .await?
            .map(|row| StoredState {
                state: LifecycleState::from_code(row.state),
                event_id: row.event_id,
                updated_at: row.updated_at,
            });
        if !check(transition, stored.as_ref())? {
            continue;
        }
        upsert_states(txn, std::slice::from_ref(transition)).await?;
    }
    Ok(())
}
