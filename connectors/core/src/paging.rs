//! Where a sync stands within a system's changes: the change time it started from and
//! the position within that scan. The integration service stores the cursor with each
//! page it applies, so a sync resumes after a crash without skipping or repeating work.

use serde::{Deserialize, Serialize};

use crate::model::Record;

/// A position within one scan of changed records.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// The first page.
    #[default]
    Start,
    /// Records skipped so far (offset paging).
    Offset(u64),
    /// The server's link to the next page (server-driven paging).
    Next(String),
}

/// Where a scan of changed records stands.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cursor {
    /// Records changed at or after this value, in the system's own spelling; `None`
    /// fetches everything.
    pub since: Option<String>,
    /// The page to fetch.
    pub position: Position,
}

/// A record that could not be read, and why; the rest of its page still counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// The record's key, as far as it could be read.
    pub key: String,
    /// The offending field.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}: {}", self.key, self.field, self.reason)
    }
}

/// One fetched record, or why it could not be read.
pub type Fetched = Result<Record, Malformed>;

/// One page of changed records.
#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<Fetched>,
    /// The latest change time on this page, in the system's own spelling (the next
    /// scan's `since`).
    pub high_water: Option<String>,
    /// The next page; `None` when this was the last.
    pub next: Option<Position>,
}

impl Page {
    /// The later of two change times in the same spelling (they sort as text).
    pub fn later(a: Option<String>, b: Option<String>) -> Option<String> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b > a { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

/// The rows of an OData v4 collection (`value`) and the next page: the server's
/// `@odata.nextLink` when it sends one, else the offset after a full page of `top`
/// (`skip` is `None` when this page came from a next link and none followed).
pub fn odata4_page(
    body: &serde_json::Value,
    skip: Option<u64>,
    top: u32,
) -> Result<(Vec<serde_json::Value>, Option<Position>), crate::ConnectorError> {
    let rows = body
        .get("value")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .ok_or_else(|| crate::ConnectorError::malformed("value", "not an OData v4 collection"))?;
    let next_link = body
        .get("@odata.nextLink")
        .and_then(serde_json::Value::as_str);
    Ok((
        rows.clone(),
        next_position(next_link, skip, rows.len(), top),
    ))
}

/// Where the page after one of `rows` rows starts: the server's next link when it gave
/// one, else (when paging by `$skip`) the next offset if the page was full.
pub fn next_position(
    next_link: Option<&str>,
    skip: Option<u64>,
    rows: usize,
    top: u32,
) -> Option<Position> {
    let rows = rows as u64;
    match (next_link, skip) {
        (Some(link), _) => Some(Position::Next(link.to_owned())),
        (None, Some(skip)) if rows >= u64::from(top) => Some(Position::Offset(skip + rows)),
        _ => None,
    }
}

/// What to ask for the page of an OData v4 collection at `cursor`.
pub enum ODataRequest {
    /// The server's next link, as given.
    Link(String),
    /// `$orderby`, `$top`, `$skip` and (once a scan has a `since`) `$filter` on
    /// `changed gt since`; and the skip, for [`odata4_page`].
    Query(Vec<(&'static str, String)>, u64),
}

/// The request for the page at `cursor`, ordered by `order_by`.
pub fn odata4_request(cursor: &Cursor, top: u32, order_by: &str, changed: &str) -> ODataRequest {
    let skip = match &cursor.position {
        Position::Next(link) => return ODataRequest::Link(link.clone()),
        Position::Offset(skip) => *skip,
        Position::Start => 0,
    };
    let mut query = vec![
        ("$orderby", order_by.to_owned()),
        ("$top", top.to_string()),
        ("$skip", skip.to_string()),
    ];
    if let Some(since) = &cursor.since {
        query.push(("$filter", format!("{changed} gt {since}")));
    }
    ODataRequest::Query(query, skip)
}
