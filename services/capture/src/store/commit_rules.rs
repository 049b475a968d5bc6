//! The rules whose answer depends on what other requests stored a moment ago — commissioning
//! an identifier twice, using a retired one, packing a child that is inside another parent —
//! decided again inside the append transaction, under the append lock, against the state
//! that transaction reads ([`super::lifecycle`], [`super::placements`]) and in the order the
//! group's events are stored. Two requests racing for the same serial are decided one after
//! the other: the first is stored, the second quarantined naming the first.
//!
//! This is the only place these rules are decided: no request asks identity first. A
//! `reject` finding quarantines the event; a `warn` finding is kept with it.

use std::{
    collections::{HashMap, HashSet},
    ops::Range,
};

use sea_orm::ConnectionTrait;
use tracery_epcis::{Event, effects::Effects, json};
use tracery_runtime::error::Violation;

use super::{event_store_key, lifecycle, placements};
use crate::{
    containment::{Containment, packed_children},
    domain::{Admission, CaptureError, Channel, Rejected},
    state_rules::Ledger,
    validation::{Finding, Policy, Severity},
};

/// For each admission of the group, in order, what replaces it when its event breaks one
/// of the rules against the stored state and the group's earlier events: the quarantined
/// admission, or the accepted one with the rule's warnings (`None`: it stands as it is).
/// The caller applies them once the transaction commits.
///
/// `rollbacks` are the admissions' ranges of batches that are all or nothing
/// ([`ErrorBehaviour::Rollback`](crate::domain::ErrorBehaviour)): when one of their events
/// is refused, here or before, all of them are quarantined and the state is as if none
/// had come.
///
/// `stored` holds the store keys of the group's events stored already: a resent event is a
/// duplicate, whatever happened to its identifiers since, and is not judged again.
pub async fn decide(
    conn: &impl ConnectionTrait,
    policy: &Policy,
    group: &[(&Admission, Channel)],
    rollbacks: &[Range<usize>],
    stored: &HashMap<String, i64>,
) -> Result<Vec<Option<Admission>>, CaptureError> {
    // What each judged event does, worked out once for every rule that reads it.
    let effects: Vec<Option<Effects>> = group
        .iter()
        .map(|(admission, _)| match admission {
            Admission::Accept { event, .. } if !stored.contains_key(&event_store_key(event)) => {
                Some(event.effects())
            }
            _ => None,
        })
        .collect();
    let all: Vec<&Effects> = effects.iter().flatten().collect();
    if all.is_empty() && rollbacks.is_empty() {
        return Ok(vec![None; group.len()]);
    }
    let mut judge = Judge {
        policy,
        ledger: Ledger::new(lifecycle::states_of(conn, &identifiers(&all)).await?),
        containment: containment_of(conn, &all).await?,
    };
    let mut replacements = Vec::with_capacity(group.len());
    let mut open: Option<(Range<usize>, Judge)> = None;
    for (index, ((admission, channel), effects)) in group.iter().zip(&effects).enumerate() {
        if let Some(range) = rollbacks.iter().find(|range| range.start == index) {
            open = Some((range.clone(), judge.clone()));
        }
        replacements.push(match (admission, effects) {
            (Admission::Accept { event, warnings }, Some(effects)) => {
                judge.judge(event, warnings, effects, *channel)
            }
            _ => None,
        });
        let Some((range, before)) = open.take_if(|(range, _)| range.end == index + 1) else {
            continue;
        };
        let refused = |i: usize| {
            matches!(
                replacements[i].as_ref().unwrap_or(group[i].0),
                Admission::Reject(_)
            )
        };
        if range.clone().any(refused) {
            judge = before;
            for i in range {
                let admission = replacements[i].take().unwrap_or_else(|| group[i].0.clone());
                replacements[i] = Some(admission.rolled_back(group[i].1));
            }
        }
    }
    Ok(replacements)
}

/// The state the rules read, as the group's events are decided one after the other.
#[derive(Clone)]
struct Judge<'a> {
    policy: &'a Policy,
    ledger: Ledger,
    containment: Containment,
}

impl Judge<'_> {
    /// Decides one accepted event and records what it did when it stands; returns its
    /// replacement when a rule found something.
    fn judge(
        &mut self,
        event: &Event,
        warnings: &[Violation],
        effects: &Effects,
        channel: Channel,
    ) -> Option<Admission> {
        let findings: Vec<Finding> = self
            .ledger
            .check_effects(event, effects, self.policy)
            .into_iter()
            .chain(self.containment.check_effects(effects, self.policy))
            .collect();
        let refused = findings.iter().any(|f| f.severity == Severity::Reject);
        if !refused {
            self.ledger.record_effects(event, effects);
            self.containment.record_effects(event, effects);
        }
        if findings.is_empty() {
            return None;
        }
        let violations: Vec<Violation> = warnings
            .iter()
            .cloned()
            .chain(findings.iter().map(Finding::to_violation))
            .collect();
        Some(if refused {
            Admission::Reject(Rejected {
                payload: Some(json::event_to_json(event).to_string()),
                payload_protobuf: None,
                violations,
                channel,
            })
        } else {
            Admission::Accept {
                event: Box::new(event.clone()),
                warnings: violations,
            }
        })
    }
}

/// Every instance identifier the events name, once.
fn identifiers(effects: &[&Effects]) -> Vec<String> {
    let mut seen = HashSet::new();
    effects
        .iter()
        .flat_map(|effects| &effects.names)
        .filter(|named| seen.insert(named.written.as_str()))
        .map(|named| named.written.clone())
        .collect()
}

/// Where the children the events pack are now.
async fn containment_of(
    conn: &impl ConnectionTrait,
    effects: &[&Effects],
) -> Result<Containment, CaptureError> {
    let mut children: Vec<String> = effects.iter().flat_map(|e| packed_children(e)).collect();
    children.sort_unstable();
    children.dedup();
    let placed = placements::placements_of(conn, &children).await?;
    Ok(Containment::new(placed.into_iter().map(
        |(child, place)| (child, Some((place.parent, place.event_id))),
    )))
}
