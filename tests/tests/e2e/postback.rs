//! Post-back: production captured under an ERPNext work order and an SAP production order
//! becomes exactly one stock entry and one confirmation in the (wiremock) ERPs, also when
//! the first answer is lost after the ERP stored the document; refused postings are
//! dead-lettered with the ERP's message and retried on request.

use std::time::Duration;

use tonic::Code;
use tracery_e2e::{
    TestApp,
    erp_postings::{Answer, Postings},
    erp_sites::ErpSites,
};
use tracery_proto::v1 as pb;

use crate::integration::{production, sync, timestamp};

const SHAFT_LOT: &str = "urn:epc:class:lgtin:4012345.011111.SH-2502-07";

/// An ObjectEvent commissioning `units` valves under SAP order 1000123.
fn valves_made(event_id: &str, units: usize) -> pb::EpcisEvent {
    pb::EpcisEvent {
        event_id: event_id.to_owned(),
        event_time: Some(timestamp("2026-11-26T10:00:00Z")),
        event_time_zone_offset: "+01:00".to_owned(),
        biz_step: "commissioning".to_owned(),
        biz_transactions: vec![pb::BizTransaction {
            r#type: "urn:epcglobal:cbv:btt:prodorder".to_owned(),
            id: "1000123".to_owned(),
        }],
        body: Some(pb::epcis_event::Body::ObjectEvent(pb::ObjectEvent {
            action: pb::Action::Add.into(),
            epcs: (0..units)
                .map(|n| format!("urn:epc:id:sgtin:4012345.077777.V{n}"))
                .collect(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

async fn capture(app: &TestApp, event: pb::EpcisEvent) {
    capture_as(app, event, pb::CaptureOutcome::Accepted).await;
}

async fn capture_as(app: &TestApp, event: pb::EpcisEvent, outcome: pb::CaptureOutcome) {
    let results = app.capture_events(vec![event]).await;
    assert_eq!(
        results[0].outcome, outcome as i32,
        "{:?}",
        results[0].violations
    );
}

/// Waits until the posting of `order` reaches `state`.
async fn posting(app: &TestApp, order: &str, state: pb::PostingState) -> pb::Posting {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let postings = app
            .integration
            .clone()
            .list_postings(pb::ListPostingsRequest::default())
            .await
            .expect("postings")
            .into_inner()
            .postings;
        if let Some(found) = postings
            .iter()
            .find(|p| p.order_number == order && p.state == state as i32)
        {
            return found.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {state:?} posting of {order}: {postings:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn plant(timeout_secs: i64) -> (ErpSites, Postings, TestApp) {
    let sites = ErpSites::start(false).await;
    let postings = sites.take_postings().await;
    let app = TestApp::spawn_with(|config| {
        config.connectors = sites.connectors_posting_back(timeout_secs);
    })
    .await
    .expect("suite starts");
    for connector in ["erp", "sap"] {
        assert_eq!(
            sync(&app, connector).await.state,
            pb::SyncRunState::Succeeded as i32
        );
    }
    (sites, postings, app)
}

#[tokio::test]
async fn production_is_posted_once_even_when_the_erp_answers_too_late() {
    let (_sites, postings, app) = plant(1).await;

    // ERPNext stores the stock entry but answers after the connector gave up.
    postings.answer(Answer::LateOnce(Duration::from_secs(3)));
    capture(
        &app,
        production(
            "urn:uuid:00000000-0000-4000-8000-c00000000001",
            &[SHAFT_LOT],
        ),
    )
    .await;
    let sent = posting(&app, "MFG-WO-2025-00012", pb::PostingState::Sent).await;
    assert_eq!(sent.connector, "erp");
    assert_eq!(sent.attempts, 2, "the lost answer, then the lookup");
    let entries = postings.stock_entries();
    assert_eq!(entries.len(), 1, "exactly one stock entry: {entries:?}");
    let entry = &entries[0];
    assert_eq!(entry["custom_mes_event_id"], sent.reference.as_str());
    assert_eq!(sent.erp_document, "MAT-STE-2026-00001");
    assert_eq!(entry["stock_entry_type"], "Manufacture");
    assert_eq!(entry["work_order"], "MFG-WO-2025-00012");
    assert_eq!(entry["docstatus"], 1);
    // 09:00Z at the site's +01:00.
    assert_eq!(
        (&entry["posting_date"], &entry["posting_time"]),
        (&"2026-11-26".into(), &"10:00:00".into())
    );
    let items = entry["items"].as_array().expect("items");
    assert_eq!(items[0]["item_code"], "SHAFT-20");
    assert_eq!(items[0]["batch_no"], "SH-2502-07");
    assert_eq!(items[1]["item_code"], "PUMP-100");
    assert_eq!(items[1]["is_finished_item"], 1);
    assert_eq!(items[1]["batch_no"], "P1");

    // SAP too: the confirmation is stored, its answer lost.
    postings.answer(Answer::LateOnce(Duration::from_secs(3)));
    capture(
        &app,
        valves_made("urn:uuid:00000000-0000-4000-8000-c00000000002", 5),
    )
    .await;
    let sent = posting(&app, "1000123", pb::PostingState::Sent).await;
    assert_eq!(sent.connector, "sap");
    assert_eq!(sent.attempts, 2);
    let confirmations = postings.confirmations();
    assert_eq!(confirmations.len(), 1, "exactly one confirmation");
    let confirmation = &confirmations[0];
    assert_eq!(confirmation["OrderID"], "1000123");
    assert_eq!(confirmation["ConfirmationText"], sent.reference.as_str());
    assert_eq!(confirmation["ConfirmationYieldQuantity"], "5");
    assert_eq!(confirmation["ConfirmationUnit"], "PC");
    let receipt = &confirmation["to_ProdnOrdConfMatlDocItm"]["results"][0];
    assert_eq!(receipt["GoodsMovementType"], "101");
    assert_eq!(receipt["Material"], "VALVE-7");
    assert_eq!(receipt["Plant"], "1010");
    assert_eq!(sent.erp_document, "0000004711/1");

    // Each attempt is on the audit trail, under the posting's id.
    let attempts = app
        .audit_log()
        .await
        .expect("audit trail")
        .into_iter()
        .filter(|(.., request_id)| *request_id == sent.id)
        .count();
    assert_eq!(attempts, 2, "two attempts audited");

    // Sending the same event again posts nothing more.
    capture_as(
        &app,
        valves_made("urn:uuid:00000000-0000-4000-8000-c00000000002", 5),
        pb::CaptureOutcome::Duplicate,
    )
    .await;
    // A later production event is posted after it; once its confirmation is in, the
    // duplicate has had its chance to post.
    let mut later = valves_made("urn:uuid:00000000-0000-4000-8000-c00000000009", 3);
    if let Some(pb::epcis_event::Body::ObjectEvent(object)) = &mut later.body {
        for epc in &mut object.epcs {
            epc.push_str("-B");
        }
    }
    capture(&app, later).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while postings.confirmations().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the later event posted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        postings.confirmations().len(),
        2,
        "the duplicate posted nothing"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_refused_posting_is_dead_lettered_and_retried_on_request() {
    let (_sites, postings, app) = plant(5).await;
    let refusal = "Batch SH-2502-07 of SHAFT-20 has no stock in WIP - AC";
    postings.answer(Answer::Refuse(refusal.to_owned()));
    capture(
        &app,
        production(
            "urn:uuid:00000000-0000-4000-8000-c00000000003",
            &[SHAFT_LOT],
        ),
    )
    .await;
    let dead = posting(&app, "MFG-WO-2025-00012", pb::PostingState::DeadLetter).await;
    assert_eq!(dead.attempts, 1, "a refusal is not tried again by itself");
    assert!(dead.last_error.contains(refusal), "{}", dead.last_error);
    let listed = app
        .integration
        .clone()
        .list_postings(pb::ListPostingsRequest {
            states: vec![pb::PostingState::DeadLetter as i32],
            page: None,
        })
        .await
        .expect("dead letters")
        .into_inner()
        .postings;
    assert_eq!(listed.len(), 1);
    assert!(postings.stock_entries().is_empty());

    // Someone fixes the stock; the posting is retried and goes through once.
    postings.answer(Answer::Normally);
    let retried = app
        .integration
        .clone()
        .retry_posting(pb::RetryPostingRequest {
            id: dead.id.clone(),
        })
        .await
        .expect("retried")
        .into_inner()
        .posting
        .expect("posting");
    assert_eq!(retried.state, pb::PostingState::Pending as i32);
    let sent = posting(&app, "MFG-WO-2025-00012", pb::PostingState::Sent).await;
    assert_eq!(sent.id, dead.id);
    assert_eq!(postings.stock_entries().len(), 1);

    let mut integration = app.integration.clone();
    let again = integration
        .retry_posting(pb::RetryPostingRequest { id: dead.id })
        .await
        .expect_err("a sent posting is not retried");
    assert_eq!(again.code(), Code::FailedPrecondition);
    let unknown = integration
        .retry_posting(pb::RetryPostingRequest {
            id: "no-such-posting".to_owned(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
    let bad_state = integration
        .list_postings(pb::ListPostingsRequest {
            states: vec![42],
            page: None,
        })
        .await
        .expect_err("no such state");
    assert_eq!(bad_state.code(), Code::InvalidArgument);
    app.stop().await.expect("clean stop");
}
