//! Reads for analyses over many units, by interned ids only: a common-cause analysis
//! compares a few failed units with every good unit made beside them, and reading those
//! by URI (each history row joined to its identifier, each link to both ends' URIs) cost
//! most of its time. Names are read at the end, for what is answered.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use sea_orm::{
    ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QuerySelect, QueryTrait, Statement,
    StatementBuilder, sea_query::SelectStatement,
};

use super::{
    CHUNK, LinkEnd, ProjectionStore,
    read::{self, LinkEnds, PackedRows, StepRow},
    tables::{event, node, sensor_reading},
};
use crate::{errors::GenealogyError, facts::LinkKind};

/// Ids read at a time by the reads below, which bind each as a parameter (SQLite takes
/// 32,766): ten times the URI lookups' chunk, since a statement's cost is mostly per call.
const ID_CHUNK: usize = 5_000;

/// Chunks of one read in flight at once, each on its own pooled connection: SQLite runs
/// readers side by side (WAL), and one statement at a time left a large read (an
/// analysis's walk up from every lot its good units were made from) waiting on one core.
const CHUNKS_AT_ONCE: usize = 4;

impl ProjectionStore {
    /// The stored nodes among `uris` (canonical), with their ids.
    pub async fn ids_of<'u>(
        &self,
        uris: &'u [String],
    ) -> Result<HashMap<&'u str, i64>, GenealogyError> {
        let mut ids = HashMap::with_capacity(uris.len());
        for chunk in uris.chunks(CHUNK) {
            ids.extend(self.node_ids.by_uri(&self.db, chunk).await?);
        }
        Ok(ids)
    }

    /// The ids of the stored nodes whose identifier starts with `prefix` (a product's
    /// serials: its Digital Link up to `/21/`), at most `limit`.
    pub async fn ids_starting_with(
        &self,
        prefix: &str,
        limit: u64,
    ) -> Result<Vec<i64>, GenealogyError> {
        Ok(node::Entity::find()
            .select_only()
            .column(node::Column::Id)
            .filter(node::Column::Uri.starts_with(prefix))
            .limit(limit)
            .into_tuple::<i64>()
            .all(&self.db)
            .await?)
    }

    /// Every event of the nodes `ids`, by ids.
    pub async fn step_rows(&self, ids: &[i64]) -> Result<Vec<StepRow>, GenealogyError> {
        let backend = self.db.get_database_backend();
        self.by_chunks(ids, |chunk| read::step_rows(backend, chunk))
            .await
    }

    /// Links of `kinds` with a node of `ids` at `end`, by ids.
    pub async fn link_ends_at(
        &self,
        ids: &[i64],
        end: LinkEnd,
        kinds: &[LinkKind],
    ) -> Result<Vec<LinkEnds>, GenealogyError> {
        let backend = self.db.get_database_backend();
        let packs = self
            .by_chunks(ids, |chunk| {
                read::packed_link_ends(backend, end, chunk, kinds)
            })
            .await?;
        Ok(PackedRows::links(packs)?)
    }

    /// The rows of the statements `query` makes for `ids`, [`ID_CHUNK`] at a time, in
    /// their order.
    async fn by_chunks<T: FromQueryResult>(
        &self,
        ids: &[i64],
        query: impl Fn(&[i64]) -> SelectStatement,
    ) -> Result<Vec<T>, GenealogyError> {
        let backend = self.db.get_database_backend();
        let statements: Vec<Statement> = ids
            .chunks(ID_CHUNK)
            .map(|chunk| StatementBuilder::build(&query(chunk), &backend))
            .collect();
        let reads = statements
            .into_iter()
            .map(|statement| T::find_by_statement(statement).all(&self.db));
        let mut chunks = futures::stream::iter(reads).buffered(CHUNKS_AT_ONCE);
        let mut rows = Vec::new();
        while let Some(chunk) = chunks.try_next().await? {
            rows.extend(chunk);
        }
        Ok(rows)
    }

    /// The sensor readings of the events `sequences`.
    pub async fn sensor_readings_of(
        &self,
        sequences: &[i64],
    ) -> Result<Vec<sensor_reading::Model>, GenealogyError> {
        self.by_chunks(sequences, |chunk| {
            sensor_reading::Entity::find()
                .filter(sensor_reading::Column::Sequence.is_in(chunk.iter().copied()))
                .into_query()
        })
        .await
    }

    /// The event times of `sequences`.
    pub async fn event_times(
        &self,
        sequences: &[i64],
    ) -> Result<HashMap<i64, DateTime<Utc>>, GenealogyError> {
        #[derive(FromQueryResult)]
        struct EventTime {
            sequence: i64,
            event_time: DateTime<Utc>,
        }
        let times: Vec<EventTime> = self
            .by_chunks(sequences, |chunk| {
                event::Entity::find()
                    .select_only()
                    .columns([event::Column::Sequence, event::Column::EventTime])
                    .filter(event::Column::Sequence.is_in(chunk.iter().copied()))
                    .into_query()
            })
            .await?;
        Ok(times
            .into_iter()
            .map(|row| (row.sequence, row.event_time))
            .collect())
    }

    /// The identifiers (or terms) of the nodes `ids`.
    pub async fn names_of(
        &self,
        ids: impl Iterator<Item = i64>,
    ) -> Result<HashMap<i64, Arc<str>>, GenealogyError> {
        Ok(self.names.of(&self.db, ids).await?)
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
    use sea_orm_migration::MigratorTrait;

    use super::*;
    use crate::store::Migrator;

    /// An analysis walks up from every lot its good units were made from: each lot's
    /// parents must come from the index of links by their `to` end alone, not from a
    /// lookup of each link's row (which spread the walk over the whole table).
    #[tokio::test]
    async fn a_walk_upstream_reads_parents_from_the_index_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/g.db?mode=rwc", dir.path().display());
        let db = Database::connect(&url).await.expect("sqlite");
        Migrator::up(&db, None).await.expect("migrates");
        let kinds = [LinkKind::TransformedInto, LinkKind::ContainedIn];
        let select = read::packed_link_ends(DbBackend::Sqlite, LinkEnd::To, &[3, 1, 2], &kinds);
        let walk = StatementBuilder::build(&select, &DbBackend::Sqlite);
        let explain = Statement::from_sql_and_values(
            DbBackend::Sqlite,
            format!("EXPLAIN QUERY PLAN {}", walk.sql),
            walk.values.expect("bound ids"),
        );
        let plan: Vec<String> = db
            .query_all_raw(explain)
            .await
            .expect("a plan")
            .iter()
            .map(|row| row.try_get::<String>("", "detail").expect("detail"))
            .collect();
        assert!(
            plan.iter()
                .any(|step| step.contains("COVERING INDEX genealogy_links_to_covering")),
            "{plan:?}"
        );
    }
}
