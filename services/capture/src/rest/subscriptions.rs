//! Webhook subscriptions to named queries (`/queries/{name}/subscriptions`): created,
//! listed, read and deleted here; [`crate::webhooks`] delivers them.

use std::time::Duration;

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{
    Caller, Rest, from_error, problem_as,
    query::{self, PagedQuery},
    timestamp,
};
use crate::{
    query_language::Refusal,
    query_schedule::QuerySchedule,
    store::{
        named_queries,
        subscriptions::{self, Subscription},
    },
};

/// The longest `dest` and `signatureToken` accepted.
const MAX_DEST_CHARS: usize = 2048;
const MAX_TOKEN_CHARS: usize = 1024;
/// How long the reachability check of a new `dest` waits for a connection.
const REACH_TIMEOUT: Duration = Duration::from_secs(3);
/// The fields of a subscription request.
const FIELDS: [&str; 6] = [
    "dest",
    "signatureToken",
    "stream",
    "schedule",
    "reportIfEmpty",
    "initialRecordTime",
];

/// The exception of a refused subscription request, sent as an `application/json` problem
/// naming the field, as the binding documents subscription issues.
const CONTROLS_EXCEPTION: &str = "SubscriptionControlsException";

fn refuse(field: &str, detail: impl Into<String>) -> Refusal {
    Refusal::new(field, detail)
}

/// What a `POST` asks for, read and checked.
struct Request {
    dest: reqwest::Url,
    signature_token: Option<String>,
    initial_record_time: Option<DateTime<Utc>>,
    /// A scheduled subscription's schedule, as given and as read.
    schedule: Option<(Value, QuerySchedule)>,
    report_if_empty: bool,
}

fn string_field<'a>(body: &'a Value, field: &str, most: usize) -> Result<Option<&'a str>, Refusal> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.chars().count() <= most => Ok(Some(text)),
        Some(Value::String(_)) => Err(refuse(field, format!("at most {most} characters"))),
        Some(_) => Err(refuse(field, "must be a string")),
    }
}

/// Reads a subscription request; `allow_plain_http` admits `http://` destinations.
fn request(body: &Value, allow_plain_http: bool) -> Result<Request, Refusal> {
    let Some(object) = body.as_object() else {
        return Err(refuse("body", "a subscription is a JSON object"));
    };
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(refuse(
            unknown,
            format!("`{unknown}` is not a subscription field"),
        ));
    }
    let (schedule, report_if_empty) = delivery_mode(object)?;
    let dest = string_field(body, "dest", MAX_DEST_CHARS)?
        .ok_or_else(|| refuse("dest", "the URL deliveries go to is required"))?;
    let dest = crate::webhooks::destination(dest, allow_plain_http)?;
    let signature_token = string_field(body, "signatureToken", MAX_TOKEN_CHARS)?.map(str::to_owned);
    let initial_record_time = string_field(body, "initialRecordTime", 64)?
        .map(|text| {
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.to_utc())
                .map_err(|_| {
                    refuse(
                        "initialRecordTime",
                        format!("`{text}` is not an RFC 3339 date-time"),
                    )
                })
        })
        .transpose()?;
    Ok(Request {
        dest,
        signature_token,
        initial_record_time,
        schedule,
        report_if_empty,
    })
}

/// When deliveries go: as events come (`"stream": true`), or on a `schedule` (with
/// `reportIfEmpty`); one of the two.
fn delivery_mode(
    object: &serde_json::Map<String, Value>,
) -> Result<(Option<(Value, QuerySchedule)>, bool), Refusal> {
    let stream = match object.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(stream)) => *stream,
        Some(_) => return Err(refuse("stream", "must be true or false")),
    };
    let report_if_empty = match object.get("reportIfEmpty") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(report)) => *report,
        Some(_) => return Err(refuse("reportIfEmpty", "must be true or false")),
    };
    match object.get("schedule").filter(|s| !s.is_null()) {
        Some(_) if stream => Err(refuse(
            "schedule",
            "a subscription streams or runs on a schedule, not both",
        )),
        Some(schedule) => Ok((
            Some((schedule.clone(), QuerySchedule::read(schedule)?)),
            report_if_empty,
        )),
        None if !stream => Err(refuse(
            "stream",
            "a subscription without a schedule must say \"stream\": true",
        )),
        None if report_if_empty => Err(refuse(
            "reportIfEmpty",
            "applies to scheduled subscriptions: a stream reports each event",
        )),
        None => Ok((None, false)),
    }
}

