//! The operator CLI against a running suite: a plant captured from a JSON-LD file, then
//! traces, recall, whereabouts, contents and quarantine, as tables (snapshot-tested) and
//! JSON; and the exit codes and messages for a malformed id and an unreachable suite.

use std::process::Output;

use tracery_e2e::TestApp;

const UNIT: &str = "urn:epc:id:sgtin:4012345.011111.1001";
const SUPPLIER_LOT: &str = "urn:epc:class:lgtin:4012345.022222.LOT-A";
const PALLET: &str = "urn:epc:id:sscc:4012345.0000000001";

/// Three units made from a supplier lot under finished lot FIN-1, palletised, shipped;
/// and one scan with a bad check digit.
fn plant_document() -> String {
    let units: Vec<String> = (1001..=1003)
        .map(|n| format!("urn:epc:id:sgtin:4012345.011111.{n}"))
        .collect();
    serde_json::json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-26T10:00:00Z",
        "epcisBody": {"eventList": [
            {
                "type": "TransformationEvent",
                "eventID": "urn:uuid:c11a0000-0000-4000-8000-000000000001",
                "eventTime": "2026-11-26T08:00:00+01:00", "eventTimeZoneOffset": "+01:00",
                "bizStep": "commissioning",
                "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"},
                "inputQuantityList": [{"epcClass": SUPPLIER_LOT, "quantity": 30, "uom": "KGM"}],
                "outputEPCList": units,
                "ilmd": {"cbvmda:lotNumber": "FIN-1"}
            },
            {
                "type": "AggregationEvent",
                "eventID": "urn:uuid:c11a0000-0000-4000-8000-000000000002",
                "eventTime": "2026-11-26T09:00:00+01:00", "eventTimeZoneOffset": "+01:00",
                "action": "ADD", "bizStep": "packing",
                "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"},
                "parentID": PALLET, "childEPCs": units
            },
            {
                "type": "ObjectEvent",
                "eventID": "urn:uuid:c11a0000-0000-4000-8000-000000000003",
                "eventTime": "2026-11-26T10:00:00+01:00", "eventTimeZoneOffset": "+01:00",
                "action": "OBSERVE", "bizStep": "shipping", "disposition": "in_transit",
                "readPoint": {"id": "urn:epc:id:sgln:4012345.00002.0"},
                "bizLocation": {"id": "urn:epc:id:sgln:4012345.00002.0"},
                "epcList": [PALLET],
                "destinationList": [{"type": "owning_party", "destination": "urn:epc:id:pgln:4012345.00099"}]
            },
            {
                "type": "ObjectEvent",
                "eventID": "urn:uuid:c11a0000-0000-4000-8000-000000000004",
                "eventTime": "2026-11-26T10:05:00+01:00", "eventTimeZoneOffset": "+01:00",
                "action": "OBSERVE", "bizStep": "receiving",
                "epcList": ["https://id.gs1.org/01/09506000134353/21/X"]
            }
        ]}
    })
    .to_string()
}

/// Runs the CLI without blocking the runtime the suite under test runs on.
async fn tracery(server: &str, args: &[&str]) -> Output {
    tracery_in(std::env::temp_dir().as_path(), server, args).await
}

