//! Common-cause analysis of failed units: what the failed ones share that the good ones
//! do not, ranked by how unlikely the sharing is by chance.
//!
//! - [`attributes`]: what each unit carries (the station, hour and shift of each of its
//!   steps, its production orders and sensor excursions), read from the projection by
//!   interned ids and named only for what is tested.
//! - [`upstream`]: the lots, parts and suppliers upstream of each unit.
//! - [`stats`]: the 2×2 table of one candidate, Fisher's exact test, relative risk and
//!   Benjamini–Hochberg q-values (pure).
//!
//! Every attribute value held by at least two failed units is a candidate (one failed unit
//! cannot show a *common* cause). Candidates are tested one-sided, adjusted for their
//! number, and only those significant at the requested false discovery rate are answered;
//! otherwise the answer is "inconclusive" with the reason, never a ranking from noise.
//! Candidates held by (nearly) the same units are grouped: the data cannot tell a lot only
//! ever processed on one line from that line.
//!
//! The failed units' attributes are read in full; the good units', which are many more,
//! only as far as they are candidates ([`Wanted::Only`]), so the cost of the baseline is
//! its reads and not a map of every attribute of every good unit.

pub mod attributes;
pub mod stats;
pub mod upstream;

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::{
    errors::GenealogyError,
    facts::{self, product_prefix},
    store::{ProjectionStore, unit_profiles::Class},
    trends::hour_of,
};
use attributes::{Attribute, Excursions, Key, OwnSteps, StepRules, UnitKeys, Wanted};
use stats::{RelativeRisk, Table};
use upstream::earliest_once;

/// Fewer failed units than this give no analysis.
pub const MIN_FAILED: usize = 3;
/// Fewer baseline units than this give no analysis.
pub const MIN_BASELINE: usize = 10;
/// The most units a request may name on one side of an analysis.
pub const MAX_UNITS: usize = 200_000;
/// The most good units an analysis compares with when it finds them itself (a product's
/// units): about a 1.3M-event plant's. Their holders of each candidate are what it keeps.
pub const MAX_BASELINE: usize = 3_000_000;
/// Good units read at a time.
const BASELINE_CHUNK: usize = 50_000;
/// Good units listed as evidence for a candidate.
const BASELINE_EVIDENCE: usize = 20;
/// Failed units listed as evidence for a candidate (its table has the count of all).
const FAILED_EVIDENCE: usize = 1_000;
/// Two candidates whose holders overlap at least this much (Jaccard) are one group.
const SAME_UNITS: f64 = 0.95;

/// Failed units chosen by what events say of them.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Dispositions and bizSteps, in every spelling an event may store them in.
    pub terms: Vec<String>,
    /// What the selection asked for, for messages (`disposition damaged`).
    pub named: String,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Only units of this product (its Digital Link up to `/21/`).
    pub product: Option<String>,
}

/// What to analyse.
#[derive(Debug, Clone)]
pub struct Request {
    pub failed: Vec<String>,
    /// Instead of `failed`.
    pub selection: Option<Selection>,
    /// Empty: the failed units' products made in the same period.
    pub baseline: Vec<String>,
    pub significance: f64,
    pub max_candidates: usize,
    /// How the units' own steps become attributes.
    pub steps: StepRules,
    /// Read each good unit's history even where the projection's counts of unit profiles
    /// could answer (to check the counts against).
    pub each_unit: bool,
}

/// An identifier left out, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub field: String,
    pub written: String,
    pub reason: String,
}

/// One ranked candidate.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub attribute: Attribute,
    pub table: Table,
    pub p_value: f64,
    pub q_value: f64,
    pub risk: RelativeRisk,
    pub group: usize,
    pub indistinguishable: bool,
    pub failed_units: Vec<String>,
    pub baseline_units: Vec<String>,
    pub first_seen: DateTime<Utc>,
}

/// The answer: ranked candidates, or why there are none.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    pub inconclusive: Option<String>,
    pub candidates: Vec<Candidate>,
    pub refused: Vec<Refused>,
    pub failed_units: usize,
    pub baseline_units: usize,
    pub candidates_tested: usize,
}

