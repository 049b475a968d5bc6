//! Sync-run records.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use crate::domain::{IntegrationError, RunState};

/// The `integration_sync_runs` table.
pub mod sync_run {
    use sea_orm::entity::prelude::*;

    /// One sync run.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "integration_sync_runs")]
    pub struct Model {
        /// Row id, also the order runs were started in.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// Public run id (UUID).
        #[sea_orm(unique)]
        pub run_id: String,
        /// Connector name; empty for "all".
        pub connector: String,
        /// State (see `RunState`).
        pub state: String,
        /// Records fetched.
        pub fetched: i64,
        /// Records created.
        pub created: i64,
        /// Records updated.
        pub updated: i64,
        /// Records unchanged.
        pub unchanged: i64,
        /// Records failed.
        pub failed: i64,
        /// Start.
        pub started_at: ChronoDateTimeUtc,
        /// End, once finished.
        pub ended_at: Option<ChronoDateTimeUtc>,
        /// Failure reasons, JSON array of strings.
        #[sea_orm(column_type = "Text")]
        pub errors: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use migration::Migrator;

mod migration {
    use sea_orm_migration::prelude::*;

    use super::sync_run;

    /// Integration migrations, tracked in their own table.
    pub struct Migrator;

    #[async_trait::async_trait]
    impl MigratorTrait for Migrator {
        fn migration_table_name() -> DynIden {
            "integration_migrations".into_iden()
        }

        fn migrations() -> Vec<Box<dyn MigrationTrait>> {
            vec![Box::new(CreateSyncRuns)]
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
}

/// A stored sync run.
pub type SyncRunRow = sync_run::Model;

/// Sync-run queries.
#[derive(Clone)]
pub struct SyncRunStore {
    db: DatabaseConnection,
}

impl SyncRunStore {
    /// A store over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Records a run that fetched nothing: the plant has no connectors to sync yet.
    #[tracing::instrument(skip(self))]
    pub async fn record_empty_run(&self, connector: &str) -> Result<SyncRunRow, IntegrationError> {
        let now = Utc::now();
        Ok(sync_run::ActiveModel {
            run_id: Set(uuid::Uuid::new_v4().to_string()),
            connector: Set(connector.to_owned()),
            state: Set(RunState::Succeeded.as_str().to_owned()),
            fetched: Set(0),
            created: Set(0),
            updated: Set(0),
            unchanged: Set(0),
            failed: Set(0),
            started_at: Set(now),
            ended_at: Set(Some(now)),
            errors: Set("[]".to_owned()),
            ..Default::default()
        }
        .insert(&self.db)
        .await?)
    }

    /// The run with this id.
    pub async fn get(&self, run_id: &str) -> Result<SyncRunRow, IntegrationError> {
        sync_run::Entity::find()
            .filter(sync_run::Column::RunId.eq(run_id))
            .one(&self.db)
            .await?
            .ok_or_else(|| IntegrationError::RunNotFound(run_id.to_owned()))
    }

    /// Up to `limit` runs started before the run with row id `before`, newest first.
    pub async fn list(
        &self,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<SyncRunRow>, IntegrationError> {
        let mut query = sync_run::Entity::find().order_by_desc(sync_run::Column::Id);
        if let Some(before) = before {
            query = query.filter(sync_run::Column::Id.lt(before));
        }
        Ok(query.limit(limit).all(&self.db).await?)
    }
}
