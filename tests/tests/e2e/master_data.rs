//! EPCIS master data: captured from GS1's example documents (an EPCISMasterDataDocument,
//! header master data of an EPCISDocument), read back over REST and gRPC, and shown by
//! name where a trace shows the identifier.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tracery_e2e::{TestApp, shared_fixtures, urlencode};
use tracery_proto::v1 as pb;

use crate::rest::{Client, suite};

/// CBV 2.0 example 11.4: read points of a plant with their names (`ssd`).
const CBV_EXAMPLE: &str = "epcis/examples/xml/CBV/CBV-11.4-2020-06-16a.xml";
/// An EPCISDocument whose header carries master data with every kind of attribute value.
const HEADER_EXAMPLE: &str =
    "epcis/examples/xml/WithFullCombinationOfFields/masterdata_all_possible_fields.xml";
/// An EPCISMasterDataDocument with locations, sub-locations and read points.
const LOCATIONS_EXAMPLE: &str = "epcis/examples/xml/Mimasu/Example-masterData.xml";

const LINE_1: &str = "urn:epc:id:sgln:0614141.00300.1";
const LINE_1_NAME: &str = "Line #1 at Manufacturing Plant 1";

/// Captures the example document at `path` (under the shared fixtures) over REST.
async fn capture_example(client: &Client, shared: &std::path::Path, path: &str) {
    let xml = std::fs::read_to_string(shared.join(path)).expect("example readable");
    let accepted = client.post_text("/capture", "application/xml", &xml).await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED, "{path}");
}

async fn described(client: &Client, resource: &str, id: &str) -> Value {
    let response = client.get(&format!("/{resource}/{}", urlencode(id))).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("JSON")
}

fn attribute<'a>(described: &'a Value, id: &str) -> Option<&'a Value> {
    described["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["id"] == id)
        .map(|a| &a["attribute"])
}

#[tokio::test]
async fn master_data_from_the_gs1_examples_is_queryable() {
    let Some(shared) = shared_fixtures() else {
        return;
    };
    let (app, client) = suite().await;
    for example in [CBV_EXAMPLE, HEADER_EXAMPLE, LOCATIONS_EXAMPLE] {
        capture_example(&client, &shared, example).await;
    }
    let line = described(&client, "readPoints", LINE_1).await;
    assert_eq!(line["name"], LINE_1_NAME);
    assert_eq!(line["member"], json!(["events"]));
    // The same read point written as a Digital Link, as genealogy's traces spell it.
    let as_digital_link = tracery_epcis::effects::node_id(LINE_1);
    assert_ne!(as_digital_link, LINE_1);
    let same = described(&client, "readPoints", &as_digital_link).await;
    assert_eq!(same["name"], LINE_1_NAME, "{as_digital_link}");
    let site = described(&client, "bizLocations", "urn:epc:id:sgln:0037000.00729.0").await;
    assert_eq!(
        site["children"],
        json!([
            "urn:epc:id:sgln:0037000.00729.8201",
            "urn:epc:id:sgln:0037000.00729.8202",
            "urn:epc:id:sgln:0037000.00729.8203"
        ]),
        "the last capture of an element replaces the one before: {site}"
    );
    assert_eq!(
        attribute(&site, "http://epcis.example.com/mda/latitude"),
        Some(&json!("+18.0000")),
        "text without an xsi:type stays text"
    );
    let unknown = described(&client, "readPoints", "urn:epc:id:sgln:0614141.00300.9").await;
    assert!(unknown.get("attributes").is_none(), "{unknown}");

    let found = app
        .capture
        .clone()
        .lookup_master_data(pb::LookupMasterDataRequest {
            ids: vec![
                LINE_1.to_owned(),
                "urn:epc:id:sgln:0037000.00729.8203".to_owned(),
            ],
            vocabulary_type: String::new(),
        })
        .await
        .expect("lookup")
        .into_inner();
    let mut seen: Vec<(String, String, String)> = found
        .elements
        .iter()
        .map(|e| (e.id.clone(), e.vocabulary_type.clone(), e.name.clone()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "urn:epc:id:sgln:0037000.00729.8203".to_owned(),
                "urn:epcglobal:epcis:vtype:BusinessLocation".to_owned(),
                String::new()
            ),
            (
                "urn:epc:id:sgln:0037000.00729.8203".to_owned(),
                "urn:epcglobal:epcis:vtype:ReadPoint".to_owned(),
                String::new()
            ),
            (
                LINE_1.to_owned(),
                "urn:epcglobal:epcis:vtype:ReadPoint".to_owned(),
                LINE_1_NAME.to_owned()
            ),
        ]
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn header_master_data_keeps_structured_attribute_values() {
    let Some(shared) = shared_fixtures() else {
        return;
    };
    let (app, client) = suite().await;
    capture_example(&client, &shared, HEADER_EXAMPLE).await;
    let point = described(&client, "readPoints", "urn:epc:id:sgln:0037000.00729.0").await;
    let object = attribute(&point, "http://example.com/ext1#object2").expect("object value");
    assert_eq!(object["ext1:int"], 10);
    assert_eq!(
        object["ext1:object"]["ext2:object"]["ext3:string"],
        "stringInObjectInObject"
    );
    let repeated: Vec<&Value> = point["attributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .filter(|a| a["id"] == "http://example.com/ext1#array")
        .collect();
    assert_eq!(repeated.len(), 2, "a repeated attribute keeps each value");
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn malformed_master_data_is_refused_naming_the_field() {
    let (app, client) = suite().await;
    let document = json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISMasterDataDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-26T10:00:00Z",
        "epcisBody": {"vocabularyList": [{
            "type": "urn:epcglobal:epcis:vtype:ReadPoint",
            "vocabularyElementList": [{"attributes": [{"id": "urn:epcglobal:cbv:mda:ssd"}]}]
        }]}
    });
    let refused = client.post("/capture", &document, &[]).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let problem: Value = refused.json().await.expect("problem JSON");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("vocabularyElementList[0].id")),
        "{problem}"
    );
    app.stop().await.expect("clean stop");
}

