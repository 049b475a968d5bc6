//! What the permission table cannot see: some events need more than the `operator` role.
//! Declaring a captured event erroneous, and decommissioning or destroying objects, are
//! corrections with legal weight: they need `quality`.
//!
//! What an event does is read from [`Event::effects`], the one definition identity,
//! genealogy and the dashboard apply too, after the event was read, so every channel —
//! gRPC, REST, MQTT — asks the same question of the same thing: an ObjectEvent DELETE
//! retires its identifiers whatever its bizStep says.

use tracery_epcis::Event;
use tracery_runtime::auth::{self, AuthError, Principal, Role};

use crate::domain::Admission;

/// Why `event` needs the quality role, if it does: its effects retire or destroy
/// identifiers, or declare an error ([`tracery_epcis::effects::Effects::correction`]).
pub fn quality_reason(event: &Event) -> Option<String> {
    event.effects().correction()
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
