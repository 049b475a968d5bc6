//! Serial pools and their allocations.
//!
//! Uniqueness is the database's job: an allocation bumps the pool's counter with one
//! conditional `UPDATE` (row-locked on PostgreSQL, a write lock on SQLite) and records the
//! slot range under a unique `(pool, request_id)` and a unique `(pool, first_index)`.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait},
};

use crate::{
    domain::IdentityError,
    serials::{PoolSpec, PoolTarget, SerialCodec, SerialFormat, SerialOrder},
};

/// The `identity_serial_pools` table.
pub mod pool {
    use sea_orm::entity::prelude::*;

    /// One serial pool.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "identity_serial_pools")]
    pub struct Model {
        /// Pool name.
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        /// GTIN of an SGTIN pool.
        pub gtin: Option<String>,
        /// Company prefix of an SSCC pool.
        pub company_prefix: Option<String>,
        /// 1 numeric, 2 alphanumeric.
        pub format: i16,
        /// Serial length.
        pub length: i16,
        /// 1 sequential, 2 randomised.
        pub serial_order: i16,
        /// Number of slots (capped to i64).
        pub capacity: i64,
        /// Next free slot.
        pub next_index: i64,
        /// Hex FF1 key of randomised pools; empty otherwise.
        pub cipher_key: String,
        /// Creation time.
        pub created_at: ChronoDateTimeUtc,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `identity_serial_allocations` table.
pub mod allocation {
    use sea_orm::entity::prelude::*;

