//! Genealogy migrations, tracked in their own table. The projection is derived from
//! capture, so a layout change drops the tables and resets the cursor: the follower then
//! replays the capture stream into the new layout.

use sea_orm_migration::{
    prelude::*,
    schema::{
        big_integer, big_integer_null, big_pk_auto, double_null, integer, small_integer, string,
        string_len, string_len_null, string_null, timestamp_with_time_zone,
    },
};
use tracery_runtime::migrations::create_table;

use super::tables::{cursor, event, history, link, node, packing};

/// Genealogy migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        "genealogy_migrations".into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Superseded("m0001_create_genealogy_history")),
            Box::new(Superseded("m0002_create_genealogy_links")),
            Box::new(InternNodes),
        ]
    }
}

/// An earlier layout, replaced as a whole by [`InternNodes`]; kept by name because the
/// migration table of an existing database lists it.
struct Superseded(&'static str);

impl MigrationName for Superseded {
    fn name(&self) -> &str {
        self.0
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Superseded {
    async fn up(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}

struct InternNodes;

impl MigrationName for InternNodes {
    fn name(&self) -> &str {
        "m0003_intern_nodes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for InternNodes {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "genealogy_history",
            "genealogy_links",
            "genealogy_packings",
            "genealogy_cursor",
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        create_table(
            manager,
            node::Entity,
            [
                big_pk_auto(node::Column::Id),
                string(node::Column::Uri).unique_key().take(),
            ],
        )
        .await?;
        use event::Column as E;
        create_table(
            manager,
            event::Entity,
            [
                big_integer(E::Sequence).primary_key().take(),
                string(E::EventId),
                string_len(E::EventType, 32),
                timestamp_with_time_zone(E::EventTime),
                string_len_null(E::Action, 8),
                string_null(E::BizStep),
                string_null(E::Disposition),
                string_null(E::ReadPoint),
                string_null(E::BizLocation),
                string_null(E::Custodian),
            ],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(history::Entity)
                    .col(big_integer(history::Column::Node))
                    .col(big_integer(history::Column::Sequence))
                    // Unique, so replaying an event changes nothing.
                    .primary_key(
                        Index::create()
                            .col(history::Column::Node)
                            .col(history::Column::Sequence),
                    )
                    .to_owned(),
            )
            .await?;
        use link::Column as L;
        create_table(
            manager,
            link::Entity,
            [
                big_pk_auto(L::Id),
                big_integer(L::FromNode),
                big_integer(L::ToNode),
                small_integer(L::Kind),
                big_integer(L::Sequence),
                big_integer_null(L::EndSequence),
                double_null(L::Quantity),
                string_null(L::Uom),
            ],
        )
        .await?;
        use packing::Column as P;
        create_table(
            manager,
            packing::Entity,
            [
                big_pk_auto(P::Id),
                big_integer(P::Child),
                big_integer(P::Parent),
                small_integer(P::Action),
                big_integer(P::Sequence),
            ],
        )
        .await?;
        create_table(
            manager,
            cursor::Entity,
            [
                integer(cursor::Column::Id).primary_key().take(),
                big_integer(cursor::Column::AppliedSequence),
            ],
        )
        .await?;
        // Traces read links from either end; error declarations find an event's rows by
        // its sequence, and its sequence by its eventID.
        let indexes: [(&str, TableRef, Vec<DynIden>); 7] = [
            (
                "genealogy_links_from",
                link::Entity.into_table_ref(),
                vec![L::FromNode.into_iden(), L::Kind.into_iden()],
            ),
            (
                "genealogy_links_to",
                link::Entity.into_table_ref(),
                vec![L::ToNode.into_iden(), L::Kind.into_iden()],
            ),
            (
                "genealogy_links_sequence",
                link::Entity.into_table_ref(),
                vec![L::Sequence.into_iden()],
            ),
            (
                "genealogy_history_sequence",
                history::Entity.into_table_ref(),
                vec![history::Column::Sequence.into_iden()],
            ),
            (
                "genealogy_packings_child",
                packing::Entity.into_table_ref(),
                vec![P::Child.into_iden()],
            ),
            (
                "genealogy_packings_sequence",
                packing::Entity.into_table_ref(),
                vec![P::Sequence.into_iden()],
            ),
            (
                "genealogy_events_event_id",
                event::Entity.into_table_ref(),
                vec![E::EventId.into_iden()],
            ),
        ];
        for (name, table, columns) in indexes {
            let mut index = Index::create();
            index.name(name).table(table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index).await?;
        }
        Ok(())
    }
}
