//! Integration storage (sea-orm): sync runs, the records synced from each connector, and
//! each connector's cursor per record kind.

pub mod cursors;
pub mod postings;
pub mod records;
pub mod runs;

pub use migration::Migrator;
pub use runs::{SyncRunRow, SyncRunStore};

mod migration {
    use sea_orm_migration::prelude::*;

    use super::{
        cursors::cursor,
        postings::{follow, posting},
        records::record,
        runs::sync_run,
    };

    tracery_runtime::migrator! {
        /// Integration migrations, tracked in their own table.
        pub Migrator in "integration_migrations" {
            CreateSyncRuns = "m0001_create_integration_sync_runs",
            CreateRecords = "m0002_create_integration_records_and_cursors",
            CreatePostings = "m0003_create_integration_postings",
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

    #[async_trait::async_trait]
    impl MigrationTrait for CreatePostings {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use posting::Column as P;
            let time = |column: P| {
                ColumnDef::new(column)
                    .timestamp_with_time_zone()
                    .not_null()
                    .to_owned()
            };
            manager
                .create_table(
                    Table::create()
                        .table(posting::Entity)
                        .if_not_exists()
                        .col(
                            ColumnDef::new(P::Id)
                                .big_integer()
                                .not_null()
                                .auto_increment()
                                .primary_key(),
                        )
                        .col(
                            ColumnDef::new(P::PostingId)
                                .string_len(36)
                                .not_null()
                                .unique_key(),
                        )
                        .col(
                            ColumnDef::new(P::Reference)
                                .string_len(40)
                                .not_null()
                                .unique_key(),
                        )
                        .col(ColumnDef::new(P::EventId).string().not_null())
                        .col(ColumnDef::new(P::Sequence).big_integer().not_null())
                        .col(ColumnDef::new(P::OrderReference).string().not_null())
                        .col(ColumnDef::new(P::Facts).text().not_null())
                        .col(ColumnDef::new(P::Connector).string().null())
                        .col(ColumnDef::new(P::OrderNumber).string().null())
                        .col(ColumnDef::new(P::Report).text().null())
                        .col(ColumnDef::new(P::State).string_len(16).not_null())
                        .col(ColumnDef::new(P::Attempts).integer().not_null())
                        .col(ColumnDef::new(P::AttemptsBeforeRetry).integer().not_null())
                        .col(ColumnDef::new(P::LastError).text().null())
                        .col(ColumnDef::new(P::ErpDocument).string().null())
                        .col(time(P::NextAttemptAt))
                        .col(time(P::CreatedAt))
                        .col(time(P::UpdatedAt))
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(
                    Index::create()
                        .name("integration_postings_due")
                        .table(posting::Entity)
                        .col(P::State)
                        .col(P::NextAttemptAt)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
            manager
                .create_table(
                    Table::create()
                        .table(follow::Entity)
                        .if_not_exists()
                        .col(
                            ColumnDef::new(follow::Column::Id)
                                .small_integer()
                                .not_null()
                                .primary_key(),
                        )
                        .col(
                            ColumnDef::new(follow::Column::AppliedSequence)
                                .big_integer()
                                .not_null(),
                        )
                        .col(
                            ColumnDef::new(follow::Column::StartedAt)
                                .timestamp_with_time_zone()
                                .not_null(),
                        )
                        .to_owned(),
                )
                .await
        }
    }
}
