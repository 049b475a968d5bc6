//! Applying runs of events to the projection tables, and forgetting one (error
//! declarations).

use std::collections::{HashMap, HashSet, hash_map::Entry};

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QuerySelect, Statement, Value,
    sea_query::{ArrayType, Condition, Expr},
};
use tracery_epcis::Event;

use super::{
    read::probe_keys,
    tables::{
        KEY_PROBES, bigint_array, event, history, history_in_events, link, node, sensor_reading,
        unpack,
    },
};
use crate::{
    errors::GenealogyError,
    facts::{Facts, LinkKind, NewLink, Unpack},
};

const CHUNK: usize = 500;

/// The ids of `uris`, adding the ones not seen before. A node is found by its key (a
/// unique index, so PostgreSQL's planner takes it even before the table has statistics) and
/// matched on the URI; where another URI holds a URI's key it takes its next one
/// ([`key_of`](super::tables::key_of)). The projection's single writer (see
/// [`ProjectionStore::apply_batch`](super::ProjectionStore::apply_batch)) makes the
/// look-then-insert safe.
async fn intern(
    txn: &DatabaseTransaction,
    mut unique: Vec<&str>,
) -> Result<HashMap<String, i64>, GenealogyError> {
    unique.sort_unstable();
    unique.dedup();
    let mut ids = HashMap::with_capacity(unique.len());
    for chunk in unique.chunks(CHUNK) {
        let mut pending = chunk.to_vec();
        for probe in 0..KEY_PROBES {
            pending = intern_at(txn, probe, pending, &mut ids).await?;
        }
        if let Some(uri) = pending.first() {
            return Err(GenealogyError::Store(DbErr::Custom(format!(
                "genealogy node {uri}: other URIs hold all its {KEY_PROBES} keys"
            ))));
        }
    }
    Ok(ids)
}

/// Finds or adds `uris` at their `probe`th key, into `ids`; returns those whose key another
/// URI holds, for the next probe.
async fn intern_at<'u>(
    txn: &DatabaseTransaction,
    probe: u8,
    uris: Vec<&'u str>,
    ids: &mut HashMap<String, i64>,
) -> Result<Vec<&'u str>, GenealogyError> {
    if uris.is_empty() {
        return Ok(uris);
    }
    let probed = probe_keys(txn, &uris, probe).await?;
    remember_found(ids, &probed.found);
    let mut taken = probed.held;
    // Two new URIs sharing a key: the first takes it, the other the next probe's.
    let mut added: HashMap<i64, &str> = HashMap::new();
    for (uri, key) in probed.free {
        match added.entry(key) {
            Entry::Occupied(_) => taken.push(uri),
            Entry::Vacant(slot) => drop(slot.insert(uri)),
        }
    }
    if added.is_empty() {
        return Ok(taken);
    }
    node::Entity::insert_many(added.iter().map(|(key, uri)| node::ActiveModel {
        uri: Set((*uri).to_owned()),
        key: Set(*key),
        ..Default::default()
    }))
    .exec_without_returning(txn)
    .await?;
    let inserted: Vec<&str> = added.into_values().collect();
    let probed = probe_keys(txn, &inserted, probe).await?;
    remember_found(ids, &probed.found);
    Ok(taken)
}

/// Adds the URIs a probe found, with their ids, to `ids`.
fn remember_found(ids: &mut HashMap<String, i64>, found: &[(&str, i64)]) {
    ids.extend(found.iter().map(|(uri, id)| ((*uri).to_owned(), *id)));
}

