//! The `tracery.v1.CaptureService` gRPC adapter.

use std::{sync::Arc, time::Duration};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracery_epcis::proto::event_to_proto;
use tracery_proto::v1::{self as pb, capture_service_server::CaptureService};
use tracery_runtime::{
    audit::DeferredAudit,
    auth::Principal,
    integrity::{Break, Integrity},
    proto_fields::{self, Page},
};

use crate::{
    batch_intake::{Intake, IntakePeers, violations_to_proto},
    domain::{CaptureError, Channel, ErrorBehaviour},
    store::{EventQuery, EventStore, StoredEvent},
    validation::Policy,
};

/// How often a live Subscribe stream looks for events committed by other processes.
const SUBSCRIBE_POLL: Duration = Duration::from_millis(250);
/// Rows read per store query while streaming.
const SUBSCRIBE_BATCH: u64 = 500;

/// The gRPC service.
pub struct CaptureApi {
    store: EventStore,
    integrity: Arc<Integrity>,
    intake: Intake,
    shutdown: CancellationToken,
}

impl CaptureApi {
    /// Streams the events `query` selects with a sequence above `after`, then each new one
    /// as it is committed, until the client goes or the suite stops.
    fn follow(
        &self,
        query: EventQuery,
        after: i64,
    ) -> ReceiverStream<Result<pb::SubscribeResponse, Status>> {
        let (tx, rx) = mpsc::channel(SUBSCRIBE_BATCH as usize);
        let store = self.store.clone();
        let committed = self.intake.committed();
        let shutdown = self.shutdown.clone();
        let mut cursor = after.max(0);
        tokio::spawn(async move {
            loop {
                // Registered before reading, so a commit between the read and the wait
                // still wakes this stream.
                let woken = committed.notified();
                let rows = match store.query(&query, cursor, SUBSCRIBE_BATCH).await {
                    Ok(rows) => rows,
                    Err(err) => {
                        let _ = tx.send(Err(err.into())).await;
                        return;
                    }
                };
                if rows.is_empty() {
                    tokio::select! {
                        () = woken => {}
                        () = tokio::time::sleep(SUBSCRIBE_POLL) => {}
                        () = shutdown.cancelled() => return,
                        () = tx.closed() => return,
                    }
                    continue;
                }
                let (first, last) = (rows[0].sequence, rows[rows.len() - 1].sequence);
                let trace_parents = match store.trace_parents(first, last).await {
                    Ok(found) => found,
                    Err(err) => {
                        let _ = tx.send(Err(err.into())).await;
                        return;
                    }
                };
                for row in rows {
                    cursor = row.sequence;
                    let mut event = stored_to_proto(row);
                    if let Some(parent) = trace_parents.get(&event.sequence) {
                        event.trace_parent.clone_from(parent);
                    }
                    let message = pb::SubscribeResponse { event: Some(event) };
                    if tx.send(Ok(message)).await.is_err() {
                        return;
                    }
                }
            }
        });
        ReceiverStream::new(rx)
    }

    /// The service over `db`, asking its `peers` when configured; streams end when
    /// `shutdown` is cancelled.
    pub fn new(
        db: sea_orm::DatabaseConnection,
        integrity: Arc<Integrity>,
        policy: Policy,
        peers: IntakePeers,
        shutdown: CancellationToken,
    ) -> Self {
        let policy = Arc::new(policy);
        let store = EventStore::new(db, integrity.keys().clone(), Arc::clone(&policy));
        Self {
            intake: Intake::new(store.clone(), policy, peers),
            store,
            integrity,
            shutdown,
        }
    }

    /// The event store, for the REST binding to share.
    pub fn store(&self) -> EventStore {
        self.store.clone()
    }

    /// The intake, for the other channels (MQTT, REST) to share.
    pub fn intake(&self) -> Intake {
        self.intake.clone()
    }
}

fn stored_to_proto(stored: StoredEvent) -> pb::StoredEvent {
    pb::StoredEvent {
        sequence: stored.sequence,
        event: Some(event_to_proto(&stored.event)),
        trace_parent: String::new(),
    }
}

