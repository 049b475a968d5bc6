//! Lifecycle rules that need the identity service's knowledge of each identifier: using a
//! retired (decommissioned or destroyed) identifier, commissioning one twice, and using one
//! that was never commissioned. Pure: the caller supplies the states.

use std::collections::HashMap;

use tracery_epcis::{
    Event,
    effects::{Effects, LifecycleEffect},
};

use crate::validation::{Finding, Policy, Severity};

/// What identity knows about one identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// Canonical EPC URN.
    pub epc: String,
    /// Lifecycle state.
    pub state: KnownState,
    /// The event that set it.
    pub event_id: String,
}

/// The lifecycle states the rules distinguish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownState {
    /// Never commissioned (unknown, or allocated but not yet applied).
    NotCommissioned,
    /// In use.
    Commissioned,
    /// Decommissioned.
    Decommissioned,
    /// Destroyed.
    Destroyed,
}

/// States of identifiers as written, updated as a batch's events are decided in order, so a
/// batch that commissions and then ships a unit is judged like two batches would be.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// Identifier as written → canonical EPC (only identifiers identity could canonicalise).
    canonical: HashMap<String, String>,
    /// Canonical EPC → state.
    states: HashMap<String, (KnownState, String)>,
}

impl Ledger {
    /// A ledger from identity's answers.
    pub fn new(answers: impl IntoIterator<Item = (String, Known)>) -> Self {
        let mut ledger = Self::default();
        for (written, known) in answers {
            ledger.canonical.insert(written, known.epc.clone());
            ledger
                .states
                .insert(known.epc, (known.state, known.event_id));
        }
        ledger
    }

    fn get(&self, written: &str) -> Option<&(KnownState, String)> {
        self.states.get(self.canonical.get(written)?)
    }

    /// Records what an accepted event did.
    pub fn record(&mut self, event: &Event) {
        self.record_effects(event, &event.effects());
    }

    /// [`Self::record`] with the event's effects computed already.
    pub fn record_effects(&mut self, event: &Event, effects: &Effects) {
        let event_id = event.event_id.clone().unwrap_or_default();
        for change in &effects.lifecycle {
            if let Some(epc) = self.canonical.get(&change.identifier.written) {
                let state = match change.effect {
                    LifecycleEffect::Commissioned => KnownState::Commissioned,
                    LifecycleEffect::Decommissioned => KnownState::Decommissioned,
                    LifecycleEffect::Destroyed => KnownState::Destroyed,
                };
                self.states.insert(epc.clone(), (state, event_id.clone()));
            }
        }
    }

    /// The rule findings for `event` against the states recorded so far.
    pub fn check(&self, event: &Event, policy: &Policy) -> Vec<Finding> {
        self.check_effects(event, &event.effects(), policy)
    }

    /// [`Self::check`] with the event's effects computed already.
    pub fn check_effects(&self, event: &Event, effects: &Effects, policy: &Policy) -> Vec<Finding> {
        let event_id = event.event_id.as_deref().unwrap_or_default();
        let does = |written: &str, effect: LifecycleEffect| {
            effects
                .lifecycle
                .iter()
                .any(|change| change.identifier.written == written && change.effect == effect)
        };
        let mut findings = Vec::new();
        let mut push = |field: &str, code: &str, message: String, severity: Option<Severity>| {
            if let Some(severity) = severity {
                findings.push(Finding {
                    field: field.to_owned(),
                    code: code.to_owned(),
                    message,
                    severity,
                });
            }
        };
        for named in &effects.names {
            let (field, written) = (&named.field, named.written.as_str());
            let Some((state, by)) = self.get(written) else {
                continue;
            };
            // The state this very event set (a resubmission) is no conflict.
            if by == event_id {
                continue;
            }
            let commissioning = does(written, LifecycleEffect::Commissioned);
            match (state, commissioning) {
                // A unit taken out of use may still be destroyed.
                (KnownState::Decommissioned, false)
                    if does(written, LifecycleEffect::Destroyed) => {}
                (KnownState::Decommissioned | KnownState::Destroyed, _) => push(
                    field,
                    "RETIRED_IDENTIFIER",
                    format!(
                        "`{written}` was {} by event `{by}`",
                        if *state == KnownState::Destroyed {
                            "destroyed"
                        } else {
                            "decommissioned"
                        }
                    ),
                    policy.retired_identifier,
                ),
                (KnownState::Commissioned, true) => push(
                    field,
                    "ALREADY_COMMISSIONED",
                    format!(
                        "`{written}` was commissioned already by event `{by}`: a duplicate identifier"
                    ),
                    policy.recommissioning,
                ),
                (KnownState::NotCommissioned, false) => push(
                    field,
                    "UNKNOWN_IDENTIFIER",
                    format!("`{written}` was never commissioned"),
                    policy.unknown_identifier,
                ),
                _ => {}
            }
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(id: &str, action: &str, epc: &str) -> Event {
        tracery_epcis::json::parse_event(json!({
            "type": "ObjectEvent", "eventID": id, "eventTime": "2026-11-26T10:00:00Z",
            "eventTimeZoneOffset": "+00:00", "action": action, "epcList": [epc],
        }))
        .expect("event")
    }

    const EPC: &str = "urn:epc:id:sgtin:4012345.011111.1";

    fn ledger(state: KnownState, by: &str) -> Ledger {
        Ledger::new([(
            EPC.to_owned(),
            Known {
                epc: EPC.to_owned(),
                state,
                event_id: by.to_owned(),
            },
        )])
    }

    fn codes(ledger: &Ledger, event: &Event) -> Vec<(String, Severity)> {
        ledger
            .check(event, &Policy::default())
            .into_iter()
            .map(|f| (f.code, f.severity))
            .collect()
    }

    #[test]
    fn rules() {
        let observe = event("e2", "OBSERVE", EPC);
        let add = event("e2", "ADD", EPC);
        assert_eq!(
            codes(&ledger(KnownState::Destroyed, "e1"), &observe),
            [("RETIRED_IDENTIFIER".to_owned(), Severity::Reject)]
        );
        assert_eq!(
            codes(&ledger(KnownState::Commissioned, "e1"), &add),
            [("ALREADY_COMMISSIONED".to_owned(), Severity::Reject)]
        );
        assert_eq!(
            codes(&ledger(KnownState::NotCommissioned, ""), &observe),
            [("UNKNOWN_IDENTIFIER".to_owned(), Severity::Warn)]
        );
        assert_eq!(codes(&ledger(KnownState::NotCommissioned, ""), &add), []);
        assert_eq!(
            codes(&ledger(KnownState::Commissioned, "e2"), &add),
            [],
            "a resubmission of the commissioning event"
        );
    }

    #[test]
    fn a_batch_is_judged_in_order() {
        let mut ledger = ledger(KnownState::NotCommissioned, "");
        let add = event("e1", "ADD", EPC);
        assert_eq!(codes(&ledger, &add), []);
        ledger.record(&add);
        assert_eq!(codes(&ledger, &event("e2", "OBSERVE", EPC)), []);
        let delete = event("e3", "DELETE", EPC);
        ledger.record(&delete);
        let mut destroy = event("e5", "OBSERVE", EPC);
        destroy.disposition = Some("urn:epcglobal:cbv:disp:destroyed".to_owned());
        assert_eq!(
            codes(&ledger, &destroy),
            [],
            "a decommissioned unit may be destroyed"
        );
        assert_eq!(
            codes(&ledger, &event("e4", "OBSERVE", EPC))[0].0,
            "RETIRED_IDENTIFIER"
        );
    }
}
