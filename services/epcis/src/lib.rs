//! The GS1 EPCIS 2.0 event model shared by capture, genealogy and integration.
//!
//! - [`bounds`]: depth and width limits on untrusted documents, checked without recursion.
//! - [`model`]: typed events ([`Event`] with one [`EventKind`] per EPCIS event type) and
//!   documents, with every standard field and user extensions kept verbatim.
//! - [`json`]: the JSON-LD binding (serde), exactly as in the EPCIS 2.0 standard.
//! - [`xml`]: the XML binding, read into the same model.
//! - [`cbv`]: Core Business Vocabulary terms (bizStep, disposition, ...) in all spellings.
//! - [`master_data`]: vocabulary elements (names and attributes of locations, products...).
//! - [`effects`]: what an event does (the one definition every consumer applies).
//! - [`hash`]: the GS1 event hash, the ID of an event sent without one.
//! - [`proto`]: conversion to and from the `tracery.v1` protobuf messages.
//!
//! No crate fits here: the public EPCIS crates cover EPCIS 1.x XML only, so the model is
//! written against the EPCIS 2.0 JSON schema directly.

pub mod bounds;
pub mod cbv;
pub mod effects;
pub mod error;
pub mod hash;
pub mod json;
pub mod master_data;
pub mod model;
pub mod proto;
pub mod time;
pub mod xml;
pub mod xml_out;

pub use error::EpcisError;
pub use model::*;
