//! What is upstream of each unit: the lots and parts it was made from or belongs to, and
//! the parties they were received from, by interned ids.
//!
//! The ancestry of all the units is read once, breadth-first, one statement per level and
//! link direction (a lot shared by a hundred thousand units is read once), then each
//! node's ancestors are worked out from its parents'. An analysis keeps only the
//! candidates among them for its good units ([`Wanted::Only`]), so a unit's list stays a
//! few keys long however deep its ancestry.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::attributes::{Key, UnitKeys, Wanted};
use crate::{
    errors::GenealogyError,
    facts::LinkKind,
    graph::{self, Direction},
    store::{LinkEnd, ProjectionStore},
};

/// How many levels upstream the walk goes.
const MAX_DEPTH: usize = 32;

/// What is upstream of each of `units` (distinct node ids), in their order.
pub async fn upstream(
    store: &ProjectionStore,
    units: &[i64],
    wanted: Wanted<'_>,
) -> Result<Vec<UnitKeys>, GenealogyError> {
    let ancestry = Ancestry::read(store, units, wanted).await?;
    let mut ancestors = ancestry.ancestors(wanted);
    ancestors.truncate(units.len());
    Ok(ancestors)
}

/// A link from a node to what it came from.
struct Parent {
    node: usize,
    /// Over a `ReceivedFrom` link: the parent is the supplier, and the walk ends there.
    supplier: bool,
    time: DateTime<Utc>,
}

/// A link read: (child, parent, supplier, the event that made it).
type Reached = (usize, usize, bool, i64);

/// The units and everything upstream of them, numbered in the order reached (the units
/// first).
#[derive(Default)]
struct Ancestry {
    nodes: Vec<i64>,
    numbers: HashMap<i64, usize>,
    parents: Vec<Vec<Parent>>,
}

impl Ancestry {
    async fn read(
        store: &ProjectionStore,
        units: &[i64],
        wanted: Wanted<'_>,
    ) -> Result<Self, GenealogyError> {
        let mut ancestry = Self::default();
        let mut reached: Vec<Reached> = Vec::new();
        let mut frontier: Vec<i64> = Vec::new();
        for unit in units {
            if ancestry.reach(*unit).1 {
                frontier.push(*unit);
            }
        }
        for _ in 0..MAX_DEPTH {
            if frontier.is_empty() {
                break;
            }
            let mut next = Vec::new();
            let steps = graph::steps(Direction::Backward);
            let reads = steps
                .iter()
                .map(|step| store.link_ends_at(&frontier, step.end, step.kinds));
            let links = futures::future::try_join_all(reads).await?;
            for (step, links) in steps.iter().zip(links) {
                for link in links {
                    let (near, far) = match step.end {
                        LinkEnd::From => (link.from_node, link.to_node),
                        LinkEnd::To => (link.to_node, link.from_node),
                    };
                    let supplier = link.kind == LinkKind::ReceivedFrom.code();
                    let (parent, new) = ancestry.reach(far);
                    let child = ancestry.numbers[&near];
                    reached.push((child, parent, supplier, link.sequence));
                    if new && !supplier {
                        next.push(far);
                    }
                }
            }
            frontier = next;
        }
        ancestry.link(store, reached, wanted).await?;
        Ok(ancestry)
    }

