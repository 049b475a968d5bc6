//! Limits: a batch of too many events, a body too large or nested too deep is refused
//! with a clear error, and nothing of it is stored.

use tonic::Code;
use tracery_e2e::TestApp;
use tracery_proto::v1 as pb;

fn observed(n: u32) -> pb::EpcisEvent {
    pb::EpcisEvent {
        event_id: format!("urn:uuid:00000000-0000-4000-8000-f{n:011}"),
        event_time: Some(prost_types::Timestamp {
            seconds: 1_795_651_200,
            nanos: 0,
        }),
        event_time_zone_offset: "+01:00".to_owned(),
        body: Some(pb::epcis_event::Body::ObjectEvent(pb::ObjectEvent {
            action: pb::Action::Observe.into(),
            epcs: vec![format!("urn:epc:id:sgtin:4012345.011111.L{n}")],
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[tokio::test]
async fn oversized_and_overdeep_requests_are_refused_and_store_nothing() {
    let app = TestApp::spawn_with(|config| {
        config.limits.max_events_per_batch = 3;
        config.limits.max_body_bytes = 64 * 1024;
        config.limits.max_nesting_depth = 16;
    })
    .await
    .expect("suite starts");

    let refused = app
        .capture
        .clone()
        .capture(pb::CaptureRequest {
            events: (0..4).map(observed).collect(),
        })
        .await
        .expect_err("four events");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("at most 3"),
        "{}",
        refused.message()
    );

    let http = reqwest::Client::new();
    let capture = format!("http://{}/capture", app.http_addr);
    let event = |n: u32| {
        serde_json::json!({"type": "ObjectEvent", "eventID": format!("urn:uuid:00000000-0000-4000-8000-d{n:011}"),
            "eventTime": "2026-11-26T10:00:00+01:00", "eventTimeZoneOffset": "+01:00",
            "action": "OBSERVE", "epcList": [format!("urn:epc:id:sgtin:4012345.011111.R{n}")]})
    };
    let document = |events: Vec<serde_json::Value>| {
        serde_json::json!({"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
            "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-11-26T00:00:00Z",
            "epcisBody": {"eventList": events}})
        .to_string()
    };
    let post = |body: String| {
        http.post(&capture)
            .header("content-type", "application/ld+json")
            .body(body)
            .send()
    };
    let too_many = post(document((0..4).map(event).collect()))
        .await
        .expect("answer");
    assert_eq!(too_many.status(), 413);
    let problem: serde_json::Value = too_many.json().await.expect("problem");
    assert_eq!(
        problem["type"],
        "epcisException:CaptureLimitExceededException"
    );

    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let overdeep = post(deep).await.expect("answer");
    assert_eq!(overdeep.status(), 400);
    let problem: serde_json::Value = overdeep.json().await.expect("problem");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("max_nesting_depth")),
        "{problem}"
    );

    let padding = "x".repeat(100 * 1024);
    let mut big = event(9);
    big["comment"] = serde_json::json!(padding);
    let oversized = post(document(vec![big])).await.expect("answer");
    assert_eq!(oversized.status(), 413);

    let injection = event(10);
    let mut injection = injection;
    injection["epcList"] =
        serde_json::json!(["urn:epc:id:sgtin:4012345.011111.1'; DROP TABLE capture_events; --"]);
    let odd = post(document(vec![injection])).await.expect("answer");
    assert!(
        odd.status().is_success() || odd.status().is_client_error(),
        "{}",
        odd.status()
    );

    assert_eq!(
        app.stored_events().await.len(),
        0,
        "nothing of the refused requests is stored"
    );
    app.stop().await.expect("clean stop");
}

/// Hostile nesting at 10×, 100× and 10,000× the bound — XML elements, a JSON-LD
/// `@context`, an extension inside an otherwise valid event — is each refused with a 400
/// problem naming the limit; the server keeps answering and stores nothing, not even in
/// quarantine.
#[tokio::test]
async fn hostile_nesting_is_refused_and_the_server_keeps_serving() {
    let app = TestApp::spawn().await.expect("suite starts");
    let limit = 32; // the default limits.max_nesting_depth
    let http = reqwest::Client::new();
    let capture = format!("http://{}/capture", app.http_addr);
    let healthz = format!("http://{}/healthz", app.http_addr);
    let xml_document = |depth: usize| {
        format!(
            r#"<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" xmlns:ex="https://ns.example.com/" schemaVersion="2.0" creationDate="2026-11-26T00:00:00Z"><EPCISBody><EventList><ObjectEvent><eventTime>2026-11-26T10:00:00+01:00</eventTime><eventTimeZoneOffset>+01:00</eventTimeZoneOffset><epcList><epc>urn:epc:id:sgtin:4012345.011111.X1</epc></epcList><action>OBSERVE</action>{}{}</ObjectEvent></EventList></EPCISBody></epcis:EPCISDocument>"#,
            "<ex:deep>".repeat(depth),
            "</ex:deep>".repeat(depth)
        )
    };
    let json_document = |context: serde_json::Value, extension: serde_json::Value| {
        serde_json::json!({"@context": context, "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": "2026-11-26T00:00:00Z",
            "epcisBody": {"eventList": [{"type": "ObjectEvent",
                "eventTime": "2026-11-26T10:00:00+01:00", "eventTimeZoneOffset": "+01:00",
                "action": "OBSERVE", "epcList": ["urn:epc:id:sgtin:4012345.011111.J1"],
                "ex:deep": extension}]}})
        .to_string()
    };
    // Deep JSON is written as text: serde_json would refuse to build it past 128 levels.
    let deep_json =
        |depth: usize| format!("{}\"x\"{}", "{\"ex:in\":".repeat(depth), "}".repeat(depth));
    let context = r#"["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",{"ex":"https://ns.example.com/"}]"#;
    for factor in [10, 100, 10_000] {
        let depth = limit * factor;
        let hostile = [
            ("application/xml", "XML", xml_document(depth)),
            (
                "application/ld+json",
                "deep @context",
                json_document(serde_json::json!("PLACEHOLDER"), serde_json::json!("x"))
                    .replace("\"PLACEHOLDER\"", &deep_json(depth)),
            ),
            (
                "application/ld+json",
                "deep extension",
                json_document(serde_json::json!("PLACEHOLDER"), serde_json::json!("DEEP"))
                    .replace("\"PLACEHOLDER\"", context)
                    .replace("\"DEEP\"", &deep_json(depth)),
            ),
        ];
        for (content_type, what, body) in hostile {
            let answer = http
                .post(&capture)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap_or_else(|err| panic!("{what} ×{factor}: no answer: {err}"));
            assert_eq!(answer.status(), 400, "{what} ×{factor}");
            let problem: serde_json::Value = answer.json().await.expect("problem document");
            assert_eq!(problem["type"], "epcisException:ValidationException");
            assert!(
                problem["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("max_nesting_depth")),
                "{what} ×{factor}: {problem}"
            );
            let health = http.get(&healthz).send().await.expect("still serving");
            assert!(health.status().is_success(), "{what} ×{factor}");
        }
    }
    // Within the bound the same document is taken: the refusals above were the depth.
    let fine = http
        .post(&capture)
        .header("content-type", "application/xml")
        .body(xml_document(4))
        .send()
        .await
        .expect("answer");
    assert_eq!(fine.status(), 202);
    let job = fine
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .expect("capture job")
        .to_owned();
    for _ in 0..100 {
        if app.stored_events().await.len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.stored_events().await.len(),
        1,
        "only the fine one ({job})"
    );
    let quarantined = app
        .capture
        .clone()
        .list_quarantine(pb::ListQuarantineRequest::default())
        .await
        .expect("quarantine")
        .into_inner();
    assert!(quarantined.entries.is_empty(), "{quarantined:?}");
    app.stop().await.expect("clean stop");
}

/// Over gRPC, an extension nested beyond the protobuf decoder's recursion limit is
/// `INVALID_ARGUMENT`, and the suite keeps serving.
#[tokio::test]
async fn a_deep_grpc_extension_is_invalid_argument() {
    use prost_types::{Struct, Value, value::Kind};
    let app = TestApp::spawn().await.expect("suite starts");
    let mut deep = Value {
        kind: Some(Kind::StringValue("bottom".to_owned())),
    };
    for _ in 0..200 {
        deep = Value {
            kind: Some(Kind::StructValue(Struct {
                fields: [("ex:in".to_owned(), deep)].into_iter().collect(),
            })),
        };
    }
    let mut event = observed(1);
    event.extensions = Some(Struct {
        fields: [("ex:deep".to_owned(), deep)].into_iter().collect(),
    });
    let refused = app
        .capture
        .clone()
        .capture(pb::CaptureRequest {
            events: vec![event],
        })
        .await
        .expect_err("too deep to decode");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    app.capture
        .clone()
        .capture(pb::CaptureRequest {
            events: vec![observed(2)],
        })
        .await
        .expect("still serving");
    app.stop().await.expect("clean stop");
}

/// Past capacity the excess is refused at once with a time to retry — it does not wait in
/// an unbounded queue and time out later — and everything accepted is stored.
#[tokio::test]
async fn past_capacity_requests_are_refused_at_once_with_a_time_to_retry() {
    use tonic_types::StatusExt as _;
    let app = TestApp::spawn_with(|config| config.limits.capture_queue = 1)
        .await
        .expect("suite starts");
    let calls = (0..200u32).map(|n| {
        let mut capture = app.capture.clone();
        async move {
            capture
                .capture(pb::CaptureRequest {
                    events: vec![observed(1000 + n)],
                })
                .await
        }
    });
    let answers = futures::future::join_all(calls).await;
    let accepted = answers.iter().filter(|answer| answer.is_ok()).count();
    let refused: Vec<&tonic::Status> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
    assert!(!refused.is_empty(), "200 calls at once exceed a queue of 1");
    for status in &refused {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(status.get_details_retry_info().is_some(), "{status:?}");
    }
    let stored = app
        .capture
        .clone()
        .query_events(pb::QueryEventsRequest {
            page: Some(pb::PageRequest {
                page_size: 1000,
                page_token: String::new(),
            }),
            ..Default::default()
        })
        .await
        .expect("query")
        .into_inner()
        .events
        .len();
    assert_eq!(
        stored, accepted,
        "every accepted call is stored, no refused one"
    );

    // REST says 429 with Retry-After.
    let client = reqwest::Client::new();
    let posts = (0..100u32).map(|n| {
        let client = client.clone();
        let url = format!("http://{}/capture", app.http_addr);
        let event = tracery_epcis::json::event_to_json(
            &tracery_epcis::proto::event_from_proto(&observed(2000 + n)).expect("event"),
        );
        async move {
            let document = serde_json::json!({
                "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
                "type": "EPCISDocument", "schemaVersion": "2.0",
                "creationDate": "2026-11-26T00:00:00Z",
                "epcisBody": {"eventList": [event]},
            });
            client
                .post(url)
                .header("content-type", "application/ld+json")
                .body(document.to_string())
                .send()
                .await
                .expect("answer")
        }
    });
    let answers = futures::future::join_all(posts).await;
    let too_many: Vec<_> = answers.iter().filter(|a| a.status() == 429).collect();
    assert!(
        answers
            .iter()
            .all(|a| a.status() == 202 || a.status() == 429)
    );
    if let Some(answer) = too_many.first() {
        assert!(answer.headers().contains_key("retry-after"));
    }
    app.stop().await.expect("stops");
}

/// The other JSON the REST binding and the alert rules read — a named query's
/// definition, a subscription request, an EPCISMasterDataDocument, an alert rule over
/// gRPC — nested far past the bound is refused naming the limit, and the suite keeps
/// serving.
#[tokio::test]
async fn hostile_nesting_in_queries_subscriptions_master_data_and_rules_is_refused() {
    let app = TestApp::spawn().await.expect("suite starts");
    let http = reqwest::Client::new();
    let base = format!("http://{}", app.http_addr);
    let created = http
        .post(format!("{base}/queries"))
        .header("content-type", "application/json")
        .body(r#"{"name": "received", "query": {"EQ_bizStep": ["receiving"]}}"#)
        .send()
        .await
        .expect("answer");
    assert_eq!(created.status(), 201);
    let deep = |depth: usize| format!("{}\"x\"{}", "[".repeat(depth), "]".repeat(depth));
    for depth in [320, 3_200, 320_000] {
        let hostile = [
            (
                "/queries",
                format!(
                    r#"{{"name": "deep", "query": {{"EQ_bizStep": {}}}}}"#,
                    deep(depth)
                ),
            ),
            (
                "/queries/received/subscriptions",
                format!(
                    r#"{{"dest": "https://example.com/", "stream": true, "schedule": {}}}"#,
                    deep(depth)
                ),
            ),
            (
                "/capture",
                format!(
                    r#"{{"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
                    "type": "EPCISMasterDataDocument", "schemaVersion": "2.0",
                    "creationDate": "2026-11-26T00:00:00Z", "epcisBody": {{"vocabularyList": [{{
                    "type": "urn:epcglobal:epcis:vtype:ReadPoint", "vocabularyElementList": [{{
                    "id": "urn:epc:id:sgln:4012345.00003.1", "attributes": [{{
                    "id": "urn:epcglobal:cbv:mda#name", "attribute": {}}}]}}]}}]}}}}"#,
                    deep(depth)
                ),
            ),
        ];
        for (path, body) in hostile {
            let answer = http
                .post(format!("{base}{path}"))
                .header("content-type", "application/ld+json")
                .body(body)
                .send()
                .await
                .unwrap_or_else(|err| panic!("{path} at {depth}: no answer: {err}"));
            assert_eq!(answer.status(), 400, "{path} at {depth}");
            let problem: serde_json::Value = answer.json().await.expect("problem document");
            assert!(
                problem.to_string().contains("max_nesting_depth"),
                "{path} at {depth}: {problem}"
            );
        }
        let mut alerts =
            tracery_proto::v1::alert_service_client::AlertServiceClient::new(app.channel.clone());
        let refused = alerts
            .put_alert_rule(pb::PutAlertRuleRequest {
                name: "deep".into(),
                definition_json: format!(
                    r#"{{"kind": "match", "query": {{"EQ_bizStep": {}}}}}"#,
                    deep(depth)
                ),
            })
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{depth}");
        assert!(
            refused.message().contains("definition_json"),
            "{}",
            refused.message()
        );
        let health = http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("still serving");
        assert!(health.status().is_success());
    }
    app.stop().await.expect("clean stop");
}
