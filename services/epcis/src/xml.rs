//! The EPCIS 2.0 XML binding, read into the same model as JSON-LD.
//!
//! The XML is parsed (quick-xml, namespace-aware) into its JSON-LD equivalent and then
//! read by [`crate::json`], so both bindings share one set of checks and error paths.
//! Standard fields are unqualified elements; any namespaced element or attribute is a
//! user extension and keeps its prefix, with the prefix bound in the document's
//! `@context`. EPCIS 1.x `<extension>` and `<baseExtension>` wrappers are read through.
//!
//! The input is untrusted: depth, attributes per element and namespace declarations are
//! counted while reading ([`Bounds`]), so the element tree built here is never deeper than
//! the bound and the recursive walks over it (and its drop) stay shallow. Entities are not
//! expanded: only the five predefined ones and character references are read, and a DTD
//! with an internal subset (where entities would be declared) is refused.

use std::collections::BTreeMap;

use quick_xml::{
    NsReader,
    events::{BytesStart, Event as XmlEvent},
    name::ResolveResult,
};
use serde_json::{Map, Number, Value, json};

use crate::{Document, EpcisError, bounds::Bounds, json as json_binding};

const EPCIS_CONTEXT: &str = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Parses an EPCISDocument or EPCISQueryDocument in the EPCIS 2.0 XML binding, within
/// the default [`Bounds`].
pub fn parse_document(text: &str) -> Result<Document, EpcisError> {
    json_binding::document_from_value(document_json(text, &Bounds::default())?)
}

/// The JSON-LD equivalent of an XML document, not yet checked against the model: for
/// intake that looks at each event on its own.
pub fn document_json(text: &str, bounds: &Bounds) -> Result<Value, EpcisError> {
    let mut namespaces = Prefixes::default();
    let root = read_tree(text, bounds, &mut namespaces)?;
    root_json(&root, &namespaces)
}

/// An element with its namespace resolved: `namespace` is `None` for the unqualified
/// standard fields.
#[derive(Debug, Default)]
struct Element {
    namespace: Option<String>,
    local: String,
    attributes: Vec<Attribute>,
    text: String,
    children: Vec<Element>,
}

#[derive(Debug)]
struct Attribute {
    namespace: Option<String>,
    local: String,
    value: String,
}

impl Element {
    fn child(&self, local: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|c| c.namespace.is_none() && c.local == local)
    }

    /// The unqualified children named `local`.
    fn children_named<'a>(&'a self, local: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children
            .iter()
            .filter(move |c| c.namespace.is_none() && c.local == local)
    }

    fn attribute(&self, local: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.namespace.is_none() && a.local == local)
            .map(|a| a.value.as_str())
    }

    fn xsi(&self, local: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.namespace.as_deref() == Some(XSI) && a.local == local)
            .map(|a| a.value.as_str())
    }

    /// Children with `<extension>` / `<baseExtension>` wrappers read through.
    fn fields(&self) -> Vec<&Element> {
        let mut out = Vec::new();
        for child in &self.children {
            if child.namespace.is_none()
                && matches!(child.local.as_str(), "extension" | "baseExtension")
            {
                out.extend(child.fields());
            } else {
                out.push(child);
            }
        }
        out
    }
}

/// Namespace prefixes for extension keys: the document's own where it has one, a made-up
/// one for a default namespace.
#[derive(Default)]
struct Prefixes {
    by_namespace: BTreeMap<String, String>,
    /// Declarations read so far, for [`Bounds::max_namespaces`].
    declarations: usize,
}

impl Prefixes {
    fn declare(&mut self, prefix: &str, namespace: &str) {
        if !self.by_namespace.contains_key(namespace)
            && !self.by_namespace.values().any(|p| p == prefix)
        {
            self.by_namespace
                .insert(namespace.to_owned(), prefix.to_owned());
        }
    }

    fn prefix_for(&mut self, namespace: &str) -> String {
        if let Some(prefix) = self.by_namespace.get(namespace) {
            return prefix.clone();
        }
        let prefix = (1..)
            .map(|n| format!("ns{n}"))
            .find(|p| !self.by_namespace.values().any(|used| used == p))
            .unwrap_or_default();
        self.by_namespace
            .insert(namespace.to_owned(), prefix.clone());
        prefix
    }

