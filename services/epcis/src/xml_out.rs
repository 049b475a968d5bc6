//! Writes events (in their JSON-LD form, as the store serves them) in the EPCIS 2.0 XML
//! binding: an `EPCISQueryDocument` for query answers asked for as `application/xml`.
//!
//! The inverse of [`crate::xml`]: standard fields become unqualified elements in the
//! order the XSD gives each event type; CBV terms are written as URIs (XML has no
//! compact form); extension fields become elements of their namespace, declared on the
//! event from its `@context` (a prefix nothing binds gets a `urn:tracery:prefix:` one
//! rather than being dropped). Events were read within the depth bound when captured;
//! extension values are written with an explicit stack all the same.

use quick_xml::escape::escape;
use serde_json::{Map, Value};

use crate::cbv::Vocabulary;

const QUERY_NAMESPACE: &str = "urn:epcglobal:epcis-query:xsd:2";
const EPCIS_NAMESPACE: &str = "urn:epcglobal:epcis:xsd:2";
/// The namespace of `gs1:` terms (sensor report types, …).
const GS1_VOCABULARY: &str = "https://gs1.org/voc/";

/// The prefixes the EPCIS 2.0 JSON-LD context binds.
const STANDARD_PREFIXES: [(&str, &str); 5] = [
    ("gs1", GS1_VOCABULARY),
    ("cbv", "https://ref.gs1.org/cbv/"),
    ("cbvmda", "urn:epcglobal:cbv:mda:"),
    ("epcis", "https://ref.gs1.org/epcis/"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
];

/// The fields every event starts with.
const COMMON: [&str; 6] = [
    "eventTime",
    "recordTime",
    "eventTimeZoneOffset",
    "eventID",
    "errorDeclaration",
    "certificationInfo",
];

/// The standard fields of each event type after [`COMMON`], in the XSD's order.
fn fields_of(event_type: &str) -> &'static [&'static str] {
    match event_type {
        "ObjectEvent" => &[
            "epcList",
            "action",
            "bizStep",
            "disposition",
            "readPoint",
            "bizLocation",
            "bizTransactionList",
            "quantityList",
            "sourceList",
            "destinationList",
            "sensorElementList",
            "persistentDisposition",
            "ilmd",
        ],
        "AggregationEvent" => &[
            "parentID",
            "childEPCs",
            "action",
            "bizStep",
            "disposition",
            "readPoint",
            "bizLocation",
            "bizTransactionList",
            "childQuantityList",
            "sourceList",
            "destinationList",
            "sensorElementList",
            "persistentDisposition",
        ],
        "TransactionEvent" => &[
            "bizTransactionList",
            "parentID",
            "epcList",
            "action",
            "bizStep",
            "disposition",
            "readPoint",
            "bizLocation",
            "quantityList",
            "sourceList",
            "destinationList",
            "sensorElementList",
            "persistentDisposition",
        ],
        "TransformationEvent" => &[
            "inputEPCList",
            "inputQuantityList",
            "outputEPCList",
            "outputQuantityList",
            "transformationID",
            "bizStep",
            "disposition",
            "readPoint",
            "bizLocation",
            "bizTransactionList",
            "sourceList",
            "destinationList",
            "sensorElementList",
            "persistentDisposition",
            "ilmd",
        ],
        "AssociationEvent" => &[
            "parentID",
            "childEPCs",
            "childQuantityList",
            "action",
            "bizStep",
            "disposition",
            "readPoint",
            "bizLocation",
            "bizTransactionList",
            "sourceList",
            "destinationList",
            "sensorElementList",
            "persistentDisposition",
        ],
        _ => &[],
    }
}

