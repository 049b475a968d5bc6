//! Bad input over both interfaces: bytes that are not the message, fields of the wrong
//! type, malformed and injection-looking identifiers, unsupported media. Every case gets
//! a clear error naming what is wrong, and the event store is unchanged afterwards (same
//! events, both hash chains intact).

use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use tonic::Code;
use tonic_prost::ProstCodec;
use tracery_e2e::{TestApp, urlencode};
use tracery_proto::v1 as pb;

use crate::capture::observe;

const INJECTED_EPC: &str = "urn:epc:id:sgtin:4012345.011111.1' OR '1'='1";
const INJECTED_ID: &str = "x'; DROP TABLE capture_events; --";

fn rest_event(overrides: Value) -> Value {
    let mut event = json!({
        "type": "ObjectEvent",
        "eventID": "urn:uuid:5b1d0000-0000-4000-8000-000000000001",
        "eventTime": "2026-11-26T10:00:00+01:00",
        "eventTimeZoneOffset": "+01:00",
        "action": "OBSERVE",
        "bizStep": "shipping",
        "epcList": ["urn:epc:id:sgtin:4012345.011111.9001"],
    });
    if let (Some(event), Some(overrides)) = (event.as_object_mut(), overrides.as_object()) {
        for (key, value) in overrides {
            event.insert(key.clone(), value.clone());
        }
    }
    event
}

/// Stored events and whether both chains verify.
async fn store_state(app: &TestApp) -> (Vec<(i64, String)>, bool) {
    let verified = app
        .capture
        .clone()
        .verify_integrity(pb::VerifyIntegrityRequest {})
        .await
        .expect("verify")
        .into_inner();
    (app.stored_events().await, verified.intact)
}

/// A suite holding one good event, and the store as it was before a test's bad input.
struct Watched {
    app: TestApp,
    before: (Vec<(i64, String)>, bool),
}

impl Watched {
    async fn start() -> Self {
        let app = TestApp::spawn().await.expect("suite starts");
        app.capture
            .clone()
            .capture(pb::CaptureRequest {
                events: vec![observe(
                    "urn:uuid:5b1d0000-0000-4000-8000-000000000000",
                    &["urn:epc:id:sgtin:4012345.011111.9000"],
                    "shipping",
                    0,
                )],
            })
            .await
            .expect("a good event");
        let before = store_state(&app).await;
        assert_eq!(before.0.len(), 1);
        assert!(before.1);
        Self { app, before }
    }

    /// The same events as before, both chains intact; then the suite stops.
    async fn assert_store_unchanged(self) {
        assert_eq!(
            store_state(&self.app).await,
            self.before,
            "the store is unchanged"
        );
        self.app.stop().await.expect("stops");
    }

    fn rest_base(&self) -> String {
        format!("http://{}", self.app.http_addr)
    }

    /// `POST /events` with `body` as `content_type`.
    async fn post_event(&self, body: String, content_type: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}/events", self.rest_base()))
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("POST")
    }
}

#[tokio::test]
async fn bytes_that_are_not_a_capture_request_are_refused_naming_the_message() {
    let watched = Watched::start().await;
    let app = &watched.app;
    // Bytes that are not a CaptureRequest (a varint where a message list is expected).
    let mut grpc = tonic::client::Grpc::new(app.channel.clone());
    grpc.ready().await.expect("ready");
    let garbage = grpc
        .unary(
            tonic::Request::new(prost_types::Duration {
                seconds: 5,
                nanos: 0,
            }),
            http::uri::PathAndQuery::from_static("/tracery.v1.CaptureService/Capture"),
            ProstCodec::<prost_types::Duration, pb::CaptureResponse>::default(),
        )
        .await
        .expect_err("garbage is refused");
    assert_eq!(garbage.code(), Code::InvalidArgument, "{garbage:?}");
    assert!(
        garbage.message().contains("CaptureRequest"),
        "names the message: {garbage:?}"
    );

    watched.assert_store_unchanged().await;
}