/// Runs the analysis of `request`.
pub async fn analyze(
    store: &ProjectionStore,
    request: &Request,
) -> Result<Analysis, GenealogyError> {
    let mut analysis = Analysis::default();
    let mut excursions = Excursions::default();
    let mut phases = Phases::started();
    let failed = match &request.selection {
        Some(selection) => {
            let selected = selected(store, selection).await?;
            if selected.is_empty() {
                return Ok(analysis.declined(nothing_selected(selection)));
            }
            seen(
                store,
                selected,
                &request.steps,
                &mut excursions,
                Wanted::All,
            )
            .await?
            .0
        }
        None => {
            let failed = &request.failed;
            let steps = &request.steps;
            let refused = &mut analysis.refused;
            resolve(
                store,
                "failed",
                failed,
                steps,
                &mut excursions,
                Wanted::All,
                refused,
            )
            .await?
        }
    };
    analysis.failed_units = failed.ids.len();
    if failed.ids.len() < MIN_FAILED {
        return Ok(analysis.declined(format!(
            "{} known failed units; an analysis needs at least {MIN_FAILED}",
            failed.ids.len()
        )));
    }
    let first_seen: Vec<DateTime<Utc>> =
        failed.steps.first_seen.iter().flatten().copied().collect();
    phases.ended("failed units' own steps");
    let mut failed_keys = failed.steps.keys;
    add_upstream(store, &failed.ids, &mut failed_keys, Wanted::All).await?;
    phases.ended("failed units' upstream");
    let mut holders = Holders::of_failed(failed_keys);
    let candidates = holders.candidates();
    let good = Wanted::Only(&candidates);
    let baseline = if request.baseline.is_empty() {
        let made = made_alongside(
            store,
            (&failed.names, &failed.ids, &first_seen),
            (&request.steps, &mut excursions, good),
            &mut holders,
            request.each_unit,
        );
        match made.await? {
            Ok(baseline) => baseline,
            Err(too_many) => return Ok(analysis.declined(too_many)),
        }
    } else {
        refuse_overlap(&request.baseline, &failed.names)?;
        let (baseline, steps) = (&request.baseline, &request.steps);
        let refused = &mut analysis.refused;
        let given = resolve(
            store,
            "baseline",
            baseline,
            steps,
            &mut excursions,
            good,
            refused,
        );
        Baseline::Units(count(store, given.await?, good, &mut holders).await?)
    };
    let good_units = holders.baseline_units() as usize;
    analysis.baseline_units = good_units;
    phases.ended("good units");
    if good_units < MIN_BASELINE {
        return Ok(analysis.declined(format!(
            "{good_units} good units to compare with; an analysis needs at least \
             {MIN_BASELINE} (no other units of these products were made in the failed units' \
             period?)"
        )));
    }
    let tested = named(
        store,
        candidates.into_iter().collect(),
        request,
        &excursions,
    )
    .await?;
    analysis.candidates_tested = tested.len();
    let sides = Sides {
        failed: &failed.names,
        failed_ids: &failed.ids,
        baseline: &baseline,
    };
    let scored = score(&tested, &holders, &sides);
    phases.ended("naming and statistics");
    analysis.candidates = rank(store, &tested, &scored, &holders, &sides, request).await?;
    phases.ended("ranking and evidence");
    if analysis.candidates.is_empty() {
        let best = scored.iter().map(|s| s.q_value).fold(1.0, f64::min);
        return Ok(analysis.declined(format!(
            "no shared attribute is significant at q ≤ {} ({} tested; the best q is {best:.3})",
            request.significance,
            tested.len()
        )));
    }
    Ok(analysis)
}

/// How long each phase of an analysis took, logged at debug level.
struct Phases(std::time::Instant);

impl Phases {
    fn started() -> Self {
        Self(std::time::Instant::now())
    }

    fn ended(&mut self, phase: &str) {
        let seconds = self.0.elapsed().as_secs_f64();
        tracing::debug!(phase, seconds, "common-cause analysis");
        self.0 = std::time::Instant::now();
    }
}

