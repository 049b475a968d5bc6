//! Genealogy projection storage: per-identifier event history, the links between
//! identifiers, and the capture cursor.
//!
//! Links are an adjacency table indexed from both ends, so a trace reads one level of the
//! graph per statement (`… WHERE to_node IN (frontier)`), whatever the plant's size; see
//! [`crate::graph`] for the traversal.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::OnConflict,
};
use sea_orm::{ConnectionTrait, DatabaseTransaction, sea_query::Expr};
use tracery_epcis::Event;

use crate::{
    domain::GenealogyError,
    facts::{self, LinkKind, Unpack},
};

/// Which end of a link a lookup matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkEnd {
    /// `from_node`.
    From,
    /// `to_node`.
    To,
}

/// Records what `event` says: history rows, containment it ends, links it makes.
async fn record(
    txn: &DatabaseTransaction,
    sequence: i64,
    event_id: &str,
    event: &Event,
) -> Result<(), GenealogyError> {
    let facts = facts::of(event);
    let at = event.event_time.to_utc();
    let rows: Vec<history::ActiveModel> = facts
        .touched
        .iter()
        .map(|identifier| history::ActiveModel {
            identifier: Set(identifier.clone()),
            sequence: Set(sequence),
            event_id: Set(event_id.to_owned()),
            event_type: Set(event.kind.type_name().to_owned()),
            event_time: Set(at),
            action: Set(event.kind.action().map(|a| a.as_str().to_owned())),
            biz_step: Set(event.biz_step.clone()),
            disposition: Set(event.disposition.clone()),
            read_point: Set(event.read_point.as_ref().map(|l| l.id.clone())),
            biz_location: Set(event.biz_location.as_ref().map(|l| l.id.clone())),
            custodian: Set(facts.custodian.clone()),
            ..Default::default()
        })
        .collect();
    for chunk in rows.chunks(500) {
        history::Entity::insert_many(chunk.to_vec())
            .on_conflict_do_nothing_on([history::Column::Identifier, history::Column::Sequence])
            .exec(txn)
            .await?;
    }
    let close = |condition: Condition| {
        link::Entity::update_many()
            .col_expr(link::Column::EndTime, Expr::value(at))
            .col_expr(link::Column::ClosedBy, Expr::value(event_id.to_owned()))
            .filter(link::Column::Kind.eq(LinkKind::ContainedIn.code()))
            .filter(link::Column::EndTime.is_null())
            .filter(condition)
    };
    for chunk in facts.repacked.chunks(500) {
        close(Condition::all().add(link::Column::FromNode.is_in(chunk.iter().cloned())))
            .exec(txn)
            .await?;
    }
    for unpack in &facts.unpacks {
        match unpack {
            Unpack::All { parent } => {
                close(Condition::all().add(link::Column::ToNode.eq(parent.clone())))
                    .exec(txn)
                    .await?;
            }
            Unpack::Children { parent, children } => {
                for chunk in children.chunks(500) {
                    close(
                        Condition::all()
                            .add(link::Column::ToNode.eq(parent.clone()))
                            .add(link::Column::FromNode.is_in(chunk.iter().cloned())),
                    )
                    .exec(txn)
                    .await?;
                }
            }
        }
    }
    let links: Vec<link::ActiveModel> = facts
        .links
        .into_iter()
        .map(|new| link::ActiveModel {
            from_node: Set(new.from),
            to_node: Set(new.to),
            kind: Set(new.kind.code()),
            event_id: Set(event_id.to_owned()),
            sequence: Set(sequence),
            event_time: Set(at),
            end_time: Set(None),
            closed_by: Set(None),
            biz_step: Set(event.biz_step.clone()),
            read_point: Set(event.read_point.as_ref().map(|l| l.id.clone())),
            quantity: Set(new.quantity),
            uom: Set(new.uom),
            ..Default::default()
        })
        .collect();
    for chunk in links.chunks(500) {
        link::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// An error declaration: the declared event stops counting. Its history rows and links
/// go, and containment it ended is open again.
async fn forget(txn: &impl ConnectionTrait, event_id: &str) -> Result<(), GenealogyError> {
    history::Entity::delete_many()
        .filter(history::Column::EventId.eq(event_id))
        .exec(txn)
        .await?;
    link::Entity::delete_many()
        .filter(link::Column::EventId.eq(event_id))
        .exec(txn)
        .await?;
    link::Entity::update_many()
        .col_expr(
            link::Column::EndTime,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(link::Column::ClosedBy, Expr::value(Option::<String>::None))
        .filter(link::Column::ClosedBy.eq(event_id))
        .exec(txn)
        .await?;
    Ok(())
}

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
        /// Where custody went with this event (a destination party), if it says.
        pub custodian: Option<String>,
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

/// The `genealogy_links` table: one row per link an event made.
pub mod link {
    use sea_orm::entity::prelude::*;

    /// A link between two nodes.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "genealogy_links")]
    pub struct Model {
        /// Row id.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// Source node (input, child, serial, shipped item).
        pub from_node: String,
        /// Target node (output, parent, lot, destination).
        pub to_node: String,
        /// [`crate::facts::LinkKind`] code.
        pub kind: i16,
        /// The event that made it.
        pub event_id: String,
        /// Its capture sequence.
        pub sequence: i64,
        /// Its event time: when the link began.
        pub event_time: ChronoDateTimeUtc,
        /// For containment: when the child left the parent.
        pub end_time: Option<ChronoDateTimeUtc>,
        /// The event that ended it.
        pub closed_by: Option<String>,
        /// bizStep of the making event.
        pub biz_step: Option<String>,
        /// readPoint of the making event.
        pub read_point: Option<String>,
        /// Quantity carried (transformation inputs given by quantity).
        pub quantity: Option<f64>,
        /// Its unit.
        pub uom: Option<String>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use migration::Migrator;

mod migration {
    use sea_orm_migration::prelude::*;

    use sea_orm::{ConnectionTrait, EntityTrait};

    use super::{cursor, history, link};

    /// Genealogy migrations, tracked in their own table.
    pub struct Migrator;

    #[async_trait::async_trait]
    impl MigratorTrait for Migrator {
        fn migration_table_name() -> DynIden {
            "genealogy_migrations".into_iden()
        }

        fn migrations() -> Vec<Box<dyn MigrationTrait>> {
            vec![Box::new(CreateHistory), Box::new(CreateLinks)]
        }
    }

    struct CreateLinks;

    impl MigrationName for CreateLinks {
        fn name(&self) -> &str {
            "m0002_create_genealogy_links"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateLinks {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use link::Column as L;
            manager
                .create_table(
                    Table::create()
                        .table(link::Entity)
                        .if_not_exists()
                        .col(
                            ColumnDef::new(L::Id)
                                .big_integer()
                                .not_null()
                                .auto_increment()
                                .primary_key(),
                        )
                        .col(ColumnDef::new(L::FromNode).string().not_null())
                        .col(ColumnDef::new(L::ToNode).string().not_null())
                        .col(ColumnDef::new(L::Kind).small_integer().not_null())
                        .col(ColumnDef::new(L::EventId).string().not_null())
                        .col(ColumnDef::new(L::Sequence).big_integer().not_null())
                        .col(
                            ColumnDef::new(L::EventTime)
                                .timestamp_with_time_zone()
                                .not_null(),
                        )
                        .col(ColumnDef::new(L::EndTime).timestamp_with_time_zone().null())
                        .col(ColumnDef::new(L::ClosedBy).string().null())
                        .col(ColumnDef::new(L::BizStep).string().null())
                        .col(ColumnDef::new(L::ReadPoint).string().null())
                        .col(ColumnDef::new(L::Quantity).double().null())
                        .col(ColumnDef::new(L::Uom).string().null())
                        .to_owned(),
                )
                .await?;
            for (name, columns) in [
                ("genealogy_links_from", [L::FromNode, L::Kind]),
                ("genealogy_links_to", [L::ToNode, L::Kind]),
            ] {
                manager
                    .create_index(
                        Index::create()
                            .name(name)
                            .table(link::Entity)
                            .col(columns[0])
                            .col(columns[1])
                            .if_not_exists()
                            .to_owned(),
                    )
                    .await?;
            }
            for (name, column) in [
                ("genealogy_links_event", L::EventId),
                ("genealogy_links_closed_by", L::ClosedBy),
            ] {
                manager
                    .create_index(
                        Index::create()
                            .name(name)
                            .table(link::Entity)
                            .col(column)
                            .if_not_exists()
                            .to_owned(),
                    )
                    .await?;
            }
            manager
                .alter_table(
                    Table::alter()
                        .table(history::Entity)
                        .add_column(ColumnDef::new(history::Column::Custodian).string().null())
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(
                    Index::create()
                        .name("genealogy_history_event")
                        .table(history::Entity)
                        .col(history::Column::EventId)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
            // The projection is rebuilt from capture, the source of truth: earlier rows
            // named identifiers as written, nodes are canonical now.
            let db = manager.get_connection();
            db.execute_unprepared(r#"DELETE FROM "genealogy_history""#)
                .await?;
            cursor::Entity::delete_many().exec(db).await?;
            Ok(())
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
            forget(&txn, &event_id).await?;
        } else {
            record(&txn, sequence, &event_id, event).await?;
        }
        advance_cursor(txn, sequence).await
    }

    /// Links with a node of `frontier` at `end` (`from_node` or `to_node`), of `kinds`,
    /// begun at or before `as_of` when given.
    pub async fn links_at(
        &self,
        frontier: &[String],
        end: LinkEnd,
        kinds: &[LinkKind],
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Vec<link::Model>, GenealogyError> {
        let column = match end {
            LinkEnd::From => link::Column::FromNode,
            LinkEnd::To => link::Column::ToNode,
        };
        let mut found = Vec::new();
        for chunk in frontier.chunks(500) {
            let mut query = link::Entity::find()
                .filter(column.is_in(chunk.iter().cloned()))
                .filter(link::Column::Kind.is_in(kinds.iter().map(|k| k.code())));
            if let Some(as_of) = as_of {
                query = query.filter(link::Column::EventTime.lte(as_of));
            }
            found.extend(query.order_by_asc(link::Column::Id).all(&self.db).await?);
        }
        Ok(found)
    }

    /// The latest history rows of `node`, newest first, at most `limit`.
    pub async fn latest_history(
        &self,
        node: &str,
        limit: u64,
    ) -> Result<Vec<history::Model>, GenealogyError> {
        Ok(history::Entity::find()
            .filter(history::Column::Identifier.eq(node))
            .order_by_desc(history::Column::EventTime)
            .order_by_desc(history::Column::Sequence)
            .limit(limit)
            .all(&self.db)
            .await?)
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
            .filter(history::Column::Identifier.eq(facts::node_id(identifier)))
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
