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
    let mut ledger = Ledger::new(lifecycle::states_of(conn, &identifiers(&all)).await?);
    let mut containment = containment_of(conn, &all).await?;
    for (((admission, channel), replacement), effects) in
        group.iter().zip(&mut replacements).zip(&effects)
    {
        let (Admission::Accept { event, warnings }, Some(effects)) = (admission, effects) else {
            continue;
        };
        let findings: Vec<Finding> = ledger
            .check_effects(event, effects, policy)
            .into_iter()
            .chain(containment.check_effects(effects, policy))
            .collect();
        let refused = findings.iter().any(|f| f.severity == Severity::Reject);
        if !refused {
            ledger.record_effects(event, effects);
            containment.record_effects(event, effects);
        }
        if findings.is_empty() {
            continue;
        }
        let violations: Vec<Violation> = warnings
            .iter()
            .cloned()
            .chain(findings.iter().map(Finding::to_violation))
            .collect();
        *replacement = Some(if refused {
            Admission::Reject(Rejected {
                payload: Some(json::event_to_json(event).to_string()),
                payload_protobuf: None,
                violations,
                channel: *channel,
            })
        } else {
            Admission::Accept {
                event: event.clone(),
                warnings: violations,
            }
        });
    }
    Ok(replacements)
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
