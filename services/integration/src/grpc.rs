//! The `tracery.v1.IntegrationService` gRPC adapter.

use std::{pin::Pin, sync::Arc, time::Duration};

use rust_decimal::prelude::ToPrimitive;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracery_connector::{Bom, OrderStatus, ProductionOrder, RecordKind};
use tracery_proto::v1::{self as pb, integration_service_server::IntegrationService};
use tracery_runtime::proto_fields::{self, Page};

use crate::{
    conformance,
    domain::{IntegrationError, RunState},
    store::{
        SyncRunRow,
        postings::{self, PostingState},
        records::{self, BomSelector},
    },
    sync::Syncer,
};

/// The gRPC service.
pub struct IntegrationApi {
    syncer: Arc<Syncer>,
}

impl IntegrationApi {
    /// The service over the plant's syncer.
    pub fn new(syncer: Arc<Syncer>) -> Self {
        Self { syncer }
    }
}

fn invalid(field: &str, reason: &str) -> IntegrationError {
    IntegrationError::Invalid {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
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
        start_time: Some(proto_fields::timestamp(row.started_at)),
        end_time: row.ended_at.map(proto_fields::timestamp),
        errors: serde_json::from_str(&row.errors).unwrap_or_default(),
    }
}

fn posting_to_proto(row: postings::posting::Model) -> pb::Posting {
    let state = match PostingState::parse(&row.state) {
        Some(PostingState::Pending) => pb::PostingState::Pending,
        Some(PostingState::Sent) => pb::PostingState::Sent,
        Some(PostingState::DeadLetter) => pb::PostingState::DeadLetter,
        None => pb::PostingState::Unspecified,
    };
    pb::Posting {
        id: row.posting_id,
        reference: row.reference,
        connector: row.connector.unwrap_or_default(),
        order_number: row.order_number.unwrap_or(row.order_reference),
        state: state as i32,
        attempts: row.attempts,
        last_error: row.last_error.unwrap_or_default(),
        erp_document: row.erp_document.unwrap_or_default(),
        create_time: Some(proto_fields::timestamp(row.created_at)),
    }
}

fn status_to_proto(status: OrderStatus) -> pb::OrderStatus {
    match status {
        OrderStatus::Planned => pb::OrderStatus::Planned,
        OrderStatus::Released => pb::OrderStatus::Released,
        OrderStatus::InProgress => pb::OrderStatus::InProgress,
        OrderStatus::Completed => pb::OrderStatus::Completed,
        OrderStatus::Closed => pb::OrderStatus::Closed,
        OrderStatus::Cancelled => pb::OrderStatus::Cancelled,
    }
}

/// The stored spelling of a requested status.
fn status_name(status: i32) -> Result<String, IntegrationError> {
    let status = match pb::OrderStatus::try_from(status) {
        Ok(pb::OrderStatus::Planned) => OrderStatus::Planned,
        Ok(pb::OrderStatus::Released) => OrderStatus::Released,
        Ok(pb::OrderStatus::InProgress) => OrderStatus::InProgress,
        Ok(pb::OrderStatus::Completed) => OrderStatus::Completed,
        Ok(pb::OrderStatus::Closed) => OrderStatus::Closed,
        Ok(pb::OrderStatus::Cancelled) => OrderStatus::Cancelled,
        _ => return Err(invalid("statuses", "unknown order status")),
    };
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .ok_or_else(|| IntegrationError::Corrupt("order status name".to_owned()))
}

fn quantity(value: rust_decimal::Decimal) -> f64 {
    value.to_f64().unwrap_or_default()
}

