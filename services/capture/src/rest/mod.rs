//! The EPCIS 2.0 REST binding on the HTTP listener: `POST /capture` with capture jobs,
//! `POST /events`, and the query side `GET /events`, `GET /events/{eventID}` and the
//! top-level resources (`/eventTypes`, and the events of one event type, EPC, bizStep,
//! bizLocation, read point or disposition: `GET /events` with that parameter). Capture
//! takes JSON-LD or XML (read into the same JSON-LD form); responses are JSON-LD.
//! Every response carries the `GS1-EPCIS-Version` and `GS1-CBV-Version` headers; errors are
//! RFC 7807 problem documents with the standard's exception types.

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{MethodRouter, delete, get},
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracery_epcis::{
    EpcisError,
    bounds::{self, Bounds},
    hash::HashContext,
    json as epcis_json,
    master_data::{self, VocabularyElement, vtype},
    model::EVENT_TYPE_NAMES,
    xml as epcis_xml,
};
use tracery_proto::v1 as pb;
use tracery_runtime::{
    audit::DeferredAudit, auth::Principal, config::SubscriptionSettings, error::ErrorKind,
};

use crate::{
    batch_intake::Intake,
    domain::{Admission, CaptureError, Channel, ErrorBehaviour},
    event_admission::admit_json,
    query_language::EPCIS_CONTEXT,
    store::{EventStore, jobs, vocabulary::Vocabulary},
};

mod discovery;
mod listings;
mod named_queries;
mod query;
mod subscriptions;
mod websocket;

use listings::Members;
use query::PagedQuery;
pub use query::Paging;

/// The query a `GET /events` (or a top-level resource's events) answers.
const SIMPLE_EVENT_QUERY: &str = "SimpleEventQuery";

/// What the handlers share.
#[derive(Clone)]
struct Rest {
    intake: Intake,
    store: EventStore,
    paging: Paging,
    subscriptions: SubscriptionSettings,
    /// Ends WebSocket subscriptions when the suite stops.
    shutdown: CancellationToken,
}

/// The binding's top-level resources, each with the query parameter its
/// `/{resource}/{value}/events` stands for.
const TOP_LEVEL: [(&str, &str); 6] = [
    ("eventTypes", "eventType"),
    ("epcs", "MATCH_epc"),
    ("bizSteps", "EQ_bizStep"),
    ("bizLocations", "EQ_bizLocation"),
    ("readPoints", "EQ_readPoint"),
    ("dispositions", "EQ_disposition"),
];

/// The top-level resources listing what stored events name (`GET /{resource}`).
const LISTINGS: [(&str, Members); 5] = [
    ("epcs", Members::Epcs),
    ("bizSteps", Members::Terms(Vocabulary::BizStep)),
    ("bizLocations", Members::Terms(Vocabulary::BizLocation)),
    ("readPoints", Members::Terms(Vocabulary::ReadPoint)),
    ("dispositions", Members::Terms(Vocabulary::Disposition)),
];

/// The REST routes.
pub fn router(
    intake: Intake,
    store: EventStore,
    paging: Paging,
    subscriptions: SubscriptionSettings,
    shutdown: CancellationToken,
) -> Router {
    let mut routes = Routes(Router::new())
        .at("/capture", get(listings::capture_jobs).post(capture))
        .at("/capture/{capture_id}", get(capture_job))
        .at("/events", get(query_events).post(capture_event))
        .at("/events/{event_id}", get(get_event))
        .at("/eventTypes", get(event_types))
        .at(
            "/queries",
            get(named_queries::list).post(named_queries::create),
        )
        .at(
            "/queries/{query_name}",
            get(named_queries::read).delete(named_queries::delete),
        )
        .at("/queries/{query_name}/events", get(named_queries::events))
        .at(
            "/queries/{query_name}/subscriptions",
            get(subscriptions::list).post(subscriptions::create),
        )
        .at(
            "/queries/{query_name}/subscriptions/{subscription_id}",
            get(subscriptions::read).delete(subscriptions::delete),
        )
        .at(
            "/nextPageToken/{token}",
            delete(discovery::release_page_token),
        );
    for (resource, parameter) in TOP_LEVEL {
        routes = routes
            .at(
                &format!("/{resource}/{{value}}"),
                get(move |state: State<Rest>, Path(value): Path<String>| {
                    sub_resources(state, resource, value)
                }),
            )
            .at(
                &format!("/{resource}/{{value}}/events"),
                get(
                    move |state: State<Rest>,
                          uri: axum::http::Uri,
                          Path(value): Path<String>,
                          Query(params): Query<Vec<(String, String)>>| {
                        resource_events(state, uri, resource, (parameter, value), params)
                    },
                ),
            );
    }
    for (resource, members) in LISTINGS {
        routes = routes.at(
            &format!("/{resource}"),
            get(move |state: State<Rest>, params| listings::list(state, resource, members, params)),
        );
    }
    routes
        .0
        .layer(axum::middleware::from_fn(discovery::negotiate))
        .with_state(Rest {
            intake,
            store,
            paging,
            subscriptions,
            shutdown,
        })
}