/// Records a run of events, in sequence order, with one statement per table (per chunk of
/// rows) for the whole run: their attributes, the nodes they touched, the links they make
/// and the containment they open, confirm and end. Containment is worked out in memory
/// from the open links of the nodes the run packs or unpacks, read once, so a run of
/// packing events costs no more statements than one.
pub(super) async fn record_run(
    txn: &DatabaseTransaction,
    run: &[(i64, String, &Event, Facts)],
) -> Result<(), GenealogyError> {
    if run.is_empty() {
        return Ok(());
    }
    let mut named: Vec<&str> = Vec::new();
    for (_, _, event, facts) in run {
        named.extend(uris(facts).map(String::as_str));
        named.extend(terms(event));
        named.extend(facts.custodian.as_deref());
        named.extend(facts.production_order.as_deref());
    }
    let ids = intern(txn, named).await?;
    let id = |uri: &String| node(&ids, uri);
    let mut events = Vec::with_capacity(run.len());
    let mut history = Vec::new();
    for (sequence, event_id, event, facts) in run {
        let mut row = event_row(*sequence, event_id, event, facts, &ids)?;
        let touched = touched_ids(facts, &ids)?;
        if history_in_events(txn.get_database_backend()) {
            row.touched = Set(touched);
        } else {
            history.extend(touched.into_iter().map(|node| history::ActiveModel {
                node: Set(node),
                sequence: Set(*sequence),
            }));
        }
        events.push(row);
    }
    for chunk in events.chunks(CHUNK) {
        event::Entity::insert_many(chunk.to_vec())
            .on_conflict_do_nothing_on([event::Column::Sequence])
            .exec_without_returning(txn)
            .await?;
    }
    let mut links = Vec::new();
    for (sequence, _, _, facts) in run {
        for new in facts
            .links
            .iter()
            .filter(|l| l.kind != LinkKind::ContainedIn)
        {
            links.push(new_link(id(&new.from)?, id(&new.to)?, new, *sequence));
        }
    }
    for chunk in history.chunks(CHUNK) {
        history::Entity::insert_many(chunk.to_vec())
            .on_conflict_do_nothing_on([history::Column::Node, history::Column::Sequence])
            .exec_without_returning(txn)
            .await?;
    }
    insert_links(txn, links).await?;
    insert_sensor_readings(txn, run).await?;
    super::trend_rows::record(txn, run, &ids).await?;
    super::unit_profiles::record(txn, run, &ids).await?;
    if run.iter().any(|(_, _, _, facts)| moves_containment(facts)) {
        let mut containment = OpenContainment::load(txn, run, &id).await?;
        for (sequence, _, _, facts) in run {
            containment.apply(*sequence, facts, &id)?;
        }
        containment.write(txn).await?;
    }
    Ok(())
}

