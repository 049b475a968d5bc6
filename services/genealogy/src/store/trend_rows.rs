//! The trend rollup's tables: what a run of events adds ([`record`], in the run's
//! transaction) and what a period holds ([`between`]).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    sea_query::{Expr, OnConflict},
};
use tracery_epcis::Event;

use super::tables::{position, trend_dwell, trend_hour};
use crate::{
    errors::GenealogyError,
    facts::{Facts, is_lot},
    trends::{NO_STATION, Position, Rollup, Step},
};

const CHUNK: usize = 500;

/// Adds a run of events to the trends: the positions of the identifiers it names are read
/// once, the run's counts are added to the stored ones, and changed positions written.
pub(super) async fn record(
    txn: &DatabaseTransaction,
    run: &[(i64, String, &Event, Facts)],
    ids: &HashMap<String, i64>,
) -> Result<(), GenealogyError> {
    let steps = run
        .iter()
        .map(|(_, _, event, facts)| step(event, facts, ids))
        .collect::<Result<Vec<Step>, GenealogyError>>()?;
    let mut nodes: Vec<i64> = steps
        .iter()
        .flat_map(|step| step.arriving.iter().chain(&step.leaving))
        .copied()
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    let mut rollup = Rollup::from_positions(positions_of(txn, &nodes).await?);
    for step in &steps {
        rollup.apply(step);
    }
    add_hours(txn, &rollup).await?;
    add_dwell(txn, &rollup).await?;
    write_positions(txn, &rollup).await
}

/// The step `event` is for the trends.
fn step(event: &Event, facts: &Facts, ids: &HashMap<String, i64>) -> Result<Step, GenealogyError> {
    let id = |uri: &str| super::write::node(ids, uri);
    let station = match &event.read_point {
        Some(location) => id(&location.id)?,
        None => NO_STATION,
    };
    let leaving: HashSet<&String> = facts.leaving.iter().collect();
    let arriving = facts
        .touched
        .iter()
        .filter(|node| !is_lot(node) && !leaving.contains(node))
        .map(|node| id(node))
        .collect::<Result<_, _>>()?;
    let leaving = facts
        .leaving
        .iter()
        .map(|node| id(node))
        .collect::<Result<_, _>>()?;
    Ok(Step {
        time: event.event_time.to_utc(),
        station,
        inspection_passed: facts.inspection_passed,
        arriving,
        leaving,
    })
}

async fn positions_of(
    txn: &DatabaseTransaction,
    nodes: &[i64],
) -> Result<HashMap<i64, Position>, GenealogyError> {
    let mut positions = HashMap::with_capacity(nodes.len());
    for chunk in nodes.chunks(CHUNK) {
        let rows = position::Entity::find()
            .filter(position::Column::Node.is_in(chunk.iter().copied()))
            .all(txn)
            .await?;
        positions.extend(rows.into_iter().map(|row| {
            let position = Position {
                station: row.station,
                since: DateTime::from_timestamp(row.since, 0).unwrap_or_default(),
                inspected: row.inspected,
            };
            (row.node, position)
        }));
    }
    Ok(positions)
}

/// `table.column + excluded.column`: a count added to the stored one.
pub(super) fn added(table: &str, column: &str) -> Expr {
    Expr::cust(format!("{table}.{column} + excluded.{column}"))
}

async fn add_hours(txn: &DatabaseTransaction, rollup: &Rollup) -> Result<(), GenealogyError> {
    use trend_hour::Column as C;
    let rows: Vec<trend_hour::ActiveModel> = rollup
        .hours
        .iter()
        .map(|((hour, station), counts)| trend_hour::ActiveModel {
            hour: Set(*hour),
            station: Set(*station),
            events: Set(counts.events),
            inspected: Set(counts.inspected),
            passed_first_time: Set(counts.passed_first_time),
        })
        .collect();
    let table = "genealogy_trend_hours";
    for chunk in rows.chunks(CHUNK) {
        trend_hour::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([C::Hour, C::Station])
                    .value(C::Events, added(table, "events"))
                    .value(C::Inspected, added(table, "inspected"))
                    .value(C::PassedFirstTime, added(table, "passed_first_time"))
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

async fn add_dwell(txn: &DatabaseTransaction, rollup: &Rollup) -> Result<(), GenealogyError> {
    use trend_dwell::Column as C;
    let rows: Vec<trend_dwell::ActiveModel> = rollup
        .dwell
        .iter()
        .map(|((hour, stage, bucket), counts)| trend_dwell::ActiveModel {
            hour: Set(*hour),
            stage: Set(*stage),
            bucket: Set(*bucket),
            visits: Set(counts.visits),
            total_seconds: Set(counts.total_seconds),
        })
        .collect();
    let table = "genealogy_trend_dwell";
    for chunk in rows.chunks(CHUNK) {
        trend_dwell::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([C::Hour, C::Stage, C::Bucket])
                    .value(C::Visits, added(table, "visits"))
                    .value(C::TotalSeconds, added(table, "total_seconds"))
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

async fn write_positions(txn: &DatabaseTransaction, rollup: &Rollup) -> Result<(), GenealogyError> {
    use position::Column as C;
    let rows: Vec<position::ActiveModel> = rollup
        .changed_positions()
        .map(|(node, place)| position::ActiveModel {
            node: Set(node),
            station: Set(place.station),
            since: Set(place.since.timestamp()),
            inspected: Set(place.inspected),
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        position::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::column(C::Node)
                    .update_columns([C::Station, C::Since, C::Inspected])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// The rollup's rows for hours in `[from, until)`, in hour order.
pub(super) async fn between(
    db: &impl ConnectionTrait,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(Vec<trend_hour::Model>, Vec<trend_dwell::Model>), GenealogyError> {
    let hours = trend_hour::Entity::find()
        .filter(trend_hour::Column::Hour.gte(from))
        .filter(trend_hour::Column::Hour.lt(until))
        .order_by_asc(trend_hour::Column::Hour)
        .all(db)
        .await?;
    let dwell = trend_dwell::Entity::find()
        .filter(trend_dwell::Column::Hour.gte(from))
        .filter(trend_dwell::Column::Hour.lt(until))
        .order_by_asc(trend_dwell::Column::Hour)
        .all(db)
        .await?;
    Ok((hours, dwell))
}
