//! The append-only event store. Each accepted event gets the next `sequence`; readers
//! (Subscribe, genealogy, integration) follow that cursor. Rows are never updated.

use std::{
    collections::{HashMap, HashSet},
    ops::Range,
    sync::Arc,
};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tracery_epcis::{Event, effects::Effects, json};
use tracery_runtime::{
    audit::{DeferredAudit, Record},
    integrity::{ChainKeys, Checkpoint},
    partitions::{self, Monthly},
};

use crate::{
    domain::{Admission, CaptureError, Channel, ErrorBehaviour, Outcome, Rejected},
    validation::Policy,
};

pub mod archive;
mod bulk;
mod commit_rules;
pub mod integrity;
pub mod jobs;
pub mod keys;
pub mod lifecycle;
pub mod master_data;
pub mod named_queries;
pub mod payloads;
pub mod placements;
pub mod quarantine;
pub mod subscriptions;
pub mod traces;
pub mod vocabulary;

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
        /// The store key: the eventID, unique; an error declaration, which repeats the
        /// eventID of the event it declares erroneous, is keyed `{eventID}#errorDeclaration`.
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
        /// The event as EPCIS JSON-LD, as [`super::payloads`] keeps it (compressed).
        pub payload: Vec<u8>,
        /// For an error declaration: the eventID it declares erroneous.
        pub declares: Option<String>,
        /// Its link in the hash chain of stored events (see `integrity`).
        pub chain_hash: Option<String>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use migration::Migrator;

mod migration {
    use sea_orm_migration::prelude::*;
    use sea_orm_migration::schema::{
        big_integer, big_pk_auto, binary, binary_null, boolean, integer, small_integer, string,
        string_len, string_null, text, text_null, timestamp_with_time_zone,
        timestamp_with_time_zone_null,
    };
    use tracery_runtime::migrations::create_table;

    use sea_orm::EntityTrait;

    use super::{decode_payload, event, jobs::job, keys, quarantine::entry};
    use sea_orm::ConnectionTrait;

