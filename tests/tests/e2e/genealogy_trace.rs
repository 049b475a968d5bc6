//! Genealogy over the real suite (capture → Subscribe → genealogy): supplier lots mixed
//! into a batch, an intermediate, serialised units, cases, a pallet and a shipment, with
//! an unpack/repack and an error declaration; every query kind answers exactly.

use std::collections::BTreeSet;

use tracery_e2e::TestApp;
use tracery_proto::v1::{self as pb, epcis_event::Body};

const SUPPLIER_A: &str = "urn:epc:class:lgtin:4012345.000001.SUP-A";
const SUPPLIER_B: &str = "urn:epc:class:lgtin:4012345.000001.SUP-B";
const BATCH: &str = "urn:epc:class:lgtin:4012345.000002.BATCH-1";
const INTERMEDIATE: &str = "urn:epc:class:lgtin:4012345.000003.INT-1";
const CASE_1: &str = "urn:epc:id:sscc:4012345.0000000101";
const CASE_2: &str = "urn:epc:id:sscc:4012345.0000000102";
const PALLET: &str = "urn:epc:id:sscc:4012345.0000000201";
const CUSTOMER: &str = "urn:epc:id:pgln:4012345.00099";
const SUPPLIER: &str = "urn:epc:id:pgln:4012345.00077";

fn unit(n: u32) -> String {
    format!("urn:epc:id:sgtin:4012345.000004.{n}")
}

/// The canonical spelling the genealogy service answers with.
fn node(written: &str) -> String {
    tracery_gs1::canonical_uri(written).unwrap_or_else(|| written.to_owned())
}

fn nodes<'a>(written: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    written.into_iter().map(node).collect()
}

fn timestamp(minute: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: 1_795_651_200 + minute * 60,
        nanos: 0,
    }
}

fn event(id: u32, minute: i64, biz_step: &str, body: Body) -> pb::EpcisEvent {
    pb::EpcisEvent {
        event_id: format!("urn:uuid:00000000-0000-4000-8000-5000000000{id:02}"),
        event_time: Some(timestamp(minute)),
        event_time_zone_offset: "+01:00".into(),
        biz_step: biz_step.into(),
        read_point: Some(pb::Location {
            id: "urn:epc:id:sgln:4012345.00001.0".into(),
            extensions: None,
        }),
        biz_location: Some(pb::Location {
            id: "urn:epc:id:sgln:4012345.00001.0".into(),
            extensions: None,
        }),
        body: Some(body),
        ..Default::default()
    }
}

fn quantity(class: &str, amount: f64) -> pb::QuantityElement {
    pb::QuantityElement {
        epc_class: class.into(),
        quantity: Some(amount),
        uom: "KGM".into(),
    }
}

fn transform(
    inputs: Vec<pb::QuantityElement>,
    output_epcs: Vec<String>,
    output_quantities: Vec<pb::QuantityElement>,
    lot: Option<&str>,
) -> Body {
    let ilmd = lot.map(|lot| prost_types::Struct {
        fields: [(
            "cbvmda:lotNumber".to_owned(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue(lot.to_owned())),
            },
        )]
        .into(),
    });
    Body::TransformationEvent(pb::TransformationEvent {
        input_quantities: inputs,
        output_epcs,
        output_quantities,
        ilmd,
        ..Default::default()
    })
}

fn aggregate(action: pb::Action, parent: &str, children: &[String]) -> Body {
    Body::AggregationEvent(pb::AggregationEvent {
        action: action.into(),
        parent_id: parent.into(),
        child_epcs: children.to_vec(),
        child_quantities: Vec::new(),
    })
}

async fn capture(app: &TestApp, events: Vec<pb::EpcisEvent>) -> i64 {
    let results = app.capture_events(events).await;
    for result in &results {
        assert_ne!(
            result.outcome,
            pb::CaptureOutcome::Quarantined as i32,
            "event {} quarantined: {:?}",
            result.index,
            result.violations
        );
    }
    results.iter().map(|r| r.sequence).max().unwrap_or_default()
}

fn trace_nodes(response: &pb::TraceResponse) -> BTreeSet<String> {
    response.nodes.iter().map(|n| n.id.clone()).collect()
}

fn children_of(node: &pb::ContainmentNode) -> BTreeSet<String> {
    node.children.iter().map(|c| c.id.clone()).collect()
}

/// The four units of the plant.
fn units() -> Vec<String> {
    (1..=4).map(unit).collect()
}

fn id(n: u32) -> String {
    format!("urn:uuid:00000000-0000-4000-8000-5000000000{n:02}")
}

