//! Trace queries over the link table: breadth-first, one statement per level and
//! direction, so a trace of depth d costs about 2·d indexed lookups whatever the size of
//! the plant.
//!
//! - Backward (where did this come from): the inputs it was made from, the lot a serial
//!   belongs to, what was packed into a container, and the party it was received from.
//! - Forward (where did this go): what it was made into, the serials of a lot, every
//!   container that held it, and where it was shipped.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::{
    errors::GenealogyError,
    facts::{self, LinkKind},
    store::{HistoryRow, Link, LinkEnd, ProjectionStore},
};

/// Trace direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Where did this come from.
    Backward,
    /// Where did this go.
    Forward,
}

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeKind {
    /// One serialised instance.
    Instance,
    /// A lot or class.
    Lot,
    /// A party or location shipped to.
    Party,
}

/// Limits of one trace.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Only links begun at or before this time.
    pub as_of: Option<DateTime<Utc>>,
    /// Only links begun at or after this time (recall windows).
    pub since: Option<DateTime<Utc>>,
    pub max_depth: usize,
    pub max_nodes: usize,
}

/// A trace: nodes with their distance, the links walked, and whether a limit cut it.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    pub nodes: Vec<(String, NodeKind, usize)>,
    pub links: Vec<Link>,
    pub truncated: bool,
}

/// One step of the walk: which end of a link matches the frontier, which link kinds.
pub(crate) struct Step {
    pub(crate) end: LinkEnd,
    pub(crate) kinds: &'static [LinkKind],
}

pub(crate) fn steps(direction: Direction) -> [Step; 2] {
    match direction {
        Direction::Backward => [
            Step {
                end: LinkEnd::To,
                kinds: &[
                    LinkKind::TransformedInto,
                    LinkKind::ContainedIn,
                    LinkKind::ReceivedFrom,
                ],
            },
            Step {
                end: LinkEnd::From,
                kinds: &[LinkKind::MemberOfLot],
            },
        ],
        Direction::Forward => [
            Step {
                end: LinkEnd::From,
                kinds: &[
                    LinkKind::TransformedInto,
                    LinkKind::ContainedIn,
                    LinkKind::ShippedTo,
                ],
            },
            Step {
                end: LinkEnd::To,
                kinds: &[LinkKind::MemberOfLot],
            },
        ],
    }
}

/// The kind of a node reached over `link` at its `far` end.
pub(crate) fn kind_of(node: &str, reached_by: Option<&Link>) -> NodeKind {
    let party_end = |l: &Link| {
        (l.kind == LinkKind::ShippedTo.code() && l.to_node == node)
            || (l.kind == LinkKind::ReceivedFrom.code() && l.from_node == node)
    };
    if reached_by.is_some_and(party_end) {
        NodeKind::Party
    } else if facts::is_lot(node) {
        NodeKind::Lot
    } else {
        NodeKind::Instance
    }
}

/// Traces from `starts` in `direction`.
pub async fn trace(
    store: &ProjectionStore,
    starts: &[String],
    direction: Direction,
    limits: Limits,
) -> Result<Trace, GenealogyError> {
    let mut trace = Trace::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut frontier: Vec<String> = Vec::new();
    for start in starts {
        let node = facts::node_id(start);
        if seen.insert(node.clone()) {
            trace.nodes.push((node.clone(), kind_of(&node, None), 0));
            frontier.push(node);
        }
    }
    let mut walked: HashSet<i64> = HashSet::new();
    for depth in 1.. {
        if frontier.is_empty() {
            break;
        }
        if depth > limits.max_depth {
            trace.truncated = true;
            break;
        }
        let mut next = Vec::new();
        for step in steps(direction) {
            let links = store
                .links_at(&frontier, step.end, step.kinds, limits.as_of)
                .await?;
            for link in links {
                if limits.since.is_some_and(|since| link.event_time < since)
                    || !walked.insert(link.id)
                {
                    continue;
                }
                let far = match step.end {
                    LinkEnd::From => link.to_node.clone(),
                    LinkEnd::To => link.from_node.clone(),
                };
                // A party is where things went or came from; the trace ends there.
                let is_party = link.kind == LinkKind::ShippedTo.code()
                    || link.kind == LinkKind::ReceivedFrom.code();
                if seen.insert(far.clone()) {
                    if trace.nodes.len() >= limits.max_nodes {
                        trace.truncated = true;
                        return Ok(trace);
                    }
                    trace
                        .nodes
                        .push((far.clone(), kind_of(&far, Some(&link)), depth));
                    if !is_party {
                        next.push(far);
                    }
                }
                trace.links.push(link);
            }
        }
        frontier = next;
    }
    Ok(trace)
}

