//! The Odoo connector against wiremock servers answering like Odoo's JSON-RPC (16–18) and
//! JSON-2 (19) APIs.

use std::{path::PathBuf, time::Duration};

use serde_json::{Value, json};
use tracery_connector::secret::SecretSource;
use tracery_connector::{
    Connector, Cursor, ErpLocation, LocationRole, OrderStatus, Record, RecordKind,
    testing::{http, scan},
};
use tracery_connector_odoo::{Odoo, Protocol, Settings};
use wiremock::{
    Match, Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{header, method, path},
};

fn key_file(name: &str, value: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("tracery-odoo-test-{}-{name}", std::process::id()));
    std::fs::write(&path, value).expect("key file");
    path
}

fn settings(server: &MockServer, protocol: Protocol, key: PathBuf, page_size: u32) -> Settings {
    Settings {
        base_url: server.uri(),
        database: "acme".to_owned(),
        protocol,
        login: Some("integration@acme.example".to_owned()),
        api_key: SecretSource::file(key),
        version: 17,
        page_size,
        bom_revision_field: "code".to_owned(),
    }
}

/// A JSON-RPC `execute_kw` on `model`, optionally at `offset` and with a `write_date` bound.
struct ExecuteKw {
    model: &'static str,
    offset: Option<u64>,
    since: Option<&'static str>,
}

impl Match for ExecuteKw {
    fn matches(&self, request: &Request) -> bool {
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return false;
        };
        let args = &body["params"]["args"];
        let kwargs = &args[6];
        body["params"]["method"] == "execute_kw"
            && args[3] == self.model
            && self.offset.is_none_or(|o| kwargs["offset"] == o)
            && self
                .since
                .is_none_or(|since| kwargs["domain"] == json!([["write_date", ">=", since]]))
            && (self.since.is_some() || self.offset.is_none() || kwargs["domain"] == json!([]))
    }
}

fn authenticate() -> impl Match {
    struct Authenticate;
    impl Match for Authenticate {
        fn matches(&self, request: &Request) -> bool {
            serde_json::from_slice::<Value>(&request.body).is_ok_and(|b| {
                b["params"]["method"] == "authenticate"
                    && b["params"]["args"]
                        == json!(["acme", "integration@acme.example", "rpc-key", {}])
            })
        }
    }
    Authenticate
}

fn rpc_result(result: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"jsonrpc": "2.0", "id": 1, "result": result}))
}

fn product(id: i64, code: Value, written: &str) -> Value {
    json!({"id": id, "default_code": code, "name": format!("Product {id}"), "barcode": false,
           "uom_id": [1, "Units"], "active": true, "write_date": written})
}

