//! The identifier index of stored events, for MATCH_epc, MATCH_anyEPC, MATCH_epcClass and
//! EQ_bizTransaction: one row per (event, role, identifier), identifiers in their canonical
//! spelling so an EPC URN finds events that wrote the same object as a Digital Link.
//!
//! Transformation inputs and outputs, sources and destinations have roles of their own, so
//! the index alone tells which way an event moved material.
//!
//! Each identifier is stored once, in `capture_identifiers`, and the index rows refer to it
//! by number: a serialised unit is named by several events (commissioned, inspected,
//! packed, shipped), and its 45-character URI in each row and its index was about half of
//! the store.
//!
//! Where the index rows live differs by database, as their cost does. SQLite keeps them
//! in `capture_identifier_index`, a `WITHOUT ROWID` table of 12-byte rows. PostgreSQL
//! pays a 24-byte header, a line pointer and an index entry per row (93 bytes each), so
//! there each event carries its codes ([`code`]) in an `identifiers` array with a GIN
//! index on their identifier numbers (`capture_identifier_ids`: most codes occur once,
//! since each event names a unit in another role, while identifiers recur): an event's
//! identifiers are then partitioned with it and dropped with its month.

use std::collections::HashMap;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
};
use tracery_epcis::{Event, EventKind, QuantityElement};

/// The `capture_event_keys` table of the layout before `m0012`, which the migrations
/// before it still write.
pub mod legacy_key {
    use sea_orm::entity::prelude::*;

    /// One identifier of one stored event.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_event_keys")]
    pub struct Model {
        /// Row id.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The event's store sequence.
        pub sequence: i64,
        /// [`super::Role`] code.
        pub role: i16,
        /// The identifier, canonical where it is a GS1 identifier.
        pub value: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `capture_identifiers` table: every identifier indexed, once.
pub mod identifier {
    use sea_orm::entity::prelude::*;

    /// An identifier and its number.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_identifiers")]
    pub struct Model {
        /// Its number, which the index rows hold.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The identifier, canonical where it is a GS1 identifier.
        #[sea_orm(unique)]
        pub value: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `capture_identifier_index` table: one row per (identifier, role, event), its key
/// in that order, since every lookup starts from identifiers.
pub mod index_row {
    use sea_orm::entity::prelude::*;