#[tokio::test]
async fn events_with_bad_values_or_injected_identifiers_are_quarantined_naming_the_field() {
    let watched = Watched::start().await;
    let mut capture = watched.app.capture.clone();
    // Events with wrong or missing values and injection-looking identifiers: each is
    // quarantined with the field named, none stored.
    let mut no_time = observe(
        "urn:uuid:5b1d0000-0000-4000-8000-000000000002",
        &["urn:epc:id:sgtin:4012345.011111.9002"],
        "shipping",
        2,
    );
    no_time.event_time = None;
    let mut bad_action = observe(
        "urn:uuid:5b1d0000-0000-4000-8000-000000000003",
        &["urn:epc:id:sgtin:4012345.011111.9003"],
        "shipping",
        3,
    );
    if let Some(pb::epcis_event::Body::ObjectEvent(object)) = &mut bad_action.body {
        object.action = 42;
    }
    let mut bad_offset = observe(
        "urn:uuid:5b1d0000-0000-4000-8000-000000000004",
        &["urn:epc:id:sgtin:4012345.011111.9004"],
        "shipping",
        4,
    );
    bad_offset.event_time_zone_offset = "banana".to_owned();
    let injected = observe(
        "urn:uuid:5b1d0000-0000-4000-8000-000000000005",
        &[INJECTED_EPC],
        "shipping",
        5,
    );
    let mut injected_read_point = observe(
        "urn:uuid:5b1d0000-0000-4000-8000-000000000006",
        &["urn:epc:id:sgtin:4012345.011111.9006"],
        "shipping",
        6,
    );
    injected_read_point.read_point = Some(pb::Location {
        id: INJECTED_ID.to_owned(),
        extensions: None,
    });
    let cases = [
        ("no eventTime", no_time, "event_time"),
        ("action 42", bad_action, "action"),
        ("offset banana", bad_offset, "event_time_zone_offset"),
        ("injected EPC", injected, "epc"),
        ("injected readPoint", injected_read_point, "read_point"),
    ];
    for (what, event, field) in cases {
        let results = capture
            .capture(pb::CaptureRequest {
                events: vec![event],
            })
            .await
            .map(|r| r.into_inner().results);
        match results {
            Ok(results) => {
                let result = &results[0];
                assert_eq!(
                    result.outcome,
                    pb::CaptureOutcome::Quarantined as i32,
                    "{what}: {result:?}"
                );
                assert!(
                    result.violations.iter().any(|v| v
                        .field
                        .to_lowercase()
                        .replace(['_', '.'], "")
                        .contains(&field.replace('_', ""))),
                    "{what}: the violation names {field}: {result:?}"
                );
            }
            Err(status) => {
                assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
            }
        }
    }

    watched.assert_store_unchanged().await;
}

#[tokio::test]
async fn reads_with_injection_looking_ids_find_nothing_and_break_nothing() {
    let watched = Watched::start().await;
    let app = &watched.app;
    let mut capture = app.capture.clone();
    // Reads with injection-looking ids find nothing and break nothing.
    let missing = capture
        .get_event(pb::GetEventRequest {
            event_id: INJECTED_ID.to_owned(),
        })
        .await
        .expect_err("no such event");
    assert_eq!(missing.code(), Code::NotFound);
    let found = capture
        .query_events(pb::QueryEventsRequest {
            filter: Some(pb::EventFilter {
                biz_steps: vec!["shipping' OR '1'='1".to_owned()],
                match_epcs: vec![INJECTED_EPC.to_owned()],
                ..Default::default()
            }),
            page: None,
        })
        .await
        .expect("query")
        .into_inner()
        .events;
    assert!(found.is_empty(), "{found:?}");
    let trace = app
        .genealogy
        .clone()
        .trace_backward(pb::TraceRequest {
            id: INJECTED_ID.to_owned(),
            ..Default::default()
        })
        .await;
    if let Ok(trace) = trace {
        assert!(trace.into_inner().edges.is_empty());
    }

    watched.assert_store_unchanged().await;
}

#[tokio::test]
async fn rest_bodies_with_bad_values_get_a_problem_naming_the_field() {
    let watched = Watched::start().await;
    let json_cases = [
        (
            "malformed JSON",
            r#"{"type": "ObjectEvent","#.to_owned(),
            None,
        ),
        (
            "eventTime a number",
            rest_event(json!({"eventTime": 1_795_651_200})).to_string(),
            Some("eventTime"),
        ),
        (
            "epcList a string",
            rest_event(json!({"epcList": "urn:epc:id:sgtin:4012345.011111.9010"})).to_string(),
            Some("epcList"),
        ),
        (
            "quantity a word",
            rest_event(json!({"epcList": [], "quantityList": [
                {"epcClass": "urn:epc:class:lgtin:4012345.011111.L1", "quantity": "ten"}
            ]}))
            .to_string(),
            Some("quantity"),
        ),
        (
            "action unknown",
            rest_event(json!({"action": "EXPLODE"})).to_string(),
            Some("action"),
        ),
        (
            "injected EPC",
            rest_event(json!({"epcList": [INJECTED_EPC]})).to_string(),
            Some("epc"),
        ),
    ];
    for (what, body, field) in json_cases {
        let response = watched.post_event(body, "application/ld+json").await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
        let problem: Value = response.json().await.expect("problem details");
        let text = problem.to_string().to_lowercase();
        assert!(problem["type"].is_string(), "{what}: {problem}");
        if let Some(field) = field {
            assert!(
                text.contains(&field.to_lowercase()),
                "{what}: the problem names {field}: {problem}"
            );
        }
    }
    watched.assert_store_unchanged().await;
}

#[tokio::test]
async fn rest_refuses_other_media_and_injection_in_paths_and_queries() {
    let watched = Watched::start().await;
    let http = reqwest::Client::new();
    let base = watched.rest_base();
    let plain = watched.post_event("hello".to_owned(), "text/plain").await;
    assert_eq!(plain.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let by_id = http
        .get(format!("{base}/events/{}", urlencode(INJECTED_ID)))
        .send()
        .await
        .expect("GET");
    assert_eq!(by_id.status(), StatusCode::NOT_FOUND);
    let queried = http
        .get(format!("{base}/events"))
        .query(&[("EQ_bizStep", "shipping' OR '1'='1")])
        .send()
        .await
        .expect("GET");
    assert_eq!(queried.status(), StatusCode::OK);
    let document: Value = queried.json().await.expect("query document");
    assert_eq!(
        document["epcisBody"]["queryResults"]["resultsBody"]["eventList"],
        json!([]),
        "{document}"
    );

    watched.assert_store_unchanged().await;
}