#[tokio::test]
async fn json_rpc_pages_products_reports_one_without_a_code_and_fetches_changes_only() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/jsonrpc"))
        .and(authenticate())
        .respond_with(rpc_result(json!(7)))
        .expect(1)
        .mount(&server)
        .await;
    let products = |offset, since| ExecuteKw {
        model: "product.product",
        offset: Some(offset),
        since,
    };
    Mock::given(method("POST"))
        .and(path("/jsonrpc"))
        .and(products(0, None))
        .respond_with(rpc_result(json!([
            product(21, json!("SHAFT-20"), "2025-03-01 08:00:00"),
            product(22, json!(false), "2025-03-02 08:00:00")
        ])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/jsonrpc"))
        .and(products(2, None))
        .respond_with(rpc_result(json!([product(
            23,
            json!("SCREW-M6"),
            "2025-03-04 13:05:12"
        )])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/jsonrpc"))
        .and(products(0, Some("2025-03-04 13:05:12")))
        .respond_with(rpc_result(json!([product(
            23,
            json!("SCREW-M6"),
            "2025-03-05 09:00:00"
        )])))
        .expect(1)
        .mount(&server)
        .await;
    let connector = Odoo::new(
        settings(&server, Protocol::JsonRpc, key_file("rpc", "rpc-key"), 2),
        http(),
    )
    .expect("connector");
    let (first, since, pages) = scan(&connector, RecordKind::Materials, None).await;
    assert_eq!(pages, 2);
    assert_eq!(first.len(), 3);
    let bad = first[1].as_ref().expect_err("no default_code");
    assert_eq!(
        (bad.key.as_str(), bad.field.as_str()),
        ("22", "default_code")
    );
    match &first[2] {
        Ok(Record::Material(m)) => {
            assert_eq!(
                (m.item_code.as_str(), m.unit.as_str(), m.gtin.as_deref()),
                ("SCREW-M6", "Units", None)
            );
        }
        other => panic!("not a material: {other:?}"),
    }
    assert_eq!(since.as_deref(), Some("2025-03-04 13:05:12"));
    let (second, since, _) = scan(&connector, RecordKind::Materials, since).await;
    assert_eq!(second.len(), 1);
    assert_eq!(since.as_deref(), Some("2025-03-05 09:00:00"));
}

#[tokio::test]
async fn an_expired_json_rpc_session_authenticates_again_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/jsonrpc"))
        .and(authenticate())
        .respond_with(rpc_result(json!(7)))
        .expect(2)
        .mount(&server)
        .await;
    let any_products = || ExecuteKw {
        model: "product.product",
        offset: None,
        since: None,
    };
    Mock::given(method("POST"))
        .and(path("/jsonrpc"))
        .and(any_products())
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"jsonrpc": "2.0", "id": 2, "error": {
            "code": 100, "message": "Odoo Session Expired",
            "data": {"name": "odoo.http.SessionExpiredException", "message": "Session expired"}}}),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/jsonrpc"))
        .and(any_products())
        .respond_with(rpc_result(json!([product(
            21,
            json!("SHAFT-20"),
            "2025-03-01 08:00:00"
        )])))
        .with_priority(2)
        .mount(&server)
        .await;
    let connector = Odoo::new(
        settings(&server, Protocol::JsonRpc, key_file("rpc2", "rpc-key"), 50),
        http(),
    )
    .expect("connector");
    let page = connector
        .fetch(RecordKind::Materials, &Cursor::default())
        .await
        .expect("page");
    assert_eq!(page.records.len(), 1);
}

/// Answers 401 and, like a secret manager, rotates the key in the mounted file.
struct RotateKey(PathBuf);

impl Respond for RotateKey {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        std::fs::write(&self.0, "new-key").expect("rotate");
        ResponseTemplate::new(401).set_body_json(
            json!({"name": "werkzeug.exceptions.Unauthorized", "message": "Invalid apikey"}),
        )
    }
}

#[tokio::test]
async fn json2_orders_survive_throttling_errors_and_a_rotated_key() {
    let server = MockServer::start().await;
    let key = key_file("json2", "old-key");
    let orders = || {
        Mock::given(method("POST"))
            .and(path("/json/2/mrp.production/search_read"))
            .and(header("x-odoo-database", "acme"))
    };
    orders()
        .and(header("authorization", "Bearer old-key"))
        .respond_with(RotateKey(key.clone()))
        .mount(&server)
        .await;
    orders()
        .and(header("authorization", "Bearer new-key"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    orders()
        .and(header("authorization", "Bearer new-key"))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(
                json!({"name": "builtins.RuntimeError", "message": "worker restarted"}),
            ),
        )
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    orders()
        .and(header("authorization", "Bearer new-key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": 42, "name": "WH/MO/00042", "state": "progress",
             "product_id": [17, "[PUMP-100] Pump 100 l/min"], "product_qty": 50.0,
             "product_uom_id": [1, "Units"], "bom_id": [9, "PUMP-100"],
             "date_start": "2025-03-03 06:00:00", "date_finished": false,
             "company_id": [1, "Acme"], "location_src_id": [8, "WH/Stock"],
             "location_dest_id": false, "write_date": "2025-03-04 13:05:12"}])))
        .with_priority(3)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/json/2/product.product/search_read"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([{"id": 17, "default_code": "PUMP-100"}])),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/json/2/mrp.bom/search_read"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id": 9, "code": "REV-C"}])))
        .mount(&server)
        .await;
    let connector =
        Odoo::new(settings(&server, Protocol::Json2, key, 50), http()).expect("connector");
    let started = std::time::Instant::now();
    let page = connector
        .fetch(RecordKind::Orders, &Cursor::default())
        .await
        .expect("page");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    match page.records.as_slice() {
        [Ok(Record::Order(order))] => {
            assert_eq!(
                (order.number.as_str(), order.item_code.as_str()),
                ("WH/MO/00042", "PUMP-100")
            );
            assert_eq!(order.status, OrderStatus::InProgress);
            assert_eq!(order.bom_revision.as_deref(), Some("REV-C"));
            assert_eq!(order.planned_end, None, "false is empty");
            assert_eq!(order.unit, "Units");
            assert_eq!(
                order.locations,
                [ErpLocation {
                    code: "WH/Stock".to_owned(),
                    role: LocationRole::Components
                }],
                "a location by its display name; false is none"
            );
        }
        other => panic!("one order expected: {other:?}"),
    }
}

