//! The append-only event store. Each accepted event gets the next `sequence`; readers
//! (Subscribe, genealogy, integration) follow that cursor. Rows are never updated.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use tracery_epcis::{Event, json};

use crate::domain::{CaptureError, Outcome};

/// The `capture_events` table.
pub mod event {
    use sea_orm::entity::prelude::*;

    /// One stored event.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_events")]
    pub struct Model {
        /// Store sequence, assigned at insert.
        #[sea_orm(primary_key)]
        pub sequence: i64,
        /// eventID, unique.
        #[sea_orm(unique)]
        pub event_id: String,
        /// EPCIS event type.
        pub event_type: String,
        /// eventTime (UTC).
        pub event_time: ChronoDateTimeUtc,
        /// recordTime, set at capture.
        pub record_time: ChronoDateTimeUtc,
        /// bizStep as captured.
        pub biz_step: Option<String>,
        /// disposition as captured.
        pub disposition: Option<String>,
        /// readPoint id.
        pub read_point: Option<String>,
        /// bizLocation id.
        pub biz_location: Option<String>,
        /// The event as EPCIS JSON-LD.
        #[sea_orm(column_type = "Text")]
        pub payload: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use migration::Migrator;

mod migration {
    use sea_orm_migration::prelude::*;

    use super::event;

    /// Capture migrations, tracked in their own table.
    pub struct Migrator;

    #[async_trait::async_trait]
    impl MigratorTrait for Migrator {
        fn migration_table_name() -> DynIden {
            "capture_migrations".into_iden()
        }

        fn migrations() -> Vec<Box<dyn MigrationTrait>> {
            vec![Box::new(CreateEvents)]
        }
    }

    struct CreateEvents;

    impl MigrationName for CreateEvents {
        fn name(&self) -> &str {
            "m0001_create_capture_events"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateEvents {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use event::Column as C;
            manager
                .create_table(
                    Table::create()
                        .table(event::Entity)
                        .if_not_exists()
                        .col(
                            ColumnDef::new(C::Sequence)
                                .big_integer()
                                .not_null()
                                .auto_increment()
                                .primary_key(),
                        )
                        .col(ColumnDef::new(C::EventId).string().not_null().unique_key())
                        .col(ColumnDef::new(C::EventType).string_len(32).not_null())
                        .col(
                            ColumnDef::new(C::EventTime)
                                .timestamp_with_time_zone()
                                .not_null(),
                        )
                        .col(
                            ColumnDef::new(C::RecordTime)
                                .timestamp_with_time_zone()
                                .not_null(),
                        )
                        .col(ColumnDef::new(C::BizStep).string().null())
                        .col(ColumnDef::new(C::Disposition).string().null())
                        .col(ColumnDef::new(C::ReadPoint).string().null())
                        .col(ColumnDef::new(C::BizLocation).string().null())
                        .col(ColumnDef::new(C::Payload).text().not_null())
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(
                    Index::create()
                        .name("capture_events_event_time")
                        .table(event::Entity)
                        .col(C::EventTime)
                        .if_not_exists()
                        .to_owned(),
                )
                .await
        }
    }
}

/// A stored event: its sequence and the event with `record_time` set.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Store sequence.
    pub sequence: i64,
    /// The event.
    pub event: Event,
}

/// The result of storing one event.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreResult {
    /// The eventID.
    pub event_id: String,
    /// Stored now, or before.
    pub outcome: Outcome,
    /// Its sequence.
    pub sequence: i64,
}

/// Filters for [`EventStore::query`]; empty lists do not filter.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Event types.
    pub event_types: Vec<String>,
    /// bizStep values.
    pub biz_steps: Vec<String>,
    /// dispositions.
    pub dispositions: Vec<String>,
    /// readPoint ids.
    pub read_points: Vec<String>,
    /// bizLocation ids.
    pub biz_locations: Vec<String>,
    /// eventTime >= this.
    pub event_time_from: Option<DateTime<Utc>>,
    /// eventTime < this.
    pub event_time_to: Option<DateTime<Utc>>,
}

/// The event store.
#[derive(Clone)]
pub struct EventStore {
    db: DatabaseConnection,
}

impl EventStore {
    /// A store over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Appends events in one transaction; an event whose eventID is stored already is
    /// reported as a duplicate with its first sequence. Returns once committed.
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    pub async fn append(&self, events: &[Event]) -> Result<Vec<StoreResult>, CaptureError> {
        let record_time = Utc::now();
        let txn = self.db.begin().await?;
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            let Some(event_id) = event.event_id.clone() else {
                return Err(CaptureError::Invalid {
                    field: "event_id".to_owned(),
                    reason: "required by the store".to_owned(),
                });
            };
            if let Some(existing) = event::Entity::find()
                .filter(event::Column::EventId.eq(&event_id))
                .one(&txn)
                .await?
            {
                results.push(StoreResult {
                    event_id,
                    outcome: Outcome::Duplicate,
                    sequence: existing.sequence,
                });
                continue;
            }
            let mut stored = event.clone();
            stored.record_time = Some(record_time.fixed_offset());
            let row = event::ActiveModel {
                event_id: Set(event_id.clone()),
                event_type: Set(stored.kind.type_name().to_owned()),
                event_time: Set(stored.event_time.with_timezone(&Utc)),
                record_time: Set(record_time),
                biz_step: Set(stored.biz_step.clone()),
                disposition: Set(stored.disposition.clone()),
                read_point: Set(stored.read_point.as_ref().map(|l| l.id.clone())),
                biz_location: Set(stored.biz_location.as_ref().map(|l| l.id.clone())),
                payload: Set(json::event_to_json(&stored).to_string()),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
            results.push(StoreResult {
                event_id,
                outcome: Outcome::Accepted,
                sequence: row.sequence,
            });
        }
        txn.commit().await?;
        Ok(results)
    }

