//! The post-back outbox: one row per production event to post to the ERP, written in the
//! same transaction as the capture cursor, and the state of its delivery.
//!
//! A posting is claimed (its attempt counted and leased) in its own committed statement
//! before anything is sent, so after a crash or a lost answer the next attempt knows the
//! ERP may already have it and looks first.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use crate::domain::IntegrationError;

/// The `integration_postings` table.
pub mod posting {
    use sea_orm::entity::prelude::*;

    /// One production event to post.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "integration_postings")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The id clients see (UUID).
        pub posting_id: String,
        /// Our idempotency key, stored in the ERP document.
        pub reference: String,
        /// The capture event and its store sequence.
        pub event_id: String,
        pub sequence: i64,
        /// The `prodorder` bizTransaction as captured.
        pub order_reference: String,
        /// What the event says (JSON of `postback::ProductionFacts`).
        #[sea_orm(column_type = "Text")]
        pub facts: String,
        /// Resolved on the first attempt: the connector, the order number and the report
        /// sent (JSON of `tracery_connector::ProductionReport`), so every retry sends the
        /// same document.
        pub connector: Option<String>,
        pub order_number: Option<String>,
        #[sea_orm(column_type = "Text", nullable)]
        pub report: Option<String>,
        /// `pending`, `sent` or `dead_letter`.
        pub state: String,
        /// Attempts so far, and how many of them came before the last manual retry.
        pub attempts: i32,
        pub attempts_before_retry: i32,
        #[sea_orm(column_type = "Text", nullable)]
        pub last_error: Option<String>,
        /// The ERP's document number once posted.
        pub erp_document: Option<String>,
        /// When a pending posting is next due (or its claim expires).
        pub next_attempt_at: ChronoDateTimeUtc,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `integration_follow` table: the last capture sequence turned into postings.
pub mod follow {
    use sea_orm::entity::prelude::*;

