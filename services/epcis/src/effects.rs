//! What an event does, under EPCIS 2.0 / CBV 2.0 semantics: the one definition every
//! consumer applies — capture's role checks and commit rules, identity's lifecycle,
//! genealogy's projection, the dashboard's floor. No consumer reads an event's action,
//! bizStep or disposition to decide what happened; they read [`Effects`].
//!
//! Identifiers are given as written and as a node: one canonical spelling (the GS1 Digital
//! Link for GS1 keys, as written otherwise), so an EPC URN and a Digital Link of the same
//! object are the same thing to every consumer.
//!
//! The semantics:
//! - ObjectEvent ADD commissions its objects; DELETE decommissions them.
//! - bizStep `destroying` or disposition `destroyed` destroys the objects the event names
//!   (not a transformation's inputs, which it consumes); bizStep `decommissioning`
//!   decommissions them, whatever the action but ADD.
//! - AggregationEvent ADD packs its children into the parent; OBSERVE confirms they are
//!   there (the same placement, stated again); DELETE unpacks the children named, or
//!   everything when none is named.
//! - TransformationEvent consumes its inputs and produces its outputs.
//! - AssociationEvent ADD associates children with the parent; DELETE ends it.
//! - An error declaration (the erroneous event sent again with `errorDeclaration`) undoes
//!   what the declared event did; its own effects are those of the declared event.

use crate::{
    Action, Event, EventKind, QuantityElement,
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

impl LifecycleEffect {
    /// Whether the identifier can no longer be used after this.
    pub fn retires(self) -> bool {
        matches!(self, Self::Decommissioned | Self::Destroyed)
    }
}

/// One instance identifier an event names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// Where in the event, as a JSON pointer below the event (`epcList/0`, `parentID`).
    pub field: String,
    /// As the event wrote it.
    pub written: String,
    /// Canonical.
    pub node: String,
}

/// An amount of a class (or an instance, without quantity) taken or made.
#[derive(Debug, Clone, PartialEq)]
pub struct Amount {
    /// Canonical.
    pub node: String,
    pub quantity: Option<f64>,
    pub uom: Option<String>,
}

/// A lifecycle change of one identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleChange {
    pub identifier: Named,
    pub effect: LifecycleEffect,
}

/// Children put into, or confirmed inside, a parent.
#[derive(Debug, Clone, PartialEq)]
pub struct Packing {
    /// Canonical.
    pub parent: String,
    /// The instances, in childEPCs order.
    pub children: Vec<Named>,
    /// Quantities of classes packed.
    pub classes: Vec<Amount>,
    /// OBSERVE: the children are stated to be there, not put there now.
    pub confirmation: bool,
}

impl Packing {
    /// Every child node, instances then classes.
    pub fn child_nodes(&self) -> impl Iterator<Item = &str> {
        self.children
            .iter()
            .map(|c| c.node.as_str())
            .chain(self.classes.iter().map(|c| c.node.as_str()))
    }
}

/// Containment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unpacking {
    /// These children (canonical) leave this parent, if they are in it.
    Children {
        parent: String,
        children: Vec<String>,
    },
    /// Everything leaves this parent.
    Everything { parent: String },
}

impl Unpacking {
    /// The parent emptied.
    pub fn parent(&self) -> &str {
        match self {
            Self::Children { parent, .. } | Self::Everything { parent } => parent,
        }
    }
}

/// Children associated with a parent (an asset, a sensor host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Association {
    /// Canonical.
    pub parent: String,
    /// Canonical, instances then classes.
    pub children: Vec<String>,
}

