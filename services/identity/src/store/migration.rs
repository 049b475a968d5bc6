//! Identity migrations, tracked in their own table so each service migrates on its own.

use sea_orm_migration::prelude::*;

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
        manager
            .create_table(
                Table::create()
                    .table(product::Entity)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(C::Gtin)
                            .string_len(14)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(C::ItemCode).string().not_null().unique_key())
                    .col(ColumnDef::new(C::Description).text().not_null())
                    .col(
                        ColumnDef::new(C::CompanyPrefixLength)
                            .small_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(C::UnitOfMeasure).string_len(8).not_null())
                    .col(
                        ColumnDef::new(C::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(C::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
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
                        .col(
                            ColumnDef::new(C::Name)
                                .string_len(100)
                                .not_null()
                                .primary_key(),
                        )
                        .col(ColumnDef::new(C::Gtin).string_len(14).null())
                        .col(ColumnDef::new(C::CompanyPrefix).string_len(12).null())
                        .col(ColumnDef::new(C::Format).small_integer().not_null())
                        .col(ColumnDef::new(C::Length).small_integer().not_null())
                        .col(ColumnDef::new(C::SerialOrder).small_integer().not_null())
                        .col(ColumnDef::new(C::Capacity).big_integer().not_null())
                        .col(ColumnDef::new(C::NextIndex).big_integer().not_null())
                        .col(ColumnDef::new(C::CipherKey).string_len(64).not_null())
                        .col(
                            ColumnDef::new(C::CreatedAt)
                                .timestamp_with_time_zone()
                                .not_null(),
                        )
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
            manager
                .create_table(
                    Table::create()
                        .table(pools::allocation::Entity)
                        .if_not_exists()
                        .col(
                            ColumnDef::new(C::Id)
                                .big_integer()
                                .auto_increment()
                                .primary_key(),
                        )
                        .col(ColumnDef::new(C::Pool).string_len(100).not_null())
                        .col(ColumnDef::new(C::RequestId).string_len(128).not_null())
                        .col(ColumnDef::new(C::FirstIndex).big_integer().not_null())
                        .col(ColumnDef::new(C::Count).big_integer().not_null())
                        .col(
                            ColumnDef::new(C::CreatedAt)
                                .timestamp_with_time_zone()
                                .not_null(),
                        )
                        .to_owned(),
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
        manager
            .create_table(
                Table::create()
                    .table(states::identifier_state::Entity)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(C::Epc)
                            .string_len(200)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(C::State).small_integer().not_null())
                    .col(ColumnDef::new(C::EventId).string_len(200).not_null())
                    .col(
                        ColumnDef::new(C::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateCaptureCursor {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use states::capture_cursor::Column as C;
        manager
            .create_table(
                Table::create()
                    .table(states::capture_cursor::Entity)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(C::Id)
                            .small_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(C::AppliedSequence).big_integer().not_null())
                    .to_owned(),
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
                    .col(ColumnDef::new(C::Epc).string_len(200).not_null())
                    .col(ColumnDef::new(C::Sequence).big_integer().not_null())
                    .col(ColumnDef::new(C::State).small_integer().not_null())
                    .col(ColumnDef::new(C::EventId).string_len(200).not_null())
                    .col(ColumnDef::new(C::At).timestamp_with_time_zone().not_null())
                    .primary_key(Index::create().col(C::Epc).col(C::Sequence))
                    .to_owned(),
            )
            .await
    }
}
