//! Capture jobs of the EPCIS REST binding (`POST /capture` → `/capture/{captureID}`).

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseConnection, EntityTrait};

use crate::domain::CaptureError;

/// The `capture_jobs` table.
pub mod job {
    use sea_orm::entity::prelude::*;

    /// One capture job.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_jobs")]
    pub struct Model {
        /// captureID (UUIDv7).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// When the document arrived.
        pub created_at: ChronoDateTimeUtc,
        /// When every event was stored or quarantined.
        pub finished_at: ChronoDateTimeUtc,
        /// No event failed.
        pub success: bool,
        /// `rollback` or `proceed`.
        pub error_behaviour: String,
        /// JSON array of RFC 7807 problem objects, one per failed event.
        pub errors: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A finished capture job.
pub type Job = job::Model;

/// Records a finished job; returns its id.
pub async fn insert(
    db: &DatabaseConnection,
    created_at: DateTime<Utc>,
    success: bool,
    error_behaviour: &str,
    errors: &serde_json::Value,
) -> Result<String, CaptureError> {
    let id = uuid::Uuid::now_v7().to_string();
    job::ActiveModel {
        id: Set(id.clone()),
        created_at: Set(created_at),
        finished_at: Set(Utc::now()),
        success: Set(success),
        error_behaviour: Set(error_behaviour.to_owned()),
        errors: Set(errors.to_string()),
    }
    .insert(db)
    .await?;
    Ok(id)
}

/// The job `id`, if there is one.
pub async fn get(db: &DatabaseConnection, id: &str) -> Result<Option<Job>, CaptureError> {
    Ok(job::Entity::find_by_id(id.to_owned()).one(db).await?)
}

/// Up to `limit` jobs after the job `after`, oldest first (ids are UUIDv7, in creation
/// order).
pub async fn page(
    db: &DatabaseConnection,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Job>, CaptureError> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
    let mut select = job::Entity::find();
    if let Some(after) = after {
        select = select.filter(job::Column::Id.gt(after));
    }
    Ok(select
        .order_by_asc(job::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}
