//! Webhook subscriptions to named queries (`POST /queries/{name}/subscriptions`), each with
//! its durable cursor: the last event its receiver acknowledged with a 2xx.
//!
//! Deliveries are made by one replica at a time: a replica leases a subscription before it
//! delivers, and moves the cursor only while it holds the lease and only from the value it
//! read (compare and set), so two replicas never both deliver a batch and a cursor never
//! moves back.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};

use crate::domain::CaptureError;

/// The `capture_subscriptions` table.
pub mod subscription {
    use sea_orm::entity::prelude::*;

    /// One webhook subscription.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_subscriptions")]
    pub struct Model {
        /// subscriptionID (UUIDv7).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// The named query it runs.
        pub query_name: String,
        /// Where deliveries are POSTed.
        pub dest: String,
        /// The receiver's secret, the HMAC-SHA256 key of `GS1-Signature` (never shown).
        pub signature_token: Option<String>,
        /// Events are delivered as they are captured (rather than on a schedule).
        pub stream: bool,
        /// The `schedule` of a scheduled subscription, as JSON.
        pub schedule: Option<String>,
        /// A scheduled run with no new events still POSTs (an empty result).
        pub report_if_empty: bool,
        /// Events recorded before this are not delivered.
        pub initial_record_time: ChronoDateTimeUtc,
        pub created_at: ChronoDateTimeUtc,
        pub created_by: Option<String>,
        /// The capture sequence of the last event the receiver acknowledged (0: none).
        pub cursor: i64,
        /// When the receiver last acknowledged a delivery.
        pub last_notified_at: Option<ChronoDateTimeUtc>,
        /// Failed attempts since the last acknowledged one.
        pub failures: i32,
        /// No attempt before this: the backoff after failures, or a scheduled
        /// subscription's next run.
        pub next_attempt_at: Option<ChronoDateTimeUtc>,
        /// Why the last attempt failed.
        pub last_error: Option<String>,
        /// The replica delivering it, and until when.
        pub lease_holder: Option<String>,
        pub lease_until: Option<ChronoDateTimeUtc>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use subscription::Model as Subscription;
use subscription::{Column, Entity};

/// Stores `subscription` if its query exists; whether it did. The query is locked while
/// the subscription is written, so a delete of the query cannot leave it behind (SQLite:
/// the write lock from the start).
pub async fn create(
    db: &DatabaseConnection,
    subscription: Subscription,
) -> Result<bool, CaptureError> {
    let txn = tracery_runtime::db::begin_write(db).await?;
    if !super::named_queries::lock(&txn, &subscription.query_name).await? {
        return Ok(false);
    }
    subscription::ActiveModel::from(subscription)
        .insert(&txn)
        .await?;
    txn.commit().await?;
    Ok(true)
}

/// Up to `limit` subscriptions of `query_name` in id (creation) order, after `after`.
pub async fn list(
    db: &DatabaseConnection,
    query_name: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Subscription>, CaptureError> {
    let mut select = Entity::find()
        .filter(Column::QueryName.eq(query_name))
        .order_by_asc(Column::Id)
        .limit(limit);
    if let Some(after) = after {
        select = select.filter(Column::Id.gt(after));
    }
    Ok(select.all(db).await?)
}

/// The subscription `id` of `query_name`.
pub async fn get(
    db: &DatabaseConnection,
    query_name: &str,
    id: &str,
) -> Result<Option<Subscription>, CaptureError> {
    Ok(Entity::find_by_id(id.to_owned())
        .filter(Column::QueryName.eq(query_name))
        .one(db)
        .await?)
}

/// Removes the subscription `id` of `query_name`; whether there was one.
pub async fn delete(
    db: &DatabaseConnection,
    query_name: &str,
    id: &str,
) -> Result<bool, CaptureError> {
    let deleted = Entity::delete_many()
        .filter(Column::Id.eq(id))
        .filter(Column::QueryName.eq(query_name))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected == 1)
}

/// Removes every subscription of `query_name` (with the query, in its transaction).
pub async fn delete_of_query(
    db: &impl ConnectionTrait,
    query_name: &str,
) -> Result<(), CaptureError> {
    Entity::delete_many()
        .filter(Column::QueryName.eq(query_name))
        .exec(db)
        .await?;
    Ok(())
}

/// Every subscription (a short table: one row per receiver).
pub async fn all(db: &DatabaseConnection) -> Result<Vec<Subscription>, CaptureError> {
    Ok(Entity::find().order_by_asc(Column::Id).all(db).await?)
}

/// Takes the lease of subscription `id` for `holder` until `until`, if nobody else holds
/// it at `now`; whether `holder` holds it now.
pub async fn lease(
    db: &DatabaseConnection,
    id: &str,
    holder: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, CaptureError> {
    let free = Condition::any()
        .add(Column::LeaseUntil.is_null())
        .add(Column::LeaseUntil.lt(now))
        .add(Column::LeaseHolder.eq(holder));
    let updated = Entity::update_many()
        .col_expr(Column::LeaseHolder, Expr::value(holder))
        .col_expr(Column::LeaseUntil, Expr::value(until))
        .filter(Column::Id.eq(id))
        .filter(free)
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Gives up every lease `holder` has (on shutdown, so another replica goes on at once).
pub async fn release(db: &DatabaseConnection, holder: &str) -> Result<(), CaptureError> {
    Entity::update_many()
        .col_expr(Column::LeaseHolder, Expr::value(Option::<String>::None))
        .col_expr(
            Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(Column::LeaseHolder.eq(holder))
        .exec(db)
        .await?;
    Ok(())
}

/// An acknowledged delivery: the cursor moves from `from` to `to` (if `holder` still
/// holds the lease and nobody moved it), failures are forgotten and the lease extended to
/// `lease_until`. Whether it moved.
pub async fn acknowledge(
    db: &DatabaseConnection,
    id: &str,
    holder: &str,
    (from, to): (i64, i64),
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<bool, CaptureError> {
    let updated = Entity::update_many()
        .col_expr(Column::Cursor, Expr::value(to))
        .col_expr(Column::LastNotifiedAt, Expr::value(now))
        .col_expr(Column::Failures, Expr::value(0))
        .col_expr(
            Column::NextAttemptAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(Column::LastError, Expr::value(Option::<String>::None))
        .col_expr(Column::LeaseUntil, Expr::value(lease_until))
        .filter(Column::Id.eq(id))
        .filter(Column::LeaseHolder.eq(holder))
        .filter(Column::Cursor.eq(from))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// A failed delivery: counted, with no new attempt before `next_attempt_at`.
pub async fn record_failure(
    db: &DatabaseConnection,
    id: &str,
    holder: &str,
    failures: i32,
    next_attempt_at: DateTime<Utc>,
    error: &str,
) -> Result<(), CaptureError> {
    Entity::update_many()
        .col_expr(Column::Failures, Expr::value(failures))
        .col_expr(Column::NextAttemptAt, Expr::value(next_attempt_at))
        .col_expr(Column::LastError, Expr::value(error))
        .filter(Column::Id.eq(id))
        .filter(Column::LeaseHolder.eq(holder))
        .exec(db)
        .await?;
    Ok(())
}

/// Sets when scheduled subscription `id` runs next (after a run, while `holder` holds it).
pub async fn schedule_next(
    db: &DatabaseConnection,
    id: &str,
    holder: &str,
    next_run: DateTime<Utc>,
) -> Result<(), CaptureError> {
    Entity::update_many()
        .col_expr(Column::NextAttemptAt, Expr::value(next_run))
        .filter(Column::Id.eq(id))
        .filter(Column::LeaseHolder.eq(holder))
        .exec(db)
        .await?;
    Ok(())
}

/// Removes a subscription whose query is gone (deleted while it was being created).
pub async fn delete_orphan(db: &DatabaseConnection, id: &str) -> Result<(), CaptureError> {
    Entity::delete_by_id(id.to_owned()).exec(db).await?;
    Ok(())
}
