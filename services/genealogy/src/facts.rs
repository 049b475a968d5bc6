//! What one EPCIS event says about the genealogy graph, with no I/O: the identifiers it
//! touched (for history) and the links it makes or ends.
//!
//! Identifiers become nodes in one canonical spelling (the GS1 Digital Link for GS1 keys,
//! as written otherwise), so an EPC URN and a Digital Link of the same object meet.

use tracery_epcis::{Event, effects};

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
    /// The parent of a confirmation (AggregationEvent OBSERVE): children already inside it
    /// stay where they are, rather than being packed again.
    pub confirms: Option<String>,
    pub unpacks: Vec<Unpack>,
    /// The production order it was made under (its first `prodorder` bizTransaction).
    pub production_order: Option<String>,
    /// Its sensor readings that can be judged against bounds: a number or an exception.
    pub sensor_readings: Vec<SensorReading>,
    /// For an inspection: whether what it inspected passed.
    pub inspection_passed: Option<bool>,
    /// The instances it takes off the floor: consumed, retired, or named by a step that
    /// ships, decommissions or destroys.
    pub leaving: Vec<String>,
}

/// One sensorReport, as an analysis judges it against bounds given with the request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SensorReading {
    /// The report's `type` as written (`gs1:Temperature`, a web URI, ...).
    pub kind: Option<String>,
    pub uom: Option<String>,
    pub value: Option<f64>,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
    /// The sensor's own verdict (`ALARM_CONDITION`, `ERROR_CONDITION`).
    pub exception: Option<String>,
}

impl SensorReading {
    fn of(report: &tracery_epcis::SensorReport) -> Option<Self> {
        let reading = Self {
            kind: report.kind.clone(),
            uom: report.uom.clone(),
            value: report.value,
            min_value: report.min_value,
            max_value: report.max_value,
            exception: report.exception.clone(),
        };
        let judged = reading.value.is_some()
            || reading.min_value.is_some()
            || reading.max_value.is_some()
            || reading.exception.is_some();
        judged.then_some(reading)
    }
}

/// The canonical node id of an identifier as written ([`tracery_epcis::effects::node_id`]).
pub fn node_id(written: &str) -> String {
    effects::node_id(written)
}

/// The product part of a serialised unit's Digital Link (`…/01/<gtin>/21/`).
pub fn product_prefix(unit: &str) -> Option<&str> {
    let at = unit.find("/21/")?;
    unit.starts_with("https://id.gs1.org/01/")
        .then(|| &unit[..at + 4])
}

/// The GTIN of a serialised unit's Digital Link, as a number.
pub fn unit_product(unit: &str) -> Option<i64> {
    let prefix = product_prefix(unit)?;
    let gtin = prefix
        .strip_prefix("https://id.gs1.org/01/")?
        .strip_suffix("/21/")?;
    gtin.parse().ok()
}

/// Whether a node id stands for a lot or class rather than one instance.
pub fn is_lot(node: &str) -> bool {
    if let Some(path) = node.strip_prefix("https://id.gs1.org/") {
        let segments: Vec<&str> = path.split('/').collect();
        return matches!(segments.as_slice(), ["01", _] | ["01", _, "10", _]);
    }
    node.starts_with("urn:epc:class:") || node.starts_with("urn:epc:idpat:")
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

/// The facts of `event`: its [`Effects`](tracery_epcis::effects::Effects), as links.
pub fn of(event: &Event) -> Facts {
    let effects = event.effects();
    let what = effects.touched();
    let mut facts = Facts {
        inspection_passed: event.inspection_passed(),
        leaving: leaving(event, &effects, &what),
        custodian: effects.custodian.clone(),
        production_order: event.production_orders().next().map(str::to_owned),
        sensor_readings: event
            .sensor_elements
            .iter()
            .flat_map(|element| &element.reports)
            .filter_map(SensorReading::of)
            .collect(),
        ..Facts::default()
    };
    facts.links.extend(
        effects
            .lot_members
            .iter()
            .map(|(serial, lot)| link(serial, lot, LinkKind::MemberOfLot)),
    );
    if let Some(packing) = &effects.packing {
        let children: Vec<String> = packing.child_nodes().map(str::to_owned).collect();
        if packing.confirmation {
            facts.confirms = Some(packing.parent.clone());
        }
        facts.links.extend(
            children
                .iter()
                .map(|child| link(child, &packing.parent, LinkKind::ContainedIn)),
        );
        facts.repacked = children;
    }
    match effects.unpacking {
        Some(effects::Unpacking::Everything { parent }) => {
            facts.unpacks.push(Unpack::All { parent })
        }
        Some(effects::Unpacking::Children { parent, children }) => {
            facts.unpacks.push(Unpack::Children { parent, children })
        }
        None => {}
    }
    for input in &effects.consumes {
        for output in &effects.produces {
            facts.links.push(NewLink {
                from: input.node.clone(),
                to: output.node.clone(),
                kind: LinkKind::TransformedInto,
                quantity: input.quantity,
                uom: input.uom.clone(),
            });
        }
    }
    if let Some(association) = &effects.association {
        facts.links.extend(
            association
                .children
                .iter()
                .map(|child| link(child, &association.parent, LinkKind::AssociatedWith)),
        );
    }
    for from in &effects.sources {
        facts.links.extend(
            what.iter()
                .map(|item| link(from, item, LinkKind::ReceivedFrom)),
        );
    }
    for to in &effects.destinations {
        facts
            .links
            .extend(what.iter().map(|item| link(item, to, LinkKind::ShippedTo)));
    }
    facts.touched = what;
    facts
}

/// The instances among `touched` that leave the floor with `event`.
fn leaving(event: &Event, effects: &effects::Effects, touched: &[String]) -> Vec<String> {
    let instances = touched.iter().filter(|node| !is_lot(node));
    if event.leaves_the_floor() {
        return instances.cloned().collect();
    }
    // Sets, not scans: an event may name hundreds of thousands of identifiers.
    let gone: std::collections::HashSet<&str> = effects
        .consumes
        .iter()
        .map(|input| input.node.as_str())
        .chain(
            effects
                .lifecycle
                .iter()
                .filter(|change| change.effect.retires())
                .map(|change| change.identifier.node.as_str()),
        )
        .collect();
    instances
        .filter(|node| gone.contains(node.as_str()))
        .cloned()
        .collect()
}
