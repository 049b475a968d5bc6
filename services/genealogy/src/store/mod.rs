//! Genealogy projection storage: per-node event history, the links between nodes, the
//! unpacks containment is rebuilt from (with the containment links, which are the packs), and
//! the capture cursor.
//!
//! Links are an adjacency table indexed from both ends, so a trace reads one level of the
//! graph per statement (`… WHERE to_node IN (frontier)`), whatever the plant's size; see
//! [`crate::graph`] for the traversal. Identifiers and event attributes are stored once
//! ([`tables`]) and joined back in on reads ([`read`]).

mod migration;
mod read;
pub mod tables;
mod trend_rows;
pub mod unit_profiles;
mod unit_reads;
mod write;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    DatabaseConnection, EntityTrait, Order,
    sea_query::{Expr, ExprTrait, OnConflict},
};
use tracery_epcis::Event;

pub use migration::Migrator;
pub use read::{HistoryRow, Link, LinkEnds, StepRow};
use tables::{cursor, event, link};

use crate::{
    errors::GenealogyError,
    facts::{self, LinkKind},
};

/// A period of the trend rollup, each row with its station's (stage's) name: empty for
/// events without a read point.
#[derive(Debug, Clone, Default)]
pub struct TrendRows {
    pub hours: Vec<(String, tables::trend_hour::Model)>,
    pub dwell: Vec<(String, tables::trend_dwell::Model)>,
}

/// Which end of a link a lookup matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkEnd {
    /// `from_node`.
    From,
    /// `to_node`.
    To,
}

impl LinkEnd {
    /// The column of links this end matches.
    pub(crate) fn column(self) -> link::Column {
        match self {
            Self::From => link::Column::FromNode,
            Self::To => link::Column::ToNode,
        }
    }
}

/// Projection reads and writes.
#[derive(Clone)]
pub struct ProjectionStore {
    db: DatabaseConnection,
    names: read::Names,
    node_ids: read::NodeIds,
}

/// The one cursor row's key.
const CURSOR_ID: i32 = 1;

/// The PostgreSQL advisory lock key of the projection's writer ("genealogy").
pub(super) const PROJECTION_LOCK: i64 = 0x6765_6e65_616c_6f67;

/// Frontier and node lists are queried this many at a time.
const CHUNK: usize = 500;