/// Refuses a destination nothing answers at: a typo is told now, not after the first
/// event fails to arrive.
async fn reachable(dest: &reqwest::Url) -> Result<(), Refusal> {
    let host = dest
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_owned();
    let port = dest.port_or_known_default().unwrap_or(443);
    match tokio::time::timeout(
        REACH_TIMEOUT,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(refuse(
            "dest",
            format!("`{host}:{port}` is unreachable: {err}"),
        )),
        Err(_) => Err(refuse(
            "dest",
            format!(
                "`{host}:{port}` did not answer within {} s",
                REACH_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// A subscription as the binding shows it (never its token).
fn shown(subscription: &Subscription) -> Value {
    let mut shown = json!({
        "subscriptionID": subscription.id,
        "queryName": subscription.query_name,
        "dest": subscription.dest,
        "stream": subscription.stream,
        "reportIfEmpty": subscription.report_if_empty,
        "createdAt": timestamp(subscription.created_at),
        "initialRecordTime": timestamp(subscription.initial_record_time),
        "deliveryFailures": subscription.failures,
    });
    if let Some(at) = subscription.last_notified_at {
        shown["lastNotifiedAt"] = json!(timestamp(at));
    }
    if let Some(error) = &subscription.last_error {
        shown["lastDeliveryError"] = json!(error);
    }
    if let Some(schedule) = &subscription.schedule {
        shown["schedule"] = serde_json::from_str(schedule).unwrap_or(Value::Null);
        if let Some(next) = subscription.next_attempt_at {
            shown["nextRunAt"] = json!(timestamp(next));
        }
    }
    shown
}

fn no_such_query(name: &str) -> Response {
    problem_as(
        StatusCode::NOT_FOUND,
        "NoSuchNameException",
        format!("no query named `{name}`"),
        json!({}),
    )
}

fn no_such_subscription(id: &str) -> Response {
    problem_as(
        StatusCode::NOT_FOUND,
        // The binding's 404s are all NoSuchNameException.
        "NoSuchNameException",
        format!("no subscription `{id}` of this query"),
        json!({}),
    )
}

/// `POST /queries/{queryName}/subscriptions`.
pub(super) async fn create(
    State(rest): State<Rest>,
    Path(query_name): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let document = match super::json_body(&headers, &body, &rest.intake.policy().bounds) {
        Ok(document) => document,
        Err(response) => return *response,
    };
    let request = match request(&document, rest.subscriptions.allow_plain_http) {
        Ok(request) => request,
        Err(refusal) => return refusal.problem_json(CONTROLS_EXCEPTION),
    };
    if let Err(refusal) = reachable(&request.dest).await {
        return refusal.problem_json(CONTROLS_EXCEPTION);
    }
    let now = rest.intake.policy().clock.now();
    let first_run = match &request.schedule {
        Some((_, schedule)) => match first_run(schedule, &rest.subscriptions.schedule_zone, now) {
            Ok(at) => Some(at),
            Err(refusal) => return refusal.problem_json(CONTROLS_EXCEPTION),
        },
        None => None,
    };
    let subscription = Subscription {
        id: uuid::Uuid::now_v7().to_string(),
        query_name: query_name.clone(),
        dest: request.dest.to_string(),
        signature_token: request.signature_token,
        stream: request.schedule.is_none(),
        schedule: request.schedule.map(|(given, _)| given.to_string()),
        report_if_empty: request.report_if_empty,
        initial_record_time: request.initial_record_time.unwrap_or(now),
        created_at: now,
        created_by: caller.principal.map(|p| p.subject),
        cursor: 0,
        last_notified_at: None,
        failures: 0,
        next_attempt_at: first_run,
        last_error: None,
        lease_holder: None,
        lease_until: None,
    };
    match subscriptions::create(rest.store.db(), subscription.clone()).await {
        Ok(true) => {
            let location = format!("/queries/{query_name}/subscriptions/{}", subscription.id);
            let mut response = (StatusCode::CREATED, Json(shown(&subscription))).into_response();
            if let Ok(location) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        Ok(false) => no_such_query(&query_name),
        Err(err) => from_error(err),
    }
}

/// The first run of `schedule` after `now` in `zone`; a schedule that never runs is
/// refused.
fn first_run(
    schedule: &QuerySchedule,
    zone: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, Refusal> {
    let zone = crate::webhooks::schedule_zone(zone);
    schedule.next_after(now, zone).ok_or_else(|| {
        refuse(
            "schedule",
            "names no time in the next five years: it would never run",
        )
    })
}

/// `GET /queries/{queryName}/subscriptions`: a page at a time, in creation order.
pub(super) async fn list(
    State(rest): State<Rest>,
    Path(query_name): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    match named_queries::get(rest.store.db(), &query_name).await {
        Ok(Some(_)) => {}
        Ok(None) => return no_such_query(&query_name),
        Err(err) => return from_error(err),
    }
    let (selecting, paging) = PagedQuery::split(query::url_params(&params));
    if let Some(other) = selecting.first() {
        let name = &other.name;
        return refuse(name, format!("`{name}` is not a parameter of this listing"))
            .problem_json(CONTROLS_EXCEPTION);
    }
    let now = rest.intake.policy().clock.now();
    let digest = query::query_digest(&[crate::query_language::Param {
        name: "subscriptions".to_owned(),
        values: vec![query_name.clone()],
    }]);
    let page = match query::page_request(&paging, rest.paging, digest, now) {
        Ok(page) => page,
        Err(refusal) => return refusal.problem_json(CONTROLS_EXCEPTION),
    };
    let rows = subscriptions::list(
        rest.store.db(),
        &query_name,
        page.after.as_deref(),
        page.per_page + 1,
    );
    let (rows, more) = match rows.await {
        Ok(rows) => page.cut(rows),
        Err(err) => return from_error(err),
    };
    let listed: Vec<Value> = rows.iter().map(shown).collect();
    let mut response = Json(listed).into_response();
    if let Some(last) = rows.last().filter(|_| more) {
        let token = query::next_page_token(&rest, last.id.clone(), digest);
        let path = format!("/queries/{query_name}/subscriptions");
        query::link_next(&mut response, &path, &params, &token);
    }
    response
}

/// `GET /queries/{queryName}/subscriptions/{subscriptionID}`.
pub(super) async fn read(
    State(rest): State<Rest>,
    Path((query_name, id)): Path<(String, String)>,
) -> Response {
    match subscriptions::get(rest.store.db(), &query_name, &id).await {
        Ok(Some(subscription)) => Json(shown(&subscription)).into_response(),
        Ok(None) => no_such_subscription(&id),
        Err(err) => from_error(err),
    }
}

/// `DELETE /queries/{queryName}/subscriptions/{subscriptionID}`: unsubscribes.
pub(super) async fn delete(
    State(rest): State<Rest>,
    Path((query_name, id)): Path<(String, String)>,
) -> Response {
    match subscriptions::delete(rest.store.db(), &query_name, &id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => no_such_subscription(&id),
        Err(err) => from_error(err),
    }
}