    /// One identifier of one stored event.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_identifier_index")]
    pub struct Model {
        /// The identifier's number in `capture_identifiers`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub identifier: i64,
        /// [`super::Role`] code.
        #[sea_orm(primary_key, auto_increment = false)]
        pub role: i16,
        /// The event's store sequence.
        #[sea_orm(primary_key, auto_increment = false)]
        pub sequence: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// What an indexed identifier is to its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An object in epcList or childEPCs.
    Epc = 1,
    /// parentID.
    Parent = 2,
    /// epcClass of quantityList or childQuantityList.
    Class = 3,
    /// A bizTransaction identifier.
    BizTransaction = 4,
    /// An object in inputEPCList.
    InputEpc = 5,
    /// epcClass of inputQuantityList.
    InputClass = 6,
    /// An object in outputEPCList.
    OutputEpc = 7,
    /// epcClass of outputQuantityList.
    OutputClass = 8,
    /// A sourceList party or location.
    Source = 9,
    /// A destinationList party or location.
    Destination = 10,
}

impl Role {
    /// Every role naming an object instance.
    pub const OBJECTS: [Role; 3] = [Role::Epc, Role::InputEpc, Role::OutputEpc];
    /// Every role naming a class.
    pub const CLASSES: [Role; 3] = [Role::Class, Role::InputClass, Role::OutputClass];
}

/// The spelling used in the index and in queries.
pub fn canonical(identifier: &str) -> String {
    tracery_epcis::effects::node_id(identifier)
}

/// Every indexed identifier of `event`.
pub fn keys_of(event: &Event) -> Vec<(Role, String)> {
    let mut keys = Vec::new();
    let epcs = |keys: &mut Vec<(Role, String)>, role: Role, list: &[String]| {
        keys.extend(list.iter().map(|e| (role, canonical(e))));
    };
    let classes = |keys: &mut Vec<(Role, String)>, role: Role, list: &[QuantityElement]| {
        keys.extend(list.iter().map(|q| (role, canonical(&q.epc_class))));
    };
    let parent = |keys: &mut Vec<(Role, String)>, parent: &Option<String>| {
        keys.extend(parent.iter().map(|p| (Role::Parent, canonical(p))));
    };
    match &event.kind {
        EventKind::Object(e) => {
            epcs(&mut keys, Role::Epc, &e.epcs);
            classes(&mut keys, Role::Class, &e.quantities);
        }
        EventKind::Aggregation(e) => {
            parent(&mut keys, &e.parent_id);
            epcs(&mut keys, Role::Epc, &e.child_epcs);
            classes(&mut keys, Role::Class, &e.child_quantities);
        }
        EventKind::Association(e) => {
            parent(&mut keys, &e.parent_id);
            epcs(&mut keys, Role::Epc, &e.child_epcs);
            classes(&mut keys, Role::Class, &e.child_quantities);
        }
        EventKind::Transaction(e) => {
            parent(&mut keys, &e.parent_id);
            epcs(&mut keys, Role::Epc, &e.epcs);
            classes(&mut keys, Role::Class, &e.quantities);
        }
        EventKind::Transformation(e) => {
            epcs(&mut keys, Role::InputEpc, &e.input_epcs);
            classes(&mut keys, Role::InputClass, &e.input_quantities);
            epcs(&mut keys, Role::OutputEpc, &e.output_epcs);
            classes(&mut keys, Role::OutputClass, &e.output_quantities);
        }
    }
    keys.extend(
        event
            .sources
            .iter()
            .map(|s| (Role::Source, canonical(&s.id))),
    );
    keys.extend(
        event
            .destinations
            .iter()
            .map(|d| (Role::Destination, canonical(&d.id))),
    );
    keys.extend(
        event
            .biz_transactions
            .iter()
            .map(|t| (Role::BizTransaction, t.id.clone())),
    );
    keys.sort_by(|a, b| (a.0 as i16, &a.1).cmp(&(b.0 as i16, &b.1)));
    keys.dedup();
    keys
}

/// An identifier numbered `identifier` in `role`, as PostgreSQL's `capture_events.identifiers`
/// holds it (roles fit in four bits).
pub fn code(identifier: i64, role: Role) -> i64 {
    identifier * 16 + role as i64
}

/// The index rows `(sequence, role, value)` of the event stored at `sequence`.
pub fn rows(sequence: i64, event: &Event) -> impl Iterator<Item = (i64, Role, String)> {
    keys_of(event)
        .into_iter()
        .map(move |(role, value)| (sequence, role, value))
}

/// Writes index rows into the layout before `m0012` (its migrations before it).
pub async fn insert_legacy_rows(
    conn: &impl ConnectionTrait,
    rows: Vec<(i64, Role, String)>,
) -> Result<(), DbErr> {
    for chunk in rows.chunks(CHUNK) {
        let models = chunk
            .iter()
            .map(|(sequence, role, value)| legacy_key::ActiveModel {
                sequence: Set(*sequence),
                role: Set(*role as i16),
                value: Set(value.clone()),
                ..Default::default()
            });
        legacy_key::Entity::insert_many(models)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Rows per statement: well inside SQLite's bound-parameter limit.
const CHUNK: usize = 1_000;

/// The numbers of `values`, numbering the ones not stored yet. Appenders are serialised,
/// so no two number the same identifier; the conflict clause keeps a rerun harmless.
pub async fn intern(
    conn: &impl ConnectionTrait,
    values: &[&str],
) -> Result<HashMap<String, i64>, DbErr> {
    let mut numbers = HashMap::with_capacity(values.len());
    for chunk in values.chunks(CHUNK) {
        let new = chunk.iter().map(|value| identifier::ActiveModel {
            value: Set((*value).to_owned()),
            ..Default::default()
        });
        identifier::Entity::insert_many(new)
            .on_conflict_do_nothing_on([identifier::Column::Value])
            .exec_without_returning(conn)
            .await?;
        numbers.extend(numbers_of(conn, chunk).await?);
    }
    Ok(numbers)
}

/// The numbers of those of `values` that are stored.
pub async fn numbers_of(
    conn: &impl ConnectionTrait,
    values: &[&str],
) -> Result<Vec<(String, i64)>, DbErr> {
    let rows: Vec<(i64, String)> = identifier::Entity::find()
        .select_only()
        .column(identifier::Column::Id)
        .column(identifier::Column::Value)
        .filter(identifier::Column::Value.is_in(values.iter().copied()))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|(id, value)| (value, id)).collect())
}

/// Writes index rows `(sequence, role, identifier)`, numbering new identifiers.
pub async fn insert_rows(
    conn: &impl ConnectionTrait,
    rows: Vec<(i64, Role, String)>,
) -> Result<(), DbErr> {
    let mut values: Vec<&str> = rows.iter().map(|row| row.2.as_str()).collect();
    values.sort_unstable();
    values.dedup();
    let numbers = intern(conn, &values).await?;
    let numbered: Vec<index_row::ActiveModel> = rows
        .iter()
        .filter_map(|(sequence, role, value)| {
            Some(index_row::ActiveModel {
                identifier: Set(*numbers.get(value)?),
                role: Set(*role as i16),
                sequence: Set(*sequence),
            })
        })
        .collect();
    let mut numbered = numbered.into_iter().peekable();
    while numbered.peek().is_some() {
        index_row::Entity::insert_many(numbered.by_ref().take(CHUNK))
            .on_conflict_do_nothing()
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// The condition on stored events that they have an identifier in one of `roles` matching
/// one of `patterns`.
///
/// A pattern is an identifier (any spelling of a GS1 identifier matches its canonical
/// form), a GTIN-level pattern (`urn:epc:idpat:sgtin:CP.REF.*` or a Digital Link with only
/// a GTIN) that matches every serial of the GTIN — and, for classes, every lot — or any
/// other value ending in `*`, matched as a prefix.
pub fn matching(
    backend: sea_orm::DatabaseBackend,
    patterns: &[String],
    roles: &[Role],
) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::{Condition, QueryTrait};

    use identifier::Column::Value;
    let mut any = Condition::any();
    for pattern in patterns {
        let canonical = canonical(pattern);
        let gtin_level =
            canonical.starts_with("https://id.gs1.org/01/") && canonical.matches('/').count() == 4;
        any = if gtin_level {
            any.add(Value.eq(canonical.clone()))
                .add(Value.starts_with(format!("{canonical}/")))
        } else if let Some(prefix) = pattern.strip_suffix('*') {
            any.add(Value.starts_with(prefix))
        } else {
            any.add(Value.eq(canonical))
        };
    }
    let identifiers = identifier::Entity::find()
        .select_only()
        .column(identifier::Column::Id)
        .filter(any)
        .into_query();
    match backend {
        sea_orm::DatabaseBackend::Postgres => with_codes(roles, identifiers),
        backend => super::event::Column::Sequence.in_subquery(naming(backend, roles, identifiers)),
    }
}

/// PostgreSQL: the events whose `identifiers` column holds the code of an identifier that
/// `identifiers` selects in one of `roles` (see [`code`]), which its GIN index answers.
fn with_codes(
    roles: &[Role],
    identifiers: sea_orm::sea_query::SelectStatement,
) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::sea_query::{Expr, PostgresQueryBuilder};
    let (numbers, values) = identifiers.build(PostgresQueryBuilder);
    let roles: Vec<String> = roles
        .iter()
        .map(|role| (*role as i16).to_string())
        .collect();
    // The first test is the indexed one (by identifier, whatever the role); the second
    // keeps the roles asked for among the events it finds.
    Expr::cust_with_values(
        format!(
            "capture_identifier_ids(\"capture_events\".\"identifiers\") \
               && ARRAY(SELECT i.\"id\" FROM ({numbers}) AS i) \
             AND \"capture_events\".\"identifiers\" && ARRAY(SELECT i.\"id\" * 16 + r.role \
               FROM ({numbers}) AS i CROSS JOIN unnest('{{{}}}'::smallint[]) AS r(role))",
            roles.join(",")
        ),
        values.0,
    )
}

/// The sequences of events naming, in one of `roles`, an identifier `identifiers` selects.
pub fn naming(
    backend: sea_orm::DatabaseBackend,
    roles: &[Role],
    identifiers: sea_orm::sea_query::SelectStatement,
) -> sea_orm::sea_query::SelectStatement {
    use sea_orm::QueryTrait;
    use sea_orm::sea_query::Query;
    match backend {
        sea_orm::DatabaseBackend::Postgres => Query::select()
            .column(super::event::Column::Sequence)
            .from(super::event::Entity)
            .and_where(with_codes(roles, identifiers))
            .to_owned(),
        _ => index_row::Entity::find()
            .select_only()
            .column(index_row::Column::Sequence)
            .filter(index_row::Column::Identifier.in_subquery(identifiers))
            .filter(index_row::Column::Role.is_in(roles.iter().map(|r| *r as i16)))
            .into_query(),
    }
}

/// Up to `limit` identifiers after `after`, in order, that some stored event names as an
/// object (in an EPC list, as a parent, or as a transformation's input or output): the
/// EPCs of `GET /epcs`, without the classes, parties and transactions also numbered here.
pub async fn objects_page(
    conn: &impl ConnectionTrait,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    use sea_orm::{DatabaseBackend, Statement};
    let roles = [Role::Epc, Role::Parent, Role::InputEpc, Role::OutputEpc];
    let backend = conn.get_database_backend();
    let named_as_object = match backend {
        DatabaseBackend::Postgres => {
            let codes: Vec<String> = roles
                .iter()
                .map(|role| format!("i.id * 16 + {}", *role as i16))
                .collect();
            format!(
                "SELECT 1 FROM capture_events e \
                 WHERE capture_identifier_ids(e.identifiers) && ARRAY[i.id] \
                 AND e.identifiers && ARRAY[{}]",
                codes.join(", ")
            )
        }
        _ => {
            let codes: Vec<String> = roles.iter().map(|r| (*r as i16).to_string()).collect();
            format!(
                "SELECT 1 FROM capture_identifier_index x \
                 WHERE x.identifier = i.id AND x.role IN ({})",
                codes.join(", ")
            )
        }
    };
    let (after_placeholder, limit_placeholder) = match backend {
        DatabaseBackend::Postgres => ("$1", "$2"),
        _ => ("?", "?"),
    };
    let sql = format!(
        "SELECT i.value AS value FROM capture_identifiers i \
         WHERE i.value > {after_placeholder} AND EXISTS ({named_as_object}) \
         ORDER BY i.value LIMIT {limit_placeholder}"
    );
    let statement = Statement::from_sql_and_values(
        backend,
        sql,
        [
            after.unwrap_or_default().into(),
            i64::try_from(limit).unwrap_or(i64::MAX).into(),
        ],
    );
    conn.query_all_raw(statement)
        .await?
        .iter()
        .map(|row| row.try_get("", "value"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transformation_sides_and_sources_have_their_own_roles() {
        let event = tracery_epcis::json::parse_event(serde_json::json!({
            "type": "TransformationEvent",
            "eventTime": "2026-01-01T00:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "inputQuantityList": [
                {"epcClass": "urn:epc:class:lgtin:4012345.000001.S1", "quantity": 3}
            ],
            "outputEPCList": ["urn:epc:id:sgtin:4012345.000004.7"],
            "sourceList": [
                {"type": "urn:epcglobal:cbv:sdt:owning_party", "source": "urn:epc:id:pgln:4012345.10001"}
            ]
        }))
        .expect("a valid event");
        let roles: Vec<(Role, String)> = keys_of(&event);
        assert_eq!(
            roles,
            vec![
                (
                    Role::InputClass,
                    canonical("urn:epc:class:lgtin:4012345.000001.S1")
                ),
                (
                    Role::OutputEpc,
                    canonical("urn:epc:id:sgtin:4012345.000004.7")
                ),
                (Role::Source, canonical("urn:epc:id:pgln:4012345.10001")),
            ]
        );
    }
}