fn order_to_proto(order: ProductionOrder, source: String) -> pb::ProductionOrder {
    pb::ProductionOrder {
        number: order.number,
        item_code: order.item_code,
        quantity: quantity(order.quantity),
        unit_of_measure: order.unit,
        status: status_to_proto(order.status) as i32,
        planned_start: order.planned_start.map(proto_fields::timestamp),
        planned_end: order.planned_end.map(proto_fields::timestamp),
        actual_start: order.actual_start.map(proto_fields::timestamp),
        actual_end: order.actual_end.map(proto_fields::timestamp),
        plant: order.plant.unwrap_or_default(),
        work_centre: order.work_centre.unwrap_or_default(),
        bom_revision: order.bom_revision.unwrap_or_default(),
        source,
    }
}

fn bom_to_proto(bom: Bom, source: String) -> pb::Bom {
    pb::Bom {
        material: bom.material,
        revision: bom.revision,
        valid_from: bom.valid_from.map(proto_fields::timestamp),
        valid_to: bom.valid_to.map(proto_fields::timestamp),
        lines: bom
            .lines
            .into_iter()
            .map(|line| pb::BomLine {
                component: line.component,
                quantity_per: quantity(line.quantity_per),
                unit_of_measure: line.unit,
                scrap_percent: quantity(line.scrap_percent),
                alternative_group: line.alternative_group.unwrap_or_default(),
            })
            .collect(),
        source,
    }
}

type SyncStatusStream = Pin<Box<dyn Stream<Item = Result<pb::SyncStatusResponse, Status>> + Send>>;

#[tonic::async_trait]
impl IntegrationService for IntegrationApi {
    #[tracing::instrument(skip_all)]
    async fn trigger_sync(
        &self,
        request: Request<pb::TriggerSyncRequest>,
    ) -> Result<Response<pb::TriggerSyncResponse>, Status> {
        let run = self.syncer.trigger(&request.into_inner().connector).await?;
        Ok(Response::new(pb::TriggerSyncResponse {
            run: Some(run_to_proto(run)),
        }))
    }

    type SyncStatusStream = SyncStatusStream;

