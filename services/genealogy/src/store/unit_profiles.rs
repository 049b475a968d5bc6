//! Unit profiles: for each serialised unit, what its own history and its direct parents
//! hold (the stations it passed by hour, its production orders, its events with sensor
//! readings, the nodes it came from), kept by the projection in the transaction that
//! applies its events.
//!
//! Units of one product first seen in one hour with equal profiles hold the same
//! attributes in any common-cause analysis, whatever its shifts and sensor bounds, so
//! `genealogy_profile_counts` counts units per (product, hour, profile), and an analysis of
//! a product's good units reads one row per profile instead of each unit's history. What
//! lies beyond a unit's parents is not kept: the analysis walks it from the parents, which
//! are few, so a link made upstream later (a lot received after units were made from it)
//! changes no profile.
//!
//! A profile only grows while events are applied ([`record`]); an error declaration
//! recomputes the profiles of the units its event named from what remains
//! ([`recompute`]). Both go through [`Unit::step`] and [`Unit::parent`].

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QuerySelect, Statement, StatementBuilder, sea_query::OnConflict,
};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tracery_epcis::Event;

use super::{
    LinkEnd, ProjectionStore, read,
    tables::{node, profile_count, profile_signature, sensor_reading, unit_profile},
};
use crate::{
    errors::GenealogyError,
    facts::{Facts, LinkKind, unit_product},
    graph::{self, Direction},
    trends::hour_of,
};

const CHUNK: usize = 500;
/// Digests tried for one body before giving up (a clash of 64-bit digests takes the next).
const DIGEST_PROBES: i64 = 4;
/// `first_hour` of a unit no step has named yet (a link alone made its row).
pub const NO_STEP: i64 = i64::MAX;

/// What a unit's own history and direct parents hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// (station, start of the hour in Unix seconds) of each step with a read point.
    pub visits: BTreeSet<(i64, i64)>,
    pub orders: BTreeSet<i64>,
    /// The sequences of its events with sensor readings.
    pub sensed: BTreeSet<i64>,
    /// The nodes it came from, each with whether over `ReceivedFrom` (a supplier).
    pub parents: BTreeSet<(i64, bool)>,
}

type Body = (
    BTreeSet<(i64, i64)>,
    BTreeSet<i64>,
    BTreeSet<i64>,
    BTreeSet<(i64, bool)>,
);

impl Profile {
    fn body(&self) -> String {
        let body = (&self.visits, &self.orders, &self.sensed, &self.parents);
        serde_json::to_string(&body).unwrap_or_default()
    }

    fn from_body(body: &str) -> Result<Self, GenealogyError> {
        let body: Body = serde_json::from_str(body)
            .map_err(|err| DbErr::Custom(format!("unit profile `{body}`: {err}")))?;
        Ok(Self::from(body))
    }
}

impl From<Body> for Profile {
    fn from((visits, orders, sensed, parents): Body) -> Self {
        Self {
            visits,
            orders,
            sensed,
            parents,
        }
    }
}

/// A unit as its profile row has it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Unit {
    product: i64,
    first_hour: i64,
    profile: Profile,
}

impl Unit {
    fn new(product: i64) -> Self {
        Self {
            product,
            first_hour: NO_STEP,
            profile: Profile::default(),
        }
    }

    /// One event of its history.
    fn step(
        &mut self,
        time: DateTime<Utc>,
        station: Option<i64>,
        order: Option<i64>,
        sensed: Option<i64>,
    ) {
        let hour = hour_of(time).timestamp();
        self.first_hour = self.first_hour.min(hour);
        let profile = &mut self.profile;
        profile
            .visits
            .extend(station.map(|station| (station, hour)));
        profile.orders.extend(order);
        profile.sensed.extend(sensed);
    }

    /// A link to what it came from.
    fn parent(&mut self, node: i64, kind: LinkKind) {
        let supplier = kind == LinkKind::ReceivedFrom;
        self.profile.parents.insert((node, supplier));
    }

    /// Whether it is counted: some step named it.
    fn counted(&self) -> bool {
        self.first_hour != NO_STEP
    }
}

/// The end of a link of `kind` that an upstream walk starts from, if it walks it at all
/// ([`graph::steps`]).
fn near_end(kind: LinkKind) -> Option<LinkEnd> {
    graph::steps(Direction::Backward)
        .into_iter()
        .find(|step| step.kinds.contains(&kind))
        .map(|step| step.end)
}

