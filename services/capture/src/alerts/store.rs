//! Where alerts live: the rules (`capture_alert_rules`), their episodes
//! (`capture_alerts`), the notices each change of an alert sends (`capture_alert_notices`,
//! an outbox in the order the changes were committed) and how far each channel has
//! delivered them (`capture_alert_deliveries`).
//!
//! One open episode per rule is the database's rule, not the evaluator's: a partial unique
//! index on the rule where the episode has not cleared, so two evaluators that both see a
//! condition start one alert between them.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, OnConflict},
};
use sea_orm_migration::{
    prelude::*,
    schema::{
        big_integer, big_pk_auto, string_len, text, text_null, timestamp_with_time_zone,
        timestamp_with_time_zone_null,
    },
};
use serde_json::json;
use tracery_runtime::migrations::create_table;

use crate::domain::CaptureError;

/// The `capture_alert_rules` table.
pub mod rule {
    use sea_orm::entity::prelude::*;

    /// One rule as defined.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_alert_rules")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        /// Its definition, as JSON.
        pub definition: String,
        /// `config` or `api`.
        pub origin: String,
        pub updated_at: ChronoDateTimeUtc,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `capture_alerts` table.
pub mod alert {
    use sea_orm::entity::prelude::*;

    /// One episode of a rule's condition.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_alerts")]
    pub struct Model {
        /// UUIDv7: ids sort by firing.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub rule: String,
        pub detail: String,
        pub event_id: Option<String>,
        pub fired_at: ChronoDateTimeUtc,
        /// When the condition cleared: the episode is over.
        pub cleared_at: Option<ChronoDateTimeUtc>,
        pub acknowledged_at: Option<ChronoDateTimeUtc>,
        pub acknowledged_by: Option<String>,
        pub resolved_at: Option<ChronoDateTimeUtc>,
        pub resolved_by: Option<String>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `capture_alert_notices` table.
pub mod notice {
    use sea_orm::entity::prelude::*;

    /// One change of an alert, as it is sent.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_alert_notices")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub alert_id: String,
        pub rule: String,
        /// The notice as JSON.
        pub body: String,
        pub at: ChronoDateTimeUtc,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `capture_alert_deliveries` table.
pub mod delivery {
    use sea_orm::entity::prelude::*;

