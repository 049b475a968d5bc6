//! What smoothing must not forget across a restart: tags present in a zone and the tags of
//! portal passes in progress (`capture_rfid_presence`). A row is written before the reads
//! that made it are acknowledged to the broker, and removed once the event that ends it is
//! stored; a restart between the two stores that event again under the same eventID, which
//! capture takes as a duplicate.

use chrono::{DateTime, FixedOffset};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::OnConflict,
};
use sea_orm_migration::{
    SchemaManager,
    schema::{string_len, text, timestamp_with_time_zone, timestamp_with_time_zone_null},
};
use tracery_runtime::migrations::create_table;

use super::smoothing::{Key, Pass, Presence};

/// The `capture_rfid_presence` table.
pub mod presence {
    use sea_orm::entity::prelude::*;

    /// A tag present in a zone, or one tag of a pass in progress.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_rfid_presence")]
    pub struct Model {
        /// `reader`, zone and EPC hex, joined by U+001F.
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub reader: String,
        pub zone: String,
        pub epc_hex: String,
        /// Reader time (RFC 3339, its offset kept) of the first read (of the pass).
        pub first_time: String,
        /// Reader time of the latest read.
        pub last_time: String,
        /// When the latest read arrived.
        pub last_seen: ChronoDateTimeUtc,
        /// When the pass began, for a portal's tag.
        pub pass_started: Option<ChronoDateTimeUtc>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use presence::{Column as C, Entity};

/// Creates the table (`m0027`).
pub async fn create_table_m0027(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    create_table(
        manager,
        Entity,
        [
            text(C::Key).primary_key().take(),
            string_len(C::Reader, 128),
            text(C::Zone),
            string_len(C::EpcHex, 64),
            string_len(C::FirstTime, 40),
            string_len(C::LastTime, 40),
            timestamp_with_time_zone(C::LastSeen),
            timestamp_with_time_zone_null(C::PassStarted),
        ],
    )
    .await
}

fn row_key(key: &Key) -> String {
    format!("{}\u{1f}{}\u{1f}{}", key.reader, key.zone, key.hex)
}

/// A row to write.
pub enum Row<'a> {
    Present(&'a Key, &'a Presence),
    InPass(&'a Key, &'a Pass),
}

fn model(row: &Row<'_>) -> presence::ActiveModel {
    let (key, first, last, seen, started) = match row {
        Row::Present(key, p) => (key, p.first_time, p.last_time, p.last_seen, None),
        Row::InPass(key, pass) => (
            key,
            pass.first_time,
            pass.first_time,
            pass.last_read,
            Some(pass.started),
        ),
    };
    presence::ActiveModel {
        key: Set(row_key(key)),
        reader: Set(key.reader.clone()),
        zone: Set(key.zone.clone()),
        epc_hex: Set(key.hex.clone()),
        first_time: Set(first.to_rfc3339()),
        last_time: Set(last.to_rfc3339()),
        last_seen: Set(seen),
        pass_started: Set(started),
    }
}

/// Rows per statement: inside SQLite's bound-parameter limit.
const CHUNK: usize = 500;

/// Writes `rows` (each replacing its key's) and removes `gone`, in one transaction.
pub async fn save(
    db: &sea_orm::DatabaseConnection,
    rows: &[Row<'_>],
    gone: &[Key],
) -> Result<(), DbErr> {
    if rows.is_empty() && gone.is_empty() {
        return Ok(());
    }
    let txn = tracery_runtime::db::begin_write(db).await?;
    for chunk in rows.chunks(CHUNK) {
        Entity::insert_many(chunk.iter().map(model))
            .on_conflict(
                OnConflict::column(C::Key)
                    .update_columns([C::FirstTime, C::LastTime, C::LastSeen, C::PassStarted])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
    }
    for chunk in gone.chunks(CHUNK) {
        Entity::delete_many()
            .filter(C::Key.is_in(chunk.iter().map(row_key)))
            .exec(&txn)
            .await?;
    }
    txn.commit().await
}

/// Everything stored: present tags, and the tags of passes in progress.
pub async fn load(
    conn: &impl ConnectionTrait,
) -> Result<(Vec<(Key, Presence)>, Vec<(Key, Pass)>), DbErr> {
    let mut present = Vec::new();
    let mut passes = Vec::new();
    for row in Entity::find().all(conn).await? {
        let key = Key {
            reader: row.reader,
            zone: row.zone,
            hex: row.epc_hex,
        };
        let time = |written: &str| DateTime::<FixedOffset>::parse_from_rfc3339(written).ok();
        let (Some(first_time), Some(last_time)) = (time(&row.first_time), time(&row.last_time))
        else {
            continue;
        };
        match row.pass_started {
            Some(started) => passes.push((
                key,
                Pass {
                    started,
                    first_time,
                    last_read: row.last_seen,
                    tags: Default::default(),
                },
            )),
            None => present.push((
                key,
                Presence {
                    first_time,
                    last_time,
                    last_seen: row.last_seen,
                    dirty: false,
                },
            )),
        }
    }
    Ok((present, passes))
}