/// (near, far) of a link from `from` to `to` of `kind`, if an upstream walk takes it.
fn upstream_of<T>(kind: LinkKind, from: T, to: T) -> Option<(T, T)> {
    match near_end(kind)? {
        LinkEnd::From => Some((from, to)),
        LinkEnd::To => Some((to, from)),
    }
}

/// Adds a run of events to the profiles of the units it names, in the run's transaction.
pub(super) async fn record(
    txn: &DatabaseTransaction,
    run: &[(i64, String, &Event, Facts)],
    ids: &HashMap<String, i64>,
) -> Result<(), GenealogyError> {
    let id = |uri: &str| super::write::node(ids, uri);
    let mut named: HashMap<i64, i64> = HashMap::new();
    for (_, _, _, facts) in run {
        let upstream_ends = facts
            .links
            .iter()
            .filter_map(|l| upstream_of(l.kind, &l.from, &l.to).map(|(near, _)| near));
        for uri in facts.touched.iter().chain(upstream_ends) {
            if let Some(product) = unit_product(uri) {
                named.insert(id(uri)?, product);
            }
        }
    }
    if named.is_empty() {
        return Ok(());
    }
    let nodes: Vec<i64> = named.keys().copied().collect();
    let before = load(txn, &nodes).await?;
    let mut after: HashMap<i64, Unit> = named
        .iter()
        .map(|(node, product)| {
            let unit = before.get(node).map(|(unit, _)| unit.clone());
            (*node, unit.unwrap_or_else(|| Unit::new(*product)))
        })
        .collect();
    for (sequence, _, event, facts) in run {
        let time = event.event_time.to_utc();
        let station = event.read_point.as_ref().map(|l| id(&l.id)).transpose()?;
        let order = facts.production_order.as_deref().map(id).transpose()?;
        let sensed = (!facts.sensor_readings.is_empty()).then_some(*sequence);
        for uri in &facts.touched {
            if let Some(unit) = after.get_mut(&id(uri)?) {
                unit.step(time, station, order, sensed);
            }
        }
        for l in &facts.links {
            if let Some((near, far)) = upstream_of(l.kind, &l.from, &l.to)
                && let Some(unit) = after.get_mut(&id(near)?)
            {
                unit.parent(id(far)?, l.kind);
            }
        }
    }
    write(txn, &before, after).await
}

