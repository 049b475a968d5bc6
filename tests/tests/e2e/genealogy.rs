//! Genealogy: events captured over gRPC reach the genealogy projection through Subscribe
//! and come back as an identifier's history.

use tracery_e2e::TestApp;
use tracery_proto::v1 as pb;

use crate::capture::observe;

const PALLET_UNIT: &str = "urn:epc:id:sgtin:4012345.011111.5001";
const OTHER_UNIT: &str = "urn:epc:id:sgtin:4012345.011111.5002";

#[tokio::test]
async fn captured_events_become_history() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    // Captured out of event-time order: history is ordered by event time.
    let events = vec![
        observe(
            "urn:uuid:00000000-0000-4000-8000-300000000001",
            &[PALLET_UNIT],
            "shipping",
            30,
        ),
        observe(
            "urn:uuid:00000000-0000-4000-8000-300000000002",
            &[PALLET_UNIT, OTHER_UNIT],
            "receiving",
            10,
        ),
        observe(
            "urn:uuid:00000000-0000-4000-8000-300000000003",
            &[OTHER_UNIT],
            "inspecting",
            20,
        ),
    ];
    let last_sequence = app
        .capture_events(events)
        .await
        .iter()
        .map(|r| r.sequence)
        .max()
        .expect("results");

    app.await_genealogy(last_sequence).await;

    let history = app
        .genealogy
        .history(pb::HistoryRequest {
            id: PALLET_UNIT.to_owned(),
            page: Some(pb::PageRequest {
                page_size: 1,
                page_token: String::new(),
            }),
        })
        .await
        .expect("history")
        .into_inner();
    assert_eq!(history.entries.len(), 1);
    assert_eq!(
        history.entries[0].biz_step, "receiving",
        "earliest event first"
    );
    assert_eq!(history.entries[0].action, pb::Action::Observe as i32);
    let rest = app
        .genealogy
        .history(pb::HistoryRequest {
            id: PALLET_UNIT.to_owned(),
            page: Some(pb::PageRequest {
                page_size: 10,
                page_token: history.page.expect("page").next_page_token,
            }),
        })
        .await
        .expect("history")
        .into_inner();
    let steps: Vec<_> = rest.entries.iter().map(|e| e.biz_step.as_str()).collect();
    assert_eq!(steps, ["shipping"]);

    let other: Vec<_> = app
        .genealogy
        .history(pb::HistoryRequest {
            id: OTHER_UNIT.to_owned(),
            page: None,
        })
        .await
        .expect("history")
        .into_inner()
        .entries
        .into_iter()
        .map(|e| e.biz_step)
        .collect();
    assert_eq!(other, ["receiving", "inspecting"]);
    app.stop().await.expect("clean stop");
}
