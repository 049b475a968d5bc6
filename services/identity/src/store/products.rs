//! The product master table and its queries.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use crate::domain::{IdentityError, Product};

/// The `identity_products` table.
pub mod product {
    use sea_orm::entity::prelude::*;

    /// One row of the product master.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "identity_products")]
    pub struct Model {
        /// 14-digit GTIN.
        #[sea_orm(primary_key, auto_increment = false)]
        pub gtin: String,
        /// ERP item code, unique.
        #[sea_orm(unique)]
        pub item_code: String,
        /// Description.
        pub description: String,
        /// GS1 company prefix length.
        pub company_prefix_length: i16,
        /// Unit of measure.
        pub unit_of_measure: String,
        /// First registration.
        pub created_at: ChronoDateTimeUtc,
        /// Last change.
        pub updated_at: ChronoDateTimeUtc,
    }

    /// No relations yet.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Product master queries.
#[derive(Clone)]
pub struct ProductStore {
    db: DatabaseConnection,
}

/// A stored product with its timestamps.
pub type ProductRow = product::Model;

impl ProductStore {
    /// A store over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Inserts or updates a product; returns the row and whether it was created.
    #[tracing::instrument(skip(self, p), fields(gtin = %p.gtin))]
    pub async fn upsert(&self, p: &Product) -> Result<(ProductRow, bool), IdentityError> {
        let txn = tracery_runtime::db::begin_write(&self.db).await?;
        if let Some(holder) = product::Entity::find()
            .filter(product::Column::ItemCode.eq(&p.item_code))
            .filter(product::Column::Gtin.ne(&p.gtin))
            .one(&txn)
            .await?
        {
            return Err(IdentityError::ItemCodeTaken {
                item_code: p.item_code.clone(),
                gtin: holder.gtin,
            });
        }
        let now = Utc::now();
        let existing = product::Entity::find_by_id(p.gtin.clone())
            .one(&txn)
            .await?;
        let created = existing.is_none();
        let row = product::ActiveModel {
            gtin: Set(p.gtin.clone()),
            item_code: Set(p.item_code.clone()),
            description: Set(p.description.clone()),
            company_prefix_length: Set(i16::from(p.company_prefix_length)),
            unit_of_measure: Set(p.unit_of_measure.clone()),
            created_at: Set(existing.map_or(now, |e| e.created_at)),
            updated_at: Set(now),
        };
        let row = if created {
            row.insert(&txn).await?
        } else {
            row.update(&txn).await?
        };
        txn.commit().await?;
        Ok((row, created))
    }

    /// The product with this GTIN.
    pub async fn by_gtin(&self, gtin: &str) -> Result<ProductRow, IdentityError> {
        product::Entity::find_by_id(gtin.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| IdentityError::ProductNotFound(format!("GTIN {gtin}")))
    }

    /// The product with this item code.
    pub async fn by_item_code(&self, item_code: &str) -> Result<ProductRow, IdentityError> {
        product::Entity::find()
            .filter(product::Column::ItemCode.eq(item_code))
            .one(&self.db)
            .await?
            .ok_or_else(|| IdentityError::ProductNotFound(format!("item code {item_code}")))
    }

    /// Up to `limit` products with a GTIN after `after`, in GTIN order.
    pub async fn list(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<ProductRow>, IdentityError> {
        let mut query = product::Entity::find().order_by_asc(product::Column::Gtin);
        if let Some(after) = after {
            query = query.filter(product::Column::Gtin.gt(after));
        }
        Ok(query.limit(limit).all(&self.db).await?)
    }
}
