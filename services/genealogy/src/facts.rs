//! What one EPCIS event says about the genealogy graph, with no I/O: the identifiers it
//! touched (for history) and the links it makes or ends.
//!
//! Identifiers become nodes in one canonical spelling (the GS1 Digital Link for GS1 keys,
//! as written otherwise), so an EPC URN and a Digital Link of the same object meet.

use tracery_epcis::{Action, Event, EventKind, QuantityElement};

/// How two nodes are linked (stored as its `code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinkKind {
    /// Input consumed into output (TransformationEvent).
    TransformedInto,
    /// Child packed into parent (AggregationEvent), for a time interval.
    ContainedIn,
    /// Serial belongs to its lot.
    MemberOfLot,
    /// Shipped to a destination party or location.
    ShippedTo,
    /// Asset or sensor association (AssociationEvent); never traversed by traces.
    AssociatedWith,
    /// Received from a source party or location (sourceList): from the party to the item.
    ReceivedFrom,
}

impl LinkKind {
    /// Stored code.
    pub fn code(self) -> i16 {
        match self {
            Self::TransformedInto => 1,
            Self::ContainedIn => 2,
            Self::MemberOfLot => 3,
            Self::ShippedTo => 4,
            Self::AssociatedWith => 5,
            Self::ReceivedFrom => 6,
        }
    }

    /// From a stored code.
    pub fn from_code(code: i16) -> Option<Self> {
        Some(match code {
            1 => Self::TransformedInto,
            2 => Self::ContainedIn,
            3 => Self::MemberOfLot,
            4 => Self::ShippedTo,
            5 => Self::AssociatedWith,
            6 => Self::ReceivedFrom,
            _ => return None,
        })
    }
}

/// A link the event makes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLink {
    pub from: String,
    pub to: String,
    pub kind: LinkKind,
    pub quantity: Option<f64>,
    pub uom: Option<String>,
}

/// Containment the event ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unpack {
    /// These children leave this parent.
    Children {
        parent: String,
        children: Vec<String>,
    },
    /// Everything leaves this parent.
    All { parent: String },
}

/// Everything the projection records for one event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    /// Identifiers the event touched, canonical, each once.
    pub touched: Vec<String>,
    /// Where custody went (the first possessing or owning party, else any destination).
    pub custodian: Option<String>,
    pub links: Vec<NewLink>,
    /// Children packed here leave any other parent at this time.
    pub repacked: Vec<String>,
    pub unpacks: Vec<Unpack>,
}

/// The canonical node id of an identifier as written.
pub fn node_id(written: &str) -> String {
    tracery_gs1::canonical_uri(written).unwrap_or_else(|| written.to_owned())
}

/// Whether a node id stands for a lot or class rather than one instance.
pub fn is_lot(node: &str) -> bool {
    if let Some(path) = node.strip_prefix("https://id.gs1.org/") {
        let segments: Vec<&str> = path.split('/').collect();
        return matches!(segments.as_slice(), ["01", _] | ["01", _, "10", _]);
    }
    node.starts_with("urn:epc:class:") || node.starts_with("urn:epc:idpat:")
}

fn class_nodes(quantities: &[QuantityElement]) -> Vec<(String, Option<f64>, Option<String>)> {
    quantities
        .iter()
        .map(|q| (node_id(&q.epc_class), q.quantity, q.uom.clone()))
        .collect()
}

fn nodes(written: &[String]) -> Vec<String> {
    written.iter().map(|w| node_id(w)).collect()
}

