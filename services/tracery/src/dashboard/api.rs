//! The dashboard's JSON API: each handler asks the services over gRPC (as the suite, after
//! the permission table admitted the caller) and answers in the shapes of [`crate::views`].

use std::collections::BTreeMap;

use axum::{
    Extension, Json, Router,
    extract::{Path, Query, State as Shared},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use tracery_proto::v1::{
    self as pb, alert_service_client::AlertServiceClient,
    capture_service_client::CaptureServiceClient, genealogy_service_client::GenealogyServiceClient,
    integration_service_client::IntegrationServiceClient,
};
use tracery_runtime::{
    ServiceKey,
    auth::{Principal, permissions},
    error::ErrorKind,
    peers::PeerChannel,
};

use super::{State, assets};
use crate::views;

pub fn router(state: State) -> Router {
    Router::new()
        .route(
            "/",
            get(assets::index).options(tracery_capture::rest::discovery_options),
        )
        .route("/assets/{file}", get(assets::file))
        .route("/dashboard/api/session", get(session))
        .route("/dashboard/api/overview", get(overview))
        .route("/dashboard/api/lookup", get(lookup))
        .route("/dashboard/api/recall", get(recall))
        .route("/dashboard/api/recall.csv", get(recall_csv))
        .route("/dashboard/api/analyze", post(analyze))
        .route("/dashboard/api/trends", get(trends))
        .route("/dashboard/api/quarantine", get(quarantine))
        .route("/dashboard/api/quarantine/{id}/resubmit", post(resubmit))
        .route("/dashboard/api/quarantine/{id}/discard", post(discard))
        .route("/dashboard/api/integration", get(integration))
        .route("/dashboard/api/alerts", get(alerts))
        .route(
            "/dashboard/api/alerts/{id}/acknowledge",
            post(acknowledge_alert),
        )
        .route("/dashboard/api/alerts/{id}/resolve", post(resolve_alert))
        .with_state(state)
}

/// A failed call, as `application/problem+json`.
struct Problem {
    status: StatusCode,
    body: Value,
}

impl Problem {
    /// A failure of the error table's `kind`, described to the caller.
    fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        let status = kind.http_status();
        Self {
            status,
            body: json!({
                "title": status.canonical_reason().unwrap_or("Error"),
                "detail": detail.into(),
            }),
        }
    }

    fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, detail)
    }
}

