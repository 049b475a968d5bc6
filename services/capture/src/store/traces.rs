//! The trace context each event was captured under, kept beside the event (not in its
//! hashed payload) so that consumers of `Subscribe` continue the capture's trace. Rows
//! exist only for calls that were traced, so an untraced suite writes nothing here.

use std::collections::HashMap;

use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

/// The `capture_event_traces` table.
pub mod event_trace {
    use sea_orm::entity::prelude::*;

    /// The W3C traceparent of the call that stored an event.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_event_traces")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub sequence: i64,
        pub trace_parent: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

const CHUNK: usize = 1_000;

/// Records `(sequence, traceparent)` pairs.
pub async fn record(conn: &impl ConnectionTrait, traced: Vec<(i64, String)>) -> Result<(), DbErr> {
    for chunk in traced.chunks(CHUNK) {
        event_trace::Entity::insert_many(chunk.iter().map(|(sequence, parent)| {
            event_trace::ActiveModel {
                sequence: Set(*sequence),
                trace_parent: Set(parent.clone()),
            }
        }))
        .on_conflict_do_nothing_on([event_trace::Column::Sequence])
        .exec_without_returning(conn)
        .await?;
    }
    Ok(())
}

/// The traceparents of events with sequences in `first..=last`.
pub async fn between(
    conn: &impl ConnectionTrait,
    first: i64,
    last: i64,
) -> Result<HashMap<i64, String>, DbErr> {
    Ok(event_trace::Entity::find()
        .filter(event_trace::Column::Sequence.between(first, last))
        .all(conn)
        .await?
        .into_iter()
        .map(|row| (row.sequence, row.trace_parent))
        .collect())
}