/// A suite holding the plant's events, genealogy caught up with them.
struct Plant {
    app: TestApp,
    /// A second replica following the same stream into the same tables, if asked for.
    replica: Option<TestApp>,
    /// The last sequence captured.
    last: i64,
}

impl Plant {
    /// Supplier lots A and B received and mixed into a batch, an intermediate, four units
    /// packed into two cases (unit 4 unpacked from case 2 and repacked into case 1), both
    /// cases on a pallet shipped to a customer; unit 1 scanned into case 2 by mistake, and
    /// that packing declared erroneous.
    async fn start() -> Self {
        Self::start_with(false).await
    }

    /// The plant, with a second replica following from the start when `replica` is set.
    async fn start_with(replica: bool) -> Self {
        // The mistaken packing below must get past capture to be declared erroneous later:
        // the packing rule only warns here.
        let app = TestApp::spawn_with(|config| {
            config.capture_rules.insert(
                "already_packed".to_owned(),
                tracery_runtime::config::RuleAction::Warn,
            );
        })
        .await
        .expect("suite starts");
        let replica = match replica {
            true => Some(app.spawn_replica().await.expect("replica starts")),
            false => None,
        };
        let units = units();
        let mut shipment = event(
            10,
            100,
            "shipping",
            Body::ObjectEvent(pb::ObjectEvent {
                action: pb::Action::Observe.into(),
                epcs: vec![PALLET.into()],
                ..Default::default()
            }),
        );
        shipment.destinations = vec![pb::SourceDestination {
            r#type: "owning_party".into(),
            id: CUSTOMER.into(),
        }];
        shipment.disposition = "in_transit".into();
        let mut receipt = event(
            11,
            -5,
            "receiving",
            Body::ObjectEvent(pb::ObjectEvent {
                action: pb::Action::Observe.into(),
                quantities: vec![quantity(SUPPLIER_A, 100.0)],
                ..Default::default()
            }),
        );
        receipt.sources = vec![pb::SourceDestination {
            r#type: "owning_party".into(),
            id: SUPPLIER.into(),
        }];
        let wrong_id = 9;
        let wrong = event(
            wrong_id,
            65,
            "packing",
            aggregate(pb::Action::Add, CASE_2, &units[..1]),
        );
        let last = capture(
            &app,
            vec![
                receipt,
                event(
                    1,
                    0,
                    "commissioning",
                    transform(
                        vec![quantity(SUPPLIER_A, 100.0), quantity(SUPPLIER_B, 50.0)],
                        vec![],
                        vec![quantity(BATCH, 150.0)],
                        None,
                    ),
                ),
                event(
                    2,
                    10,
                    "commissioning",
                    transform(
                        vec![quantity(BATCH, 140.0)],
                        vec![],
                        vec![quantity(INTERMEDIATE, 140.0)],
                        None,
                    ),
                ),
                event(
                    3,
                    20,
                    "commissioning",
                    transform(
                        vec![quantity(INTERMEDIATE, 1.0)],
                        units.clone(),
                        vec![],
                        Some("FIN-1"),
                    ),
                ),
                event(
                    4,
                    30,
                    "packing",
                    aggregate(pb::Action::Add, CASE_1, &units[..2]),
                ),
                event(
                    5,
                    31,
                    "packing",
                    aggregate(pb::Action::Add, CASE_2, &units[2..]),
                ),
                // U4 is unpacked from case 2 and repacked into case 1.
                event(
                    6,
                    40,
                    "unpacking",
                    aggregate(pb::Action::Delete, CASE_2, &units[3..]),
                ),
                event(
                    7,
                    41,
                    "packing",
                    aggregate(pb::Action::Add, CASE_1, &units[3..]),
                ),
                event(
                    8,
                    50,
                    "packing",
                    aggregate(
                        pb::Action::Add,
                        PALLET,
                        &[CASE_1.to_owned(), CASE_2.to_owned()],
                    ),
                ),
                // Scanned into the wrong case by mistake, then declared erroneous.
                wrong.clone(),
                shipment,
            ],
        )
        .await;
        let mut declaration = wrong;
        declaration.error_declaration = Some(pb::ErrorDeclaration {
            declaration_time: Some(timestamp(70)),
            reason: "incorrect_data".into(),
            corrective_event_ids: Vec::new(),
            extensions: None,
        });
        let last = last.max(capture(&app, vec![declaration]).await);
        app.await_genealogy(last).await;
        Plant { app, replica, last }
    }

    fn genealogy(
        &self,
    ) -> tracery_proto::v1::genealogy_service_client::GenealogyServiceClient<
        tonic::transport::Channel,
    > {
        self.app.genealogy.clone()
    }

