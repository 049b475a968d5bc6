//! The lifecycle of one identifier: allocated → commissioned → decommissioned / destroyed.
//!
//! Packing and shipping are containment and custody, kept by the genealogy service.

use chrono::{DateTime, Utc};
use tracery_epcis::{
    Action, Event, EventKind,
    cbv::{Term, Vocabulary},
};

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

/// What a captured event did to the lifecycle of the identifiers it names, as
/// `(identifier as written, new state)`: an ObjectEvent ADD commissions, a DELETE
/// decommissions, or destroys when the bizStep is `destroying` or the disposition
/// `destroyed`.
pub fn effects_of(event: &Event) -> Vec<(&str, LifecycleState)> {
    let EventKind::Object(object) = &event.kind else {
        return Vec::new();
    };
    let is = |value: &Option<String>, vocabulary: Vocabulary, term: &str| {
        value
            .as_deref()
            .is_some_and(|v| matches!(vocabulary.classify(v), Term::Standard(t) if t == term))
    };
    let state = match object.action {
        Action::Add => LifecycleState::Commissioned,
        Action::Delete
            if is(&event.biz_step, Vocabulary::BizStep, "destroying")
                || is(&event.disposition, Vocabulary::Disposition, "destroyed") =>
        {
            LifecycleState::Destroyed
        }
        Action::Delete => LifecycleState::Decommissioned,
        Action::Observe => return Vec::new(),
    };
    object
        .epcs
        .iter()
        .map(|epc| (epc.as_str(), state))
        .collect()
}
