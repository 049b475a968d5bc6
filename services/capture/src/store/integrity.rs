//! Tamper evidence for stored events: each event row carries a link of a hash chain, an
//! HMAC under the suite's chain key (kept outside the database, see
//! [`tracery_runtime::integrity`]) over the previous link, its store key and its payload,
//! in sequence order. Editing a stored event, removing one or reordering them breaks the
//! chain at that point, recomputing the links needs the key, and [`verify`] finds it; it
//! also checks that each row's query columns say what its stored payload says, and the
//! chain's signed checkpoints, so removing the newest events shows too. Appends are
//! serialised (see `begin_append`), so the chain never forks.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use tracery_runtime::integrity::{
    Break, ChainKeys, ChainRows, ChainVerifier, Checkpoint, GENESIS, legacy_link, relink_unkeyed,
};

use super::{event, event_row, parse_payload, payloads::Payloads};
use crate::domain::CaptureError;

/// The chain's name in checkpoints.
pub const CHAIN: &str = "events";

/// The link of an event stored under `store_key` with `payload`, after `previous`.
pub fn link(keys: &ChainKeys, previous: &str, store_key: &str, payload: &str) -> String {
    keys.link(previous, &[store_key, payload])
}

/// The newest event's sequence and link.
pub async fn head(conn: &impl ConnectionTrait) -> Result<Option<(i64, String)>, DbErr> {
    let newest: Option<(i64, Option<String>)> = event::Entity::find()
        .select_only()
        .column(event::Column::Sequence)
        .column(event::Column::ChainHash)
        .order_by_desc(event::Column::Sequence)
        .limit(1)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(newest.map(|(sequence, link)| (sequence, link.unwrap_or_default())))
}

/// The newest event's link ([`GENESIS`] when none is stored).
pub async fn head_link(conn: &impl ConnectionTrait) -> Result<String, DbErr> {
    Ok(head(conn)
        .await?
        .map_or_else(|| GENESIS.to_owned(), |(_, link)| link))
}

/// Rows per read while walking the chain.
const CHUNK: u64 = 1000;

/// `(sequence, store key, payload text, link)` of the rows after `after`.
async fn chain_rows(
    conn: &impl ConnectionTrait,
    after: i64,
) -> Result<Vec<(i64, String, String, Option<String>)>, DbErr> {
    let links: Vec<(i64, String, Option<String>)> = event::Entity::find()
        .select_only()
        .column(event::Column::Sequence)
        .column(event::Column::EventId)
        .column(event::Column::ChainHash)
        .filter(event::Column::Sequence.gt(after))
        .order_by_asc(event::Column::Sequence)
        .limit(CHUNK)
        .into_tuple()
        .all(conn)
        .await?;
    let mut stored: std::collections::HashMap<i64, Vec<u8>> =
        super::payloads_after(conn, after, CHUNK)
            .await?
            .into_iter()
            .collect();
    let payloads = Payloads::default();
    let mut rows = Vec::with_capacity(links.len());
    for (sequence, key, link) in links {
        let text = payloads
            .decode(conn, &stored.remove(&sequence).unwrap_or_default())
            .await
            .map_err(|err| DbErr::Custom(format!("event {sequence}: {err}")))?;
        rows.push((sequence, key, text, link));
    }
    Ok(rows)
}

