//! What an event does to the life of the objects it names, under EPCIS/CBV semantics:
//! an ObjectEvent ADD commissions them, a DELETE decommissions them, or destroys them when
//! the bizStep is `destroying` or the disposition `destroyed`.

use crate::{
    Action, Event, EventKind,
    cbv::{Term, Vocabulary},
};

/// A lifecycle change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleEffect {
    /// The object now exists and carries its identifier.
    Commissioned,
    /// The identifier is taken out of use.
    Decommissioned,
    /// The object no longer exists.
    Destroyed,
}

impl Event {
    /// The lifecycle changes this event causes, as `(identifier as written, effect)`.
    pub fn lifecycle_effects(&self) -> Vec<(&str, LifecycleEffect)> {
        let EventKind::Object(object) = &self.kind else {
            return Vec::new();
        };
        let is = |value: &Option<String>, vocabulary: Vocabulary, term: &str| {
            value
                .as_deref()
                .is_some_and(|v| matches!(vocabulary.classify(v), Term::Standard(t) if t == term))
        };
        let effect = match object.action {
            Action::Add => LifecycleEffect::Commissioned,
            Action::Delete
                if is(&self.biz_step, Vocabulary::BizStep, "destroying")
                    || is(&self.disposition, Vocabulary::Disposition, "destroyed") =>
            {
                LifecycleEffect::Destroyed
            }
            Action::Delete => LifecycleEffect::Decommissioned,
            Action::Observe => return Vec::new(),
        };
        object
            .epcs
            .iter()
            .map(|epc| (epc.as_str(), effect))
            .collect()
    }
}