impl ProjectionStore {
    /// A store over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            names: read::Names::new(),
            node_ids: read::NodeIds::new(),
        }
    }

    /// The database it reads and writes.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The highest capture sequence applied so far (0 when none).
    pub async fn applied_sequence(&self) -> Result<i64, GenealogyError> {
        Ok(cursor::Entity::find_by_id(CURSOR_ID)
            .one(&self.db)
            .await?
            .map_or(0, |c| c.applied_sequence))
    }

    /// Applies one event and advances the cursor in one transaction. An event at or below
    /// the cursor was applied before and is skipped; returns whether it was applied now.
    pub async fn apply(&self, sequence: i64, event: &Event) -> Result<bool, GenealogyError> {
        Ok(self.apply_batch(&[(sequence, event.clone())]).await? == 1)
    }

    /// Applies events `(sequence, event)` in order and moves the cursor to the last, in one
    /// transaction; returns how many were above the cursor and applied now.
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    pub async fn apply_batch(&self, events: &[(i64, Event)]) -> Result<usize, GenealogyError> {
        let txn = tracery_runtime::db::begin_write(&self.db).await?;
        // Replicas follow the same stream: one applies a batch while the others wait,
        // then find the cursor past it.
        tracery_runtime::db::serialize(&txn, PROJECTION_LOCK).await?;
        let mut applied = cursor::Entity::find_by_id(CURSOR_ID)
            .one(&txn)
            .await?
            .map_or(0, |c| c.applied_sequence);
        let mut count = 0;
        // Events are written a run at a time; an error declaration ends the run (it reads
        // what the run wrote) and is applied on its own, in sequence order.
        let mut run = Vec::new();
        for (sequence, event) in events {
            if *sequence <= applied {
                continue;
            }
            let event_id = event.event_id.clone().unwrap_or_default();
            let facts = (event.error_declaration.is_none()).then(|| facts::of(event));
            match facts {
                Some(facts) => run.push((*sequence, event_id, event, facts)),
                None => {
                    let before = std::mem::take(&mut run);
                    write::record_run(&txn, &before).await?;
                    write::forget(&txn, &event_id).await?;
                }
            }
            applied = *sequence;
            count += 1;
        }
        write::record_run(&txn, &run).await?;
        if count == 0 {
            return Ok(0);
        }
        cursor::Entity::insert(cursor::ActiveModel {
            id: Set(CURSOR_ID),
            applied_sequence: Set(applied),
        })
        .on_conflict(
            OnConflict::column(cursor::Column::Id)
                .update_column(cursor::Column::AppliedSequence)
                .to_owned(),
        )
        .exec(&txn)
        .await?;
        txn.commit().await?;
        Ok(count)
    }

    /// Links with a node of `frontier` at `end` (`from_node` or `to_node`), of `kinds`,
    /// begun at or before `as_of` when given, in the order they were made.
    pub async fn links_at(
        &self,
        frontier: &[String],
        end: LinkEnd,
        kinds: &[LinkKind],
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Vec<Link>, GenealogyError> {
        let column = end.column();
        let mut found = Vec::new();
        for chunk in frontier.chunks(CHUNK) {
            let mut query = read::links();
            query
                .and_where(Expr::col(("l", column)).is_in(self.node_ids.of(&self.db, chunk).await?))
                .and_where(
                    Expr::col(("l", link::Column::Kind)).is_in(kinds.iter().map(|k| k.code())),
                );
            if let Some(as_of) = as_of {
                query.and_where(Expr::col(("e", event::Column::EventTime)).lte(as_of));
            }
            let links = self.names.fetch(&self.db, &query, read::name_link).await?;
            self.node_ids.remember(&links);
            found.extend(links);
        }
        Ok(found)
    }

    /// The identifiers touched by events with one of `terms` as their bizStep or
    /// disposition (as stored: CBV words bare, others as written), in `[from, until]`.
    pub async fn touched_by(
        &self,
        terms: &[String],
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<String>, GenealogyError> {
        use sea_orm::{FromQueryResult, StatementBuilder};
        #[derive(FromQueryResult)]
        struct Touched {
            identifier: String,
        }
        let ids = self.node_ids.of(&self.db, terms).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let backend = self.db.get_database_backend();
        let query = read::touched_by(backend, &ids, from, until);
        Ok(
            Touched::find_by_statement(StatementBuilder::build(&query, &backend))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|row| row.identifier)
                .collect(),
        )
    }

    /// Every history row of `nodes`.
    pub async fn histories(&self, nodes: &[String]) -> Result<Vec<HistoryRow>, GenealogyError> {
        let mut rows = Vec::new();
        for chunk in nodes.chunks(CHUNK) {
            let ids = self.node_ids.of(&self.db, chunk).await?;
            let query = read::histories(self.db.get_database_backend(), &ids);
            rows.extend(
                self.names
                    .fetch(&self.db, &query, read::name_history)
                    .await?,
            );
        }
        Ok(rows)
    }

    /// The trend rollup's hours in `[from, until)`, stations and stages named.
    pub async fn trends(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<TrendRows, GenealogyError> {
        let (hours, dwell) = trend_rows::between(&self.db, from, until).await?;
        let ids = hours
            .iter()
            .map(|row| row.station)
            .chain(dwell.iter().map(|row| row.stage));
        let names = self.names.of(&self.db, ids).await?;
        let name = |id: i64| names.get(&id).map(|n| n.to_string()).unwrap_or_default();
        Ok(TrendRows {
            hours: hours
                .into_iter()
                .map(|row| (name(row.station), row))
                .collect(),
            dwell: dwell
                .into_iter()
                .map(|row| (name(row.stage), row))
                .collect(),
        })
    }

    /// Events that touched `identifier`, in event-time order, after the `(time, sequence)`
    /// position `after`, at most `limit`.
    pub async fn history(
        &self,
        identifier: &str,
        after: Option<(DateTime<Utc>, i64)>,
        limit: u64,
    ) -> Result<Vec<HistoryRow>, GenealogyError> {
        let ids = self
            .node_ids
            .of(&self.db, &[facts::node_id(identifier)])
            .await?;
        let mut query = read::histories(self.db.get_database_backend(), &ids);
        query
            .order_by(("e", event::Column::EventTime), Order::Asc)
            .order_by(("e", event::Column::Sequence), Order::Asc)
            .limit(limit);
        if let Some(after) = after {
            query.cond_where(read::after_position(after));
        }
        Ok(self
            .names
            .fetch(&self.db, &query, read::name_history)
            .await?)
    }
}