    fn key(&self, namespace: Option<&str>, local: &str) -> String {
        match namespace.and_then(|ns| self.by_namespace.get(ns)) {
            Some(prefix) => format!("{prefix}:{local}"),
            None => local.to_owned(),
        }
    }

    fn context(&self, used: &[String]) -> Value {
        let bindings: Map<String, Value> = self
            .by_namespace
            .iter()
            .filter(|(_, prefix)| used.contains(prefix))
            .map(|(namespace, prefix)| (prefix.clone(), Value::String(namespace.clone())))
            .collect();
        if bindings.is_empty() {
            json!([EPCIS_CONTEXT])
        } else {
            json!([EPCIS_CONTEXT, bindings])
        }
    }
}

fn xml_error(reader: &NsReader<&[u8]>, err: impl std::fmt::Display) -> EpcisError {
    error_at(reader.buffer_position(), err)
}

fn error_at(position: u64, err: impl std::fmt::Display) -> EpcisError {
    EpcisError::MalformedXml(format!("at byte {position}: {err}"))
}

fn over_limit(position: u64, what: impl std::fmt::Display) -> EpcisError {
    EpcisError::OverLimit(format!("XML at byte {position}: {what}"))
}

fn read_tree(text: &str, bounds: &Bounds, prefixes: &mut Prefixes) -> Result<Element, EpcisError> {
    let mut reader = NsReader::from_str(text);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    loop {
        let position = reader.buffer_position();
        let (resolved, event) = reader
            .read_resolved_event()
            .map_err(|err| error_at(position, err))?;
        let namespace = match resolved {
            ResolveResult::Bound(ns) => Some(String::from_utf8_lossy(ns.as_ref()).into_owned()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(prefix) => {
                return Err(xml_error(
                    &reader,
                    format!("undeclared prefix `{}`", String::from_utf8_lossy(&prefix)),
                ));
            }
        };
        match event {
            XmlEvent::Start(start) => {
                if stack.len() >= bounds.max_depth {
                    return Err(over_limit(
                        position,
                        format!(
                            "elements nest deeper than {} levels (limits.max_nesting_depth)",
                            bounds.max_depth
                        ),
                    ));
                }
                stack.push(open(&reader, &start, namespace, bounds, prefixes)?);
            }
            XmlEvent::Empty(start) => {
                let element = open(&reader, &start, namespace, bounds, prefixes)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => return Ok(element),
                }
            }
            XmlEvent::End(_) => {
                let mut element = stack
                    .pop()
                    .ok_or_else(|| xml_error(&reader, "unbalanced end tag"))?;
                element.text = element.text.trim().to_owned();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => return Ok(element),
                }
            }
            XmlEvent::Text(text) => {
                if let Some(current) = stack.last_mut() {
                    let text = text.xml_content().map_err(|err| xml_error(&reader, err))?;
                    current.text.push_str(&text);
                }
            }
            XmlEvent::CData(data) => {
                if let Some(current) = stack.last_mut() {
                    let text = data.decode().map_err(|err| xml_error(&reader, err))?;
                    current.text.push_str(&text);
                }
            }
            XmlEvent::GeneralRef(reference) => {
                let name = reference.decode().map_err(|err| xml_error(&reader, err))?;
                let reference = format!("&{name};");
                let resolved = quick_xml::escape::unescape(&reference)
                    .map_err(|err| xml_error(&reader, err))?;
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&resolved);
                }
            }
            XmlEvent::Eof => return Err(xml_error(&reader, "the document ends early")),
            XmlEvent::DocType(doctype) if doctype.contains(&b'[') => {
                return Err(over_limit(
                    position,
                    "a DOCTYPE with an internal subset is not accepted (entities are not expanded)",
                ));
            }
            XmlEvent::Comment(_) | XmlEvent::Decl(_) | XmlEvent::PI(_) | XmlEvent::DocType(_) => {}
        }
    }
}

