//! The records synced from each connector, in the canonical model: one row per
//! (connector, kind, key) holding the record as JSON, with the columns lookups need.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use tracery_connector::{Bom, Material, ProductionOrder, Record, RecordKind};

use crate::domain::IntegrationError;

/// The `integration_records` table.
pub mod record {
    use sea_orm::entity::prelude::*;

    /// One synced record.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "integration_records")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The connector (plant configuration name) it came from.
        pub connector: String,
        /// `materials`, `boms` or `orders`.
        pub kind: String,
        /// Item code, `material@revision`, or order number.
        pub key: String,
        /// The item code a record is about.
        pub material: String,
        /// GTIN (materials).
        pub gtin: Option<String>,
        /// Revision (BOMs).
        pub revision: Option<String>,
        /// Status (orders).
        pub status: Option<String>,
        /// Validity (BOMs).
        pub valid_from: Option<ChronoDateTimeUtc>,
        pub valid_to: Option<ChronoDateTimeUtc>,
        /// The canonical record, JSON.
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub synced_at: ChronoDateTimeUtc,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// What applying a page did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
}

fn row(connector: &str, record: &Record, body: String, now: DateTime<Utc>) -> record::ActiveModel {
    let (kind, material, gtin, revision, status, valid_from, valid_to) = match record {
        Record::Material(m) => (
            RecordKind::Materials,
            m.item_code.clone(),
            // Looked up by its 14-digit form, whatever length the ERP keeps.
            m.gtin
                .as_deref()
                .map(|g| crate::conformance::normal_gtin(g).unwrap_or_else(|| g.to_owned())),
            m.revision.clone(),
            None,
            None,
            None,
        ),
        Record::Bom(b) => (
            RecordKind::Boms,
            b.material.clone(),
            None,
            Some(b.revision.clone()),
            None,
            b.valid_from,
            b.valid_to,
        ),
        Record::Order(o) => (
            RecordKind::Orders,
            o.item_code.clone(),
            None,
            o.bom_revision.clone(),
            serde_json::to_value(o.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned)),
            None,
            None,
        ),
    };
    record::ActiveModel {
        connector: Set(connector.to_owned()),
        kind: Set(kind.as_str().to_owned()),
        key: Set(record.key()),
        material: Set(material),
        gtin: Set(gtin),
        revision: Set(revision),
        status: Set(status),
        valid_from: Set(valid_from),
        valid_to: Set(valid_to),
        body: Set(body),
        synced_at: Set(now),
        ..Default::default()
    }
}

/// Upserts `records` of `kind` from `connector`, counting what changed.
pub async fn apply(
    conn: &impl ConnectionTrait,
    connector: &str,
    kind: RecordKind,
    records: &[Record],
) -> Result<Applied, IntegrationError> {
    let keys: Vec<String> = records.iter().map(Record::key).collect();
    let mut stored: HashMap<String, (i64, String)> = record::Entity::find()
        .select_only()
        .column(record::Column::Key)
        .column(record::Column::Id)
        .column(record::Column::Body)
        .filter(record::Column::Connector.eq(connector))
        .filter(record::Column::Kind.eq(kind.as_str()))
        .filter(record::Column::Key.is_in(keys))
        .into_tuple::<(String, i64, String)>()
        .all(conn)
        .await?
        .into_iter()
        .map(|(key, id, body)| (key, (id, body)))
        .collect();
    let now = Utc::now();
    let mut applied = Applied::default();
    for record in records {
        let body = serde_json::to_string(record)
            .map_err(|err| IntegrationError::Corrupt(err.to_string()))?;
        let key = record.key();
        match stored.get(&key) {
            Some((_, old)) if *old == body => applied.unchanged += 1,
            Some((id, _)) => {
                let mut model = row(connector, record, body.clone(), now);
                model.id = Set(*id);
                record::Entity::update(model).exec(conn).await?;
                stored.insert(key, (*id, body));
                applied.updated += 1;
            }
            None => {
                let inserted = record::Entity::insert(row(connector, record, body.clone(), now))
                    .exec(conn)
                    .await?;
                stored.insert(key, (inserted.last_insert_id, body));
                applied.created += 1;
            }
        }
    }
    Ok(applied)
}

fn decode<T: serde::de::DeserializeOwned>(row: &record::Model) -> Result<T, IntegrationError> {
    serde_json::from_str(&row.body)
        .map_err(|err| IntegrationError::Corrupt(format!("record {}: {err}", row.id)))
}

