//! What the permission table cannot see: some events need more than the `operator` role.
//! Declaring a captured event erroneous, and decommissioning or destroying objects, are
//! corrections with legal weight: they need `quality`.
//!
//! What an event does is read from the event model (its error declaration and
//! [`Event::lifecycle_effects`], the one definition identity applies too), after the event
//! was read, so every channel — gRPC, REST, MQTT — asks the same question of the same
//! thing: an ObjectEvent DELETE retires its identifiers whatever its bizStep says.

use tracery_epcis::{
    Event,
    cbv::{Term, Vocabulary},
    lifecycle::LifecycleEffect,
};
use tracery_runtime::auth::{self, AuthError, Principal, Role};

use crate::domain::Admission;

/// Why `event` needs the quality role, if it does.
pub fn quality_reason(event: &Event) -> Option<String> {
    if event.error_declaration.is_some() {
        return Some("an error declaration".to_owned());
    }
    let biz_step = event.biz_step.as_deref().unwrap_or_default();
    if biz_step.ends_with("decommissioning") || biz_step.ends_with("destroying") {
        return Some(format!("bizStep {biz_step}"));
    }
    // CBV: `destroyed` says the objects no longer exist, whatever the action.
    let destroyed = event.disposition.as_deref().is_some_and(|disposition| {
        matches!(Vocabulary::Disposition.classify(disposition), Term::Standard(term) if term == "destroyed")
    });
    if destroyed {
        return Some("disposition destroyed".to_owned());
    }
    let retires = event.lifecycle_effects().iter().any(|(_, effect)| {
        matches!(
            effect,
            LifecycleEffect::Decommissioned | LifecycleEffect::Destroyed
        )
    });
    retires.then(|| "an ObjectEvent DELETE (it retires its identifiers)".to_owned())
}

/// Checks one event against the caller (`None`: dev mode, no caller to check).
pub fn check_event(
    principal: Option<&Principal>,
    index: usize,
    event: &Event,
) -> Result<(), AuthError> {
    match quality_reason(event) {
        Some(why) => auth::require(principal, Role::Quality, &format!("events[{index}]: {why}")),
        None => Ok(()),
    }
}

/// Checks every event that was read and admitted. An event that could not be read, or
/// failed validation, is quarantined and does nothing until `quality` resubmits it.
pub fn check(principal: Option<&Principal>, admissions: &[Admission]) -> Result<(), AuthError> {
    admissions
        .iter()
        .enumerate()
        .try_for_each(|(index, admission)| match admission {
            Admission::Accept { event, .. } => check_event(principal, index, event),
            Admission::Reject(_) => Ok(()),
        })
}