fn open(
    reader: &NsReader<&[u8]>,
    start: &BytesStart,
    namespace: Option<String>,
    bounds: &Bounds,
    prefixes: &mut Prefixes,
) -> Result<Element, EpcisError> {
    let mut attributes = Vec::new();
    for (count, attribute) in start.attributes().enumerate() {
        if count >= bounds.max_attributes {
            return Err(over_limit(
                reader.buffer_position(),
                format!(
                    "element `{}` has more than {} attributes",
                    String::from_utf8_lossy(start.local_name().as_ref()),
                    bounds.max_attributes
                ),
            ));
        }
        let attribute = attribute.map_err(|err| xml_error(reader, err))?;
        let key = attribute.key;
        let value = attribute
            .unescape_value()
            .map_err(|err| xml_error(reader, err))?
            .into_owned();
        if key.as_namespace_binding().is_some() {
            let prefix = key.local_name();
            let prefix = String::from_utf8_lossy(prefix.as_ref());
            if key.as_ref() != b"xmlns" {
                prefixes.declare(&prefix, &value);
            }
            prefixes.declarations += 1;
            if prefixes.declarations > bounds.max_namespaces {
                return Err(over_limit(
                    reader.buffer_position(),
                    format!("more than {} namespace declarations", bounds.max_namespaces),
                ));
            }
            continue;
        }
        let (resolved, local) = reader.resolve_attribute(key);
        let namespace = match resolved {
            ResolveResult::Bound(ns) => Some(String::from_utf8_lossy(ns.as_ref()).into_owned()),
            _ => None,
        };
        attributes.push(Attribute {
            namespace,
            local: String::from_utf8_lossy(local.as_ref()).into_owned(),
            value,
        });
    }
    if let Some(ns) = &namespace {
        prefixes.prefix_for(ns);
    }
    for attribute in &attributes {
        if let Some(ns) = &attribute.namespace {
            prefixes.prefix_for(ns);
        }
    }
    Ok(Element {
        namespace,
        local: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
        attributes,
        text: String::new(),
        children: Vec::new(),
    })
}

fn root_json(root: &Element, prefixes: &Prefixes) -> Result<Value, EpcisError> {
    let kind = root.local.as_str();
    if ![
        "EPCISDocument",
        "EPCISQueryDocument",
        "EPCISMasterDataDocument",
    ]
    .contains(&kind)
    {
        return Err(EpcisError::invalid(
            "type",
            format!("`{kind}` is not EPCISDocument, EPCISQueryDocument or EPCISMasterDataDocument"),
        ));
    }
    // Some query documents in the wild put queryName and resultsBody directly under the
    // root; read them there too.
    let body = root.child("EPCISBody").unwrap_or(root);
    let mut writer = JsonWriter {
        prefixes,
        used: Vec::new(),
    };
    let mut document = Map::new();
    document.insert("type".into(), kind.into());
    for name in ["schemaVersion", "creationDate"] {
        if let Some(value) = root.attribute(name) {
            document.insert(name.into(), value.into());
        }
    }
    if let Some(list) = header_vocabulary_list(root) {
        let vocabularies = writer.vocabulary_list(list);
        document.insert(
            "epcisHeader".into(),
            json!({ "epcisMasterData": { "vocabularyList": vocabularies } }),
        );
    }
    let epcis_body = if kind == "EPCISMasterDataDocument" {
        let vocabularies = body
            .child("VocabularyList")
            .map(|list| writer.vocabulary_list(list))
            .unwrap_or_default();
        json!({ "vocabularyList": vocabularies })
    } else if kind == "EPCISDocument" {
        let events = writer.event_list(body.child("EventList"));
        json!({ "eventList": events })
    } else {
        let results = body
            .children
            .iter()
            .find(|c| c.local == "QueryResults")
            .unwrap_or(body);
        let events = writer.event_list(
            results
                .child("resultsBody")
                .and_then(|b| b.child("EventList")),
        );
        let mut query_results = Map::new();
        for (xml, key) in [
            ("queryName", "queryName"),
            ("subscriptionID", "subscriptionID"),
        ] {
            if let Some(value) = results.child(xml) {
                query_results.insert(key.into(), value.text.clone().into());
            }
        }
        query_results.insert("resultsBody".into(), json!({ "eventList": events }));
        json!({ "queryResults": query_results })
    };
    document.insert("epcisBody".into(), epcis_body);
    for extension in root.children.iter().filter(|c| c.namespace.is_some()) {
        let key = writer.key(extension.namespace.as_deref(), &extension.local);
        let value = writer.extension_value(extension);
        insert_repeated(&mut document, key, value);
    }
    document.insert("@context".into(), prefixes.context(&writer.used));
    Ok(Value::Object(document))
}