/// Recomputes the profiles of `nodes` (those that are units) from the projection as it
/// now stands: after an error declaration took an event's rows away.
pub(super) async fn recompute(
    txn: &DatabaseTransaction,
    nodes: &[i64],
) -> Result<(), GenealogyError> {
    let mut after: HashMap<i64, Unit> = HashMap::new();
    for chunk in nodes.chunks(CHUNK) {
        let named: Vec<(i64, String)> = node::Entity::find()
            .select_only()
            .columns([node::Column::Id, node::Column::Uri])
            .filter(node::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(txn)
            .await?;
        for (node, uri) in named {
            if let Some(product) = unit_product(&uri) {
                after.insert(node, Unit::new(product));
            }
        }
    }
    let units: Vec<i64> = after.keys().copied().collect();
    if units.is_empty() {
        return Ok(());
    }
    let before = load(txn, &units).await?;
    replay_steps(txn, &units, &mut after).await?;
    replay_parents(txn, &units, &mut after).await?;
    write(txn, &before, after).await
}

/// Folds the stored history of `units` into their profiles.
async fn replay_steps(
    txn: &DatabaseTransaction,
    units: &[i64],
    profiles: &mut HashMap<i64, Unit>,
) -> Result<(), GenealogyError> {
    let backend = txn.get_database_backend();
    for chunk in units.chunks(CHUNK) {
        let statement = StatementBuilder::build(&read::step_rows(backend, chunk), &backend);
        let steps = read::StepRow::find_by_statement(statement).all(txn).await?;
        let sequences: Vec<i64> = steps.iter().map(|step| step.sequence).collect();
        let sensed: HashSet<i64> = sensor_reading::Entity::find()
            .select_only()
            .column(sensor_reading::Column::Sequence)
            .filter(sensor_reading::Column::Sequence.is_in(sequences))
            .into_tuple::<i64>()
            .all(txn)
            .await?
            .into_iter()
            .collect();
        for step in steps {
            if let Some(unit) = profiles.get_mut(&step.node) {
                let with_readings = sensed.contains(&step.sequence).then_some(step.sequence);
                unit.step(
                    step.event_time,
                    step.read_point,
                    step.production_order,
                    with_readings,
                );
            }
        }
    }
    Ok(())
}

/// Adds the stored links from `units` upstream to their profiles.
async fn replay_parents(
    txn: &DatabaseTransaction,
    units: &[i64],
    profiles: &mut HashMap<i64, Unit>,
) -> Result<(), GenealogyError> {
    for step in graph::steps(Direction::Backward) {
        let backend = txn.get_database_backend();
        for chunk in units.chunks(CHUNK) {
            let packs = read::PackedRows::find_by_statement(StatementBuilder::build(
                &read::packed_link_ends(backend, step.end, chunk, step.kinds),
                &backend,
            ))
            .all(txn)
            .await?;
            for l in read::PackedRows::links(packs)? {
                let Some(kind) = LinkKind::from_code(l.kind) else {
                    continue;
                };
                if let Some((near, far)) = upstream_of(kind, l.from_node, l.to_node)
                    && let Some(unit) = profiles.get_mut(&near)
                {
                    unit.parent(far, kind);
                }
            }
        }
    }
    Ok(())
}

/// The stored profiles of `nodes`.
async fn load(
    txn: &DatabaseTransaction,
    nodes: &[i64],
) -> Result<HashMap<i64, (Unit, i64)>, GenealogyError> {
    let rows = unit_rows(txn, nodes).await?;
    let mut signatures: Vec<i64> = rows.iter().map(|row| row.signature).collect();
    signatures.sort_unstable();
    signatures.dedup();
    let mut profiles = HashMap::new();
    for chunk in signatures.chunks(CHUNK) {
        for found in profile_signature::Entity::find()
            .filter(profile_signature::Column::Id.is_in(chunk.iter().copied()))
            .all(txn)
            .await?
        {
            profiles.insert(found.id, Profile::from_body(&found.body)?);
        }
    }
    let mut units = HashMap::with_capacity(rows.len());
    for row in rows {
        let profile = profiles.get(&row.signature).cloned().unwrap_or_default();
        let unit = Unit {
            product: row.product,
            first_hour: row.first_hour,
            profile,
        };
        units.insert(row.node, (unit, row.signature));
    }
    Ok(units)
}

/// The profile rows of `nodes` that have one.
async fn unit_rows(
    db: &impl ConnectionTrait,
    nodes: &[i64],
) -> Result<Vec<unit_profile::Model>, GenealogyError> {
    let mut rows = Vec::new();
    for chunk in nodes.chunks(CHUNK) {
        rows.extend(
            unit_profile::Entity::find()
                .filter(unit_profile::Column::Node.is_in(chunk.iter().copied()))
                .all(db)
                .await?,
        );
    }
    Ok(rows)
}

/// Writes the units whose profile changed from `before`, and moves them in the counts.
async fn write(
    txn: &DatabaseTransaction,
    before: &HashMap<i64, (Unit, i64)>,
    after: HashMap<i64, Unit>,
) -> Result<(), GenealogyError> {
    let changed: Vec<(i64, Unit)> = after
        .into_iter()
        .filter(|(node, unit)| before.get(node).is_none_or(|(old, _)| old != unit))
        .collect();
    let bodies: Vec<String> = changed
        .iter()
        .map(|(_, unit)| unit.profile.body())
        .collect();
    let signatures = intern(txn, bodies.clone()).await?;
    let mut rows = Vec::with_capacity(changed.len());
    let mut moved: HashMap<(i64, i64, i64), i64> = HashMap::new();
    for ((node, unit), body) in changed.iter().zip(&bodies) {
        let signature = signatures[body];
        if let Some((old, old_signature)) = before.get(node)
            && old.counted()
        {
            *moved
                .entry((old.product, old.first_hour, *old_signature))
                .or_default() -= 1;
        }
        if unit.counted() {
            *moved
                .entry((unit.product, unit.first_hour, signature))
                .or_default() += 1;
        }
        rows.push(unit_profile::ActiveModel {
            node: Set(*node),
            product: Set(unit.product),
            first_hour: Set(unit.first_hour),
            signature: Set(signature),
        });
    }
    use unit_profile::Column as U;
    for chunk in rows.chunks(CHUNK) {
        unit_profile::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::column(U::Node)
                    .update_columns([U::Product, U::FirstHour, U::Signature])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    move_counts(txn, moved).await
}

/// Adds `moved` (by product, hour and signature) to the counts; counts that reach 0 go.
async fn move_counts(
    txn: &DatabaseTransaction,
    moved: HashMap<(i64, i64, i64), i64>,
) -> Result<(), GenealogyError> {
    use profile_count::Column as C;
    let moved: Vec<((i64, i64, i64), i64)> = moved.into_iter().filter(|(_, n)| *n != 0).collect();
    let rows: Vec<profile_count::ActiveModel> = moved
        .iter()
        .map(
            |((product, hour, signature), units)| profile_count::ActiveModel {
                product: Set(*product),
                hour: Set(*hour),
                signature: Set(*signature),
                units: Set(*units),
            },
        )
        .collect();
    for chunk in rows.chunks(CHUNK) {
        profile_count::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([C::Product, C::Hour, C::Signature])
                    .value(
                        C::Units,
                        super::trend_rows::added("genealogy_profile_counts", "units"),
                    )
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    let emptied: Vec<(i64, i64, i64)> = moved
        .iter()
        .filter(|(_, n)| *n < 0)
        .map(|(key, _)| *key)
        .collect();
    for chunk in emptied.chunks(100) {
        let mut which = sea_orm::Condition::any();
        for (product, hour, signature) in chunk {
            which = which.add(
                sea_orm::Condition::all()
                    .add(C::Product.eq(*product))
                    .add(C::Hour.eq(*hour))
                    .add(C::Signature.eq(*signature)),
            );
        }
        profile_count::Entity::delete_many()
            .filter(C::Units.eq(0))
            .filter(which)
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// The ids of the profiles `bodies`, adding those not stored yet. The projection's single
/// writer makes the look-then-insert safe.
async fn intern(
    txn: &DatabaseTransaction,
    mut bodies: Vec<String>,
) -> Result<HashMap<String, i64>, GenealogyError> {
    bodies.sort_unstable();
    bodies.dedup();
    let mut ids = HashMap::with_capacity(bodies.len());
    for probe in 0..DIGEST_PROBES {
        if bodies.is_empty() {
            return Ok(ids);
        }
        bodies = intern_at(txn, probe, bodies, &mut ids).await?;
    }
    match bodies.first() {
        None => Ok(ids),
        Some(body) => Err(GenealogyError::Store(DbErr::Custom(format!(
            "unit profile {body}: other profiles hold all its {DIGEST_PROBES} digests"
        )))),
    }
}

/// The `probe`th digest of `body`.
fn digest(body: &str, probe: i64) -> i64 {
    let hash = Sha256::digest(body.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    i64::from_be_bytes(first).wrapping_add(probe)
}

/// Finds or adds `bodies` at their `probe`th digest, into `ids`; returns those whose digest
/// another body holds.
async fn intern_at(
    txn: &DatabaseTransaction,
    probe: i64,
    bodies: Vec<String>,
    ids: &mut HashMap<String, i64>,
) -> Result<Vec<String>, GenealogyError> {
    let digests: Vec<(String, i64)> = bodies
        .into_iter()
        .map(|body| {
            let digest = digest(&body, probe);
            (body, digest)
        })
        .collect();
    let stored = stored_at(txn, digests.iter().map(|(_, d)| *d)).await?;
    let (mut taken, mut missing) = (Vec::new(), HashMap::new());
    for (body, digest) in digests {
        match stored.get(&digest) {
            Some((id, held)) if *held == body => drop(ids.insert(body, *id)),
            Some(_) => taken.push(body),
            None if missing.contains_key(&digest) => taken.push(body),
            None => drop(missing.insert(digest, body)),
        }
    }
    let rows: Vec<profile_signature::ActiveModel> = missing
        .iter()
        .map(|(digest, body)| profile_signature::ActiveModel {
            digest: Set(*digest),
            body: Set(body.clone()),
            ..Default::default()
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        profile_signature::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    let added = stored_at(txn, missing.keys().copied()).await?;
    for (digest, body) in missing {
        if let Some((id, _)) = added.get(&digest) {
            ids.insert(body, *id);
        }
    }
    Ok(taken)
}

/// The stored profiles at `digests`: digest → (id, body).
async fn stored_at(
    txn: &DatabaseTransaction,
    digests: impl Iterator<Item = i64>,
) -> Result<HashMap<i64, (i64, String)>, GenealogyError> {
    let digests: Vec<i64> = digests.collect();
    let mut stored = HashMap::with_capacity(digests.len());
    for chunk in digests.chunks(CHUNK) {
        for row in profile_signature::Entity::find()
            .filter(profile_signature::Column::Digest.is_in(chunk.iter().copied()))
            .all(txn)
            .await?
        {
            stored.insert(row.digest, (row.id, row.body));
        }
    }
    Ok(stored)
}

/// Node ids whose profiles [`ProjectionStore::fill_profiles`] works out per transaction.
const FILL_CHUNK: i64 = 5_000;
/// Rows of `genealogy_profiles_since`: the cursor when the profiles began to be kept (0:
/// from the start, or filled since), and the next node id to fill.
const SINCE_ROW: i64 = 1;
const FILL_ROW: i64 = 2;

impl ProjectionStore {
    /// Works out the profiles of the units projected before profiles were kept, a chunk
    /// of node ids per transaction under the projection writer's lock, resumably (the next
    /// node id is stored); done, the counts hold every unit. Returns the node ids gone
    /// through; stops early when `stop` is cancelled.
    pub async fn fill_profiles(&self, stop: &CancellationToken) -> Result<i64, GenealogyError> {
        let mut done = 0;
        while !stop.is_cancelled() {
            let txn = tracery_runtime::db::begin_write(&self.db).await?;
            tracery_runtime::db::serialize(&txn, super::PROJECTION_LOCK).await?;
            if since_row(&txn, SINCE_ROW).await? == Some(0) {
                return Ok(done);
            }
            let next = since_row(&txn, FILL_ROW).await?.unwrap_or(0);
            let last: Option<i64> = node::Entity::find()
                .select_only()
                .column_as(node::Column::Id.max(), "last")
                .into_tuple()
                .one(&txn)
                .await?
                .flatten();
            if next > last.unwrap_or(0) {
                set_since_row(&txn, SINCE_ROW, 0).await?;
                txn.commit().await?;
                return Ok(done);
            }
            let nodes: Vec<i64> = (next..next + FILL_CHUNK).collect();
            recompute(&txn, &nodes).await?;
            set_since_row(&txn, FILL_ROW, next + FILL_CHUNK).await?;
            txn.commit().await?;
            done += FILL_CHUNK;
        }
        Ok(done)
    }
}

/// The value of a row of `genealogy_profiles_since`.
async fn since_row(db: &impl ConnectionTrait, id: i64) -> Result<Option<i64>, GenealogyError> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT sequence FROM genealogy_profiles_since WHERE id = {id}"),
        ))
        .await?;
    Ok(row
        .map(|row| row.try_get::<i64>("", "sequence"))
        .transpose()?)
}

async fn set_since_row(
    txn: &DatabaseTransaction,
    id: i64,
    value: i64,
) -> Result<(), GenealogyError> {
    txn.execute_raw(Statement::from_string(
        txn.get_database_backend(),
        format!(
            "INSERT INTO genealogy_profiles_since (id, sequence) VALUES ({id}, {value}) \
             ON CONFLICT (id) DO UPDATE SET sequence = excluded.sequence"
        ),
    ))
    .await?;
    Ok(())
}

/// Hours of counts read as one packed string ([`ProjectionStore::classes`]): a week, whose
/// classes at a busy plant come to tens of megabytes, far below SQLite's limit of 1 GB on
/// one string, which a year of them could reach.
const PACKED_HOURS: i64 = 24 * 7;

/// Units of one product first seen in one hour with one profile: what an analysis reads
/// of its good units.
#[derive(Debug, Clone)]
pub struct Class {
    pub product: i64,
    pub hour: i64,
    pub signature: i64,
    pub units: i64,
    pub profile: Profile,
}

impl ProjectionStore {
    /// Whether the counts hold every unit: they were kept from the projection's start, or
    /// filled since ([`Self::fill_profiles`]).
    pub async fn profiles_complete(&self) -> Result<bool, GenealogyError> {
        Ok(since_row(&self.db, SINCE_ROW).await? == Some(0))
    }

    /// The classes of units of `products` first seen in the hours `from..=until` (Unix
    /// seconds), a week of hours at a time.
    pub async fn classes(
        &self,
        products: &[i64],
        (from, until): (i64, i64),
    ) -> Result<Vec<Class>, GenealogyError> {
        if products.is_empty() {
            return Ok(Vec::new());
        }
        let mut classes = Vec::new();
        let mut start = from;
        while start <= until {
            let end = until.min(start + PACKED_HOURS * 3600 - 1);
            classes.extend(self.packed_classes(products, (start, end)).await?);
            start = end + 1;
        }
        Ok(classes)
    }

    /// The classes of [`Self::classes`] in the hours `from..=until`, read as one JSON array
    /// of `[product, hour, signature, units, body]`: a row each cost a switch between
    /// SQLite's worker thread and this task.
    async fn packed_classes(
        &self,
        products: &[i64],
        (from, until): (i64, i64),
    ) -> Result<Vec<Class>, GenealogyError> {
        let backend = self.db.get_database_backend();
        let body = read::json_value(backend, "s.body");
        let packed = read::json_rows(
            backend,
            &["c.product", "c.hour", "c.signature", "c.units", &body],
        );
        // Numbers only, written by us: nothing to bind.
        let products: Vec<String> = products.iter().map(i64::to_string).collect();
        let sql = format!(
            "SELECT {packed} AS {} \
             FROM genealogy_profile_counts c JOIN genealogy_profile_signatures s \
             ON s.id = c.signature WHERE c.product IN ({}) AND c.hour >= {from} \
             AND c.hour <= {until} AND c.units > 0",
            read::PACKED,
            products.join(", ")
        );
        let statement = Statement::from_string(backend, sql);
        let packs = read::PackedRows::find_by_statement(statement)
            .all(&self.db)
            .await?;
        let classes: Vec<(i64, i64, i64, i64, Body)> =
            read::PackedRows::unpack(packs, "profile classes")?;
        Ok(classes
            .into_iter()
            .map(|(product, hour, signature, units, body)| Class {
                product,
                hour,
                signature,
                units,
                profile: Profile::from(body),
            })
            .collect())
    }

    /// The profile rows of `units` that have one.
    pub async fn unit_profiles(
        &self,
        units: &[i64],
    ) -> Result<Vec<unit_profile::Model>, GenealogyError> {
        unit_rows(&self.db, units).await
    }

    /// Up to `most` units of `class`.
    pub async fn units_of(&self, class: &Class, most: u64) -> Result<Vec<i64>, GenealogyError> {
        use unit_profile::Column as U;
        Ok(unit_profile::Entity::find()
            .select_only()
            .column(U::Node)
            .filter(U::Signature.eq(class.signature))
            .filter(U::Product.eq(class.product))
            .filter(U::FirstHour.eq(class.hour))
            .limit(most)
            .into_tuple()
            .all(&self.db)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_reads_back_as_written() {
        let mut unit = Unit::new(4012345000009);
        let at = |s: &str| s.parse::<DateTime<Utc>>().expect("a time");
        unit.step(at("2026-12-01T10:20:00Z"), Some(7), Some(9), None);
        unit.step(at("2026-12-01T09:59:59Z"), Some(8), None, Some(42));
        unit.parent(3, LinkKind::MemberOfLot);
        unit.parent(5, LinkKind::ReceivedFrom);
        assert_eq!(unit.first_hour, at("2026-12-01T09:00:00Z").timestamp());
        let body = unit.profile.body();
        assert_eq!(Profile::from_body(&body).expect("a body"), unit.profile);
        assert_eq!(unit.profile.parents, [(3, false), (5, true)].into());
    }

    #[test]
    fn a_unit_comes_from_its_lot_from_its_inputs_and_from_its_supplier() {
        assert_eq!(upstream_of(LinkKind::MemberOfLot, 1, 2), Some((1, 2)));
        assert_eq!(upstream_of(LinkKind::TransformedInto, 1, 2), Some((2, 1)));
        assert_eq!(upstream_of(LinkKind::ReceivedFrom, 1, 2), Some((2, 1)));
        assert_eq!(upstream_of(LinkKind::ShippedTo, 1, 2), None);
    }
}