    /// The event with this eventID.
    pub async fn get(&self, event_id: &str) -> Result<StoredEvent, CaptureError> {
        let row = event::Entity::find()
            .filter(event::Column::EventId.eq(event_id))
            .one(&self.db)
            .await?
            .ok_or_else(|| CaptureError::EventNotFound(event_id.to_owned()))?;
        decode(row)
    }

    /// Up to `limit` events with a sequence above `after`, matching `query`, in sequence order.
    pub async fn query(
        &self,
        query: &EventQuery,
        after: i64,
        limit: u64,
    ) -> Result<Vec<StoredEvent>, CaptureError> {
        let mut condition = Condition::all().add(event::Column::Sequence.gt(after));
        let in_list = |column: event::Column, values: &[String]| {
            (!values.is_empty()).then(|| column.is_in(values.iter().cloned()))
        };
        for filter in [
            in_list(event::Column::EventType, &query.event_types),
            in_list(event::Column::BizStep, &query.biz_steps),
            in_list(event::Column::Disposition, &query.dispositions),
            in_list(event::Column::ReadPoint, &query.read_points),
            in_list(event::Column::BizLocation, &query.biz_locations),
        ]
        .into_iter()
        .flatten()
        {
            condition = condition.add(filter);
        }
        if let Some(from) = query.event_time_from {
            condition = condition.add(event::Column::EventTime.gte(from));
        }
        if let Some(to) = query.event_time_to {
            condition = condition.add(event::Column::EventTime.lt(to));
        }
        event::Entity::find()
            .filter(condition)
            .order_by_asc(event::Column::Sequence)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(decode)
            .collect()
    }
}

fn decode(row: event::Model) -> Result<StoredEvent, CaptureError> {
    let corrupt = |reason: String| CaptureError::CorruptEvent {
        sequence: row.sequence,
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_str(&row.payload).map_err(|err| corrupt(err.to_string()))?;
    let event = json::parse_event(value).map_err(|err| corrupt(err.to_string()))?;
    Ok(StoredEvent {
        sequence: row.sequence,
        event,
    })
}