impl Analysis {
    fn declined(mut self, reason: String) -> Self {
        self.inconclusive = Some(reason);
        self.candidates.clear();
        self
    }
}

fn nothing_selected(selection: &Selection) -> String {
    format!(
        "the selection names no units: no event with {} between {} and {}{}",
        selection.named,
        selection.from.to_rfc3339(),
        selection.until.to_rfc3339(),
        selection
            .product
            .as_deref()
            .map(|p| format!(" of product {}", p.trim_end_matches("/21/")))
            .unwrap_or_default()
    )
}

/// One side of an analysis: the units the projection has seen, with their own steps.
#[derive(Default)]
struct Side {
    ids: Vec<i64>,
    /// Their identifiers (canonical); left empty for a baseline found by product, whose
    /// evidence is named when answered.
    names: Vec<String>,
    steps: OwnSteps,
}

/// The canonical units of `written`, in order and once each, with their own steps (read
/// once: they also tell which units the projection knows); an identifier that is not one
/// or that no event has named is refused with its position.
async fn resolve(
    store: &ProjectionStore,
    field: &str,
    written: &[String],
    rules: &StepRules,
    excursions: &mut Excursions,
    wanted: Wanted<'_>,
    refused: &mut Vec<Refused>,
) -> Result<Side, GenealogyError> {
    if written.len() > MAX_UNITS {
        return Err(GenealogyError::Invalid {
            field: field.to_owned(),
            reason: format!("{} units; at most {MAX_UNITS}", written.len()),
        });
    }
    // Each well-formed identifier's position and node.
    let mut named: Vec<(usize, String)> = Vec::new();
    for (index, text) in written.iter().enumerate() {
        match well_formed(text) {
            Ok(node) => named.push((index, node)),
            Err(reason) => refused.push(Refused {
                field: format!("{field}[{index}]"),
                written: text.clone(),
                reason,
            }),
        }
    }
    let mut distinct = HashSet::new();
    let distinct: Vec<String> = named
        .iter()
        .filter(|(_, node)| distinct.insert(node.as_str()))
        .map(|(_, node)| node.clone())
        .collect();
    let (side, unseen) = seen(store, distinct, rules, excursions, wanted).await?;
    for (index, node) in &named {
        if unseen.contains(node) {
            refused.push(Refused {
                field: format!("{field}[{index}]"),
                written: written[*index].clone(),
                reason: "unknown: no event has named it".to_owned(),
            });
        }
    }
    Ok(side)
}

/// Of `units` (canonical, distinct), those some event has named, with their own steps,
/// and the others.
async fn seen(
    store: &ProjectionStore,
    units: Vec<String>,
    rules: &StepRules,
    excursions: &mut Excursions,
    wanted: Wanted<'_>,
) -> Result<(Side, HashSet<String>), GenealogyError> {
    let stored = store.ids_of(&units).await?;
    let ids: Vec<Option<i64>> = units
        .iter()
        .map(|u| stored.get(u.as_str()).copied())
        .collect();
    let known: Vec<i64> = ids.iter().flatten().copied().collect();
    let mut steps = attributes::own_steps(store, &known, rules, excursions, wanted)
        .await?
        .into_iter();
    let mut side = Side::default();
    let mut unseen = HashSet::new();
    for (unit, id) in units.into_iter().zip(ids) {
        match id.and_then(|id| steps.next().map(|step| (id, step))) {
            Some((id, (keys, Some(first)))) => {
                side.ids.push(id);
                side.names.push(unit);
                side.steps.push(keys, first);
            }
            _ => drop(unseen.insert(unit)),
        }
    }
    Ok((side, unseen))
}

/// The canonical node of an identifier as scanned, or why it is none.
fn well_formed(written: &str) -> Result<String, String> {
    let text = written.trim();
    if text.is_empty() {
        return Err("empty".to_owned());
    }
    if !text.starts_with("urn:") {
        tracery_gs1::parse_any(text).map_err(|err| err.to_string())?;
    }
    Ok(facts::node_id(text))
}

