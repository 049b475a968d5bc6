//! Master data: the vocabulary elements captured (names and attributes of locations,
//! read points, products...), the latest capture of an element replacing the one before.
//!
//! Elements are keyed by the canonical spelling of their id (as the identifier index and
//! genealogy spell identifiers), so an SGLN written as a URN in master data names the same
//! place written as a Digital Link in an event, and is looked up in either spelling.

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
        id: Set(canonical(&element.id)),
        attributes: Set(Value::Array(attributes).to_string()),
        children: Set(serde_json::to_string(&element.children).unwrap_or_default()),
        name: Set(display_name(&element.attributes)),
        updated_at: Set(now),
    }
}

/// The spelling elements are keyed by.
pub fn canonical(id: &str) -> String {
    tracery_epcis::effects::node_id(id)
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
    // One pass with a set of keys: a document is untrusted and may hold many elements.
    let mut seen = std::collections::HashSet::new();
    let latest: Vec<&VocabularyElement> = elements
        .iter()
        .rev()
        .filter(|e| seen.insert((e.vocabulary_type.as_str(), canonical(&e.id))))
        .collect();
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
    element::Entity::find_by_id((vocabulary_type.to_owned(), canonical(id)))
        .one(conn)
        .await
}

/// Every element captured of `ids` (in any spelling), of any vocabulary type, each with
/// the id as asked.
pub async fn of_ids(
    conn: &impl ConnectionTrait,
    ids: &[String],
) -> Result<Vec<(String, Stored)>, DbErr> {
    let mut asked: std::collections::HashMap<String, Vec<&String>> = Default::default();
    for id in ids {
        asked.entry(canonical(id)).or_default().push(id);
    }
    let keys: Vec<String> = asked.keys().cloned().collect();
    let mut found = Vec::new();
    for chunk in keys.chunks(CHUNK) {
        let rows = element::Entity::find()
            .filter(element::Column::Id.is_in(chunk.iter().cloned()))
            .all(conn)
            .await?;
        for row in rows {
            for id in asked.get(&row.id).into_iter().flatten() {
                found.push(((*id).clone(), row.clone()));
            }
        }
    }
    Ok(found)
}

/// Re-keys elements stored before they were keyed canonically (`m0023`).
pub async fn rekey_canonically(conn: &impl ConnectionTrait) -> Result<(), DbErr> {
    let rows = element::Entity::find().all(conn).await?;
    for row in rows {
        let key = canonical(&row.id);
        if key == row.id {
            continue;
        }
        element::Entity::delete_by_id((row.vocabulary_type.clone(), row.id.clone()))
            .exec(conn)
            .await?;
        let rekeyed = element::ActiveModel {
            vocabulary_type: Set(row.vocabulary_type),
            id: Set(key),
            attributes: Set(row.attributes),
            children: Set(row.children),
            name: Set(row.name),
            updated_at: Set(row.updated_at),
        };
        element::Entity::insert(rekeyed)
            .on_conflict(
                OnConflict::columns([element::Column::VocabularyType, element::Column::Id])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}
