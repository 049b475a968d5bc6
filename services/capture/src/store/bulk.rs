//! Multi-row statements for appending a batch. PostgreSQL gets one array parameter per
//! column (`= ANY($1)`, `INSERT … SELECT * FROM UNNEST(…)`): a statement with thousands of
//! scalar parameters costs PostgreSQL more to plan than to run. SQLite, in-process, takes
//! ordinary multi-row statements.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, QuerySelect,
    Statement, Value, sea_query::ArrayType,
};

use super::{event, keys, vocabulary};

/// Rows per multi-row statement on SQLite: well inside its bound-parameter limit.
const SQLITE_ROWS: usize = 400;

fn is_postgres(conn: &impl ConnectionTrait) -> bool {
    conn.get_database_backend() == DatabaseBackend::Postgres
}

/// A `text[]` parameter. Array elements cannot be NULL here, so an absent value travels
/// as `''` and the statement turns it back with `NULLIF`.
fn text_array(values: impl IntoIterator<Item = Option<String>>) -> Value {
    Value::Array(
        ArrayType::String,
        Some(Box::new(
            values
                .into_iter()
                .map(|v| Value::String(Some(v.unwrap_or_default())))
                .collect(),
        )),
    )
}

/// The sequences of the stored events among `store_keys`.
pub async fn sequences_of(
    conn: &impl ConnectionTrait,
    store_keys: &[String],
) -> Result<HashMap<String, i64>, DbErr> {
    if is_postgres(conn) {
        return look_up_each(conn, "capture_events", "event_id", "sequence", store_keys).await;
    }
    let mut found = HashMap::new();
    for chunk in store_keys.chunks(SQLITE_ROWS) {
        let rows: Vec<(String, i64)> = event::Entity::find()
            .select_only()
            .column(event::Column::EventId)
            .column(event::Column::Sequence)
            .filter(event::Column::EventId.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(conn)
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

/// One event row to append.
pub struct EventRow {
    pub store_key: String,
    pub declares: Option<String>,
    pub event_type: String,
    pub event_time: DateTime<Utc>,
    pub record_time: DateTime<Utc>,
    pub biz_step: Option<String>,
    pub disposition: Option<String>,
    pub read_point: Option<String>,
    pub biz_location: Option<String>,
    /// The payload's text, which the chain link covers.
    pub payload: String,
    /// The payload as stored ([`super::payloads`]).
    pub stored_payload: Vec<u8>,
    /// Its link in the hash chain (see [`super::integrity`]).
    pub chain_hash: String,
    /// The identifiers it is found by ([`keys::keys_of`]), written with it.
    pub keys: Vec<(keys::Role, String)>,
}

/// The columns of `rows` as PostgreSQL arrays (`event_id` to `chain_hash`, as the
/// statements below list them): one `UNNEST` inserts them all in one statement.
fn pg_arrays(rows: &[EventRow]) -> Vec<Value> {
    let keys: Vec<String> = rows.iter().map(|r| r.store_key.clone()).collect();
    let times = |pick: fn(&EventRow) -> DateTime<Utc>| {
        Value::Array(
            ArrayType::ChronoDateTimeUtc,
            Some(Box::new(
                rows.iter()
                    .map(|r| Value::ChronoDateTimeUtc(Some(pick(r))))
                    .collect(),
            )),
        )
    };
    let texts = |pick: fn(&EventRow) -> Option<String>| text_array(rows.iter().map(pick));
    vec![
        text_array(keys.iter().cloned().map(Some)),
        texts(|r| r.declares.clone()),
        texts(|r| Some(r.event_type.clone())),
        times(|r| r.event_time),
        times(|r| r.record_time),
        texts(|r| r.biz_step.clone()),
        texts(|r| r.disposition.clone()),
        texts(|r| r.read_point.clone()),
        texts(|r| r.biz_location.clone()),
        Value::Array(
            ArrayType::Bytes,
            Some(Box::new(
                rows.iter()
                    .map(|r| Value::Bytes(Some(r.stored_payload.clone())))
                    .collect(),
            )),
        ),
        texts(|r| Some(r.chain_hash.clone())),
    ]
}

/// Appends `rows` and returns each one's sequence, in order.
pub async fn insert_events(
    conn: &impl ConnectionTrait,
    rows: Vec<EventRow>,
) -> Result<Vec<i64>, DbErr> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    vocabulary::record(conn, &rows).await?;
    if is_postgres(conn) {
        let keys: Vec<String> = rows.iter().map(|r| r.store_key.clone()).collect();
        let mut values = pg_arrays(&rows);
        values.push(identifier_codes(conn, &rows).await?);
        let statement = Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            r#"INSERT INTO "capture_events" ("event_id", "declares", "event_type", "event_time",
                 "record_time", "biz_step", "disposition", "read_point", "biz_location", "payload",
                 "chain_hash", "identifiers")
               SELECT k, NULLIF(d, ''), t, et, rt, NULLIF(bs, ''), NULLIF(dp, ''),
                 NULLIF(rp, ''), NULLIF(bl, ''), p, h, i::bigint[]
               FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[],
                 $5::timestamptz[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bytea[],
                 $11::text[], $12::text[])
                 AS u(k, d, t, et, rt, bs, dp, rp, bl, p, h, i)
               RETURNING "event_id", "sequence""#,
            values,
        );
        let mut assigned = HashMap::new();
        for row in conn.query_all_raw(statement).await? {
            let key: String = row.try_get("", "event_id")?;
            let sequence: i64 = row.try_get("", "sequence")?;
            assigned.insert(key, sequence);
        }
        return keys
            .iter()
            .map(|key| {
                assigned.get(key).copied().ok_or_else(|| {
                    DbErr::Custom(format!("no sequence returned for appended event `{key}`"))
                })
            })
            .collect();
    }
    let mut sequences = Vec::with_capacity(rows.len());
    let mut key_rows = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut chunk_keys = Vec::new();
        let chunk: Vec<event::ActiveModel> = rows
            .by_ref()
            .take(SQLITE_ROWS)
            .map(|mut row| {
                chunk_keys.push(std::mem::take(&mut row.keys));
                active(row)
            })
            .collect();
        let count = chunk.len();
        let assigned = event::Entity::insert_many(chunk)
            .exec_with_returning_keys(conn)
            .await?;
        if assigned.len() != count {
            return Err(DbErr::Custom(format!(
                "{count} events inserted, {} sequences returned",
                assigned.len()
            )));
        }
        // The writer holds the database lock, so one statement's rows get their sequences
        // in VALUES order.
        key_rows.extend(index_rows(&assigned, chunk_keys));
        sequences.extend(assigned);
    }
    keys::insert_rows(conn, key_rows).await?;
    Ok(sequences)
}

