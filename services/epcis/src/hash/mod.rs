//! The GS1 EPCIS event hash (`ni:///sha-256;…?ver=CBV2.0`): an ID for events that come
//! without one, equal for every equivalent spelling of the same event (JSON-LD or XML,
//! URN or Digital Link, any time zone, field order or number format).
//!
//! Hand-written because no Rust crate computes it. It follows the GS1 algorithm as the
//! reference implementation (RalphTro/epcis-event-hash-generator) does, quirks
//! included, and is checked against the published test vectors.

mod canonical;
mod digital_link;
mod prehash;
mod tree;

use serde_json::{Map, Value};

use sha2::{Digest, Sha256};
use tree::Namespaces;

use crate::{Document, Event, json};

/// What the hash needs from an event's document: the namespace prefixes of its
/// `@context`, and the extension fields the document says to leave out (a document-level
/// `…:ignoreFields` list, as repositories add their own bookkeeping fields).
#[derive(Default)]
pub struct HashContext {
    namespaces: tree::Namespaces,
    ignored: Vec<String>,
}

impl HashContext {
    /// The context of the events of `document`.
    pub fn of(document: &Document) -> Self {
        let extensions = document
            .extensions
            .iter()
            .chain(&document.query_results_extensions);
        Self::new(&document.context, extensions)
    }

    /// The context of a JSON-LD document or single event, before it is parsed.
    pub fn from_json(value: &Value) -> Self {
        let context = match value.get("@context") {
            Some(Value::Array(entries)) => entries.clone(),
            Some(entry) => vec![entry.clone()],
            None => Vec::new(),
        };
        let top_level = value.as_object().into_iter().flatten();
        let query_results = value
            .pointer("/epcisBody/queryResults")
            .and_then(Value::as_object)
            .into_iter()
            .flatten();
        Self::new(&context, top_level.chain(query_results))
    }

    /// Gives `event` (JSON-LD taken out of its document) an event-level `@context` binding
    /// the prefixes its keys use that the document's `@context` declared, so that the
    /// event stored and served alone keeps the namespaces of its extension fields. The
    /// event was read within the depth bound; it is walked with a stack all the same.
    pub fn declare_prefixes(&self, event: &mut Value) {
        let own = Namespaces::from_context(&match event.get("@context") {
            Some(Value::Array(entries)) => entries.clone(),
            Some(entry) => vec![entry.clone()],
            None => Vec::new(),
        });
        let mut needed = Map::new();
        let mut pending = vec![&*event];
        while let Some(value) = pending.pop() {
            match value {
                Value::Object(map) => {
                    for (key, child) in map {
                        if let Some((prefix, _)) = key.split_once(':')
                            && !STANDARD_PREFIXES.contains(&prefix)
                            && own.iri(prefix).is_none()
                            && let Some(iri) = self.namespaces.iri(prefix)
                        {
                            needed.insert(prefix.to_owned(), Value::String(iri.to_owned()));
                        }
                        pending.push(child);
                    }
                }
                Value::Array(items) => pending.extend(items),
                _ => {}
            }
        }
        if needed.is_empty() {
            return;
        }
        let Some(object) = event.as_object_mut() else {
            return;
        };
        let mut context = match object.remove("@context") {
            Some(Value::Array(entries)) => entries,
            Some(entry) => vec![entry],
            None => Vec::new(),
        };
        context.push(Value::Object(needed));
        object.insert("@context".to_owned(), Value::Array(context));
    }

    fn new<'a>(
        context: &[Value],
        extensions: impl Iterator<Item = (&'a String, &'a Value)>,
    ) -> Self {
        let namespaces = tree::Namespaces::from_context(context);
        let mut ignored = Vec::new();
        for (key, value) in extensions {
            if key.rsplit(':').next() != Some("ignoreFields") {
                continue;
            }
            match value {
                Value::Array(fields) => ignored.extend(
                    fields
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|field| namespaces.key(field)),
                ),
                Value::Object(fields) => {
                    ignored.extend(fields.keys().map(|field| namespaces.key(field)));
                }
                Value::String(field) => ignored.push(namespaces.key(field)),
                _ => {}
            }
        }
        Self {
            namespaces,
            ignored,
        }
    }
}

/// Prefixes the EPCIS context binds itself.
const STANDARD_PREFIXES: [&str; 2] = ["gs1", "cbv"];

/// The event hash of `event`.
pub fn event_hash(event: &Event, context: &HashContext) -> String {
    let digest = Sha256::digest(pre_hash(event, context).as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("ni:///sha-256;{hex}?ver=CBV2.0")
}

/// The canonical string the hash is taken of; worth logging when two systems disagree
/// about a hash.
pub fn pre_hash(event: &Event, context: &HashContext) -> String {
    let tree = tree::event_tree(json::event_to_json(event), &context.namespaces);
    prehash::pre_hash(tree, &context.ignored)
}