fn query_from_filter(filter: Option<pb::EventFilter>) -> Result<EventQuery, Status> {
    let Some(filter) = filter else {
        return Ok(EventQuery::default());
    };
    let time = |field: &str, ts: Option<prost_types::Timestamp>| {
        ts.map(|ts| {
            tracery_epcis::time::from_proto(field, &ts)
                .map(|t| t.to_utc())
                .map_err(|err| CaptureError::Invalid {
                    field: field.to_owned(),
                    reason: err.to_string(),
                })
        })
        .transpose()
    };
    Ok(EventQuery {
        event_types: filter.event_types,
        biz_steps: filter.biz_steps,
        dispositions: filter.dispositions,
        read_points: filter.read_points,
        biz_locations: filter.biz_locations,
        event_time_from: time("filter/event_time_from", filter.event_time_from)?,
        event_time_to: time("filter/event_time_to", filter.event_time_to)?,
        record_time_from: time("filter/record_time_from", filter.record_time_from)?,
        record_time_to: time("filter/record_time_to", filter.record_time_to)?,
        match_epcs: filter.match_epcs,
        match_any_epcs: filter.match_any_epcs,
        match_epc_classes: filter.match_epc_classes,
        biz_transactions: filter.biz_transactions,
        ..EventQuery::default()
    })
}

/// The batch's error behaviour from the `gs1-capture-error-behaviour` metadata, as on the
/// REST binding; without it, gRPC batches proceed (each event decided on its own).
fn error_behaviour(metadata: &tonic::metadata::MetadataMap) -> Result<ErrorBehaviour, Status> {
    match metadata.get(ErrorBehaviour::HEADER) {
        None => Ok(ErrorBehaviour::Proceed),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(ErrorBehaviour::parse)
            .ok_or_else(|| {
                Status::from(CaptureError::Invalid {
                    field: ErrorBehaviour::HEADER.to_owned(),
                    reason: "must be rollback or proceed".to_owned(),
                })
            }),
    }
}

/// Position, reason and the checkpoint before it, of a chain's break (zeros when none).
fn break_fields(broken: Option<Break>) -> (i64, String, Option<pb::ChainCheckpoint>) {
    let Some(broken) = broken else {
        return (0, String::new(), None);
    };
    let after = broken.after.map(|checkpoint| pb::ChainCheckpoint {
        position: checkpoint.position,
        time: Some(prost_types::Timestamp {
            seconds: checkpoint.at.timestamp(),
            nanos: i32::try_from(checkpoint.at.timestamp_subsec_nanos()).unwrap_or(0),
        }),
    });
    (broken.position, broken.reason, after)
}

#[tonic::async_trait]
impl CaptureService for CaptureApi {
    #[tracing::instrument(skip_all, fields(events))]
    async fn capture(
        &self,
        request: Request<pb::CaptureRequest>,
    ) -> Result<Response<pb::CaptureResponse>, Status> {
        let principal = request.extensions().get::<Principal>().cloned();
        let audit = request.extensions().get::<DeferredAudit>().cloned();
        let behaviour = error_behaviour(request.metadata())?;
        let request = request.into_inner();
        tracing::Span::current().record("events", request.events.len());
        let admissions = self.intake.admit_proto(&request.events, Channel::Grpc);
        crate::roles::check(principal.as_ref(), &admissions)?;
        let results = self
            .intake
            .capture_admissions(admissions, Channel::Grpc, behaviour, audit)
            .await?;
        Ok(Response::new(pb::CaptureResponse { results }))
    }

    type CaptureStreamStream = ReceiverStream<Result<pb::CaptureStreamResponse, Status>>;