/// [`tracery`] in the folder `dir`.
async fn tracery_in(dir: &std::path::Path, server: &str, args: &[&str]) -> Output {
    let dir = dir.to_owned();
    let server = server.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tracery"))
            .args(&args)
            .current_dir(dir)
            .env("TRACERY_SERVER", server)
            .env_remove("TRACERY_TOKEN")
            .output()
            .expect("the CLI runs")
    })
    .await
    .expect("joined")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn the_cli_captures_traces_and_reports_clearly() {
    let app = TestApp::spawn().await.expect("suite starts");
    let server = format!("http://{}", app.grpc_addr);
    let dir = tempfile::tempdir().expect("folder");
    std::fs::write(dir.path().join("plant.jsonld"), plant_document()).expect("document");

    // One of four events is quarantined: the summary says so and the exit code is 4.
    let captured = tracery_in(dir.path(), &server, &["capture", "plant.jsonld"]).await;
    assert_eq!(captured.status.code(), Some(4), "{}", stderr(&captured));
    insta::assert_snapshot!("capture", stdout(&captured));
    app.await_genealogy(3).await;

    let back = tracery(&server, &["trace", "back", UNIT]).await;
    assert!(back.status.success(), "{}", stderr(&back));
    insta::assert_snapshot!("trace_back", stdout(&back));
    // The same unit as scanned from its label (element string) traces the same.
    let scanned = tracery(&server, &["trace", "back", "(01)04012345111118(21)1001"]).await;
    assert_eq!(stdout(&scanned), stdout(&back), "{}", stderr(&scanned));

    let forward = tracery(&server, &["trace", "forward", SUPPLIER_LOT]).await;
    assert!(forward.status.success(), "{}", stderr(&forward));
    insta::assert_snapshot!("trace_forward", stdout(&forward));

    let recall = tracery(&server, &["recall", SUPPLIER_LOT]).await;
    assert!(recall.status.success(), "{}", stderr(&recall));
    insta::assert_snapshot!("recall", stdout(&recall));

    let where_is = tracery(&server, &["where", UNIT]).await;
    insta::assert_snapshot!("where", stdout(&where_is));

    let contents = tracery(&server, &["contents", PALLET]).await;
    insta::assert_snapshot!("contents", stdout(&contents));

    // JSON for scripts.
    let history = tracery(&server, &["history", UNIT, "--json"]).await;
    let events: serde_json::Value = serde_json::from_slice(&history.stdout).expect("JSON");
    let types: Vec<&str> = events
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(
        types,
        ["TransformationEvent", "AggregationEvent"],
        "{events}"
    );

    // The quarantined scan, listed, then discarded.
    let listed = tracery(&server, &["quarantine", "list", "--json"]).await;
    let entries: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let entry = &entries[0];
    assert_eq!(
        entry["violations"][0]["code"], "BAD_CHECK_DIGIT",
        "{entries}"
    );
    let id = entry["id"].as_str().expect("an id");
    let discarded = tracery(
        &server,
        &["quarantine", "discard", id, "--reason", "misread label"],
    )
    .await;
    assert!(discarded.status.success(), "{}", stderr(&discarded));
    let again = tracery(&server, &["quarantine", "show", id]).await;
    assert_eq!(again.status.code(), Some(3), "a discarded entry is gone");

    // Another misread scan, corrected from a file and stored.
    let scan = |gtin: &str| {
        serde_json::json!({
            "type": "ObjectEvent", "eventTime": "2026-11-26T10:06:00+01:00",
            "eventTimeZoneOffset": "+01:00", "action": "OBSERVE", "bizStep": "receiving",
            "epcList": [format!("https://id.gs1.org/01/{gtin}/21/Y")]
        })
    };
    let document = serde_json::json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-11-26T10:00:00Z",
        "epcisBody": {"eventList": [scan("09506000134353")]}
    });
    std::fs::write(dir.path().join("misread.jsonld"), document.to_string()).expect("file");
    std::fs::write(
        dir.path().join("fixed.json"),
        scan("09506000134352").to_string(),
    )
    .expect("file");
    std::fs::write(
        dir.path().join("broken.json"),
        "{\"type\": \"ObjectEvent\"}",
    )
    .expect("file");
    tracery_in(dir.path(), &server, &["capture", "misread.jsonld"]).await;
    let listed = tracery(&server, &["quarantine", "list", "--json"]).await;
    let entries: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let id = entries[0]["id"].as_str().expect("an id");
    let broken = tracery_in(
        dir.path(),
        &server,
        &["quarantine", "resubmit", id, "--corrected", "broken.json"],
    )
    .await;
    assert_eq!(broken.status.code(), Some(4), "{}", stderr(&broken));
    assert!(
        stderr(&broken).contains("not an EPCIS event"),
        "{}",
        stderr(&broken)
    );
    let fixed = tracery_in(
        dir.path(),
        &server,
        &["quarantine", "resubmit", id, "--corrected", "fixed.json"],
    )
    .await;
    assert!(fixed.status.success(), "{}", stderr(&fixed));
    assert!(stdout(&fixed).contains("stored as"), "{}", stdout(&fixed));

    // A typo in an identifier: exit 4, and where it is wrong.
    let typo = tracery(&server, &["trace", "back", "(01)04012345111119(21)1001"]).await;
    assert_eq!(typo.status.code(), Some(4));
    assert!(stderr(&typo).contains("is malformed"), "{}", stderr(&typo));
    app.stop().await.expect("stops");

    // No suite: exit 5, and what to do about it.
    let down = tracery(&server, &["where", UNIT]).await;
    assert_eq!(down.status.code(), Some(5));
    assert!(
        stderr(&down).contains("is `tracery serve` running?"),
        "{}",
        stderr(&down)
    );
}

