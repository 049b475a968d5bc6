//! GS1 identifiers for Tracery: the shared library behind identity, capture and genealogy.
//!
//! - [`charset`]: character sets 82/39/64 and the mod-10 check digit.
//! - [`ai`]: the Application Identifier table and per-value checks (lengths, dates, check digits).
//! - [`element_string`]: element strings in bracketed and raw scanner form.
//! - [`key`]: GS1 keys with lot/serial qualifiers ([`Identifier`]).
//! - [`digital_link`]: GS1 Digital Link URIs.
//! - [`epc`]: EPC pure-identity URNs.
//! - [`parse_any`]: one entry point for whatever a scanner or an EPCIS document holds.
//!
//! Hand-written on purpose: no maintained Rust crate covers the full AI table, raw scanner
//! input with FNC1 separators, Digital Link with custom resolvers and EPC URNs together with
//! position-accurate errors; the few Digital Link crates handle a handful of AIs only.

pub mod ai;
mod associations;
pub mod charset;
pub mod digital_link;
pub mod element_string;
pub mod epc;
pub mod error;
pub mod key;
pub mod tds;

pub use digital_link::DigitalLink;
pub use element_string::{Element, ElementString};
pub use error::{Gs1Error, Gs1ErrorKind};
pub use key::{Identifier, KeyKind};

/// How an identifier was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// An EPC URN.
    EpcUrn,
    /// A GS1 Digital Link URI.
    DigitalLink,
    /// An element string, bracketed or raw.
    ElementString,
    /// A tag's EPC bank in hex, as an RFID reader reports it (TDS binary encoding).
    EpcHex,
    /// An EPC tag URI (`urn:epc:tag:sgtin-96:3.…`): the pure identity with filter and scheme.
    EpcTagUri,
}

/// Whatever [`parse_any`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The input's syntax.
    pub syntax: Syntax,
    /// All AIs and values (for a URN, those of its key).
    pub elements: ElementString,
    /// The key with qualifiers, when the data holds one.
    pub identifier: Option<Identifier>,
    /// The company prefix length, when the input shows it (EPC URNs).
    pub company_prefix_length: Option<usize>,
    /// The Digital Link stem, when the input was a Digital Link.
    pub stem: Option<String>,
    /// The tag encoding, when the input was EPC hex or a tag URI.
    pub tag: Option<tds::TagEpc>,
}

/// The longest text any parser here reads: a 2D symbol holds at most about 3,100
/// characters, and a Digital Link or URN naming one object far fewer. Longer input is
/// refused before it is looked at.
pub const MAX_INPUT_LEN: usize = 4096;

/// Refuses input longer than [`MAX_INPUT_LEN`].
pub(crate) fn check_input_length(text: &str) -> Result<(), Gs1Error> {
    if text.len() > MAX_INPUT_LEN {
        return Err(Gs1Error::new(
            Gs1ErrorKind::WrongLength,
            format!(
                "the input is {} bytes long; at most {MAX_INPUT_LEN}",
                text.len()
            ),
        ));
    }
    Ok(())
}

/// Parses an EPC URN, a Digital Link (also behind a `]Q1`/`]Q3` symbology identifier), an
/// element string, EPC hex or an EPC tag URI.
///
/// Hex is tried first where the input could be either (see [`tds::looks_like_hex`]): 24
/// (or 43–52) hex digits are what readers send, while an all-digit raw element string that
/// long starting with an EPC header (`30`–`39`: counts and measures, which need a key
/// before them) is not a valid one.
pub fn parse_any(text: &str) -> Result<Parsed, Gs1Error> {
    check_input_length(text)?;
    let text = text.trim_end_matches(['\r', '\n']);
    if text.starts_with("urn:epc:tag:") {
        return from_tag(tds::TagEpc::from_tag_uri(text)?, Syntax::EpcTagUri);
    }
    if tds::looks_like_hex(text) {
        return from_tag(tds::TagEpc::from_hex(text)?, Syntax::EpcHex);
    }
    if text.starts_with("urn:epc:") {
        let (identifier, cp) = Identifier::from_epc_urn(text)?;
        return Ok(Parsed {
            syntax: Syntax::EpcUrn,
            elements: identifier.to_element_string()?,
            identifier: Some(identifier),
            company_prefix_length: Some(cp),
            stem: None,
            tag: None,
        });
    }
    let (body, offset) = match text.strip_prefix("]Q1") {
        Some(rest) => (rest, 3),
        None => element_string::strip_symbology_identifier(text),
    };
    if body.starts_with("http://") || body.starts_with("https://") {
        let link = DigitalLink::parse(body).map_err(|e| e.shifted(offset))?;
        return Ok(Parsed {
            syntax: Syntax::DigitalLink,
            identifier: Identifier::from_element_string(&link.elements).ok(),
            elements: link.elements,
            company_prefix_length: None,
            stem: Some(link.stem),
            tag: None,
        });
    }
    let elements = ElementString::parse(text)?;
    Ok(Parsed {
        syntax: Syntax::ElementString,
        identifier: Identifier::from_element_string(&elements).ok(),
        elements,
        company_prefix_length: None,
        stem: None,
        tag: None,
    })
}

