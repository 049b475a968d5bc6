//! Genealogy projection storage: per-identifier event history and the capture cursor.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::OnConflict,
};
use tracery_epcis::Event;

use crate::domain::GenealogyError;

/// The `genealogy_history` table: one row per (identifier, event).
pub mod history {
    use sea_orm::entity::prelude::*;

    /// An event that touched an identifier.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "genealogy_history")]
    pub struct Model {
        /// Row id.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// EPC or class URN as captured.
        pub identifier: String,
        /// Capture sequence of the event.
        pub sequence: i64,
        /// eventID.
        pub event_id: String,
        /// EPCIS event type.
        pub event_type: String,
        /// eventTime (UTC).
        pub event_time: ChronoDateTimeUtc,
        /// ADD/OBSERVE/DELETE, absent for transformations.
        pub action: Option<String>,
        /// bizStep.
        pub biz_step: Option<String>,
        /// disposition.
        pub disposition: Option<String>,
        /// readPoint id.
        pub read_point: Option<String>,
        /// bizLocation id.
        pub biz_location: Option<String>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `genealogy_cursor` table: the last capture sequence applied (one row).
pub mod cursor {
    use sea_orm::entity::prelude::*;

    /// The cursor.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "genealogy_cursor")]
    pub struct Model {
        /// Always 1.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        /// Highest capture sequence applied.
        pub applied_sequence: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use migration::Migrator;

mod migration {
    use sea_orm_migration::prelude::*;

    use super::{cursor, history};

    /// Genealogy migrations, tracked in their own table.
    pub struct Migrator;

    #[async_trait::async_trait]
    impl MigratorTrait for Migrator {
        fn migration_table_name() -> DynIden {
            "genealogy_migrations".into_iden()
        }

        fn migrations() -> Vec<Box<dyn MigrationTrait>> {
            vec![Box::new(CreateHistory)]
        }
    }

    struct CreateHistory;

    impl MigrationName for CreateHistory {
        fn name(&self) -> &str {
            "m0001_create_genealogy_history"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateHistory {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use history::Column as H;
            manager
                .create_table(
                    Table::create()
                        .table(history::Entity)
                        .if_not_exists()
                        .col(
                            ColumnDef::new(H::Id)
                                .big_integer()
                                .not_null()
                                .auto_increment()
                                .primary_key(),
                        )
                        .col(ColumnDef::new(H::Identifier).string().not_null())
                        .col(ColumnDef::new(H::Sequence).big_integer().not_null())
                        .col(ColumnDef::new(H::EventId).string().not_null())
                        .col(ColumnDef::new(H::EventType).string_len(32).not_null())
                        .col(
                            ColumnDef::new(H::EventTime)
                                .timestamp_with_time_zone()
                                .not_null(),
                        )
                        .col(ColumnDef::new(H::Action).string_len(8).null())
                        .col(ColumnDef::new(H::BizStep).string().null())
                        .col(ColumnDef::new(H::Disposition).string().null())
                        .col(ColumnDef::new(H::ReadPoint).string().null())
                        .col(ColumnDef::new(H::BizLocation).string().null())
                        .to_owned(),
                )
                .await?;
            // Unique, so replaying an event changes nothing; ordered for History paging.
            manager
                .create_index(
                    Index::create()
                        .name("genealogy_history_identifier_sequence")
                        .table(history::Entity)
                        .col(H::Identifier)
                        .col(H::Sequence)
                        .unique()
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
            manager
                .create_table(
                    Table::create()
                        .table(cursor::Entity)
                        .if_not_exists()
                        .col(
                            ColumnDef::new(cursor::Column::Id)
                                .integer()
                                .not_null()
                                .primary_key(),
                        )
                        .col(
                            ColumnDef::new(cursor::Column::AppliedSequence)
                                .big_integer()
                                .not_null(),
                        )
                        .to_owned(),
                )
                .await
        }
    }
}

/// Projection reads and writes.
#[derive(Clone)]
pub struct ProjectionStore {
    db: DatabaseConnection,
}

/// The one cursor row's key.
const CURSOR_ID: i32 = 1;

impl ProjectionStore {
    /// A store over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The highest capture sequence applied so far (0 when none).
    pub async fn applied_sequence(&self) -> Result<i64, GenealogyError> {
        Ok(cursor::Entity::find_by_id(CURSOR_ID)
            .one(&self.db)
            .await?
            .map_or(0, |c| c.applied_sequence))
    }

