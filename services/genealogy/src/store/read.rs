//! Reading the projection back with identifiers and event attributes joined in, so the
//! trace code works on URIs and times and never sees an interned id.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, FromQueryResult, Order,
    QueryFilter,
    sea_query::{BinOper, Condition, Expr, ExprTrait, Func, JoinType, Query, SelectStatement},
};
use serde::de::DeserializeOwned;

use crate::facts::LinkKind;

use super::{
    LinkEnd,
    tables::{KEY_PROBES, bigint_array, event, history, history_in_events, key_of, link, node},
};

/// A link as traces see it.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct Link {
    /// Row id (traces use it to walk each link once).
    pub id: i64,
    pub from_node: String,
    pub to_node: String,
    /// The ends' node ids, remembered for the next frontier's lookup.
    pub from_id: i64,
    pub to_id: i64,
    /// [`crate::facts::LinkKind`] code.
    pub kind: i16,
    /// The event that made it, its sequence and time (when the link began).
    pub event_id: String,
    pub sequence: i64,
    pub event_time: DateTime<Utc>,
    /// For containment: when the child left the parent, and by which event.
    pub end_time: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
    /// bizStep and readPoint of the making event (named from its interned ids).
    #[sea_orm(skip)]
    pub biz_step: Option<String>,
    #[sea_orm(skip)]
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
    pub event_time: DateTime<Utc>,
    // The event's attributes, named from [`Terms`].
    #[sea_orm(skip)]
    pub event_type: String,
    #[sea_orm(skip)]
    pub action: Option<String>,
    #[sea_orm(skip)]
    pub biz_step: Option<String>,
    #[sea_orm(skip)]
    pub disposition: Option<String>,
    #[sea_orm(skip)]
    pub read_point: Option<String>,
    #[sea_orm(skip)]
    pub biz_location: Option<String>,
    #[sea_orm(skip)]
    pub custodian: Option<String>,
    #[sea_orm(skip)]
    pub production_order: Option<String>,
}

/// What one probe of the node keys found for some URIs.
#[derive(Default)]
pub(super) struct Probed<'u> {
    /// Stored at this probe's key: the URI and its id.
    pub found: Vec<(&'u str, i64)>,
    /// Their key at this probe is another URI's: look at the next probe.
    pub held: Vec<&'u str>,
    /// Their key at this probe is free: not stored (a URI takes the first free key).
    pub free: Vec<(&'u str, i64)>,
}

/// Looks `uris` up at their `probe`th key ([`key_of`]).
pub(super) async fn probe_keys<'u, C: ConnectionTrait>(
    db: &C,
    uris: &[&'u str],
    probe: u8,
) -> Result<Probed<'u>, DbErr> {
    let keyed: Vec<(i64, &str)> = uris.iter().map(|uri| (key_of(uri, probe), *uri)).collect();
    let stored: HashMap<i64, (i64, String)> = node::Entity::find()
        .filter(node::Column::Key.is_in(keyed.iter().map(|(key, _)| *key)))
        .all(db)
        .await?
        .into_iter()
        .map(|n| (n.key, (n.id, n.uri)))
        .collect();
    let mut probed = Probed::default();
    for (key, uri) in keyed {
        match stored.get(&key) {
            Some((id, held)) if held == uri => probed.found.push((uri, *id)),
            Some(_) => probed.held.push(uri),
            None => probed.free.push((uri, key)),
        }
    }
    Ok(probed)
}

/// Node ids by URI, remembered from the links traces read, so a trace's next frontier
/// needs no lookup; the rest are probed key by key ([`probe_keys`]).
#[derive(Clone)]
pub(super) struct NodeIds(Arc<quick_cache::sync::Cache<String, i64>>);

/// About 5 MB of URIs: the frontiers of the traces in flight and a good many after.
const REMEMBERED_IDS: usize = 50_000;

impl NodeIds {
    pub(super) fn new() -> Self {
        Self(Arc::new(quick_cache::sync::Cache::new(REMEMBERED_IDS)))
    }

    /// Remembers the nodes at both ends of `links`.
    pub(super) fn remember(&self, links: &[Link]) {
        for link in links {
            self.0.insert(link.from_node.clone(), link.from_id);
            self.0.insert(link.to_node.clone(), link.to_id);
        }
    }