/// An `EPCISQueryDocument` of `events` answering `query_name`, created at `creation_date`
/// (RFC 3339).
pub fn query_document(
    query_name: &str,
    subscription_id: Option<&str>,
    events: &[Value],
    creation_date: &str,
) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<epcisq:EPCISQueryDocument xmlns:epcisq=\"{QUERY_NAMESPACE}\" xmlns:epcis=\"{EPCIS_NAMESPACE}\" schemaVersion=\"2.0\" creationDate=\"{}\">",
        escape(creation_date)
    ));
    out.push_str("<EPCISBody><epcisq:QueryResults>");
    text_element(&mut out, "queryName", query_name);
    if let Some(id) = subscription_id {
        text_element(&mut out, "subscriptionID", id);
    }
    out.push_str("<resultsBody><EventList>");
    for event in events {
        write_event(&mut out, event);
    }
    out.push_str("</EventList></resultsBody></epcisq:QueryResults></EPCISBody></epcisq:EPCISQueryDocument>\n");
    out
}

/// A CBV term as XML writes it: a URI, as captured, or the standard term's web URI.
fn term_uri(vocabulary: Vocabulary, value: &Value) -> String {
    let text = text_of(value);
    if text.contains(':') {
        text
    } else {
        vocabulary.to_uri(&text)
    }
}

