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
use sea_orm::{DatabaseTransaction, sea_query::Expr};
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
    write_packings(txn, sequence, event_id, event, &facts).await?;
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

/// Records each child packed or unpacked by the event; an unpack of everything is
/// recorded per child held at that moment.
async fn write_packings(
    txn: &DatabaseTransaction,
    sequence: i64,
    event_id: &str,
    event: &Event,
    facts: &facts::Facts,
) -> Result<(), GenealogyError> {
    let mut rows: Vec<(String, String, i16)> = Vec::new();
    for new in facts
        .links
        .iter()
        .filter(|l| l.kind == LinkKind::ContainedIn)
    {
        rows.push((new.from.clone(), new.to.clone(), PACKED));
    }
    for unpack in &facts.unpacks {
        match unpack {
            Unpack::Children { parent, children } => {
                rows.extend(
                    children
                        .iter()
                        .map(|c| (c.clone(), parent.clone(), UNPACKED)),
                );
            }
            Unpack::All { parent } => {
                let held = link::Entity::find()
                    .filter(link::Column::ToNode.eq(parent.clone()))
                    .filter(link::Column::Kind.eq(LinkKind::ContainedIn.code()))
                    .filter(link::Column::EndTime.is_null())
                    .all(txn)
                    .await?;
                rows.extend(
                    held.into_iter()
                        .map(|l| (l.from_node, parent.clone(), UNPACKED)),
                );
            }
        }
    }
    let models: Vec<packing::ActiveModel> = rows
        .into_iter()
        .map(|(child, parent, action)| packing::ActiveModel {
            child: Set(child),
            parent: Set(parent),
            action: Set(action),
            event_id: Set(event_id.to_owned()),
            sequence: Set(sequence),
            event_time: Set(event.event_time.to_utc()),
            biz_step: Set(event.biz_step.clone()),
            read_point: Set(event.read_point.as_ref().map(|l| l.id.clone())),
            ..Default::default()
        })
        .collect();
    for chunk in models.chunks(500) {
        packing::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// An error declaration: the declared event stops counting. Its history rows, links and
/// packings go, and the containment of every child it packed or unpacked is rebuilt
/// from the packings that remain, as if the event had never been captured.
async fn forget(txn: &DatabaseTransaction, event_id: &str) -> Result<(), GenealogyError> {
    let mut affected: Vec<String> = packing::Entity::find()
        .filter(packing::Column::EventId.eq(event_id))
        .all(txn)
        .await?
        .into_iter()
        .map(|p| p.child)
        .collect();
    affected.sort();
    affected.dedup();
    history::Entity::delete_many()
        .filter(history::Column::EventId.eq(event_id))
        .exec(txn)
        .await?;
    link::Entity::delete_many()
        .filter(link::Column::EventId.eq(event_id))
        .exec(txn)
        .await?;
    packing::Entity::delete_many()
        .filter(packing::Column::EventId.eq(event_id))
        .exec(txn)
        .await?;
    for child in affected {
        rebuild_containment(txn, &child).await?;
    }
    Ok(())
}

/// Replays the packings of `child` in capture order into its containment links.
async fn rebuild_containment(txn: &DatabaseTransaction, child: &str) -> Result<(), GenealogyError> {
    link::Entity::delete_many()
        .filter(link::Column::FromNode.eq(child))
        .filter(link::Column::Kind.eq(LinkKind::ContainedIn.code()))
        .exec(txn)
        .await?;
    let packings = packing::Entity::find()
        .filter(packing::Column::Child.eq(child))
        .order_by_asc(packing::Column::Sequence)
        .all(txn)
        .await?;
    let mut links: Vec<link::ActiveModel> = Vec::new();
    let mut open: Option<usize> = None;
    for packing in packings {
        let close = |links: &mut Vec<link::ActiveModel>, open: &mut Option<usize>| {
            if let Some(index) = open.take() {
                links[index].end_time = Set(Some(packing.event_time));
                links[index].closed_by = Set(Some(packing.event_id.clone()));
            }
        };
        if packing.action == PACKED {
            close(&mut links, &mut open);
            open = Some(links.len());
            links.push(link::ActiveModel {
                from_node: Set(child.to_owned()),
                to_node: Set(packing.parent.clone()),
                kind: Set(LinkKind::ContainedIn.code()),
                event_id: Set(packing.event_id.clone()),
                sequence: Set(packing.sequence),
                event_time: Set(packing.event_time),
                end_time: Set(None),
                closed_by: Set(None),
                biz_step: Set(packing.biz_step.clone()),
                read_point: Set(packing.read_point.clone()),
                quantity: Set(None),
                uom: Set(None),
                ..Default::default()
            });
        } else {
            let in_this_parent = open.is_some_and(|index| {
                matches!(&links[index].to_node, sea_orm::ActiveValue::Set(p) if *p == packing.parent)
            });
            if in_this_parent {
                close(&mut links, &mut open);
            }
        }
    }
    for chunk in links.chunks(500) {
        link::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
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

/// The `genealogy_packings` table: every pack and unpack of a child, the record that
/// containment intervals are rebuilt from when an error declaration changes the past.
pub mod packing {
    use sea_orm::entity::prelude::*;

    /// One child packed into (action 1) or taken out of (action 2) a parent.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "genealogy_packings")]
    pub struct Model {
        /// Row id.
        #[sea_orm(primary_key)]
        pub id: i64,
        pub child: String,
        pub parent: String,
        pub action: i16,
        pub event_id: String,
        pub sequence: i64,
        pub event_time: ChronoDateTimeUtc,
        pub biz_step: Option<String>,
        pub read_point: Option<String>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

const PACKED: i16 = 1;
const UNPACKED: i16 = 2;

pub use migration::Migrator;

mod migration {
    use sea_orm_migration::prelude::*;

    use sea_orm::{ConnectionTrait, EntityTrait};

    use super::{cursor, history, link, packing};

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
            use packing::Column as P;
            manager
                .create_table(
                    Table::create()
                        .table(packing::Entity)
                        .if_not_exists()
                        .col(
                            ColumnDef::new(P::Id)
                                .big_integer()
                                .not_null()
                                .auto_increment()
                                .primary_key(),
                        )
                        .col(ColumnDef::new(P::Child).string().not_null())
                        .col(ColumnDef::new(P::Parent).string().not_null())
                        .col(ColumnDef::new(P::Action).small_integer().not_null())
                        .col(ColumnDef::new(P::EventId).string().not_null())
                        .col(ColumnDef::new(P::Sequence).big_integer().not_null())
                        .col(
                            ColumnDef::new(P::EventTime)
                                .timestamp_with_time_zone()
                                .not_null(),
                        )
                        .col(ColumnDef::new(P::BizStep).string().null())
                        .col(ColumnDef::new(P::ReadPoint).string().null())
                        .to_owned(),
                )
                .await?;
            for (name, column) in [
                ("genealogy_packings_child", P::Child),
                ("genealogy_packings_event", P::EventId),
            ] {
                manager
                    .create_index(
                        Index::create()
                            .name(name)
                            .table(packing::Entity)
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
    pub async fn apply(&self, sequence: i64, event: &Event) -> Result<bool, GenealogyError> {
        Ok(self.apply_batch(&[(sequence, event.clone())]).await? == 1)
    }

    /// Applies events `(sequence, event)` in order and moves the cursor to the last, in one
    /// transaction; returns how many were above the cursor and applied now.
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    pub async fn apply_batch(&self, events: &[(i64, Event)]) -> Result<usize, GenealogyError> {
        let txn = tracery_runtime::db::begin_write(&self.db).await?;
        let mut applied = cursor::Entity::find_by_id(CURSOR_ID)
            .one(&txn)
            .await?
            .map_or(0, |c| c.applied_sequence);
        let mut count = 0;
        for (sequence, event) in events {
            if *sequence <= applied {
                continue;
            }
            let event_id = event.event_id.clone().unwrap_or_default();
            if event.error_declaration.is_some() {
                forget(&txn, &event_id).await?;
            } else {
                record(&txn, *sequence, &event_id, event).await?;
            }
            applied = *sequence;
            count += 1;
        }
        if count == 0 {
            return Ok(0);
        }
        advance_cursor(txn, applied).await?;
        Ok(count)
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

    /// Every history row of `nodes`.
    pub async fn histories(&self, nodes: &[String]) -> Result<Vec<history::Model>, GenealogyError> {
        let mut rows = Vec::new();
        for chunk in nodes.chunks(500) {
            rows.extend(
                history::Entity::find()
                    .filter(history::Column::Identifier.is_in(chunk.iter().cloned()))
                    .all(&self.db)
                    .await?,
            );
        }
        Ok(rows)
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
