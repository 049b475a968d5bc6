//! Identity migrations, tracked in their own table so each service migrates on its own.

use sea_orm_migration::prelude::*;
use tracery_runtime::migrations::create_table;

use sea_orm_migration::schema::{
    big_integer, big_pk_auto, small_integer, string, string_len, string_len_null, text,
    timestamp_with_time_zone,
};

use super::{pools, products::product, states};

tracery_runtime::migrator! {
    /// The identity service's migrator.
    pub Migrator in "identity_migrations" {
        CreateProducts = "m0001_create_identity_products",
        CreatePoolsAndStates = "m0002_create_serial_pools_and_identifier_states",
        CreateCaptureCursor = "m0003_create_identity_capture_cursor",
        CreateStateHistory = "m0004_create_identity_state_history",
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateProducts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use product::Column as C;
        create_table(
            manager,
            product::Entity,
            [
                string_len(C::Gtin, 14).primary_key().take(),
                string(C::ItemCode).unique_key().take(),
                text(C::Description),
                small_integer(C::CompanyPrefixLength),
                string_len(C::UnitOfMeasure, 8),
                timestamp_with_time_zone(C::CreatedAt),
                timestamp_with_time_zone(C::UpdatedAt),
            ],
        )
        .await
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreatePoolsAndStates {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        {
            use pools::pool::Column as C;
            manager
                .create_table(
                    Table::create()
                        .table(pools::pool::Entity)
                        .if_not_exists()
                        .col(string_len(C::Name, 100).primary_key())
                        .col(string_len_null(C::Gtin, 14))
                        .col(string_len_null(C::CompanyPrefix, 12))
                        .col(small_integer(C::Format))
                        .col(small_integer(C::Length))
                        .col(small_integer(C::SerialOrder))
                        .col(big_integer(C::Capacity))
                        .col(big_integer(C::NextIndex))
                        .col(string_len(C::CipherKey, 64))
                        .col(timestamp_with_time_zone(C::CreatedAt))
                        // The counter can never pass the pool's size, whatever the callers do.
                        .check(Expr::col(C::NextIndex).lte(Expr::col(C::Capacity)))
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(
                    Index::create()
                        .name("identity_serial_pools_gtin")
                        .table(pools::pool::Entity)
                        .col(C::Gtin)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        {
            use pools::allocation::Column as C;
            create_table(
                manager,
                pools::allocation::Entity,
                [
                    big_pk_auto(C::Id),
                    string_len(C::Pool, 100),
                    string_len(C::RequestId, 128),
                    big_integer(C::FirstIndex),
                    big_integer(C::Count),
                    timestamp_with_time_zone(C::CreatedAt),
                ],
            )
            .await?;
            for (name, column) in [
                ("identity_serial_allocations_request", C::RequestId),
                ("identity_serial_allocations_first", C::FirstIndex),
            ] {
                manager
                    .create_index(
                        Index::create()
                            .name(name)
                            .table(pools::allocation::Entity)
                            .col(C::Pool)
                            .col(column)
                            .unique()
                            .if_not_exists()
                            .to_owned(),
                    )
                    .await?;
            }
        }
        use states::identifier_state::Column as C;
        create_table(
            manager,
            states::identifier_state::Entity,
            [
                string_len(C::Epc, 200).primary_key().take(),
                small_integer(C::State),
                string_len(C::EventId, 200),
                timestamp_with_time_zone(C::UpdatedAt),
            ],
        )
        .await
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateCaptureCursor {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use states::capture_cursor::Column as C;
        create_table(
            manager,
            states::capture_cursor::Entity,
            [
                small_integer(C::Id).primary_key().take(),
                big_integer(C::AppliedSequence),
            ],
        )
        .await
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateStateHistory {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use states::state_history::Column as C;
        manager
            .create_table(
                Table::create()
                    .table(states::state_history::Entity)
                    .if_not_exists()
                    .col(string_len(C::Epc, 200))
                    .col(big_integer(C::Sequence))
                    .col(small_integer(C::State))
                    .col(string_len(C::EventId, 200))
                    .col(timestamp_with_time_zone(C::At))
                    .primary_key(Index::create().col(C::Epc).col(C::Sequence))
                    .to_owned(),
            )
            .await
    }
}
