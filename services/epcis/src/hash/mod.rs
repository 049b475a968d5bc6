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

use serde_json::Value;
use sha2::{Digest, Sha256};

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