/// The `VocabularyList` of an EPCISDocument's header master data
/// (`EPCISHeader/extension/EPCISMasterData`, the wrapper read through, the element in
/// whichever namespace).
fn header_vocabulary_list(root: &Element) -> Option<&Element> {
    root.child("EPCISHeader")?
        .fields()
        .into_iter()
        .find(|field| field.local == "EPCISMasterData")?
        .child("VocabularyList")
}

/// Writes elements as JSON-LD, remembering which prefixes the extension keys use.
struct JsonWriter<'a> {
    prefixes: &'a Prefixes,
    used: Vec<String>,
}

const TEXT_FIELDS: [&str; 10] = [
    "eventTime",
    "recordTime",
    "eventTimeZoneOffset",
    "eventID",
    "certificationInfo",
    "parentID",
    "action",
    "bizStep",
    "disposition",
    "transformationID",
];
const EPC_LISTS: [&str; 4] = ["epcList", "inputEPCList", "outputEPCList", "childEPCs"];
const QUANTITY_LISTS: [&str; 4] = [
    "quantityList",
    "childQuantityList",
    "inputQuantityList",
    "outputQuantityList",
];
const NUMERIC_REPORT_FIELDS: [&str; 7] = [
    "value",
    "minValue",
    "maxValue",
    "meanValue",
    "sDev",
    "percRank",
    "percValue",
];