/// The identifier index rows `(sequence, role, value)` of rows stored at `sequences`.
fn index_rows(
    sequences: &[i64],
    keys: Vec<Vec<(keys::Role, String)>>,
) -> impl Iterator<Item = (i64, keys::Role, String)> + '_ {
    sequences.iter().zip(keys).flat_map(|(&sequence, keys)| {
        keys.into_iter()
            .map(move |(role, value)| (sequence, role, value))
    })
}

/// Puts `rows` back at the given sequences (an archive's import); rows stored already are
/// left as they are, so an interrupted import can run again.
pub async fn insert_events_at(
    conn: &impl ConnectionTrait,
    rows: Vec<(i64, EventRow)>,
) -> Result<(), DbErr> {
    use sea_orm::ActiveValue::Set;
    vocabulary::record(conn, rows.iter().map(|(_, row)| row)).await?;
    if is_postgres(conn) {
        if rows.is_empty() {
            return Ok(());
        }
        let sequences = Value::Array(
            ArrayType::BigInt,
            Some(Box::new(
                rows.iter().map(|(s, _)| Value::BigInt(Some(*s))).collect(),
            )),
        );
        let rows: Vec<EventRow> = rows.into_iter().map(|(_, row)| row).collect();
        let mut values = pg_arrays(&rows);
        values.push(sequences);
        values.push(identifier_codes(conn, &rows).await?);
        conn.execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            r#"INSERT INTO "capture_events" ("sequence", "event_id", "declares", "event_type",
                 "event_time", "record_time", "biz_step", "disposition", "read_point",
                 "biz_location", "payload", "chain_hash", "identifiers")
               SELECT s, k, NULLIF(d, ''), t, et, rt, NULLIF(bs, ''), NULLIF(dp, ''),
                 NULLIF(rp, ''), NULLIF(bl, ''), p, h, i::bigint[]
               FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[],
                 $5::timestamptz[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bytea[],
                 $11::text[], $12::bigint[], $13::text[])
                 AS u(k, d, t, et, rt, bs, dp, rp, bl, p, h, s, i)
               ON CONFLICT DO NOTHING"#,
            values,
        ))
        .await?;
        return Ok(());
    }
    let mut key_rows = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<event::ActiveModel> = rows
            .by_ref()
            .take(SQLITE_ROWS)
            .map(|(sequence, mut row)| {
                key_rows.extend(index_rows(&[sequence], vec![std::mem::take(&mut row.keys)]));
                event::ActiveModel {
                    sequence: Set(sequence),
                    ..active(row)
                }
            })
            .collect();
        event::Entity::insert_many(chunk)
            .on_conflict_do_nothing()
            .exec_without_returning(conn)
            .await?;
    }
    keys::insert_rows(conn, key_rows).await
}

fn active(row: EventRow) -> event::ActiveModel {
    use sea_orm::ActiveValue::Set;
    event::ActiveModel {
        event_id: Set(row.store_key),
        declares: Set(row.declares),
        event_type: Set(row.event_type),
        event_time: Set(row.event_time),
        record_time: Set(row.record_time),
        biz_step: Set(row.biz_step),
        disposition: Set(row.disposition),
        read_point: Set(row.read_point),
        biz_location: Set(row.biz_location),
        payload: Set(row.stored_payload),
        chain_hash: Set(Some(row.chain_hash)),
        ..Default::default()
    }
}