    async fn stop(self) {
        if let Some(replica) = self.replica {
            replica.stop().await.expect("replica stops");
        }
        self.app.stop().await.expect("clean stop");
    }
}

#[tokio::test]
async fn a_unit_traces_back_to_its_lots_supplier_lots_and_supplier() {
    let plant = Plant::start().await;
    let backward = plant
        .genealogy()
        .trace_backward(pb::TraceRequest {
            id: unit(4),
            ..Default::default()
        })
        .await
        .expect("backward")
        .into_inner();
    assert_eq!(
        trace_nodes(&backward),
        nodes([
            unit(4).as_str(),
            "urn:epc:class:lgtin:4012345.000004.FIN-1",
            INTERMEDIATE,
            BATCH,
            SUPPLIER_A,
            SUPPLIER_B,
            SUPPLIER,
        ]),
        "where unit 4 came from: its lot, the intermediate, the batch, both supplier lots and the supplier"
    );
    assert!(!backward.truncated);
    let mixing = backward
        .edges
        .iter()
        .find(|e| e.from == node(SUPPLIER_A))
        .expect("supplier edge");
    assert_eq!((mixing.quantity, mixing.uom.as_str()), (Some(100.0), "KGM"));
    plant.stop().await;
}

#[tokio::test]
async fn a_supplier_lot_traces_forward_to_the_units_their_packing_and_the_customer() {
    let plant = Plant::start().await;
    let forward = plant
        .genealogy()
        .trace_forward(pb::TraceRequest {
            id: SUPPLIER_A.into(),
            ..Default::default()
        })
        .await
        .expect("forward")
        .into_inner();
    let units = units();
    let mut reached: Vec<&str> = vec![
        SUPPLIER_A,
        BATCH,
        INTERMEDIATE,
        CASE_1,
        CASE_2,
        PALLET,
        CUSTOMER,
    ];
    reached.extend(units.iter().map(String::as_str));
    assert_eq!(trace_nodes(&forward), nodes(reached.iter().copied()));
    let party = forward
        .nodes
        .iter()
        .find(|n| n.id == node(CUSTOMER))
        .expect("customer");
    assert_eq!(party.kind, pb::NodeKind::Party as i32);
    plant.stop().await;
}

#[tokio::test]
async fn max_depth_cuts_a_trace_short_and_says_so() {
    let plant = Plant::start().await;
    let shallow = plant
        .genealogy()
        .trace_forward(pb::TraceRequest {
            id: SUPPLIER_A.into(),
            max_depth: 2,
            ..Default::default()
        })
        .await
        .expect("shallow")
        .into_inner();
    assert!(shallow.truncated, "max_depth cuts the trace short");
    assert_eq!(
        trace_nodes(&shallow),
        nodes([SUPPLIER_A, BATCH, INTERMEDIATE])
    );
    plant.stop().await;
}

#[tokio::test]
async fn a_trace_as_of_a_time_sees_only_the_links_made_by_then() {
    let plant = Plant::start().await;
    // Before the batch existed, supplier lot A had gone nowhere.
    let early = plant
        .genealogy()
        .trace_forward(pb::TraceRequest {
            id: SUPPLIER_A.into(),
            as_of: Some(timestamp(-1)),
            ..Default::default()
        })
        .await
        .expect("as of")
        .into_inner();
    assert_eq!(trace_nodes(&early), nodes([SUPPLIER_A]));
    plant.stop().await;
}