/// The serialised units a selection's events name.
async fn selected(
    store: &ProjectionStore,
    selection: &Selection,
) -> Result<Vec<String>, GenealogyError> {
    let mut units: Vec<String> = store
        .touched_by(&selection.terms, selection.from, selection.until)
        .await?
        .into_iter()
        .filter(|unit| match (product_prefix(unit), &selection.product) {
            (Some(of), Some(wanted)) => of == wanted,
            (Some(_), None) => true,
            (None, _) => false,
        })
        .collect();
    units.sort();
    units.truncate(MAX_UNITS);
    Ok(units)
}

/// The Digital Link prefix of a product's serials (`https://id.gs1.org/01/<gtin>/21/`)
/// from a GTIN as scanned (element string, Digital Link, EPC URN, or its 8 to 14 digits),
/// or what is wrong with it.
pub fn product_of(written: &str) -> Result<String, String> {
    let text = written.trim();
    let digits = text.len() >= 8 && text.len() <= 14 && text.bytes().all(|b| b.is_ascii_digit());
    let link = if digits {
        format!("https://id.gs1.org/01/{text:0>14}")
    } else {
        let parsed = tracery_gs1::parse_any(text).map_err(|err| err.to_string())?;
        parsed
            .identifier
            .ok_or("holds no GS1 key")?
            .canonical_link()
            .map_err(|err| err.to_string())?
    };
    match (
        link.strip_prefix("https://id.gs1.org/01/"),
        link.find("/21/"),
    ) {
        (None, _) => Err(format!("`{text}` is no GTIN")),
        (Some(_), Some(at)) => Ok(link[..at + 4].to_owned()),
        (Some(_), None) => Ok(format!("{link}/21/")),
    }
}

/// A baseline that names a failed unit is refused, naming it.
fn refuse_overlap(baseline: &[String], failed: &[String]) -> Result<(), GenealogyError> {
    let failed: HashSet<&String> = failed.iter().collect();
    match baseline
        .iter()
        .position(|written| failed.contains(&facts::node_id(written.trim())))
    {
        Some(index) => Err(GenealogyError::Invalid {
            field: format!("baseline[{index}]"),
            reason: format!("`{}` is also a failed unit", baseline[index]),
        }),
        None => Ok(()),
    }
}

/// The good units: the other units of the failed units' products first seen in the hours
/// the failed units were first seen in, counted as holders of the candidates. Read from
/// the projection's counts of unit profiles where they hold every unit, else unit by unit
/// ([`each_unit_made_alongside`]).
async fn made_alongside(
    store: &ProjectionStore,
    failed: (&[String], &[i64], &[DateTime<Utc>]),
    (rules, excursions, good): (&StepRules, &mut Excursions, Wanted<'_>),
    holders: &mut Holders,
    each_unit: bool,
) -> Result<Result<Baseline, String>, GenealogyError> {
    let seen = failed.2.iter();
    let (Some(from), Some(until)) = (seen.clone().min(), seen.max()) else {
        return Ok(Ok(Baseline::Units(Vec::new())));
    };
    let hours = (hour_of(*from), hour_of(*until));
    if each_unit || !store.profiles_complete().await? {
        let read = (rules, excursions, good);
        let made = each_unit_made_alongside(store, failed, hours, read, holders);
        return Ok(made.await?.map(Baseline::Units));
    }
    let (names, ids, _) = failed;
    let products: BTreeSet<i64> = names
        .iter()
        .filter_map(|u| facts::unit_product(u))
        .collect();
    let products: Vec<i64> = products.into_iter().collect();
    let hours = (hours.0.timestamp(), hours.1.timestamp());
    let mut phases = Phases::started();
    let mut classes = store.classes(&products, hours).await?;
    leave_out_failed(store, ids, &mut classes).await?;
    phases.ended("good units' classes");
    let keys = attributes::class_keys(store, &classes, rules, excursions, good).await?;
    phases.ended("good units' keys");
    holders.add_baseline(keys, classes.iter().map(|class| class.units as u64));
    Ok(Ok(Baseline::Classes(classes)))
}

/// Takes the failed units out of the classes they are counted in.
async fn leave_out_failed(
    store: &ProjectionStore,
    failed: &[i64],
    classes: &mut Vec<Class>,
) -> Result<(), GenealogyError> {
    let index: HashMap<(i64, i64, i64), usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| ((c.product, c.hour, c.signature), i))
        .collect();
    for unit in store.unit_profiles(failed).await? {
        if let Some(&i) = index.get(&(unit.product, unit.first_hour, unit.signature)) {
            classes[i].units -= 1;
        }
    }
    classes.retain(|class| class.units > 0);
    Ok(())
}

