//! Named queries of the EPCIS REST binding (`POST /queries`): a query definition stored
//! under a name, run by `GET /queries/{name}/events` and the base of subscriptions.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::OnConflict,
};

use crate::domain::CaptureError;

/// The `capture_named_queries` table.
pub mod named_query {
    use sea_orm::entity::prelude::*;

    /// One named query.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_named_queries")]
    pub struct Model {
        /// The name it is asked for by (URL-safe, see the REST binding).
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        /// The `query` object of its definition, as JSON.
        pub definition: String,
        /// When it was created.
        pub created_at: ChronoDateTimeUtc,
        /// Who created it, where the suite checks callers.
        pub created_by: Option<String>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A stored named query.
pub type NamedQuery = named_query::Model;

/// Stores `query` under its name unless that name is taken; whether it was stored. The
/// insert itself decides, so two clients creating the same name at once get one `true`.
pub async fn create(db: &DatabaseConnection, query: NamedQuery) -> Result<bool, CaptureError> {
    use named_query::{ActiveModel, Column, Entity};
    let row = ActiveModel {
        name: Set(query.name),
        definition: Set(query.definition),
        created_at: Set(query.created_at),
        created_by: Set(query.created_by),
    };
    let inserted = Entity::insert(row)
        .on_conflict(OnConflict::column(Column::Name).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    Ok(inserted == 1)
}

/// The query named `name`, if there is one.
pub async fn get(db: &DatabaseConnection, name: &str) -> Result<Option<NamedQuery>, CaptureError> {
    get_in(db, name).await
}

/// The query named `name` as `db` (a transaction, say) sees it.
pub async fn get_in(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<Option<NamedQuery>, CaptureError> {
    Ok(named_query::Entity::find_by_id(name.to_owned())
        .one(db)
        .await?)
}

/// Locks the query named `name` until the transaction `txn` ends (PostgreSQL: `FOR
/// UPDATE`; SQLite's write transactions hold its one lock already); whether there is one.
pub async fn lock(txn: &impl ConnectionTrait, name: &str) -> Result<bool, CaptureError> {
    Ok(named_query::Entity::find_by_id(name.to_owned())
        .lock_exclusive()
        .one(txn)
        .await?
        .is_some())
}

/// Up to `limit` queries in name order, after `after`.
pub async fn list(
    db: &DatabaseConnection,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<NamedQuery>, CaptureError> {
    use named_query::{Column, Entity};
    let mut select = Entity::find().order_by_asc(Column::Name).limit(limit);
    if let Some(after) = after {
        select = select.filter(Column::Name.gt(after));
    }
    Ok(select.all(db).await?)
}

/// Removes the query named `name` and its subscriptions; whether there was one.
pub async fn delete(db: &DatabaseConnection, name: &str) -> Result<bool, CaptureError> {
    let txn = tracery_runtime::db::begin_write(db).await?;
    // Locked first, so a subscribe waiting on it finds it gone rather than adding a
    // subscription after the ones deleted here.
    if !lock(&txn, name).await? {
        return Ok(false);
    }
    super::subscriptions::delete_of_query(&txn, name).await?;
    let deleted = named_query::Entity::delete_by_id(name.to_owned())
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(deleted.rows_affected == 1)
}
