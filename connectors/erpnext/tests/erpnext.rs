//! The ERPNext connector against a wiremock site answering like Frappe's REST v1.

use std::time::Duration;

use serde_json::{Value, json};
use tracery_connector::{
    Connector, ConnectorError, Cursor, ErpLocation, LocationRole, OrderStatus, Record, RecordKind,
    testing::{http, scan, secret_file},
};
use tracery_connector_erpnext::{ErpNext, Settings};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_json, header, method, path, query_param, query_param_contains},
};

fn token_settings(server: &MockServer, page_size: u32) -> Settings {
    Settings {
        base_url: server.uri(),
        api_key: Some(secret_file("erpnext-key", "k3y")),
        api_secret: Some(secret_file("erpnext-secret", "s3cret")),
        user: None,
        password: None,
        page_size,
        time_zone: None,
        utc_offset: Some("+01:00".to_owned()),
        gtin_field: Some("custom_gtin".to_owned()),
        reference_field: "custom_mes_event_id".to_owned(),
        wip_warehouse: None,
        fg_warehouse: None,
    }
}

fn item(code: &str, modified: &str) -> Value {
    json!({"name": code, "item_code": code, "item_name": format!("Item {code}"),
           "stock_uom": "Nos", "custom_gtin": "04012345111118", "modified": modified,
           "has_batch_no": 1, "disabled": 0})
}

#[tokio::test]
async fn items_are_paged_until_a_short_page_and_then_fetched_incrementally() {
    let server = MockServer::start().await;
    let list = || {
        Mock::given(method("GET"))
            .and(path("/api/resource/Item"))
            .and(header("authorization", "token k3y:s3cret"))
            .and(query_param("limit_page_length", "2"))
            .and(query_param("order_by", "modified asc, name asc"))
    };
    list()
        .and(query_param("limit_start", "0"))
        .and(query_param("filters", "[]"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            item("SHAFT-20", "2025-03-01 08:00:00.000000"),
            item("HOUSING-A", "2025-03-02 09:30:00.000000")]})))
        .expect(1)
        .mount(&server)
        .await;
    list()
        .and(query_param("limit_start", "2"))
        .and(query_param("filters", "[]"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            item("SCREW-M6", "2025-03-04 14:05:12.418230")]})))
        .expect(1)
        .mount(&server)
        .await;
    // The second run asks only for what changed since the first one's high-water mark.
    list()
        .and(query_param("limit_start", "0"))
        .and(query_param_contains(
            "filters",
            r#"["modified",">=","2025-03-04 14:05:12.418230"]"#,
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            item("SCREW-M6", "2025-03-04 14:05:12.418230"),
            item("PUMP-100", "2025-03-05 10:00:00.000000")]})))
        .expect(1)
        .mount(&server)
        .await;
    list()
        .and(query_param("limit_start", "2"))
        .and(query_param_contains(
            "filters",
            "2025-03-04 14:05:12.418230",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .expect(1)
        .mount(&server)
        .await;

    let connector = ErpNext::new(token_settings(&server, 2), http()).expect("connector");
    let (first, since, pages) = scan(&connector, RecordKind::Materials, None).await;
    assert_eq!(pages, 2);
    let codes: Vec<String> = first
        .iter()
        .map(|r| r.as_ref().expect("valid").key())
        .collect();
    assert_eq!(codes, ["SHAFT-20", "HOUSING-A", "SCREW-M6"]);
    match &first[0] {
        Ok(Record::Material(m)) => {
            assert_eq!(m.gtin.as_deref(), Some("04012345111118"));
            assert_eq!(m.unit, "Nos");
        }
        other => panic!("not a material: {other:?}"),
    }
    assert_eq!(since.as_deref(), Some("2025-03-04 14:05:12.418230"));
    let (second, since, _) = scan(&connector, RecordKind::Materials, since).await;
    let codes: Vec<String> = second
        .iter()
        .map(|r| r.as_ref().expect("valid").key())
        .collect();
    assert_eq!(codes, ["SCREW-M6", "PUMP-100"]);
    assert_eq!(since.as_deref(), Some("2025-03-05 10:00:00.000000"));
}

fn work_order(name: &str, production_item: Option<&str>) -> Value {
    json!({"name": name, "doctype": "Work Order", "docstatus": 1, "status": "In Process",
           "production_item": production_item, "item_name": "Pump 100 l/min",
           "bom_no": "BOM-PUMP-100-003", "qty": 50.0, "stock_uom": "Nos", "produced_qty": 10.0,
           "company": "Acme Corp", "wip_warehouse": "WIP - AC",
           "planned_start_date": "2025-03-03 07:00:00", "planned_end_date": null,
           "actual_start_date": "", "modified": "2025-03-04 14:05:12.418230"})
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_and_a_malformed_order_is_reported_alone() {
    let server = MockServer::start().await;
    let orders = || Mock::given(method("GET")).and(path("/api/resource/Work%20Order"));
    // 429 with Retry-After, then a 500, then the page.
    orders()
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1").set_body_json(
            json!({"exc_type": "TooManyRequestsError", "exception": "frappe.exceptions.TooManyRequestsError"}),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    orders()
        .respond_with(ResponseTemplate::new(500).set_body_string("Internal Server Error"))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    orders()
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            work_order("MFG-WO-2025-00012", Some("PUMP-100")),
            work_order("MFG-WO-2025-00013", None),
            work_order("MFG-WO-2025-00014", Some("PUMP-100"))]})))
        .with_priority(3)
        .mount(&server)
        .await;

    let connector = ErpNext::new(token_settings(&server, 100), http()).expect("connector");
    let started = std::time::Instant::now();
    let page = connector
        .fetch(RecordKind::Orders, &Cursor::default())
        .await
        .expect("the page arrives after the retries");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(server.received_requests().await.map_or(0, |r| r.len()), 3);
    assert_eq!(page.next, None, "a short page is the last");
    let [first, bad, third] = page.records.as_slice() else {
        panic!("three records: {:?}", page.records);
    };
    match first {
        Ok(Record::Order(order)) => {
            assert_eq!(order.number, "MFG-WO-2025-00012");
            assert_eq!(order.status, OrderStatus::InProgress);
            assert_eq!(order.quantity.to_string(), "50");
            assert_eq!(order.bom_revision.as_deref(), Some("BOM-PUMP-100-003"));
            assert_eq!(
                order.locations,
                [ErpLocation {
                    code: "WIP - AC".to_owned(),
                    role: LocationRole::WorkInProgress
                }]
            );
            // 07:00 at the site's +01:00.
            assert_eq!(
                order.planned_start.map(|t| t.to_rfc3339()),
                Some("2025-03-03T06:00:00+00:00".to_owned())
            );
            assert_eq!(order.actual_start, None);
        }
        other => panic!("not an order: {other:?}"),
    }
    let bad = bad.as_ref().expect_err("missing production_item");
    assert_eq!(
        (bad.key.as_str(), bad.field.as_str()),
        ("MFG-WO-2025-00013", "production_item")
    );
    assert!(third.is_ok());
}

