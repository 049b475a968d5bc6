//! Integration storage (sea-orm): sync runs, the records synced from each connector, and
//! each connector's cursor per record kind.

pub mod cursors;
pub mod records;
pub mod runs;

pub use migration::Migrator;
pub use runs::{SyncRunRow, SyncRunStore};

mod migration {
    use sea_orm_migration::prelude::*;

    use super::{cursors::cursor, records::record, runs::sync_run};

    /// Integration migrations, tracked in their own table.
    pub struct Migrator;

    #[async_trait::async_trait]
    impl MigratorTrait for Migrator {
        fn migration_table_name() -> DynIden {
            "integration_migrations".into_iden()
        }

        fn migrations() -> Vec<Box<dyn MigrationTrait>> {
            vec![Box::new(CreateSyncRuns), Box::new(CreateRecords)]
        }
    }

    struct CreateSyncRuns;

    impl MigrationName for CreateSyncRuns {
        fn name(&self) -> &str {
            "m0001_create_integration_sync_runs"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateSyncRuns {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use sync_run::Column as C;
            manager
                .create_table(
                    Table::create()
                        .table(sync_run::Entity)
                        .if_not_exists()
                        .col(
                            ColumnDef::new(C::Id)
                                .big_integer()
                                .not_null()
                                .auto_increment()
                                .primary_key(),
                        )
                        .col(
                            ColumnDef::new(C::RunId)
                                .string_len(36)
                                .not_null()
                                .unique_key(),
                        )
                        .col(ColumnDef::new(C::Connector).string().not_null())
                        .col(ColumnDef::new(C::State).string_len(16).not_null())
                        .col(ColumnDef::new(C::Fetched).big_integer().not_null())
                        .col(ColumnDef::new(C::Created).big_integer().not_null())
                        .col(ColumnDef::new(C::Updated).big_integer().not_null())
                        .col(ColumnDef::new(C::Unchanged).big_integer().not_null())
                        .col(ColumnDef::new(C::Failed).big_integer().not_null())
                        .col(
                            ColumnDef::new(C::StartedAt)
                                .timestamp_with_time_zone()
                                .not_null(),
                        )
                        .col(ColumnDef::new(C::EndedAt).timestamp_with_time_zone().null())
                        .col(ColumnDef::new(C::Errors).text().not_null())
                        .to_owned(),
                )
                .await
        }
    }

    struct CreateRecords;

    impl MigrationName for CreateRecords {
        fn name(&self) -> &str {
            "m0002_create_integration_records_and_cursors"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateRecords {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use record::Column as R;
            manager
                .create_table(
                    Table::create()
                        .table(record::Entity)
                        .if_not_exists()
                        .col(
                            ColumnDef::new(R::Id)
                                .big_integer()
                                .not_null()
                                .auto_increment()
                                .primary_key(),
                        )
                        .col(ColumnDef::new(R::Connector).string().not_null())
                        .col(ColumnDef::new(R::Kind).string_len(16).not_null())
                        .col(ColumnDef::new(R::Key).string().not_null())
                        .col(ColumnDef::new(R::Material).string().not_null())
                        .col(ColumnDef::new(R::Gtin).string().null())
                        .col(ColumnDef::new(R::Revision).string().null())
                        .col(ColumnDef::new(R::Status).string().null())
                        .col(
                            ColumnDef::new(R::ValidFrom)
                                .timestamp_with_time_zone()
                                .null(),
                        )
                        .col(ColumnDef::new(R::ValidTo).timestamp_with_time_zone().null())
                        .col(ColumnDef::new(R::Body).text().not_null())
                        .col(
                            ColumnDef::new(R::SyncedAt)
                                .timestamp_with_time_zone()
                                .not_null(),
                        )
                        .to_owned(),
                )
                .await?;
            let index = |name: &str, columns: &[R], unique: bool| {
                let mut index = Index::create();
                index.name(name).table(record::Entity).if_not_exists();
                for column in columns {
                    index.col(*column);
                }
                if unique {
                    index.unique();
                }
                index.to_owned()
            };
            manager
                .create_index(index(
                    "integration_records_key",
                    &[R::Connector, R::Kind, R::Key],
                    true,
                ))
                .await?;
            manager
                .create_index(index(
                    "integration_records_material",
                    &[R::Kind, R::Material],
                    false,
                ))
                .await?;
            manager
                .create_index(index("integration_records_gtin", &[R::Gtin], false))
                .await?;
            use cursor::Column as C;
            manager
                .create_table(
                    Table::create()
                        .table(cursor::Entity)
                        .if_not_exists()
                        .col(ColumnDef::new(C::Connector).string().not_null())
                        .col(ColumnDef::new(C::Kind).string_len(16).not_null())
                        .col(ColumnDef::new(C::Since).string().null())
                        .col(ColumnDef::new(C::Position).text().not_null())
                        .col(ColumnDef::new(C::PendingHighWater).string().null())
                        .primary_key(Index::create().col(C::Connector).col(C::Kind))
                        .to_owned(),
                )
                .await
        }
    }
}