#[tokio::test]
async fn a_recall_names_every_affected_item_its_custodian_and_outermost_container() {
    let plant = Plant::start().await;
    let recall = plant
        .genealogy()
        .recall_scope(pb::RecallScopeRequest {
            ids: vec![SUPPLIER_B.into()],
            export: pb::ExportFormat::Csv.into(),
            ..Default::default()
        })
        .await
        .expect("recall")
        .into_inner();
    let units = units();
    let affected: BTreeSet<String> = recall.items.iter().map(|i| i.id.clone()).collect();
    let mut expected: Vec<&str> = vec![BATCH, INTERMEDIATE, CASE_1, CASE_2, PALLET];
    expected.extend(units.iter().map(String::as_str));
    assert_eq!(affected, nodes(expected.iter().copied()));
    for item in &recall.items {
        let shipped = item.id != node(BATCH) && item.id != node(INTERMEDIATE);
        assert_eq!(item.in_our_custody, !shipped, "{}", item.id);
        if shipped {
            assert_eq!(item.custodian, node(CUSTOMER), "{}", item.id);
        }
        if item.id.contains("/21/") {
            assert_eq!(
                item.container,
                node(PALLET),
                "{}: outermost container",
                item.id
            );
        }
    }
    assert_eq!(
        recall.by_custodian,
        [
            pb::GroupCount {
                key: "(none)".into(),
                count: 2
            },
            pb::GroupCount {
                key: node(CUSTOMER),
                count: 7
            },
        ]
    );
    let csv = String::from_utf8(recall.export_content).expect("CSV text");
    assert_eq!(recall.export_content_type, "text/csv");
    assert!(csv.starts_with("id,kind,container,location"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 9);
    plant.stop().await;
}

#[tokio::test]
async fn contents_follow_repacking_and_leave_out_an_erroneous_packing() {
    let plant = Plant::start().await;
    let mut genealogy = plant.genealogy();
    let units = units();
    let pallet = genealogy
        .contents(pb::ContentsRequest {
            container: PALLET.into(),
            at: None,
        })
        .await
        .expect("contents")
        .into_inner()
        .root
        .expect("root");
    assert_eq!(children_of(&pallet), nodes([CASE_1, CASE_2]));
    let case_1 = pallet
        .children
        .iter()
        .find(|c| c.id == node(CASE_1))
        .expect("case 1");
    assert_eq!(
        children_of(case_1),
        nodes([units[0].as_str(), units[1].as_str(), units[3].as_str()]),
        "unit 1 is back in case 1 once the wrong packing is declared erroneous; unit 4 was repacked"
    );
    let case_2_before = genealogy
        .contents(pb::ContentsRequest {
            container: CASE_2.into(),
            at: Some(timestamp(35)),
        })
        .await
        .expect("contents then")
        .into_inner()
        .root
        .expect("root");
    assert_eq!(
        children_of(&case_2_before),
        nodes([units[2].as_str(), units[3].as_str()])
    );
    plant.stop().await;
}

#[tokio::test]
async fn history_leaves_out_an_event_declared_erroneous() {
    let plant = Plant::start().await;
    let history: Vec<(String, String)> = plant
        .genealogy()
        .history(pb::HistoryRequest {
            id: unit(1),
            page: None,
        })
        .await
        .expect("history")
        .into_inner()
        .entries
        .into_iter()
        .map(|e| (e.event_id, e.biz_step))
        .collect();
    assert_eq!(
        history,
        [(id(3), "commissioning".into()), (id(4), "packing".into())],
        "the erroneous packing is gone from unit 1's history"
    );
    plant.stop().await;
}

#[tokio::test]
async fn where_is_names_the_container_custodian_disposition_and_last_event() {
    let plant = Plant::start().await;
    let whereabouts = plant
        .genealogy()
        .where_is(pb::WhereIsRequest { id: unit(4) })
        .await
        .expect("where is")
        .into_inner();
    assert_eq!(whereabouts.container, node(CASE_1));
    assert_eq!(whereabouts.custodian, node(CUSTOMER));
    assert_eq!(whereabouts.disposition, "in_transit");
    assert_eq!(whereabouts.last_event_id, id(7));
    plant.stop().await;
}

#[tokio::test]
async fn a_trace_exports_as_dot_svg_and_json() {
    let plant = Plant::start().await;
    for (format, prefix) in [
        (pb::GraphFormat::Dot, "digraph"),
        (pb::GraphFormat::Svg, "<svg"),
        (pb::GraphFormat::Json, "{"),
    ] {
        let export = plant
            .genealogy()
            .export_graph(pb::ExportGraphRequest {
                trace: Some(pb::TraceRequest {
                    id: unit(4),
                    ..Default::default()
                }),
                direction: pb::TraceDirection::Backward.into(),
                format: format.into(),
            })
            .await
            .expect("export")
            .into_inner();
        let text = String::from_utf8(export.content).expect("text");
        assert!(text.starts_with(prefix), "{format:?}: {text}");
        assert!(
            text.contains(&node(SUPPLIER_B)),
            "{format:?} names the supplier lot"
        );
    }
    plant.stop().await;
}

/// A second replica follows the same stream into the same projection tables: each link
/// is there once.
#[tokio::test]
async fn two_replicas_apply_the_stream_into_one_projection_once() {
    let plant = Plant::start_with(true).await;
    let replica = plant.replica.as_ref().expect("a replica");
    replica.await_genealogy(plant.last).await;
    let db = sea_orm::Database::connect(plant.app.database_url())
        .await
        .expect("database");
    use sea_orm::ConnectionTrait as _;
    let repeated = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT from_node, to_node, kind, sequence FROM genealogy_links \
             GROUP BY from_node, to_node, kind, sequence HAVING COUNT(*) > 1",
        ))
        .await
        .expect("links");
    assert!(repeated.is_empty(), "{} links made twice", repeated.len());
    drop(db);
    plant.stop().await;
}