/// Everything one event does.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Effects {
    /// Every instance identifier the event names, in document order.
    pub names: Vec<Named>,
    /// Every class the event counts by quantity, canonical.
    pub classes: Vec<String>,
    /// An AssociationEvent's parent: an asset or a place the children are associated
    /// with, not an object with a lifecycle of its own (so not among `names`).
    pub host: Option<String>,
    /// Identifiers commissioned, retired or destroyed.
    pub lifecycle: Vec<LifecycleChange>,
    pub packing: Option<Packing>,
    pub unpacking: Option<Unpacking>,
    pub association: Option<Association>,
    /// Transformation inputs used up.
    pub consumes: Vec<Amount>,
    /// Transformation outputs made.
    pub produces: Vec<Amount>,
    /// Serial → lot (canonical): instances commissioned or produced with a lot number.
    pub lot_members: Vec<(String, String)>,
    /// The event is an error declaration: it undoes what the event of its eventID did.
    pub declares_error: bool,
    /// Persistent dispositions set and unset on the objects named.
    pub dispositions_set: Vec<String>,
    pub dispositions_unset: Vec<String>,
    /// Where the objects are now (bizLocation), canonical.
    pub location: Option<String>,
    /// Who holds them now: the first possessing or owning party, else any destination.
    pub custodian: Option<String>,
    /// Source and destination parties or locations, canonical.
    pub sources: Vec<String>,
    pub destinations: Vec<String>,
}

impl Effects {
    /// Why the event retires identifiers or declares an error, for the role check.
    pub fn correction(&self) -> Option<String> {
        if self.declares_error {
            return Some("an error declaration".to_owned());
        }
        let retired = self.lifecycle.iter().find(|c| c.effect.retires())?;
        let verb = match retired.effect {
            LifecycleEffect::Destroyed => "destroys",
            _ => "decommissions",
        };
        Some(format!("it {verb} `{}`", retired.identifier.written))
    }

    /// Every node the event touches (instances and classes), sorted, each once.
    pub fn touched(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self
            .names
            .iter()
            .map(|n| n.node.clone())
            .chain(self.classes.iter().cloned())
            .chain(self.host.iter().cloned())
            .collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// The lifecycle effect on `node`, if the event has one.
    pub fn lifecycle_of(&self, node: &str) -> Option<LifecycleEffect> {
        self.lifecycle
            .iter()
            .find(|c| c.identifier.node == node)
            .map(|c| c.effect)
    }
}

/// The canonical node of an identifier as written.
pub fn node_id(written: &str) -> String {
    tracery_gs1::canonical_uri(written).unwrap_or_else(|| written.to_owned())
}

fn named(field: &str, written: &[String]) -> Vec<Named> {
    written
        .iter()
        .enumerate()
        .map(|(index, w)| Named {
            field: format!("{field}/{index}"),
            written: w.clone(),
            node: node_id(w),
        })
        .collect()
}

fn parent(written: &Option<String>) -> Option<Named> {
    written.as_ref().map(|w| Named {
        field: "parentID".to_owned(),
        written: w.clone(),
        node: node_id(w),
    })
}

fn amounts(quantities: &[QuantityElement]) -> Vec<Amount> {
    quantities
        .iter()
        .map(|q| Amount {
            node: node_id(&q.epc_class),
            quantity: q.quantity,
            uom: q.uom.clone(),
        })
        .collect()
}

fn nodes(amounts: &[Amount]) -> Vec<String> {
    amounts.iter().map(|a| a.node.clone()).collect()
}

fn instances(named: &[Named]) -> Vec<Amount> {
    named
        .iter()
        .map(|n| Amount {
            node: n.node.clone(),
            quantity: None,
            uom: None,
        })
        .collect()
}

/// The lot an ilmd names (`cbvmda:lotNumber` or any `…lotNumber` key).
fn ilmd_lot(ilmd: Option<&crate::Extensions>) -> Option<String> {
    ilmd?
        .iter()
        .find(|(key, _)| key.ends_with("lotNumber"))
        .and_then(|(_, value)| value.as_str())
        .map(str::to_owned)
}

/// The lot node of a serialised GTIN node (`…/01/{gtin}/21/{serial}`) and a lot number.
fn lot_of(serial_node: &str, lot: &str) -> Option<String> {
    let path = serial_node.strip_prefix("https://id.gs1.org/01/")?;
    let (gtin, rest) = path.split_once('/')?;
    rest.starts_with("21/")
        .then(|| format!("https://id.gs1.org/01/{gtin}/10/{lot}"))
}

fn memberships(made: &[Named], ilmd: Option<&crate::Extensions>) -> Vec<(String, String)> {
    let Some(lot) = ilmd_lot(ilmd) else {
        return Vec::new();
    };
    made.iter()
        .filter_map(|serial| lot_of(&serial.node, &lot).map(|lot| (serial.node.clone(), lot)))
        .collect()
}

fn is(value: &Option<String>, vocabulary: Vocabulary, term: &str) -> bool {
    value
        .as_deref()
        .is_some_and(|v| matches!(vocabulary.classify(v), Term::Standard(t) if t == term))
}

/// What retiring steps do to the objects an event names, whatever its type.
fn retirement(event: &Event) -> Option<LifecycleEffect> {
    if is(&event.biz_step, Vocabulary::BizStep, "destroying")
        || is(&event.disposition, Vocabulary::Disposition, "destroyed")
    {
        Some(LifecycleEffect::Destroyed)
    } else if is(&event.biz_step, Vocabulary::BizStep, "decommissioning") {
        Some(LifecycleEffect::Decommissioned)
    } else {
        None
    }
}

fn changes(named: &[Named], effect: LifecycleEffect) -> Vec<LifecycleChange> {
    named
        .iter()
        .map(|identifier| LifecycleChange {
            identifier: identifier.clone(),
            effect,
        })
        .collect()
}

impl Event {
    /// The production orders the event was made under: the ids of its bizTransactions of
    /// CBV type `prodorder`, in any spelling (bare, web URI, CBV 1.x URN).
    pub fn production_orders(&self) -> impl Iterator<Item = &str> {
        self.biz_transactions
            .iter()
            .filter(|t| {
                t.kind.as_deref().is_some_and(|kind| {
                    Vocabulary::BizTransactionType.classify(kind) == Term::Standard("prodorder")
                })
            })
            .map(|t| t.id.as_str())
    }

