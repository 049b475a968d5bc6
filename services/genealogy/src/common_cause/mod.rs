//! Common-cause analysis of failed units: what the failed ones share that the good ones
//! do not, ranked by how unlikely the sharing is by chance.
//!
//! - [`attributes`]: what each unit carries (upstream lots, parts and suppliers; the
//!   station, hour and shift of each of its steps), read from the projection.
//! - [`stats`]: the 2×2 table of one candidate, Fisher's exact test, relative risk and
//!   Benjamini–Hochberg q-values (pure).
//!
//! Every attribute value held by at least two failed units is a candidate (one failed unit
//! cannot show a *common* cause). Candidates are tested one-sided, adjusted for their
//! number, and only those significant at the requested false discovery rate are answered;
//! otherwise the answer is "inconclusive" with the reason, never a ranking from noise.
//! Candidates held by (nearly) the same units are grouped: the data cannot tell a lot only
//! ever processed on one line from that line.

pub mod attributes;
pub mod stats;

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::{errors::GenealogyError, facts, store::ProjectionStore};
use attributes::{Attribute, Attributes, OwnSteps, StepRules};
use stats::{RelativeRisk, Table};

/// Fewer failed units than this give no analysis.
pub const MIN_FAILED: usize = 3;
/// Fewer baseline units than this give no analysis.
pub const MIN_BASELINE: usize = 10;
/// The most units one side of an analysis may hold.
pub const MAX_UNITS: usize = 200_000;
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
    let (failed, failed_steps) = match &request.selection {
        Some(selection) => {
            let selected = selected(store, selection).await?;
            if selected.is_empty() {
                return Ok(analysis.declined(format!(
                    "the selection names no units: no event with {} between {} and {}{}",
                    selection.named,
                    selection.from.to_rfc3339(),
                    selection.until.to_rfc3339(),
                    selection
                        .product
                        .as_deref()
                        .map(|p| format!(" of product {}", p.trim_end_matches("/21/")))
                        .unwrap_or_default()
                )));
            }
            let steps = attributes::own_steps(store, &selected, &request.steps).await?;
            (selected, steps)
        }
        None => {
            let failed = &request.failed;
            resolve(
                store,
                "failed",
                failed,
                &request.steps,
                &mut analysis.refused,
            )
            .await?
        }
    };
    analysis.failed_units = failed.len();
    if failed.len() < MIN_FAILED {
        return Ok(analysis.declined(format!(
            "{} known failed units; an analysis needs at least {MIN_FAILED}",
            failed.len()
        )));
    }
    let (baseline, mut baseline_attributes) = if request.baseline.is_empty() {
        match made_alongside(store, &failed, &failed_steps.first_seen, &request.steps).await? {
            Ok(baseline) => baseline,
            Err(too_many) => return Ok(analysis.declined(too_many)),
        }
    } else {
        refuse_overlap(&request.baseline, &failed)?;
        let baseline = &request.baseline;
        let (units, steps) = resolve(
            store,
            "baseline",
            baseline,
            &request.steps,
            &mut analysis.refused,
        )
        .await?;
        (units, steps.attributes)
    };
    analysis.baseline_units = baseline.len();
    if baseline.len() < MIN_BASELINE {
        return Ok(analysis.declined(format!(
            "{} good units to compare with; an analysis needs at least {MIN_BASELINE} (no \
             other units of these products were made in the failed units' period?)",
            baseline.len()
        )));
    }
    let mut failed_attributes = failed_steps.attributes;
    attributes::add_upstream(store, &failed, &mut failed_attributes).await?;
    attributes::add_upstream(store, &baseline, &mut baseline_attributes).await?;
    let holders = Holders::count(&failed_attributes, &baseline_attributes);
    let tested = holders.candidates();
    analysis.candidates_tested = tested.len();
    analysis.candidates = rank(&tested, &holders, &failed, &baseline, request);
    if analysis.candidates.is_empty() {
        let best = best_q(&tested, &holders, failed.len(), baseline.len());
        return Ok(analysis.declined(format!(
            "no shared attribute is significant at q ≤ {} ({} tested; the best q is {best:.3})",
            request.significance,
            tested.len()
        )));
    }
    Ok(analysis)
}

impl Analysis {
    fn declined(mut self, reason: String) -> Self {
        self.inconclusive = Some(reason);
        self.candidates.clear();
        self
    }
}

