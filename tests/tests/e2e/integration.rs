//! Integration: a plant with an ERPNext site and an SAP tenant (wiremock, vendor-shaped
//! payloads) syncs orders, BOMs and items, which the gRPC API then serves.

use futures::StreamExt as _;
use tonic::Code;
use tracery_e2e::{
    TestApp,
    erp_sites::{ErpSites, FrappeList},
};
use tracery_proto::v1 as pb;

/// Follows `SyncStatus` of `run_id` to its end.
pub async fn finished(app: &TestApp, run_id: &str) -> pb::SyncRun {
    let mut status = app
        .integration
        .clone()
        .sync_status(pb::SyncStatusRequest {
            run_id: run_id.to_owned(),
        })
        .await
        .expect("status")
        .into_inner();
    let mut last = None;
    while let Some(update) = tokio::time::timeout(std::time::Duration::from_secs(30), status.next())
        .await
        .expect("progress within 30 s")
    {
        last = update.expect("update").run;
    }
    let run = last.expect("at least one update");
    assert!(run.end_time.is_some(), "the stream ends with the run");
    run
}

pub async fn sync(app: &TestApp, connector: &str) -> pb::SyncRun {
    let run = app
        .integration
        .clone()
        .trigger_sync(pb::TriggerSyncRequest {
            connector: connector.to_owned(),
        })
        .await
        .expect("sync starts")
        .into_inner()
        .run
        .expect("run");
    finished(app, &run.id).await
}

fn counts(run: &pb::SyncRun) -> (i64, i64, i64, i64, i64) {
    let c = run.counts.unwrap_or_default();
    (c.fetched, c.created, c.updated, c.unchanged, c.failed)
}

pub fn timestamp(rfc3339: &str) -> prost_types::Timestamp {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).expect("time");
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