/// A containment tree node.
#[derive(Debug, Clone, PartialEq)]
pub struct Contained {
    pub id: String,
    pub packed_at: Option<DateTime<Utc>>,
    pub children: Vec<Contained>,
}

/// Whether containment `link` held at `at` (now when absent).
fn held_at(link: &Link, at: Option<DateTime<Utc>>) -> bool {
    match at {
        Some(at) => link.event_time <= at && link.end_time.is_none_or(|end| end > at),
        None => link.end_time.is_none(),
    }
}

/// What `container` held at `at` (now when absent), nested.
pub async fn contents(
    store: &ProjectionStore,
    container: &str,
    at: Option<DateTime<Utc>>,
    max_nodes: usize,
) -> Result<Contained, GenealogyError> {
    let root = facts::node_id(container);
    let mut children_of: HashMap<String, Vec<(String, DateTime<Utc>)>> = HashMap::new();
    let mut frontier = vec![root.clone()];
    let mut seen: HashSet<String> = HashSet::from([root.clone()]);
    while !frontier.is_empty() && seen.len() < max_nodes {
        let links = store
            .links_at(&frontier, LinkEnd::To, &[LinkKind::ContainedIn], at)
            .await?;
        let mut next = Vec::new();
        for link in links.into_iter().filter(|l| held_at(l, at)) {
            if seen.insert(link.from_node.clone()) {
                next.push(link.from_node.clone());
                children_of
                    .entry(link.to_node.clone())
                    .or_default()
                    .push((link.from_node, link.event_time));
            }
        }
        frontier = next;
    }
    fn build(
        id: String,
        packed_at: Option<DateTime<Utc>>,
        children_of: &HashMap<String, Vec<(String, DateTime<Utc>)>>,
    ) -> Contained {
        let mut children: Vec<Contained> = children_of
            .get(&id)
            .map(|kids| {
                kids.iter()
                    .map(|(kid, at)| build(kid.clone(), Some(*at), children_of))
                    .collect()
            })
            .unwrap_or_default();
        children.sort_by(|a, b| a.id.cmp(&b.id));
        Contained {
            id,
            packed_at,
            children,
        }
    }
    Ok(build(root, None, &children_of))
}

/// Where something is, as far as the events say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Whereabouts {
    pub id: String,
    pub location: Option<String>,
    pub read_point: Option<String>,
    pub disposition: Option<String>,
    /// Innermost current container.
    pub container: Option<String>,
    /// Outermost current container.
    pub outermost: Option<String>,
    pub custodian: Option<String>,
    pub last_event: Option<(String, DateTime<Utc>)>,
}

/// Where `written` is: see [`where_are`].
pub async fn where_is(
    store: &ProjectionStore,
    written: &str,
) -> Result<Whereabouts, GenealogyError> {
    let node = facts::node_id(written);
    let mut found = where_are(store, std::slice::from_ref(&node)).await?;
    Ok(found.pop().unwrap_or(Whereabouts {
        id: node,
        ..Whereabouts::default()
    }))
}