    /// Records the links `reached`, timed when every ancestor is `wanted`.
    async fn link(
        &mut self,
        store: &ProjectionStore,
        reached: Vec<Reached>,
        wanted: Wanted<'_>,
    ) -> Result<(), GenealogyError> {
        let times = match wanted {
            Wanted::All => {
                let mut sequences: Vec<i64> = reached.iter().map(|link| link.3).collect();
                sequences.sort_unstable();
                sequences.dedup();
                store.event_times(&sequences).await?
            }
            Wanted::Only(_) => HashMap::new(),
        };
        for (child, parent, supplier, sequence) in reached {
            self.parents[child].push(Parent {
                node: parent,
                supplier,
                time: times.get(&sequence).copied().unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// The number of `node`, and whether it is newly reached.
    fn reach(&mut self, node: i64) -> (usize, bool) {
        if let Some(number) = self.numbers.get(&node) {
            return (*number, false);
        }
        let number = self.nodes.len();
        self.nodes.push(node);
        self.numbers.insert(node, number);
        self.parents.push(Vec::new());
        (number, true)
    }

    /// Each node's ancestors (those `wanted`), sorted by key, each once with its
    /// earliest time. Parents are mostly reached after their children, so working from the
    /// last reached node back settles a tree in one pass; a pass that changes nothing ends
    /// it (links back to an earlier node, and cycles, take more).
    fn ancestors(&self, wanted: Wanted<'_>) -> Vec<UnitKeys> {
        let mut ancestors: Vec<UnitKeys> = vec![UnitKeys::new(); self.nodes.len()];
        for _ in 0..=MAX_DEPTH {
            let mut changed = false;
            for child in (0..self.nodes.len()).rev() {
                let mut found = UnitKeys::new();
                for parent in &self.parents[child] {
                    let link = (self.nodes[parent.node], parent.supplier, parent.time);
                    inherit(&mut found, link, &ancestors[parent.node], wanted);
                }
                earliest_once(&mut found);
                if found != ancestors[child] {
                    ancestors[child] = found;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        ancestors
    }
}

/// Adds to `found` what a node holds through one link to a parent, (parent, over a
/// supplier link, time): the parent itself where `wanted`, and the parent's `ancestors`
/// unless the parent is the supplier, where a walk upstream ends.
pub fn inherit(
    found: &mut UnitKeys,
    (node, supplier, time): (i64, bool, DateTime<Utc>),
    ancestors: &[(Key, DateTime<Utc>)],
    wanted: Wanted<'_>,
) {
    let key = Key::Upstream { node, supplier };
    if wanted.keeps(&key) {
        found.push((key, time));
    }
    if !supplier {
        found.extend_from_slice(ancestors);
    }
}

/// Sorts `keys` and keeps each once, with its earliest time.
pub fn earliest_once(keys: &mut UnitKeys) {
    keys.sort_unstable();
    keys.dedup_by(|later, earlier| later.0 == earlier.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn at(hour: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(i64::from(hour) * 3600, 0).expect("a time")
    }

    /// Nodes 1..=n, with `links` (child, parent, supplier, hour).
    fn ancestry(n: i64, links: &[(i64, i64, bool, u32)]) -> Ancestry {
        let mut ancestry = Ancestry::default();
        for node in 1..=n {
            ancestry.reach(node);
        }
        for &(child, parent, supplier, hour) in links {
            let parent = ancestry.numbers[&parent];
            ancestry.parents[ancestry.numbers[&child]].push(Parent {
                node: parent,
                supplier,
                time: at(hour),
            });
        }
        ancestry
    }

    fn upstream(node: i64, supplier: bool) -> Key {
        Key::Upstream { node, supplier }
    }

    #[test]
    fn ancestors_reach_through_lots_once_each_and_stop_at_the_supplier() {
        // Unit 1 from lots 2 and 3, both from material lot 4 (received from party 5, which
        // was itself "made" from 6: a walk never goes past a supplier).
        let links = [
            (1, 2, false, 5),
            (1, 3, false, 6),
            (2, 4, false, 3),
            (3, 4, false, 2),
            (4, 5, true, 1),
            (5, 6, false, 0),
        ];
        let found = ancestry(6, &links).ancestors(Wanted::All);
        assert_eq!(
            found[0],
            vec![
                (upstream(2, false), at(5)),
                (upstream(3, false), at(6)),
                (upstream(4, false), at(2)),
                (upstream(5, true), at(1)),
            ]
        );
    }

    #[test]
    fn a_cycle_settles_and_keep_leaves_only_candidates() {
        // 1 ← 2 ← 3 ← 2 (a container packed back into what it held), 3 ← 4.
        let links = [
            (1, 2, false, 1),
            (2, 3, false, 2),
            (3, 2, false, 3),
            (3, 4, false, 4),
        ];
        let keep: HashSet<Key> = [upstream(4, false)].into();
        let found = ancestry(4, &links).ancestors(Wanted::Only(&keep));
        assert_eq!(found[0], vec![(upstream(4, false), at(4))]);
        let all = ancestry(4, &links).ancestors(Wanted::All);
        assert_eq!(all[0].len(), 3, "{:?}", all[0]);
    }
}