#[tokio::test]
async fn boms_are_read_whole_with_lines_per_unit() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/resource/BOM"))
        .and(query_param_contains("filters", r#"["docstatus","=",1]"#))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"name": "BOM-PUMP-100-003", "modified": "2025-02-20 09:12:44.102931"}]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/resource/BOM/BOM-PUMP-100-003"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "name": "BOM-PUMP-100-003", "doctype": "BOM", "docstatus": 1,
            "item": "PUMP-100", "item_name": "Pump 100 l/min", "quantity": 2.0, "uom": "Nos",
            "is_active": 1, "is_default": 1, "modified": "2025-02-20 09:12:44.102931",
            "items": [
                {"idx": 1, "item_code": "SHAFT-20", "qty": 2.0, "uom": "Nos", "stock_qty": 2.0,
                 "stock_uom": "Nos", "conversion_factor": 1.0, "bom_no": ""},
                {"idx": 2, "item_code": "SCREW-M6", "qty": 16.0, "uom": "Nos", "stock_qty": 16.0,
                 "stock_uom": "Nos", "conversion_factor": 1.0, "bom_no": ""}]}})))
        .mount(&server)
        .await;
    let connector = ErpNext::new(token_settings(&server, 100), http()).expect("connector");
    let page = connector
        .fetch(RecordKind::Boms, &Cursor::default())
        .await
        .expect("page");
    match page.records.as_slice() {
        [Ok(Record::Bom(bom))] => {
            assert_eq!(
                (bom.material.as_str(), bom.revision.as_str()),
                ("PUMP-100", "BOM-PUMP-100-003")
            );
            let lines: Vec<(String, String)> = bom
                .lines
                .iter()
                .map(|l| (l.component.clone(), l.quantity_per.to_string()))
                .collect();
            assert_eq!(
                lines,
                [
                    ("SHAFT-20".into(), "1".into()),
                    ("SCREW-M6".into(), "8".into())
                ]
            );
        }
        other => panic!("one BOM expected: {other:?}"),
    }
    assert_eq!(
        page.high_water.as_deref(),
        Some("2025-02-20 09:12:44.102931")
    );
}

