//! The Aras connector against a wiremock Innovator answering like its OAuth server and
//! OData v4 REST API.

use serde_json::{Value, json};
use tracery_connector::{
    Record, RecordKind,
    testing::{http, scan, secret_file},
};
use tracery_connector_aras::{Aras, Settings};
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{body_string_contains, header, method, path, query_param},
};

fn part(id: &str, number: &str, revision: &str, modified: &str) -> Value {
    json!({"id": id, "config_id": format!("CFG-{number}"), "item_number": number,
           "name": format!("Part {number}"), "major_rev": revision, "generation": "1",
           "is_current": "1", "state": "Released", "unit": "EA", "modified_on": modified})
}

fn bom_line(number: &str, quantity: &str) -> Value {
    json!({"id": format!("L-{number}"), "quantity": quantity, "sort_order": 128,
           "reference_designator": null,
           "related_id": {"id": format!("ID-{number}"), "item_number": number, "name": number,
                          "major_rev": "A", "unit": "EA", "state": "Released"}})
}

/// The Part list by `$skip`, two per page.
struct Parts(Vec<Value>);

impl Respond for Parts {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let skip: usize = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "$skip")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let rows: Vec<Value> = self.0.iter().skip(skip).take(2).cloned().collect();
        ResponseTemplate::new(200).set_body_json(json!({
            "@odata.context": "https://plm.example.com/InnovatorServer/server/odata/$metadata#Part",
            "value": rows}))
    }
}

fn settings(server: &MockServer) -> Settings {
    Settings {
        base_url: format!("{}/InnovatorServer", server.uri()),
        database: "InnovatorSolutions".to_owned(),
        username: "integration".to_owned(),
        password: secret_file("aras-password", "password"),
        client_id: "IOMApp".to_owned(),
        page_size: 2,
    }
}

#[tokio::test]
async fn part_revisions_and_their_boms_are_paged_with_a_renewed_token() {
    let server = MockServer::start().await;
    let token = |value: &str| {
        ResponseTemplate::new(200).set_body_json(
            json!({"access_token": value, "expires_in": 3600, "token_type": "Bearer"}),
        )
    };
    // The password travels as its MD5 digest.
    let token_request = || {
        Mock::given(method("POST"))
            .and(path("/InnovatorServer/OAuthServer/connect/token"))
            .and(body_string_contains(
                "password=5f4dcc3b5aa765d61d8327deb882cf99",
            ))
            .and(body_string_contains("grant_type=password"))
            .and(body_string_contains("database=InnovatorSolutions"))
    };
    token_request()
        .respond_with(token("expired"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    token_request()
        .respond_with(token("fresh"))
        .with_priority(2)
        .mount(&server)
        .await;
    let parts = "/InnovatorServer/server/odata/Part";
    Mock::given(method("GET"))
        .and(path(parts))
        .and(header("authorization", "Bearer expired"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": {"code": "401", "message": "token expired"}})),
        )
        .mount(&server)
        .await;
    // PUMP-100 was revised from B to C: a new generation with a new id.
    Mock::given(method("GET"))
        .and(path(parts))
        .and(header("authorization", "Bearer fresh"))
        .respond_with(Parts(vec![
            part("A1", "PUMP-100", "B", "2025-01-10T08:00:00"),
            part("S1", "SHAFT-20", "A", "2025-01-11T08:00:00"),
            part("A2", "PUMP-100", "C", "2025-03-04T10:00:00"),
        ]))
        .mount(&server)
        .await;
    let part_bom = |id: &str, lines: Vec<Value>| {
        Mock::given(method("GET"))
            .and(path(format!("{parts}('{id}')/Part%20BOM")))
            .and(query_param(
                "$expand",
                "related_id($select=item_number,name,major_rev,unit)",
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": lines})))
    };
    part_bom(
        "A1",
        vec![bom_line("SHAFT-20", "1"), bom_line("SCREW-M6", "8")],
    )
    .mount(&server)
    .await;
    part_bom(
        "A2",
        vec![
            bom_line("SHAFT-20", "1"),
            bom_line("SCREW-M6", "6"),
            bom_line("SEAL-A", "1"),
        ],
    )
    .mount(&server)
    .await;
    part_bom("S1", vec![]).mount(&server).await;

    let connector = Aras::new(settings(&server), http()).expect("connector");
    let (materials, since, pages) = scan(&connector, RecordKind::Materials, None).await;
    assert_eq!(pages, 2);
    let revisions: Vec<(String, Option<String>)> = materials
        .iter()
        .map(|r| match r {
            Ok(Record::Material(m)) => (m.item_code.clone(), m.revision.clone()),
            other => panic!("not a material: {other:?}"),
        })
        .collect();
    assert_eq!(
        revisions,
        [
            ("PUMP-100".to_owned(), Some("B".to_owned())),
            ("SHAFT-20".to_owned(), Some("A".to_owned())),
            ("PUMP-100".to_owned(), Some("C".to_owned())),
        ]
    );
    assert_eq!(since.as_deref(), Some("2025-03-04T10:00:00"));
    let (boms, _, _) = scan(&connector, RecordKind::Boms, None).await;
    let history: Vec<(String, Vec<(String, String)>)> = boms
        .iter()
        .map(|r| match r {
            Ok(Record::Bom(b)) => (
                format!("{}@{}", b.material, b.revision),
                b.lines
                    .iter()
                    .map(|l| (l.component.clone(), l.quantity_per.to_string()))
                    .collect(),
            ),
            other => panic!("not a BOM: {other:?}"),
        })
        .collect();
    assert_eq!(
        history,
        [
            (
                "PUMP-100@B".to_owned(),
                vec![
                    ("SHAFT-20".into(), "1".into()),
                    ("SCREW-M6".into(), "8".into())
                ]
            ),
            (
                "PUMP-100@C".to_owned(),
                vec![
                    ("SHAFT-20".into(), "1".into()),
                    ("SCREW-M6".into(), "6".into()),
                    ("SEAL-A".into(), "1".into())
                ]
            ),
        ],
        "both revisions, and no BOM for a part without lines"
    );
}

#[tokio::test]
async fn an_incremental_run_filters_on_modified_on() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/InnovatorServer/OAuthServer/connect/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "t", "expires_in": 3600})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/InnovatorServer/server/odata/Part"))
        .and(query_param("$filter", "modified_on gt 2025-03-04T10:00:00"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [
            part("A3", "PUMP-100", "D", "2025-04-01T09:00:00")]})))
        .expect(1)
        .mount(&server)
        .await;
    let connector = Aras::new(settings(&server), http()).expect("connector");
    let (changed, since, _) = scan(
        &connector,
        RecordKind::Materials,
        Some("2025-03-04T10:00:00".to_owned()),
    )
    .await;
    assert_eq!(changed.len(), 1);
    assert_eq!(since.as_deref(), Some("2025-04-01T09:00:00"));
}