/// The lot an ilmd names (`cbvmda:lotNumber` or any `…lotNumber` key).
fn ilmd_lot(ilmd: Option<&serde_json::Map<String, serde_json::Value>>) -> Option<String> {
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

/// The serial → lot links for instances commissioned with a lot number in their ilmd.
fn memberships(outputs: &[String], lot: Option<String>) -> Vec<NewLink> {
    let Some(lot) = lot else {
        return Vec::new();
    };
    outputs
        .iter()
        .filter_map(|serial| {
            lot_of(serial, &lot).map(|lot| NewLink {
                from: serial.clone(),
                to: lot,
                kind: LinkKind::MemberOfLot,
                quantity: None,
                uom: None,
            })
        })
        .collect()
}

fn link(from: &str, to: &str, kind: LinkKind) -> NewLink {
    NewLink {
        from: from.to_owned(),
        to: to.to_owned(),
        kind,
        quantity: None,
        uom: None,
    }
}

/// The facts of `event`.
pub fn of(event: &Event) -> Facts {
    let mut facts = Facts::default();
    let mut what: Vec<String> = Vec::new();
    match &event.kind {
        EventKind::Object(e) => {
            let epcs = nodes(&e.epcs);
            what.extend(epcs.iter().cloned());
            what.extend(class_nodes(&e.quantities).into_iter().map(|c| c.0));
            if e.action == Action::Add {
                facts
                    .links
                    .extend(memberships(&epcs, ilmd_lot(e.ilmd.as_ref())));
            }
        }
        EventKind::Aggregation(e) => {
            let parent = e.parent_id.as_deref().map(node_id);
            let children: Vec<String> = nodes(&e.child_epcs)
                .into_iter()
                .chain(class_nodes(&e.child_quantities).into_iter().map(|c| c.0))
                .collect();
            what.extend(parent.iter().cloned());
            what.extend(children.iter().cloned());
            if let Some(parent) = parent {
                match e.action {
                    Action::Add => {
                        facts.repacked.extend(children.iter().cloned());
                        facts.links.extend(
                            children
                                .iter()
                                .map(|child| link(child, &parent, LinkKind::ContainedIn)),
                        );
                    }
                    Action::Delete if children.is_empty() => {
                        facts.unpacks.push(Unpack::All { parent });
                    }
                    Action::Delete => facts.unpacks.push(Unpack::Children { parent, children }),
                    Action::Observe => {}
                }
            }
        }
        EventKind::Transaction(e) => {
            what.extend(e.parent_id.as_deref().map(node_id));
            what.extend(nodes(&e.epcs));
            what.extend(class_nodes(&e.quantities).into_iter().map(|c| c.0));
        }
        EventKind::Transformation(e) => {
            let inputs: Vec<(String, Option<f64>, Option<String>)> = nodes(&e.input_epcs)
                .into_iter()
                .map(|n| (n, None, None))
                .chain(class_nodes(&e.input_quantities))
                .collect();
            let output_epcs = nodes(&e.output_epcs);
            let outputs: Vec<String> = output_epcs
                .iter()
                .cloned()
                .chain(class_nodes(&e.output_quantities).into_iter().map(|c| c.0))
                .collect();
            for (input, quantity, uom) in &inputs {
                for output in &outputs {
                    facts.links.push(NewLink {
                        from: input.clone(),
                        to: output.clone(),
                        kind: LinkKind::TransformedInto,
                        quantity: *quantity,
                        uom: uom.clone(),
                    });
                }
            }
            facts
                .links
                .extend(memberships(&output_epcs, ilmd_lot(e.ilmd.as_ref())));
            what.extend(inputs.into_iter().map(|i| i.0));
            what.extend(outputs);
        }
        EventKind::Association(e) => {
            let parent = e.parent_id.as_deref().map(node_id);
            let children: Vec<String> = nodes(&e.child_epcs)
                .into_iter()
                .chain(class_nodes(&e.child_quantities).into_iter().map(|c| c.0))
                .collect();
            if let (Some(parent), Action::Add) = (&parent, e.action) {
                facts.links.extend(
                    children
                        .iter()
                        .map(|child| link(child, parent, LinkKind::AssociatedWith)),
                );
            }
            what.extend(parent);
            what.extend(children);
        }
    }
    let preferred =
        |kind: &str| kind.ends_with("possessing_party") || kind.ends_with("owning_party");
    facts.custodian = event
        .destinations
        .iter()
        .find(|d| preferred(&d.kind))
        .or_else(|| event.destinations.first())
        .map(|d| node_id(&d.id));
    for source in &event.sources {
        let from = node_id(&source.id);
        facts.links.extend(
            what.iter()
                .map(|item| link(&from, item, LinkKind::ReceivedFrom)),
        );
    }
    for destination in &event.destinations {
        let to = node_id(&destination.id);
        facts
            .links
            .extend(what.iter().map(|item| link(item, &to, LinkKind::ShippedTo)));
    }
    what.sort();
    what.dedup();
    facts.touched = what;
    facts
}