/// Where each of `nodes` is: the latest value of each field over the histories of the
/// node and its current containers (a unit shipped inside a pallet is where the pallet
/// is). Containment chains are walked one level for all nodes at a time, and histories
/// read with one query per chunk of nodes.
pub async fn where_are(
    store: &ProjectionStore,
    nodes: &[String],
) -> Result<Vec<Whereabouts>, GenealogyError> {
    let mut parent_of: HashMap<String, String> = HashMap::new();
    let mut seen: HashSet<String> = nodes.iter().cloned().collect();
    let mut frontier: Vec<String> = seen.iter().cloned().collect();
    while !frontier.is_empty() {
        let links = store
            .links_at(&frontier, LinkEnd::From, &[LinkKind::ContainedIn], None)
            .await?;
        let mut latest: HashMap<String, Link> = HashMap::new();
        for link in links.into_iter().filter(|l| l.end_time.is_none()) {
            let newer = latest.get(&link.from_node).is_none_or(|held| {
                (link.event_time, link.sequence) > (held.event_time, held.sequence)
            });
            if newer {
                latest.insert(link.from_node.clone(), link);
            }
        }
        frontier = Vec::new();
        for (child, link) in latest {
            if seen.insert(link.to_node.clone()) {
                frontier.push(link.to_node.clone());
            }
            parent_of.insert(child, link.to_node);
        }
    }
    let holders: Vec<String> = seen.into_iter().collect();
    let mut histories: HashMap<String, Vec<HistoryRow>> = HashMap::new();
    for row in store.histories(&holders).await? {
        histories
            .entry(row.identifier.clone())
            .or_default()
            .push(row);
    }
    let mut out = Vec::with_capacity(nodes.len());
    for node in nodes {
        let mut chain: Vec<String> = Vec::new();
        let mut current = node;
        while let Some(parent) = parent_of.get(current) {
            if parent == node || chain.contains(parent) {
                break;
            }
            chain.push(parent.clone());
            current = parent;
        }
        let mut rows: Vec<&HistoryRow> = std::iter::once(node)
            .chain(&chain)
            .filter_map(|holder| histories.get(holder))
            .flatten()
            .collect();
        rows.sort_by_key(|row| std::cmp::Reverse((row.event_time, row.sequence)));
        let latest = |pick: fn(&HistoryRow) -> Option<&String>| {
            rows.iter().find_map(|row| pick(row).cloned())
        };
        out.push(Whereabouts {
            location: latest(|r| r.biz_location.as_ref()),
            read_point: latest(|r| r.read_point.as_ref()),
            disposition: latest(|r| r.disposition.as_ref()),
            custodian: latest(|r| r.custodian.as_ref()),
            last_event: rows
                .iter()
                .find(|r| r.identifier == *node)
                .map(|r| (r.event_id.clone(), r.event_time)),
            container: chain.first().cloned(),
            outermost: chain.last().cloned(),
            id: node.clone(),
        });
    }
    Ok(out)
}

/// One affected item of a recall.
#[derive(Debug, Clone, PartialEq)]
pub struct Affected {
    pub id: String,
    pub kind: NodeKind,
    pub whereabouts: Whereabouts,
}

/// A recall: every instance and lot reached forward from `starts`, with where each is.
#[derive(Debug, Clone, Default)]
pub struct Recall {
    pub items: Vec<Affected>,
    pub truncated: bool,
}

impl Recall {
    /// Counts of items per value of one grouping (`(none)` for items without one).
    pub fn counts(&self, key: impl Fn(&Affected) -> Option<String>) -> Vec<(String, i64)> {
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for item in &self.items {
            *counts
                .entry(key(item).unwrap_or_else(|| "(none)".to_owned()))
                .or_default() += 1;
        }
        counts.into_iter().collect()
    }
}

/// The recall scope of `starts`.
pub async fn recall(
    store: &ProjectionStore,
    starts: &[String],
    limits: Limits,
) -> Result<Recall, GenealogyError> {
    let trace = trace(store, starts, Direction::Forward, limits).await?;
    let affected: Vec<(String, NodeKind)> = trace
        .nodes
        .into_iter()
        .filter(|(_, kind, depth)| *depth > 0 && *kind != NodeKind::Party)
        .map(|(id, kind, _)| (id, kind))
        .collect();
    let ids: Vec<String> = affected.iter().map(|(id, _)| id.clone()).collect();
    let whereabouts = where_are(store, &ids).await?;
    let mut items: Vec<Affected> = affected
        .into_iter()
        .zip(whereabouts)
        .map(|((id, kind), whereabouts)| Affected {
            id,
            kind,
            whereabouts,
        })
        .collect();
    items.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Recall {
        items,
        truncated: trace.truncated,
    })
}
