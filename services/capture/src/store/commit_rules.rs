//! The rules whose answer depends on what other requests stored a moment ago — commissioning
//! an identifier twice, using a retired one, packing a child that is inside another parent —
//! decided again inside the append transaction, under the append lock, against the state
//! that transaction reads ([`super::lifecycle`], [`super::placements`]) and in the order the
//! group's events are stored. Two requests racing for the same serial are decided one after
//! the other: the first is stored, the second quarantined naming the first.
//!
//! This is the only place these rules are decided: no request asks identity first. A
//! `reject` finding quarantines the event; a `warn` finding is kept with it.

use std::collections::{HashMap, HashSet};

use sea_orm::ConnectionTrait;
use tracery_epcis::{Event, json};
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
/// admission, or the accepted one with the rule's warnings (`None`: it stands as it is). The caller applies them once the transaction commits.
///
/// `stored` holds the store keys of the group's events stored already: a resent event is a
/// duplicate, whatever happened to its identifiers since, and is not judged again.
pub async fn decide(
    conn: &impl ConnectionTrait,
    policy: &Policy,
    group: &[(&Admission, Channel)],
    stored: &HashMap<String, i64>,
) -> Result<Vec<Option<Admission>>, CaptureError> {
    let mut replacements = vec![None; group.len()];
    let judged: Vec<&Event> = group
        .iter()
        .filter_map(|(admission, _)| match admission {
            Admission::Accept { event, .. } if !stored.contains_key(&event_store_key(event)) => {
                Some(event.as_ref())
            }
            _ => None,
        })
        .collect();
    if judged.is_empty() {
        return Ok(replacements);
    }
    let mut ledger = Ledger::new(lifecycle::states_of(conn, &identifiers(&judged)).await?);
    let mut containment = containment_of(conn, &judged).await?;
    for ((admission, channel), replacement) in group.iter().zip(&mut replacements) {
        let Admission::Accept { event, warnings } = admission else {
            continue;
        };
        if stored.contains_key(&event_store_key(event)) {
            continue;
        }
        let findings: Vec<Finding> = ledger
            .check(event, policy)
            .into_iter()
            .chain(containment.check(event, policy))
            .collect();
        if findings.is_empty() {
            ledger.record(event);
            containment.record(event);
            continue;
        }
        let violations: Vec<Violation> = warnings
            .iter()
            .cloned()
            .chain(findings.iter().map(Finding::to_violation))
            .collect();
        if findings.iter().any(|f| f.severity == Severity::Reject) {
            *replacement = Some(Admission::Reject(Rejected {
                payload: Some(json::event_to_json(event).to_string()),
                payload_protobuf: None,
                violations,
                channel: *channel,
            }));
        } else {
            ledger.record(event);
            containment.record(event);
            *replacement = Some(Admission::Accept {
                event: event.clone(),
                warnings: violations,
            });
        }
    }
    Ok(replacements)
}

/// Every instance identifier the events name, once.
fn identifiers(events: &[&Event]) -> Vec<String> {
    let mut seen = HashSet::new();
    events
        .iter()
        .flat_map(|event| event.effects().names)
        .filter(|named| seen.insert(named.written.clone()))
        .map(|named| named.written)
        .collect()
}

/// Where the children the events pack are now.
async fn containment_of(
    conn: &impl ConnectionTrait,
    events: &[&Event],
) -> Result<Containment, CaptureError> {
    let mut children: Vec<String> = events.iter().flat_map(|e| packed_children(e)).collect();
    children.sort_unstable();
    children.dedup();
    let placed = placements::placements_of(conn, &children).await?;
    Ok(Containment::new(placed.into_iter().map(
        |(child, place)| (child, Some((place.parent, place.event_id))),
    )))
}