impl JsonWriter<'_> {
    fn key(&mut self, namespace: Option<&str>, local: &str) -> String {
        let key = self.prefixes.key(namespace, local);
        if let Some((prefix, _)) = key.split_once(':')
            && !self.used.iter().any(|p| p == prefix)
        {
            self.used.push(prefix.to_owned());
        }
        key
    }

    fn event_list(&mut self, list: Option<&Element>) -> Vec<Value> {
        let Some(list) = list else {
            return Vec::new();
        };
        list.fields()
            .into_iter()
            .filter(|e| crate::model::EVENT_TYPE_NAMES.contains(&e.local.as_str()))
            .map(|e| self.event(e))
            .collect()
    }

    fn event(&mut self, event: &Element) -> Value {
        let mut out = Map::new();
        out.insert("type".into(), event.local.clone().into());
        for field in event.fields() {
            if field.namespace.is_some() {
                let key = self.key(field.namespace.as_deref(), &field.local);
                let value = self.extension_value(field);
                insert_repeated(&mut out, key, value);
                continue;
            }
            let name = field.local.as_str();
            let value = match name {
                _ if TEXT_FIELDS.contains(&name) => Value::String(field.text.clone()),
                _ if EPC_LISTS.contains(&name) => Value::Array(
                    field
                        .fields()
                        .into_iter()
                        .map(|epc| Value::String(epc.text.clone()))
                        .collect(),
                ),
                _ if QUANTITY_LISTS.contains(&name) => Value::Array(
                    field
                        .fields()
                        .into_iter()
                        .map(|q| self.quantity(q))
                        .collect(),
                ),
                "readPoint" | "bizLocation" => self.object_with_extensions(field),
                "bizTransactionList" => self.typed_list(field, "bizTransaction"),
                "sourceList" => self.typed_list(field, "source"),
                "destinationList" => self.typed_list(field, "destination"),
                "persistentDisposition" => self.persistent_disposition(field),
                "sensorElementList" => Value::Array(
                    field
                        .fields()
                        .into_iter()
                        .map(|e| self.sensor_element(e))
                        .collect(),
                ),
                "errorDeclaration" => self.error_declaration(field),
                "ilmd" => self.object_with_extensions(field),
                _ => self.extension_value(field),
            };
            out.insert(name.to_owned(), value);
        }
        Value::Object(out)
    }

    fn quantity(&mut self, element: &Element) -> Value {
        let mut out = Map::new();
        for field in element.fields() {
            if field.xsi("nil") == Some("true") {
                continue;
            }
            let value = match field.local.as_str() {
                "quantity" => number_or_text(&field.text),
                _ => Value::String(field.text.clone()),
            };
            let key = self.key(field.namespace.as_deref(), &field.local);
            out.insert(key, value);
        }
        Value::Object(out)
    }

    /// An element whose unqualified children are text fields, and whose qualified ones
    /// are extensions.
    fn object_with_extensions(&mut self, element: &Element) -> Value {
        let mut out = Map::new();
        for field in element.fields() {
            let (key, value) = self.text_or_extension(field);
            insert_repeated(&mut out, key, value);
        }
        Value::Object(out)
    }

    /// A child element's key and value: its text when unqualified, an extension value
    /// when qualified.
    fn text_or_extension(&mut self, field: &Element) -> (String, Value) {
        let key = self.key(field.namespace.as_deref(), &field.local);
        let value = if field.namespace.is_some() {
            self.extension_value(field)
        } else {
            Value::String(field.text.clone())
        };
        (key, value)
    }

    fn typed_list(&mut self, list: &Element, entry: &str) -> Value {
        let entries = list
            .fields()
            .into_iter()
            .filter(|e| e.local == entry)
            .map(|e| {
                let mut out = Map::new();
                if let Some(kind) = e.attribute("type") {
                    out.insert("type".into(), kind.into());
                }
                out.insert(entry.to_owned(), e.text.clone().into());
                Value::Object(out)
            })
            .collect();
        Value::Array(entries)
    }

    fn persistent_disposition(&mut self, element: &Element) -> Value {
        let mut out = Map::new();
        for field in element.fields() {
            let (key, value) = self.text_or_extension(field);
            match out.entry(key).or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(items) => items.push(value),
                other => *other = value,
            }
        }
        Value::Object(out)
    }

    fn sensor_element(&mut self, element: &Element) -> Value {
        let mut out = Map::new();
        let mut reports = Vec::new();
        for field in element.fields() {
            match (field.namespace.is_none(), field.local.as_str()) {
                (true, "sensorMetadata") => {
                    let metadata = self.attributes_object(field, &[]);
                    out.insert("sensorMetadata".into(), metadata);
                }
                (true, "sensorReport") => {
                    reports.push(self.attributes_object(field, &NUMERIC_REPORT_FIELDS));
                }
                _ => {
                    let key = self.key(field.namespace.as_deref(), &field.local);
                    let value = self.extension_value(field);
                    insert_repeated(&mut out, key, value);
                }
            }
        }
        if !reports.is_empty() {
            out.insert("sensorReport".into(), Value::Array(reports));
        }
        Value::Object(out)
    }

    /// sensorMetadata / sensorReport: attributes (and any extension children) as fields.
    fn attributes_object(&mut self, element: &Element, numeric: &[&str]) -> Value {
        let mut out = Map::new();
        for attribute in &element.attributes {
            if attribute.namespace.as_deref() == Some(XSI) {
                continue;
            }
            let key = self.key(attribute.namespace.as_deref(), &attribute.local);
            let value = match attribute.local.as_str() {
                _ if attribute.namespace.is_some() => Value::String(attribute.value.clone()),
                "booleanValue" => match attribute.value.as_str() {
                    "true" | "1" => Value::Bool(true),
                    "false" | "0" => Value::Bool(false),
                    other => Value::String(other.to_owned()),
                },
                name if numeric.contains(&name) => number_or_text(&attribute.value),
                _ => Value::String(attribute.value.clone()),
            };
            out.insert(key, value);
        }
        for field in element.fields() {
            let key = self.key(field.namespace.as_deref(), &field.local);
            let value = self.extension_value(field);
            insert_repeated(&mut out, key, value);
        }
        Value::Object(out)
    }

    fn error_declaration(&mut self, element: &Element) -> Value {
        let mut out = Map::new();
        for field in element.fields() {
            if field.namespace.is_some() {
                let key = self.key(field.namespace.as_deref(), &field.local);
                let value = self.extension_value(field);
                insert_repeated(&mut out, key, value);
                continue;
            }
            let value = match field.local.as_str() {
                "correctiveEventIDs" => Value::Array(
                    field
                        .fields()
                        .into_iter()
                        .map(|id| Value::String(id.text.clone()))
                        .collect(),
                ),
                _ => Value::String(field.text.clone()),
            };
            out.insert(field.local.clone(), value);
        }
        Value::Object(out)
    }

    /// A user extension: text (typed by `xsi:type` where given) or an object of its
    /// children and attributes, a repeated child becoming a list.
    /// A `VocabularyList` as `vocabularyList`: each `Vocabulary` with its type and
    /// elements, each element with its attributes (text, or an object of the attribute's
    /// child elements) and children.
    fn vocabulary_list(&mut self, list: &Element) -> Vec<Value> {
        let mut vocabularies = Vec::new();
        for vocabulary in list.children_named("Vocabulary") {
            let mut elements = Vec::new();
            let element_list = vocabulary.child("VocabularyElementList");
            for element in element_list
                .into_iter()
                .flat_map(|l| l.children_named("VocabularyElement"))
            {
                let attributes: Vec<Value> = element
                    .children_named("attribute")
                    .map(|attribute| {
                        json!({
                            "id": attribute.attribute("id").unwrap_or_default(),
                            "attribute": self.attribute_value(attribute),
                        })
                    })
                    .collect();
                let children: Vec<Value> = element
                    .child("children")
                    .into_iter()
                    .flat_map(|c| c.children_named("id"))
                    .map(|id| Value::String(id.text.trim().to_owned()))
                    .collect();
                let mut out = Map::new();
                out.insert(
                    "id".into(),
                    element.attribute("id").unwrap_or_default().into(),
                );
                if !attributes.is_empty() {
                    out.insert("attributes".into(), Value::Array(attributes));
                }
                if !children.is_empty() {
                    out.insert("children".into(), Value::Array(children));
                }
                elements.push(Value::Object(out));
            }
            vocabularies.push(json!({
                "type": vocabulary.attribute("type").unwrap_or_default(),
                "vocabularyElementList": elements,
            }));
        }
        vocabularies
    }

    /// A master data attribute's value: its text, or its child elements as an object.
    fn attribute_value(&mut self, attribute: &Element) -> Value {
        if attribute.children.is_empty() {
            return typed_text(attribute.text.trim(), attribute.xsi("type"));
        }
        let mut out = Map::new();
        for child in &attribute.children {
            let key = self.key(child.namespace.as_deref(), &child.local);
            let value = self.extension_value(child);
            insert_repeated(&mut out, key, value);
        }
        Value::Object(out)
    }

    fn extension_value(&mut self, element: &Element) -> Value {
        let attributes: Vec<&Attribute> = element
            .attributes
            .iter()
            .filter(|a| a.namespace.as_deref() != Some(XSI))
            .collect();
        if element.children.is_empty() && attributes.is_empty() {
            return typed_text(&element.text, element.xsi("type"));
        }
        let mut out = Map::new();
        for attribute in attributes {
            let key = self.key(attribute.namespace.as_deref(), &attribute.local);
            out.insert(key, Value::String(attribute.value.clone()));
        }
        for child in &element.children {
            let key = self.key(child.namespace.as_deref(), &child.local);
            let value = self.extension_value(child);
            insert_repeated(&mut out, key, value);
        }
        if !element.text.is_empty() {
            out.insert("#text".into(), Value::String(element.text.clone()));
        }
        Value::Object(out)
    }
}

