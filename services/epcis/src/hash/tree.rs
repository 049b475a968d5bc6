//! An event as the hash algorithm sees it: a tree of named nodes with text, the shape
//! EPCIS XML has, built from the JSON-LD form with the JSON/XML differences smoothed over:
//! a JSON list is an element with one child per entry, named after the list.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::canonical::shortest_float;
use crate::cbv::{Term, Vocabulary};

/// One element: name, text, children. Ordered by name, then text, then children, which
/// is the order the algorithm sorts unordered lists in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Node {
    pub name: String,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    fn leaf(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
            children: Vec::new(),
        }
    }
}

/// Namespace prefixes declared in a document's `@context`, over the two the EPCIS
/// context always binds.
pub struct Namespaces(BTreeMap<String, String>);

impl Default for Namespaces {
    fn default() -> Self {
        Self::from_context(&[])
    }
}

impl Namespaces {
    pub fn from_context(context: &[Value]) -> Self {
        let mut prefixes = BTreeMap::from([
            ("gs1".to_owned(), GS1_VOCABULARY.to_owned()),
            ("cbv".to_owned(), CBV.to_owned()),
        ]);
        for entry in context {
            match entry {
                Value::String(iri) => {
                    prefixes.insert(iri.clone(), iri.clone());
                }
                Value::Object(map) => {
                    for (prefix, iri) in map {
                        if let Value::String(iri) = iri {
                            prefixes.insert(prefix.clone(), iri.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        Self(prefixes)
    }

    /// The namespace `prefix` is bound to, if any.
    pub fn iri(&self, prefix: &str) -> Option<&str> {
        self.0.get(prefix).map(String::as_str)
    }

    /// `prefix:name` as `{namespace}name`, the way XML names an extension element.
    pub fn key(&self, key: &str) -> String {
        match self.split(key) {
            Some((iri, local)) => format!("{{{iri}}}{local}"),
            None => key.to_owned(),
        }
    }

    /// A compact IRI value in a GS1 vocabulary expanded to the full IRI; other compact
    /// values stay as written, as XML has no way to tell them from plain text.
    fn value(&self, text: &str) -> String {
        match self.split(text) {
            Some((iri, local))
                if iri.starts_with("https://ref.gs1.org") || iri.starts_with("https://gs1.org") =>
            {
                format!("{iri}{local}")
            }
            _ => text.to_owned(),
        }
    }

    fn split<'a>(&'a self, text: &'a str) -> Option<(&'a str, &'a str)> {
        let (prefix, local) = text.split_once(':')?;
        self.0.get(prefix).map(|iri| (iri.as_str(), local))
    }
}

/// The tree of one event (its JSON-LD form).
pub fn event_tree(mut event: Value, namespaces: &Namespaces) -> Node {
    expand_bare_terms(&mut event);
    correct_structure(from_json(&event, namespaces))
}

/// Keys whose objects keep their children in document order.
const ORDERED_PAIRS: [&str; 3] = ["bizTransaction", "source", "destination"];
/// Lists whose entries are (type, value) pairs.
const PAIR_LISTS: [&str; 3] = ["bizTransactionList", "sourceList", "destinationList"];

fn from_json(value: &Value, namespaces: &Namespaces) -> Node {
    match value {
        Value::Array(items) => {
            let mut children: Vec<Node> = items.iter().map(|v| from_json(v, namespaces)).collect();
            children.sort();
            Node {
                name: String::new(),
                text: String::new(),
                children,
            }
        }
        Value::Object(map) => object(map, namespaces),
        Value::Bool(flag) => Node::leaf("", flag.to_string()),
        Value::Number(number) => Node::leaf("", number_text(number)),
        Value::String(text) => Node::leaf("", namespaces.value(text)),
        Value::Null => Node::leaf("", "None"),
    }
}

fn object(map: &Map<String, Value>, namespaces: &Namespaces) -> Node {
    let name = match map.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        _ => String::new(),
    };
    let text = match map.get("#text") {
        Some(Value::String(text)) => text.clone(),
        _ => String::new(),
    };
    let mut children = Vec::new();
    for (key, value) in map {
        if matches!(key.as_str(), "#text" | "rdfs:comment" | "comment") || key.starts_with('@') {
            continue;
        }
        let child = from_json(value, namespaces);
        let key = namespaces.key(key);
        if !value.is_array() {
            children.push(Node { name: key, ..child });
        } else if let Some(entry_name) = key.strip_suffix("List") {
            // A JSON list is an XML element holding one child per entry.
            let entries = child.children.into_iter().map(|entry| Node {
                name: entry_name.to_owned(),
                ..entry
            });
            let entries = if PAIR_LISTS.contains(&key.as_str()) {
                entries.map(pair).collect()
            } else {
                entries.collect()
            };
            children.push(Node {
                name: key,
                text: String::new(),
                children: entries,
            });
        } else if key == "childEPCs" {
            let epcs = child
                .children
                .into_iter()
                .map(|epc| Node::leaf("epc", epc.text))
                .collect();
            children.push(Node {
                name: key,
                text: String::new(),
                children: epcs,
            });
        } else {
            children.extend(child.children.into_iter().map(|element| Node {
                name: key.clone(),
                ..element
            }));
        }
    }
    if !ORDERED_PAIRS.iter().any(|key| map.contains_key(*key)) {
        children.sort();
    }
    Node {
        name,
        text,
        children,
    }
}

fn number_text(number: &serde_json::Number) -> String {
    if number.is_f64() {
        number.as_f64().map(shortest_float).unwrap_or_default()
    } else {
        number.to_string()
    }
}

/// Gives the JSON names the element names XML has, leaving (type, value) pairs as
/// they are.
fn correct_structure(node: Node) -> Node {
    let children = node
        .children
        .into_iter()
        .map(|child| {
            if PAIR_LISTS.contains(&child.name.as_str()) {
                child
            } else {
                correct_structure(child)
            }
        })
        .collect();
    rename(Node {
        name: node.name,
        text: node.text,
        children,
    })
}

/// A transaction, source or destination as an unnamed (type, value) pair.
fn pair(entry: Node) -> Node {
    let (mut kind, rest): (Vec<Node>, Vec<Node>) =
        entry.children.into_iter().partition(|c| c.name == "type");
    kind.extend(rest);
    Node {
        name: String::new(),
        text: String::new(),
        children: kind,
    }
}

fn rename(node: Node) -> Node {
    let name = match node.name.as_str() {
        "inputEPC" | "outputEPC" => "epc",
        "inputQuantity" | "outputQuantity" | "childQuantity" => "quantityElement",
        "quantity" if !node.children.is_empty() => "quantityElement",
        _ => return node,
    };
    Node {
        name: name.into(),
        ..node
    }
}

const GS1_VOCABULARY: &str = "https://gs1.org/voc/";
const CBV: &str = "https://ref.gs1.org/cbv/";
const SENSOR_ALERTS: [&str; 2] = ["ALARM_CONDITION", "ERROR_CONDITION"];
const COMPONENTS: [&str; 14] = [
    "x",
    "y",
    "z",
    "axial_distance",
    "azimuth",
    "height",
    "spherical_radius",
    "polar_angle",
    "elevation_angle",
    "easting",
    "northing",
    "latitude",
    "longitude",
    "altitude",
];

/// Replaces bare vocabulary names (`shipping`, `Temperature`) with their web URIs, as
/// JSON-LD expansion against the EPCIS context does: every string in the event that
/// ends a vocabulary URI used in the event, and ends exactly one, is replaced.
fn expand_bare_terms(event: &mut Value) {
    let mut expanded = BTreeSet::new();
    collect_expanded(event, None, &mut expanded);
    replace_bare(event, &expanded);
}

fn collect_expanded(value: &Value, key: Option<&str>, out: &mut BTreeSet<String>) {
    match value {
        Value::String(text) => {
            if text.starts_with("https://ref.gs1.org/cbv") || text.starts_with(GS1_VOCABULARY) {
                out.insert(text.clone());
            } else if let Some(uri) = key.and_then(|key| vocabulary_uri(key, text)) {
                out.insert(uri);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_expanded(v, key, out)),
        Value::Object(map) => {
            for (child_key, child) in map {
                let key = match (key, child_key.as_str()) {
                    (Some(parent), "type") => format!("{parent}/type"),
                    (_, other) => other.to_owned(),
                };
                collect_expanded(child, Some(&key), out);
            }
        }
        _ => {}
    }
}

/// The web URI of a bare standard term in a vocabulary-typed field.
fn vocabulary_uri(key: &str, text: &str) -> Option<String> {
    if let Some(local) = text.strip_prefix("gs1:") {
        return Some(format!("{GS1_VOCABULARY}{local}"));
    }
    if let Some(local) = text.strip_prefix("cbv:") {
        return Some(format!("{CBV}{local}"));
    }
    if text.contains(':') {
        return None;
    }
    let vocabulary = match key {
        "bizStep" => Vocabulary::BizStep,
        "disposition" | "set" | "unset" => Vocabulary::Disposition,
        "bizTransactionList/type" => Vocabulary::BizTransactionType,
        "sourceList/type" | "destinationList/type" => Vocabulary::SourceDestinationType,
        "reason" => Vocabulary::ErrorReason,
        "sensorReport/type" => {
            let measurement = text.starts_with(|c: char| c.is_ascii_uppercase())
                && text.chars().all(|c| c.is_ascii_alphanumeric());
            return measurement.then(|| format!("{GS1_VOCABULARY}{text}"));
        }
        "exception" => {
            return SENSOR_ALERTS
                .contains(&text)
                .then(|| format!("{GS1_VOCABULARY}{text}"));
        }
        "component" => {
            return COMPONENTS
                .contains(&text)
                .then(|| format!("{CBV}Comp-{text}"));
        }
        _ => return None,
    };
    match vocabulary.classify(text) {
        Term::Standard(_) => Some(vocabulary.to_uri(text)),
        _ => None,
    }
}

fn replace_bare(value: &mut Value, expanded: &BTreeSet<String>) {
    match value {
        Value::String(text) => {
            let mut matches = expanded.iter().filter(|uri| {
                uri.len() > text.len() + 1
                    && uri.ends_with(text.as_str())
                    && matches!(uri.as_bytes()[uri.len() - text.len() - 1], b'-' | b'/')
            });
            if let (Some(only), None) = (matches.next(), matches.next()) {
                *text = only.clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| replace_bare(v, expanded)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_bare(v, expanded)),
        _ => {}
    }
}
