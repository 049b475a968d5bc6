//! The SAP S/4HANA connector against a wiremock tenant answering like the OData v2 APIs.

use std::time::Duration;

use serde_json::{Value, json};
use tracery_connector::{
    Connector, Cursor, LocationRole, OrderStatus, Record, RecordKind,
    testing::{http, scan, secret_file},
};
use tracery_connector_sap_s4::{ChangeTime, SapS4, Settings};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_json, header, method, path, query_param, query_param_contains},
};

const ORDERS: &str = "/sap/opu/odata/sap/API_PRODUCTION_ORDER_2_SRV/A_ProductionOrder_2";

fn basic(server: &MockServer, page_size: u32) -> Settings {
    Settings {
        base_url: server.uri(),
        user: Some("COMM_USER".to_owned()),
        password: Some(secret_file("sap-password", "Welcome1")),
        token_url: None,
        client_id: None,
        client_secret: None,
        sap_client: None,
        plant: Some("1010".to_owned()),
        page_size,
        change_time: ChangeTime::Text,
        order_service: "API_PRODUCTION_ORDER_2_SRV".to_owned(),
        bom_service: "API_BILL_OF_MATERIAL_SRV;v=0002".to_owned(),
        product_service: "API_PRODUCT_SRV".to_owned(),
        confirmation_service: "API_PROD_ORDER_CONFIRMATION_2_SRV".to_owned(),
        confirmation_operation: "0010".to_owned(),
        storage_location: None,
    }
}

fn order(number: &str, quantity: &str, changed: &str) -> Value {
    json!({
        "__metadata": {"id": format!("{ORDERS}('{number}')"), "type": "API_PRODUCTION_ORDER_2_SRV.A_ProductionOrder_2Type"},
        "ManufacturingOrder": number, "ManufacturingOrderType": "YBM1",
        "ManufacturingOrderCategory": "10", "Material": "PUMP-100",
        "ProductionPlant": "1010", "Plant": "1010", "ProductionVersion": "0001",
        "StorageLocation": "FG01",
        "TotalQuantity": quantity, "MfgOrderPlannedScrapQty": "0.000",
        "MfgOrderConfirmedYieldQty": "10.000", "ProductionUnit": "PC",
        "MfgOrderPlannedStartDate": "/Date(1740960000000)/",
        "MfgOrderPlannedEndDate": "/Date(1741305600000)/",
        "OrderIsReleased": "X", "OrderIsPartiallyConfirmed": "X", "OrderIsConfirmed": "",
        "OrderIsTechnicallyCompleted": "", "OrderIsClosed": "",
        "LastChangeDateTime": changed,
        "to_ProductionOrderComponentExt4": {"__deferred": {"uri": format!("{ORDERS}('{number}')/to_ProductionOrderComponentExt4")}}
    })
}

fn collection(rows: Vec<Value>, next: Option<String>) -> Value {
    let mut d = json!({"results": rows});
    if let Some(next) = next {
        d["__next"] = json!(next);
    }
    json!({"d": d})
}