/// What [`made_alongside`] counts, read unit by unit: each unit's own steps (the
/// candidates among them), and with [`count`] what is upstream of it.
///
/// Products with more units than an analysis reads ([`MAX_BASELINE`]) are declined with the
/// reason (`Ok(Err(reason))`) rather than compared with some of their units: a baseline
/// cut at an arbitrary point would leave out whole days, and what the failed units of
/// those days share would look significant.
async fn each_unit_made_alongside(
    store: &ProjectionStore,
    (failed, failed_ids, _): (&[String], &[i64], &[DateTime<Utc>]),
    (from, until): (DateTime<Utc>, DateTime<Utc>),
    (rules, excursions, good): (&StepRules, &mut Excursions, Wanted<'_>),
    holders: &mut Holders,
) -> Result<Result<Vec<i64>, String>, GenealogyError> {
    let products: BTreeSet<&str> = failed.iter().filter_map(|u| product_prefix(u)).collect();
    let failed_ids: HashSet<i64> = failed_ids.iter().copied().collect();
    let mut others = Vec::new();
    for product in products {
        let units = store
            .ids_starting_with(product, MAX_BASELINE as u64 + 1)
            .await?;
        others.extend(units.into_iter().filter(|unit| !failed_ids.contains(unit)));
        if others.len() > MAX_BASELINE {
            return Ok(Err(format!(
                "the failed units' products have more than {MAX_BASELINE} other units, more \
                 than an analysis reads; give the good units to compare with (baseline)"
            )));
        }
    }
    let mut counted = Vec::new();
    for chunk in others.chunks(BASELINE_CHUNK) {
        let steps = attributes::own_steps(store, chunk, rules, excursions, good).await?;
        let mut made = Side::default();
        for (id, (keys, first)) in chunk.iter().zip(steps) {
            let made_then = |t: &DateTime<Utc>| (from..=until).contains(&hour_of(*t));
            if let Some(first) = first.filter(made_then) {
                made.ids.push(*id);
                made.steps.push(keys, first);
            }
        }
        counted.extend(count(store, made, good, holders).await?);
    }
    Ok(Ok(counted))
}

/// Counts the good units of `side` (with what is upstream of them) as the next of the
/// baseline's holders; returns their ids.
async fn count(
    store: &ProjectionStore,
    side: Side,
    good: Wanted<'_>,
    holders: &mut Holders,
) -> Result<Vec<i64>, GenealogyError> {
    let mut keys = side.steps.keys;
    add_upstream(store, &side.ids, &mut keys, good).await?;
    let units = keys.len();
    holders.add_baseline(keys, std::iter::repeat_n(1, units));
    Ok(side.ids)
}

/// Adds to each unit's keys what is upstream of it.
async fn add_upstream(
    store: &ProjectionStore,
    units: &[i64],
    keys: &mut [UnitKeys],
    wanted: Wanted<'_>,
) -> Result<(), GenealogyError> {
    let upstream = upstream::upstream(store, units, wanted).await?;
    for (own, ancestors) in keys.iter_mut().zip(upstream) {
        own.extend(ancestors);
    }
    Ok(())
}

/// Which failed units and which baseline members hold each candidate (numbers,
/// ascending), and when it first appears among the failed. A baseline member is a unit, or
/// a class of units that hold the same attributes ([`Baseline`]), weighed by its units.
#[derive(Default)]
struct Holders {
    failed: HashMap<Key, Vec<u32>>,
    baseline: HashMap<Key, Vec<u32>>,
    first_seen: HashMap<Key, DateTime<Utc>>,
    /// The units of each baseline member counted so far.
    weights: Vec<u64>,
}

impl Holders {
    fn of_failed(failed: Vec<UnitKeys>) -> Self {
        let mut holders = Self::default();
        for (unit, mut keys) in failed.into_iter().enumerate() {
            earliest_once(&mut keys);
            for (key, time) in keys {
                holders.failed.entry(key).or_default().push(unit as u32);
                holders
                    .first_seen
                    .entry(key)
                    .and_modify(|t| *t = (*t).min(time))
                    .or_insert(time);
            }
        }
        holders
    }

    /// Keys held by at least two failed units: one cannot show a *common* cause.
    fn candidates(&self) -> HashSet<Key> {
        self.failed
            .iter()
            .filter(|(_, units)| units.len() >= 2)
            .map(|(key, _)| *key)
            .collect()
    }

    /// Counts the next baseline members, of `weights` units each, numbering them on from
    /// those counted.
    fn add_baseline(&mut self, baseline: Vec<UnitKeys>, weights: impl Iterator<Item = u64>) {
        for (mut keys, weight) in baseline.into_iter().zip(weights) {
            let member = self.weights.len() as u32;
            self.weights.push(weight);
            earliest_once(&mut keys);
            for (key, _) in keys {
                if self.failed.contains_key(&key) {
                    self.baseline.entry(key).or_default().push(member);
                }
            }
        }
    }

    /// The baseline's units.
    fn baseline_units(&self) -> u64 {
        self.weights.iter().sum()
    }

    /// The units of the baseline `members`.
    fn weight(&self, members: &[u32]) -> u64 {
        members.iter().map(|&m| self.weights[m as usize]).sum()
    }

    fn table(&self, key: &Key, failed: usize) -> Table {
        let failed_with = self.failed.get(key).map_or(0, Vec::len);
        let baseline_with = self.weight(Self::some(&self.baseline, key, usize::MAX));
        Table {
            failed_with: failed_with as u64,
            failed_without: (failed - failed_with) as u64,
            baseline_with,
            baseline_without: self.baseline_units() - baseline_with,
        }
    }

    /// The first `most` holders of `key` on one side.
    fn some<'h>(side: &'h HashMap<Key, Vec<u32>>, key: &Key, most: usize) -> &'h [u32] {
        side.get(key)
            .map_or(&[], |units| &units[..units.len().min(most)])
    }
}