fn text_element(out: &mut String, name: &str, text: &str) {
    out.push_str(&format!("<{name}>{}</{name}>", escape(text)));
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The namespaces the event's extension prefixes are bound to.
struct Prefixes(Map<String, Value>);

impl Prefixes {
    fn of(event: &Map<String, Value>) -> Self {
        let mut bound = Map::new();
        let entries = match event.get("@context") {
            Some(Value::Array(entries)) => entries.clone(),
            Some(entry) => vec![entry.clone()],
            None => Vec::new(),
        };
        for entry in entries {
            if let Value::Object(map) = entry {
                bound.extend(map);
            }
        }
        Self(bound)
    }

    /// The `xmlns:` declarations of every prefix the event's keys use.
    fn declarations(&self, event: &Map<String, Value>) -> String {
        let mut used = std::collections::BTreeSet::new();
        let mut pending: Vec<&Value> = event.values().collect();
        for key in event.keys() {
            used.insert(key.clone());
        }
        while let Some(value) = pending.pop() {
            match value {
                Value::Object(map) => {
                    used.extend(map.keys().cloned());
                    pending.extend(map.values());
                }
                Value::Array(items) => pending.extend(items),
                _ => {}
            }
        }
        let mut prefixes: Vec<String> = used
            .iter()
            .filter(|key| !key.starts_with('@') && !key.contains("://"))
            .filter_map(|key| key.split_once(':').map(|(prefix, _)| prefix.to_owned()))
            .filter(|prefix| is_prefix(prefix))
            .collect();
        prefixes.sort();
        prefixes.dedup();
        prefixes
            .iter()
            .map(|prefix| {
                let standard = STANDARD_PREFIXES.iter().find(|(p, _)| p == prefix);
                let namespace = match (self.0.get(prefix), standard) {
                    (Some(Value::String(iri)), _) => iri.clone(),
                    (_, Some((_, iri))) => (*iri).to_owned(),
                    _ => format!("urn:tracery:prefix:{prefix}"),
                };
                format!(" xmlns:{prefix}=\"{}\"", escape(&namespace))
            })
            .collect()
    }
}

/// Whether `prefix` can be an XML namespace prefix (a full URI key is not written).
fn is_prefix(prefix: &str) -> bool {
    let mut chars = prefix.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !prefix.eq_ignore_ascii_case("xml")
}

fn write_event(out: &mut String, event: &Value) {
    let Some(event) = event.as_object() else {
        return;
    };
    let event_type = event
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ObjectEvent");
    let prefixes = Prefixes::of(event);
    out.push_str(&format!("<{event_type}{}>", prefixes.declarations(event)));
    let standard = fields_of(event_type);
    for field in COMMON.iter().chain(standard) {
        if let Some(value) = event.get(*field) {
            write_field(out, field, value);
        }
    }
    for (key, value) in event {
        let is_standard =
            key == "type" || COMMON.contains(&key.as_str()) || standard.contains(&key.as_str());
        if !is_standard && !key.starts_with('@') {
            write_extension(out, key, value);
        }
    }
    out.push_str(&format!("</{event_type}>"));
}

fn write_field(out: &mut String, field: &str, value: &Value) {
    match field {
        "epcList" | "childEPCs" | "inputEPCList" | "outputEPCList" => {
            list(out, field, value, |out, item| {
                text_element(out, "epc", &text_of(item))
            });
        }
        "quantityList" | "childQuantityList" | "inputQuantityList" | "outputQuantityList" => {
            list(out, field, value, quantity_element);
        }
        "bizStep" => text_element(out, field, &term_uri(Vocabulary::BizStep, value)),
        "disposition" => text_element(out, field, &term_uri(Vocabulary::Disposition, value)),
        "readPoint" | "bizLocation" => location(out, field, value),
        "bizTransactionList" => list(out, field, value, |out, item| {
            typed(
                out,
                "bizTransaction",
                item,
                "bizTransaction",
                Vocabulary::BizTransactionType,
            );
        }),
        "sourceList" => list(out, field, value, |out, item| {
            typed(
                out,
                "source",
                item,
                "source",
                Vocabulary::SourceDestinationType,
            );
        }),
        "destinationList" => list(out, field, value, |out, item| {
            typed(
                out,
                "destination",
                item,
                "destination",
                Vocabulary::SourceDestinationType,
            );
        }),
        "sensorElementList" => list(out, field, value, sensor_element),
        "persistentDisposition" => persistent_disposition(out, value),
        "errorDeclaration" => error_declaration(out, value),
        "ilmd" => {
            out.push_str("<ilmd>");
            if let Some(map) = value.as_object() {
                for (key, value) in map {
                    write_extension(out, key, value);
                }
            }
            out.push_str("</ilmd>");
        }
        _ => text_element(out, field, &text_of(value)),
    }
}

/// `<field>` holding each item of the array `value`, as `write` writes it.
fn list(out: &mut String, field: &str, value: &Value, write: impl Fn(&mut String, &Value)) {
    out.push_str(&format!("<{field}>"));
    for item in value.as_array().into_iter().flatten() {
        write(out, item);
    }
    out.push_str(&format!("</{field}>"));
}

fn quantity_element(out: &mut String, item: &Value) {
    out.push_str("<quantityElement>");
    for field in ["epcClass", "quantity", "uom"] {
        if let Some(value) = item.get(field) {
            text_element(out, field, &text_of(value));
        }
    }
    out.push_str("</quantityElement>");
}

fn location(out: &mut String, field: &str, value: &Value) {
    out.push_str(&format!("<{field}>"));
    if let Some(map) = value.as_object() {
        if let Some(id) = map.get("id") {
            text_element(out, "id", &text_of(id));
        }
        for (key, value) in map.iter().filter(|(k, _)| *k != "id") {
            write_extension(out, key, value);
        }
    } else {
        text_element(out, "id", &text_of(value));
    }
    out.push_str(&format!("</{field}>"));
}

/// `<name type="…">id</name>`: a business transaction, source or destination.
fn typed(out: &mut String, name: &str, item: &Value, id_key: &str, vocabulary: Vocabulary) {
    let id = item.get(id_key).map(text_of).unwrap_or_default();
    match item.get("type").map(text_of) {
        Some(kind) => out.push_str(&format!(
            "<{name} type=\"{}\">{}</{name}>",
            escape(term_uri(vocabulary, &Value::String(kind))),
            escape(&id)
        )),
        None => text_element(out, name, &id),
    }
}

fn persistent_disposition(out: &mut String, value: &Value) {
    out.push_str("<persistentDisposition>");
    for part in ["unset", "set"] {
        for term in value
            .get(part)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            text_element(out, part, &term_uri(Vocabulary::Disposition, term));
        }
    }
    out.push_str("</persistentDisposition>");
}

fn error_declaration(out: &mut String, value: &Value) {
    out.push_str("<errorDeclaration>");
    if let Some(time) = value.get("declarationTime") {
        text_element(out, "declarationTime", &text_of(time));
    }
    if let Some(reason) = value.get("reason") {
        text_element(out, "reason", &term_uri(Vocabulary::ErrorReason, reason));
    }
    if let Some(ids) = value.get("correctiveEventIDs").and_then(Value::as_array) {
        out.push_str("<correctiveEventIDs>");
        for id in ids {
            text_element(out, "correctiveEventID", &text_of(id));
        }
        out.push_str("</correctiveEventIDs>");
    }
    for (key, value) in value.as_object().into_iter().flatten() {
        if !matches!(
            key.as_str(),
            "declarationTime" | "reason" | "correctiveEventIDs"
        ) {
            write_extension(out, key, value);
        }
    }
    out.push_str("</errorDeclaration>");
}

