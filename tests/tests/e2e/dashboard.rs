//! The dashboard's page and JSON API over HTTP against a running suite: the floor picture
//! from the followed events, identifier lookup, recall CSV, quarantine actions, the
//! integration view, and the roles each needs when the suite checks callers. (The page's
//! behaviour in a browser is `tests/browser`.)

use std::time::Duration;

use serde_json::{Value, json};
use tracery_e2e::TestApp;
use tracery_proto::v1 as pb;

use crate::auth::{PLANT, Provider};

const LINE: &str = "urn:epc:id:sgln:4012345.00003.1";
const PACKING: &str = "urn:epc:id:sgln:4012345.00004.1";
const CASE: &str = "urn:epc:id:sscc:4012345.0000000001";
const LOT: &str = "urn:epc:class:lgtin:4012345.022222.LOT-A";
const MISREAD: &str = "https://id.gs1.org/01/09506000134353/21/X";

fn unit(n: u32) -> String {
    format!("urn:epc:id:sgtin:4012345.011111.{n}")
}

fn event(value: Value) -> pb::EpcisEvent {
    let event = tracery_epcis::json::parse_event(value).expect("a valid event");
    tracery_epcis::proto::event_to_proto(&event)
}

/// Four units made on a line from a lot, inspected (one fails first), packed in a case.
fn line_events() -> Vec<pb::EpcisEvent> {
    let units: Vec<String> = (1..=4).map(unit).collect();
    vec![
        event(json!({
            "type": "TransformationEvent", "eventTime": "2026-11-26T08:00:00Z",
            "eventTimeZoneOffset": "+00:00", "bizStep": "commissioning",
            "readPoint": {"id": LINE},
            "inputQuantityList": [{"epcClass": LOT, "quantity": 4, "uom": "KGM"}],
            "outputEPCList": units,
        })),
        event(json!({
            "type": "ObjectEvent", "eventTime": "2026-11-26T08:01:00Z",
            "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "bizStep": "inspecting",
            "disposition": "non_conformant", "readPoint": {"id": LINE}, "epcList": [unit(1)],
        })),
        event(json!({
            "type": "ObjectEvent", "eventTime": "2026-11-26T08:01:00Z",
            "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "bizStep": "inspecting",
            "disposition": "conformant", "readPoint": {"id": LINE},
            "epcList": [unit(2), unit(3), unit(4)],
        })),
        event(json!({
            "type": "AggregationEvent", "eventTime": "2026-11-26T08:05:00Z",
            "eventTimeZoneOffset": "+00:00", "action": "ADD", "bizStep": "packing",
            "readPoint": {"id": PACKING}, "parentID": CASE, "childEPCs": units,
        })),
    ]
}

fn misread_scan() -> Value {
    json!({
        "type": "ObjectEvent", "eventTime": "2026-11-26T08:06:00Z",
        "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "bizStep": "receiving",
        "readPoint": {"id": LINE}, "epcList": [MISREAD],
    })
}

async fn capture(app: &TestApp, events: Vec<pb::EpcisEvent>) -> Vec<pb::EventResult> {
    capture_as(app, events, None).await
}

async fn capture_as(
    app: &TestApp,
    events: Vec<pb::EpcisEvent>,
    token: Option<&str>,
) -> Vec<pb::EventResult> {
    let mut request = tonic::Request::new(pb::CaptureRequest { events });
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().expect("header");
        request.metadata_mut().insert("authorization", value);
    }
    app.capture
        .clone()
        .capture(request)
        .await
        .expect("captured")
        .into_inner()
        .results
}

pub(crate) struct Http {
    base: String,
    client: reqwest::Client,
    token: Option<String>,
}

impl Http {
    pub(crate) fn new(app: &TestApp, token: Option<String>) -> Self {
        Self {
            base: format!("http://{}", app.http_addr),
            client: reqwest::Client::new(),
            token,
        }
    }

    fn with(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.with(self.client.get(format!("{}{path}", self.base)))
            .send()
            .await
            .expect("answered")
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.with(self.client.post(format!("{}{path}", self.base)))
            .json(&body)
            .send()
            .await
            .expect("answered")
    }

    pub(crate) async fn json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("JSON")
    }
}

/// The overview once the dashboard has followed `events` events.
async fn overview_after(http: &Http, events: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let overview = http.json("/dashboard/api/overview").await;
        if overview["eventsSeen"].as_u64() >= Some(events) {
            return overview;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dashboard never saw {events} events: {overview}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn row<'a>(rows: &'a Value, key: &str, value: &str) -> &'a Value {
    rows.as_array()
        .and_then(|rows| rows.iter().find(|r| r[key] == value))
        .unwrap_or_else(|| panic!("no {key} = {value} in {rows}"))
}

