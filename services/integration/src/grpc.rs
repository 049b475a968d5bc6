//! The `tracery.v1.IntegrationService` gRPC adapter.

use tonic::{Request, Response, Status};
use tracery_proto::v1::{self as pb, integration_service_server::IntegrationService};
use tracery_runtime::wire::{self, Page};

use crate::{
    domain::{IntegrationError, RunState},
    store::{SyncRunRow, SyncRunStore},
};

/// The gRPC service.
pub struct IntegrationApi {
    runs: SyncRunStore,
}

impl IntegrationApi {
    /// The service over the sync-run store.
    pub fn new(runs: SyncRunStore) -> Self {
        Self { runs }
    }
}

fn not_yet(rpc: &str) -> Status {
    Status::unimplemented(format!("IntegrationService.{rpc} is not implemented yet"))
}

fn run_to_proto(row: SyncRunRow) -> pb::SyncRun {
    let state = match RunState::parse(&row.state) {
        Some(RunState::Running) => pb::SyncRunState::Running,
        Some(RunState::Succeeded) => pb::SyncRunState::Succeeded,
        Some(RunState::Partial) => pb::SyncRunState::Partial,
        Some(RunState::Failed) => pb::SyncRunState::Failed,
        None => pb::SyncRunState::Unspecified,
    };
    pb::SyncRun {
        id: row.run_id,
        connector: row.connector,
        state: state as i32,
        counts: Some(pb::SyncCounts {
            fetched: row.fetched,
            created: row.created,
            updated: row.updated,
            unchanged: row.unchanged,
            failed: row.failed,
        }),
        start_time: Some(wire::timestamp(row.started_at)),
        end_time: row.ended_at.map(wire::timestamp),
        errors: serde_json::from_str(&row.errors).unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl IntegrationService for IntegrationApi {
    #[tracing::instrument(skip_all)]
    async fn trigger_sync(
        &self,
        request: Request<pb::TriggerSyncRequest>,
    ) -> Result<Response<pb::TriggerSyncResponse>, Status> {
        let connector = request.into_inner().connector;
        // No connector is configurable yet, so a named one cannot exist and "all" is empty.
        if !connector.is_empty() {
            return Err(IntegrationError::UnknownConnector(connector).into());
        }
        let run = self.runs.record_empty_run(&connector).await?;
        Ok(Response::new(pb::TriggerSyncResponse {
            run: Some(run_to_proto(run)),
        }))
    }

    type SyncStatusStream = tokio_stream::Once<Result<pb::SyncStatusResponse, Status>>;

    #[tracing::instrument(skip_all)]
    async fn sync_status(
        &self,
        request: Request<pb::SyncStatusRequest>,
    ) -> Result<Response<Self::SyncStatusStream>, Status> {
        let run_id = request.into_inner().run_id;
        if run_id.is_empty() {
            return Err(IntegrationError::Invalid {
                field: "run_id".to_owned(),
                reason: "required".to_owned(),
            }
            .into());
        }
        // Runs finish within TriggerSync for now, so the status is final at once.
        let run = self.runs.get(&run_id).await?;
        Ok(Response::new(tokio_stream::once(Ok(
            pb::SyncStatusResponse {
                run: Some(run_to_proto(run)),
            },
        ))))
    }

    #[tracing::instrument(skip_all)]
    async fn list_sync_runs(
        &self,
        request: Request<pb::ListSyncRunsRequest>,
    ) -> Result<Response<pb::ListSyncRunsResponse>, Status> {
        let page = Page::from_request(request.into_inner().page.as_ref());
        let before = match page.after.as_deref() {
            Some(token) => Some(
                token
                    .parse::<i64>()
                    .map_err(|_| IntegrationError::Invalid {
                        field: "page/page_token".to_owned(),
                        reason: "not a token from a previous response".to_owned(),
                    })?,
            ),
            None => None,
        };
        let rows = self.runs.list(before, page.fetch_limit()).await?;
        let (rows, next) = page.split(rows, |row| row.id.to_string());
        Ok(Response::new(pb::ListSyncRunsResponse {
            runs: rows.into_iter().map(run_to_proto).collect(),
            page: Some(next),
        }))
    }

    async fn list_orders(
        &self,
        _: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        Err(not_yet("ListOrders"))
    }

    async fn get_order(
        &self,
        _: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::GetOrderResponse>, Status> {
        Err(not_yet("GetOrder"))
    }

    async fn get_bom(
        &self,
        _: Request<pb::GetBomRequest>,
    ) -> Result<Response<pb::GetBomResponse>, Status> {
        Err(not_yet("GetBom"))
    }

    async fn resolve_item(
        &self,
        _: Request<pb::ResolveItemRequest>,
    ) -> Result<Response<pb::ResolveItemResponse>, Status> {
        Err(not_yet("ResolveItem"))
    }

    async fn check_bom_conformance(
        &self,
        _: Request<pb::CheckBomConformanceRequest>,
    ) -> Result<Response<pb::CheckBomConformanceResponse>, Status> {
        Err(not_yet("CheckBomConformance"))
    }

    async fn compare_boms(
        &self,
        _: Request<pb::CompareBomsRequest>,
    ) -> Result<Response<pb::CompareBomsResponse>, Status> {
        Err(not_yet("CompareBoms"))
    }

    async fn list_postings(
        &self,
        _: Request<pb::ListPostingsRequest>,
    ) -> Result<Response<pb::ListPostingsResponse>, Status> {
        Err(not_yet("ListPostings"))
    }

    async fn retry_posting(
        &self,
        _: Request<pb::RetryPostingRequest>,
    ) -> Result<Response<pb::RetryPostingResponse>, Status> {
        Err(not_yet("RetryPosting"))
    }
}
