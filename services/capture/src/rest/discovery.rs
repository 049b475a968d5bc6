//! What the binding says about itself: the `GS1-EPCIS-*` and `GS1-CBV-*` version headers
//! on every response, version negotiation (a client's `GS1-EPCIS-Min/Max` and
//! `GS1-CBV-Min/Max` that exclude 2.0.0 get a 406), content negotiation (event query
//! answers in JSON-LD or XML), `OPTIONS` on every path, and `DELETE /nextPageToken/{token}`.

use axum::{
    extract::{MatchedPath, Request},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::json;
use tracery_runtime::auth::permissions;

use super::problem_as;

/// The EPCIS and CBV version this repository speaks, the only one.
const VERSION: &str = "2.0.0";

/// The request headers that bound the version a client accepts.
const VERSION_BOUNDS: [(&str, Bound); 4] = [
    ("GS1-EPCIS-Min", Bound::Min),
    ("GS1-EPCIS-Max", Bound::Max),
    ("GS1-CBV-Min", Bound::Min),
    ("GS1-CBV-Max", Bound::Max),
];

#[derive(Debug, Clone, Copy)]
enum Bound {
    Min,
    Max,
}

/// A version as numbers (`2.0.0` → `[2, 0, 0]`), missing parts read as 0.
fn version_numbers(text: &str) -> Option<[u32; 3]> {
    let mut numbers = [0; 3];
    let mut parts = text.trim().split('.');
    for slot in &mut numbers {
        match parts.next() {
            Some(part) => *slot = part.parse().ok()?,
            None => break,
        }
    }
    parts.next().is_none().then_some(numbers)
}

/// Why the client's version bounds exclude ours, if they do.
fn excluded(headers: &HeaderMap) -> Option<String> {
    let ours = version_numbers(VERSION)?;
    VERSION_BOUNDS.iter().find_map(|(name, bound)| {
        let value = headers.get(*name)?;
        let text = value.to_str().unwrap_or_default();
        let Some(theirs) = version_numbers(text) else {
            return Some(format!("{name} `{text}` is not a version such as 2.0.0"));
        };
        let excludes = match bound {
            Bound::Min => theirs > ours,
            Bound::Max => theirs < ours,
        };
        excludes.then(|| format!("{name} is {text}; this repository speaks {VERSION} only"))
    })
}

/// What a client's `Accept` takes: JSON (JSON-LD, problem JSON) and XML, each with its
/// weight (`q`); no `Accept` takes JSON.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Accepted {
    json: f32,
    xml: f32,
}

impl Accepted {
    fn of(headers: &HeaderMap) -> Self {
        let Some(accept) = headers.get(header::ACCEPT) else {
            return Self {
                json: 1.0,
                xml: 0.0,
            };
        };
        let mut accepted = Self {
            json: 0.0,
            xml: 0.0,
        };
        for range in accept.to_str().unwrap_or_default().split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let weight = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let any = media.is_empty() || media == "*/*" || media == "application/*";
            if any || media.contains("json") {
                accepted.json = accepted.json.max(weight);
            }
            if media.ends_with("/xml") || media.ends_with("+xml") {
                accepted.xml = accepted.xml.max(weight);
            }
        }
        accepted
    }

    /// Whether the client would rather have XML.
    fn prefers_xml(self) -> bool {
        self.xml > 0.0 && self.xml > self.json
    }
}

const JSON_ONLY: &str = "answers are JSON-LD (application/ld+json, application/json); event queries also answer in XML (application/xml)";

/// The binding's middleware: refuses requests whose version bounds exclude 2.0.0 or whose
/// `Accept` takes nothing this repository answers in, writes event query answers
/// (`EPCISQueryDocument`s) as XML for clients that prefer it, and labels every response
/// with the versions spoken.
pub(super) async fn negotiate(request: Request, next: Next) -> Response {
    let accepted = Accepted::of(request.headers());
    let takes_nothing =
        accepted.json == 0.0 && (accepted.xml == 0.0 || request.method() != Method::GET);
    let refusal = excluded(request.headers()).or_else(|| {
        takes_nothing.then(|| {
            let accept = request.headers().get(header::ACCEPT);
            let accept = accept.and_then(|a| a.to_str().ok()).unwrap_or_default();
            format!("Accept `{accept}`: {JSON_ONLY}")
        })
    });
    let response = match refusal {
        Some(detail) => not_acceptable(detail),
        None if accepted.prefers_xml() => as_xml(next.run(request).await, accepted).await,
        None => next.run(request).await,
    };
    labelled(response)
}