fn insert_repeated(map: &mut Map<String, Value>, key: String, value: Value) {
    match map.get_mut(&key) {
        None => {
            map.insert(key, value);
        }
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
    }
}

fn typed_text(text: &str, xsi_type: Option<&str>) -> Value {
    let local_type = xsi_type.map(|t| t.rsplit(':').next().unwrap_or(t));
    match local_type {
        Some("boolean") => match text {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => Value::String(text.to_owned()),
        },
        Some("integer" | "int" | "long" | "short" | "decimal" | "double" | "float") => {
            number_or_text(text)
        }
        _ => Value::String(text.to_owned()),
    }
}

/// A JSON number for numeric text (an integer where the text is one), else the text.
fn number_or_text(text: &str) -> Value {
    if let Ok(integer) = text.parse::<i64>() {
        return Value::Number(integer.into());
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or_else(|| Value::String(text.to_owned()), Value::Number)
}

#[cfg(test)]
mod tests {
    use super::parse_document;
    use crate::{EventKind, model::Action};

    #[test]
    fn reads_standard_fields_and_extensions() {
        let xml = r#"<?xml version="1.0"?>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" xmlns:ex="https://ns.example.com/"
    schemaVersion="2.0" creationDate="2024-01-01T00:00:00Z">
  <EPCISBody><EventList>
    <ObjectEvent>
      <eventTime>2024-01-01T10:00:00+01:00</eventTime>
      <eventTimeZoneOffset>+01:00</eventTimeZoneOffset>
      <epcList><epc>urn:epc:id:sgtin:0614141.107346.1</epc></epcList>
      <action>OBSERVE</action>
      <bizStep>shipping</bizStep>
      <readPoint><id>urn:epc:id:sgln:0614141.07346.1234</id></readPoint>
      <bizTransactionList><bizTransaction type="po">urn:x:1 &amp; 2</bizTransaction></bizTransactionList>
      <ex:temperature>4</ex:temperature>
    </ObjectEvent>
  </EventList></EPCISBody>
</epcis:EPCISDocument>"#;
        let document = parse_document(xml).expect("parses");
        let event = &document.events[0];
        assert!(matches!(&event.kind, EventKind::Object(o) if o.action == Action::Observe));
        assert_eq!(event.biz_step.as_deref(), Some("shipping"));
        assert_eq!(event.biz_transactions[0].id, "urn:x:1 & 2");
        assert_eq!(event.extensions["ex:temperature"], "4");
        assert_eq!(
            document.context[1]["ex"],
            serde_json::json!("https://ns.example.com/")
        );
    }

    #[test]
    fn deep_nesting_is_refused_while_reading() {
        let depth = 1_000_000;
        let xml = format!(
            "<EPCISDocument><EPCISBody><EventList><ObjectEvent>{}{}</ObjectEvent></EventList></EPCISBody></EPCISDocument>",
            "<ex:x xmlns:ex=\"urn:x\">".repeat(depth),
            "</ex:x>".repeat(depth)
        );
        let err = parse_document(&xml).expect_err("too deep");
        assert!(err.to_string().contains("deeper than 32 levels"), "{err}");
    }

    #[test]
    fn entity_declarations_are_refused() {
        let xml = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>
<EPCISDocument><EPCISBody><EventList/></EPCISBody></EPCISDocument>"#;
        let err = parse_document(xml).expect_err("internal subset");
        assert!(err.to_string().contains("internal subset"), "{err}");
    }

    #[test]
    fn too_many_attributes_are_refused() {
        let attributes: String = (0..100).map(|i| format!(" a{i}=\"x\"")).collect();
        let xml = format!("<EPCISDocument{attributes}><EPCISBody/></EPCISDocument>");
        let err = parse_document(&xml).expect_err("too wide");
        assert!(err.to_string().contains("more than 64 attributes"), "{err}");
    }

    #[test]
    fn malformed_xml_says_where() {
        let err = parse_document("<epcis:EPCISDocument><EPCISBody>").expect_err("malformed");
        assert!(err.to_string().contains("XML"), "{err}");
    }
}
