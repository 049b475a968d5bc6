//! The query side of the binding: the EPCIS query language's parameters (from a URL or a
//! named query's JSON), pages of events, and the page tokens that continue them.
//!
//! A page token is stateless: the sequence to continue after, when it expires, and a digest
//! of the query it belongs to, so the server keeps nothing per reader and a token cannot
//! continue another query. It carries no rights: whoever holds one could run the same
//! query afresh, so it is not signed.

use std::time::Duration;

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use tracery_epcis::json as epcis_json;

use super::{Rest, from_error, percent_encode, problem_as, timestamp};
use crate::{
    query_language::{Param, Refusal, event_count_limit, query_document, selection},
    store::Cursor,
};

/// Events per page when the client does not say (`perPage`).
const DEFAULT_PER_PAGE: u64 = 30;

/// How pages are cut: the largest `perPage` a client may ask for and how long a page token
/// stays good (the `[limits]` table).
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub max_per_page: u64,
    pub token_lifetime: Duration,
}

/// The parameters of a query string. Several values are separated by `|` (EPCIS 2.0 REST
/// binding) or given as repeated parameters.
pub(super) fn url_params(pairs: &[(String, String)]) -> Vec<Param> {
    pairs
        .iter()
        .map(|(name, value)| Param {
            name: name.clone(),
            values: value.split('|').map(str::to_owned).collect(),
        })
        .collect()
}

impl Refusal {
    pub(super) fn response(&self) -> Response {
        problem_as(
            StatusCode::BAD_REQUEST,
            "QueryParameterException",
            self.detail.clone(),
            json!({"parameter": self.parameter}),
        )
    }

    /// The refusal as `GET /queries/{queryName}/events` documents its `400`s (which also
    /// stand for refused subscription controls): a `ValidationException`.
    pub(super) fn subscription_issue(&self) -> Response {
        self.problem_json("ValidationException")
    }

    /// The refusal as an `application/json` problem of type `exception`, the form the
    /// binding documents for subscription issues.
    pub(super) fn problem_json(&self, exception: &str) -> Response {
        let mut response = problem_as(
            StatusCode::BAD_REQUEST,
            exception,
            self.detail.clone(),
            json!({"parameter": self.parameter}),
        );
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// The paging parameters, which are not part of what a query selects.
pub(super) const PAGING: [&str; 2] = ["perPage", "nextPageToken"];

/// A token that continues a listing after `position` (an event's sequence, a query's
/// name) until `expires`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PageToken {
    pub position: String,
    pub expires: i64,
    pub query_digest: u64,
}

impl PageToken {
    /// Hex digits: the expiry (Unix seconds), the query's digest, then the position's bytes.
    fn encode(&self) -> String {
        let position: String = self
            .position
            .bytes()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        format!("{:016x}{:016x}{position}", self.expires, self.query_digest)
    }

    fn decode(text: &str) -> Option<Self> {
        let number = |range: std::ops::Range<usize>| {
            text.get(range)
                .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        };
        let position_hex = text.get(32..).filter(|hex| hex.len() % 2 == 0)?;
        let bytes = (0..position_hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&position_hex[i..i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(Self {
            expires: i64::try_from(number(0..16)?).ok()?,
            query_digest: number(16..32)?,
            position: String::from_utf8(bytes).ok()?,
        })
    }
}

/// What identifies a query for its page tokens: its selecting parameters in a canonical
/// order.
pub(super) fn query_digest(selecting: &[Param]) -> u64 {
    let mut canonical: Vec<String> = selecting
        .iter()
        .map(|p| format!("{}={}", p.name, p.values.join("\u{1f}")))
        .collect();
    canonical.sort();
    let digest = Sha256::digest(canonical.join("\u{1e}").as_bytes());
    u64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
}

/// Which page of a listing is asked for: its size and where the previous one ended.
pub(super) struct PageRequest {
    pub per_page: u64,
    pub after: Option<String>,
}

impl PageRequest {
    /// This page of `rows` read with one more than `per_page`, and whether there are more.
    pub(super) fn cut<T>(&self, mut rows: Vec<T>) -> (Vec<T>, bool) {
        let more = rows.len() as u64 > self.per_page;
        rows.truncate(usize::try_from(self.per_page).unwrap_or(usize::MAX));
        (rows, more)
    }
}

/// Reads `perPage` and `nextPageToken`; a token must belong to the listing `digest` names
/// and be unexpired.
pub(super) fn page_request(
    paging_params: &[Param],
    paging: Paging,
    digest: u64,
    now: DateTime<Utc>,
) -> Result<PageRequest, Refusal> {
    let mut page = PageRequest {
        per_page: DEFAULT_PER_PAGE,
        after: None,
    };
    for Param { name, values } in paging_params {
        let [value] = values.as_slice() else {
            return Err(Refusal::new(name, "takes one value"));
        };
        if name == "perPage" {
            page.per_page = per_page(value, paging.max_per_page)?;
        } else {
            page.after = Some(unexpired_position(value, digest, now)?);
        }
    }
    Ok(page)
}

fn per_page(value: &str, max: u64) -> Result<u64, Refusal> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            Refusal::new(
                "perPage",
                format!("perPage must be 1 to {max} (this server's maximum)"),
            )
        })
}