    /// The run as it progresses: a message now and after every change, until it ends.
    #[tracing::instrument(skip_all)]
    async fn sync_status(
        &self,
        request: Request<pb::SyncStatusRequest>,
    ) -> Result<Response<Self::SyncStatusStream>, Status> {
        let run_id = request.into_inner().run_id;
        if run_id.is_empty() {
            return Err(invalid("run_id", "required").into());
        }
        let first = self.syncer.runs().get(&run_id).await?;
        let syncer = Arc::clone(&self.syncer);
        let stream = progress_stream(syncer, run_id, first);
        Ok(Response::new(Box::pin(stream)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_sync_runs(
        &self,
        request: Request<pb::ListSyncRunsRequest>,
    ) -> Result<Response<pb::ListSyncRunsResponse>, Status> {
        let page = Page::from_request(request.into_inner().page.as_ref());
        let before = page_key(&page)?;
        let rows = self.syncer.runs().list(before, page.fetch_limit()).await?;
        let (rows, next) = page.split(rows, |row| row.id.to_string());
        Ok(Response::new(pb::ListSyncRunsResponse {
            runs: rows.into_iter().map(run_to_proto).collect(),
            page: Some(next),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let request = request.into_inner();
        let page = Page::from_request(request.page.as_ref());
        let statuses = request
            .statuses
            .iter()
            .map(|s| status_name(*s))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = records::orders(
            self.syncer.db(),
            &statuses,
            page_key(&page)?,
            page.fetch_limit(),
        )
        .await?;
        let (rows, next) = page.split(rows, |row| row.id.to_string());
        let orders = rows
            .iter()
            .map(|row| records::order_of(row).map(|o| order_to_proto(o, row.connector.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(pb::ListOrdersResponse {
            orders,
            page: Some(next),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::GetOrderResponse>, Status> {
        let number = request.into_inner().number;
        if number.is_empty() {
            return Err(invalid("number", "required").into());
        }
        let row = records::by_key(self.syncer.db(), RecordKind::Orders, &number)
            .await?
            .ok_or_else(|| {
                IntegrationError::NotFound(format!(
                    "no production order `{number}` has been synced"
                ))
            })?;
        Ok(Response::new(pb::GetOrderResponse {
            order: Some(order_to_proto(records::order_of(&row)?, row.connector)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_bom(
        &self,
        request: Request<pb::GetBomRequest>,
    ) -> Result<Response<pb::GetBomResponse>, Status> {
        let request = request.into_inner();
        if request.material.is_empty() {
            return Err(invalid("material", "required").into());
        }
        let selector = match request.selector {
            Some(pb::get_bom_request::Selector::Revision(revision)) if !revision.is_empty() => {
                BomSelector::Revision(revision)
            }
            Some(pb::get_bom_request::Selector::EffectiveAt(at)) => BomSelector::EffectiveAt(
                chrono::DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).unwrap_or(0))
                    .ok_or_else(|| invalid("effective_at", "not a valid time"))?,
            ),
            _ => BomSelector::Latest,
        };
        let row = records::bom(self.syncer.db(), &request.material, &selector)
            .await?
            .ok_or_else(|| {
                IntegrationError::NotFound(format!(
                    "no BOM of `{}` matches {selector:?}",
                    request.material
                ))
            })?;
        Ok(Response::new(pb::GetBomResponse {
            bom: Some(bom_to_proto(records::bom_of(&row)?, row.connector)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn resolve_item(
        &self,
        request: Request<pb::ResolveItemRequest>,
    ) -> Result<Response<pb::ResolveItemResponse>, Status> {
        let row = match request.into_inner().key {
            Some(pb::resolve_item_request::Key::Gtin(gtin)) => {
                let gtin = conformance::normal_gtin(&gtin)
                    .ok_or_else(|| invalid("gtin", "not a valid GTIN"))?;
                records::material(self.syncer.db(), Some(&gtin), None).await?
            }
            Some(pb::resolve_item_request::Key::ItemCode(code)) if !code.is_empty() => {
                records::material(self.syncer.db(), None, Some(&code)).await?
            }
            _ => return Err(invalid("key", "a GTIN or an item code is required").into()),
        };
        let row = row
            .ok_or_else(|| IntegrationError::NotFound("no synced item has that key".to_owned()))?;
        let material = records::material_of(&row)?;
        Ok(Response::new(pb::ResolveItemResponse {
            material: Some(pb::Material {
                item_code: material.item_code,
                gtin: material.gtin.unwrap_or_default(),
                description: material.description,
                unit_of_measure: material.unit,
                revision: material.revision.unwrap_or_default(),
            }),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn check_bom_conformance(
        &self,
        request: Request<pb::CheckBomConformanceRequest>,
    ) -> Result<Response<pb::CheckBomConformanceResponse>, Status> {
        let request = request.into_inner();
        if request.order_number.is_empty() {
            return Err(invalid("order_number", "required").into());
        }
        if request.component.is_empty() {
            return Err(invalid("component", "required").into());
        }
        let verdict =
            conformance::check(self.syncer.db(), &request.order_number, &request.component).await?;
        Ok(Response::new(pb::CheckBomConformanceResponse {
            conforms: verdict.is_ok(),
            reason: verdict.err().unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn compare_boms(
        &self,
        request: Request<pb::CompareBomsRequest>,
    ) -> Result<Response<pb::CompareBomsResponse>, Status> {
        let request = request.into_inner();
        if request.material.is_empty() {
            return Err(invalid("material", "required").into());
        }
        let load = |revision: String, field: &'static str| {
            let db = self.syncer.db().clone();
            let material = request.material.clone();
            async move {
                if revision.is_empty() {
                    return Err(invalid(field, "required"));
                }
                let row = records::bom(&db, &material, &BomSelector::Revision(revision.clone()))
                    .await?
                    .ok_or_else(|| {
                        IntegrationError::NotFound(format!(
                            "no BOM of `{material}` at revision `{revision}`"
                        ))
                    })?;
                records::bom_of(&row)
            }
        };
        let plm = load(request.plm_revision, "plm_revision").await?;
        let erp = load(request.erp_revision, "erp_revision").await?;
        let differences = conformance::compare(&plm, &erp)
            .into_iter()
            .map(|d| pb::BomDifference {
                component: d.component,
                kind: d.kind as i32,
                plm_quantity: d.plm.map(quantity).unwrap_or_default(),
                erp_quantity: d.erp.map(quantity).unwrap_or_default(),
            })
            .collect();
        Ok(Response::new(pb::CompareBomsResponse { differences }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_postings(
        &self,
        request: Request<pb::ListPostingsRequest>,
    ) -> Result<Response<pb::ListPostingsResponse>, Status> {
        let request = request.into_inner();
        let page = Page::from_request(request.page.as_ref());
        let states = request
            .states
            .iter()
            .map(|state| match pb::PostingState::try_from(*state) {
                Ok(pb::PostingState::Pending) => Ok(PostingState::Pending),
                Ok(pb::PostingState::Sent) => Ok(PostingState::Sent),
                Ok(pb::PostingState::DeadLetter) => Ok(PostingState::DeadLetter),
                _ => Err(invalid(
                    "states",
                    &format!("{state} is not PENDING, SENT or DEAD_LETTER"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rows = postings::list(
            self.syncer.db(),
            &states,
            page_key(&page)?,
            page.fetch_limit(),
        )
        .await?;
        let (rows, next) = page.split(rows, |row| row.id.to_string());
        Ok(Response::new(pb::ListPostingsResponse {
            postings: rows.into_iter().map(posting_to_proto).collect(),
            page: Some(next),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn retry_posting(
        &self,
        request: Request<pb::RetryPostingRequest>,
    ) -> Result<Response<pb::RetryPostingResponse>, Status> {
        let id = request.into_inner().id;
        if id.is_empty() {
            return Err(invalid("id", "required").into());
        }
        let db = self.syncer.db();
        let row = postings::by_posting_id(db, &id)
            .await?
            .ok_or_else(|| IntegrationError::NotFound(format!("no posting `{id}`")))?;
        if !postings::retry(db, row.id).await? {
            return Err(IntegrationError::Precondition(format!(
                "posting `{id}` is {}, not dead-lettered: only dead-lettered postings are retried",
                row.state
            ))
            .into());
        }
        let row = postings::by_posting_id(db, &id)
            .await?
            .ok_or_else(|| IntegrationError::NotFound(format!("no posting `{id}`")))?;
        Ok(Response::new(pb::RetryPostingResponse {
            posting: Some(posting_to_proto(row)),
        }))
    }
}

/// The row id a page token carries.
fn page_key(page: &Page) -> Result<Option<i64>, IntegrationError> {
    page.after
        .as_deref()
        .map(|token| {
            token
                .parse::<i64>()
                .map_err(|_| invalid("page/page_token", "not a token from a previous response"))
        })
        .transpose()
}

/// Sends the run now and after each change until it has ended.
fn progress_stream(
    syncer: Arc<Syncer>,
    run_id: String,
    first: SyncRunRow,
) -> impl Stream<Item = Result<pb::SyncStatusResponse, Status>> + Send {
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let mut progress = syncer.progress();
        let mut last = first;
        let respond = |run: &SyncRunRow| {
            Ok(pb::SyncStatusResponse {
                run: Some(run_to_proto(run.clone())),
            })
        };
        if sender.send(respond(&last)).await.is_err() {
            return;
        }
        while last.ended_at.is_none() {
            // Progress wakes us; the timeout covers a run driven by another replica.
            let _ = tokio::time::timeout(Duration::from_millis(500), progress.changed()).await;
            let run = match syncer.runs().get(&run_id).await {
                Ok(run) => run,
                Err(err) => {
                    let _ = sender.send(Err(err.into())).await;
                    return;
                }
            };
            if run != last {
                if sender.send(respond(&run)).await.is_err() {
                    return;
                }
                last = run;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(receiver)
}