    #[tracing::instrument(skip_all)]
    async fn capture_stream(
        &self,
        request: Request<tonic::Streaming<pb::CaptureStreamRequest>>,
    ) -> Result<Response<Self::CaptureStreamStream>, Status> {
        let principal = request.extensions().get::<Principal>().cloned();
        let behaviour = error_behaviour(request.metadata())?;
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let intake = self.intake.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let mut cursor = 0;
            loop {
                // A batch that has arrived is always stored and acknowledged; shutdown only
                // stops waiting for the next one.
                let batch = tokio::select! {
                    message = inbound.message() => message,
                    () = shutdown.cancelled() => break,
                };
                let batch = match batch {
                    Ok(Some(batch)) => batch,
                    Ok(None) => break,
                    Err(status) => {
                        tracing::debug!(%status, "capture stream closed by the client");
                        break;
                    }
                };
                let admissions = intake.admit_proto(&batch.events, Channel::Grpc);
                if let Err(refused) = crate::roles::check(principal.as_ref(), &admissions) {
                    let _ = tx.send(Err(Status::from(refused))).await;
                    break;
                }
                let acknowledgement = intake
                    .capture_admissions(admissions, Channel::Grpc, behaviour, None)
                    .await
                    .map(|results| {
                        cursor = results.iter().map(|r| r.sequence).fold(cursor, i64::max);
                        pb::CaptureStreamResponse {
                            batch_id: batch.batch_id,
                            results,
                            cursor,
                        }
                    });
                let failed = acknowledgement.is_err();
                if tx
                    .send(acknowledgement.map_err(Status::from))
                    .await
                    .is_err()
                    || failed
                {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    #[tracing::instrument(skip_all)]
    async fn lookup_master_data(
        &self,
        request: Request<pb::LookupMasterDataRequest>,
    ) -> Result<Response<pb::LookupMasterDataResponse>, Status> {
        let request = request.into_inner();
        if request.ids.len() > MAX_LOOKUP_IDS {
            return Err(CaptureError::Invalid {
                field: "ids".to_owned(),
                reason: format!("at most {MAX_LOOKUP_IDS} identifiers per lookup"),
            }
            .into());
        }
        let stored = self.store.master_data_of(&request.ids).await?;
        let elements = stored
            .iter()
            .filter(|(_, s)| {
                request.vocabulary_type.is_empty() || s.vocabulary_type == request.vocabulary_type
            })
            .map(|(asked, stored)| pb::VocabularyElement {
                id: asked.clone(),
                ..element_to_proto(stored)
            })
            .collect();
        Ok(Response::new(pb::LookupMasterDataResponse { elements }))
    }

    #[tracing::instrument(skip_all)]
    async fn put_master_data(
        &self,
        request: Request<pb::PutMasterDataRequest>,
    ) -> Result<Response<pb::PutMasterDataResponse>, Status> {
        let request = request.into_inner();
        if request.elements.len() > MAX_LOOKUP_IDS {
            return Err(CaptureError::Invalid {
                field: "elements".to_owned(),
                reason: format!("at most {MAX_LOOKUP_IDS} elements per call"),
            }
            .into());
        }
        let bounds = &self.intake.policy().bounds;
        let elements = request
            .elements
            .iter()
            .enumerate()
            .map(|(i, element)| {
                tracery_epcis::master_data::from_proto(element, &format!("elements[{i}]"), bounds)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| match err {
                tracery_epcis::EpcisError::InvalidField { field, reason } => {
                    CaptureError::Invalid { field, reason }
                }
                other => CaptureError::Invalid {
                    field: "elements".to_owned(),
                    reason: other.to_string(),
                },
            })?;
        self.store.store_master_data(&elements).await?;
        Ok(Response::new(pb::PutMasterDataResponse {
            stored: elements.len() as i32,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_event(
        &self,
        request: Request<pb::GetEventRequest>,
    ) -> Result<Response<pb::GetEventResponse>, Status> {
        let event_id = request.into_inner().event_id;
        if event_id.is_empty() {
            return Err(CaptureError::Invalid {
                field: "event_id".to_owned(),
                reason: "required".to_owned(),
            }
            .into());
        }
        let stored = self.store.get(&event_id).await?;
        Ok(Response::new(pb::GetEventResponse {
            event: Some(stored_to_proto(stored)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn query_events(
        &self,
        request: Request<pb::QueryEventsRequest>,
    ) -> Result<Response<pb::QueryEventsResponse>, Status> {
        let request = request.into_inner();
        let page = Page::from_request(request.page.as_ref());
        let after = match page.after.as_deref() {
            Some(token) => token.parse::<i64>().map_err(|_| CaptureError::Invalid {
                field: "page/page_token".to_owned(),
                reason: "not a token from a previous response".to_owned(),
            })?,
            None => 0,
        };
        let query = query_from_filter(request.filter)?;
        let rows = self.store.query(&query, after, page.fetch_limit()).await?;
        let (rows, next) = page.split(rows, |row| row.sequence.to_string());
        Ok(Response::new(pb::QueryEventsResponse {
            events: rows.into_iter().map(stored_to_proto).collect(),
            page: Some(next),
        }))
    }

    type SubscribeStream = ReceiverStream<Result<pb::SubscribeResponse, Status>>;

    #[tracing::instrument(skip_all)]
    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let request = request.into_inner();
        let query = query_from_filter(request.filter)?;
        Ok(Response::new(self.follow(query, request.after_sequence)))
    }

    type SubscribeQueryStream = ReceiverStream<Result<pb::SubscribeResponse, Status>>;

    #[tracing::instrument(skip_all)]
    async fn subscribe_query(
        &self,
        request: Request<pb::SubscribeQueryRequest>,
    ) -> Result<Response<Self::SubscribeQueryStream>, Status> {
        let request = request.into_inner();
        let initial = match request.initial_record_time {
            Some(ts) => {
                chrono::DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).unwrap_or(0))
                    .ok_or_else(|| CaptureError::Invalid {
                    field: "initial_record_time".to_owned(),
                    reason: "not a valid time".to_owned(),
                })?
            }
            None => chrono::DateTime::UNIX_EPOCH,
        };
        let query = crate::webhooks::subscription_query(&self.store, &request.query_name, initial)
            .await?
            .ok_or_else(|| CaptureError::QueryNotFound(request.query_name.clone()))?;
        Ok(Response::new(self.follow(query, request.after_sequence)))
    }

    #[tracing::instrument(skip_all)]
    async fn quarantine_hours(
        &self,
        request: Request<pb::QuarantineHoursRequest>,
    ) -> Result<Response<pb::QuarantineHoursResponse>, Status> {
        let request = request.into_inner();
        let (from, until) = tracery_runtime::proto_fields::trend_period(
            request.from.as_ref(),
            request.until.as_ref(),
        )
        .map_err(|(field, reason)| CaptureError::Invalid {
            field: field.to_owned(),
            reason,
        })?;
        let hours = self.store.quarantine_hours(from, until).await?;
        Ok(Response::new(pb::QuarantineHoursResponse {
            hours: hours
                .into_iter()
                .map(|row| pb::QuarantineHour {
                    hour: Some(tracery_runtime::proto_fields::timestamp(row.hour)),
                    read_point: row.read_point,
                    quarantined: row.quarantined,
                })
                .collect(),
        }))
    }

    async fn list_quarantine(
        &self,
        request: Request<pb::ListQuarantineRequest>,
    ) -> Result<Response<pb::ListQuarantineResponse>, Status> {
        let page = Page::from_request(request.into_inner().page.as_ref());
        let entries = self
            .store
            .list_quarantine(page.after.as_deref(), page.fetch_limit())
            .await?;
        let (entries, next) = page.split(entries, |e| e.id.clone());
        Ok(Response::new(pb::ListQuarantineResponse {
            entries: entries
                .into_iter()
                .map(|e| pb::QuarantinedEvent {
                    id: e.id,
                    payload: e.rejected.payload.unwrap_or_default(),
                    violations: violations_to_proto(&e.rejected.violations),
                    receive_time: Some(proto_fields::timestamp(e.received_at)),
                    channel: e.rejected.channel.as_str().to_owned(),
                    payload_protobuf: e.rejected.payload_protobuf.unwrap_or_default(),
                })
                .collect(),
            page: Some(next),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn resubmit_quarantined(
        &self,
        request: Request<pb::ResubmitQuarantinedRequest>,
    ) -> Result<Response<pb::ResubmitQuarantinedResponse>, Status> {
        let request = request.into_inner();
        let entry = self.store.quarantined(&request.id).await?;
        let result = self
            .intake
            .resubmit(&entry, request.corrected.as_ref())
            .await?;
        Ok(Response::new(pb::ResubmitQuarantinedResponse {
            result: Some(result),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn discard_quarantined(
        &self,
        request: Request<pb::DiscardQuarantinedRequest>,
    ) -> Result<Response<pb::DiscardQuarantinedResponse>, Status> {
        let request = request.into_inner();
        let reason = request.reason.trim();
        if reason.is_empty() {
            return Err(CaptureError::Invalid {
                field: "reason".to_owned(),
                reason: "required: say why the event is discarded".to_owned(),
            }
            .into());
        }
        let rejected = self.store.discard(&request.id, reason).await?;
        tracing::info!(
            quarantine_id = %request.id,
            channel = rejected.channel.as_str(),
            reason,
            "quarantined event discarded"
        );
        Ok(Response::new(pb::DiscardQuarantinedResponse {}))
    }

    type ExportArchiveStream = crate::archive_api::ExportStream;

    #[tracing::instrument(skip_all)]
    async fn export_archive(
        &self,
        request: Request<pb::ExportArchiveRequest>,
    ) -> Result<Response<Self::ExportArchiveStream>, Status> {
        crate::archive_api::export(self.store.clone(), request.into_inner())
            .await
            .map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn drop_archived(
        &self,
        request: Request<tonic::Streaming<pb::ArchiveChunk>>,
    ) -> Result<Response<pb::ArchiveResult>, Status> {
        crate::archive_api::drop_uploaded(&self.store, request.into_inner())
            .await
            .map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn import_archive(
        &self,
        request: Request<tonic::Streaming<pb::ArchiveChunk>>,
    ) -> Result<Response<pb::ArchiveResult>, Status> {
        crate::archive_api::import_uploaded(&self.store, request.into_inner())
            .await
            .map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn verify_integrity(
        &self,
        _: Request<pb::VerifyIntegrityRequest>,
    ) -> Result<Response<pb::VerifyIntegrityResponse>, Status> {
        let mut checkpoints = self.integrity.checkpoints().map_err(|err| {
            tracing::error!(error = %err, "cannot read the checkpoint file");
            Status::unavailable("the checkpoint file cannot be read; see the log")
        })?;
        let read = checkpoints.count();
        let events = self
            .store
            .verify_integrity(checkpoints.take(crate::store::integrity::CHAIN))
            .await?;
        let audit = self
            .store
            .verify_audit(checkpoints.take(tracery_runtime::audit::CHAIN))
            .await?;
        let problems = checkpoints.forged;
        for (chain, broken) in [
            ("stored events", &events.broken),
            ("audit trail", &audit.broken),
        ] {
            if let Some(broken) = broken {
                tracing::error!(chain, position = broken.position, reason = %broken.reason, after = ?broken.after, "a hash chain is broken");
            }
        }
        for problem in &problems {
            tracing::error!(%problem, "a checkpoint does not verify");
        }
        let intact = events.broken.is_none() && audit.broken.is_none() && problems.is_empty();
        let (first_broken_sequence, reason, after) = break_fields(events.broken);
        let (audit_first_broken_id, audit_reason, audit_after) = break_fields(audit.broken);
        Ok(Response::new(pb::VerifyIntegrityResponse {
            intact,
            checked: events.checked,
            first_broken_sequence,
            reason,
            audit_checked: audit.checked,
            audit_first_broken_id,
            audit_reason,
            broken_after_checkpoint: after,
            audit_broken_after_checkpoint: audit_after,
            checkpoint_problems: problems,
            checkpoints: i64::try_from(read).unwrap_or(i64::MAX),
        }))
    }
}

/// Identifiers one `LookupMasterData` call may ask for, and elements one `PutMasterData`
/// call may store.
const MAX_LOOKUP_IDS: usize = 1_000;

fn element_to_proto(stored: &crate::store::master_data::Stored) -> pb::VocabularyElement {
    let element = tracery_epcis::master_data::VocabularyElement::from(stored);
    pb::VocabularyElement {
        vocabulary_type: element.vocabulary_type,
        id: element.id,
        name: stored.name.clone().unwrap_or_default(),
        attributes: element
            .attributes
            .into_iter()
            .map(|(id, value)| pb::MasterDataAttribute {
                id,
                value_json: value.to_string(),
            })
            .collect(),
        children: element.children,
    }
}
