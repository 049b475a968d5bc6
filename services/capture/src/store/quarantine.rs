//! The quarantine: events the pipeline refused, kept with their reasons until they are
//! corrected and resubmitted or discarded with a reason. Closed entries stay as the audit
//! trail.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use serde_json::json;
use tracery_runtime::error::Violation;

use crate::domain::{CaptureError, Channel, Rejected};

/// The `capture_quarantine` table.
pub mod entry {
    use sea_orm::entity::prelude::*;

    /// One quarantined event.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_quarantine")]
    pub struct Model {
        /// UUIDv7, so ids sort by arrival.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Arrival time.
        pub received_at: ChronoDateTimeUtc,
        /// `grpc`, `rest` or `mqtt`.
        pub channel: String,
        /// JSON-LD text of the event, when it was readable.
        pub payload: Option<String>,
        /// Protobuf bytes as received, when it was not.
        pub payload_protobuf: Option<Vec<u8>>,
        /// JSON array of `{field, reason, description}`.
        pub violations: String,
        /// 1 open, 2 resubmitted, 3 discarded.
        pub status: i16,
        /// When it was resubmitted or discarded.
        pub closed_at: Option<ChronoDateTimeUtc>,
        /// The stored eventID (resubmitted) or the discard reason.
        pub resolution: Option<String>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `capture_quarantine_hours` table: how many events were quarantined in each hour
/// (UTC, by arrival) per read point, for the dashboard's trends.
pub mod hour {
    use sea_orm::entity::prelude::*;

