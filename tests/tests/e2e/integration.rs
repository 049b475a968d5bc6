//! Integration: sync runs are recorded and read back through storage.

use futures::StreamExt as _;
use tonic::Code;
use tracery_e2e::TestApp;
use tracery_proto::v1 as pb;

#[tokio::test]
async fn sync_runs_are_recorded_and_listed() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let run = app
            .integration
            .trigger_sync(pb::TriggerSyncRequest::default())
            .await
            .expect("sync runs")
            .into_inner()
            .run
            .expect("run");
        assert_eq!(run.state, pb::SyncRunState::Succeeded as i32);
        ids.push(run.id);
    }
    let listed = app
        .integration
        .list_sync_runs(pb::ListSyncRunsRequest {
            page: Some(pb::PageRequest {
                page_size: 2,
                page_token: String::new(),
            }),
        })
        .await
        .expect("lists")
        .into_inner();
    let newest_first: Vec<_> = listed.runs.iter().map(|r| r.id.clone()).collect();
    assert_eq!(newest_first, [ids[2].clone(), ids[1].clone()]);
    assert!(!listed.page.expect("page").next_page_token.is_empty());

    let mut status = app
        .integration
        .sync_status(pb::SyncStatusRequest {
            run_id: ids[0].clone(),
        })
        .await
        .expect("status")
        .into_inner();
    let first = status
        .next()
        .await
        .expect("one update")
        .expect("ok")
        .run
        .expect("run");
    assert_eq!(first.id, ids[0]);

    let err = app
        .integration
        .trigger_sync(pb::TriggerSyncRequest {
            connector: "sap-s4".to_owned(),
        })
        .await
        .expect_err("no such connector");
    assert_eq!(err.code(), Code::NotFound);
    app.stop().await.expect("clean stop");
}