/// Captures `unit` inspected at line 1 (over gRPC).
async fn inspect_on_line_1(app: &TestApp, unit: &str) {
    let inspected = json!({
        "type": "ObjectEvent", "eventTime": "2026-11-26T08:01:00Z",
        "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "bizStep": "inspecting",
        "readPoint": {"id": LINE_1}, "epcList": [unit],
    });
    let event = tracery_epcis::json::parse_event(inspected).expect("a valid event");
    let results = app
        .capture_events(vec![tracery_epcis::proto::event_to_proto(&event)])
        .await;
    assert_eq!(results[0].outcome, pb::CaptureOutcome::Accepted as i32);
}

/// The dashboard's lookup of `unit` once genealogy has its history.
async fn looked_up(app: &TestApp, unit: &str) -> Value {
    let url = format!(
        "http://{}/dashboard/api/lookup?id={}",
        app.http_addr,
        urlencode(unit)
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let found: Value = reqwest::get(&url)
            .await
            .expect("answer")
            .json()
            .await
            .expect("JSON");
        if found["history"].as_array().is_some_and(|h| !h.is_empty()) {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "genealogy never followed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_trace_shows_read_points_by_name() {
    let Some(shared) = shared_fixtures() else {
        return;
    };
    let (app, client) = suite().await;
    capture_example(&client, &shared, CBV_EXAMPLE).await;
    let unit = "urn:epc:id:sgtin:0614141.107346.2018";
    inspect_on_line_1(&app, unit).await;
    let found = looked_up(&app, unit).await;
    assert_eq!(found["history"][0]["readPoint"], LINE_1);
    assert_eq!(found["history"][0]["readPointName"], LINE_1_NAME, "{found}");
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_trace_names_products_by_what_the_erp_sync_knows() {
    let sites = tracery_e2e::erp_sites::ErpSites::start(false).await;
    let app = TestApp::spawn_with(|config| config.connectors = sites.connectors())
        .await
        .expect("suite starts");
    let synced = crate::integration::sync(&app, "").await;
    assert_eq!(synced.state, pb::SyncRunState::Succeeded as i32);
    // GTIN 04012345111118 is ERPNext's SHAFT-20.
    let shaft = "urn:epc:id:sgtin:4012345.011111.7";
    inspect_on_line_1(&app, shaft).await;
    let found = looked_up(&app, shaft).await;
    assert_eq!(found["name"], "Item SHAFT-20", "{found}");
    // The recall export of the lot the shaft was made from names each item by its
    // product, beside the identifier.
    let made = json!({
        "type": "TransformationEvent", "eventTime": "2026-11-26T08:02:00Z",
        "eventTimeZoneOffset": "+00:00", "bizStep": "commissioning",
        "inputQuantityList": [{"epcClass": "urn:epc:class:lgtin:4012345.011111.LOT-7", "quantity": 1}],
        "outputEPCList": [shaft],
    });
    let event = tracery_epcis::json::parse_event(made).expect("a valid event");
    let results = app
        .capture_events(vec![tracery_epcis::proto::event_to_proto(&event)])
        .await;
    app.await_genealogy(results[0].sequence).await;
    let url = format!(
        "http://{}/dashboard/api/recall.csv?id={}",
        app.http_addr,
        urlencode("urn:epc:class:lgtin:4012345.011111.LOT-7")
    );
    let csv = reqwest::get(&url)
        .await
        .expect("answer")
        .text()
        .await
        .expect("CSV");
    let mut rows = csv.lines();
    assert_eq!(rows.next().and_then(|h| h.split(',').nth(1)), Some("name"));
    assert!(
        rows.any(|row| row.split(',').nth(1) == Some("Item SHAFT-20")),
        "{csv}"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn master_data_stored_before_canonical_keys_is_rekeyed() {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let (app, _) = suite().await;
    let db = Database::connect(app.database_url()).await.expect("db");
    let backend = db.get_database_backend();
    let insert = match backend {
        sea_orm::DbBackend::Postgres => {
            "INSERT INTO capture_master_data VALUES ($1, $2, '[]', '[]', $3, now())"
        }
        _ => "INSERT INTO capture_master_data VALUES (?, ?, '[]', '[]', ?, datetime('now'))",
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        insert,
        [
            "urn:epcglobal:epcis:vtype:ReadPoint".into(),
            LINE_1.into(),
            LINE_1_NAME.into(),
        ],
    ))
    .await
    .expect("a row of the layout before");
    db.execute_raw(Statement::from_string(
        backend,
        "DELETE FROM capture_migrations WHERE version = 'm0023_capture_master_data_canonical_ids'",
    ))
    .await
    .expect("as before");
    drop(db);
    let app = app.restart().await.expect("migrates");
    let client = Client::new(&app);
    let as_digital_link = tracery_epcis::effects::node_id(LINE_1);
    for spelling in [LINE_1, as_digital_link.as_str()] {
        let line = described(&client, "readPoints", spelling).await;
        assert_eq!(line["name"], LINE_1_NAME, "{spelling}");
    }
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn within_one_document_the_last_capture_of_an_element_wins() {
    let (app, client) = suite().await;
    let element = |name: &str| json!({"id": LINE_1, "attributes": [{"id": "urn:epcglobal:cbv:mda#name", "attribute": name}]});
    let document = json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISMasterDataDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-26T10:00:00Z",
        "epcisBody": {"vocabularyList": [{
            "type": "urn:epcglobal:epcis:vtype:ReadPoint",
            "vocabularyElementList": [element("Filler, old name"), element("Filler 3")]
        }]}
    });
    let accepted = client.post("/capture", &document, &[]).await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let line = described(&client, "readPoints", LINE_1).await;
    assert_eq!(line["name"], "Filler 3");
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn put_master_data_refuses_a_bad_element_by_its_field() {
    let app = TestApp::spawn().await.expect("suite starts");
    let element = |id: &str, value_json: String| pb::VocabularyElement {
        vocabulary_type: "urn:epcglobal:epcis:vtype:BusinessLocation".to_owned(),
        id: id.to_owned(),
        attributes: vec![pb::MasterDataAttribute {
            id: "urn:epcglobal:cbv:mda#name".to_owned(),
            value_json,
        }],
        ..Default::default()
    };
    let put = |elements: Vec<pb::VocabularyElement>| {
        let mut capture = app.capture.clone();
        async move {
            capture
                .put_master_data(pb::PutMasterDataRequest { elements })
                .await
        }
    };
    let good = element("urn:epc:id:sgln:4012345.00001.0", "\"Dock 1\"".to_owned());
    for (elements, field) in [
        (
            vec![
                good.clone(),
                element("urn:epc:id:sgln:4012345.00001.1", "[".repeat(100_000)),
            ],
            "elements[1].attributes[0].value_json",
        ),
        (
            vec![good.clone(), element(" ", "1".to_owned())],
            "elements[1].id",
        ),
        (vec![good.clone(); 1_001], "elements"),
    ] {
        let refused = put(elements).await.expect_err("refused");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(
            refused.message().starts_with(field),
            "{field}: {}",
            refused.message()
        );
    }
    let stored = put(vec![good]).await.expect("stored").into_inner();
    assert_eq!(stored.stored, 1);
    app.stop().await.expect("clean stop");
}
