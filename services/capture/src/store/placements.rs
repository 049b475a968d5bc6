//! Where each packed child is now: one row per child inside a parent, kept current in the
//! transaction that appends the aggregation events, so the packing rule reads a whole
//! batch's children with one query instead of walking each child's event history.
//!
//! The table is derived: replaying the stored aggregation events in sequence order gives
//! it back. Error declarations are the one case that rewrites history, so the children a
//! declared aggregation touched are replayed from their own events.

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
};
use tracery_epcis::{
    Event,
    effects::{Effects, Unpacking},
};

use super::{Projection, StoredEvent, bulk, decode_payload, event, keys};
use crate::domain::CaptureError;

/// The `capture_placements` table of the layout before `m0013`, which spelled identifiers
/// out; its migration still creates it.
pub mod legacy_placement {
    use sea_orm::entity::prelude::*;

    /// A child and the parent it is packed in.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_placements")]
    pub struct Model {
        /// The child, canonical.
        #[sea_orm(primary_key, auto_increment = false)]
        pub child: String,
        /// The parent, canonical.
        pub parent: String,
        /// The eventID of the aggregation that packed it.
        pub event_id: String,
        /// That event's store sequence.
        pub sequence: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `capture_child_placements` table: children and parents by their numbers in
/// `capture_identifiers` (see [`keys`]), the eventID read from the event at `sequence`.
pub mod placement {
    use sea_orm::entity::prelude::*;

    /// A child and the parent it is packed in.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_child_placements")]
    pub struct Model {
        /// The child's number.
        #[sea_orm(primary_key, auto_increment = false)]
        pub child: i64,
        /// The parent's number.
        pub parent: i64,
        /// The store sequence of the aggregation that packed it.
        pub sequence: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Where a child is: its parent and the eventID and sequence that put it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub parent: String,
    pub event_id: String,
    pub sequence: i64,
}

/// Rows per lookup or upsert statement: well inside SQLite's bound-parameter limit.
const CHUNK: usize = 1_000;

/// The children among `children` (canonical) that are packed, with their placement.
pub async fn placements_of(
    conn: &impl ConnectionTrait,
    children: &[String],
) -> Result<HashMap<String, Placement>, DbErr> {
    let backend = conn.get_database_backend();
    let mut found = HashMap::new();
    for chunk in children.chunks(CHUNK) {
        let marks: Vec<String> = (1..=chunk.len())
            .map(|n| match backend {
                sea_orm::DatabaseBackend::Postgres => format!("${n}"),
                _ => "?".to_owned(),
            })
            .collect();
        let sql = format!(
            "SELECT c.value AS child, p.value AS parent, \
             COALESCE(e.event_id, '') AS event_id, \
             pl.sequence AS sequence FROM capture_identifiers c \
             JOIN capture_child_placements pl ON pl.child = c.id \
             JOIN capture_identifiers p ON p.id = pl.parent \
             LEFT JOIN capture_events e ON e.sequence = pl.sequence \
             WHERE c.value IN ({})",
            marks.join(", ")
        );
        let values = chunk.iter().map(|child| child.clone().into());
        let statement = sea_orm::Statement::from_sql_and_values(backend, sql, values);
        for row in conn.query_all_raw(statement).await? {
            found.insert(
                row.try_get("", "child")?,
                Placement {
                    parent: row.try_get("", "parent")?,
                    event_id: row.try_get("", "event_id")?,
                    sequence: row.try_get("", "sequence")?,
                },
            );
        }
    }
    Ok(found)
}

/// What a replay knows of one child.
#[derive(Debug, Clone)]
enum Place {
    Packed(Placement),
    /// Taken out of this parent: the stored row goes if it still names that parent.
    Unpacked {
        from: String,
    },
    /// In no parent, as a replay of all the child's events says: the stored row goes.
    Nowhere,
}

/// Children's placements as a replay of aggregation events leaves them. Starts from
/// nothing, so the caller replays every event that matters.
#[derive(Debug, Default)]
pub struct Replay {
    placed: HashMap<String, Place>,
    /// Parents emptied by a DELETE without children, for the rows not replayed here.
    emptied: HashSet<String>,
}

impl Replay {
    /// The numbers of every identifier this replay names. Each is in the identifier index
    /// of an event stored before or in this transaction, so each has one.
    async fn numbers(&self, conn: &impl ConnectionTrait) -> Result<HashMap<String, i64>, DbErr> {
        let mut values: HashSet<&str> = self.emptied.iter().map(String::as_str).collect();
        for (child, place) in &self.placed {
            values.insert(child);
            match place {
                Place::Packed(p) => values.insert(&p.parent),
                Place::Unpacked { from } => values.insert(from),
                Place::Nowhere => false,
            };
        }
        let values: Vec<&str> = values.into_iter().collect();
        let mut numbers = HashMap::with_capacity(values.len());
        for chunk in values.chunks(CHUNK) {
            numbers.extend(keys::numbers_of(conn, chunk).await?);
        }
        Ok(numbers)
    }