/// A record body as its canonical type.
pub fn order_of(row: &record::Model) -> Result<ProductionOrder, IntegrationError> {
    match decode::<Record>(row)? {
        Record::Order(order) => Ok(order),
        _ => Err(IntegrationError::Corrupt(format!(
            "record {} is not an order",
            row.id
        ))),
    }
}

/// See [`order_of`].
pub fn bom_of(row: &record::Model) -> Result<Bom, IntegrationError> {
    match decode::<Record>(row)? {
        Record::Bom(bom) => Ok(bom),
        _ => Err(IntegrationError::Corrupt(format!(
            "record {} is not a BOM",
            row.id
        ))),
    }
}

/// See [`order_of`].
pub fn material_of(row: &record::Model) -> Result<Material, IntegrationError> {
    match decode::<Record>(row)? {
        Record::Material(material) => Ok(material),
        _ => Err(IntegrationError::Corrupt(format!(
            "record {} is not a material",
            row.id
        ))),
    }
}

/// Orders with row id above `after`, in `statuses` (any when empty), at most `limit`.
pub async fn orders(
    conn: &impl ConnectionTrait,
    statuses: &[String],
    after: Option<i64>,
    limit: u64,
) -> Result<Vec<record::Model>, IntegrationError> {
    let mut query = record::Entity::find()
        .filter(record::Column::Kind.eq(RecordKind::Orders.as_str()))
        .order_by_asc(record::Column::Id);
    if !statuses.is_empty() {
        query = query.filter(record::Column::Status.is_in(statuses.iter().cloned()));
    }
    if let Some(after) = after {
        query = query.filter(record::Column::Id.gt(after));
    }
    Ok(query.limit(limit).all(conn).await?)
}

/// The row of `kind` keyed `key`, from any connector.
pub async fn by_key(
    conn: &impl ConnectionTrait,
    kind: RecordKind,
    key: &str,
) -> Result<Option<record::Model>, IntegrationError> {
    Ok(record::Entity::find()
        .filter(record::Column::Kind.eq(kind.as_str()))
        .filter(record::Column::Key.eq(key))
        .order_by_desc(record::Column::SyncedAt)
        .one(conn)
        .await?)
}

/// Which BOM of a material to take.
#[derive(Debug, Clone)]
pub enum BomSelector {
    /// This revision.
    Revision(String),
    /// The one valid at this time (the latest synced when validity is unknown).
    EffectiveAt(DateTime<Utc>),
    /// The latest synced.
    Latest,
}

/// The BOM of `material` picked by `selector`.
pub async fn bom(
    conn: &impl ConnectionTrait,
    material: &str,
    selector: &BomSelector,
) -> Result<Option<record::Model>, IntegrationError> {
    let mut query = record::Entity::find()
        .filter(record::Column::Kind.eq(RecordKind::Boms.as_str()))
        .filter(record::Column::Material.eq(material));
    match selector {
        BomSelector::Revision(revision) => {
            query = query.filter(record::Column::Revision.eq(revision.clone()))
        }
        BomSelector::EffectiveAt(at) => {
            query = query
                .filter(
                    Condition::any()
                        .add(record::Column::ValidFrom.is_null())
                        .add(record::Column::ValidFrom.lte(*at)),
                )
                .filter(
                    Condition::any()
                        .add(record::Column::ValidTo.is_null())
                        .add(record::Column::ValidTo.gt(*at)),
                )
                .order_by_desc(record::Column::ValidFrom);
        }
        BomSelector::Latest => {}
    }
    Ok(query
        .order_by_desc(record::Column::SyncedAt)
        .order_by_desc(record::Column::Id)
        .one(conn)
        .await?)
}

/// The material with this GTIN (14 digits) or item code.
pub async fn material(
    conn: &impl ConnectionTrait,
    gtin: Option<&str>,
    item_code: Option<&str>,
) -> Result<Option<record::Model>, IntegrationError> {
    let mut query =
        record::Entity::find().filter(record::Column::Kind.eq(RecordKind::Materials.as_str()));
    if let Some(gtin) = gtin {
        query = query.filter(record::Column::Gtin.eq(gtin));
    }
    if let Some(item_code) = item_code {
        query = query.filter(record::Column::Material.eq(item_code));
    }
    Ok(query
        .order_by_desc(record::Column::SyncedAt)
        .one(conn)
        .await?)
}