fn unexpired_position(token: &str, digest: u64, now: DateTime<Utc>) -> Result<String, Refusal> {
    let refuse = |detail: String| Refusal::new("nextPageToken", detail);
    let token = PageToken::decode(token)
        .ok_or_else(|| refuse("not a token from a previous response".to_owned()))?;
    if token.query_digest != digest {
        return Err(refuse("this token continues another query".to_owned()));
    }
    if token.expires <= now.timestamp() {
        let expired = DateTime::from_timestamp(token.expires, 0).unwrap_or_default();
        return Err(refuse(format!(
            "the token expired at {}; run the query again from its first page",
            timestamp(expired)
        )));
    }
    Ok(token.position)
}

/// The token that continues a listing after `position`, good for the configured lifetime.
pub(super) fn next_page_token(rest: &Rest, position: String, digest: u64) -> PageToken {
    let lifetime = TimeDelta::from_std(rest.paging.token_lifetime).unwrap_or_default();
    PageToken {
        position,
        expires: (rest.intake.policy().clock.now() + lifetime).timestamp(),
        query_digest: digest,
    }
}

/// A page of a listing (named queries, terms, EPCs, capture jobs) ordered by a text
/// position, and the token that continues it if there is more.
pub(super) struct Listed<T> {
    pub rows: Vec<T>,
    next: Option<PageToken>,
}

impl<T> Listed<T> {
    /// Reads the page of the listing at `path` that `params` ask for: `fetch` reads up to a
    /// number of rows after a position, `position` says where a row stands. A listing takes
    /// only the paging parameters.
    pub(super) async fn read<Fut>(
        rest: &Rest,
        path: &str,
        params: &[(String, String)],
        fetch: impl FnOnce(Option<String>, u64) -> Fut,
        position: impl Fn(&T) -> String,
    ) -> Result<Self, Response>
    where
        Fut: Future<Output = Result<Vec<T>, crate::domain::CaptureError>>,
    {
        let (selecting, paging) = PagedQuery::split(url_params(params));
        if let Some(other) = selecting.first() {
            let name = &other.name;
            let detail = format!("`{name}` is not a parameter of this listing");
            return Err(Refusal::new(name, detail).response());
        }
        let now = rest.intake.policy().clock.now();
        let digest = query_digest(&[Param {
            name: "listing".to_owned(),
            values: vec![path.to_owned()],
        }]);
        let page = page_request(&paging, rest.paging, digest, now).map_err(|r| r.response())?;
        let rows = fetch(page.after.clone(), page.per_page + 1)
            .await
            .map_err(from_error)?;
        let (rows, more) = page.cut(rows);
        let next = rows
            .last()
            .filter(|_| more)
            .map(|last| next_page_token(rest, position(last), digest));
        Ok(Self { rows, next })
    }

    /// `response` (this page's body) with the `Link` to the next page, if there is one.
    pub(super) fn respond(
        &self,
        mut response: Response,
        path: &str,
        params: &[(String, String)],
    ) -> Response {
        if let Some(token) = &self.next {
            link_next(&mut response, path, params, token);
        }
        response
    }
}

/// A query to answer with a page of events: what it selects, the paging parameters of the
/// request, and the path and parameters that ask for its next page.
pub(super) struct PagedQuery<'a> {
    pub selecting: Vec<Param>,
    pub paging: Vec<Param>,
    pub query_name: &'a str,
    pub path: &'a str,
    pub link_params: &'a [(String, String)],
    /// How this path answers a refused parameter.
    pub refuse: fn(&Refusal) -> Response,
}

impl PagedQuery<'_> {
    /// Splits a query string into selecting and paging parameters.
    pub(super) fn split(params: Vec<Param>) -> (Vec<Param>, Vec<Param>) {
        params
            .into_iter()
            .partition(|p| !PAGING.contains(&p.name.as_str()))
    }
}