#[tokio::test]
async fn orders_follow_skip_and_next_links_and_are_fetched_incrementally() {
    let server = MockServer::start().await;
    let skiptoken = format!("{}{ORDERS}?$skiptoken=3", server.uri());
    // Page 1 is full ($top=2), page 2 is capped by the server with a __next link.
    Mock::given(method("GET"))
        .and(path(ORDERS))
        .and(header("authorization", "Basic Q09NTV9VU0VSOldlbGNvbWUx"))
        .and(header("accept", "application/json"))
        .and(query_param("$skip", "0"))
        .and(query_param("$top", "2"))
        .and(query_param("$filter", "ProductionPlant eq '1010'"))
        .respond_with(ResponseTemplate::new(200).set_body_json(collection(
            vec![
                order("1000121", "10.000", "20250301080000"),
                order("1000122", "20.000", "20250302080000"),
            ],
            None,
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(ORDERS))
        .and(query_param("$skip", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(collection(
            vec![order("1000123", "50.000", "20250304130512")],
            Some(skiptoken.clone()),
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(ORDERS))
        .and(query_param("$skiptoken", "3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(collection(
            vec![order("1000124", "5.000", "20250304140000")],
            None,
        )))
        .expect(1)
        .mount(&server)
        .await;
    // The second run filters on the first run's latest change.
    Mock::given(method("GET"))
        .and(path(ORDERS))
        .and(query_param(
            "$filter",
            "ProductionPlant eq '1010' and LastChangeDateTime ge '20250304140000'",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(collection(
            vec![order("1000124", "6.000", "20250305090000")],
            None,
        )))
        .expect(1)
        .mount(&server)
        .await;

    let connector = SapS4::new(basic(&server, 2), http()).expect("connector");
    let (first, since, pages) = scan(&connector, RecordKind::Orders, None).await;
    assert_eq!(pages, 3);
    let numbers: Vec<String> = first
        .iter()
        .map(|r| r.as_ref().expect("valid").key())
        .collect();
    assert_eq!(numbers, ["1000121", "1000122", "1000123", "1000124"]);
    match &first[2] {
        Ok(Record::Order(order)) => {
            assert_eq!(order.quantity.to_string(), "50");
            assert_eq!(order.unit, "PC");
            assert_eq!(order.status, OrderStatus::InProgress);
            assert_eq!(order.plant.as_deref(), Some("1010"));
            let locations: Vec<(&str, LocationRole)> = order
                .locations
                .iter()
                .map(|l| (l.code.as_str(), l.role))
                .collect();
            assert_eq!(
                locations,
                [
                    ("1010", LocationRole::Plant),
                    ("1010/FG01", LocationRole::FinishedGoods)
                ]
            );
            assert_eq!(
                order.planned_start.map(|t| t.to_rfc3339()).as_deref(),
                Some("2025-03-03T00:00:00+00:00")
            );
        }
        other => panic!("not an order: {other:?}"),
    }
    assert_eq!(since.as_deref(), Some("20250304140000"));
    let (second, since, _) = scan(&connector, RecordKind::Orders, since).await;
    assert_eq!(second.len(), 1);
    assert_eq!(since.as_deref(), Some("20250305090000"));
}

#[tokio::test]
async fn throttling_server_errors_and_an_expired_oauth_token_are_absorbed() {
    let server = MockServer::start().await;
    let token = |value: &str| {
        ResponseTemplate::new(200).set_body_json(
            json!({"access_token": value, "token_type": "Bearer", "expires_in": 3600}),
        )
    };
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(token("first"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(token("second"))
        .with_priority(2)
        .mount(&server)
        .await;
    // The first token has expired by the time it is used.
    Mock::given(method("GET"))
        .and(path(ORDERS))
        .and(header("authorization", "Bearer first"))
        .respond_with(ResponseTemplate::new(401).set_body_string("token expired"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(ORDERS))
        .and(header("authorization", "Bearer second"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1").set_body_json(json!({"error": {"code": "429", "message": {"lang": "en", "value": "Rate limit exceeded"}}})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(ORDERS))
        .and(header("authorization", "Bearer second"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": {"code": "/IWBEP/CM_MGW_RT/000", "message": {"lang": "en", "value": "In the context of Data Services an unknown internal server error occurred"}}})))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(ORDERS))
        .and(header("authorization", "Bearer second"))
        .respond_with(ResponseTemplate::new(200).set_body_json(collection(
            vec![
                order("1000123", "50.000", "20250304130512"),
                order("1000125", "fifty", "20250304130600"),
            ],
            None,
        )))
        .with_priority(3)
        .mount(&server)
        .await;
    let settings = Settings {
        user: None,
        password: None,
        token_url: Some(format!("{}/oauth/token", server.uri())),
        client_id: Some("tracery".to_owned()),
        client_secret: Some(secret_file("sap-client-secret", "client-secret")),
        ..basic(&server, 100)
    };
    let connector = SapS4::new(settings, http()).expect("connector");
    let started = std::time::Instant::now();
    let page = connector
        .fetch(RecordKind::Orders, &Cursor::default())
        .await
        .expect("page");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    let [good, bad] = page.records.as_slice() else {
        panic!("two records: {:?}", page.records);
    };
    assert!(good.is_ok());
    let bad = bad.as_ref().expect_err("quantity is not a number");
    assert_eq!(
        (bad.key.as_str(), bad.field.as_str()),
        ("1000125", "TotalQuantity")
    );
}

#[tokio::test]
async fn boms_are_read_with_their_items_per_base_quantity() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/sap/opu/odata/sap/API_BILL_OF_MATERIAL_SRV;v=0002/MaterialBOM"))
        .and(query_param("$expand", "to_BillOfMaterialItem"))
        .and(query_param_contains("$filter", "BillOfMaterialVariantUsage eq '1'"))
        .respond_with(ResponseTemplate::new(200).set_body_json(collection(vec![json!({
            "BillOfMaterial": "00000412", "BillOfMaterialCategory": "M", "BillOfMaterialVariant": "1",
            "BillOfMaterialVersion": "", "EngineeringChangeDocument": "500000000123",
            "Material": "PUMP-100", "Plant": "1010", "BillOfMaterialVariantUsage": "1",
            "BOMHeaderBaseUnit": "PC", "BOMHeaderQuantityInBaseUnit": "10.000",
            "HeaderValidityStartDate": "/Date(1735689600000)/", "HeaderValidityEndDate": "/Date(253402214400000)/",
            "LastChangeDateTime": "20250220081244",
            "to_BillOfMaterialItem": {"results": [
                {"BillOfMaterial": "00000412", "BillOfMaterialItemNumber": "0010",
                 "BillOfMaterialComponent": "SHAFT-20", "BillOfMaterialItemQuantity": "10.000",
                 "BillOfMaterialItemUnit": "PC", "ComponentScrapInPercent": "0.00", "IsDeleted": false},
                {"BillOfMaterial": "00000412", "BillOfMaterialItemNumber": "0030",
                 "BillOfMaterialComponent": "SCREW-M6", "BillOfMaterialItemQuantity": "80.000",
                 "BillOfMaterialItemUnit": "PC", "ComponentScrapInPercent": "2.00", "IsDeleted": false},
                {"BillOfMaterial": "00000412", "BillOfMaterialItemNumber": "0040",
                 "BillOfMaterialComponent": "OLD-SEAL", "BillOfMaterialItemQuantity": "10.000",
                 "BillOfMaterialItemUnit": "PC", "ComponentScrapInPercent": "0.00", "IsDeleted": true}
            ]}
        })], None)))
        .mount(&server)
        .await;
    let connector = SapS4::new(basic(&server, 100), http()).expect("connector");
    let page = connector
        .fetch(RecordKind::Boms, &Cursor::default())
        .await
        .expect("page");
    match page.records.as_slice() {
        [Ok(Record::Bom(bom))] => {
            assert_eq!(
                (bom.material.as_str(), bom.revision.as_str()),
                ("PUMP-100", "500000000123")
            );
            assert_eq!(bom.valid_to, None, "9999-12-31 is open-ended");
            let lines: Vec<(&str, String, String)> = bom
                .lines
                .iter()
                .map(|l| {
                    (
                        l.component.as_str(),
                        l.quantity_per.to_string(),
                        l.scrap_percent.to_string(),
                    )
                })
                .collect();
            assert_eq!(
                lines,
                [
                    ("SHAFT-20", "1".into(), "0".into()),
                    ("SCREW-M6", "8".into(), "2".into())
                ]
            );
        }
        other => panic!("one BOM expected: {other:?}"),
    }
}

#[tokio::test]
async fn writes_carry_a_csrf_token_with_its_session_and_fetch_a_new_one_when_refused() {
    let server = MockServer::start().await;
    let root = "/sap/opu/odata/sap/API_PROD_ORDER_CONFIRMATION_2_SRV/";
    let fetch = |token: &str, session: &str| {
        ResponseTemplate::new(200)
            .insert_header("x-csrf-token", token)
            .insert_header(
                "set-cookie",
                format!("SAP_SESSIONID_ABC_100={session}; path=/"),
            )
    };
    Mock::given(method("GET"))
        .and(path(root))
        .and(header("x-csrf-token", "Fetch"))
        .respond_with(fetch("stale-token", "s1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(root))
        .and(header("x-csrf-token", "Fetch"))
        .respond_with(fetch("fresh-token", "s2"))
        .with_priority(2)
        .mount(&server)
        .await;
    let confirmation = json!({"OrderID": "1000123", "Sequence": "0", "OrderOperation": "0020",
        "ConfirmationYieldQuantity": "10", "ConfirmationUnit": "PC", "ConfirmationText": "MES lot PUMP-250304-01"});
    Mock::given(method("POST"))
        .and(path(format!("{root}ProdnOrdConf2")))
        .and(header("x-csrf-token", "stale-token"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-csrf-token", "Required")
                .set_body_string("CSRF token validation failed"),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{root}ProdnOrdConf2")))
        .and(header("x-csrf-token", "fresh-token"))
        .and(header("cookie", "SAP_SESSIONID_ABC_100=s2"))
        .and(body_json(confirmation.clone()))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(
                json!({"d": {"ConfirmationGroup": "12345", "ConfirmationCount": "1"}}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let connector = SapS4::new(basic(&server, 100), http()).expect("connector");
    let created = connector
        .post(
            "API_PROD_ORDER_CONFIRMATION_2_SRV",
            "/ProdnOrdConf2",
            &confirmation,
        )
        .await
        .expect("posted after one token refresh");
    assert_eq!(
        created
            .pointer("/d/ConfirmationGroup")
            .and_then(Value::as_str),
        Some("12345")
    );
}
