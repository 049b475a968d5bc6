//! Each connector's position per record kind: where the current scan stands and the change
//! time the next scan starts from. Written in the transaction that applies a page.

use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, sea_query::OnConflict};
use tracery_connector::{Cursor, Position, RecordKind};

use crate::domain::IntegrationError;

/// The `integration_cursors` table.
pub mod cursor {
    use sea_orm::entity::prelude::*;

    /// A connector's cursor for one record kind.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "integration_cursors")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub connector: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub kind: String,
        /// Where the current scan started (the system's change-time spelling).
        pub since: Option<String>,
        /// The next page of the current scan, JSON.
        #[sea_orm(column_type = "Text")]
        pub position: String,
        /// The latest change time seen in the current scan: the next scan's `since`.
        pub pending_high_water: Option<String>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A stored cursor: the scan position and the high-water mark gathered so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    pub cursor: Cursor,
    pub pending_high_water: Option<String>,
}

/// The cursor of `connector` for `kind`; a fresh one fetches everything.
pub async fn load(
    conn: &impl ConnectionTrait,
    connector: &str,
    kind: RecordKind,
) -> Result<Stored, IntegrationError> {
    let Some(row) = cursor::Entity::find_by_id((connector.to_owned(), kind.as_str().to_owned()))
        .one(conn)
        .await?
    else {
        return Ok(Stored::default());
    };
    let position: Position = serde_json::from_str(&row.position).map_err(|err| {
        IntegrationError::Corrupt(format!("cursor of {connector}/{}: {err}", kind.as_str()))
    })?;
    Ok(Stored {
        cursor: Cursor {
            since: row.since,
            position,
        },
        pending_high_water: row.pending_high_water,
    })
}

/// Stores the cursor of `connector` for `kind`.
pub async fn save(
    conn: &impl ConnectionTrait,
    connector: &str,
    kind: RecordKind,
    stored: &Stored,
) -> Result<(), IntegrationError> {
    let position = serde_json::to_string(&stored.cursor.position)
        .map_err(|err| IntegrationError::Corrupt(err.to_string()))?;
    cursor::Entity::insert(cursor::ActiveModel {
        connector: Set(connector.to_owned()),
        kind: Set(kind.as_str().to_owned()),
        since: Set(stored.cursor.since.clone()),
        position: Set(position),
        pending_high_water: Set(stored.pending_high_water.clone()),
    })
    .on_conflict(
        OnConflict::columns([cursor::Column::Connector, cursor::Column::Kind])
            .update_columns([
                cursor::Column::Since,
                cursor::Column::Position,
                cursor::Column::PendingHighWater,
            ])
            .to_owned(),
    )
    .exec(conn)
    .await?;
    Ok(())
}
