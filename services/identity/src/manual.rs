//! Hand-set identifier states (`UpdateIdentifierStates`) take the path every other state
//! change takes: they become EPCIS events captured into the event store, where the
//! lifecycle rules are decided in the transaction that stores them. So there is one truth:
//! a serial commissioned by hand and on the line at the same moment is stored once, and a
//! decommissioning set by hand is what capture refuses the next scan for.
//!
//! Identity then answers with the states its follower recorded from those events, so a
//! caller reads its own write.

use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;
use tonic::{Request, Status};
use tracery_proto::v1::{self as pb, capture_service_client::CaptureServiceClient};
use tracery_runtime::peers::PeerChannel;

use crate::{
    domain::IdentityError,
    lifecycle::{LifecycleState, Transition},
};

/// The longest a caller waits for identity to apply what capture stored.
const APPLY_WAIT: Duration = Duration::from_secs(10);

/// Captures hand-set states and waits until identity's follower applied them.
#[derive(Clone)]
pub struct ManualStates {
    capture: CaptureServiceClient<PeerChannel>,
    /// The capture sequence identity's lifecycle follower has applied.
    applied: watch::Receiver<i64>,
}

impl ManualStates {
    /// Captures through `capture`; `applied` follows the lifecycle follower's position.
    pub fn new(capture: PeerChannel, applied: watch::Receiver<i64>) -> Self {
        Self {
            capture: CaptureServiceClient::new(capture),
            applied,
        }
    }

    /// Captures `transitions` as one all-or-nothing batch (a refused one quarantines the
    /// rest, so a failed request changes nothing) and waits until identity applied them.
    pub async fn capture(&self, transitions: &[Transition]) -> Result<(), Status> {
        let events = events_for(transitions)?;
        let mut request = Request::new(pb::CaptureRequest { events });
        request.metadata_mut().insert(
            "gs1-capture-error-behaviour",
            tonic::metadata::MetadataValue::from_static("rollback"),
        );
        let results = self
            .capture
            .clone()
            .capture(request)
            .await?
            .into_inner()
            .results;
        if let Some(refusal) = refusal(&results) {
            return Err(refusal);
        }
        let last = results.iter().map(|r| r.sequence).max().unwrap_or(0);
        self.wait_applied(last).await
    }

    async fn wait_applied(&self, sequence: i64) -> Result<(), Status> {
        let mut applied = self.applied.clone();
        let reached = tokio::time::timeout(APPLY_WAIT, applied.wait_for(|at| *at >= sequence));
        match reached.await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Status::unavailable(format!(
                "the state change is stored (capture sequence {sequence}) but identity has \
                 not applied it yet; read the state again shortly"
            ))),
        }
    }
}

/// One ObjectEvent per distinct (event, state, time), naming all of its identifiers, as
/// CBV 2.0 writes them: commissioning (ADD), decommissioning (DELETE), destroying.
fn events_for(transitions: &[Transition]) -> Result<Vec<pb::EpcisEvent>, Status> {
    let mut grouped: Vec<(&Transition, Vec<&str>)> = Vec::new();
    for (index, transition) in transitions.iter().enumerate() {
        match grouped
            .iter_mut()
            .find(|(first, _)| first.event_id == transition.event_id)
        {
            Some((first, epcs)) if first.to == transition.to && first.at == transition.at => {
                epcs.push(&transition.epc);
            }
            Some(_) => {
                return Err(IdentityError::invalid(
                    format!("transitions/{index}/event_id"),
                    "names another state or time for the same event in this request",
                )
                .into());
            }
            None => grouped.push((transition, vec![&transition.epc])),
        }
    }
    grouped
        .into_iter()
        .map(|(transition, epcs)| {
            let event = tracery_epcis::json::parse_event(event_json(transition, &epcs))
                .map_err(|err| Status::internal(format!("building the event: {err}")))?;
            Ok(tracery_epcis::proto::event_to_proto(&event))
        })
        .collect()
}

fn event_json(transition: &Transition, epcs: &[&str]) -> serde_json::Value {
    let (action, biz_step, disposition) = match transition.to {
        LifecycleState::Commissioned => ("ADD", "commissioning", "active"),
        LifecycleState::Decommissioned => ("DELETE", "decommissioning", "inactive"),
        _ => ("OBSERVE", "destroying", "destroyed"),
    };
    json!({
        "type": "ObjectEvent",
        "eventID": transition.event_id,
        "eventTime": transition.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        "eventTimeZoneOffset": "+00:00",
        "epcList": epcs,
        "action": action,
        "bizStep": biz_step,
        "disposition": disposition,
    })
}

/// The refusal of a rolled-back batch: every quarantined event's reasons, the first one
/// that was not merely rolled back first.
fn refusal(results: &[pb::EventResult]) -> Option<Status> {
    let mut reasons: Vec<&pb::FieldViolation> = results
        .iter()
        .filter(|r| r.outcome == pb::CaptureOutcome::Quarantined as i32)
        .flat_map(|r| &r.violations)
        .collect();
    if reasons.is_empty() {
        return None;
    }
    reasons.sort_by_key(|v| v.code == "CAPTURE_JOB_ROLLED_BACK");
    let message = reasons
        .iter()
        .map(|v| format!("{}: {}", v.code, v.description))
        .collect::<Vec<_>>()
        .join("; ");
    Some(Status::failed_precondition(message))
}
