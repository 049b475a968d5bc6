//! The binding's listings (`/epcs`, `/bizSteps`, `/dispositions`, `/readPoints`,
//! `/bizLocations`, `/capture`), `OPTIONS` discovery, version negotiation and
//! `DELETE /nextPageToken/{token}`.

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::rest::{Client, document, suite};
use crate::rest_queries::next_link;

/// An event at read point `line` naming `epcs` and a class, with `biz_step`.
fn observed(id: u32, biz_step: &str, line: u32, epcs: &[&str]) -> Value {
    json!({
        "type": "ObjectEvent",
        "eventID": format!("urn:uuid:00000000-0000-4000-8000-0000000006{id:02}"),
        "eventTime": format!("2026-11-26T10:{id:02}:00+01:00"),
        "eventTimeZoneOffset": "+01:00",
        "action": "OBSERVE",
        "bizStep": biz_step,
        "disposition": "urn:epcglobal:cbv:disp:in_progress",
        "readPoint": {"id": format!("urn:epc:id:sgln:4012345.00003.{line}")},
        "bizLocation": {"id": "urn:epc:id:sgln:4012345.00003.0"},
        "epcList": epcs,
        "quantityList": [
            {"epcClass": "urn:epc:class:lgtin:4012345.011111.L7", "quantity": 5}
        ],
    })
}

/// Captures the events the listings below read: three read points, a custom bizStep,
/// a standard one in its URN spelling, two EPCs and a class.
async fn capture_plant(client: &Client) {
    let events = vec![
        observed(
            1,
            "urn:epcglobal:cbv:bizstep:inspecting",
            1,
            &["urn:epc:id:sgtin:4012345.011111.1"],
        ),
        observed(
            2,
            "https://plant.example.com/bizstep/leak_testing",
            2,
            &["urn:epc:id:sgtin:4012345.011111.2"],
        ),
        observed(3, "inspecting", 3, &["urn:epc:id:sgtin:4012345.011111.1"]),
    ];
    let accepted = client.post("/capture", &document(events), &[]).await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
}