#[tokio::test]
async fn a_plant_syncs_orders_boms_and_items_from_erpnext_and_sap() {
    let sites = ErpSites::start(false).await;
    let app = TestApp::spawn_with(|config| config.connectors = sites.connectors())
        .await
        .expect("suite starts");
    let mut integration = app.integration.clone();

    let first = sync(&app, "").await;
    assert_eq!(
        first.state,
        pb::SyncRunState::Succeeded as i32,
        "{:?}",
        first.errors
    );
    // ERPNext: 5 items, 1 BOM, 2 work orders; SAP: 1 product, 1 BOM, 1 order.
    assert_eq!(counts(&first), (11, 11, 0, 0, 0));

    let orders = integration
        .list_orders(pb::ListOrdersRequest::default())
        .await
        .expect("orders")
        .into_inner()
        .orders;
    let listed: Vec<(String, String)> = orders
        .iter()
        .map(|o| (o.number.clone(), o.source.clone()))
        .collect();
    assert_eq!(
        listed,
        [
            ("MFG-WO-2025-00012".to_owned(), "erp".to_owned()),
            ("MFG-WO-2025-00013".to_owned(), "erp".to_owned()),
            ("1000123".to_owned(), "sap".to_owned()),
        ]
    );
    let in_progress = integration
        .list_orders(pb::ListOrdersRequest {
            statuses: vec![pb::OrderStatus::InProgress as i32],
            page: None,
        })
        .await
        .expect("orders")
        .into_inner()
        .orders;
    assert_eq!(in_progress.len(), 1);
    assert_eq!(in_progress[0].bom_revision, "BOM-PUMP-100-003");
    let sap_order = integration
        .get_order(pb::GetOrderRequest {
            number: "1000123".to_owned(),
        })
        .await
        .expect("order")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(
        (
            sap_order.item_code.as_str(),
            sap_order.quantity,
            sap_order.unit_of_measure.as_str()
        ),
        ("VALVE-7", 50.0, "PC")
    );
    assert_eq!(sap_order.status, pb::OrderStatus::Released as i32);

    let bom = |material: &str, selector| {
        let mut client = integration.clone();
        let request = pb::GetBomRequest {
            material: material.to_owned(),
            selector: Some(selector),
        };
        async move { client.get_bom(request).await }
    };
    let pump = bom(
        "PUMP-100",
        pb::get_bom_request::Selector::Revision("BOM-PUMP-100-003".to_owned()),
    )
    .await
    .expect("ERPNext BOM")
    .into_inner()
    .bom
    .expect("bom");
    let lines: Vec<(String, f64)> = pump
        .lines
        .iter()
        .map(|l| (l.component.clone(), l.quantity_per))
        .collect();
    assert_eq!(
        lines,
        [
            ("SHAFT-20".to_owned(), 1.0),
            ("HOUSING-A".to_owned(), 1.0),
            ("SCREW-M6".to_owned(), 8.0)
        ]
    );
    let valve = bom(
        "VALVE-7",
        pb::get_bom_request::Selector::EffectiveAt(timestamp("2025-06-01T00:00:00Z")),
    )
    .await
    .expect("SAP BOM in force")
    .into_inner()
    .bom
    .expect("bom");
    assert_eq!(
        (valve.revision.as_str(), valve.source.as_str()),
        ("500000000123", "sap")
    );
    assert_eq!(valve.lines[1].scrap_percent, 1.5);
    let before = bom(
        "VALVE-7",
        pb::get_bom_request::Selector::EffectiveAt(timestamp("2024-06-01T00:00:00Z")),
    )
    .await
    .expect_err("not valid before 2025");
    assert_eq!(before.code(), Code::NotFound);

    let shaft = integration
        .resolve_item(pb::ResolveItemRequest {
            key: Some(pb::resolve_item_request::Key::Gtin(
                "4012345111118".to_owned(),
            )),
        })
        .await
        .expect("resolves a GTIN-13")
        .into_inner()
        .material
        .expect("material");
    assert_eq!(
        (shaft.item_code.as_str(), shaft.unit_of_measure.as_str()),
        ("SHAFT-20", "Nos")
    );

    let conformance = |component: &str| {
        let mut client = integration.clone();
        let request = pb::CheckBomConformanceRequest {
            order_number: "urn:epcglobal:cbv:bt:4012345000009:MFG-WO-2025-00012".to_owned(),
            component: component.to_owned(),
        };
        async move {
            client
                .check_bom_conformance(request)
                .await
                .expect("checked")
                .into_inner()
        }
    };
    assert!(
        conformance("urn:epc:class:lgtin:4012345.011111.SH-2502-07")
            .await
            .conforms
    );
    assert!(conformance("SCREW-M6").await.conforms);
    let label = conformance("urn:epc:class:lgtin:4012345.033333.L1").await;
    assert!(!label.conforms);
    assert!(
        label
            .reason
            .contains("`LABEL-X` is not a component of BOM `BOM-PUMP-100-003`"),
        "{}",
        label.reason
    );

    // Nothing changed at the sources: a second run updates nothing.
    let second = sync(&app, "").await;
    assert_eq!(counts(&second), (11, 0, 0, 11, 0));
    let runs = integration
        .list_sync_runs(pb::ListSyncRunsRequest::default())
        .await
        .expect("runs")
        .into_inner()
        .runs;
    let newest_first: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(newest_first, [second.id.as_str(), first.id.as_str()]);

    // Per-page metrics on the HTTP listener (the registry is per process, so other tests'
    // syncs may add to the counts).
    let metrics = app.metrics().await;
    for family in [
        r#"tracery_sync_pages_total{connector="erp",kind="materials"}"#,
        r#"tracery_sync_records_total{connector="sap",kind="orders",outcome="created"}"#,
        r#"tracery_sync_page_seconds_count{connector="erp",kind="boms"}"#,
        r#"tracery_sync_runs_total{connector="",state="succeeded"}"#,
    ] {
        assert!(metrics.contains(family), "{family} missing from /metrics");
    }

    let unknown = integration
        .trigger_sync(pb::TriggerSyncRequest {
            connector: "plm".to_owned(),
        })
        .await
        .expect_err("no such connector");
    assert_eq!(unknown.code(), Code::NotFound);
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_malformed_record_fails_alone_and_the_run_says_which() {
    let sites = ErpSites::start(false).await;
    // A work order without its item, among good ones: reported, the rest synced.
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path("/api/resource/Work%20Order"))
        .respond_with(FrappeList(vec![
            serde_json::json!({"name": "MFG-WO-2025-00020", "status": "Draft", "production_item": null,
             "qty": 5.0, "stock_uom": "Nos", "modified": "2025-03-05 10:00:00"}),
            serde_json::json!({"name": "MFG-WO-2025-00021", "status": "Draft", "production_item": "PUMP-100",
             "qty": 5.0, "stock_uom": "Nos", "modified": "2025-03-05 10:00:01"}),
        ]))
        .with_priority(1)
        .mount(&sites.erpnext)
        .await;
    let app = TestApp::spawn_with(|config| config.connectors = sites.connectors())
        .await
        .expect("suite starts");
    let run = sync(&app, "erp").await;
    assert_eq!(run.state, pb::SyncRunState::Partial as i32);
    assert_eq!(counts(&run).4, 1);
    assert_eq!(
        run.errors,
        ["erp/orders: `MFG-WO-2025-00020`: production_item: required but missing or empty"]
    );
    app.integration
        .clone()
        .get_order(pb::GetOrderRequest {
            number: "MFG-WO-2025-00021".to_owned(),
        })
        .await
        .expect("the good order of the page is synced");
    app.stop().await.expect("clean stop");
}