    /// The ids of the stored nodes among `uris`.
    pub(super) async fn of<C: ConnectionTrait>(
        &self,
        db: &C,
        uris: &[String],
    ) -> Result<Vec<i64>, DbErr> {
        Ok(self.by_uri(db, uris).await?.into_values().collect())
    }

    /// The stored nodes among `uris`, with their ids.
    pub(super) async fn by_uri<'u, C: ConnectionTrait>(
        &self,
        db: &C,
        uris: &'u [String],
    ) -> Result<HashMap<&'u str, i64>, DbErr> {
        let mut ids = HashMap::with_capacity(uris.len());
        let mut pending = Vec::new();
        for uri in uris {
            match self.0.get(uri.as_str()) {
                Some(id) => drop(ids.insert(uri.as_str(), id)),
                None => pending.push(uri.as_str()),
            }
        }
        for probe in 0..KEY_PROBES {
            if pending.is_empty() {
                break;
            }
            let probed = probe_keys(db, &pending, probe).await?;
            for (uri, id) in probed.found {
                self.0.insert(uri.to_owned(), id);
                ids.insert(uri, id);
            }
            pending = probed.held;
        }
        Ok(ids)
    }
}

/// The interned ids of an event's attributes (events aliased `e`), selected beside a
/// row and named in Rust by [`Names`]: a handful of distinct values, so a cache answers
/// nearly every lookup and the query needs no join for them.
#[derive(Debug, Clone, Copy, FromQueryResult)]
pub(super) struct Terms {
    pub term_event_type: Option<i64>,
    pub term_action: Option<i64>,
    pub term_biz_step: Option<i64>,
    pub term_disposition: Option<i64>,
    pub term_read_point: Option<i64>,
    pub term_biz_location: Option<i64>,
    pub term_custodian: Option<i64>,
    pub term_production_order: Option<i64>,
}

impl Terms {
    const COLUMNS: [(event::Column, &'static str); 8] = [
        (event::Column::EventType, "term_event_type"),
        (event::Column::Action, "term_action"),
        (event::Column::BizStep, "term_biz_step"),
        (event::Column::Disposition, "term_disposition"),
        (event::Column::ReadPoint, "term_read_point"),
        (event::Column::BizLocation, "term_biz_location"),
        (event::Column::Custodian, "term_custodian"),
        (event::Column::ProductionOrder, "term_production_order"),
    ];

    fn select(query: &mut SelectStatement) {
        for (column, name) in Self::COLUMNS {
            query.expr_as(Expr::col(("e", column)), name);
        }
    }

    fn ids(&self) -> impl Iterator<Item = i64> {
        [
            self.term_event_type,
            self.term_action,
            self.term_biz_step,
            self.term_disposition,
            self.term_read_point,
            self.term_biz_location,
            self.term_custodian,
            self.term_production_order,
        ]
        .into_iter()
        .flatten()
    }
}

/// Node names by id, remembered: an interned id keeps its name for good.
#[derive(Clone)]
pub(super) struct Names(Arc<quick_cache::sync::Cache<i64, Arc<str>>>);

/// Enough for every vocabulary term and location of a large plant.
const REMEMBERED_NAMES: usize = 20_000;

impl Names {
    pub(super) fn new() -> Self {
        Self(Arc::new(quick_cache::sync::Cache::new(REMEMBERED_NAMES)))
    }

    /// The names of `ids`, reading the ones not remembered.
    pub(super) async fn of<C: ConnectionTrait>(
        &self,
        db: &C,
        ids: impl Iterator<Item = i64>,
    ) -> Result<HashMap<i64, Arc<str>>, DbErr> {
        let mut names = HashMap::new();
        let mut missing = Vec::new();
        for id in ids {
            if names.contains_key(&id) {
                continue;
            }
            match self.0.get(&id) {
                Some(name) => drop(names.insert(id, name)),
                None => missing.push(id),
            }
        }
        missing.sort_unstable();
        missing.dedup();
        for chunk in missing.chunks(super::CHUNK) {
            let found = node::Entity::find()
                .filter(node::Column::Id.is_in(chunk.iter().copied()))
                .all(db)
                .await?;
            for node in found {
                let name: Arc<str> = node.uri.into();
                self.0.insert(node.id, Arc::clone(&name));
                names.insert(node.id, name);
            }
        }
        Ok(names)
    }