/// The sensor readings of a run's events; a replayed event's are kept as they are.
async fn insert_sensor_readings(
    txn: &DatabaseTransaction,
    run: &[(i64, String, &Event, Facts)],
) -> Result<(), GenealogyError> {
    let rows: Vec<sensor_reading::ActiveModel> = run
        .iter()
        .flat_map(|(sequence, _, _, facts)| {
            facts
                .sensor_readings
                .iter()
                .zip(0..)
                .map(|(reading, ordinal)| sensor_reading::ActiveModel {
                    sequence: Set(*sequence),
                    ordinal: Set(ordinal),
                    kind: Set(reading.kind.clone()),
                    uom: Set(reading.uom.clone()),
                    value: Set(reading.value),
                    min_value: Set(reading.min_value),
                    max_value: Set(reading.max_value),
                    exception: Set(reading.exception.clone()),
                })
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        sensor_reading::Entity::insert_many(chunk.to_vec())
            .on_conflict_do_nothing_on([
                sensor_reading::Column::Sequence,
                sensor_reading::Column::Ordinal,
            ])
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Every node `facts` name.
fn uris(facts: &Facts) -> impl Iterator<Item = &String> {
    let unpacked = facts.unpacks.iter().flat_map(|unpack| match unpack {
        Unpack::All { parent } => std::slice::from_ref(parent).iter().chain(&[]),
        Unpack::Children { parent, children } => {
            std::slice::from_ref(parent).iter().chain(children)
        }
    });
    facts
        .touched
        .iter()
        .chain(facts.links.iter().flat_map(|l| [&l.from, &l.to]))
        .chain(&facts.repacked)
        .chain(&facts.confirms)
        .chain(unpacked)
}

/// The vocabulary an event's row names ([`event_row`]).
fn terms(event: &Event) -> impl Iterator<Item = &str> {
    let located = [&event.read_point, &event.biz_location]
        .into_iter()
        .flatten()
        .map(|location| location.id.as_str());
    [event.kind.type_name()]
        .into_iter()
        .chain(event.kind.action().map(|a| a.as_str()))
        .chain(event.biz_step.as_deref())
        .chain(event.disposition.as_deref())
        .chain(located)
}

/// The id of the interned `uri`.
pub(super) fn node(ids: &HashMap<String, i64>, uri: &str) -> Result<i64, GenealogyError> {
    ids.get(uri).copied().ok_or_else(|| {
        GenealogyError::Store(DbErr::RecordNotFound(format!("genealogy node {uri}")))
    })
}

/// Whether `facts` open, confirm or end containment.
fn moves_containment(facts: &Facts) -> bool {
    !facts.repacked.is_empty()
        || !facts.unpacks.is_empty()
        || facts.links.iter().any(|l| l.kind == LinkKind::ContainedIn)
}

fn new_link(from: i64, to: i64, new: &NewLink, sequence: i64) -> link::ActiveModel {
    link::ActiveModel {
        from_node: Set(from),
        to_node: Set(to),
        kind: Set(new.kind.code()),
        sequence: Set(sequence),
        end_sequence: Set(None),
        quantity: Set(new.quantity),
        uom: Set(new.uom.clone()),
        ..Default::default()
    }
}

async fn insert_links(
    txn: &DatabaseTransaction,
    links: Vec<link::ActiveModel>,
) -> Result<(), GenealogyError> {
    for chunk in links.chunks(CHUNK) {
        link::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Where an open containment link is: stored before the run, or made by it.
#[derive(Debug, Clone, Copy)]
enum Open {
    Stored(i64),
    New(usize),
}

/// The open containment of the nodes a run packs or unpacks, as its events change it.
#[derive(Default)]
struct OpenContainment {
    /// Child → its parent and its open link.
    parent_of: HashMap<i64, (i64, Open)>,
    /// Parent → the children open in it.
    children_of: HashMap<i64, HashSet<i64>>,
    /// Stored links the run ends: the child, the link and the sequence that ends it.
    ended: Vec<(i64, i64, i64)>,
    /// Links the run makes, ended or not.
    made: Vec<link::ActiveModel>,
    /// The unpacks, for rebuilding after an error declaration: child, parent, sequence.
    unpacks: Vec<(i64, i64, i64)>,
}

impl OpenContainment {
    /// The open links of every child the run packs or unpacks, and into every parent it
    /// empties.
    async fn load(
        txn: &DatabaseTransaction,
        run: &[(i64, String, &Event, Facts)],
        id: &impl Fn(&String) -> Result<i64, GenealogyError>,
    ) -> Result<Self, GenealogyError> {
        let (mut children, mut emptied) = (Vec::new(), Vec::new());
        for (_, _, _, facts) in run {
            for child in &facts.repacked {
                children.push(id(child)?);
            }
            for unpack in &facts.unpacks {
                match unpack {
                    Unpack::All { parent } => emptied.push(id(parent)?),
                    Unpack::Children { children: some, .. } => {
                        for child in some {
                            children.push(id(child)?);
                        }
                    }
                }
            }
        }
        let mut state = Self::default();
        for (column, nodes) in [
            (link::Column::FromNode, children),
            (link::Column::ToNode, emptied),
        ] {
            for chunk in nodes.chunks(CHUNK) {
                let open = link::Entity::find()
                    .filter(link::Column::Kind.eq(LinkKind::ContainedIn.code()))
                    .filter(link::Column::EndSequence.is_null())
                    .filter(column.is_in(chunk.iter().copied()))
                    .all(txn)
                    .await?;
                for stored in open {
                    state.open(stored.from_node, stored.to_node, Open::Stored(stored.id));
                }
            }
        }
        Ok(state)
    }

    fn open(&mut self, child: i64, parent: i64, at: Open) {
        self.parent_of.insert(child, (parent, at));
        self.children_of.entry(parent).or_default().insert(child);
    }

    /// Ends `child`'s open link at `sequence` (only when it is in `parent`, if given).
    fn close(&mut self, child: i64, parent: Option<i64>, sequence: i64) {
        let Some(&(open_parent, at)) = self.parent_of.get(&child) else {
            return;
        };
        if parent.is_some_and(|parent| parent != open_parent) {
            return;
        }
        self.parent_of.remove(&child);
        if let Some(children) = self.children_of.get_mut(&open_parent) {
            children.remove(&child);
        }
        match at {
            Open::Stored(link) => self.ended.push((child, link, sequence)),
            Open::New(index) => self.made[index].end_sequence = Set(Some(sequence)),
        }
    }

    /// What one event does to containment: a confirmation leaves the children already in
    /// its parent as they are; unpacking ends links (everything in a parent: what is in it
    /// before this event); packing moves children out of any other parent into this one.
    fn apply(
        &mut self,
        sequence: i64,
        facts: &Facts,
        id: &impl Fn(&String) -> Result<i64, GenealogyError>,
    ) -> Result<(), GenealogyError> {
        let confirmed = match &facts.confirms {
            Some(parent) => self
                .children_of
                .get(&id(parent)?)
                .cloned()
                .unwrap_or_default(),
            None => HashSet::new(),
        };
        let mut packed = Vec::new();
        for new in facts
            .links
            .iter()
            .filter(|l| l.kind == LinkKind::ContainedIn)
        {
            let (child, parent) = (id(&new.from)?, id(&new.to)?);
            if !confirmed.contains(&child) {
                packed.push((child, parent, new));
            }
        }
        let mut unpacked = Vec::new();
        for unpack in &facts.unpacks {
            match unpack {
                Unpack::All { parent } => {
                    let parent = id(parent)?;
                    let held = self.children_of.get(&parent).cloned().unwrap_or_default();
                    unpacked.extend(held.into_iter().map(|child| (child, parent)));
                }
                Unpack::Children { parent, children } => {
                    let parent = id(parent)?;
                    for child in children {
                        unpacked.push((id(child)?, parent));
                    }
                }
            }
        }
        for &(child, parent) in &unpacked {
            self.close(child, Some(parent), sequence);
        }
        for &(child, _, _) in &packed {
            self.close(child, None, sequence);
        }
        for (child, parent, new) in packed {
            self.open(child, parent, Open::New(self.made.len()));
            self.made.push(new_link(child, parent, new, sequence));
        }
        self.unpacks.extend(
            unpacked
                .into_iter()
                .map(|(child, parent)| (child, parent, sequence)),
        );
        Ok(())
    }

    /// Writes what the run did: one update per ending sequence, then the new links and the
    /// unpacks. A link is found from its child: ids are not indexed on PostgreSQL.
    async fn write(self, txn: &DatabaseTransaction) -> Result<(), GenealogyError> {
        let mut ended: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for (child, link, sequence) in self.ended {
            ended.entry(sequence).or_default().push((child, link));
        }
        for (sequence, links) in ended {
            for chunk in links.chunks(CHUNK) {
                link::Entity::update_many()
                    .col_expr(link::Column::EndSequence, Expr::value(sequence))
                    .filter(link::Column::FromNode.is_in(chunk.iter().map(|(child, _)| *child)))
                    .filter(link::Column::Kind.eq(LinkKind::ContainedIn.code()))
                    .filter(link::Column::Id.is_in(chunk.iter().map(|(_, link)| *link)))
                    .exec(txn)
                    .await?;
            }
        }
        insert_links(txn, self.made).await?;
        let unpacks: Vec<unpack::ActiveModel> = self
            .unpacks
            .into_iter()
            .map(|(child, parent, sequence)| unpack::ActiveModel {
                child: Set(child),
                parent: Set(parent),
                sequence: Set(sequence),
                ..Default::default()
            })
            .collect();
        for chunk in unpacks.chunks(CHUNK) {
            unpack::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(txn)
                .await?;
        }
        Ok(())
    }
}

/// The projection's row for one event, its strings as interned ids.
fn event_row(
    sequence: i64,
    event_id: &str,
    event: &Event,
    facts: &Facts,
    ids: &HashMap<String, i64>,
) -> Result<event::ActiveModel, GenealogyError> {
    let id = |uri: Option<&str>| uri.map(|uri| node(ids, uri)).transpose();
    Ok(event::ActiveModel {
        sequence: Set(sequence),
        event_id: Set(event_id.to_owned()),
        event_type: Set(node(ids, event.kind.type_name())?),
        event_time: Set(event.event_time.to_utc()),
        action: Set(id(event.kind.action().map(|a| a.as_str()))?),
        biz_step: Set(id(event.biz_step.as_deref())?),
        disposition: Set(id(event.disposition.as_deref())?),
        read_point: Set(id(event.read_point.as_ref().map(|l| l.id.as_str()))?),
        biz_location: Set(id(event.biz_location.as_ref().map(|l| l.id.as_str()))?),
        custodian: Set(id(facts.custodian.as_deref())?),
        production_order: Set(id(facts.production_order.as_deref())?),
        touched: NotSet,
    })
}

/// The ids of the nodes `facts` touched, ascending and once each.
fn touched_ids(facts: &Facts, ids: &HashMap<String, i64>) -> Result<Vec<i64>, GenealogyError> {
    let mut touched = facts
        .touched
        .iter()
        .map(|uri| node(ids, uri))
        .collect::<Result<Vec<_>, _>>()?;
    touched.sort_unstable();
    touched.dedup();
    Ok(touched)
}

/// An error declaration: the declared event stops counting. Its rows go, and the
/// containment of every child it packed or unpacked is rebuilt from the packs and unpacks
/// that remain, as if the event had never been captured.
pub(super) async fn forget(
    txn: &DatabaseTransaction,
    event_id: &str,
) -> Result<(), GenealogyError> {
    let sequences: Vec<i64> = event::Entity::find()
        .select_only()
        .column(event::Column::Sequence)
        .filter(event::Column::EventId.eq(event_id))
        .into_tuple()
        .all(txn)
        .await?;
    if sequences.is_empty() {
        return Ok(());
    }
    let touched = touched_by(txn, &sequences).await?;
    let made = MadeLinks::find(txn, &sequences, &touched).await?;
    // The children whose containment the event changed: those it packed (its links) or
    // unpacked; a child it moved out of another parent is one it packed.
    let mut affected = made.packed_children();
    affected.extend(
        unpack::Entity::find()
            .filter(unpack::Column::Sequence.is_in(sequences.clone()))
            .all(txn)
            .await?
            .into_iter()
            .map(|u| u.child),
    );
    affected.sort_unstable();
    affected.dedup();
    if !history_in_events(txn.get_database_backend()) {
        history::Entity::delete_many()
            .filter(history::Column::Sequence.is_in(sequences.clone()))
            .exec(txn)
            .await?;
    }
    made.delete(txn).await?;
    unpack::Entity::delete_many()
        .filter(unpack::Column::Sequence.is_in(sequences.clone()))
        .exec(txn)
        .await?;
    sensor_reading::Entity::delete_many()
        .filter(sensor_reading::Column::Sequence.is_in(sequences.clone()))
        .exec(txn)
        .await?;
    event::Entity::delete_many()
        .filter(event::Column::Sequence.is_in(sequences))
        .exec(txn)
        .await?;
    for child in affected {
        rebuild_containment(txn, child).await?;
    }
    super::unit_profiles::recompute(txn, &touched).await
}

/// The nodes the events at `sequences` touched: their history.
async fn touched_by(
    txn: &DatabaseTransaction,
    sequences: &[i64],
) -> Result<Vec<i64>, GenealogyError> {
    let sequences = sequences.iter().copied();
    if history_in_events(txn.get_database_backend()) {
        let arrays: Vec<Vec<i64>> = event::Entity::find()
            .select_only()
            .column(event::Column::Touched)
            .filter(event::Column::Sequence.is_in(sequences))
            .into_tuple()
            .all(txn)
            .await?;
        return Ok(arrays.concat());
    }
    Ok(history::Entity::find()
        .select_only()
        .column(history::Column::Node)
        .filter(history::Column::Sequence.is_in(sequences))
        .into_tuple()
        .all(txn)
        .await?)
}

/// The links some events made, found from the nodes the events touched: links are not
/// indexed by sequence, and each has an end its event touched ([`crate::facts::of`]).
struct MadeLinks {
    /// Each link's `from` end and kind.
    links: Vec<(i64, i16)>,
    rows: LinkRows,
}

/// Where found links are stored, to delete them.
enum LinkRows {
    /// SQLite: their ids.
    Ids(Vec<i64>),
    /// PostgreSQL: their `ctid`s, as the link id is not indexed there.
    Ctids(Vec<String>),
}

impl MadeLinks {
    async fn find(
        txn: &DatabaseTransaction,
        sequences: &[i64],
        touched: &[i64],
    ) -> Result<Self, GenealogyError> {
        if txn.get_database_backend() == DatabaseBackend::Postgres {
            return Ok(Self::probe(txn, sequences, touched).await?);
        }
        let ends = || touched.iter().copied();
        let made_by = Condition::all()
            .add(link::Column::Sequence.is_in(sequences.iter().copied()))
            .add(
                Condition::any()
                    .add(link::Column::FromNode.is_in(ends()))
                    .add(link::Column::ToNode.is_in(ends())),
            );
        let found = link::Entity::find().filter(made_by).all(txn).await?;
        Ok(Self {
            links: found.iter().map(|l| (l.from_node, l.kind)).collect(),
            rows: LinkRows::Ids(found.iter().map(|l| l.id).collect()),
        })
    }

    /// PostgreSQL: one index probe per touched node and end. As one `from_node IN (..) OR
    /// to_node IN (..)` the planner, without statistics, took each node for 0.5 % of the
    /// links and scanned all 51M of them at 10M events (1.5-2.6 s per declaration).
    async fn probe(
        txn: &DatabaseTransaction,
        sequences: &[i64],
        touched: &[i64],
    ) -> Result<Self, DbErr> {
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                r#"SELECT DISTINCT l.ctid::text AS "row", l.from_node, l.kind
                   FROM unnest($1::bigint[]) AS t(node) CROSS JOIN LATERAL (
                     SELECT ctid, from_node, kind FROM genealogy_links
                       WHERE from_node = t.node AND sequence = ANY($2::bigint[])
                     UNION ALL
                     SELECT ctid, from_node, kind FROM genealogy_links
                       WHERE to_node = t.node AND sequence = ANY($2::bigint[])
                     OFFSET 0) AS l"#,
                [bigint_array(touched), bigint_array(sequences)],
            ))
            .await?;
        let (mut links, mut ctids) = (Vec::new(), Vec::new());
        for row in rows {
            links.push((row.try_get("", "from_node")?, row.try_get("", "kind")?));
            ctids.push(row.try_get("", "row")?);
        }
        Ok(Self {
            links,
            rows: LinkRows::Ctids(ctids),
        })
    }

    /// The children these links packed.
    fn packed_children(&self) -> Vec<i64> {
        let contained = LinkKind::ContainedIn.code();
        self.links
            .iter()
            .filter(|(_, kind)| *kind == contained)
            .map(|(from, _)| *from)
            .collect()
    }

    async fn delete(self, txn: &DatabaseTransaction) -> Result<(), DbErr> {
        match self.rows {
            LinkRows::Ctids(ctids) if !ctids.is_empty() => {
                let ctids = Value::Array(
                    ArrayType::String,
                    Some(Box::new(ctids.into_iter().map(Value::from).collect())),
                );
                txn.execute_raw(Statement::from_sql_and_values(
                    DatabaseBackend::Postgres,
                    "DELETE FROM genealogy_links WHERE ctid = ANY($1::text[]::tid[])",
                    [ctids],
                ))
                .await?;
            }
            LinkRows::Ctids(_) => {}
            LinkRows::Ids(ids) => {
                for chunk in ids.chunks(CHUNK) {
                    link::Entity::delete_many()
                        .filter(link::Column::Id.is_in(chunk.iter().copied()))
                        .exec(txn)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

/// A change to a child's containment, for replaying: packed into a parent (its link, at
/// the link's sequence) or taken out of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Move {
    sequence: i64,
    /// Within one event unpacks come first, as [`OpenContainment::apply`] does them.
    packed: bool,
    parent: i64,
}

/// Replays the packs (its containment links) and unpacks of `child` in capture order into
/// its containment links.
async fn rebuild_containment(txn: &DatabaseTransaction, child: i64) -> Result<(), GenealogyError> {
    let mut moves: Vec<Move> = link::Entity::find()
        .filter(link::Column::FromNode.eq(child))
        .filter(link::Column::Kind.eq(LinkKind::ContainedIn.code()))
        .all(txn)
        .await?
        .into_iter()
        .map(|l| Move {
            sequence: l.sequence,
            packed: true,
            parent: l.to_node,
        })
        .collect();
    moves.extend(
        unpack::Entity::find()
            .filter(unpack::Column::Child.eq(child))
            .all(txn)
            .await?
            .into_iter()
            .map(|u| Move {
                sequence: u.sequence,
                packed: false,
                parent: u.parent,
            }),
    );
    moves.sort_unstable();
    link::Entity::delete_many()
        .filter(link::Column::FromNode.eq(child))
        .filter(link::Column::Kind.eq(LinkKind::ContainedIn.code()))
        .exec(txn)
        .await?;
    let mut links: Vec<link::ActiveModel> = Vec::new();
    // The open link: its index in `links` and its parent.
    let mut open: Option<(usize, i64)> = None;
    for step in moves {
        let ends_open = step.packed || open.is_some_and(|(_, parent)| parent == step.parent);
        if ends_open && let Some((index, _)) = open.take() {
            links[index].end_sequence = Set(Some(step.sequence));
        }
        if step.packed {
            open = Some((links.len(), step.parent));
            links.push(link::ActiveModel {
                from_node: Set(child),
                to_node: Set(step.parent),
                kind: Set(LinkKind::ContainedIn.code()),
                sequence: Set(step.sequence),
                end_sequence: Set(None),
                quantity: Set(None),
                uom: Set(None),
                ..Default::default()
            });
        }
    }
    for chunk in links.chunks(CHUNK) {
        link::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}
