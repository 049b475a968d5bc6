//! GS1 Digital Link URIs (GS1 Digital Link URI Syntax 1.4): `https://id.gs1.org/01/…/10/…/21/…?17=…`.
//!
//! Any resolver domain and path prefix is accepted; the key, its qualifiers and the data
//! attributes convert to and from an [`ElementString`].

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::{
    ai,
    element_string::{Element, ElementString},
    error::{Gs1Error, Gs1ErrorKind, Result},
    key::{Identifier, normalise_gtin},
};

/// GS1's own resolver, used when no other domain is asked for.
pub const DEFAULT_RESOLVER: &str = "https://id.gs1.org";

/// Everything but the URI unreserved characters is percent-encoded in path and query values.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Primary-key AIs and, for each, the allowed qualifier paths in their fixed order.
const KEYS: &[(&str, &[&[&str]])] = &[
    ("01", &[&["22", "10", "21"], &["235"]]),
    ("8006", &[&["22", "10", "21"]]),
    ("8010", &[&["8011"]]),
    ("414", &[&["254"], &["7040"]]),
    ("417", &[&["7040"]]),
    ("8017", &[&["8019"]]),
    ("8018", &[&["8019"]]),
    ("8004", &[&["7040"]]),
    ("415", &[&["8020"]]),
    ("00", &[]),
    ("253", &[]),
    ("255", &[]),
    ("401", &[]),
    ("402", &[]),
    ("8003", &[]),
    ("8013", &[]),
];

/// A parsed GS1 Digital Link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitalLink {
    /// Scheme, host and any path prefix before the key, without a trailing slash.
    pub stem: String,
    /// Key, qualifiers (from the path) and data attributes (from the query), in that order.
    pub elements: ElementString,
}

impl DigitalLink {
    /// Parses a Digital Link URI.
    pub fn parse(uri: &str) -> Result<Self> {
        crate::check_input_length(uri)?;
        let syntax = |detail: &str| Gs1Error::new(Gs1ErrorKind::Syntax, detail);
        // Split by hand: URL libraries normalise `.`/`..` and `%2E` path segments away, but
        // those are legitimate lot or serial values here.
        let (scheme, rest) = uri
            .split_once("://")
            .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
            .ok_or_else(|| syntax("a Digital Link is an http or https URI"))?;
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() || authority.contains(['@', ' ']) {
            return Err(syntax("a Digital Link needs a plain host name"));
        }
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (start, path_pairs) = (0..segments.len())
            .find_map(|i| key_path(&segments[i..]).map(|pairs| (i, pairs)))
            .ok_or_else(|| {
                syntax("no GS1 primary key path such as /01/{gtin} (with qualifiers in order)")
            })?;
        let path_start = scheme.len() + 3 + authority.len();
        let mut elements = Vec::new();
        for (ai, raw) in path_pairs {
            let offset = path_start + uri[path_start..].find(raw).unwrap_or_default();
            let value = decode(raw).map_err(|e| e.in_ai(ai).at(offset))?;
            let value = if ai == "01" {
                normalise_gtin(&value).map_err(|e| e.shifted(offset))?
            } else {
                value
            };
            elements.push(Element::new(ai, value).map_err(|e| e.shifted(offset))?);
        }
        for pair in query.split('&') {
            let Some((name, raw)) = pair.split_once('=') else {
                continue;
            };
            // Non-numeric parameters (linkType, context, ...) are the resolver's business.
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            let offset = uri.find(pair).unwrap_or_default() + name.len() + 1;
            if ai::lookup(name).is_none() {
                return Err(Gs1Error::new(
                    Gs1ErrorKind::UnknownAi,
                    format!("query parameter ({name}) is not a GS1 Application Identifier"),
                )
                .at(offset - name.len() - 1));
            }
            let value = decode(raw).map_err(|e| e.in_ai(name).at(offset))?;
            elements.push(Element::new(name, value).map_err(|e| e.shifted(offset))?);
        }
        let prefix: String = segments[..start].iter().map(|s| format!("/{s}")).collect();
        Ok(Self {
            stem: format!("{scheme}://{authority}{prefix}"),
            elements: ElementString::new(elements)?,
        })
    }

    /// A Digital Link on `stem` (e.g. [`DEFAULT_RESOLVER`]) for the data in `elements`:
    /// the first primary key present, its qualifiers in GS1 order, everything else as
    /// query attributes.
    pub fn from_element_string(stem: &str, elements: &ElementString) -> Result<Self> {
        let (key, _) = KEYS
            .iter()
            .find(|(key, _)| elements.contains(key))
            .ok_or_else(|| {
                Gs1Error::new(
                    Gs1ErrorKind::MissingAssociation,
                    "no Digital Link primary key (01, 00, 414, 8003, 8004, ...) present",
                )
            })?;
        let mut ordered: Vec<Element> = Vec::new();
        for ai in std::iter::once(*key).chain(qualifiers_present(key, elements)) {
            if let Some(e) = elements.elements().iter().find(|e| e.ai() == ai) {
                ordered.push(e.clone());
            }
        }
        for e in elements.elements() {
            if !ordered.iter().any(|o| o.ai() == e.ai()) {
                ordered.push(e.clone());
            }
        }
        Ok(Self {
            stem: stem.trim_end_matches('/').to_owned(),
            elements: ElementString::new(ordered)?,
        })
    }

