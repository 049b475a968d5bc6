//! Genealogy migrations, tracked in their own table. The projection is derived from
//! capture, so a layout change drops the tables and resets the cursor: the follower then
//! replays the capture stream into the new layout.

use sea_orm_migration::{prelude::*, schema::big_pk_auto};

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
        manager
            .create_table(
                Table::create()
                    .table(node::Entity)
                    .col(big_pk_auto(node::Column::Id))
                    .col(
                        ColumnDef::new(node::Column::Uri)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .to_owned(),
            )
            .await?;
        use event::Column as E;
        manager
            .create_table(
                Table::create()
                    .table(event::Entity)
                    .col(
                        ColumnDef::new(E::Sequence)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(E::EventId).string().not_null())
                    .col(ColumnDef::new(E::EventType).string_len(32).not_null())
                    .col(
                        ColumnDef::new(E::EventTime)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(E::Action).string_len(8).null())
                    .col(ColumnDef::new(E::BizStep).string().null())
                    .col(ColumnDef::new(E::Disposition).string().null())
                    .col(ColumnDef::new(E::ReadPoint).string().null())
                    .col(ColumnDef::new(E::BizLocation).string().null())
                    .col(ColumnDef::new(E::Custodian).string().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(history::Entity)
                    .col(
                        ColumnDef::new(history::Column::Node)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(history::Column::Sequence)
                            .big_integer()
                            .not_null(),
                    )
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
        manager
            .create_table(
                Table::create()
                    .table(link::Entity)
                    .col(big_pk_auto(L::Id))
                    .col(ColumnDef::new(L::FromNode).big_integer().not_null())
                    .col(ColumnDef::new(L::ToNode).big_integer().not_null())
                    .col(ColumnDef::new(L::Kind).small_integer().not_null())
                    .col(ColumnDef::new(L::Sequence).big_integer().not_null())
                    .col(ColumnDef::new(L::EndSequence).big_integer().null())
                    .col(ColumnDef::new(L::Quantity).double().null())
                    .col(ColumnDef::new(L::Uom).string().null())
                    .to_owned(),
            )
            .await?;
        use packing::Column as P;
        manager
            .create_table(
                Table::create()
                    .table(packing::Entity)
                    .col(big_pk_auto(P::Id))
                    .col(ColumnDef::new(P::Child).big_integer().not_null())
                    .col(ColumnDef::new(P::Parent).big_integer().not_null())
                    .col(ColumnDef::new(P::Action).small_integer().not_null())
                    .col(ColumnDef::new(P::Sequence).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(cursor::Entity)
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
