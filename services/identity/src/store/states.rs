//! Identifier lifecycle states, one row per identifier that left the "allocated" state.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    sea_query::OnConflict,
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

const CURSOR_ID: i16 = 1;

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
        for (sequence, change) in changes {
            if *sequence <= applied {
                continue;
            }
            match change {
                CapturedChange::Transitions(transitions) => {
                    write_transitions(&txn, transitions, |_, _| Ok(true)).await?;
                }
                CapturedChange::Reversals(reversals) => revert(&txn, reversals).await?,
            }
            applied = *sequence;
            count += 1;
        }
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
async fn revert(txn: &impl ConnectionTrait, reversals: &[Reversal]) -> Result<(), IdentityError> {
    for reversal in reversals {
        let Some(row) = identifier_state::Entity::find_by_id(reversal.epc.clone())
            .one(txn)
            .await?
        else {
            continue;
        };
        if row.event_id != reversal.event_id
            || LifecycleState::from_code(row.state) != reversal.undone
        {
            continue;
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
        identifier_state::Entity::insert(identifier_state::ActiveModel {
            epc: Set(transition.epc.clone()),
            state: Set(transition.to.code()),
            event_id: Set(transition.event_id.clone()),
            updated_at: Set(transition.at),
        })
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
    }
    Ok(())
}