/// The binding's routes, each answering `OPTIONS` as well.
struct Routes(Router<Rest>);

impl Routes {
    fn at(self, path: &str, methods: MethodRouter<Rest>) -> Self {
        Self(self.0.route(path, methods.options(discovery::options)))
    }
}

/// The binding's top-level resources, as `GET /` lists them.
const TOP_LEVEL_RESOURCES: [&str; 9] = [
    "capture",
    "events",
    "eventTypes",
    "epcs",
    "bizSteps",
    "bizLocations",
    "readPoints",
    "dispositions",
    "queries",
];

/// `GET /` for an EPCIS client (one that accepts JSON): the top-level resources. The same
/// path serves the dashboard's page to a browser, so its router asks ([`wants_discovery`]).
pub async fn top_level_discovery() -> Response {
    discovery::labelled(collection(&TOP_LEVEL_RESOURCES))
}

/// Whether a request for `/` with these headers is an EPCIS client's rather than a
/// browser's: browsers ask for `text/html`, everything else gets the JSON the binding
/// documents.
pub fn wants_discovery(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    !accept.contains("text/html")
}

pub use discovery::options as discovery_options;

/// A JSON-LD `Collection` of `members`, as the binding's discovery resources answer.
fn collection(members: &[&str]) -> Response {
    Json(json!({
        "@context": [EPCIS_CONTEXT],
        "type": "Collection",
        "member": members,
    }))
    .into_response()
}

/// `GET /eventTypes`: the event types this repository stores (no custom ones).
async fn event_types() -> Response {
    collection(&EVENT_TYPE_NAMES)
}

/// Refuses a `value` of `resource` that cannot name anything (an unknown event type).
fn unknown_value(resource: &str, value: &str) -> Option<Response> {
    (resource == "eventTypes" && !EVENT_TYPE_NAMES.contains(&value)).then(|| {
        problem(
            ErrorKind::NotFound,
            format!("`{value}` is not an EPCIS event type"),
            json!({}),
        )
    })
}

/// `GET /{resource}/{value}`: what can be asked of it (its events) and, where master data
/// was captured for it, its name, attributes and children.
async fn sub_resources(
    State(rest): State<Rest>,
    resource: &'static str,
    value: String,
) -> Response {
    if let Some(refusal) = unknown_value(resource, &value) {
        return refusal;
    }
    let mut described = json!({
        "@context": [EPCIS_CONTEXT],
        "type": "Collection",
        "member": ["events"],
    });
    let Some(vocabulary_type) = master_data_type(resource) else {
        return Json(described).into_response();
    };
    match rest.store.master_data(vocabulary_type, &value).await {
        Ok(Some(stored)) => {
            let element = VocabularyElement::from(&stored);
            let attributes: Vec<Value> = element
                .attributes
                .iter()
                .map(|(id, value)| json!({"id": id, "attribute": value}))
                .collect();
            described["name"] = json!(stored.name);
            described["attributes"] = Value::Array(attributes);
            described["children"] = json!(element.children);
            Json(described).into_response()
        }
        Ok(None) => Json(described).into_response(),
        Err(err) => from_error(err),
    }
}

/// The master data vocabulary type of a top-level resource's values.
fn master_data_type(resource: &str) -> Option<&'static str> {
    match resource {
        "bizLocations" => Some(vtype::BUSINESS_LOCATION),
        "readPoints" => Some(vtype::READ_POINT),
        "bizSteps" => Some(vtype::BUSINESS_STEP),
        "dispositions" => Some(vtype::DISPOSITION),
        "epcs" => Some(vtype::EPC_INSTANCE),
        _ => None,
    }
}