    /// For an inspection (bizStep `inspecting`), whether what it inspected passed: every
    /// disposition but those that fail it (`non_conformant`, `damaged`,
    /// `needs_replacement`, `destroyed`). `None` for any other step.
    pub fn inspection_passed(&self) -> Option<bool> {
        const FAILING: [&str; 4] = [
            "non_conformant",
            "damaged",
            "needs_replacement",
            "destroyed",
        ];
        let step = self.biz_step.as_deref()?;
        if Vocabulary::BizStep.classify(step) != Term::Standard("inspecting") {
            return None;
        }
        let failed = self.disposition.as_deref().is_some_and(|disposition| {
            matches!(
                Vocabulary::Disposition.classify(disposition),
                Term::Standard(term) if FAILING.contains(&term)
            )
        });
        Some(!failed)
    }

    /// Whether what this event names leaves the plant floor with it: its step ships,
    /// decommissions or destroys.
    pub fn leaves_the_floor(&self) -> bool {
        const LEAVING: [&str; 3] = ["shipping", "decommissioning", "destroying"];
        self.biz_step.as_deref().is_some_and(|step| {
            matches!(
                Vocabulary::BizStep.classify(step),
                Term::Standard(term) if LEAVING.contains(&term)
            )
        })
    }

    /// What this event does.
    pub fn effects(&self) -> Effects {
        let mut effects = Effects {
            declares_error: self.error_declaration.is_some(),
            location: self.biz_location.as_ref().map(|l| node_id(&l.id)),
            custodian: custodian(self),
            sources: self.sources.iter().map(|s| node_id(&s.id)).collect(),
            destinations: self.destinations.iter().map(|d| node_id(&d.id)).collect(),
            ..Effects::default()
        };
        if let Some(persistent) = &self.persistent_disposition {
            effects.dispositions_set = persistent.set.clone();
            effects.dispositions_unset = persistent.unset.clone();
        }
        let retirement = retirement(self);
        // The instances a retiring step applies to: all those named but consumed inputs.
        let retired: Vec<Named>;
        match &self.kind {
            EventKind::Object(e) => {
                effects.names = named("epcList", &e.epcs);
                effects.classes = nodes(&amounts(&e.quantities));
                let action_effect = match e.action {
                    Action::Add => Some(LifecycleEffect::Commissioned),
                    Action::Delete => Some(retirement.unwrap_or(LifecycleEffect::Decommissioned)),
                    Action::Observe => retirement,
                };
                if e.action == Action::Add {
                    effects.lot_members = memberships(&effects.names, e.ilmd.as_ref());
                }
                if let Some(effect) = action_effect {
                    effects.lifecycle = changes(&effects.names, effect);
                }
                return effects;
            }
            EventKind::Aggregation(e) => {
                let children = named("childEPCs", &e.child_epcs);
                let classes = amounts(&e.child_quantities);
                effects.names = parent(&e.parent_id)
                    .into_iter()
                    .chain(children.clone())
                    .collect();
                effects.classes = nodes(&classes);
                if let Some(parent) = e.parent_id.as_deref().map(node_id) {
                    match e.action {
                        Action::Add | Action::Observe => {
                            effects.packing = Some(Packing {
                                parent,
                                children,
                                classes,
                                confirmation: e.action == Action::Observe,
                            })
                        }
                        Action::Delete
                            if e.child_epcs.is_empty() && e.child_quantities.is_empty() =>
                        {
                            effects.unpacking = Some(Unpacking::Everything { parent })
                        }
                        Action::Delete => {
                            effects.unpacking = Some(Unpacking::Children {
                                parent,
                                children: children
                                    .iter()
                                    .map(|c| c.node.clone())
                                    .chain(classes.iter().map(|c| c.node.clone()))
                                    .collect(),
                            })
                        }
                    }
                }
                retired = effects.names.clone();
            }
            EventKind::Transaction(e) => {
                effects.names = parent(&e.parent_id)
                    .into_iter()
                    .chain(named("epcList", &e.epcs))
                    .collect();
                effects.classes = nodes(&amounts(&e.quantities));
                retired = effects.names.clone();
            }
            EventKind::Transformation(e) => {
                let inputs = named("inputEPCList", &e.input_epcs);
                let outputs = named("outputEPCList", &e.output_epcs);
                effects.consumes = instances(&inputs)
                    .into_iter()
                    .chain(amounts(&e.input_quantities))
                    .collect();
                effects.produces = instances(&outputs)
                    .into_iter()
                    .chain(amounts(&e.output_quantities))
                    .collect();
                effects.lot_members = memberships(&outputs, e.ilmd.as_ref());
                effects.classes = amounts(&e.input_quantities)
                    .iter()
                    .chain(&amounts(&e.output_quantities))
                    .map(|a| a.node.clone())
                    .collect();
                effects.names = inputs.into_iter().chain(outputs.clone()).collect();
                retired = outputs;
            }
            EventKind::Association(e) => {
                let children = named("childEPCs", &e.child_epcs);
                let classes = amounts(&e.child_quantities);
                effects.names = children.clone();
                effects.classes = nodes(&classes);
                effects.host = e.parent_id.as_deref().map(node_id);
                if let (Some(parent), Action::Add) = (e.parent_id.as_deref().map(node_id), e.action)
                {
                    effects.association = Some(Association {
                        parent,
                        children: children
                            .iter()
                            .map(|c| c.node.clone())
                            .chain(nodes(&classes))
                            .collect(),
                    });
                }
                retired = children;
            }
        }
        if let Some(effect) = retirement {
            effects.lifecycle = changes(&retired, effect);
        }
        effects
    }
}

fn custodian(event: &Event) -> Option<String> {
    let preferred =
        |kind: &str| kind.ends_with("possessing_party") || kind.ends_with("owning_party");
    event
        .destinations
        .iter()
        .find(|d| preferred(&d.kind))
        .or_else(|| event.destinations.first())
        .map(|d| node_id(&d.id))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(fields: serde_json::Value) -> Event {
        let mut value = json!({
            "eventTime": "2026-11-26T10:00:00Z", "eventTimeZoneOffset": "+00:00",
        });
        value
            .as_object_mut()
            .expect("object")
            .extend(fields.as_object().expect("object").clone());
        crate::json::parse_event(value).expect("event")
    }

    const EPC: &str = "urn:epc:id:sgtin:4012345.011111.1";
    const LINK: &str = "https://id.gs1.org/01/04012345111118/21/1";

    fn lifecycle(event: &Event) -> Vec<(String, LifecycleEffect)> {
        event
            .effects()
            .lifecycle
            .into_iter()
            .map(|c| (c.identifier.node, c.effect))
            .collect()
    }

    #[test]
    fn object_events_commission_and_retire() {
        let add = event(json!({"type": "ObjectEvent", "action": "ADD", "epcList": [EPC]}));
        assert_eq!(
            lifecycle(&add),
            [(LINK.to_owned(), LifecycleEffect::Commissioned)]
        );
        let delete = event(json!({"type": "ObjectEvent", "action": "DELETE", "epcList": [EPC]}));
        assert_eq!(
            lifecycle(&delete),
            [(LINK.to_owned(), LifecycleEffect::Decommissioned)]
        );
        assert!(delete.effects().correction().is_some());
        let observe = event(json!({"type": "ObjectEvent", "action": "OBSERVE", "epcList": [EPC]}));
        assert_eq!(lifecycle(&observe), []);
        assert_eq!(observe.effects().correction(), None);
    }

    #[test]
    fn destroyed_disposition_destroys_whatever_the_action_or_type() {
        for fields in [
            json!({"type": "ObjectEvent", "action": "OBSERVE", "epcList": [EPC], "disposition": "destroyed"}),
            json!({"type": "ObjectEvent", "action": "DELETE", "epcList": [EPC], "bizStep": "destroying"}),
            json!({"type": "AggregationEvent", "action": "OBSERVE", "parentID": "urn:epc:id:sscc:4012345.0000000001", "childEPCs": [EPC], "disposition": "urn:epcglobal:cbv:disp:destroyed"}),
            json!({"type": "TransformationEvent", "outputEPCList": [EPC], "disposition": "destroyed"}),
        ] {
            let destroyed = event(fields);
            assert!(
                lifecycle(&destroyed).contains(&(LINK.to_owned(), LifecycleEffect::Destroyed)),
                "{destroyed:?}"
            );
        }
    }

    #[test]
    fn aggregations_pack_confirm_and_unpack() {
        let sscc = "urn:epc:id:sscc:4012345.0000000001";
        let add = event(
            json!({"type": "AggregationEvent", "action": "ADD", "parentID": sscc, "childEPCs": [EPC]}),
        );
        let packing = add.effects().packing.expect("packs");
        assert_eq!(packing.children[0].node, LINK);
        assert_eq!(packing.children[0].field, "childEPCs/0");
        assert!(!packing.confirmation);
        let empty =
            event(json!({"type": "AggregationEvent", "action": "DELETE", "parentID": sscc}));
        assert!(matches!(
            empty.effects().unpacking,
            Some(Unpacking::Everything { .. })
        ));
    }

    #[test]
    fn transformations_consume_and_produce() {
        let made = event(json!({"type": "TransformationEvent", "inputEPCList": [EPC],
            "outputEPCList": ["urn:epc:id:sgtin:4012345.011111.2"],
            "ilmd": {"cbvmda:lotNumber": "L1"}}));
        let effects = made.effects();
        assert_eq!(effects.consumes[0].node, LINK);
        assert_eq!(effects.produces.len(), 1);
        assert_eq!(
            effects.lot_members,
            [(
                "https://id.gs1.org/01/04012345111118/21/2".to_owned(),
                "https://id.gs1.org/01/04012345111118/10/L1".to_owned()
            )]
        );
        assert_eq!(effects.lifecycle, []);
    }
}
