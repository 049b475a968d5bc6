//! The `tracery.v1.GenealogyService` gRPC adapter.

use std::sync::{Arc, atomic::Ordering};

use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status};
use tracery_proto::v1::{self as pb, genealogy_service_server::GenealogyService};
use tracery_runtime::follow::FollowStats;
use tracery_runtime::wire::{self, Page};

use crate::{
    domain::GenealogyError,
    store::{ProjectionStore, history},
};

/// The gRPC service.
pub struct GenealogyApi {
    store: ProjectionStore,
    stats: Arc<FollowStats>,
}

impl GenealogyApi {
    /// The service over the projection.
    pub fn new(store: ProjectionStore, stats: Arc<FollowStats>) -> Self {
        Self { store, stats }
    }
}

fn not_yet(rpc: &str) -> Status {
    Status::unimplemented(format!("GenealogyService.{rpc} is not implemented yet"))
}

fn invalid(field: &str, reason: &str) -> GenealogyError {
    GenealogyError::Invalid {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

/// History page tokens are `<event time in µs>:<sequence>`.
fn parse_history_token(token: &str) -> Result<(DateTime<Utc>, i64), GenealogyError> {
    let bad = || invalid("page/page_token", "not a token from a previous response");
    let (micros, sequence) = token.split_once(':').ok_or_else(bad)?;
    let micros = micros.parse::<i64>().map_err(|_| bad())?;
    let time = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
    Ok((time, sequence.parse().map_err(|_| bad())?))
}

fn history_entry(row: history::Model) -> pb::HistoryEntry {
    let action = match row.action.as_deref() {
        Some("ADD") => pb::Action::Add,
        Some("OBSERVE") => pb::Action::Observe,
        Some("DELETE") => pb::Action::Delete,
        _ => pb::Action::Unspecified,
    };
    pb::HistoryEntry {
        event_id: row.event_id,
        event_type: row.event_type,
        event_time: Some(wire::timestamp(row.event_time)),
        action: action as i32,
        biz_step: row.biz_step.unwrap_or_default(),
        disposition: row.disposition.unwrap_or_default(),
        read_point: row.read_point.unwrap_or_default(),
        biz_location: row.biz_location.unwrap_or_default(),
        sequence: row.sequence,
    }
}

#[tonic::async_trait]
impl GenealogyService for GenealogyApi {
    async fn trace_backward(
        &self,
        _: Request<pb::TraceRequest>,
    ) -> Result<Response<pb::TraceResponse>, Status> {
        Err(not_yet("TraceBackward"))
    }

    async fn trace_forward(
        &self,
        _: Request<pb::TraceRequest>,
    ) -> Result<Response<pb::TraceResponse>, Status> {
        Err(not_yet("TraceForward"))
    }

    async fn recall_scope(
        &self,
        _: Request<pb::RecallScopeRequest>,
    ) -> Result<Response<pb::RecallScopeResponse>, Status> {
        Err(not_yet("RecallScope"))
    }

    #[tracing::instrument(skip_all)]
    async fn history(
        &self,
        request: Request<pb::HistoryRequest>,
    ) -> Result<Response<pb::HistoryResponse>, Status> {
        let request = request.into_inner();
        if request.id.is_empty() {
            return Err(invalid("id", "required").into());
        }
        let page = Page::from_request(request.page.as_ref());
        let after = page.after.as_deref().map(parse_history_token).transpose()?;
        let rows = self
            .store
            .history(&request.id, after, page.fetch_limit())
            .await?;
        let (rows, next) = page.split(rows, |row| {
            format!("{}:{}", row.event_time.timestamp_micros(), row.sequence)
        });
        Ok(Response::new(pb::HistoryResponse {
            entries: rows.into_iter().map(history_entry).collect(),
            page: Some(next),
        }))
    }

    async fn contents(
        &self,
        _: Request<pb::ContentsRequest>,
    ) -> Result<Response<pb::ContentsResponse>, Status> {
        Err(not_yet("Contents"))
    }

    async fn where_is(
        &self,
        _: Request<pb::WhereIsRequest>,
    ) -> Result<Response<pb::WhereIsResponse>, Status> {
        Err(not_yet("WhereIs"))
    }

    async fn export_graph(
        &self,
        _: Request<pb::ExportGraphRequest>,
    ) -> Result<Response<pb::ExportGraphResponse>, Status> {
        Err(not_yet("ExportGraph"))
    }

    async fn get_projection_status(
        &self,
        _: Request<pb::GetProjectionStatusRequest>,
    ) -> Result<Response<pb::GetProjectionStatusResponse>, Status> {
        Ok(Response::new(pb::GetProjectionStatusResponse {
            applied_sequence: self.store.applied_sequence().await?,
            applied_since_start: self.stats.applied_since_start.load(Ordering::Relaxed),
        }))
    }
}
