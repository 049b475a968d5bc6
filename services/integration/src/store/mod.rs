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
    use sea_orm_migration::schema::{
        big_integer, integer, small_integer, string, string_len, string_null, text, text_null,
        timestamp_with_time_zone, timestamp_with_time_zone_null,
    };
    use tracery_runtime::migrations::create_table;

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
            create_table(
                manager,
                sync_run::Entity,
                [
                    big_integer(C::Id).auto_increment().primary_key().take(),
                    string_len(C::RunId, 36).unique_key().take(),
                    string(C::Connector),
                    string_len(C::State, 16),
                    big_integer(C::Fetched),
                    big_integer(C::Created),
                    big_integer(C::Updated),
                    big_integer(C::Unchanged),
                    big_integer(C::Failed),
                    timestamp_with_time_zone(C::StartedAt),
                    timestamp_with_time_zone_null(C::EndedAt),
                    text(C::Errors),
                ],
            )
            .await
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateRecords {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use record::Column as R;
            create_table(
                manager,
                record::Entity,
                [
                    big_integer(R::Id).auto_increment().primary_key().take(),
                    string(R::Connector),
                    string_len(R::Kind, 16),
                    string(R::Key),
                    string(R::Material),
                    string_null(R::Gtin),
                    string_null(R::Revision),
                    string_null(R::Status),
                    timestamp_with_time_zone_null(R::ValidFrom),
                    timestamp_with_time_zone_null(R::ValidTo),
                    text(R::Body),
                    timestamp_with_time_zone(R::SyncedAt),
                ],
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
                        .col(string(C::Connector))
                        .col(string_len(C::Kind, 16))
                        .col(string_null(C::Since))
                        .col(text(C::Position))
                        .col(string_null(C::PendingHighWater))
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
            let time = |column: P| timestamp_with_time_zone(column).to_owned();
            create_table(
                manager,
                posting::Entity,
                [
                    big_integer(P::Id).auto_increment().primary_key().take(),
                    string_len(P::PostingId, 36).unique_key().take(),
                    string_len(P::Reference, 40).unique_key().take(),
                    string(P::EventId),
                    big_integer(P::Sequence),
                    string(P::OrderReference),
                    text(P::Facts),
                    string_null(P::Connector),
                    string_null(P::OrderNumber),
                    text_null(P::Report),
                    string_len(P::State, 16),
                    integer(P::Attempts),
                    integer(P::AttemptsBeforeRetry),
                    text_null(P::LastError),
                    string_null(P::ErpDocument),
                    time(P::NextAttemptAt),
                    time(P::CreatedAt),
                    time(P::UpdatedAt),
                ],
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
            create_table(
                manager,
                follow::Entity,
                [
                    small_integer(follow::Column::Id).primary_key().take(),
                    big_integer(follow::Column::AppliedSequence),
                    timestamp_with_time_zone(follow::Column::StartedAt),
                ],
            )
            .await
        }
    }
}