#[tokio::test]
async fn the_cli_allocates_serials_renders_labels_and_syncs() {
    let sites = tracery_e2e::erp_sites::ErpSites::start(false).await;
    let app = TestApp::spawn_with(|config| config.connectors = sites.connectors())
        .await
        .expect("suite starts");
    let server = format!("http://{}", app.grpc_addr);
    app.identity
        .clone()
        .create_serial_pool(tracery_proto::v1::CreateSerialPoolRequest {
            pool: Some(tracery_proto::v1::SerialPool {
                name: "line-1".into(),
                gtin: "04012345111118".into(),
                format: tracery_proto::v1::SerialFormat::Numeric.into(),
                length: 6,
                order: tracery_proto::v1::SerialOrder::Sequential.into(),
                ..Default::default()
            }),
        })
        .await
        .expect("pool created");

    let first = tracery(&server, &["serials", "allocate", "line-1", "5"]).await;
    assert!(first.status.success(), "{}", stderr(&first));
    insta::assert_snapshot!("serials", stdout(&first));
    let next = tracery(&server, &["serials", "allocate", "line-1", "2", "--json"]).await;
    let next: serde_json::Value = serde_json::from_slice(&next.stdout).expect("JSON");
    assert_eq!(next["ranges"][0]["count"], 2, "{next}");
    assert_eq!(
        next["ranges"][0]["first"], "000005",
        "never the same serial twice"
    );
    let unknown = tracery(&server, &["serials", "allocate", "no-such-pool", "1"]).await;
    assert_eq!(unknown.status.code(), Some(3), "{}", stderr(&unknown));

    let zpl = tracery(&server, &["label", "render", UNIT, "--format", "zpl"]).await;
    assert!(zpl.status.success(), "{}", stderr(&zpl));
    assert!(stdout(&zpl).starts_with("^XA"), "{}", stdout(&zpl));
    let dir = tempfile::tempdir().expect("folder");
    let png = tracery_in(
        dir.path(),
        &server,
        &[
            "label",
            "render",
            UNIT,
            "--format",
            "png",
            "--symbology",
            "qr",
            "-o",
            "unit.png",
        ],
    )
    .await;
    assert!(png.status.success(), "{}", stderr(&png));
    let bytes = std::fs::read(dir.path().join("unit.png")).expect("written");
    assert_eq!(&bytes[1..4], b"PNG");
    let typo = tracery(
        &server,
        &["label", "render", "(01)04012345111119", "--format", "svg"],
    )
    .await;
    assert_eq!(typo.status.code(), Some(4), "{}", stderr(&typo));

    let synced = tracery(&server, &["sync", "run", "--json"]).await;
    assert!(synced.status.success(), "{}", stderr(&synced));
    let run: serde_json::Value = serde_json::from_slice(&synced.stdout).expect("JSON");
    assert_eq!(run["state"], "succeeded", "{run}");
    assert!(run["fetched"].as_i64().unwrap_or(0) > 0, "{run}");
    let status = tracery(&server, &["sync", "status"]).await;
    assert!(status.status.success(), "{}", stderr(&status));
    let text = stdout(&status);
    assert!(
        text.contains("succeeded") && text.contains("no dead-letter post-backs"),
        "{text}"
    );
    let missing = tracery(&server, &["sync", "run", "no-such-connector"]).await;
    assert_eq!(missing.status.code(), Some(3), "{}", stderr(&missing));
    app.stop().await.expect("stops");
}

/// `tracery analyze` declines on too few failed units, saying why, and names an identifier
/// it left out by its position; `--json` says the same for scripts.
#[tokio::test]
async fn analyze_declines_on_too_few_failed_units_and_names_what_it_left_out() {
    let app = TestApp::spawn().await.expect("suite starts");
    let server = format!("http://{}", app.grpc_addr);
    let dir = tempfile::tempdir().expect("folder");
    std::fs::write(dir.path().join("plant.jsonld"), plant_document()).expect("document");
    tracery_in(dir.path(), &server, &["capture", "plant.jsonld"]).await;
    app.await_genealogy(3).await;

    let failed = [UNIT, "urn:epc:id:sgtin:4012345.011111.1002", "(01)123"];
    let answer = tracery(&server, &[&["analyze"], &failed[..]].concat()).await;
    assert!(answer.status.success(), "{}", stderr(&answer));
    assert!(
        stdout(&answer)
            .contains("inconclusive: 2 known failed units; an analysis needs at least 3"),
        "{}",
        stdout(&answer)
    );
    assert!(
        stderr(&answer).contains("failed[2]: `(01)123` left out"),
        "{}",
        stderr(&answer)
    );
    let json = tracery(&server, &[&["analyze", "--json"], &failed[..]].concat()).await;
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(json["verdict"], "inconclusive");
    assert_eq!(json["refused"][0]["field"], "failed[2]");

    let bounded = [
        "--sensor-bound",
        "Temperature=2..8,CEL",
        "--sensor-bound",
        "Humidity=high..60",
    ];
    let refused = tracery(&server, &[&["analyze"], &bounded[..], &failed[..]].concat()).await;
    assert_eq!(refused.status.code(), Some(4), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("--sensor-bound[1] `Humidity=high..60`: `high` is not a number"),
        "{}",
        stderr(&refused)
    );
    app.stop().await.expect("clean stop");
}