#[tokio::test]
async fn json2_boms_join_their_lines_and_component_codes() {
    let server = MockServer::start().await;
    let answer = |model: &str, body: Value| {
        Mock::given(method("POST"))
            .and(path(format!("/json/2/{model}/search_read")))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
    };
    answer("mrp.bom", json!([{"id": 9, "code": "REV-C", "type": "normal", "active": true,
        "product_tmpl_id": [12, "Pump 100 l/min"], "product_id": false, "product_qty": 1.0,
        "product_uom_id": [1, "Units"], "bom_line_ids": [31, 33], "write_date": "2025-02-20 08:12:44"}]))
        .mount(&server)
        .await;
    answer("mrp.bom.line", json!([
        {"id": 31, "bom_id": [9, "PUMP-100"], "sequence": 1, "product_id": [21, "[SHAFT-20] Shaft 20 mm"], "product_qty": 1.0, "product_uom_id": [1, "Units"]},
        {"id": 33, "bom_id": [9, "PUMP-100"], "sequence": 3, "product_id": [23, "[SCREW-M6] Screw M6"], "product_qty": 8.0, "product_uom_id": [1, "Units"]}]))
        .mount(&server)
        .await;
    answer(
        "product.product",
        json!([{"id": 21, "default_code": "SHAFT-20"}, {"id": 23, "default_code": "SCREW-M6"}]),
    )
    .mount(&server)
    .await;
    answer(
        "product.template",
        json!([{"id": 12, "default_code": "PUMP-100"}]),
    )
    .mount(&server)
    .await;
    let connector = Odoo::new(
        settings(&server, Protocol::Json2, key_file("bom", "k"), 50),
        http(),
    )
    .expect("connector");
    let page = connector
        .fetch(RecordKind::Boms, &Cursor::default())
        .await
        .expect("page");
    match page.records.as_slice() {
        [Ok(Record::Bom(bom))] => {
            assert_eq!(
                (bom.material.as_str(), bom.revision.as_str()),
                ("PUMP-100", "REV-C")
            );
            let lines: Vec<(&str, String)> = bom
                .lines
                .iter()
                .map(|l| (l.component.as_str(), l.quantity_per.to_string()))
                .collect();
            assert_eq!(
                lines,
                [("SHAFT-20", "1".to_owned()), ("SCREW-M6", "8".to_owned())]
            );
        }
        other => panic!("one BOM expected: {other:?}"),
    }
}

/// A JSON-2 call on `model.method` whose body has `fields` (a subset match).
fn json2_call(model: &str, method_name: &str, fields: Value) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path(format!("/json/2/{model}/{method_name}")))
        .and(wiremock::matchers::body_partial_json(fields))
}

fn report(reference: &str) -> tracery_connector::ProductionReport {
    tracery_connector::ProductionReport {
        reference: reference.to_owned(),
        order: "WH/MO/00042".to_owned(),
        material: "PUMP-100".to_owned(),
        quantity: rust_decimal::Decimal::from(10),
        unit: "Units".to_owned(),
        lot: Some("PUMP-250304-01".to_owned()),
        plant: None,
        made_at: chrono::Utc::now(),
        consumed: Vec::new(),
    }
}

