//! The terms stored events use, by vocabulary: every bizStep, disposition, read point and
//! business location any stored event names, for the REST binding's listings
//! (`GET /bizSteps`, `/dispositions`, `/readPoints`, `/bizLocations`).
//!
//! The events table has no index on these columns (no query needs one), so listing them
//! from the events would read every event. Each append records its batch's terms here
//! instead, in its own transaction: a few rows per batch, and none once a term is known.
//! Terms stay when their events are archived, as the names of what was seen.

use std::collections::BTreeSet;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::bulk::EventRow;

/// The `capture_vocabulary` table.
pub mod term {
    use sea_orm::entity::prelude::*;

    /// One term of one vocabulary.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_vocabulary")]
    pub struct Model {
        /// [`super::Vocabulary`] code.
        #[sea_orm(primary_key, auto_increment = false)]
        pub vocabulary: i16,
        /// The term as captured.
        #[sea_orm(primary_key, auto_increment = false)]
        pub term: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The vocabularies whose terms are recorded, each with the event column holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Vocabulary {
    BizStep = 1,
    Disposition = 2,
    ReadPoint = 3,
    BizLocation = 4,
}

impl Vocabulary {
    /// Every recorded vocabulary.
    pub const ALL: [Vocabulary; 4] = [
        Vocabulary::BizStep,
        Vocabulary::Disposition,
        Vocabulary::ReadPoint,
        Vocabulary::BizLocation,
    ];

    /// The `capture_events` column holding this vocabulary's term.
    pub fn column(self) -> &'static str {
        match self {
            Vocabulary::BizStep => "biz_step",
            Vocabulary::Disposition => "disposition",
            Vocabulary::ReadPoint => "read_point",
            Vocabulary::BizLocation => "biz_location",
        }
    }

    fn of(self, row: &EventRow) -> Option<&String> {
        match self {
            Vocabulary::BizStep => row.biz_step.as_ref(),
            Vocabulary::Disposition => row.disposition.as_ref(),
            Vocabulary::ReadPoint => row.read_point.as_ref(),
            Vocabulary::BizLocation => row.biz_location.as_ref(),
        }
    }
}

/// The statement creating the table (both databases).
pub const CREATE_TABLE: &str = "CREATE TABLE capture_vocabulary (vocabulary SMALLINT NOT NULL, \
     term TEXT NOT NULL, PRIMARY KEY (vocabulary, term))";

/// The statement recording the terms of every stored event of `vocabulary` (run once, by
/// the migration that creates the table).
pub fn backfill(vocabulary: Vocabulary) -> String {
    let column = vocabulary.column();
    format!(
        "INSERT INTO capture_vocabulary (vocabulary, term) SELECT DISTINCT {code}, {column} \
         FROM capture_events WHERE {column} IS NOT NULL",
        code = vocabulary as i16
    )
}

/// Terms per statement: well inside SQLite's bound-parameter limit.
const CHUNK: usize = 1_000;

/// Records the terms `rows` use, in the appending transaction `conn`.
pub async fn record<'a>(
    conn: &impl ConnectionTrait,
    rows: impl IntoIterator<Item = &'a EventRow>,
) -> Result<(), DbErr> {
    let mut terms = BTreeSet::new();
    for row in rows {
        for vocabulary in Vocabulary::ALL {
            if let Some(value) = vocabulary.of(row) {
                terms.insert((vocabulary as i16, value.as_str()));
            }
        }
    }
    let terms: Vec<(i16, &str)> = terms.into_iter().collect();
    for chunk in terms.chunks(CHUNK) {
        let models = chunk.iter().map(|(vocabulary, value)| term::ActiveModel {
            vocabulary: Set(*vocabulary),
            term: Set((*value).to_owned()),
        });
        term::Entity::insert_many(models)
            .on_conflict_do_nothing()
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Up to `limit` terms of `vocabulary` after `after`, in order.
pub async fn page(
    conn: &impl ConnectionTrait,
    vocabulary: Vocabulary,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    let mut select = term::Entity::find()
        .select_only()
        .column(term::Column::Term)
        .filter(term::Column::Vocabulary.eq(vocabulary as i16));
    if let Some(after) = after {
        select = select.filter(term::Column::Term.gt(after));
    }
    select
        .order_by_asc(term::Column::Term)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await
}
