//! Sync-run records: one row per run, its counts and failure reasons updated per page.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::records::Applied;
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

    /// Records the start of a run of `connector` (empty for all).
    #[tracing::instrument(skip(self))]
    pub async fn start(&self, connector: &str) -> Result<SyncRunRow, IntegrationError> {
        Ok(sync_run::ActiveModel {
            run_id: Set(uuid::Uuid::new_v4().to_string()),
            connector: Set(connector.to_owned()),
            state: Set(RunState::Running.as_str().to_owned()),
            fetched: Set(0),
            created: Set(0),
            updated: Set(0),
            unchanged: Set(0),
            failed: Set(0),
            started_at: Set(Utc::now()),
            ended_at: Set(None),
            errors: Set("[]".to_owned()),
            ..Default::default()
        }
        .insert(&self.db)
        .await?)
    }

    /// Finishes run `run_id` in `state`, adding `error` to its reasons.
    pub async fn finish(
        &self,
        run_id: &str,
        state: RunState,
        error: Option<String>,
    ) -> Result<(), IntegrationError> {
        let run = self.get(run_id).await?;
        let mut errors: Vec<String> = serde_json::from_str(&run.errors).unwrap_or_default();
        errors.extend(error);
        sync_run::Entity::update(sync_run::ActiveModel {
            id: Set(run.id),
            state: Set(state.as_str().to_owned()),
            ended_at: Set(Some(Utc::now())),
            errors: Set(serde_json::to_string(&errors).unwrap_or_else(|_| "[]".to_owned())),
            ..Default::default()
        })
        .exec(&self.db)
        .await?;
        Ok(())
    }

    /// Runs a previous process left running (it stopped mid-sync): each is marked failed
    /// and returned, so its connector can be synced again from its stored cursor.
    pub async fn interrupted(&self) -> Result<Vec<SyncRunRow>, IntegrationError> {
        let running = sync_run::Entity::find()
            .filter(sync_run::Column::State.eq(RunState::Running.as_str()))
            .all(&self.db)
            .await?;
        for run in &running {
            self.finish(
                &run.run_id,
                RunState::Failed,
                Some("interrupted: the service stopped during the run".to_owned()),
            )
            .await?;
        }
        Ok(running)
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

/// Adds one applied page to run `run_id`, in the page's transaction.
pub async fn add_page(
    conn: &impl ConnectionTrait,
    run_id: &str,
    fetched: i64,
    applied: Applied,
    errors: Vec<String>,
) -> Result<(), IntegrationError> {
    let run = sync_run::Entity::find()
        .filter(sync_run::Column::RunId.eq(run_id))
        .one(conn)
        .await?
        .ok_or_else(|| IntegrationError::RunNotFound(run_id.to_owned()))?;
    let failed = errors.len() as i64;
    let mut all: Vec<String> = serde_json::from_str(&run.errors).unwrap_or_default();
    all.extend(errors);
    sync_run::Entity::update(sync_run::ActiveModel {
        id: Set(run.id),
        fetched: Set(run.fetched + fetched),
        created: Set(run.created + applied.created),
        updated: Set(run.updated + applied.updated),
        unchanged: Set(run.unchanged + applied.unchanged),
        failed: Set(run.failed + failed),
        errors: Set(serde_json::to_string(&all).unwrap_or_else(|_| "[]".to_owned())),
        ..Default::default()
    })
    .exec(conn)
    .await?;
    Ok(())
}