#[tokio::test]
async fn a_production_report_marks_produces_and_closes_the_manufacturing_order() {
    let server = MockServer::start().await;
    let key = key_file("json2-post", "post-key");
    let mo = |state: &str| {
        json!([{"id": 42, "name": "WH/MO/00042", "state": state,
                "product_id": [17, "[PUMP-100] Pump 100 l/min"], "company_id": [1, "Acme"]}])
    };
    let reference = "TRC-0123456789abcdef01234567";
    json2_call(
        "mrp.production",
        "search_read",
        json!({"domain": [["name", "=", "WH/MO/00042"]]}),
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(mo("confirmed")))
    .mount(&server)
    .await;
    json2_call(
        "mail.message",
        "search_count",
        json!({"domain": [
        ["model", "=", "mrp.production"], ["res_id", "=", 42], ["body", "ilike", reference]]}),
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!(0)))
    .mount(&server)
    .await;
    json2_call("mrp.production", "message_post", json!({"ids": [42]}))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!(9001)))
        .expect(1)
        .mount(&server)
        .await;
    json2_call(
        "stock.lot",
        "search_read",
        json!({"domain": [["name", "=", "PUMP-250304-01"], ["product_id", "=", 17]]}),
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
    .mount(&server)
    .await;
    json2_call(
        "stock.lot",
        "create",
        json!({"vals_list": [{"name": "PUMP-250304-01", "product_id": 17, "company_id": 1}]}),
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!([311])))
    .expect(1)
    .mount(&server)
    .await;
    json2_call(
        "mrp.production",
        "write",
        json!({"ids": [42], "vals": {"qty_producing": 10.0, "lot_producing_id": 311}}),
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!(true)))
    .expect(1)
    .mount(&server)
    .await;
    json2_call(
        "mrp.production",
        "button_mark_done",
        json!({"ids": [42], "context": {"skip_backorder": true}}),
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!(true)))
    .expect(1)
    .mount(&server)
    .await;
    let connector =
        Odoo::new(settings(&server, Protocol::Json2, key, 200), http()).expect("connector");
    let post_back = connector.post_back().expect("Odoo takes production back");
    let posted = post_back.post(&report(reference)).await.expect("posted");
    assert_eq!(posted, "WH/MO/00042");
    let requests = server.received_requests().await.unwrap_or_default();
    let marked = requests
        .iter()
        .find(|r| r.url.path().ends_with("/message_post"))
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .unwrap_or_default();
    assert!(marked.contains(reference), "{marked}");
    // Not done yet by Odoo's account (the MO still reads `confirmed`): not posted.
    assert_eq!(
        post_back
            .find_posted(&report(reference))
            .await
            .expect("looked"),
        None
    );
}

#[tokio::test]
async fn a_done_order_with_our_mark_is_posted_and_a_wizard_is_not_done() {
    let server = MockServer::start().await;
    let key = key_file("json2-wizard", "post-key");
    json2_call(
        "mrp.production",
        "search_read",
        json!({"domain": [["name", "=", "WH/MO/00042"]]}),
    )
    .respond_with(
        ResponseTemplate::new(200).set_body_json(json!([{"id": 42, "name": "WH/MO/00042",
            "state": "done", "product_id": [17, "PUMP-100"], "company_id": false}])),
    )
    .mount(&server)
    .await;
    json2_call("mail.message", "search_count", json!({}))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!(1)))
        .mount(&server)
        .await;
    let connector =
        Odoo::new(settings(&server, Protocol::Json2, key.clone(), 200), http()).expect("connector");
    let post_back = connector.post_back().expect("post-back");
    assert_eq!(
        post_back
            .find_posted(&report("TRC-1"))
            .await
            .expect("looked"),
        Some("WH/MO/00042".to_owned())
    );
    let refused = post_back
        .post(&report("TRC-1"))
        .await
        .expect_err("done already");
    assert!(refused.to_string().contains("is done"), "{refused}");

    // A strict BOM: Odoo answers button_mark_done with a consumption wizard.
    let server = MockServer::start().await;
    json2_call("mrp.production", "search_read", json!({}))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([{"id": 7, "name": "WH/MO/00042",
            "state": "progress", "product_id": [17, "PUMP-100"], "company_id": false}])),
        )
        .mount(&server)
        .await;
    json2_call("mail.message", "search_count", json!({}))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!(1)))
        .mount(&server)
        .await;
    json2_call("stock.lot", "search_read", json!({}))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id": 5}])))
        .mount(&server)
        .await;
    json2_call(
        "mrp.production",
        "write",
        json!({"vals": {"lot_producing_id": 5}}),
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!(true)))
    .mount(&server)
    .await;
    json2_call("mrp.production", "button_mark_done", json!({}))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "ir.actions.act_window", "res_model": "mrp.consumption.warning", "target": "new"})))
        .mount(&server)
        .await;
    let connector =
        Odoo::new(settings(&server, Protocol::Json2, key, 200), http()).expect("connector");
    let refused = connector
        .post_back()
        .expect("post-back")
        .post(&report("TRC-2"))
        .await
        .expect_err("a wizard is not done");
    assert!(
        refused.to_string().contains("mrp.consumption.warning"),
        "{refused}"
    );
    assert!(!refused.is_transient());
}