/// `GET /{resource}/{value}/events`: `GET /events` with the resource's parameter set.
async fn resource_events(
    State(rest): State<Rest>,
    uri: axum::http::Uri,
    resource: &'static str,
    (parameter, value): (&'static str, String),
    params: Vec<(String, String)>,
) -> Response {
    if let Some(refusal) = unknown_value(resource, &value) {
        return refusal;
    }
    if params.iter().any(|(name, _)| name == parameter) {
        let detail = format!("`{parameter}` is given by the path of {resource} already");
        return problem_as(
            StatusCode::BAD_REQUEST,
            "QueryParameterException",
            detail,
            json!({"parameter": parameter}),
        );
    }
    let (mut selecting, paging) = PagedQuery::split(query::url_params(&params));
    selecting.push(crate::query_language::Param {
        name: parameter.to_owned(),
        values: vec![value],
    });
    let request = PagedQuery {
        selecting,
        paging,
        query_name: SIMPLE_EVENT_QUERY,
        path: uri.path(),
        link_params: &params,
        refuse: crate::query_language::Refusal::response,
    };
    query::answer(&rest, request).await
}

/// An RFC 7807 problem response for a failure of the error table.
pub(crate) fn problem(kind: ErrorKind, detail: impl Into<String>, extra: Value) -> Response {
    problem_as(kind.http_status(), kind.epcis_exception(), detail, extra)
}

/// An RFC 7807 problem response the binding defines beyond the error table (media type,
/// capture limits, query parameters).
fn problem_as(
    status: StatusCode,
    exception: &str,
    detail: impl Into<String>,
    extra: Value,
) -> Response {
    let mut body = json!({
        "type": format!("epcisException:{exception}"),
        "title": exception,
        "status": status.as_u16(),
        "detail": detail.into(),
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

fn from_error(error: CaptureError) -> Response {
    use tracery_runtime::error::DomainError as _;
    let kind = error.kind();
    let retry_after = error.retry_after();
    let detail = if kind.http_status().is_server_error() {
        tracing::error!(error = %error, "REST request failed");
        "internal error; see the server log".to_owned()
    } else {
        error.to_string()
    };
    let mut response = problem(kind, detail, json!({}));
    if let Some(wait) = retry_after {
        // Whole seconds, at least one: what `Retry-After` can say.
        let seconds = wait.as_secs().max(1);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The body as JSON-LD (XML is read into its JSON-LD form), or the problem response
/// explaining why there is none.
fn document_body(
    headers: &HeaderMap,
    body: &Bytes,
    bounds: &Bounds,
) -> Result<Value, Box<Response>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let invalid = |detail: String| Box::new(problem(ErrorKind::InvalidArgument, detail, json!({})));
    if content_type.contains("json") {
        return json_body(headers, body, bounds);
    }
    if content_type.contains("xml") {
        let text = std::str::from_utf8(body)
            .map_err(|err| invalid(format!("XML must be UTF-8: {err}")))?;
        return epcis_xml::document_json(text, bounds).map_err(|err| invalid(err.to_string()));
    }
    Err(Box::new(unsupported_media_type(
        content_type,
        "application/ld+json, application/json or application/xml",
    )))
}

/// A JSON body (named queries, subscriptions), read within `bounds`, or the problem
/// response explaining why there is none.
fn json_body(headers: &HeaderMap, body: &Bytes, bounds: &Bounds) -> Result<Value, Box<Response>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if !content_type.contains("json") {
        return Err(Box::new(unsupported_media_type(
            content_type,
            "application/json",
        )));
    }
    bounds::parse_json(body, bounds).map_err(|err| {
        let detail = match err {
            EpcisError::MalformedJson(reason) => format!("not JSON: {reason}"),
            other => other.to_string(),
        };
        Box::new(problem(ErrorKind::InvalidArgument, detail, json!({})))
    })
}

fn unsupported_media_type(content_type: &str, accepted: &str) -> Response {
    problem_as(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UnsupportedMediaTypeException",
        format!("`{content_type}` is not accepted here; send {accepted}"),
        json!({}),
    )
}

/// The events of an EPCISDocument or EPCISQueryDocument (none in an
/// EPCISMasterDataDocument).
fn document_events(document: &Value) -> Option<&Vec<Value>> {
    static NO_EVENTS: Vec<Value> = Vec::new();
    if document["type"] == "EPCISMasterDataDocument" {
        return Some(&NO_EVENTS);
    }
    document
        .pointer("/epcisBody/eventList")
        .or_else(|| document.pointer("/epcisBody/queryResults/resultsBody/eventList"))
        .and_then(Value::as_array)
}

/// The one event of a `POST /events` body: a JSON-LD event, or an XML document holding
/// exactly one event.
fn single_event(
    headers: &HeaderMap,
    body: &Bytes,
    bounds: &Bounds,
) -> Result<(Value, HashContext), Box<Response>> {
    let value = document_body(headers, body, bounds)?;
    let context = HashContext::from_json(&value);
    let Some(events) = document_events(&value) else {
        return Ok((value, context));
    };
    match events.as_slice() {
        [event] => Ok((event.clone(), context)),
        _ => Err(Box::new(problem(
            ErrorKind::InvalidArgument,
            format!(
                "POST /events takes one event; this document holds {} (use POST /capture)",
                events.len()
            ),
            json!({}),
        ))),
    }
}

/// The `403` for events the caller may not capture (see [`crate::roles`]).
fn refuse_corrections(principal: Option<&Principal>, admissions: &[Admission]) -> Option<Response> {
    let refused = crate::roles::check(principal, admissions).err()?;
    Some(problem(
        ErrorKind::Forbidden,
        refused.to_string(),
        json!({}),
    ))
}

/// Who is capturing (when the suite checks callers), and the audit record of the request
/// that the store writes with the events.
struct Caller {
    principal: Option<Principal>,
    audit: Option<DeferredAudit>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self {
            principal: parts.extensions.get::<Principal>().cloned(),
            audit: parts.extensions.get::<DeferredAudit>().cloned(),
        })
    }
}

/// `POST /events`: one event, stored synchronously.
async fn capture_event(
    State(rest): State<Rest>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (value, context) = match single_event(&headers, &body, &rest.intake.policy().bounds) {
        Ok(event) => event,
        Err(response) => return *response,
    };
    let admission = admit_json(value, Channel::Rest, rest.intake.policy(), &context);
    if let Some(refusal) =
        refuse_corrections(caller.principal.as_ref(), std::slice::from_ref(&admission))
    {
        return refusal;
    }
    let result = match rest
        .intake
        .capture_admissions(
            vec![admission],
            Channel::Rest,
            ErrorBehaviour::Proceed,
            caller.audit,
        )
        .await
    {
        Ok(mut results) => results.pop(),
        Err(err) => return from_error(err),
    };
    let Some(result) = result else {
        return problem(ErrorKind::Internal, "no result", json!({}));
    };
    if result.outcome == pb::CaptureOutcome::Quarantined as i32 {
        return problem(
            ErrorKind::InvalidArgument,
            "the event is invalid and was quarantined",
            json!({"quarantineID": result.quarantine_id, "violations": field_violations(&result.violations)}),
        );
    }
    let location = format!("/events/{}", percent_encode(&result.event_id));
    // The binding answers with the event as stored (recordTime and eventID set).
    let stored = match rest.store.get(&result.event_id).await {
        Ok(stored) => epcis_json::event_to_json(&stored.event),
        Err(err) => return from_error(err),
    };
    let mut response = (StatusCode::CREATED, Json(stored)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn field_violations(violations: &[pb::FieldViolation]) -> Value {
    Value::Array(
        violations
            .iter()
            .map(|v| json!({"field": v.field, "reason": v.code, "description": v.description}))
            .collect(),
    )
}

fn percent_encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `POST /capture`: an EPCISDocument; every event is stored or quarantined before the
/// `202`, so the capture job is finished when the client first looks at it.
async fn capture(
    State(rest): State<Rest>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let created_at = Utc::now();
    let document = match document_body(&headers, &body, &rest.intake.policy().bounds) {
        Ok(value) => value,
        Err(response) => return *response,
    };
    let behaviour = match headers.get(ErrorBehaviour::HEADER) {
        None => Some(ErrorBehaviour::Rollback),
        Some(value) => value.to_str().ok().and_then(ErrorBehaviour::parse),
    };
    let Some(behaviour) = behaviour else {
        return problem(
            ErrorKind::InvalidArgument,
            "GS1-Capture-Error-Behaviour must be rollback or proceed",
            json!({}),
        );
    };
    let master_data = match master_data::vocabulary_elements(&document) {
        Ok(elements) => elements,
        Err(err) => return problem(ErrorKind::InvalidArgument, err.to_string(), json!({})),
    };
    let Some(events) = document_events(&document) else {
        return problem(
            ErrorKind::InvalidArgument,
            "an EPCISDocument (epcisBody/eventList) or EPCISQueryDocument (epcisBody/queryResults/resultsBody/eventList) is required",
            json!({}),
        );
    };
    let most = rest.intake.policy().max_events_per_batch;
    if events.len() > most {
        return problem_as(
            StatusCode::PAYLOAD_TOO_LARGE,
            "CaptureLimitExceededException",
            format!("{} events in one document; at most {most}", events.len()),
            json!({}),
        );
    }
    // Master data is stored first, on its own: it is not subject to the events' rollback.
    if let Err(err) = rest.store.store_master_data(&master_data).await {
        return from_error(err);
    }
    let context = HashContext::from_json(&document);
    let admissions: Vec<Admission> = events
        .iter()
        .map(|event| admit_json(event.clone(), Channel::Rest, rest.intake.policy(), &context))
        .collect();
    if let Some(refusal) = refuse_corrections(caller.principal.as_ref(), &admissions) {
        return refusal;
    }
    let results = match rest
        .intake
        // Rolled back means none is stored; quarantined, each keeps a way back.
        .capture_admissions(admissions, Channel::Rest, behaviour, caller.audit)
        .await
    {
        Ok(results) => results,
        Err(err) => return from_error(err),
    };
    let errors: Vec<Value> = results
        .iter()
        .filter(|r| r.outcome == pb::CaptureOutcome::Quarantined as i32)
        .map(|r| {
            json!({
                "type": "epcisException:ValidationException",
                "title": "ValidationException",
                "status": 400,
                "detail": format!("event {} was quarantined", r.index),
                "eventIndex": r.index,
                "quarantineID": r.quarantine_id,
                "violations": field_violations(&r.violations),
            })
        })
        .collect();
    let success = errors.is_empty();
    let id = match jobs::insert(
        rest.store.db(),
        created_at,
        success,
        behaviour.as_str(),
        &Value::Array(errors),
    )
    .await
    {
        Ok(id) => id,
        Err(err) => return from_error(err),
    };
    let mut response = StatusCode::ACCEPTED.into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("/capture/{id}")) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// `GET /capture/{captureID}`.
async fn capture_job(State(rest): State<Rest>, Path(id): Path<String>) -> Response {
    match jobs::get(rest.store.db(), &id).await {
        Ok(Some(job)) => Json(listings::job_document(&job)).into_response(),
        Ok(None) => problem(
            ErrorKind::NotFound,
            format!("no capture job `{id}`"),
            json!({}),
        ),
        Err(err) => from_error(err),
    }
}

fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `GET /events/{eventID}`.
async fn get_event(State(rest): State<Rest>, Path(event_id): Path<String>) -> Response {
    match rest.store.get(&event_id).await {
        Ok(stored) => Json(crate::query_language::query_document(
            SIMPLE_EVENT_QUERY,
            None,
            vec![epcis_json::event_to_json(&stored.event)],
        ))
        .into_response(),
        Err(CaptureError::EventNotFound(_)) => problem(
            ErrorKind::NotFound,
            format!("no event with eventID `{event_id}`"),
            json!({}),
        ),
        Err(err) => from_error(err),
    }
}

/// `GET /events` with the standard query parameters.
async fn query_events(
    State(rest): State<Rest>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let (selecting, paging) = PagedQuery::split(query::url_params(&params));
    let request = PagedQuery {
        selecting,
        paging,
        query_name: SIMPLE_EVENT_QUERY,
        path: "/events",
        link_params: &params,
        refuse: crate::query_language::Refusal::response,
    };
    query::answer(&rest, request).await
}