/// The trend view's hours come from genealogy (events) and capture (quarantined events),
/// both asked for by one request.
#[tokio::test]
async fn the_trend_view_has_each_hours_events_and_quarantine() {
    let app = TestApp::spawn().await.expect("suite starts");
    let http = Http::new(&app, None);
    let now = chrono::Utc::now();
    let written = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let scanned = event(json!({
        "type": "ObjectEvent", "eventTime": written, "eventTimeZoneOffset": "+00:00",
        "action": "OBSERVE", "bizStep": "inspecting", "readPoint": {"id": LINE},
        "epcList": [unit(1)],
    }));
    let mut misread = misread_scan();
    misread["eventTime"] = json!(written);
    let results = capture(&app, vec![scanned, event(misread)]).await;
    assert_eq!(
        results.iter().map(|r| r.outcome).collect::<Vec<_>>(),
        [
            pb::CaptureOutcome::Accepted,
            pb::CaptureOutcome::Quarantined
        ]
        .map(|o| o as i32)
    );
    app.await_genealogy(results[0].sequence).await;

    let period = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:00:00Z").to_string();
    let hour = chrono::TimeDelta::hours(1);
    let trends = http
        .json(&format!(
            "/dashboard/api/trends?from={}&until={}",
            period(now - hour),
            period(now + hour)
        ))
        .await;
    let line = row(&trends["lines"], "line", LINE);
    let events: Vec<i64> = serde_json::from_value(line["events"].clone()).expect("counts");
    assert_eq!(events.iter().sum::<i64>(), 1, "{trends}");
    let rates = line["quarantineRate"].as_array().expect("rates");
    // 0.5 in the hour of both; were it recorded in the next hour, 1.0 there.
    assert!(
        rates.iter().any(|rate| rate.as_f64() > Some(0.0)),
        "the quarantined event is counted: {trends}"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn the_dashboard_shows_the_floor_and_acts_on_quarantine() {
    let app = TestApp::spawn().await.expect("suite starts");
    let http = Http::new(&app, None);

    // A browser asks for HTML and gets the page; an EPCIS client gets the binding's
    // top-level resources at the same path.
    let page = http
        .with(http.client.get(format!("{}/", http.base)))
        .header("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
        .send()
        .await
        .expect("answered");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("HTML").contains("/assets/app.js"));
    let discovery: Value = http.get("/").await.json().await.expect("JSON");
    assert_eq!(discovery["type"], "Collection");
    assert!(
        discovery["member"]
            .as_array()
            .is_some_and(|m| m.contains(&json!("queries"))),
        "{discovery}"
    );
    let script = http.get("/assets/app.js").await;
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(http.get("/assets/nothing.js").await.status(), 404);

    let mut events = line_events();
    events.push(event(misread_scan()));
    let results = capture(&app, events).await;
    assert_eq!(
        results.last().map(|r| r.outcome),
        Some(pb::CaptureOutcome::Quarantined as i32)
    );
    app.await_genealogy(4).await;

    // The floor: the units moved from the line to packing, with their case.
    let overview = overview_after(&http, 4).await;
    let line = row(&overview["stages"], "stage", LINE);
    assert_eq!(line["workInProgress"], 0, "{overview}");
    assert_eq!(line["visits"], 4);
    assert_eq!(
        line["meanDwellSecs"], 300.0,
        "made at 08:00, packed at 08:05"
    );
    assert_eq!(
        row(&overview["stages"], "stage", PACKING)["workInProgress"],
        5
    );
    let quality = row(&overview["lines"], "line", LINE);
    assert_eq!(quality["firstPassYield"], 0.75, "{quality}");
    assert_eq!(quality["quarantined"], 1);
    assert_eq!(
        quality["quarantineRate"], 0.25,
        "1 of 3 events + 1 quarantined"
    );
    assert_eq!(overview["feed"][0]["bizStep"], "packing");

    // Search, as scanned from the label: history, whereabouts, the graph both ways.
    let found = http
        .json("/dashboard/api/lookup?id=(01)04012345111118(21)1")
        .await;
    assert_eq!(found["id"], "https://id.gs1.org/01/04012345111118/21/1");
    assert_eq!(found["history"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        found["where"]["container"],
        "https://id.gs1.org/00/040123450000000016"
    );
    let drawn = |side: &str| -> Vec<String> {
        found[side]["nodes"]
            .as_array()
            .map(|nodes| {
                nodes
                    .iter()
                    .filter_map(|n| n["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        drawn("backward").iter().any(|id| id.ends_with("/10/LOT-A")),
        "{found}"
    );
    assert!(
        drawn("forward").iter().any(|id| id.contains("/00/")),
        "{found}"
    );
    // The same unit's RFID tag, as a reader reports its EPC (SGTIN-96, filter 1).
    let tagged = http
        .json("/dashboard/api/lookup?id=3034F4E4E40AD9C000000001")
        .await;
    assert_eq!(tagged["id"], "https://id.gs1.org/01/04012345111118/21/1");
    assert_eq!(tagged["history"].as_array().map(Vec::len), Some(3));
    let typo = http
        .get("/dashboard/api/lookup?id=(01)04012345111119(21)1")
        .await;
    assert_eq!(typo.status(), 400);
    let problem: Value = typo.json().await.expect("problem JSON");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("is malformed")),
        "{problem}"
    );

    // The recall scope of the supplier lot, as CSV.
    let csv = http
        .get(&format!("/dashboard/api/recall.csv?id={LOT}"))
        .await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.expect("CSV");
    assert!(
        csv.starts_with(
            "id,name,kind,container,location,location_name,disposition,custodian,custodian_name\n"
        ),
        "{csv}"
    );
    assert!(
        csv.contains("https://id.gs1.org/01/04012345111118/21/4"),
        "{csv}"
    );

    // The misread scan: resubmitted as is it stays; corrected it is stored.
    let queue = http.json("/dashboard/api/quarantine").await;
    let entry = queue[0]["id"].as_str().expect("an entry").to_owned();
    assert_eq!(queue[0]["violations"][0]["code"], "BAD_CHECK_DIGIT");
    assert_eq!(queue[0]["readPoint"], LINE);
    let again: Value = http
        .post(
            &format!("/dashboard/api/quarantine/{entry}/resubmit"),
            json!({}),
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(again["stored"], false, "{again}");
    let mut corrected = misread_scan();
    corrected["epcList"] = json!(["https://id.gs1.org/01/09506000134352/21/X"]);
    let stored = http
        .post(
            &format!("/dashboard/api/quarantine/{entry}/resubmit"),
            json!({"corrected": corrected}),
        )
        .await;
    assert_eq!(stored.status(), 200);
    let stored: Value = stored.json().await.expect("JSON");
    assert_eq!(stored["stored"], true, "{stored}");
    assert_eq!(http.json("/dashboard/api/quarantine").await, json!([]));
    let not_json = http
        .post(
            &format!("/dashboard/api/quarantine/{entry}/resubmit"),
            json!({"corrected": {"type": "ObjectEvent"}}),
        )
        .await;
    assert_eq!(
        not_json.status(),
        400,
        "an event without its fields is refused"
    );

    let integration = http.json("/dashboard/api/integration").await;
    assert_eq!(integration["deadLetterPostings"], json!([]));
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn dashboard_actions_need_the_roles_of_the_calls_they_make() {
    let provider = Provider::new();
    let settings = provider.settings();
    let app = TestApp::spawn_with(|config| config.auth = Some(settings))
        .await
        .expect("suite starts");
    let scanner = provider.token(&["operator"], &[PLANT]);
    let results = capture_as(&app, vec![event(misread_scan())], Some(&scanner)).await;
    assert_eq!(results[0].outcome, pb::CaptureOutcome::Quarantined as i32);
    // A line's events, its non-conformant inspection among them, captured by quality.
    let inspector = provider.token(&["quality"], &[PLANT]);
    capture_as(&app, line_events(), Some(&inspector)).await;

    let anonymous = Http::new(&app, None);
    assert_eq!(
        anonymous.get("/").await.status(),
        200,
        "the page itself is open"
    );
    assert_eq!(anonymous.get("/assets/app.js").await.status(), 200);
    assert_eq!(anonymous.get("/dashboard/api/overview").await.status(), 401);

    // The overview shows the live feed (Subscribe), the floor's figures (QueryEvents) and
    // the quarantine (ListQuarantine): each role sees the parts those calls admit it to.
    let planner = Http::new(&app, Some(provider.token(&["planner"], &[PLANT])));
    let everything = overview_after(&planner, 4).await;
    assert!(everything["feed"].is_array(), "{everything}");
    assert_eq!(everything["quarantined"], 1, "{everything}");
    assert_eq!(everything["omitted"], json!([]));
    let operator = Http::new(&app, Some(provider.token(&["operator"], &[PLANT])));
    assert_eq!(
        operator.get("/dashboard/api/overview").await.status(),
        403,
        "an operator may call none of them: no feed, no figures"
    );
    let quality_view = Http::new(&app, Some(provider.token(&["quality"], &[PLANT])))
        .json("/dashboard/api/overview")
        .await;
    assert!(quality_view.get("feed").is_none(), "{quality_view}");
    assert_eq!(quality_view["quarantined"], 1, "{quality_view}");
    assert_eq!(quality_view["omitted"], json!(["feed"]));
    let follower_view = Http::new(&app, Some(provider.token(&["integration"], &[PLANT])))
        .json("/dashboard/api/overview")
        .await;
    assert!(follower_view["feed"].is_array(), "{follower_view}");
    assert!(
        follower_view.get("quarantined").is_none(),
        "{follower_view}"
    );
    assert!(follower_view.get("stages").is_none(), "{follower_view}");
    assert_eq!(follower_view["omitted"], json!(["floor", "quarantine"]));
    assert_eq!(
        operator.get("/dashboard/api/quarantine").await.status(),
        403
    );
    let session = operator.json("/dashboard/api/session").await;
    assert_eq!(session["roles"], json!(["operator"]));

    let queue = planner.json("/dashboard/api/quarantine").await;
    let entry = queue[0]["id"].as_str().expect("an entry").to_owned();
    let refused = planner
        .post(
            &format!("/dashboard/api/quarantine/{entry}/discard"),
            json!({"reason": "misread"}),
        )
        .await;
    assert_eq!(refused.status(), 403);

    let quality = Http::new(&app, Some(provider.token(&["quality"], &[PLANT])));
    let no_reason = quality
        .post(
            &format!("/dashboard/api/quarantine/{entry}/discard"),
            json!({"reason": " "}),
        )
        .await;
    assert_eq!(no_reason.status(), 400);
    let discarded = quality
        .post(
            &format!("/dashboard/api/quarantine/{entry}/discard"),
            json!({"reason": "misread label"}),
        )
        .await;
    assert_eq!(discarded.status(), 200);
    assert_eq!(quality.json("/dashboard/api/quarantine").await, json!([]));
    let audit = app.audit_log().await.expect("audit log");
    assert!(
        audit
            .iter()
            .any(|(subject, action, _, _)| subject == "alice@acme.example"
                && action == "POST /dashboard/api/quarantine/{id}/discard"),
        "{audit:?}"
    );
    app.stop().await.expect("stops");
}

/// A recall bigger than the service's default answer (10,000 nodes) downloads whole: the
/// CSV has every affected unit, one row each, after the header.
#[tokio::test(flavor = "multi_thread")]
async fn a_recall_of_25000_units_downloads_as_a_csv_of_25000_rows() {
    const UNITS: u32 = 25_000;
    const PER_EVENT: u32 = 1_000;
    const BIG_LOT: &str = "urn:epc:class:lgtin:4012345.022222.LOT-BIG";
    let app = TestApp::spawn().await.expect("suite starts");
    let events: Vec<pb::EpcisEvent> = (0..UNITS / PER_EVENT)
        .map(|batch| {
            let outputs: Vec<String> = (batch * PER_EVENT..(batch + 1) * PER_EVENT)
                .map(|n| unit(n + 1))
                .collect();
            event(json!({
                "type": "TransformationEvent", "eventTime": "2026-11-26T08:00:00Z",
                "eventTimeZoneOffset": "+00:00", "bizStep": "commissioning",
                "readPoint": {"id": LINE},
                "inputQuantityList": [{"epcClass": BIG_LOT, "quantity": 1, "uom": "KGM"}],
                "outputEPCList": outputs,
            }))
        })
        .collect();
    let stored = capture(&app, events).await;
    assert!(
        stored
            .iter()
            .all(|r| r.outcome != pb::CaptureOutcome::Quarantined as i32)
    );
    app.await_genealogy(i64::from(UNITS / PER_EVENT)).await;

    let http = Http::new(&app, None);
    let response = http
        .get(&format!("/dashboard/api/recall.csv?id={BIG_LOT}"))
        .await;
    assert_eq!(response.status(), 200);
    let csv = response.text().await.expect("CSV");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("id,name,kind,container,location,location_name,disposition,custodian,custodian_name")
    );
    let units: std::collections::BTreeSet<&str> = lines
        .map(|line| line.split(',').next().unwrap_or_default())
        .collect();
    assert_eq!(csv.lines().count(), UNITS as usize + 1, "one row per unit");
    assert_eq!(units.len(), UNITS as usize, "every unit once");
    // Genealogy names units by their Digital Link.
    let last = format!("https://id.gs1.org/01/04012345111118/21/{UNITS}");
    assert!(units.contains(last.as_str()), "{last}");
}

/// The alerts view: who watches the plant sees alerts; who runs it acknowledges and
/// resolves them, as themselves, and each action is in the audit trail under them.
#[tokio::test]
async fn people_acknowledge_and_resolve_alerts_on_the_dashboard_under_their_names() {
    let provider = Provider::new();
    let settings = provider.settings();
    let app = TestApp::spawn_with(|config| {
        config.auth = Some(settings);
        config.alerts = toml::from_str(
            "[[rules]]\nname = \"non-conformant\"\nkind = \"match\"\n\
             query = { EQ_disposition = \"non_conformant\" }\nwindow_secs = 600\n",
        )
        .expect("rules");
    })
    .await
    .expect("suite starts");
    let inspector = provider.token(&["quality"], &[PLANT]);
    capture_as(&app, line_events(), Some(&inspector)).await;
    let quality = Http::new(&app, Some(inspector));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let alert = loop {
        let view = quality.json("/dashboard/api/alerts").await;
        if let Some(alert) = view["alerts"].as_array().and_then(|a| a.first()).cloned() {
            assert_eq!(view["rules"][0]["name"], "non-conformant", "{view}");
            break alert;
        }
        assert!(tokio::time::Instant::now() < deadline, "no alert: {view}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(alert["rule"], "non-conformant");
    assert_eq!(alert["status"], "open");
    let id = alert["id"].as_str().expect("an id").to_owned();

    let planner = Http::new(&app, Some(provider.token(&["planner"], &[PLANT])));
    assert_eq!(planner.get("/dashboard/api/alerts").await.status(), 200);
    let refused = planner
        .post(
            &format!("/dashboard/api/alerts/{id}/acknowledge"),
            json!({}),
        )
        .await;
    assert_eq!(refused.status(), 403, "a planner watches, does not act");
    let follower = Http::new(&app, Some(provider.token(&["integration"], &[PLANT])));
    assert_eq!(follower.get("/dashboard/api/alerts").await.status(), 403);

    let acknowledged = quality
        .post(
            &format!("/dashboard/api/alerts/{id}/acknowledge"),
            json!({}),
        )
        .await;
    assert_eq!(acknowledged.status(), 200);
    let acknowledged: Value = acknowledged.json().await.expect("JSON");
    assert_eq!(acknowledged["status"], "acknowledged");
    assert_eq!(acknowledged["acknowledgedBy"], "alice@acme.example");
    let resolved: Value = quality
        .post(&format!("/dashboard/api/alerts/{id}/resolve"), json!({}))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["resolvedBy"], "alice@acme.example");
    assert!(
        resolved["clearedAt"].is_null(),
        "the condition still holds: {resolved}"
    );

    let audit = app.audit_log().await.expect("audit log");
    for action in [
        "POST /dashboard/api/alerts/{id}/acknowledge",
        "POST /dashboard/api/alerts/{id}/resolve",
    ] {
        assert!(
            audit
                .iter()
                .any(|(subject, a, _, _)| subject == "alice@acme.example" && a == action),
            "{action}: {audit:?}"
        );
    }
    app.stop().await.expect("stops");
}

/// The analysis view's sensor bounds: a malformed one is refused naming its position; a
/// good one goes on to the analysis.
#[tokio::test]
async fn the_analysis_view_names_a_malformed_sensor_bound() {
    let app = TestApp::spawn().await.expect("suite starts");
    let http = Http::new(&app, None);
    let failed = json!([unit(1), unit(2), unit(3)]);
    let refused = http
        .post(
            "/dashboard/api/analyze",
            json!({"failed": failed, "sensorBounds": ["Temperature=2..8,CEL", "Temperature"]}),
        )
        .await;
    assert_eq!(refused.status(), 400);
    let problem: Value = refused.json().await.expect("JSON");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("sensorBounds[1] `Temperature`: no `=`")),
        "{problem}"
    );
    let answered = http
        .post(
            "/dashboard/api/analyze",
            json!({"failed": failed, "sensorBounds": ["Temperature=2..8,CEL"]}),
        )
        .await;
    assert_eq!(answered.status(), 200);
    let answer: Value = answered.json().await.expect("JSON");
    assert_eq!(answer["verdict"], "inconclusive", "{answer}");
    app.stop().await.expect("stops");
}
