//! Reading the projection back with identifiers and event attributes joined in, so the
//! trace code works on URIs and times and never sees an interned id.

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, FromQueryResult, Order,
    sea_query::{Condition, Expr, ExprTrait, JoinType, Query, SelectStatement},
};

use super::tables::{event, history, link, node};

/// A link as traces see it.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct Link {
    /// Row id (traces use it to walk each link once).
    pub id: i64,
    pub from_node: String,
    pub to_node: String,
    /// [`crate::facts::LinkKind`] code.
    pub kind: i16,
    /// The event that made it, its sequence and time (when the link began).
    pub event_id: String,
    pub sequence: i64,
    pub event_time: DateTime<Utc>,
    /// For containment: when the child left the parent, and by which event.
    pub end_time: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
    /// bizStep and readPoint of the making event.
    pub biz_step: Option<String>,
    pub read_point: Option<String>,
    /// Quantity carried (transformation inputs given by quantity).
    pub quantity: Option<f64>,
    pub uom: Option<String>,
}

/// An event that touched an identifier.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct HistoryRow {
    /// The node, canonical.
    pub identifier: String,
    pub sequence: i64,
    pub event_id: String,
    pub event_type: String,
    pub event_time: DateTime<Utc>,
    pub action: Option<String>,
    pub biz_step: Option<String>,
    pub disposition: Option<String>,
    pub read_point: Option<String>,
    pub biz_location: Option<String>,
    pub custodian: Option<String>,
}

/// The ids of the nodes named `uris`, as a subquery.
pub(super) fn node_ids<I: IntoIterator<Item = String>>(uris: I) -> SelectStatement {
    Query::select()
        .column(node::Column::Id)
        .from(node::Entity)
        .and_where(Expr::col(node::Column::Uri).is_in(uris))
        .to_owned()
}

/// Links (aliased `l`) with both ends' URIs and the making and ending events' attributes;
/// the caller adds the filter.
pub(super) fn links() -> SelectStatement {
    Query::select()
        .expr_as(Expr::col(("l", link::Column::Id)), "id")
        .expr_as(Expr::col(("f", node::Column::Uri)), "from_node")
        .expr_as(Expr::col(("t", node::Column::Uri)), "to_node")
        .expr_as(Expr::col(("l", link::Column::Kind)), "kind")
        .expr_as(Expr::col(("e", event::Column::EventId)), "event_id")
        .expr_as(Expr::col(("l", link::Column::Sequence)), "sequence")
        .expr_as(Expr::col(("e", event::Column::EventTime)), "event_time")
        .expr_as(Expr::col(("c", event::Column::EventTime)), "end_time")
        .expr_as(Expr::col(("c", event::Column::EventId)), "closed_by")
        .expr_as(Expr::col(("e", event::Column::BizStep)), "biz_step")
        .expr_as(Expr::col(("e", event::Column::ReadPoint)), "read_point")
        .expr_as(Expr::col(("l", link::Column::Quantity)), "quantity")
        .expr_as(Expr::col(("l", link::Column::Uom)), "uom")
        .from_as(link::Entity, "l")
        .join_as(
            JoinType::InnerJoin,
            node::Entity,
            "f",
            Expr::col(("f", node::Column::Id)).equals(("l", link::Column::FromNode)),
        )
        .join_as(
            JoinType::InnerJoin,
            node::Entity,
            "t",
            Expr::col(("t", node::Column::Id)).equals(("l", link::Column::ToNode)),
        )
        .join_as(
            JoinType::InnerJoin,
            event::Entity,
            "e",
            Expr::col(("e", event::Column::Sequence)).equals(("l", link::Column::Sequence)),
        )
        .join_as(
            JoinType::LeftJoin,
            event::Entity,
            "c",
            Expr::col(("c", event::Column::Sequence)).equals(("l", link::Column::EndSequence)),
        )
        .order_by(("l", link::Column::Id), Order::Asc)
        .to_owned()
}

/// History rows (aliased `h`, events `e`) with the node's URI and the event's attributes;
/// the caller adds the filter and order.
pub(super) fn histories() -> SelectStatement {
    let mut query = Query::select();
    query.expr_as(Expr::col(("n", node::Column::Uri)), "identifier");
    query.expr_as(Expr::col(("h", history::Column::Sequence)), "sequence");
    for column in [
        event::Column::EventId,
        event::Column::EventType,
        event::Column::EventTime,
        event::Column::Action,
        event::Column::BizStep,
        event::Column::Disposition,
        event::Column::ReadPoint,
        event::Column::BizLocation,
        event::Column::Custodian,
    ] {
        query.column(("e", column));
    }
    query
        .from_as(history::Entity, "h")
        .join_as(
            JoinType::InnerJoin,
            node::Entity,
            "n",
            Expr::col(("n", node::Column::Id)).equals(("h", history::Column::Node)),
        )
        .join_as(
            JoinType::InnerJoin,
            event::Entity,
            "e",
            Expr::col(("e", event::Column::Sequence)).equals(("h", history::Column::Sequence)),
        )
        .to_owned()
}

/// Runs `query` and reads its rows as `T`.
pub(super) async fn fetch<T: FromQueryResult, C: ConnectionTrait>(
    db: &C,
    query: &SelectStatement,
) -> Result<Vec<T>, sea_orm::DbErr> {
    T::find_by_statement(db.get_database_backend().build(query))
        .all(db)
        .await
}

/// `(time, sequence)` strictly after `after`, for keyset paging in event-time order.
pub(super) fn after_position(after: (DateTime<Utc>, i64)) -> Condition {
    let (time, sequence) = after;
    let time_col = || Expr::col(("e", event::Column::EventTime));
    Condition::any().add(time_col().gt(time)).add(
        Condition::all()
            .add(time_col().eq(time))
            .add(Expr::col(("h", history::Column::Sequence)).gt(sequence)),
    )
}
