//! The Windchill connector against a wiremock server answering like Windchill REST
//! Services (ProdMgmt domain, OData v4).

use serde_json::{Value, json};
use tracery_connector::{
    Record, RecordKind,
    testing::{http, scan, secret_file},
};
use tracery_connector_windchill::{Settings, Windchill};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{header, method, path, query_param},
};

fn part(id: &str, number: &str, version: &str, modified: &str) -> Value {
    json!({"ID": id, "Number": number, "Name": format!("Part {number}"), "Version": version,
           "Iteration": "1", "State": {"Value": "RELEASED", "Display": "Released"},
           "DefaultUnit": {"Value": "ea", "Display": "each"}, "View": "Design",
           "LastModified": modified})
}

fn component(number: &str, quantity: f64) -> Value {
    json!({"PartUse": {"Quantity": quantity, "Unit": {"Value": "kg", "Display": "kilogram"}, "FindNumber": "10", "LineNumber": 10},
           "Part": {"ID": format!("OR:wt.part.WTPart:{number}"), "Number": number, "Name": number, "Version": "A", "Iteration": "1"}})
}

#[tokio::test]
async fn part_versions_are_paged_by_next_link_and_their_structures_read_with_a_fresh_nonce() {
    let server = MockServer::start().await;
    let odata = "/Windchill/servlet/odata";
    let basic = || header("authorization", "Basic d2NhZG1pbjp3Y2FkbWlu");
    let next = format!("{}{odata}/ProdMgmt/Parts?$skiptoken=2", server.uri());
    Mock::given(method("GET"))
        .and(path(format!("{odata}/ProdMgmt/Parts")))
        .and(basic())
        .and(query_param("$skip", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "@odata.context": "$metadata#Parts", "@odata.nextLink": next,
            "value": [part("OR:wt.part.WTPart:1", "PUMP-100", "B", "2025-01-10T08:00:00Z"),
                      part("OR:wt.part.WTPart:7", "SHAFT-20", "A", "2025-01-11T08:00:00Z")]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{odata}/ProdMgmt/Parts")))
        .and(query_param("$skiptoken", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [part("OR:wt.part.WTPart:2", "PUMP-100", "C", "2025-03-04T10:00:00Z")]})))
        .mount(&server)
        .await;
    let nonce = |value: &str| {
        ResponseTemplate::new(200)
            .set_body_json(json!({"NonceKey": "CSRF_NONCE", "NonceValue": value}))
    };
    Mock::given(method("GET"))
        .and(path(format!("{odata}/PTC/GetCSRFToken()")))
        .respond_with(nonce("stale"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{odata}/PTC/GetCSRFToken()")))
        .respond_with(nonce("fresh"))
        .with_priority(2)
        .mount(&server)
        .await;
    let structure =
        |id: &str| format!("{odata}/ProdMgmt/Parts('{id}')/PTC.ProdMgmt.GetPartStructure");
    Mock::given(method("POST"))
        .and(header("csrf_nonce", "stale"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(
                json!({"error": {"code": "403", "message": "CSRF nonce is invalid"}}),
            ),
        )
        .mount(&server)
        .await;
    let answer = |id: &str, components: Vec<Value>| {
        Mock::given(method("POST"))
            .and(path(structure(id)))
            .and(header("csrf_nonce", "fresh"))
            .and(query_param(
                "$expand",
                "Components($expand=Part,PartUse,Occurrence)",
            ))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"@odata.context": "$metadata#PartStructureItems",
                "value": [{"Part": {"ID": id}, "Components": components}]})),
            )
    };
    answer(
        "OR:wt.part.WTPart:1",
        vec![component("SHAFT-20", 1.0), component("SCREW-M6", 8.0)],
    )
    .mount(&server)
    .await;
    answer(
        "OR:wt.part.WTPart:2",
        vec![component("SHAFT-20", 1.0), component("SCREW-M6", 6.0)],
    )
    .mount(&server)
    .await;
    answer("OR:wt.part.WTPart:7", vec![]).mount(&server).await;

    let settings = Settings {
        base_url: format!("{}/Windchill", server.uri()),
        user: "wcadmin".to_owned(),
        password: secret_file("windchill-password", "wcadmin"),
        page_size: 2,
    };
    let connector = Windchill::new(settings, http()).expect("connector");
    let (materials, since, pages) = scan(&connector, RecordKind::Materials, None).await;
    assert_eq!(pages, 2);
    assert_eq!(materials.len(), 3);
    match &materials[0] {
        Ok(Record::Material(m)) => {
            assert_eq!((m.unit.as_str(), m.revision.as_deref()), ("ea", Some("B")))
        }
        other => panic!("not a material: {other:?}"),
    }
    assert_eq!(since.as_deref(), Some("2025-03-04T10:00:00Z"));
    let (boms, _, _) = scan(&connector, RecordKind::Boms, None).await;
    let history: Vec<(String, String, usize)> = boms
        .iter()
        .map(|r| match r {
            Ok(Record::Bom(b)) => {
                // The line's unit is an enumerated property: its `Value` counts.
                assert!(b.lines.iter().all(|l| l.unit == "kg"), "{b:?}");
                (b.material.clone(), b.revision.clone(), b.lines.len())
            }
            other => panic!("not a BOM: {other:?}"),
        })
        .collect();
    assert_eq!(
        history,
        [
            ("PUMP-100".to_owned(), "B".to_owned(), 2),
            ("PUMP-100".to_owned(), "C".to_owned(), 2)
        ]
    );
}
