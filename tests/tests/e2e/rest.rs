//! The EPCIS 2.0 REST binding on the HTTP listener: capture jobs, single events, queries
//! with paging, RFC 7807 problems and the GS1 headers.

use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use tracery_e2e::{TestApp, urlencode};

pub(crate) fn event(id: &str, biz_step: &str, minute: u32) -> Value {
    json!({
        "type": "ObjectEvent",
        "eventID": id,
        "eventTime": format!("2026-11-26T10:{minute:02}:00+01:00"),
        "eventTimeZoneOffset": "+01:00",
        "action": "OBSERVE",
        "bizStep": biz_step,
        "epcList": [format!("urn:epc:id:sgtin:4012345.011111.{minute}")],
    })
}

pub(crate) fn document(events: Vec<Value>) -> Value {
    json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-26T10:00:00Z",
        "epcisBody": {"eventList": events},
    })
}

pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    pub(crate) fn new(app: &TestApp) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("http://{}", app.http_addr),
        }
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(header::CONTENT_TYPE, "application/ld+json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request")
    }

    pub(crate) async fn post_text(
        &self,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header(header::CONTENT_TYPE, content_type)
            .body(body.to_owned())
            .send()
            .await
            .expect("request")
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
    }

    /// A `method` request of `path` without a body, with `headers`.
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request")
    }

    pub(crate) async fn delete(&self, path: &str) -> reqwest::Response {
        self.http
            .delete(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
    }
}

pub(crate) fn location(response: &reqwest::Response) -> String {
    response.headers()[header::LOCATION]
        .to_str()
        .expect("ascii")
        .to_owned()
}