/// A TransformationEvent under ERPNext work order MFG-WO-2025-00012 consuming `classes`.
pub fn production(event_id: &str, classes: &[&str]) -> pb::EpcisEvent {
    let quantity = |class: &str| pb::QuantityElement {
        epc_class: class.to_owned(),
        quantity: Some(1.0),
        uom: String::new(),
    };
    pb::EpcisEvent {
        event_id: event_id.to_owned(),
        event_time: Some(timestamp("2026-11-26T09:00:00Z")),
        event_time_zone_offset: "+01:00".to_owned(),
        biz_step: "commissioning".to_owned(),
        read_point: Some(pb::Location {
            id: "urn:epc:id:sgln:4012345.00001.0".to_owned(),
            extensions: None,
        }),
        biz_transactions: vec![pb::BizTransaction {
            r#type: "urn:epcglobal:cbv:btt:prodorder".to_owned(),
            id: "urn:epcglobal:cbv:bt:4012345000009:MFG-WO-2025-00012".to_owned(),
        }],
        body: Some(pb::epcis_event::Body::TransformationEvent(
            pb::TransformationEvent {
                input_quantities: classes.iter().map(|c| quantity(c)).collect(),
                output_quantities: vec![quantity("urn:epc:class:lgtin:4012345.044444.P1")],
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

#[tokio::test]
async fn capture_flags_a_component_that_is_not_on_the_orders_bom() {
    let sites = ErpSites::start(false).await;
    let app = TestApp::spawn_with(|config| {
        config.connectors = sites.connectors();
        config.capture_rules.insert(
            "bom_conformance".to_owned(),
            tracery_runtime::config::RuleAction::Reject,
        );
    })
    .await
    .expect("suite starts");
    assert_eq!(
        sync(&app, "erp").await.state,
        pb::SyncRunState::Succeeded as i32
    );

    let shaft = "urn:epc:class:lgtin:4012345.011111.SH-2502-07";
    let label = "urn:epc:class:lgtin:4012345.033333.L1";
    let results = app
        .capture_events(vec![
            production("urn:uuid:00000000-0000-4000-8000-b00000000001", &[shaft]),
            production(
                "urn:uuid:00000000-0000-4000-8000-b00000000002",
                &[shaft, label],
            ),
        ])
        .await;
    assert_eq!(
        results[0].outcome,
        pb::CaptureOutcome::Accepted as i32,
        "{:?}",
        results[0].violations
    );
    assert_eq!(results[1].outcome, pb::CaptureOutcome::Quarantined as i32);
    let flagged: Vec<(&str, &str)> = results[1]
        .violations
        .iter()
        .filter(|v| v.code == "NOT_IN_BOM")
        .map(|v| (v.field.as_str(), v.description.as_str()))
        .collect();
    assert_eq!(
        flagged,
        [(
            "inputQuantityList/1/epcClass",
            "`LABEL-X` is not a component of BOM `BOM-PUMP-100-003` of `PUMP-100` (order `MFG-WO-2025-00012`)"
        )]
    );
    app.stop().await.expect("clean stop");
}

/// An Aras Innovator (wiremock) whose PUMP-100 revision C drifted from the ERP's BOM.
async fn aras_site() -> wiremock::MockServer {
    use serde_json::json;
    use wiremock::{
        Mock, MockServer, ResponseTemplate,
        matchers::{method, path},
    };
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/InnovatorServer/OAuthServer/connect/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "t", "expires_in": 3600, "token_type": "Bearer"}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/InnovatorServer/server/odata/Part"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [
            {"id": "A2", "config_id": "CFG-PUMP", "item_number": "PUMP-100", "name": "Pump 100 l/min",
             "major_rev": "C", "generation": "3", "is_current": "1", "state": "Released", "unit": "EA",
             "modified_on": "2025-03-04T10:00:00"}]})))
        .mount(&server)
        .await;
    let line = |number: &str, quantity: &str| {
        json!({"id": format!("L-{number}"), "quantity": quantity, "sort_order": 128,
               "related_id": {"id": format!("ID-{number}"), "item_number": number, "name": number, "major_rev": "A", "unit": "EA"}})
    };
    Mock::given(method("GET"))
        .and(path("/InnovatorServer/server/odata/Part('A2')/Part%20BOM"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [
            line("SHAFT-20", "1"), line("SCREW-M6", "6"), line("SEAL-A", "1")]})))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn engineering_and_manufacturing_boms_are_compared_after_a_sync() {
    let sites = ErpSites::start(false).await;
    let aras = aras_site().await;
    let secrets = tempfile::tempdir().expect("secrets");
    let password = secrets.path().join("aras-password");
    std::fs::write(&password, "innovator").expect("secret");
    let plm = format!(
        "system = \"aras\"\nbase_url = \"{}/InnovatorServer\"\ndatabase = \"InnovatorSolutions\"\nusername = \"integration\"\npassword = {{ file = \"{}\" }}\n",
        aras.uri(),
        password.display()
    );
    let app = TestApp::spawn_with(|config| {
        config.connectors = sites.connectors();
        config
            .connectors
            .insert("plm".to_owned(), toml::from_str(&plm).expect("plm table"));
    })
    .await
    .expect("suite starts");
    assert_eq!(
        sync(&app, "").await.state,
        pb::SyncRunState::Succeeded as i32
    );
    let differences = app
        .integration
        .clone()
        .compare_boms(pb::CompareBomsRequest {
            material: "PUMP-100".to_owned(),
            plm_revision: "C".to_owned(),
            erp_revision: "BOM-PUMP-100-003".to_owned(),
        })
        .await
        .expect("compared")
        .into_inner()
        .differences;
    let found: Vec<(&str, i32, f64, f64)> = differences
        .iter()
        .map(|d| (d.component.as_str(), d.kind, d.plm_quantity, d.erp_quantity))
        .collect();
    assert_eq!(
        found,
        [
            ("HOUSING-A", pb::BomDifferenceKind::Added as i32, 0.0, 1.0),
            (
                "SCREW-M6",
                pb::BomDifferenceKind::QuantityChanged as i32,
                6.0,
                8.0
            ),
            ("SEAL-A", pb::BomDifferenceKind::Removed as i32, 1.0, 0.0),
        ]
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn the_erp_warehouses_a_plant_maps_are_master_data_locations() {
    let sites = ErpSites::start(false).await;
    let app = TestApp::spawn_with(|config| config.connectors = sites.connectors())
        .await
        .expect("suite starts");
    let run = sync(&app, "").await;
    assert_eq!(
        run.state,
        pb::SyncRunState::Succeeded as i32,
        "{:?}",
        run.errors
    );

    // Each asked in another spelling than the configuration's.
    // (an SGLN's extension 0 is the GLN itself)
    let finished_goods = "https://id.gs1.org/414/4012345000016";
    let wip = "urn:epc:id:sgln:4012345.00001.2";
    let plant = "urn:epc:id:sgln:4012345.00000.0";
    let found = app
        .capture
        .clone()
        .lookup_master_data(pb::LookupMasterDataRequest {
            ids: [finished_goods, wip, plant].map(str::to_owned).to_vec(),
            vocabulary_type: String::new(),
        })
        .await
        .expect("lookup")
        .into_inner();
    let mut named: Vec<(String, String, String)> = found
        .elements
        .iter()
        .map(|e| (e.id.clone(), e.vocabulary_type.clone(), e.name.clone()))
        .collect();
    named.sort();
    let location = "urn:epcglobal:epcis:vtype:BusinessLocation".to_owned();
    assert_eq!(
        named,
        [
            (
                finished_goods.to_owned(),
                location.clone(),
                "Finished Goods - AC".to_owned()
            ),
            (
                plant.to_owned(),
                location.clone(),
                "Plant 1010, Walldorf".to_owned()
            ),
            (wip.to_owned(), location, "Line 2 WIP".to_owned()),
        ]
    );

    // Over the EPCIS REST binding, with where it came from.
    let response = reqwest::get(format!(
        "http://{}/bizLocations/{}",
        app.http_addr,
        tracery_e2e::urlencode("urn:epc:id:sgln:4012345.00001.0")
    ))
    .await
    .expect("GET");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let described: serde_json::Value = response.json().await.expect("JSON");
    let attributes = described["attributes"].as_array().expect("attributes");
    for (id, value) in [
        ("urn:epcglobal:cbv:mda#name", "Finished Goods - AC"),
        ("urn:tracery:mda#erpConnector", "erp"),
        ("urn:tracery:mda#erpCode", "Finished Goods - AC"),
    ] {
        assert!(
            attributes
                .iter()
                .any(|a| a["id"] == id && a["attribute"] == value),
            "{id} = {value} in {described}"
        );
    }
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_warehouse_mapped_to_something_other_than_a_location_stops_the_start() {
    let sites = ErpSites::start(false).await;
    let mut connectors = sites.connectors();
    let erp = connectors.get_mut("erp").expect("erp");
    let locations: toml::Table =
        toml::from_str(r#""WIP - AC" = "urn:epc:id:sgtin:4012345.011111.1""#).expect("toml");
    erp.insert("locations".to_owned(), toml::Value::Table(locations));
    // The integration service refuses to start: the suite stops, saying why.
    let refused = match TestApp::spawn_with(|config| config.connectors = connectors).await {
        Err(err) => err,
        Ok(app) => app.stop().await.expect_err("the suite does not start"),
    };
    let message = format!("{refused:#}");
    assert!(
        message.contains("connectors.erp: locations.\"WIP - AC\"")
            && message.contains("is not a location"),
        "{message}"
    );
}
