//! Master data: the vocabulary elements captured (names and attributes of locations,
//! read points, products...), the latest capture of an element replacing the one before.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::OnConflict,
};
use serde_json::Value;
use tracery_epcis::master_data::{VocabularyElement, display_name};

/// The `capture_master_data` table.
pub mod element {
    use sea_orm::entity::prelude::*;

    /// One vocabulary element.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_master_data")]
    pub struct Model {
        /// Its vocabulary type (`urn:epcglobal:epcis:vtype:ReadPoint`, ...).
        #[sea_orm(primary_key, auto_increment = false)]
        pub vocabulary_type: String,
        /// Its identifier.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Its attributes: a JSON array of `{"id", "attribute"}` as EPCIS JSON-LD has them.
        pub attributes: String,
        /// Its children's ids, a JSON array.
        pub children: String,
        /// Its display name, from its attributes (see `display_name`).
        pub name: Option<String>,
        /// When it was last captured.
        pub updated_at: ChronoDateTimeUtc,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The statement creating the table (both databases).
pub const CREATE_TABLE: &str = "CREATE TABLE capture_master_data (vocabulary_type TEXT NOT NULL, \
     id TEXT NOT NULL, attributes TEXT NOT NULL, children TEXT NOT NULL, name TEXT, \
     updated_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (vocabulary_type, id))";

/// A stored element read back.
pub type Stored = element::Model;

impl From<&Stored> for VocabularyElement {
    fn from(stored: &Stored) -> Self {
        let attributes: Vec<Value> = serde_json::from_str(&stored.attributes).unwrap_or_default();
        VocabularyElement {
            vocabulary_type: stored.vocabulary_type.clone(),
            id: stored.id.clone(),
            attributes: attributes
                .into_iter()
                .map(|a| {
                    let id = a["id"].as_str().unwrap_or_default().to_owned();
                    (id, a.get("attribute").cloned().unwrap_or(Value::Null))
                })
                .collect(),
            children: serde_json::from_str(&stored.children).unwrap_or_default(),
        }
    }
}

fn row(element: &VocabularyElement, now: DateTime<Utc>) -> element::ActiveModel {
    let attributes: Vec<Value> = element
        .attributes
        .iter()
        .map(|(id, value)| serde_json::json!({"id": id, "attribute": value}))
        .collect();
    element::ActiveModel {
        vocabulary_type: Set(element.vocabulary_type.clone()),
        id: Set(element.id.clone()),
        attributes: Set(Value::Array(attributes).to_string()),
        children: Set(serde_json::to_string(&element.children).unwrap_or_default()),
        name: Set(display_name(&element.attributes)),
        updated_at: Set(now),
    }
}

/// Elements per statement: well inside SQLite's bound-parameter limit.
const CHUNK: usize = 500;

/// Stores `elements`, each replacing what was stored of it, in one transaction.
pub async fn upsert(
    db: &sea_orm::DatabaseConnection,
    elements: &[VocabularyElement],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    use element::Column as C;
    if elements.is_empty() {
        return Ok(());
    }
    // The last capture of an element within one document wins, as across documents.
    let mut latest: Vec<&VocabularyElement> = Vec::new();
    for element in elements.iter().rev() {
        let same = |e: &&VocabularyElement| {
            e.vocabulary_type == element.vocabulary_type && e.id == element.id
        };
        if !latest.iter().any(same) {
            latest.push(element);
        }
    }
    let txn = tracery_runtime::db::begin_write(db).await?;
    for chunk in latest.chunks(CHUNK) {
        element::Entity::insert_many(chunk.iter().map(|e| row(e, now)))
            .on_conflict(
                OnConflict::columns([C::VocabularyType, C::Id])
                    .update_columns([C::Attributes, C::Children, C::Name, C::UpdatedAt])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await
}

/// The element `id` of `vocabulary_type`, if any was captured.
pub async fn get(
    conn: &impl ConnectionTrait,
    vocabulary_type: &str,
    id: &str,
) -> Result<Option<Stored>, DbErr> {
    element::Entity::find_by_id((vocabulary_type.to_owned(), id.to_owned()))
        .one(conn)
        .await
}

/// Every element captured of `ids`, of any vocabulary type.
pub async fn of_ids(conn: &impl ConnectionTrait, ids: &[String]) -> Result<Vec<Stored>, DbErr> {
    let mut found = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        found.extend(
            element::Entity::find()
                .filter(element::Column::Id.is_in(chunk.iter().cloned()))
                .all(conn)
                .await?,
        );
    }
    Ok(found)
}
