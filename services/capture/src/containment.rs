//! The packing rule: a child already inside one parent cannot be packed into another
//! without being unpacked first (an AggregationEvent DELETE). Pure: the caller supplies
//! where each child was last packed; the batch is judged in order.

use std::collections::HashMap;

use tracery_epcis::{Action, Event, EventKind};

use crate::{
    store::keys::canonical,
    validation::{Finding, Policy},
};

/// Where children are, by canonical child identifier: `Some((parent, event))` while packed.
#[derive(Debug, Default)]
pub struct Containment {
    parents: HashMap<String, Option<(String, String)>>,
}

/// The children that an AggregationEvent ADD or OBSERVE puts into a parent, canonical.
pub fn packed_children(event: &Event) -> Vec<String> {
    match &event.kind {
        EventKind::Aggregation(e) if e.action != Action::Delete && e.parent_id.is_some() => {
            e.child_epcs.iter().map(|c| canonical(c)).collect()
        }
        _ => Vec::new(),
    }
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
        let Some(severity) = policy.already_packed else {
            return Vec::new();
        };
        let EventKind::Aggregation(aggregation) = &event.kind else {
            return Vec::new();
        };
        let Some(parent) = aggregation.parent_id.as_deref().map(canonical) else {
            return Vec::new();
        };
        if aggregation.action == Action::Delete {
            return Vec::new();
        }
        let mut findings = Vec::new();
        for (index, child) in aggregation.child_epcs.iter().enumerate() {
            if let Some(Some((other, by))) = self.parents.get(&canonical(child))
                && *other != parent
            {
                findings.push(Finding {
                    field: format!("childEPCs/{index}"),
                    code: "ALREADY_PACKED".to_owned(),
                    message: format!(
                        "`{child}` is inside `{other}` since event `{by}`; unpack it first (AggregationEvent DELETE)"
                    ),
                    severity,
                });
            }
        }
        findings
    }

    /// Records what an accepted event did to containment.
    pub fn record(&mut self, event: &Event) {
        let EventKind::Aggregation(aggregation) = &event.kind else {
            return;
        };
        let Some(parent) = aggregation.parent_id.as_deref().map(canonical) else {
            return;
        };
        let event_id = event.event_id.clone().unwrap_or_default();
        match aggregation.action {
            Action::Delete if aggregation.child_epcs.is_empty() => {
                // Everything is taken out of the parent.
                for place in self.parents.values_mut() {
                    if place.as_ref().is_some_and(|(p, _)| *p == parent) {
                        *place = None;
                    }
                }
            }
            Action::Delete => {
                for child in &aggregation.child_epcs {
                    self.parents.insert(canonical(child), None);
                }
            }
            Action::Add | Action::Observe => {
                for child in &aggregation.child_epcs {
                    self.parents
                        .insert(canonical(child), Some((parent.clone(), event_id.clone())));
                }
            }
        }
    }
}