    /// How far one channel has delivered the notices.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_alert_deliveries")]
    pub struct Model {
        /// `webhook` or `mqtt`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub channel: String,
        /// The last notice the channel's receiver took.
        pub delivered_through: i64,
        /// The replica delivering on the channel, and until when.
        pub lease_holder: Option<String>,
        pub lease_until: Option<ChronoDateTimeUtc>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type Alert = alert::Model;
pub type StoredRule = rule::Model;
pub type Notice = notice::Model;

/// Serialises the transactions that add notices, so their ids are committed in order and
/// a channel's cursor never passes one still being written (PostgreSQL).
const NOTICE_LOCK: i64 = 0x616c_6572_7473;

/// Adds the lease of a channel's delivery (migration `m0026`).
pub async fn lease_deliveries(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    use delivery::{Column as C, Entity};
    let columns = [
        text_null(C::LeaseHolder),
        timestamp_with_time_zone_null(C::LeaseUntil),
    ];
    tracery_runtime::migrations::add_columns(manager, Entity, columns).await
}

/// Creates the tables (migration `m0024`).
pub async fn create_tables(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    {
        use rule::{Column as C, Entity};
        create_table(
            manager,
            Entity,
            [
                string_len(C::Name, 128).primary_key().take(),
                text(C::Definition),
                string_len(C::Origin, 16),
                timestamp_with_time_zone(C::UpdatedAt),
            ],
        )
        .await?;
    }
    {
        use alert::{Column as C, Entity};
        create_table(
            manager,
            Entity,
            [
                string_len(C::Id, 36).primary_key().take(),
                string_len(C::Rule, 128),
                text(C::Detail),
                text_null(C::EventId),
                timestamp_with_time_zone(C::FiredAt),
                timestamp_with_time_zone_null(C::ClearedAt),
                timestamp_with_time_zone_null(C::AcknowledgedAt),
                text_null(C::AcknowledgedBy),
                timestamp_with_time_zone_null(C::ResolvedAt),
                text_null(C::ResolvedBy),
            ],
        )
        .await?;
    }
    {
        use notice::{Column as C, Entity};
        create_table(
            manager,
            Entity,
            [
                big_pk_auto(C::Id),
                string_len(C::AlertId, 36),
                string_len(C::Rule, 128),
                text(C::Body),
                timestamp_with_time_zone(C::At),
            ],
        )
        .await?;
    }
    {
        use delivery::{Column as C, Entity};
        create_table(
            manager,
            Entity,
            [
                string_len(C::Channel, 32).primary_key().take(),
                big_integer(C::DeliveredThrough),
            ],
        )
        .await?;
    }
    manager
        .get_connection()
        .execute_unprepared(
            "CREATE UNIQUE INDEX capture_alerts_one_episode ON capture_alerts (rule) \
             WHERE cleared_at IS NULL",
        )
        .await?;
    Ok(())
}

/// Stores a rule (replacing the one of that name); refuses to replace one of another
/// origin, which is the file's (or the API's) to change.
pub async fn put_rule(db: &DatabaseConnection, stored: StoredRule) -> Result<(), CaptureError> {
    let txn = tracery_runtime::db::begin_write(db).await?;
    let existing = rule::Entity::find_by_id(stored.name.clone())
        .lock_exclusive()
        .one(&txn)
        .await?;
    if let Some(existing) = existing
        && existing.origin != stored.origin
    {
        return Err(CaptureError::Conflict(format!(
            "alert rule `{}` is defined in the {} and can only be changed there",
            stored.name,
            if existing.origin == "config" {
                "configuration file"
            } else {
                "API"
            }
        )));
    }
    let row = rule::ActiveModel {
        name: Set(stored.name),
        definition: Set(stored.definition),
        origin: Set(stored.origin),
        updated_at: Set(stored.updated_at),
    };
    rule::Entity::insert(row)
        .on_conflict(
            OnConflict::column(rule::Column::Name)
                .update_columns([rule::Column::Definition, rule::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// Every rule, by name.
pub async fn rules(db: &impl ConnectionTrait) -> Result<Vec<StoredRule>, CaptureError> {
    Ok(rule::Entity::find()
        .order_by_asc(rule::Column::Name)
        .all(db)
        .await?)
}

/// Removes the rules of `origin` not in `keep` (the file's rules that were taken out of
/// it); their open alerts clear.
pub async fn retire_rules(
    db: &DatabaseConnection,
    origin: &str,
    keep: &[String],
    now: DateTime<Utc>,
) -> Result<(), CaptureError> {
    for stored in rules(db).await? {
        if stored.origin == origin && !keep.contains(&stored.name) {
            delete_rule(db, &stored.name, origin, now).await?;
        }
    }
    Ok(())
}

/// Removes the rule `name` if it is of `origin`, clearing its open alert; whether it was
/// removed.
pub async fn delete_rule(
    db: &DatabaseConnection,
    name: &str,
    origin: &str,
    now: DateTime<Utc>,
) -> Result<bool, CaptureError> {
    let txn = tracery_runtime::db::begin_write(db).await?;
    let Some(existing) = rule::Entity::find_by_id(name.to_owned())
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Ok(false);
    };
    if existing.origin != origin {
        return Err(CaptureError::Conflict(format!(
            "alert rule `{name}` is defined in the configuration file and can only be removed there"
        )));
    }
    clear_in(&txn, name, now, "rule removed").await?;
    rule::Entity::delete_by_id(name.to_owned())
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(true)
}

/// The open episode of `rule`, if any.
pub async fn open_episode(
    db: &impl ConnectionTrait,
    rule: &str,
) -> Result<Option<Alert>, CaptureError> {
    Ok(alert::Entity::find()
        .filter(alert::Column::Rule.eq(rule))
        .filter(alert::Column::ClearedAt.is_null())
        .one(db)
        .await?)
}

/// Starts an episode of `rule` unless one is open: the new alert, or `None`. Decided in
/// the transaction that writes it, and held by the one-episode index besides.
pub async fn fire(
    db: &DatabaseConnection,
    rule: &str,
    detail: &str,
    event_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<Alert>, CaptureError> {
    let txn = tracery_runtime::db::begin_write(db).await?;
    tracery_runtime::db::serialize(&txn, NOTICE_LOCK).await?;
    if open_episode(&txn, rule).await?.is_some() {
        return Ok(None);
    }
    let alert = Alert {
        id: uuid::Uuid::now_v7().to_string(),
        rule: rule.to_owned(),
        detail: detail.to_owned(),
        event_id: event_id.map(str::to_owned),
        fired_at: now,
        cleared_at: None,
        acknowledged_at: None,
        acknowledged_by: None,
        resolved_at: None,
        resolved_by: None,
    };
    alert::ActiveModel::from(alert.clone()).insert(&txn).await?;
    add_notice(&txn, &alert, "fired", now).await?;
    txn.commit().await?;
    Ok(Some(alert))
}

/// Ends the open episode of `rule`, if there is one: the alert as it ended.
pub async fn clear(
    db: &DatabaseConnection,
    rule: &str,
    now: DateTime<Utc>,
) -> Result<Option<Alert>, CaptureError> {
    let txn = tracery_runtime::db::begin_write(db).await?;
    let cleared = clear_in(&txn, rule, now, "condition cleared").await?;
    txn.commit().await?;
    Ok(cleared)
}

async fn clear_in(
    txn: &DatabaseTransaction,
    rule: &str,
    now: DateTime<Utc>,
    why: &str,
) -> Result<Option<Alert>, CaptureError> {
    tracery_runtime::db::serialize(txn, NOTICE_LOCK).await?;
    let Some(mut alert) = open_episode(txn, rule).await? else {
        return Ok(None);
    };
    alert.cleared_at = Some(now);
    if alert.resolved_at.is_none() {
        alert.resolved_at = Some(now);
        alert.resolved_by = Some(why.to_owned());
    }
    save(txn, &alert).await?;
    add_notice(txn, &alert, "resolved", now).await?;
    Ok(Some(alert))
}

/// What a person does to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Acknowledge,
    Resolve,
}

/// Records `action` on alert `id` by `by`: the alert after it, or `None` when there is no
/// such alert. Acting on an alert already in that state changes nothing and sends nothing.
pub async fn act(
    db: &DatabaseConnection,
    id: &str,
    action: Action,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Option<Alert>, CaptureError> {
    let txn = tracery_runtime::db::begin_write(db).await?;
    tracery_runtime::db::serialize(&txn, NOTICE_LOCK).await?;
    let Some(mut alert) = alert::Entity::find_by_id(id.to_owned())
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Ok(None);
    };
    let kind = match action {
        Action::Acknowledge if alert.acknowledged_at.is_none() && alert.resolved_at.is_none() => {
            alert.acknowledged_at = Some(now);
            alert.acknowledged_by = Some(by.to_owned());
            "acknowledged"
        }
        Action::Resolve if alert.resolved_at.is_none() => {
            alert.resolved_at = Some(now);
            alert.resolved_by = Some(by.to_owned());
            "resolved"
        }
        _ => return Ok(Some(alert)),
    };
    save(&txn, &alert).await?;
    add_notice(&txn, &alert, kind, now).await?;
    txn.commit().await?;
    Ok(Some(alert))
}

async fn save(txn: &DatabaseTransaction, alert: &Alert) -> Result<(), CaptureError> {
    let mut row: alert::ActiveModel = alert.clone().into();
    row.cleared_at = Set(alert.cleared_at);
    row.acknowledged_at = Set(alert.acknowledged_at);
    row.acknowledged_by = Set(alert.acknowledged_by.clone());
    row.resolved_at = Set(alert.resolved_at);
    row.resolved_by = Set(alert.resolved_by.clone());
    alert::Entity::update(row).exec(txn).await?;
    Ok(())
}

/// The status a person sees.
pub fn status(alert: &Alert) -> &'static str {
    if alert.resolved_at.is_some() {
        "resolved"
    } else if alert.acknowledged_at.is_some() {
        "acknowledged"
    } else {
        "open"
    }
}

/// The alert as notices and the REST-facing views show it.
pub fn to_json(alert: &Alert) -> serde_json::Value {
    json!({
        "id": alert.id,
        "rule": alert.rule,
        "status": status(alert),
        "detail": alert.detail,
        "eventID": alert.event_id,
        "firedAt": alert.fired_at.to_rfc3339(),
        "clearedAt": alert.cleared_at.map(|t| t.to_rfc3339()),
        "acknowledgedAt": alert.acknowledged_at.map(|t| t.to_rfc3339()),
        "acknowledgedBy": alert.acknowledged_by,
        "resolvedAt": alert.resolved_at.map(|t| t.to_rfc3339()),
        "resolvedBy": alert.resolved_by,
    })
}

async fn add_notice(
    txn: &DatabaseTransaction,
    alert: &Alert,
    change: &str,
    now: DateTime<Utc>,
) -> Result<(), CaptureError> {
    let body = json!({"change": change, "alert": to_json(alert)});
    notice::ActiveModel {
        alert_id: Set(alert.id.clone()),
        rule: Set(alert.rule.clone()),
        body: Set(body.to_string()),
        at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok(())
}

/// Alerts newest first, after `before` (an id) when given; the resolved ones only when
/// `include_resolved`.
pub async fn list(
    db: &impl ConnectionTrait,
    include_resolved: bool,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<Alert>, CaptureError> {
    let mut select = alert::Entity::find()
        .order_by_desc(alert::Column::Id)
        .limit(limit);
    if !include_resolved {
        select = select.filter(alert::Column::ResolvedAt.is_null());
    }
    if let Some(before) = before {
        select = select.filter(alert::Column::Id.lt(before));
    }
    Ok(select.all(db).await?)
}

/// Where `channel` stands (the last notice its receiver took) and up to `limit`
/// notices after that, in order.
pub async fn undelivered(
    db: &impl ConnectionTrait,
    channel: &str,
    limit: u64,
) -> Result<(i64, Vec<Notice>), CaptureError> {
    let through = delivery::Entity::find_by_id(channel.to_owned())
        .one(db)
        .await?
        .map_or(0, |d| d.delivered_through);
    let notices = notice::Entity::find()
        .filter(notice::Column::Id.gt(through))
        .order_by_asc(notice::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    Ok((through, notices))
}

/// Takes the lease of `channel` for `holder` until `until`, unless another replica holds
/// it at `now`; whether `holder` holds it. One replica delivers a channel at a time.
pub async fn lease(
    db: &DatabaseConnection,
    channel: &str,
    holder: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, CaptureError> {
    use delivery::Column as C;
    let free = sea_orm::Condition::any()
        .add(C::LeaseUntil.is_null())
        .add(C::LeaseUntil.lt(now))
        .add(C::LeaseHolder.eq(holder));
    let updated = delivery::Entity::update_many()
        .col_expr(C::LeaseHolder, Expr::value(holder))
        .col_expr(C::LeaseUntil, Expr::value(until))
        .filter(C::Channel.eq(channel))
        .filter(free)
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Gives up `holder`'s lease of `channel` (on shutdown: another replica goes on at once).
pub async fn release(
    db: &DatabaseConnection,
    channel: &str,
    holder: &str,
) -> Result<(), CaptureError> {
    use delivery::Column as C;
    delivery::Entity::update_many()
        .col_expr(C::LeaseHolder, Expr::value(Option::<String>::None))
        .col_expr(C::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(C::Channel.eq(channel))
        .filter(C::LeaseHolder.eq(holder))
        .exec(db)
        .await?;
    Ok(())
}

/// Records that `channel`'s receiver took every notice through `to`, if `holder` still
/// holds the lease and the channel stood at `from` (compare and set); whether it did.
pub async fn delivered(
    db: &impl ConnectionTrait,
    channel: &str,
    holder: &str,
    (from, to): (i64, i64),
) -> Result<bool, CaptureError> {
    use delivery::Column as C;
    let updated = delivery::Entity::update_many()
        .col_expr(C::DeliveredThrough, Expr::value(to))
        .filter(C::Channel.eq(channel))
        .filter(C::LeaseHolder.eq(holder))
        .filter(C::DeliveredThrough.eq(from))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// A channel starting for the first time begins at the newest notice: an alert history
/// is not replayed to a receiver just configured.
pub async fn start_channel(db: &DatabaseConnection, channel: &str) -> Result<(), CaptureError> {
    if delivery::Entity::find_by_id(channel.to_owned())
        .one(db)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let newest = notice::Entity::find()
        .order_by_desc(notice::Column::Id)
        .one(db)
        .await?
        .map_or(0, |n| n.id);
    let row = delivery::ActiveModel {
        channel: Set(channel.to_owned()),
        delivered_through: Set(newest),
        lease_holder: Set(None),
        lease_until: Set(None),
    };
    delivery::Entity::insert(row)
        .on_conflict(
            OnConflict::column(delivery::Column::Channel)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}
