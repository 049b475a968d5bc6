//! Named queries of the EPCIS 2.0 REST binding (`/queries`) and its page tokens: stored,
//! listed, run, deleted; names taken once; expiring tokens that continue only their query.

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::rest::{event_ids, location, suite, three_received_one_shipped};
use tracery_e2e::urlencode;

fn received_goods() -> Value {
    json!({
        "name": "receivedGoods",
        "query": {"eventType": ["ObjectEvent"], "EQ_bizStep": ["receiving"]},
    })
}

/// The problem type and the parameter it names.
async fn refusal(response: reqwest::Response) -> (StatusCode, String, String) {
    let status = response.status();
    let problem: Value = response.json().await.expect("problem JSON");
    (
        status,
        problem["type"].as_str().unwrap_or_default().to_owned(),
        problem["parameter"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The URL of the `Link: <...>; rel="next"` header.
pub(crate) fn next_link(response: &reqwest::Response) -> String {
    let link = response.headers()[header::LINK].to_str().expect("ascii");
    link.trim_start_matches('<')
        .split('>')
        .next()
        .expect("link target")
        .to_owned()
}

#[tokio::test]
async fn a_named_query_is_stored_listed_run_and_deleted() {
    let (app, client) = suite().await;
    let received = three_received_one_shipped(&client).await;
    let created = client.post("/queries", &received_goods(), &[]).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(location(&created), "/queries/receivedGoods");
    let listed: Value = client.get("/queries").await.json().await.expect("JSON");
    assert_eq!(listed, json!([received_goods()]));
    let read: Value = client
        .get("/queries/receivedGoods")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(read, json!([received_goods()]));

    let first = client.get("/queries/receivedGoods/events?perPage=2").await;
    assert_eq!(first.status(), StatusCode::OK);
    let next = next_link(&first);
    assert!(next.starts_with("/queries/receivedGoods/events?"), "{next}");
    let first: Value = first.json().await.expect("JSON");
    assert_eq!(
        first["epcisBody"]["queryResults"]["queryName"],
        "receivedGoods"
    );
    let second: Value = client.get(&next).await.json().await.expect("JSON");
    assert_eq!([event_ids(&first), event_ids(&second)].concat(), received);

    assert_eq!(
        client.delete("/queries/receivedGoods").await.status(),
        StatusCode::NO_CONTENT
    );
    let (status, kind, _) = refusal(client.get("/queries/receivedGoods/events").await).await;
    assert_eq!(
        (status, kind.as_str()),
        (StatusCode::NOT_FOUND, "epcisException:NoSuchNameException")
    );
    let again = client.delete("/queries/receivedGoods").await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn of_clients_creating_one_name_at_once_one_gets_it_and_the_rest_a_conflict() {
    let (app, client) = suite().await;
    let definition = received_goods();
    let attempts = (0..8).map(|_| client.post("/queries", &definition, &[]));
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(reqwest::Response::status)
        .collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 7), "{statuses:?}");
    let (_, kind, _) = refusal(client.post("/queries", &received_goods(), &[]).await).await;
    assert_eq!(kind, "epcisException:ResourceAlreadyExistsException");
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_query_definition_that_could_never_run_is_refused_naming_the_field() {
    let (app, client) = suite().await;
    let cases = [
        (json!({"query": {}}), "name"),
        (json!({"name": "a/b", "query": {}}), "name"),
        (json!({"name": "q"}), "query"),
        (
            json!({"name": "q", "query": {"EQ_bizStepp": ["x"]}}),
            "EQ_bizStepp",
        ),
        (
            json!({"name": "q", "query": {"GE_eventTime": "yesterday"}}),
            "GE_eventTime",
        ),
        (json!({"name": "q", "query": {"perPage": 10}}), "perPage"),
        (
            json!({"name": "q", "query": {"EQ_bizStep": [{"deep": 1}]}}),
            "EQ_bizStep",
        ),
    ];
    for (definition, field) in cases {
        let (status, kind, parameter) =
            refusal(client.post("/queries", &definition, &[]).await).await;
        assert_eq!(
            (status, kind.as_str(), parameter.as_str()),
            (
                StatusCode::BAD_REQUEST,
                "epcisException:QueryParameterException",
                field
            ),
            "{definition}"
        );
    }
    let plain = client.post_text("/queries", "text/plain", "name=q").await;
    assert_eq!(plain.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        client
            .post("/queries", &received_goods(), &[])
            .await
            .status(),
        StatusCode::CREATED
    );
    let (status, _, parameter) = refusal(
        client
            .get("/queries/receivedGoods/events?EQ_bizStep=shipping")
            .await,
    )
    .await;
    assert_eq!(
        (status, parameter.as_str()),
        (StatusCode::BAD_REQUEST, "EQ_bizStep")
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn page_tokens_expire_and_continue_only_their_own_query() {
    let (app, client) = suite().await;
    three_received_one_shipped(&client).await;
    let first = client.get("/events?EQ_bizStep=receiving&perPage=2").await;
    let expires = first.headers()["GS1-Next-Page-Token-Expires"]
        .to_str()
        .expect("ascii");
    let expires: DateTime<Utc> = DateTime::parse_from_rfc3339(expires)
        .expect("a date-time")
        .to_utc();
    let lifetime = expires - Utc::now();
    assert!(
        (TimeDelta::minutes(9)..=TimeDelta::minutes(10)).contains(&lifetime),
        "{lifetime}"
    );
    let next = next_link(&first);
    let token = next.split("nextPageToken=").nth(1).expect("a token");

    let elsewhere = client
        .get(&format!(
            "/events?EQ_bizStep=shipping&nextPageToken={token}"
        ))
        .await;
    let (status, _, parameter) = refusal(elsewhere).await;
    assert_eq!(
        (status, parameter.as_str()),
        (StatusCode::BAD_REQUEST, "nextPageToken")
    );

    let forged = client.get("/events?nextPageToken=12345").await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);

    let too_big = client.get("/events?perPage=1001").await;
    let problem: Value = too_big.json().await.expect("problem");
    assert_eq!(problem["parameter"], "perPage");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("1000")),
        "{problem}"
    );

    app.clock.shift(TimeDelta::minutes(11));
    let late = client.get(&next).await;
    let problem: Value = late.json().await.expect("problem");
    assert_eq!(problem["type"], "epcisException:QueryParameterException");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("expired")),
        "{problem}"
    );
    app.stop().await.expect("clean stop");
}

