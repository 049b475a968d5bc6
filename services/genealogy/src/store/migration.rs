//! Genealogy migrations, tracked in their own table. The projection is derived from
//! capture, so a layout change drops the tables and resets the cursor: the follower then
//! replays the capture stream into the new layout.

use sea_orm_migration::{
    prelude::*,
    schema::{
        big_integer, big_integer_null, big_pk_auto, double_null, integer, small_integer, string,
        string_null, timestamp_with_time_zone,
    },
};
use tracery_runtime::migrations::create_table;

use super::tables::{cursor, event, history, history_in_events, link, node, unpack};

/// Genealogy migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        "genealogy_migrations".into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Superseded("m0001_create_genealogy_history")),
            Box::new(Superseded("m0002_create_genealogy_links")),
            Box::new(Superseded("m0003_intern_nodes")),
            Box::new(CompactProjection),
            Box::new(HistoryInEvents),
            Box::new(LeanIndexes),
            Box::new(OrdersAndSensorReadings),
            Box::new(Trends),
            Box::new(UnitProfiles),
            Box::new(CoveringLinksTo),
        ]
    }
}

/// An earlier layout, replaced as a whole by [`CompactProjection`]; kept by name because
/// the migration table of an existing database lists it.
struct Superseded(&'static str);

impl MigrationName for Superseded {
    fn name(&self) -> &str {
        self.0
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Superseded {
    async fn up(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}

/// Nodes indexed by key rather than URI, event attributes as node ids, history without a
/// rowid on SQLite, and only unpacks kept beside the links (a pack is its link). The
/// projection is rebuilt: every table goes and the cursor with it, so the follower replays
/// capture's stream into the new layout.
struct CompactProjection;

impl MigrationName for CompactProjection {
    fn name(&self) -> &str {
        "m0004_compact_projection"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CompactProjection {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "genealogy_nodes",
            "genealogy_events",
            "genealogy_history",
            "genealogy_links",
            "genealogy_packings",
            "genealogy_unpacks",
            "genealogy_cursor",
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        create_table(
            manager,
            node::Entity,
            [
                big_pk_auto(node::Column::Id),
                string(node::Column::Uri),
                big_integer(node::Column::Key).unique_key().take(),
            ],
        )
        .await?;
        use event::Column as E;
        create_table(
            manager,
            event::Entity,
            [
                big_integer(E::Sequence).primary_key().take(),
                string(E::EventId),
                big_integer(E::EventType),
                timestamp_with_time_zone(E::EventTime),
                big_integer_null(E::Action),
                big_integer_null(E::BizStep),
                big_integer_null(E::Disposition),
                big_integer_null(E::ReadPoint),
                big_integer_null(E::BizLocation),
                big_integer_null(E::Custodian),
            ],
        )
        .await?;
        // Unique, so replaying an event changes nothing; without a rowid SQLite keeps the
        // rows in their key's B-tree alone.
        let (bigint, without_rowid) = match manager.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => ("bigint", ""),
            _ => ("INTEGER", " WITHOUT ROWID"),
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE TABLE genealogy_history (node {bigint} NOT NULL, \
                 sequence {bigint} NOT NULL, PRIMARY KEY (node, sequence)){without_rowid}"
            ))
            .await?;
        use link::Column as L;
        create_table(
            manager,
            link::Entity,
            [
                big_pk_auto(L::Id),
                big_integer(L::FromNode),
                big_integer(L::ToNode),
                small_integer(L::Kind),
                big_integer(L::Sequence),
                big_integer_null(L::EndSequence),
                double_null(L::Quantity),
                string_null(L::Uom),
            ],
        )
        .await?;
        use unpack::Column as U;
        create_table(
            manager,
            unpack::Entity,
            [
                big_pk_auto(U::Id),
                big_integer(U::Child),
                big_integer(U::Parent),
                big_integer(U::Sequence),
            ],
        )
        .await?;
        create_table(
            manager,
            cursor::Entity,
            [
                integer(cursor::Column::Id).primary_key().take(),
                big_integer(cursor::Column::AppliedSequence),
            ],
        )
        .await?;
        // Traces read links from either end; error declarations find an event's rows by
        // its sequence, and its sequence by its eventID.
        let indexes: [(&str, TableRef, Vec<DynIden>); 7] = [
            (
                "genealogy_links_from",
                link::Entity.into_table_ref(),
                vec![L::FromNode.into_iden(), L::Kind.into_iden()],
            ),
            (
                "genealogy_links_to",
                link::Entity.into_table_ref(),
                vec![L::ToNode.into_iden(), L::Kind.into_iden()],
            ),
            (
                "genealogy_links_sequence",
                link::Entity.into_table_ref(),
                vec![L::Sequence.into_iden()],
            ),
            (
                "genealogy_history_sequence",
                history::Entity.into_table_ref(),
                vec![history::Column::Sequence.into_iden()],
            ),
            (
                "genealogy_unpacks_child",
                unpack::Entity.into_table_ref(),
                vec![U::Child.into_iden()],
            ),
            (
                "genealogy_unpacks_sequence",
                unpack::Entity.into_table_ref(),
                vec![U::Sequence.into_iden()],
            ),
            (
                "genealogy_events_event_id",
                event::Entity.into_table_ref(),
                vec![E::EventId.into_iden()],
            ),
        ];
        for (name, table, columns) in indexes {
            let mut index = Index::create();
            index.name(name).table(table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index).await?;
        }
        Ok(())
    }
}

/// PostgreSQL: the nodes each event touched move from `genealogy_history` rows into the
/// event's `touched` array with a GIN index (see [`history`]), in place. Each step is
/// guarded, so a conversion that stopped part-way picks up where it was. SQLite keeps its
/// rows.
struct HistoryInEvents;

impl MigrationName for HistoryInEvents {
    fn name(&self) -> &str {
        "m0005_history_in_events"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for HistoryInEvents {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !history_in_events(manager.get_database_backend()) {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "ALTER TABLE genealogy_events ADD COLUMN IF NOT EXISTS touched bigint[] NOT NULL \
             DEFAULT '{}'",
        )
        .await?;
        if manager.has_table("genealogy_history").await? {
            db.execute_unprepared(
                "UPDATE genealogy_events e SET touched = h.nodes \
                 FROM (SELECT sequence, array_agg(node ORDER BY node) AS nodes \
                       FROM genealogy_history GROUP BY sequence) h \
                 WHERE h.sequence = e.sequence",
            )
            .await?;
            db.execute_unprepared("DROP TABLE genealogy_history")
                .await?;
        }
        // Applied without the pending list, which every trace would otherwise scan.
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS genealogy_events_touched ON genealogy_events \
             USING gin (touched) WITH (fastupdate = off)",
        )
        .await?;
        Ok(())
    }
}

/// Indexes sized for the lookups they serve. Links are no longer indexed by the sequence
/// that made them: an error declaration finds them from the nodes its event touched. On
/// PostgreSQL, link ids are not indexed either (a trace walks links in memory; containment
/// ends a link found from its child), and an eventID, looked up by equality alone, is
/// found through a hash index of its 4-byte hash rather than a B-tree of its 45
/// characters, and no read of the projection starts parallel workers. On SQLite the link
/// id is the rowid, and there are no hash indexes.
struct LeanIndexes;

impl MigrationName for LeanIndexes {
    fn name(&self) -> &str {
        "m0006_lean_indexes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for LeanIndexes {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS genealogy_links_sequence")
            .await?;
        if manager.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
            return Ok(());
        }
        for statement in [
            "ALTER TABLE genealogy_links DROP CONSTRAINT IF EXISTS genealogy_links_pkey",
            "DROP INDEX IF EXISTS genealogy_events_event_id",
            "CREATE INDEX genealogy_events_event_id ON genealogy_events USING hash (event_id)",
            // Trace reads are lookups of a few dozen rows; workers only add their start-up
            // (8 ms a query where the planner, without statistics, chose them).
            "ALTER TABLE genealogy_links SET (parallel_workers = 0)",
            "ALTER TABLE genealogy_events SET (parallel_workers = 0)",
            "ALTER TABLE genealogy_nodes SET (parallel_workers = 0)",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}

/// Each event's production order, and sensor readings, for common-cause analysis. Added
/// in place: events projected before keep none. The projection is not replayed for them,
/// since capture may have archived months whose genealogy only the projection still holds.
struct OrdersAndSensorReadings;

impl MigrationName for OrdersAndSensorReadings {
    fn name(&self) -> &str {
        "m0007_orders_and_sensor_readings"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OrdersAndSensorReadings {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if !manager
            .has_column("genealogy_events", "production_order")
            .await?
        {
            db.execute_unprepared(
                "ALTER TABLE genealogy_events ADD COLUMN production_order bigint",
            )
            .await?;
        }
        let (bigint, double, without_rowid) = match manager.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => ("bigint", "double precision", ""),
            _ => ("INTEGER", "REAL", " WITHOUT ROWID"),
        };
        db.execute_unprepared(&format!(
            "CREATE TABLE IF NOT EXISTS genealogy_sensor_readings (\
             sequence {bigint} NOT NULL, ordinal integer NOT NULL, kind text, uom text, \
             value {double}, min_value {double}, max_value {double}, exception text, \
             PRIMARY KEY (sequence, ordinal)){without_rowid}"
        ))
        .await?;
        Ok(())
    }
}

/// The trend rollup ([`crate::trends`]): hourly counts, dwell histograms and the positions
/// they are worked out from. They start empty and fill from the events applied after it.
struct Trends;

impl MigrationName for Trends {
    fn name(&self) -> &str {
        "m0008_trends"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Trends {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let (bigint, time, without_rowid) = match manager.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => ("bigint", "timestamptz", ""),
            _ => ("INTEGER", "timestamp_with_timezone_text", " WITHOUT ROWID"),
        };
        let db = manager.get_connection();
        for statement in [
            format!(
                "CREATE TABLE IF NOT EXISTS genealogy_trend_hours (hour {time} NOT NULL, \
                 station {bigint} NOT NULL, events {bigint} NOT NULL, \
                 inspected {bigint} NOT NULL, passed_first_time {bigint} NOT NULL, \
                 PRIMARY KEY (hour, station)){without_rowid}"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS genealogy_trend_dwell (hour {time} NOT NULL, \
                 stage {bigint} NOT NULL, bucket smallint NOT NULL, visits {bigint} NOT NULL, \
                 total_seconds {bigint} NOT NULL, PRIMARY KEY (hour, stage, bucket)){without_rowid}"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS genealogy_positions (node {bigint} NOT NULL \
                 PRIMARY KEY, station {bigint} NOT NULL, since {bigint} NOT NULL, \
                 inspected boolean NOT NULL){without_rowid}"
            ),
        ] {
            db.execute_unprepared(&statement).await?;
        }
        Ok(())
    }
}

/// Unit profiles and their counts, for common-cause analysis
/// ([`super::unit_profiles`]). They fill from the events applied after this migration;
/// `genealogy_profiles_since` records the cursor at that point, and an analysis reads the
/// counts only where it is 0 (a store that was empty), its units read one by one otherwise.
struct UnitProfiles;

impl MigrationName for UnitProfiles {
    fn name(&self) -> &str {
        "m0009_unit_profiles"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for UnitProfiles {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let (bigint, id, without_rowid) = match manager.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => ("bigint", "bigserial PRIMARY KEY", ""),
            _ => (
                "INTEGER",
                "INTEGER PRIMARY KEY AUTOINCREMENT",
                " WITHOUT ROWID",
            ),
        };
        let db = manager.get_connection();
        for statement in [
            format!(
                "CREATE TABLE IF NOT EXISTS genealogy_unit_profiles (node {bigint} NOT NULL \
                 PRIMARY KEY, product {bigint} NOT NULL, first_hour {bigint} NOT NULL, \
                 signature {bigint} NOT NULL){without_rowid}"
            ),
            // Evidence: a few units of one profile.
            "CREATE INDEX IF NOT EXISTS genealogy_unit_profiles_signature ON \
             genealogy_unit_profiles (signature)"
                .to_owned(),
            format!(
                "CREATE TABLE IF NOT EXISTS genealogy_profile_signatures (id {id}, \
                 digest {bigint} NOT NULL UNIQUE, body text NOT NULL)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS genealogy_profile_counts (product {bigint} NOT \
                 NULL, hour {bigint} NOT NULL, signature {bigint} NOT NULL, units {bigint} NOT \
                 NULL, PRIMARY KEY (product, hour, signature)){without_rowid}"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS genealogy_profiles_since (id integer NOT NULL \
                 PRIMARY KEY, sequence {bigint} NOT NULL)"
            ),
            "INSERT INTO genealogy_profiles_since (id, sequence) SELECT 1, \
             COALESCE(MAX(applied_sequence), 0) FROM genealogy_cursor \
             WHERE NOT EXISTS (SELECT 1 FROM genealogy_profiles_since)"
                .to_owned(),
        ] {
            db.execute_unprepared(&statement).await?;
        }
        Ok(())
    }
}

/// On SQLite, the index of links by the node they lead to also holds the node they come
/// from and the event that made them, so a walk upstream reads a node's parents from the
/// index alone. An analysis walks up from every lot its good units were made from (115,758
/// lots at 1M events); looking up each link's row as well spread those reads over the
/// whole table.
///
/// PostgreSQL keeps `(to_node, kind)`: there the covering form measured 355 MB at 1M
/// events against 118 MB (the included columns stop B-tree deduplication of the many links
/// into one lot), and the analysis was no faster with it.
struct CoveringLinksTo;

impl MigrationName for CoveringLinksTo {
    fn name(&self) -> &str {
        "m0010_covering_links_to"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CoveringLinksTo {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            return Ok(());
        }
        // A new name, not the old one dropped and made again: SQLite checks a new index's
        // name against the schema its connection last read, and the pool may run the two
        // statements on different connections.
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS genealogy_links_to_covering ON genealogy_links \
             (to_node, kind, from_node, sequence)",
        )
        .await?;
        db.execute_unprepared("DROP INDEX IF EXISTS genealogy_links_to")
            .await?;
        Ok(())
    }
}