    tracery_runtime::migrator! {
        /// Capture migrations, tracked in their own table.
        pub Migrator in "capture_migrations" {
            CreateEvents = "m0001_create_capture_events",
            CreateQuarantine = "m0002_create_capture_quarantine",
            CreateEventKeys = "m0003_create_capture_event_keys",
            CreateJobs = "m0004_create_capture_jobs",
            AddErrorDeclarations = "m0005_capture_error_declarations",
            CreatePlacements = "m0006_capture_placements",
            SplitKeyRoles = "m0007_capture_key_roles",
            ChainEvents = "m0008_capture_event_chain",
            CreateEventTraces = "m0009_capture_event_traces",
            CreateLifecycle = "m0010_capture_lifecycle",
            CompressPayloads = "m0011_capture_compressed_payloads",
            NumberIdentifiers = "m0012_capture_identifier_numbers",
            NumberPlacements = "m0013_capture_placement_numbers",
            RecordCompaction = "m0014_capture_compaction_progress",
            RecordArchives = "m0015_capture_archives",
            PartitionEvents = "m0016_capture_events_monthly_partitions",
            IdentifiersInEvents = "m0017_capture_identifiers_in_events",
            HashEventIds = "m0018_capture_event_id_hash_index",
            CreateNamedQueries = "m0019_capture_named_queries",
            CreateSubscriptions = "m0020_capture_subscriptions",
            RecordVocabulary = "m0021_capture_vocabulary",
            CreateMasterData = "m0022_capture_master_data",
            KeyMasterDataCanonically = "m0023_capture_master_data_canonical_ids",
            CreateAlerts = "m0024_capture_alerts",
            ScheduleSubscriptions = "m0025_capture_scheduled_subscriptions",
            LeaseAlertDeliveries = "m0026_capture_alert_delivery_leases",
            RememberRfidPresence = "m0027_capture_rfid_presence",
            CountQuarantineHours = "m0028_capture_quarantine_hours",
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateEvents {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use event::Column as C;
            create_table(
                manager,
                event::Entity,
                [
                    big_integer(C::Sequence)
                        .auto_increment()
                        .primary_key()
                        .take(),
                    string(C::EventId).unique_key().take(),
                    string_len(C::EventType, 32),
                    timestamp_with_time_zone(C::EventTime),
                    timestamp_with_time_zone(C::RecordTime),
                    string_null(C::BizStep),
                    string_null(C::Disposition),
                    string_null(C::ReadPoint),
                    string_null(C::BizLocation),
                    text(C::Payload),
                ],
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

    #[async_trait::async_trait]
    impl MigrationTrait for CreateEventKeys {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use keys::legacy_key::Column as C;
            create_table(
                manager,
                keys::legacy_key::Entity,
                [
                    big_pk_auto(C::Id),
                    big_integer(C::Sequence),
                    small_integer(C::Role),
                    text(C::Value),
                ],
            )
            .await?;
            for (name, columns) in [
                (
                    "capture_event_keys_value",
                    vec![C::Value, C::Role, C::Sequence],
                ),
                ("capture_event_keys_sequence", vec![C::Sequence]),
            ] {
                let mut index = Index::create();
                index
                    .name(name)
                    .table(keys::legacy_key::Entity)
                    .if_not_exists();
                for column in columns {
                    index.col(column);
                }
                manager.create_index(index.to_owned()).await?;
            }
            index_stored_events(manager.get_connection()).await
        }
    }

    /// Indexes every stored event with the current [`keys::keys_of`], from an empty index.
    async fn index_stored_events(db: &SchemaManagerConnection<'_>) -> Result<(), DbErr> {
        let payloads = super::payloads::Payloads::default();
        let mut after = 0;
        loop {
            let rows = super::payloads_after(db, after, 1000).await?;
            let Some(last) = rows.last().map(|r| r.0) else {
                return Ok(());
            };
            let mut index_rows = Vec::new();
            for (sequence, payload) in rows {
                let stored = decode_payload(db, &payloads, sequence, &payload)
                    .await
                    .map_err(|err| DbErr::Migration(err.to_string()))?;
                index_rows.extend(keys::rows(stored.sequence, &stored.event));
            }
            keys::insert_legacy_rows(db, index_rows).await?;
            after = last;
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for IdentifiersInEvents {
        /// PostgreSQL only: the identifier index moves into the events, one array of codes
        /// per event with a GIN index (see `bulk`), so it is partitioned with them and
        /// costs no row of its own per identifier (about 93 bytes each there).
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            if manager.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
                return Ok(());
            }
            let db = manager.get_connection();
            for sql in [
                "ALTER TABLE capture_events \
                 ADD COLUMN IF NOT EXISTS identifiers bigint[] NOT NULL DEFAULT '{}'",
                "UPDATE capture_events e SET identifiers = k.codes FROM \
                 (SELECT sequence, array_agg(identifier * 16 + role ORDER BY identifier, role) \
                  AS codes FROM capture_identifier_index GROUP BY sequence) k \
                 WHERE e.sequence = k.sequence",
                "CREATE OR REPLACE FUNCTION capture_identifier_ids(codes bigint[]) \
                 RETURNS bigint[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE \
                 AS 'SELECT array_agg(c / 16) FROM unnest(codes) AS c'",
                super::IDENTIFIERS_INDEX,
                "DROP TABLE capture_identifier_index",
            ] {
                db.execute_unprepared(sql).await?;
            }
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for HashEventIds {
        /// PostgreSQL only: eventIDs are looked up by equality alone, so a hash index of
        /// their 4-byte hashes serves them at about a third of a B-tree of their text.
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            if manager.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
                return Ok(());
            }
            let db = manager.get_connection();
            db.execute_unprepared("DROP INDEX IF EXISTS capture_events_event_id")
                .await?;
            db.execute_unprepared(super::EVENT_INDEXES[0]).await?;
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for PartitionEvents {
        /// PostgreSQL only: the events become partitioned by month of record time, the
        /// rows stored so far one partition (see `tracery_runtime::partitions`).
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            super::EVENT_MONTHS
                .convert(
                    manager.get_connection(),
                    "sequence",
                    &super::EVENT_INDEXES,
                    chrono::Utc::now(),
                )
                .await
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateNamedQueries {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use super::named_queries::named_query::{Column, Entity};
            create_table(
                manager,
                Entity,
                [
                    string_len(Column::Name, 128).primary_key().take(),
                    text(Column::Definition),
                    timestamp_with_time_zone(Column::CreatedAt),
                    string_null(Column::CreatedBy),
                ],
            )
            .await
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateSubscriptions {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use super::subscriptions::subscription::{Column, Entity};
            create_table(
                manager,
                Entity,
                [
                    string_len(Column::Id, 36).primary_key().take(),
                    string_len(Column::QueryName, 128),
                    text(Column::Dest),
                    text_null(Column::SignatureToken),
                    boolean(Column::Stream),
                    timestamp_with_time_zone(Column::InitialRecordTime),
                    timestamp_with_time_zone(Column::CreatedAt),
                    string_null(Column::CreatedBy),
                    big_integer(Column::Cursor),
                    timestamp_with_time_zone_null(Column::LastNotifiedAt),
                    integer(Column::Failures),
                    timestamp_with_time_zone_null(Column::NextAttemptAt),
                    text_null(Column::LastError),
                    string_null(Column::LeaseHolder),
                    timestamp_with_time_zone_null(Column::LeaseUntil),
                ],
            )
            .await?;
            // Listing a query's subscriptions, and removing them with the query.
            manager
                .create_index(
                    Index::create()
                        .name("capture_subscriptions_query")
                        .table(Entity)
                        .col(Column::QueryName)
                        .to_owned(),
                )
                .await
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for RecordVocabulary {
        /// Reads every stored event once, to record the terms already in use.
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use super::vocabulary::{self, Vocabulary};
            let db = manager.get_connection();
            db.execute_unprepared(vocabulary::CREATE_TABLE).await?;
            for vocabulary in Vocabulary::ALL {
                db.execute_unprepared(&vocabulary::backfill(vocabulary))
                    .await?;
            }
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for KeyMasterDataCanonically {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            super::master_data::rekey_canonically(manager.get_connection()).await
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CountQuarantineHours {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            super::quarantine::create_hours_m0028(manager).await
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for RememberRfidPresence {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            crate::rfid::store::create_table_m0027(manager).await
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for LeaseAlertDeliveries {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            crate::alerts::store::lease_deliveries(manager).await
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for ScheduleSubscriptions {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use super::subscriptions::subscription::{Column, Entity};
            let columns = [
                text_null(Column::Schedule),
                boolean(Column::ReportIfEmpty).default(false).take(),
            ];
            tracery_runtime::migrations::add_columns(manager, Entity, columns).await
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateAlerts {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            crate::alerts::store::create_tables(manager).await
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateMasterData {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .get_connection()
                .execute_unprepared(super::master_data::CREATE_TABLE)
                .await?;
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for RecordArchives {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            super::archive::create_tables(manager.get_connection()).await
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for RecordCompaction {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use super::payloads::compaction::{Column, Entity};
            create_table(
                manager,
                Entity,
                [
                    small_integer(Column::Id).primary_key().take(),
                    big_integer(Column::Dictionary),
                    big_integer(Column::DoneThrough),
                ],
            )
            .await
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for NumberPlacements {
        /// Placements refer to children and parents by number and read the eventID from
        /// the event: the old table's rows are copied over, then it goes. A store whose
        /// placements were never filled (`m0006` ran on it after this layout came) gets
        /// them from its stored events.
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let db = manager.get_connection();
            let integer_key = match manager.get_database_backend() {
                sea_orm::DatabaseBackend::Postgres => "bigint PRIMARY KEY",
                // The rowid itself: no second copy of the key.
                _ => "INTEGER PRIMARY KEY",
            };
            for sql in [
                format!(
                    "CREATE TABLE IF NOT EXISTS capture_child_placements (\
                     child {integer_key}, parent bigint NOT NULL, sequence bigint NOT NULL)"
                ),
                "CREATE INDEX IF NOT EXISTS capture_child_placements_parent \
                 ON capture_child_placements (parent)"
                    .to_owned(),
                "INSERT INTO capture_identifiers (value) SELECT u.value FROM \
                 (SELECT child AS value FROM capture_placements \
                  UNION SELECT parent FROM capture_placements) AS u WHERE true \
                 ON CONFLICT (value) DO NOTHING"
                    .to_owned(),
                "INSERT INTO capture_child_placements (child, parent, sequence) \
                 SELECT c.id, p.id, pl.sequence FROM capture_placements pl \
                 JOIN capture_identifiers c ON c.value = pl.child \
                 JOIN capture_identifiers p ON p.value = pl.parent WHERE true \
                 ON CONFLICT DO NOTHING"
                    .to_owned(),
            ] {
                db.execute_unprepared(&sql).await?;
            }
            let had_rows = db
                .query_one_raw(sea_orm::Statement::from_string(
                    manager.get_database_backend(),
                    "SELECT 1 AS found FROM capture_placements LIMIT 1",
                ))
                .await?
                .is_some();
            db.execute_unprepared("DROP TABLE capture_placements")
                .await?;
            if !had_rows {
                super::placements::rebuild(db)
                    .await
                    .map_err(|err| DbErr::Migration(err.to_string()))?;
            }
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for NumberIdentifiers {
        /// The identifier index refers to identifiers by number ([`keys`]): the old table's
        /// identifiers are numbered and its rows copied over, then it goes. Each statement
        /// can run again, so a conversion cut short resumes.
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use keys::identifier::{Column, Entity};
            let db = manager.get_connection();
            create_table(
                manager,
                Entity,
                [
                    big_integer(Column::Id)
                        .auto_increment()
                        .primary_key()
                        .take(),
                    text(Column::Value).unique_key().take(),
                ],
            )
            .await?;
            // Without a rowid SQLite keeps the rows in their key's B-tree alone.
            let (integer, small, without_rowid) = match manager.get_database_backend() {
                sea_orm::DatabaseBackend::Postgres => ("bigint", "smallint", ""),
                _ => ("INTEGER", "INTEGER", " WITHOUT ROWID"),
            };
            for sql in [
                format!(
                    "CREATE TABLE IF NOT EXISTS capture_identifier_index (\
                     identifier {integer} NOT NULL, role {small} NOT NULL, \
                     sequence {integer} NOT NULL, \
                     PRIMARY KEY (identifier, role, sequence)){without_rowid}"
                ),
                "INSERT INTO capture_identifiers (value) \
                 SELECT DISTINCT value FROM capture_event_keys WHERE true \
                 ON CONFLICT (value) DO NOTHING"
                    .to_owned(),
                "INSERT INTO capture_identifier_index (identifier, role, sequence) \
                 SELECT i.id, k.role, k.sequence FROM capture_event_keys k \
                 JOIN capture_identifiers i ON i.value = k.value WHERE true \
                 ON CONFLICT DO NOTHING"
                    .to_owned(),
                "DROP TABLE capture_event_keys".to_owned(),
            ] {
                db.execute_unprepared(&sql).await?;
            }
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CompressPayloads {
        /// Payloads become bytes (zstd frames, see [`super::payloads`]); the rows stored
        /// as text are compressed afterwards, while the suite serves, a chunk at a time.
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use super::payloads::dictionary::{Column, Entity};
            if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
                manager
                    .get_connection()
                    .execute_unprepared(
                        "ALTER TABLE capture_events ALTER COLUMN payload TYPE bytea \
                         USING convert_to(payload, 'UTF8')",
                    )
                    .await?;
            }
            create_table(
                manager,
                Entity,
                [
                    big_integer(Column::Id).primary_key().take(),
                    timestamp_with_time_zone(Column::TrainedAt),
                    binary(Column::Bytes),
                ],
            )
            .await
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateLifecycle {
        /// Each identifier's lifecycle state, filled from the events stored before.
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use super::lifecycle::{rebuild, state_row::Column, state_row::Entity};
            create_table(
                manager,
                Entity,
                [
                    string(Column::Identifier).primary_key().take(),
                    small_integer(Column::State),
                    string(Column::EventId),
                    big_integer(Column::Sequence),
                ],
            )
            .await?;
            rebuild(manager.get_connection())
                .await
                .map_err(|err| DbErr::Migration(err.to_string()))
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateEventTraces {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use super::traces::event_trace::{Column, Entity};
            create_table(
                manager,
                Entity,
                [
                    big_integer(Column::Sequence).primary_key().take(),
                    string(Column::TraceParent),
                ],
            )
            .await
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for ChainEvents {
        /// Every event gets its link in the hash chain; events stored before are chained
        /// in sequence order.
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .alter_table(
                    Table::alter()
                        .table(event::Entity)
                        .add_column(string_null(event::Column::ChainHash))
                        .to_owned(),
                )
                .await?;
            super::integrity::chain_stored(manager.get_connection())
                .await
                .map_err(|err| DbErr::Migration(err.to_string()))
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for SplitKeyRoles {
        /// Transformation inputs and outputs, sources and destinations got roles of their
        /// own: the index is rebuilt from the stored events.
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let db = manager.get_connection();
            keys::legacy_key::Entity::delete_many().exec(db).await?;
            index_stored_events(db).await
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateJobs {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use job::Column as C;
            create_table(
                manager,
                job::Entity,
                [
                    string_len(C::Id, 36).primary_key().take(),
                    timestamp_with_time_zone(C::CreatedAt),
                    timestamp_with_time_zone(C::FinishedAt),
                    boolean(C::Success),
                    string_len(C::ErrorBehaviour, 16),
                    text(C::Errors),
                ],
            )
            .await
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreatePlacements {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use super::placements::legacy_placement as placement;
            create_table(
                manager,
                placement::Entity,
                [
                    string(placement::Column::Child).primary_key().take(),
                    string(placement::Column::Parent),
                    string(placement::Column::EventId),
                    big_integer(placement::Column::Sequence),
                ],
            )
            .await?;
            manager
                .create_index(
                    Index::create()
                        .name("capture_placements_parent")
                        .table(placement::Entity)
                        .col(placement::Column::Parent)
                        .if_not_exists()
                        .to_owned(),
                )
                .await
            // Filled by `m0013`, from the stored events, in the layout that replaced it.
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for AddErrorDeclarations {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .alter_table(
                    Table::alter()
                        .table(event::Entity)
                        .add_column(string_null(event::Column::Declares))
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(
                    Index::create()
                        .name("capture_events_declares")
                        .table(event::Entity)
                        .col(event::Column::Declares)
                        .if_not_exists()
                        .to_owned(),
                )
                .await
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateQuarantine {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            use entry::Column as C;
            create_table(
                manager,
                entry::Entity,
                [
                    string_len(C::Id, 36).primary_key().take(),
                    timestamp_with_time_zone(C::ReceivedAt),
                    string_len(C::Channel, 8),
                    text_null(C::Payload),
                    binary_null(C::PayloadProtobuf),
                    text(C::Violations),
                    small_integer(C::Status),
                    timestamp_with_time_zone_null(C::ClosedAt),
                    text_null(C::Resolution),
                ],
            )
            .await?;
            manager
                .create_index(
                    Index::create()
                        .name("capture_quarantine_status")
                        .table(entry::Entity)
                        .col(C::Status)
                        .col(C::Id)
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

/// What the store did with one admitted event.
#[derive(Debug, Clone, PartialEq)]
pub enum IntakeResult {
    /// Appended now or before.
    Stored(StoreResult),
    /// Quarantined under this id.
    Quarantined(String),
}

impl IntakeResult {
    /// The store sequence of a stored event.
    pub fn sequence(&self) -> Option<i64> {
        match self {
            Self::Stored(stored) => Some(stored.sequence),
            Self::Quarantined(_) => None,
        }
    }
}

/// The store key of an event: its eventID, or for an error declaration (which carries the
/// eventID of the event it corrects) a key of its own, so both are kept.
fn store_key(event: &Event, event_id: &str) -> String {
    if event.error_declaration.is_some() {
        format!("{event_id}#errorDeclaration")
    } else {
        event_id.to_owned()
    }
}

/// Appends `events` inside `conn`'s transaction, or finds them stored already (an eventID
/// stored before, or earlier in the same batch, is a duplicate with the first one's
/// sequence). A few statements per batch, whatever its size.
/// The sequences of `events` that are stored already, by store key: read once per append,
/// for the commit-time rules and for telling appends from duplicates.
async fn stored_sequences(
    conn: &impl ConnectionTrait,
    events: &[&Event],
) -> Result<HashMap<String, i64>, sea_orm::DbErr> {
    let store_keys: Vec<String> = events.iter().map(|event| event_store_key(event)).collect();
    bulk::sequences_of(conn, &store_keys).await
}

/// [`store_key`] of an event that has its eventID.
fn event_store_key(event: &Event) -> String {
    store_key(event, event.event_id.as_deref().unwrap_or_default())
}

/// `sequences` holds those of `events` stored already ([`stored_sequences`]).
async fn append_events(
    conn: &impl ConnectionTrait,
    sealing: &Sealing,
    events: &[&Event],
    mut sequences: HashMap<String, i64>,
    record_time: DateTime<Utc>,
) -> Result<Vec<StoreResult>, CaptureError> {
    let mut keyed = Vec::with_capacity(events.len());
    for event in events {
        let Some(event_id) = event.event_id.clone() else {
            return Err(CaptureError::Invalid {
                field: "event_id".to_owned(),
                reason: "required by the store".to_owned(),
            });
        };
        keyed.push((store_key(event, &event_id), event_id));
    }
    // The first occurrence of each key not stored yet is appended; the rest are duplicates.
    let mut first: HashMap<String, usize> = HashMap::new();
    let appended: Vec<usize> = (0..keyed.len())
        .filter(|&i| {
            let key = &keyed[i].0;
            !sequences.contains_key(key) && !first.contains_key(key) && {
                first.insert(key.clone(), i);
                true
            }
        })
        .collect();
    let mut previous = integrity::head_link(conn).await?;
    let mut rows: Vec<bulk::EventRow> = appended
        .iter()
        .map(|&i| {
            let mut row = event_row(events[i], &keyed[i], record_time);
            row.chain_hash =
                integrity::link(&sealing.keys, &previous, &row.store_key, &row.payload);
            previous = row.chain_hash.clone();
            row
        })
        .collect();
    let frames = sealing
        .payloads
        .encode_all(rows.iter().map(|row| row.payload.as_str()))
        .map_err(|err| CaptureError::Store(sea_orm::DbErr::Custom(err.to_string())))?;
    for (row, frame) in rows.iter_mut().zip(frames) {
        row.stored_payload = frame;
    }
    let assigned = bulk::insert_events(conn, rows).await?;
    // The chain follows the rows' order; the sequences must too, or it would not verify.
    if assigned.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(CaptureError::Store(sea_orm::DbErr::Custom(
            "appended events got sequences out of order; the batch is not stored".to_owned(),
        )));
    }
    let mut appended_events = Vec::with_capacity(appended.len());
    for (&i, sequence) in appended.iter().zip(assigned) {
        sequences.insert(keyed[i].0.clone(), sequence);
        appended_events.push((sequence, events[i]));
    }
    // What each appended event does, worked out once for both derived tables.
    let effects: Vec<Effects> = appended_events.iter().map(|(_, e)| e.effects()).collect();
    let appended_effects: Vec<(i64, &Event, &Effects)> = appended_events
        .iter()
        .zip(&effects)
        .map(|((sequence, event), effects)| (*sequence, *event, effects))
        .collect();
    record::<placements::Replay>(conn, &appended_effects).await?;
    record::<lifecycle::Replay>(conn, &appended_effects).await?;
    Ok(keyed
        .into_iter()
        .enumerate()
        .map(|(i, (key, event_id))| StoreResult {
            outcome: if first.get(&key) == Some(&i) {
                Outcome::Accepted
            } else {
                Outcome::Duplicate
            },
            sequence: sequences.get(&key).copied().unwrap_or_default(),
            event_id,
        })
        .collect())
}

fn event_row(
    event: &Event,
    (key, event_id): &(String, String),
    record_time: DateTime<Utc>,
) -> bulk::EventRow {
    let mut stored = event.clone();
    stored.record_time = Some(record_time.fixed_offset());
    let mut row = event_columns(&stored, &(key.clone(), event_id.clone()), record_time);
    row.payload = json::event_to_json(&stored).to_string();
    row.keys = keys::keys_of(&stored);
    row
}

/// The query columns of the row of `stored` (its record time set), without its payload.
fn event_columns(
    stored: &Event,
    (key, event_id): &(String, String),
    record_time: DateTime<Utc>,
) -> bulk::EventRow {
    bulk::EventRow {
        store_key: key.clone(),
        declares: stored.error_declaration.is_some().then(|| event_id.clone()),
        event_type: stored.kind.type_name().to_owned(),
        event_time: stored.event_time.with_timezone(&Utc),
        record_time,
        biz_step: stored.biz_step.clone(),
        disposition: stored.disposition.clone(),
        read_point: stored.read_point.as_ref().map(|l| l.id.clone()),
        biz_location: stored.biz_location.as_ref().map(|l| l.id.clone()),
        payload: String::new(),
        stored_payload: Vec::new(),
        chain_hash: String::new(),
        keys: Vec::new(),
    }
}

/// What turns an event into its stored row besides the event: the chain key that links
/// it and the dictionaries that compress its payload.
#[derive(Clone)]
struct Sealing {
    keys: ChainKeys,
    payloads: Arc<payloads::Payloads>,
    months: Arc<CoveredMonths>,
}

/// The months whose event partitions this process has made sure of (PostgreSQL), so an
/// append asks the database only in a month new to it.
#[derive(Default)]
struct CoveredMonths(std::sync::Mutex<HashSet<chrono::NaiveDate>>);

impl CoveredMonths {
    /// Makes sure the month of `now` and the months ahead of it have their partitions:
    /// under the append lock, which every creator of partitions takes, in a transaction of
    /// its own so that a failed append cannot take the partitions back with it.
    async fn ensure(
        &self,
        db: &DatabaseConnection,
        now: DateTime<Utc>,
    ) -> Result<(), CaptureError> {
        let month = partitions::month_of(now);
        if self.known(month) {
            return Ok(());
        }
        let txn = begin_append(db).await?;
        EVENT_MONTHS
            .ensure(&txn, partitions::with_months_ahead(month))
            .await?;
        txn.commit().await?;
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(month);
        Ok(())
    }

    fn known(&self, month: chrono::NaiveDate) -> bool {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&month)
    }
}

/// See [`EventStore::begin_append`].
async fn begin_append(
    db: &DatabaseConnection,
) -> Result<sea_orm::DatabaseTransaction, CaptureError> {
    let txn = tracery_runtime::db::begin_write(db).await?;
    if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({APPEND_LOCK})"))
            .await?;
    }
    Ok(txn)
}

/// Commits waiting batches together until every [`EventStore`] handle is gone. When a
/// group fails, its batches are retried one by one, so one caller's bad batch (or a
/// database error) is reported to that caller alone.
async fn group_commit(
    db: DatabaseConnection,
    sealing: Sealing,
    policy: Arc<Policy>,
    mut pending: mpsc::Receiver<Pending>,
) {
    // The months ahead exist before the first event of theirs arrives; an append that
    // finds its month new makes sure of it again.
    if let Err(err) = sealing.months.ensure(&db, policy.clock.now()).await {
        tracing::warn!(error = %err, "could not create the event partitions ahead");
    }
    while let Some(first) = pending.recv().await {
        let mut events = first.admissions.len();
        let mut group = vec![first];
        while events < MAX_GROUP_EVENTS {
            match pending.try_recv() {
                Ok(next) => {
                    events += next.admissions.len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        // Each group commits in a task of its own: a panic there fails that group's callers
        // and leaves the committer running.
        let (db_for_group, sealing_for_group, policy_for_group) =
            (db.clone(), sealing.clone(), Arc::clone(&policy));
        let committed = tokio::spawn(async move {
            let all: Vec<GroupEntry> = group.iter().flat_map(Pending::entries).collect();
            let rollbacks = rollback_ranges(&group);
            let audit: Vec<Record> = group
                .iter()
                .filter_map(|p| p.audit.as_ref().and_then(DeferredAudit::take))
                .collect();
            let result = EventStore::store_group(
                &db_for_group,
                &sealing_for_group,
                &policy_for_group,
                &all,
                &rollbacks,
                audit,
            )
            .await;
            (group, result)
        })
        .await;
        let (group, result) = match committed {
            Ok(done) => done,
            Err(err) => {
                tracing::error!(error = %err, "a group commit failed unexpectedly");
                continue;
            }
        };
        match result {
            Ok((results, replacements)) => {
                let mut results = results.into_iter();
                let mut replacements = replacements.into_iter();
                for mut batch in group {
                    let mine = results.by_ref().take(batch.admissions.len()).collect();
                    batch.apply(replacements.by_ref());
                    // A caller that gave up waiting has nothing to receive.
                    let _ = batch.reply.send((batch.admissions, Ok(mine)));
                }
            }
            Err(err) if group.len() == 1 => {
                if let Some(batch) = group.into_iter().next() {
                    let _ = batch.reply.send((batch.admissions, Err(err)));
                }
            }
            Err(_) => {
                for mut batch in group {
                    let own: Vec<GroupEntry> = batch.entries().collect();
                    let rollbacks = rollback_ranges(std::slice::from_ref(&batch));
                    let audit = batch.audit.iter().filter_map(DeferredAudit::take).collect();
                    let result =
                        EventStore::store_group(&db, &sealing, &policy, &own, &rollbacks, audit)
                            .await;
                    let result = result.map(|(results, replacements)| {
                        batch.apply(replacements.into_iter());
                        results
                    });
                    let _ = batch.reply.send((batch.admissions, result));
                }
            }
        }
    }
}

/// Where the all-or-nothing batches of `group` lie among its admissions.
fn rollback_ranges(group: &[Pending]) -> Vec<Range<usize>> {
    let mut start = 0;
    let mut ranges = Vec::new();
    for batch in group {
        let end = start + batch.admissions.len();
        if batch.behaviour == ErrorBehaviour::Rollback && end > start {
            ranges.push(start..end);
        }
        start = end;
    }
    ranges
}

/// One admission of a group: with its caller's trace and channel.
type GroupEntry<'a> = (&'a Admission, Option<&'a str>, Channel);

impl Pending {
    fn entries(&self) -> impl Iterator<Item = GroupEntry<'_>> {
        self.admissions
            .iter()
            .map(|a| (a, self.trace_parent.as_deref(), self.channel))
    }

    /// Puts the commit-time rules' quarantined admissions in place, taking one per
    /// admission of this batch from `replacements`.
    fn apply(&mut self, replacements: impl Iterator<Item = Option<Admission>>) {
        for (admission, replacement) in self.admissions.iter_mut().zip(replacements) {
            if let Some(replacement) = replacement {
                *admission = replacement;
            }
        }
    }
}

/// The condition that an event stands past `cursor` in `order`.
fn past(cursor: Cursor, order: Order) -> Condition {
    let sequence = if order.descending {
        event::Column::Sequence.lt(cursor.sequence)
    } else {
        event::Column::Sequence.gt(cursor.sequence)
    };
    let Some(micros) = cursor.event_time_micros.filter(|_| order.by_event_time) else {
        return Condition::all().add(sequence);
    };
    let time = DateTime::from_timestamp_micros(micros).unwrap_or_default();
    let beyond = if order.descending {
        event::Column::EventTime.lt(time)
    } else {
        event::Column::EventTime.gt(time)
    };
    Condition::any().add(beyond).add(
        Condition::all()
            .add(event::Column::EventTime.eq(time))
            .add(sequence),
    )
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
    /// recordTime >= this (GE_recordTime): on PostgreSQL only the partitions of the months
    /// from here on are read.
    pub record_time_from: Option<DateTime<Utc>>,
    /// recordTime < this (LT_recordTime).
    pub record_time_to: Option<DateTime<Utc>>,
    /// MATCH_epc: objects in epcList, childEPCs, inputEPCList, outputEPCList.
    pub match_epcs: Vec<String>,
    /// MATCH_anyEPC: those and parentID.
    pub match_any_epcs: Vec<String>,
    /// MATCH_epcClass: quantity element classes.
    pub match_epc_classes: Vec<String>,
    /// EQ_bizTransaction, of any type.
    pub biz_transactions: Vec<String>,
    /// EQ_eventID.
    pub event_ids: Vec<String>,
    /// MATCH_parentID.
    pub match_parent_ids: Vec<String>,
    /// MATCH_inputEPC.
    pub match_input_epcs: Vec<String>,
    /// MATCH_outputEPC.
    pub match_output_epcs: Vec<String>,
    /// MATCH_inputEPCClass.
    pub match_input_classes: Vec<String>,
    /// MATCH_outputEPCClass.
    pub match_output_classes: Vec<String>,
    /// MATCH_anyEPCClass: classes of any quantity list.
    pub match_any_classes: Vec<String>,
    /// EQ_action: the events have one of these actions (read from the events themselves).
    pub actions: Vec<tracery_epcis::Action>,
    /// EXISTS_<field>: the events have each of these fields (as their JSON-LD names them).
    pub existing_fields: Vec<String>,
    /// orderBy / orderDirection.
    pub order: Order,
}

/// The order of a query's answer: `orderBy` (`recordTime`, the store's order, or
/// `eventTime`) and `orderDirection`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Order {
    pub by_event_time: bool,
    pub descending: bool,
}

/// Where a page of a query ended: the last event's sequence and, ordered by eventTime, its
/// eventTime (microseconds since the epoch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    pub event_time_micros: Option<i64>,
    pub sequence: i64,
}

impl Cursor {
    /// The position of `event` in a query ordered by `order`.
    pub fn of(event: &StoredEvent, order: Order) -> Self {
        Self {
            event_time_micros: order
                .by_event_time
                .then(|| event.event.event_time.timestamp_micros()),
            sequence: event.sequence,
        }
    }
}

/// The fields whose presence the events table answers (`EXISTS_<field>`), by column.
const COLUMN_FIELDS: [(&str, event::Column); 5] = [
    ("bizStep", event::Column::BizStep),
    ("disposition", event::Column::Disposition),
    ("readPoint", event::Column::ReadPoint),
    ("bizLocation", event::Column::BizLocation),
    ("errorDeclaration", event::Column::Declares),
];

impl EventQuery {
    /// Whether `event` passes the filters the table cannot answer (EQ_action, EXISTS_ of
    /// fields without a column).
    fn keeps(&self, event: &Event) -> bool {
        let action_kept = self.actions.is_empty()
            || event
                .kind
                .action()
                .is_some_and(|action| self.actions.contains(&action));
        if !action_kept {
            return false;
        }
        if self.unindexed_fields().next().is_none() {
            return true;
        }
        let json = tracery_epcis::json::event_to_json(event);
        self.unindexed_fields()
            .all(|field| json.get(field.as_str()).is_some_and(|v| !v.is_null()))
    }

    /// The `EXISTS_` fields no column answers, which are checked on each event read.
    fn unindexed_fields(&self) -> impl Iterator<Item = &String> {
        self.existing_fields
            .iter()
            .filter(|field| !COLUMN_FIELDS.iter().any(|(name, _)| name == field))
    }

    fn filters_after_reading(&self) -> bool {
        !self.actions.is_empty() || self.unindexed_fields().next().is_some()
    }
}

/// The event table's months on PostgreSQL, by record time.
pub const EVENT_MONTHS: Monthly = Monthly {
    table: "capture_events",
    column: "record_time",
};

/// The indexes of the partitioned event table besides its key (sequence, record time),
/// each for the reads named.
const EVENT_INDEXES: [&str; 3] = [
    // Duplicates (under the append lock) and GetEvent by eventID: equality only.
    "CREATE INDEX capture_events_event_id ON capture_events USING hash (event_id)",
    // Queries by event time (GE_eventTime / LT_eventTime).
    "CREATE INDEX capture_events_event_time ON capture_events (event_time)",
    // The error declarations of an event.
    "CREATE INDEX capture_events_declares ON capture_events (declares)",
];

/// The identifier index on PostgreSQL: the events' `identifiers` codes (see `bulk`), for
/// MATCH_epc, MATCH_anyEPC, MATCH_epcClass and EQ_bizTransaction.
const IDENTIFIERS_INDEX: &str = "CREATE INDEX IF NOT EXISTS capture_events_identifiers \
     ON capture_events USING gin (capture_identifier_ids(identifiers))";

/// The advisory lock key of capture appenders ("tracery" in ASCII).
const APPEND_LOCK: i64 = 0x0074_7261_6365_7279;

/// The most events one group commit takes; more wait for the next.
const MAX_GROUP_EVENTS: usize = 20_000;

/// A batch handed back with what became of it.
type Decided = (Vec<Admission>, Result<Vec<IntakeResult>, CaptureError>);

/// A caller's batch waiting for the group commit, and where its results go.
struct Pending {
    admissions: Vec<Admission>,
    /// The request's audit record, committed with the events; taken only by the commit,
    /// so a request refused before it (over capacity) leaves it to the enforcement layer.
    audit: Option<DeferredAudit>,
    /// Where they came from (for those the commit-time rules quarantine).
    channel: Channel,
    /// Whether one refused event quarantines them all.
    behaviour: ErrorBehaviour,
    /// The caller's trace, when traced.
    trace_parent: Option<String>,
    reply: oneshot::Sender<Decided>,
}

/// The event store.
#[derive(Clone)]
pub struct EventStore {
    db: DatabaseConnection,
    sealing: Sealing,
    policy: Arc<Policy>,
    appender: mpsc::Sender<Pending>,
}

impl EventStore {
    /// The store over `db`, linking appended events with `keys`, with its group-commit
    /// task (needs a Tokio runtime).
    pub fn new(db: DatabaseConnection, keys: ChainKeys, policy: Arc<Policy>) -> Self {
        let (appender, pending) = mpsc::channel(policy.capture_queue.max(1));
        let sealing = Sealing {
            keys,
            payloads: Arc::default(),
            months: Arc::default(),
        };
        tokio::spawn(group_commit(
            db.clone(),
            sealing.clone(),
            Arc::clone(&policy),
            pending,
        ));
        Self {
            db,
            sealing,
            policy,
            appender,
        }
    }

    /// A transaction that may append events, serialised with every other appender.
    ///
    /// Readers follow `sequence > cursor`, so a sequence must never become visible after a
    /// higher one: with two writers, a lower sequence committing late would be skipped.
    /// Appenders therefore take one lock, so sequences commit in order: SQLite's write lock
    /// (`BEGIN IMMEDIATE`) already does this, PostgreSQL takes a transaction-level advisory
    /// lock, released at commit, and shared by all capture replicas.
    async fn begin_append(&self) -> Result<sea_orm::DatabaseTransaction, CaptureError> {
        begin_append(&self.db).await
    }

    /// Stores a batch: accepted events are appended (an eventID stored already is a
    /// duplicate with its first sequence), refused ones quarantined. Returns the
    /// admissions with their results once committed, so every result is durable.
    ///
    /// Batches that arrive while a commit is running are committed together in one
    /// transaction (group commit), so many small concurrent requests cost one commit.
    #[tracing::instrument(skip_all, fields(events = admissions.len()))]
    pub async fn capture(
        &self,
        admissions: Vec<Admission>,
        channel: Channel,
        behaviour: ErrorBehaviour,
        audit: Option<DeferredAudit>,
    ) -> Decided {
        let (reply, answer) = oneshot::channel();
        let failed = |reason: &str| CaptureError::Invalid {
            field: String::new(),
            reason: reason.to_owned(),
        };
        let trace_parent = tracery_runtime::telemetry::current_trace_parent();
        let pending = Pending {
            admissions,
            audit,
            channel,
            behaviour,
            trace_parent,
            reply,
        };
        // Past capacity a caller is refused at once rather than queued without bound; the
        // MQTT intake waits instead, so the broker holds what it has not delivered yet.
        let queued = if channel == Channel::Mqtt {
            self.appender
                .send(pending)
                .await
                .map_err(|refused| (refused.0, failed("the event store is shutting down")))
        } else {
            self.appender
                .try_send(pending)
                .map_err(|refused| match refused {
                    mpsc::error::TrySendError::Full(pending) => (
                        pending,
                        CaptureError::Overloaded(self.appender.max_capacity()),
                    ),
                    mpsc::error::TrySendError::Closed(pending) => {
                        (pending, failed("the event store is shutting down"))
                    }
                })
        };
        if let Err((pending, error)) = queued {
            return (pending.admissions, Err(error));
        }
        answer.await.unwrap_or_else(|_| {
            (
                Vec::new(),
                Err(failed("the commit failed unexpectedly; nothing was stored")),
            )
        })
    }

    /// Stores the admissions of one group in one transaction with the requests' `audit`
    /// records, after the commit-time rules
    /// ([`commit_rules`]); also returns the quarantined admissions those rules put in the
    /// place of accepted ones.
    async fn store_group(
        db: &DatabaseConnection,
        sealing: &Sealing,
        policy: &Policy,
        admissions: &[GroupEntry<'_>],
        rollbacks: &[Range<usize>],
        audit: Vec<Record>,
    ) -> Result<(Vec<IntakeResult>, Vec<Option<Admission>>), CaptureError> {
        // The month of the record time taken below is this one or, at its end, the next.
        sealing.months.ensure(db, policy.clock.now()).await?;
        let txn = begin_append(db).await?;
        // Taken under the append lock, so record times rise with sequences: an archived
        // month is then one run of sequences.
        let now = policy.clock.now();
        let judged: Vec<(&Admission, Channel)> = admissions
            .iter()
            .map(|(a, _, channel)| (*a, *channel))
            .collect();
        let admitted: Vec<&Event> = judged
            .iter()
            .filter_map(|(a, _)| match a {
                Admission::Accept { event, .. } => Some(event.as_ref()),
                Admission::Reject(_) => None,
            })
            .collect();
        let stored = stored_sequences(&txn, &admitted).await?;
        let replacements = commit_rules::decide(&txn, policy, &judged, rollbacks, &stored).await?;
        let effective: Vec<(&Admission, Option<&str>)> = admissions
            .iter()
            .zip(&replacements)
            .map(|((admission, trace_parent, _), replacement)| {
                (replacement.as_ref().unwrap_or(admission), *trace_parent)
            })
            .collect();
        let accepted: Vec<&Event> = effective
            .iter()
            .filter_map(|(a, _)| match *a {
                Admission::Accept { event, .. } => Some(event.as_ref()),
                Admission::Reject(_) => None,
            })
            .collect();
        let mut stored = append_events(&txn, sealing, &accepted, stored, now)
            .await?
            .into_iter();
        let mut results = Vec::with_capacity(effective.len());
        let mut traced = Vec::new();
        for (admission, trace_parent) in &effective {
            results.push(match admission {
                Admission::Accept { .. } => {
                    let result = stored.next().ok_or_else(|| CaptureError::Invalid {
                        field: String::new(),
                        reason: "store result missing".to_owned(),
                    })?;
                    if let (Outcome::Accepted, Some(parent)) = (&result.outcome, trace_parent) {
                        traced.push((result.sequence, (*parent).to_owned()));
                    }
                    IntakeResult::Stored(result)
                }
                Admission::Reject(rejected) => {
                    IntakeResult::Quarantined(quarantine::insert(&txn, rejected, now).await?)
                }
            });
        }
        traces::record(&txn, traced).await?;
        // The requests' audit records commit with their events: no record, no write.
        tracery_runtime::audit::append_in(&txn, &sealing.keys, audit).await?;
        txn.commit().await?;
        if let Some(newest) = results.iter().filter_map(IntakeResult::sequence).max() {
            sealing.payloads.appended_up_to(newest);
        }
        Ok((results, replacements))
    }

    /// Applies a new decision about quarantined event `id`: stores it and closes the entry,
    /// or records the new reasons and keeps it open.
    pub async fn resubmit(
        &self,
        id: &str,
        admission: Admission,
        channel: Channel,
    ) -> Result<(Admission, IntakeResult), CaptureError> {
        let txn = self.begin_append().await?;
        quarantine::open_entry(&txn, id).await?;
        let stored = match &admission {
            Admission::Accept { event, .. } => stored_sequences(&txn, &[event.as_ref()]).await?,
            Admission::Reject(_) => HashMap::new(),
        };
        let replacement =
            commit_rules::decide(&txn, &self.policy, &[(&admission, channel)], &[], &stored)
                .await?
                .pop()
                .flatten();
        let admission = replacement.unwrap_or(admission);
        let result = match &admission {
            Admission::Accept { event, .. } => {
                let stored = append_events(
                    &txn,
                    &self.sealing,
                    &[event.as_ref()],
                    stored,
                    self.policy.clock.now(),
                )
                .await?
                .pop()
                .ok_or_else(|| CaptureError::Invalid {
                    field: String::new(),
                    reason: "store result missing".to_owned(),
                })?;
                quarantine::close_resubmitted(&txn, id, &stored.event_id).await?;
                IntakeResult::Stored(stored)
            }
            Admission::Reject(rejected) => {
                quarantine::update(&txn, id, rejected).await?;
                IntakeResult::Quarantined(id.to_owned())
            }
        };
        txn.commit().await?;
        Ok((admission, result))
    }

    /// The open quarantine entry `id`.
    pub async fn quarantined(&self, id: &str) -> Result<quarantine::Entry, CaptureError> {
        quarantine::open_entry(&self.db, id).await
    }

    /// Open quarantine entries after `after`, oldest first.
    pub async fn list_quarantine(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<quarantine::Entry>, CaptureError> {
        quarantine::list_open(&self.db, after, limit).await
    }

    /// The quarantine counts of the hours in `[from, until)`.
    pub async fn quarantine_hours(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<quarantine::hour::Model>, CaptureError> {
        quarantine::hours_between(&self.db, from, until).await
    }

    /// Discards quarantined event `id` for `reason`.
    pub async fn discard(&self, id: &str, reason: &str) -> Result<Rejected, CaptureError> {
        let txn = tracery_runtime::db::begin_write(&self.db).await?;
        let entry = quarantine::open_entry(&txn, id).await?;
        quarantine::close_discarded(&txn, id, reason).await?;
        txn.commit().await?;
        Ok(entry.rejected)
    }

    /// The keys appended events are linked with.
    pub fn keys(&self) -> &ChainKeys {
        &self.sealing.keys
    }

    /// Keeps the stored payloads compact (see [`payloads::maintain`]) until `shutdown`.
    pub fn maintain_payloads(
        &self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(payloads::maintain(
            self.db.clone(),
            Arc::clone(&self.sealing.payloads),
            shutdown,
        ))
    }

    /// The months of stored events that ended before `before` (see [`archive`]), which must
    /// be a past month boundary.
    pub async fn archive_months(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<archive::MonthSpan>, CaptureError> {
        archive::check_before(before, self.policy.clock.now())?;
        archive::months_before(&self.db, before).await
    }

    /// Up to `limit` events after `after` through `last`, as archived.
    pub async fn archived_events(
        &self,
        after: i64,
        last: i64,
        limit: u64,
    ) -> Result<Vec<archive::ArchivedEvent>, CaptureError> {
        archive::events_of(&self.db, &self.sealing.payloads, after, last, limit).await
    }

    /// Refuses `span` unless the chain link before it is the store's own.
    pub async fn check_archive_start(&self, span: &archive::MonthSpan) -> Result<(), CaptureError> {
        let expected = archive::link_before(&self.db, span.first_sequence).await?;
        if expected != span.link_before {
            return Err(CaptureError::ArchiveRefused(format!(
                "{}: the archive's chain does not join this store's: its link before sequence \
                 {} is not this store's",
                span.month, span.first_sequence
            )));
        }
        Ok(())
    }

    /// Checks uploaded, chain-checked `events` of `month` against the stored rows.
    pub async fn compare_archived(
        &self,
        month: &str,
        events: &[archive::ArchivedEvent],
    ) -> Result<(), CaptureError> {
        archive::compare_with_stored(&self.db, month, events).await
    }

    /// Drops a checked month (see [`archive::drop_month`]).
    pub async fn drop_archived(
        &self,
        span: &archive::MonthSpan,
        files: &[archive::ArchiveFile],
        key_hashes: Vec<(i64, i64)>,
    ) -> Result<(), CaptureError> {
        archive::drop_month(&self.db, span, files, key_hashes, self.policy.clock.now()).await
    }

    /// Refuses to import `span` unless it was dropped from this store.
    /// Then makes room for its events (see [`archive::make_room`]).
    pub async fn check_importable(&self, span: &archive::MonthSpan) -> Result<(), CaptureError> {
        archive::check_importable(&self.db, span).await?;
        archive::make_room(&self.db, span).await
    }

    /// Prepares chain-checked archived `events` for [`EventStore::write_restore`] on a
    /// blocking thread.
    pub fn prepare_restore(
        &self,
        events: Vec<archive::ArchivedEvent>,
    ) -> JoinHandle<Result<archive::Restore, CaptureError>> {
        let payloads = Arc::clone(&self.sealing.payloads);
        tokio::task::spawn_blocking(move || archive::prepare_restore(&payloads, &events))
    }

    /// Writes prepared archived events back.
    pub async fn write_restore(&self, restore: archive::Restore) -> Result<(), CaptureError> {
        archive::write_restore(&self.db, restore).await
    }

    /// Ends the import of `span` once all its events are back.
    pub async fn finish_import(&self, span: &archive::MonthSpan) -> Result<(), CaptureError> {
        archive::finish_import(&self.db, span).await
    }

    /// Walks the hash chain of stored events against `checkpoints` (see [`integrity`]).
    pub async fn verify_integrity(
        &self,
        checkpoints: Vec<Checkpoint>,
    ) -> Result<integrity::Report, CaptureError> {
        integrity::verify(&self.db, &self.sealing.keys, checkpoints).await
    }

    /// Walks the audit trail's hash chain (see [`tracery_runtime::audit`]).
    pub async fn verify_audit(
        &self,
        checkpoints: Vec<Checkpoint>,
    ) -> Result<tracery_runtime::audit::Report, CaptureError> {
        Ok(tracery_runtime::audit::verify(&self.db, &self.sealing.keys, checkpoints).await?)
    }

    /// Where each of `children` (canonical) is packed now, for those that are.
    pub async fn placements_of(
        &self,
        children: &[String],
    ) -> Result<HashMap<String, placements::Placement>, CaptureError> {
        Ok(placements::placements_of(&self.db, children).await?)
    }

    /// The database, for the REST binding's capture jobs.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Which of `event_ids` are stored already.
    pub async fn existing_event_ids(
        &self,
        event_ids: &[String],
    ) -> Result<HashSet<String>, CaptureError> {
        Ok(bulk::sequences_of(&self.db, event_ids)
            .await?
            .into_keys()
            .collect())
    }

    /// The event with this eventID; once declared erroneous, the error declaration (the
    /// event as corrected, with its `errorDeclaration`).
    pub async fn get(&self, event_id: &str) -> Result<StoredEvent, CaptureError> {
        let row = event::Entity::find()
            .filter(
                Condition::any()
                    .add(event::Column::EventId.eq(event_id))
                    .add(event::Column::Declares.eq(event_id)),
            )
            .order_by_desc(event::Column::Sequence)
            .one(&self.db)
            .await?;
        match row {
            Some(row) => self.decode(row).await,
            None => Err(match archive::archived_in(&self.db, event_id).await? {
                Some(file) => CaptureError::Archived {
                    event_id: event_id.to_owned(),
                    file,
                },
                None => CaptureError::EventNotFound(event_id.to_owned()),
            }),
        }
    }

    /// Batches waiting for the group commit.
    pub fn commit_queue_depth(&self) -> i64 {
        i64::try_from(self.appender.max_capacity() - self.appender.capacity()).unwrap_or(i64::MAX)
    }

    /// The traceparents of traced events with sequences in `first..=last`.
    pub async fn trace_parents(
        &self,
        first: i64,
        last: i64,
    ) -> Result<HashMap<i64, String>, CaptureError> {
        Ok(traces::between(&self.db, first, last).await?)
    }

    /// Stores captured master data, each element replacing what was known of it.
    pub async fn store_master_data(
        &self,
        elements: &[tracery_epcis::master_data::VocabularyElement],
    ) -> Result<(), CaptureError> {
        Ok(master_data::upsert(&self.db, elements, Utc::now()).await?)
    }

    /// The master data of `id` in `vocabulary_type`, if any was captured.
    pub async fn master_data(
        &self,
        vocabulary_type: &str,
        id: &str,
    ) -> Result<Option<master_data::Stored>, CaptureError> {
        Ok(master_data::get(&self.db, vocabulary_type, id).await?)
    }

    /// The master data captured of `ids`, of any vocabulary type.
    pub async fn master_data_of(
        &self,
        ids: &[String],
    ) -> Result<Vec<(String, master_data::Stored)>, CaptureError> {
        Ok(master_data::of_ids(&self.db, ids).await?)
    }

    /// Up to `limit` terms of `vocabulary` that stored events use, after `after`, in order.
    pub async fn terms(
        &self,
        vocabulary: vocabulary::Vocabulary,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<String>, CaptureError> {
        Ok(vocabulary::page(&self.db, vocabulary, after, limit).await?)
    }

    /// Up to `limit` EPCs that stored events name, after `after`, in order.
    pub async fn epcs(&self, after: Option<&str>, limit: u64) -> Result<Vec<String>, CaptureError> {
        Ok(keys::objects_page(&self.db, after, limit).await?)
    }

    /// Up to `limit` events with a sequence above `after`, matching `query`, in sequence order.
    pub async fn query(
        &self,
        query: &EventQuery,
        after: i64,
        limit: u64,
    ) -> Result<Vec<StoredEvent>, CaptureError> {
        let mut query = query.clone();
        query.order = Order::default();
        let after = Cursor {
            event_time_micros: None,
            sequence: after,
        };
        self.query_page(&query, Some(after), limit).await
    }

    /// Up to `limit` events matching `query` after `after` (from the first when `None`),
    /// in the query's order.
    pub async fn query_page(
        &self,
        query: &EventQuery,
        after: Option<Cursor>,
        limit: u64,
    ) -> Result<Vec<StoredEvent>, CaptureError> {
        let mut condition = Condition::all();
        let in_list = |column: event::Column, values: &[String]| {
            (!values.is_empty()).then(|| column.is_in(values.iter().cloned()))
        };
        for filter in [
            in_list(event::Column::EventType, &query.event_types),
            in_list(event::Column::BizStep, &query.biz_steps),
            in_list(event::Column::Disposition, &query.dispositions),
            in_list(event::Column::ReadPoint, &query.read_points),
            in_list(event::Column::BizLocation, &query.biz_locations),
            in_list(event::Column::EventId, &query.event_ids),
        ]
        .into_iter()
        .flatten()
        {
            condition = condition.add(filter);
        }
        for (field, column) in COLUMN_FIELDS {
            if query.existing_fields.iter().any(|f| f == field) {
                condition = condition.add(column.is_not_null());
            }
        }
        if let Some(from) = query.event_time_from {
            condition = condition.add(event::Column::EventTime.gte(from));
        }
        if let Some(to) = query.event_time_to {
            condition = condition.add(event::Column::EventTime.lt(to));
        }
        if let Some(from) = query.record_time_from {
            condition = condition.add(event::Column::RecordTime.gte(from));
        }
        if let Some(to) = query.record_time_to {
            condition = condition.add(event::Column::RecordTime.lt(to));
        }
        for (values, roles) in [
            (&query.match_epcs, &keys::Role::OBJECTS[..]),
            (
                &query.match_any_epcs,
                &[
                    keys::Role::Epc,
                    keys::Role::InputEpc,
                    keys::Role::OutputEpc,
                    keys::Role::Parent,
                ][..],
            ),
            (&query.match_epc_classes, &keys::Role::CLASSES[..]),
            (&query.biz_transactions, &[keys::Role::BizTransaction][..]),
            (&query.match_parent_ids, &[keys::Role::Parent][..]),
            (&query.match_input_epcs, &[keys::Role::InputEpc][..]),
            (&query.match_output_epcs, &[keys::Role::OutputEpc][..]),
            (&query.match_input_classes, &[keys::Role::InputClass][..]),
            (&query.match_output_classes, &[keys::Role::OutputClass][..]),
            (&query.match_any_classes, &keys::Role::CLASSES[..]),
        ] {
            if !values.is_empty() {
                condition = condition.add(keys::matching(
                    self.db.get_database_backend(),
                    values,
                    roles,
                ));
            }
        }
        self.read_in_order(query, condition, after, limit).await
    }

    /// Reads the events `condition` selects after `after` in `query`'s order, `limit` of
    /// those that pass its after-reading filters (reading on past the ones that do not).
    async fn read_in_order(
        &self,
        query: &EventQuery,
        condition: Condition,
        mut after: Option<Cursor>,
        limit: u64,
    ) -> Result<Vec<StoredEvent>, CaptureError> {
        use sea_orm::Order as Direction;
        let direction = if query.order.descending {
            Direction::Desc
        } else {
            Direction::Asc
        };
        let mut events = Vec::new();
        loop {
            let mut select = event::Entity::find().filter(condition.clone());
            if let Some(cursor) = after {
                select = select.filter(past(cursor, query.order));
            }
            if query.order.by_event_time {
                select = select.order_by(event::Column::EventTime, direction.clone());
            }
            let rows = select
                .order_by(event::Column::Sequence, direction.clone())
                .limit(limit)
                .all(&self.db)
                .await?;
            let exhausted = (rows.len() as u64) < limit;
            for row in rows {
                let stored = self.decode(row).await?;
                after = Some(Cursor::of(&stored, query.order));
                if query.keeps(&stored.event) && (events.len() as u64) < limit {
                    events.push(stored);
                }
            }
            if exhausted || (events.len() as u64) >= limit || !query.filters_after_reading() {
                return Ok(events);
            }
        }
    }

    async fn decode(&self, row: event::Model) -> Result<StoredEvent, CaptureError> {
        decode_payload(&self.db, &self.sealing.payloads, row.sequence, &row.payload).await
    }
}

/// `events` in sequence order without the ones declared erroneous among them and the
/// declarations: what a derived table (placements, lifecycle) replays.
fn undeclared(events: &mut [StoredEvent]) -> impl Iterator<Item = &StoredEvent> {
    events.sort_by_key(|stored| stored.sequence);
    let declared: HashSet<String> = events
        .iter()
        .filter(|stored| stored.event.error_declaration.is_some())
        .filter_map(|stored| stored.event.event_id.clone())
        .collect();
    events.iter().filter(move |stored| {
        stored.event.error_declaration.is_none()
            && !declared.contains(stored.event.event_id.as_deref().unwrap_or_default())
    })
}

/// Up to `limit` stored events after sequence `after`, in sequence order, as (sequence,
/// stored payload): the columns every version of the events table has, so migrations use
/// it too. Before `m0011` PostgreSQL kept payloads as text, which reads back as its bytes.
async fn payloads_after(
    conn: &impl ConnectionTrait,
    after: i64,
    limit: u64,
) -> Result<Vec<(i64, Vec<u8>)>, sea_orm::DbErr> {
    // The two forms are selected under different names, so they are different prepared
    // statements: PostgreSQL refuses to run a statement prepared while the column was
    // text once `m0011` has made it bytes, in the same migration run.
    let text = payloads_are_text(conn).await?;
    let select = event::Entity::find()
        .select_only()
        .column(event::Column::Sequence)
        .column_as(
            event::Column::Payload,
            if text {
                "payload_text"
            } else {
                "stored_payload"
            },
        )
        .filter(event::Column::Sequence.gt(after))
        .order_by_asc(event::Column::Sequence)
        .limit(limit);
    if text {
        let rows: Vec<(i64, String)> = select.into_tuple().all(conn).await?;
        return Ok(rows
            .into_iter()
            .map(|(sequence, text)| (sequence, text.into_bytes()))
            .collect());
    }
    select.into_tuple().all(conn).await
}

/// Whether the events table still keeps payloads in a PostgreSQL `text` column: only while
/// the migrations before `m0011` run.
async fn payloads_are_text(conn: &impl ConnectionTrait) -> Result<bool, sea_orm::DbErr> {
    if conn.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return Ok(false);
    }
    let applied = conn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT 1 AS applied FROM capture_migrations \
             WHERE version = 'm0011_capture_compressed_payloads'",
        ))
        .await?;
    Ok(applied.is_none())
}

/// The event stored at `sequence` from its stored payload.
async fn decode_payload(
    conn: &impl ConnectionTrait,
    payloads: &payloads::Payloads,
    sequence: i64,
    stored: &[u8],
) -> Result<StoredEvent, CaptureError> {
    let corrupt = |reason: String| CaptureError::CorruptEvent { sequence, reason };
    let text = payloads
        .decode(conn, stored)
        .await
        .map_err(|err| corrupt(err.to_string()))?;
    parse_payload(sequence, &text)
}

/// The event stored at `sequence` from its payload's text.
fn parse_payload(sequence: i64, text: &str) -> Result<StoredEvent, CaptureError> {
    let corrupt = |reason: String| CaptureError::CorruptEvent { sequence, reason };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|err| corrupt(err.to_string()))?;
    let event = json::parse_event(value).map_err(|err| corrupt(err.to_string()))?;
    Ok(StoredEvent { sequence, event })
}

/// A table capture derives from its events and keeps in the commit that stores them
/// (lifecycle states, placements): what a replay of events leaves in it.
trait Projection: Default {
    /// Applies one event, its effects worked out already.
    fn apply_effects(&mut self, sequence: i64, event: &Event, effects: &Effects);

    /// Writes the outcome over the table.
    async fn write(self, conn: &impl ConnectionTrait) -> Result<(), sea_orm::DbErr>;

    /// Works out again, from the stored events, what the events these declarations
    /// declared erroneous had decided.
    async fn redo_declared(
        conn: &impl ConnectionTrait,
        declarations: &[&Event],
    ) -> Result<(), CaptureError>;
}

/// Brings projection `P` up to date with events just appended in `conn`'s transaction
/// (their identifier index rows written already), in sequence order.
async fn record<P: Projection>(
    conn: &impl ConnectionTrait,
    appended: &[(i64, &Event, &Effects)],
) -> Result<(), CaptureError> {
    let mut replay = P::default();
    let mut declarations = Vec::new();
    for (sequence, event, effects) in appended {
        if event.error_declaration.is_some() {
            declarations.push(*event);
            continue;
        }
        replay.apply_effects(*sequence, event, effects);
    }
    replay.write(conn).await?;
    if !declarations.is_empty() {
        P::redo_declared(conn, &declarations).await?;
    }
    Ok(())
}