impl From<tonic::Status> for Problem {
    fn from(status: tonic::Status) -> Self {
        use tonic_types::StatusExt as _;
        let http = ErrorKind::of_status(&status).http_status();
        let violations: Vec<Value> = status
            .get_details_bad_request()
            .map(|bad| {
                bad.field_violations
                    .into_iter()
                    .map(|v| json!({"field": v.field, "description": v.description}))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            status: http,
            body: json!({
                "title": http.canonical_reason().unwrap_or("Error"),
                "detail": status.message(),
                "violations": violations,
            }),
        }
    }
}

impl From<tracery_runtime::peers::PeerError> for Problem {
    fn from(err: tracery_runtime::peers::PeerError) -> Self {
        Self::new(ErrorKind::Unavailable, err.to_string())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = self.body;
        body["status"] = json!(self.status.as_u16());
        (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            Json(body),
        )
            .into_response()
    }
}

type Answer = Result<Json<Value>, Problem>;

fn capture(state: &State) -> Result<CaptureServiceClient<PeerChannel>, Problem> {
    Ok(CaptureServiceClient::new(
        state.peers.channel(ServiceKey::Capture)?,
    ))
}

fn alert_client(state: &State) -> Result<AlertServiceClient<PeerChannel>, Problem> {
    Ok(AlertServiceClient::new(
        state.peers.channel(ServiceKey::Capture)?,
    ))
}

/// The names of `ids` (see [`crate::names`]).
async fn names_of(state: &State, ids: Vec<String>) -> views::Names {
    let (Ok(capture), Ok(integration)) = (capture(state), integration_client(state)) else {
        return views::Names::new();
    };
    let mut sources = crate::names::NameSources {
        capture,
        integration,
        authorization: None,
    };
    sources.names(ids).await
}

/// Room for the largest answer genealogy gives: a recall scope of a million items.
const LARGEST_GENEALOGY_ANSWER: usize = 1 << 30;

fn genealogy(state: &State) -> Result<GenealogyServiceClient<PeerChannel>, Problem> {
    Ok(
        GenealogyServiceClient::new(state.peers.channel(ServiceKey::Genealogy)?)
            .max_decoding_message_size(LARGEST_GENEALOGY_ANSWER),
    )
}

fn integration_client(state: &State) -> Result<IntegrationServiceClient<PeerChannel>, Problem> {
    Ok(IntegrationServiceClient::new(
        state.peers.channel(ServiceKey::Integration)?,
    ))
}

fn page(size: i32) -> Option<pb::PageRequest> {
    Some(pb::PageRequest {
        page_size: size,
        page_token: String::new(),
    })
}

/// An identifier as typed or scanned, checked and made canonical as the CLI does.
fn identifier(text: &str) -> Result<String, Problem> {
    if text.trim().is_empty() {
        return Err(Problem::bad_request("id: required"));
    }
    crate::cli::output::identifier(text).map_err(|failure| Problem::bad_request(failure.message))
}

/// Who is looking, so the page offers only what they may do.
async fn session(principal: Option<Extension<Principal>>) -> Json<Value> {
    let (subject, roles): (String, Vec<&str>) = match principal {
        Some(Extension(p)) => (
            p.subject.clone(),
            p.roles.iter().map(|r| r.as_str()).collect(),
        ),
        None => (String::new(), Vec::new()),
    };
    Json(json!({"subject": subject, "roles": roles}))
}

/// The read point a quarantined event names, if it can be read at all.
fn read_point_of(entry: &pb::QuarantinedEvent) -> Option<String> {
    let payload = Some(entry.payload.as_str()).filter(|p| !p.is_empty());
    tracery_capture::store::quarantine::read_point_of(payload, Some(&entry.payload_protobuf))
}

async fn quarantine_entries(state: &State) -> Result<Vec<pb::QuarantinedEvent>, Problem> {
    Ok(capture(state)?
        .list_quarantine(pb::ListQuarantineRequest { page: page(1000) })
        .await?
        .into_inner()
        .entries)
}

/// The floor: the live feed, the floor's figures and the quarantine per line, each part
/// only for a caller who may see its data (see `permissions::DASHBOARD`).
async fn overview(Shared(state): Shared<State>, principal: Option<Extension<Principal>>) -> Answer {
    let hidden = permissions::hidden_parts(
        principal.as_ref().map(|p| &p.0),
        "GET",
        "/dashboard/api/overview",
    );
    let mut quarantined: BTreeMap<String, u64> = BTreeMap::new();
    if !hidden.contains(&"quarantine") {
        for entry in quarantine_entries(&state).await? {
            let line = read_point_of(&entry).unwrap_or_else(|| "(no read point)".to_owned());
            *quarantined.entry(line).or_default() += 1;
        }
    }
    let floor = super::lock(&state.floor).overview(&quarantined);
    let mut answer = json!(floor);
    leave_out_of_overview(&mut answer, &hidden);
    Ok(Json(answer))
}

/// Removes the overview's `hidden` parts and says which they were (`omitted`).
fn leave_out_of_overview(overview: &mut Value, hidden: &[&str]) {
    const FIELDS: [(&str, &[&str], &[&str]); 3] = [
        ("feed", &["feed"], &[]),
        (
            "floor",
            &[
                "sequence",
                "eventsSeen",
                "counters",
                "stages",
                "bottlenecks",
            ],
            &[
                "events",
                "inspected",
                "passedFirstTime",
                "firstPassYield",
                "quarantineRate",
            ],
        ),
        (
            "quarantine",
            &["quarantined"],
            &["quarantined", "quarantineRate"],
        ),
    ];
    for (part, fields, line_fields) in FIELDS {
        if !hidden.contains(&part) {
            continue;
        }
        if let Some(object) = overview.as_object_mut() {
            for field in fields {
                object.remove(*field);
            }
        }
        for line in overview["lines"].as_array_mut().into_iter().flatten() {
            if let Some(line) = line.as_object_mut() {
                for field in line_fields {
                    line.remove(*field);
                }
            }
        }
    }
    overview["omitted"] = json!(hidden);
}

#[derive(Deserialize)]
struct LookupQuery {
    id: String,
}

/// Everything about one identifier: history, whereabouts, and the graph both ways.
async fn lookup(Shared(state): Shared<State>, Query(query): Query<LookupQuery>) -> Answer {
    let id = identifier(&query.id)?;
    let mut client = genealogy(&state)?;
    let history = client
        .history(pb::HistoryRequest {
            id: id.clone(),
            page: page(200),
        })
        .await?
        .into_inner();
    let where_is = match client.where_is(pb::WhereIsRequest { id: id.clone() }).await {
        Ok(found) => views::where_is(&found.into_inner()),
        Err(status) if status.code() == tonic::Code::NotFound => Value::Null,
        Err(status) => return Err(status.into()),
    };
    let trace = pb::TraceRequest {
        id: id.clone(),
        max_nodes: 300,
        ..Default::default()
    };
    let backward = client.trace_backward(trace.clone()).await?.into_inner();
    let forward = client.trace_forward(trace).await?.into_inner();
    let mut ids = views::history_places(&history.entries);
    ids.push(id.clone());
    ids.extend(views::trace_ids(&backward));
    ids.extend(views::trace_ids(&forward));
    let names = names_of(&state, ids).await;
    Ok(Json(json!({
        "name": names.get(&id),
        "id": id,
        "history": views::history(&history.entries, &names),
        "moreHistory": history.page.is_some_and(|p| !p.next_page_token.is_empty()),
        "where": where_is,
        "backward": views::trace(&backward, &names),
        "forward": views::trace(&forward, &names),
    })))
}

#[derive(Deserialize)]
struct RecallQuery {
    id: String,
    since: Option<String>,
}

/// The whole recall scope: as many items as the service gives in one answer (its
/// ceiling, not its default), so the counts and the CSV are never silently cut.
async fn recall_scope(
    state: &State,
    query: &RecallQuery,
) -> Result<pb::RecallScopeResponse, Problem> {
    let window_start = match query.since.as_deref().filter(|s| !s.is_empty()) {
        Some(since) => Some(
            crate::cli::output::parse_time("since", since)
                .map_err(|failure| Problem::bad_request(failure.message))?,
        ),
        None => None,
    };
    Ok(genealogy(state)?
        .recall_scope(pb::RecallScopeRequest {
            ids: vec![identifier(&query.id)?],
            window_start,
            max_nodes: i32::MAX,
            ..Default::default()
        })
        .await?
        .into_inner())
}

/// What the analysis view asks: failed units as scanned, or a selection of them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AnalyzeBody {
    #[serde(default)]
    failed: Vec<String>,
    #[serde(default)]
    dispositions: Vec<String>,
    #[serde(default)]
    biz_steps: Vec<String>,
    from: Option<String>,
    until: Option<String>,
    product: Option<String>,
    significance: Option<f64>,
    /// `TYPE=MIN..MAX[,UOM]` each, as `tracery analyze --sensor-bound` takes them.
    #[serde(default)]
    sensor_bounds: Vec<String>,
}