/// A sensorElement: its metadata and reports as attributes, its extensions as elements.
fn sensor_element(out: &mut String, item: &Value) {
    out.push_str("<sensorElement>");
    if let Some(metadata) = item.get("sensorMetadata") {
        attributes_element(out, "sensorMetadata", metadata);
    }
    for report in item
        .get("sensorReport")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        attributes_element(out, "sensorReport", report);
    }
    for (key, value) in item.as_object().into_iter().flatten() {
        if !matches!(key.as_str(), "sensorMetadata" | "sensorReport") {
            write_extension(out, key, value);
        }
    }
    out.push_str("</sensorElement>");
}

fn attributes_element(out: &mut String, name: &str, value: &Value) {
    out.push_str(&format!("<{name}"));
    for (key, value) in value.as_object().into_iter().flatten() {
        let text = match (key.as_str(), value) {
            (
                "type" | "exception" | "microorganism" | "chemicalSubstance" | "component",
                Value::String(term),
            ) => term
                .strip_prefix("gs1:")
                .map_or_else(|| term.clone(), |t| format!("{GS1_VOCABULARY}{t}")),
            _ => text_of(value),
        };
        out.push_str(&format!(" {key}=\"{}\"", escape(&text)));
    }
    out.push_str("/>");
}

/// An extension field and what it holds, written with a stack: an object's keys are
/// child elements (`#text` its text), an array repeats the element.
fn write_extension(out: &mut String, key: &str, value: &Value) {
    enum Step<'a> {
        Open(&'a str, &'a Value),
        Close(String),
    }
    let mut steps = vec![Step::Open(key, value)];
    while let Some(step) = steps.pop() {
        match step {
            Step::Close(name) => out.push_str(&format!("</{name}>")),
            Step::Open(name, Value::Array(items)) => {
                steps.extend(items.iter().rev().map(|item| Step::Open(name, item)));
            }
            Step::Open(key, Value::Object(map)) => {
                let (name, declaration) = element_name(key);
                out.push_str(&format!("<{name}{declaration}>"));
                if let Some(text) = map.get("#text") {
                    out.push_str(&escape(text_of(text)));
                }
                steps.push(Step::Close(name));
                for (child, value) in map.iter().rev() {
                    if child != "#text" && !child.starts_with('@') {
                        steps.push(Step::Open(child, value));
                    }
                }
            }
            Step::Open(key, scalar) => {
                let (name, declaration) = element_name(key);
                out.push_str(&format!(
                    "<{name}{declaration}>{}</{name}>",
                    escape(text_of(scalar))
                ));
            }
        }
    }
}

/// Whether `name` is an XML name without a colon.
fn is_ncname(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The element name of an extension key, and the namespace declaration it needs: a
/// `prefix:name` or a bare name as it is; a full IRI (`https://ns.example/x#name`) split
/// into a namespace and a local name.
fn element_name(key: &str) -> (String, String) {
    if let Some((prefix, local)) = key.split_once(':')
        && !key.contains("://")
        && is_prefix(prefix)
        && is_ncname(local)
    {
        return (key.to_owned(), String::new());
    }
    if is_ncname(key) {
        return (key.to_owned(), String::new());
    }
    let split = key.rfind(['/', '#', ':']).map_or(0, |at| at + 1);
    let (namespace, local) = key.split_at(split);
    if !namespace.is_empty() && is_ncname(local) {
        return (
            format!("ext:{local}"),
            format!(" xmlns:ext=\"{}\"", escape(namespace)),
        );
    }
    // Nothing XML can name: kept, under a name that says so.
    (
        "tracery:unnamed".to_owned(),
        " xmlns:tracery=\"urn:tracery:unnamed\"".to_owned(),
    )
}