#[tokio::test]
async fn an_expired_session_is_opened_again_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/method/login"))
        .and(body_json(json!({"usr": "integration@acme", "pwd": "pw"})))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("set-cookie", "sid=abc; Path=/")
                .set_body_json(json!({"message": "Logged In"})),
        )
        .expect(2)
        .mount(&server)
        .await;
    // The session has expired by the first list: Frappe answers as to a guest.
    Mock::given(method("GET"))
        .and(path("/api/resource/Item"))
        .respond_with(ResponseTemplate::new(403).set_body_json(
            json!({"exc_type": "PermissionError", "_server_messages": "[\"{\\\"message\\\": \\\"Not permitted\\\"}\"]"}),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/resource/Item"))
        .and(header("cookie", "sid=abc"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": [item("SHAFT-20", "2025-03-01 08:00:00")]})),
        )
        .with_priority(2)
        .mount(&server)
        .await;
    let settings = Settings {
        api_key: None,
        api_secret: None,
        user: Some("integration@acme".to_owned()),
        password: Some(secret_file("erpnext-password", "pw")),
        ..token_settings(&server, 100)
    };
    let connector = ErpNext::new(settings, http()).expect("connector");
    let page = connector
        .fetch(RecordKind::Materials, &Cursor::default())
        .await
        .expect("page");
    assert_eq!(page.records.len(), 1);
}

#[tokio::test]
async fn refused_credentials_are_an_auth_error_naming_the_reason() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"exc_type": "AuthenticationError", "exception": "frappe.exceptions.AuthenticationError: Invalid token"}),
        ))
        .mount(&server)
        .await;
    let connector = ErpNext::new(token_settings(&server, 100), http()).expect("connector");
    match connector
        .fetch(RecordKind::Materials, &Cursor::default())
        .await
    {
        Err(ConnectorError::Auth(message)) => {
            assert!(message.contains("Invalid token"), "{message}")
        }
        other => panic!("expected an auth error: {other:?}"),
    }
}

fn berlin_settings(server: &MockServer) -> Settings {
    Settings {
        time_zone: Some("Europe/Berlin".to_owned()),
        utc_offset: None,
        ..token_settings(server, 100)
    }
}

fn planned_at(name: &str, planned_start: &str) -> Value {
    let mut order = work_order(name, Some("PUMP-100"));
    order["planned_start_date"] = json!(planned_start);
    order
}

/// Frappe's naive site times read in the site's IANA zone: 07:00 in Berlin is 06:00 UTC
/// before the spring change (CET) and 05:00 UTC after it (CEST), where a fixed offset
/// would be an hour off for half the year.
#[tokio::test]
async fn order_times_follow_the_site_zone_across_a_daylight_saving_change() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/resource/Work%20Order"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            planned_at("WO-BEFORE", "2026-03-28 07:00:00"),
            planned_at("WO-AFTER", "2026-03-30 07:00:00")]})))
        .mount(&server)
        .await;
    let connector = ErpNext::new(berlin_settings(&server), http()).expect("connector");
    let page = connector
        .fetch(RecordKind::Orders, &Cursor::default())
        .await
        .expect("page");
    let starts: Vec<Option<String>> = page
        .records
        .iter()
        .map(|record| match record {
            Ok(Record::Order(order)) => order.planned_start.map(|t| t.to_rfc3339()),
            other => panic!("not an order: {other:?}"),
        })
        .collect();
    assert_eq!(
        starts,
        [
            Some("2026-03-28T06:00:00+00:00".to_owned()),
            Some("2026-03-30T05:00:00+00:00".to_owned())
        ]
    );
}

/// A stock entry's posting time is the site clock's at the event: 06:00 UTC is 08:00 in
/// Berlin before the autumn change and 07:00 after it.
#[tokio::test]
async fn stock_entries_are_posted_in_site_time_across_a_daylight_saving_change() {
    use tracery_connector::{PostBack as _, ProductionReport};
    let server = MockServer::start().await;
    for (day, clock) in [("2026-10-24", "08:00:00"), ("2026-10-26", "07:00:00")] {
        Mock::given(method("POST"))
            .and(path("/api/resource/Stock%20Entry"))
            .and(wiremock::matchers::body_partial_json(
                json!({"posting_date": day, "posting_time": clock}),
            ))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"data": {"name": format!("MAT-STE-{day}")}})),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    let connector = ErpNext::new(berlin_settings(&server), http()).expect("connector");
    for (day, made_at) in [
        ("2026-10-24", "2026-10-24T06:00:00Z"),
        ("2026-10-26", "2026-10-26T06:00:00Z"),
    ] {
        let report = ProductionReport {
            reference: format!("ref-{day}"),
            order: "MFG-WO-2026-00001".to_owned(),
            material: "PUMP-100".to_owned(),
            quantity: 1.into(),
            unit: "Nos".to_owned(),
            lot: None,
            plant: None,
            made_at: made_at.parse().expect("time"),
            consumed: Vec::new(),
        };
        let posted = connector.post(&report).await.expect("posted");
        assert_eq!(posted, format!("MAT-STE-{day}"));
    }
}