/// The good units an analysis compares with: each a unit (node id), or classes of units
/// that hold the same attributes, as the projection counts them.
enum Baseline {
    Units(Vec<i64>),
    Classes(Vec<Class>),
}

/// The units of both sides: the failed by identifier, the baseline by node id or class.
struct Sides<'a> {
    failed: &'a [String],
    failed_ids: &'a [i64],
    baseline: &'a Baseline,
}

impl Sides<'_> {
    /// Up to `most` good units among the baseline `members`, as node ids.
    async fn good_units(
        &self,
        store: &ProjectionStore,
        members: &[u32],
        most: usize,
    ) -> Result<Vec<i64>, GenealogyError> {
        let classes = match self.baseline {
            Baseline::Units(units) => {
                return Ok(members
                    .iter()
                    .take(most)
                    .map(|&m| units[m as usize])
                    .collect());
            }
            Baseline::Classes(classes) => classes,
        };
        let failed: HashSet<i64> = self.failed_ids.iter().copied().collect();
        let mut found = Vec::new();
        for &member in members {
            if found.len() >= most {
                break;
            }
            // A class's count leaves its failed units out; its rows still name them.
            let wanted = (most - found.len() + failed.len()) as u64;
            let units = store.units_of(&classes[member as usize], wanted).await?;
            let good = units.into_iter().filter(|unit| !failed.contains(unit));
            found.extend(good.take(most - found.len()));
        }
        Ok(found)
    }
}

