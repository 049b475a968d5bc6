//! The audit trail: one append-only row per write request that was let through — who
//! (the principal), when, what (the method or route), from where (the peer address) and
//! the request id — hash-chained like the stored events, so an edited or removed row is
//! found by [`verify`].
//!
//! Rows are written by the enforcement layers before the request runs, so an attempt is
//! on record even when the handler then fails. The suite's own background writers record
//! themselves: scheduled syncs (`tracery-scheduler`) and post-back attempts
//! (`tracery-post-back`, under the posting's id); the MQTT intake records each message
//! under its reader (`mqtt:<reader>`), or its topic where no reader owns it.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use sea_orm_migration::{prelude::*, schema::big_pk_auto};
use sha2::{Digest, Sha256};

/// The `audit_log` table.
pub mod entry {
    use sea_orm::entity::prelude::*;

    /// One audited request.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_log")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub at: ChronoDateTimeUtc,
        /// The principal's subject.
        pub subject: String,
        /// `/package.Service/Method`, or `POST /route`.
        pub action: String,
        /// The caller's address.
        pub source: String,
        /// The request id (`x-request-id`, or one given here).
        pub request_id: String,
        /// Its link in the audit chain.
        pub chain_hash: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// What to record.
#[derive(Debug, Clone)]
pub struct Record {
    pub subject: String,
    pub action: String,
    pub source: String,
    pub request_id: String,
}

/// The link before a chain's first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Serialises audit appends on PostgreSQL, so the chain never forks.
const AUDIT_LOCK: i64 = 0x0061_7564_6974;

/// A hash-chain link: SHA-256 (hex) over the previous link and `parts`, each ended by a
/// newline. The one chain function of the suite (audit trail, stored events).
pub fn chain_link(previous: &str, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in std::iter::once(previous).chain(parts.iter().copied()) {
        hasher.update(part.as_bytes());
        hasher.update(b"\n");
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn link(previous: &str, at: &DateTime<Utc>, record: &Record) -> String {
    chain_link(
        previous,
        &[
            &at.to_rfc3339(),
            &record.subject,
            &record.action,
            &record.source,
            &record.request_id,
        ],
    )
}

/// Appends `record`.
pub async fn append(db: &DatabaseConnection, record: Record) -> Result<(), DbErr> {
    let txn = crate::db::begin_write(db).await?;
    crate::db::serialize(&txn, AUDIT_LOCK).await?;
    let previous: Option<String> = entry::Entity::find()
        .select_only()
        .column(entry::Column::ChainHash)
        .order_by_desc(entry::Column::Id)
        .limit(1)
        .into_tuple()
        .one(&txn)
        .await?;
    // Stored at microsecond precision, so the hash covers what reads back.
    let at = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default();
    let chain_hash = link(previous.as_deref().unwrap_or(GENESIS), &at, &record);
    entry::Entity::insert(entry::ActiveModel {
        at: Set(at),
        subject: Set(record.subject),
        action: Set(record.action),
        source: Set(record.source),
        request_id: Set(record.request_id),
        chain_hash: Set(chain_hash),
        ..Default::default()
    })
    .exec_without_returning(&txn)
    .await?;
    txn.commit().await
}

/// What [`verify`] found: rows checked, and the first broken row's id and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub checked: i64,
    pub broken: Option<(i64, String)>,
}

/// Walks the audit chain from its first row.
pub async fn verify(conn: &impl ConnectionTrait) -> Result<Report, DbErr> {
    let mut previous = GENESIS.to_owned();
    let (mut checked, mut after) = (0, 0);
    loop {
        let rows = entry::Entity::find()
            .filter(entry::Column::Id.gt(after))
            .order_by_asc(entry::Column::Id)
            .limit(1000)
            .all(conn)
            .await?;
        let Some(last) = rows.last().map(|r| r.id) else {
            return Ok(Report {
                checked,
                broken: None,
            });
        };
        for row in rows {
            checked += 1;
            let record = Record {
                subject: row.subject.clone(),
                action: row.action.clone(),
                source: row.source.clone(),
                request_id: row.request_id.clone(),
            };
            if row.chain_hash != link(&previous, &row.at, &record) {
                return Ok(Report {
                    checked,
                    broken: Some((
                        row.id,
                        "its hash link does not match: the entry, or the one before it, was \
                         changed or removed after it was written"
                            .to_owned(),
                    )),
                });
            }
            previous = row.chain_hash;
        }
        after = last;
    }
}

/// The audit table's migrations, tracked in their own table.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        "audit_migrations".into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateAuditLog)]
    }
}

struct CreateAuditLog;

impl MigrationName for CreateAuditLog {
    fn name(&self) -> &str {
        "m0001_create_audit_log"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAuditLog {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use entry::Column as C;
        manager
            .create_table(
                Table::create()
                    .table(entry::Entity)
                    .if_not_exists()
                    .col(big_pk_auto(C::Id))
                    .col(ColumnDef::new(C::At).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(C::Subject).string().not_null())
                    .col(ColumnDef::new(C::Action).string().not_null())
                    .col(ColumnDef::new(C::Source).string().not_null())
                    .col(ColumnDef::new(C::RequestId).string().not_null())
                    .col(ColumnDef::new(C::ChainHash).string_len(64).not_null())
                    .to_owned(),
            )
            .await
    }
}
