//! The packing rule: a child already inside one parent cannot be packed into another
//! without being unpacked first (an AggregationEvent DELETE). Pure: the caller supplies
//! where each child was last packed; the batch is judged in order.

use std::collections::HashMap;

use tracery_epcis::{
    Event,
    effects::{Effects, Unpacking},
};

use crate::validation::{Finding, Policy};

/// Where children are, by canonical child identifier: `Some((parent, event))` while packed.
#[derive(Debug, Default, Clone)]
pub struct Containment {
    parents: HashMap<String, Option<(String, String)>>,
}

/// The children that an AggregationEvent ADD or OBSERVE puts into a parent, canonical.
pub fn packed_children(effects: &Effects) -> Vec<String> {
    effects
        .packing
        .iter()
        .flat_map(|packing| packing.children.iter().map(|c| c.node.clone()))
        .collect()
}

impl Containment {
    /// A ledger from what the store knows: child → where it was last packed.
    pub fn new(known: impl IntoIterator<Item = (String, Option<(String, String)>)>) -> Self {
        Self {
            parents: known.into_iter().collect(),
        }
    }

    /// The packing finding for `event`, if it packs a child that sits in another parent.
    pub fn check(&self, event: &Event, policy: &Policy) -> Vec<Finding> {
        self.check_effects(&event.effects(), policy)
    }

    /// [`Self::check`] with the event's effects computed already.
    pub fn check_effects(&self, effects: &Effects, policy: &Policy) -> Vec<Finding> {
        let Some(severity) = policy.already_packed else {
            return Vec::new();
        };
        let Some(packing) = &effects.packing else {
            return Vec::new();
        };
        let mut findings = Vec::new();
        for child in &packing.children {
            if let Some(Some((other, by))) = self.parents.get(&child.node)
                && *other != packing.parent
            {
                findings.push(Finding {
                    field: child.field.clone(),
                    code: "ALREADY_PACKED".to_owned(),
                    message: format!(
                        "`{}` is inside `{other}` since event `{by}`; unpack it first (AggregationEvent DELETE)",
                        child.written
                    ),
                    severity,
                });
            }
        }
        findings
    }

    /// Records what an accepted event did to containment.
    pub fn record(&mut self, event: &Event) {
        self.record_effects(event, &event.effects());
    }

    /// [`Self::record`] with the event's effects computed already.
    pub fn record_effects(&mut self, event: &Event, effects: &Effects) {
        let in_parent = |place: &Option<(String, String)>, parent: &str| {
            place.as_ref().is_some_and(|(p, _)| p == parent)
        };
        match &effects.unpacking {
            Some(Unpacking::Everything { parent }) => {
                for place in self.parents.values_mut() {
                    if in_parent(place, parent) {
                        *place = None;
                    }
                }
            }
            Some(Unpacking::Children { parent, children }) => {
                for child in children {
                    // A child is taken out of this parent only; one elsewhere stays there.
                    match self.parents.get_mut(child) {
                        Some(place) if in_parent(place, parent) => *place = None,
                        Some(_) => {}
                        None => {
                            self.parents.insert(child.clone(), None);
                        }
                    }
                }
            }
            None => {}
        }
        if let Some(packing) = &effects.packing {
            let event_id = event.event_id.clone().unwrap_or_default();
            for child in &packing.children {
                self.parents.insert(
                    child.node.clone(),
                    Some((packing.parent.clone(), event_id.clone())),
                );
            }
        }
    }
}