/// What a decoded tag identifies; a GID names no GS1 key and is refused.
fn from_tag(tag: tds::TagEpc, syntax: Syntax) -> Result<Parsed, Gs1Error> {
    let Some(identified) = tag.identifier() else {
        return Err(Gs1Error::new(
            Gs1ErrorKind::Syntax,
            format!(
                "{} is a {}, which names no GS1 key",
                tag.pure_identity(),
                tag.scheme.name
            ),
        ));
    };
    let (identifier, cp) = identified?;
    Ok(Parsed {
        syntax,
        elements: identifier.to_element_string()?,
        identifier: Some(identifier),
        company_prefix_length: Some(cp),
        stem: None,
        tag: Some(tag),
    })
}

/// The one spelling of an EPCIS identifier URI used to compare identifiers: EPC URNs and
/// Digital Links of the same object become the same `https://id.gs1.org/...` link.
///
/// An instance is named by its key and serial only (an SGTIN carries no lot), a class by
/// GTIN and lot, a GTIN pattern (`urn:epc:idpat:sgtin:…*`) by the bare GTIN. Returns `None`
/// for anything that is not a GS1 identifier URI (a `urn:uuid:`, a non-GS1 URL, a malformed
/// key), which callers compare as written.
///
/// Remembers recent answers: the same identifiers pass through capture's rules, identity's
/// lifecycle and genealogy's projection within moments of each other (one process in the
/// all-in-one server), and parsing a key is most of what a projection spends per event.
pub fn canonical_uri(uri: &str) -> Option<String> {
    if !(uri.starts_with("urn:epc:") || uri.starts_with("https://") || uri.starts_with("http://")) {
        return None;
    }
    let recent = recent_canonical_uris();
    if let Some(known) = recent.get(uri) {
        return known;
    }
    let canonical = parse_any(uri)
        .ok()
        .and_then(|parsed| parsed.identifier)
        .and_then(|identifier| identifier.canonical_link().ok());
    recent.insert(uri.to_owned(), canonical.clone());
    canonical
}

/// How many answers are remembered, and their bytes at most: the identifiers of the last
/// few thousand events. Weighed by length, so long malformed input cannot grow it.
const RECENT_CANONICAL_URIS: usize = 50_000;
const RECENT_CANONICAL_URI_BYTES: u64 = 10 * 1024 * 1024;

type RecentCanonicalUris = quick_cache::sync::Cache<String, Option<String>, ByLength>;

fn recent_canonical_uris() -> &'static RecentCanonicalUris {
    static RECENT: std::sync::OnceLock<RecentCanonicalUris> = std::sync::OnceLock::new();
    RECENT.get_or_init(|| {
        RecentCanonicalUris::with_weighter(
            RECENT_CANONICAL_URIS,
            RECENT_CANONICAL_URI_BYTES,
            ByLength,
        )
    })
}

/// Weighs a remembered answer by the bytes of the URI and its canonical form.
#[derive(Clone)]
struct ByLength;

impl quick_cache::Weighter<String, Option<String>> for ByLength {
    fn weight(&self, uri: &String, canonical: &Option<String>) -> u64 {
        // Never zero: zero-weight entries are never evicted. The URI is at least
        // `urn:epc:` long here anyway.
        (uri.len() + canonical.as_ref().map_or(0, String::len)).max(1) as u64
    }
}