/// Answers `request` with a page of events, a `Link` to the next page and the time its
/// token expires.
pub(super) async fn answer(rest: &Rest, request: PagedQuery<'_>) -> Response {
    let query = match selection(&request.selecting) {
        Ok(query) => query,
        Err(refusal) => return (request.refuse)(&refusal),
    };
    let now = rest.intake.policy().clock.now();
    let digest = query_digest(&request.selecting);
    let page = match page_request(&request.paging, rest.paging, digest, now) {
        Ok(page) => page,
        Err(refusal) => return (request.refuse)(&refusal),
    };
    let limit = match event_count_limit(&request.selecting) {
        Ok(limit) => limit,
        Err(refusal) => return (request.refuse)(&refusal),
    };
    let position = match page.after.as_deref().map(QueryPosition::decode) {
        None => QueryPosition::default(),
        Some(Some(position)) => position,
        Some(None) => {
            let refusal = Refusal::new("nextPageToken", "not a token of an event query");
            return (request.refuse)(&refusal);
        }
    };
    // Under eventCountLimit, the pages hold that many events in all.
    let page = PageRequest {
        per_page: limit.map_or(page.per_page, |limit| {
            limit.saturating_sub(position.served).min(page.per_page)
        }),
        after: None,
    };
    let rows = if page.per_page == 0 {
        Ok(Vec::new())
    } else {
        let limit = page.per_page + 1;
        rest.store.query_page(&query, position.cursor, limit).await
    };
    let (rows, more) = match rows {
        Ok(rows) => page.cut(rows),
        Err(err) => return from_error(err),
    };
    let served = position.served + rows.len() as u64;
    let more = more && limit.is_none_or(|limit| served < limit);
    let events = rows
        .iter()
        .map(|r| epcis_json::event_to_json(&r.event))
        .collect();
    let mut response = Json(query_document(request.query_name, None, events)).into_response();
    if let Some(last) = rows.last().filter(|_| more) {
        let next = QueryPosition {
            cursor: Some(Cursor::of(last, query.order)),
            served: if limit.is_some() { served } else { 0 },
        };
        let token = next_page_token(rest, next.encode(), digest);
        link_next(&mut response, request.path, request.link_params, &token);
    }
    response
}

/// Where a page of events ended, as its token holds it: the last event's place in the
/// query's order and, under `eventCountLimit`, how many events the pages so far held.
/// Written `[eventTimeMicros:]sequence[;served]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct QueryPosition {
    cursor: Option<Cursor>,
    served: u64,
}

impl QueryPosition {
    fn encode(&self) -> String {
        let mut text = String::new();
        if let Some(cursor) = self.cursor {
            if let Some(micros) = cursor.event_time_micros {
                text.push_str(&format!("{micros}:"));
            }
            text.push_str(&cursor.sequence.to_string());
        }
        if self.served > 0 {
            text.push_str(&format!(";{}", self.served));
        }
        text
    }

    fn decode(text: &str) -> Option<Self> {
        let (place, served) = match text.split_once(';') {
            Some((place, served)) => (place, served.parse().ok()?),
            None => (text, 0),
        };
        let (micros, sequence) = match place.split_once(':') {
            Some((micros, sequence)) => (Some(micros.parse().ok()?), sequence),
            None => (None, place),
        };
        Some(Self {
            cursor: Some(Cursor {
                event_time_micros: micros,
                sequence: sequence.parse().ok()?,
            }),
            served,
        })
    }
}

/// Adds the `Link` to the page after this one (`path` with `params` and the token) and
/// `GS1-Next-Page-Token-Expires`.
pub(super) fn link_next(
    response: &mut Response,
    path: &str,
    params: &[(String, String)],
    token: &PageToken,
) {
    let mut link_params: Vec<String> = params
        .iter()
        .filter(|(name, _)| name != "nextPageToken")
        .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
        .collect();
    link_params.push(format!("nextPageToken={}", token.encode()));
    let link = format!("<{path}?{}>; rel=\"next\"", link_params.join("&"));
    let expires = DateTime::from_timestamp(token.expires, 0).unwrap_or_default();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&link) {
        headers.insert(header::LINK, value);
    }
    if let Ok(value) = HeaderValue::from_str(&timestamp(expires)) {
        headers.insert("GS1-Next-Page-Token-Expires", value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_back_as_written() {
        let token = PageToken {
            position: "1234567".into(),
            expires: 1_800_000_000,
            query_digest: u64::MAX - 7,
        };
        assert_eq!(PageToken::decode(&token.encode()), Some(token));
        assert_eq!(PageToken::decode("12"), None);
        assert_eq!(PageToken::decode(&"g".repeat(48)), None);
        assert_eq!(PageToken::decode(&"0".repeat(33)), None);
    }

    #[test]
    fn a_query_position_reads_back_as_written() {
        for position in [
            QueryPosition {
                cursor: Some(Cursor {
                    event_time_micros: None,
                    sequence: 42,
                }),
                served: 0,
            },
            QueryPosition {
                cursor: Some(Cursor {
                    event_time_micros: Some(-5),
                    sequence: 7,
                }),
                served: 30,
            },
        ] {
            assert_eq!(QueryPosition::decode(&position.encode()), Some(position));
        }
        assert_eq!(QueryPosition::decode("12x"), None);
    }

    #[test]
    fn the_digest_ignores_parameter_order() {
        let a = Param {
            name: "EQ_bizStep".into(),
            values: vec!["shipping".into()],
        };
        let b = Param {
            name: "eventType".into(),
            values: vec!["ObjectEvent".into()],
        };
        assert_eq!(
            query_digest(&[a.clone(), b.clone()]),
            query_digest(&[b, a.clone()])
        );
        assert_ne!(query_digest(&[a]), query_digest(&[]));
    }
}
