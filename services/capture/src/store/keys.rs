//! The identifier index of stored events, for MATCH_epc, MATCH_anyEPC, MATCH_epcClass and
//! EQ_bizTransaction: one row per (event, role, identifier), identifiers in their canonical
//! spelling so an EPC URN finds events that wrote the same object as a Digital Link.
//!
//! Transformation inputs and outputs, sources and destinations have roles of their own, so
//! the index alone tells which way an event moved material.

use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};
use tracery_epcis::{Event, EventKind, QuantityElement};

/// The `capture_event_keys` table.
pub mod key {
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

/// The index rows `(sequence, role, value)` of the event stored at `sequence`.
pub fn rows(sequence: i64, event: &Event) -> impl Iterator<Item = (i64, Role, String)> {
    keys_of(event)
        .into_iter()
        .map(move |(role, value)| (sequence, role, value))
}

/// Writes index rows with multi-row statements.
pub async fn insert_rows(
    conn: &impl ConnectionTrait,
    rows: Vec<(i64, Role, String)>,
) -> Result<(), DbErr> {
    for chunk in rows.chunks(1000) {
        let models = chunk
            .iter()
            .map(|(sequence, role, value)| key::ActiveModel {
                sequence: Set(*sequence),
                role: Set(*role as i16),
                value: Set(value.clone()),
                ..Default::default()
            });
        key::Entity::insert_many(models)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// The sequences of events with an identifier in one of `roles` matching one of `patterns`.
///
/// A pattern is an identifier (any spelling of a GS1 identifier matches its canonical
/// form), a GTIN-level pattern (`urn:epc:idpat:sgtin:CP.REF.*` or a Digital Link with only
/// a GTIN) that matches every serial of the GTIN — and, for classes, every lot — or any
/// other value ending in `*`, matched as a prefix.
pub fn matching(patterns: &[String], roles: &[Role]) -> sea_orm::sea_query::SelectStatement {
    use sea_orm::{ColumnTrait, Condition, QueryFilter, QuerySelect, QueryTrait};

    let mut any = Condition::any();
    for pattern in patterns {
        let canonical = canonical(pattern);
        let gtin_level =
            canonical.starts_with("https://id.gs1.org/01/") && canonical.matches('/').count() == 4;
        any = if gtin_level {
            any.add(key::Column::Value.eq(canonical.clone()))
                .add(key::Column::Value.starts_with(format!("{canonical}/")))
        } else if let Some(prefix) = pattern.strip_suffix('*') {
            any.add(key::Column::Value.starts_with(prefix))
        } else {
            any.add(key::Column::Value.eq(canonical))
        };
    }
    key::Entity::find()
        .select_only()
        .column(key::Column::Sequence)
        .filter(key::Column::Role.is_in(roles.iter().map(|r| *r as i16)))
        .filter(any)
        .into_query()
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
