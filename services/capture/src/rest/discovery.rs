//! What the binding says about itself: the `GS1-EPCIS-*` and `GS1-CBV-*` version headers
//! on every response, version negotiation (a client's `GS1-EPCIS-Min/Max` and
//! `GS1-CBV-Min/Max` that exclude 2.0.0 get a 406), `OPTIONS` on every path, and
//! `DELETE /nextPageToken/{token}`.

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

/// Why a client's `Accept` rules out every form this repository answers in (JSON-LD,
/// JSON, problem JSON), if it does: XML answers are not written yet.
fn unacceptable(headers: &HeaderMap) -> Option<String> {
    let accept = headers.get(header::ACCEPT)?.to_str().unwrap_or_default();
    let takes_json = accept.split(',').any(|range| {
        let media = range.split(';').next().unwrap_or_default().trim();
        media.is_empty() || media.contains("json") || media == "*/*" || media == "application/*"
    });
    (!takes_json).then(|| {
        format!("Accept `{accept}`: this repository answers in JSON-LD (application/ld+json, application/json)")
    })
}

/// The binding's middleware: refuses requests whose version bounds exclude 2.0.0 or whose
/// `Accept` rules out JSON, and labels every response with the versions spoken.
pub(super) async fn negotiate(request: Request, next: Next) -> Response {
    let refusal = excluded(request.headers()).or_else(|| unacceptable(request.headers()));
    let response = match refusal {
        Some(detail) => problem_as(
            StatusCode::NOT_ACCEPTABLE,
            "NotAcceptableException",
            detail,
            json!({}),
        ),
        None => next.run(request).await,
    };
    labelled(response)
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
    fn an_accept_without_json_is_not_acceptable() {
        let accepting = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_static(value));
            unacceptable(&headers).is_none()
        };
        assert!(accepting("application/ld+json"));
        assert!(accepting("application/xml;q=0.9, */*;q=0.1"));
        assert!(accepting("application/problem+json"));
        assert!(!accepting("application/xml"));
        assert!(!accepting("text/csv, application/xml"));
        assert!(unacceptable(&HeaderMap::new()).is_none());
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