pub(crate) fn event_ids(query_document: &Value) -> Vec<String> {
    query_document["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        .as_array()
        .expect("eventList")
        .iter()
        .map(|e| e["eventID"].as_str().unwrap_or_default().to_owned())
        .collect()
}

pub(crate) fn job_id(n: u32) -> String {
    format!("urn:uuid:00000000-0000-4000-8000-0000000004{n:02}")
}

/// A suite and a REST client for it.
pub(crate) async fn suite() -> (TestApp, Client) {
    let app = TestApp::spawn().await.expect("suite starts");
    let client = Client::new(&app);
    (app, client)
}

/// Captures events `numbers` (receiving, one a minute) in one job and returns their ids.
pub(crate) async fn received(
    client: &Client,
    numbers: std::ops::RangeInclusive<u32>,
) -> Vec<String> {
    let ids: Vec<String> = numbers.clone().map(job_id).collect();
    let events = ids
        .iter()
        .zip(numbers)
        .map(|(id, minute)| event(id, "receiving", minute))
        .collect();
    let accepted = client.post("/capture", &document(events), &[]).await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    ids
}

/// Events 1 to 3 received (one job), then event 10 shipped (`POST /events`): the ids of
/// the received ones.
pub(crate) async fn three_received_one_shipped(client: &Client) -> Vec<String> {
    let ids = received(client, 1..=3).await;
    let shipped = client
        .post("/events", &event(&job_id(10), "shipping", 10), &[])
        .await;
    assert_eq!(shipped.status(), StatusCode::CREATED);
    ids
}

/// The job behind a `202 Accepted`.
async fn job(client: &Client, accepted: &reqwest::Response) -> Value {
    client
        .get(&location(accepted))
        .await
        .json()
        .await
        .expect("job JSON")
}

/// One good event and one with a misspelt bizStep, in one job.
fn half_bad_document() -> Value {
    document(vec![
        event(&job_id(20), "receiving", 20),
        event(&job_id(21), "recieving", 21),
    ])
}

#[tokio::test]
async fn a_capture_job_reports_its_outcome_and_its_events_read_back() {
    let (app, client) = suite().await;
    let ids: Vec<String> = (1..=3).map(job_id).collect();
    let events = ids
        .iter()
        .zip(1..)
        .map(|(id, m)| event(id, "receiving", m))
        .collect();
    let accepted = client.post("/capture", &document(events), &[]).await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    assert_eq!(accepted.headers()["GS1-EPCIS-Version"], "2.0.0");
    let job = job(&client, &accepted).await;
    assert_eq!(
        (job["running"].clone(), job["success"].clone()),
        (json!(false), json!(true)),
        "{job}"
    );
    assert_eq!(job["captureErrorBehaviour"], "rollback");
    let one = client.get(&format!("/events/{}", urlencode(&ids[1]))).await;
    assert_eq!(one.status(), StatusCode::OK);
    assert_eq!(
        event_ids(&one.json().await.expect("JSON")),
        [ids[1].clone()]
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn post_events_stores_one_event_that_its_location_reads_back() {
    let (app, client) = suite().await;
    let single = client
        .post("/events", &event(&job_id(10), "shipping", 10), &[])
        .await;
    assert_eq!(single.status(), StatusCode::CREATED);
    assert_eq!(
        client.get(&location(&single)).await.status(),
        StatusCode::OK,
        "Location reads it back"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn an_invalid_event_gets_a_validation_problem_and_is_kept_in_quarantine() {
    let (app, client) = suite().await;
    let invalid = client
        .post("/events", &event(&job_id(11), "shippping", 11), &[])
        .await;
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        invalid.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let problem: Value = invalid.json().await.expect("problem");
    assert_eq!(problem["type"], "epcisException:ValidationException");
    assert_eq!(problem["violations"][0]["reason"], "UNKNOWN_BIZ_STEP");
    assert!(
        problem["quarantineID"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "kept in quarantine: {problem}"
    );
    app.stop().await.expect("clean stop");
}

/// Rollback (the default): one bad event, so none of the job is stored; all quarantined.
#[tokio::test]
async fn a_job_with_a_bad_event_rolls_back_by_default() {
    let (app, client) = suite().await;
    let rolled = client.post("/capture", &half_bad_document(), &[]).await;
    assert_eq!(rolled.status(), StatusCode::ACCEPTED);
    let job = job(&client, &rolled).await;
    assert_eq!(job["success"], json!(false));
    let reasons: Vec<&str> = job["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["violations"][0]["reason"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(reasons, ["CAPTURE_JOB_ROLLED_BACK", "UNKNOWN_BIZ_STEP"]);
    let good = client
        .get(&format!("/events/{}", urlencode(&job_id(20))))
        .await;
    assert_eq!(good.status(), StatusCode::NOT_FOUND);
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_job_that_proceeds_stores_its_good_events() {
    let (app, client) = suite().await;
    let proceeded = client
        .post(
            "/capture",
            &half_bad_document(),
            &[("GS1-Capture-Error-Behaviour", "proceed")],
        )
        .await;
    let job = job(&client, &proceeded).await;
    assert_eq!(
        (
            job["success"].clone(),
            job["errors"].as_array().map(Vec::len)
        ),
        (json!(false), Some(1))
    );
    let good = client
        .get(&format!("/events/{}", urlencode(&job_id(20))))
        .await;
    assert_eq!(good.status(), StatusCode::OK);
    app.stop().await.expect("clean stop");
}

/// Paging with Link headers, filters as in EPCIS queries.
#[tokio::test]
async fn events_are_paged_with_link_headers_and_filtered_like_epcis_queries() {
    let (app, client) = suite().await;
    let ids = three_received_one_shipped(&client).await;
    let first = client.get("/events?EQ_bizStep=receiving&perPage=2").await;
    let link = first.headers()[header::LINK]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(
        event_ids(&first.json().await.expect("JSON")),
        [ids[0].clone(), ids[1].clone()]
    );
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .expect("link target");
    let second = client.get(next).await;
    assert!(second.headers().get(header::LINK).is_none(), "last page");
    assert_eq!(
        event_ids(&second.json().await.expect("JSON")),
        [ids[2].clone()],
        "the shipping event is filtered out"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_digital_link_finds_events_captured_with_urns() {
    let (app, client) = suite().await;
    let ids = received(&client, 1..=3).await;
    let matched: Value = client
        .get("/events?MATCH_epc=https%3A%2F%2Fid.gs1.org%2F01%2F04012345111118%2F21%2F2")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        event_ids(&matched),
        [ids[1].clone()],
        "a Digital Link finds the URN"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn bad_queries_unknown_events_and_foreign_bodies_get_the_binding_s_problems() {
    let (app, client) = suite().await;
    let bad = client.get("/events?EQ_bizStepp=receiving").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let problem: Value = bad.json().await.expect("problem");
    assert_eq!(problem["type"], "epcisException:QueryParameterException");
    let missing = client.get("/events/urn%3Auuid%3Anope").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let not_epcis = client
        .post_text("/events", "application/xml", "<epcis/>")
        .await;
    assert_eq!(not_epcis.status(), StatusCode::BAD_REQUEST);
    let problem: Value = not_epcis.json().await.expect("problem");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("EPCISDocument")),
        "{problem}"
    );
    let plain = client.post_text("/events", "text/plain", "hello").await;
    assert_eq!(plain.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn every_jsonld_example_is_accepted_over_rest() {
    let Some(shared) = tracery_e2e::shared_fixtures() else {
        return;
    };
    let app = TestApp::spawn_for_examples().await.expect("suite starts");
    let client = Client::new(&app);
    let mut captured = 0;
    for file in tracery_e2e::files_with_suffix(&shared.join("epcis/examples"), ".jsonld") {
        let document: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("readable")).expect("JSON");
        if document.pointer("/epcisBody/eventList").is_none() {
            continue;
        }
        let response = client.post("/capture", &document, &[]).await;
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "{}",
            file.display()
        );
        let job: Value = client
            .get(&location(&response))
            .await
            .json()
            .await
            .expect("job JSON");
        assert_eq!(job["success"], json!(true), "{}: {job}", file.display());
        captured += 1;
    }
    assert!(
        captured >= 40,
        "expected the GS1 example documents, captured {captured}"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn every_xml_example_is_accepted_over_rest() {
    let Some(shared) = tracery_e2e::shared_fixtures() else {
        return;
    };
    let app = TestApp::spawn_for_examples().await.expect("suite starts");
    let client = Client::new(&app);
    let (mut documents, mut events) = (0, 0);
    for file in tracery_e2e::files_with_suffix(&shared.join("epcis/examples"), ".xml") {
        let text = std::fs::read_to_string(&file).expect("readable");
        // Capture-job responses and master-data documents are examples of other things.
        if !text.contains("EPCISDocument") || text.contains("EPCISMasterDataDocument") {
            continue;
        }
        let response = client.post_text("/capture", "application/xml", &text).await;
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "{}: {}",
            file.display(),
            response.text().await.unwrap_or_default()
        );
        let job: Value = client
            .get(&location(&response))
            .await
            .json()
            .await
            .expect("job JSON");
        assert_eq!(job["success"], json!(true), "{}: {job}", file.display());
        documents += 1;
        events += text.matches("Event>").count() / 2;
    }
    assert!(
        documents >= 25,
        "expected the GS1 XML examples, captured {documents}"
    );
    assert!(events >= 40, "expected many events, counted {events}");
    app.stop().await.expect("clean stop");
}

/// An event without an eventID is stored under its GS1 event hash, so the same event sent
/// again (here: as XML after JSON-LD) is recognised and stored once.
#[tokio::test]
async fn events_without_an_id_are_stored_under_their_event_hash() {
    let Some(shared) = tracery_e2e::shared_fixtures() else {
        return;
    };
    let vectors = shared.join("epcis/hash-vectors/examples");
    let read = |name: &str| std::fs::read_to_string(vectors.join(name)).expect("vector readable");
    let expected_hash = read("ReferenceEventHashAlgorithm.hashes").trim().to_owned();
    let app = TestApp::spawn().await.expect("suite starts");
    let client = Client::new(&app);

    let json_document: Value =
        serde_json::from_str(&read("ReferenceEventHashAlgorithm.jsonld")).expect("JSON");
    let response = client.post("/capture", &json_document, &[]).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let stored = client
        .get(&format!("/events/{}", urlencode(&expected_hash)))
        .await;
    assert_eq!(stored.status(), StatusCode::OK, "stored under its hash");
    let stored: Value = stored.json().await.expect("event JSON");
    assert_eq!(event_ids(&stored), std::slice::from_ref(&expected_hash));

    let response = client
        .post_text(
            "/capture",
            "application/xml",
            &read("ReferenceEventHashAlgorithm.xml"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let matched: Value = client
        .get("/events?MATCH_epc=urn%3Aepc%3Aid%3Asscc%3A4012345.0000000111")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(event_ids(&matched), [expected_hash], "stored once");
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn event_types_are_discoverable_and_an_unknown_one_is_not_found() {
    let (app, client) = suite().await;
    let types: Value = client.get("/eventTypes").await.json().await.expect("JSON");
    assert_eq!(types["type"], "Collection");
    assert_eq!(types["member"].as_array().expect("members").len(), 5);
    let object: Value = client
        .get("/eventTypes/ObjectEvent")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(object["member"], json!(["events"]));
    let unknown = client.get("/eventTypes/ThingEvent/events").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    app.stop().await.expect("clean stop");
}

/// `/{resource}/{value}/events` is `/events` with the resource's parameter, paged under
/// its own path.
#[tokio::test]
async fn a_top_level_resource_s_events_are_its_query_paged_under_its_path() {
    let (app, client) = suite().await;
    let ids = three_received_one_shipped(&client).await;
    let first = client.get("/bizSteps/receiving/events?perPage=2").await;
    assert_eq!(first.status(), StatusCode::OK);
    let link = first.headers()[header::LINK]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(link.starts_with("</bizSteps/receiving/events?"), "{link}");
    assert_eq!(event_ids(&first.json().await.expect("JSON")).len(), 2);
    let epc = urlencode("urn:epc:id:sgtin:4012345.011111.10");
    let by_epc: Value = client
        .get(&format!("/epcs/{epc}/events"))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(event_ids(&by_epc), [job_id(10)]);
    let by_type: Value = client
        .get("/eventTypes/ObjectEvent/events?EQ_bizStep=receiving")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(event_ids(&by_type), ids);
    let twice = client
        .get("/bizSteps/receiving/events?EQ_bizStep=shipping")
        .await;
    assert_eq!(twice.status(), StatusCode::BAD_REQUEST);
    app.stop().await.expect("clean stop");
}