    /// Applies one event's packing and unpacking ([`Event::effects`]).
    pub fn apply(&mut self, sequence: i64, event: &Event) {
        self.apply_effects(sequence, event, &event.effects());
    }

    /// Replays `events` (any order) without the declared ones and the declarations.
    fn replay_counted(events: &mut [StoredEvent]) -> Self {
        let mut replay = Self::default();
        for stored in super::undeclared(events) {
            replay.apply(stored.sequence, &stored.event);
        }
        replay
    }
}

impl Projection for Replay {
    /// [`Replay::apply`] with the event's effects computed already.
    fn apply_effects(&mut self, sequence: i64, event: &Event, effects: &Effects) {
        match &effects.unpacking {
            Some(Unpacking::Everything { parent }) => {
                for place in self.placed.values_mut() {
                    if matches!(place, Place::Packed(p) if p.parent == *parent) {
                        *place = Place::Unpacked {
                            from: parent.clone(),
                        };
                    }
                }
                self.emptied.insert(parent.clone());
            }
            Some(Unpacking::Children { parent, children }) => {
                for child in children {
                    let place = self.placed.entry(child.clone()).or_insert(Place::Unpacked {
                        from: parent.clone(),
                    });
                    if matches!(place, Place::Packed(p) if p.parent == *parent) {
                        *place = Place::Unpacked {
                            from: parent.clone(),
                        };
                    }
                }
            }
            None => {}
        }
        if let Some(packing) = &effects.packing {
            let placement = Placement {
                parent: packing.parent.clone(),
                event_id: event.event_id.clone().unwrap_or_default(),
                sequence,
            };
            for child in &packing.children {
                self.placed
                    .insert(child.node.clone(), Place::Packed(placement.clone()));
            }
        }
    }

    /// Writes the outcome over the table: parents emptied first, then each child's place.
    async fn write(self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        let numbers = self.numbers(conn).await?;
        let number = |value: &String| numbers.get(value).copied();
        let emptied: Vec<i64> = self.emptied.iter().filter_map(number).collect();
        if !emptied.is_empty() {
            placement::Entity::delete_many()
                .filter(placement::Column::Parent.is_in(emptied))
                .exec(conn)
                .await?;
        }
        let mut unpacked: HashMap<i64, Vec<i64>> = HashMap::new();
        let mut rows: Vec<placement::ActiveModel> = Vec::new();
        let mut nowhere: Vec<i64> = Vec::new();
        for (child, place) in &self.placed {
            let Some(child) = number(child) else {
                continue;
            };
            match place {
                Place::Packed(p) => {
                    rows.extend(number(&p.parent).map(|parent| placement::ActiveModel {
                        child: Set(child),
                        parent: Set(parent),
                        sequence: Set(p.sequence),
                    }))
                }
                Place::Unpacked { from } => {
                    if let Some(from) = number(from) {
                        unpacked.entry(from).or_default().push(child);
                    }
                }
                Place::Nowhere => nowhere.push(child),
            }
        }
        for chunk in nowhere.chunks(CHUNK) {
            placement::Entity::delete_many()
                .filter(placement::Column::Child.is_in(chunk.iter().copied()))
                .exec(conn)
                .await?;
        }
        for (parent, children) in unpacked {
            for chunk in children.chunks(CHUNK) {
                placement::Entity::delete_many()
                    .filter(placement::Column::Parent.eq(parent))
                    .filter(placement::Column::Child.is_in(chunk.iter().copied()))
                    .exec(conn)
                    .await?;
            }
        }
        bulk::upsert(
            conn,
            rows,
            placement::Column::Child,
            &[placement::Column::Parent, placement::Column::Sequence],
        )
        .await
    }