    /// One allocation request and the slots it received.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "identity_serial_allocations")]
    pub struct Model {
        /// Row id.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// Pool name.
        pub pool: String,
        /// Client idempotency key.
        pub request_id: String,
        /// First slot.
        pub first_index: i64,
        /// Number of slots.
        pub count: i64,
        /// When.
        pub created_at: ChronoDateTimeUtc,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A stored pool.
pub type PoolRow = pool::Model;

/// Slots `[first, first + count)` of a pool, given to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    /// First slot.
    pub first: u64,
    /// Number of slots.
    pub count: u64,
}

/// Pool and allocation queries.
#[derive(Clone)]
pub struct PoolStore {
    db: DatabaseConnection,
}

fn format_code(format: SerialFormat) -> i16 {
    match format {
        SerialFormat::Numeric => 1,
        SerialFormat::Alphanumeric => 2,
    }
}

fn order_code(order: SerialOrder) -> i16 {
    match order {
        SerialOrder::Sequential => 1,
        SerialOrder::Randomised => 2,
    }
}

/// The settings and codec of a stored pool.
pub fn codec(row: &PoolRow) -> Result<SerialCodec, IdentityError> {
    let target = match (&row.gtin, &row.company_prefix) {
        (Some(gtin), _) => PoolTarget::Gtin(gtin.clone()),
        (None, Some(company_prefix)) => PoolTarget::Sscc {
            company_prefix: company_prefix.clone(),
        },
        (None, None) => return Err(IdentityError::PoolNotFound(row.name.clone())),
    };
    let spec = PoolSpec {
        name: row.name.clone(),
        target,
        format: if row.format == 2 {
            SerialFormat::Alphanumeric
        } else {
            SerialFormat::Numeric
        },
        length: u8::try_from(row.length).unwrap_or_default(),
        order: if row.serial_order == 2 {
            SerialOrder::Randomised
        } else {
            SerialOrder::Sequential
        },
    };
    let key = decode_hex(&row.cipher_key);
    SerialCodec::new(spec, &key)
}

fn decode_hex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

fn new_cipher_key() -> String {
    // Two v4 UUIDs are 244 bits from the OS CSPRNG; the fixed version bits do not matter
    // for an AES key that never leaves the database.
    let bytes: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
        .iter()
        .flat_map(|u| u.into_bytes())
        .collect();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl PoolStore {
    /// A store over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Creates a pool; creating the same pool again is a no-op, a different one with the
    /// same name is an error.
    #[tracing::instrument(skip(self, spec), fields(pool = %spec.name))]
    pub async fn create(&self, spec: &PoolSpec) -> Result<PoolRow, IdentityError> {
        let (gtin, company_prefix) = match &spec.target {
            PoolTarget::Gtin(gtin) => (Some(gtin.clone()), None),
            PoolTarget::Sscc { company_prefix } => (None, Some(company_prefix.clone())),
        };
        let row = pool::ActiveModel {
            name: Set(spec.name.clone()),
            gtin: Set(gtin),
            company_prefix: Set(company_prefix),
            format: Set(format_code(spec.format)),
            length: Set(i16::from(spec.length)),
            serial_order: Set(order_code(spec.order)),
            capacity: Set(spec.capacity()),
            next_index: Set(0),
            cipher_key: Set(match spec.order {
                SerialOrder::Sequential => String::new(),
                SerialOrder::Randomised => new_cipher_key(),
            }),
            created_at: Set(Utc::now()),
        };
        pool::Entity::insert(row)
            .on_conflict_do_nothing_on([pool::Column::Name])
            .exec_without_returning(&self.db)
            .await?;
        let stored = self.get(&spec.name).await?;
        if codec(&stored)?.spec() != spec {
            return Err(IdentityError::PoolExists(spec.name.clone()));
        }
        Ok(stored)
    }

    /// The pool named `name`.
    pub async fn get(&self, name: &str) -> Result<PoolRow, IdentityError> {
        pool::Entity::find_by_id(name.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| IdentityError::PoolNotFound(name.to_owned()))
    }

    /// The pools numbering serials of `gtin`.
    pub async fn for_gtin(&self, gtin: &str) -> Result<Vec<PoolRow>, IdentityError> {
        Ok(pool::Entity::find()
            .filter(pool::Column::Gtin.eq(gtin))
            .all(&self.db)
            .await?)
    }

    /// The SSCC pools.
    pub async fn sscc_pools(&self) -> Result<Vec<PoolRow>, IdentityError> {
        Ok(pool::Entity::find()
            .filter(pool::Column::CompanyPrefix.is_not_null())
            .all(&self.db)
            .await?)
    }

    /// Allocates `count` slots for `request_id`, or returns what that request got before.
    #[tracing::instrument(skip(self))]
    pub async fn allocate(
        &self,
        pool_name: &str,
        count: u64,
        request_id: &str,
    ) -> Result<(PoolRow, Allocation), IdentityError> {
        if let Some(earlier) = self
            .earlier_allocation(pool_name, count, request_id)
            .await?
        {
            return Ok((self.get(pool_name).await?, earlier));
        }
        let n = i64::try_from(count).map_err(|_| IdentityError::invalid("count", "too large"))?;
        let txn = tracery_runtime::db::begin_write(&self.db).await?;
        // The write comes first so SQLite takes its write lock before reading anything.
        let bumped = pool::Entity::update_many()
            .col_expr(
                pool::Column::NextIndex,
                Expr::col(pool::Column::NextIndex).add(n),
            )
            .filter(pool::Column::Name.eq(pool_name))
            .filter(
                Expr::col(pool::Column::NextIndex)
                    .add(n)
                    .lte(Expr::col(pool::Column::Capacity)),
            )
            .exec(&txn)
            .await?;
        let row = pool::Entity::find_by_id(pool_name.to_owned())
            .one(&txn)
            .await?
            .ok_or_else(|| IdentityError::PoolNotFound(pool_name.to_owned()))?;
        if bumped.rows_affected == 0 {
            let remaining = codec(&row)?.spec().domain_size()
                - u128::try_from(row.next_index).unwrap_or_default();
            return Err(IdentityError::PoolExhausted {
                pool: pool_name.to_owned(),
                remaining,
                requested: count,
            });
        }
        let first = row.next_index - n;
        let inserted = allocation::ActiveModel {
            pool: Set(pool_name.to_owned()),
            request_id: Set(request_id.to_owned()),
            first_index: Set(first),
            count: Set(n),
            created_at: Set(Utc::now()),
            ..Default::default()
        }
        .insert(&txn)
        .await;
        match inserted {
            Ok(_) => {
                txn.commit().await?;
                let first = u64::try_from(first).unwrap_or_default();
                Ok((row, Allocation { first, count }))
            }
            Err(err) => {
                // A concurrent call with the same request id won; answer with its slots.
                drop(txn);
                match self
                    .earlier_allocation(pool_name, count, request_id)
                    .await?
                {
                    Some(earlier) => Ok((self.get(pool_name).await?, earlier)),
                    None => Err(err.into()),
                }
            }
        }
    }

    async fn earlier_allocation(
        &self,
        pool_name: &str,
        count: u64,
        request_id: &str,
    ) -> Result<Option<Allocation>, IdentityError> {
        let Some(earlier) = allocation::Entity::find()
            .filter(allocation::Column::Pool.eq(pool_name))
            .filter(allocation::Column::RequestId.eq(request_id))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let earlier_count = u64::try_from(earlier.count).unwrap_or_default();
        if earlier_count != count {
            return Err(IdentityError::RequestIdReused {
                request_id: request_id.to_owned(),
                pool: pool_name.to_owned(),
                count: earlier_count,
            });
        }
        Ok(Some(Allocation {
            first: u64::try_from(earlier.first_index).unwrap_or_default(),
            count,
        }))
    }
}
