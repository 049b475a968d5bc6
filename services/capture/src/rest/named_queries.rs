//! Named queries (`/queries`): a query of the EPCIS query language stored under a name,
//! listed, read, deleted, and run by `GET /queries/{name}/events`.

use axum::{
    Json,
    body::Bytes,
    extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection},
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use super::{
    Caller, Rest, from_error, problem_as,
    query::{self, Listed, PagedQuery},
};
use crate::{
    query_language::{Refusal, definition_params},
    store::named_queries::{self, NamedQuery},
};

/// The longest query name (names go into URLs and the store's key).
const MAX_NAME_CHARS: usize = 128;

/// A name is URL-safe as it is: ASCII letters, digits and `-._~`.
fn check_name(name: &str) -> Result<(), Refusal> {
    let url_safe = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || !name.chars().all(url_safe) {
        return Err(Refusal::new(
            "name",
            format!(
                "a query name is 1 to {MAX_NAME_CHARS} ASCII letters, digits or `-._~`; `{name}` is not"
            ),
        ));
    }
    Ok(())
}

/// Reads a `POST /queries` body into the query to store, refusing what it could never run.
fn definition(body: &Value) -> Result<(String, Map<String, Value>), Refusal> {
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| Refusal::new("name", "a query definition needs a `name` (a string)"))?;
    check_name(name)?;
    let query = body
        .get("query")
        .and_then(Value::as_object)
        .ok_or_else(|| Refusal::new("query", "a query definition needs a `query` (an object)"))?;
    let params = definition_params(query)?;
    if let Some(paging) = params
        .iter()
        .find(|p| query::PAGING.contains(&p.name.as_str()))
    {
        let name = &paging.name;
        return Err(Refusal::new(
            name,
            format!("`{name}` is asked per request, not stored in a query"),
        ));
    }
    crate::query_language::selection(&params)?;
    Ok((name.to_owned(), query.clone()))
}

/// `POST /queries`: stores a named query; `201` with its `Location`, `409` if the name is
/// taken.
pub(super) async fn create(
    State(rest): State<Rest>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let document = match super::json_body(&headers, &body, &rest.intake.policy().bounds) {
        Ok(document) => document,
        Err(response) => return *response,
    };
    let (name, query) = match definition(&document) {
        Ok(definition) => definition,
        Err(refusal) => return refusal.response(),
    };
    let stored = NamedQuery {
        name: name.clone(),
        definition: Value::Object(query).to_string(),
        created_at: rest.intake.policy().clock.now(),
        created_by: caller.principal.map(|p| p.subject),
    };
    match named_queries::create(rest.store.db(), stored).await {
        Ok(true) => {
            let mut response = StatusCode::CREATED.into_response();
            if let Ok(location) = HeaderValue::from_str(&format!("/queries/{name}")) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        Ok(false) => problem_as(
            StatusCode::CONFLICT,
            "ResourceAlreadyExistsException",
            format!("a query named `{name}` exists already"),
            json!({}),
        ),
        Err(err) => from_error(err),
    }
}

/// A stored query as the binding shows it: `{"name", "query"}`.
fn shown(query: &NamedQuery) -> Value {
    let definition: Value = serde_json::from_str(&query.definition).unwrap_or(json!({}));
    json!({"name": query.name, "query": definition})
}

/// The `404` for a query name nobody stored.
pub(super) fn no_such_name(name: &str) -> Response {
    problem_as(
        StatusCode::NOT_FOUND,
        "NoSuchNameException",
        format!("no query named `{name}`"),
        json!({}),
    )
}

/// The stored query `name`, or the `404` saying there is none.
async fn stored(rest: &Rest, name: &str) -> Result<NamedQuery, Box<Response>> {
    match named_queries::get(rest.store.db(), name).await {
        Ok(Some(query)) => Ok(query),
        Ok(None) => Err(Box::new(no_such_name(name))),
        Err(err) => Err(Box::new(from_error(err))),
    }
}

/// `GET /queries/{queryName}`: the definition, as a list of one (the binding's schema
/// types this answer as an array, like the listing).
pub(super) async fn read(State(rest): State<Rest>, Path(name): Path<String>) -> Response {
    match stored(&rest, &name).await {
        Ok(query) => Json(json!([shown(&query)])).into_response(),
        Err(response) => *response,
    }
}

/// `DELETE /queries/{queryName}`.
pub(super) async fn delete(State(rest): State<Rest>, Path(name): Path<String>) -> Response {
    match named_queries::delete(rest.store.db(), &name).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => no_such_name(&name),
        Err(err) => from_error(err),
    }
}

/// `GET /queries`: the stored queries in name order, a page at a time.
pub(super) async fn list(
    State(rest): State<Rest>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let db = rest.store.db();
    let fetch = |after: Option<String>, limit| async move {
        named_queries::list(db, after.as_deref(), limit).await
    };
    match Listed::read(&rest, "/queries", &params, fetch, |q: &NamedQuery| {
        q.name.clone()
    })
    .await
    {
        Ok(page) => {
            let listed: Vec<Value> = page.rows.iter().map(shown).collect();
            page.respond(Json(listed).into_response(), "/queries", &params)
        }
        Err(refusal) => refusal,
    }
}

/// Whether `name` is one of the parameters with which `GET /queries/{queryName}/events`
/// upgraded to a WebSocket subscribes; a plain request answers a page and leaves them be.
fn is_subscription_control(name: &str) -> bool {
    ["reportIfEmpty", "initialRecordTime", "stream"].contains(&name)
        || super::websocket::SCHEDULE.contains(&name)
}

/// `GET /queries/{queryName}/events`: the stored query's events, a page at a time (the
/// request gives only `perPage` and `nextPageToken`); upgraded to a WebSocket, a
/// subscription to them (see [`super::websocket`]).
pub(super) async fn events(
    State(rest): State<Rest>,
    Path(name): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Ok(upgrade) = upgrade {
        let params = query::url_params(&params);
        return super::websocket::subscribe(rest, name, &params, upgrade).await;
    }
    let query = match stored(&rest, &name).await {
        Ok(query) => query,
        Err(response) => return *response,
    };
    let (extra, paging) = PagedQuery::split(query::url_params(&params));
    let mut extra = extra.iter().filter(|p| !is_subscription_control(&p.name));
    if let Some(extra) = extra.next() {
        let detail = format!(
            "`{}` cannot be added to the named query `{name}`; create another query",
            extra.name
        );
        return Refusal::new(&extra.name, detail).subscription_issue();
    }
    let definition: Map<String, Value> =
        serde_json::from_str(&query.definition).unwrap_or_default();
    let selecting = match definition_params(&definition) {
        Ok(selecting) => selecting,
        Err(refusal) => return refusal.subscription_issue(),
    };
    let path = format!("/queries/{name}/events");
    let request = PagedQuery {
        selecting,
        paging,
        query_name: &name,
        path: &path,
        link_params: &params,
        refuse: Refusal::subscription_issue,
    };
    query::answer(&rest, request).await
}