/// Chains every stored event that has no link yet, in sequence order (the migration that
/// introduced the chain, before links were keyed: it writes unkeyed links, which
/// [`relink_legacy`] re-links with the key at the next start).
pub async fn chain_stored(conn: &impl ConnectionTrait) -> Result<(), DbErr> {
    let mut previous = GENESIS.to_owned();
    let mut after = 0;
    loop {
        let rows = chain_rows(conn, after).await?;
        let Some(last) = rows.last().map(|r| r.0) else {
            return Ok(());
        };
        for (sequence, key, payload, existing) in rows {
            previous = match existing {
                Some(existing) => existing,
                None => {
                    let chained = legacy_link(&previous, &[&key, &payload]);
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

/// The event table as a chain to re-link.
struct EventRows;

#[async_trait::async_trait]
impl ChainRows for EventRows {
    async fn rows_after(
        &self,
        txn: &DatabaseTransaction,
        after: i64,
    ) -> Result<Vec<(i64, String, Vec<String>)>, DbErr> {
        Ok(chain_rows(txn, after)
            .await?
            .into_iter()
            .map(|(sequence, key, payload, link)| {
                (sequence, link.unwrap_or_default(), vec![key, payload])
            })
            .collect())
    }

    async fn set_link(
        &self,
        txn: &DatabaseTransaction,
        sequence: i64,
        link: String,
    ) -> Result<(), DbErr> {
        event::Entity::update_many()
            .set(event::ActiveModel {
                chain_hash: Set(Some(link)),
                ..Default::default()
            })
            .filter(event::Column::Sequence.eq(sequence))
            .exec(txn)
            .await
            .map(|_| ())
    }
}

/// Re-links, once, an event chain written before links were keyed (see
/// [`tracery_runtime::integrity::relink_unkeyed`]). Returns the events re-linked.
pub async fn relink_legacy(db: &DatabaseConnection, keys: &ChainKeys) -> Result<u64, CaptureError> {
    let txn = super::begin_append(db).await?;
    Ok(relink_unkeyed(txn, &EventRows, keys, CHAIN).await?)
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Events checked.
    pub checked: i64,
    /// The first break, if any.
    pub broken: Option<Break>,
}

/// Why `row`'s query columns do not say what its stored payload (`text`) says, if they do
/// not.
fn column_fault(row: &event::Model, text: &str) -> Option<String> {
    let stored = match parse_payload(row.sequence, text) {
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

/// Walks the chain from the first event against the keys and `checkpoints`.
pub async fn verify(
    conn: &impl ConnectionTrait,
    keys: &ChainKeys,
    checkpoints: Vec<Checkpoint>,
) -> Result<Report, CaptureError> {
    let mut verifier = ChainVerifier::new(keys, checkpoints);
    let payloads = Payloads::default();
    let mut archived = Archived::new(conn).await?;
    let mut previous = GENESIS.to_owned();
    let (mut checked, mut after) = (0, 0);
    loop {
        let rows = event::Entity::find()
            .filter(event::Column::Sequence.gt(after))
            .order_by_asc(event::Column::Sequence)
            .limit(CHUNK)
            .all(conn)
            .await?;
        let Some(last) = rows.last().map(|r| r.sequence) else {
            let broken = match archived.pass(&mut verifier, i64::MAX, &mut previous) {
                Err(broken) => Some(broken),
                Ok(through) => verifier.finish(after.max(through)).err(),
            };
            return Ok(Report { checked, broken });
        };
        for row in rows {
            if let Err(broken) = archived.pass(&mut verifier, row.sequence, &mut previous) {
                return Ok(Report {
                    checked,
                    broken: Some(broken),
                });
            }
            checked += 1;
            let stored_link = row.chain_hash.clone().unwrap_or_default();
            let text = match payloads.decode(conn, &row.payload).await {
                Ok(text) => text,
                Err(err) => {
                    return Ok(Report {
                        checked,
                        broken: Some(verifier.break_at(row.sequence, err.to_string())),
                    });
                }
            };
            let fault = verifier
                .check(
                    row.sequence,
                    &previous,
                    &stored_link,
                    &[&row.event_id, &text],
                )
                .err()
                .or_else(|| {
                    column_fault(&row, &text).map(|reason| verifier.break_at(row.sequence, reason))
                });
            if let Some(broken) = fault {
                return Ok(Report {
                    checked,
                    broken: Some(broken),
                });
            }
            previous = stored_link;
        }
        after = last;
    }
}

/// The months dropped into archives, which the walk passes over by their recorded links.
struct Archived {
    months: std::collections::VecDeque<super::archive::MonthSpan>,
}

impl Archived {
    async fn new(conn: &impl ConnectionTrait) -> Result<Self, DbErr> {
        Ok(Self {
            months: super::archive::dropped_months(conn).await?.into(),
        })
    }

    /// Passes the dropped months before sequence `next`: each must start where the chain
    /// before it ends, and `previous` becomes its end link. Returns the last sequence passed.
    fn pass(
        &mut self,
        verifier: &mut ChainVerifier<'_>,
        next: i64,
        previous: &mut String,
    ) -> Result<i64, Break> {
        let mut through = 0;
        while let Some(month) = self.months.front().filter(|m| m.last_sequence < next) {
            if month.link_before != *previous {
                return Err(verifier.break_at(
                    month.first_sequence,
                    format!(
                        "the archived month {} does not start where the chain before it ends: \
                         rows before it were changed, or its record was",
                        month.month
                    ),
                ));
            }
            verifier.pass_archived(month.last_sequence, &month.end_link)?;
            previous.clone_from(&month.end_link);
            through = month.last_sequence;
            self.months.pop_front();
        }
        Ok(through)
    }
}