    /// Runs `query` (which selected [`Terms`]) and reads its rows as `T`, with `name` filling
    /// in each row's attributes from its terms.
    pub(super) async fn fetch<T: FromQueryResult, C: ConnectionTrait>(
        &self,
        db: &C,
        query: &SelectStatement,
        name: impl Fn(&mut T, &Terms, &dyn Fn(Option<i64>) -> Option<String>),
    ) -> Result<Vec<T>, DbErr> {
        let results = db.query_all(query).await?;
        let mut rows = Vec::with_capacity(results.len());
        for result in &results {
            rows.push((
                T::from_query_result(result, "")?,
                Terms::from_query_result(result, "")?,
            ));
        }
        let names = self
            .of(db, rows.iter().flat_map(|(_, terms)| terms.ids()))
            .await?;
        let lookup = |id: Option<i64>| id.and_then(|id| names.get(&id)).map(|n| n.to_string());
        Ok(rows
            .into_iter()
            .map(|(mut row, terms)| {
                name(&mut row, &terms, &lookup);
                row
            })
            .collect())
    }
}

/// Fills a history row's attributes from its terms.
pub(super) fn name_history(
    row: &mut HistoryRow,
    terms: &Terms,
    name: &dyn Fn(Option<i64>) -> Option<String>,
) {
    row.event_type = name(terms.term_event_type).unwrap_or_default();
    row.action = name(terms.term_action);
    row.biz_step = name(terms.term_biz_step);
    row.disposition = name(terms.term_disposition);
    row.read_point = name(terms.term_read_point);
    row.biz_location = name(terms.term_biz_location);
    row.custodian = name(terms.term_custodian);
    row.production_order = name(terms.term_production_order);
}

/// Fills a link's attributes (those of the event that made it) from its terms.
pub(super) fn name_link(
    row: &mut Link,
    terms: &Terms,
    name: &dyn Fn(Option<i64>) -> Option<String>,
) {
    row.biz_step = name(terms.term_biz_step);
    row.read_point = name(terms.term_read_point);
}

/// Links (aliased `l`) with both ends' URIs and the making and ending events' attributes;
/// the caller adds the filter.
pub(super) fn links() -> SelectStatement {
    let mut query = Query::select()
        .expr_as(Expr::col(("l", link::Column::Id)), "id")
        .expr_as(Expr::col(("f", node::Column::Uri)), "from_node")
        .expr_as(Expr::col(("t", node::Column::Uri)), "to_node")
        .expr_as(Expr::col(("l", link::Column::FromNode)), "from_id")
        .expr_as(Expr::col(("l", link::Column::ToNode)), "to_id")
        .expr_as(Expr::col(("l", link::Column::Kind)), "kind")
        .expr_as(Expr::col(("e", event::Column::EventId)), "event_id")
        .expr_as(Expr::col(("l", link::Column::Sequence)), "sequence")
        .expr_as(Expr::col(("e", event::Column::EventTime)), "event_time")
        .expr_as(Expr::col(("c", event::Column::EventTime)), "end_time")
        .expr_as(Expr::col(("c", event::Column::EventId)), "closed_by")
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
        .to_owned();
    Terms::select(&mut query);
    query
}

/// History rows of the nodes `ids` (nodes `n`, events `e`) with the node's URI and the
/// event's attributes; the caller adds the order. On SQLite the rows of
/// `genealogy_history` join the two. On PostgreSQL the events come from one scan of their
/// `touched` arrays' GIN index for all of `ids` at once (a scan per node, as a join would
/// make, took 30 ms for a trace level of 40 nodes), then each is paired with the wanted
/// nodes it touched.
pub(super) fn histories(backend: DatabaseBackend, ids: &[i64]) -> SelectStatement {
    let mut query = Query::select();
    query.expr_as(Expr::col(("n", node::Column::Uri)), "identifier");
    query.expr_as(Expr::col(("e", event::Column::Sequence)), "sequence");
    query.column(("e", event::Column::EventId));
    query.column(("e", event::Column::EventTime));
    query.from_as(event::Entity, "e");
    if history_in_events(backend) {
        let wanted = bigint_array(ids);
        // The array goes in a sub-select so that the planner does not see its length: it
        // estimates each element of a constant array at 0.5 % of the rows, so a level of
        // 27 nodes looked like 12 % of the events and got a sequential scan, 5 s at 10M
        // events; behind the sub-select it estimates 1 % and takes the GIN index, 0.5 ms.
        query.and_where(Expr::col(("e", event::Column::Touched)).binary(
            BinOper::Custom("&&"),
            Expr::cust_with_values("(SELECT $1::bigint[])", [wanted]),
        ));
    }
    let node_of_event = join_touched_nodes(backend, &mut query);
    query.and_where(node_of_event.is_in(ids.iter().copied()));
    query.and_where(Expr::col(("n", node::Column::Id)).is_in(ids.iter().copied()));
    Terms::select(&mut query);
    query
}

/// `(time, sequence)` strictly after `after`, for keyset paging in event-time order.
pub(super) fn after_position(after: (DateTime<Utc>, i64)) -> Condition {
    let (time, sequence) = after;
    let time_col = || Expr::col(("e", event::Column::EventTime));
    Condition::any().add(time_col().gt(time)).add(
        Condition::all()
            .add(time_col().eq(time))
            .add(Expr::col(("e", event::Column::Sequence)).gt(sequence)),
    )
}

/// The identifiers touched by events whose bizStep or disposition is among `terms` (their
/// node ids), with event times in `[from, until]`.
pub(super) fn touched_by(
    backend: DatabaseBackend,
    terms: &[i64],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> SelectStatement {
    let mut query = Query::select();
    query.distinct();
    query.expr_as(Expr::col(("n", node::Column::Uri)), "identifier");
    query.from_as(event::Entity, "e");
    join_touched_nodes(backend, &mut query);
    query
        .cond_where(
            Condition::any()
                .add(Expr::col(("e", event::Column::BizStep)).is_in(terms.iter().copied()))
                .add(Expr::col(("e", event::Column::Disposition)).is_in(terms.iter().copied())),
        )
        .and_where(Expr::col(("e", event::Column::EventTime)).gte(from))
        .and_where(Expr::col(("e", event::Column::EventTime)).lte(until));
    query
}

/// Joins to events `e` the nodes they touched, as `n` (the node id is in `h`): from
/// PostgreSQL's `touched` array, or SQLite's history table. Returns the touched node's id.
fn join_touched_nodes(backend: DatabaseBackend, query: &mut SelectStatement) -> Expr {
    let node_of_event = join_touched(backend, query);
    query.join_as(
        JoinType::InnerJoin,
        node::Entity,
        "n",
        Expr::col(("n", node::Column::Id)).eq(node_of_event.clone()),
    );
    node_of_event
}

/// Joins to events `e` the ids of the nodes they touched, as `h`; returns that id.
fn join_touched(backend: DatabaseBackend, query: &mut SelectStatement) -> Expr {
    if history_in_events(backend) {
        let touched = Query::select()
            .expr_as(
                Func::cust("unnest").arg(Expr::col(("e", event::Column::Touched))),
                "node",
            )
            .take();
        query.join_lateral(JoinType::InnerJoin, touched, "h", Expr::cust("TRUE"));
        Expr::col(("h", "node"))
    } else {
        query.join_as(
            JoinType::InnerJoin,
            history::Entity,
            "h",
            Expr::col(("h", history::Column::Sequence)).equals(("e", event::Column::Sequence)),
        );
        Expr::col(("h", history::Column::Node))
    }
}

/// One event of a unit, by ids only: what an analysis reads of each good unit.
#[derive(Debug, Clone, Copy, FromQueryResult)]
pub struct StepRow {
    pub node: i64,
    pub sequence: i64,
    pub event_time: DateTime<Utc>,
    pub read_point: Option<i64>,
    pub production_order: Option<i64>,
}

/// The [`StepRow`]s of the nodes `ids`, found as [`histories`] finds them.
pub(super) fn step_rows(backend: DatabaseBackend, ids: &[i64]) -> SelectStatement {
    let mut query = Query::select();
    query.from_as(event::Entity, "e");
    if history_in_events(backend) {
        query.and_where(Expr::col(("e", event::Column::Touched)).binary(
            BinOper::Custom("&&"),
            Expr::cust_with_values("(SELECT $1::bigint[])", [bigint_array(ids)]),
        ));
    }
    let node_of_event = join_touched(backend, &mut query);
    query
        .expr_as(node_of_event.clone(), "node")
        .column(("e", event::Column::Sequence))
        .column(("e", event::Column::EventTime))
        .column(("e", event::Column::ReadPoint))
        .column(("e", event::Column::ProductionOrder))
        .and_where(node_of_event.is_in(ids.iter().copied()));
    query
}

/// A link by its ends' ids, with the event that made it.
#[derive(Debug, Clone, Copy)]
pub struct LinkEnds {
    pub from_node: i64,
    pub to_node: i64,
    pub kind: i16,
    pub sequence: i64,
}

/// The links whose `end` is among `ids`, of `kinds`, packed into one row of
/// `[from, to, kind, sequence]` ([`PackedRows::links`]). A walk upstream reads hundreds of
/// thousands of links, and each row handed from SQLite's worker thread to the task that
/// reads it cost a thread switch, more than finding it did.
pub(super) fn packed_link_ends(
    backend: DatabaseBackend,
    end: LinkEnd,
    ids: &[i64],
    kinds: &[LinkKind],
) -> SelectStatement {
    let packed = json_rows(backend, &["from_node", "to_node", "kind", "sequence"]);
    Query::select()
        .expr_as(Expr::cust(packed), PACKED)
        .from(link::Entity)
        .and_where(Expr::col(end.column()).is_in(ids.iter().copied()))
        .and_where(Expr::col(link::Column::Kind).is_in(kinds.iter().map(|kind| kind.code())))
        .to_owned()
}

/// The column a statement's [`json_rows`] aggregate is read from.
pub(super) const PACKED: &str = "packed";

/// An aggregate of the rows a statement selects as one JSON array (text) of arrays of
/// `values` (SQL expressions), or NULL (PostgreSQL) where there is no row.
pub(super) fn json_rows(backend: DatabaseBackend, values: &[&str]) -> String {
    let values = values.join(", ");
    match backend {
        DatabaseBackend::Postgres => format!("json_agg(json_build_array({values}))::text"),
        _ => format!("json_group_array(json_array({values}))"),
    }
}

/// A text `column` holding JSON, as a value [`json_rows`] nests rather than quotes.
pub(super) fn json_value(backend: DatabaseBackend, column: &str) -> String {
    match backend {
        DatabaseBackend::Postgres => format!("{column}::json"),
        _ => format!("json({column})"),
    }
}

/// Rows a statement packed with [`json_rows`] into its [`PACKED`] column.
#[derive(Debug, FromQueryResult)]
pub struct PackedRows {
    packed: Option<String>,
}

impl PackedRows {
    /// The rows of all `packs`, each read as a `T` (a tuple of the packed values); `what`
    /// names them in an error.
    pub fn unpack<T: DeserializeOwned>(packs: Vec<Self>, what: &str) -> Result<Vec<T>, DbErr> {
        let mut rows = Vec::new();
        for packed in packs.into_iter().filter_map(|pack| pack.packed) {
            let unpacked: Vec<T> = serde_json::from_str(&packed)
                .map_err(|err| DbErr::Custom(format!("packed {what}: {err}")))?;
            rows.extend(unpacked);
        }
        Ok(rows)
    }

    /// The links of all `packs` of [`packed_link_ends`].
    pub fn links(packs: Vec<Self>) -> Result<Vec<LinkEnds>, DbErr> {
        let links: Vec<(i64, i64, i16, i64)> = Self::unpack(packs, "links")?;
        Ok(links
            .into_iter()
            .map(|(from_node, to_node, kind, sequence)| LinkEnds {
                from_node,
                to_node,
                kind,
                sequence,
            })
            .collect())
    }
}