/// The next event a gRPC query subscription delivers, within 10 s.
async fn next_event(
    stream: &mut tonic::Streaming<tracery_proto::v1::SubscribeResponse>,
) -> tracery_proto::v1::StoredEvent {
    tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
        .await
        .expect("an event within 10 s")
        .expect("stream open")
        .expect("a message")
        .event
        .expect("an event")
}

#[tokio::test]
async fn a_named_query_is_followed_over_grpc_and_resumed_after_the_last_sequence() {
    use tracery_proto::v1 as pb;
    let (app, client) = suite().await;
    let received = three_received_one_shipped(&client).await;
    assert_eq!(
        client
            .post("/queries", &received_goods(), &[])
            .await
            .status(),
        StatusCode::CREATED
    );
    let subscribe = |after_sequence| pb::SubscribeQueryRequest {
        query_name: "receivedGoods".to_owned(),
        initial_record_time: None,
        after_sequence,
    };
    let mut stream = app
        .capture
        .clone()
        .subscribe_query(subscribe(0))
        .await
        .expect("subscribed")
        .into_inner();
    let first = next_event(&mut stream).await;
    assert_eq!(
        first.event.as_ref().map(|e| e.event_id.clone()),
        Some(received[0].clone())
    );
    drop(stream);

    let mut resumed = app
        .capture
        .clone()
        .subscribe_query(subscribe(first.sequence))
        .await
        .expect("resubscribed")
        .into_inner();
    let mut seen = Vec::new();
    for _ in 1..received.len() {
        seen.push(
            next_event(&mut resumed)
                .await
                .event
                .expect("event")
                .event_id,
        );
    }
    assert_eq!(
        seen,
        received[1..],
        "the rest, in order, the shipped one left out"
    );
    let live = crate::rest::received(&client, 40..=40).await;
    let next = next_event(&mut resumed)
        .await
        .event
        .expect("event")
        .event_id;
    assert_eq!(next, live[0], "then live events");

    let unknown = app
        .capture
        .clone()
        .subscribe_query(pb::SubscribeQueryRequest {
            query_name: "noSuchQuery".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("no such query");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    app.stop().await.expect("clean stop");
}

/// Three events captured in an order other than their event times': the ids of A (10:05,
/// OBSERVE receiving), B (10:01, ADD commissioning, disposition active) and C (10:03,
/// OBSERVE inspecting, disposition conformant), captured A, B, C.
async fn captured_out_of_time_order(client: &crate::rest::Client) -> [String; 3] {
    use crate::rest::{event, job_id};
    let a = event(&job_id(51), "receiving", 5);
    let mut b = event(&job_id(52), "commissioning", 1);
    b["action"] = json!("ADD");
    b["disposition"] = json!("active");
    let mut c = event(&job_id(53), "inspecting", 3);
    c["disposition"] = json!("conformant");
    for e in [a, b, c] {
        let created = client.post("/events", &e, &[]).await;
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    [job_id(51), job_id(52), job_id(53)]
}

/// Every event id of `path`'s answer, following its `Link`s.
async fn all_pages(client: &crate::rest::Client, path: &str) -> Vec<String> {
    let (mut ids, mut next) = (Vec::new(), Some(path.to_owned()));
    while let Some(path) = next.take() {
        let response = client.get(&path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        if response.headers().contains_key(header::LINK) {
            next = Some(next_link(&response));
        }
        ids.extend(event_ids(&response.json().await.expect("JSON")));
    }
    ids
}

#[tokio::test]
async fn queries_order_by_event_time_or_record_time_either_way_across_pages() {
    let (app, client) = suite().await;
    let [a, b, c] = captured_out_of_time_order(&client).await;
    for (query, expected) in [
        ("orderBy=eventTime", [&b, &c, &a]),
        ("orderBy=eventTime&orderDirection=DESC", [&a, &c, &b]),
        ("orderBy=recordTime&orderDirection=DESC", [&c, &b, &a]),
        ("orderDirection=ASC", [&a, &b, &c]),
    ] {
        let path = format!("/events?{query}&perPage=1");
        let expected: Vec<String> = expected.into_iter().cloned().collect();
        assert_eq!(all_pages(&client, &path).await, expected, "{query}");
    }
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn queries_select_by_action_existing_fields_event_id_and_count_limit() {
    let (app, client) = suite().await;
    let [a, b, c] = captured_out_of_time_order(&client).await;
    for (query, expected) in [
        ("EQ_action=ADD".to_owned(), vec![&b]),
        ("EQ_action=OBSERVE&perPage=1".to_owned(), vec![&a, &c]),
        ("EXISTS_disposition".to_owned(), vec![&b, &c]),
        ("EXISTS_bizTransactionList".to_owned(), vec![]),
        (format!("EQ_eventID={}", urlencode(&b)), vec![&b]),
        ("eventCountLimit=2&perPage=1".to_owned(), vec![&a, &b]),
    ] {
        let path = format!("/events?{query}");
        let expected: Vec<String> = expected.into_iter().cloned().collect();
        assert_eq!(all_pages(&client, &path).await, expected, "{query}");
    }
    for (query, parameter) in [
        ("orderBy=bizStep", "orderBy"),
        ("orderDirection=UP", "orderDirection"),
        ("EQ_action=JUMP", "EQ_action"),
        ("eventCountLimit=0", "eventCountLimit"),
    ] {
        let (status, _, named) = refusal(client.get(&format!("/events?{query}")).await).await;
        assert_eq!(
            (status, named.as_str()),
            (StatusCode::BAD_REQUEST, parameter)
        );
    }
    app.stop().await.expect("clean stop");
}

/// An event taken out of its document keeps the namespaces its extension fields use:
/// served alone, it declares them in its own `@context` (JSON-LD and XML capture alike).
#[tokio::test]
async fn an_event_served_alone_keeps_the_namespaces_of_its_extensions() {
    let (app, client) = crate::rest::suite().await;
    let document = serde_json::json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
                     {"acme": "https://ns.acme.example/epcis/"}],
        "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-11-26T00:00:00Z",
        "epcisBody": {"eventList": [{
            "type": "ObjectEvent", "eventID": "urn:uuid:00000000-0000-4000-8000-000000000777",
            "eventTime": "2026-11-26T10:00:00+01:00", "eventTimeZoneOffset": "+01:00",
            "action": "OBSERVE", "epcList": ["urn:epc:id:sgtin:4012345.011111.777"],
            "acme:line": {"acme:shift": "B"},
        }]},
    });
    let accepted = client.post("/capture", &document, &[]).await;
    assert_eq!(accepted.status(), reqwest::StatusCode::ACCEPTED);
    let path = "/events/urn:uuid:00000000-0000-4000-8000-000000000777";
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let served: serde_json::Value = loop {
        let answer = client.get(path).await;
        if answer.status() == reqwest::StatusCode::OK {
            break answer.json().await.expect("JSON");
        }
        assert!(tokio::time::Instant::now() < deadline, "never stored");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let event = served
        .pointer("/epcisBody/queryResults/resultsBody/eventList/0")
        .unwrap_or(&served);
    assert_eq!(event["acme:line"]["acme:shift"], "B", "{served}");
    assert_eq!(
        event["@context"],
        serde_json::json!([{"acme": "https://ns.acme.example/epcis/"}]),
        "{served}"
    );
    app.stop().await.expect("clean stop");
}