    /// The URI.
    pub fn to_uri(&self) -> String {
        let mut uri = self.stem.clone();
        let key = self
            .elements
            .elements()
            .first()
            .map(Element::ai)
            .unwrap_or_default();
        let qualifiers = qualifiers_present(key, &self.elements);
        let mut query = Vec::new();
        for (index, e) in self.elements.elements().iter().enumerate() {
            let value = match e.value.as_str() {
                // Dot segments would be removed by any URI normaliser on the way.
                "." => "%2E".to_owned(),
                ".." => "%2E%2E".to_owned(),
                value => utf8_percent_encode(value, VALUE).to_string(),
            };
            if index == 0 || qualifiers.contains(&e.ai()) {
                uri.push_str(&format!("/{}/{value}", e.ai()));
            } else {
                query.push(format!("{}={value}", e.ai()));
            }
        }
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(&query.join("&"));
        }
        uri
    }
}

impl Identifier {
    /// The `https://id.gs1.org/...` link that names this object or class in one spelling:
    /// an instance by its key and serial only (an SGTIN carries no lot), a class by GTIN and
    /// lot. Unlike an EPC URN it needs no company prefix length.
    pub fn canonical_link(&self) -> Result<String> {
        let named = if self.is_instance() {
            Identifier {
                lot: None,
                ..self.clone()
            }
        } else {
            self.clone()
        };
        let elements = named.to_element_string()?;
        Ok(DigitalLink::from_element_string(DEFAULT_RESOLVER, &elements)?.to_uri())
    }
}

impl std::fmt::Display for DigitalLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_uri())
    }
}

/// The qualifier AIs of `key` present in `elements`, from the first qualifier path that
/// matches, in path order.
fn qualifiers_present<'a>(key: &str, elements: &ElementString) -> Vec<&'a str> {
    let Some((_, paths)) = KEYS.iter().find(|(k, _)| *k == key) else {
        return Vec::new();
    };
    paths
        .iter()
        .map(|path| {
            path.iter()
                .copied()
                .filter(|q| elements.contains(q))
                .collect::<Vec<_>>()
        })
        .find(|present| !present.is_empty())
        .unwrap_or_default()
}

/// `segments` as `(ai, raw value)` pairs if they form a primary key with qualifiers in order.
fn key_path<'a>(segments: &[&'a str]) -> Option<Vec<(&'static str, &'a str)>> {
    let (key, paths) = KEYS.iter().find(|(k, _)| Some(k) == segments.first())?;
    if !segments.len().is_multiple_of(2) {
        return None;
    }
    let mut pairs = vec![(*key, segments[1])];
    let qualifier_segments: Vec<&str> = segments[2..].iter().step_by(2).copied().collect();
    if qualifier_segments.is_empty() {
        return Some(pairs);
    }
    let path = paths
        .iter()
        .find(|path| is_ordered_subset(&qualifier_segments, path))?;
    for (index, ai) in qualifier_segments.iter().enumerate() {
        let ai = path.iter().find(|q| *q == ai)?;
        pairs.push((ai, segments[2 + 2 * index + 1]));
    }
    Some(pairs)
}

fn is_ordered_subset(candidate: &[&str], order: &[&str]) -> bool {
    let mut remaining = order.iter();
    candidate.iter().all(|c| remaining.any(|o| o == c))
}

fn decode(raw: &str) -> Result<String> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            Gs1Error::new(
                Gs1ErrorKind::IllegalCharacter,
                "percent-encoding is not UTF-8",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_build() {
        let link = DigitalLink::parse(
            "https://id.gs1.org/01/09506000134352/10/AB%2F1/21/12345?17=261231&linkType=gs1:pip",
        )
        .expect("parse");
        assert_eq!(link.stem, "https://id.gs1.org");
        assert_eq!(
            link.elements.to_bracketed(),
            "(01)09506000134352(10)AB/1(21)12345(17)261231"
        );
        assert_eq!(
            link.to_uri(),
            "https://id.gs1.org/01/09506000134352/10/AB%2F1/21/12345?17=261231"
        );
        let custom = DigitalLink::parse("https://brand.example.com:8443/p/q/01/9506000134352/21/7")
            .expect("custom domain, GTIN-13");
        assert_eq!(custom.stem, "https://brand.example.com:8443/p/q");
        assert_eq!(custom.elements.gtin(), Some("09506000134352"));
    }

    #[test]
    fn element_string_to_link_orders_qualifiers() {
        let s = ElementString::parse("(01)09506000134352(21)X(17)261231(10)L1").expect("parse");
        let link = DigitalLink::from_element_string(DEFAULT_RESOLVER, &s).expect("link");
        assert_eq!(
            link.to_uri(),
            "https://id.gs1.org/01/09506000134352/10/L1/21/X?17=261231"
        );
    }

    #[test]
    fn errors() {
        let cases = [
            (
                "https://id.gs1.org/01/09506000134353",
                Gs1ErrorKind::BadCheckDigit,
            ),
            (
                "https://id.gs1.org/01/09506000134352/21/1/10/L",
                Gs1ErrorKind::Syntax,
            ),
            (
                "https://id.gs1.org/01/09506000134352?99999=1",
                Gs1ErrorKind::UnknownAi,
            ),
            (
                "https://id.gs1.org/01/09506000134352/21/a%20b",
                Gs1ErrorKind::IllegalCharacter,
            ),
            ("ftp://id.gs1.org/01/09506000134352", Gs1ErrorKind::Syntax),
        ];
        for (uri, kind) in cases {
            let err = DigitalLink::parse(uri).expect_err(uri);
            assert_eq!(err.kind, kind, "{uri}: {err}");
        }
        let err = DigitalLink::parse("https://id.gs1.org/01/09506000134353").expect_err("check");
        assert_eq!(err.position, Some(35));
    }
}