/// The canonical units of `written`, in order and once each, with their own steps (read
/// once: they also tell which units the projection knows); an identifier that is not one
/// or that no event has named is refused with its position.
async fn resolve(
    store: &ProjectionStore,
    field: &str,
    written: &[String],
    rules: &StepRules,
    refused: &mut Vec<Refused>,
) -> Result<(Vec<String>, OwnSteps), GenealogyError> {
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
    let mut seen = HashSet::new();
    let distinct: Vec<String> = named
        .iter()
        .filter(|(_, node)| seen.insert(node.as_str()))
        .map(|(_, node)| node.clone())
        .collect();
    let steps = attributes::own_steps(store, &distinct, rules).await?;
    let unknown: HashSet<&str> = distinct
        .iter()
        .zip(&steps.first_seen)
        .filter(|(_, first)| first.is_none())
        .map(|(unit, _)| unit.as_str())
        .collect();
    for (index, node) in &named {
        if unknown.contains(node.as_str()) {
            refused.push(Refused {
                field: format!("{field}[{index}]"),
                written: written[*index].clone(),
                reason: "unknown: no event has named it".to_owned(),
            });
        }
    }
    Ok(steps.of_seen(distinct))
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

/// The product part of a serialised unit's Digital Link (`…/01/<gtin>/21/`).
fn product_prefix(unit: &str) -> Option<&str> {
    let at = unit.find("/21/")?;
    unit.starts_with("https://id.gs1.org/01/")
        .then(|| &unit[..at + 4])
}

/// The other units of the failed units' products whose first event falls in the period
/// the failed units were first seen in (`failed_first_seen`), with the attributes of
/// their own steps.
///
/// Products with more units than an analysis reads ([`MAX_UNITS`]) are declined with the
/// reason (`Ok(Err(reason))`) rather than compared with some of their units: a baseline
/// cut at an arbitrary point would leave out whole days, and what the failed units of
/// those days share would look significant.
async fn made_alongside(
    store: &ProjectionStore,
    failed: &[String],
    failed_first_seen: &[Option<DateTime<Utc>>],
    rules: &StepRules,
) -> Result<Result<(Vec<String>, Vec<Attributes>), String>, GenealogyError> {
    let seen = failed_first_seen.iter().flatten();
    let (Some(from), Some(until)) = (seen.clone().min(), seen.max()) else {
        return Ok(Ok((Vec::new(), Vec::new())));
    };
    let products: BTreeSet<&str> = failed.iter().filter_map(|u| product_prefix(u)).collect();
    let failed: HashSet<&String> = failed.iter().collect();
    let mut candidates = Vec::new();
    for product in products {
        let units = store
            .nodes_starting_with(product, MAX_UNITS as u64 + 1)
            .await?;
        candidates.extend(units.into_iter().filter(|unit| !failed.contains(unit)));
        if candidates.len() > MAX_UNITS {
            return Ok(Err(format!(
                "the failed units' products have more than {MAX_UNITS} other units, more than \
                 an analysis reads; give the good units to compare with (baseline)"
            )));
        }
    }
    let steps = attributes::own_steps(store, &candidates, rules).await?;
    Ok(Ok(candidates
        .into_iter()
        .zip(steps.attributes)
        .zip(steps.first_seen)
        .filter(|(_, first)| first.is_some_and(|t| t >= *from && t <= *until))
        .map(|(unit_and_attributes, _)| unit_and_attributes)
        .unzip()))
}

/// Which failed and baseline units hold each attribute, and when it first appears among
/// the failed.
#[derive(Default)]
struct Holders {
    failed: HashMap<Attribute, Vec<usize>>,
    baseline: HashMap<Attribute, Vec<usize>>,
    first_seen: HashMap<Attribute, DateTime<Utc>>,
}

impl Holders {
    fn count(failed: &[Attributes], baseline: &[Attributes]) -> Self {
        let mut holders = Self::default();
        for (unit, attributes) in failed.iter().enumerate() {
            for (attribute, time) in attributes {
                holders
                    .failed
                    .entry(attribute.clone())
                    .or_default()
                    .push(unit);
                holders
                    .first_seen
                    .entry(attribute.clone())
                    .and_modify(|t| *t = (*t).min(*time))
                    .or_insert(*time);
            }
        }
        for (unit, attributes) in baseline.iter().enumerate() {
            for attribute in attributes.keys() {
                if holders.failed.contains_key(attribute) {
                    holders
                        .baseline
                        .entry(attribute.clone())
                        .or_default()
                        .push(unit);
                }
            }
        }
        holders
    }

    /// Attributes held by at least two failed units, in a stable order.
    fn candidates(&self) -> Vec<&Attribute> {
        let mut tested: Vec<&Attribute> = self
            .failed
            .iter()
            .filter(|(_, units)| units.len() >= 2)
            .map(|(attribute, _)| attribute)
            .collect();
        tested.sort();
        tested
    }

    fn table(&self, attribute: &Attribute, failed: usize, baseline: usize) -> Table {
        let failed_with = self.failed.get(attribute).map_or(0, Vec::len);
        let baseline_with = self.baseline.get(attribute).map_or(0, Vec::len);
        Table {
            failed_with: failed_with as u64,
            failed_without: (failed - failed_with) as u64,
            baseline_with: baseline_with as u64,
            baseline_without: (baseline - baseline_with) as u64,
        }
    }
}

fn best_q(tested: &[&Attribute], holders: &Holders, failed: usize, baseline: usize) -> f64 {
    let p: Vec<f64> = tested
        .iter()
        .map(|a| holders.table(a, failed, baseline).fisher_greater())
        .collect();
    stats::benjamini_hochberg(&p)
        .into_iter()
        .fold(1.0, f64::min)
}

/// The significant candidates, ranked by q then relative risk; the members of a group
/// follow its best.
fn rank(
    tested: &[&Attribute],
    holders: &Holders,
    failed: &[String],
    baseline: &[String],
    request: &Request,
) -> Vec<Candidate> {
    let tables: Vec<Table> = tested
        .iter()
        .map(|a| holders.table(a, failed.len(), baseline.len()))
        .collect();
    let p_values: Vec<f64> = tables.iter().map(Table::fisher_greater).collect();
    let q_values = stats::benjamini_hochberg(&p_values);
    let mut significant: Vec<usize> = (0..tested.len())
        .filter(|&i| q_values[i] <= request.significance)
        .collect();
    let risks: Vec<RelativeRisk> = tables.iter().map(|t| t.relative_risk(0.95)).collect();
    significant.sort_by(|&x, &y| {
        q_values[x]
            .total_cmp(&q_values[y])
            .then(risks[y].estimate.total_cmp(&risks[x].estimate))
            .then(tested[x].cmp(tested[y]))
    });
    significant.truncate(request.max_candidates);
    let mut candidates: Vec<Candidate> = significant
        .into_iter()
        .map(|i| {
            let attribute = tested[i];
            let units = |side: &HashMap<Attribute, Vec<usize>>, names: &[String], most| {
                side.get(attribute)
                    .into_iter()
                    .flatten()
                    .take(most)
                    .map(|&u| names[u].clone())
                    .collect()
            };
            Candidate {
                attribute: attribute.clone(),
                table: tables[i],
                p_value: p_values[i],
                q_value: q_values[i],
                risk: risks[i],
                group: 0,
                indistinguishable: false,
                failed_units: units(&holders.failed, failed, FAILED_EVIDENCE),
                baseline_units: units(&holders.baseline, baseline, BASELINE_EVIDENCE),
                first_seen: holders.first_seen[attribute],
            }
        })
        .collect();
    group(&mut candidates, holders);
    // A group's members together, at the rank of its best one.
    candidates.sort_by_key(|c| c.group);
    candidates
}

/// Numbers candidates by group (1, 2, … in rank order): candidates whose failed and
/// baseline holders overlap by [`SAME_UNITS`] or more share one, and are flagged.
fn group(candidates: &mut [Candidate], holders: &Holders) {
    let held: Vec<(BTreeSet<usize>, BTreeSet<usize>)> = candidates
        .iter()
        .map(|c| {
            let set = |side: &HashMap<Attribute, Vec<usize>>| {
                side.get(&c.attribute)
                    .into_iter()
                    .flatten()
                    .copied()
                    .collect()
            };
            (set(&holders.failed), set(&holders.baseline))
        })
        .collect();
    let mut groups = 0;
    for i in 0..candidates.len() {
        let joined = (0..i).find(|&j| similar(&held[i], &held[j]) >= SAME_UNITS);
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

/// Jaccard similarity of two candidates' holders, failed and baseline alike.
fn similar(a: &(BTreeSet<usize>, BTreeSet<usize>), b: &(BTreeSet<usize>, BTreeSet<usize>)) -> f64 {
    let common = a.0.intersection(&b.0).count() + a.1.intersection(&b.1).count();
    let all = a.0.union(&b.0).count() + a.1.union(&b.1).count();
    if all == 0 {
        0.0
    } else {
        common as f64 / all as f64
    }
}