    /// One read point's hour.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_quarantine_hours")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub hour: ChronoDateTimeUtc,
        /// The read point the event names; empty when it names none or cannot be read.
        #[sea_orm(primary_key, auto_increment = false)]
        pub read_point: String,
        pub quarantined: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The read point a quarantined event names, if it can be read at all: its JSON-LD text,
/// read within the default bounds, or else its protobuf bytes.
pub fn read_point_of(payload: Option<&str>, protobuf: Option<&[u8]>) -> Option<String> {
    use prost::Message as _;
    if let Some(text) = payload {
        let bounds = tracery_epcis::bounds::Bounds::default();
        let value = tracery_epcis::bounds::parse_json(text.as_bytes(), &bounds).ok()?;
        let point = &value["readPoint"];
        return point["id"].as_str().or(point.as_str()).map(str::to_owned);
    }
    let event = tracery_proto::v1::EpcisEvent::decode(protobuf?).ok()?;
    event.read_point.map(|location| location.id)
}

/// Counts one more event quarantined at `read_point` in the hour of `received_at`.
async fn count_in_hour(
    conn: &impl ConnectionTrait,
    read_point: Option<String>,
    received_at: DateTime<Utc>,
) -> Result<(), CaptureError> {
    use sea_orm::sea_query::OnConflict;
    let hour = tracery_runtime::proto_fields::hour_of(received_at);
    hour::Entity::insert(hour::ActiveModel {
        hour: Set(hour),
        read_point: Set(read_point.unwrap_or_default()),
        quarantined: Set(1),
    })
    .on_conflict(
        OnConflict::columns([hour::Column::Hour, hour::Column::ReadPoint])
            .value(
                hour::Column::Quarantined,
                Expr::cust("capture_quarantine_hours.quarantined + 1"),
            )
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// The quarantine counts of the hours in `[from, until)`, in hour order.
pub async fn hours_between(
    conn: &impl ConnectionTrait,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<hour::Model>, CaptureError> {
    Ok(hour::Entity::find()
        .filter(hour::Column::Hour.gte(from))
        .filter(hour::Column::Hour.lt(until))
        .order_by_asc(hour::Column::Hour)
        .all(conn)
        .await?)
}

/// Creates `capture_quarantine_hours` and counts the entries already quarantined, a page
/// at a time (m0028).
pub async fn create_hours_m0028(
    manager: &sea_orm_migration::SchemaManager<'_>,
) -> Result<(), DbErr> {
    let (time, without_rowid) = match manager.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => ("timestamptz", ""),
        _ => ("timestamp_with_timezone_text", " WITHOUT ROWID"),
    };
    let db = manager.get_connection();
    db.execute_unprepared(&format!(
        "CREATE TABLE IF NOT EXISTS capture_quarantine_hours (hour {time} NOT NULL, \
         read_point text NOT NULL, quarantined bigint NOT NULL, \
         PRIMARY KEY (hour, read_point)){without_rowid}"
    ))
    .await?;
    // Counted from scratch, so a backfill that stopped part-way counts nothing twice.
    db.execute_unprepared("DELETE FROM capture_quarantine_hours")
        .await?;
    let mut after = String::new();
    loop {
        let page = entry::Entity::find()
            .filter(entry::Column::Id.gt(after.clone()))
            .order_by_asc(entry::Column::Id)
            .limit(1_000)
            .all(db)
            .await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = last.id.clone();
        for row in &page {
            let point = read_point_of(row.payload.as_deref(), row.payload_protobuf.as_deref());
            count_in_hour(db, point, row.received_at)
                .await
                .map_err(|err| DbErr::Custom(err.to_string()))?;
        }
    }
}

const OPEN: i16 = 1;
const RESUBMITTED: i16 = 2;
const DISCARDED: i16 = 3;

/// A quarantine entry as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its id.
    pub id: String,
    /// Arrival time.
    pub received_at: DateTime<Utc>,
    /// The event and the reasons.
    pub rejected: Rejected,
}

fn channel(name: &str) -> Channel {
    Channel::named(name)
}

fn violations_to_json(violations: &[Violation]) -> String {
    json!(
        violations
            .iter()
            .map(|v| json!({"field": v.field, "reason": v.reason, "description": v.description}))
            .collect::<Vec<_>>()
    )
    .to_string()
}

fn violations_from_json(text: &str) -> Vec<Violation> {
    let values: Vec<serde_json::Value> = serde_json::from_str(text).unwrap_or_default();
    values
        .iter()
        .map(|v| {
            let text = |key: &str| {
                v.get(key)
                    .and_then(|s| s.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            Violation::new(text("field"), text("description")).with_reason(text("reason"))
        })
        .collect()
}

fn to_entry(row: entry::Model) -> Entry {
    Entry {
        rejected: Rejected {
            payload: row.payload,
            payload_protobuf: row.payload_protobuf,
            violations: violations_from_json(&row.violations),
            channel: channel(&row.channel),
        },
        id: row.id,
        received_at: row.received_at,
    }
}

/// Stores a refused event; returns its id.
pub async fn insert(
    conn: &impl ConnectionTrait,
    rejected: &Rejected,
    received_at: DateTime<Utc>,
) -> Result<String, CaptureError> {
    let id = uuid::Uuid::now_v7().to_string();
    entry::ActiveModel {
        id: Set(id.clone()),
        received_at: Set(received_at),
        channel: Set(rejected.channel.as_str().to_owned()),
        payload: Set(rejected.payload.clone()),
        payload_protobuf: Set(rejected.payload_protobuf.clone()),
        violations: Set(violations_to_json(&rejected.violations)),
        status: Set(OPEN),
        closed_at: Set(None),
        resolution: Set(None),
    }
    .insert(conn)
    .await?;
    let point = read_point_of(
        rejected.payload.as_deref(),
        rejected.payload_protobuf.as_deref(),
    );
    count_in_hour(conn, point, received_at).await?;
    Ok(id)
}

/// The open entry `id`; closed entries are an error naming what happened to them.
pub async fn open_entry(conn: &impl ConnectionTrait, id: &str) -> Result<Entry, CaptureError> {
    let row = entry::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .ok_or_else(|| CaptureError::QuarantineNotFound(id.to_owned()))?;
    match row.status {
        OPEN => Ok(to_entry(row)),
        RESUBMITTED => Err(CaptureError::QuarantineClosed {
            id: id.to_owned(),
            status: "resubmitted",
        }),
        _ => Err(CaptureError::QuarantineClosed {
            id: id.to_owned(),
            status: "discarded",
        }),
    }
}

/// Up to `limit` open entries after `after`, oldest first.
pub async fn list_open(
    conn: &impl ConnectionTrait,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Entry>, CaptureError> {
    let open = entry::Entity::find().filter(entry::Column::Status.eq(OPEN));
    in_arrival_order(conn, open, after, limit).await
}

/// Up to `limit` entries (of any status) that arrived after the entry `after` and not
/// before `since`, oldest first: what arrived since a reader last looked.
pub async fn arrived_since(
    conn: &impl ConnectionTrait,
    after: Option<&str>,
    since: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Entry>, CaptureError> {
    let recent = entry::Entity::find().filter(entry::Column::ReceivedAt.gte(since));
    in_arrival_order(conn, recent, after, limit).await
}

/// Up to `limit` of the entries `select` finds after the entry `after`, oldest first.
async fn in_arrival_order(
    conn: &impl ConnectionTrait,
    select: sea_orm::Select<entry::Entity>,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Entry>, CaptureError> {
    let mut select = select.order_by_asc(entry::Column::Id);
    if let Some(after) = after {
        select = select.filter(entry::Column::Id.gt(after));
    }
    Ok(select
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(to_entry)
        .collect())
}

/// Replaces the payload and reasons of an open entry after a failed resubmission.
pub async fn update(
    conn: &impl ConnectionTrait,
    id: &str,
    rejected: &Rejected,
) -> Result<(), CaptureError> {
    entry::ActiveModel {
        id: Set(id.to_owned()),
        payload: Set(rejected.payload.clone()),
        payload_protobuf: Set(rejected.payload_protobuf.clone()),
        violations: Set(violations_to_json(&rejected.violations)),
        ..Default::default()
    }
    .update(conn)
    .await?;
    Ok(())
}

/// Closes an open entry as resubmitted (resolution = the stored eventID).
pub async fn close_resubmitted(
    conn: &impl ConnectionTrait,
    id: &str,
    event_id: &str,
) -> Result<(), CaptureError> {
    close(conn, id, RESUBMITTED, event_id).await
}

/// Closes an open entry as discarded, keeping the reason.
pub async fn close_discarded(
    conn: &impl ConnectionTrait,
    id: &str,
    reason: &str,
) -> Result<(), CaptureError> {
    close(conn, id, DISCARDED, reason).await
}

async fn close(
    conn: &impl ConnectionTrait,
    id: &str,
    status: i16,
    resolution: &str,
) -> Result<(), CaptureError> {
    let closed = entry::Entity::update_many()
        .col_expr(entry::Column::Status, Expr::value(status))
        .col_expr(entry::Column::ClosedAt, Expr::value(Utc::now()))
        .col_expr(
            entry::Column::Resolution,
            Expr::value(resolution.to_owned()),
        )
        .filter(entry::Column::Id.eq(id))
        .filter(entry::Column::Status.eq(OPEN))
        .exec(conn)
        .await?;
    if closed.rows_affected == 0 {
        // Someone else closed it in the meantime; report what happened to it.
        open_entry(conn, id).await?;
    }
    Ok(())
}