    /// Applies one event and advances the cursor in one transaction. An event at or below
    /// the cursor was applied before and is skipped; returns whether it was applied now.
    #[tracing::instrument(skip(self, event))]
    pub async fn apply(&self, sequence: i64, event: &Event) -> Result<bool, GenealogyError> {
        let txn = tracery_runtime::db::begin_write(&self.db).await?;
        let applied = cursor::Entity::find_by_id(CURSOR_ID)
            .one(&txn)
            .await?
            .map_or(0, |c| c.applied_sequence);
        if sequence <= applied {
            return Ok(false);
        }
        let event_id = event.event_id.clone().unwrap_or_default();
        if event.error_declaration.is_some() {
            // The declared event is no longer part of any object's history.
            history::Entity::delete_many()
                .filter(history::Column::EventId.eq(&event_id))
                .exec(&txn)
                .await?;
            return advance_cursor(txn, sequence).await;
        }
        let mut identifiers = event.kind.identifiers();
        identifiers.sort_unstable();
        identifiers.dedup();
        let rows: Vec<history::ActiveModel> = identifiers
            .into_iter()
            .map(|identifier| history::ActiveModel {
                identifier: Set(identifier.to_owned()),
                sequence: Set(sequence),
                event_id: Set(event_id.clone()),
                event_type: Set(event.kind.type_name().to_owned()),
                event_time: Set(event.event_time.to_utc()),
                action: Set(event.kind.action().map(|a| a.as_str().to_owned())),
                biz_step: Set(event.biz_step.clone()),
                disposition: Set(event.disposition.clone()),
                read_point: Set(event.read_point.as_ref().map(|l| l.id.clone())),
                biz_location: Set(event.biz_location.as_ref().map(|l| l.id.clone())),
                ..Default::default()
            })
            .collect();
        if !rows.is_empty() {
            history::Entity::insert_many(rows)
                .on_conflict_do_nothing_on([history::Column::Identifier, history::Column::Sequence])
                .exec(&txn)
                .await?;
        }
        advance_cursor(txn, sequence).await
    }

    /// Events that touched `identifier`, in event-time order, after the `(time, sequence)`
    /// position `after`, at most `limit`.
    pub async fn history(
        &self,
        identifier: &str,
        after: Option<(DateTime<Utc>, i64)>,
        limit: u64,
    ) -> Result<Vec<history::Model>, GenealogyError> {
        let mut query = history::Entity::find()
            .filter(history::Column::Identifier.eq(identifier))
            .order_by_asc(history::Column::EventTime)
            .order_by_asc(history::Column::Sequence);
        if let Some((time, sequence)) = after {
            query = query.filter(
                Condition::any()
                    .add(history::Column::EventTime.gt(time))
                    .add(
                        Condition::all()
                            .add(history::Column::EventTime.eq(time))
                            .add(history::Column::Sequence.gt(sequence)),
                    ),
            );
        }
        Ok(query.limit(limit).all(&self.db).await?)
    }
}

/// Moves the cursor to `sequence` and commits what was applied with it.
async fn advance_cursor(
    txn: sea_orm::DatabaseTransaction,
    sequence: i64,
) -> Result<bool, GenealogyError> {
    cursor::Entity::insert(cursor::ActiveModel {
        id: Set(CURSOR_ID),
        applied_sequence: Set(sequence),
    })
    .on_conflict(
        OnConflict::column(cursor::Column::Id)
            .update_column(cursor::Column::AppliedSequence)
            .to_owned(),
    )
    .exec(&txn)
    .await?;
    txn.commit().await?;
    Ok(true)
}