/// The identifiers of each of `rows` as PostgreSQL's `identifiers` column holds them, one
/// array literal per row: each identifier's number in `capture_identifiers` (numbering
/// those not stored yet) times 16 plus its [`keys::Role`]. One GIN index over that column
/// answers every identifier query, and goes with the row's month partition.
async fn identifier_codes(conn: &impl ConnectionTrait, rows: &[EventRow]) -> Result<Value, DbErr> {
    let mut values: Vec<String> = rows
        .iter()
        .flat_map(|row| row.keys.iter().map(|(_, value)| value.clone()))
        .collect();
    values.sort_unstable();
    values.dedup();
    let numbers = intern(conn, values).await?;
    let literal = |row: &EventRow| {
        let codes: Vec<String> = row
            .keys
            .iter()
            .filter_map(|(role, value)| Some(keys::code(*numbers.get(value)?, *role).to_string()))
            .collect();
        Some(format!("{{{}}}", codes.join(",")))
    };
    Ok(text_array(rows.iter().map(literal)))
}

/// The numbers of `values` in `capture_identifiers` (PostgreSQL), numbering those not
/// stored yet. Stored ones are looked up first and only the others inserted: an archive's
/// import finds every identifier stored already, and an insert that conflicts costs a
/// lookup and a heap visit more than the lookup alone (6.9 s of a 1M-event import went to
/// such inserts). An identifier numbered by another writer meanwhile is looked up again.
async fn intern(
    conn: &impl ConnectionTrait,
    values: Vec<String>,
) -> Result<HashMap<String, i64>, DbErr> {
    let mut numbers = numbers_of(conn, &values).await?;
    let missing: Vec<String> = values
        .into_iter()
        .filter(|value| !numbers.contains_key(value))
        .collect();
    if missing.is_empty() {
        return Ok(numbers);
    }
    let inserted = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"INSERT INTO "capture_identifiers" ("value") SELECT * FROM UNNEST($1::text[])
           ON CONFLICT ("value") DO NOTHING RETURNING "value" AS key, "id" AS number"#,
        [text_array(missing.iter().cloned().map(Some))],
    );
    numbers.extend(key_numbers(conn.query_all_raw(inserted).await?)?);
    let numbered_meanwhile: Vec<String> = missing
        .into_iter()
        .filter(|value| !numbers.contains_key(value))
        .collect();
    if !numbered_meanwhile.is_empty() {
        numbers.extend(numbers_of(conn, &numbered_meanwhile).await?);
    }
    Ok(numbers)
}

/// The numbers of those of `values` stored in `capture_identifiers` (PostgreSQL).
async fn numbers_of(
    conn: &impl ConnectionTrait,
    values: &[String],
) -> Result<HashMap<String, i64>, DbErr> {
    look_up_each(conn, "capture_identifiers", "value", "id", values).await
}

/// `key → number` for those of `keys` found in column `key` of `table` (PostgreSQL), one
/// index lookup per key whatever the statistics: as `= ANY($1)` without them (before
/// autovacuum's ANALYZE, or with it off) the planner estimated thousands of rows per key
/// and now and then read the whole table or partition (0.9 s at 1M events). The OFFSET
/// keeps the subquery from being merged into a join.
async fn look_up_each(
    conn: &impl ConnectionTrait,
    table: &str,
    key: &str,
    number: &str,
    keys: &[String],
) -> Result<HashMap<String, i64>, DbErr> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        format!(
            r#"SELECT found."{key}" AS key, found."{number}" AS number
               FROM UNNEST($1::text[]) AS wanted(key)
               CROSS JOIN LATERAL (SELECT "{key}", "{number}" FROM "{table}"
                                   WHERE "{key}" = wanted.key OFFSET 0) found"#
        ),
        [text_array(keys.iter().cloned().map(Some))],
    );
    key_numbers(conn.query_all_raw(statement).await?)
}

/// Rows of `key` and `number` as a map.
fn key_numbers(rows: Vec<sea_orm::QueryResult>) -> Result<HashMap<String, i64>, DbErr> {
    rows.iter()
        .map(|row| Ok((row.try_get("", "key")?, row.try_get("", "number")?)))
        .collect()
}

/// Rows per statement of the derived tables' writes below.
const DERIVED_ROWS: usize = 1_000;

/// Deletes the rows of `E` whose `column` is one of `values`, a chunk at a time.
pub async fn delete_where_in<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    column: E::Column,
    values: &[String],
) -> Result<(), DbErr> {
    for chunk in values.chunks(DERIVED_ROWS) {
        E::delete_many()
            .filter(column.is_in(chunk.iter().cloned()))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// Inserts `rows`, a row whose `key` exists already getting the `update` columns instead,
/// a chunk at a time.
pub async fn upsert<A>(
    conn: &impl ConnectionTrait,
    rows: Vec<A>,
    key: <A::Entity as EntityTrait>::Column,
    update: &[<A::Entity as EntityTrait>::Column],
) -> Result<(), DbErr>
where
    A: sea_orm::ActiveModelTrait + Send,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(DERIVED_ROWS).collect();
        <A::Entity as EntityTrait>::insert_many(chunk)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(key)
                    .update_columns(update.iter().copied())
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}