    /// The cursor (one row).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "integration_follow")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i16,
        pub applied_sequence: i64,
        /// When post-back was first turned on: events captured before are not posted.
        pub started_at: ChronoDateTimeUtc,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

const FOLLOW_ID: i16 = 1;

/// A posting's delivery state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostingState {
    Pending,
    Sent,
    DeadLetter,
}

impl PostingState {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::DeadLetter => "dead_letter",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Sent, Self::DeadLetter]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A posting to record.
#[derive(Debug, Clone)]
pub struct NewPosting {
    pub reference: String,
    pub event_id: String,
    pub sequence: i64,
    pub order_reference: String,
    pub facts: String,
}

/// The capture sequence applied so far and when following started: `turned_on` the
/// first time.
pub async fn follow_cursor(
    conn: &impl ConnectionTrait,
    turned_on: DateTime<Utc>,
) -> Result<(i64, DateTime<Utc>), IntegrationError> {
    if let Some(row) = follow::Entity::find_by_id(FOLLOW_ID).one(conn).await? {
        return Ok((row.applied_sequence, row.started_at));
    }
    follow::Entity::insert(follow::ActiveModel {
        id: Set(FOLLOW_ID),
        applied_sequence: Set(0),
        started_at: Set(turned_on),
    })
    .on_conflict_do_nothing()
    .exec_without_returning(conn)
    .await?;
    Ok(follow::Entity::find_by_id(FOLLOW_ID)
        .one(conn)
        .await?
        .map_or((0, turned_on), |row| (row.applied_sequence, row.started_at)))
}

/// Records `postings` and moves the cursor to `sequence`, in one transaction; a posting
/// whose reference exists already (a replayed event) is left as it is. Returns how many
/// postings are new.
pub async fn record(
    db: &DatabaseConnection,
    postings: Vec<NewPosting>,
    sequence: i64,
) -> Result<u64, IntegrationError> {
    let txn = db.begin().await?;
    let now = Utc::now();
    let mut recorded: u64 = 0;
    for new in postings {
        // The reference is unique: a posting recorded before stays as it is.
        recorded += posting::Entity::insert(posting::ActiveModel {
            posting_id: Set(uuid::Uuid::now_v7().to_string()),
            reference: Set(new.reference),
            event_id: Set(new.event_id),
            sequence: Set(new.sequence),
            order_reference: Set(new.order_reference),
            facts: Set(new.facts),
            connector: Set(None),
            order_number: Set(None),
            report: Set(None),
            state: Set(PostingState::Pending.as_str().to_owned()),
            attempts: Set(0),
            attempts_before_retry: Set(0),
            last_error: Set(None),
            erp_document: Set(None),
            next_attempt_at: Set(now),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::column(posting::Column::Reference)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    }
    follow::Entity::update_many()
        .col_expr(follow::Column::AppliedSequence, Expr::value(sequence))
        .filter(follow::Column::Id.eq(FOLLOW_ID))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(recorded)
}

/// Pending postings due at `now`, oldest first.
pub async fn due(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<posting::Model>, IntegrationError> {
    Ok(posting::Entity::find()
        .filter(posting::Column::State.eq(PostingState::Pending.as_str()))
        .filter(posting::Column::NextAttemptAt.lte(now))
        .order_by_asc(posting::Column::Id)
        .limit(limit)
        .all(conn)
        .await?)
}

/// Counts an attempt at `row` and leases it until `until`, unless another worker did so
/// first (its attempt count moved on). Returns whether this worker holds it.
pub async fn claim(
    conn: &impl ConnectionTrait,
    row: &posting::Model,
    until: DateTime<Utc>,
) -> Result<bool, IntegrationError> {
    let result = posting::Entity::update_many()
        .col_expr(
            posting::Column::Attempts,
            Expr::col(posting::Column::Attempts).add(1),
        )
        .col_expr(posting::Column::NextAttemptAt, Expr::value(until))
        .col_expr(posting::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(posting::Column::Id.eq(row.id))
        .filter(posting::Column::Attempts.eq(row.attempts))
        .filter(posting::Column::State.eq(PostingState::Pending.as_str()))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Keeps what the first attempt resolved, for every later one.
pub async fn resolve(
    conn: &impl ConnectionTrait,
    id: i64,
    connector: &str,
    order_number: &str,
    report: &str,
) -> Result<(), IntegrationError> {
    posting::Entity::update_many()
        .col_expr(posting::Column::Connector, Expr::value(connector))
        .col_expr(posting::Column::OrderNumber, Expr::value(order_number))
        .col_expr(posting::Column::Report, Expr::value(report))
        .filter(posting::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// The outcome of an attempt.
pub enum Outcome {
    /// The ERP has it, as this document.
    Sent(String),
    /// Not yet: due again at the time given, or dead-lettered when there is none.
    Failed {
        error: String,
        again_at: Option<DateTime<Utc>>,
    },
}

/// Stores `outcome` for posting `id`.
pub async fn finish(
    conn: &impl ConnectionTrait,
    id: i64,
    outcome: Outcome,
) -> Result<(), IntegrationError> {
    let now = Utc::now();
    let update = posting::Entity::update_many()
        .col_expr(posting::Column::UpdatedAt, Expr::value(now))
        .filter(posting::Column::Id.eq(id));
    let update = match outcome {
        Outcome::Sent(document) => update
            .col_expr(
                posting::Column::State,
                Expr::value(PostingState::Sent.as_str()),
            )
            .col_expr(posting::Column::ErpDocument, Expr::value(document)),
        Outcome::Failed { error, again_at } => {
            let state = match again_at {
                Some(_) => PostingState::Pending,
                None => PostingState::DeadLetter,
            };
            update
                .col_expr(posting::Column::State, Expr::value(state.as_str()))
                .col_expr(posting::Column::LastError, Expr::value(error))
                .col_expr(
                    posting::Column::NextAttemptAt,
                    Expr::value(again_at.unwrap_or(now)),
                )
        }
    };
    update.exec(conn).await?;
    Ok(())
}

/// Postings in `states` (all when empty), newest first, below row id `before`.
pub async fn list(
    conn: &impl ConnectionTrait,
    states: &[PostingState],
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<posting::Model>, IntegrationError> {
    let mut condition = Condition::all();
    if !states.is_empty() {
        condition = condition.add(posting::Column::State.is_in(states.iter().map(|s| s.as_str())));
    }
    if let Some(before) = before {
        condition = condition.add(posting::Column::Id.lt(before));
    }
    Ok(posting::Entity::find()
        .filter(condition)
        .order_by_desc(posting::Column::Id)
        .limit(limit)
        .all(conn)
        .await?)
}

/// The posting clients call `posting_id`.
pub async fn by_posting_id(
    conn: &impl ConnectionTrait,
    posting_id: &str,
) -> Result<Option<posting::Model>, IntegrationError> {
    Ok(posting::Entity::find()
        .filter(posting::Column::PostingId.eq(posting_id))
        .one(conn)
        .await?)
}

/// Puts a dead-lettered posting back in the queue with a fresh retry budget; returns
/// whether it was dead-lettered.
pub async fn retry(conn: &impl ConnectionTrait, id: i64) -> Result<bool, IntegrationError> {
    let now = Utc::now();
    let result = posting::Entity::update_many()
        .col_expr(
            posting::Column::State,
            Expr::value(PostingState::Pending.as_str()),
        )
        .col_expr(
            posting::Column::AttemptsBeforeRetry,
            Expr::col(posting::Column::Attempts),
        )
        .col_expr(posting::Column::NextAttemptAt, Expr::value(now))
        .col_expr(posting::Column::UpdatedAt, Expr::value(now))
        .filter(posting::Column::Id.eq(id))
        .filter(posting::Column::State.eq(PostingState::DeadLetter.as_str()))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

#[cfg(test)]
mod tests {
    use sea_orm_migration::MigratorTrait as _;

    use super::*;

    #[tokio::test]
    async fn a_replayed_event_is_recorded_once() {
        let mut options = sea_orm::ConnectOptions::new("sqlite::memory:");
        options.max_connections(1);
        let db = sea_orm::Database::connect(options).await.expect("database");
        crate::store::Migrator::up(&db, None)
            .await
            .expect("migrated");
        follow_cursor(&db, Utc::now()).await.expect("cursor");
        let posting = NewPosting {
            reference: "TRC-1".to_owned(),
            event_id: "urn:uuid:1".to_owned(),
            sequence: 5,
            order_reference: "MFG-WO-1".to_owned(),
            facts: "{}".to_owned(),
        };
        let twice = vec![posting.clone(), posting.clone()];
        assert_eq!(record(&db, twice, 5).await.expect("recorded"), 1);
        assert_eq!(record(&db, vec![posting], 6).await.expect("recorded"), 0);
        assert_eq!(follow_cursor(&db, Utc::now()).await.expect("cursor").0, 6);
        assert_eq!(list(&db, &[], None, 10).await.expect("listed").len(), 1);
    }
}