fn not_acceptable(detail: String) -> Response {
    problem_as(
        StatusCode::NOT_ACCEPTABLE,
        "NotAcceptableException",
        detail,
        json!({}),
    )
}

/// The largest answer rewritten as XML: a page of the largest page size, with room.
const MOST_REWRITTEN: usize = 256 * 1024 * 1024;

/// `response` in XML when it is an event query's answer; as it is otherwise, unless the
/// client takes no JSON at all.
async fn as_xml(response: Response, accepted: Accepted) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .is_some_and(|t| t.contains("json"));
    if !response.status().is_success() || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MOST_REWRITTEN).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let document: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if document["type"] != "EPCISQueryDocument" {
        if accepted.json == 0.0 {
            return not_acceptable(format!("this resource {JSON_ONLY}"));
        }
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    }
    let results = &document["epcisBody"]["queryResults"];
    let events = results["resultsBody"]["eventList"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let xml = tracery_epcis::xml_out::query_document(
        results["queryName"].as_str().unwrap_or_default(),
        results["subscriptionID"].as_str(),
        events,
        document["creationDate"].as_str().unwrap_or_default(),
    );
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(xml))
}

/// `response` with the versions spoken.
pub(super) fn labelled(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert("GS1-EPCIS-Version", HeaderValue::from_static(VERSION));
    headers.insert("GS1-CBV-Version", HeaderValue::from_static(VERSION));
    response
}

/// `OPTIONS` on any path: its methods (as the permission table lists them) and the
/// versions and formats this repository speaks.
pub async fn options(matched: MatchedPath) -> Response {
    let mut allowed = vec![Method::OPTIONS.as_str()];
    allowed.extend(
        permissions::REST
            .iter()
            .filter(|(_, template, _)| *template == matched.as_str())
            .map(|(method, _, _)| *method),
    );
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    if let Ok(allow) = HeaderValue::from_str(&allowed.join(", ")) {
        headers.insert(header::ALLOW, allow);
    }
    for name in [
        "GS1-EPCIS-Min",
        "GS1-EPCIS-Max",
        "GS1-CBV-Min",
        "GS1-CBV-Max",
    ] {
        headers.insert(name, HeaderValue::from_static(VERSION));
    }
    headers.insert(
        "GS1-Vendor-Version",
        HeaderValue::from_static(concat!("tracery-", env!("CARGO_PKG_VERSION"))),
    );
    response
}

/// `DELETE /nextPageToken/{token}`: a page token holds no resources on the server (it
/// carries its own position and expiry), so there is nothing to release; the token stays
/// good until it expires.
pub(super) async fn release_page_token() -> StatusCode {
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        assert_eq!(version_numbers("2.0.0"), Some([2, 0, 0]));
        assert_eq!(version_numbers("2"), Some([2, 0, 0]));
        assert_eq!(version_numbers("1.10.2"), Some([1, 10, 2]));
        assert_eq!(version_numbers("2.0.0.1"), None);
        assert_eq!(version_numbers("two"), None);
    }

    #[test]
    fn accept_is_read_with_its_weights() {
        let accepted = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_static(value));
            Accepted::of(&headers)
        };
        assert!(accepted("application/ld+json").json > 0.0);
        assert!(accepted("application/problem+json").json > 0.0);
        assert!(accepted("application/xml;q=0.9, */*;q=0.1").prefers_xml());
        assert!(!accepted("application/xml;q=0.5, application/json").prefers_xml());
        assert_eq!(accepted("text/csv, application/xml").json, 0.0);
        assert!(accepted("text/csv, application/xml").prefers_xml());
        assert_eq!(accepted("text/html").json + accepted("text/html").xml, 0.0);
        let none = Accepted::of(&HeaderMap::new());
        assert!(none.json > 0.0 && !none.prefers_xml());
    }

    #[test]
    fn bounds_that_exclude_2_0_0_are_named() {
        let mut headers = HeaderMap::new();
        headers.insert("GS1-EPCIS-Min", HeaderValue::from_static("1.2.0"));
        headers.insert("GS1-EPCIS-Max", HeaderValue::from_static("2.0.0"));
        assert_eq!(excluded(&headers), None);
        headers.insert("GS1-CBV-Min", HeaderValue::from_static("2.1.0"));
        let refusal = excluded(&headers).expect("2.1.0 excludes 2.0.0");
        assert!(refusal.contains("GS1-CBV-Min"), "{refusal}");
    }
}