/// The candidates with their attributes, sorted by attribute (a stable order).
async fn named(
    store: &ProjectionStore,
    keys: Vec<Key>,
    request: &Request,
    excursions: &Excursions,
) -> Result<Vec<(Key, Attribute)>, GenealogyError> {
    let mut names = attributes::name(store, &keys, &request.steps.shifts, excursions).await?;
    let mut tested: Vec<(Key, Attribute)> = keys
        .into_iter()
        .filter_map(|key| names.remove(&key).map(|attribute| (key, attribute)))
        .collect();
    tested.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    Ok(tested)
}

/// One tested candidate's figures.
struct Scored {
    table: Table,
    p_value: f64,
    q_value: f64,
    risk: RelativeRisk,
}

fn score(tested: &[(Key, Attribute)], holders: &Holders, sides: &Sides) -> Vec<Scored> {
    let tables: Vec<Table> = tested
        .iter()
        .map(|(key, _)| holders.table(key, sides.failed.len()))
        .collect();
    let p_values: Vec<f64> = tables.iter().map(Table::fisher_greater).collect();
    let q_values = stats::benjamini_hochberg(&p_values);
    tables
        .into_iter()
        .zip(p_values)
        .zip(q_values)
        .map(|((table, p_value), q_value)| Scored {
            table,
            p_value,
            q_value,
            risk: table.relative_risk(0.95),
        })
        .collect()
}

/// The significant candidates, ranked by q then relative risk; the members of a group
/// follow its best.
async fn rank(
    store: &ProjectionStore,
    tested: &[(Key, Attribute)],
    scored: &[Scored],
    holders: &Holders,
    sides: &Sides<'_>,
    request: &Request,
) -> Result<Vec<Candidate>, GenealogyError> {
    let mut significant: Vec<usize> = (0..tested.len())
        .filter(|&i| scored[i].q_value <= request.significance)
        .collect();
    significant.sort_by(|&x, &y| {
        (scored[x].q_value)
            .total_cmp(&scored[y].q_value)
            .then(scored[y].risk.estimate.total_cmp(&scored[x].risk.estimate))
            .then(tested[x].1.cmp(&tested[y].1))
    });
    significant.truncate(request.max_candidates);
    let mut evidence = Vec::with_capacity(significant.len());
    for &i in &significant {
        let members = Holders::some(&holders.baseline, &tested[i].0, usize::MAX);
        evidence.push(sides.good_units(store, members, BASELINE_EVIDENCE).await?);
    }
    let good_names = store.names_of(evidence.iter().flatten().copied()).await?;
    let keys: Vec<Key> = significant.iter().map(|&i| tested[i].0).collect();
    let mut candidates: Vec<Candidate> = significant
        .into_iter()
        .zip(evidence)
        .map(|(i, good)| {
            let (key, attribute) = &tested[i];
            let failed = Holders::some(&holders.failed, key, FAILED_EVIDENCE);
            let good = good.into_iter();
            Candidate {
                attribute: attribute.clone(),
                table: scored[i].table,
                p_value: scored[i].p_value,
                q_value: scored[i].q_value,
                risk: scored[i].risk,
                group: 0,
                indistinguishable: false,
                failed_units: failed
                    .iter()
                    .map(|&unit| sides.failed[unit as usize].clone())
                    .collect(),
                baseline_units: good
                    .filter_map(|id| good_names.get(&id).map(|name| name.to_string()))
                    .collect(),
                first_seen: holders.first_seen[key],
            }
        })
        .collect();
    group(&mut candidates, &keys, holders);
    // A group's members together, at the rank of its best one.
    candidates.sort_by_key(|c| c.group);
    Ok(candidates)
}

/// Numbers candidates by group (1, 2, … in rank order): candidates whose failed and
/// baseline holders overlap by [`SAME_UNITS`] or more share one, and are flagged.
fn group(candidates: &mut [Candidate], keys: &[Key], holders: &Holders) {
    let held: Vec<(&[u32], &[u32])> = keys
        .iter()
        .map(|key| {
            (
                Holders::some(&holders.failed, key, usize::MAX),
                Holders::some(&holders.baseline, key, usize::MAX),
            )
        })
        .collect();
    let mut groups = 0;
    for i in 0..candidates.len() {
        let joined = (0..i).find(|&j| similar(held[i], held[j], &holders.weights) >= SAME_UNITS);
        candidates[i].group = match joined {
            Some(j) => {
                candidates[j].indistinguishable = true;
                candidates[i].indistinguishable = true;
                candidates[j].group
            }
            None => {
                groups += 1;
                groups
            }
        };
    }
}