    /// The children whose placement a declared event decided are replayed from their own
    /// events.
    async fn redo_declared(
        conn: &impl ConnectionTrait,
        declarations: &[&Event],
    ) -> Result<(), CaptureError> {
        let children = affected_children(conn, declarations).await?;
        if children.is_empty() {
            return Ok(());
        }
        replay_children(conn, children).await
    }
}

/// The children whose placement a declared event may have decided: those it packed or
/// unpacked, and for an emptying every child ever packed into its parent.
async fn affected_children(
    conn: &impl ConnectionTrait,
    declarations: &[&Event],
) -> Result<HashSet<String>, CaptureError> {
    let mut children = HashSet::new();
    let mut parents = Vec::new();
    for declaration in declarations {
        let effects = declaration.effects();
        if let Some(packing) = effects.packing {
            children.extend(packing.children.into_iter().map(|c| c.node));
        }
        match effects.unpacking {
            Some(Unpacking::Children { children: out, .. }) => children.extend(out),
            Some(Unpacking::Everything { parent }) => parents.push(parent),
            None => {}
        }
    }
    let packings = sequences_naming(conn, &[keys::Role::Parent], &parents).await?;
    for stored in events_at(conn, &packings).await? {
        if let Some(packing) = stored.event.effects().packing {
            children.extend(packing.children.into_iter().map(|c| c.node));
        }
    }
    Ok(children)
}

/// Whether the event packs or unpacks anything.
fn moves_containment(stored: &StoredEvent) -> bool {
    let effects = stored.event.effects();
    effects.packing.is_some() || effects.unpacking.is_some()
}

/// Replays `children` from their own aggregation events and the emptyings of every parent
/// they were packed into, and writes where they end up.
async fn replay_children(
    conn: &impl ConnectionTrait,
    children: HashSet<String>,
) -> Result<(), CaptureError> {
    let children: Vec<String> = children.into_iter().collect();
    let mut events = events_at(
        conn,
        &sequences_naming(conn, &[keys::Role::Epc], &children).await?,
    )
    .await?;
    events.retain(moves_containment);
    let mut parents: Vec<String> = events
        .iter()
        .filter_map(|stored| stored.event.effects().packing.map(|p| p.parent))
        .collect();
    parents.sort();
    parents.dedup();
    let known: HashSet<i64> = events.iter().map(|stored| stored.sequence).collect();
    let emptyings: Vec<i64> = sequences_naming(conn, &[keys::Role::Parent], &parents)
        .await?
        .into_iter()
        .filter(|sequence| !known.contains(sequence))
        .collect();
    events.extend(
        events_at(conn, &emptyings)
            .await?
            .into_iter()
            .filter(|stored| {
                matches!(
                    stored.event.effects().unpacking,
                    Some(Unpacking::Everything { .. })
                )
            }),
    );
    let mut replay = Replay::replay_counted(&mut events);
    // Only the asked children are rewritten; parents are not emptied wholesale. Their
    // whole history was replayed, so a child not packed at the end is in no parent.
    replay.emptied.clear();
    replay.placed.retain(|child, _| children.contains(child));
    for place in replay.placed.values_mut() {
        if matches!(place, Place::Unpacked { .. }) {
            *place = Place::Nowhere;
        }
    }
    for child in &children {
        replay.placed.entry(child.clone()).or_insert(Place::Nowhere);
    }
    replay.write(conn).await?;
    Ok(())
}

/// The sequences of events naming one of `values` in one of `roles`.
pub(super) async fn sequences_naming(
    conn: &impl ConnectionTrait,
    roles: &[keys::Role],
    values: &[String],
) -> Result<Vec<i64>, DbErr> {
    use sea_orm::QueryTrait as _;
    let mut sequences = Vec::new();
    for chunk in values.chunks(CHUNK) {
        let identifiers = keys::identifier::Entity::find()
            .select_only()
            .column(keys::identifier::Column::Id)
            .filter(keys::identifier::Column::Value.is_in(chunk.iter().cloned()))
            .into_query();
        let backend = conn.get_database_backend();
        let statement = backend.build(&keys::naming(backend, roles, identifiers));
        for row in conn.query_all_raw(statement).await? {
            sequences.push(row.try_get::<i64>("", "sequence")?);
        }
    }
    sequences.sort_unstable();
    sequences.dedup();
    Ok(sequences)
}

/// The stored events at `sequences`.
pub(super) async fn events_at(
    conn: &impl ConnectionTrait,
    sequences: &[i64],
) -> Result<Vec<StoredEvent>, CaptureError> {
    let mut events = Vec::with_capacity(sequences.len());
    let payloads = super::payloads::Payloads::default();
    for chunk in sequences.chunks(CHUNK) {
        let rows: Vec<(i64, Vec<u8>)> = event::Entity::find()
            .select_only()
            .column(event::Column::Sequence)
            .column(event::Column::Payload)
            .filter(event::Column::Sequence.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(conn)
            .await?;
        for (sequence, payload) in rows {
            events.push(decode_payload(conn, &payloads, sequence, &payload).await?);
        }
    }
    Ok(events)
}

/// Fills the table from the stored aggregation events (for a store that predates it).
pub async fn rebuild(conn: &impl ConnectionTrait) -> Result<(), CaptureError> {
    let payloads = super::payloads::Payloads::default();
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let rows = super::payloads_after(conn, after, CHUNK as u64).await?;
        let Some(last) = rows.last().map(|r| r.0) else {
            break;
        };
        for (sequence, payload) in rows {
            let stored = decode_payload(conn, &payloads, sequence, &payload).await?;
            if matches!(stored.event.kind, tracery_epcis::EventKind::Aggregation(_)) {
                events.push(stored);
            }
        }
        after = last;
    }
    let mut replay = Replay::replay_counted(&mut events);
    replay.emptied.clear();
    replay.write(conn).await?;
    Ok(())
}