/// A common-cause analysis, in the shape of `tracery analyze --json`.
async fn analyze(Shared(state): Shared<State>, Json(body): Json<AnalyzeBody>) -> Answer {
    // The form sends its empty fields as empty strings.
    fn given(text: &Option<String>) -> Option<&str> {
        text.as_deref().map(str::trim).filter(|t| !t.is_empty())
    }
    let selection = crate::cli::output::failed_selection(
        body.dispositions,
        body.biz_steps,
        [("from", given(&body.from)), ("until", given(&body.until))],
        body.product.clone(),
    )
    .map_err(|failure| Problem::bad_request(failure.message))?;
    let sensor_bounds = crate::cli::output::sensor_bounds("sensorBounds", &body.sensor_bounds)
        .map_err(|failure| Problem::bad_request(failure.message))?;
    let answer = genealogy(&state)?
        .analyze_common_cause(pb::AnalyzeCommonCauseRequest {
            failed: body.failed,
            selection,
            sensor_bounds,
            significance: body.significance.unwrap_or_default(),
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(Json(views::common_cause(&answer)))
}

#[derive(Deserialize)]
struct PeriodQuery {
    from: Option<String>,
    until: Option<String>,
}

/// The trend charts of a period (by default the last 7 days), each part only for a caller
/// who may see its data (see `permissions::DASHBOARD`).
async fn trends(
    Shared(state): Shared<State>,
    principal: Option<Extension<Principal>>,
    Query(query): Query<PeriodQuery>,
) -> Answer {
    let hidden = permissions::hidden_parts(
        principal.as_ref().map(|p| &p.0),
        "GET",
        "/dashboard/api/trends",
    );
    let time = |name: &str, text: &Option<String>| {
        text.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| crate::cli::output::parse_time(name, t))
            .transpose()
            .map_err(|failure| Problem::bad_request(failure.message))
    };
    let (from, until) = (time("from", &query.from)?, time("until", &query.until)?);
    let (start, end) =
        tracery_runtime::proto_fields::trend_period(from.as_ref(), until.as_ref())
            .map_err(|(field, reason)| Problem::bad_request(format!("{field}: {reason}")))?;
    let timestamp = tracery_runtime::proto_fields::timestamp;
    let period = (Some(timestamp(start)), Some(timestamp(end)));
    // The two reads are independent: one waits for genealogy while the other waits for
    // capture.
    let floor = unless_hidden(hidden.contains(&"floor"), async {
        let request = pb::GetTrendsRequest {
            from: period.0,
            until: period.1,
        };
        Ok(genealogy(&state)?.get_trends(request).await?.into_inner())
    });
    let quarantine = unless_hidden(hidden.contains(&"quarantine"), async {
        let request = pb::QuarantineHoursRequest {
            from: period.0,
            until: period.1,
        };
        Ok(capture(&state)?
            .quarantine_hours(request)
            .await?
            .into_inner())
    });
    let (floor, quarantine) = tokio::try_join!(floor, quarantine)?;
    let mut answer = json!(super::trends::trends(
        start,
        end,
        floor.as_ref(),
        quarantine.as_ref()
    ));
    answer["omitted"] = json!(hidden);
    Ok(Json(answer))
}

/// What `read` answers, or nothing without reading when the caller may not see it.
async fn unless_hidden<T>(
    hidden: bool,
    read: impl Future<Output = Result<T, Problem>>,
) -> Result<Option<T>, Problem> {
    if hidden {
        return Ok(None);
    }
    read.await.map(Some)
}

/// The recall scope's counts, and its first items (the CSV has them all).
async fn recall(Shared(state): Shared<State>, Query(query): Query<RecallQuery>) -> Answer {
    let scope = recall_scope(&state, &query).await?;
    let names =
        views::RecallNames::new(names_of(&state, views::recall_name_ids(&scope.items)).await);
    let mut answer = views::recall(&scope, &names);
    answer["total"] = json!(scope.items.len());
    if let Some(items) = answer["items"].as_array_mut() {
        items.truncate(500);
    }
    Ok(Json(answer))
}

/// CSV rows written per chunk of the streamed body.
const CSV_ROWS_PER_CHUNK: usize = 1_000;

/// Every item of the recall scope as CSV, streamed in chunks; refused rather than cut
/// when the scope is larger than one answer of the service holds.
async fn recall_csv(
    Shared(state): Shared<State>,
    Query(query): Query<RecallQuery>,
) -> Result<Response, Problem> {
    let scope = recall_scope(&state, &query).await?;
    if scope.truncated {
        return Err(Problem::new(
            ErrorKind::FailedPrecondition,
            format!(
                "the recall scope holds more than the {} items one answer can; narrow it with `since`",
                scope.items.len()
            ),
        ));
    }
    let names =
        views::RecallNames::new(names_of(&state, views::recall_name_ids(&scope.items)).await);
    let header = csv_chunk(std::iter::once(views::RECALL_COLUMNS.map(str::to_owned)));
    let items = std::sync::Arc::new((scope.items, names));
    let chunks = (0..items.0.len())
        .step_by(CSV_ROWS_PER_CHUNK)
        .map(move |start| {
            let (items, names) = &*items;
            let end = (start + CSV_ROWS_PER_CHUNK).min(items.len());
            csv_chunk(
                items[start..end]
                    .iter()
                    .map(|item| views::recall_row(item, names)),
            )
        });
    let body =
        axum::body::Body::from_stream(tokio_stream::iter(std::iter::once(header).chain(chunks)));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"recall-scope.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// `rows` as CSV text.
fn csv_chunk<R, F>(rows: R) -> Result<Vec<u8>, csv::Error>
where
    R: Iterator<Item = F>,
    F: IntoIterator,
    F::Item: AsRef<[u8]>,
{
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.write_record(row)?;
    }
    writer.into_inner().map_err(|err| err.into_error().into())
}

async fn quarantine(Shared(state): Shared<State>) -> Answer {
    let entries = quarantine_entries(&state).await?;
    Ok(Json(json!(
        entries
            .iter()
            .map(|e| {
                let mut entry = views::quarantined(e, true);
                entry["readPoint"] = json!(read_point_of(e));
                entry
            })
            .collect::<Vec<Value>>()
    )))
}

/// Validates the entry again: as stored (the cause was fixed elsewhere), or as corrected
/// when the body holds `{"corrected": <the event as EPCIS JSON-LD>}`.
async fn resubmit(
    Shared(state): Shared<State>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Answer {
    let corrected = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let body: Value = serde_json::from_slice(&body)
            .map_err(|err| Problem::bad_request(format!("body: not JSON: {err}")))?;
        match body.get("corrected") {
            None | Some(Value::Null) => None,
            Some(event) => Some(
                crate::cli::output::corrected_event(event.clone())
                    .map_err(|why| Problem::bad_request(format!("corrected: {why}")))?,
            ),
        }
    };
    let result = capture(&state)?
        .resubmit_quarantined(pb::ResubmitQuarantinedRequest {
            id: id.clone(),
            corrected,
        })
        .await?
        .into_inner()
        .result
        .unwrap_or_default();
    let stored = result.outcome != pb::CaptureOutcome::Quarantined as i32;
    Ok(Json(json!({
        "id": id, "stored": stored, "sequence": result.sequence,
        "eventID": result.event_id, "violations": views::violations(&result.violations),
    })))
}

#[derive(Deserialize)]
struct DiscardBody {
    reason: String,
}

async fn discard(
    Shared(state): Shared<State>,
    Path(id): Path<String>,
    Json(body): Json<DiscardBody>,
) -> Answer {
    if body.reason.trim().is_empty() {
        return Err(Problem::bad_request(
            "reason: say why the event is discarded",
        ));
    }
    capture(&state)?
        .discard_quarantined(pb::DiscardQuarantinedRequest {
            id: id.clone(),
            reason: body.reason,
        })
        .await?;
    Ok(Json(json!({"id": id, "discarded": true})))
}

/// The last sync per connector, recent runs with their errors, and dead-letter postings.
async fn integration(Shared(state): Shared<State>) -> Answer {
    let mut client = integration_client(&state)?;
    let runs = client
        .list_sync_runs(pb::ListSyncRunsRequest { page: page(50) })
        .await?
        .into_inner()
        .runs;
    let dead = client
        .list_postings(pb::ListPostingsRequest {
            states: vec![pb::PostingState::DeadLetter as i32],
            page: page(200),
        })
        .await?
        .into_inner()
        .postings;
    let mut last_by_connector: BTreeMap<String, Value> = BTreeMap::new();
    for run in &runs {
        let name = if run.connector.is_empty() {
            "(all)".to_owned()
        } else {
            run.connector.clone()
        };
        last_by_connector
            .entry(name)
            .or_insert_with(|| views::sync_run(run));
    }
    Ok(Json(json!({
        "connectors": last_by_connector,
        "runs": runs.iter().take(20).map(views::sync_run).collect::<Vec<_>>(),
        "deadLetterPostings": dead.iter().map(views::posting).collect::<Vec<_>>(),
    })))
}

/// Alerts, open ones first then the latest resolved, and the rules (each part for those
/// who may see it).
async fn alerts(Shared(state): Shared<State>, principal: Option<Extension<Principal>>) -> Answer {
    let principal = principal.map(|Extension(p)| p);
    let hidden = permissions::hidden_parts(principal.as_ref(), "GET", "/dashboard/api/alerts");
    let mut answer = serde_json::Map::new();
    let mut client = alert_client(&state)?;
    if !hidden.contains(&"alerts") {
        let alerts = client
            .list_alerts(pb::ListAlertsRequest {
                include_resolved: true,
                page: page(200),
            })
            .await?
            .into_inner()
            .alerts;
        answer.insert("alerts".into(), alerts.iter().map(views::alert).collect());
    }
    if !hidden.contains(&"rules") {
        let rules = client
            .list_alert_rules(pb::ListAlertRulesRequest {})
            .await?
            .into_inner()
            .rules;
        answer.insert(
            "rules".into(),
            rules.iter().map(views::alert_rule).collect(),
        );
    }
    Ok(Json(Value::Object(answer)))
}

/// The person behind a dashboard call, for the alert's record (the call itself is in
/// the audit trail under them).
fn person(principal: Option<Extension<Principal>>) -> String {
    principal.map_or_else(String::new, |Extension(p)| p.subject)
}

async fn acknowledge_alert(
    Shared(state): Shared<State>,
    principal: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> Answer {
    act_on_alert(&state, principal, id, AlertAction::Acknowledge).await
}

async fn resolve_alert(
    Shared(state): Shared<State>,
    principal: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> Answer {
    act_on_alert(&state, principal, id, AlertAction::Resolve).await
}

enum AlertAction {
    Acknowledge,
    Resolve,
}

/// Acknowledges or resolves alert `id` for the person behind the call.
async fn act_on_alert(
    state: &State,
    principal: Option<Extension<Principal>>,
    id: String,
    action: AlertAction,
) -> Answer {
    let request = pb::AlertActionRequest {
        id,
        on_behalf_of: person(principal),
    };
    let mut client = alert_client(state)?;
    let answer = match action {
        AlertAction::Acknowledge => client.acknowledge_alert(request).await?,
        AlertAction::Resolve => client.resolve_alert(request).await?,
    };
    let alert = answer.into_inner().alert;
    Ok(Json(alert.as_ref().map_or(Value::Null, views::alert)))
}
