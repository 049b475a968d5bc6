//! The lifecycle of one identifier: allocated → commissioned → decommissioned / destroyed.
//!
//! Packing and shipping are containment and custody, kept by the genealogy service.

use chrono::{DateTime, Utc};
use tracery_epcis::effects::LifecycleEffect;

use crate::domain::IdentityError;

/// Where an identifier is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleState {
    /// Never allocated nor seen.
    Unknown,
    /// Handed out by a serial pool, not yet on a product.
    Allocated,
    /// Applied to a product (EPCIS ObjectEvent ADD).
    Commissioned,
    /// Taken out of use (EPCIS ObjectEvent DELETE).
    Decommissioned,
    /// Physically destroyed.
    Destroyed,
}

impl LifecycleState {
    /// Stored code.
    pub fn code(self) -> i16 {
        match self {
            Self::Unknown => 1,
            Self::Allocated => 2,
            Self::Commissioned => 3,
            Self::Decommissioned => 4,
            Self::Destroyed => 5,
        }
    }

    /// From a stored code.
    pub fn from_code(code: i16) -> Self {
        match code {
            2 => Self::Allocated,
            3 => Self::Commissioned,
            4 => Self::Decommissioned,
            5 => Self::Destroyed,
            _ => Self::Unknown,
        }
    }

    /// Name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unknown => "UNKNOWN",
            Self::Allocated => "ALLOCATED",
            Self::Commissioned => "COMMISSIONED",
            Self::Decommissioned => "DECOMMISSIONED",
            Self::Destroyed => "DESTROYED",
        }
    }

    /// Whether an identifier in this state may move to `to`.
    pub fn allows(self, to: Self) -> bool {
        use LifecycleState::*;
        matches!(
            (self, to),
            (Unknown | Allocated, Commissioned)
                | (Commissioned, Decommissioned | Destroyed)
                | (Decommissioned, Destroyed)
        )
    }
}

/// One requested state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Canonical EPC URN.
    pub epc: String,
    /// Target state.
    pub to: LifecycleState,
    /// The causing event.
    pub event_id: String,
    /// The event time.
    pub at: DateTime<Utc>,
}

/// Decides a transition given the state before it: `Ok(true)` to write it, `Ok(false)` when
/// the same event already made it (a replay), an error when the state does not allow it.
pub fn decide(
    transition: &Transition,
    before: LifecycleState,
    before_event: Option<&str>,
) -> Result<bool, IdentityError> {
    if before == transition.to && before_event == Some(transition.event_id.as_str()) {
        return Ok(false);
    }
    if before.allows(transition.to) {
        Ok(true)
    } else {
        Err(IdentityError::InvalidTransition {
            epc: transition.epc.clone(),
            from: before.name(),
            to: transition.to.name(),
        })
    }
}

impl From<LifecycleEffect> for LifecycleState {
    fn from(effect: LifecycleEffect) -> Self {
        match effect {
            LifecycleEffect::Commissioned => Self::Commissioned,
            LifecycleEffect::Decommissioned => Self::Decommissioned,
            LifecycleEffect::Destroyed => Self::Destroyed,
        }
    }
}