/// Jaccard similarity of two candidates' holders (ascending numbers of failed units and
/// of baseline members, which weigh their `weights` in units).
fn similar(a: (&[u32], &[u32]), b: (&[u32], &[u32]), weights: &[u64]) -> f64 {
    let unit = |_: u32| 1;
    let weight = |m: u32| weights[m as usize];
    let common = in_both(a.0, b.0, unit) + in_both(a.1, b.1, weight);
    let held = |members: &[u32]| members.iter().map(|&m| weight(m)).sum::<u64>();
    let all = (a.0.len() + b.0.len()) as u64 + held(a.1) + held(b.1) - common;
    if all == 0 {
        0.0
    } else {
        common as f64 / all as f64
    }
}

/// What the members two ascending lists share weigh.
fn in_both(a: &[u32], b: &[u32], weight: impl Fn(u32) -> u64) -> u64 {
    let (mut i, mut j, mut common) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += weight(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    common
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(stations: &[i64]) -> UnitKeys {
        stations
            .iter()
            .map(|s| (Key::Station(*s), DateTime::UNIX_EPOCH))
            .collect()
    }

    #[test]
    fn good_units_counted_in_chunks_are_numbered_on_and_only_candidates_kept() {
        let mut holders = Holders::of_failed(vec![keys(&[1, 2]), keys(&[1]), keys(&[1, 1])]);
        assert_eq!(holders.candidates(), [Key::Station(1)].into());
        holders.add_baseline(vec![keys(&[1, 1]), keys(&[2])], [1, 1].into_iter());
        holders.add_baseline(vec![keys(&[3]), keys(&[1])], [1, 1].into_iter());
        assert_eq!(holders.baseline[&Key::Station(1)], [0, 3]);
        assert_eq!(holders.baseline[&Key::Station(2)], [1]);
        assert!(!holders.baseline.contains_key(&Key::Station(3)));
        let table = holders.table(&Key::Station(1), 3);
        assert_eq!(
            (table.failed_with, table.failed_without),
            (3, 0),
            "a unit holding a key twice counts once"
        );
        assert_eq!((table.baseline_with, table.baseline_without), (2, 2));
    }

    #[test]
    fn holders_overlap_is_counted_on_sorted_lists() {
        assert_eq!(in_both(&[1, 3, 5, 7], &[3, 4, 5], |_| 1), 2);
        let weights = [1; 7];
        let same = similar((&[1, 2], &[4, 5, 6]), (&[1, 2], &[4, 5, 6]), &weights);
        assert!((same - 1.0).abs() < 1e-12);
        assert_eq!(similar((&[], &[]), (&[], &[]), &weights), 0.0);
    }

    #[test]
    fn a_class_of_units_weighs_its_units_in_tables_and_overlaps() {
        let mut holders = Holders::of_failed(vec![keys(&[1, 2]), keys(&[1, 2])]);
        // Class 0: 90 units at stations 1 and 2; class 1: 10 units at station 1 only.
        holders.add_baseline(vec![keys(&[1, 2]), keys(&[1])], [90, 10].into_iter());
        let table = holders.table(&Key::Station(2), 2);
        assert_eq!((table.baseline_with, table.baseline_without), (90, 10));
        let held = |s: i64| {
            let key = Key::Station(s);
            (
                Holders::some(&holders.failed, &key, usize::MAX),
                Holders::some(&holders.baseline, &key, usize::MAX),
            )
        };
        let overlap = similar(held(1), held(2), &holders.weights);
        assert!((overlap - 92.0 / 102.0).abs() < 1e-12, "{overlap}");
    }
}
