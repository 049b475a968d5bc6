//! Tamper evidence for stored events: each event row carries a link of a hash chain,
//! SHA-256 over the previous link, its store key and its payload, in sequence order.
//! Editing a stored event, removing one or reordering them breaks the chain at that
//! point, and [`verify`] finds it; it also checks that each row's query columns say what
//! its stored payload says. Appends are serialised (see `begin_append`), so the chain
//! never forks.
//!
//! Removing the newest events leaves a shorter chain that still verifies; catching that
//! needs the head kept elsewhere (an audit record), which this module does not do.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use tracery_runtime::audit::{GENESIS, chain_link};

use super::{decode_payload, event, event_row};
use crate::domain::CaptureError;

/// The link of an event stored under `store_key` with `payload`, after `previous`.
pub fn link(previous: &str, store_key: &str, payload: &str) -> String {
    chain_link(previous, &[store_key, payload])
}

/// The newest event's link ([`GENESIS`] when none is stored).
pub async fn head(conn: &impl ConnectionTrait) -> Result<String, DbErr> {
    let newest: Option<Option<String>> = event::Entity::find()
        .select_only()
        .column(event::Column::ChainHash)
        .order_by_desc(event::Column::Sequence)
        .limit(1)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(newest.flatten().unwrap_or_else(|| GENESIS.to_owned()))
}

/// Rows per read while walking the chain.
const CHUNK: u64 = 1000;

/// Chains every stored event that has no link yet, in sequence order (the migration that
/// introduced the chain).
pub async fn chain_stored(conn: &impl ConnectionTrait) -> Result<(), DbErr> {
    let mut previous = GENESIS.to_owned();
    let mut after = 0;
    loop {
        let rows: Vec<(i64, String, String, Option<String>)> = event::Entity::find()
            .select_only()
            .column(event::Column::Sequence)
            .column(event::Column::EventId)
            .column(event::Column::Payload)
            .column(event::Column::ChainHash)
            .filter(event::Column::Sequence.gt(after))
            .order_by_asc(event::Column::Sequence)
            .limit(CHUNK)
            .into_tuple()
            .all(conn)
            .await?;
        let Some(last) = rows.last().map(|r| r.0) else {
            return Ok(());
        };
        for (sequence, key, payload, existing) in rows {
            previous = match existing {
                Some(existing) => existing,
                None => {
                    let chained = link(&previous, &key, &payload);
                    event::Entity::update_many()
                        .set(event::ActiveModel {
                            chain_hash: Set(Some(chained.clone())),
                            ..Default::default()
                        })
                        .filter(event::Column::Sequence.eq(sequence))
                        .exec(conn)
                        .await?;
                    chained
                }
            };
        }
        after = last;
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Events checked.
    pub checked: i64,
    /// The first broken event and why, if any.
    pub broken: Option<(i64, String)>,
}

/// Why `row` does not match what was stored, if it does not.
fn row_fault(row: &event::Model, previous: &str) -> Option<String> {
    let Some(stored_link) = &row.chain_hash else {
        return Some("it has no link in the hash chain".to_owned());
    };
    if *stored_link != link(previous, &row.event_id, &row.payload) {
        return Some(
            "its hash link does not match: the event, or the one before it, was changed or \
             removed after it was stored"
                .to_owned(),
        );
    }
    let stored = match decode_payload(row.sequence, &row.payload) {
        Ok(stored) => stored,
        Err(err) => return Some(format!("its payload no longer reads: {err}")),
    };
    let event_id = stored.event.event_id.clone().unwrap_or_default();
    let expected = event_row(
        &stored.event,
        &(row.event_id.clone(), event_id),
        row.record_time,
    );
    let columns = [
        (
            "event_type",
            Some(row.event_type.clone()),
            Some(expected.event_type),
        ),
        (
            "event_time",
            Some(row.event_time.to_rfc3339()),
            Some(expected.event_time.to_rfc3339()),
        ),
        ("biz_step", row.biz_step.clone(), expected.biz_step),
        ("disposition", row.disposition.clone(), expected.disposition),
        ("read_point", row.read_point.clone(), expected.read_point),
        (
            "biz_location",
            row.biz_location.clone(),
            expected.biz_location,
        ),
        ("declares", row.declares.clone(), expected.declares),
    ];
    columns
        .into_iter()
        .find(|(_, column, from_payload)| column != from_payload)
        .map(|(name, column, from_payload)| {
            format!("column `{name}` says {column:?}, its stored event says {from_payload:?}")
        })
}

/// Walks the chain from the first event.
pub async fn verify(conn: &impl ConnectionTrait) -> Result<Report, CaptureError> {
    let mut previous = GENESIS.to_owned();
    let mut checked = 0;
    let mut after = 0;
    loop {
        let rows = event::Entity::find()
            .filter(event::Column::Sequence.gt(after))
            .order_by_asc(event::Column::Sequence)
            .limit(CHUNK)
            .all(conn)
            .await?;
        let Some(last) = rows.last().map(|r| r.sequence) else {
            return Ok(Report {
                checked,
                broken: None,
            });
        };
        for row in rows {
            checked += 1;
            if let Some(reason) = row_fault(&row, &previous) {
                return Ok(Report {
                    checked,
                    broken: Some((row.sequence, reason)),
                });
            }
            previous = row.chain_hash.unwrap_or_default();
        }
        after = last;
    }
}