/// Every member of the listing at `path`, following its `Link`s; the pages it took.
async fn every_member(client: &Client, path: &str) -> (Vec<String>, usize) {
    let (mut members, mut pages, mut next) = (Vec::new(), 0, Some(path.to_owned()));
    while let Some(path) = next.take() {
        let response = client.get(&path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        if response.headers().contains_key(header::LINK) {
            next = Some(next_link(&response));
        }
        let page: Value = response.json().await.expect("JSON");
        assert_eq!(page["type"], "Collection");
        members.extend(
            page["member"]
                .as_array()
                .expect("members")
                .iter()
                .map(|m| m.as_str().expect("a string").to_owned()),
        );
        pages += 1;
    }
    (members, pages)
}

#[tokio::test]
async fn read_points_and_locations_list_what_events_named_a_page_at_a_time() {
    let (app, client) = suite().await;
    capture_plant(&client).await;
    let (read_points, pages) = every_member(&client, "/readPoints?perPage=1").await;
    assert_eq!(
        read_points,
        ["1", "2", "3"].map(|line| format!("urn:epc:id:sgln:4012345.00003.{line}"))
    );
    assert_eq!(pages, 3);
    let (locations, _) = every_member(&client, "/bizLocations").await;
    assert_eq!(locations, ["urn:epc:id:sgln:4012345.00003.0"]);
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn biz_steps_and_dispositions_list_the_standard_terms_and_the_custom_ones_used() {
    let (app, client) = suite().await;
    capture_plant(&client).await;
    let (steps, pages) = every_member(&client, "/bizSteps?perPage=7").await;
    assert!(pages > 1, "the CBV's steps take several pages of 7");
    assert!(steps.contains(&"inspecting".to_owned()), "{steps:?}");
    assert!(steps.contains(&"https://plant.example.com/bizstep/leak_testing".to_owned()));
    assert!(
        !steps.iter().any(|s| s.starts_with("urn:epcglobal")),
        "a standard step is listed once, by its bare name: {steps:?}"
    );
    let mut sorted = steps.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(steps, sorted, "in order, each once, across pages");
    let (dispositions, _) = every_member(&client, "/dispositions?perPage=1000").await;
    assert!(dispositions.contains(&"in_progress".to_owned()));
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn epcs_lists_objects_not_classes() {
    let (app, client) = suite().await;
    capture_plant(&client).await;
    let (epcs, _) = every_member(&client, "/epcs").await;
    assert_eq!(epcs.len(), 2, "two serialised units: {epcs:?}");
    assert!(
        epcs.iter().all(|epc| epc.contains("/21/")),
        "no lot class among them: {epcs:?}"
    );
    let events: Value = client
        .get(&format!(
            "/epcs/{}/events",
            tracery_e2e::urlencode(&epcs[0])
        ))
        .await
        .json()
        .await
        .expect("JSON");
    let found = events["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        .as_array()
        .expect("events")
        .len();
    assert_eq!(found, 2, "the listed EPC finds its events");
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn capture_jobs_are_listed_oldest_first() {
    let (app, client) = suite().await;
    capture_plant(&client).await;
    let second = document(vec![observed(9, "inspecting", 1, &[])]);
    assert_eq!(
        client.post("/capture", &second, &[]).await.status(),
        StatusCode::ACCEPTED
    );
    let first_page = client.get("/capture?perPage=1").await;
    let next = next_link(&first_page);
    let first: Value = first_page.json().await.expect("JSON");
    let rest: Value = client.get(&next).await.json().await.expect("JSON");
    assert_eq!(first.as_array().map(Vec::len), Some(1));
    assert_eq!(rest.as_array().map(Vec::len), Some(1));
    assert!(first[0]["captureID"].as_str() < rest[0]["captureID"].as_str());
    assert_eq!(first[0]["success"], true);
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn options_tells_the_methods_and_versions_of_a_path() {
    let (app, client) = suite().await;
    for (path, methods) in [
        ("/events", "OPTIONS, POST, GET"),
        ("/bizSteps", "OPTIONS, GET"),
        ("/queries/myQuery", "OPTIONS, GET, DELETE"),
    ] {
        let response = client.send(Method::OPTIONS, path, &[]).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{path}");
        let headers = response.headers();
        assert_eq!(headers[header::ALLOW], methods, "{path}");
        assert_eq!(headers["GS1-EPCIS-Min"], "2.0.0");
        assert_eq!(headers["GS1-EPCIS-Max"], "2.0.0");
        assert_eq!(headers["GS1-CBV-Version"], "2.0.0");
    }
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_client_needing_another_version_gets_406() {
    let (app, client) = suite().await;
    let accepted = client
        .send(Method::GET, "/events", &[("GS1-EPCIS-Min", "1.2.0")])
        .await;
    assert_eq!(accepted.status(), StatusCode::OK);
    let refused = client
        .send(Method::GET, "/events", &[("GS1-EPCIS-Min", "2.1.0")])
        .await;
    assert_eq!(refused.status(), StatusCode::NOT_ACCEPTABLE);
    let problem: Value = refused.json().await.expect("problem JSON");
    assert_eq!(problem["type"], "epcisException:NotAcceptableException");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("GS1-EPCIS-Min")),
        "{problem}"
    );
    let too_old = client
        .send(Method::GET, "/eventTypes", &[("GS1-CBV-Max", "1.2")])
        .await;
    assert_eq!(too_old.status(), StatusCode::NOT_ACCEPTABLE);
    // Listings answer in JSON only: a client taking XML only is told so, as is one
    // taking neither, and one posting that takes XML only (before anything is done).
    for (method, path, accept) in [
        (Method::GET, "/eventTypes", "application/xml"),
        (Method::GET, "/events", "text/html"),
        (Method::DELETE, "/queries/none", "application/xml"),
    ] {
        let refused = client
            .send(method.clone(), path, &[("Accept", accept)])
            .await;
        assert_eq!(
            refused.status(),
            StatusCode::NOT_ACCEPTABLE,
            "{method} {path} {accept}"
        );
    }
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn releasing_a_page_token_is_accepted_and_the_token_still_continues() {
    let (app, client) = suite().await;
    capture_plant(&client).await;
    let first = client.get("/readPoints?perPage=1").await;
    let next = next_link(&first);
    let token = next.split("nextPageToken=").nth(1).expect("a token");
    let released = client
        .send(Method::DELETE, &format!("/nextPageToken/{token}"), &[])
        .await;
    assert_eq!(released.status(), StatusCode::NO_CONTENT);
    assert_eq!(client.get(&next).await.status(), StatusCode::OK);
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_store_from_before_the_listings_lists_the_terms_its_events_use() {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let (app, client) = suite().await;
    capture_plant(&client).await;
    let db = Database::connect(app.database_url()).await.expect("db");
    for sql in [
        "DROP TABLE capture_vocabulary",
        "DELETE FROM capture_migrations WHERE version = 'm0021_capture_vocabulary'",
    ] {
        db.execute_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .expect("the layout before");
    }
    drop(db);
    let app = app.restart().await.expect("migrates");
    let client = Client::new(&app);
    let (read_points, _) = every_member(&client, "/readPoints").await;
    assert_eq!(read_points.len(), 3, "{read_points:?}");
    let (steps, _) = every_member(&client, "/bizSteps?perPage=1000").await;
    assert!(steps.contains(&"https://plant.example.com/bizstep/leak_testing".to_owned()));
    app.stop().await.expect("clean stop");
}

/// Event query answers come in the XML binding to a client that prefers it: the same
/// events, paged the same way (the `Link` to the next page kept).
#[tokio::test]
async fn event_queries_answer_in_xml_when_asked() {
    let (app, client) = suite().await;
    capture_plant(&client).await;
    let json: Value = client
        .get("/events?perPage=2")
        .await
        .json()
        .await
        .expect("JSON");
    let xml = client
        .send(
            Method::GET,
            "/events?perPage=2",
            &[("Accept", "application/json;q=0.5, application/xml")],
        )
        .await;
    assert_eq!(xml.status(), StatusCode::OK);
    assert!(
        xml.headers()[header::CONTENT_TYPE]
            .to_str()
            .is_ok_and(|t| t.starts_with("application/xml")),
        "{:?}",
        xml.headers()
    );
    assert!(
        xml.headers().contains_key(header::LINK),
        "the next page is linked"
    );
    let text = xml.text().await.expect("XML text");
    let read = tracery_epcis::xml::parse_document(&text).expect("the XML reads");
    let ids: Vec<String> = read
        .events
        .iter()
        .filter_map(|e| e.event_id.clone())
        .collect();
    assert_eq!(ids, crate::rest::event_ids(&json), "{text}");
    let one = client
        .send(
            Method::GET,
            &format!("/events/{}", tracery_e2e::urlencode(&ids[0])),
            &[("Accept", "application/xml")],
        )
        .await;
    assert_eq!(one.status(), StatusCode::OK);
    let one = tracery_epcis::xml::parse_document(&one.text().await.expect("XML")).expect("reads");
    assert_eq!(one.events.len(), 1);
    app.stop().await.expect("clean stop");
}
